//! Carts, their lines, and the reservation hot path.

use crate::session::Tx;
use async_trait::async_trait;
use commerce_core::store::CartStore;
use commerce_core::{
    BackendError, BackendErrorKind, Cart, CartId, CartLimits, CartStatus, CartUpdate, Currency,
    Entity, Error, Quantity, Result, Sku, Timestamp,
};

use crate::error::{corrupt, db, is_unique_violation};
use crate::group::{LoneRequest, LoneTurn, Request, Turn};
use crate::inventory::{live_held, quantity, sku};
use crate::{PgTenant, ReservationStrategy, from_doc, to_doc};

/// Reads a cart with its lines; `lock` takes the cart row `FOR UPDATE`.
/// A cart line as stored: its SKU and quantity.
pub(crate) type StoredLine = (String, i32);

pub(crate) async fn load_cart(
    conn: &mut Tx,
    tenant: &str,
    id: CartId,
    lock: bool,
) -> Result<Option<Cart>> {
    let (doc, lines): (serde_json::Value, Vec<StoredLine>) = if lock {
        // Two statements: the lines are read after the row lock is taken,
        // by a statement of their own and so with a snapshot taken after
        // the lock was granted. One statement's snapshot would predate
        // the wait, and miss a line a concurrent writer committed
        // meanwhile (the line limit is checked against these lines).
        let doc: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT doc FROM carts WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
                .bind(tenant)
                .bind(id.as_uuid())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
        let Some(doc) = doc else {
            return Ok(None);
        };
        let lines = sqlx::query_as(
            "SELECT sku, quantity FROM cart_lines WHERE tenant_id = $1 AND cart_id = $2 ORDER BY position, sku",
        )
        .bind(tenant)
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        (doc, lines)
    } else {
        // A plain read: the document and its lines in one statement.
        let row: Option<(serde_json::Value, sqlx::types::Json<Vec<StoredLine>>)> =
            sqlx::query_as(
                "SELECT c.doc, COALESCE((SELECT json_agg(json_build_array(l.sku, l.quantity)                    ORDER BY l.position, l.sku) FROM cart_lines l                    WHERE l.tenant_id = $1 AND l.cart_id = $2), '[]'::json)                  FROM carts c WHERE c.tenant_id = $1 AND c.id = $2",
            )
            .bind(tenant)
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        let Some((doc, lines)) = row else {
            return Ok(None);
        };
        (doc, lines.0)
    };
    build_cart(doc, lines).map(Some)
}

/// A cart from its document and its lines as stored.
pub(crate) fn build_cart(doc: serde_json::Value, lines: Vec<StoredLine>) -> Result<Cart> {
    let mut cart: Cart = from_doc("a cart", doc)?;
    cart.lines = lines
        .into_iter()
        .map(|(s, q)| {
            Ok(commerce_core::CartLine {
                sku: sku(s)?,
                quantity: quantity(q)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(cart)
}

/// Stores the cart's document (everything but its lines).
pub(crate) async fn save_cart(conn: &mut Tx, tenant: &str, cart: &Cart) -> Result<()> {
    let checked_out = match cart.status() {
        CartStatus::CheckedOut { order } => Some(order.as_uuid()),
        _ => None,
    };
    sqlx::query(
        "UPDATE carts SET doc = $3, checked_out_order = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(cart.id.as_uuid())
    .bind(cart_doc(cart)?)
    .bind(checked_out)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// A cart line to hold: what the advisory-lock strategy takes.
#[derive(Clone, Copy)]
struct LineChange<'a> {
    cart: CartId,
    sku: &'a Sku,
    quantity: Quantity,
    /// The cart's currency: the SKU must be priced in it.
    currency: Currency,
    expires_at: Timestamp,
}

/// The cart's document: everything but its lines (`cart_lines` holds them).
pub(crate) fn cart_doc(cart: &Cart) -> Result<sqlx::types::Json<serde_json::Value>> {
    let mut doc = to_doc(cart)?;
    if let Some(fields) = doc.0.as_object_mut() {
        fields.insert("lines".to_owned(), serde_json::Value::Array(Vec::new()));
    }
    Ok(doc)
}

/// `CurrencyMismatch` when the SKU is priced in another currency than the
/// cart's (`priced_in` is the `skus.currency` column, set with the price).
pub(crate) fn currency_mismatch(cart: Currency, priced_in: Option<&str>) -> Result<Option<Error>> {
    let Some(code) = priced_in else {
        return Err(corrupt(
            "a SKU's currency",
            "a published product's SKU has no currency",
        ));
    };
    let found: Currency = code.parse().map_err(|e| corrupt("a SKU's currency", e))?;
    Ok((found != cart).then_some(Error::CurrencyMismatch {
        expected: cart,
        found,
    }))
}

pub(crate) fn units(q: Quantity) -> Result<i32> {
    i32::try_from(q.get()).map_err(|e| corrupt("a quantity", e))
}

impl PgTenant {
    /// The advisory-lock reservation: serialize on the SKU, read on hand,
    /// sum the live holds of others, then write or refuse. The counter is
    /// kept for the other operations. `Err(available)` when refused.
    async fn reserve_advisory_lock(
        &self,
        conn: &mut Tx,
        line: &LineChange<'_>,
        now: Timestamp,
    ) -> Result<std::result::Result<(), i64>> {
        let LineChange {
            cart,
            sku,
            quantity,
            currency,
            expires_at,
            ..
        } = *line;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(self.tenant())
            .bind(sku.as_str())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        // The row lock keeps stock corrections and sales, which do not take
        // the advisory lock, from changing on_hand under this decision.
        let row: Option<(i32, Option<String>)> = sqlx::query_as(
            "SELECT on_hand, currency FROM skus WHERE tenant_id = $1 AND sku = $2 \
             AND EXISTS (SELECT 1 FROM products p \
               WHERE p.tenant_id = $1 AND p.id = skus.product_id AND p.published) \
             FOR UPDATE",
        )
        .bind(self.tenant())
        .bind(sku.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let (on_hand, priced_in) = row.ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        if let Some(mismatch) = currency_mismatch(currency, priced_in.as_deref())? {
            return Err(mismatch);
        }
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

    /// `set_line` as one call of `commerce_set_line` (migration 0009),
    /// outside any explicit transaction: one round trip and one commit.
    /// The function locks the cart, checks it, holds and writes, or
    /// refuses with what an answer needs; every answer is built here from
    /// the cart as it was locked, with commerce-core's own checks.
    async fn set_line_in_one_call(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart> {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.hot.set_line.clone()))
            .bind(self.tenant())
            .bind(cart.as_uuid())
            .bind(sku.as_str())
            .bind(units(quantity)?)
            .bind(i32::try_from(limits.max_lines()).unwrap_or(i32::MAX))
            .bind(i32::try_from(limits.max_units_per_line()).unwrap_or(i32::MAX))
            .bind(expires_at)
            .bind(now)
            .bind(sqlx::types::Json(
                serde_json::to_value(now).map_err(|e| corrupt("a timestamp", e))?,
            ));
        let row: SetLineRow = self.one_call(query).await?;
        set_line_answer(row, cart, sku, quantity, limits, now)
    }
}

/// The answer to one `set_line` from a row of `commerce_set_line` or
/// `commerce_set_lines` (migrations 0009 and 0012): the cart as locked
/// with the line set, or the refusal, each built with commerce-core's own
/// checks.
pub(crate) fn set_line_answer(
    (outcome, doc, items, available, priced_in): SetLineRow,
    cart: CartId,
    sku: &Sku,
    quantity: Quantity,
    limits: CartLimits,
    now: Timestamp,
) -> Result<Cart> {
    let (Some(doc), Some(items)) = (doc, items) else {
        return match outcome.as_str() {
            "no_cart" => Err(Error::not_found(Entity::Cart, cart)),
            other => Err(corrupt(
                "commerce_set_line's answer",
                format!("{other} without the cart"),
            )),
        };
    };
    let mut current = build_cart(doc, items.0)?;
    match outcome.as_str() {
        "ok" => {
            current.put_line(sku, quantity, now)?;
            Ok(current)
        }
        "cart" => {
            current.ensure_open()?;
            limits.check(&current, sku, quantity)?;
            Err(corrupt(
                "commerce_set_line's answer",
                "a cart refused that commerce-core accepts",
            ))
        }
        "no_sku" => Err(Error::not_found(Entity::Sku, sku)),
        "currency" => Err(currency_mismatch(current.currency, priced_in.as_deref())?
            .unwrap_or_else(|| {
                corrupt(
                    "commerce_set_line's answer",
                    "a currency mismatch in the cart's currency",
                )
            })),
        "insufficient" => Err(Error::InsufficientStock {
            sku: sku.clone(),
            requested: quantity.get(),
            available: u32::try_from(available.unwrap_or(0).max(0)).unwrap_or(u32::MAX),
        }),
        other => Err(corrupt(
            "commerce_set_line's answer",
            format!("unknown outcome {other}"),
        )),
    }
}

/// The answer of `commerce_set_line`: the outcome, the cart as locked (its
/// document and its lines), and for a refusal the available count or the
/// SKU's currency.
pub(crate) type SetLineRow = (
    String,
    Option<serde_json::Value>,
    Option<sqlx::types::Json<Vec<StoredLine>>>,
    Option<i64>,
    Option<String>,
);

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
            .execute(&mut tx)
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
                .execute(&mut tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await
    }

    async fn cart(&self, id: CartId) -> Result<Option<Cart>> {
        let mut tx = self.begin().await?;
        let cart = load_cart(&mut tx, self.tenant(), id, false).await?;
        tx.commit().await?;
        Ok(cart)
    }

    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart> {
        let mut tx = self.begin().await?;
        let mut current = load_cart(&mut tx, self.tenant(), cart, true)
            .await?
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        current.apply(update, now)?;
        save_cart(&mut tx, self.tenant(), &current).await?;
        tx.commit().await?;
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
        if self.strategy != ReservationStrategy::Grouped || quantity.is_zero() {
            return self
                .set_line_alone(cart, sku, quantity, limits, expires_at, now)
                .await;
        }
        let key = (self.tenant.clone(), sku.clone());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = Request {
            cart,
            quantity,
            limits,
            expires_at,
            now,
            reply,
        };
        // A request waiting in the SKU's queue counts among the operations
        // in flight (`PgStoreOptions::max_waiting`) until it is answered;
        // one that runs alone is counted by its own transaction.
        let admission = self.session.admit()?;
        // Held until answered when the SKU was idle: this request then holds
        // its SKU's turn, and runs alone, or in the batch of lone
        // reservations that wait behind the tenant's lone one in flight.
        let mut turn = None;
        if let Err(request) = self.groups.join(&key, request) {
            turn = Some(Turn::new(self.clone(), key));
            let lone = LoneRequest {
                sku: sku.clone(),
                request,
            };
            if self.groups.join_lone(&self.tenant, lone).is_err() {
                drop(admission);
                let _lone_turn = LoneTurn::new(self.clone());
                return self
                    .set_line_alone(cart, sku, quantity, limits, expires_at, now)
                    .await;
            }
        }
        let answered = answer.await;
        drop(turn);
        drop(admission);
        answered
            .map_err(|_| {
                Error::from(BackendError::new(
                    BackendErrorKind::Other,
                    "a grouped reservation ended without an answer",
                ))
            })?
            .answer(cart, sku, quantity, limits, now)
    }
}

impl PgTenant {
    /// `set_line` in a transaction of its own: every strategy's path, and
    /// the grouped strategy's when no other reservation of the SKU is in
    /// flight. One call of `commerce_set_line` for a removal and for every
    /// strategy but the advisory lock's.
    pub(crate) async fn set_line_alone(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart> {
        if quantity.is_zero() || self.strategy != ReservationStrategy::AdvisoryLock {
            return self
                .set_line_in_one_call(cart, sku, quantity, limits, expires_at, now)
                .await;
        }
        let mut tx = self.begin_setting(self.hot.reserving).await?;
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
        current.put_line(sku, quantity, now)?;
        let doc = cart_doc(&current)?;
        let line = LineChange {
            cart,
            sku,
            quantity,
            currency: current.currency,
            expires_at,
        };
        if let Err(available) = self.reserve_advisory_lock(&mut tx, &line, now).await? {
            return Err(Error::InsufficientStock {
                sku: sku.clone(),
                requested: quantity.get(),
                available: u32::try_from(available.max(0)).unwrap_or(0),
            });
        }
        // The line and the cart's document in one statement.
        sqlx::query(
            "WITH line AS ( \
               INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (tenant_id, cart_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity) \
             UPDATE carts SET doc = $5 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant())
        .bind(cart.as_uuid())
        .bind(sku.as_str())
        .bind(units(quantity)?)
        .bind(&doc)
        .execute(&mut tx)
        .await
        .map_err(db)?;
        tx.commit().await?;
        Ok(current)
    }
}
