//! Group reservations ([`ReservationStrategy::Grouped`](crate::ReservationStrategy::Grouped)):
//! the reservations of one SKU that arrive while another of the same SKU
//! is in flight in this process wait in a queue, and one transaction then
//! takes the SKU's row once and answers all of them.
//!
//! A reservation that finds nothing in flight for its SKU goes alone, as
//! the single-statement strategy does, and marks the SKU busy; those that
//! arrive meanwhile queue. When the lone one ends (or its caller drops it),
//! a task takes the queue, up to [`MAX_GROUP`] at a time, and runs one
//! transaction per group until the queue is empty (yielding once between
//! groups, so callers just answered that come straight back join the next
//! one). A group's transaction does, in the lock order of every path:
//!
//! 1. the group's carts locked `FOR UPDATE` in id order (the order every
//!    group takes, so two groups that share carts cannot deadlock), then
//!    their lines read;
//! 2. each request checked on its own cart (open, limits): a request that
//!    fails here is answered with its error and takes no further part; the
//!    clocks of the carts that pass are written now, before the SKU's row
//!    is locked (and put back for a request refused after);
//! 3. the carts' current holds of the SKU, then the SKU's row, locked
//!    (reservation rows before SKU rows);
//! 4. grants decided in arrival order while stock lasts; if one is refused,
//!    the expired holds of the SKU are reclaimed and the decision made
//!    again, so a refusal carries the real available count;
//! 5. one statement writes every granted hold and cart line and moves the
//!    SKU's counter by the net change.
//!
//! The whole transaction is one call of `commerce_set_lines` (migration
//! 0012), sent alone outside any explicit transaction: one round trip and
//! one commit per group, and the SKU's row is locked only while the
//! server runs the group, not across round trips. Every answer is built
//! from the cart as it was locked, with commerce-core's own checks, as
//! for a reservation alone.
//!
//! A group is all or nothing: should its transaction fail (a lost
//! connection, a deadlock with another path), nothing of it is written and
//! each of its requests runs again alone, so one request's failure is never
//! another's, and no request is applied twice. Requests for the same cart
//! in one group are split: the later ones run alone after it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use commerce_core::{
    BackendError, BackendErrorKind, Cart, CartId, CartLimits, Error, Quantity, Result, Sku,
    TenantId, Timestamp,
};
use sqlx::types::Json;
use tokio::sync::oneshot;

use crate::PgTenant;
use crate::carts::{SetLineRow, set_line_answer, units};
use crate::error::corrupt;

/// The most requests one group transaction answers; the rest wait for the
/// next.
pub const MAX_GROUP: usize = 64;

/// A reservation waiting for its group.
pub(crate) struct Request {
    pub(crate) cart: CartId,
    pub(crate) quantity: Quantity,
    pub(crate) limits: CartLimits,
    pub(crate) expires_at: Timestamp,
    pub(crate) now: Timestamp,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// What a request that waited for its group is told.
pub(crate) enum Reply {
    /// Its row of the group's call: the request builds its answer from it
    /// itself ([`set_line_answer`]), in its own task, so the runner hands
    /// the rows out and goes on to the next group instead of building
    /// every answer one after the other while the SKU's row sits idle.
    Row(SetLineRow),
    /// Its answer, whole.
    Answer(Result<Cart>),
}

impl Reply {
    /// The answer to `request`'s reservation of `sku`.
    pub(crate) fn answer(
        self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        now: Timestamp,
    ) -> Result<Cart> {
        match self {
            Self::Row(row) => set_line_answer(row, cart, sku, quantity, limits, now),
            Self::Answer(answer) => answer,
        }
    }
}

type Key = (TenantId, Sku);

/// How many reservations or groups of one SKU may run at once in this
/// process. One: on the hot-SKU bench (32 tasks, 2 cores) two runners
/// measured slower, with a group of seven round trips (about 2,700 against
/// 3,100-3,400 per second) and again with the group as one call, whose
/// carts are locked and their clocks written before the SKU's row is
/// (9,988 against 10,998): the second group splits the queue into smaller
/// groups, and its early steps compete for the same two cores.
pub const RUNNERS_PER_SKU: usize = 1;

/// The reservations of one SKU in flight, and those queued behind them.
#[derive(Default)]
struct Slot {
    running: usize,
    queue: VecDeque<Request>,
}

/// The SKUs with a reservation in flight in this process. A key is present
/// exactly while a reservation or a group of its SKU runs.
#[derive(Default)]
pub(crate) struct Groups {
    busy: Mutex<HashMap<Key, Slot>>,
}

impl Groups {
    /// Queues `request` if [`RUNNERS_PER_SKU`] reservations of its SKU are
    /// in flight (`Ok(())`); otherwise counts one more in flight and gives
    /// the request back for its caller to run alone (`Err(request)`).
    pub(crate) fn join(&self, key: &Key, request: Request) -> std::result::Result<(), Request> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = busy.entry(key.clone()).or_default();
        if slot.running < RUNNERS_PER_SKU {
            slot.running += 1;
            Err(request)
        } else {
            slot.queue.push_back(request);
            Ok(())
        }
    }

    /// The next group of `key` for a runner that has finished, at most
    /// [`MAX_GROUP`] requests in arrival order; empty when none wait, and
    /// the runner then no longer counts as in flight.
    fn next_group(&self, key: &Key) -> Vec<Request> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = busy.get_mut(key) else {
            return Vec::new();
        };
        if slot.queue.is_empty() {
            slot.running = slot.running.saturating_sub(1);
            if slot.running == 0 {
                busy.remove(key);
            }
            return Vec::new();
        }
        let take = slot.queue.len().min(MAX_GROUP);
        slot.queue.drain(..take).collect()
    }
}

/// Held by a reservation that runs alone: when it ends, however it ends
/// (its caller may drop it half-way), the requests that queued meanwhile
/// are handed to a task that runs them in groups.
pub(crate) struct Turn {
    tenant: PgTenant,
    key: Key,
}

impl Turn {
    pub(crate) fn new(tenant: PgTenant, key: Key) -> Self {
        Self { tenant, key }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let group = self.tenant.groups.next_group(&self.key);
        if group.is_empty() {
            return;
        }
        let tenant = self.tenant.clone();
        let key = self.key.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(tenant.drain_groups(key, group));
            }
            // Unreachable from a store operation, which runs on the
            // runtime; answered rather than left waiting forever.
            Err(_) => {
                for request in group {
                    let _ = request.reply.send(Reply::Answer(Err(no_runtime())));
                }
                // Whatever queued since must not wait for a task that
                // never starts either.
                loop {
                    let more = tenant.groups.next_group(&key);
                    if more.is_empty() {
                        break;
                    }
                    for request in more {
                        let _ = request.reply.send(Reply::Answer(Err(no_runtime())));
                    }
                }
            }
        }
    }
}

fn no_runtime() -> Error {
    BackendError::new(
        BackendErrorKind::Other,
        "a group reservation needs a tokio runtime",
    )
    .into()
}

impl PgTenant {
    /// Runs the groups of `key`, starting with `group`, until none wait.
    async fn drain_groups(self, key: Key, mut group: Vec<Request>) {
        loop {
            self.run_group(&key.1, group).await;
            // The callers just answered run before the next group is
            // taken, so one that comes straight back joins it instead of
            // making a group of its own.
            tokio::task::yield_now().await;
            group = self.groups.next_group(&key);
            if group.is_empty() {
                return;
            }
        }
    }

    /// Answers every request of `group`: in one transaction, or, should it
    /// fail, each alone.
    async fn run_group(&self, sku: &Sku, group: Vec<Request>) {
        let mut first = Vec::with_capacity(group.len());
        let mut later = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(group.len());
        for request in group {
            if seen.insert(request.cart) {
                first.push(request);
            } else {
                later.push(request);
            }
        }
        match self.group_transaction(sku, &first).await {
            Ok(rows) => {
                for (request, row) in first.into_iter().zip(rows) {
                    let _ = request.reply.send(Reply::Row(row));
                }
            }
            // A wait that ran out (the SKU's row lock, the pool) wrote
            // nothing and would run out again for each request alone, one
            // after another: every request of the group is told busy.
            Err(Error::Backend(busy)) if busy.kind() == BackendErrorKind::Busy => {
                for request in first {
                    let _ = request.reply.send(Reply::Answer(Err(BackendError::new(
                        BackendErrorKind::Busy,
                        format!("the group's transaction: {busy}"),
                    )
                    .into())));
                }
            }
            Err(_) => {
                later.splice(0..0, first);
            }
        }
        for request in later {
            let answer = self
                .set_line_alone(
                    request.cart,
                    sku,
                    request.quantity,
                    request.limits,
                    request.expires_at,
                    request.now,
                )
                .await;
            let _ = request.reply.send(Reply::Answer(answer));
        }
    }

    /// One transaction for `group` (distinct carts): every request's row,
    /// in order, or the error that rolled the whole group back. The
    /// transaction is one call of `commerce_set_lines` (migration 0012),
    /// which locks, checks, decides and writes; each request builds its
    /// answer from its row, from the cart as it was locked, as a
    /// reservation alone does.
    async fn group_transaction(&self, sku: &Sku, group: &[Request]) -> Result<Vec<SetLineRow>> {
        let Some(latest) = group.iter().map(|r| r.now).max() else {
            return Ok(Vec::new());
        };
        let mut carts = Vec::with_capacity(group.len());
        let mut quantities = Vec::with_capacity(group.len());
        let mut max_lines = Vec::with_capacity(group.len());
        let mut max_units = Vec::with_capacity(group.len());
        let mut expiries = Vec::with_capacity(group.len());
        let mut clocks = Vec::with_capacity(group.len());
        for request in group {
            carts.push(request.cart.as_uuid());
            quantities.push(units(request.quantity)?);
            max_lines.push(i32::try_from(request.limits.max_lines()).unwrap_or(i32::MAX));
            max_units.push(i32::try_from(request.limits.max_units_per_line()).unwrap_or(i32::MAX));
            expiries.push(request.expires_at);
            clocks.push(Json(
                serde_json::to_value(request.now).map_err(|e| corrupt("a timestamp", e))?,
            ));
        }
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.hot.set_lines.clone()))
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(&carts)
            .bind(&quantities)
            .bind(&max_lines)
            .bind(&max_units)
            .bind(&expiries)
            .bind(latest)
            .bind(&clocks);
        let rows: Vec<SetLineRow> = self.one_call_rows(query).await?;
        if rows.len() != group.len() {
            return Err(corrupt(
                "commerce_set_lines' answer",
                format!("{} rows for {} requests", rows.len(), group.len()),
            ));
        }
        Ok(rows)
    }
}
