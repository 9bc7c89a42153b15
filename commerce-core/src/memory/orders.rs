//! Orders, their audit logs, exactly-once payment events and refunds.
//!
//! Every operation loads what it needs under the tenant's lock, asks the
//! core's order pipeline what to do, and carries out the effects with
//! `TenantData::carry_out` (in `effects.rs`), the one place this store
//! changes stock, promotion usage, carts and refunds for an order.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::{Entity, Error, Result};
use crate::ids::{IdempotencyKey, OrderId, Sku};
use crate::inventory::Reservation;
use crate::order::{
    FeedItem, FeedPosition, Order, OrderChange, OrderCommand, OrderDraft, OrderEvent,
    OrderEventKind, OrderStatus, PaymentApplication, PaymentDecision, PaymentOutcome, Refund,
    decide, decide_payment, place, settle_payment,
};
use crate::payment::PaymentEvent;
use crate::store::{ChangedOrder, OrderCursor, OrderFilter, OrderStore, Placement};

use super::{SkuEntry, TenantData, TenantStores};

impl TenantData {
    /// Makes `change` and stores its order and events.
    fn commit_change(&mut self, change: OrderChange, now: Timestamp) -> Result<ChangedOrder> {
        if change.is_unchanged() {
            return Ok(ChangedOrder {
                order: change.order,
                refund: change.refund,
            });
        }
        self.carry_out(&change.order, change.effects, now)?;
        self.commit_order(change.order.clone(), change.events);
        Ok(ChangedOrder {
            order: change.order,
            refund: change.refund,
        })
    }

    fn order_refunds(&self, order: OrderId) -> Vec<Refund> {
        self.refunds
            .iter()
            .filter(|r| r.order == order)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl OrderStore for TenantStores {
    async fn place_order(&self, draft: &OrderDraft, now: Timestamp) -> Result<Placement> {
        self.check_tenant(&draft.tenant)?;
        let mut d = self.lock();
        if let Some(existing) = d.keys.get(&draft.idempotency_key) {
            return Placement::replay(d.order(*existing)?.clone(), draft);
        }
        let data = &mut *d;
        let cart = data
            .carts
            .get_mut(&draft.cart)
            .map(|cart| cart.get_mut())
            .ok_or_else(|| Error::not_found(Entity::Cart, draft.cart))?;
        let stock = &mut data.stock;
        let reservations: Vec<Reservation> = cart
            .lines
            .iter()
            .filter_map(|line| {
                stock
                    .get_mut(&line.sku)
                    .map(SkuEntry::get_mut)?
                    .reservations
                    .get(&draft.cart)
                    .map(|held| held.reservation(draft.cart, &line.sku))
            })
            .collect();
        let change = place(cart, draft, &reservations, now)?;
        let placed = d.commit_change(change, now)?;
        d.keys.insert(draft.idempotency_key.clone(), draft.id);
        Ok(Placement {
            order: placed.order,
            created: true,
        })
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        Ok(self.read().orders.get(&id).cloned())
    }

    async fn order_by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        let d = self.read();
        Ok(d.keys.get(key).and_then(|id| d.orders.get(id)).cloned())
    }

    async fn orders(
        &self,
        filter: &OrderFilter,
        after: Option<&OrderCursor>,
        limit: usize,
    ) -> Result<Vec<Order>> {
        let d = self.read();
        let mut matching: Vec<&Order> = d
            .orders
            .values()
            .filter(|o| filter.matches(o) && after.is_none_or(|cursor| cursor.precedes(o)))
            .collect();
        matching.sort_by_key(|o| std::cmp::Reverse((o.placed_at, o.id)));
        Ok(matching.into_iter().take(limit).cloned().collect())
    }

    async fn events(&self, order: OrderId) -> Result<Vec<OrderEvent>> {
        Ok(self.read().events.get(&order).cloned().unwrap_or_default())
    }

    async fn feed(&self, after: Option<FeedPosition>, limit: usize) -> Result<Vec<FeedItem>> {
        let d = self.read();
        let start = d
            .feed
            .partition_point(|(position, _, _)| after.is_some_and(|after| *position <= after));
        Ok(d.feed
            .iter()
            .skip(start)
            .take(limit)
            .filter_map(|(position, order, seq)| {
                let index = usize::try_from(seq.checked_sub(1)?).ok()?;
                let event = d.events.get(order)?.get(index)?.clone();
                Some(FeedItem {
                    position: *position,
                    event,
                })
            })
            .collect())
    }

    async fn change_order(
        &self,
        order: OrderId,
        command: &OrderCommand,
        now: Timestamp,
    ) -> Result<ChangedOrder> {
        let mut d = self.lock();
        let current = d.order(order)?;
        let change = decide(current, &d.order_refunds(order), command, now)?;
        d.commit_change(change, now)
    }

    async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentApplication> {
        self.check_tenant(&event.tenant)?;
        let mut d = self.lock();
        if let Some(first) = d.claimed_events.get(&event.id).copied() {
            // Recorded against the order the event was first applied to.
            let order = d.order(first)?.clone();
            let note = order.note(
                OrderEventKind::DuplicatePaymentEvent {
                    event: event.id.clone(),
                },
                now,
            );
            d.append(order.id, vec![note]);
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
                        s.lock().available(now, None, Some(order.id)) < line.quantity.get()
                    })
                })
                .map(|line| line.sku.clone())
                .collect(),
            _ => Vec::new(),
        };
        let settlement = settle_payment(&mut order, event, decision, short, now)?;
        d.carry_out(&order, settlement.effects, now)?;
        d.claimed_events.insert(event.id.clone(), order.id);
        d.commit_order(order.clone(), settlement.events);
        Ok(PaymentApplication {
            outcome: settlement.outcome,
            order,
        })
    }

    async fn refunds(&self, order: OrderId) -> Result<Vec<Refund>> {
        Ok(self.read().order_refunds(order))
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        Ok(self
            .read()
            .refunds
            .iter()
            .filter(|r| r.is_pending())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut d = self.lock();
        let mut due: Vec<&Order> = d
            .orders
            .values()
            .filter(|o| o.status() == OrderStatus::AwaitingPayment && o.payment_expires_at <= now)
            .collect();
        due.sort_by_key(|o| (o.payment_expires_at, o.id));
        let due: Vec<OrderId> = due.into_iter().take(limit).map(|o| o.id).collect();
        for id in &due {
            let change = decide(d.order(*id)?, &[], &OrderCommand::Expire, now)?;
            d.commit_change(change, now)?;
        }
        Ok(due)
    }
}
