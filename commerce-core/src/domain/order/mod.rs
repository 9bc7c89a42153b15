//! Orders: the placed snapshot of a cart, an explicit state machine, and the
//! append-only log of everything that happened to it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cart::{Cart, CartStatus};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{
    CartId, CustomerId, IdempotencyKey, OrderId, PaymentEventId, PromotionId, RefundId, Sku,
    TenantId,
};
use crate::inventory::Reservation;
use crate::money::{Currency, Money};
use crate::payment::{PaymentEvent, PaymentEventKind, PaymentSession};
use crate::pricing::{PricedCart, PricedLine, PromotionOutcome, ShippingCharge, Totals};
use crate::tax::{PriceBasis, TaxLine};

/// Where an order stands.
///
/// ```text
///                 ┌──────────────► Cancelled ──(late payment)──► Refunded
///                 │                    ▲
/// AwaitingPayment ┼──► Expired ────────┤
///        │        │       │            
///        │        │       └──(payment, stock still there)──► Paid
///        │        └──(payment, stock gone)──► OversoldRefunded
///        └──(payment)──► Paid ──► Fulfilled ──► Refunded
///                          └──────────────────► Refunded
/// ```
///
/// [`OrderStatus::can_become`] is the whole table; every store refuses any
/// other change with [`Error::InvalidTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderStatus {
    /// Placed; its stock is allocated until the payment window closes.
    AwaitingPayment,
    /// Paid; its stock is sold.
    Paid,
    /// Handed to the buyer.
    Fulfilled,
    /// Cancelled before payment; its allocation was released.
    Cancelled,
    /// The payment window closed unpaid; its allocation was released. A
    /// payment that still arrives takes the stock if it is there.
    Expired,
    /// The payment was refunded (by the merchant, the provider, or because it
    /// arrived for a cancelled order).
    Refunded,
    /// The payment arrived after the allocation lapsed and the stock had been
    /// sold to someone else: the payment was refunded automatically.
    OversoldRefunded,
}

impl OrderStatus {
    /// Whether the state machine allows going from `self` to `next`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (
                AwaitingPayment,
                Paid | OversoldRefunded | Cancelled | Expired
            ) | (Expired, Paid | OversoldRefunded | Cancelled)
                | (Paid, Fulfilled | Refunded)
                | (Fulfilled, Refunded)
                | (Cancelled, Refunded)
        )
    }

    /// The snake-case name used in JSON and in databases.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
            OrderStatus::OversoldRefunded => "oversold_refunded",
        }
    }

    /// Every status.
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
        OrderStatus::OversoldRefunded,
    ];

    /// Parses [`as_str`](Self::as_str)'s output.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A promotion an order used, as it was when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPromotion {
    /// The promotion.
    pub promotion: PromotionId,
    /// Its name at the time.
    pub name: String,
    /// What it took off the order.
    pub discount: Money,
}

/// A redemption of a limited promotion, counted atomically when the order
/// is placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    /// The promotion.
    pub promotion: PromotionId,
    /// The customer redeeming it, if known.
    pub customer: Option<CustomerId>,
    /// Its total usage limit when the cart was priced.
    pub usage_limit: Option<u32>,
    /// Its per-customer limit when the cart was priced.
    pub per_customer_limit: Option<u32>,
}

/// Everything a store needs to place an order; built by the facade from the
/// cart, the catalog, the promotions and the tax rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDraft {
    /// The new order's identifier.
    pub id: OrderId,
    /// The tenant.
    pub tenant: TenantId,
    /// The cart being checked out.
    pub cart: CartId,
    /// The caller's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// The customer, if known.
    pub customer: Option<CustomerId>,
    /// The priced cart: its lines must be exactly the cart's lines.
    pub priced: PricedCart,
    /// The limited promotions the price relies on, to redeem in the same
    /// step.
    pub redemptions: Vec<Redemption>,
    /// When the payment window closes and the allocation lapses.
    pub payment_expires_at: Timestamp,
}

/// A placed order: a snapshot of the priced cart that later changes to
/// prices, promotions or tax rates never touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The identifier.
    pub id: OrderId,
    /// The tenant.
    pub tenant: TenantId,
    /// The cart it came from.
    pub cart: CartId,
    /// The idempotency key it was placed with.
    pub idempotency_key: IdempotencyKey,
    /// The customer, if known.
    pub customer: Option<CustomerId>,
    /// The currency.
    pub currency: Currency,
    /// Whether its prices include tax.
    pub prices: PriceBasis,
    /// The lines, with prices, discounts and tax as placed.
    pub lines: Vec<PricedLine>,
    /// Shipping as placed.
    pub shipping: Option<ShippingCharge>,
    /// The tax per rate.
    pub taxes: Vec<TaxLine>,
    /// The totals; `totals.grand_total` is what the buyer must pay.
    pub totals: Totals,
    /// The promotions that applied.
    pub promotions: Vec<AppliedPromotion>,
    /// Where it stands.
    pub status: OrderStatus,
    /// When the payment window closes.
    pub payment_expires_at: Timestamp,
    /// The payment session the buyer was sent to, once created.
    pub payment_session: Option<PaymentSession>,
    /// The provider's reference of the payment taken (for refunds).
    pub payment_ref: Option<String>,
    /// What the provider reports refunded outside this library so far
    /// (cumulative, a partial refund from its dashboard say).
    #[serde(default)]
    pub refunded_by_provider: Option<Money>,
    /// When it was placed.
    pub placed_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Order {
    /// The order a draft becomes when placed at `now`.
    pub fn from_draft(draft: OrderDraft, now: Timestamp) -> Self {
        let priced = draft.priced;
        let promotions = priced
            .promotions
            .into_iter()
            .filter_map(|report| match report.outcome {
                PromotionOutcome::Applied { discount } => Some(AppliedPromotion {
                    promotion: report.promotion,
                    name: report.name,
                    discount,
                }),
                _ => None,
            })
            .collect();
        Self {
            id: draft.id,
            tenant: draft.tenant,
            cart: draft.cart,
            idempotency_key: draft.idempotency_key,
            customer: draft.customer,
            currency: priced.currency,
            prices: priced.prices,
            lines: priced.lines,
            shipping: priced.shipping,
            taxes: priced.taxes,
            totals: priced.totals,
            promotions,
            status: OrderStatus::AwaitingPayment,
            payment_expires_at: draft.payment_expires_at,
            payment_session: None,
            payment_ref: None,
            refunded_by_provider: None,
            placed_at: now,
            updated_at: now,
        }
    }

    /// What the buyer must pay: the grand total.
    pub fn total(&self) -> Money {
        self.totals.grand_total
    }

    /// What is left to refund: the total less what the provider reports
    /// refunded already.
    pub fn refundable(&self) -> Money {
        self.refunded_by_provider
            .and_then(|refunded| self.total().checked_sub(refunded).ok())
            .filter(|left| !left.is_negative())
            .unwrap_or_else(|| self.total())
    }

    /// Moves the order to `to` if the state machine allows it, and returns the
    /// event that records the change. On refusal nothing changes.
    pub fn transition(
        &mut self,
        to: OrderStatus,
        kind: OrderEventKind,
        now: Timestamp,
    ) -> Result<PendingEvent> {
        if !self.status.can_become(to) {
            return Err(Error::InvalidTransition {
                order: self.id,
                from: self.status,
                to,
            });
        }
        let from = self.status;
        self.status = to;
        self.updated_at = now;
        Ok(PendingEvent {
            from,
            to,
            kind,
            at: now,
        })
    }

    /// An event that records something without changing the status.
    pub fn note(&self, kind: OrderEventKind, now: Timestamp) -> PendingEvent {
        PendingEvent {
            from: self.status,
            to: self.status,
            kind,
            at: now,
        }
    }
}

/// An event about to be appended to an order's log: a store gives it its
/// sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// The status before.
    pub from: OrderStatus,
    /// The status after (equal to `from` for a record without a change).
    pub to: OrderStatus,
    /// What happened.
    pub kind: OrderEventKind,
    /// When.
    pub at: Timestamp,
}

impl PendingEvent {
    /// The event with its place in the order's log.
    pub fn into_event(self, order: OrderId, seq: u32) -> OrderEvent {
        OrderEvent {
            order,
            seq,
            at: self.at,
            from: self.from,
            to: self.to,
            kind: self.kind,
        }
    }
}

/// One entry of an order's append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// The order.
    pub order: OrderId,
    /// Its position in the order's log, from 1, without gaps.
    pub seq: u32,
    /// When.
    pub at: Timestamp,
    /// The status before.
    pub from: OrderStatus,
    /// The status after.
    pub to: OrderStatus,
    /// What happened.
    pub kind: OrderEventKind,
}

/// What an order event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderEventKind {
    /// The order was placed and its stock allocated.
    Placed {
        /// The amount due.
        total: Money,
    },
    /// A payment session was created for the buyer.
    PaymentSessionCreated {
        /// The provider's session id.
        session: String,
    },
    /// A payment was received and the stock sold.
    PaymentReceived {
        /// The provider's event.
        event: PaymentEventId,
        /// The amount paid.
        amount: Money,
    },
    /// A payment event that had already been applied arrived again; nothing
    /// changed.
    DuplicatePaymentEvent {
        /// The provider's event.
        event: PaymentEventId,
    },
    /// A payment whose amount or currency does not match the order arrived.
    /// The order was not marked paid; review it.
    PaymentMismatch {
        /// The provider's event.
        event: PaymentEventId,
        /// What the order asked for.
        expected: Money,
        /// What the provider reported.
        received: Money,
    },
    /// A payment attempt failed.
    PaymentFailed {
        /// The provider's event.
        event: PaymentEventId,
        /// The provider's reason.
        reason: String,
    },
    /// A payment event was recorded but needed no action.
    PaymentEventIgnored {
        /// The provider's event.
        event: PaymentEventId,
        /// Why it needed none.
        reason: String,
    },
    /// A payment arrived after the allocation lapsed and the stock had been
    /// sold elsewhere: the payment is refunded. Rare, and meant to be seen.
    Oversold {
        /// The provider's event.
        event: PaymentEventId,
        /// The SKUs that were short.
        short: Vec<Sku>,
        /// The refund issued.
        refund: RefundId,
    },
    /// A payment arrived for a cancelled order and is refunded.
    PaymentAfterCancellation {
        /// The provider's event.
        event: PaymentEventId,
        /// The refund issued.
        refund: RefundId,
    },
    /// The payment window closed (or the provider's session expired) unpaid;
    /// the allocation was released.
    Expired {
        /// The provider's event, when the provider reported the expiry.
        event: Option<PaymentEventId>,
    },
    /// The order was cancelled and its allocation released.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The order was handed over.
    Fulfilled,
    /// A refund was requested from the provider.
    RefundRequested {
        /// The refund.
        refund: RefundId,
        /// The amount.
        amount: Money,
    },
    /// The provider confirmed a refund.
    RefundSucceeded {
        /// The refund.
        refund: RefundId,
        /// The provider's reference.
        provider_ref: String,
    },
    /// The provider refused or failed a refund; it stays pending for a retry.
    RefundFailed {
        /// The refund.
        refund: RefundId,
        /// The provider's message.
        message: String,
    },
    /// The provider reported a refund made outside this library.
    RefundedByProvider {
        /// The provider's event.
        event: PaymentEventId,
        /// The amount refunded.
        amount: Money,
    },
}

/// Why a refund is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundReason {
    /// The stock was sold to someone else before the payment arrived.
    Oversold,
    /// The payment arrived for a cancelled order.
    OrderCancelled,
    /// The merchant asked for it.
    RequestedByMerchant,
}

impl RefundReason {
    /// The status a refunded order takes for this reason.
    pub fn leads_to(self) -> OrderStatus {
        match self {
            RefundReason::Oversold => OrderStatus::OversoldRefunded,
            RefundReason::OrderCancelled | RefundReason::RequestedByMerchant => {
                OrderStatus::Refunded
            }
        }
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundStatus {
    /// Recorded; the provider has not confirmed it yet.
    Pending,
    /// The provider confirmed it.
    Succeeded {
        /// The provider's reference.
        provider_ref: String,
    },
}

/// A refund of an order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The identifier, also the provider idempotency key.
    pub id: RefundId,
    /// The tenant.
    pub tenant: TenantId,
    /// The order.
    pub order: OrderId,
    /// The amount.
    pub amount: Money,
    /// Why.
    pub reason: RefundReason,
    /// The provider's reference of the payment being refunded.
    pub payment_ref: Option<String>,
    /// Pending or succeeded.
    pub status: RefundStatus,
    /// When it was requested.
    pub requested_at: Timestamp,
}

impl Refund {
    /// A pending refund of `amount` for `order`.
    pub fn pending(
        order: &Order,
        id: RefundId,
        amount: Money,
        reason: RefundReason,
        now: Timestamp,
    ) -> Self {
        Refund {
            id,
            tenant: order.tenant.clone(),
            order: order.id,
            amount,
            reason,
            payment_ref: order.payment_ref.clone(),
            status: RefundStatus::Pending,
            requested_at: now,
        }
    }
}

impl Order {
    /// Refunds a payment of `amount` taken by `event` (an oversold or
    /// cancelled order): moves the order to the status `reason` leads to,
    /// recording `kind`, keeps the payment reference, and returns the events
    /// (the change, then `RefundRequested`) and the pending refund, whose id
    /// is [`RefundId::for_payment_event`]. On refusal nothing changes.
    pub fn refund_payment(
        &mut self,
        kind: OrderEventKind,
        event: &PaymentEventId,
        amount: Money,
        payment_ref: Option<String>,
        reason: RefundReason,
        now: Timestamp,
    ) -> Result<(Vec<PendingEvent>, Refund)> {
        let change = self.transition(reason.leads_to(), kind, now)?;
        self.payment_ref = payment_ref;
        let refund = Refund::pending(
            self,
            RefundId::for_payment_event(event),
            amount,
            reason,
            now,
        );
        let requested = self.note(
            OrderEventKind::RefundRequested {
                refund: refund.id.clone(),
                amount,
            },
            now,
        );
        Ok((vec![change, requested], refund))
    }
}

/// What a store must do with a (first delivery of a) payment event, decided
/// from the order alone. Stores execute it atomically with the claim of the
/// event id; see [`decide_payment`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentDecision {
    /// Take the payment: if every line's stock is still there (the order's own
    /// allocation counts as there), mark it paid and sell the stock;
    /// otherwise mark it oversold-refunded, release what it holds and issue a
    /// refund with reason [`RefundReason::Oversold`].
    Take {
        /// The amount paid.
        amount: Money,
        /// The provider's payment reference.
        payment_ref: Option<String>,
    },
    /// The amount or currency is wrong: record it for review, change nothing.
    Mismatch {
        /// The order's total.
        expected: Money,
        /// The amount reported.
        received: Money,
    },
    /// The order was cancelled: mark it refunded and issue a refund with reason
    /// [`RefundReason::OrderCancelled`].
    RefundCancelled {
        /// The amount paid.
        amount: Money,
        /// The provider's payment reference.
        payment_ref: Option<String>,
    },
    /// The provider's session expired: expire the order and release its
    /// allocation.
    Expire,
    /// The provider refunded the payment: mark the order refunded.
    MarkRefunded {
        /// The amount.
        amount: Money,
    },
    /// The provider refunded part of the payment: record how much (a
    /// merchant refund then refunds only what is left); the status does not
    /// change.
    RecordPartialRefund {
        /// The amount refunded so far (cumulative).
        amount: Money,
    },
    /// Record a failed attempt; the status does not change.
    RecordFailure {
        /// The provider's reason.
        reason: String,
    },
    /// Record the event; nothing else happens.
    Ignore {
        /// Why.
        reason: String,
    },
}

/// Decides what the first delivery of a payment event does to `order`.
///
/// This is the whole payment policy, shared by every store:
///
/// | event | order status | decision |
/// |---|---|---|
/// | succeeded, amount ≠ total | any not yet paid | [`Mismatch`](PaymentDecision::Mismatch) |
/// | succeeded | awaiting payment, expired | [`Take`](PaymentDecision::Take) |
/// | succeeded | cancelled | [`RefundCancelled`](PaymentDecision::RefundCancelled) |
/// | succeeded | paid or later | [`Ignore`](PaymentDecision::Ignore) (already paid) |
/// | failed | any | [`RecordFailure`](PaymentDecision::RecordFailure) |
/// | session expired | awaiting payment | [`Expire`](PaymentDecision::Expire) |
/// | refunded in full | paid, fulfilled | [`MarkRefunded`](PaymentDecision::MarkRefunded) |
/// | refunded in part | paid, fulfilled | [`RecordPartialRefund`](PaymentDecision::RecordPartialRefund) (the status does not change) |
/// | anything else | | [`Ignore`](PaymentDecision::Ignore) |
pub fn decide_payment(order: &Order, event: &PaymentEventKind) -> PaymentDecision {
    use OrderStatus::*;
    match event {
        PaymentEventKind::Succeeded {
            amount,
            payment_ref,
        } => match order.status {
            AwaitingPayment | Expired | Cancelled if *amount != order.total() => {
                PaymentDecision::Mismatch {
                    expected: order.total(),
                    received: *amount,
                }
            }
            AwaitingPayment | Expired => PaymentDecision::Take {
                amount: *amount,
                payment_ref: payment_ref.clone(),
            },
            Cancelled => PaymentDecision::RefundCancelled {
                amount: *amount,
                payment_ref: payment_ref.clone(),
            },
            status => PaymentDecision::Ignore {
                reason: format!("a payment for an order already {status}"),
            },
        },
        PaymentEventKind::Failed { reason } => PaymentDecision::RecordFailure {
            reason: reason.clone(),
        },
        PaymentEventKind::SessionExpired => match order.status {
            AwaitingPayment => PaymentDecision::Expire,
            status => PaymentDecision::Ignore {
                reason: format!("session expired for an order already {status}"),
            },
        },
        PaymentEventKind::Refunded { amount } => match order.status {
            Paid | Fulfilled if *amount == order.total() => {
                PaymentDecision::MarkRefunded { amount: *amount }
            }
            Paid | Fulfilled => PaymentDecision::RecordPartialRefund { amount: *amount },
            status => PaymentDecision::Ignore {
                reason: format!("a refund reported for an order {status}"),
            },
        },
    }
}

/// Checks that `draft` can be placed from `cart` at `now`, given the cart's
/// reservations: the cart is open and in the draft's currency, its lines are
/// exactly the draft's, every line is covered by a live reservation, and an
/// age verification is recorded if a line is age-restricted. The refusals of
/// [`OrderStore::place_order`](crate::OrderStore::place_order), in that
/// order; every store calls it inside its atomic step.
pub fn check_placement(
    cart: &Cart,
    draft: &OrderDraft,
    reservations: &[Reservation],
    now: Timestamp,
) -> Result<()> {
    if let CartStatus::CheckedOut { order } = cart.status {
        return Err(Error::CartCheckedOut {
            cart: cart.id,
            order,
        });
    }
    let lines = &draft.priced.lines;
    if cart.currency != draft.priced.currency {
        return Err(Error::CurrencyMismatch {
            expected: cart.currency,
            found: draft.priced.currency,
        });
    }
    let same_lines = cart.lines.len() == lines.len()
        && cart
            .lines
            .iter()
            .zip(lines)
            .all(|(c, o)| c.sku == o.sku && c.quantity == o.quantity);
    if !same_lines {
        return Err(Error::CartChanged(cart.id));
    }
    for line in lines {
        let covered = reservations
            .iter()
            .any(|r| r.sku == line.sku && r.is_live(now) && r.quantity >= line.quantity);
        if !covered {
            return Err(Error::ReservationLapsed {
                sku: line.sku.clone(),
            });
        }
    }
    let restricted: Vec<Sku> = lines
        .iter()
        .filter(|l| l.age_restricted)
        .map(|l| l.sku.clone())
        .collect();
    if !restricted.is_empty() && cart.age_verification.is_none() {
        return Err(Error::AgeVerificationRequired { skus: restricted });
    }
    Ok(())
}

/// A change to stock or refunds that settling a payment requires; the store
/// makes it in the same atomic step as the order's change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentEffect {
    /// Sell the order's lines: decrement each SKU's on-hand count, record a
    /// `Sold` adjustment, and remove the order's allocation.
    SellStock,
    /// Remove the order's allocation without selling.
    ReleaseAllocation,
    /// Store this pending refund.
    RecordRefund(Refund),
}

/// What settling the first delivery of a payment event does: the outcome,
/// the events to append (in order) and the effects to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettlement {
    /// What happened.
    pub outcome: PaymentOutcome,
    /// The events to append to the order's log, in order.
    pub events: Vec<PendingEvent>,
    /// The stock and refund changes to make.
    pub effects: Vec<PaymentEffect>,
}

/// Settles the first delivery of `event` on `order` (changing the order),
/// given the [`decide_payment`] decision and, for a
/// [`Take`](PaymentDecision::Take), the SKUs whose stock is no longer there
/// for this order (`on_hand − live reservations − live allocations of other
/// orders < quantity`). Pure: every store calls it and makes the effects.
pub fn settle_payment(
    order: &mut Order,
    event: &PaymentEvent,
    decision: PaymentDecision,
    short: Vec<Sku>,
    now: Timestamp,
) -> Result<PaymentSettlement> {
    let id = || event.id.clone();
    let settled = |outcome, events, effects| PaymentSettlement {
        outcome,
        events,
        effects,
    };
    Ok(match decision {
        PaymentDecision::Take {
            amount,
            payment_ref,
        } if short.is_empty() => {
            let paid = order.transition(
                OrderStatus::Paid,
                OrderEventKind::PaymentReceived {
                    event: id(),
                    amount,
                },
                now,
            )?;
            order.payment_ref = payment_ref;
            settled(
                PaymentOutcome::Paid,
                vec![paid],
                vec![PaymentEffect::SellStock],
            )
        }
        PaymentDecision::Take {
            amount,
            payment_ref,
        } => {
            let (events, refund) = order.refund_payment(
                OrderEventKind::Oversold {
                    event: id(),
                    short,
                    refund: RefundId::for_payment_event(&event.id),
                },
                &event.id,
                amount,
                payment_ref,
                RefundReason::Oversold,
                now,
            )?;
            let effects = vec![
                PaymentEffect::ReleaseAllocation,
                PaymentEffect::RecordRefund(refund.clone()),
            ];
            settled(PaymentOutcome::Oversold { refund }, events, effects)
        }
        PaymentDecision::RefundCancelled {
            amount,
            payment_ref,
        } => {
            let (events, refund) = order.refund_payment(
                OrderEventKind::PaymentAfterCancellation {
                    event: id(),
                    refund: RefundId::for_payment_event(&event.id),
                },
                &event.id,
                amount,
                payment_ref,
                RefundReason::OrderCancelled,
                now,
            )?;
            let effects = vec![PaymentEffect::RecordRefund(refund.clone())];
            settled(
                PaymentOutcome::RefundedAfterCancellation { refund },
                events,
                effects,
            )
        }
        PaymentDecision::Mismatch { expected, received } => settled(
            PaymentOutcome::Mismatch { expected, received },
            vec![order.note(
                OrderEventKind::PaymentMismatch {
                    event: id(),
                    expected,
                    received,
                },
                now,
            )],
            vec![],
        ),
        PaymentDecision::Expire => {
            let expired = order.transition(
                OrderStatus::Expired,
                OrderEventKind::Expired { event: Some(id()) },
                now,
            )?;
            settled(
                PaymentOutcome::Expired,
                vec![expired],
                vec![PaymentEffect::ReleaseAllocation],
            )
        }
        PaymentDecision::MarkRefunded { amount } => {
            let refunded = order.transition(
                OrderStatus::Refunded,
                OrderEventKind::RefundedByProvider {
                    event: id(),
                    amount,
                },
                now,
            )?;
            settled(PaymentOutcome::RefundRecorded, vec![refunded], vec![])
        }
        PaymentDecision::RecordPartialRefund { amount } => {
            order.refunded_by_provider = Some(amount);
            let noted = order.note(
                OrderEventKind::RefundedByProvider {
                    event: id(),
                    amount,
                },
                now,
            );
            settled(PaymentOutcome::RefundRecorded, vec![noted], vec![])
        }
        PaymentDecision::RecordFailure { reason } => settled(
            PaymentOutcome::FailureRecorded,
            vec![order.note(
                OrderEventKind::PaymentFailed {
                    event: id(),
                    reason,
                },
                now,
            )],
            vec![],
        ),
        PaymentDecision::Ignore { reason } => settled(
            PaymentOutcome::Ignored {
                reason: reason.clone(),
            },
            vec![order.note(
                OrderEventKind::PaymentEventIgnored {
                    event: id(),
                    reason,
                },
                now,
            )],
            vec![],
        ),
    })
}

/// What applying a payment event did. Returned by
/// [`OrderStore::apply_payment_event`](crate::store::OrderStore::apply_payment_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentOutcome {
    /// The order is paid and its stock sold.
    Paid,
    /// This event id had been applied before; nothing changed but the record
    /// of the duplicate.
    Duplicate,
    /// The amount or currency did not match; recorded for review.
    Mismatch {
        /// The order's total.
        expected: Money,
        /// The amount reported.
        received: Money,
    },
    /// The stock was gone: the order is oversold-refunded and this refund
    /// must be sent to the provider (the facade does, once).
    Oversold {
        /// The refund to send.
        refund: Refund,
    },
    /// The order had been cancelled: it is refunded and this refund must be
    /// sent to the provider.
    RefundedAfterCancellation {
        /// The refund to send.
        refund: Refund,
    },
    /// The order expired with its session.
    Expired,
    /// A failed attempt was recorded.
    FailureRecorded,
    /// The provider's refund was recorded: the order is refunded when it
    /// was in full, and keeps its status (with
    /// [`Order::refunded_by_provider`]) when it was partial.
    RefundRecorded,
    /// The event was recorded and needed no action.
    Ignored {
        /// Why.
        reason: String,
    },
}

impl PaymentOutcome {
    /// The refund the caller must send to the provider, if any.
    pub fn refund_to_send(&self) -> Option<&Refund> {
        match self {
            PaymentOutcome::Oversold { refund }
            | PaymentOutcome::RefundedAfterCancellation { refund } => Some(refund),
            _ => None,
        }
    }

    /// Mutable access to the refund of an outcome that carries one, so the
    /// facade can report it as it stands after sending it.
    pub(crate) fn refund_mut(&mut self) -> Option<&mut Refund> {
        match self {
            PaymentOutcome::Oversold { refund }
            | PaymentOutcome::RefundedAfterCancellation { refund } => Some(refund),
            _ => None,
        }
    }
}

/// The result of applying a payment event: what happened and the order after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentApplication {
    /// What happened.
    pub outcome: PaymentOutcome,
    /// The order after it.
    pub order: Order,
}

/// A change a merchant (or the sweeper) asks of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderAction {
    /// Cancel an unpaid order, releasing its allocation.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Mark a paid order handed over.
    Fulfil,
}

impl OrderAction {
    /// The status the action leads to.
    pub fn target(&self) -> OrderStatus {
        match self {
            OrderAction::Cancel { .. } => OrderStatus::Cancelled,
            OrderAction::Fulfil => OrderStatus::Fulfilled,
        }
    }

    /// The event that records it.
    pub fn event(&self) -> OrderEventKind {
        match self {
            OrderAction::Cancel { reason } => OrderEventKind::Cancelled {
                reason: reason.clone(),
            },
            OrderAction::Fulfil => OrderEventKind::Fulfilled,
        }
    }

    /// Whether the action releases the order's allocation.
    pub fn releases_allocation(&self) -> bool {
        matches!(self, OrderAction::Cancel { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid_order(total: i64) -> Order {
        use crate::money::Currency;
        use crate::pricing::{PricedCart, Totals};
        let zero = Money::zero(Currency::AUD);
        let now = chrono::DateTime::UNIX_EPOCH;
        let mut order = Order::from_draft(
            OrderDraft {
                id: OrderId::new(),
                tenant: TenantId::parse("shop").unwrap(),
                cart: CartId::new(),
                idempotency_key: IdempotencyKey::parse("k").unwrap(),
                customer: None,
                priced: PricedCart {
                    currency: Currency::AUD,
                    prices: PriceBasis::TaxInclusive,
                    lines: vec![],
                    shipping: None,
                    taxes: vec![],
                    totals: Totals {
                        subtotal: zero,
                        discount_total: zero,
                        shipping: zero,
                        tax_total: zero,
                        grand_total: Money::new(total, Currency::AUD),
                    },
                    promotions: vec![],
                },
                redemptions: vec![],
                payment_expires_at: now,
            },
            now,
        );
        order.status = OrderStatus::Paid;
        order
    }

    #[test]
    fn only_a_full_refund_marks_the_order_refunded() {
        use crate::money::Currency;
        let order = paid_order(1000);
        let refunded = |minor| PaymentEventKind::Refunded {
            amount: Money::new(minor, Currency::AUD),
        };
        assert_eq!(
            decide_payment(&order, &refunded(1000)),
            PaymentDecision::MarkRefunded {
                amount: Money::new(1000, Currency::AUD)
            }
        );
        let partial = decide_payment(&order, &refunded(400));
        assert_eq!(
            partial,
            PaymentDecision::RecordPartialRefund {
                amount: Money::new(400, Currency::AUD)
            }
        );
        let mut order = order;
        let event = PaymentEvent {
            id: PaymentEventId::parse("evt_partial").unwrap(),
            tenant: order.tenant.clone(),
            order: order.id,
            kind: refunded(400),
        };
        let now = order.placed_at;
        let settled = settle_payment(&mut order, &event, partial, vec![], now).unwrap();
        assert_eq!(settled.outcome, PaymentOutcome::RefundRecorded);
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(order.refundable(), Money::new(600, Currency::AUD));
    }

    #[test]
    fn state_machine_table() {
        use OrderStatus::*;
        let allowed = [
            (AwaitingPayment, Paid),
            (AwaitingPayment, OversoldRefunded),
            (AwaitingPayment, Cancelled),
            (AwaitingPayment, Expired),
            (Expired, Paid),
            (Expired, OversoldRefunded),
            (Expired, Cancelled),
            (Paid, Fulfilled),
            (Paid, Refunded),
            (Fulfilled, Refunded),
            (Cancelled, Refunded),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            assert_eq!(OrderStatus::parse(from.as_str()), Some(from));
        }
    }
}
