//! The order pipeline's effects on PostgreSQL: the one place this store
//! changes stock, promotion usage, carts and refunds for an order (compare
//! `commerce-core/src/memory/effects.rs`).

use crate::session::Tx;
use commerce_core::order::{OrderEffect, Redemption, RefundError};
use commerce_core::promotion::PromotionUsage;
use commerce_core::store::check_redemption;
use commerce_core::{
    AdjustmentKind, Entity, Error, Order, Refund, Result, StockAdjustment, Timestamp,
};

use crate::carts::save_cart;
use crate::error::{corrupt, db, is_unique_violation};
use crate::inventory::{record_adjustment, release_allocations};
use crate::{PgTenant, to_doc};

/// Stores a new refund; an id another refund holds is
/// [`RefundError::IdReused`].
async fn insert_refund(conn: &mut Tx, tenant: &str, refund: &Refund) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO refunds (tenant_id, id, order_id, amount_minor, currency, pending, requested_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(refund.id.as_str())
    .bind(refund.order.as_uuid())
    .bind(refund.amount.minor())
    .bind(refund.amount.currency().code())
    .bind(refund.is_pending())
    .bind(refund.requested_at)
    .bind(to_doc(refund)?)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e, "refunds_pkey") => Err(RefundError::IdReused {
            refund: refund.id.clone(),
        }
        .into()),
        Err(e) => Err(db(e)),
    }
}

/// Replaces the stored refund with `refund`'s id.
async fn update_refund(conn: &mut Tx, tenant: &str, refund: &Refund) -> Result<()> {
    let updated =
        sqlx::query("UPDATE refunds SET pending = $3, doc = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(refund.id.as_str())
            .bind(refund.is_pending())
            .bind(to_doc(refund)?)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    if updated.rows_affected() == 0 {
        return Err(Error::not_found(Entity::Refund, &refund.id));
    }
    Ok(())
}

fn count(n: i32) -> Result<u32> {
    u32::try_from(n).map_err(|e| corrupt("a usage count", e))
}

/// Locks the usage rows of `redemption`'s promotion (and customer),
/// creating them at zero, and reads them.
async fn lock_usage(
    conn: &mut Tx,
    tenant: &str,
    redemption: &Redemption,
) -> Result<PromotionUsage> {
    // An upsert that changes nothing still locks the row and returns it.
    let total: i32 = sqlx::query_scalar(
        "INSERT INTO promotion_usage (tenant_id, promotion_id, total) VALUES ($1, $2, 0) \
         ON CONFLICT (tenant_id, promotion_id) DO UPDATE SET total = promotion_usage.total \
         RETURNING total",
    )
    .bind(tenant)
    .bind(redemption.promotion.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let by_customer = match &redemption.customer {
        Some(customer) => sqlx::query_scalar(
            "INSERT INTO promotion_customer_usage (tenant_id, promotion_id, customer_id, used) \
             VALUES ($1, $2, $3, 0) \
             ON CONFLICT (tenant_id, promotion_id, customer_id) \
             DO UPDATE SET used = promotion_customer_usage.used RETURNING used",
        )
        .bind(tenant)
        .bind(redemption.promotion.as_str())
        .bind(customer.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?,
        None => 0,
    };
    Ok(PromotionUsage {
        total: count(total)?,
        by_customer: count(by_customer)?,
    })
}

/// Adds `delta` (one or minus one) to the usage of `redemption`, never
/// below zero.
async fn add_usage(conn: &mut Tx, tenant: &str, redemption: &Redemption, delta: i32) -> Result<()> {
    sqlx::query(
        "INSERT INTO promotion_usage (tenant_id, promotion_id, total) VALUES ($1, $2, GREATEST($3, 0)) \
         ON CONFLICT (tenant_id, promotion_id) \
         DO UPDATE SET total = GREATEST(promotion_usage.total + $3, 0)",
    )
    .bind(tenant)
    .bind(redemption.promotion.as_str())
    .bind(delta)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if let Some(customer) = &redemption.customer {
        sqlx::query(
            "INSERT INTO promotion_customer_usage (tenant_id, promotion_id, customer_id, used) \
             VALUES ($1, $2, $3, GREATEST($4, 0)) \
             ON CONFLICT (tenant_id, promotion_id, customer_id) \
             DO UPDATE SET used = GREATEST(promotion_customer_usage.used + $4, 0)",
        )
        .bind(tenant)
        .bind(redemption.promotion.as_str())
        .bind(customer.as_str())
        .bind(delta)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    Ok(())
}

impl PgTenant {
    /// Sells the lines of `order`: the allocation goes, on-hand goes down,
    /// and a `Sold` adjustment is recorded per line.
    async fn sell(&self, conn: &mut Tx, order: &Order, now: Timestamp) -> Result<()> {
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
                reference: None,
            };
            record_adjustment(conn, self.tenant(), &adjustment).await?;
        }
        Ok(())
    }

    /// Turns the cart's reservations of `order`'s lines into its
    /// allocations: two statements whatever the number of lines. The first
    /// locks the lines' SKU rows in SKU order (a fixed lock order: `LockRows`
    /// sits above the sort); the second, over the lines as arrays, deletes
    /// the cart's reservations, inserts the order's allocations and moves
    /// each SKU's `held` counter by the difference.
    async fn allocate(&self, conn: &mut Tx, order: &Order) -> Result<()> {
        let mut skus = Vec::with_capacity(order.lines.len());
        let mut quantities = Vec::with_capacity(order.lines.len());
        for line in &order.lines {
            skus.push(line.sku.as_str());
            quantities
                .push(i32::try_from(line.quantity.get()).map_err(|e| corrupt("a quantity", e))?);
        }
        sqlx::query(
            "SELECT 1 FROM skus WHERE tenant_id = $1 AND sku = ANY($2) \
             ORDER BY sku COLLATE \"C\" FOR UPDATE",
        )
        .bind(self.tenant())
        .bind(&skus)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query(
            "WITH input AS ( \
               SELECT * FROM unnest($2::text[], $4::int[]) AS i(sku, quantity)), \
             gone AS ( \
               DELETE FROM reservations r USING input i \
               WHERE r.tenant_id = $1 AND r.sku = i.sku AND r.cart_id = $3 \
               RETURNING r.sku, r.quantity), \
             allocated AS ( \
               INSERT INTO allocations (tenant_id, sku, order_id, quantity, expires_at) \
               SELECT $1, i.sku, $5, i.quantity, $6 FROM input i \
               RETURNING sku, quantity) \
             UPDATE skus s SET held = s.held \
               - COALESCE((SELECT SUM(g.quantity) FROM gone g WHERE g.sku = s.sku), 0) \
               + (SELECT a.quantity FROM allocated a WHERE a.sku = s.sku) \
             WHERE s.tenant_id = $1 AND s.sku IN (SELECT sku FROM input)",
        )
        .bind(self.tenant())
        .bind(&skus)
        .bind(order.cart.as_uuid())
        .bind(&quantities)
        .bind(order.id.as_uuid())
        .bind(order.payment_expires_at)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        Ok(())
    }

    /// Carries out `effects` for `order`, in order, inside the caller's
    /// transaction. Exhaustive: a new effect does not compile until it is
    /// carried out here.
    pub(crate) async fn carry_out(
        &self,
        conn: &mut Tx,
        order: &Order,
        effects: Vec<OrderEffect>,
        now: Timestamp,
    ) -> Result<()> {
        let tenant = self.tenant();
        for effect in effects {
            match effect {
                OrderEffect::Redeem(redemptions) => {
                    for redemption in &redemptions {
                        let usage = lock_usage(conn, tenant, redemption).await?;
                        check_redemption(redemption, usage)?;
                        add_usage(conn, tenant, redemption, 1).await?;
                    }
                }
                OrderEffect::RestoreRedemptions(redemptions) => {
                    for redemption in &redemptions {
                        add_usage(conn, tenant, redemption, 1).await?;
                    }
                }
                OrderEffect::ReleaseRedemptions(redemptions) => {
                    for redemption in &redemptions {
                        add_usage(conn, tenant, redemption, -1).await?;
                    }
                }
                OrderEffect::AllocateStock => self.allocate(conn, order).await?,
                OrderEffect::SellStock => self.sell(conn, order, now).await?,
                OrderEffect::ReleaseAllocation => {
                    release_allocations(conn, tenant, order.id).await?
                }
                OrderEffect::CheckOutCart(cart) => save_cart(conn, tenant, &cart).await?,
                OrderEffect::RecordRefund(refund) => insert_refund(conn, tenant, &refund).await?,
                OrderEffect::UpdateRefund(refund) => update_refund(conn, tenant, &refund).await?,
            }
        }
        Ok(())
    }
}
