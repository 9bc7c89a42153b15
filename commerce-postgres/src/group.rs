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
//! one):
//!
//! 1. `BEGIN` with the tenant pinned;
//! 2. the group's carts locked `FOR UPDATE` in id order (the order every
//!    group takes, so two groups that share carts cannot deadlock), then
//!    their lines read. Each cart is probed by its key (a lateral
//!    subquery): a filter on `id = ANY($1)` lets the planner scan every
//!    row of the tenant when its statistics are stale;
//! 3. each request checked on its own cart (open, limits, the new
//!    document): a request that fails here is answered with its error and
//!    takes no further part;
//! 4. the carts' current holds of the SKU, then the SKU's row, locked
//!    (reservation rows before SKU rows, the lock order of every path);
//! 5. grants decided in arrival order while stock lasts; if one is refused,
//!    the expired holds of the SKU are reclaimed and the decision made
//!    again, so a refusal carries the real available count;
//! 6. one statement writes every granted hold, cart line and cart document
//!    and moves the SKU's counter by the net change; `COMMIT`.
//!
//! A group is all or nothing: should its transaction fail (a lost
//! connection, a deadlock with another path), nothing of it is written and
//! each of its requests runs again alone, so one request's failure is never
//! another's, and no request is applied twice. Requests for the same cart
//! in one group are split: the later ones run alone after it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use commerce_core::{
    BackendError, BackendErrorKind, Cart, CartId, CartLimits, Entity, Error, Quantity, Result, Sku,
    TenantId, Timestamp,
};
use sqlx::types::Json;
use tokio::sync::oneshot;

use crate::PgTenant;
use crate::carts::{build_cart, cart_doc, currency_mismatch, units};
use crate::error::{corrupt, db};
use crate::inventory::reclaim_expired;

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
    pub(crate) reply: oneshot::Sender<Result<Cart>>,
}

type Key = (TenantId, Sku);

/// How many reservations or groups of one SKU may run at once in this
/// process. One: on the hot-SKU bench (32 tasks, 2 cores) two, three and
/// four runners measured slower (about 2,700, 2,600 and 1,700 against
/// 3,100-3,400 per second), the second group mostly waiting for the
/// first's row lock while splitting the queue into smaller groups.
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
                    let _ = request.reply.send(Err(no_runtime()));
                }
                // Whatever queued since must not wait for a task that
                // never starts either.
                loop {
                    let more = tenant.groups.next_group(&key);
                    if more.is_empty() {
                        break;
                    }
                    for request in more {
                        let _ = request.reply.send(Err(no_runtime()));
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

/// A request that passed its cart's checks, with its cart as it will be.
struct Candidate {
    index: usize,
    cart: CartId,
    quantity: Quantity,
    currency: commerce_core::Currency,
    expires_at: Timestamp,
    next: Cart,
    doc: Json<serde_json::Value>,
}

/// What the SKU's locked row says.
struct SkuRow {
    on_hand: i64,
    held: i64,
    currency: Option<String>,
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
            Ok(answers) => {
                for (request, answer) in first.into_iter().zip(answers) {
                    let _ = request.reply.send(answer);
                }
            }
            // A wait that ran out (the SKU's row lock, the pool) wrote
            // nothing and would run out again for each request alone, one
            // after another: every request of the group is told busy.
            Err(Error::Backend(busy)) if busy.kind() == BackendErrorKind::Busy => {
                for request in first {
                    let _ = request.reply.send(Err(BackendError::new(
                        BackendErrorKind::Busy,
                        format!("the group's transaction: {busy}"),
                    )
                    .into()));
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
            let _ = request.reply.send(answer);
        }
    }

    /// One transaction for `group` (distinct carts): every request's
    /// answer, in order, or the error that rolled the whole group back.
    async fn group_transaction(&self, sku: &Sku, group: &[Request]) -> Result<Vec<Result<Cart>>> {
        let mut tx = self.begin_group().await?;
        let mut ids: Vec<uuid::Uuid> = group.iter().map(|r| r.cart.as_uuid()).collect();
        ids.sort_unstable();
        let docs: Vec<(uuid::Uuid, serde_json::Value)> = sqlx::query_as(
            "SELECT k.id, k.doc FROM unnest($2::uuid[]) AS c(id) \
             CROSS JOIN LATERAL (SELECT id, doc FROM carts \
               WHERE tenant_id = $1 AND id = c.id FOR UPDATE) k",
        )
        .bind(self.tenant())
        .bind(&ids)
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        let lines: Vec<(uuid::Uuid, String, i32)> = sqlx::query_as(
            "SELECT l.cart_id, l.sku, l.quantity FROM unnest($2::uuid[]) AS c(id) \
             CROSS JOIN LATERAL (SELECT cart_id, sku, quantity, position FROM cart_lines \
               WHERE tenant_id = $1 AND cart_id = c.id OFFSET 0) l \
             ORDER BY l.cart_id, l.position, l.sku",
        )
        .bind(self.tenant())
        .bind(&ids)
        .fetch_all(&mut tx)
        .await
        .map_err(db)?;
        let mut lines_of: HashMap<uuid::Uuid, Vec<(String, i32)>> = HashMap::new();
        for (cart, sku, quantity) in lines {
            lines_of.entry(cart).or_default().push((sku, quantity));
        }
        let mut carts: HashMap<uuid::Uuid, Result<Cart>> = docs
            .into_iter()
            .map(|(id, doc)| {
                let lines = lines_of.remove(&id).unwrap_or_default();
                (id, build_cart(doc, lines))
            })
            .collect();

        let mut answers: Vec<Option<Result<Cart>>> = Vec::with_capacity(group.len());
        let mut candidates = Vec::with_capacity(group.len());
        for (index, request) in group.iter().enumerate() {
            let checked = match carts.remove(&request.cart.as_uuid()) {
                None => Err(Error::not_found(Entity::Cart, request.cart)),
                Some(Err(e)) => Err(e),
                Some(Ok(current)) => check(&current, sku, request).map(|(next, doc)| Candidate {
                    index,
                    cart: request.cart,
                    quantity: request.quantity,
                    currency: current.currency,
                    expires_at: request.expires_at,
                    next,
                    doc,
                }),
            };
            match checked {
                Ok(candidate) => {
                    candidates.push(candidate);
                    answers.push(None);
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        if candidates.is_empty() {
            tx.commit().await?;
            return Ok(finish(answers));
        }

        let held_ids: Vec<uuid::Uuid> = candidates.iter().map(|c| c.cart.as_uuid()).collect();
        let mut reclaimed = false;
        let (outcomes, delta) = loop {
            let old: HashMap<uuid::Uuid, i64> = sqlx::query_as::<_, (uuid::Uuid, i32)>(
                // One probe per cart (a lateral subquery): a filter on
                // `cart_id = ANY(...)` lets the planner scan every hold of the
                // hot SKU instead.
                "SELECT r.cart_id, r.quantity FROM unnest($3::uuid[]) AS c(id) \
                 CROSS JOIN LATERAL (SELECT cart_id, quantity FROM reservations \
                   WHERE tenant_id = $1 AND sku = $2 AND cart_id = c.id FOR UPDATE) r",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(&held_ids)
            .fetch_all(&mut tx)
            .await
            .map_err(db)?
            .into_iter()
            .map(|(cart, quantity)| (cart, i64::from(quantity)))
            .collect();
            let row: Option<(i32, i32, Option<String>)> = sqlx::query_as(
                "SELECT on_hand, held, currency FROM skus s WHERE tenant_id = $1 AND sku = $2 \
                 AND product_id IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM products p \
                   WHERE p.tenant_id = $1 AND p.id = s.product_id AND p.published) \
                 FOR UPDATE",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .fetch_optional(&mut tx)
            .await
            .map_err(db)?;
            let Some((on_hand, held, currency)) = row else {
                for candidate in &candidates {
                    answer(
                        &mut answers,
                        candidate.index,
                        Err(Error::not_found(Entity::Sku, sku)),
                    );
                }
                tx.commit().await?;
                return Ok(finish(answers));
            };
            let row = SkuRow {
                on_hand: i64::from(on_hand),
                held: i64::from(held),
                currency,
            };
            let decided = decide(sku, &row, &candidates, &old)?;
            if decided.refused && !reclaimed {
                // The latest clock of the group: requests in flight at once
                // may be ordered either way.
                if let Some(latest) = group.iter().map(|r| r.now).max() {
                    reclaim_expired(&mut tx, self.tenant(), sku, latest).await?;
                }
                reclaimed = true;
                continue;
            }
            break (decided.outcomes, decided.delta);
        };

        let granted = outcomes.iter().filter(|o| o.is_ok()).count();
        if granted > 0 {
            let mut carts = Vec::with_capacity(granted);
            let mut quantities = Vec::with_capacity(granted);
            let mut expiries = Vec::with_capacity(granted);
            let mut docs = Vec::with_capacity(granted);
            for (candidate, _) in candidates.iter().zip(&outcomes).filter(|(_, o)| o.is_ok()) {
                carts.push(candidate.cart.as_uuid());
                quantities.push(units(candidate.quantity)?);
                expiries.push(candidate.expires_at);
                docs.push(candidate.doc.clone());
            }
            sqlx::query(
                "WITH req AS ( \
                   SELECT * FROM unnest($3::uuid[], $4::int4[], $5::timestamptz[], $6::jsonb[]) \
                     AS r(cart_id, quantity, expires_at, doc)), \
                 counted AS ( \
                   UPDATE skus SET held = held + $7 WHERE tenant_id = $1 AND sku = $2), \
                 holds AS ( \
                   INSERT INTO reservations (tenant_id, sku, cart_id, quantity, expires_at) \
                   SELECT $1, $2, cart_id, quantity, expires_at FROM req \
                   ON CONFLICT (tenant_id, sku, cart_id) \
                   DO UPDATE SET quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at), \
                 lines AS ( \
                   INSERT INTO cart_lines (tenant_id, cart_id, sku, quantity) \
                   SELECT $1, cart_id, $2, quantity FROM req \
                   ON CONFLICT (tenant_id, cart_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity) \
                 UPDATE carts c SET doc = req.doc FROM req \
                 WHERE c.tenant_id = $1 AND c.id = req.cart_id",
            )
            .bind(self.tenant())
            .bind(sku.as_str())
            .bind(&carts)
            .bind(&quantities)
            .bind(&expiries)
            .bind(&docs)
            .bind(i32::try_from(delta).map_err(|e| corrupt("a unit count", e))?)
            .execute(&mut tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await?;
        for (candidate, outcome) in candidates.into_iter().zip(outcomes) {
            let index = candidate.index;
            answer(&mut answers, index, outcome.map(|()| candidate.next));
        }
        Ok(finish(answers))
    }
}

/// Records the answer to the request at `index`.
fn answer(answers: &mut [Option<Result<Cart>>], index: usize, result: Result<Cart>) {
    if let Some(slot) = answers.get_mut(index) {
        *slot = Some(result);
    }
}

/// Every request's answer; a request left unanswered (a bug) fails rather
/// than waits.
fn finish(answers: Vec<Option<Result<Cart>>>) -> Vec<Result<Cart>> {
    answers
        .into_iter()
        .map(|answer| {
            answer.unwrap_or_else(|| {
                Err(BackendError::new(
                    BackendErrorKind::Other,
                    "a group reservation left a request unanswered",
                )
                .into())
            })
        })
        .collect()
}

/// A request's checks on its cart, and the cart with the line set.
fn check(current: &Cart, sku: &Sku, request: &Request) -> Result<(Cart, Json<serde_json::Value>)> {
    current.ensure_open()?;
    request.limits.check(current, sku, request.quantity)?;
    let mut next = current.clone();
    next.put_line(sku, request.quantity, request.now)?;
    let doc = cart_doc(&next)?;
    Ok((next, doc))
}

/// The grants of one decision.
struct Decision {
    /// Per candidate: granted, or the refusal.
    outcomes: Vec<Result<()>>,
    /// The net change of the SKU's counter.
    delta: i64,
    /// Whether any candidate was refused for want of stock.
    refused: bool,
}

/// Grants in arrival order while stock lasts. `old` holds each cart's
/// current hold of the SKU, which its new quantity replaces.
fn decide(
    sku: &Sku,
    row: &SkuRow,
    candidates: &[Candidate],
    old: &HashMap<uuid::Uuid, i64>,
) -> Result<Decision> {
    let mut held = row.held;
    let mut decision = Decision {
        outcomes: Vec::with_capacity(candidates.len()),
        delta: 0,
        refused: false,
    };
    for candidate in candidates {
        if let Some(mismatch) = currency_mismatch(candidate.currency, row.currency.as_deref())? {
            decision.outcomes.push(Err(mismatch));
            continue;
        }
        let before = old.get(&candidate.cart.as_uuid()).copied().unwrap_or(0);
        let wanted = i64::from(candidate.quantity.get());
        let available = row.on_hand - (held - before);
        if wanted <= available {
            held = held - before + wanted;
            decision.delta += wanted - before;
            decision.outcomes.push(Ok(()));
        } else {
            decision.refused = true;
            decision.outcomes.push(Err(Error::InsufficientStock {
                sku: sku.clone(),
                requested: candidate.quantity.get(),
                available: u32::try_from(available.max(0)).unwrap_or(0),
            }));
        }
    }
    Ok(decision)
}
