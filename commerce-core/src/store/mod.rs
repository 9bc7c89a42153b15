//! The store contract: object-safe async traits split by aggregate, each
//! bound to one tenant.
//!
//! This is the store-author API; an embedder needs only [`Store`] (to pick
//! a backend) from it. A [`Store`] hands out a [`Scope`]: the seven aggregate
//! stores of one tenant, implemented together as one [`TenantStore`].
//! Every operation of a scope sees and changes only that tenant's data, so
//! a database adapter can pin the tenant once per transaction (in
//! PostgreSQL, with row-level security).
//!
//! Stores persist and enforce the atomic invariants; the decisions (the
//! order pipeline: [`place`], [`decide`], [`decide_payment`] and
//! [`settle_payment`], whose [`OrderEffect`]s each store carries out;
//! pricing) are plain functions of this crate that every store calls. No
//! store reads the clock: every operation that depends on time takes `now`.
//!
//! A new store proves itself by passing the conformance kit (feature
//! `testkit`).

mod orders;

use std::sync::Arc;

use async_trait::async_trait;

use std::collections::HashMap;

use crate::api_key::ApiKeyRecord;
use crate::cart::{Cart, CartLimits, CartUpdate};
use crate::catalog::{Page, Product, ProductPage, ProductQuery};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{
    CartId, CustomerId, IdempotencyKey, OrderId, ProductId, PromotionId, Quantity, Sku, TenantId,
};
use crate::inventory::{Allocation, Reservation, StockAdjustment, StockLevel};
use crate::promotion::{Promotion, PromotionUsage};
use crate::settings::ShopSettings;

pub use orders::{ChangedOrder, OrderCursor, OrderFilter, OrderStore, Placement};

pub use crate::order::{
    OrderChange, OrderEffect, PaymentDecision, PaymentSettlement, PendingEvent, check_redemption,
    decide, decide_payment, place, settle_payment,
};

/// A backend that holds many tenants' data.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The stores of `tenant`. Cheap; call it per request.
    fn scope(&self, tenant: &TenantId) -> Scope;

    /// The tenants that have sweeping to do at `now`, by id, at most
    /// `limit`, after `after` (the last tenant of the previous page): those
    /// holding a reservation that expired at or before `now`, an order
    /// awaiting payment whose window closed at or before `now`, or a
    /// pending refund. Each tenant once.
    ///
    /// # Behavior
    ///
    /// A read across tenants, safe beside traffic; it lists ids only and
    /// changes nothing (each tenant is then swept through its own
    /// [`Scope`]). `limit` 0 returns nothing. A tenant with nothing to do
    /// is not listed. PostgreSQL lists them with one function owned by the
    /// migrating role, so the application role's row-level security stays
    /// as it is.
    async fn tenants_with_work(
        &self,
        now: Timestamp,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantId>>;
}

/// A shared, type-erased store.
pub type DynStore = dyn Store;

/// One tenant's aggregate stores as one value: the supertrait every
/// backend implements (a blanket implementation covers any type that
/// implements the seven stores and [`PricingStore`], whose one method has a
/// default), so the aggregates of a tenant share one backend and
/// one transaction domain by type.
pub trait TenantStore:
    CatalogStore
    + InventoryStore
    + CartStore
    + OrderStore
    + PromotionStore
    + SettingsStore
    + ApiKeyStore
    + PricingStore
{
}

impl<T> TenantStore for T where
    T: CatalogStore
        + InventoryStore
        + CartStore
        + OrderStore
        + PromotionStore
        + SettingsStore
        + ApiKeyStore
        + PricingStore
{
}

/// One tenant's aggregate stores. Every operation through it is confined to
/// [`Scope::tenant`].
#[derive(Clone)]
pub struct Scope {
    tenant: TenantId,
    stores: Arc<dyn TenantStore>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Scope {
    /// A scope for `tenant` over `stores`, which must be bound to `tenant`.
    pub fn new(tenant: TenantId, stores: Arc<dyn TenantStore>) -> Self {
        Self { tenant, stores }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The catalog.
    pub fn catalog(&self) -> &dyn CatalogStore {
        self.stores.as_ref()
    }

    /// Stock, reservations and allocations.
    pub fn inventory(&self) -> &dyn InventoryStore {
        self.stores.as_ref()
    }

    /// Carts.
    pub fn carts(&self) -> &dyn CartStore {
        self.stores.as_ref()
    }

    /// Orders, payments and refunds.
    pub fn orders(&self) -> &dyn OrderStore {
        self.stores.as_ref()
    }

    /// Promotions and their usage.
    pub fn promotions(&self) -> &dyn PromotionStore {
        self.stores.as_ref()
    }

    /// The shop's settings.
    pub fn settings(&self) -> &dyn SettingsStore {
        self.stores.as_ref()
    }

    /// The admin API keys.
    pub fn api_keys(&self) -> &dyn ApiKeyStore {
        self.stores.as_ref()
    }

    /// What pricing a cart reads, in one read.
    pub fn pricing(&self) -> &dyn PricingStore {
        self.stores.as_ref()
    }
}

/// What pricing a cart reads: the cart, the shop's settings, the product of
/// each line, the promotions, and the usage of the limited ones.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PricingRead {
    /// The cart.
    pub cart: Cart,
    /// The settings, if any were stored.
    pub settings: Option<ShopSettings>,
    /// The product of each line's SKU, in line order (`None` where no
    /// product has it), as [`CatalogStore::products_by_skus`] answers.
    pub products: Vec<Option<Product>>,
    /// Every promotion, as [`PromotionStore::promotions`] answers.
    pub promotions: Vec<Promotion>,
    /// The usage of the limited promotions
    /// ([`Promotion::is_limited`]), for the cart's customer, as
    /// [`PromotionStore::usage`] answers (empty when none is limited).
    pub usage: HashMap<PromotionId, PromotionUsage>,
}

impl PricingRead {
    /// A read from its parts.
    pub fn new(
        cart: Cart,
        settings: Option<ShopSettings>,
        products: Vec<Option<Product>>,
        promotions: Vec<Promotion>,
        usage: HashMap<PromotionId, PromotionUsage>,
    ) -> Self {
        Self {
            cart,
            settings,
            products,
            promotions,
            usage,
        }
    }
}

/// Everything pricing a cart reads, in one read.
///
/// Pricing (a preview or a checkout) needs the cart, the settings, the
/// products of its lines, the promotions and their usage. The default reads
/// them one after the other through the other stores, which is correct for
/// any backend; a backend that can answer from one snapshot in one round
/// trip (PostgreSQL does, with one function call) overrides it. A backend
/// that keeps the default implements it with an empty block
/// (`impl PricingStore for MyTenantStore {}`), as the in-memory store does.
#[async_trait]
pub trait PricingStore: CartStore + CatalogStore + PromotionStore + SettingsStore {
    /// What pricing `cart` reads; `None` when there is no such cart.
    ///
    /// # Behavior
    ///
    /// A read: it changes nothing and takes no lock a writer waits on. Each
    /// part answers as the store's own read of it would (the conformance
    /// kit compares them); a store that answers from one snapshot should.
    async fn pricing_read(&self, cart: CartId) -> Result<Option<PricingRead>> {
        let Some(cart) = CartStore::cart(self, cart).await? else {
            return Ok(None);
        };
        let settings = SettingsStore::settings(self).await?;
        let skus: Vec<Sku> = cart.lines.iter().map(|line| line.sku.clone()).collect();
        let products = self.products_by_skus(&skus).await?;
        let promotions = PromotionStore::promotions(self).await?;
        let limited: Vec<PromotionId> = promotions
            .iter()
            .filter(|p| p.is_limited())
            .map(|p| p.id().clone())
            .collect();
        let usage = if limited.is_empty() {
            HashMap::new()
        } else {
            let customer = cart.customer.as_ref().and_then(|c| c.id.as_ref());
            self.usage(&limited, customer).await?
        };
        Ok(Some(PricingRead::new(
            cart, settings, products, promotions, usage,
        )))
    }
}

/// Products and their SKUs.
#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Inserts `product`, or replaces the product with the same id.
    ///
    /// # Behavior
    ///
    /// Atomic. A SKU of `product` that belongs to another product of this
    /// tenant is refused with [`Error::SkuTaken`](crate::Error::SkuTaken) and
    /// nothing is written. Every SKU of the product gets a stock record (zero
    /// on hand) if it has none. SKUs a replaced product no longer has keep
    /// their stock records and history but can no longer be added to carts.
    /// The product's published flag is stored as given.
    ///
    /// Safe beside traffic: it waits only for changes to the same product or
    /// its SKUs.
    async fn put_product(&self, product: &Product) -> Result<()>;

    /// Publishes or unpublishes the product `id`, and returns it; `None`
    /// when there is no such product.
    ///
    /// # Behavior
    ///
    /// Atomic and idempotent; only the product's published flag changes
    /// ([`Product::set_published`]). While a product is unpublished,
    /// [`search`](Self::search) and [`products_page`](Self::products_page)
    /// without `include_unpublished` leave it out and
    /// [`CartStore::set_line`] refuses to hold its SKUs; lines carts hold
    /// already keep their reservations.
    ///
    /// Safe beside traffic: it waits only for changes to the same product.
    async fn set_published(&self, id: ProductId, published: bool) -> Result<Option<Product>>;

    /// The product with `id`, if any, published or not.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. A product of another tenant is `None`. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn product(&self, id: ProductId) -> Result<Option<Product>>;

    /// The product that has a variant with `sku`, if any, published or not.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. A SKU no product of this tenant has is `None`. Its only
    /// errors are backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>>;

    /// The products of `skus`, one entry per SKU in the order given: the
    /// product that has a variant with that SKU, published or not, or
    /// `None` (a SKU given twice is answered twice). Pricing a cart reads
    /// its lines' products with this: one read whatever the number of
    /// lines.
    ///
    /// # Behavior
    ///
    /// A read, as [`product_by_sku`](Self::product_by_sku), of one
    /// committed state for every SKU. The default asks `product_by_sku`
    /// for each SKU in turn (so each answer is committed, not all from one
    /// state); a store overrides it with one read.
    async fn products_by_skus(&self, skus: &[Sku]) -> Result<Vec<Option<Product>>> {
        let mut products = Vec::with_capacity(skus.len());
        for sku in skus {
            products.push(self.product_by_sku(sku).await?);
        }
        Ok(products)
    }

    /// One page of the products `query` admits (unpublished ones only with
    /// `include_unpublished`), in ascending id order, starting after
    /// `query.after`, at most [`query.page_size()`](ProductQuery::page_size)
    /// of them; [`ProductPage::from_probe`] builds the page from one more.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Keyset pagination:
    /// following `next` from the first page visits every product that
    /// exists throughout exactly once, in order, whatever the page size; a
    /// product added while a client pages appears if its id sorts after
    /// the cursor. The cursor need not name an existing product. Its only
    /// errors are backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn products_page(&self, query: &ProductQuery) -> Result<ProductPage>;

    /// Full-text search: the products matching every word of `query` (see
    /// [`search_terms`](crate::catalog::search_terms)) as a prefix of a word
    /// of their name, category or SKUs, best matches first (ties by name,
    /// then id), one page at a time. A query with no words matches nothing.
    /// Unpublished products never match: search is the storefront's.
    ///
    /// # Behavior
    ///
    /// No stemming: brand names match as written (`"geforce"`, not
    /// `"geforc"`). Ranking may differ between stores; membership and
    /// pagination may not.
    async fn search(&self, query: &str, page: Page) -> Result<Vec<Product>>;
}

/// On-hand stock, reservations and allocations.
#[async_trait]
pub trait InventoryStore: Send + Sync + 'static {
    /// Adds `quantity` to the on-hand count of `sku` and records a
    /// [`Received`](crate::AdjustmentKind::Received) adjustment.
    ///
    /// # Behavior
    ///
    /// Atomic. An unknown SKU is [`Error::NotFound`](crate::Error::NotFound);
    /// an on-hand count past [`Quantity::MAX`] is
    /// [`Error::StockOverflow`](crate::Error::StockOverflow).
    ///
    /// Safe beside traffic: it waits only for changes to the same SKU.
    /// Without a `reference` each call adds. With one, the receipt counts
    /// once per SKU and reference: a repeat (sequential or concurrent)
    /// changes nothing and returns the stock position, so a caller can
    /// retry a receipt whose answer it lost.
    async fn receive(
        &self,
        sku: &Sku,
        quantity: Quantity,
        reference: Option<&IdempotencyKey>,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel>;

    /// Sets the on-hand count of `sku` to `on_hand` (a stock count) and
    /// records a [`Corrected`](crate::AdjustmentKind::Corrected) adjustment.
    ///
    /// # Behavior
    ///
    /// Atomic. A count below the units held by live reservations and
    /// allocations is refused with
    /// [`Error::StockBelowHeld`](crate::Error::StockBelowHeld): cancel or let
    /// the holds lapse first. An unknown SKU is `NotFound`.
    ///
    /// Safe beside traffic: it waits only for changes to the same SKU.
    /// Idempotent: the same count again records another adjustment but leaves
    /// the count as it was.
    async fn correct(
        &self,
        sku: &Sku,
        on_hand: Quantity,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel>;

    /// The stock position of `sku` at `now`: expired holds do not count.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. Holds expiring at or before `now` do not count. An unknown
    /// SKU is [`Error::NotFound`](crate::Error::NotFound); otherwise its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn stock(&self, sku: &Sku, now: Timestamp) -> Result<StockLevel>;

    /// When the first unit of `sku` held at `now` may come back: the
    /// earliest `expires_at` among its live holds (the reservations of
    /// carts and the allocations of orders awaiting payment), or `None`
    /// when nothing holds it.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. Holds expiring at or before `now` do not count, as in
    /// [`stock`](Self::stock), whether or not a sweep has removed them; so the answer is
    /// always after `now`. It is the instant a hold lapses, not a promise that the unit comes
    /// back: the cart may renew its hold, or check out and turn it into an allocation, before
    /// then. An unknown SKU is [`Error::NotFound`](crate::Error::NotFound); otherwise its only
    /// errors are backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn next_release(&self, sku: &Sku, now: Timestamp) -> Result<Option<Timestamp>>;

    /// Every adjustment of `sku`, oldest first.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. An unknown SKU is
    /// [`Error::NotFound`](crate::Error::NotFound); otherwise its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn adjustments(&self, sku: &Sku) -> Result<Vec<StockAdjustment>>;

    /// The reservations of `cart`, expired ones included until swept (a
    /// store may also delete a SKU's expired reservations earlier, to make
    /// room for a new one).
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. An unknown cart has none. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn cart_reservations(&self, cart: CartId) -> Result<Vec<Reservation>>;

    /// The allocations of `order`, lapsed ones included until released.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. An unknown order has none. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn order_allocations(&self, order: OrderId) -> Result<Vec<Allocation>>;

    /// Deletes up to `limit` reservations that expired at or before `now`
    /// and returns how many it deleted.
    ///
    /// # Behavior
    ///
    /// Safe beside traffic: it never deletes a live reservation and never
    /// blocks on one being changed.
    async fn sweep_reservations(&self, now: Timestamp, limit: usize) -> Result<usize>;
}

/// Carts and their lines, each line backed by a reservation.
#[async_trait]
pub trait CartStore: Send + Sync + 'static {
    /// Inserts a new cart.
    ///
    /// # Behavior
    ///
    /// An existing cart with the same id is a conflict
    /// ([`Error::Backend`](crate::Error::Backend) of kind `Conflict`).
    ///
    /// Atomic; safe beside traffic.
    async fn insert_cart(&self, cart: &Cart) -> Result<()>;

    /// The cart with `id`, if any.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. A cart of another tenant is `None`. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn cart(&self, id: CartId) -> Result<Option<Cart>>;

    /// Applies `update` (a coupon code, the customer, an age verification,
    /// an attribute) to an open cart, with [`Cart::apply`].
    ///
    /// # Behavior
    ///
    /// Atomic. An unknown cart is `NotFound`; a checked-out cart is
    /// [`Error::CartCheckedOut`](crate::Error::CartCheckedOut)
    /// ([`Cart::ensure_open`]); [`Cart::apply`]'s refusals (an attribute
    /// past its bounds is
    /// [`Error::CartAttribute`](crate::Error::CartAttribute)) change
    /// nothing.
    ///
    /// Safe beside traffic: it waits only for changes to the same cart.
    /// Idempotent for the same update.
    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart>;

    /// Sets the line of `sku` in `cart` to `quantity`, and the cart's
    /// reservation of `sku` to the same quantity, live until `expires_at`,
    /// within `limits`.
    ///
    /// # Behavior
    ///
    /// Atomic: the line and the reservation change together or not at all.
    ///
    /// - Idempotent: setting the same quantity again reserves nothing more
    ///   (it renews the reservation's expiry).
    /// - Lowering the quantity releases the difference; zero removes the
    ///   line and the reservation.
    /// - Raising it needs `quantity ≤ on_hand − live reservations of other
    ///   carts − live allocations`; otherwise
    ///   [`Error::InsufficientStock`](crate::Error::InsufficientStock) with
    ///   that real available figure, and nothing changes. Holds whose expiry
    ///   is at or before `now` do not count.
    /// - `limits` are checked with [`CartLimits::check`] against the cart
    ///   as it stands under the same lock or transaction that writes the
    ///   line: a quantity past the units per line, or a new line in a cart
    ///   that already holds `max_lines` lines, is
    ///   [`Error::CartLimit`](crate::Error::CartLimit) and nothing changes
    ///   (no line, no hold). Changing the quantity of a line the cart holds,
    ///   or removing one, is never refused by the line count. Concurrent
    ///   calls adding distinct SKUs to a cart with `max_lines − n` lines:
    ///   exactly `n` succeed.
    /// - An unknown cart or SKU is `NotFound`, and so is a SKU of an
    ///   unpublished product when `quantity` is not zero (removing its line
    ///   stays possible); a checked-out cart is
    ///   [`Error::CartCheckedOut`](crate::Error::CartCheckedOut). A cart's
    ///   absence, then its status, then its limits are checked before the
    ///   SKU and its stock.
    /// - A SKU priced in another currency than the cart's is
    ///   [`Error::CurrencyMismatch`](crate::Error::CurrencyMismatch) when
    ///   `quantity` is not zero, checked after the SKU is found and before
    ///   its stock; nothing changes.
    /// - This is the whole of [`Shop::set_line`](crate::Shop::set_line): the
    ///   facade reads nothing first, so every check above happens here, in
    ///   one lock or one transaction.
    /// - Concurrent calls for the last units: exactly as many succeed as
    ///   there are units.
    ///
    /// Safe beside traffic: it waits only for changes to the same cart and SKU.
    async fn set_line(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart>;
}

/// Promotions and how often each has been redeemed.
#[async_trait]
pub trait PromotionStore: Send + Sync + 'static {
    /// Inserts `promotion`, or replaces the one with the same id. Placed
    /// orders keep their own snapshot; usage counts are kept.
    ///
    /// # Behavior
    ///
    /// Atomic and idempotent: putting the same promotion again changes
    /// nothing. Checkouts already priced with the old definition redeem it
    /// with the limits they were priced with (see
    /// [`Redemption`](crate::order::Redemption)). Safe beside traffic.
    async fn put_promotion(&self, promotion: &Promotion) -> Result<()>;

    /// Removes the promotion `id`; `false` if there was none. Its usage
    /// counts are kept, so putting it back does not reset its limits.
    ///
    /// # Behavior
    ///
    /// Atomic and idempotent: removing it again returns `false`. Orders
    /// placed with it keep their snapshot and their redemptions.
    ///
    /// Safe beside traffic.
    async fn remove_promotion(&self, id: &PromotionId) -> Result<bool>;

    /// The promotion `id`, if any.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>>;

    /// Every promotion, by priority then id.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn promotions(&self) -> Result<Vec<Promotion>>;

    /// How often each of `promotions` has been redeemed, in total and by
    /// `customer`. Promotions never redeemed are absent or zero.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn usage(
        &self,
        promotions: &[PromotionId],
        customer: Option<&CustomerId>,
    ) -> Result<HashMap<PromotionId, PromotionUsage>>;
}

/// The shop's settings.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// The settings, if any were stored.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn settings(&self) -> Result<Option<ShopSettings>>;

    /// Stores the settings, replacing the previous ones.
    ///
    /// # Behavior
    ///
    /// Atomic and idempotent. The facade validates settings before storing
    /// them ([`ShopSettings::validate`]); a store stores what it is given.
    /// Placed orders keep the tax and shipping they were priced with.
    ///
    /// Safe beside traffic.
    async fn put_settings(&self, settings: &ShopSettings) -> Result<()>;
}

/// A tenant's admin API keys, stored as hashes (see
/// [`api_key`](crate::api_key)).
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a newly issued key.
    ///
    /// # Behavior
    ///
    /// Atomic; safe beside traffic. A key id already stored for this
    /// tenant is a conflict ([`Error::Backend`](crate::Error::Backend) of
    /// kind `Conflict`) and nothing changes. A record of another tenant is
    /// [`Error::TenantMismatch`](crate::Error::TenantMismatch).
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;

    /// The key with `id`, revoked or not.
    ///
    /// # Behavior
    ///
    /// A read, safe beside traffic. A key of another tenant is `None`.
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;

    /// Every key of the tenant, revoked ones included, oldest first (then
    /// by id).
    ///
    /// # Behavior
    ///
    /// A read, safe beside traffic.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>>;

    /// Revokes the key `id` at `now`; `false` if there is none or it was
    /// revoked already.
    ///
    /// # Behavior
    ///
    /// Atomic and idempotent; safe beside traffic. A revoked key never
    /// becomes active again.
    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<bool>;

    /// Records that the key `id` was used at `now` (a later time only:
    /// concurrent uses never move it back).
    ///
    /// # Behavior
    ///
    /// Atomic; safe beside traffic; an unknown id changes nothing.
    async fn touch_api_key(&self, id: &str, now: Timestamp) -> Result<()>;
}
