//! Refunds: the provider's money going back, pending until it confirms.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::Result;
use crate::ids::{OrderId, PaymentEventId, RefundId, Sku, TenantId};
use crate::money::Money;
use crate::payment::GatewayError;

use super::{Order, OrderEffect, OrderEventKind, OrderStatus, PendingEvent};

/// Why a refund is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The units it refunds, when the merchant chose lines (empty for a
    /// refund of an amount or of the whole payment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<RefundLine>,
    /// Why the provider last refused or failed it, while it is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<RefundFailure>,
    /// When it was requested.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
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
            lines: Vec::new(),
            last_failure: None,
            requested_at: now,
        }
    }

    /// Whether the provider has not confirmed it yet.
    pub fn is_pending(&self) -> bool {
        self.status == RefundStatus::Pending
    }
}

/// Units of one order line to refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundLine {
    /// The line's SKU.
    pub sku: Sku,
    /// How many of its units.
    pub quantity: u32,
}

/// How much of a paid order a merchant refund gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundAmount {
    /// Everything not yet refunded.
    Remaining,
    /// This amount (in the order's currency, more than zero).
    Amount(Money),
    /// These units: each line's share is its total split evenly over its
    /// units, the odd minor units going to the last ones refunded, so that
    /// refunding every unit of a line gives back exactly its total.
    /// Shipping is not included.
    Lines(Vec<RefundLine>),
}

/// A merchant's refund of a paid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundRequest {
    /// The refund's id: the idempotency key of the request here and at the
    /// provider. Asking again with the same id and amount returns the same
    /// refund; with another amount it is refused.
    pub id: RefundId,
    /// How much.
    pub amount: RefundAmount,
}

impl RefundRequest {
    /// A refund of everything not yet refunded, with a new random id.
    pub fn remaining() -> Self {
        Self {
            id: RefundId::new_random(),
            amount: RefundAmount::Remaining,
        }
    }

    /// A refund of `amount`, with a new random id.
    pub fn amount(amount: Money) -> Self {
        Self {
            id: RefundId::new_random(),
            amount: RefundAmount::Amount(amount),
        }
    }

    /// A refund of `lines`, with a new random id.
    pub fn lines(lines: Vec<RefundLine>) -> Self {
        Self {
            id: RefundId::new_random(),
            amount: RefundAmount::Lines(lines),
        }
    }

    /// The same request with the id `id` (to make a retry idempotent).
    pub fn with_id(mut self, id: RefundId) -> Self {
        self.id = id;
        self
    }

    /// Whether `existing` is what this request made (a retry).
    fn matches(&self, existing: &Refund) -> bool {
        existing.reason == RefundReason::RequestedByMerchant
            && match &self.amount {
                RefundAmount::Remaining => true,
                RefundAmount::Amount(amount) => existing.amount == *amount,
                RefundAmount::Lines(lines) => existing.lines == *lines,
            }
    }
}

/// Why a merchant refund was refused. Nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefundError {
    /// More than is left of the payment.
    #[error("refund of {requested} for order {order} exceeds the {refundable} left to refund")]
    ExceedsRefundable {
        /// The order.
        order: OrderId,
        /// What was asked.
        requested: Money,
        /// What is left.
        refundable: Money,
    },
    /// Zero or less, or in another currency.
    #[error("refund of {requested} for order {order} must be a positive amount in its currency")]
    InvalidAmount {
        /// The order.
        order: OrderId,
        /// What was asked.
        requested: Money,
    },
    /// More units of a line than are left to refund (or a line the order
    /// does not have, with `refundable` 0).
    #[error("refund of {requested} units of {sku} for order {order}: {refundable} left")]
    ExceedsLine {
        /// The order.
        order: OrderId,
        /// The SKU.
        sku: Sku,
        /// The units asked for.
        requested: u32,
        /// The units of the line not yet refunded.
        refundable: u32,
    },
    /// The refund id was used for another refund.
    #[error("refund id {refund} was used for another refund")]
    IdReused {
        /// The id.
        refund: RefundId,
    },
}

/// What kind of failure a provider reported for a refund.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefundFailureKind {
    /// The provider refused it; a retry will be refused too until someone
    /// looks into it.
    Rejected,
    /// A failure that may pass; the sweeper retries it with the same key.
    Transient,
    /// The gateway cannot make this refund.
    Unsupported,
    /// Anything else.
    #[default]
    Other,
}

/// The provider's refusal or failure of a refund, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("refund failed ({kind:?}): {message}")]
pub struct RefundFailure {
    /// What kind of failure.
    pub kind: RefundFailureKind,
    /// The provider's message.
    pub message: String,
}

impl From<&GatewayError> for RefundFailure {
    fn from(error: &GatewayError) -> Self {
        let kind = match error {
            GatewayError::Rejected { .. } => RefundFailureKind::Rejected,
            GatewayError::Transient { .. } => RefundFailureKind::Transient,
            GatewayError::Unsupported { .. } => RefundFailureKind::Unsupported,
            _ => RefundFailureKind::Other,
        };
        RefundFailure {
            kind,
            message: error.to_string(),
        }
    }
}

/// What recording a refund takes: the events to append, the effects to
/// make and the pending refund.
pub(crate) type Refunding = (Vec<PendingEvent>, Vec<OrderEffect>, Refund);

impl Order {
    /// Refunds a payment of `amount` taken by `event` (an oversold or
    /// cancelled order): moves the order to the status `reason` leads to,
    /// recording `kind`, keeps the payment reference, and returns the events
    /// (the change, then `RefundRequested`), the effects (those of the
    /// change, then recording the refund) and the pending refund, whose id
    /// is [`RefundId::for_payment_event`]. On refusal nothing changes.
    pub(crate) fn refund_payment(
        &mut self,
        kind: OrderEventKind,
        event: &PaymentEventId,
        amount: Money,
        payment_ref: Option<String>,
        reason: RefundReason,
        now: Timestamp,
    ) -> Result<Refunding> {
        let (change, mut effects) = self.transition(reason.leads_to(), kind, now)?;
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
                lines: Vec::new(),
            },
            now,
        );
        effects.push(OrderEffect::RecordRefund(refund.clone()));
        Ok((vec![change, requested], effects, refund))
    }

    /// A merchant refund of this paid or fulfilled order, given its earlier
    /// `refunds`: the pending refund, the events and the effects. The order
    /// becomes refunded when nothing is left to refund. `Ok(None)` for a
    /// retry of a refund already recorded (nothing changes).
    pub(crate) fn request_refund(
        &mut self,
        request: &RefundRequest,
        refunds: &[Refund],
        now: Timestamp,
    ) -> Result<Option<Refunding>> {
        if let Some(existing) = refunds.iter().find(|r| r.id == request.id) {
            return if request.matches(existing) {
                Ok(None)
            } else {
                Err(RefundError::IdReused {
                    refund: request.id.clone(),
                }
                .into())
            };
        }
        if !matches!(self.status, OrderStatus::Paid | OrderStatus::Fulfilled) {
            return Err(crate::Error::InvalidTransition {
                order: self.id,
                from: self.status,
                to: OrderStatus::Refunded,
            });
        }
        let refundable = self.refundable(refunds)?;
        let (amount, lines) = match &request.amount {
            RefundAmount::Remaining => (refundable, Vec::new()),
            RefundAmount::Amount(amount) => (*amount, Vec::new()),
            RefundAmount::Lines(lines) => (self.line_refund(lines, refunds)?, lines.clone()),
        };
        if amount.currency() != self.currency || amount.minor() <= 0 {
            return Err(RefundError::InvalidAmount {
                order: self.id,
                requested: amount,
            }
            .into());
        }
        if amount.minor() > refundable.minor() {
            return Err(RefundError::ExceedsRefundable {
                order: self.id,
                requested: amount,
                refundable,
            }
            .into());
        }
        let mut refund = Refund::pending(
            self,
            request.id.clone(),
            amount,
            RefundReason::RequestedByMerchant,
            now,
        );
        refund.lines = lines.clone();
        let kind = OrderEventKind::RefundRequested {
            refund: refund.id.clone(),
            amount,
            lines,
        };
        let event = if amount == refundable {
            let (event, _) = self.transition(OrderStatus::Refunded, kind, now)?;
            event
        } else {
            self.updated_at = now;
            self.note(kind, now)
        };
        let effects = vec![OrderEffect::RecordRefund(refund.clone())];
        Ok(Some((vec![event], effects, refund)))
    }

    /// What refunding `lines` gives back, given the units earlier `refunds`
    /// refunded: per line, the cumulative share of its total after these
    /// units less the share before them, so shares always sum to the total.
    fn line_refund(&self, lines: &[RefundLine], refunds: &[Refund]) -> Result<Money> {
        let mut amounts = Vec::with_capacity(lines.len());
        for (index, asked) in lines.iter().enumerate() {
            let exceeds = |refundable| RefundError::ExceedsLine {
                order: self.id,
                sku: asked.sku.clone(),
                requested: asked.quantity,
                refundable,
            };
            let Some(line) = self.lines.iter().find(|l| l.sku == asked.sku) else {
                return Err(exceeds(0).into());
            };
            let units = u64::from(line.quantity.get());
            // Units refunded before, and units asked earlier in this request.
            let before: u64 = refunds
                .iter()
                .filter(|r| r.order == self.id)
                .flat_map(|r| &r.lines)
                .chain(lines.iter().take(index))
                .filter(|l| l.sku == asked.sku)
                .map(|l| u64::from(l.quantity))
                .sum();
            let left = units.saturating_sub(before);
            if asked.quantity == 0 || u64::from(asked.quantity) > left {
                return Err(exceeds(u32::try_from(left).unwrap_or(u32::MAX)).into());
            }
            let after = before.saturating_add(u64::from(asked.quantity));
            let share = |refunded: u64| -> Result<i64> {
                let minor = i128::from(line.total.minor())
                    .checked_mul(i128::from(refunded))
                    .and_then(|scaled| scaled.checked_div(i128::from(units)))
                    .ok_or(crate::money::MoneyError::Overflow)?;
                Ok(i64::try_from(minor).map_err(|_| crate::money::MoneyError::Overflow)?)
            };
            let minor = share(after)?
                .checked_sub(share(before)?)
                .ok_or(crate::money::MoneyError::Overflow)?;
            amounts.push(Money::new(minor, self.currency));
        }
        Ok(Money::sum(self.currency, amounts)?)
    }
}
