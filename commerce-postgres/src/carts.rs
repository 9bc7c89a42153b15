//! Carts, their lines, and the reservation hot path.

use async_trait::async_trait;
use commerce_core::store::CartStore;
use commerce_core::{
    BackendError, BackendErrorKind, Cart, CartId, CartLimits, CartStatus, CartUpdate, Entity,
    Error, Quantity, Result, Sku, Timestamp,
};
use sqlx::PgConnection;

use crate::error::{corrupt, db, is_unique_violation};
use crate::inventory::{live_held, quantity, reclaim_expired, sku};
use crate::{PgTenant, ReservationStrategy, from_doc, to_doc};

/// Reads a cart with its lines; `lock` takes the cart row `FOR UPDATE`.
pub(crate) async fn load_cart(
    conn: &mut PgConnection,
    tenant: &str,
    id: CartId,
    lock: bool,
) -> Result<Option<Cart>> {
    let statement = if lock {
        "SELECT doc FROM carts WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    } else {
        "SELECT doc FROM carts WHERE tenant_id = $1 AND id = $2"
    };
    let doc: Option<serde_json::Value> = sqlx::query_scalar(statement)
        .bind(tenant)
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    let Some(doc) = doc else {
        return Ok(None);
    };
    let mut cart: Cart = from_doc("a cart", doc)?;
    let lines: Vec<(String, i32)> = sqlx::query_as(
        "SELECT sku, quantity FROM cart_lines WHERE tenant_id = $1 AND cart_id = $2 ORDER BY position",
    )
    .bind(tenant)
    .bind(id.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    cart.lines = lines
        .into_iter()
        .map(|(s, q)| {
            Ok(commerce_core::CartLine {
                sku: sku(s)?,
                quantity: quantity(q)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(cart))
}

/// Stores the cart's document (everything but its lines).
pub(crate) async fn save_cart(conn: &mut PgConnection, tenant: &str, cart: &Cart) -> Result<()> {
    let mut doc = cart.clone();
    doc.lines.clear();
    let checked_out = match cart.status() {
        CartStatus::CheckedOut { order } => Some(order.as_uuid()),
        _ => None,
    };
    sqlx::query(
        "UPDATE carts SET doc = $3, checked_out_order = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(cart.id.as_uuid())
    .bind(to_doc(&doc)?)
    .bind(checked_out)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

fn units(q: Quantity) -> Result<i32> {
    i32::try_from(q.get()).map_err(|e| corrupt("a quantity", e))
}

impl PgTenant {
    /// The single-statement reservation: the SKU's counter is raised by the
    /// difference to the cart's current hold only if a published product
    /// has the SKU and the stock covers it, and the reservation is written
    /// by the same statement. `true` if it held.
    ///
    /// The cart's current reservation is read `FOR UPDATE`, so a concurrent
    /// sweep or reclaim cannot delete it (and lower the counter) between this
    /// read and the counter update; it also keeps the lock order of every
    /// path: reservation rows before SKU rows.
    async fn reserve_single_statement(
        &self,
        conn: &mut PgConnection,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let written: Option<i32> = sqlx::query_scalar(
            "WITH old AS ( \
               SELECT COALESCE((SELECT quantity FROM reservations \
                 WHERE tenant_id = $1 AND sku = $2 AND cart_id = $3 FOR UPDATE), 0) AS quantity), \
             counted AS ( \
               UPDATE skus SET held = held - (SELECT quantity FROM old) + $4 \
               WHERE tenant_id = $1 AND sku = $2 AND product_id IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM products p \
                   WHERE p.tenant_id = $1 AND p.id = skus.product_id AND p.published) \
                 AND on_hand - (held - (SELECT quantity FROM old)) >= $4 \
               RETURNING 1) \
             INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at) \
             SELECT $1, $2, $3, $4, $5 FROM counted \
             ON CONFLICT (tenant_id, sku, cart_id) \
             DO UPDATE SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at \
             RETURNING 1",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .bind(cart.as_uuid())
        .bind(units(quantity)?)
        .bind(expires_at)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        Ok(written.is_some())
    }

    /// The advisory-lock reservation: serialize on the SKU, read on hand,
    /// sum the live holds of others, then write or refuse. The counter is
    /// kept for the other operations. `Err(available)` when refused.
    async fn reserve_advisory_lock(
        &self,
        conn: &mut PgConnection,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<std::result::Result<(), i64>> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(self.tenant())
            .bind(sku.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        // The row lock keeps stock corrections and sales, which do not take
        // the advisory lock, from changing on_hand under this decision.
        let on_hand: Option<i32> = sqlx::query_scalar(
            "SELECT on_hand FROM skus WHERE tenant_id = $1 AND sku = $2 \
             AND EXISTS (SELECT 1 FROM products p \
               WHERE p.tenant_id = $1 AND p.id = skus.product_id AND p.published) \
             FOR UPDATE",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let on_hand = on_hand.ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        let others = live_held(conn, self.tenant(), sku, now, Some(cart), None).await?;
        let available = i64::from(on_hand) - others;
        if i64::from(quantity.get()) > available {
            return Ok(Err(available));
        }
        sqlx::query(
            "WITH old AS ( \
               SELECT COALESCE((SELECT quantity FROM reservations \
                 WHERE tenant_id = $1 AND sku = $2 AND cart_id = $3 FOR UPDATE), 0) AS quantity), \
             counted AS ( \
               UPDATE skus SET held = held - (SELECT quantity FROM old) + $4 \
               WHERE tenant_id = $1 AND sku = $2 RETURNING 1) \
             INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at) \
             SELECT $1, $2, $3, $4, $5 FROM counted \
             ON CONFLICT (tenant_id, sku, cart_id) \
             DO UPDATE SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .bind(cart.as_uuid())
        .bind(units(quantity)?)
        .bind(expires_at)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        Ok(Ok(()))
    }

    /// The real available count for `cart`, and whether the SKU is sellable
    /// (a published product has it).
    async fn refusal(
        &self,
        conn: &mut PgConnection,
        cart: CartId,
        sku: &Sku,
        requested: Quantity,
        now: Timestamp,
    ) -> Result<Error> {
        let on_hand: Option<i32> = sqlx::query_scalar(
            "SELECT on_hand FROM skus WHERE tenant_id = $1 AND sku = $2 \
             AND EXISTS (SELECT 1 FROM products p \
               WHERE p.tenant_id = $1 AND p.id = skus.product_id AND p.published)",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let Some(on_hand) = on_hand else {
            return Ok(Error::not_found(Entity::Sku, sku));
        };
        let others = live_held(conn, self.tenant(), sku, now, Some(cart), None).await?;
        Ok(Error::InsufficientStock {
            sku: sku.clone(),
            requested: requested.get(),
            available: u32::try_from((i64::from(on_hand) - others).max(0)).unwrap_or(0),
        })
    }
}

#[async_trait]
impl CartStore for PgTenant {
    async fn insert_cart(&self, cart: &Cart) -> Result<()> {
        if cart.tenant.as_str() != self.tenant() {
            return Err(Error::TenantMismatch {
                expected: commerce_core::TenantId::parse(self.tenant())?,
                found: cart.tenant.clone(),
            });
        }
        let mut doc = cart.clone();
        doc.lines.clear();
        let mut tx = self.begin().await?;
        let inserted = sqlx::query("INSERT INTO carts (tenant_id, id, doc) VALUES ($1, $2, $3)")
            .bind(self.tenant())
            .bind(cart.id.as_uuid())
            .bind(to_doc(&doc)?)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e, "carts_pkey") {
                BackendError::new(
                    BackendErrorKind::Conflict,
                    format!("cart {} exists", cart.id),
                )
                .with_source(e)
                .into()
            } else {
                db(e)
            });
        }
        for line in &cart.lines {
            sqlx::query("INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity) VALUES ($1, $2, $3, $4)")
                .bind(self.tenant())
                .bind(cart.id.as_uuid())
                .bind(line.sku.as_str())
                .bind(units(line.quantity)?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn cart(&self, id: CartId) -> Result<Option<Cart>> {
        let mut tx = self.begin().await?;
        let cart = load_cart(&mut tx, self.tenant(), id, false).await?;
        tx.commit().await.map_err(db)?;
        Ok(cart)
    }

    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart> {
        let mut tx = self.begin().await?;
        let mut current = load_cart(&mut tx, self.tenant(), cart, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        current.apply(update, now)?;
        save_cart(&mut tx, self.tenant(), &current).await?;
        tx.commit().await.map_err(db)?;
        Ok(current)
    }

    async fn set_line(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart> {
        let mut tx = self.begin().await?;
        // The cart row lock serializes this cart's changes and its checkout,
        // whatever the reservation strategy: every writer of `cart_lines`
        // holds it. `load_cart` reads the lines after taking it (a fresh
        // snapshot under read committed), so the line count checked here is
        // the one this transaction adds to, and the check costs no round
        // trip.
        let mut current = load_cart(&mut tx, self.tenant(), cart, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        current.ensure_open()?;
        limits.check(&current, sku, quantity)?;
        if quantity.is_zero() {
            let sellable: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM skus WHERE tenant_id = $1 AND sku = $2 AND product_id IS NOT NULL",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if sellable.is_none() {
                return Err(Error::not_found(Entity::Sku, sku));
            }
            sqlx::query(
                "WITH gone AS ( \
                   DELETE FROM reservations WHERE tenant_id = $1 AND sku = $2 AND cart_id = $3 RETURNING quantity) \
                 UPDATE skus SET held = held - (SELECT COALESCE(SUM(quantity), 0) FROM gone) \
                 WHERE tenant_id = $1 AND sku = $2",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(cart.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(
                "DELETE FROM cart_lines WHERE tenant_id = $1 AND cart_id = $2 AND sku = $3",
            )
            .bind(self.tenant())
            .bind(cart.as_uuid())
            .bind(sku.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        } else {
            match self.strategy {
                ReservationStrategy::SingleStatement => {
                    let mut held = self
                        .reserve_single_statement(&mut tx, cart, sku, quantity, expires_at)
                        .await?;
                    if !held {
                        reclaim_expired(&mut tx, self.tenant(), sku, now).await?;
                        held = self
                            .reserve_single_statement(&mut tx, cart, sku, quantity, expires_at)
                            .await?;
                    }
                    if !held {
                        return Err(self.refusal(&mut tx, cart, sku, quantity, now).await?);
                    }
                }
                ReservationStrategy::AdvisoryLock => {
                    if let Err(available) = self
                        .reserve_advisory_lock(&mut tx, cart, sku, quantity, expires_at, now)
                        .await?
                    {
                        return Err(Error::InsufficientStock {
                            sku: sku.clone(),
                            requested: quantity.get(),
                            available: u32::try_from(available.max(0)).unwrap_or(0),
                        });
                    }
                }
            }
            sqlx::query(
                "INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, cart_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity",
            )
            .bind(self.tenant())
            .bind(cart.as_uuid())
            .bind(sku.as_str())
            .bind(units(quantity)?)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        current.put_line(sku, quantity, now)?;
        save_cart(&mut tx, self.tenant(), &current).await?;
        tx.commit().await.map_err(db)?;
        Ok(current)
    }
}
