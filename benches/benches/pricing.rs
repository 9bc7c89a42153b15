//! Benchmarks of [`commerce_core::pricing::price`] on a 50-line cart.
//!
//! The inputs are built once, outside the measured closure, by the fixtures
//! of `commerce-benches`; each iteration prices the whole cart: promotions,
//! tax and totals. Run with `cargo bench -p commerce-benches --bench pricing`.

use std::hint::black_box;

use commerce_benches::{FixtureError, LINES, PROMOTIONS, Region, cart};
use commerce_core::pricing::price;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The cart priced in `region`, after checking that it prices, so a
/// benchmark never measures an early error.
fn input(region: Region, with_promotions: bool) -> commerce_core::PricingInput {
    let built = cart(region, with_promotions).and_then(|input| {
        price(&input)?;
        Ok::<_, FixtureError>(input)
    });
    match built {
        Ok(input) => input,
        Err(error) => {
            eprintln!("the {region:?} fixture does not price: {error}");
            std::process::exit(1);
        }
    }
}

fn pricing(c: &mut Criterion) {
    let mut group = c.benchmark_group("pricing");
    // One element is one cart priced, so criterion reports carts per second.
    group.throughput(Throughput::Elements(1));

    let eu_promotions = input(Region::Germany, true);
    group.bench_function(
        format!("eu_vat_{LINES}_lines_{PROMOTIONS}_promotions"),
        |b| b.iter(|| price(black_box(&eu_promotions))),
    );

    let eu_tax_only = input(Region::Germany, false);
    group.bench_function(format!("eu_vat_{LINES}_lines_tax_only"), |b| {
        b.iter(|| price(black_box(&eu_tax_only)))
    });

    let au_tax_only = input(Region::Australia, false);
    group.bench_function(format!("au_gst_per_line_{LINES}_lines_tax_only"), |b| {
        b.iter(|| price(black_box(&au_tax_only)))
    });

    let au_promotions = input(Region::Australia, true);
    group.bench_function(
        format!("au_gst_per_line_{LINES}_lines_{PROMOTIONS}_promotions"),
        |b| b.iter(|| price(black_box(&au_promotions))),
    );

    group.finish();
}

criterion_group!(benches, pricing);
criterion_main!(benches);
