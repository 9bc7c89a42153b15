//! Benchmarks of the reservation hot path: [`Shop::set_line`] of one unit
//! on a cart that holds nothing yet, through the facade
//! ([`Commerce::builder`] with a shared store, the shop of tenant `bench`).
//!
//! Stores: the in-memory store, and PostgreSQL with each
//! [`ReservationStrategy`] (a fresh migrated database per benchmark,
//! running as the row-level-security role, from
//! [`PgFactory`]). Scenarios:
//!
//! - `hot_sku_1_task`: one SKU, one call at a time;
//! - `hot_sku_8_tasks`: one SKU, 8 tokio tasks, each making an eighth of
//!   the batch's reservations;
//! - `hot_sku_8_tasks_100000_holds` (in memory only): the same, on a SKU
//!   that holds 100,000 live holds before the measurement starts;
//! - `uniform_10000_skus_8_tasks`: 8 tasks, each reservation on one of
//!   10,000 SKUs drawn uniformly (a fixed pseudo-random sequence).
//!
//! Every measured reservation is on a new cart: the carts are created
//! before the clock starts (`iter_custom`), and only the `set_line` calls
//! are timed (for 8 tasks, from spawning them to the last one finishing).
//! The runtime is tokio's multi-threaded one, one worker per core.
//! Each SKU is stocked with [`Quantity::MAX`] units, so nothing is refused
//! (a refusal stops the bench). Holds pile up: the TTL is 15 minutes and no
//! cart is released, which is the flash-sale case. Before a batch would
//! take the hot SKU past 800,000 holds, a fresh fixture replaces the
//! fixture, outside the timed part. The number of holds each benchmark
//! left is printed after it.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo
//! bench -p commerce-benches --bench reservation`; without a reachable
//! PostgreSQL (no `DATABASE_URL` and no Docker) the PostgreSQL groups are
//! skipped with a message.

use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commerce_core::testkit::StoreFactory;
use commerce_core::{
    CartId, Category, Commerce, Currency, InMemoryStore, Money, NewProduct, Quantity, Shop, Sku,
    Store, TaxCategory, TenantId, Variant,
};
use commerce_postgres::ReservationStrategy;
use commerce_postgres::testkit::PgFactory;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// The number of concurrent tasks of the concurrent scenarios.
const TASKS: usize = 8;

/// The number of SKUs of the uniform scenario.
const UNIFORM_SKUS: usize = 10_000;

/// The live holds the in-memory store's "many holds" scenario starts with.
const PREFILLED_HOLDS: usize = 100_000;

/// A fixture is replaced by a fresh one (outside the timed part) before a
/// batch would take its hot SKU past this many holds: an SKU holds at most
/// [`Quantity::MAX`] units, and the in-memory store reaches that within a
/// benchmark.
const REFILL_AFTER: u64 = 800_000;

/// Prints `what` failed and stops the bench: a benchmark must never time
/// an error path.
fn or_exit<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("reservation bench: {what}: {error}");
            std::process::exit(1);
        }
    }
}

/// Where the reservations go.
#[derive(Debug, Clone, Copy)]
enum Backend {
    InMemory,
    Postgres(ReservationStrategy),
}

impl Backend {
    fn group_name(self) -> &'static str {
        match self {
            Backend::InMemory => "reservation_in_memory",
            Backend::Postgres(ReservationStrategy::AdvisoryLock) => "reservation_pg_advisory_lock",
            Backend::Postgres(_) => "reservation_pg_single_statement",
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
        (Backend::Postgres(_), Some(factory)) => Arc::new(factory.store().await),
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

/// Reserves one unit of each planned SKU on its cart with `tasks` tasks
/// (inline when 1), and returns the time from the first call to the last
/// one finishing.
async fn reserve(shop: &Shop, plan: Vec<(CartId, Sku)>, tasks: usize) -> Duration {
    if tasks == 1 {
        let start = Instant::now();
        for (cart, sku) in &plan {
            or_exit("set_line", shop.set_line(*cart, sku, Quantity::ONE).await);
        }
        return start.elapsed();
    }
    // Deal the plan out to the tasks before the clock starts.
    let mut batches: Vec<Vec<(CartId, Sku)>> = (0..tasks).map(|_| Vec::new()).collect();
    for (i, step) in plan.into_iter().enumerate() {
        if let Some(batch) = batches.get_mut(i % tasks) {
            batch.push(step);
        }
    }
    let start = Instant::now();
    let handles: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let shop = shop.clone();
            tokio::spawn(async move {
                for (cart, sku) in &batch {
                    shop.set_line(*cart, sku, Quantity::ONE).await?;
                }
                Ok::<_, commerce_core::Error>(())
            })
        })
        .collect();
    for handle in handles {
        or_exit("set_line", or_exit("reservation task", handle.await));
    }
    start.elapsed()
}

/// One benchmark: `name` on a fresh fixture of `skus` SKUs with `tasks`
/// tasks, with `prefill` live holds on the first SKU before it starts;
/// prints how many holds it left. The fixture is built on the first call,
/// so a benchmark that a command-line filter skips creates no database.
/// When the next batch would take the hot SKU past [`REFILL_AFTER`] holds,
/// a fresh fixture (prefilled again) replaces it before the clock starts.
#[allow(clippy::too_many_arguments)]
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    backend: Backend,
    factory: Option<&PgFactory>,
    name: &str,
    skus: usize,
    tasks: usize,
    prefill: usize,
) {
    let mut built: Option<Fixture> = None;
    let mut draw = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut made: u64 = 0;
    let mut on_fixture: u64 = 0;
    let prefilled = u64::try_from(prefill).unwrap_or(u64::MAX);
    let make = |runtime: &Runtime| {
        runtime.block_on(async {
            let fixture = fixture(backend, factory, skus).await;
            if let Some(hot) = fixture.skus.first() {
                let ids = carts(&fixture.shop, prefill).await;
                let plan = ids.into_iter().map(|id| (id, hot.clone())).collect();
                reserve(&fixture.shop, plan, TASKS).await;
            }
            fixture
        })
    };
    group.bench_function(name, |b| {
        if built.is_none() {
            built = Some(make(runtime));
            on_fixture = prefilled;
        }
        let mut fixture = built.take().unwrap_or_else(|| make(runtime));
        b.iter_custom(|iters| {
            // The hot SKU takes every reservation (uniform SKUs far fewer).
            if skus == 1 && on_fixture.saturating_add(iters) > REFILL_AFTER {
                fixture = make(runtime);
                on_fixture = prefilled;
            }
            let count = usize::try_from(iters).unwrap_or(usize::MAX);
            let picks: Vec<Sku> = (0..count)
                .filter_map(|_| fixture.skus.get(draw.below(fixture.skus.len())).cloned())
                .collect();
            made += iters;
            on_fixture = on_fixture.saturating_add(iters);
            let shop = &fixture.shop;
            runtime.block_on(async move {
                let ids = carts(shop, picks.len()).await;
                reserve(shop, ids.into_iter().zip(picks).collect(), tasks).await
            })
        });
        built = Some(fixture);
    });
    let Some(fixture) = built else {
        return;
    };
    // The live holds left, read back from the store: the hot SKU's, or the
    // total and the largest over the uniform SKUs.
    let held = runtime.block_on(async {
        let mut total: u64 = 0;
        let mut most: u32 = 0;
        for sku in &fixture.skus {
            let level = or_exit("reading the stock", fixture.shop.stock(sku).await);
            total += u64::from(level.reserved);
            most = most.max(level.reserved);
        }
        (total, most)
    });
    println!(
        "{}/{name}: {made} reservations made (warm-up included) on {skus} SKU(s); \
         live holds left: {} in all, at most {} on one SKU",
        backend.group_name(),
        held.0,
        held.1,
    );
}

fn scenarios(c: &mut Criterion, runtime: &Runtime, backend: Backend, factory: Option<&PgFactory>) {
    let mut group = c.benchmark_group(backend.group_name());
    // One element is one reservation, so criterion reports reservations per
    // second.
    group.throughput(Throughput::Elements(1));
    if let Backend::Postgres(_) = backend {
        // About 0.3 to 3 ms per reservation: ten samples over 5 s.
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
    } else {
        group.measurement_time(Duration::from_secs(5));
    }
    bench(
        &mut group,
        runtime,
        backend,
        factory,
        "hot_sku_1_task",
        1,
        1,
        0,
    );
    bench(
        &mut group,
        runtime,
        backend,
        factory,
        "hot_sku_8_tasks",
        1,
        TASKS,
        0,
    );
    if let Backend::InMemory = backend {
        bench(
            &mut group,
            runtime,
            backend,
            factory,
            "hot_sku_8_tasks_100000_holds",
            1,
            TASKS,
            PREFILLED_HOLDS,
        );
    }
    bench(
        &mut group,
        runtime,
        backend,
        factory,
        "uniform_10000_skus_8_tasks",
        UNIFORM_SKUS,
        TASKS,
        0,
    );
    group.finish();
}

fn reservation(c: &mut Criterion) {
    let runtime = or_exit(
        "starting tokio",
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    );
    scenarios(c, &runtime, Backend::InMemory, None);
    for strategy in [
        ReservationStrategy::SingleStatement,
        ReservationStrategy::AdvisoryLock,
    ] {
        let factory = runtime.block_on(PgFactory::from_env(strategy));
        if let Some(reason) = factory.unavailable() {
            println!("skipping the PostgreSQL {strategy:?} benchmarks: {reason}");
            continue;
        }
        scenarios(c, &runtime, Backend::Postgres(strategy), Some(&factory));
    }
}

criterion_group!(benches, reservation);
criterion_main!(benches);
