//! Orders, their audit logs, exactly-once payment events and refunds.
//!
//! Every operation loads and locks what it needs, asks the core's order
//! pipeline ([`place`], [`decide`], [`settle_payment`]) what to do, and
//! carries out the effects with `PgTenant::carry_out` (in `effects.rs`),
//! the one place this store changes stock, promotion usage, carts and
//! refunds for an order.

use crate::session::Tx;
use async_trait::async_trait;
use commerce_core::order::{FeedItem, FeedPosition, OrderChange, OrderCommand, PendingEvent};
use commerce_core::store::{
    ChangedOrder, OrderCursor, OrderFilter, OrderStore, PaymentDecision, Placement, decide,
    decide_payment, place, settle_payment,
};
use commerce_core::{
    Entity, Error, IdempotencyKey, Order, OrderDraft, OrderEvent, OrderEventKind, OrderId,
    PaymentApplication, PaymentEvent, PaymentOutcome, Refund, Reservation, Result, Sku, TenantId,
    Timestamp,
};

use crate::carts::load_cart;
use crate::error::{corrupt, db, is_unique_violation};
use crate::inventory::{CART_RESERVATIONS_LOCKED, holds, live_held};
use crate::{PgTenant, from_doc, to_doc};

async fn load_order(conn: &mut Tx, tenant: &str, id: OrderId, lock: bool) -> Result<Option<Order>> {
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

async fn save_order(conn: &mut Tx, tenant: &str, order: &Order) -> Result<()> {
    sqlx::query("UPDATE orders SET status = $3, doc = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(order.id.as_uuid())
        .bind(order.status().as_str())
        .bind(to_doc(order)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Appends `events` to the log of `order`, whose row the caller has locked.
async fn append(
    conn: &mut Tx,
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
        // The feed position: next among this tenant's events of this
        // transaction (the feed orders by transaction, then position).
        sqlx::query(
            "INSERT INTO order_events (tenant_id, order_id, seq, doc, position) \
             SELECT $1, $2, $3, $4, COALESCE(MAX(position), 0) + 1 FROM order_events \
             WHERE tenant_id = $1 AND xid = pg_current_xact_id()",
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

/// The refunds of `order`, oldest first. The caller holds the order's row
/// lock, which every change to its refunds takes first.
async fn load_refunds(conn: &mut Tx, tenant: &str, order: OrderId) -> Result<Vec<Refund>> {
    let docs: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT doc FROM refunds WHERE tenant_id = $1 AND order_id = $2 ORDER BY requested_at, id",
    )
    .bind(tenant)
    .bind(order.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    docs.into_iter()
        .map(|doc| from_doc("a refund", doc))
        .collect()
}

impl PgTenant {
    async fn placed_with_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        let mut tx = self.begin().await?;
        let doc: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM orders WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(self.tenant())
        .bind(key.as_str())
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        doc.map(|doc| from_doc("an order", doc)).transpose()
    }

    fn scope_tenant(&self) -> Result<TenantId> {
        Ok(TenantId::parse(self.tenant())?)
    }

    /// Whether each line's stock is still there for `order` at `now`:
    /// the SKUs that are short. Locks the SKU rows in SKU order.
    async fn short_lines(&self, conn: &mut Tx, order: &Order, now: Timestamp) -> Result<Vec<Sku>> {
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

impl PgTenant {
    /// Makes `change` of an existing order (whose row the caller locked):
    /// its effects, the saved order, its events.
    async fn commit_change(
        &self,
        conn: &mut Tx,
        change: OrderChange,
        now: Timestamp,
    ) -> Result<ChangedOrder> {
        if !change.is_unchanged() {
            self.carry_out(conn, &change.order, change.effects, now)
                .await?;
            save_order(conn, self.tenant(), &change.order).await?;
            append(conn, self.tenant(), change.order.id, change.events).await?;
        }
        Ok(ChangedOrder {
            order: change.order,
            refund: change.refund,
        })
    }

    /// Locks order `id`, decides `command` on it and makes the change.
    async fn change_locked(
        &self,
        conn: &mut Tx,
        id: OrderId,
        command: &OrderCommand,
        now: Timestamp,
    ) -> Result<ChangedOrder> {
        let order = load_order(conn, self.tenant(), id, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Order, id))?;
        let refunds = match command {
            OrderCommand::RequestRefund(_) | OrderCommand::RecordRefundResult { .. } => {
                load_refunds(conn, self.tenant(), id).await?
            }
            _ => Vec::new(),
        };
        let change = decide(&order, &refunds, command, now)?;
        self.commit_change(conn, change, now).await
    }

    /// Applies the first delivery of `event` to `order` (locked), as
    /// [`decide_payment`] and [`settle_payment`] say.
    async fn apply_first(
        &self,
        conn: &mut Tx,
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
        self.carry_out(conn, order, settlement.effects, now).await?;
        save_order(conn, self.tenant(), order).await?;
        append(conn, self.tenant(), order.id, settlement.events).await?;
        Ok(settlement.outcome)
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
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        if let Some(doc) = existing {
            let order: Order = from_doc("an order", doc)?;
            tx.commit().await?;
            return Placement::replay(order, draft);
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
        let change = place(&cart, draft, &reservations, now)?;
        let order = change.order;
        self.carry_out(&mut tx, &order, change.effects, now).await?;
        let inserted = sqlx::query(
            "INSERT INTO orders (tenant_id, id, idempotency_key, cart_id, status, total_minor, currency, \
               payment_expires_at, doc, placed_at, customer_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(self.tenant())
        .bind(order.id.as_uuid())
        .bind(order.idempotency_key.as_str())
        .bind(order.cart.as_uuid())
        .bind(order.status().as_str())
        .bind(order.total().minor())
        .bind(order.currency.code())
        .bind(order.payment_expires_at)
        .bind(to_doc(&order)?)
        .bind(order.placed_at)
        .bind(order.customer.as_ref().map(|c| c.as_str()))
        .execute(&mut tx)
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
        append(&mut tx, self.tenant(), order.id, change.events).await?;
        tx.commit().await?;
        Ok(Placement {
            order,
            created: true,
        })
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        let mut tx = self.begin().await?;
        let order = load_order(&mut tx, self.tenant(), id, false).await?;
        tx.commit().await?;
        Ok(order)
    }

    async fn order_by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<Order>> {
        self.placed_with_key(key).await
    }

    async fn orders(
        &self,
        filter: &OrderFilter,
        after: Option<&OrderCursor>,
        limit: usize,
    ) -> Result<Vec<Order>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM orders WHERE tenant_id = $1 \
             AND ($2::text IS NULL OR status = $2) \
             AND ($3::text IS NULL OR customer_id = $3) \
             AND ($4::timestamptz IS NULL OR placed_at >= $4) \
             AND ($5::timestamptz IS NULL OR placed_at < $5) \
             AND ($6::timestamptz IS NULL OR (placed_at, id) < ($6, $7)) \
             ORDER BY placed_at DESC, id DESC LIMIT $8",
        )
        .bind(self.tenant())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.customer.as_ref().map(|c| c.as_str()))
        .bind(filter.placed_from)
        .bind(filter.placed_before)
        .bind(after.map(|c| c.placed_at))
        .bind(after.map(|c| c.id.as_uuid()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("an order", doc))
            .collect()
    }

    async fn events(&self, order: OrderId) -> Result<Vec<OrderEvent>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM order_events WHERE tenant_id = $1 AND order_id = $2 ORDER BY seq",
        )
        .bind(self.tenant())
        .bind(order.as_uuid())
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("an order event", doc))
            .collect()
    }

    async fn feed(&self, after: Option<FeedPosition>, limit: usize) -> Result<Vec<FeedItem>> {
        self.read_feed(after, limit).await
    }

    async fn change_order(
        &self,
        order: OrderId,
        command: &OrderCommand,
        now: Timestamp,
    ) -> Result<ChangedOrder> {
        let mut tx = self.begin().await?;
        let changed = self.change_locked(&mut tx, order, command, now).await?;
        tx.commit().await?;
        Ok(changed)
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
        .fetch_optional(&mut tx)
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
                .fetch_optional(&mut tx)
                .await
                .map_err(db)?;
                if claimed.is_some() {
                    let outcome = self.apply_first(&mut tx, &mut order, event, now).await?;
                    tx.commit().await?;
                    return Ok(PaymentApplication { outcome, order });
                }
                let first: uuid::Uuid = sqlx::query_scalar(
                    "SELECT order_id FROM payment_events WHERE tenant_id = $1 AND event_id = $2",
                )
                .bind(self.tenant())
                .bind(event.id.as_str())
                .fetch_one(&mut tx)
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
        tx.commit().await?;
        Ok(PaymentApplication {
            outcome: PaymentOutcome::Duplicate,
            order,
        })
    }

    async fn refunds(&self, order: OrderId) -> Result<Vec<Refund>> {
        let mut tx = self.begin().await?;
        let refunds = load_refunds(&mut tx, self.tenant(), order).await?;
        tx.commit().await?;
        Ok(refunds)
    }

    async fn pending_refunds(&self, limit: usize) -> Result<Vec<Refund>> {
        let mut tx = self.begin().await?;
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM refunds WHERE tenant_id = $1 AND pending ORDER BY requested_at, id LIMIT $2",
        )
        .bind(self.tenant())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("a refund", doc))
            .collect()
    }

    async fn expire_unpaid(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        let mut tx = self.begin().await?;
        let due: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE tenant_id = $1 AND status = 'awaiting_payment' \
             AND payment_expires_at <= $2 ORDER BY payment_expires_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.tenant())
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        let mut expired = Vec::with_capacity(due.len());
        for id in due {
            let id = OrderId::from_uuid(id);
            self.change_locked(&mut tx, id, &OrderCommand::Expire, now)
                .await?;
            expired.push(id);
        }
        tx.commit().await?;
        Ok(expired)
    }
}
