//! Benchmarks of the reservation hot path: [`Shop::set_line`] of one unit
//! on a cart that holds nothing yet, through the facade
//! ([`Commerce::builder`] with a shared store, the shop of tenant `bench`),
//! beside PostgreSQL's own limit measured in the same run.
//!
//! Groups, in the order they run:
//!
//! - `reservation_in_memory`: the in-memory store, first, while
//!   PostgreSQL is idle;
//! - `reservation_pg_limit`: PostgreSQL's own single-row update limit on
//!   the pool a [`PgStore`](commerce_postgres::PgStore) opens (8
//!   connections, the row-level-security role): `UPDATE bench_counter SET
//!   n = n + 1 WHERE id = $1`, one autocommitted statement per operation,
//!   on one hot row or over 10,000 rows;
//! - `reservation_pg_limit_async_commit`: the same updates, each committed
//!   with `synchronous_commit = off` (as a reservation commits by default,
//!   [`ReservationCommit::Asynchronous`]): the limit at the reservations'
//!   own durability;
//! - `reservation_pg_single_statement`, `reservation_pg_advisory_lock`,
//!   `reservation_pg_grouped`: PostgreSQL with each [`ReservationStrategy`]
//!   and the default reservation commit (a fresh migrated database per
//!   benchmark, from [`PgFactory`]);
//! - `reservation_pg_grouped_synchronous_commit`: the default strategy with
//!   every reservation's commit waiting for its flush
//!   ([`ReservationCommit::Synchronous`]);
//! - `reservation_pg_single_statement_pooled`: the single statement in
//!   pooled mode (unnamed statements, each operation in an explicit
//!   transaction) through PgBouncer in transaction pooling, logged in as
//!   the least-privileged `commerce_login`, when `COMMERCE_PGBOUNCER_URL`
//!   names one (`bash .ci/pgbouncer.sh`); a run that measures it also
//!   writes `benches/results/reservation_pooled.json` (pooled against
//!   direct, same run).
//!
//! Benchmarks in each group: `hot_sku_{1,8,32}_tasks` (one SKU, or one
//! row), `uniform_10000_skus_{1,8,32}_tasks` (each operation on one of
//! 10,000 SKUs or rows drawn uniformly by a fixed pseudo-random sequence),
//! `sold_out_sku_32_tasks` (refusals: one SKU whose one unit is held, every
//! call refused with `InsufficientStock`), and in memory
//! `hot_sku_8_tasks_100000_holds` (100,000 live holds on the SKU before the
//! measurement starts).
//!
//! Every measured reservation is on a new cart: the carts are created
//! before the clock starts (`iter_custom`), and only the `set_line` calls
//! are timed (with tasks, from spawning them to the last one finishing).
//! The runtime is tokio's multi-threaded one, one worker per core. Each SKU
//! is stocked with [`Quantity::MAX`] units, so nothing is refused outside
//! the sold-out benchmark (a refusal there is what is measured; anywhere
//! else it stops the bench). Holds pile up: the TTL is 15 minutes and no
//! cart is released, which is the flash-sale case. Before a batch would
//! take the hot SKU past 800,000 holds, a fresh fixture replaces the
//! fixture, outside the timed part.
//!
//! Besides criterion's output, the bench writes
//! `benches/results/reservation.json`: per benchmark, operations per second
//! (all timed operations over all timed time, warm-up included), the ratio
//! to `reservation_pg_limit`'s figure for the same SKUs and tasks (and to
//! `reservation_pg_limit_async_commit`'s), and the median and 99th
//! percentile of the single calls' latencies, and over the timed time the
//! machine's busy CPU time per operation, the bench process's own part of
//! it, and the share of the cores' time that was idle
//! ([`CpuTicks`](commerce_benches::CpuTicks), from Linux's `/proc`).
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo
//! bench -p commerce-benches --bench reservation`; without a reachable
//! PostgreSQL (no `DATABASE_URL` and no Docker) the PostgreSQL groups are
//! skipped with a message, and the summary has no ratios.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use commerce_benches::CpuTicks;
use commerce_core::testkit::StoreFactory;
use commerce_core::{
    CartId, Category, Commerce, Currency, Error, InMemoryStore, Money, NewProduct, Quantity, Shop,
    Sku, Store, TaxCategory, TenantId, Variant,
};
use commerce_postgres::testkit::PgFactory;
use commerce_postgres::{APP_ROLE, PgStore, ReservationCommit, ReservationStrategy};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sqlx::PgPool;
use tokio::runtime::Runtime;

/// The concurrency levels.
const TASK_COUNTS: [usize; 3] = [1, 8, 32];

/// The tasks that make fixtures.
const TASKS: usize = 8;

/// The number of SKUs (or rows) of the uniform scenarios.
const UNIFORM_SKUS: usize = 10_000;

/// The live holds the in-memory store's "many holds" scenario starts with.
const PREFILLED_HOLDS: usize = 100_000;

/// A fixture is replaced by a fresh one (outside the timed part) before a
/// batch would take its hot SKU past this many holds: an SKU holds at most
/// [`Quantity::MAX`] units, and the in-memory store reaches that within a
/// benchmark.
const REFILL_AFTER: u64 = 800_000;

/// The most reservations timed in one go: a larger batch runs in chunks
/// of this size.
const CHUNK: u64 = 100_000;

/// Prints `what` failed and stops the bench: a benchmark must never time
/// an error path it does not mean to.
fn or_exit<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("reservation bench: {what}: {error}");
            std::process::exit(1);
        }
    }
}

/// Where the operations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Plain single-row updates: PostgreSQL's own limit.
    PgLimit,
    /// The same updates with `synchronous_commit = off`.
    PgLimitAsync,
    InMemory,
    Postgres(ReservationStrategy, ReservationCommit),
    /// The single statement in pooled mode through PgBouncer in
    /// transaction pooling (`COMMERCE_PGBOUNCER_URL`).
    Pooled,
}

impl Backend {
    fn group_name(self) -> &'static str {
        match self {
            Backend::PgLimit => "reservation_pg_limit",
            Backend::PgLimitAsync => "reservation_pg_limit_async_commit",
            Backend::InMemory => "reservation_in_memory",
            Backend::Postgres(ReservationStrategy::AdvisoryLock, _) => {
                "reservation_pg_advisory_lock"
            }
            Backend::Postgres(ReservationStrategy::Grouped, ReservationCommit::Synchronous) => {
                "reservation_pg_grouped_synchronous_commit"
            }
            Backend::Postgres(ReservationStrategy::Grouped, _) => "reservation_pg_grouped",
            Backend::Postgres(..) => "reservation_pg_single_statement",
            Backend::Pooled => "reservation_pg_single_statement_pooled",
        }
    }

    /// The `store` of the summary.
    fn summary_name(self) -> &'static str {
        match self {
            Backend::PgLimit => "pg_limit",
            Backend::PgLimitAsync => "pg_limit_async_commit",
            Backend::InMemory => "memory",
            Backend::Postgres(ReservationStrategy::AdvisoryLock, _) => "pg_advisory_lock",
            Backend::Postgres(ReservationStrategy::Grouped, ReservationCommit::Synchronous) => {
                "pg_grouped_synchronous_commit"
            }
            Backend::Postgres(ReservationStrategy::Grouped, _) => "pg_grouped",
            Backend::Postgres(..) => "pg_single_statement",
            Backend::Pooled => "pg_single_statement_pooled",
        }
    }
}

/// A shop on a fresh store with `skus` SKUs, each stocked with
/// [`Quantity::MAX`] units.
struct Fixture {
    shop: Shop,
    skus: Vec<Sku>,
}

async fn fixture(backend: Backend, factory: Option<&PgFactory>, skus: usize) -> Fixture {
    let store: Arc<dyn Store> = match (backend, factory) {
        (Backend::Postgres(..) | Backend::Pooled, Some(factory)) => Arc::new(factory.store().await),
        _ => Arc::new(InMemoryStore::new()),
    };
    let commerce = or_exit(
        "building the engine",
        Commerce::builder().shared_store(store).build(),
    );
    let shop = commerce.shop(&or_exit("tenant", TenantId::parse("bench")));
    let names: Vec<String> = if skus == 1 {
        vec!["HOT-1".to_owned()]
    } else {
        (0..skus).map(|i| format!("U-{i:04}")).collect()
    };
    let category = or_exit("category", Category::parse("bench"));
    let tax = or_exit("tax category", TaxCategory::parse("standard"));
    let stock = or_exit("quantity", Quantity::new(Quantity::MAX));
    let mut skus = Vec::with_capacity(names.len());
    let mut tasks = Vec::new();
    for chunk in names.chunks(names.len().div_ceil(TASKS)) {
        let mut chunk_skus = Vec::with_capacity(chunk.len());
        for name in chunk {
            chunk_skus.push(or_exit("sku", Sku::parse(name)));
        }
        skus.extend(chunk_skus.iter().cloned());
        let shop = shop.clone();
        let (category, tax) = (category.clone(), tax.clone());
        tasks.push(tokio::spawn(async move {
            for sku in chunk_skus {
                shop.add_product(NewProduct {
                    name: format!("Item {sku}"),
                    category: category.clone(),
                    tax_category: tax.clone(),
                    age_restricted: false,
                    variants: vec![Variant::new(sku.clone(), Money::new(1_000, Currency::AUD))],
                    published: true,
                })
                .await?;
                shop.receive_stock(&sku, stock, Some("bench stock".into()))
                    .await?;
            }
            Ok::<_, commerce_core::Error>(())
        }));
    }
    for task in tasks {
        or_exit("stocking", or_exit("stocking task", task.await));
    }
    Fixture { shop, skus }
}

/// PostgreSQL's own limit: a table of `rows` counters on a fresh database,
/// updated through the pool a store opens there.
struct Counters {
    pool: PgPool,
    rows: usize,
    /// Each update commits with `synchronous_commit = off`.
    asynchronous: bool,
}

async fn counters(factory: &PgFactory, rows: usize, asynchronous: bool) -> Counters {
    let (_, admin) = factory.fresh_database().await;
    or_exit(
        "creating the counters",
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE bench_counter (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0); \
             INSERT INTO bench_counter (id) SELECT generate_series(0, {}); \
             GRANT SELECT, UPDATE ON bench_counter TO {APP_ROLE}",
            rows.saturating_sub(1)
        )))
        .execute(&admin)
        .await,
    );
    // The store's pool on that database: same size, same options.
    let options: sqlx::postgres::PgConnectOptions = or_exit(
        "DATABASE_URL",
        factory.admin_url().unwrap_or_default().parse(),
    );
    let name: String = or_exit(
        "the database's name",
        sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&admin)
            .await,
    );
    admin.close().await;
    let url = sqlx::ConnectOptions::to_url_lossy(&options.database(&name)).to_string();
    let store = or_exit(
        "opening the store's pool",
        PgStore::connect_with(
            &url,
            commerce_postgres::PgStoreOptions {
                set_role: Some(APP_ROLE.to_owned()),
                max_connections: 8,
                acquire_timeout: Duration::from_secs(60),
                lock_timeout: Duration::from_secs(60),
                max_waiting: 1_000_000,
                ..commerce_postgres::PgStoreOptions::default()
            },
        )
        .await,
    );
    Counters {
        pool: store.pool().clone(),
        rows,
        asynchronous,
    }
}

/// `count` new AUD carts, created by [`TASKS`] tasks.
async fn carts(shop: &Shop, count: usize) -> Vec<CartId> {
    let per_task = count.div_ceil(TASKS).max(1);
    let mut tasks = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(per_task);
        left -= n;
        let shop = shop.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(shop.create_cart(Currency::AUD).await?.id);
            }
            Ok::<_, commerce_core::Error>(ids)
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(or_exit("creating carts", or_exit("cart task", task.await)));
    }
    ids
}

/// A xorshift64 generator: the uniform scenario's SKU sequence, the same on
/// every run.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        // Below `n`, a usize.
        usize::try_from(x % n).unwrap_or(0)
    }
}

/// What the timed part runs against.
enum Target {
    Shop(Fixture),
    Counters(Counters),
}

/// One operation of a plan: a reservation on a cart, or an update of a row
/// (committed asynchronously when the flag says so).
#[derive(Clone)]
enum Op {
    Reserve(CartId, Sku),
    Update(i32, bool),
}

/// One timed call; its latency in microseconds. Borrows the shop and the
/// pool: a clone per call would be timed too.
async fn one(op: &Op, shop: Option<&Shop>, pool: Option<&PgPool>, refusals: bool) -> u32 {
    let start = Instant::now();
    match (op, shop, pool) {
        (Op::Reserve(cart, sku), Some(shop), _) => {
            match shop.set_line(*cart, sku, Quantity::ONE).await {
                Ok(_) if !refusals => {}
                Err(Error::InsufficientStock { .. }) if refusals => {}
                Ok(_) => or_exit("set_line on a sold-out SKU", Err("it held")),
                Err(error) => or_exit("set_line", Err(error)),
            }
        }
        (Op::Update(id, asynchronous), _, Some(pool)) => {
            let sql = if *asynchronous {
                // One statement still: the setting ends with its
                // transaction, as a reservation's does.
                "UPDATE bench_counter SET n = n + 1 \
                 FROM (SELECT set_config('synchronous_commit', 'off', true)) AS pin \
                 WHERE id = $1"
            } else {
                "UPDATE bench_counter SET n = n + 1 WHERE id = $1"
            };
            or_exit("update", sqlx::query(sql).bind(*id).execute(pool).await);
        }
        _ => or_exit("bench plan", Err("an operation for another target")),
    }
    u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// Runs `plan` with `tasks` tasks (inline when 1) and returns the time from
/// the first call to the last one finishing, and each call's latency.
/// `refusals` says every reservation must be refused for stock (the
/// sold-out benchmark); otherwise every one must succeed.
async fn run(
    target: &Target,
    plan: Vec<Op>,
    tasks: usize,
    refusals: bool,
) -> (Duration, Vec<u32>, CpuTicks) {
    let shop = match target {
        Target::Shop(fixture) => Some(fixture.shop.clone()),
        Target::Counters(_) => None,
    };
    let pool = match target {
        Target::Counters(counters) => Some(counters.pool.clone()),
        Target::Shop(_) => None,
    };
    let ticks = CpuTicks::now();
    let start = Instant::now();
    if tasks == 1 {
        let mut latencies = Vec::with_capacity(plan.len());
        for op in &plan {
            latencies.push(one(op, shop.as_ref(), pool.as_ref(), refusals).await);
        }
        return (start.elapsed(), latencies, CpuTicks::now().since(ticks));
    }
    // Each task takes the next operation of the plan until none is left,
    // as a client takes the next request: the work stays balanced to the
    // end (with the plan split into one batch per task beforehand, a task
    // that never waits, as on the in-memory store, keeps its thread until
    // its batch is done, and the last batches ran on one core while the
    // other idled).
    //
    // A task takes a block of operations at a time, a 64th of its share
    // (one at a time when the plan is short, as on PostgreSQL): the shared
    // counter is a cache line both cores write, which taken per operation
    // added the bench's own contention to the in-memory store's.
    let block = (plan.len() / (tasks * 64)).max(1);
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (shop, pool) = (shop.clone(), pool.clone());
            let (plan, next) = (plan.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(plan.len() / tasks + 1);
                loop {
                    let from = next.fetch_add(block, Ordering::Relaxed);
                    let Some(ops) = plan.get(from..plan.len().min(from.saturating_add(block)))
                    else {
                        break;
                    };
                    if ops.is_empty() {
                        break;
                    }
                    for op in ops {
                        latencies.push(one(op, shop.as_ref(), pool.as_ref(), refusals).await);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(plan.len());
    for handle in handles {
        latencies.extend(or_exit("a task", handle.await));
    }
    (start.elapsed(), latencies, CpuTicks::now().since(ticks))
}

/// What one benchmark measured, for the summary.
struct Measured {
    store: &'static str,
    name: String,
    skus: usize,
    tasks: usize,
    refusals: bool,
    ops_per_sec: f64,
    p50_us: u32,
    p99_us: u32,
    /// The machine's busy time per operation, the bench's own part of it
    /// (µs), and the share of the cores' time that was idle, over the
    /// timed time ([`CpuTicks`]).
    cpu: Option<(f64, f64, f64)>,
}

/// One benchmark's shape.
#[derive(Clone, Copy)]
struct Scenario {
    skus: usize,
    tasks: usize,
    /// Live holds put on the first SKU before it starts.
    prefill: usize,
    /// The first SKU's only unit is held: every call is refused.
    sold_out: bool,
}

impl Scenario {
    fn name(self) -> String {
        if self.sold_out {
            format!("sold_out_sku_{}_tasks", self.tasks)
        } else if self.skus == 1 && self.prefill > 0 {
            format!("hot_sku_{}_tasks_{}_holds", self.tasks, self.prefill)
        } else if self.skus == 1 {
            format!("hot_sku_{}_tasks", self.tasks)
        } else {
            format!("uniform_{}_skus_{}_tasks", self.skus, self.tasks)
        }
    }
}

async fn target(backend: Backend, factory: Option<&PgFactory>, scenario: Scenario) -> Target {
    if matches!(backend, Backend::PgLimit | Backend::PgLimitAsync) {
        let Some(factory) = factory else {
            or_exit("the limit", Err("needs PostgreSQL"))
        };
        return Target::Counters(
            counters(factory, scenario.skus, backend == Backend::PgLimitAsync).await,
        );
    }
    let fixture = fixture(backend, factory, scenario.skus).await;
    if let Some(hot) = fixture.skus.first() {
        if scenario.sold_out {
            // One unit, held by a cart: sold out while that hold lives.
            or_exit(
                "counting one unit",
                fixture
                    .shop
                    .correct_stock(hot, Quantity::ONE, Some("bench: one left".into()))
                    .await,
            );
            let cart = or_exit("cart", fixture.shop.create_cart(Currency::AUD).await);
            or_exit(
                "holding it",
                fixture.shop.set_line(cart.id, hot, Quantity::ONE).await,
            );
        }
        let ids = carts(&fixture.shop, scenario.prefill).await;
        let plan = ids
            .into_iter()
            .map(|id| Op::Reserve(id, hot.clone()))
            .collect();
        let target = Target::Shop(fixture);
        run(&target, plan, TASKS, false).await;
        return target;
    }
    Target::Shop(fixture)
}

/// One benchmark; what it measured. The target is built on the first call,
/// so a benchmark that a command-line filter skips creates no database.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    backend: Backend,
    factory: Option<&PgFactory>,
    scenario: Scenario,
) -> Option<Measured> {
    let name = scenario.name();
    let mut built: Option<Target> = None;
    let mut draw = Xorshift(0x9E37_79B9_7F4A_7C15);
    let (mut made, mut on_fixture, mut timed) = (0u64, 0u64, Duration::ZERO);
    let mut cpu = CpuTicks::default();
    let mut latencies: Vec<u32> = Vec::new();
    let prefilled = u64::try_from(scenario.prefill).unwrap_or(u64::MAX);
    let make = |runtime: &Runtime| runtime.block_on(target(backend, factory, scenario));
    group.bench_function(&name, |b| {
        let mut target = built.take().unwrap_or_else(|| {
            on_fixture = prefilled;
            make(runtime)
        });
        b.iter_custom(|iters| {
            let hot = scenario.skus == 1 && !scenario.sold_out;
            // A batch runs in chunks, each with its carts made first and a
            // fresh fixture when the hot SKU would pass its stock: only the
            // chunks' calls are timed. (Criterion's warm-up doubles the
            // batch until it fills 3 s, which in memory is millions of
            // reservations, more units than a SKU holds.)
            let mut batch = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(CHUNK);
                left -= chunk;
                if hot
                    && matches!(target, Target::Shop(_))
                    && on_fixture.saturating_add(chunk) > REFILL_AFTER
                {
                    target = make(runtime);
                    on_fixture = prefilled;
                }
                let count = usize::try_from(chunk).unwrap_or(usize::MAX);
                let (duration, mut measured, ticks) = runtime.block_on(async {
                    let plan: Vec<Op> = match &target {
                        Target::Shop(fixture) => {
                            let ids = carts(&fixture.shop, count).await;
                            ids.into_iter()
                                .filter_map(|id| {
                                    let sku = fixture.skus.get(draw.below(fixture.skus.len()))?;
                                    Some(Op::Reserve(id, sku.clone()))
                                })
                                .collect()
                        }
                        Target::Counters(counters) => (0..count)
                            .map(|_| {
                                Op::Update(
                                    i32::try_from(draw.below(counters.rows)).unwrap_or(0),
                                    counters.asynchronous,
                                )
                            })
                            .collect(),
                    };
                    run(&target, plan, scenario.tasks, scenario.sold_out).await
                });
                made += chunk;
                on_fixture = on_fixture.saturating_add(chunk);
                timed += duration;
                cpu = cpu.plus(ticks);
                batch += duration;
                latencies.append(&mut measured);
            }
            batch
        });
        built = Some(target);
    });
    built.as_ref()?;
    latencies.sort_unstable();
    let at = |q: f64| commerce_benches::quantile(&latencies, q);
    #[allow(clippy::cast_precision_loss)]
    let ops_per_sec = made as f64 / timed.as_secs_f64().max(f64::MIN_POSITIVE);
    let per_op = cpu.per_op(made);
    println!(
        "{}/{name}: {made} operations (warm-up included), {ops_per_sec:.0} per second over the \
         timed time; latency p50 {} µs, p99 {} µs{}",
        backend.group_name(),
        at(0.5),
        at(0.99),
        per_op.map_or(String::new(), |(busy, client, idle)| format!(
            "; busy {busy:.1} µs per operation (the bench's own {client:.1}), {:.0}% idle",
            idle * 100.0
        )),
    );
    Some(Measured {
        store: backend.summary_name(),
        name,
        skus: scenario.skus,
        tasks: scenario.tasks,
        refusals: scenario.sold_out,
        ops_per_sec,
        p50_us: at(0.5),
        p99_us: at(0.99),
        cpu: per_op,
    })
}

fn scenarios(
    c: &mut Criterion,
    runtime: &Runtime,
    backend: Backend,
    factory: Option<&PgFactory>,
    measured: &mut Vec<Measured>,
) {
    let mut group = c.benchmark_group(backend.group_name());
    // One element is one operation, so criterion reports operations per
    // second.
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    if backend != Backend::InMemory {
        // About 0.1 to 3 ms per operation: ten samples over 5 s.
        group.sample_size(10);
    }
    let mut shapes = Vec::new();
    for skus in [1, UNIFORM_SKUS] {
        for tasks in TASK_COUNTS {
            shapes.push(Scenario {
                skus,
                tasks,
                prefill: 0,
                sold_out: false,
            });
        }
    }
    if !matches!(backend, Backend::PgLimit | Backend::PgLimitAsync) {
        shapes.push(Scenario {
            skus: 1,
            tasks: 32,
            prefill: 0,
            sold_out: true,
        });
    }
    if backend == Backend::InMemory {
        shapes.push(Scenario {
            skus: 1,
            tasks: 8,
            prefill: PREFILLED_HOLDS,
            sold_out: false,
        });
    }
    for scenario in shapes {
        measured.extend(bench(&mut group, runtime, backend, factory, scenario));
    }
    group.finish();
}

/// Writes `benches/results/reservation.json`.
fn summary(measured: &[Measured]) {
    let limit_of = |store: &str, skus: usize, tasks: usize| {
        measured
            .iter()
            .find(|m| m.store == store && m.skus == skus && m.tasks == tasks)
            .map(|m| m.ops_per_sec)
    };
    let limit = |skus, tasks| limit_of("pg_limit", skus, tasks);
    let async_limit = |skus, tasks| limit_of("pg_limit_async_commit", skus, tasks);
    let scenarios: Vec<serde_json::Value> = measured
        .iter()
        .map(|m| {
            let ratio = limit(m.skus, m.tasks).map(|l| m.ops_per_sec / l);
            let async_ratio = async_limit(m.skus, m.tasks).map(|l| m.ops_per_sec / l);
            serde_json::json!({
                "store": m.store,
                "benchmark": m.name,
                "case": if m.refusals { "refusal" } else { "reservation" },
                "skus": m.skus,
                "tasks": m.tasks,
                "ops_per_sec": m.ops_per_sec.round(),
                "ratio_to_limit": ratio.map(|r| (r * 1000.0).round() / 1000.0),
                "ratio_to_async_commit_limit": async_ratio.map(|r| (r * 1000.0).round() / 1000.0),
                "p50_us": m.p50_us,
                "p99_us": m.p99_us,
                "busy_us_per_op": m.cpu.map(|(busy, _, _)| (busy * 10.0).round() / 10.0),
                "bench_process_us_per_op": m.cpu.map(|(_, client, _)| (client * 10.0).round() / 10.0),
                "idle_share": m.cpu.map(|(_, _, idle)| (idle * 100.0).round() / 100.0),
            })
        })
        .collect();
    let machine = commerce_benches::machine();
    let doc = serde_json::json!({
        "machine": machine,
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p commerce-benches --bench reservation",
        "scenarios": scenarios,
    });
    let path = or_exit(
        "writing the summary",
        commerce_benches::write_result("reservation.json", &doc),
    );
    println!("summary: {}", path.display());
}

fn reservation(c: &mut Criterion) {
    let runtime = or_exit(
        "starting tokio",
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    );
    let mut measured = Vec::new();
    // The in-memory store first, while PostgreSQL is idle: after the
    // limit's hundreds of thousands of updates, its checkpointer and
    // autovacuum work on for a while on the same two cores.
    scenarios(c, &runtime, Backend::InMemory, None, &mut measured);
    let limit = runtime.block_on(PgFactory::from_env(ReservationStrategy::SingleStatement));
    if let Some(reason) = limit.unavailable() {
        println!("skipping PostgreSQL's limit and the PostgreSQL benchmarks: {reason}");
    } else {
        scenarios(c, &runtime, Backend::PgLimit, Some(&limit), &mut measured);
        scenarios(
            c,
            &runtime,
            Backend::PgLimitAsync,
            Some(&limit),
            &mut measured,
        );
    }
    if limit.unavailable().is_none() {
        for (strategy, commit) in [
            (
                ReservationStrategy::SingleStatement,
                ReservationCommit::default(),
            ),
            (
                ReservationStrategy::AdvisoryLock,
                ReservationCommit::default(),
            ),
            (ReservationStrategy::Grouped, ReservationCommit::default()),
            (ReservationStrategy::Grouped, ReservationCommit::Synchronous),
        ] {
            let factory = runtime
                .block_on(PgFactory::from_env(strategy))
                .with_reservation_commit(commit);
            scenarios(
                c,
                &runtime,
                Backend::Postgres(strategy, commit),
                Some(&factory),
                &mut measured,
            );
        }
    }
    // Pooled mode through PgBouncer, when one is configured.
    if limit.unavailable().is_none() {
        if std::env::var(commerce_postgres::testkit::PGBOUNCER_URL).is_ok_and(|u| !u.is_empty()) {
            let factory = runtime.block_on(PgFactory::through_pooler(
                ReservationStrategy::SingleStatement,
            ));
            scenarios(c, &runtime, Backend::Pooled, Some(&factory), &mut measured);
        } else {
            println!(
                "skipping the pooled benchmarks: {} is not set (bash .ci/pgbouncer.sh)",
                commerce_postgres::testkit::PGBOUNCER_URL
            );
        }
    }
    // A filtered run (`cargo bench ... -- NAME`) measures part: only a full
    // run writes the summary the README quotes.
    if measured.iter().any(|m| m.store == "pg_limit") && measured.len() > 20 {
        summary(&measured);
    }
    if measured
        .iter()
        .any(|m| m.store == "pg_single_statement_pooled")
    {
        pooled_summary(&measured);
    }
}

/// Writes `benches/results/reservation_pooled.json`: each benchmark of the
/// single statement direct and through the pooler, and the pooled figure's
/// ratio to the direct one of the same run.
fn pooled_summary(measured: &[Measured]) {
    let direct = |name: &str| {
        measured
            .iter()
            .find(|m| m.store == "pg_single_statement" && m.name == name)
    };
    let scenarios: Vec<serde_json::Value> = measured
        .iter()
        .filter(|m| m.store == "pg_single_statement_pooled")
        .map(|m| {
            let d = direct(&m.name);
            serde_json::json!({
                "benchmark": m.name,
                "skus": m.skus,
                "tasks": m.tasks,
                "direct_ops_per_sec": d.map(|d| d.ops_per_sec.round()),
                "pooled_ops_per_sec": m.ops_per_sec.round(),
                "pooled_to_direct": d.map(|d| (m.ops_per_sec / d.ops_per_sec * 1000.0).round() / 1000.0),
                "direct_p50_us": d.map(|d| d.p50_us),
                "direct_p99_us": d.map(|d| d.p99_us),
                "pooled_p50_us": m.p50_us,
                "pooled_p99_us": m.p99_us,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "machine": commerce_benches::machine(),
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": "bash .ci/pgbouncer.sh; COMMERCE_PGBOUNCER_URL=postgres://commerce_login@127.0.0.1:6433/postgres DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p commerce-benches --bench reservation -- reservation_pg_single_statement",
        "scenarios": scenarios,
    });
    let path = or_exit(
        "writing the pooled summary",
        commerce_benches::write_result("reservation_pooled.json", &doc),
    );
    println!("pooled summary: {}", path.display());
}

criterion_group!(benches, reservation);
criterion_main!(benches);
