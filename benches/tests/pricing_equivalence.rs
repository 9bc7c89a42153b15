//! The current pricing engine prices every input exactly as the engine of
//! `fea34db` did ([`commerce_benches::baseline`]): the same priced cart —
//! amounts, which promotions apply and why not, the order of discounts,
//! rounding, taxes — or the same error, compared through their `Debug`
//! text (so even a decimal's scale must agree).
//!
//! The inputs are random carts of 1 to 80 lines (more than one 64-line word
//! of the new engine's bit sets), duplicate SKUs included, with up to 30
//! random promotions of every kind, in four tax regions with every rounding;
//! some with amounts near `i64::MAX`, a tax category the region does not
//! know, or shipping. Cases: `PROPTEST_CASES`, else 1,000. Failure
//! persistence is off; the failing input is printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-only strategies and checkers: a panic is a failing test"
)]

use std::collections::BTreeMap;

use commerce_benches::baseline;
use commerce_core::pricing::{CustomerContext, PricingInput, PricingLine, price};
use commerce_core::promotion::{
    Action, AmountPer, Condition, DiscountBasis, DiscountOrder, Promotion, PromotionSpec,
    PromotionUsage, Selector, TaxBasis, Threshold,
};
use commerce_core::tax::{Rounding, RoundingLevel, RoundingMode, TaxConfig};
use commerce_core::{
    Category, Clock, CouponCode, Currency, CustomerGroup, CustomerId, ManualClock, Money,
    ProductId, PromotionId, Quantity, Sku, TaxCategory, Timestamp,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

const SKUS: &[&str] = &[
    "A1", "a1", "B-2", "b-2", "SKU-10", "SKU-9", "Z", "z_9", "MUG", "mug", "TEA-01", "TEA-1",
];
/// Categories of lines; selectors may also name `"toys"`, which no line has.
const CATEGORIES: &[&str] = &["wine", "food", "tools", "books", "toys"];
const CODES: &[&str] = &["SAVE10", "welcome", "VIP-2024"];
const GROUPS: &[&str] = &["staff", "wholesale", "vip"];
const NOW: i64 = 1_700_000_000;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn at(seconds: i64) -> Timestamp {
    ManualClock::at_unix(seconds).now()
}

fn product(n: u128) -> ProductId {
    ProductId::from_uuid(uuid::Uuid::from_u128(n))
}

#[derive(Debug, Clone, Copy)]
enum Region {
    Au,
    Us,
    Eu,
    Untaxed,
}

impl Region {
    fn config(self) -> TaxConfig {
        match self {
            Region::Au => TaxConfig::australia_gst(),
            Region::Us => TaxConfig::us_sales_tax("WA", Decimal::new(65, 1)),
            Region::Eu => TaxConfig::eu_vat("DE", Decimal::from(19), Decimal::from(7)),
            Region::Untaxed => TaxConfig::untaxed(),
        }
    }

    fn tax_categories(self) -> &'static [&'static str] {
        match self {
            Region::Au => &["standard", "gst-free"],
            Region::Us => &["standard", "exempt"],
            Region::Eu => &["standard", "reduced", "zero-rated", "exempt"],
            Region::Untaxed => &["standard", "exempt", "reduced"],
        }
    }
}

fn region_and_currency() -> impl Strategy<Value = (Region, Currency)> {
    prop_oneof![
        Just((Region::Au, Currency::AUD)),
        Just((Region::Us, Currency::USD)),
        Just((Region::Eu, Currency::EUR)),
        prop::sample::select(vec![Currency::AUD, Currency::JPY, Currency::KWD])
            .prop_map(|c| (Region::Untaxed, c)),
    ]
}

fn rounding_mode() -> impl Strategy<Value = RoundingMode> {
    prop_oneof![Just(RoundingMode::HalfUp), Just(RoundingMode::HalfEven)]
}

fn sku() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(SKUS).prop_map(str::to_owned),
        3 => (0_u32..400).prop_map(|k| format!("S-{k}")),
    ]
}

/// Unit price and quantity: ordinary, or (`extreme`) near the limits.
fn price_and_quantity(extreme: bool) -> BoxedStrategy<(i64, u32)> {
    if extreme {
        prop_oneof![
            (0_i64..=50_000, 1_u32..=20),
            (i64::MAX / 4..=i64::MAX, 1_u32..=2),
            (1_i64 << 40..=1_i64 << 44, 1_u32..=Quantity::MAX),
        ]
        .boxed()
    } else {
        prop_oneof![
            1 => Just(0_i64),
            3 => prop::sample::select(vec![1_i64, 5, 99, 1_000, 1_999, 2_500]),
            6 => 0_i64..=50_000,
        ]
        .prop_flat_map(|price| (Just(price), 1_u32..=20))
        .boxed()
    }
}

fn lines(
    region: Region,
    currency: Currency,
    extreme: bool,
    unknown_tax: bool,
) -> impl Strategy<Value = Vec<PricingLine>> {
    prop::collection::vec(
        (
            sku(),
            0..4_usize,
            1..=4_u128,
            0..8_usize,
            price_and_quantity(extreme),
        ),
        1..=80,
    )
    .prop_map(move |attrs| {
        let taxes = region.tax_categories();
        attrs
            .into_iter()
            .enumerate()
            .map(|(i, (sku, category, prod, tax, (price, quantity)))| {
                let tax = if unknown_tax && tax == 7 {
                    "mystery"
                } else {
                    taxes[tax % taxes.len()]
                };
                PricingLine {
                    sku: Sku::parse(sku.as_str()).unwrap(),
                    product: product(prod),
                    name: format!("Item {i}"),
                    options: BTreeMap::new(),
                    category: Category::parse(CATEGORIES[category]).unwrap(),
                    tax_category: TaxCategory::parse(tax).unwrap(),
                    age_restricted: false,
                    unit_price: Money::new(price, currency),
                    quantity: Quantity::new(quantity).unwrap(),
                }
            })
            .collect()
    })
}

fn leaf_selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        1 => Just(Selector::All),
        4 => prop::sample::select(CATEGORIES)
            .prop_map(|c| Selector::Category { category: Category::parse(c).unwrap() }),
        2 => sku().prop_map(|s| Selector::Sku { sku: Sku::parse(s).unwrap() }),
        2 => (1..=5_u128).prop_map(|p| Selector::Product { product: product(p) }),
    ]
}

fn selector() -> impl Strategy<Value = Selector> {
    let any_of = |inner: BoxedStrategy<Selector>| {
        prop::collection::vec(inner, 1..=3).prop_map(|selectors| Selector::AnyOf { selectors })
    };
    let nested = prop_oneof![3 => leaf_selector(), 1 => any_of(leaf_selector().boxed())];
    prop_oneof![5 => leaf_selector(), 2 => any_of(nested.boxed())]
}

fn percent() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        3 => (1_u32..=100).prop_map(Decimal::from),
        2 => (1_i64..=1_000).prop_map(|n| Decimal::new(n, 1)),
        1 => (1_i64..=10_000).prop_map(|n| Decimal::new(n, 2)),
        1 => (1_i64..=100_000_000).prop_map(|n| Decimal::new(n, 6)),
    ]
}

fn coupon_text() -> impl Strategy<Value = String> {
    (prop::sample::select(CODES), any::<bool>()).prop_map(|(code, lower)| {
        if lower {
            code.to_ascii_lowercase()
        } else {
            code.to_owned()
        }
    })
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 1_i64..=200_000, 1 => 1_i64..=i64::MAX]
}

fn condition(currency: Currency) -> impl Strategy<Value = Condition> {
    let discount_basis = prop_oneof![
        Just(DiscountBasis::BeforeDiscounts),
        Just(DiscountBasis::AfterDiscounts)
    ];
    let tax_basis = prop_oneof![
        Just(TaxBasis::AsPriced),
        Just(TaxBasis::IncludingTax),
        Just(TaxBasis::ExcludingTax)
    ];
    let window = (
        prop::option::of(-500_i64..=500),
        prop::option::of(-500_i64..=500),
    )
        .prop_map(|(start, end)| {
            let end = match (start, end) {
                (Some(s), Some(e)) if e <= s => Some(s + 1 + (s - e)),
                (_, e) => e,
            };
            Condition::Window {
                starts_at: start.map(|s| at(NOW + s)),
                ends_at: end.map(|e| at(NOW + e)),
            }
        });
    prop_oneof![
        3 => (selector(), 1_u32..=60)
            .prop_map(|(selector, quantity)| Condition::MinQuantity {
                selector,
                quantity,
                threshold: Threshold::AtLeast,
            }),
        5 => (selector(), amount(), discount_basis, tax_basis).prop_map(
            move |(selector, amount, discounts, tax)| Condition::MinSubtotal {
                selector,
                amount: Money::new(amount, currency),
                threshold: Threshold::AtLeast,
                discounts,
                tax,
            }
        ),
        2 => coupon_text().prop_map(|c| Condition::Coupon { code: CouponCode::parse(c).unwrap() }),
        1 => prop::sample::select(GROUPS)
            .prop_map(|g| Condition::CustomerGroup { group: CustomerGroup::parse(g).unwrap() }),
        1 => Just(Condition::FirstOrder),
        2 => window,
    ]
}

fn action(currency: Currency) -> impl Strategy<Value = Action> {
    let order = prop_oneof![
        Just(DiscountOrder::CheapestFirst),
        Just(DiscountOrder::MostExpensiveFirst)
    ];
    let per = prop_oneof![Just(AmountPer::Unit), Just(AmountPer::Selection)];
    prop_oneof![
        3 => (selector(), percent())
            .prop_map(|(selector, percent)| Action::PercentOffItems { selector, percent }),
        3 => (selector(), amount(), per).prop_map(move |(selector, amount, per)| {
            Action::AmountOffItems { selector, amount: Money::new(amount, currency), per }
        }),
        2 => percent().prop_map(|percent| Action::PercentOffCart { percent }),
        2 => amount()
            .prop_map(move |amount| Action::AmountOffCart { amount: Money::new(amount, currency) }),
        3 => (selector(), 1_u32..=4, selector(), 1_u32..=3, percent(), any::<bool>(), order)
            .prop_map(|(buy, buy_quantity, get, get_quantity, percent, repeat, order)| {
                Action::BuyXGetY { buy, buy_quantity, get, get_quantity, percent, repeat, order }
            }),
        1 => Just(Action::FreeShipping),
    ]
}

fn promotion(currency: Currency) -> impl Strategy<Value = (PromotionSpec, Option<PromotionUsage>)> {
    let foreign = if currency == Currency::USD {
        Currency::EUR
    } else {
        Currency::USD
    };
    prop_oneof![15 => Just(currency), 1 => Just(foreign)].prop_flat_map(|currency| {
        (
            (
                -3_i32..=3,
                prop::bool::weighted(0.1),
                prop::collection::vec(condition(currency), 0..=3),
                action(currency),
                prop::option::weighted(0.3, amount()),
            ),
            (
                prop::option::weighted(0.2, 1_u32..=4),
                prop::option::weighted(0.2, 1_u32..=3),
                prop::option::weighted(0.4, (0_u32..=5, 0_u32..=4)),
            ),
        )
            .prop_map(
                move |(
                    (priority, exclusive, conditions, action, cap),
                    (usage_limit, per_customer_limit, usage),
                )| {
                    let spec = PromotionSpec {
                        id: PromotionId::parse("unset").unwrap(),
                        name: "A promotion".into(),
                        priority,
                        exclusive,
                        group: None,
                        conditions,
                        action,
                        cap: cap.map(|c| Money::new(c, currency)),
                        max_units_per_line: None,
                        usage_limit,
                        per_customer_limit,
                    };
                    let usage =
                        usage.map(|(total, by_customer)| PromotionUsage { total, by_customer });
                    (spec, usage)
                },
            )
    })
}

fn customer() -> impl Strategy<Value = CustomerContext> {
    (
        prop::option::of(Just("cust-1")),
        prop::sample::subsequence(GROUPS.to_vec(), 0..=GROUPS.len()),
        any::<bool>(),
    )
        .prop_map(|(id, groups, first_order)| CustomerContext {
            id: id.map(|id| CustomerId::parse(id).unwrap()),
            groups: groups
                .into_iter()
                .map(|g| CustomerGroup::parse(g).unwrap())
                .collect(),
            first_order,
        })
}

fn input() -> impl Strategy<Value = PricingInput> {
    (
        region_and_currency(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
    )
        .prop_flat_map(|((region, currency), extreme, unknown_tax)| {
            (
                (
                    lines(region, currency, extreme, unknown_tax),
                    prop::collection::vec(
                        (
                            prop::sample::select(vec!['a', 'm', 'z']),
                            promotion(currency),
                        ),
                        0..30,
                    ),
                    prop::collection::vec(coupon_text(), 0..=3),
                    customer(),
                    prop::option::of(prop_oneof![Just(0_i64), 1_i64..=2_000]),
                ),
                (
                    rounding_mode(),
                    prop_oneof![
                        Just(RoundingLevel::PerLine),
                        Just(RoundingLevel::PerInvoice)
                    ],
                    rounding_mode(),
                ),
            )
                .prop_map(
                    move |(
                        (lines, promotions, codes, customer, shipping),
                        (tax_mode, tax_level, discount_mode),
                    )| {
                        // The baseline knows the settings that existed
                        // before issue 12; the others stay at their defaults.
                        let mut tax = region.config();
                        tax.rounding = Rounding {
                            tax_mode,
                            tax_level,
                            discount_mode,
                            ..Rounding::default()
                        };
                        let mut input = PricingInput::new(currency, tax, at(NOW));
                        input.lines = lines;
                        for (i, (letter, (mut spec, usage))) in promotions.into_iter().enumerate() {
                            spec.id = PromotionId::parse(format!("{letter}-{i}")).unwrap();
                            spec.name = format!("Promotion {}", spec.id);
                            if let Some(usage) = usage {
                                input.usage.insert(spec.id.clone(), usage);
                            }
                            input.promotions.push(Promotion::new(spec).unwrap());
                        }
                        input.codes = codes
                            .into_iter()
                            .map(|c| CouponCode::parse(c).unwrap())
                            .collect();
                        input.customer = customer;
                        input.shipping = shipping.map(|s| Money::new(s, currency));
                        input
                    },
                )
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_new_engine_prices_exactly_as_the_old(input in input()) {
        let old = format!("{:?}", baseline::price(&input));
        let new = format!("{:?}", price(&input));
        prop_assert_eq!(old, new);
    }
}

/// The benchmark fixtures, and a cart of 300 lines (more than the new
/// engine keeps inline in a bit set) under the benchmark promotions.
#[test]
fn the_fixtures_and_a_large_cart_price_exactly_as_before() {
    use commerce_benches::{Region as FixtureRegion, cart};
    for region in [FixtureRegion::Germany, FixtureRegion::Australia] {
        for with_promotions in [true, false] {
            let mut input = cart(region, with_promotions).unwrap();
            assert_eq!(
                format!("{:?}", baseline::price(&input)),
                format!("{:?}", price(&input))
            );
            let more: Vec<PricingLine> = (0..6)
                .flat_map(|copy| {
                    input.lines.iter().map(move |line| {
                        let mut line = line.clone();
                        line.sku = Sku::parse(format!("{}-{copy}", line.sku)).unwrap();
                        line
                    })
                })
                .collect();
            input.lines = more;
            assert_eq!(input.lines.len(), 300);
            let new = price(&input);
            assert!(new.is_ok());
            assert_eq!(format!("{:?}", baseline::price(&input)), format!("{new:?}"));
        }
    }
}
