//! Group reservations ([`ReservationStrategy::Grouped`](crate::ReservationStrategy::Grouped)):
//! the reservations of one SKU that arrive while another of the same SKU
//! is in flight in this process wait in a queue, and one transaction then
//! takes the SKU's row once and answers all of them.
//!
//! A reservation that finds nothing in flight for its SKU marks the SKU
//! busy (the SKU's reservations that arrive meanwhile queue behind it) and
//! goes alone, as the single-statement strategy does, unless
//! [`LONE_RUNNERS_PER_TENANT`] of the tenant's lone reservations are in
//! flight already: it then waits, and the lone reservations that waited
//! run together as one batch, one call of `commerce_set_line_batch`
//! (migration 0013): one round trip and one commit for reservations of
//! different SKUs (see [`LoneRequest`]). When a SKU's lone reservation
//! ends (alone or in its batch), or its caller drops it, a task takes the
//! SKU's queue, up to [`MAX_GROUP`] at a time, and runs one
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

/// A row of `commerce_set_line_batch`: the request's position (from 1),
/// then a row of `commerce_set_line`.
type BatchRow = (
    i32,
    String,
    Option<serde_json::Value>,
    Option<Json<Vec<crate::carts::StoredLine>>>,
    Option<i64>,
    Option<String>,
);

/// How many reservations or groups of one SKU may run at once in this
/// process. One: on the hot-SKU bench (32 tasks, 2 cores) two runners
/// measured slower, with a group of seven round trips (about 2,700 against
/// 3,100-3,400 per second) and again with the group as one call, whose
/// carts are locked and their clocks written before the SKU's row is
/// (9,988 against 10,998): the second group splits the queue into smaller
/// groups, and its early steps compete for the same two cores. Since lone
/// reservations batch across SKUs, two runners measured no faster with 32
/// tasks (15,645 and 14,689 against 15,211 and 14,944) and faster with 8
/// (7,709 and 8,952 against 6,682 and 7,079), filtered runs of
/// 2026-12-07; not switched without a full run.
pub const RUNNERS_PER_SKU: usize = 1;

/// How many lone reservations (or batches of them) of one tenant may run
/// at once in this process; the ones that arrive meanwhile wait and then
/// run as one batch ([`LoneRequest`]). Two: on the uniform bench (10,000
/// SKUs, 2 cores) one runner measured 6,063 and 10,819 reservations a
/// second with 8 and 32 tasks, two 5,837 and 11,443 (filtered runs of
/// 2026-12-07): with two, a batch's commit overlaps the other's work.
/// Four measured no better in alternating filtered runs (5,176 and 5,575
/// with 8 tasks against 4,622 and 6,423 with two; 9,563 and 10,118 with
/// 32 against 7,549 and 10,330), though with 8 tasks and two runners a
/// fifth of the two cores' time was idle.
pub const LONE_RUNNERS_PER_TENANT: usize = 2;

/// A reservation that found its SKU idle and waits for the tenant's lone
/// reservation in flight, to run in the next batch. It holds its SKU's turn
/// meanwhile (its caller keeps the [`Turn`]), so the SKUs of one batch are
/// different ones.
pub(crate) struct LoneRequest {
    pub(crate) sku: Sku,
    pub(crate) request: Request,
}

/// The runs in flight under one key, and the requests queued behind them.
struct Slot<T> {
    running: usize,
    queue: VecDeque<T>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            running: 0,
            queue: VecDeque::new(),
        }
    }
}

/// Queues under `key` if `runners` are in flight (`Ok(())`); otherwise
/// counts one more in flight and gives the item back (`Err(item)`).
fn join_slot<K: Eq + std::hash::Hash + Clone, T>(
    slots: &Mutex<HashMap<K, Slot<T>>>,
    key: &K,
    runners: usize,
    item: T,
) -> std::result::Result<(), T> {
    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
    let slot = slots.entry(key.clone()).or_default();
    if slot.running < runners {
        slot.running += 1;
        Err(item)
    } else {
        slot.queue.push_back(item);
        Ok(())
    }
}

/// The next items queued under `key` for a runner that has finished, at
/// most [`MAX_GROUP`] in arrival order; empty when none wait, and the
/// runner then no longer counts as in flight.
fn next_in_slot<K: Eq + std::hash::Hash, T>(slots: &Mutex<HashMap<K, Slot<T>>>, key: &K) -> Vec<T> {
    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(slot) = slots.get_mut(key) else {
        return Vec::new();
    };
    if slot.queue.is_empty() {
        slot.running = slot.running.saturating_sub(1);
        if slot.running == 0 {
            slots.remove(key);
        }
        return Vec::new();
    }
    let take = slot.queue.len().min(MAX_GROUP);
    slot.queue.drain(..take).collect()
}

/// The SKUs with a reservation in flight in this process, and the tenants
/// with a lone reservation in flight. A key is present exactly while
/// something of it runs.
#[derive(Default)]
pub(crate) struct Groups {
    busy: Mutex<HashMap<Key, Slot<Request>>>,
    lone: Mutex<HashMap<TenantId, Slot<LoneRequest>>>,
}

impl Groups {
    /// Queues `request` if [`RUNNERS_PER_SKU`] reservations of its SKU are
    /// in flight (`Ok(())`); otherwise counts one more in flight and gives
    /// the request back for its caller to run alone (`Err(request)`).
    pub(crate) fn join(&self, key: &Key, request: Request) -> std::result::Result<(), Request> {
        join_slot(&self.busy, key, RUNNERS_PER_SKU, request)
    }

    /// The next group of `key` for a runner that has finished, at most
    /// [`MAX_GROUP`] requests in arrival order; empty when none wait, and
    /// the runner then no longer counts as in flight.
    fn next_group(&self, key: &Key) -> Vec<Request> {
        next_in_slot(&self.busy, key)
    }

    /// Queues `request` behind the tenant's lone reservations in flight if
    /// there are [`LONE_RUNNERS_PER_TENANT`] (`Ok(())`); otherwise counts
    /// one more in flight and gives it back to run alone (`Err(request)`).
    pub(crate) fn join_lone(
        &self,
        tenant: &TenantId,
        request: LoneRequest,
    ) -> std::result::Result<(), LoneRequest> {
        join_slot(&self.lone, tenant, LONE_RUNNERS_PER_TENANT, request)
    }

    /// The next batch of `tenant`'s lone reservations, as [`Self::next_group`].
    fn next_batch(&self, tenant: &TenantId) -> Vec<LoneRequest> {
        next_in_slot(&self.lone, tenant)
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
        let (tenant, key) = (self.tenant.clone(), self.key.clone());
        hand_over(
            group,
            || tenant.groups.next_group(&key),
            |group| tenant.clone().drain_groups(key.clone(), group),
        );
    }
}

/// Held by a lone reservation of the tenant: when it ends, however it ends,
/// the lone reservations that queued meanwhile are handed to a task that
/// runs them in batches.
pub(crate) struct LoneTurn {
    tenant: PgTenant,
}

impl LoneTurn {
    pub(crate) fn new(tenant: PgTenant) -> Self {
        Self { tenant }
    }
}

impl Drop for LoneTurn {
    fn drop(&mut self) {
        let batch = self.tenant.groups.next_batch(&self.tenant.tenant);
        if batch.is_empty() {
            return;
        }
        let tenant = self.tenant.clone();
        hand_over(
            batch,
            || tenant.groups.next_batch(&tenant.tenant),
            |batch| tenant.clone().drain_batches(batch),
        );
    }
}

/// A request waiting in a queue, which can be told its answer.
trait Waiting {
    fn tell(self, answer: Result<Cart>);
}

impl Waiting for Request {
    fn tell(self, answer: Result<Cart>) {
        let _ = self.reply.send(Reply::Answer(answer));
    }
}

impl Waiting for LoneRequest {
    fn tell(self, answer: Result<Cart>) {
        self.request.tell(answer);
    }
}

/// Hands `first` (and whatever queues after it, through `next`) to a task
/// running `drain`; without a runtime, unreachable from a store operation,
/// each waiting request is answered with an error rather than left waiting
/// forever.
fn hand_over<T: Waiting, F>(
    first: Vec<T>,
    next: impl Fn() -> Vec<T>,
    drain: impl FnOnce(Vec<T>) -> F,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if first.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(drain(first));
        }
        Err(_) => {
            let mut waiting = first;
            while !waiting.is_empty() {
                for request in waiting {
                    request.tell(Err(no_runtime()));
                }
                waiting = next();
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

/// Tells every request of `requests` that `what` ran out of a wait
/// (`busy`): it wrote nothing, and each request alone would wait again, one
/// after another.
fn tell_busy<T: Waiting>(requests: Vec<T>, what: &str, busy: &BackendError) {
    for request in requests {
        request.tell(Err(BackendError::new(
            BackendErrorKind::Busy,
            format!("{what}: {busy}"),
        )
        .into()));
    }
}

/// The requests of a group or a batch as the parallel arrays its call
/// takes, in order.
struct Columns {
    carts: Vec<uuid::Uuid>,
    quantities: Vec<i32>,
    max_lines: Vec<i32>,
    max_units: Vec<i32>,
    expiries: Vec<Timestamp>,
    nows: Vec<Timestamp>,
    clocks: Vec<Json<serde_json::Value>>,
}

impl Columns {
    fn of<'a>(requests: impl ExactSizeIterator<Item = &'a Request>) -> Result<Self> {
        let n = requests.len();
        let mut columns = Self {
            carts: Vec::with_capacity(n),
            quantities: Vec::with_capacity(n),
            max_lines: Vec::with_capacity(n),
            max_units: Vec::with_capacity(n),
            expiries: Vec::with_capacity(n),
            nows: Vec::with_capacity(n),
            clocks: Vec::with_capacity(n),
        };
        for request in requests {
            columns.carts.push(request.cart.as_uuid());
            columns.quantities.push(units(request.quantity)?);
            columns
                .max_lines
                .push(i32::try_from(request.limits.max_lines()).unwrap_or(i32::MAX));
            columns
                .max_units
                .push(i32::try_from(request.limits.max_units_per_line()).unwrap_or(i32::MAX));
            columns.expiries.push(request.expires_at);
            columns.nows.push(request.now);
            columns.clocks.push(Json(
                serde_json::to_value(request.now).map_err(|e| corrupt("a timestamp", e))?,
            ));
        }
        Ok(columns)
    }
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

    /// Runs the batches of the tenant's lone reservations, starting with
    /// `batch`, until none wait.
    async fn drain_batches(self, mut batch: Vec<LoneRequest>) {
        loop {
            self.run_batch(batch).await;
            tokio::task::yield_now().await;
            batch = self.groups.next_batch(&self.tenant);
            if batch.is_empty() {
                return;
            }
        }
    }

    /// Answers every request of `batch`: one alone as a reservation alone
    /// runs; more in one transaction, or, should it fail, each alone.
    async fn run_batch(&self, batch: Vec<LoneRequest>) {
        if batch.len() < 2 {
            self.each_alone(batch).await;
            return;
        }
        match self.batch_transaction(&batch).await {
            Ok(rows) => {
                for (lone, row) in batch.into_iter().zip(rows) {
                    let _ = lone.request.reply.send(Reply::Row(row));
                }
            }
            Err(Error::Backend(busy)) if busy.kind() == BackendErrorKind::Busy => {
                tell_busy(batch, "the batch's transaction", &busy);
            }
            Err(_) => self.each_alone(batch).await,
        }
    }

    /// Answers each request of `batch` with a reservation alone.
    async fn each_alone(&self, batch: Vec<LoneRequest>) {
        for LoneRequest { sku, request } in batch {
            self.answer_alone(&sku, request).await;
        }
    }

    /// Answers `request` for `sku` with a reservation alone.
    async fn answer_alone(&self, sku: &Sku, request: Request) {
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
        request.tell(answer);
    }

    /// One transaction for `batch`, one call of `commerce_set_line_batch`
    /// (migration 0013): every request's row, in the batch's order, or the
    /// error that rolled the whole batch back.
    async fn batch_transaction(&self, batch: &[LoneRequest]) -> Result<Vec<SetLineRow>> {
        let skus: Vec<&str> = batch.iter().map(|lone| lone.sku.as_str()).collect();
        let columns = Columns::of(batch.iter().map(|lone| &lone.request))?;
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.hot.set_line_batch.clone()))
            .bind(self.tenant())
            .bind(&skus)
            .bind(&columns.carts)
            .bind(&columns.quantities)
            .bind(&columns.max_lines)
            .bind(&columns.max_units)
            .bind(&columns.expiries)
            .bind(&columns.nows)
            .bind(&columns.clocks);
        let numbered: Vec<BatchRow> = self.one_call_rows(query).await?;
        let mut rows: Vec<Option<SetLineRow>> = Vec::new();
        rows.resize_with(batch.len(), || None);
        for (ordinal, outcome, doc, items, available, priced_in) in numbered {
            let slot = usize::try_from(ordinal)
                .ok()
                .and_then(|o| o.checked_sub(1))
                .and_then(|i| rows.get_mut(i));
            match slot {
                Some(slot @ None) => *slot = Some((outcome, doc, items, available, priced_in)),
                _ => {
                    return Err(corrupt(
                        "commerce_set_line_batch's answer",
                        format!("row {ordinal} of {} requests", batch.len()),
                    ));
                }
            }
        }
        rows.into_iter()
            .map(|row| {
                row.ok_or_else(|| {
                    corrupt(
                        "commerce_set_line_batch's answer",
                        format!("a request of {} without its row", batch.len()),
                    )
                })
            })
            .collect()
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
                tell_busy(first, "the group's transaction", &busy);
            }
            Err(_) => {
                later.splice(0..0, first);
            }
        }
        for request in later {
            self.answer_alone(sku, request).await;
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
        let columns = Columns::of(group.iter())?;
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.hot.set_lines.clone()))
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(&columns.carts)
            .bind(&columns.quantities)
            .bind(&columns.max_lines)
            .bind(&columns.max_units)
            .bind(&columns.expiries)
            .bind(latest)
            .bind(&columns.clocks);
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
