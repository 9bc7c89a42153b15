//! The payment policy: what a provider's event does to an order.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{RefundId, Sku};
use crate::money::Money;
use crate::payment::{PaymentEvent, PaymentEventKind};

use super::{Order, OrderEffect, OrderEventKind, OrderStatus, PendingEvent, Refund, RefundReason};

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

/// What settling the first delivery of a payment event does: the outcome,
/// the events to append (in order) and the effects to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettlement {
    /// What happened.
    pub outcome: PaymentOutcome,
    /// The events to append to the order's log, in order.
    pub events: Vec<PendingEvent>,
    /// The changes to stock, promotion usage and refunds to make, in order.
    pub effects: Vec<OrderEffect>,
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
            let (paid, effects) = order.transition(
                OrderStatus::Paid,
                OrderEventKind::PaymentReceived {
                    event: id(),
                    amount,
                },
                now,
            )?;
            order.payment_ref = payment_ref;
            settled(PaymentOutcome::Paid, vec![paid], effects)
        }
        PaymentDecision::Take {
            amount,
            payment_ref,
        } => {
            let (events, effects, refund) = order.refund_payment(
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
            settled(PaymentOutcome::Oversold { refund }, events, effects)
        }
        PaymentDecision::RefundCancelled {
            amount,
            payment_ref,
        } => {
            let (events, effects, refund) = order.refund_payment(
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
            let (expired, effects) = order.transition(
                OrderStatus::Expired,
                OrderEventKind::Expired { event: Some(id()) },
                now,
            )?;
            settled(PaymentOutcome::Expired, vec![expired], effects)
        }
        PaymentDecision::MarkRefunded { amount } => {
            let (refunded, effects) = order.transition(
                OrderStatus::Refunded,
                OrderEventKind::RefundedByProvider {
                    event: id(),
                    amount,
                },
                now,
            )?;
            settled(PaymentOutcome::RefundRecorded, vec![refunded], effects)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CartId, IdempotencyKey, OrderId, PaymentEventId, TenantId};
    use crate::order::OrderDraft;
    use crate::tax::PriceBasis;

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
        assert_eq!(order.status(), OrderStatus::Paid);
        assert_eq!(
            order.refundable(&[]).unwrap(),
            Money::new(600, Currency::AUD)
        );
    }
}
