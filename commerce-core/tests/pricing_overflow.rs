//! Pricing at extreme amounts: unit prices near `i64::MAX` minor units,
//! quantities up to [`Quantity::MAX`], many lines, percentage and fixed
//! promotions with extreme amounts and caps, tax (inclusive and exclusive,
//! per line and per invoice) and shipping.
//!
//! The property: [`price`] never panics and never wraps. It either returns
//! `Ok` with every identity of a priced cart holding exactly, or refuses with
//! the typed overflow error, `Error::Money(MoneyError::Overflow)`; and a cart
//! whose amounts are far from the limit is never refused.
//!
//! Run it in both profiles, so that a debug build's overflow checks and a
//! release build's wrapping are both exercised:
//!
//! ```text
//! cargo test -p commerce-core --test pricing_overflow
//! cargo test -p commerce-core --release --test pricing_overflow
//! PROPTEST_CASES=200000 cargo test -p commerce-core --release --test pricing_overflow
//! ```
//!
//! Identities are checked in `i128`, so the checks cannot overflow
//! themselves. Failure persistence is off; the failing input is printed.

// clippy.toml allows these in `#[test]` fns only; the strategies and checkers here are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-only strategies and checkers: a panic is a failing test"
)]

use std::collections::{BTreeMap, HashMap};

use commerce_core::pricing::{PricedCart, PricingInput, PricingLine, PromotionOutcome, price};
use commerce_core::promotion::{
    Action, AmountPer, Condition, DiscountBasis, DiscountOrder, Promotion, PromotionSpec, Selector,
    TaxBasis, Threshold,
};
use commerce_core::rounding::{DiscountLevel, Leftover, LineOrder, Split, SplitWeights};
use commerce_core::tax::{
    PriceBasis, Rounding, RoundingLevel, RoundingMode, ShippingTax, TaxConfig,
};
use commerce_core::{
    Category, Clock, Currency, Error, ManualClock, Money, MoneyError, ProductId, PromotionId,
    Quantity, Sku, TaxCategory,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rust_decimal::Decimal;

const CATEGORIES: &[&str] = &["wine", "food", "tools"];

/// The number of cases: `PROPTEST_CASES` if set, else 2,000.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn product(n: u128) -> ProductId {
    ProductId::from_uuid(uuid::Uuid::from_u128(n))
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// A non-negative amount of minor units, with the edges over-represented:
/// `i64::MAX` and its neighbours, `i64::MAX / k` (so that a quantity or a
/// few lines reach the limit), powers of two, and ordinary prices.
fn extreme_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(i64::MAX),
        2 => (0_i64..=1_000).prop_map(|k| i64::MAX - k),
        3 => (1_i64..=2_000_000).prop_map(|k| i64::MAX / k),
        2 => (40_u32..=62).prop_map(|p| 1_i64 << p),
        2 => 0_i64..=i64::MAX,
        2 => 0_i64..=100_000,
    ]
}

/// A quantity: one, small, or up to [`Quantity::MAX`].
fn quantity() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => Just(1_u32),
        3 => 1_u32..=20,
        2 => 1_u32..=Quantity::MAX,
        1 => Just(Quantity::MAX),
    ]
}

fn percent() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        3 => (1_u32..=100).prop_map(Decimal::from),
        2 => (1_i64..=10_000).prop_map(|n| Decimal::new(n, 2)),
        1 => Just(Decimal::ONE_HUNDRED),
    ]
}

fn selector() -> impl Strategy<Value = Selector> {
    prop_oneof![
        2 => Just(Selector::All),
        2 => prop::sample::select(CATEGORIES)
            .prop_map(|c| Selector::Category { category: Category::parse(c).unwrap() }),
        1 => (0_usize..12).prop_map(|i| Selector::Sku { sku: Sku::parse(format!("SKU-{i}")).unwrap() }),
        1 => (1_u128..=3).prop_map(|p| Selector::Product { product: product(p) }),
    ]
}

fn condition(currency: Currency) -> impl Strategy<Value = Condition> {
    let discounts = prop_oneof![
        Just(DiscountBasis::BeforeDiscounts),
        Just(DiscountBasis::AfterDiscounts)
    ];
    let tax = prop_oneof![
        Just(TaxBasis::AsPriced),
        Just(TaxBasis::IncludingTax),
        Just(TaxBasis::ExcludingTax)
    ];
    prop_oneof![
        (
            selector(),
            prop_oneof![1_u32..=30, Just(u32::MAX)],
            threshold()
        )
            .prop_map(|(selector, quantity, threshold)| Condition::MinQuantity {
                selector,
                quantity,
                threshold
            }),
        (
            selector(),
            extreme_amount().prop_map(|a| a.max(1)),
            discounts,
            tax,
            threshold()
        )
            .prop_map(move |(selector, amount, discounts, tax, threshold)| {
                Condition::MinSubtotal {
                    selector,
                    amount: Money::new(amount, currency),
                    threshold,
                    discounts,
                    tax,
                }
            }),
    ]
}

fn action(currency: Currency) -> impl Strategy<Value = Action> {
    let per = prop_oneof![Just(AmountPer::Unit), Just(AmountPer::Selection)];
    let order = prop_oneof![
        Just(DiscountOrder::CheapestFirst),
        Just(DiscountOrder::MostExpensiveFirst)
    ];
    let amount = move || extreme_amount().prop_map(move |a| Money::new(a.max(1), currency));
    prop_oneof![
        3 => (selector(), percent())
            .prop_map(|(selector, percent)| Action::PercentOffItems { selector, percent }),
        3 => percent().prop_map(|percent| Action::PercentOffCart { percent }),
        3 => (selector(), amount(), per)
            .prop_map(|(selector, amount, per)| Action::AmountOffItems { selector, amount, per }),
        2 => amount().prop_map(|amount| Action::AmountOffCart { amount }),
        2 => (selector(), 1_u32..=3, selector(), 1_u32..=3, percent(), any::<bool>(), order)
            .prop_map(|(buy, buy_quantity, get, get_quantity, percent, repeat, order)| {
                Action::BuyXGetY { buy, buy_quantity, get, get_quantity, percent, repeat, order }
            }),
        1 => Just(Action::FreeShipping),
    ]
}

fn promotions(currency: Currency) -> impl Strategy<Value = Vec<Promotion>> {
    prop::collection::vec(
        (
            -2_i32..=2,
            prop::bool::weighted(0.1),
            prop::collection::vec(condition(currency), 0..=1),
            action(currency),
            prop::option::weighted(0.3, extreme_amount().prop_map(|a| a.max(1))),
        ),
        0..=5,
    )
    .prop_map(move |specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (priority, exclusive, conditions, action, cap))| {
                Promotion::new(PromotionSpec {
                    id: PromotionId::parse(format!("p-{i}")).unwrap(),
                    name: format!("Promotion {i}"),
                    priority,
                    exclusive,
                    group: None,
                    conditions,
                    action,
                    cap: cap.map(|c| Money::new(c, currency)),
                    max_units_per_line: None,
                    usage_limit: None,
                    per_customer_limit: None,
                })
                .expect("a valid promotion")
            })
            .collect()
    })
}

fn tax_config() -> impl Strategy<Value = TaxConfig> {
    let region = prop_oneof![
        Just(TaxConfig::australia_gst()),
        Just(TaxConfig::us_sales_tax("WA", Decimal::new(65, 1))),
        Just(TaxConfig::eu_vat("DE", Decimal::from(19), Decimal::from(7))),
        Just(TaxConfig::untaxed()),
        // A steep exclusive rate, so that adding tax overflows more often.
        Just(TaxConfig::us_sales_tax("XX", Decimal::new(9999, 2))),
    ];
    let mode = || prop::sample::select(RoundingMode::ALL.to_vec());
    let level = prop_oneof![
        Just(RoundingLevel::PerLine),
        Just(RoundingLevel::PerUnit),
        Just(RoundingLevel::PerInvoice)
    ];
    let split = (
        prop::sample::select(vec![
            SplitWeights::AsPriced,
            SplitWeights::Net,
            SplitWeights::Gross,
        ]),
        prop::sample::select(vec![
            Leftover::LargestRemainder,
            Leftover::FirstLines,
            Leftover::LastLine,
        ]),
        prop::sample::select(vec![LineOrder::Sku, LineOrder::Cart]),
    )
        .prop_map(|(weights, leftover, order)| Split {
            weights,
            leftover,
            order,
        });
    let discount_level =
        prop::sample::select(vec![DiscountLevel::PerPromotion, DiscountLevel::PerLine]);
    let shipping = prop::sample::select(vec![None, Some(ShippingTax::Apportioned)]);
    (
        region,
        (mode(), level, mode(), discount_level, split),
        shipping,
    )
        .prop_map(
            |(mut tax, (tax_mode, tax_level, discount_mode, discount_level, split), shipping)| {
                tax.rounding = Rounding {
                    tax_mode,
                    tax_level,
                    discount_mode,
                    discount_level,
                    split,
                };
                if let Some(shipping) = shipping {
                    tax.shipping = shipping;
                }
                tax
            },
        )
}

fn input() -> impl Strategy<Value = PricingInput> {
    let currency = Currency::USD;
    (
        prop::collection::vec(
            (
                0_usize..CATEGORIES.len(),
                1_u128..=3,
                0_usize..4,
                extreme_amount(),
                quantity(),
            ),
            1..=12,
        ),
        // Whether line amounts are scaled to fit (the subtotal is then at
        // most `i64::MAX`, often close to it, and shipping, tax or nothing
        // may take it over).
        prop::bool::weighted(0.6),
        promotions(currency),
        prop::option::of(extreme_amount()),
        tax_config(),
    )
        .prop_map(move |(lines, fit, promotions, shipping, tax)| {
            let count = i64::try_from(lines.len()).unwrap();
            // Each line is in one of the tax categories the rules know.
            let tax_categories: Vec<TaxCategory> = tax.rates.keys().cloned().collect();
            let mut input = PricingInput::new(currency, tax, ManualClock::at_unix(0).now());
            input.lines = lines
                .into_iter()
                .enumerate()
                .map(|(i, (category, prod, tax, price, quantity))| PricingLine {
                    sku: Sku::parse(format!("SKU-{i}")).unwrap(),
                    product: product(prod),
                    name: format!("Item {i}"),
                    options: BTreeMap::new(),
                    category: Category::parse(CATEGORIES[category]).unwrap(),
                    tax_category: tax_categories
                        .get(tax % tax_categories.len().max(1))
                        .cloned()
                        .unwrap_or_else(|| TaxCategory::parse("standard").unwrap()),
                    age_restricted: false,
                    unit_price: Money::new(
                        if fit {
                            price.min(i64::MAX / count / i64::from(quantity))
                        } else {
                            price
                        },
                        currency,
                    ),
                    quantity: Quantity::new(quantity).unwrap(),
                })
                .collect();
            input.promotions = promotions;
            input.shipping = shipping.map(|s| Money::new(s, currency));
            input
        })
}

// ---------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------

fn wide(m: Money) -> i128 {
    i128::from(m.minor())
}

fn wide_sum<'a>(amounts: impl IntoIterator<Item = &'a Money>) -> i128 {
    amounts.into_iter().map(|m| wide(*m)).sum()
}

/// Every identity a priced cart promises, computed in `i128`.
fn check_identities(input: &PricingInput, priced: &PricedCart) -> Result<(), TestCaseError> {
    let exclusive = input.tax.prices == PriceBasis::TaxExclusive;
    let t = &priced.totals;
    prop_assert_eq!(priced.lines.len(), input.lines.len());
    for (line, given) in priced.lines.iter().zip(&input.lines) {
        prop_assert_eq!(&line.sku, &given.sku);
        prop_assert_eq!(
            wide(line.subtotal),
            wide(given.unit_price) * i128::from(given.quantity.get()),
            "{}: subtotal = unit price × quantity",
            &line.sku
        );
        prop_assert_eq!(
            wide(line.discount_total),
            wide_sum(line.discounts.iter().map(|d| &d.amount)),
            "{}: discount total = Σ discounts",
            &line.sku
        );
        prop_assert_eq!(
            wide(line.discounted),
            wide(line.subtotal) - wide(line.discount_total),
            "{}: discounted = subtotal − discounts",
            &line.sku
        );
        let tax = wide(line.tax.amount);
        let expected_total = wide(line.discounted) + if exclusive { tax } else { 0 };
        prop_assert_eq!(wide(line.total), expected_total, "{}: total", &line.sku);
        prop_assert!(
            line.discounted.minor() >= 0,
            "{}: discounted < 0",
            &line.sku
        );
        prop_assert!(tax >= 0, "{}: tax < 0", &line.sku);
        prop_assert!(
            tax <= wide(line.discounted).max(0) || exclusive,
            "{}: included tax above the amount",
            &line.sku
        );
        for d in &line.discounts {
            prop_assert!(
                d.amount.minor() > 0,
                "{}: a discount of {}",
                &line.sku,
                d.amount
            );
        }
    }
    let shipping = priced.shipping.as_ref();
    prop_assert_eq!(shipping.map(|s| s.amount), input.shipping);
    let (shipping_amount, shipping_discount, shipping_tax, shipping_total) =
        shipping.map_or((0, 0, 0, 0), |s| {
            (
                wide(s.amount),
                wide(s.discount_total),
                s.tax.as_ref().map_or(0, |t| wide(t.amount)),
                wide(s.total),
            )
        });
    if let Some(s) = shipping {
        prop_assert_eq!(
            wide(s.discount_total),
            wide_sum(s.discounts.iter().map(|d| &d.amount))
        );
        prop_assert_eq!(wide(s.discounted), wide(s.amount) - wide(s.discount_total));
        prop_assert!(s.discounted.minor() >= 0);
        prop_assert_eq!(
            shipping_total,
            wide(s.discounted) + if exclusive { shipping_tax } else { 0 }
        );
    }

    // The cart's totals are the sums of their parts.
    prop_assert_eq!(
        wide(t.subtotal),
        wide_sum(priced.lines.iter().map(|l| &l.subtotal)),
        "subtotal = Σ line subtotals"
    );
    prop_assert_eq!(
        wide(t.discount_total),
        wide_sum(priced.lines.iter().map(|l| &l.discount_total)) + shipping_discount,
        "discount total = Σ line discounts + shipping discount"
    );
    prop_assert_eq!(wide(t.shipping), shipping_amount);
    prop_assert_eq!(
        wide(t.tax_total),
        wide_sum(priced.lines.iter().map(|l| &l.tax.amount)) + shipping_tax,
        "tax total = Σ line taxes + shipping tax"
    );
    prop_assert_eq!(
        wide(t.tax_total),
        wide_sum(priced.taxes.iter().map(|r| &r.tax)),
        "tax total = Σ taxes by rate"
    );
    prop_assert_eq!(
        wide(t.grand_total),
        wide(t.subtotal) - wide(t.discount_total)
            + wide(t.shipping)
            + if exclusive { wide(t.tax_total) } else { 0 },
        "grand total = subtotal − discounts + shipping (+ tax)"
    );
    prop_assert_eq!(
        wide(t.grand_total),
        wide_sum(priced.lines.iter().map(|l| &l.total)) + shipping_total,
        "grand total = Σ line totals + shipping total"
    );
    prop_assert!(t.grand_total.minor() >= 0);

    // Each promotion's discount is allocated exactly over its parts, and
    // never beyond its cap.
    let mut parts: HashMap<&PromotionId, i128> = HashMap::new();
    for d in priced
        .lines
        .iter()
        .flat_map(|l| &l.discounts)
        .chain(shipping.into_iter().flat_map(|s| &s.discounts))
    {
        *parts.entry(&d.promotion).or_default() += wide(d.amount);
    }
    let caps: HashMap<&PromotionId, Option<Money>> =
        input.promotions.iter().map(|p| (p.id(), p.cap())).collect();
    for report in &priced.promotions {
        let given = parts.get(&report.promotion).copied().unwrap_or(0);
        match &report.outcome {
            PromotionOutcome::Applied { discount } => {
                prop_assert_eq!(
                    wide(*discount),
                    given,
                    "{}: reported = Σ parts",
                    &report.promotion
                );
                if let Some(Some(cap)) = caps.get(&report.promotion) {
                    prop_assert!(
                        discount.minor() <= cap.minor(),
                        "{} over its cap",
                        &report.promotion
                    );
                }
            }
            _ => prop_assert_eq!(given, 0, "{} did not apply but gave", &report.promotion),
        }
    }
    Ok(())
}

/// Whether every amount of `input` is far enough from the limit that
/// pricing must succeed: the undiscounted subtotal plus shipping, with
/// tax added at under 100%, is below `i64::MAX`.
fn comfortably_small(input: &PricingInput) -> bool {
    let subtotal: i128 = input
        .lines
        .iter()
        .map(|l| wide(l.unit_price) * i128::from(l.quantity.get()))
        .sum();
    let shipping = input.shipping.map_or(0, wide);
    (subtotal + shipping) * 2 < i128::from(i64::MAX)
}

fn check(input: &PricingInput) -> Result<(), TestCaseError> {
    match price(input) {
        Ok(priced) => check_identities(input, &priced),
        Err(Error::Money(MoneyError::Overflow)) => {
            prop_assert!(
                !comfortably_small(input),
                "a cart far from the limit was refused as an overflow"
            );
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "expected Ok or Error::Money(MoneyError::Overflow), got {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Pricing at extreme amounts is `Ok` with every identity, or the typed
    /// overflow error; never a panic, never a wrapped sum.
    #[test]
    fn extreme_amounts_price_exactly_or_overflow(input in input()) {
        check(&input)?;
    }
}

/// A count of outcomes over a fixed seed, so that a generator change that
/// stops reaching either outcome is noticed.
#[test]
fn generator_reaches_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = input();
    let (mut ok, mut overflow) = (0, 0);
    for _ in 0..500 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        match price(&input) {
            Ok(_) => ok += 1,
            Err(Error::Money(MoneyError::Overflow)) => overflow += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    println!("of 500 generated carts, {ok} priced and {overflow} overflowed");
    assert!(ok >= 50, "only {ok} of 500 priced");
    assert!(overflow >= 50, "only {overflow} of 500 overflowed");
}

fn line(sku: &str, minor: i64, quantity: u32) -> PricingLine {
    PricingLine {
        sku: Sku::parse(sku).unwrap(),
        product: product(1),
        name: sku.into(),
        options: BTreeMap::new(),
        category: Category::parse("tools").unwrap(),
        tax_category: TaxCategory::parse("standard").unwrap(),
        age_restricted: false,
        unit_price: Money::new(minor, Currency::USD),
        quantity: Quantity::new(quantity).unwrap(),
    }
}

/// Examples at the edge, each with the outcome it must have.
#[test]
fn examples_at_the_limit() {
    let overflows =
        |input: &PricingInput| matches!(price(input), Err(Error::Money(MoneyError::Overflow)));
    let now = ManualClock::at_unix(0).now();
    let mut input = PricingInput::new(Currency::USD, TaxConfig::untaxed(), now);

    // One line at the limit prices exactly; a second unit or line, or
    // shipping on top, does not fit.
    input.lines = vec![line("A", i64::MAX, 1)];
    let priced = price(&input).unwrap();
    assert_eq!(priced.totals.grand_total.minor(), i64::MAX);
    check(&input).unwrap();
    input.lines = vec![line("A", i64::MAX, 2)];
    assert!(overflows(&input));
    input.lines = vec![
        line("A", i64::MAX / 2 + 1, 1),
        line("B", i64::MAX / 2 + 1, 1),
    ];
    assert!(overflows(&input), "the subtotal does not fit");
    input.lines = vec![line("A", i64::MAX, 1)];
    input.shipping = Some(Money::new(1, Currency::USD));
    assert!(overflows(&input), "subtotal plus shipping does not fit");

    // Added tax that takes the total past the limit is the same error
    // (not a tax error).
    let mut taxed = PricingInput::new(
        Currency::USD,
        TaxConfig::us_sales_tax("WA", Decimal::new(65, 1)),
        now,
    );
    taxed.lines = vec![line("A", i64::MAX, 1)];
    assert!(overflows(&taxed));
    taxed.lines = vec![line("A", i64::MAX / 2, 1)];
    check(&taxed).unwrap();

    // A fixed amount per unit far past the limit takes what the line has.
    let mut promoted = PricingInput::new(Currency::USD, TaxConfig::untaxed(), now);
    promoted.lines = vec![line("A", 10, Quantity::MAX)];
    promoted.promotions = vec![
        Promotion::new(PromotionSpec {
            id: PromotionId::parse("all-off").unwrap(),
            name: "All off".into(),
            priority: 0,
            exclusive: false,
            group: None,
            conditions: vec![],
            action: Action::AmountOffItems {
                selector: Selector::All,
                amount: Money::new(i64::MAX, Currency::USD),
                per: AmountPer::Unit,
            },
            cap: None,
            max_units_per_line: None,
            usage_limit: None,
            per_customer_limit: None,
        })
        .unwrap(),
    ];
    let priced = price(&promoted).unwrap();
    assert_eq!(priced.totals.grand_total.minor(), 0);
    check(&promoted).unwrap();
}

/// Either comparison of a quantity or subtotal condition.
fn threshold() -> impl Strategy<Value = Threshold> {
    prop_oneof![Just(Threshold::AtLeast), Just(Threshold::MoreThan)]
}
