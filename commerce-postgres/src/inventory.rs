//! Stock, reservations, allocations and the adjustment log, plus the
//! helpers the cart and order stores share.

use crate::session::Tx;
use async_trait::async_trait;
use commerce_core::store::InventoryStore;
use commerce_core::text::{TextField, check_optional_text};
use commerce_core::{
    AdjustmentKind, Allocation, CartId, Entity, Error, IdempotencyKey, OrderId, Quantity,
    Reservation, Result, Sku, StockAdjustment, StockLevel, Timestamp,
};

use crate::error::{corrupt, db};
use crate::{PgTenant, from_doc, to_doc};

fn units(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|e| corrupt("a unit count", e))
}

pub(crate) fn quantity(n: i32) -> Result<Quantity> {
    Quantity::try_from(i64::from(n)).map_err(|e| corrupt("a quantity", e))
}

pub(crate) fn sku(text: String) -> Result<Sku> {
    Sku::parse(text).map_err(|e| corrupt("a sku", e))
}

/// The reservations of one cart, by SKU.
pub(crate) const CART_RESERVATIONS: &str = "SELECT sku, quantity, expires_at FROM reservations \
     WHERE tenant_id = $1 AND cart_id = $2 ORDER BY sku";
/// The reservations of one cart, by SKU, locked (reservation rows before
/// SKU rows: the lock order of every path).
pub(crate) const CART_RESERVATIONS_LOCKED: &str = "SELECT sku, quantity, expires_at FROM reservations \
     WHERE tenant_id = $1 AND cart_id = $2 ORDER BY sku FOR UPDATE";
/// The allocations of one order, by SKU.
pub(crate) const ORDER_ALLOCATIONS: &str = "SELECT sku, quantity, expires_at FROM allocations \
     WHERE tenant_id = $1 AND order_id = $2 ORDER BY sku";

/// The holds (SKU, quantity, expiry) one of the statements above returns
/// for the cart or order `owner`.
pub(crate) async fn holds(
    conn: &mut Tx,
    statement: &'static str,
    tenant: &str,
    owner: uuid::Uuid,
) -> Result<Vec<(Sku, Quantity, Timestamp)>> {
    let rows: Vec<(String, i32, Timestamp)> = sqlx::query_as(statement)
        .bind(tenant)
        .bind(owner)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.into_iter()
        .map(|(s, q, expires_at)| Ok((sku(s)?, quantity(q)?, expires_at)))
        .collect()
}

/// The stock position of `sku` at `now`, or `None` if it has no stock record.
pub(crate) async fn level(
    conn: &mut Tx,
    tenant: &str,
    sku: &Sku,
    now: Timestamp,
) -> Result<Option<StockLevel>> {
    let row: Option<(i32, i64, i64)> = sqlx::query_as(
        "SELECT s.on_hand, \
           (SELECT COALESCE(SUM(quantity), 0)::bigint FROM reservations r \
             WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku AND r.expires_at > $3), \
           (SELECT COALESCE(SUM(quantity), 0)::bigint FROM allocations a \
             WHERE a.tenant_id = s.tenant_id AND a.sku = s.sku AND a.expires_at > $3) \
         FROM skus s WHERE s.tenant_id = $1 AND s.sku = $2",
    )
    .bind(tenant)
    .bind(sku.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(|(on_hand, reserved, allocated)| {
        Ok(StockLevel {
            sku: sku.clone(),
            on_hand: units(i64::from(on_hand))?,
            reserved: units(reserved)?,
            allocated: units(allocated)?,
        })
    })
    .transpose()
}

/// Units of `sku` held at `now` by live reservations of carts other than
/// `except_cart` and live allocations of orders other than `except_order`.
pub(crate) async fn live_held(
    conn: &mut Tx,
    tenant: &str,
    sku: &Sku,
    now: Timestamp,
    except_cart: Option<CartId>,
    except_order: Option<OrderId>,
) -> Result<i64> {
    let held: i64 = sqlx::query_scalar(
        "SELECT \
           (SELECT COALESCE(SUM(quantity), 0)::bigint FROM reservations \
             WHERE tenant_id = $1 AND sku = $2 AND expires_at > $3 AND cart_id IS DISTINCT FROM $4) + \
           (SELECT COALESCE(SUM(quantity), 0)::bigint FROM allocations \
             WHERE tenant_id = $1 AND sku = $2 AND expires_at > $3 AND order_id IS DISTINCT FROM $5)",
    )
    .bind(tenant)
    .bind(sku.as_str())
    .bind(now)
    .bind(except_cart.map(|c| c.as_uuid()))
    .bind(except_order.map(|o| o.as_uuid()))
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(held)
}

/// Appends an adjustment to the log of its SKU, numbered next in that log.
/// The caller has updated the SKU's row in this transaction, so its lock
/// serializes the numbering.
pub(crate) async fn record_adjustment(
    conn: &mut Tx,
    tenant: &str,
    adjustment: &StockAdjustment,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO stock_adjustments (tenant_id, sku, seq, doc) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3 FROM stock_adjustments \
         WHERE tenant_id = $1 AND sku = $2",
    )
    .bind(tenant)
    .bind(adjustment.sku.as_str())
    .bind(to_doc(adjustment)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Takes `units` off the counter of each SKU, one SKU at a time in SKU order
/// (the lock order every multi-SKU operation follows).
pub(crate) async fn release_held(
    conn: &mut Tx,
    tenant: &str,
    mut released: Vec<(String, i32)>,
) -> Result<()> {
    released.sort();
    let mut per_sku: Vec<(String, i64)> = Vec::new();
    for (sku, units) in released {
        match per_sku.last_mut() {
            Some((last, total)) if *last == sku => *total += i64::from(units),
            _ => per_sku.push((sku, i64::from(units))),
        }
    }
    for (sku, units) in per_sku {
        sqlx::query("UPDATE skus SET held = held - $3 WHERE tenant_id = $1 AND sku = $2")
            .bind(tenant)
            .bind(sku)
            .bind(i32::try_from(units).map_err(|e| corrupt("a unit count", e))?)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Deletes the allocations of `order` and takes them off the SKUs' counters.
pub(crate) async fn release_allocations(conn: &mut Tx, tenant: &str, order: OrderId) -> Result<()> {
    let released: Vec<(String, i32)> = sqlx::query_as(
        "DELETE FROM allocations WHERE tenant_id = $1 AND order_id = $2 RETURNING sku, quantity",
    )
    .bind(tenant)
    .bind(order.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    release_held(conn, tenant, released).await
}

#[async_trait]
impl InventoryStore for PgTenant {
    async fn receive(
        &self,
        sku: &Sku,
        quantity: Quantity,
        reference: Option<&IdempotencyKey>,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        let mut tx = self.begin().await?;
        if let Some(reference) = reference {
            // The claim: a concurrent receipt with the same reference waits
            // on this row and then finds it taken.
            let current = level(&mut tx, self.tenant(), sku, now)
                .await?
                .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
            let claimed: Option<i32> = sqlx::query_scalar(
                "INSERT INTO stock_receipts (tenant_id, sku, reference, received_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(reference.as_str())
            .bind(now)
            .fetch_optional(&mut tx)
            .await
            .map_err(db)?;
            if claimed.is_none() {
                tx.commit().await?;
                return Ok(current);
            }
        }
        let on_hand: Option<i32> = sqlx::query_scalar(
            "UPDATE skus SET on_hand = on_hand + $3 \
             WHERE tenant_id = $1 AND sku = $2 AND on_hand::bigint + $3 <= $4 RETURNING on_hand",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .bind(i32::try_from(quantity.get()).map_err(|e| corrupt("a quantity", e))?)
        .bind(i64::from(Quantity::MAX))
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        let Some(on_hand) = on_hand else {
            return Err(match level(&mut tx, self.tenant(), sku, now).await? {
                Some(_) => Error::StockOverflow { sku: sku.clone() },
                None => Error::not_found(Entity::Sku, sku),
            });
        };
        let adjustment = StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Received,
            delta: i64::from(quantity.get()),
            on_hand_after: units(i64::from(on_hand))?,
            at: now,
            note,
            reference: reference.cloned(),
        };
        record_adjustment(&mut tx, self.tenant(), &adjustment).await?;
        let level = level(&mut tx, self.tenant(), sku, now)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        tx.commit().await?;
        Ok(level)
    }

    async fn correct(
        &self,
        sku: &Sku,
        on_hand: Quantity,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        let mut tx = self.begin().await?;
        let before: Option<i32> = sqlx::query_scalar(
            "SELECT on_hand FROM skus WHERE tenant_id = $1 AND sku = $2 FOR UPDATE",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        let before = before.ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        let held = live_held(&mut tx, self.tenant(), sku, now, None, None).await?;
        if i64::from(on_hand.get()) < held {
            return Err(Error::StockBelowHeld {
                sku: sku.clone(),
                requested: on_hand.get(),
                held: units(held)?,
            });
        }
        let target = i32::try_from(on_hand.get()).map_err(|e| corrupt("a quantity", e))?;
        sqlx::query("UPDATE skus SET on_hand = $3 WHERE tenant_id = $1 AND sku = $2")
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(target)
            .execute(&mut tx)
            .await
            .map_err(db)?;
        let adjustment = StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Corrected,
            delta: i64::from(target) - i64::from(before),
            on_hand_after: on_hand.get(),
            at: now,
            note,
            reference: None,
        };
        record_adjustment(&mut tx, self.tenant(), &adjustment).await?;
        let level = level(&mut tx, self.tenant(), sku, now)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        tx.commit().await?;
        Ok(level)
    }

    async fn stock(&self, sku: &Sku, now: Timestamp) -> Result<StockLevel> {
        let mut tx = self.begin().await?;
        let level = level(&mut tx, self.tenant(), sku, now).await?;
        tx.commit().await?;
        level.ok_or_else(|| Error::not_found(Entity::Sku, sku))
    }

    /// One statement: the SKU's stock row (so an unknown SKU is told
    /// apart from one nobody holds), and the first live reservation and
    /// allocation by expiry, each the first entry of its table's
    /// `(tenant_id, sku, expires_at)` index (`reservations_live`,
    /// `allocations_live`) past `now`: two index-only probes, whatever the
    /// number of holds.
    async fn next_release(&self, sku: &Sku, now: Timestamp) -> Result<Option<Timestamp>> {
        let mut tx = self.begin().await?;
        let row: Option<Option<Timestamp>> = sqlx::query_scalar(
            "SELECT LEAST( \
               (SELECT r.expires_at FROM reservations r \
                 WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku AND r.expires_at > $3 \
                 ORDER BY r.expires_at LIMIT 1), \
               (SELECT a.expires_at FROM allocations a \
                 WHERE a.tenant_id = s.tenant_id AND a.sku = s.sku AND a.expires_at > $3 \
                 ORDER BY a.expires_at LIMIT 1)) \
             FROM skus s WHERE s.tenant_id = $1 AND s.sku = $2",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .bind(now)
        .fetch_optional(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        row.ok_or_else(|| Error::not_found(Entity::Sku, sku))
    }

    async fn adjustments(&self, sku: &Sku) -> Result<Vec<StockAdjustment>> {
        let mut tx = self.begin().await?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM skus WHERE tenant_id = $1 AND sku = $2")
                .bind(self.tenant())
                .bind(sku.as_str())
                .fetch_optional(&mut tx)
                .await
                .map_err(db)?;
        if exists.is_none() {
            return Err(Error::not_found(Entity::Sku, sku));
        }
        let docs: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT doc FROM stock_adjustments WHERE tenant_id = $1 AND sku = $2 ORDER BY seq",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        docs.into_iter()
            .map(|doc| from_doc("a stock adjustment", doc))
            .collect()
    }

    async fn cart_reservations(&self, cart: CartId) -> Result<Vec<Reservation>> {
        let mut tx = self.begin().await?;
        let rows = holds(&mut tx, CART_RESERVATIONS, self.tenant(), cart.as_uuid()).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(sku, quantity, expires_at)| Reservation {
                cart,
                sku,
                quantity,
                expires_at,
            })
            .collect())
    }

    async fn order_allocations(&self, order: OrderId) -> Result<Vec<Allocation>> {
        let mut tx = self.begin().await?;
        let rows = holds(&mut tx, ORDER_ALLOCATIONS, self.tenant(), order.as_uuid()).await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(sku, quantity, expires_at)| Allocation {
                order,
                sku,
                quantity,
                expires_at,
            })
            .collect())
    }

    async fn sweep_reservations(&self, now: Timestamp, limit: usize) -> Result<usize> {
        let mut tx = self.begin().await?;
        let removed: Vec<(String, i32)> = sqlx::query_as(
            "DELETE FROM reservations WHERE (tenant_id, sku, cart_id) IN ( \
               SELECT tenant_id, sku, cart_id FROM reservations \
               WHERE tenant_id = $1 AND expires_at <= $2 \
               ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING sku, quantity",
        )
        .bind(self.tenant())
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        let count = removed.len();
        release_held(&mut tx, self.tenant(), removed).await?;
        tx.commit().await?;
        Ok(count)
    }
}
