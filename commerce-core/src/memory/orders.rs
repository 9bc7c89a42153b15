//! Orders, their audit logs, exactly-once payment events and refunds.
//!
//! Every operation loads what it needs under the tenant's lock, asks the
//! core's order pipeline what to do, and carries out the effects with
//! [`TenantData::carry_out`], the one place this store changes stock,
//! promotion usage, carts and refunds for an order.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::{Entity, Error, Result};
use crate::ids::{IdempotencyKey, OrderId, Sku};
use crate::inventory::{AdjustmentKind, Allocation, Reservation, StockAdjustment};
use crate::order::{
    Order, OrderChange, OrderCommand, OrderDraft, OrderEffect, OrderEvent, OrderEventKind,
    OrderStatus, PaymentApplication, PaymentDecision, PaymentOutcome, Refund, RefundError,
    check_redemption, decide, decide_payment, place, settle_payment,
};
use crate::payment::PaymentEvent;
use crate::promotion::PromotionUsage;
use crate::store::{ChangedOrder, OrderStore, Placement};

use super::{TenantData, TenantStores};

impl TenantData {
    /// Carries out `effects` for `order`, in order. Every check comes first
    /// (a refused redemption or a taken refund id leaves nothing changed),
    /// then every write.
    fn carry_out(
        &mut self,
        order: &Order,
        effects: Vec<OrderEffect>,
        now: Timestamp,
    ) -> Result<()> {
        for effect in &effects {
            match effect {
                OrderEffect::Redeem(redemptions) => {
                    for redemption in redemptions {
                        let counts = self.usage.get(&redemption.promotion);
                        let usage = PromotionUsage {
                            total: counts.map_or(0, |c| c.total),
                            by_customer: match (&redemption.customer, counts) {
                                (Some(customer), Some(c)) => {
                                    c.by_customer.get(customer).copied().unwrap_or(0)
                                }
                                _ => 0,
                            },
                        };
                        check_redemption(redemption, usage)?;
                    }
                }
                OrderEffect::RecordRefund(refund)
                    if self.refunds.iter().any(|r| r.id == refund.id) =>
                {
                    return Err(RefundError::IdReused {
                        refund: refund.id.clone(),
                    }
                    .into());
                }
                _ => {}
            }
        }
        for effect in effects {
            match effect {
                OrderEffect::Redeem(redemptions) | OrderEffect::RestoreRedemptions(redemptions) => {
                    for redemption in redemptions {
                        let counts = self.usage.entry(redemption.promotion).or_default();
                        counts.total = counts.total.saturating_add(1);
                        if let Some(customer) = redemption.customer {
                            let used = counts.by_customer.entry(customer).or_default();
                            *used = used.saturating_add(1);
                        }
                    }
                }
                OrderEffect::ReleaseRedemptions(redemptions) => {
                    for redemption in redemptions {
                        if let Some(counts) = self.usage.get_mut(&redemption.promotion) {
                            counts.total = counts.total.saturating_sub(1);
                            if let Some(used) = redemption
                                .customer
                                .as_ref()
                                .and_then(|customer| counts.by_customer.get_mut(customer))
                            {
                                *used = used.saturating_sub(1);
                            }
                        }
                    }
                }
                OrderEffect::AllocateStock => {
                    for line in &order.lines {
                        let stock = self.stock_mut(&line.sku)?;
                        stock.reservations.remove(&order.cart);
                        stock.allocations.insert(
                            order.id,
                            Allocation {
                                order: order.id,
                                sku: line.sku.clone(),
                                quantity: line.quantity,
                                expires_at: order.payment_expires_at,
                            },
                        );
                    }
                }
                OrderEffect::SellStock => {
                    for line in &order.lines {
                        let stock = self.stock_mut(&line.sku)?;
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
                OrderEffect::ReleaseAllocation => self.release_allocations(order),
                OrderEffect::CheckOutCart(cart) => {
                    self.carts.insert(cart.id, *cart);
                }
                OrderEffect::RecordRefund(refund) => self.refunds.push(refund),
                OrderEffect::UpdateRefund(refund) => {
                    let stored = self.refund_mut(&refund.id)?;
                    *stored = refund;
                }
            }
        }
        Ok(())
    }

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
        let change = place(cart, draft, &reservations, now)?;
        let placed = d.commit_change(change, now)?;
        d.keys.insert(draft.idempotency_key.clone(), draft.id);
        Ok(Placement {
            order: placed.order,
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

    async fn change_order(
        &self,
        order: OrderId,
        command: &OrderCommand,
        now: Timestamp,
    ) -> Result<ChangedOrder> {
        let mut d = self.data.lock();
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
        d.carry_out(&order, settlement.effects, now)?;
        d.claimed_events.insert(event.id.clone(), order.id);
        d.commit_order(order.clone(), settlement.events);
        Ok(PaymentApplication {
            outcome: settlement.outcome,
            order,
        })
    }

    async fn refunds(&self, order: OrderId) -> Result<Vec<Refund>> {
        Ok(self.data.lock().order_refunds(order))
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        Ok(self
            .data
            .lock()
            .refunds
            .iter()
            .filter(|r| r.is_pending())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut d = self.data.lock();
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
