//! Property tests of money.
//!
//! 1. Allocation: the parts of [`allocate_minor`] / [`Money::allocate`] sum
//!    exactly to the total, keep its sign, are deterministic, give zero
//!    weights nothing, and each is within one minor unit of the exact share.
//! 2. Money arithmetic never overflows silently and agrees with an `i128`
//!    model; `Display` round-trips through [`Money::from_decimal_str`].
//!
//! Random operation sequences checked against a model of the store are a
//! conformance scenario (`testkit/model.rs`), so that every store runs them.
//!
//! Failure persistence is off so that a failing run writes no
//! `proptest-regressions` file next to this one; the failing input is printed.

// clippy.toml allows this in `#[test]` functions only; the checking helpers
// below are test code too, and a panic there is a test failure.
#![allow(
    clippy::indexing_slicing,
    reason = "test-only helpers: a panic is a failing test"
)]

use commerce_core::money::allocate_minor;
use commerce_core::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Strategies for money
// ---------------------------------------------------------------------------

/// Any `i64`, with the edges and small values over-represented.
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        2 => -1_000_i64..=1_000,
        1 => Just(i64::MIN),
        1 => Just(i64::MIN + 1),
        1 => Just(i64::MAX),
        1 => Just(i64::MAX - 1),
        1 => Just(0_i64),
    ]
}

/// Any `u64` weight, with zero, small and huge values over-represented.
fn weight() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0_u64..=3,
        2 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(0_u64),
        1 => (1_u64 << 63)..=u64::MAX,
    ]
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::ALL)
}

fn money_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// 1. Allocation
// ---------------------------------------------------------------------------

/// Checks everything [`allocate_minor`] promises for `total` over `weights`
/// (which must hold a non-zero weight).
fn check_allocation(total: i64, weights: &[u64], parts: &[i64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(parts.len(), weights.len(), "one part per weight");

    let sum: i128 = parts.iter().copied().map(i128::from).sum();
    prop_assert_eq!(sum, i128::from(total), "parts must sum to the total");

    let weight_sum: u128 = weights.iter().copied().map(u128::from).sum();
    let magnitude = u128::from(total.unsigned_abs());
    for (index, (&part, &weight)) in parts.iter().zip(weights).enumerate() {
        if weight == 0 {
            prop_assert_eq!(part, 0, "zero weight at {} got {}", index, part);
        }
        prop_assert!(
            part == 0 || part.signum() == total.signum(),
            "part {} = {} has not the sign of {}",
            index,
            part,
            total
        );

        // |part·W − total·w| < W, checked exactly. part·W can reach about
        // 2^131, past i128, so split total·w = q·W + r with 0 ≤ r < W
        // (|total|·w < 2^127 fits u128). Both part and total·w have the sign
        // of total, so |part·W − total·w| = |(|part| − q)·W − r|, which is
        // below W iff |part| = q, or |part| = q + 1 and r > 0.
        let exact = magnitude * u128::from(weight);
        let q = exact / weight_sum;
        let r = exact % weight_sum;
        let p = u128::from(part.unsigned_abs());
        prop_assert!(
            p == q || (p == q + 1 && r > 0),
            "part {} = {} is not within 1 of {}·{}/{} (floor {}, remainder {})",
            index,
            part,
            total,
            weight,
            weight_sum,
            q,
            r
        );

        // When W fits in u64 the products fit in i128: check the same bound
        // directly as well.
        if let Ok(w_sum) = u64::try_from(weight_sum) {
            let w_sum = i128::from(w_sum);
            let lhs = i128::from(part) * w_sum;
            let rhs = i128::from(total) * i128::from(weight);
            let diff = lhs.checked_sub(rhs).map(i128::unsigned_abs);
            prop_assert!(
                diff.is_some_and(|d| d < weight_sum),
                "|{}·{} − {}·{}| is not below {}",
                part,
                weight_sum,
                total,
                weight,
                weight_sum
            );
        }
    }

    // The documented tie-break: among equal weights (equal remainders) the
    // earlier part gets the extra unit, so it is never smaller in magnitude.
    for i in 0..weights.len() {
        for j in i + 1..weights.len() {
            if weights[i] == weights[j] {
                let (a, b) = (parts[i].unsigned_abs(), parts[j].unsigned_abs());
                prop_assert!(
                    a == b || a == b + 1,
                    "equal weights at {} and {} got {} and {}",
                    i,
                    j,
                    parts[i],
                    parts[j]
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(money_config(1024))]

    #[test]
    fn allocation_is_exact_fair_and_deterministic(
        total in amount(),
        weights in prop::collection::vec(weight(), 1..=20)
            .prop_filter("needs a non-zero weight", |w| w.iter().any(|&x| x != 0)),
        currency in currency(),
    ) {
        let parts = allocate_minor(total, &weights);
        prop_assert!(parts.is_ok(), "allocate_minor({}, {:?}) = {:?}", total, weights, parts);
        let parts = parts.unwrap();
        check_allocation(total, &weights, &parts)?;

        prop_assert_eq!(allocate_minor(total, &weights), Ok(parts.clone()), "deterministic");

        let money = Money::new(total, currency).allocate(&weights);
        let expected: Vec<Money> = parts.iter().map(|&p| Money::new(p, currency)).collect();
        prop_assert_eq!(money, Ok(expected), "Money::allocate agrees with allocate_minor");
    }

    #[test]
    fn allocation_without_weights_is_refused(
        total in amount(),
        zeros in 0_usize..=20,
        currency in currency(),
    ) {
        let weights = vec![0_u64; zeros];
        prop_assert_eq!(allocate_minor(total, &weights), Err(MoneyError::NoWeights));
        prop_assert_eq!(
            Money::new(total, currency).allocate(&weights),
            Err(MoneyError::NoWeights)
        );
    }
}

// ---------------------------------------------------------------------------
// 2. Checked money arithmetic
// ---------------------------------------------------------------------------

/// What a checked operation must return given the exact `i128` result.
fn expect_fit(exact: i128, currency: Currency) -> Result<Money, MoneyError> {
    i64::try_from(exact)
        .map(|minor| Money::new(minor, currency))
        .map_err(|_| MoneyError::Overflow)
}

/// Checks `Money::sum(currency, items)` against an `i128` fold.
///
/// The exact total decides, whatever the running totals do: in range it is
/// the answer, out of range it is `Overflow`, and an amount in another
/// currency is `CurrencyMismatch` naming the first one.
fn check_sum(
    currency: Currency,
    items: &[Money],
    got: &Result<Money, MoneyError>,
) -> Result<(), TestCaseError> {
    let expected = match items.iter().find(|m| m.currency() != currency) {
        Some(foreign) => Err(MoneyError::CurrencyMismatch {
            left: currency,
            right: foreign.currency(),
        }),
        None => expect_fit(items.iter().map(|m| i128::from(m.minor())).sum(), currency),
    };
    prop_assert_eq!(got, &expected, "sum of {:?} in {}", items, currency);
    Ok(())
}

proptest! {
    #![proptest_config(money_config(1024))]

    #[test]
    fn checked_arithmetic_matches_i128(a in amount(), b in amount(), currency in currency()) {
        let (x, y) = (Money::new(a, currency), Money::new(b, currency));
        let (wa, wb) = (i128::from(a), i128::from(b));

        prop_assert_eq!(x.checked_add(y), expect_fit(wa + wb, currency), "{} + {}", a, b);
        prop_assert_eq!(x.checked_sub(y), expect_fit(wa - wb, currency), "{} - {}", a, b);
        prop_assert_eq!(x.checked_mul(b), expect_fit(wa * wb, currency), "{} * {}", a, b);
        prop_assert_eq!(x.checked_neg(), expect_fit(-wa, currency), "-{}", a);
        // Nothing above changes the currency or the operands.
        prop_assert_eq!((x.minor(), x.currency()), (a, currency));
    }

    #[test]
    fn mixing_currencies_is_refused(
        a in amount(),
        b in amount(),
        (left, right) in (currency(), currency()).prop_filter("distinct", |(l, r)| l != r),
    ) {
        let (x, y) = (Money::new(a, left), Money::new(b, right));
        let mismatch = Err(MoneyError::CurrencyMismatch { left, right });
        prop_assert_eq!(x.checked_add(y), mismatch.clone());
        prop_assert_eq!(x.checked_sub(y), mismatch);
    }

    #[test]
    fn sum_matches_an_i128_fold(
        currency in currency(),
        items in prop::collection::vec(
            (amount(), prop::option::weighted(0.05, currency())),
            0..8,
        ),
    ) {
        let items: Vec<Money> = items
            .into_iter()
            .map(|(minor, other)| Money::new(minor, other.unwrap_or(currency)))
            .collect();
        let got = Money::sum(currency, items.iter().copied());
        check_sum(currency, &items, &got)?;
        prop_assert_eq!(Money::sum(currency, items.iter().copied()), got, "deterministic");
    }

    /// `Display` is `"CODE amount"`; the amount parses back to the same money,
    /// `i64::MIN` included.
    #[test]
    fn display_round_trips_through_from_decimal_str(
        minor in amount(),
        currency in currency(),
    ) {
        let money = Money::new(minor, currency);
        let shown = money.to_string();
        let (code, decimal) = shown.split_once(' ').unwrap();
        prop_assert_eq!(code, currency.code());
        prop_assert_eq!(Money::from_decimal_str(decimal, currency), Ok(money), "{}", shown);
    }
}
