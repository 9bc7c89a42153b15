//! The facade: one entry type holding the store, the gateway, the clock and
//! the configuration, offering the use cases. Adapters call only this.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeDelta};

use crate::cart::{AgeVerification, Cart, CartStatus, CartUpdate};
use crate::catalog::{NewProduct, Page, Product};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Entity, Error, Result};
use crate::ids::{
    CartId, CouponCode, IdempotencyKey, OrderId, ProductId, PromotionId, Quantity, RefundId, Sku,
    TenantId,
};
use crate::inventory::{StockAdjustment, StockLevel};
use crate::memory::InMemoryStore;
use crate::money::Currency;
use crate::order::{
    Order, OrderAction, OrderDraft, OrderEvent, OrderStatus, PaymentApplication, Redemption, Refund,
};
use crate::payment::{
    PaymentEvent, PaymentGateway, PaymentSession, TestGateway, WebhookOutcome, WebhookRequest,
};
use crate::pricing::{
    self, CustomerContext, NotApplied, PricedCart, PricingInput, PricingLine, PromotionOutcome,
};
use crate::promotion::{Condition, Promotion, PromotionSpec};
use crate::settings::ShopSettings;
use crate::store::{Scope, Store};
use crate::tax::{ConfiguredTax, TaxCalculator};
use crate::text::{TextField, check_optional_text};

/// Tunable policy. Start from [`Config::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// use commerce_core::Config;
/// let config = Config::default().with_reservation_ttl(Duration::from_secs(10 * 60));
/// assert_eq!(config.payment_window(), Duration::from_secs(31 * 60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    reservation_ttl: Duration,
    payment_window: Duration,
    sweep_batch: usize,
}

impl Default for Config {
    /// A 15-minute reservation TTL, a 31-minute payment window, sweeps in
    /// batches of 500.
    ///
    /// A Stripe Checkout Session must expire at least 30 minutes after Stripe
    /// creates it, and the session is created just after the order is placed:
    /// the extra minute covers that gap, so the default works with Stripe.
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::from_secs(15 * 60),
            payment_window: Duration::from_secs(31 * 60),
            sweep_batch: 500,
        }
    }
}

impl Config {
    /// How long setting a cart line holds its stock.
    pub fn with_reservation_ttl(mut self, ttl: Duration) -> Self {
        self.reservation_ttl = ttl;
        self
    }

    /// How long a placed order holds its stock while awaiting payment.
    pub fn with_payment_window(mut self, window: Duration) -> Self {
        self.payment_window = window;
        self
    }

    /// How many rows one sweep step handles at most.
    pub fn with_sweep_batch(mut self, batch: usize) -> Self {
        self.sweep_batch = batch;
        self
    }

    /// The reservation TTL.
    pub fn reservation_ttl(&self) -> Duration {
        self.reservation_ttl
    }

    /// The payment window.
    pub fn payment_window(&self) -> Duration {
        self.payment_window
    }

    /// The sweep batch size.
    pub fn sweep_batch(&self) -> usize {
        self.sweep_batch
    }

    fn delta(name: &str, d: Duration) -> Result<TimeDelta> {
        TimeDelta::from_std(d)
            .ok()
            .filter(|delta| *delta > TimeDelta::zero() && *delta <= TimeDelta::days(36_525))
            .ok_or_else(|| {
                Error::InvalidConfig(format!("{name} must be positive and at most 100 years"))
            })
    }
}

/// Builds a [`Commerce`]. Unset parts default to the in-memory store, the
/// [`TestGateway`] and the [`SystemClock`].
#[derive(Default)]
pub struct CommerceBuilder {
    store: Option<Arc<dyn Store>>,
    gateway: Option<Arc<dyn PaymentGateway>>,
    clock: Option<Arc<dyn Clock>>,
    tax: Option<Arc<dyn TaxCalculator>>,
    config: Config,
}

impl CommerceBuilder {
    /// The store.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store already shared.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The payment gateway.
    pub fn gateway(mut self, gateway: impl PaymentGateway) -> Self {
        self.gateway = Some(Arc::new(gateway));
        self
    }

    /// A gateway already shared.
    pub fn shared_gateway(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The tax calculator (default: [`ConfiguredTax`], each shop's
    /// [`TaxConfig`](crate::TaxConfig)).
    pub fn tax_calculator(mut self, tax: impl TaxCalculator) -> Self {
        self.tax = Some(Arc::new(tax));
        self
    }

    /// The configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Checks the configuration and builds. A zero or absurd TTL or payment
    /// window, or a zero sweep batch, is [`Error::InvalidConfig`].
    pub fn build(self) -> Result<Commerce> {
        let ttl = Config::delta("reservation TTL", self.config.reservation_ttl)?;
        let window = Config::delta("payment window", self.config.payment_window)?;
        if self.config.sweep_batch == 0 {
            return Err(Error::InvalidConfig(
                "sweep batch must be at least 1".into(),
            ));
        }
        Ok(Commerce {
            inner: Arc::new(Inner {
                store: self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new())),
                gateway: self
                    .gateway
                    .unwrap_or_else(|| Arc::new(TestGateway::default())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                tax: self.tax.unwrap_or_else(|| Arc::new(ConfiguredTax)),
                config: self.config,
                ttl,
                window,
            }),
        })
    }
}

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

    /// Verifies a webhook delivery with the gateway and applies the payment
    /// event it carries to the tenant it names, exactly once.
    ///
    /// A refused delivery (bad signature, stale, malformed) is
    /// [`Error::Webhook`]: answer it with a 4xx. Anything `Ok` should be
    /// acknowledged, duplicates and [`WebhookHandled::UnknownOrder`]
    /// included; other errors (a store failure) may be answered with a 5xx
    /// so the provider delivers again.
    pub async fn handle_webhook(&self, request: &WebhookRequest) -> Result<WebhookHandled> {
        match self
            .inner
            .gateway
            .parse_webhook(request, self.now())
            .await?
        {
            WebhookOutcome::Event(event) => {
                match self.shop(&event.tenant).apply_payment_event(&event).await {
                    Ok(applied) => Ok(WebhookHandled::Applied(Box::new(applied))),
                    // A genuine event for an order this store does not hold
                    // (another deployment on the same provider account, say):
                    // retrying cannot help, so it is acknowledged and named.
                    Err(Error::NotFound {
                        entity: Entity::Order,
                        ..
                    }) => Ok(WebhookHandled::UnknownOrder {
                        event: event.id,
                        tenant: event.tenant,
                        order: event.order,
                    }),
                    Err(other) => Err(other),
                }
            }
            WebhookOutcome::Ignored { event_type } => Ok(WebhookHandled::Ignored { event_type }),
        }
    }

    fn expiry(&self, now: Timestamp, after: TimeDelta) -> Result<Timestamp> {
        now.checked_add_signed(after)
            .ok_or_else(|| Error::InvalidConfig("expiry past the largest instant".into()))
    }
}

/// What a checkout asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Makes the checkout idempotent: a repeat returns the same order.
    pub idempotency_key: IdempotencyKey,
    /// The grand total the buyer was shown; when set and the price is now
    /// different, checkout is refused with [`Error::PriceChanged`].
    pub expected_total: Option<crate::money::Money>,
}

impl CheckoutRequest {
    /// A request with `key` and no expected total.
    pub fn new(key: IdempotencyKey) -> Self {
        Self {
            idempotency_key: key,
            expected_total: None,
        }
    }

    /// Refuse the checkout unless the grand total is still `total`.
    pub fn expecting_total(mut self, total: crate::money::Money) -> Self {
        self.expected_total = Some(total);
        self
    }
}

/// The result of a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The order, awaiting payment (or further along, on a repeated checkout).
    pub order: Order,
    /// Where to send the buyer to pay, while the order awaits payment.
    pub session: Option<PaymentSession>,
    /// `false` when an earlier checkout with the same idempotency key made
    /// the order.
    pub created: bool,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired reservations deleted.
    pub reservations_removed: usize,
    /// Orders expired because their payment window closed unpaid.
    pub orders_expired: Vec<OrderId>,
    /// Pending refunds sent to the gateway again.
    pub refunds_retried: usize,
    /// Of those, how many the gateway confirmed.
    pub refunds_confirmed: usize,
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

    /// Creates or replaces the product `id`.
    pub async fn put_product(&self, id: ProductId, product: NewProduct) -> Result<Product> {
        let product = Product::new(id, product)?;
        self.scope.catalog().put_product(&product).await?;
        Ok(product)
    }

    /// The product `id`.
    pub async fn product(&self, id: ProductId) -> Result<Product> {
        self.scope
            .catalog()
            .product(id)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Product, id))
    }

    /// Every product, by name.
    pub async fn products(&self) -> Result<Vec<Product>> {
        self.scope.catalog().products().await
    }

    /// Full-text product search, best matches first, one page at a time.
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
            .receive(sku, quantity, note, self.now())
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
    /// count) when there is not enough, and [`Error::CurrencyMismatch`] when
    /// the SKU is priced in another currency than the cart's.
    pub async fn set_line(&self, cart: CartId, sku: &Sku, quantity: Quantity) -> Result<Cart> {
        let now = self.now();
        if !quantity.is_zero() {
            let current = self.cart(cart).await?;
            let product = self
                .scope
                .catalog()
                .product_by_sku(sku)
                .await?
                .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
            let price = product
                .variant(sku)
                .ok_or_else(|| Error::not_found(Entity::Sku, sku))?
                .price();
            if price.currency() != current.currency {
                return Err(Error::CurrencyMismatch {
                    expected: current.currency,
                    found: price.currency(),
                });
            }
        }
        let expires_at = self.commerce.expiry(now, self.commerce.inner.ttl)?;
        self.scope
            .carts()
            .set_line(cart, sku, quantity, expires_at, now)
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
        let cart = self.cart(cart).await?;
        Ok(self.price(&cart).await?.0)
    }

    /// Prices `cart`; also returns the promotions it was priced with.
    async fn price(&self, cart: &Cart) -> Result<(PricedCart, Vec<Promotion>)> {
        let settings = self.settings().await?;
        let mut input = PricingInput::new(cart.currency, settings.tax, self.now());
        input.shipping = settings.shipping_fee;
        input.discount_rounding = settings.discount_rounding;
        for line in &cart.lines {
            let product = self
                .scope
                .catalog()
                .product_by_sku(&line.sku)
                .await?
                .ok_or_else(|| Error::not_found(Entity::Sku, &line.sku))?;
            input.lines.push(PricingLine::from_product(
                &product,
                &line.sku,
                line.quantity,
            )?);
        }
        input.promotions = self.scope.promotions().promotions().await?;
        input.codes = cart.codes.clone();
        input.customer = cart.customer.clone().unwrap_or_default();
        let limited: Vec<PromotionId> = input
            .promotions
            .iter()
            .filter(|p| p.is_limited())
            .map(|p| p.id().clone())
            .collect();
        if !limited.is_empty() {
            input.usage = self
                .scope
                .promotions()
                .usage(&limited, input.customer.id.as_ref())
                .await?;
        }
        let discounted = pricing::discount(&input)?;
        let tax = self
            .commerce
            .inner
            .tax
            .calculate(&input.tax, &discounted.tax_request())
            .await?;
        Ok((discounted.finish(tax)?, input.promotions))
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

    // ----- checkout and orders -------------------------------------------

    /// Places the cart's order and opens a payment session for it:
    /// [`checkout_with`](Self::checkout_with) without an expected total.
    pub async fn checkout(&self, cart: CartId, key: &IdempotencyKey) -> Result<Checkout> {
        self.checkout_with(cart, &CheckoutRequest::new(key.clone()))
            .await
    }

    /// Places the cart's order and opens a payment session for it.
    ///
    /// The cart is priced again with the same function as the preview. The
    /// order snapshots every line's discounts and taxes and the promotions
    /// applied, and the limited promotions are redeemed in the same atomic
    /// step as the order is placed.
    ///
    /// Idempotent on the request's key: a repeated checkout (sequential or
    /// concurrent) returns the same order with `created = false`, and
    /// creates its payment session if an earlier attempt could not.
    ///
    /// Refused with
    /// - [`Error::AgeVerificationRequired`] when an age-restricted item is in
    ///   the cart and no verification is recorded;
    /// - [`Error::PriceChanged`] when the request carries the total the buyer
    ///   was shown and the price is now different;
    /// - [`Error::PromotionExhausted`] when a limited promotion the price
    ///   relies on was used up meanwhile, or a coupon code entered on the
    ///   cart can no longer be redeemed (nothing is placed or charged: the
    ///   buyer removes the code or accepts the new price);
    /// - [`Error::ReservationLapsed`] when a line's reservation expired
    ///   ([`renew_reservations`](Self::renew_reservations) first);
    /// - [`Error::EmptyCart`], [`Error::CartCheckedOut`],
    ///   [`Error::IdempotencyKeyReused`].
    pub async fn checkout_with(&self, cart: CartId, request: &CheckoutRequest) -> Result<Checkout> {
        let key = &request.idempotency_key;
        if let Some(order) = self.scope.orders().order_by_idempotency_key(key).await? {
            if order.cart != cart {
                return Err(Error::IdempotencyKeyReused {
                    key: key.clone(),
                    order: order.id,
                });
            }
            return self.open_session(order, false).await;
        }
        let current = self.cart(cart).await?;
        if let CartStatus::CheckedOut { order } = current.status {
            // A concurrent checkout with the same key may have just placed it.
            let placed = self.scope.orders().order(order).await?;
            if let Some(placed) = placed.filter(|o| &o.idempotency_key == key) {
                return self.open_session(placed, false).await;
            }
            return Err(Error::CartCheckedOut { cart, order });
        }
        if current.lines.is_empty() {
            return Err(Error::EmptyCart(cart));
        }
        let (priced, promotions) = self.price(&current).await?;
        let restricted: Vec<Sku> = priced
            .lines
            .iter()
            .filter(|line| line.age_restricted)
            .map(|line| line.sku.clone())
            .collect();
        if !restricted.is_empty() && current.age_verification.is_none() {
            return Err(Error::AgeVerificationRequired { skus: restricted });
        }
        // A coupon the buyer entered that can no longer be redeemed is a
        // refusal, not a silent full price.
        for report in &priced.promotions {
            let per_customer = match report.outcome {
                PromotionOutcome::NotApplied(NotApplied::UsageExhausted { .. }) => false,
                PromotionOutcome::NotApplied(NotApplied::CustomerLimitReached { .. }) => true,
                _ => continue,
            };
            let entered = promotions
                .iter()
                .filter(|p| p.id() == &report.promotion)
                .flat_map(|p| p.conditions())
                .any(|c| matches!(c, Condition::Coupon { code } if current.codes.contains(code)));
            if entered {
                return Err(Error::PromotionExhausted {
                    promotion: report.promotion.clone(),
                    per_customer,
                });
            }
        }
        if let Some(expected) = request.expected_total
            && expected != priced.totals.grand_total
        {
            return Err(Error::PriceChanged {
                expected,
                actual: priced.totals.grand_total,
            });
        }
        let customer = current.customer.as_ref().and_then(|c| c.id.clone());
        let redemptions = priced
            .applied_promotions()
            .filter(|report| report.limited)
            .filter_map(|report| promotions.iter().find(|p| p.id() == &report.promotion))
            .map(|promotion| Redemption {
                promotion: promotion.id().clone(),
                customer: customer.clone(),
                usage_limit: promotion.usage_limit(),
                per_customer_limit: promotion.per_customer_limit(),
            })
            .collect();
        let now = self.now();
        let draft = OrderDraft {
            id: OrderId::new(),
            tenant: self.tenant().clone(),
            cart,
            idempotency_key: key.clone(),
            customer,
            priced,
            redemptions,
            payment_expires_at: self.commerce.expiry(now, self.commerce.inner.window)?,
        };
        let placement = self.scope.orders().place_order(&draft, now).await?;
        self.open_session(placement.order, placement.created).await
    }

    async fn open_session(&self, order: Order, created: bool) -> Result<Checkout> {
        if order.status != OrderStatus::AwaitingPayment {
            return Ok(Checkout {
                order,
                session: None,
                created,
            });
        }
        if let Some(session) = order.payment_session.clone() {
            return Ok(Checkout {
                session: Some(session),
                order,
                created,
            });
        }
        let session = self
            .commerce
            .inner
            .gateway
            .create_session(&order, self.now())
            .await?;
        let order = self
            .scope
            .orders()
            .attach_payment_session(order.id, &session, self.now())
            .await?;
        Ok(Checkout {
            order,
            session: Some(session),
            created,
        })
    }

    /// The order `id`.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.scope
            .orders()
            .order(id)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, id))
    }

    /// The audit log of order `id`, oldest first.
    pub async fn order_events(&self, id: OrderId) -> Result<Vec<OrderEvent>> {
        self.order(id).await?;
        self.scope.orders().events(id).await
    }

    /// Cancels an unpaid order and releases its stock.
    pub async fn cancel_order(&self, id: OrderId, reason: impl Into<String>) -> Result<Order> {
        let action = OrderAction::Cancel {
            reason: reason.into(),
        };
        self.scope.orders().act(id, &action, self.now()).await
    }

    /// Marks a paid order handed over.
    pub async fn fulfil_order(&self, id: OrderId) -> Result<Order> {
        self.scope
            .orders()
            .act(id, &OrderAction::Fulfil, self.now())
            .await
    }

    /// Refunds what is left of a paid or fulfilled order's payment (all of
    /// it, less any partial refund the provider reported) through the
    /// gateway. The
    /// order is refunded at once; if the gateway fails, the refund stays
    /// pending and [`sweep`](Self::sweep) retries it with the same key.
    pub async fn refund_order(&self, id: OrderId) -> Result<Refund> {
        let refund = self
            .scope
            .orders()
            .request_refund(id, RefundId::new_random(), self.now())
            .await?;
        self.send_refund(&refund).await
    }

    async fn send_refund(&self, refund: &Refund) -> Result<Refund> {
        let result = self
            .commerce
            .inner
            .gateway
            .refund(refund)
            .await
            .map_err(|e| e.to_string());
        self.scope
            .orders()
            .record_refund_result(&refund.id, result, self.now())
            .await
    }

    // ----- payments ------------------------------------------------------

    /// Applies a payment event exactly once (see
    /// [`OrderStore::apply_payment_event`](crate::OrderStore::apply_payment_event)).
    /// When it leads to a refund, the refund is sent to the gateway here,
    /// once: only the delivery that applied the event sends it, and the
    /// outcome carries the refund as it stands after sending. A gateway
    /// failure leaves the refund pending for [`sweep`](Self::sweep).
    pub async fn apply_payment_event(&self, event: &PaymentEvent) -> Result<PaymentApplication> {
        if &event.tenant != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: self.tenant().clone(),
                found: event.tenant.clone(),
            });
        }
        let mut applied = self
            .scope
            .orders()
            .apply_payment_event(event, self.now())
            .await?;
        if let Some(refund) = applied.outcome.refund_mut() {
            *refund = self.send_refund(refund).await?;
        }
        Ok(applied)
    }

    // ----- sweeping ------------------------------------------------------

    /// Housekeeping, safe to run beside traffic: deletes expired
    /// reservations, expires orders whose payment window closed, and sends
    /// pending refunds again. Each step handles at most the configured
    /// batch; call again while it reports work.
    pub async fn sweep(&self) -> Result<SweepReport> {
        let now = self.now();
        let batch = self.commerce.inner.config.sweep_batch;
        let reservations_removed = self
            .scope
            .inventory()
            .sweep_reservations(now, batch)
            .await?;
        let orders_expired = self.scope.orders().expire_unpaid(now, batch).await?;
        let mut report = SweepReport {
            reservations_removed,
            orders_expired,
            ..SweepReport::default()
        };
        for refund in self.scope.orders().pending_refunds(batch).await? {
            report.refunds_retried += 1;
            let after = self.send_refund(&refund).await?;
            if after.status != crate::order::RefundStatus::Pending {
                report.refunds_confirmed += 1;
            }
        }
        Ok(report)
    }
}
