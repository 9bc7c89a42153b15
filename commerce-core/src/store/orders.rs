//! The order store: placement, the order pipeline's changes, payments,
//! refunds, listing.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{CustomerId, IdempotencyKey, OrderId};
use crate::order::{
    FeedItem, FeedPosition, Order, OrderCommand, OrderDraft, OrderEvent, PaymentApplication, Refund,
};
use crate::payment::PaymentEvent;

#[cfg(doc)]
use super::{OrderEffect, check_redemption, decide, decide_payment, place};

/// Orders, their audit logs, payment events and refunds.
#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Places the order described by `draft`, in one atomic step.
    ///
    /// # Behavior
    ///
    /// - If an order with `draft.idempotency_key` exists: for the same cart it
    ///   is returned with `created = false` and nothing changes; for another
    ///   cart, [`Error::IdempotencyKeyReused`](crate::Error::IdempotencyKeyReused).
    ///   Concurrent calls with one key make one order.
    /// - The cart must be open (else `CartCheckedOut`) and its lines must be
    ///   exactly the draft's SKUs and quantities (else
    ///   [`Error::CartChanged`](crate::Error::CartChanged)).
    /// - Every line must be covered by a live reservation of this cart (else
    ///   [`Error::ReservationLapsed`](crate::Error::ReservationLapsed)).
    /// - If a line is age-restricted, the cart must hold an age verification
    ///   (else [`Error::AgeVerificationRequired`](crate::Error::AgeVerificationRequired)):
    ///   the facade checks it too, the store makes it impossible to skip.
    /// - The rest is [`place`]'s decision: its refusals,
    ///   then its effects. Every redemption must be within its limits
    ///   ([`check_redemption`], else
    ///   [`Error::PromotionExhausted`](crate::Error::PromotionExhausted));
    ///   concurrent checkouts for the last use: exactly one succeeds.
    /// - Then, together: the redemptions are counted, the cart's reservations
    ///   become the order's allocations until `draft.payment_expires_at`, the
    ///   cart is checked out, the order is stored awaiting payment, and a
    ///   `Placed` event is appended.
    ///
    /// Safe beside traffic: it waits only for changes to the same cart, its
    /// SKUs and its promotions' usage.
    async fn place_order(&self, draft: &OrderDraft, now: Timestamp) -> Result<Placement>;

    /// The order with `id`, if any.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a writer waits on,
    /// and is safe beside traffic. An order of another tenant is `None`. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn order(&self, id: OrderId) -> Result<Option<Order>>;

    /// The order placed with `key`, if any.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn order_by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>>;

    /// Orders matching `filter`, newest first (by placement time, then id,
    /// both descending), at most `limit`, starting after `after` (the
    /// [`OrderCursor`] of the last order of the previous page).
    ///
    /// # Behavior
    ///
    /// A read, safe beside traffic. Keyset pagination: an order placed
    /// while a client pages is never shown twice nor makes another one
    /// skipped (it sorts before the cursor). `limit` 0 returns nothing.
    async fn orders(
        &self,
        filter: &OrderFilter,
        after: Option<&OrderCursor>,
        limit: usize,
    ) -> Result<Vec<Order>>;

    /// The audit log of `order`, oldest first (`seq` 1, 2, ...). An unknown
    /// order has an empty log.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn events(&self, order: OrderId) -> Result<Vec<OrderEvent>>;

    /// The tenant's feed: up to `limit` of its order events, every order's,
    /// with positions after `after` (from the start when `None`), in
    /// position order.
    ///
    /// # Behavior
    ///
    /// A read, safe beside traffic; `limit` 0 returns nothing.
    ///
    /// - Positions strictly increase in the order returned, and every event
    ///   of [`events`](Self::events) appears in the feed exactly once, an
    ///   order's events in `seq` order.
    /// - No gaps for a follower: an event is handed out only when no event
    ///   with a lower position can still appear. So a reader that reads to
    ///   the end and reads again from its last position never misses an
    ///   event, even one whose change committed after a higher-positioned
    ///   one. A store may therefore show an event a little after its change
    ///   commits (PostgreSQL: once every transaction that began writing
    ///   before it has ended); it never hides one for good.
    /// - Confined to the tenant, like every read of the scope.
    async fn feed(&self, after: Option<FeedPosition>, limit: usize) -> Result<Vec<FeedItem>>;

    /// Carries out `command` on `order`, as [`decide`]
    /// says, and returns the order after it with the refund it made or
    /// changed.
    ///
    /// # Behavior
    ///
    /// Atomic: the store locks the order (so changes of one order, payment
    /// events included, are serialized), loads its refunds, calls
    /// [`decide`], makes every
    /// [`OrderEffect`] in order, saves the order
    /// and appends the events, or does none of it.
    ///
    /// - Cancelling or expiring releases the order's allocation and gives
    ///   back its promotion redemptions, once: the change happens once.
    /// - Idempotent where the command is: the same payment session again,
    ///   a refund request repeated with its id and amount, a result for a
    ///   refund already succeeded change nothing.
    /// - Two refund requests racing on one order are serialized: together
    ///   they never refund more than was paid (the second is
    ///   [`RefundError::ExceedsRefundable`](crate::order::RefundError::ExceedsRefundable)).
    /// - Refusals are those of [`decide`]; an unknown
    ///   order is `NotFound`. A refund id another order's refund holds is
    ///   [`RefundError::IdReused`](crate::order::RefundError::IdReused).
    ///
    /// Safe beside traffic: it waits only for changes to the same order (then
    /// its SKUs and promotions' usage).
    async fn change_order(
        &self,
        order: OrderId,
        command: &OrderCommand,
        now: Timestamp,
    ) -> Result<ChangedOrder>;

    /// Applies a payment event exactly once.
    ///
    /// # Behavior
    ///
    /// Atomic, keyed on `event.id`:
    ///
    /// - The first delivery claims the id and does what
    ///   [`decide_payment`] says, in the same step.
    ///   Taking a payment checks each line: `on_hand − live reservations −
    ///   live allocations of other orders ≥ quantity`. If all hold, the
    ///   order is paid and the stock sold (`on_hand` decremented, a `Sold`
    ///   adjustment recorded, the allocation removed). If not, the order is
    ///   oversold-refunded, its allocation released, and a pending
    ///   [`Refund`] (id [`RefundId::for_payment_event`](crate::ids::RefundId::for_payment_event)) returned in the
    ///   outcome.
    /// - Any later delivery of the same id, sequential or concurrent,
    ///   returns [`PaymentOutcome::Duplicate`](crate::PaymentOutcome::Duplicate),
    ///   appends a `DuplicatePaymentEvent` record to the order the event was
    ///   first applied to (whatever order the repeat names), and changes
    ///   nothing else.
    /// - An order that does not exist is `NotFound` and claims nothing.
    ///
    /// Safe beside traffic: it waits only for changes to the same order and its
    /// SKUs.
    async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentApplication>;

    /// Every refund of `order`, oldest first.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. An unknown order has none. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn refunds(&self, order: OrderId) -> Result<Vec<Refund>>;

    /// Refunds still pending (the provider has not confirmed them), oldest
    /// first, at most `limit`.
    ///
    /// # Behavior
    ///
    /// A read: it sees one committed state, changes nothing, takes no lock a
    /// writer waits on, and is safe beside traffic. Its only errors are
    /// backend failures ([`Error::Backend`](crate::Error::Backend)).
    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>>;

    /// Expires up to `limit` orders still awaiting payment whose payment
    /// window closed at or before `now`, each as
    /// [`change_order`](Self::change_order) with
    /// [`OrderCommand::Expire`]: its
    /// allocation is released, its redemptions given back and an `Expired`
    /// event appended. Returns their ids.
    ///
    /// # Behavior
    ///
    /// Safe beside traffic: an order being changed meanwhile is skipped
    /// (the next sweep finds it if it is still due).
    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>>;
}

/// Which orders [`OrderStore::orders`] lists. Unset fields match every
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<crate::order::OrderStatus>,
    /// Only orders of this customer.
    pub customer: Option<CustomerId>,
    /// Only orders placed at or after this instant.
    pub placed_from: Option<Timestamp>,
    /// Only orders placed before this instant.
    pub placed_before: Option<Timestamp>,
}

impl OrderFilter {
    /// Whether `order` matches.
    pub fn matches(&self, order: &Order) -> bool {
        self.status.is_none_or(|status| order.status() == status)
            && self
                .customer
                .as_ref()
                .is_none_or(|customer| order.customer.as_ref() == Some(customer))
            && self.placed_from.is_none_or(|from| order.placed_at >= from)
            && self
                .placed_before
                .is_none_or(|before| order.placed_at < before)
    }
}

/// Where a page of [`OrderStore::orders`] ended: the last order's
/// placement time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderCursor {
    /// When the last order was placed.
    pub placed_at: Timestamp,
    /// Its id.
    pub id: OrderId,
}

impl OrderCursor {
    /// The cursor after `order`.
    pub fn after(order: &Order) -> Self {
        Self {
            placed_at: order.placed_at,
            id: order.id,
        }
    }

    /// Whether `order` comes after this cursor in newest-first order.
    pub fn precedes(&self, order: &Order) -> bool {
        (order.placed_at, order.id) < (self.placed_at, self.id)
    }
}

/// The result of [`OrderStore::place_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The order.
    pub order: Order,
    /// `false` when an earlier checkout with the same key made it.
    pub created: bool,
}

impl Placement {
    /// What placing `draft` again gives when `existing` was already placed
    /// with its idempotency key: `existing` (not created) for the same
    /// cart, [`Error::IdempotencyKeyReused`](crate::Error::IdempotencyKeyReused)
    /// for another. Every store calls it inside its atomic step.
    pub fn replay(existing: Order, draft: &OrderDraft) -> Result<Self> {
        if existing.cart != draft.cart {
            return Err(crate::Error::IdempotencyKeyReused {
                key: draft.idempotency_key.clone(),
                order: existing.id,
            });
        }
        Ok(Placement {
            order: existing,
            created: false,
        })
    }
}

/// The result of [`OrderStore::change_order`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedOrder {
    /// The order after the change.
    pub order: Order,
    /// The refund the command made, found or changed, if it was about one.
    pub refund: Option<Refund>,
}
