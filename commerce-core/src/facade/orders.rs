//! Orders after checkout: merchant changes, refunds, payments and the
//! sweeper. Every change goes through the store's one order pipeline.

use crate::error::{Entity, Error, Result};
use crate::ids::OrderId;
use crate::order::{
    Order, OrderCommand, OrderEvent, PaymentApplication, PaymentOutcome, Refund, RefundFailure,
    RefundRequest,
};
use crate::payment::{PaymentEvent, WebhookOutcome, WebhookRequest};
use crate::store::{ChangedOrder, OrderCursor, OrderFilter};

use super::{Commerce, Shop, WebhookHandled};

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired reservations deleted.
    pub reservations_removed: usize,
    /// Orders expired because their payment window closed unpaid.
    pub orders_expired: Vec<OrderId>,
    /// Pending refunds sent to the gateway again.
    pub refunds_retried: usize,
    /// Of those, how many the gateway confirmed.
    pub refunds_confirmed: usize,
}

/// A page of orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<Order>,
    /// Where the next page starts, when there is one.
    pub next: Option<OrderCursor>,
}

impl Commerce {
    /// Verifies a webhook delivery with the gateway and applies the payment
    /// event it carries to the tenant it names, exactly once.
    ///
    /// A refused delivery (bad signature, stale, malformed) is
    /// [`Error::Webhook`]: answer it with a 4xx. Anything `Ok` should be
    /// acknowledged, duplicates and [`WebhookHandled::UnknownOrder`]
    /// included; other errors (a store failure) may be answered with a 5xx
    /// so the provider delivers again.
    pub async fn handle_webhook(&self, request: &WebhookRequest) -> Result<WebhookHandled> {
        match self
            .inner
            .gateway
            .parse_webhook(request, self.now())
            .await?
        {
            WebhookOutcome::Event(event) => self.apply_routed(event).await,
            WebhookOutcome::Ignored { event_type } => Ok(WebhookHandled::Ignored { event_type }),
        }
    }

    /// Confirms the payment of the session `session_id` a buyer returned
    /// from (the storefront's success page): the gateway reads the session
    /// back and, once it is paid, its payment event is applied to the tenant
    /// it names exactly as a webhook's would be. `Ok(None)` while it is not
    /// paid.
    ///
    /// Races the provider's webhook harmlessly: whichever arrives second
    /// finds the order paid, and a reloaded page is a duplicate. Refused
    /// with [`Error::Gateway`] when the gateway refuses the id or cannot be
    /// reached.
    pub async fn confirm_return(&self, session_id: &str) -> Result<Option<WebhookHandled>> {
        match self.inner.gateway.confirm_session(session_id).await? {
            Some(event) => Ok(Some(self.apply_routed(event).await?)),
            None => Ok(None),
        }
    }

    /// Applies a verified payment event to the tenant it names.
    async fn apply_routed(&self, event: PaymentEvent) -> Result<WebhookHandled> {
        match self.shop(&event.tenant).apply_payment_event(&event).await {
            Ok(applied) => Ok(WebhookHandled::Applied(Box::new(applied))),
            // A genuine event for an order this store does not hold
            // (another deployment on the same provider account, say):
            // retrying cannot help, so it is acknowledged and named.
            Err(Error::NotFound {
                entity: Entity::Order,
                ..
            }) => {
                tracing::warn!(
                    event = %event.id,
                    tenant = %event.tenant,
                    order = %event.order,
                    "payment event for an order this store does not hold"
                );
                Ok(WebhookHandled::UnknownOrder {
                    event: event.id,
                    tenant: event.tenant,
                    order: event.order,
                })
            }
            Err(other) => Err(other),
        }
    }
}

impl Shop {
    /// The order `id`.
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.scope
            .orders()
            .order(id)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, id))
    }

    /// A page of the shop's orders matching `filter`, newest first, of at
    /// most `limit` (clamped to 1 to 200), after `after` (the previous
    /// page's [`OrderPage::next`]).
    pub async fn orders(
        &self,
        filter: &OrderFilter,
        after: Option<&OrderCursor>,
        limit: usize,
    ) -> Result<OrderPage> {
        let limit = limit.clamp(1, 200);
        let mut orders = self
            .scope
            .orders()
            .orders(filter, after, limit.saturating_add(1))
            .await?;
        let more = orders.len() > limit;
        orders.truncate(limit);
        let next = if more {
            orders.last().map(OrderCursor::after)
        } else {
            None
        };
        Ok(OrderPage { orders, next })
    }

    /// The audit log of order `id`, oldest first.
    pub async fn order_events(&self, id: OrderId) -> Result<Vec<OrderEvent>> {
        self.order(id).await?;
        self.scope.orders().events(id).await
    }

    /// The refunds of order `id`, oldest first.
    pub async fn order_refunds(&self, id: OrderId) -> Result<Vec<Refund>> {
        self.order(id).await?;
        self.scope.orders().refunds(id).await
    }

    pub(super) async fn change(&self, id: OrderId, command: OrderCommand) -> Result<ChangedOrder> {
        self.scope
            .orders()
            .change_order(id, &command, self.now())
            .await
    }

    /// Cancels an unpaid (or expired) order: its stock and the promotion
    /// redemptions it took are given back. A paid order is refused with
    /// [`Error::InvalidTransition`] (refund it instead).
    pub async fn cancel_order(&self, id: OrderId, reason: impl Into<String>) -> Result<Order> {
        let command = OrderCommand::Cancel {
            reason: reason.into(),
        };
        Ok(self.change(id, command).await?.order)
    }

    /// Marks a paid order handed over.
    pub async fn fulfil_order(&self, id: OrderId) -> Result<Order> {
        Ok(self
            .change(id, OrderCommand::Fulfil { note: None })
            .await?
            .order)
    }

    /// Marks a paid order handed over, keeping `note` in its log (the
    /// `Fulfilled` event): what a merchant must be able to show later, such
    /// as "photo ID checked by Sam" for an order with age-restricted items.
    /// [`Error::InvalidText`] for a note no store can keep (a NUL
    /// character, past 16 KiB); nothing changes then.
    pub async fn fulfil_order_with_note(
        &self,
        id: OrderId,
        note: impl Into<String>,
    ) -> Result<Order> {
        let command = OrderCommand::Fulfil {
            note: Some(note.into()),
        };
        Ok(self.change(id, command).await?.order)
    }

    /// Refunds everything not yet refunded of a paid or fulfilled order:
    /// [`refund`](Self::refund) with [`RefundRequest::remaining`].
    pub async fn refund_order(&self, id: OrderId) -> Result<Refund> {
        self.refund(id, RefundRequest::remaining()).await
    }

    /// Refunds (part of) a paid or fulfilled order's payment through the
    /// gateway: an amount, chosen lines, or what is left. The refund is
    /// recorded (with a `RefundRequested` event) before it is sent; the
    /// order becomes refunded when nothing is left to refund.
    ///
    /// Idempotent by the request's id: asking again returns the same refund
    /// (sent again while it is pending). If the gateway fails, the refund
    /// stays pending with its typed [`Refund::last_failure`] and
    /// [`sweep`](Self::sweep) retries it with the same key.
    ///
    /// Refused, with nothing recorded, with [`Error::Refund`]: more than is
    /// left ([`ExceedsRefundable`](crate::order::RefundError::ExceedsRefundable),
    /// with what is left), more units of a line than are left, a zero
    /// amount, or the id of another refund; [`Error::InvalidTransition`] for
    /// an order not paid.
    pub async fn refund(&self, id: OrderId, request: RefundRequest) -> Result<Refund> {
        let changed = self
            .change(id, OrderCommand::RequestRefund(request))
            .await?;
        let refund = changed
            .refund
            .ok_or_else(|| Error::not_found(Entity::Refund, id))?;
        if refund.is_pending() {
            self.send_refund(&refund).await
        } else {
            Ok(refund)
        }
    }

    async fn send_refund(&self, refund: &Refund) -> Result<Refund> {
        let result = self
            .commerce
            .inner
            .gateway
            .refund(refund)
            .await
            .map_err(|e| RefundFailure::from(&e));
        if let Err(failure) = &result {
            tracing::warn!(
                tenant = %self.tenant(),
                order = %refund.order,
                refund = %refund.id,
                kind = ?failure.kind,
                message = %failure.message,
                "refund failed; it stays pending for the sweeper"
            );
        }
        let command = OrderCommand::RecordRefundResult {
            refund: refund.id.clone(),
            result,
        };
        let changed = self.change(refund.order, command).await?;
        changed
            .refund
            .ok_or_else(|| Error::not_found(Entity::Refund, &refund.id))
    }

    /// Applies a payment event exactly once (see
    /// [`OrderStore::apply_payment_event`](crate::store::OrderStore::apply_payment_event)).
    /// When it leads to a refund, the refund is sent to the gateway here,
    /// once: only the delivery that applied the event sends it, and the
    /// outcome carries the refund as it stands after sending. A gateway
    /// failure leaves the refund pending for [`sweep`](Self::sweep).
    pub async fn apply_payment_event(&self, event: &PaymentEvent) -> Result<PaymentApplication> {
        if &event.tenant != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: self.tenant().clone(),
                found: event.tenant.clone(),
            });
        }
        let mut applied = self
            .scope
            .orders()
            .apply_payment_event(event, self.now())
            .await?;
        match &applied.outcome {
            PaymentOutcome::Oversold { refund } => tracing::warn!(
                tenant = %self.tenant(),
                order = %applied.order.id,
                event = %event.id,
                refund = %refund.id,
                amount = %refund.amount,
                "payment arrived after the stock was sold elsewhere; refunding it"
            ),
            PaymentOutcome::Mismatch { expected, received } => tracing::warn!(
                tenant = %self.tenant(),
                order = %applied.order.id,
                event = %event.id,
                expected = %expected,
                received = %received,
                "payment does not match the order; recorded for review"
            ),
            _ => {}
        }
        if let Some(refund) = applied.outcome.refund_mut() {
            *refund = self.send_refund(refund).await?;
        }
        Ok(applied)
    }

    /// Housekeeping, safe to run beside traffic: deletes expired
    /// reservations, expires orders whose payment window closed (giving
    /// back their stock and promotion redemptions), and sends pending
    /// refunds again. Each step handles at most the configured batch; call
    /// again while it reports work.
    pub async fn sweep(&self) -> Result<SweepReport> {
        let now = self.now();
        let batch = self.commerce.config().sweep_batch();
        let reservations_removed = self
            .scope
            .inventory()
            .sweep_reservations(now, batch)
            .await?;
        let orders_expired = self.scope.orders().expire_unpaid(now, batch).await?;
        let mut report = SweepReport {
            reservations_removed,
            orders_expired,
            ..SweepReport::default()
        };
        for refund in self.scope.orders().pending_refunds(batch).await? {
            report.refunds_retried += 1;
            let after = self.send_refund(&refund).await?;
            if !after.is_pending() {
                report.refunds_confirmed += 1;
            }
        }
        Ok(report)
    }
}
