//! The facade: one entry type holding the store, the gateway, the clock and
//! the configuration, offering the use cases. Adapters call only this.

mod checkout;
mod config;
mod feed;
mod keys;
mod orders;
mod sweep;

use std::sync::Arc;

use chrono::{SubsecRound, TimeDelta};

use crate::cart::{AgeVerification, AttributeKey, Cart, CartUpdate};
use crate::catalog::{NewProduct, Page, Product, ProductPage, ProductQuery};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{BackendError, BackendErrorKind, Entity, Error, Result};
use crate::ids::{
    CartId, CouponCode, IdempotencyKey, OrderId, ProductId, PromotionId, Quantity, Sku, TenantId,
};
use crate::inventory::{StockAdjustment, StockLevel};
use crate::memory::InMemoryStore;
use crate::money::Currency;
use crate::order::PaymentApplication;
use crate::payment::{PaymentGateway, TestGateway};
use crate::pricing::{self, CustomerContext, PricedCart, PricingInput, PricingLine};
use crate::promotion::{Promotion, PromotionSpec};
use crate::settings::ShopSettings;
use crate::store::{PricingRead, Scope, Store};
use crate::tax::{ConfiguredTax, TaxCalculator};
use crate::text::{TextField, check_optional_text};

pub use checkout::{Checkout, CheckoutRequest, plan_checkout};
pub use config::{CommerceBuilder, Config};
pub use feed::FeedPage;
pub use orders::{OrderPage, SweepReport};
pub use sweep::SweepAllReport;

struct Inner {
    store: Arc<dyn Store>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    tax: Arc<dyn TaxCalculator>,
    config: Config,
    ttl: TimeDelta,
    window: TimeDelta,
}

/// The commerce engine. Cheap to clone (clones share everything); `Send +
/// Sync`, so one value serves every request.
///
/// [`Commerce::shop`] gives the use cases of one tenant; webhooks arrive
/// through [`Commerce::handle_webhook`] and are routed to the tenant they
/// name.
#[derive(Clone)]
pub struct Commerce {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Commerce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commerce")
            .field("gateway", &self.inner.gateway)
            .field("clock", &self.inner.clock)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookHandled {
    /// A payment event was applied (or recognised as a duplicate).
    Applied(Box<PaymentApplication>),
    /// A genuine event the core does not act on.
    Ignored {
        /// The provider's event type.
        event_type: String,
    },
    /// A genuine event about an order this store does not hold; nothing
    /// was changed. Acknowledge it (a retry cannot help) and look into it.
    UnknownOrder {
        /// The provider's event id.
        event: crate::ids::PaymentEventId,
        /// The tenant it names.
        tenant: TenantId,
        /// The order it names.
        order: OrderId,
    },
}

impl Commerce {
    /// A builder.
    pub fn builder() -> CommerceBuilder {
        CommerceBuilder::default()
    }

    /// An engine on a new in-memory store with the test gateway, the system
    /// clock and the default configuration.
    pub fn in_memory() -> Self {
        Commerce {
            inner: Arc::new(Inner {
                store: Arc::new(InMemoryStore::new()),
                gateway: Arc::new(TestGateway::default()),
                clock: Arc::new(SystemClock),
                tax: Arc::new(ConfiguredTax),
                config: Config::default(),
                ttl: TimeDelta::minutes(15),
                window: TimeDelta::minutes(31),
            }),
        }
    }

    /// The use cases of `tenant`.
    pub fn shop(&self, tenant: &TenantId) -> Shop {
        Shop {
            commerce: self.clone(),
            scope: self.inner.store.scope(tenant),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The current time by the engine's clock, truncated to whole
    /// microseconds (the precision of PostgreSQL timestamps), so that every
    /// store compares the same instants.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now().trunc_subsecs(6)
    }

    fn expiry(&self, now: Timestamp, after: TimeDelta) -> Result<Timestamp> {
        now.checked_add_signed(after)
            .ok_or_else(|| Error::InvalidConfig("expiry past the largest instant".into()))
    }
}

/// The use cases of one tenant (shop). Every call is confined to that
/// tenant. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shop {
    commerce: Commerce,
    scope: Scope,
}

impl Shop {
    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        self.scope.tenant()
    }

    /// The tenant's stores, for reads the facade does not wrap.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    fn now(&self) -> Timestamp {
        self.commerce.now()
    }

    // ----- catalog -------------------------------------------------------

    /// Adds a product, giving it a new id.
    pub async fn add_product(&self, product: NewProduct) -> Result<Product> {
        self.put_product(ProductId::new(), product).await
    }

    /// Creates or replaces the product `id`; its published flag is
    /// `product.published` (so replacing an unpublished product with a
    /// [`NewProduct`] that does not say [`unpublished`](NewProduct::unpublished)
    /// publishes it).
    pub async fn put_product(&self, id: ProductId, product: NewProduct) -> Result<Product> {
        let product = Product::new(id, product)?;
        self.scope.catalog().put_product(&product).await?;
        Ok(product)
    }

    /// Publishes (`true`) or unpublishes (`false`) the product `id` and
    /// returns it. Unpublished, it is absent from [`product`](Self::product),
    /// [`products`](Self::products) and [`search_products`](Self::search_products),
    /// and no cart can add its SKUs; the admin reads still show it. An
    /// unknown product is [`Error::NotFound`].
    pub async fn set_product_published(&self, id: ProductId, published: bool) -> Result<Product> {
        self.scope
            .catalog()
            .set_published(id, published)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Product, id))
    }

    /// The published product `id`: the storefront's read. An unpublished
    /// product is [`Error::NotFound`], as if it did not exist (see
    /// [`admin_product`](Self::admin_product)).
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        let product = self.admin_product(id).await?;
        if product.is_published() {
            Ok(product)
        } else {
            Err(Error::not_found(Entity::Product, id))
        }
    }

    /// The product `id`, published or not: the admin's read.
    pub async fn admin_product(&self, id: ProductId) -> Result<Product> {
        self.scope
            .catalog()
            .product(id)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Product, id))
    }

    /// A page of published products, in ascending id order: the
    /// storefront's list. `after` is the previous page's
    /// [`ProductPage::next`] (`None` for the first page); `limit` is
    /// clamped to 1..=[`Page::MAX_LIMIT`].
    pub async fn products(&self, after: Option<ProductId>, limit: u32) -> Result<ProductPage> {
        let query = ProductQuery::published(limit).after(after);
        self.scope.catalog().products_page(&query).await
    }

    /// A page of every product, unpublished ones included, in ascending id
    /// order: the admin's list. Pages like [`products`](Self::products).
    pub async fn admin_products(
        &self,
        after: Option<ProductId>,
        limit: u32,
    ) -> Result<ProductPage> {
        let query = ProductQuery::all(limit).after(after);
        self.scope.catalog().products_page(&query).await
    }

    /// Full-text search of the published products, best matches first, one
    /// page at a time.
    pub async fn search_products(&self, query: &str, page: Page) -> Result<Vec<Product>> {
        self.scope.catalog().search(query, page).await
    }

    // ----- inventory -----------------------------------------------------

    /// Records stock arriving.
    pub async fn receive_stock(
        &self,
        sku: &Sku,
        quantity: Quantity,
        note: Option<String>,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        self.scope
            .inventory()
            .receive(sku, quantity, None, note, self.now())
            .await
    }

    /// Records stock arriving under the caller's `reference` (a delivery
    /// note line, say): the receipt counts once however often it is sent,
    /// so a lost answer can be retried.
    pub async fn receive_stock_once(
        &self,
        sku: &Sku,
        quantity: Quantity,
        reference: &IdempotencyKey,
        note: Option<String>,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        self.scope
            .inventory()
            .receive(sku, quantity, Some(reference), note, self.now())
            .await
    }

    /// Records a stock count.
    pub async fn correct_stock(
        &self,
        sku: &Sku,
        on_hand: Quantity,
        note: Option<String>,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        self.scope
            .inventory()
            .correct(sku, on_hand, note, self.now())
            .await
    }

    /// The stock position of `sku` now.
    pub async fn stock(&self, sku: &Sku) -> Result<StockLevel> {
        self.scope.inventory().stock(sku, self.now()).await
    }

    /// When a unit of `sku` held now may come back: the earliest instant
    /// one of its live holds (a cart's reservation, or the allocation of an
    /// order awaiting payment) lapses, or `None` when nothing holds it. For
    /// a product page that says "held by another buyer, may come back at
    /// 14:15". An unknown SKU is [`Error::NotFound`].
    ///
    /// It is when the hold lapses, not a promise: the buyer may renew it, or
    /// check out and hold the unit for the payment window instead. See
    /// [`InventoryStore::next_release`](crate::store::InventoryStore::next_release).
    ///
    /// ```
    /// use std::time::Duration;
    /// use commerce_core::{
    ///     Category, Clock, Commerce, Config, Currency, ManualClock, Money, NewProduct, Quantity,
    ///     Sku, TaxCategory, TenantId, Variant,
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = ManualClock::at_unix(1_767_225_600);
    /// let commerce = Commerce::builder()
    ///     .clock(clock.clone())
    ///     .config(Config::default().with_reservation_ttl(Duration::from_secs(15 * 60)))
    ///     .build()?;
    /// let shop = commerce.shop(&TenantId::parse("gpu-exchange")?);
    /// let sku = Sku::parse("GPU-3090-FE")?;
    /// shop.add_product(NewProduct {
    ///     name: "RTX 3090 Founders Edition (used)".into(),
    ///     category: Category::parse("gpu")?,
    ///     tax_category: TaxCategory::parse("standard")?,
    ///     age_restricted: false,
    ///     variants: vec![Variant::new(sku.clone(), Money::new(115_000, Currency::AUD))],
    ///     published: true,
    /// })
    /// .await?;
    /// shop.receive_stock(&sku, Quantity::ONE, None).await?;
    /// assert_eq!(shop.next_release(&sku).await?, None, "nobody holds it");
    ///
    /// let cart = shop.create_cart(Currency::AUD).await?;
    /// shop.set_line(cart.id, &sku, Quantity::ONE).await?;
    /// let back = clock.now() + Duration::from_secs(15 * 60);
    /// assert_eq!(shop.next_release(&sku).await?, Some(back));
    ///
    /// clock.advance(Duration::from_secs(15 * 60));
    /// assert_eq!(shop.next_release(&sku).await?, None, "the hold lapsed");
    /// # Ok(())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(run())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_release(&self, sku: &Sku) -> Result<Option<Timestamp>> {
        self.scope.inventory().next_release(sku, self.now()).await
    }

    /// The stock position of `sku` now and when a held unit may come back
    /// ([`stock`](Self::stock) and [`next_release`](Self::next_release) at
    /// the same instant: the clock is read once). Two reads, each of one
    /// committed state: a hold taken or released between them may show in
    /// one and not the other.
    ///
    /// ```
    /// use commerce_core::{
    ///     Category, Commerce, Currency, Money, NewProduct, Quantity, Sku, TaxCategory, TenantId,
    ///     Variant,
    /// };
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let shop = Commerce::in_memory().shop(&TenantId::parse("gpu-exchange")?);
    /// let sku = Sku::parse("GPU-4090")?;
    /// shop.add_product(NewProduct {
    ///     name: "RTX 4090 (used)".into(),
    ///     category: Category::parse("gpu")?,
    ///     tax_category: TaxCategory::parse("standard")?,
    ///     age_restricted: false,
    ///     variants: vec![Variant::new(sku.clone(), Money::new(250_000, Currency::AUD))],
    ///     published: true,
    /// })
    /// .await?;
    /// shop.receive_stock(&sku, Quantity::ONE, None).await?;
    /// let cart = shop.create_cart(Currency::AUD).await?;
    /// shop.set_line(cart.id, &sku, Quantity::ONE).await?;
    ///
    /// let (level, next_release) = shop.stock_and_next_release(&sku).await?;
    /// if level.available() == 0 {
    ///     if let Some(at) = next_release {
    ///         println!("held by another buyer, may come back at {}", at.format("%H:%M"));
    ///     }
    /// }
    /// assert_eq!((level.reserved, level.available()), (1, 0));
    /// assert!(next_release.is_some());
    /// # Ok(())
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(run())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn stock_and_next_release(
        &self,
        sku: &Sku,
    ) -> Result<(StockLevel, Option<Timestamp>)> {
        let now = self.now();
        let inventory = self.scope.inventory();
        let level = inventory.stock(sku, now).await?;
        let next_release = inventory.next_release(sku, now).await?;
        Ok((level, next_release))
    }

    /// The adjustment history of `sku`.
    pub async fn stock_adjustments(&self, sku: &Sku) -> Result<Vec<StockAdjustment>> {
        self.scope.inventory().adjustments(sku).await
    }

    // ----- carts ---------------------------------------------------------

    /// Creates an empty cart in `currency`.
    pub async fn create_cart(&self, currency: Currency) -> Result<Cart> {
        let cart = Cart::new(CartId::new(), self.tenant().clone(), currency, self.now());
        self.scope.carts().insert_cart(&cart).await?;
        Ok(cart)
    }

    /// The cart `id`.
    pub async fn cart(&self, id: CartId) -> Result<Cart> {
        self.scope
            .carts()
            .cart(id)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, id))
    }

    /// Sets the quantity of `sku` in the cart, reserving that much stock for
    /// the configured TTL (zero removes the line and its reservation).
    ///
    /// Refused with [`Error::InsufficientStock`] (carrying the real available
    /// count) when there is not enough, [`Error::NotFound`] (of the SKU)
    /// when no published product has it, [`Error::CurrencyMismatch`] when
    /// the SKU is priced in another currency than the cart's, and
    /// [`Error::CartLimit`] past the configured units per line or lines per
    /// cart ([`Config::with_cart_limits`]). The store checks the limits in
    /// the same atomic step that adds the line, so concurrent calls adding
    /// distinct SKUs to one cart never leave it past its lines limit.
    pub async fn set_line(&self, cart: CartId, sku: &Sku, quantity: Quantity) -> Result<Cart> {
        let now = self.now();
        let limits = self.commerce.inner.config.cart_limits();
        let expires_at = self.commerce.expiry(now, self.commerce.inner.ttl)?;
        // One call to the store, which checks the cart, its limits, the SKU,
        // its currency and its stock in the same atomic step that writes.
        self.scope
            .carts()
            .set_line(cart, sku, quantity, limits, expires_at, now)
            .await
    }

    /// Removes `sku` from the cart and releases its reservation.
    pub async fn remove_line(&self, cart: CartId, sku: &Sku) -> Result<Cart> {
        self.set_line(cart, sku, Quantity::ZERO).await
    }

    /// Sets every line again at its quantity, renewing the reservations (for
    /// a buyer who comes back after they lapsed). Stops at the first line
    /// whose stock is gone, with [`Error::InsufficientStock`].
    pub async fn renew_reservations(&self, cart: CartId) -> Result<Cart> {
        let mut current = self.cart(cart).await?;
        for line in current.lines.clone() {
            current = self.set_line(cart, &line.sku, line.quantity).await?;
        }
        Ok(current)
    }

    /// Enters a coupon code on the cart (codes are case-insensitive).
    pub async fn add_code(&self, cart: CartId, code: &CouponCode) -> Result<Cart> {
        self.update_cart(cart, CartUpdate::AddCode(code.clone()))
            .await
    }

    /// Removes a coupon code from the cart.
    pub async fn remove_code(&self, cart: CartId, code: &CouponCode) -> Result<Cart> {
        self.update_cart(cart, CartUpdate::RemoveCode(code.clone()))
            .await
    }

    /// Sets (or clears) who is buying: their id (for per-customer limits),
    /// groups, and whether this is their first order. The embedding service
    /// vouches for it.
    pub async fn set_customer(
        &self,
        cart: CartId,
        customer: Option<CustomerContext>,
    ) -> Result<Cart> {
        self.update_cart(cart, CartUpdate::SetCustomer(customer))
            .await
    }

    /// Records that the buyer's age was verified for this cart, how and by
    /// whom, at the engine's current time. Checkout refuses a cart holding
    /// age-restricted items without one.
    pub async fn record_age_verification(
        &self,
        cart: CartId,
        method: impl Into<String>,
        verified_by: impl Into<String>,
    ) -> Result<Cart> {
        let verification = AgeVerification {
            method: method.into(),
            verified_by: verified_by.into(),
            verified_at: self.now(),
        };
        self.update_cart(cart, CartUpdate::VerifyAge(verification))
            .await
    }

    /// Sets the cart's attribute `key` to `value`, replacing the value it
    /// had, or removes it (`None`; removing an absent key changes nothing).
    /// Placing the order copies the cart's attributes to it
    /// ([`Order::attributes`](crate::Order::attributes)).
    ///
    /// Refused, changing nothing, with [`Error::CartAttribute`]: a value of
    /// more than 500 bytes or holding a NUL character
    /// ([`CartAttributeError::InvalidValue`](crate::CartAttributeError::InvalidValue),
    /// naming the key), a 17th key
    /// ([`CartAttributeError::TooMany`](crate::CartAttributeError::TooMany));
    /// and with [`Error::CartCheckedOut`] once the cart is checked out.
    /// Keys are parsed first ([`AttributeKey::parse`]).
    pub async fn set_cart_attribute(
        &self,
        cart: CartId,
        key: &AttributeKey,
        value: Option<String>,
    ) -> Result<Cart> {
        let update = CartUpdate::SetAttribute {
            key: key.clone(),
            value,
        };
        self.update_cart(cart, update).await
    }

    async fn update_cart(&self, cart: CartId, update: CartUpdate) -> Result<Cart> {
        self.scope
            .carts()
            .update_cart(cart, &update, self.now())
            .await
    }

    /// Prices the cart as checkout would now: the storefront's real-time
    /// preview, with every promotion considered and why it did or did not
    /// apply.
    pub async fn price_cart(&self, cart: CartId) -> Result<PricedCart> {
        let read = self.pricing_read(cart).await?;
        Ok(self.price(read).await?.1.priced)
    }

    /// What pricing the cart `cart` reads, in one read.
    async fn pricing_read(&self, cart: CartId) -> Result<PricingRead> {
        self.scope
            .pricing()
            .pricing_read(cart)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))
    }

    /// Prices the cart of `read`; also returns the cart and what it was
    /// priced with.
    async fn price(&self, read: PricingRead) -> Result<(Cart, Pricing)> {
        let cart = read.cart;
        let settings = read.settings.unwrap_or_default();
        let accepting_orders = settings.accepting_orders;
        let mut input = PricingInput::new(cart.currency, settings.tax, self.now());
        input.shipping = settings.shipping_fee;
        if read.products.len() != cart.lines.len() {
            return Err(Error::from(BackendError::new(
                BackendErrorKind::Other,
                "the pricing read answered a product count other than the cart's lines",
            )));
        }
        for (line, product) in cart.lines.iter().zip(read.products) {
            let product = product.ok_or_else(|| Error::not_found(Entity::Sku, &line.sku))?;
            input.lines.push(PricingLine::from_product(
                &product,
                &line.sku,
                line.quantity,
            )?);
        }
        input.promotions = read.promotions;
        input.codes = cart.codes.clone();
        input.customer = cart.customer.clone().unwrap_or_default();
        input.usage = read.usage;
        let discounted = pricing::discount(&input)?;
        let tax = self
            .commerce
            .inner
            .tax
            .calculate(&input.tax, &discounted.tax_request())
            .await?;
        Ok((
            cart,
            Pricing {
                priced: discounted.finish(tax)?,
                promotions: input.promotions,
                accepting_orders,
            },
        ))
    }

    // ----- settings and promotions ---------------------------------------

    /// The shop's settings ([`ShopSettings::default`] until some are stored).
    pub async fn settings(&self) -> Result<ShopSettings> {
        Ok(self.scope.settings().settings().await?.unwrap_or_default())
    }

    /// Checks and stores the shop's settings. Placed orders keep the tax and
    /// shipping they were priced with.
    pub async fn put_settings(&self, settings: ShopSettings) -> Result<ShopSettings> {
        settings.validate()?;
        self.scope.settings().put_settings(&settings).await?;
        Ok(settings)
    }

    /// Checks and stores a promotion (replacing one with the same id).
    pub async fn put_promotion(&self, spec: PromotionSpec) -> Result<Promotion> {
        let promotion = Promotion::new(spec)?;
        self.scope.promotions().put_promotion(&promotion).await?;
        Ok(promotion)
    }

    /// Every promotion, in evaluation order.
    pub async fn promotions(&self) -> Result<Vec<Promotion>> {
        self.scope.promotions().promotions().await
    }

    /// Removes a promotion; `false` if there was none.
    pub async fn remove_promotion(&self, id: &PromotionId) -> Result<bool> {
        self.scope.promotions().remove_promotion(id).await
    }
}

/// A cart priced, with what checkout needs from the same reads.
struct Pricing {
    /// The priced cart.
    priced: PricedCart,
    /// The promotions it was priced with.
    promotions: Vec<Promotion>,
    /// The settings' [`ShopSettings::accepting_orders`].
    accepting_orders: bool,
}
