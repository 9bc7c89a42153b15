//! Fixtures for the benchmarks of `commerce-core`.
//!
//! The benchmarks live in `benches/` and run with `cargo bench -p
//! commerce-benches`; this library builds the inputs they measure, so the
//! unit tests below can check that those inputs do real work (they price,
//! and many promotions apply) without running a benchmark.
//!
//! Every fixture is deterministic except for the [`ProductId`]s, which are
//! new UUIDs (time-ordered, partly random) that no promotion selects on. The cart is [`LINES`] lines
//! over ten merchandising categories:
//!
//! | category | EU tax category | AU tax category |
//! | --- | --- | --- |
//! | tools, garden, paint, lighting, electrical, fasteners | `standard` | `standard` |
//! | books, pantry | `reduced` | `standard` |
//! | newspapers, charity | `zero-rated` | `gst-free` |
//!
//! The [`PROMOTIONS`] promotions are a mix of every action (percent off a
//! category, amount off per unit, amount off a selection, percent off the
//! cart with a cap, amount off the cart, buy X get Y, free shipping) behind
//! every kind of condition (minimum quantity, minimum subtotal before or
//! after discounts, coupon, customer group, date window, usage limits), with
//! priorities spread so that they interleave. Two exclusive promotions are
//! evaluated first and do not apply (a coupon that was not entered, a
//! threshold the cart does not reach), so every promotion after them is
//! still evaluated; a third exclusive one is evaluated last and applies.

pub mod baseline;

use std::collections::{BTreeSet, HashMap};

use commerce_core::promotion::{
    Action, AmountPer, Condition, DiscountBasis, DiscountOrder, PromotionUsage, Selector, TaxBasis,
    Threshold,
};
use commerce_core::{
    Category, Clock, CouponCode, Currency, CustomerContext, CustomerGroup, CustomerId, ManualClock,
    Money, PricingInput, PricingLine, ProductId, Promotion, PromotionId, PromotionSpec, Quantity,
    Sku, TaxCategory, TaxConfig, Timestamp,
};
use rust_decimal::Decimal;

/// The number of lines in the benchmark cart.
pub const LINES: usize = 50;

/// The number of promotions in the benchmark cart's promotion set.
pub const PROMOTIONS: usize = 100;

/// The pricing time: 2026-01-01T00:00:00Z.
pub const NOW_UNIX: i64 = 1_767_225_600;

/// The flat shipping fee, in minor units.
pub const SHIPPING_MINOR: i64 = 495;

/// Why a fixture could not be built (a value refused by `commerce-core`).
pub type FixtureError = Box<dyn std::error::Error + Send + Sync>;

/// The merchandising categories, with their EU tax category.
const CATEGORIES: [(&str, &str); 10] = [
    ("tools", "standard"),
    ("garden", "standard"),
    ("paint", "standard"),
    ("lighting", "standard"),
    ("electrical", "standard"),
    ("fasteners", "standard"),
    ("books", "reduced"),
    ("pantry", "reduced"),
    ("newspapers", "zero-rated"),
    ("charity", "zero-rated"),
];

const DAY: i64 = 24 * 60 * 60;

/// The customer group that group-gated promotions ask for (the buyer is in it).
const MEMBERS: &str = "members";

/// Where the cart is priced: its currency and tax rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// Germany, in EUR: [`TaxConfig::eu_vat`] at 19% standard and 7% reduced,
    /// prices including VAT, rounded once per invoice and rate.
    Germany,
    /// Australia, in AUD: [`TaxConfig::australia_gst`], prices including 10%
    /// GST, rounded per line.
    Australia,
}

impl Region {
    /// The cart's currency.
    pub fn currency(self) -> Currency {
        match self {
            Region::Germany => Currency::EUR,
            Region::Australia => Currency::AUD,
        }
    }

    /// The tax rules.
    pub fn tax_config(self) -> TaxConfig {
        match self {
            Region::Germany => TaxConfig::eu_vat("DE", Decimal::from(19), Decimal::from(7)),
            Region::Australia => TaxConfig::australia_gst(),
        }
    }

    /// The region's tax category for a line whose EU tax category is `eu`.
    fn tax_category(self, eu: &str) -> &str {
        match (self, eu) {
            (Region::Germany, _) => eu,
            (Region::Australia, "zero-rated") => "gst-free",
            (Region::Australia, _) => "standard",
        }
    }
}

/// An instant `seconds` after the pricing time (before it when negative).
fn at(seconds: i64) -> Timestamp {
    ManualClock::at_unix(NOW_UNIX + seconds).now()
}

/// The pricing time.
pub fn pricing_now() -> Timestamp {
    at(0)
}

fn category_name(index: usize) -> &'static str {
    CATEGORIES
        .get(index % CATEGORIES.len())
        .map_or("tools", |c| c.0)
}

fn category(index: usize) -> Result<Category, FixtureError> {
    Ok(Category::parse(category_name(index))?)
}

/// The SKU of line `line`. SKUs are a permutation of the line numbers, so
/// the cart's order differs from the SKU order pricing allocates in.
fn sku(line: usize) -> Result<Sku, FixtureError> {
    Ok(Sku::parse(format!("SKU-{:04}", (line * 37) % LINES))?)
}

/// The [`LINES`] cart lines, priced in the region's currency and tax
/// categories: unit prices from 1.50 to 100.00, quantities from 1 to 7.
pub fn cart_lines(region: Region) -> Result<Vec<PricingLine>, FixtureError> {
    let currency = region.currency();
    (0..LINES)
        .map(|i| {
            let (name, eu_tax) = CATEGORIES
                .get(i % CATEGORIES.len())
                .copied()
                .unwrap_or(("tools", "standard"));
            let unit_minor = 150 + i64::try_from((i * 7_919 + 13) % 9_850)?;
            let units = 1 + u32::try_from((i * 5) % 7)?;
            Ok(PricingLine {
                sku: sku(i)?,
                product: ProductId::new(),
                name: format!("{name} item {i}"),
                options: Default::default(),
                category: Category::parse(name)?,
                tax_category: TaxCategory::parse(region.tax_category(eu_tax))?,
                age_restricted: false,
                unit_price: Money::new(unit_minor, currency),
                quantity: Quantity::new(units)?,
            })
        })
        .collect()
}

/// The coupon code promotion `k` asks for, when it asks for one.
fn coupon(k: usize) -> String {
    format!("SAVE{k:03}")
}

/// The coupon codes the buyer entered: those of every other decade of
/// coupon-gated promotions (and never `VIP-ONLY`).
fn entered_codes() -> Result<BTreeSet<CouponCode>, FixtureError> {
    (0..PROMOTIONS)
        .filter(|k| k % 10 == 6 && (k / 10).is_multiple_of(2))
        .map(|k| Ok(CouponCode::parse(coupon(k))?))
        .collect()
}

/// The [`PROMOTIONS`] promotions, with amounts in `currency`.
pub fn promotions(currency: Currency) -> Result<Vec<Promotion>, FixtureError> {
    (0..PROMOTIONS).map(|k| promotion(k, currency)).collect()
}

fn promotion(k: usize, currency: Currency) -> Result<Promotion, FixtureError> {
    let money = |minor: usize| -> Result<Money, FixtureError> {
        Ok(Money::new(i64::try_from(minor)?, currency))
    };
    let percent =
        |p: usize| -> Result<Decimal, FixtureError> { Ok(Decimal::from(u32::try_from(p)?)) };
    let decade = k / 10;
    // Decorrelate the category from the kind of promotion.
    let cat = Selector::Category {
        category: category(decade + 3 * k)?,
    };
    let other = Selector::Category {
        category: category(decade + 3 * k + 4)?,
    };
    let both = Selector::AnyOf {
        selectors: vec![cat.clone(), other],
    };
    let active_window = Condition::Window {
        starts_at: Some(at(-DAY)),
        ends_at: Some(at(30 * DAY)),
    };
    let mut exclusive = false;
    let mut cap = None;
    let mut usage_limit = None;
    let mut per_customer_limit = None;
    let mut priority = i32::try_from((k * 37) % 40)? + 2;
    let (conditions, action) = match k % 10 {
        0 => (
            vec![Condition::MinQuantity {
                selector: cat.clone(),
                quantity: 3,
                threshold: Threshold::AtLeast,
            }],
            Action::PercentOffItems {
                selector: cat,
                percent: percent(5 + k % 10 + decade)?,
            },
        ),
        1 => {
            let window = if decade % 3 == 2 {
                Condition::Window {
                    starts_at: Some(at(-30 * DAY)),
                    ends_at: Some(at(-DAY)),
                }
            } else {
                active_window
            };
            (
                vec![window],
                Action::AmountOffItems {
                    selector: cat,
                    amount: money(25 + (k * 7) % 50)?,
                    per: AmountPer::Unit,
                },
            )
        }
        2 => (
            vec![Condition::MinSubtotal {
                selector: both.clone(),
                amount: money(2_000)?,
                threshold: Threshold::AtLeast,
                discounts: DiscountBasis::AfterDiscounts,
                tax: TaxBasis::AsPriced,
            }],
            Action::AmountOffItems {
                selector: both,
                amount: money(500 + k * 10)?,
                per: AmountPer::Selection,
            },
        ),
        3 => {
            cap = Some(money(2_500)?);
            let mut conditions = vec![Condition::MinSubtotal {
                selector: Selector::All,
                amount: money(50_000)?,
                threshold: Threshold::AtLeast,
                discounts: DiscountBasis::BeforeDiscounts,
                tax: TaxBasis::ExcludingTax,
            }];
            match k {
                // Exclusive, evaluated first, but its coupon was not entered.
                3 => {
                    exclusive = true;
                    priority = 0;
                    conditions.push(Condition::Coupon {
                        code: CouponCode::parse("VIP-ONLY")?,
                    });
                }
                // Exclusive, evaluated next, but the cart is far below it.
                13 => {
                    exclusive = true;
                    priority = 1;
                    conditions.push(Condition::MinSubtotal {
                        selector: Selector::All,
                        amount: money(100_000_000)?,
                        threshold: Threshold::AtLeast,
                        discounts: DiscountBasis::AfterDiscounts,
                        tax: TaxBasis::IncludingTax,
                    });
                }
                _ => {}
            }
            (
                conditions,
                Action::PercentOffCart {
                    percent: percent(1 + k % 3)?,
                },
            )
        }
        4 => (
            vec![],
            Action::BuyXGetY {
                buy: cat.clone(),
                buy_quantity: 2,
                get: cat,
                get_quantity: 1,
                percent: percent(50)?,
                repeat: decade.is_multiple_of(2),
                order: if decade.is_multiple_of(3) {
                    DiscountOrder::MostExpensiveFirst
                } else {
                    DiscountOrder::CheapestFirst
                },
            },
        ),
        // The first that applies makes shipping free; the rest find nothing left.
        5 => (
            vec![Condition::MinSubtotal {
                selector: Selector::All,
                amount: money(5_000 * (1 + decade % 3))?,
                threshold: Threshold::AtLeast,
                discounts: DiscountBasis::AfterDiscounts,
                tax: TaxBasis::AsPriced,
            }],
            Action::FreeShipping,
        ),
        6 => (
            vec![Condition::Coupon {
                code: CouponCode::parse(coupon(k))?,
            }],
            Action::PercentOffItems {
                selector: cat,
                percent: percent(10)?,
            },
        ),
        7 => (
            vec![Condition::MinQuantity {
                selector: Selector::All,
                quantity: if decade.is_multiple_of(2) { 40 } else { 1_000 },
                threshold: Threshold::AtLeast,
            }],
            Action::AmountOffCart {
                amount: money(300 + k)?,
            },
        ),
        8 => {
            usage_limit = Some(100);
            per_customer_limit = Some(3);
            if k == 98 {
                // Exclusive, evaluated last: it applies and excludes nothing.
                exclusive = true;
                priority = 1_000;
            }
            (
                vec![active_window],
                Action::PercentOffItems {
                    selector: Selector::Sku {
                        sku: sku((k * 3) % LINES)?,
                    },
                    percent: percent(20)?,
                },
            )
        }
        _ => {
            let window = if decade % 2 == 1 {
                Condition::Window {
                    starts_at: Some(at(7 * DAY)),
                    ends_at: None,
                }
            } else {
                active_window
            };
            (
                vec![
                    window,
                    Condition::CustomerGroup {
                        group: CustomerGroup::parse(MEMBERS)?,
                    },
                ],
                Action::PercentOffItems {
                    selector: both,
                    percent: percent(3)?,
                },
            )
        }
    };
    Ok(Promotion::new(PromotionSpec {
        id: PromotionId::parse(format!("promo-{k:03}"))?,
        name: format!("Promotion {k}"),
        priority,
        exclusive,
        group: None,
        conditions,
        action,
        cap,
        max_units_per_line: None,
        usage_limit,
        per_customer_limit,
    })?)
}

/// How often the limited promotions have been redeemed: one has reached
/// its total limit and one this customer's limit; the others have room.
fn usage() -> Result<HashMap<PromotionId, PromotionUsage>, FixtureError> {
    let mut usage = HashMap::new();
    for (k, total, by_customer) in [(8, 12, 1), (18, 99, 2), (28, 40, 3), (38, 100, 0)] {
        usage.insert(
            PromotionId::parse(format!("promo-{k:03}"))?,
            PromotionUsage { total, by_customer },
        );
    }
    Ok(usage)
}

/// The benchmark cart priced in `region`, with the [`PROMOTIONS`]
/// promotions or none: a known customer in the `members` group, some
/// coupon codes entered, and a flat shipping fee.
pub fn cart(region: Region, with_promotions: bool) -> Result<PricingInput, FixtureError> {
    let currency = region.currency();
    let mut input = PricingInput::new(currency, region.tax_config(), pricing_now());
    input.lines = cart_lines(region)?;
    if with_promotions {
        input.promotions = promotions(currency)?;
    }
    input.usage = usage()?;
    input.codes = entered_codes()?;
    input.customer = CustomerContext {
        id: Some(CustomerId::parse("customer-42")?),
        groups: BTreeSet::from([CustomerGroup::parse(MEMBERS)?]),
        first_order: false,
    };
    input.shipping = Some(Money::new(SHIPPING_MINOR, currency));
    Ok(input)
}

/// The machine a bench ran on, for its summary: the cores, the CPU model
/// and the load average when it is called (at the end of a run, what else
/// was running shows there).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{} vCPUs, {model}; load average at the end {load}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
    )
}

/// Writes `doc`, pretty-printed, to `benches/results/<file>`; the path
/// written.
pub fn write_result(file: &str, doc: &serde_json::Value) -> std::io::Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let path = dir.join(file);
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_string_pretty(doc).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    Ok(path)
}

/// The CPU time spent while a bench's timed part ran, read from Linux's
/// `/proc` (in clock ticks, usually 10 ms): the whole machine's busy and
/// idle time over every core, and the bench process's own (the client:
/// what is left of the busy time is PostgreSQL's and whatever else ran).
/// On these shared two-core machines a benchmark's throughput moves by
/// ±20% from one run to the next; the busy time per operation moves less,
/// and tells apart a change that costs less from one that waits less.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Ticks every core spent on anything but idling or waiting for I/O.
    pub busy: u64,
    /// Ticks every core spent idle or waiting for I/O.
    pub idle: u64,
    /// Ticks this process spent, in user and kernel mode.
    pub process: u64,
}

impl CpuTicks {
    /// The counters now; all zero where `/proc` cannot be read.
    pub fn now() -> Self {
        let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = machine
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let field = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let idle = field(3) + field(4);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // After the command's name (in parentheses), utime and stime are
        // the 12th and 13th fields.
        let after = own.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let process = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        Self {
            busy,
            idle,
            process,
        }
    }

    /// The ticks from `earlier` to `self`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            process: self.process.saturating_sub(earlier.process),
        }
    }

    /// The sum of two spans.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            busy: self.busy + other.busy,
            idle: self.idle + other.idle,
            process: self.process + other.process,
        }
    }

    /// Microseconds of busy time per operation (the whole machine's, then
    /// this process's) and the share of the cores' time that was idle,
    /// over `ops` operations; `None` without ticks or operations.
    pub fn per_op(self, ops: u64) -> Option<(f64, f64, f64)> {
        let total = self.busy + self.idle;
        if total == 0 || ops == 0 {
            return None;
        }
        // /proc counts in USER_HZ, 100 ticks a second on Linux.
        let tick_us = 1_000_000.0 / 100.0;
        #[allow(clippy::cast_precision_loss)]
        let (busy, process, idle, total, ops) = (
            self.busy as f64,
            self.process as f64,
            self.idle as f64,
            total as f64,
            ops as f64,
        );
        Some((busy * tick_us / ops, process * tick_us / ops, idle / total))
    }
}

/// The `q` quantile (0 to 1) of `sorted` (ascending), by nearest rank; 0
/// when it is empty.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use commerce_core::pricing::price;
    use commerce_core::tax::{PriceBasis, TaxTreatment};

    use super::*;

    #[test]
    fn the_promotion_cart_prices_and_most_promotions_are_evaluated() {
        for region in [Region::Germany, Region::Australia] {
            let input = cart(region, true).unwrap();
            assert_eq!(input.lines.len(), LINES);
            assert_eq!(input.promotions.len(), PROMOTIONS);
            let priced = price(&input).unwrap();
            assert_eq!(priced.promotions.len(), PROMOTIONS);
            let applied = priced.applied_promotions().count();
            assert!(
                applied >= 20,
                "{region:?}: only {applied} promotions applied"
            );
            assert!(
                applied < PROMOTIONS,
                "{region:?}: every promotion applied, so no condition is exercised"
            );
            // No exclusive promotion stopped the evaluation early: at most
            // the last one is excluded from nothing.
            let excluded = priced
                .promotions
                .iter()
                .filter(|p| {
                    matches!(
                        p.outcome,
                        commerce_core::pricing::PromotionOutcome::NotApplied(
                            commerce_core::pricing::NotApplied::ExcludedBy { .. }
                        )
                    )
                })
                .count();
            assert_eq!(excluded, 0, "{region:?}");
            assert!(priced.totals.discount_total.minor() > 0);
            assert!(priced.totals.tax_total.minor() > 0);
        }
    }

    #[test]
    fn the_tax_only_carts_price_over_every_rate() {
        let eu = price(&cart(Region::Germany, false).unwrap()).unwrap();
        assert_eq!(eu.prices, PriceBasis::TaxInclusive);
        assert!(eu.promotions.is_empty());
        assert!(eu.totals.discount_total.is_zero());
        // 19%, 7% and zero-rated; shipping is at the standard rate.
        assert_eq!(eu.taxes.len(), 3);
        assert!(
            eu.taxes
                .iter()
                .any(|t| t.treatment == TaxTreatment::ZeroRated)
        );

        let au = price(&cart(Region::Australia, false).unwrap()).unwrap();
        assert_eq!(au.lines.len(), LINES);
        // GST and GST-free.
        assert_eq!(au.taxes.len(), 2);
        assert_eq!(
            au.totals.subtotal.minor() + SHIPPING_MINOR,
            au.totals.grand_total.minor()
        );
    }

    #[test]
    fn cpu_ticks_per_operation_come_from_the_spans_summed() {
        let first = CpuTicks {
            busy: 150,
            idle: 50,
            process: 40,
        };
        let later = CpuTicks {
            busy: 450,
            idle: 150,
            process: 120,
        };
        let span = later.since(first).plus(first);
        assert_eq!(span, later);
        // 450 ticks of 10 ms over 30,000 operations: 150 µs each, 40 µs of
        // them the process's; a quarter of the time idle.
        assert_eq!(span.per_op(30_000), Some((150.0, 40.0, 0.25)));
        assert_eq!(CpuTicks::default().per_op(10), None);
        assert_eq!(later.per_op(0), None);
        // Where Linux's counters are there, they are read: the machine has
        // spent time since it booted (a parse that found nothing would
        // leave every bench's figures empty).
        if std::path::Path::new("/proc/stat").exists() {
            let now = CpuTicks::now();
            assert!(now.busy > 0 && now.idle > 0, "{now:?}");
        }
    }
}
