//! The in-memory store: a real implementation of every store trait, correct
//! under concurrency, and the embedded default.
//!
//! Each tenant's data sits behind its own mutex. Every operation takes that
//! lock once, checks everything, then writes; it never awaits while holding
//! it. So each operation is atomic and operations of one tenant are
//! serializable, while tenants never contend with each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::cart::{Cart, CartStatus, CartUpdate};
use crate::catalog::{Page, Product, search_terms, searchable_words};
use crate::clock::Timestamp;
use crate::error::{BackendError, BackendErrorKind, Entity, Error, Result};
use crate::ids::{
    CartId, CustomerId, IdempotencyKey, OrderId, PaymentEventId, ProductId, PromotionId, Quantity,
    RefundId, Sku, TenantId,
};
use crate::inventory::{AdjustmentKind, Allocation, Reservation, StockAdjustment, StockLevel};
use crate::order::{
    Order, OrderAction, OrderDraft, OrderEvent, OrderEventKind, OrderStatus, PaymentApplication,
    PaymentDecision, PaymentEffect, PaymentOutcome, PendingEvent, Refund, RefundReason,
    RefundStatus, check_placement, decide_payment, settle_payment,
};
use crate::payment::{PaymentEvent, PaymentSession, RefundReceipt};
use crate::promotion::{Promotion, PromotionUsage};
use crate::settings::ShopSettings;
use crate::store::{
    CartStore, CatalogStore, InventoryStore, OrderStore, Placement, PromotionStore, Scope,
    SettingsStore, Store,
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

impl Store for InMemoryStore {
    fn scope(&self, tenant: &TenantId) -> Scope {
        let stores = self
            .tenants
            .lock()
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantStores::new(tenant.clone())))
            .clone();
        Scope::from_one(tenant.clone(), stores)
    }
}

/// One tenant's data and the stores over it.
#[derive(Debug)]
struct TenantStores {
    tenant: TenantId,
    data: Mutex<TenantData>,
}

impl TenantStores {
    fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            data: Mutex::new(TenantData::default()),
        }
    }
}

#[derive(Debug, Default)]
struct SkuStock {
    on_hand: u32,
    adjustments: Vec<StockAdjustment>,
    reservations: BTreeMap<CartId, Reservation>,
    allocations: BTreeMap<OrderId, Allocation>,
}

impl SkuStock {
    /// Units held at `now` by live reservations of carts other than
    /// `except_cart` and live allocations of orders other than `except_order`.
    fn held(
        &self,
        now: Timestamp,
        except_cart: Option<CartId>,
        except_order: Option<OrderId>,
    ) -> u64 {
        let reserved: u64 = self
            .reservations
            .values()
            .filter(|r| r.is_live(now) && Some(r.cart) != except_cart)
            .map(|r| u64::from(r.quantity.get()))
            .sum();
        let allocated: u64 = self
            .allocations
            .values()
            .filter(|a| a.is_live(now) && Some(a.order) != except_order)
            .map(|a| u64::from(a.quantity.get()))
            .sum();
        reserved + allocated
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

    fn level(&self, sku: &Sku, now: Timestamp) -> StockLevel {
        let sum = |it: &mut dyn Iterator<Item = u32>| -> u32 {
            u32::try_from(it.map(u64::from).sum::<u64>()).unwrap_or(u32::MAX)
        };
        StockLevel {
            sku: sku.clone(),
            on_hand: self.on_hand,
            reserved: sum(&mut self
                .reservations
                .values()
                .filter(|r| r.is_live(now))
                .map(|r| r.quantity.get())),
            allocated: sum(&mut self
                .allocations
                .values()
                .filter(|a| a.is_live(now))
                .map(|a| a.quantity.get())),
        }
    }
}

#[derive(Debug, Default)]
struct TenantData {
    products: HashMap<ProductId, Product>,
    sku_owner: HashMap<Sku, ProductId>,
    stock: HashMap<Sku, SkuStock>,
    carts: HashMap<CartId, Cart>,
    orders: HashMap<OrderId, Order>,
    events: HashMap<OrderId, Vec<OrderEvent>>,
    keys: HashMap<IdempotencyKey, OrderId>,
    claimed_events: HashMap<PaymentEventId, OrderId>,
    refunds: Vec<Refund>,
    promotions: BTreeMap<PromotionId, Promotion>,
    usage: HashMap<PromotionId, UsageCounts>,
    settings: Option<ShopSettings>,
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
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))
    }

    fn order(&self, id: OrderId) -> Result<&Order> {
        self.orders
            .get(&id)
            .ok_or_else(|| Error::not_found(Entity::Order, id))
    }

    fn append(&mut self, order: OrderId, event: PendingEvent) {
        let log = self.events.entry(order).or_default();
        let seq = u32::try_from(log.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        log.push(event.into_event(order, seq));
    }

    fn release_allocations(&mut self, order: &Order) {
        for line in &order.lines {
            if let Some(stock) = self.stock.get_mut(&line.sku) {
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
        for event in events {
            self.append(id, event);
        }
    }
}

#[async_trait]
impl CatalogStore for TenantStores {
    async fn put_product(&self, product: &Product) -> Result<()> {
        let mut d = self.data.lock();
        for variant in product.variants() {
            if d.sku_owner
                .get(variant.sku())
                .is_some_and(|owner| *owner != product.id())
            {
                return Err(Error::SkuTaken {
                    sku: variant.sku().clone(),
                });
            }
        }
        if let Some(old) = d.products.remove(&product.id()) {
            for variant in old.variants() {
                d.sku_owner.remove(variant.sku());
            }
        }
        for variant in product.variants() {
            d.sku_owner.insert(variant.sku().clone(), product.id());
            d.stock.entry(variant.sku().clone()).or_default();
        }
        d.products.insert(product.id(), product.clone());
        Ok(())
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>> {
        Ok(self.data.lock().products.get(&id).cloned())
    }

    async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>> {
        let d = self.data.lock();
        Ok(d.sku_owner
            .get(sku)
            .and_then(|id| d.products.get(id))
            .cloned())
    }

    async fn products(&self) -> Result<Vec<Product>> {
        let mut products: Vec<Product> = self.data.lock().products.values().cloned().collect();
        products.sort_by(|a, b| a.name().cmp(b.name()).then(a.id().cmp(&b.id())));
        Ok(products)
    }

    async fn search(&self, query: &str, page: Page) -> Result<Vec<Product>> {
        let terms = search_terms(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.data.lock();
        // Rank: how many of the product's words a term matches, summed.
        let mut hits: Vec<(usize, &Product)> = d
            .products
            .values()
            .filter_map(|product| {
                let words = searchable_words(product);
                let mut rank = 0;
                for term in &terms {
                    let matched = words
                        .iter()
                        .filter(|w| w.starts_with(term.as_str()))
                        .count();
                    if matched == 0 {
                        return None;
                    }
                    rank += matched;
                }
                Some((rank, product))
            })
            .collect();
        hits.sort_by(|(ra, a), (rb, b)| {
            rb.cmp(ra)
                .then_with(|| a.name().cmp(b.name()))
                .then_with(|| a.id().cmp(&b.id()))
        });
        let limit = page.limit.clamp(1, Page::MAX_LIMIT) as usize;
        Ok(hits
            .into_iter()
            .skip(page.offset as usize)
            .take(limit)
            .map(|(_, product)| product.clone())
            .collect())
    }
}

#[async_trait]
impl InventoryStore for TenantStores {
    async fn receive(
        &self,
        sku: &Sku,
        quantity: Quantity,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        let mut d = self.data.lock();
        let stock = d.stock_mut(sku)?;
        let on_hand = stock
            .on_hand
            .checked_add(quantity.get())
            .filter(|n| *n <= Quantity::MAX)
            .ok_or_else(|| Error::StockOverflow { sku: sku.clone() })?;
        stock.on_hand = on_hand;
        stock.adjustments.push(StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Received,
            delta: i64::from(quantity.get()),
            on_hand_after: on_hand,
            at: now,
            note,
        });
        Ok(stock.level(sku, now))
    }

    async fn correct(
        &self,
        sku: &Sku,
        on_hand: Quantity,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        let mut d = self.data.lock();
        let stock = d.stock_mut(sku)?;
        let held = stock.held(now, None, None);
        if u64::from(on_hand.get()) < held {
            return Err(Error::StockBelowHeld {
                sku: sku.clone(),
                requested: on_hand.get(),
                held: u32::try_from(held).unwrap_or(u32::MAX),
            });
        }
        let delta = i64::from(on_hand.get()) - i64::from(stock.on_hand);
        stock.on_hand = on_hand.get();
        stock.adjustments.push(StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Corrected,
            delta,
            on_hand_after: on_hand.get(),
            at: now,
            note,
        });
        Ok(stock.level(sku, now))
    }

    async fn stock(&self, sku: &Sku, now: Timestamp) -> Result<StockLevel> {
        let mut d = self.data.lock();
        Ok(d.stock_mut(sku)?.level(sku, now))
    }

    async fn adjustments(&self, sku: &Sku) -> Result<Vec<StockAdjustment>> {
        let mut d = self.data.lock();
        Ok(d.stock_mut(sku)?.adjustments.clone())
    }

    async fn cart_reservations(&self, cart: CartId) -> Result<Vec<Reservation>> {
        let d = self.data.lock();
        let Some(c) = d.carts.get(&cart) else {
            return Ok(Vec::new());
        };
        Ok(c.lines
            .iter()
            .filter_map(|line| d.stock.get(&line.sku)?.reservations.get(&cart).cloned())
            .collect())
    }

    async fn order_allocations(&self, order: OrderId) -> Result<Vec<Allocation>> {
        let d = self.data.lock();
        let Some(o) = d.orders.get(&order) else {
            return Ok(Vec::new());
        };
        Ok(o.lines
            .iter()
            .filter_map(|line| d.stock.get(&line.sku)?.allocations.get(&order).cloned())
            .collect())
    }

    async fn sweep_reservations(&self, now: Timestamp, limit: usize) -> Result<usize> {
        let mut d = self.data.lock();
        let mut removed = 0;
        for stock in d.stock.values_mut() {
            let expired: Vec<CartId> = stock
                .reservations
                .values()
                .filter(|r| !r.is_live(now))
                .map(|r| r.cart)
                .take(limit - removed)
                .collect();
            for cart in expired {
                stock.reservations.remove(&cart);
                removed += 1;
            }
            if removed >= limit {
                break;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl CartStore for TenantStores {
    async fn insert_cart(&self, cart: &Cart) -> Result<()> {
        if cart.tenant != self.tenant {
            return Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: cart.tenant.clone(),
            });
        }
        let mut d = self.data.lock();
        if d.carts.contains_key(&cart.id) {
            return Err(BackendError::new(
                BackendErrorKind::Conflict,
                format!("cart {} exists", cart.id),
            )
            .into());
        }
        d.carts.insert(cart.id, cart.clone());
        Ok(())
    }

    async fn cart(&self, id: CartId) -> Result<Option<Cart>> {
        Ok(self.data.lock().carts.get(&id).cloned())
    }

    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart> {
        let mut d = self.data.lock();
        let c = d
            .carts
            .get_mut(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        if let CartStatus::CheckedOut { order } = c.status {
            return Err(Error::CartCheckedOut { cart, order });
        }
        c.apply(update, now);
        Ok(c.clone())
    }

    async fn set_line(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart> {
        let mut d = self.data.lock();
        let c = d
            .carts
            .get(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        if let CartStatus::CheckedOut { order } = c.status {
            return Err(Error::CartCheckedOut { cart, order });
        }
        if !d.sku_owner.contains_key(sku) {
            return Err(Error::not_found(Entity::Sku, sku));
        }
        let stock = d.stock_mut(sku)?;
        if quantity.is_zero() {
            stock.reservations.remove(&cart);
        } else {
            let available = stock.available(now, Some(cart), None);
            if quantity.get() > available {
                return Err(Error::InsufficientStock {
                    sku: sku.clone(),
                    requested: quantity.get(),
                    available,
                });
            }
            stock.reservations.insert(
                cart,
                Reservation {
                    cart,
                    sku: sku.clone(),
                    quantity,
                    expires_at,
                },
            );
        }
        let c = d
            .carts
            .get_mut(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        c.put_line(sku, quantity, now);
        Ok(c.clone())
    }
}

#[async_trait]
impl OrderStore for TenantStores {
    async fn place_order(&self, draft: &OrderDraft, now: Timestamp) -> Result<Placement> {
        if draft.tenant != self.tenant {
            return Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: draft.tenant.clone(),
            });
        }
        let mut d = self.data.lock();
        if let Some(existing) = d.keys.get(&draft.idempotency_key) {
            let order = d.order(*existing)?;
            if order.cart != draft.cart {
                return Err(Error::IdempotencyKeyReused {
                    key: draft.idempotency_key.clone(),
                    order: order.id,
                });
            }
            return Ok(Placement {
                order: order.clone(),
                created: false,
            });
        }
        let cart = d
            .carts
            .get(&draft.cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, draft.cart))?;
        let reservations: Vec<Reservation> = cart
            .lines
            .iter()
            .filter_map(|line| {
                d.stock
                    .get(&line.sku)?
                    .reservations
                    .get(&draft.cart)
                    .cloned()
            })
            .collect();
        check_placement(cart, draft, &reservations, now)?;
        for redemption in &draft.redemptions {
            let counts = d.usage.get(&redemption.promotion);
            let total = counts.map_or(0, |c| c.total);
            if redemption.usage_limit.is_some_and(|limit| total >= limit) {
                return Err(Error::PromotionExhausted {
                    promotion: redemption.promotion.clone(),
                    per_customer: false,
                });
            }
            if let Some(limit) = redemption.per_customer_limit {
                let used = match (&redemption.customer, counts) {
                    (Some(customer), Some(c)) => c.by_customer.get(customer).copied().unwrap_or(0),
                    (Some(_), None) => 0,
                    // A per-customer limit with no customer cannot be honoured.
                    (None, _) => limit,
                };
                if used >= limit {
                    return Err(Error::PromotionExhausted {
                        promotion: redemption.promotion.clone(),
                        per_customer: true,
                    });
                }
            }
        }
        // Every check passed: now write.
        for redemption in &draft.redemptions {
            let counts = d.usage.entry(redemption.promotion.clone()).or_default();
            counts.total = counts.total.saturating_add(1);
            if let Some(customer) = &redemption.customer {
                let used = counts.by_customer.entry(customer.clone()).or_default();
                *used = used.saturating_add(1);
            }
        }
        for line in &draft.priced.lines {
            let stock = d.stock_mut(&line.sku)?;
            stock.reservations.remove(&draft.cart);
            stock.allocations.insert(
                draft.id,
                Allocation {
                    order: draft.id,
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    expires_at: draft.payment_expires_at,
                },
            );
        }
        if let Some(cart) = d.carts.get_mut(&draft.cart) {
            cart.status = CartStatus::CheckedOut { order: draft.id };
            cart.updated_at = now;
        }
        let order = Order::from_draft(draft.clone(), now);
        let placed = order.note(
            OrderEventKind::Placed {
                total: order.total(),
            },
            now,
        );
        d.keys.insert(draft.idempotency_key.clone(), order.id);
        d.commit_order(order.clone(), vec![placed]);
        Ok(Placement {
            order,
            created: true,
        })
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(self.data.lock().orders.get(&id).cloned())
    }

    async fn order_by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        let d = self.data.lock();
        Ok(d.keys.get(key).and_then(|id| d.orders.get(id)).cloned())
    }

    async fn events(&self, order: OrderId) -> Result<Vec<OrderEvent>> {
        Ok(self
            .data
            .lock()
            .events
            .get(&order)
            .cloned()
            .unwrap_or_default())
    }

    async fn attach_payment_session(
        &self,
        order: OrderId,
        session: &PaymentSession,
        now: Timestamp,
    ) -> Result<Order> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        if o.payment_session.as_ref() == Some(session) {
            return Ok(o);
        }
        o.payment_session = Some(session.clone());
        o.updated_at = now;
        let event = o.note(
            OrderEventKind::PaymentSessionCreated {
                session: session.id.clone(),
            },
            now,
        );
        d.commit_order(o.clone(), vec![event]);
        Ok(o)
    }

    async fn act(&self, order: OrderId, action: &OrderAction, now: Timestamp) -> Result<Order> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        let event = o.transition(action.target(), action.event(), now)?;
        if action.releases_allocation() {
            d.release_allocations(&o);
        }
        d.commit_order(o.clone(), vec![event]);
        Ok(o)
    }

    async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentApplication> {
        if event.tenant != self.tenant {
            return Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: event.tenant.clone(),
            });
        }
        let mut d = self.data.lock();
        if let Some(first) = d.claimed_events.get(&event.id).copied() {
            // Recorded against the order the event was first applied to.
            let order = d.order(first)?.clone();
            let note = order.note(
                OrderEventKind::DuplicatePaymentEvent {
                    event: event.id.clone(),
                },
                now,
            );
            d.append(order.id, note);
            return Ok(PaymentApplication {
                outcome: PaymentOutcome::Duplicate,
                order,
            });
        }
        let mut order = d.order(event.order)?.clone();
        let decision = decide_payment(&order, &event.kind);
        let short: Vec<Sku> = match decision {
            PaymentDecision::Take { .. } => order
                .lines
                .iter()
                .filter(|line| {
                    d.stock.get(&line.sku).is_none_or(|s| {
                        s.available(now, None, Some(order.id)) < line.quantity.get()
                    })
                })
                .map(|line| line.sku.clone())
                .collect(),
            _ => Vec::new(),
        };
        let settlement = settle_payment(&mut order, event, decision, short, now)?;
        for effect in settlement.effects {
            match effect {
                PaymentEffect::SellStock => {
                    for line in &order.lines {
                        let stock = d.stock_mut(&line.sku)?;
                        stock.allocations.remove(&order.id);
                        stock.on_hand = stock.on_hand.saturating_sub(line.quantity.get());
                        let on_hand_after = stock.on_hand;
                        stock.adjustments.push(StockAdjustment {
                            sku: line.sku.clone(),
                            kind: AdjustmentKind::Sold { order: order.id },
                            delta: -i64::from(line.quantity.get()),
                            on_hand_after,
                            at: now,
                            note: None,
                        });
                    }
                }
                PaymentEffect::ReleaseAllocation => d.release_allocations(&order),
                PaymentEffect::RecordRefund(refund) => d.refunds.push(refund),
            }
        }
        let outcome = settlement.outcome;
        let events = settlement.events;
        d.claimed_events.insert(event.id.clone(), order.id);
        d.commit_order(order.clone(), events);
        Ok(PaymentApplication { outcome, order })
    }

    async fn request_refund(
        &self,
        order: OrderId,
        refund: RefundId,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        let event = o.transition(
            OrderStatus::Refunded,
            OrderEventKind::RefundRequested {
                refund: refund.clone(),
                amount: o.refundable(),
            },
            now,
        )?;
        let record = Refund::pending(
            &o,
            refund,
            o.refundable(),
            RefundReason::RequestedByMerchant,
            now,
        );
        d.refunds.push(record.clone());
        d.commit_order(o, vec![event]);
        Ok(record)
    }

    async fn record_refund_result(
        &self,
        refund: &RefundId,
        result: std::result::Result<RefundReceipt, String>,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut d = self.data.lock();
        let record = d.refund_mut(refund)?;
        if matches!(record.status, RefundStatus::Succeeded { .. }) {
            return Ok(record.clone());
        }
        let kind = match result {
            Ok(receipt) => {
                record.status = RefundStatus::Succeeded {
                    provider_ref: receipt.provider_ref.clone(),
                };
                OrderEventKind::RefundSucceeded {
                    refund: refund.clone(),
                    provider_ref: receipt.provider_ref,
                }
            }
            Err(message) => OrderEventKind::RefundFailed {
                refund: refund.clone(),
                message,
            },
        };
        let record = record.clone();
        let note = d.order(record.order)?.note(kind, now);
        d.append(record.order, note);
        Ok(record)
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        Ok(self
            .data
            .lock()
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut d = self.data.lock();
        let mut due: Vec<&Order> = d
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::AwaitingPayment && o.payment_expires_at <= now)
            .collect();
        due.sort_by_key(|o| (o.payment_expires_at, o.id));
        let due: Vec<Order> = due.into_iter().take(limit).cloned().collect();
        let mut expired = Vec::with_capacity(due.len());
        for mut order in due {
            let event = order.transition(
                OrderStatus::Expired,
                OrderEventKind::Expired { event: None },
                now,
            )?;
            d.release_allocations(&order);
            expired.push(order.id);
            d.commit_order(order, vec![event]);
        }
        Ok(expired)
    }
}

#[async_trait]
impl PromotionStore for TenantStores {
    async fn put_promotion(&self, promotion: &Promotion) -> Result<()> {
        self.data
            .lock()
            .promotions
            .insert(promotion.id().clone(), promotion.clone());
        Ok(())
    }

    async fn remove_promotion(&self, id: &PromotionId) -> Result<bool> {
        Ok(self.data.lock().promotions.remove(id).is_some())
    }

    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>> {
        Ok(self.data.lock().promotions.get(id).cloned())
    }

    async fn promotions(&self) -> Result<Vec<Promotion>> {
        let mut all: Vec<Promotion> = self.data.lock().promotions.values().cloned().collect();
        all.sort_by(|a, b| {
            a.priority()
                .cmp(&b.priority())
                .then_with(|| a.id().cmp(b.id()))
        });
        Ok(all)
    }

    async fn usage(
        &self,
        promotions: &[PromotionId],
        customer: Option<&CustomerId>,
    ) -> Result<HashMap<PromotionId, PromotionUsage>> {
        let d = self.data.lock();
        Ok(promotions
            .iter()
            .filter_map(|id| {
                let counts = d.usage.get(id)?;
                let by_customer = customer
                    .and_then(|c| counts.by_customer.get(c))
                    .copied()
                    .unwrap_or(0);
                Some((
                    id.clone(),
                    PromotionUsage {
                        total: counts.total,
                        by_customer,
                    },
                ))
            })
            .collect())
    }
}

#[async_trait]
impl SettingsStore for TenantStores {
    async fn settings(&self) -> Result<Option<ShopSettings>> {
        Ok(self.data.lock().settings.clone())
    }

    async fn put_settings(&self, settings: &ShopSettings) -> Result<()> {
        self.data.lock().settings = Some(settings.clone());
        Ok(())
    }
}
