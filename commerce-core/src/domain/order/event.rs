//! The append-only audit log of an order.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{OrderId, PaymentEventId, RefundId, Sku};
use crate::money::Money;

use super::{OrderStatus, RefundFailureKind, RefundLine};

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderEvent {
    /// The order.
    pub order: OrderId,
    /// Its position in the order's log, from 1, without gaps.
    pub seq: u32,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    Fulfilled {
        /// What was noted at the hand-over ("photo ID checked by Sam"), if
        /// anything. Events written before notes existed read as `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A refund was requested from the provider.
    RefundRequested {
        /// The refund.
        refund: RefundId,
        /// The amount.
        amount: Money,
        /// The units it refunds, when the merchant chose lines.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<RefundLine>,
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
        /// What kind of failure it was (records written before kinds were
        /// kept read as [`RefundFailureKind::Other`](RefundFailureKind::Other)).
        #[serde(default)]
        kind: RefundFailureKind,
    },
    /// The provider reported a refund made outside this library.
    RefundedByProvider {
        /// The provider's event.
        event: PaymentEventId,
        /// The amount refunded.
        amount: Money,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failing test")]

    use super::*;

    /// Events stored before fulfilment notes existed read back unchanged,
    /// and an event without a note is written as before.
    #[test]
    fn fulfilled_events_without_a_note_keep_their_old_form() {
        let old: OrderEventKind = serde_json::from_str(r#"{"type":"fulfilled"}"#).unwrap();
        assert_eq!(old, OrderEventKind::Fulfilled { note: None });
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"type":"fulfilled"}"#
        );
        let noted = OrderEventKind::Fulfilled {
            note: Some("photo ID checked".into()),
        };
        let text = serde_json::to_string(&noted).unwrap();
        assert_eq!(text, r#"{"type":"fulfilled","note":"photo ID checked"}"#);
        assert_eq!(
            serde_json::from_str::<OrderEventKind>(&text).unwrap(),
            noted
        );
    }
}
