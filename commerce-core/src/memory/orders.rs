//! Orders, their audit logs, exactly-once payment events and refunds.

use async_trait::async_trait;

use crate::error::Result;

use super::{
    AdjustmentKind, Allocation, CartStatus, Entity, Error, IdempotencyKey, Order, OrderAction,
    OrderDraft, OrderEvent, OrderEventKind, OrderId, OrderStatus, OrderStore, PaymentApplication,
    PaymentDecision, PaymentEffect, PaymentEvent, PaymentOutcome, PaymentSession, Placement,
    Refund, RefundId, RefundReason, RefundReceipt, RefundStatus, Reservation, Sku, StockAdjustment,
    TenantStores, Timestamp, check_placement, decide_payment, settle_payment,
};

#[async_trait]
impl OrderStore for TenantStores {
    async fn place_order(&self, draft: &OrderDraft, now: Timestamp) -> Result<Placement> {
        if draft.tenant != self.tenant {
            return Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: draft.tenant.clone(),
            });
        }
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
        check_placement(cart, draft, &reservations, now)?;
        for redemption in &draft.redemptions {
            let counts = d.usage.get(&redemption.promotion);
            let total = counts.map_or(0, |c| c.total);
            if redemption.usage_limit.is_some_and(|limit| total >= limit) {
                return Err(Error::PromotionExhausted {
                    promotion: redemption.promotion.clone(),
                    per_customer: false,
                });
            }
            if let Some(limit) = redemption.per_customer_limit {
                let used = match (&redemption.customer, counts) {
                    (Some(customer), Some(c)) => c.by_customer.get(customer).copied().unwrap_or(0),
                    (Some(_), None) => 0,
                    // A per-customer limit with no customer cannot be honoured.
                    (None, _) => limit,
                };
                if used >= limit {
                    return Err(Error::PromotionExhausted {
                        promotion: redemption.promotion.clone(),
                        per_customer: true,
                    });
                }
            }
        }
        // Every check passed: now write.
        for redemption in &draft.redemptions {
            let counts = d.usage.entry(redemption.promotion.clone()).or_default();
            counts.total = counts.total.saturating_add(1);
            if let Some(customer) = &redemption.customer {
                let used = counts.by_customer.entry(customer.clone()).or_default();
                *used = used.saturating_add(1);
            }
        }
        for line in &draft.priced.lines {
            let stock = d.stock_mut(&line.sku)?;
            stock.reservations.remove(&draft.cart);
            stock.allocations.insert(
                draft.id,
                Allocation {
                    order: draft.id,
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    expires_at: draft.payment_expires_at,
                },
            );
        }
        if let Some(cart) = d.carts.get_mut(&draft.cart) {
            cart.status = CartStatus::CheckedOut { order: draft.id };
            cart.updated_at = now;
        }
        let order = Order::from_draft(draft.clone(), now);
        let placed = order.note(
            OrderEventKind::Placed {
                total: order.total(),
            },
            now,
        );
        d.keys.insert(draft.idempotency_key.clone(), order.id);
        d.commit_order(order.clone(), vec![placed]);
        Ok(Placement {
            order,
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

    async fn attach_payment_session(
        &self,
        order: OrderId,
        session: &PaymentSession,
        now: Timestamp,
    ) -> Result<Order> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        if o.payment_session.as_ref() == Some(session) {
            return Ok(o);
        }
        o.payment_session = Some(session.clone());
        o.updated_at = now;
        let event = o.note(
            OrderEventKind::PaymentSessionCreated {
                session: session.id.clone(),
            },
            now,
        );
        d.commit_order(o.clone(), vec![event]);
        Ok(o)
    }

    async fn act(&self, order: OrderId, action: &OrderAction, now: Timestamp) -> Result<Order> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        let event = o.transition(action.target(), action.event(), now)?;
        if action.releases_allocation() {
            d.release_allocations(&o);
        }
        d.commit_order(o.clone(), vec![event]);
        Ok(o)
    }

    async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentApplication> {
        if event.tenant != self.tenant {
            return Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: event.tenant.clone(),
            });
        }
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
        for effect in settlement.effects {
            match effect {
                PaymentEffect::SellStock => {
                    for line in &order.lines {
                        let stock = d.stock_mut(&line.sku)?;
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
                PaymentEffect::ReleaseAllocation => d.release_allocations(&order),
                PaymentEffect::RecordRefund(refund) => d.refunds.push(refund),
            }
        }
        let outcome = settlement.outcome;
        let events = settlement.events;
        d.claimed_events.insert(event.id.clone(), order.id);
        d.commit_order(order.clone(), events);
        Ok(PaymentApplication { outcome, order })
    }

    async fn request_refund(
        &self,
        order: OrderId,
        refund: RefundId,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut d = self.data.lock();
        let mut o = d.order(order)?.clone();
        let event = o.transition(
            OrderStatus::Refunded,
            OrderEventKind::RefundRequested {
                refund: refund.clone(),
                amount: o.refundable(),
            },
            now,
        )?;
        let record = Refund::pending(
            &o,
            refund,
            o.refundable(),
            RefundReason::RequestedByMerchant,
            now,
        );
        d.refunds.push(record.clone());
        d.commit_order(o, vec![event]);
        Ok(record)
    }

    async fn record_refund_result(
        &self,
        refund: &RefundId,
        result: std::result::Result<RefundReceipt, String>,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut d = self.data.lock();
        let record = d.refund_mut(refund)?;
        if matches!(record.status, RefundStatus::Succeeded { .. }) {
            return Ok(record.clone());
        }
        let kind = match result {
            Ok(receipt) => {
                record.status = RefundStatus::Succeeded {
                    provider_ref: receipt.provider_ref.clone(),
                };
                OrderEventKind::RefundSucceeded {
                    refund: refund.clone(),
                    provider_ref: receipt.provider_ref,
                }
            }
            Err(message) => OrderEventKind::RefundFailed {
                refund: refund.clone(),
                message,
            },
        };
        let record = record.clone();
        let note = d.order(record.order)?.note(kind, now);
        d.append(record.order, note);
        Ok(record)
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        Ok(self
            .data
            .lock()
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut d = self.data.lock();
        let mut due: Vec<&Order> = d
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::AwaitingPayment && o.payment_expires_at <= now)
            .collect();
        due.sort_by_key(|o| (o.payment_expires_at, o.id));
        let due: Vec<Order> = due.into_iter().take(limit).cloned().collect();
        let mut expired = Vec::with_capacity(due.len());
        for mut order in due {
            let event = order.transition(
                OrderStatus::Expired,
                OrderEventKind::Expired { event: None },
                now,
            )?;
            d.release_allocations(&order);
            expired.push(order.id);
            d.commit_order(order, vec![event]);
        }
        Ok(expired)
    }
}
