//! The in-memory store: a real implementation of every store trait, correct
//! under concurrency, and the embedded default.
//!
//! Each tenant's data sits behind its own read-write lock (sharded: a
//! reader takes its thread's shard, a writer every shard, so the readers
//! of two cores share no lock word), and each of its carts and SKUs behind
//! a mutex of its own. Most operations take the
//! tenant's lock for writing once, check everything, then write; they never
//! await while holding it. The hot path (setting a cart line, which
//! reserves stock) and the reads of one cart or one SKU take the tenant's
//! lock for reading and then the mutexes of the one cart and the one SKU
//! they touch, always the cart's before the SKU's. So each operation is
//! atomic and operations of one tenant are serializable (two of them that
//! can run at once touch different carts and SKUs, or only read), while
//! reservations of different SKUs run in parallel and tenants never contend
//! with each other.

mod api_keys;
mod carts;
mod catalog;
mod effects;
mod holds;
mod inventory;
mod orders;
mod promotions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};
use parking_lot::{Mutex, MutexGuard};

use self::holds::{Allocations, Reservations};

use crate::cart::{Cart, CartUpdate};
use crate::catalog::{Page, Product, ProductPage, ProductQuery, search_terms, searchable_words};
use crate::clock::Timestamp;
use crate::error::{BackendError, BackendErrorKind, Entity, Error, Result};
use crate::ids::{
    CartId, CustomerId, IdempotencyKey, OrderId, PaymentEventId, ProductId, PromotionId, Quantity,
    RefundId, Sku, TenantId,
};
use crate::inventory::{AdjustmentKind, Allocation, Reservation, StockAdjustment, StockLevel};
use crate::order::{FeedPosition, Order, OrderEvent, OrderStatus, PendingEvent, Refund};
use crate::promotion::{Promotion, PromotionUsage};
use crate::settings::ShopSettings;
use crate::store::{
    CartStore, CatalogStore, InventoryStore, PromotionStore, Scope, SettingsStore, Store,
};

/// The in-memory store. Cheap to clone; clones share the data.
///
/// ```
/// use commerce_core::{InMemoryStore, Store, TenantId};
/// let store = InMemoryStore::new();
/// let scope = store.scope(&TenantId::parse("gpu-exchange")?);
/// assert_eq!(scope.tenant().as_str(), "gpu-exchange");
/// # Ok::<(), commerce_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    tenants: Arc<Mutex<HashMap<TenantId, Arc<TenantStores>>>>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl Store for InMemoryStore {
    async fn tenants_with_work(
        &self,
        now: Timestamp,
        after: Option<&TenantId>,
        limit: usize,
    ) -> Result<Vec<TenantId>> {
        let mut tenants: Vec<(TenantId, Arc<TenantStores>)> = self
            .tenants
            .lock()
            .iter()
            .filter(|(id, _)| after.is_none_or(|after| *id > after))
            .map(|(id, stores)| (id.clone(), stores.clone()))
            .collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(tenants
            .into_iter()
            .filter(|(_, stores)| stores.read().has_work(now))
            .take(limit)
            .map(|(id, _)| id)
            .collect())
    }

    fn scope(&self, tenant: &TenantId) -> Scope {
        let stores = self
            .tenants
            .lock()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantStores::new(tenant.clone())))
            .clone();
        Scope::new(tenant.clone(), stores)
    }
}

/// The hash maps of the hot path: foldhash, seeded per process, instead of
/// SipHash (a few times faster on short keys, still seeded against chosen
/// collisions).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What setting a cart line needs to know of a SKU's product, kept beside
/// the catalog so the hot path reads it with one lookup.
#[derive(Debug, Clone, Copy)]
struct SkuOffer {
    product: ProductId,
    currency: crate::money::Currency,
    published: bool,
}

/// One SKU: what setting a line needs of its product (changed under the
/// tenant's write lock only), and its stock.
#[derive(Debug, Default)]
struct SkuEntry {
    /// `None` once no product has the SKU (its stock stays).
    offer: Option<SkuOffer>,
    stock: Cell<SkuStock>,
}

impl SkuEntry {
    fn lock(&self) -> MutexGuard<'_, SkuStock> {
        self.stock.lock()
    }

    fn get_mut(&mut self) -> &mut SkuStock {
        self.stock.get_mut()
    }
}

/// How many times a lock is tried before the thread parks.
const SPIN_TRIES: u32 = 200;
/// The spin-loop hints between two tries (a few nanoseconds each).
const SPIN_PAUSES: u32 = 32;

/// Takes a lock with `try_lock`, spinning for up to about 20 µs before
/// `lock` parks the thread.
///
/// Every operation holds its locks for a microsecond or two and never
/// awaits under them. When one is taken, waiting by spinning for a while is
/// far cheaper than parking the thread: on a small machine a parked worker
/// thread takes from tens of microseconds to milliseconds to run again, and
/// with two cores contending for one hot SKU parking made reservations 30
/// times slower than spinning. After about 20 µs of spinning (the holder
/// was descheduled, say) it parks as usual.
fn spin<G>(try_lock: impl Fn() -> Option<G>, lock: impl FnOnce() -> G) -> G {
    for _ in 0..SPIN_TRIES {
        if let Some(guard) = try_lock() {
            return guard;
        }
        for _ in 0..SPIN_PAUSES {
            std::hint::spin_loop();
        }
    }
    lock()
}

/// One cart or one SKU: locked alone, under the tenant's read lock, by the
/// operations that touch only it; reached with [`get_mut`](Self::get_mut)
/// under the tenant's write lock by the others.
#[derive(Debug, Default)]
struct Cell<T>(Mutex<T>);

impl<T> Cell<T> {
    fn new(value: T) -> Self {
        Self(Mutex::new(value))
    }

    /// The value, locked (uncontended under the tenant's write lock).
    fn lock(&self) -> MutexGuard<'_, T> {
        spin(|| self.0.try_lock(), || self.0.lock())
    }

    /// The value, for the holder of the tenant's write lock.
    fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

/// One tenant's data and the stores over it.
///
/// The data sits behind a sharded read-write lock: a reader takes the
/// shard of its thread, a writer every shard. Readers on different threads
/// (the hot path, every reservation) so write no shared cache line, where
/// one lock word written by every reader of every core cost the hot path
/// a cross-core transfer per lock and unlock.
#[derive(Debug)]
struct TenantStores {
    tenant: TenantId,
    data: ShardedLock<TenantData>,
}

impl TenantStores {
    fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            data: ShardedLock::new(TenantData::default()),
        }
    }

    /// The tenant's data, locked for writing: nothing else of the tenant
    /// runs meanwhile. A poisoned lock is taken as it is, as the
    /// `parking_lot` lock used before never poisoned: the store checks
    /// every write before it changes anything.
    fn lock(&self) -> ShardedLockWriteGuard<'_, TenantData> {
        spin(
            || self.data.try_write().ok(),
            || self.data.write().unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The tenant's data, locked for reading: the maps do not change
    /// meanwhile; a cart or a SKU changes only under its own mutex.
    fn read(&self) -> ShardedLockReadGuard<'_, TenantData> {
        spin(
            || self.data.try_read().ok(),
            || self.data.read().unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Refuses a value of another tenant.
    fn check_tenant(&self, found: &TenantId) -> Result<()> {
        if found == &self.tenant {
            Ok(())
        } else {
            Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: found.clone(),
            })
        }
    }
}

#[derive(Debug, Default)]
struct SkuStock {
    on_hand: u32,
    receipts: std::collections::HashSet<IdempotencyKey>,
    adjustments: Vec<StockAdjustment>,
    reservations: Reservations,
    allocations: Allocations,
}

impl SkuStock {
    /// Units held at `now` by live reservations of carts other than
    /// `except_cart` and live allocations of orders other than `except_order`:
    /// running totals, whatever the number of holds.
    fn held(
        &self,
        now: Timestamp,
        except_cart: Option<CartId>,
        except_order: Option<OrderId>,
    ) -> u64 {
        self.reservations
            .live(now, except_cart)
            .saturating_add(self.allocations.live(now, except_order))
    }

    fn available(
        &self,
        now: Timestamp,
        except_cart: Option<CartId>,
        except_order: Option<OrderId>,
    ) -> u32 {
        let free =
            u64::from(self.on_hand).saturating_sub(self.held(now, except_cart, except_order));
        u32::try_from(free).unwrap_or(u32::MAX)
    }

    /// Counts the holds expired by `now` out of the running totals, so
    /// later reads at or after `now` skip them.
    fn advance(&mut self, now: Timestamp) {
        self.reservations.advance(now);
        self.allocations.advance(now);
    }

    /// The earliest expiry among the live reservations and allocations at
    /// `now`.
    fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        let reservation = self.reservations.next_release(now);
        let allocation = self.allocations.next_release(now);
        reservation.into_iter().chain(allocation).min()
    }

    fn level(&self, sku: &Sku, now: Timestamp) -> StockLevel {
        let units = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        StockLevel {
            sku: sku.clone(),
            on_hand: self.on_hand,
            reserved: units(self.reservations.live(now, None)),
            allocated: units(self.allocations.live(now, None)),
        }
    }
}

#[derive(Debug, Default)]
struct TenantData {
    products: BTreeMap<ProductId, Product>,
    /// Every SKU ever put in the catalog: its stock, and what the hot path
    /// needs of its product while it has one.
    stock: Map<Sku, SkuEntry>,
    /// Boxed: the map moves 8 bytes per cart when it grows, not the cart.
    carts: Map<CartId, Box<Cell<Cart>>>,
    orders: HashMap<OrderId, Order>,
    events: HashMap<OrderId, Vec<OrderEvent>>,
    keys: HashMap<IdempotencyKey, OrderId>,
    claimed_events: HashMap<PaymentEventId, OrderId>,
    refunds: Vec<Refund>,
    promotions: BTreeMap<PromotionId, Promotion>,
    usage: HashMap<PromotionId, UsageCounts>,
    settings: Option<ShopSettings>,
    api_keys: BTreeMap<String, crate::api_key::ApiKeyRecord>,
    /// The feed: (position, order, seq) of every event, in position order.
    feed: Vec<(FeedPosition, OrderId, u32)>,
    /// Changes that appended events, counted: the feed's commit order.
    commits: u64,
}

#[derive(Debug, Default)]
struct UsageCounts {
    total: u32,
    by_customer: HashMap<CustomerId, u32>,
}

impl TenantData {
    fn stock_mut(&mut self, sku: &Sku) -> Result<&mut SkuStock> {
        self.stock
            .get_mut(sku)
            .map(SkuEntry::get_mut)
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))
    }

    /// The stock of `sku`, locked (for a holder of the tenant's read lock).
    fn stock(&self, sku: &Sku) -> Result<MutexGuard<'_, SkuStock>> {
        self.stock
            .get(sku)
            .map(SkuEntry::lock)
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))
    }

    fn order(&self, id: OrderId) -> Result<&Order> {
        self.orders
            .get(&id)
            .ok_or_else(|| Error::not_found(Entity::Order, id))
    }

    /// Appends `events` to the log of `order` and to the tenant's feed, as
    /// one commit: under the tenant's lock, so positions follow the order
    /// in which changes happen and a reader never sees a gap.
    fn append(&mut self, order: OrderId, events: Vec<PendingEvent>) {
        if events.is_empty() {
            return;
        }
        self.commits = self.commits.saturating_add(1);
        let log = self.events.entry(order).or_default();
        for event in events {
            let seq = u32::try_from(log.len())
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            log.push(event.into_event(order, seq));
            let index = u64::try_from(self.feed.len())
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            self.feed
                .push((FeedPosition::new(self.commits, index), order, seq));
        }
    }

    /// Whether the sweep has something to do at `now`.
    fn has_work(&self, now: Timestamp) -> bool {
        self.stock
            .values()
            .any(|s| s.lock().reservations.any_expired(now))
            || self
                .orders
                .values()
                .any(|o| o.status() == OrderStatus::AwaitingPayment && o.payment_expires_at <= now)
            || self.refunds.iter().any(Refund::is_pending)
    }

    fn release_allocations(&mut self, order: &Order) {
        for line in &order.lines {
            if let Some(stock) = self.stock.get_mut(&line.sku).map(SkuEntry::get_mut) {
                stock.allocations.remove(&order.id);
            }
        }
    }

    fn refund_mut(&mut self, id: &RefundId) -> Result<&mut Refund> {
        self.refunds
            .iter_mut()
            .find(|r| &r.id == id)
            .ok_or_else(|| Error::not_found(Entity::Refund, id))
    }

    /// Stores `order` and appends its events, in order.
    fn commit_order(&mut self, order: Order, events: Vec<PendingEvent>) {
        let id = order.id;
        self.orders.insert(id, order);
        self.append(id, events);
    }
}
