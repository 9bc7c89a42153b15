//! Rounding and splitting: the one place a shop's conventions for cents
//! are configured ([`Rounding`], kept in [`TaxConfig::rounding`](crate::tax::TaxConfig::rounding)).
//!
//! Every convention an established platform or a tax authority uses is a
//! setting here, and the defaults are the engine's own:
//!
//! | Setting | Choices (default first) |
//! |---|---|
//! | [`tax_mode`](Rounding::tax_mode), [`discount_mode`](Rounding::discount_mode) | [`RoundingMode`]: half-up, half-even, half toward +∞, down, up |
//! | [`tax_level`](Rounding::tax_level) | [`RoundingLevel`]: per line, per unit, per invoice (and rate) |
//! | [`discount_level`](Rounding::discount_level) | [`DiscountLevel`]: per promotion, per line |
//! | [`split.weights`](Split::weights) | [`SplitWeights`]: as priced, net, gross |
//! | [`split.leftover`](Split::leftover) | [`Leftover`]: largest remainder, first lines, last line |
//! | [`split.order`](Split::order) | [`LineOrder`]: SKU, cart |
//!
//! The regional presets ([`TaxConfig::australia_gst`](crate::tax::TaxConfig::australia_gst),
//! [`us_sales_tax`](crate::tax::TaxConfig::us_sales_tax),
//! [`eu_vat`](crate::tax::TaxConfig::eu_vat)) state every one of them.
//!
//! A worked example of the discount level: 10% off three lines of 1.05
//! each. Per promotion, 10% of 3.15 is 0.315, rounded half-up once to 0.32
//! and split 0.11 + 0.11 + 0.10. Per line, each line's 0.105 rounds to
//! 0.11: 0.33 in all.
//!
//! ```
//! use commerce_core::pricing::{price, PricingInput, PricingLine};
//! use commerce_core::promotion::{Action, Promotion, PromotionSpec};
//! use commerce_core::rounding::DiscountLevel;
//! use commerce_core::tax::TaxConfig;
//! use commerce_core::*;
//!
//! let discount = |level| -> Result<i64, Box<dyn std::error::Error>> {
//!     let mut tax = TaxConfig::untaxed();
//!     tax.rounding.discount_level = level;
//!     let mut input = PricingInput::new(Currency::USD, tax, ManualClock::at_unix(0).now());
//!     for sku in ["A", "B", "C"] {
//!         input.lines.push(PricingLine {
//!             sku: Sku::parse(sku)?,
//!             product: ProductId::new(),
//!             name: sku.into(),
//!             options: Default::default(),
//!             category: Category::parse("any")?,
//!             tax_category: TaxCategory::parse("standard")?,
//!             age_restricted: false,
//!             unit_price: Money::new(105, Currency::USD),
//!             quantity: Quantity::new(1)?,
//!         });
//!     }
//!     input.promotions.push(Promotion::new(PromotionSpec {
//!         id: PromotionId::parse("ten")?,
//!         name: "10% off".into(),
//!         priority: 0,
//!         exclusive: false,
//!         group: None,
//!         conditions: vec![],
//!         action: Action::PercentOffCart { percent: Decimal::TEN },
//!         cap: None,
//!         max_units_per_line: None,
//!         usage_limit: None,
//!         per_customer_limit: None,
//!     })?);
//!     Ok(price(&input)?.totals.discount_total.minor())
//! };
//! assert_eq!(discount(DiscountLevel::PerPromotion)?, 32);
//! assert_eq!(discount(DiscountLevel::PerLine)?, 33);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! And where the cents of a split go: A$3.00 off a cart of lines added in
//! the order 43.00, 14.00, 23.00. Exact shares are 161.25, 52.50 and 86.25.
//! The largest remainder gives the cent left over to the 52.50; "first
//! lines" in cart order rounds each share to the nearest cent (halves down)
//! and gives it to the first line, as Sylius does; "last line" gives it to
//! the line added last.
//!
//! ```
//! use commerce_core::pricing::{price, PricingInput, PricingLine};
//! use commerce_core::promotion::{Action, Promotion, PromotionSpec};
//! use commerce_core::rounding::{Leftover, LineOrder, Split};
//! use commerce_core::tax::TaxConfig;
//! use commerce_core::*;
//!
//! let split = |leftover, order| -> Result<Vec<i64>, Box<dyn std::error::Error>> {
//!     let mut tax = TaxConfig::untaxed();
//!     tax.rounding.split = Split { leftover, order, ..Split::default() };
//!     let aud = |minor| Money::new(minor, Currency::AUD);
//!     let mut input = PricingInput::new(Currency::AUD, tax, ManualClock::at_unix(0).now());
//!     for (sku, price) in [("Z", 4_300), ("M", 1_400), ("A", 2_300)] {
//!         input = input.with_line(PricingLine::new(Sku::parse(sku)?, aud(price), Quantity::new(1)?));
//!     }
//!     let three_off = PromotionSpec {
//!         id: PromotionId::parse("three-off")?,
//!         name: "A$3 off".into(),
//!         priority: 0,
//!         exclusive: false,
//!         group: None,
//!         conditions: vec![],
//!         action: Action::AmountOffCart { amount: aud(300) },
//!         cap: None,
//!         max_units_per_line: None,
//!         usage_limit: None,
//!         per_customer_limit: None,
//!     };
//!     let priced = price(&input.with_promotion(Promotion::new(three_off)?))?;
//!     Ok(priced.lines.iter().map(|l| l.discount_total.minor()).collect())
//! };
//! assert_eq!(split(Leftover::LargestRemainder, LineOrder::Sku)?, [161, 53, 86]);
//! assert_eq!(split(Leftover::FirstLines, LineOrder::Cart)?, [162, 52, 86]);
//! assert_eq!(split(Leftover::LastLine, LineOrder::Cart)?, [161, 52, 87]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::MoneyError;

/// How an exact amount is rounded to the minor unit.
///
/// "Down" and "up" are toward and away from zero, as in Java's
/// `RoundingMode`; the amounts pricing rounds (discounts, taxes) are never
/// negative, so for them down is the floor and up the ceiling.
///
/// ```
/// use commerce_core::rounding::RoundingMode;
/// use commerce_core::Decimal;
///
/// let round = |mode: RoundingMode, s: &str| mode.round(s.parse::<Decimal>().unwrap());
/// assert_eq!(round(RoundingMode::HalfUp, "2.5"), Decimal::from(3));
/// assert_eq!(round(RoundingMode::HalfEven, "2.5"), Decimal::from(2));
/// assert_eq!(round(RoundingMode::HalfTowardPositiveInfinity, "-2.5"), Decimal::from(-2));
/// assert_eq!(round(RoundingMode::HalfUp, "-2.5"), Decimal::from(-3));
/// assert_eq!(round(RoundingMode::Down, "2.99"), Decimal::from(2));
/// assert_eq!(round(RoundingMode::Up, "2.01"), Decimal::from(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Halves round away from zero (0.5 → 1, 2.5 → 3, −2.5 → −3).
    #[default]
    HalfUp,
    /// Halves round to the even neighbour (0.5 → 0, 2.5 → 2): banker's rounding.
    HalfEven,
    /// Halves round toward positive infinity (2.5 → 3, −2.5 → −2), as
    /// JavaScript's `Math.round` does.
    HalfTowardPositiveInfinity,
    /// Toward zero: the fraction is dropped (2.99 → 2).
    Down,
    /// Away from zero: any fraction makes a whole unit (2.01 → 3).
    Up,
}

impl RoundingMode {
    /// Every mode, for tests and settings screens.
    pub const ALL: [RoundingMode; 5] = [
        RoundingMode::HalfUp,
        RoundingMode::HalfEven,
        RoundingMode::HalfTowardPositiveInfinity,
        RoundingMode::Down,
        RoundingMode::Up,
    ];

    /// Rounds `exact` minor units to a whole number of minor units.
    pub fn round(self, exact: Decimal) -> Decimal {
        let strategy = match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::HalfTowardPositiveInfinity if exact.is_sign_negative() => {
                RoundingStrategy::MidpointTowardZero
            }
            RoundingMode::HalfTowardPositiveInfinity => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::Down => RoundingStrategy::ToZero,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
        };
        exact.round_dp_with_strategy(0, strategy)
    }

    /// Rounds `exact` minor units to an `i64`, or an overflow error.
    pub fn to_minor(self, exact: Decimal) -> Result<i64, MoneyError> {
        self.round(exact).to_i64().ok_or(MoneyError::Overflow)
    }

    /// Rounds the exact ratio `numerator / denominator` (not negative, the
    /// denominator positive) to a whole number, in integers; `None` when
    /// they are not so.
    pub(crate) fn round_ratio(self, numerator: i128, denominator: i128) -> Option<i128> {
        if numerator < 0 || denominator <= 0 {
            return None;
        }
        // 64-bit division where both fit (every real amount and rate): the
        // 128-bit one is several times slower.
        let (quotient, remainder) = match (u64::try_from(numerator), u64::try_from(denominator)) {
            (Ok(n), Ok(d)) => (i128::from(n.checked_div(d)?), i128::from(n.checked_rem(d)?)),
            _ => (
                numerator.checked_div(denominator)?,
                numerator.checked_rem(denominator)?,
            ),
        };
        let twice = remainder.checked_mul(2)?;
        let up = match self {
            RoundingMode::HalfUp | RoundingMode::HalfTowardPositiveInfinity => twice >= denominator,
            RoundingMode::HalfEven => {
                twice > denominator || (twice == denominator && quotient % 2 == 1)
            }
            RoundingMode::Down => false,
            RoundingMode::Up => remainder > 0,
        };
        if up {
            quotient.checked_add(1)
        } else {
            Some(quotient)
        }
    }
}

/// Where tax is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoundingLevel {
    /// Each line's tax is rounded on its own.
    #[default]
    PerLine,
    /// The tax of one unit is rounded and multiplied by the quantity. A
    /// line's (discounted) amount is shared out over its units as evenly as
    /// cents allow (`amount ÷ quantity` each, the remainder one more cent
    /// each on as many units), so the units sum to the line.
    PerUnit,
    /// The tax of each rate is rounded once over the whole invoice and
    /// allocated back to the lines (by the [`Split`] settings' leftover
    /// rule and order, weighted by the taxed amounts).
    PerInvoice,
}

/// Where a percentage discount is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiscountLevel {
    /// The percentage of the lines it applies to is taken of their total,
    /// rounded once, and split over them: the promotion's discount is
    /// within half a cent of the exact one.
    #[default]
    PerPromotion,
    /// Each line's discount is the percentage of that line, rounded on its
    /// own; the promotion's discount is their sum.
    PerLine,
}

/// The weights a cart-level discount is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SplitWeights {
    /// The lines' amounts as priced (with tax when prices include it).
    #[default]
    AsPriced,
    /// The lines' amounts without tax (to the nearest minor unit).
    Net,
    /// The lines' amounts with tax (to the nearest minor unit).
    Gross,
}

/// Where the minor units a split leaves over go.
///
/// Every line's exact share is rarely a whole number of minor units; the
/// split still sums exactly to the amount, by one of:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Leftover {
    /// Every share rounded down, then the units left over one each to the
    /// lines whose shares lost the largest fractions (Hamilton's method):
    /// no line is more than one unit from its exact share. Ties in the
    /// [`LineOrder`].
    #[default]
    LargestRemainder,
    /// Every share rounded to the nearest unit (halves down), then the
    /// difference from the amount, a unit more or less each, to the first
    /// lines in the [`LineOrder`]: Sylius's and CoreShop's
    /// `ProportionalIntegerDistributor`.
    FirstLines,
    /// Every share but the last rounded down, and the last line in the
    /// [`LineOrder`] takes the rest (the line before it what it cannot).
    LastLine,
}

/// The order of lines a split breaks ties in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineOrder {
    /// By SKU, the default: the same lines give the same cents whatever
    /// order the buyer added them in, so a cart re-priced after a line was
    /// removed and added back does not move a cent between lines.
    #[default]
    Sku,
    /// By position in the cart (the order lines were added), as platforms
    /// that keep a line sequence do.
    Cart,
}

/// How an amount is split over lines: a cart-level discount, a cap, the
/// tax of an invoice rounded once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Split {
    /// The weights of a discount split (a tax split is weighted by the
    /// taxed amounts).
    #[serde(default)]
    pub weights: SplitWeights,
    /// Where the leftover units go.
    #[serde(default)]
    pub leftover: Leftover,
    /// The order ties and leftovers follow.
    #[serde(default)]
    pub order: LineOrder,
}

/// The one place a shop's rounding is configured: how discounts and taxes
/// round, where, and how amounts are split over lines.
///
/// Settings stored before the discount and split settings existed (with
/// only `mode` and `level`, the tax's) read with those at their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rounding {
    /// How taxes round.
    #[serde(default, alias = "mode")]
    pub tax_mode: RoundingMode,
    /// Where taxes round.
    #[serde(default, alias = "level")]
    pub tax_level: RoundingLevel,
    /// How percentage discounts round.
    #[serde(default)]
    pub discount_mode: RoundingMode,
    /// Where percentage discounts round.
    #[serde(default)]
    pub discount_level: DiscountLevel,
    /// How amounts are split over lines.
    #[serde(default)]
    pub split: Split,
}

impl Rounding {
    /// Taxes rounded half-up at `tax_level`, and every other setting stated
    /// at the engine's default: discounts half-up once per promotion, split
    /// as priced by largest remainder in SKU order. The regional presets are
    /// built from it.
    pub const fn half_up(tax_level: RoundingLevel) -> Self {
        Self {
            tax_mode: RoundingMode::HalfUp,
            tax_level,
            discount_mode: RoundingMode::HalfUp,
            discount_level: DiscountLevel::PerPromotion,
            split: Split {
                weights: SplitWeights::AsPriced,
                leftover: Leftover::LargestRemainder,
                order: LineOrder::Sku,
            },
        }
    }
}

impl Split {
    /// Whether this is the default split (as priced, largest remainder, SKU
    /// order), which the engine computes with integer weights alone.
    pub(crate) fn is_default(self) -> bool {
        self == Split::default()
    }
}

/// Splits `total` minor units, given each part's floor and a remainder that
/// orders the parts by how much they lost to it, by `leftover`: the units
/// `total` has over the floors go one each (or, for the last line, all)
/// to the parts in turn, no part above its `cap` unless every part is.
/// `rank` is each part's place in the [`LineOrder`]; `above_half` says
/// whether a remainder is more than half a unit.
pub(crate) fn distribute<R: Ord>(
    total: i64,
    floors: &mut [i64],
    remainders: &[R],
    caps: &[i64],
    rank: &[usize],
    leftover: Leftover,
    above_half: impl Fn(&R) -> bool,
) -> Result<(), MoneyError> {
    let rank_of = |i: usize| rank.get(i).copied().unwrap_or(i);
    if leftover == Leftover::FirstLines {
        return nearest_then_first(total, floors, remainders, caps, rank_of, above_half);
    }
    let given = floors.iter().try_fold(0_i64, |sum, part| {
        sum.checked_add(*part).ok_or(MoneyError::Overflow)
    })?;
    let mut left = total.checked_sub(given).ok_or(MoneyError::Overflow)?;
    if left <= 0 || floors.is_empty() {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..floors.len()).collect();
    match leftover {
        Leftover::LargestRemainder => order.sort_by(|&a, &b| {
            remainders
                .get(b)
                .cmp(&remainders.get(a))
                .then(rank_of(a).cmp(&rank_of(b)))
        }),
        Leftover::FirstLines => order.sort_by_key(|&i| rank_of(i)),
        Leftover::LastLine => order.sort_by_key(|&i| std::cmp::Reverse(rank_of(i))),
    }
    let room = |floors: &[i64], i: usize| {
        caps.get(i)
            .zip(floors.get(i))
            .map_or(0, |(cap, part)| cap.saturating_sub(*part).max(0))
    };
    // One pass within the caps (each takes one, or as many as fit for the
    // last line), then what is still left to the first in order.
    for &i in &order {
        if left == 0 {
            break;
        }
        let take = match leftover {
            Leftover::LastLine => room(floors, i).min(left),
            _ => room(floors, i).min(1),
        };
        if let Some(part) = floors.get_mut(i) {
            *part = part.checked_add(take).ok_or(MoneyError::Overflow)?;
            left = left.checked_sub(take).ok_or(MoneyError::Overflow)?;
        }
    }
    if left > 0
        && let Some(part) = order.first().and_then(|&i| floors.get_mut(i))
    {
        *part = part.checked_add(left).ok_or(MoneyError::Overflow)?;
    }
    Ok(())
}

/// [`Leftover::FirstLines`]: each part its share rounded to the nearest
/// unit (halves down), then the difference from `total` one unit each to
/// (or from) the first parts in order that can take (or give) it.
fn nearest_then_first<R>(
    total: i64,
    parts: &mut [i64],
    remainders: &[R],
    caps: &[i64],
    rank_of: impl Fn(usize) -> usize,
    above_half: impl Fn(&R) -> bool,
) -> Result<(), MoneyError> {
    for (part, remainder) in parts.iter_mut().zip(remainders) {
        if above_half(remainder) {
            *part = part.checked_add(1).ok_or(MoneyError::Overflow)?;
        }
    }
    let given = parts.iter().try_fold(0_i64, |sum, part| {
        sum.checked_add(*part).ok_or(MoneyError::Overflow)
    })?;
    let mut difference = total.checked_sub(given).ok_or(MoneyError::Overflow)?;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| rank_of(i));
    // Round after round (one usually does), a unit each.
    while difference != 0 {
        let before = difference;
        for &i in &order {
            if difference == 0 {
                break;
            }
            let cap = caps.get(i).copied().unwrap_or(i64::MAX);
            let Some(part) = parts.get_mut(i) else {
                continue;
            };
            if difference > 0 && *part < cap {
                *part = part.checked_add(1).ok_or(MoneyError::Overflow)?;
                difference = difference.checked_sub(1).ok_or(MoneyError::Overflow)?;
            } else if difference < 0 && *part > 0 {
                *part = part.checked_sub(1).ok_or(MoneyError::Overflow)?;
                difference = difference.checked_add(1).ok_or(MoneyError::Overflow)?;
            }
        }
        if difference == before {
            // No part can move within its bounds: the first takes it.
            if let Some(part) = order.first().and_then(|&i| parts.get_mut(i)) {
                *part = part.checked_add(difference).ok_or(MoneyError::Overflow)?;
            }
            break;
        }
    }
    Ok(())
}

/// Splits `total` (not negative) over integer `weights` (not all zero) by
/// `leftover` in the order `rank`, no part above its `cap` when they allow
/// (their sum is at least `total`): a part whose share is above its cap
/// takes the cap, and the rest is split again over the others.
pub(crate) fn split_weighted(
    total: i64,
    weights: &[u64],
    caps: &[i64],
    rank: &[usize],
    leftover: Leftover,
) -> Result<Vec<i64>, MoneyError> {
    let mut parts = vec![0_i64; weights.len()];
    let mut active: Vec<usize> = (0..weights.len()).collect();
    let mut left = total;
    let pick = |from: &[usize], of: &[i64]| -> Vec<i64> {
        from.iter()
            .map(|&i| of.get(i).copied().unwrap_or(i64::MAX))
            .collect()
    };
    loop {
        let active_weights: Vec<u64> = active
            .iter()
            .map(|&i| weights.get(i).copied().unwrap_or(0))
            .collect();
        let active_ranks: Vec<usize> = active
            .iter()
            .map(|&i| rank.get(i).copied().unwrap_or(i))
            .collect();
        let active_caps = pick(&active, caps);
        let shares = split_once(left, &active_weights, &active_caps, &active_ranks, leftover)?;
        let over: Vec<usize> = shares
            .iter()
            .zip(&active_caps)
            .enumerate()
            .filter(|(_, (share, cap))| share > cap)
            .map(|(k, _)| k)
            .collect();
        if over.is_empty() || over.len() == active.len() {
            for (&i, share) in active.iter().zip(shares) {
                if let Some(part) = parts.get_mut(i) {
                    *part = share;
                }
            }
            return Ok(parts);
        }
        for &k in &over {
            let (Some(&i), Some(&cap)) = (active.get(k), active_caps.get(k)) else {
                continue;
            };
            if let Some(part) = parts.get_mut(i) {
                *part = cap;
            }
            left = left.checked_sub(cap).ok_or(MoneyError::Overflow)?;
        }
        let mut k = 0;
        active.retain(|_| {
            let keep = !over.contains(&k);
            k = k.saturating_add(1);
            keep
        });
        if active
            .iter()
            .all(|&i| weights.get(i).copied().unwrap_or(0) == 0)
        {
            // What is left has nothing to weigh by: the lines with room
            // take it in order (the callers' caps always leave room).
            let mut order = active.clone();
            order.sort_by_key(|&i| rank.get(i).copied().unwrap_or(i));
            for i in order {
                let room = caps.get(i).copied().unwrap_or(i64::MAX).max(0);
                let take = room.min(left);
                if let Some(part) = parts.get_mut(i) {
                    *part = take;
                }
                left = left.saturating_sub(take);
            }
            return Ok(parts);
        }
    }
}

/// One round of [`split_weighted`]: shares rounded down, leftovers by
/// `leftover`.
fn split_once(
    total: i64,
    weights: &[u64],
    caps: &[i64],
    rank: &[usize],
    leftover: Leftover,
) -> Result<Vec<i64>, MoneyError> {
    let sum = weights.iter().try_fold(0_u128, |sum, &w| {
        sum.checked_add(u128::from(w)).ok_or(MoneyError::Overflow)
    })?;
    if sum == 0 {
        return Err(MoneyError::NoWeights);
    }
    let magnitude = u128::from(total.max(0).unsigned_abs());
    let mut floors = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for &weight in weights {
        // magnitude and weight are below 2^64: the product fits in a u128.
        let exact = magnitude
            .checked_mul(u128::from(weight))
            .ok_or(MoneyError::Overflow)?;
        let floor = exact.checked_div(sum).ok_or(MoneyError::Overflow)?;
        floors.push(i64::try_from(floor).map_err(|_| MoneyError::Overflow)?);
        remainders.push(exact.checked_rem(sum).ok_or(MoneyError::Overflow)?);
    }
    // A remainder r of `sum` is above half a unit when 2r > sum.
    distribute(
        total,
        &mut floors,
        &remainders,
        caps,
        rank,
        leftover,
        |r: &u128| r.checked_mul(2).is_none_or(|twice| twice > sum),
    )?;
    Ok(floors)
}

/// Splits `total` over exact (decimal, not negative) `shares` by `leftover`
/// in the order `rank`, no part above its `cap` when they allow.
pub(crate) fn split_exact(
    total: i64,
    shares: &[Decimal],
    caps: &[i64],
    rank: &[usize],
    leftover: Leftover,
) -> Result<Vec<i64>, MoneyError> {
    let mut floors = Vec::with_capacity(shares.len());
    let mut remainders = Vec::with_capacity(shares.len());
    for share in shares {
        let floor = share.floor();
        floors.push(floor.to_i64().ok_or(MoneyError::Overflow)?);
        remainders.push(share.checked_sub(floor).ok_or(MoneyError::Overflow)?);
    }
    let half = Decimal::new(5, 1);
    distribute(
        total,
        &mut floors,
        &remainders,
        caps,
        rank,
        leftover,
        |r: &Decimal| *r > half,
    )?;
    Ok(floors)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failing test")]

    use super::*;

    #[test]
    fn leftovers_go_where_the_setting_says() {
        // 100 over three equal weights: 33 each, one left over.
        let caps = [i64::MAX; 3];
        let split = |leftover, rank: &[usize]| {
            split_weighted(100, &[1, 1, 1], &caps, rank, leftover).unwrap()
        };
        assert_eq!(split(Leftover::LargestRemainder, &[0, 1, 2]), [34, 33, 33]);
        assert_eq!(split(Leftover::LargestRemainder, &[2, 1, 0]), [33, 33, 34]);
        assert_eq!(split(Leftover::FirstLines, &[1, 0, 2]), [33, 34, 33]);
        // Sylius's own case (ProportionalIntegerDistributorSpec,
        // "it distributes an integer based on elements participation in
        // total even if it can be divided easily"): 300 over 4300, 1400,
        // 2300 is [162, 52, 86]. Exact shares 161.25, 52.5, 86.25 round
        // (halves down) to 161, 52, 86; the unit missing goes to the first.
        let sylius = |leftover| {
            split_weighted(
                300,
                &[4300, 1400, 2300],
                &[i64::MAX; 3],
                &[0, 1, 2],
                leftover,
            )
            .unwrap()
        };
        assert_eq!(sylius(Leftover::FirstLines), [162, 52, 86]);
        // The largest remainder gives it to the 0.5 instead.
        assert_eq!(sylius(Leftover::LargestRemainder), [161, 53, 86]);
        // And 299 (the spec's -299 case, negated): exact 160.71, 52.33,
        // 85.96 round to 161, 52, 86, which already sum to 299.
        let parts = split_weighted(
            299,
            &[4300, 1400, 2300],
            &[i64::MAX; 3],
            &[0, 1, 2],
            Leftover::FirstLines,
        );
        assert_eq!(parts.unwrap(), [161, 52, 86]);
        assert_eq!(split(Leftover::LastLine, &[0, 1, 2]), [33, 33, 34]);
        // 10 over weights 1, 1, 1, 1, 6, 6: exact shares 0.625 (four
        // times) and 3.75 (twice), floors 0, 0, 0, 0, 3, 3, four units left.
        // They go to the largest remainders (the two 0.75s, then the first
        // two 0.625s), to the first four lines, or all to the last.
        let w = [1, 1, 1, 1, 6, 6];
        let caps = [i64::MAX; 6];
        let rank = [0, 1, 2, 3, 4, 5];
        let s = |leftover| split_weighted(10, &w, &caps, &rank, leftover).unwrap();
        assert_eq!(s(Leftover::LargestRemainder), [1, 1, 0, 0, 4, 4]);
        // Nearest: 1, 1, 1, 1, 4, 4 = 12, two too many, one each from the
        // first two.
        assert_eq!(s(Leftover::FirstLines), [0, 0, 1, 1, 4, 4]);
        assert_eq!(s(Leftover::LastLine), [0, 0, 0, 0, 3, 7]);
    }

    #[test]
    fn the_last_line_spills_to_the_line_before_when_it_cannot_take_the_rest() {
        // 7 over weights 5, 2, 1 (caps the same): floors 4, 1, 0, two left;
        // the last line can take one more, the line before the other.
        let parts = split_weighted(7, &[5, 2, 1], &[5, 2, 1], &[0, 1, 2], Leftover::LastLine);
        assert_eq!(parts.unwrap(), [4, 2, 1]);
    }

    #[test]
    fn a_share_above_its_cap_takes_the_cap_and_the_rest_is_split_again() {
        // 90 by weights 1, 1, 1 would be 30 each; the first may take 10, so
        // the other two split the remaining 80.
        let parts = split_weighted(
            90,
            &[1, 1, 1],
            &[10, 100, 100],
            &[0, 1, 2],
            Leftover::LargestRemainder,
        );
        assert_eq!(parts.unwrap(), [10, 40, 40]);
    }

    #[test]
    fn the_default_split_is_the_largest_remainder_method_in_sku_order() {
        let weights = [7_u64, 3, 3, 9, 1];
        let rank = [0, 1, 2, 3, 4];
        for total in 0..200 {
            let ours = split_weighted(total, &weights, &[i64::MAX; 5], &rank, Leftover::default())
                .unwrap();
            assert_eq!(ours, crate::money::allocate_minor(total, &weights).unwrap());
        }
    }

    #[test]
    fn rounding_a_ratio_agrees_with_rounding_the_decimal() {
        for mode in RoundingMode::ALL {
            for numerator in 0..200_i128 {
                for denominator in [1_i128, 2, 3, 7, 10, 107, 119] {
                    let decimal = Decimal::from_i128_with_scale(numerator, 0)
                        / Decimal::from_i128_with_scale(denominator, 0);
                    assert_eq!(
                        mode.round_ratio(numerator, denominator),
                        mode.round(decimal).to_i128(),
                        "{mode:?} {numerator}/{denominator}"
                    );
                }
            }
        }
    }

    #[test]
    fn stored_rounding_with_only_the_tax_settings_reads_with_the_defaults() {
        let old: Rounding =
            serde_json::from_str(r#"{"mode":"half_even","level":"per_invoice"}"#).unwrap();
        assert_eq!(old.tax_mode, RoundingMode::HalfEven);
        assert_eq!(old.tax_level, RoundingLevel::PerInvoice);
        assert_eq!(old.discount_mode, RoundingMode::HalfUp);
        assert_eq!(old.discount_level, DiscountLevel::PerPromotion);
        assert_eq!(old.split, Split::default());
    }
}
