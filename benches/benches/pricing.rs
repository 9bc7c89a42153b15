//! Benchmarks of [`commerce_core::pricing::price`] on a 50-line cart, beside
//! the engine as it was before it was made faster
//! ([`commerce_benches::baseline`]), in the same run.
//!
//! The inputs are built once, outside the measured closure, by the fixtures
//! of `commerce-benches`; each iteration prices the whole cart: promotions,
//! tax and totals. Each scenario is measured with the old engine
//! (`pricing/old/<scenario>`), then with the current one
//! (`pricing/new/<scenario>`), so both see the same machine at nearly the
//! same time. Run with `cargo bench -p commerce-benches --bench pricing`.
//!
//! After criterion's own output, the medians of the benchmarks that ran are
//! written to `benches/results/pricing.json`, with the machine, the date and
//! the ratio new / old of each scenario.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use commerce_benches::{FixtureError, LINES, PROMOTIONS, Region, baseline, cart};
use commerce_core::pricing::price;
use criterion::{BenchmarkId, Criterion, Throughput};
use serde_json::{Value, json};

/// The cart priced in `region`, after checking that it prices, and prices
/// the same with the old engine and the new, so a benchmark never measures
/// an early error or compares different work.
fn input(region: Region, with_promotions: bool) -> commerce_core::PricingInput {
    let built = cart(region, with_promotions).and_then(|input| {
        let new = price(&input)?;
        let old = baseline::price(&input)?;
        if new != old {
            return Err(FixtureError::from(
                "the old and the new engine price the fixture differently",
            ));
        }
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

/// The scenarios, in the order they run.
fn scenarios() -> Vec<(String, Region, bool)> {
    vec![
        (
            format!("eu_vat_{LINES}_lines_{PROMOTIONS}_promotions"),
            Region::Germany,
            true,
        ),
        (
            format!("eu_vat_{LINES}_lines_tax_only"),
            Region::Germany,
            false,
        ),
        (
            format!("au_gst_per_line_{LINES}_lines_tax_only"),
            Region::Australia,
            false,
        ),
        (
            format!("au_gst_per_line_{LINES}_lines_{PROMOTIONS}_promotions"),
            Region::Australia,
            true,
        ),
    ]
}

fn pricing(c: &mut Criterion) {
    let mut group = c.benchmark_group("pricing");
    // One element is one cart priced, so criterion reports carts per second.
    group.throughput(Throughput::Elements(1));
    for (name, region, with_promotions) in scenarios() {
        let input = input(region, with_promotions);
        group.bench_function(BenchmarkId::new("old", &name), |b| {
            b.iter(|| baseline::price(black_box(&input)))
        });
        group.bench_function(BenchmarkId::new("new", &name), |b| {
            b.iter(|| price(black_box(&input)))
        });
    }
    group.finish();
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else the target directory `cargo
/// metadata` reports, else `target/criterion` (criterion's own order; the
/// bench passes the answer to criterion, so both agree).
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let metadata: Value = serde_json::from_slice(&output.stdout).ok()?;
        Some(PathBuf::from(metadata.get("target_directory")?.as_str()?))
    });
    metadata.map_or_else(
        || PathBuf::from("target/criterion"),
        |t| t.join("criterion"),
    )
}

/// The median and its 95% confidence interval, in µs, of a benchmark whose
/// estimates criterion wrote after `since` (so in this run).
fn median_us(home: &Path, engine: &str, scenario: &str, since: SystemTime) -> Option<Value> {
    let path = home
        .join("pricing")
        .join(engine)
        .join(scenario)
        .join("new")
        .join("estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < since {
        return None;
    }
    let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let median = estimates.get("median")?;
    let us = |v: &Value| v.as_f64().map(|ns| (ns / 10.0).round() / 100.0);
    let interval = median.get("confidence_interval")?;
    Some(json!({
        "name": format!("pricing/{engine}/{scenario}"),
        "median_us": us(median.get("point_estimate")?)?,
        "median_ci95_us": [us(interval.get("lower_bound")?)?, us(interval.get("upper_bound")?)?],
    }))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The machine: cores, CPU model, load average now, and the toolchain.
fn machine(load_at_start: &str) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned());
    let rustc = std::process::Command::new(std::env::var_os("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|out| first_line(&String::from_utf8_lossy(&out.stdout)));
    json!({
        "nproc": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": model,
        "load_average_at_start": load_at_start,
        "load_average_at_end": first_line(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default()),
        "rustc": rustc,
    })
}

/// Writes `benches/results/pricing.json` from the estimates criterion wrote
/// in this run; writes nothing when no benchmark was measured (criterion's
/// `--test` or `--list`, or a filter that matched none).
fn write_results(home: &Path, since: SystemTime, load_at_start: &str) {
    let mut benchmarks = Vec::new();
    let mut ratios = Vec::new();
    for (scenario, _, _) in scenarios() {
        let old = median_us(home, "old", &scenario, since);
        let new = median_us(home, "new", &scenario, since);
        let median = |v: &Option<Value>| v.as_ref().and_then(|v| v.get("median_us")?.as_f64());
        if let (Some(old), Some(new)) = (median(&old), median(&new)) {
            ratios.push(json!({
                "scenario": scenario,
                "old_median_us": old,
                "new_median_us": new,
                "new_over_old": (new / old * 1000.0).round() / 1000.0,
            }));
        }
        benchmarks.extend(old);
        benchmarks.extend(new);
    }
    if benchmarks.is_empty() {
        return;
    }
    let results = json!({
        "command": "cargo bench -p commerce-benches --bench pricing",
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "machine": machine(load_at_start),
        "benchmarks": benchmarks,
        "ratios": ratios,
    });
    match commerce_benches::write_result("pricing.json", &results) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(error) => eprintln!("could not write benches/results/pricing.json: {error}"),
    }
}

fn main() {
    let since = SystemTime::now();
    let load_at_start = first_line(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default());
    let home = criterion_home();
    let mut criterion = Criterion::default()
        .output_directory(&home)
        .configure_from_args();
    pricing(&mut criterion);
    criterion.final_summary();
    write_results(&home, since, &load_at_start);
}
