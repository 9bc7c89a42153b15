//! Orders, their audit logs, exactly-once payment events and refunds.

use async_trait::async_trait;
use commerce_core::order::PendingEvent;
use commerce_core::{
    AdjustmentKind, BackendError, BackendErrorKind, CartStatus, Entity, Error, IdempotencyKey,
    Order, OrderAction, OrderDraft, OrderEvent, OrderEventKind, OrderId, OrderStatus, OrderStore,
    PaymentApplication, PaymentDecision, PaymentEffect, PaymentEvent, PaymentOutcome,
    PaymentSession, Placement, Redemption, Refund, RefundId, RefundReason, RefundReceipt,
    RefundStatus, Reservation, Result, Sku, StockAdjustment, TenantId, Timestamp, check_placement,
    decide_payment, settle_payment,
};
use sqlx::PgConnection;

use crate::carts::{load_cart, save_cart};
use crate::error::{corrupt, db, is_unique_violation};
use crate::inventory::{
    CART_RESERVATIONS_LOCKED, holds, live_held, record_adjustment, release_allocations,
};
use crate::{PgTenant, from_doc, to_doc};

async fn load_order(
    conn: &mut PgConnection,
    tenant: &str,
    id: OrderId,
    lock: bool,
) -> Result<Option<Order>> {
    let statement = if lock {
        "SELECT doc FROM orders WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    } else {
        "SELECT doc FROM orders WHERE tenant_id = $1 AND id = $2"
    };
    let doc: Option<serde_json::Value> = sqlx::query_scalar(statement)
        .bind(tenant)
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    doc.map(|doc| from_doc("an order", doc)).transpose()
}

async fn save_order(conn: &mut PgConnection, tenant: &str, order: &Order) -> Result<()> {
    sqlx::query("UPDATE orders SET status = $3, doc = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(order.id.as_uuid())
        .bind(order.status.as_str())
        .bind(to_doc(order)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Appends `events` to the log of `order`, whose row the caller has locked.
async fn append(
    conn: &mut PgConnection,
    tenant: &str,
    order: OrderId,
    events: Vec<PendingEvent>,
) -> Result<()> {
    let last: i32 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) FROM order_events WHERE tenant_id = $1 AND order_id = $2",
    )
    .bind(tenant)
    .bind(order.as_uuid())
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let mut seq = u32::try_from(last).map_err(|e| corrupt("an event sequence", e))?;
    for event in events {
        seq = seq.saturating_add(1);
        let event = event.into_event(order, seq);
        sqlx::query(
            "INSERT INTO order_events (tenant_id, order_id, seq, doc) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant)
        .bind(order.as_uuid())
        .bind(i32::try_from(seq).map_err(|e| corrupt("an event sequence", e))?)
        .bind(to_doc(&event)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

async fn insert_refund(conn: &mut PgConnection, tenant: &str, refund: &Refund) -> Result<()> {
    sqlx::query(
        "INSERT INTO refunds (tenant_id, id, order_id, amount_minor, currency, pending, requested_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(refund.id.as_str())
    .bind(refund.order.as_uuid())
    .bind(refund.amount.minor())
    .bind(refund.amount.currency().code())
    .bind(refund.status == RefundStatus::Pending)
    .bind(refund.requested_at)
    .bind(to_doc(refund)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Counts one redemption, refusing it past its limits.
async fn redeem(conn: &mut PgConnection, tenant: &str, redemption: &Redemption) -> Result<()> {
    let exhausted = |per_customer| Error::PromotionExhausted {
        promotion: redemption.promotion.clone(),
        per_customer,
    };
    let limit = redemption
        .usage_limit
        .map(|l| i32::try_from(l).unwrap_or(i32::MAX))
        .unwrap_or(i32::MAX);
    let counted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO promotion_usage (tenant_id, promotion_id, total) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, promotion_id) DO UPDATE SET total = promotion_usage.total + 1 \
         WHERE promotion_usage.total < $3 RETURNING total",
    )
    .bind(tenant)
    .bind(redemption.promotion.as_str())
    .bind(limit)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if counted.is_none() {
        return Err(exhausted(false));
    }
    match (&redemption.customer, redemption.per_customer_limit) {
        (None, Some(_)) => Err(exhausted(true)),
        (None, None) => Ok(()),
        (Some(customer), limit) => {
            let limit = limit
                .map(|l| i32::try_from(l).unwrap_or(i32::MAX))
                .unwrap_or(i32::MAX);
            let counted: Option<i32> = sqlx::query_scalar(
                "INSERT INTO promotion_customer_usage (tenant_id, promotion_id, customer_id, used) \
                 VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (tenant_id, promotion_id, customer_id) \
                 DO UPDATE SET used = promotion_customer_usage.used + 1 \
                 WHERE promotion_customer_usage.used < $4 RETURNING used",
            )
            .bind(tenant)
            .bind(redemption.promotion.as_str())
            .bind(customer.as_str())
            .bind(limit)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            if counted.is_none() {
                Err(exhausted(true))
            } else {
                Ok(())
            }
        }
    }
}

impl PgTenant {
    async fn placed_with_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM orders WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(self.tenant())
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        doc.map(|doc| from_doc("an order", doc)).transpose()
    }

    fn scope_tenant(&self) -> Result<TenantId> {
        Ok(TenantId::parse(self.tenant())?)
    }

    /// Whether each line's stock is still there for `order` at `now`:
    /// the SKUs that are short. Locks the SKU rows in SKU order.
    async fn short_lines(
        &self,
        conn: &mut PgConnection,
        order: &Order,
        now: Timestamp,
    ) -> Result<Vec<Sku>> {
        let mut lines: Vec<_> = order.lines.iter().collect();
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        let mut short = Vec::new();
        for line in lines {
            let on_hand: Option<i32> = sqlx::query_scalar(
                "SELECT on_hand FROM skus WHERE tenant_id = $1 AND sku = $2 FOR UPDATE",
            )
            .bind(self.tenant())
            .bind(line.sku.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            let others =
                live_held(conn, self.tenant(), &line.sku, now, None, Some(order.id)).await?;
            let available = i64::from(on_hand.unwrap_or(0)) - others;
            if available < i64::from(line.quantity.get()) {
                short.push(line.sku.clone());
            }
        }
        Ok(short)
    }
}

#[async_trait]
impl OrderStore for PgTenant {
    async fn place_order(&self, draft: &OrderDraft, now: Timestamp) -> Result<Placement> {
        if draft.tenant.as_str() != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: self.scope_tenant()?,
                found: draft.tenant.clone(),
            });
        }
        let mut tx = self.begin().await?;
        // The cart lock serializes checkouts of this cart with each other and
        // with changes to its lines.
        let cart = load_cart(&mut tx, self.tenant(), draft.cart, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, draft.cart))?;
        let existing: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM orders WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(self.tenant())
        .bind(draft.idempotency_key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if let Some(doc) = existing {
            let order: Order = from_doc("an order", doc)?;
            tx.commit().await.map_err(db)?;
            if order.cart != draft.cart {
                return Err(Error::IdempotencyKeyReused {
                    key: draft.idempotency_key.clone(),
                    order: order.id,
                });
            }
            return Ok(Placement {
                order,
                created: false,
            });
        }
        let reservations: Vec<Reservation> = holds(
            &mut tx,
            CART_RESERVATIONS_LOCKED,
            self.tenant(),
            draft.cart.as_uuid(),
        )
        .await?
        .into_iter()
        .map(|(sku, quantity, expires_at)| Reservation {
            cart: draft.cart,
            sku,
            quantity,
            expires_at,
        })
        .collect();
        check_placement(&cart, draft, &reservations, now)?;
        let lines = &draft.priced.lines;
        for redemption in &draft.redemptions {
            redeem(&mut tx, self.tenant(), redemption).await?;
        }
        // The cart's reservations become the order's allocations, SKU by SKU
        // in SKU order (a fixed lock order).
        let mut sorted: Vec<_> = lines.iter().collect();
        sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
        for line in sorted {
            sqlx::query(
                "WITH gone AS ( \
                   DELETE FROM reservations WHERE tenant_id = $1 AND sku = $2 AND cart_id = $3 RETURNING quantity), \
                 allocated AS ( \
                   INSERT INTO allocations (tenant_id, sku, order_id, quantity, expires_at) \
                   VALUES ($1, $2, $4, $5, $6) RETURNING quantity) \
                 UPDATE skus SET held = held - (SELECT COALESCE(SUM(quantity), 0) FROM gone) \
                   + (SELECT quantity FROM allocated) \
                 WHERE tenant_id = $1 AND sku = $2",
            )
            .bind(self.tenant())
            .bind(line.sku.as_str())
            .bind(draft.cart.as_uuid())
            .bind(draft.id.as_uuid())
            .bind(i32::try_from(line.quantity.get()).map_err(|e| corrupt("a quantity", e))?)
            .bind(draft.payment_expires_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        let mut cart = cart;
        cart.status = CartStatus::CheckedOut { order: draft.id };
        cart.updated_at = now;
        save_cart(&mut tx, self.tenant(), &cart).await?;
        let order = Order::from_draft(draft.clone(), now);
        let inserted = sqlx::query(
            "INSERT INTO orders (tenant_id, id, idempotency_key, cart_id, status, total_minor, currency, \
               payment_expires_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.tenant())
        .bind(order.id.as_uuid())
        .bind(order.idempotency_key.as_str())
        .bind(order.cart.as_uuid())
        .bind(order.status.as_str())
        .bind(order.total().minor())
        .bind(order.currency.code())
        .bind(order.payment_expires_at)
        .bind(to_doc(&order)?)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            if is_unique_violation(&e, "orders_idempotency_key") {
                drop(tx);
                // Another cart's checkout took the key first.
                let winner = self.placed_with_key(&draft.idempotency_key).await?;
                return Err(Error::IdempotencyKeyReused {
                    key: draft.idempotency_key.clone(),
                    order: winner.map_or(draft.id, |o| o.id),
                });
            }
            return Err(db(e));
        }
        let placed = order.note(
            OrderEventKind::Placed {
                total: order.total(),
            },
            now,
        );
        append(&mut tx, self.tenant(), order.id, vec![placed]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Placement {
            order,
            created: true,
        })
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        let mut tx = self.begin().await?;
        let order = load_order(&mut tx, self.tenant(), id, false).await?;
        tx.commit().await.map_err(db)?;
        Ok(order)
    }

    async fn order_by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        self.placed_with_key(key).await
    }

    async fn events(&self, order: OrderId) -> Result<Vec<OrderEvent>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM order_events WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq",
        )
        .bind(self.tenant())
        .bind(order.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        docs.into_iter()
            .map(|doc| from_doc("an order event", doc))
            .collect()
    }

    async fn attach_payment_session(
        &self,
        order: OrderId,
        session: &PaymentSession,
        now: Timestamp,
    ) -> Result<Order> {
        let mut tx = self.begin().await?;
        let mut o = load_order(&mut tx, self.tenant(), order, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, order))?;
        if o.payment_session.as_ref() == Some(session) {
            tx.commit().await.map_err(db)?;
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
        save_order(&mut tx, self.tenant(), &o).await?;
        append(&mut tx, self.tenant(), order, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(o)
    }

    async fn act(&self, order: OrderId, action: &OrderAction, now: Timestamp) -> Result<Order> {
        let mut tx = self.begin().await?;
        let mut o = load_order(&mut tx, self.tenant(), order, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, order))?;
        let event = o.transition(action.target(), action.event(), now)?;
        if action.releases_allocation() {
            release_allocations(&mut tx, self.tenant(), order).await?;
        }
        save_order(&mut tx, self.tenant(), &o).await?;
        append(&mut tx, self.tenant(), order, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(o)
    }

    async fn apply_payment_event(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentApplication> {
        if event.tenant.as_str() != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: self.scope_tenant()?,
                found: event.tenant.clone(),
            });
        }
        let mut tx = self.begin().await?;
        let first: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT order_id FROM payment_events WHERE tenant_id = $1 AND event_id = $2",
        )
        .bind(self.tenant())
        .bind(event.id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let duplicate_of = match first {
            Some(first) => Some(OrderId::from_uuid(first)),
            None => {
                let mut order = load_order(&mut tx, self.tenant(), event.order, true)
                    .await?
                    .ok_or_else(|| Error::not_found(Entity::Order, event.order))?;
                // The claim: a concurrent delivery that claimed first makes this
                // insert a no-op once it commits.
                let claimed: Option<i32> = sqlx::query_scalar(
                    "INSERT INTO payment_events (tenant_id, event_id, order_id, received_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING 1",
                )
                .bind(self.tenant())
                .bind(event.id.as_str())
                .bind(order.id.as_uuid())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if claimed.is_some() {
                    let outcome = self.apply_first(&mut tx, &mut order, event, now).await?;
                    tx.commit().await.map_err(db)?;
                    return Ok(PaymentApplication { outcome, order });
                }
                let first: uuid::Uuid = sqlx::query_scalar(
                    "SELECT order_id FROM payment_events WHERE tenant_id = $1 AND event_id = $2",
                )
                .bind(self.tenant())
                .bind(event.id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                Some(OrderId::from_uuid(first))
            }
        };
        let first = duplicate_of.ok_or_else(|| Error::not_found(Entity::Order, event.order))?;
        let order = load_order(&mut tx, self.tenant(), first, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, first))?;
        let note = order.note(
            OrderEventKind::DuplicatePaymentEvent {
                event: event.id.clone(),
            },
            now,
        );
        append(&mut tx, self.tenant(), order.id, vec![note]).await?;
        tx.commit().await.map_err(db)?;
        Ok(PaymentApplication {
            outcome: PaymentOutcome::Duplicate,
            order,
        })
    }

    async fn request_refund(
        &self,
        order: OrderId,
        refund: RefundId,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut tx = self.begin().await?;
        let mut o = load_order(&mut tx, self.tenant(), order, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, order))?;
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
        insert_refund(&mut tx, self.tenant(), &record).await?;
        save_order(&mut tx, self.tenant(), &o).await?;
        append(&mut tx, self.tenant(), order, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn record_refund_result(
        &self,
        refund: &RefundId,
        result: std::result::Result<RefundReceipt, String>,
        now: Timestamp,
    ) -> Result<Refund> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM refunds WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(self.tenant())
        .bind(refund.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let mut record: Refund = from_doc(
            "a refund",
            doc.ok_or_else(|| Error::not_found(Entity::Refund, refund))?,
        )?;
        if matches!(record.status, RefundStatus::Succeeded { .. }) {
            tx.commit().await.map_err(db)?;
            return Ok(record);
        }
        let order = load_order(&mut tx, self.tenant(), record.order, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, record.order))?;
        let kind = match result {
            Ok(receipt) => {
                record.status = RefundStatus::Succeeded {
                    provider_ref: receipt.provider_ref.clone(),
                };
                sqlx::query(
                    "UPDATE refunds SET pending = false, doc = $3 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(self.tenant())
                .bind(refund.as_str())
                .bind(to_doc(&record)?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
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
        let note = order.note(kind, now);
        append(&mut tx, self.tenant(), order.id, vec![note]).await?;
        tx.commit().await.map_err(db)?;
        Ok(record)
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM refunds WHERE tenant_id = $1 AND pending ORDER BY requested_at, id LIMIT $2",
        )
        .bind(self.tenant())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        docs.into_iter()
            .map(|doc| from_doc("a refund", doc))
            .collect()
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM orders WHERE tenant_id = $1 AND status = 'awaiting_payment' \
             AND payment_expires_at <= $2 ORDER BY payment_expires_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.tenant())
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut expired = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut order: Order = from_doc("an order", doc)?;
            let event = order.transition(
                OrderStatus::Expired,
                OrderEventKind::Expired { event: None },
                now,
            )?;
            release_allocations(&mut tx, self.tenant(), order.id).await?;
            save_order(&mut tx, self.tenant(), &order).await?;
            append(&mut tx, self.tenant(), order.id, vec![event]).await?;
            expired.push(order.id);
        }
        tx.commit().await.map_err(db)?;
        Ok(expired)
    }
}

impl PgTenant {
    /// Sells the lines of `order`: the allocation goes, on-hand goes down,
    /// and a `Sold` adjustment is recorded per line.
    async fn sell(&self, conn: &mut PgConnection, order: &Order, now: Timestamp) -> Result<()> {
        release_allocations(conn, self.tenant(), order.id).await?;
        let mut lines: Vec<_> = order.lines.iter().collect();
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        for line in lines {
            let on_hand: i32 = sqlx::query_scalar(
                "UPDATE skus SET on_hand = on_hand - $3 WHERE tenant_id = $1 AND sku = $2 RETURNING on_hand",
            )
            .bind(self.tenant())
            .bind(line.sku.as_str())
            .bind(i32::try_from(line.quantity.get()).map_err(|e| corrupt("a quantity", e))?)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            let adjustment = StockAdjustment {
                sku: line.sku.clone(),
                kind: AdjustmentKind::Sold { order: order.id },
                delta: -i64::from(line.quantity.get()),
                on_hand_after: u32::try_from(on_hand).map_err(|e| corrupt("a unit count", e))?,
                at: now,
                note: None,
            };
            record_adjustment(conn, self.tenant(), &adjustment).await?;
        }
        Ok(())
    }

    /// Applies the first delivery of `event` to `order` (locked), as
    /// [`decide_payment`] and [`settle_payment`] say.
    async fn apply_first(
        &self,
        conn: &mut PgConnection,
        order: &mut Order,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentOutcome> {
        let decision = decide_payment(order, &event.kind);
        let short = match decision {
            PaymentDecision::Take { .. } => self.short_lines(conn, order, now).await?,
            _ => Vec::new(),
        };
        let settlement = settle_payment(order, event, decision, short, now)?;
        for effect in settlement.effects {
            match effect {
                PaymentEffect::SellStock => self.sell(conn, order, now).await?,
                PaymentEffect::ReleaseAllocation => {
                    release_allocations(conn, self.tenant(), order.id).await?
                }
                PaymentEffect::RecordRefund(refund) => {
                    insert_refund(conn, self.tenant(), &refund).await?
                }
                other => {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        format!("unsupported payment effect {other:?}"),
                    )
                    .into());
                }
            }
        }
        let (outcome, events) = (settlement.outcome, settlement.events);
        save_order(conn, self.tenant(), order).await?;
        append(conn, self.tenant(), order.id, events).await?;
        Ok(outcome)
    }
}
