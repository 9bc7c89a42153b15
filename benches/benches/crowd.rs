//! A crowd larger than the pool: 10,000 buyers at once for one unit on the
//! PostgreSQL store with a pool of 10 and the default bounded waits
//! (`PgStoreOptions::default()`: acquire and lock waits 2 s, 200 waiting
//! beyond the pool), directly and through PgBouncer in transaction pooling.
//! Each buyer opens a cart, sets one unit and, if that succeeds, checks out
//! ([`commerce_core::testkit::crowd`]); every crowd gets a fresh SKU with
//! one unit, stocked outside the timed part.
//!
//! Groups: `crowd_direct`, `crowd_pooled` (when `COMMERCE_PGBOUNCER_URL`
//! names a pooler: `bash .ci/pgbouncer.sh`), each with the one benchmark
//! `10000_buyers_1_unit` timing whole crowds. Besides criterion's output,
//! the bench writes `benches/results/crowd.json`: per mode, the crowds run,
//! the outcomes of all their buyers (ordered, sold out, busy, failed) and
//! the 50th and 99th percentiles of the refusals' answer times.
//!
//! Run with `bash .ci/pgbouncer.sh; COMMERCE_PGBOUNCER_URL=postgres://commerce_login@127.0.0.1:6433/postgres
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p
//! commerce-benches --bench crowd`.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use commerce_core::testkit::StoreFactory;
use commerce_core::testkit::crowd::{BuyerOutcome, CrowdReport, crowd};
use commerce_core::{
    Category, Commerce, Currency, Money, NewProduct, Quantity, Shop, Sku, TaxCategory, TenantId,
    Variant,
};
use commerce_postgres::ReservationStrategy;
use commerce_postgres::testkit::{PGBOUNCER_URL, PgFactory};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// Buyers per crowd.
const BUYERS: usize = 10_000;

/// The pool's size.
const POOL: u32 = 10;

/// Prints `what` failed and stops the bench.
fn or_exit<T, E: Display>(what: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            eprintln!("{what}: {error}");
            std::process::exit(1);
        }
    }
}

/// A shop on a fresh database with a pool of [`POOL`] and the default
/// waits.
async fn shop(factory: &PgFactory) -> Shop {
    let (store, admin) = factory.store_with_default_waits(POOL).await;
    admin.close().await;
    let commerce = or_exit(
        "building the engine",
        Commerce::builder().shared_store(Arc::new(store)).build(),
    );
    commerce.shop(&or_exit("tenant", TenantId::parse("bench")))
}

/// A new SKU with one unit.
async fn one_unit(shop: &Shop, n: usize) -> Sku {
    let sku = or_exit("sku", Sku::parse(format!("CROWD-{n}")));
    or_exit(
        "product",
        shop.add_product(NewProduct {
            name: format!("Crowd item {n}"),
            category: or_exit("category", Category::parse("bench")),
            tax_category: or_exit("tax category", TaxCategory::parse("standard")),
            age_restricted: false,
            variants: vec![Variant::new(sku.clone(), Money::new(1_000, Currency::AUD))],
            published: true,
        })
        .await,
    );
    or_exit(
        "stock",
        shop.receive_stock(&sku, Quantity::ONE, Some("bench: one unit".into()))
            .await,
    );
    sku
}

/// Every buyer of every crowd of one mode.
#[derive(Default)]
struct Totals {
    crowds: usize,
    all: CrowdReport,
}

fn mode(c: &mut Criterion, runtime: &Runtime, name: &'static str, factory: &PgFactory) -> Totals {
    let shop = runtime.block_on(shop(factory));
    let mut totals = Totals::default();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("10000_buyers_1_unit", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let report = runtime.block_on(async {
                    let sku = one_unit(&shop, totals.crowds).await;
                    crowd(&shop, &sku, BUYERS).await
                });
                let ordered = report.count(&BuyerOutcome::Ordered);
                if ordered != 1 || !report.failures().is_empty() {
                    eprintln!(
                        "a crowd for one unit made {ordered} orders, failures: {:?}",
                        report.failures().first()
                    );
                    std::process::exit(1);
                }
                timed += report.elapsed;
                totals.crowds += 1;
                totals.all.buyers.extend(report.buyers);
            }
            timed
        });
    });
    group.finish();
    totals
}

fn summary_of(name: &str, totals: &Totals) -> serde_json::Value {
    let all = &totals.all;
    let micros = |q: f64| {
        all.refusal_quantile(q)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    };
    let (ordered, sold_out, busy, failed) = (
        all.count(&BuyerOutcome::Ordered),
        all.count(&BuyerOutcome::SoldOut),
        all.count(&BuyerOutcome::Busy),
        all.failures().len(),
    );
    println!(
        "{name}: {} crowds of {BUYERS}: {ordered} ordered, {sold_out} sold out, {busy} busy, \
         {failed} failed; refusals p50 {} µs, p99 {} µs",
        totals.crowds,
        micros(0.5).unwrap_or_default(),
        micros(0.99).unwrap_or_default()
    );
    serde_json::json!({
        "mode": name,
        "crowds": totals.crowds,
        "buyers_per_crowd": BUYERS,
        "pool": POOL,
        "ordered": ordered,
        "sold_out": sold_out,
        "busy": busy,
        "failed": failed,
        "refusal_p50_us": micros(0.5),
        "refusal_p99_us": micros(0.99),
    })
}

fn crowds(c: &mut Criterion) {
    let runtime = or_exit(
        "starting tokio",
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    );
    let direct = runtime.block_on(PgFactory::from_env(ReservationStrategy::SingleStatement));
    if let Some(reason) = direct.unavailable() {
        println!("skipping the crowd bench: {reason}");
        return;
    }
    let mut modes = vec![summary_of(
        "direct",
        &mode(c, &runtime, "crowd_direct", &direct),
    )];
    if std::env::var(PGBOUNCER_URL).is_ok_and(|u| !u.is_empty()) {
        let pooled = runtime.block_on(PgFactory::through_pooler(
            ReservationStrategy::SingleStatement,
        ));
        modes.push(summary_of(
            "pooled",
            &mode(c, &runtime, "crowd_pooled", &pooled),
        ));
    } else {
        println!("skipping the pooled crowd: {PGBOUNCER_URL} is not set (bash .ci/pgbouncer.sh)");
    }
    let doc = serde_json::json!({
        "machine": commerce_benches::machine(),
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": "bash .ci/pgbouncer.sh; COMMERCE_PGBOUNCER_URL=postgres://commerce_login@127.0.0.1:6433/postgres DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p commerce-benches --bench crowd",
        "modes": modes,
    });
    let path = or_exit(
        "writing the summary",
        commerce_benches::write_result("crowd.json", &doc),
    );
    println!("summary: {}", path.display());
}

criterion_group!(benches, crowds);
criterion_main!(benches);
