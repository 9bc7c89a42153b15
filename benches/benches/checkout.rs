//! Benchmarks of a checkout through the facade ([`Shop::checkout`]): a cart
//! of 3 lines and one of 50, on the in-memory store and on PostgreSQL (the
//! default reservation strategy, a fresh migrated database from
//! [`PgFactory`]).
//!
//! Each checkout is of a new cart whose lines are set (and their stock
//! held) before the clock starts (`iter_custom`); only the `checkout` calls
//! are timed, one after another on one task. A checkout prices the cart,
//! places the order (the holds become allocations, in the store's one
//! atomic step) and opens a payment session with the [`TestGateway`] (in
//! process, no network). The 50 SKUs are stocked with [`Quantity::MAX`]
//! units each and no promotion is set, so what is measured is the store's
//! work and the pricing of the lines, with nothing refused.
//!
//! Besides criterion's output, a full run writes
//! `benches/results/checkout.json`: per benchmark, checkouts per second
//! (all timed checkouts over all timed time, warm-up included) and the
//! median and 99th percentile of the single calls' latencies.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo
//! bench -p commerce-benches --bench checkout`; without a reachable
//! PostgreSQL the PostgreSQL benchmarks are skipped with a message.

use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commerce_core::testkit::StoreFactory;
use commerce_core::{
    CartId, Category, Commerce, Currency, IdempotencyKey, InMemoryStore, Money, NewProduct,
    Quantity, Shop, Sku, Store, TaxCategory, TenantId, TestGateway, Variant,
};
use commerce_postgres::ReservationStrategy;
use commerce_postgres::testkit::PgFactory;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// The cart sizes.
const LINE_COUNTS: [usize; 2] = [3, 50];

/// Prints `what` failed and stops the bench.
fn or_exit<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("checkout bench: {what}: {error}");
            std::process::exit(1);
        }
    }
}

/// A shop with the SKUs of the largest cart, each stocked with
/// [`Quantity::MAX`] units.
struct Fixture {
    shop: Shop,
    skus: Vec<Sku>,
    /// Checkouts made, for the idempotency keys.
    made: u64,
}

async fn fixture(store: Arc<dyn Store>) -> Fixture {
    let commerce = or_exit(
        "building the engine",
        Commerce::builder()
            .shared_store(store)
            .gateway(TestGateway::new("whsec_bench"))
            .build(),
    );
    let shop = commerce.shop(&or_exit("tenant", TenantId::parse("bench")));
    let category = or_exit("category", Category::parse("bench"));
    let tax = or_exit("tax category", TaxCategory::parse("standard"));
    let stock = or_exit("quantity", Quantity::new(Quantity::MAX));
    let mut skus = Vec::new();
    let most = LINE_COUNTS.iter().copied().max().unwrap_or(0);
    for i in 0..most {
        let sku = or_exit("sku", Sku::parse(format!("C-{i:02}")));
        let price = Money::new(1_000 + i64::try_from(i).unwrap_or(0) * 37, Currency::AUD);
        or_exit(
            "product",
            shop.add_product(NewProduct {
                name: format!("Item {sku}"),
                category: category.clone(),
                tax_category: tax.clone(),
                age_restricted: false,
                variants: vec![Variant::new(sku.clone(), price)],
                published: true,
            })
            .await,
        );
        or_exit(
            "stock",
            shop.receive_stock(&sku, stock, Some("bench stock".into()))
                .await,
        );
        skus.push(sku);
    }
    Fixture {
        shop,
        skus,
        made: 0,
    }
}

/// `count` carts of `lines` lines each, their stock held.
async fn carts(fixture: &Fixture, count: u64, lines: usize) -> Vec<CartId> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let cart = or_exit("cart", fixture.shop.create_cart(Currency::AUD).await);
        for sku in fixture.skus.iter().take(lines) {
            or_exit(
                "set_line",
                fixture.shop.set_line(cart.id, sku, Quantity::ONE).await,
            );
        }
        ids.push(cart.id);
    }
    ids
}

/// What one benchmark measured, for the summary.
struct Measured {
    store: &'static str,
    lines: usize,
    per_sec: f64,
    p50_us: u32,
    p99_us: u32,
}

fn bench(
    c: &mut Criterion,
    runtime: &Runtime,
    store: &'static str,
    make: &dyn Fn() -> Arc<dyn Store>,
    measured: &mut Vec<Measured>,
) {
    let mut group = c.benchmark_group(format!("checkout_{store}"));
    group.throughput(Throughput::Elements(1));
    if store != "memory" {
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));
    }
    for lines in LINE_COUNTS {
        let mut built: Option<Fixture> = None;
        let (mut made, mut timed) = (0u64, Duration::ZERO);
        let mut latencies: Vec<u32> = Vec::new();
        group.bench_function(format!("{lines}_lines"), |b| {
            let mut fixture = built
                .take()
                .unwrap_or_else(|| runtime.block_on(fixture(make())));
            b.iter_custom(|iters| {
                let (duration, mut batch) = runtime.block_on(async {
                    let ids = carts(&fixture, iters, lines).await;
                    let mut latencies = Vec::with_capacity(ids.len());
                    let start = Instant::now();
                    for id in ids {
                        fixture.made += 1;
                        let key = or_exit(
                            "key",
                            IdempotencyKey::parse(format!("bench-{}", fixture.made)),
                        );
                        let call = Instant::now();
                        let checkout = or_exit("checkout", fixture.shop.checkout(id, &key).await);
                        latencies
                            .push(u32::try_from(call.elapsed().as_micros()).unwrap_or(u32::MAX));
                        if checkout.order.lines.len() != lines {
                            or_exit::<(), _>("checkout", Err("an order without every line"));
                        }
                    }
                    (start.elapsed(), latencies)
                });
                made += iters;
                timed += duration;
                latencies.append(&mut batch);
                duration
            });
            built = Some(fixture);
        });
        if built.is_none() {
            continue;
        }
        latencies.sort_unstable();
        let at = |q: f64| commerce_benches::quantile(&latencies, q);
        #[allow(clippy::cast_precision_loss)]
        let per_sec = made as f64 / timed.as_secs_f64().max(f64::MIN_POSITIVE);
        println!(
            "checkout_{store}/{lines}_lines: {made} checkouts (warm-up included), {per_sec:.0} per \
             second; latency p50 {} µs, p99 {} µs",
            at(0.5),
            at(0.99),
        );
        measured.push(Measured {
            store,
            lines,
            per_sec,
            p50_us: at(0.5),
            p99_us: at(0.99),
        });
    }
    group.finish();
}

/// Writes `benches/results/checkout.json`.
fn summary(measured: &[Measured]) {
    let benchmarks: Vec<serde_json::Value> = measured
        .iter()
        .map(|m| {
            serde_json::json!({
                "store": m.store,
                "lines": m.lines,
                "checkouts_per_sec": m.per_sec.round(),
                "p50_us": m.p50_us,
                "p99_us": m.p99_us,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "machine": commerce_benches::machine(),
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p commerce-benches --bench checkout",
        "benchmarks": benchmarks,
    });
    let path = or_exit(
        "writing the summary",
        commerce_benches::write_result("checkout.json", &doc),
    );
    println!("summary: {}", path.display());
}

fn checkout(c: &mut Criterion) {
    let runtime = or_exit(
        "starting tokio",
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    );
    let mut measured = Vec::new();
    bench(
        c,
        &runtime,
        "memory",
        &|| Arc::new(InMemoryStore::new()),
        &mut measured,
    );
    let factory = runtime.block_on(PgFactory::from_env(ReservationStrategy::default()));
    if let Some(reason) = factory.unavailable() {
        println!("skipping the PostgreSQL benchmarks: {reason}");
    } else {
        bench(
            c,
            &runtime,
            "pg",
            &|| Arc::new(runtime.block_on(factory.store())),
            &mut measured,
        );
    }
    // A filtered run measures part: only a full run writes the summary.
    if measured.len() == 2 * LINE_COUNTS.len() {
        summary(&measured);
    }
}

criterion_group!(benches, checkout);
criterion_main!(benches);
