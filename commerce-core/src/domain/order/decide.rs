//! The order pipeline: every change to an order is decided here, once, as
//! a pure function returning the new order, the events to append and the
//! effects a store makes in the same atomic step.

use serde::{Deserialize, Serialize};

use crate::cart::Cart;
use crate::clock::Timestamp;
use crate::error::{Entity, Error, Result};
use crate::ids::{RefundId, Sku};
use crate::inventory::Reservation;
use crate::payment::{PaymentSession, RefundReceipt};
use crate::promotion::PromotionUsage;
use crate::text::{TextField, check_text};

use super::{
    Order, OrderDraft, OrderEventKind, OrderStatus, PendingEvent, Redemption, Refund,
    RefundFailure, RefundRequest, RefundStatus,
};

/// A change asked of an order by a merchant, the sweeper or the checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderCommand {
    /// Cancel an unpaid (or expired) order: its allocation and its
    /// promotion redemptions are given back.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Mark a paid order handed over, with what was noted then.
    Fulfil {
        /// A note for the order's log (an ID check, who handed it over).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Expire an order whose payment window closed unpaid: its allocation
    /// and its promotion redemptions are given back.
    Expire,
    /// Record the payment session the buyer is sent to. The same session
    /// again changes nothing.
    AttachSession(PaymentSession),
    /// Refund (part of) a paid or fulfilled order's payment.
    RequestRefund(RefundRequest),
    /// Record the provider's answer to a refund of this order.
    RecordRefundResult {
        /// The refund.
        refund: RefundId,
        /// The provider's receipt, or why it refused or failed.
        result: std::result::Result<RefundReceipt, RefundFailure>,
    },
}

/// A change to stock, promotion usage, carts or refunds that an order's
/// change requires: the store makes each, in order, in the same atomic
/// step as it saves the order and appends its events.
///
/// Deliberately exhaustive: a store matches every variant, so a new effect
/// is a compile error in every store until it carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEffect {
    /// Count each redemption, refusing the whole step with
    /// [`Error::PromotionExhausted`] if one is past its limits: lock the
    /// promotion's usage (and the customer's), read it, ask
    /// [`check_redemption`], then add one.
    Redeem(Vec<Redemption>),
    /// Give each redemption back: subtract one from the promotion's usage
    /// and the customer's, never below zero.
    ReleaseRedemptions(Vec<Redemption>),
    /// Count each redemption again without checking limits (an expired
    /// order paid after all keeps the discount it was priced with).
    RestoreRedemptions(Vec<Redemption>),
    /// Turn the cart's reservations of the order's lines into the order's
    /// allocations, live until the order's `payment_expires_at`.
    AllocateStock,
    /// Sell the order's lines: decrement each SKU's on-hand count, record a
    /// `Sold` adjustment, and remove the order's allocation.
    SellStock,
    /// Remove the order's allocation without selling.
    ReleaseAllocation,
    /// Save this cart, now checked out by the order.
    CheckOutCart(Box<Cart>),
    /// Store this new pending refund. An id already taken (by another
    /// order's refund) refuses the step with
    /// [`RefundError::IdReused`](super::RefundError::IdReused).
    RecordRefund(Refund),
    /// Replace the stored refund with the same id by this one.
    UpdateRefund(Refund),
}

impl OrderEffect {
    /// Whether carrying it out changes nothing (no redemptions to count).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            OrderEffect::Redeem(r)
            | OrderEffect::ReleaseRedemptions(r)
            | OrderEffect::RestoreRedemptions(r) => r.is_empty(),
            _ => false,
        }
    }
}

/// What a command does to an order: the order after it, the events to
/// append (in order), the effects to make (in order) and the refund it
/// made or changed. A store makes all of it in one atomic step, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChange {
    /// The order after the change.
    pub order: Order,
    /// The events to append to its log, in order.
    pub events: Vec<PendingEvent>,
    /// The effects to make, in order.
    pub effects: Vec<OrderEffect>,
    /// The refund the command made, found (on a retry) or changed.
    pub refund: Option<Refund>,
}

impl OrderChange {
    fn new(order: Order, events: Vec<PendingEvent>, effects: Vec<OrderEffect>) -> Self {
        Self {
            order,
            events,
            effects,
            refund: None,
        }
    }

    /// Whether there is nothing to write (a repeated command).
    pub fn is_unchanged(&self) -> bool {
        self.events.is_empty() && self.effects.is_empty()
    }
}

/// Decides what `command` does to `order`, given the order's `refunds`
/// (every refund of this order; only refund commands read them) at `now`.
///
/// This is the whole order policy outside payments (see [`settle_payment`](super::settle_payment)):
/// every store loads and locks the order (and its refunds), calls this,
/// then makes the change's effects, saves the order and appends its events
/// in one atomic step. Refusals change nothing:
///
/// - a cancel reason PostgreSQL could not store is [`Error::InvalidText`];
/// - a change the state machine does not allow is
///   [`Error::InvalidTransition`] (cancelling a paid order, fulfilling an
///   unpaid one, refunding an unpaid one);
/// - expiring an order whose payment window is still open is
///   [`Error::PaymentWindowOpen`];
/// - a refund past what is left, of a line's units past what is left, or
///   reusing another refund's id is an [`Error::Refund`];
/// - recording a result for a refund this order does not have is
///   [`Error::NotFound`].
pub fn decide(
    order: &Order,
    refunds: &[Refund],
    command: &OrderCommand,
    now: Timestamp,
) -> Result<OrderChange> {
    let mut next = order.clone();
    match command {
        OrderCommand::Cancel { reason } => {
            check_text(TextField::CancelReason, reason)?;
            let kind = OrderEventKind::Cancelled {
                reason: reason.clone(),
            };
            let (event, effects) = next.transition(OrderStatus::Cancelled, kind, now)?;
            Ok(OrderChange::new(next, vec![event], effects))
        }
        OrderCommand::Fulfil { note } => {
            if let Some(note) = note {
                check_text(TextField::FulfilmentNote, note)?;
            }
            let kind = OrderEventKind::Fulfilled { note: note.clone() };
            let (event, effects) = next.transition(OrderStatus::Fulfilled, kind, now)?;
            Ok(OrderChange::new(next, vec![event], effects))
        }
        OrderCommand::Expire => {
            if next.status == OrderStatus::AwaitingPayment && next.payment_expires_at > now {
                return Err(Error::PaymentWindowOpen {
                    order: next.id,
                    closes_at: next.payment_expires_at,
                });
            }
            let kind = OrderEventKind::Expired { event: None };
            let (event, effects) = next.transition(OrderStatus::Expired, kind, now)?;
            Ok(OrderChange::new(next, vec![event], effects))
        }
        OrderCommand::AttachSession(session) => {
            if next.payment_session.as_ref() == Some(session) {
                return Ok(OrderChange::new(next, vec![], vec![]));
            }
            next.payment_session = Some(session.clone());
            next.updated_at = now;
            let event = next.note(
                OrderEventKind::PaymentSessionCreated {
                    session: session.id.clone(),
                },
                now,
            );
            Ok(OrderChange::new(next, vec![event], vec![]))
        }
        OrderCommand::RequestRefund(request) => {
            match next.request_refund(request, refunds, now)? {
                Some((events, effects, refund)) => Ok(OrderChange {
                    order: next,
                    events,
                    effects,
                    refund: Some(refund),
                }),
                None => Ok(OrderChange {
                    order: next,
                    events: vec![],
                    effects: vec![],
                    refund: refunds.iter().find(|r| r.id == request.id).cloned(),
                }),
            }
        }
        OrderCommand::RecordRefundResult { refund, result } => {
            let mut record = refunds
                .iter()
                .find(|r| &r.id == refund && r.order == order.id)
                .cloned()
                .ok_or_else(|| Error::not_found(Entity::Refund, refund))?;
            if !record.is_pending() {
                return Ok(OrderChange {
                    refund: Some(record),
                    ..OrderChange::new(next, vec![], vec![])
                });
            }
            let kind = match result {
                Ok(receipt) => {
                    record.status = RefundStatus::Succeeded {
                        provider_ref: receipt.provider_ref.clone(),
                    };
                    record.last_failure = None;
                    OrderEventKind::RefundSucceeded {
                        refund: refund.clone(),
                        provider_ref: receipt.provider_ref.clone(),
                    }
                }
                Err(failure) => {
                    record.last_failure = Some(failure.clone());
                    OrderEventKind::RefundFailed {
                        refund: refund.clone(),
                        message: failure.message.clone(),
                        kind: failure.kind,
                    }
                }
            };
            let event = next.note(kind, now);
            Ok(OrderChange {
                order: next,
                events: vec![event],
                effects: vec![OrderEffect::UpdateRefund(record.clone())],
                refund: Some(record),
            })
        }
    }
}

/// Decides the placement of `draft` from `cart` at `now`, given the cart's
/// reservations: the new order awaiting payment (with the cart's
/// attributes, as the locked cart holds them), its `Placed` event, and
/// the effects (check the cart out, allocate the stock, redeem the limited
/// promotions), in the order a store makes them: in every change, carts
/// before stock before promotion usage, so stores lock rows in one order.
///
/// Refusals, in this order: a checked-out cart is
/// [`Error::CartCheckedOut`]; a currency other than the cart's is
/// [`Error::CurrencyMismatch`]; lines other than the cart's are
/// [`Error::CartChanged`]; a line not covered by a live reservation of the
/// cart is [`Error::ReservationLapsed`]; an age-restricted line without an
/// age verification on the cart is [`Error::AgeVerificationRequired`].
pub fn place(
    cart: &Cart,
    draft: &OrderDraft,
    reservations: &[Reservation],
    now: Timestamp,
) -> Result<OrderChange> {
    check_placement(cart, draft, reservations, now)?;
    let mut order = Order::from_draft(draft.clone(), now);
    order.attributes = cart.attributes().clone();
    let mut cart = cart.clone();
    cart.check_out(order.id, now)?;
    let placed = order.note(
        OrderEventKind::Placed {
            total: order.total(),
        },
        now,
    );
    let effects = vec![
        OrderEffect::CheckOutCart(Box::new(cart)),
        OrderEffect::AllocateStock,
        OrderEffect::Redeem(order.redemptions.clone()),
    ]
    .into_iter()
    .filter(|effect| !effect.is_empty())
    .collect();
    Ok(OrderChange::new(order, vec![placed], effects))
}

/// Whether `redemption` may be counted given the promotion's current
/// `usage` (in total and by the redemption's customer): fewer than
/// `usage_limit` orders in total and fewer than `per_customer_limit`
/// orders of the customer have redeemed it. A per-customer limit with no
/// customer cannot be honoured and is refused. Refused with
/// [`Error::PromotionExhausted`].
pub fn check_redemption(redemption: &Redemption, usage: PromotionUsage) -> Result<()> {
    let exhausted = |per_customer| {
        Err(Error::PromotionExhausted {
            promotion: redemption.promotion.clone(),
            per_customer,
        })
    };
    if redemption
        .usage_limit
        .is_some_and(|limit| usage.total >= limit)
    {
        return exhausted(false);
    }
    if let Some(limit) = redemption.per_customer_limit
        && (redemption.customer.is_none() || usage.by_customer >= limit)
    {
        return exhausted(true);
    }
    Ok(())
}

/// Checks that `draft` can be placed from `cart` at `now`, given the cart's
/// reservations: the cart is open and in the draft's currency, its lines are
/// exactly the draft's, every line is covered by a live reservation, and an
/// age verification is recorded if a line is age-restricted.
fn check_placement(
    cart: &Cart,
    draft: &OrderDraft,
    reservations: &[Reservation],
    now: Timestamp,
) -> Result<()> {
    cart.ensure_open()?;
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
