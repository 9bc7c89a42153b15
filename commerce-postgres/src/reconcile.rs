//! Reconciliation: the stock counters checked against the rows they
//! summarize, for one tenant, and optionally repaired.
//!
//! Three things can drift on this store and nowhere else (the in-memory
//! store keeps no counter beside its holds):
//!
//! - `skus.held` is the units of every reservation and allocation row of the
//!   SKU. Every statement that writes those rows adjusts it in the same
//!   statement or transaction, so it only drifts when something outside the
//!   store writes the tables (a hand-run `DELETE`, a restore of some tables
//!   but not others) or on a bug.
//! - A hold row whose owner can no longer hold: an allocation of an order
//!   that is not awaiting payment (a paid, cancelled or expired order holds
//!   none: the change out of awaiting payment releases it) or of no order; a
//!   reservation of a checked-out cart (checkout turns them into
//!   allocations) or of no cart. Such a row counts in `held`, so it keeps
//!   stock from being sold until someone deletes it; neither the sweep nor
//!   the lazy reclaim looks at the owner, only the expiry.
//! - `skus.on_hand` and the stock ledger: every change of on-hand appends a
//!   `stock_adjustments` row with `on_hand_after` in the same transaction,
//!   so the last one states the count.
//!
//! # Repair
//!
//! A held counter is set to the units of the rows; a stale or orphaned hold
//! row is deleted and its units leave `held`. An on-hand count that
//! disagrees with the ledger is **reported, never repaired**: the store
//! cannot tell which side is wrong (a count changed by hand, or a ledger row
//! lost), and either choice could sell stock that is not there or hide
//! stock that is. Whoever knows the shelf counts it and records the count
//! with `Shop::correct_stock`, which sets on-hand and appends a `Corrected`
//! adjustment in one transaction; the next run is then clean.
//!
//! # On a live shop
//!
//! Safe, and meant to be. The checks are single statements under `READ
//! COMMITTED`, each reading one committed state, in which the counters
//! agree with the rows (every writer changes both in one transaction), so
//! traffic in flight is never reported as drift. The repair first locks the
//! SKU rows it will touch, `FOR UPDATE` in SKU order, the lock every writer
//! of the SKU's holds takes before it commits; only then deletes the stale
//! rows (`SKIP LOCKED`: a row another transaction holds is left, reported
//! unrepaired, for the next run) and recounts `held` from the rows in a
//! statement that starts after the locks are held. A writer that changed
//! rows of the SKU but has not yet reached its counter waits for the
//! reconciliation and then applies its relative change on top of the
//! recount, which did not see its uncommitted rows: the counter ends equal to
//! the rows. Waiting only on SKU rows, taken in the order every other path
//! takes them, it cannot deadlock with them. Reservations of the SKUs being
//! repaired wait for the repair's commit (a few statements).

use std::collections::BTreeSet;
use std::fmt;

use crate::session::Tx;
use commerce_core::{CartId, OrderId, OrderStatus, Result, Sku, StockAdjustment, TenantId};

use crate::error::{corrupt, db};
use crate::inventory::sku;
use crate::{PgStore, PgTenant, from_doc};

/// What [`PgStore::reconcile`] found for one tenant, and what it repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// The tenant.
    pub tenant: TenantId,
    /// How many SKUs (stock records) were checked.
    pub skus_checked: usize,
    /// Whether a repair was asked for.
    pub repair: bool,
    /// Every drift found, by SKU.
    pub drift: Vec<Drift>,
}

impl ReconcileReport {
    /// Whether nothing drifted.
    pub fn is_clean(&self) -> bool {
        self.drift.is_empty()
    }

    /// The drift this run left as it found it.
    pub fn unrepaired(&self) -> impl Iterator<Item = &Drift> {
        self.drift.iter().filter(|d| !d.repaired)
    }
}

impl fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skus = plural(self.skus_checked, "SKU", "SKUs");
        if self.drift.is_empty() {
            return write!(f, "tenant {}: {skus} checked, no drift", self.tenant);
        }
        let repaired = self.drift.iter().filter(|d| d.repaired).count();
        write!(
            f,
            "tenant {}: {skus} checked, {} ({repaired} repaired)",
            self.tenant,
            plural(self.drift.len(), "drift", "drifts"),
        )?;
        for drift in &self.drift {
            write!(f, "\n  {drift}")?;
        }
        Ok(())
    }
}

/// One disagreement: a counter and what it summarizes, or a hold row that
/// should not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drift {
    /// The SKU.
    pub sku: Sku,
    /// What disagrees.
    pub kind: DriftKind,
    /// What the store records: the counter (`skus.held`, `skus.on_hand`),
    /// or the units the hold row holds. See [`DriftKind`].
    pub recorded: i64,
    /// What it should be according to what the counter summarizes: the
    /// units of the hold rows, the ledger's count, or 0 for a hold row
    /// that should not exist. See [`DriftKind`].
    pub actual: i64,
    /// Whether this run repaired it (a held counter recounted from the rows
    /// left once the SKU's stale rows were deleted, a hold row deleted and
    /// taken off the counter). Never for [`DriftKind::OnHandLedger`].
    pub repaired: bool,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (recorded, actual) = (self.recorded, self.actual);
        write!(f, "{}: ", self.sku)?;
        match &self.kind {
            DriftKind::HeldCounter => write!(
                f,
                "held counter {recorded}, but its reservation and allocation rows hold {actual}"
            )?,
            DriftKind::OnHandLedger => write!(
                f,
                "on hand {recorded} (skus.on_hand), but the stock ledger says {actual} \
                 (the last adjustment's on_hand_after)"
            )?,
            DriftKind::StaleAllocation { order, status } => write!(
                f,
                "allocation of {} for order {order}, which is {status} and should hold none",
                plural(usize_of(recorded), "unit", "units")
            )?,
            DriftKind::OrphanAllocation { order } => write!(
                f,
                "allocation of {} for order {order}, which does not exist",
                plural(usize_of(recorded), "unit", "units")
            )?,
            DriftKind::StaleReservation { cart, order } => write!(
                f,
                "reservation of {} for cart {cart}, checked out as order {order}",
                plural(usize_of(recorded), "unit", "units")
            )?,
            DriftKind::OrphanReservation { cart } => write!(
                f,
                "reservation of {} for cart {cart}, which does not exist",
                plural(usize_of(recorded), "unit", "units")
            )?,
        }
        match (&self.kind, self.repaired) {
            (DriftKind::OnHandLedger, _) => {
                f.write_str("; not repaired: count the stock and record the count as a correction")
            }
            // Recounted after the SKU's stale rows (listed beside it) were
            // deleted, so not necessarily to `actual`.
            (DriftKind::HeldCounter, true) => f.write_str("; repaired: recounted from its rows"),
            (_, true) => f.write_str("; repaired: deleted and taken off the held counter"),
            (_, false) => f.write_str("; not repaired"),
        }
    }
}

/// What a [`Drift`] is about, and what its `recorded` and `actual` mean.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriftKind {
    /// `skus.held` (`recorded`) differs from the units of the SKU's
    /// reservation and allocation rows, live or not yet reclaimed
    /// (`actual`). Repaired by setting the counter to the rows' units.
    HeldCounter,
    /// `skus.on_hand` (`recorded`, what the shop sells from) differs from
    /// the stock ledger (`actual`: the last `stock_adjustments` row's
    /// `on_hand_after`, or 0 for a SKU without adjustments). Never
    /// repaired: see the module docs.
    OnHandLedger,
    /// An allocation row (`recorded`: its units; `actual`: 0) of an order
    /// that is not awaiting payment. Repaired by deleting it and taking its
    /// units off `held`.
    StaleAllocation {
        /// The order.
        order: OrderId,
        /// Its status.
        status: OrderStatus,
    },
    /// An allocation row (`recorded`: its units; `actual`: 0) of an order
    /// that does not exist. Repaired like a stale one.
    OrphanAllocation {
        /// The order it names.
        order: OrderId,
    },
    /// A reservation row (`recorded`: its units; `actual`: 0) of a cart that
    /// is checked out. Repaired by deleting it and taking its units off
    /// `held`.
    StaleReservation {
        /// The cart.
        cart: CartId,
        /// The order it was checked out as.
        order: OrderId,
    },
    /// A reservation row (`recorded`: its units; `actual`: 0) of a cart that
    /// does not exist. Repaired like a stale one.
    OrphanReservation {
        /// The cart it names.
        cart: CartId,
    },
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn usize_of(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// A hold row found stale: what identifies it, and its drift.
struct StaleRow {
    sku: String,
    owner: uuid::Uuid,
    drift: Drift,
}

impl PgStore {
    /// Checks the stock counters of `tenant` against the rows they
    /// summarize and reports every [`Drift`]; with `repair`, also repairs
    /// what can be repaired (see [`DriftKind`]) in the same transaction.
    ///
    /// # Behavior
    ///
    /// One transaction under the tenant's row-level security, as every
    /// other operation of the store. Safe on a live shop: the checks never
    /// report traffic in flight, and the repair locks the SKU rows it
    /// touches (in SKU order, `FOR UPDATE`) before it deletes or recounts,
    /// so it does not race reservations, checkouts, payments or the sweep
    /// (the module's source explains why). A hold row another transaction
    /// holds at that moment is left and reported unrepaired; run again.
    /// Running it twice repairs nothing twice: a second run finds no drift
    /// but the on-hand counts that disagree with the ledger, which are only
    /// ever reported.
    ///
    /// Errors: a stored value that does not decode (a SKU, an order status,
    /// a ledger document) is a [`BackendError`](commerce_core::BackendError)
    /// of kind `Other`; the database's failures are classified as
    /// everywhere else in this store.
    pub async fn reconcile(&self, tenant: &TenantId, repair: bool) -> Result<ReconcileReport> {
        let scope = PgTenant {
            pool: self.pool.clone(),
            tenant: tenant.clone(),
            strategy: self.strategy,
            groups: self.groups.clone(),
            session: self.session.clone(),
            hot: self.hot.clone(),
        };
        // A maintenance pass over the whole tenant: its statements may run
        // longer than the hot paths' statement timeout (up to 10 minutes).
        let mut tx = scope
            .begin_setting(", set_config('statement_timeout', '600000ms', true)")
            .await?;
        let (skus_checked, mut counters) = check_counters(&mut tx, scope.tenant()).await?;
        let mut stale = stale_allocations(&mut tx, scope.tenant()).await?;
        stale.extend(stale_reservations(&mut tx, scope.tenant()).await?);
        if repair {
            repair_holds(&mut tx, scope.tenant(), &mut counters, &mut stale).await?;
        }
        tx.commit().await?;
        let mut drift: Vec<Drift> = counters
            .into_iter()
            .chain(stale.into_iter().map(|row| row.drift))
            .collect();
        drift.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(ReconcileReport {
            tenant: tenant.clone(),
            skus_checked,
            repair,
            drift,
        })
    }
}

/// The units of the reservation and allocation rows of the SKU row `s`, as
/// SQL (a macro, for `concat!`).
macro_rules! row_units {
    () => {
        "(SELECT COALESCE(SUM(quantity), 0)::bigint FROM reservations r \
           WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku) \
         + (SELECT COALESCE(SUM(quantity), 0)::bigint FROM allocations a \
           WHERE a.tenant_id = s.tenant_id AND a.sku = s.sku)"
    };
}

/// Every SKU's held counter against its rows and its on-hand count against
/// its ledger, in one statement (one committed state): how many SKUs, and
/// the drift.
async fn check_counters(conn: &mut Tx, tenant: &str) -> Result<(usize, Vec<Drift>)> {
    let rows: Vec<(String, i64, i64, i64, Option<serde_json::Value>)> = sqlx::query_as(concat!(
        "SELECT s.sku, s.held::bigint, ",
        row_units!(),
        ", s.on_hand::bigint, \
               (SELECT j.doc FROM stock_adjustments j \
                 WHERE j.tenant_id = s.tenant_id AND j.sku = s.sku ORDER BY j.seq DESC LIMIT 1) \
             FROM skus s WHERE s.tenant_id = $1 ORDER BY s.sku"
    ))
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let checked = rows.len();
    let mut drift = Vec::new();
    for (name, held, row_units, on_hand, last) in rows {
        let ledger = match last {
            Some(doc) => {
                let adjustment: StockAdjustment = from_doc("a stock adjustment", doc)?;
                i64::from(adjustment.on_hand_after)
            }
            None => 0,
        };
        if held != row_units {
            drift.push(Drift {
                sku: sku(name.clone())?,
                kind: DriftKind::HeldCounter,
                recorded: held,
                actual: row_units,
                repaired: false,
            });
        }
        if on_hand != ledger {
            drift.push(Drift {
                sku: sku(name)?,
                kind: DriftKind::OnHandLedger,
                recorded: on_hand,
                actual: ledger,
                repaired: false,
            });
        }
    }
    Ok((checked, drift))
}

/// Allocation rows whose order is not awaiting payment, or missing.
async fn stale_allocations(conn: &mut Tx, tenant: &str) -> Result<Vec<StaleRow>> {
    let rows: Vec<(String, uuid::Uuid, i32, Option<String>)> = sqlx::query_as(
        "SELECT a.sku, a.order_id, a.quantity, o.status FROM allocations a \
         LEFT JOIN orders o ON o.tenant_id = a.tenant_id AND o.id = a.order_id \
         WHERE a.tenant_id = $1 AND (o.id IS NULL OR o.status <> 'awaiting_payment') \
         ORDER BY a.sku, a.order_id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(name, owner, quantity, status)| {
            let order = OrderId::from_uuid(owner);
            let kind = match status {
                Some(status) => DriftKind::StaleAllocation {
                    order,
                    status: OrderStatus::parse(&status)
                        .ok_or_else(|| corrupt("an order status", &status))?,
                },
                None => DriftKind::OrphanAllocation { order },
            };
            stale_row(name, owner, quantity, kind)
        })
        .collect()
}

/// Reservation rows whose cart is checked out, or missing.
async fn stale_reservations(conn: &mut Tx, tenant: &str) -> Result<Vec<StaleRow>> {
    let rows: Vec<(String, uuid::Uuid, i32, bool, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT r.sku, r.cart_id, r.quantity, c.id IS NOT NULL, c.checked_out_order \
         FROM reservations r \
         LEFT JOIN carts c ON c.tenant_id = r.tenant_id AND c.id = r.cart_id \
         WHERE r.tenant_id = $1 AND (c.id IS NULL OR c.checked_out_order IS NOT NULL) \
         ORDER BY r.sku, r.cart_id",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(name, owner, quantity, exists, order)| {
            let cart = CartId::from_uuid(owner);
            let kind = match (exists, order) {
                (true, Some(order)) => DriftKind::StaleReservation {
                    cart,
                    order: OrderId::from_uuid(order),
                },
                _ => DriftKind::OrphanReservation { cart },
            };
            stale_row(name, owner, quantity, kind)
        })
        .collect()
}

fn stale_row(name: String, owner: uuid::Uuid, quantity: i32, kind: DriftKind) -> Result<StaleRow> {
    Ok(StaleRow {
        drift: Drift {
            sku: sku(name.clone())?,
            kind,
            recorded: i64::from(quantity),
            actual: 0,
            repaired: false,
        },
        sku: name,
        owner,
    })
}

/// Locks the SKU rows of every held drift and stale row (in SKU order),
/// deletes the stale rows nobody else holds, and recounts those SKUs'
/// `held` from their rows. Marks what it repaired.
async fn repair_holds(
    conn: &mut Tx,
    tenant: &str,
    counters: &mut [Drift],
    stale: &mut [StaleRow],
) -> Result<()> {
    let affected: BTreeSet<String> = counters
        .iter()
        .filter(|d| d.kind == DriftKind::HeldCounter)
        .map(|d| d.sku.as_str().to_owned())
        .chain(stale.iter().map(|row| row.sku.clone()))
        .collect();
    if affected.is_empty() {
        return Ok(());
    }
    let affected: Vec<String> = affected.into_iter().collect();
    // The lock every writer of these SKUs' holds takes before it commits;
    // the statements below start after it is held.
    sqlx::query(
        "SELECT sku FROM skus WHERE tenant_id = $1 AND sku = ANY($2) ORDER BY sku FOR UPDATE",
    )
    .bind(tenant)
    .bind(&affected)
    .execute(&mut *conn)
    .await
    .map_err(db)?;

    let (allocations, reservations): (Vec<&StaleRow>, Vec<&StaleRow>) =
        stale.iter().partition(|row| {
            matches!(
                row.drift.kind,
                DriftKind::StaleAllocation { .. } | DriftKind::OrphanAllocation { .. }
            )
        });
    let mut deleted: BTreeSet<(String, uuid::Uuid)> = BTreeSet::new();
    if !allocations.is_empty() {
        let (skus, owners): (Vec<String>, Vec<uuid::Uuid>) = allocations
            .iter()
            .map(|row| (row.sku.clone(), row.owner))
            .unzip();
        let gone: Vec<(String, uuid::Uuid)> = sqlx::query_as(
            "DELETE FROM allocations WHERE (tenant_id, sku, order_id) IN ( \
               SELECT a.tenant_id, a.sku, a.order_id FROM allocations a \
               JOIN UNNEST($2::text[], $3::uuid[]) AS stale(sku, order_id) \
                 ON a.sku = stale.sku AND a.order_id = stale.order_id \
               WHERE a.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM orders o \
                 WHERE o.tenant_id = a.tenant_id AND o.id = a.order_id \
                   AND o.status = 'awaiting_payment') \
               FOR UPDATE OF a SKIP LOCKED) \
             RETURNING sku, order_id",
        )
        .bind(tenant)
        .bind(&skus)
        .bind(&owners)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        deleted.extend(gone);
    }
    if !reservations.is_empty() {
        let (skus, owners): (Vec<String>, Vec<uuid::Uuid>) = reservations
            .iter()
            .map(|row| (row.sku.clone(), row.owner))
            .unzip();
        let gone: Vec<(String, uuid::Uuid)> = sqlx::query_as(
            "DELETE FROM reservations WHERE (tenant_id, sku, cart_id) IN ( \
               SELECT r.tenant_id, r.sku, r.cart_id FROM reservations r \
               JOIN UNNEST($2::text[], $3::uuid[]) AS stale(sku, cart_id) \
                 ON r.sku = stale.sku AND r.cart_id = stale.cart_id \
               WHERE r.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM carts c \
                 WHERE c.tenant_id = r.tenant_id AND c.id = r.cart_id \
                   AND c.checked_out_order IS NULL) \
               FOR UPDATE OF r SKIP LOCKED) \
             RETURNING sku, cart_id",
        )
        .bind(tenant)
        .bind(&skus)
        .bind(&owners)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        deleted.extend(gone);
    }
    for row in stale.iter_mut() {
        row.drift.repaired = deleted.contains(&(row.sku.clone(), row.owner));
    }

    // The recount: the rows as they are now, this transaction's deletions
    // included; every other writer of these SKUs waits on the locks.
    let recounted: Vec<String> = sqlx::query_scalar(concat!(
        "UPDATE skus s SET held = ",
        row_units!(),
        " WHERE s.tenant_id = $1 AND s.sku = ANY($2) RETURNING s.sku"
    ))
    .bind(tenant)
    .bind(&affected)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for drift in counters.iter_mut() {
        if drift.kind == DriftKind::HeldCounter {
            drift.repaired = recounted.iter().any(|s| s == drift.sku.as_str());
        }
    }
    Ok(())
}
