//! Orders: the placed snapshot of a cart, an explicit state machine, the
//! append-only log of everything that happened to it, and the one pipeline
//! that decides every change ([`place`], [`decide`], [`settle_payment`]).

mod decide;
mod event;
mod feed;
mod payment;
mod refund;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cart::AttributeKey;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{CartId, CustomerId, IdempotencyKey, OrderId, PromotionId, TenantId};
use crate::money::{Currency, Money};
use crate::payment::PaymentSession;
use crate::pricing::{PricedCart, PricedLine, PromotionOutcome, ShippingCharge, Totals};
use crate::tax::{PriceBasis, TaxLine};

pub use decide::{OrderChange, OrderCommand, OrderEffect, check_redemption, decide, place};
pub use event::{OrderEvent, OrderEventKind, PendingEvent};
pub use feed::{FeedItem, FeedPosition};
pub use payment::{
    PaymentApplication, PaymentDecision, PaymentOutcome, PaymentSettlement, decide_payment,
    settle_payment,
};
pub use refund::{
    Refund, RefundAmount, RefundError, RefundFailure, RefundFailureKind, RefundLine, RefundReason,
    RefundRequest, RefundStatus,
};

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub payment_expires_at: Timestamp,
}

/// A placed order: a snapshot of the priced cart that later changes to
/// prices, promotions or tax rates never touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Where it stands: read it with [`status`](Self::status).
    status: OrderStatus,
    /// When the payment window closes.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub payment_expires_at: Timestamp,
    /// The payment session the buyer was sent to, once created.
    pub payment_session: Option<PaymentSession>,
    /// The provider's reference of the payment taken (for refunds).
    pub payment_ref: Option<String>,
    /// What the provider reports refunded outside this library so far
    /// (cumulative, a partial refund from its dashboard say).
    #[serde(default)]
    pub refunded_by_provider: Option<Money>,
    /// The limited promotions it redeemed when placed: given back when it
    /// is cancelled or expires unpaid, taken again if it is paid after
    /// expiring.
    #[serde(default)]
    pub redemptions: Vec<Redemption>,
    /// The cart's attributes when it was placed: read them with
    /// [`attributes`](Self::attributes). Orders placed before attributes
    /// existed have none.
    #[serde(default)]
    attributes: BTreeMap<AttributeKey, String>,
    /// When it was placed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub placed_at: Timestamp,
    /// When it last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl Order {
    /// The order a draft becomes when placed at `now` (with no attributes:
    /// [`place`] copies the cart's).
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
            redemptions: draft.redemptions,
            attributes: BTreeMap::new(),
            placed_at: now,
            updated_at: now,
        }
    }

    /// The attributes of the cart it was placed from, as they were at
    /// placement ([`Cart::attributes`](crate::Cart::attributes)).
    pub fn attributes(&self) -> &BTreeMap<AttributeKey, String> {
        &self.attributes
    }

    /// What the buyer must pay: the grand total.
    pub fn total(&self) -> Money {
        self.totals.grand_total
    }

    /// Where it stands. Only the state machine ([`decide`],
    /// [`settle_payment`], [`place`]) changes it.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// What has been refunded of its payment so far, given its `refunds`:
    /// the larger of what this library refunded (pending refunds included)
    /// and what the provider reports refunded in all.
    pub fn refunded(&self, refunds: &[Refund]) -> Result<Money> {
        let ours = Money::sum(
            self.currency,
            refunds
                .iter()
                .filter(|refund| refund.order == self.id)
                .map(|refund| refund.amount),
        )?;
        Ok(match self.refunded_by_provider {
            Some(theirs) if theirs.minor() > ours.minor() => theirs,
            _ => ours,
        })
    }

    /// What is left to refund, given its `refunds`: the total less
    /// [`refunded`](Self::refunded), never below zero.
    pub fn refundable(&self, refunds: &[Refund]) -> Result<Money> {
        let left = self.total().checked_sub(self.refunded(refunds)?)?;
        Ok(if left.is_negative() {
            Money::zero(self.currency)
        } else {
            left
        })
    }

    /// Moves the order to `to` if the state machine allows it, and returns
    /// the event that records the change with the effects the change
    /// implies (see [`OrderEffect`]), in the order a store makes them. On
    /// refusal nothing changes.
    pub(crate) fn transition(
        &mut self,
        to: OrderStatus,
        kind: OrderEventKind,
        now: Timestamp,
    ) -> Result<(PendingEvent, Vec<OrderEffect>)> {
        use OrderStatus::*;
        let from = self.status;
        if !from.can_become(to) {
            return Err(Error::InvalidTransition {
                order: self.id,
                from,
                to,
            });
        }
        let redemptions = || self.redemptions.clone();
        // Stock first, then promotion usage: one lock order in every store.
        let effects = match (from, to) {
            (AwaitingPayment, Paid) => vec![OrderEffect::SellStock],
            (Expired, Paid) => vec![
                OrderEffect::SellStock,
                OrderEffect::RestoreRedemptions(redemptions()),
            ],
            (AwaitingPayment, Cancelled | Expired | OversoldRefunded) => vec![
                OrderEffect::ReleaseAllocation,
                OrderEffect::ReleaseRedemptions(redemptions()),
            ],
            (Expired, OversoldRefunded) => vec![OrderEffect::ReleaseAllocation],
            _ => vec![],
        };
        let effects = effects
            .into_iter()
            .filter(|effect| !effect.is_empty())
            .collect();
        self.status = to;
        self.updated_at = now;
        Ok((
            PendingEvent {
                from,
                to,
                kind,
                at: now,
            },
            effects,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

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
