//! Money: integer minor units with an ISO 4217 currency that knows its exponent.
//!
//! There are no floats here. Arithmetic is checked: an overflow or a mix of
//! currencies is an [`MoneyError`], never a wrap or a panic. [`Money::allocate`]
//! splits an amount over weights so that the parts always sum to the whole.

#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An error from money arithmetic or parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// The result does not fit in `i64` minor units.
    #[error("amount overflow")]
    Overflow,
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// The currency of the left operand (or the expected currency).
        left: Currency,
        /// The currency of the right operand (or the one found).
        right: Currency,
    },
    /// The currency code is not one this library knows.
    #[error("unknown currency code {0:?}")]
    UnknownCurrency(String),
    /// An allocation was asked for with no weights or only zero weights.
    #[error("allocation needs at least one non-zero weight")]
    NoWeights,
    /// A decimal amount could not be parsed for the currency.
    #[error("invalid amount {input:?} for {currency}: {reason}")]
    InvalidAmount {
        /// The text given.
        input: String,
        /// The currency it was parsed for.
        currency: Currency,
        /// What is wrong with it.
        reason: &'static str,
    },
}

macro_rules! currencies {
    ($($(#[$doc:meta])* $code:ident = $exp:literal),* $(,)?) => {
        /// An ISO 4217 currency with its minor-unit exponent.
        ///
        /// Serialized as its three-letter code (`"AUD"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Currency {
            $($(#[$doc])* $code,)*
        }

        impl Currency {
            /// Every currency this library knows, in code order.
            pub const ALL: &'static [Currency] = &[$(Currency::$code,)*];

            /// The three-letter ISO 4217 code.
            pub const fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code),)* }
            }

            /// The number of decimal places of the minor unit (2 for AUD, 0 for JPY, 3 for KWD).
            pub const fn exponent(self) -> u32 {
                match self { $(Currency::$code => $exp,)* }
            }
        }

        impl FromStr for Currency {
            type Err = MoneyError;

            /// Parses a three-letter code, case-insensitively.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case(stringify!($code)) { return Ok(Currency::$code); })*
                Err(MoneyError::UnknownCurrency(s.to_owned()))
            }
        }
    };
}

currencies! {
    /// Australian dollar.
    AUD = 2,
    /// Bahraini dinar.
    BHD = 3,
    /// Canadian dollar.
    CAD = 2,
    /// Swiss franc.
    CHF = 2,
    /// Danish krone.
    DKK = 2,
    /// Euro.
    EUR = 2,
    /// Pound sterling.
    GBP = 2,
    /// Japanese yen.
    JPY = 0,
    /// South Korean won.
    KRW = 0,
    /// Kuwaiti dinar.
    KWD = 3,
    /// Norwegian krone.
    NOK = 2,
    /// New Zealand dollar.
    NZD = 2,
    /// Swedish krona.
    SEK = 2,
    /// Singapore dollar.
    SGD = 2,
    /// United States dollar.
    USD = 2,
}

impl Currency {
    /// `10^exponent`: the number of minor units in one major unit.
    pub const fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some("An ISO 4217 currency code."))
            .enum_values(Some(Currency::ALL.iter().map(|c| c.code())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Currency {}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money: `i64` minor units (cents, yen, fils) in one [`Currency`].
///
/// Fields are private; every operation that can overflow or mix currencies
/// returns a `Result`. There is deliberately no `Add` implementation.
///
/// Serialized for JSON APIs as `{"amount": 1234, "currency": "AUD"}`, where
/// `amount` is in minor units.
///
/// ```
/// use commerce_core::{Currency, Money};
/// let price = Money::new(1999, Currency::AUD);
/// let line = price.checked_mul(3)?;
/// assert_eq!(line.to_string(), "AUD 59.97");
/// let parts = line.allocate(&[1, 1, 1])?;
/// assert_eq!(parts.iter().map(|m| m.minor()).sum::<i64>(), 5997);
/// # Ok::<(), commerce_core::MoneyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    amount: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor` units of `currency`.
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self {
            amount: minor,
            currency,
        }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Parses a decimal amount in major units, such as `"12.34"` for AUD or
    /// `"1.250"` for KWD. More decimal places than the currency has is an
    /// error, never a rounding.
    pub fn from_decimal_str(input: &str, currency: Currency) -> Result<Self, MoneyError> {
        let invalid = |reason| MoneyError::InvalidAmount {
            input: input.to_owned(),
            currency,
            reason,
        };
        let s = input.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (major, minor) = match digits.split_once('.') {
            Some((major, minor)) => (major, minor),
            None => (digits, ""),
        };
        if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("expected digits before the decimal point"));
        }
        if !minor.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("expected digits after the decimal point"));
        }
        let exponent = usize::try_from(currency.exponent()).unwrap_or(usize::MAX);
        let Some(padding) = exponent.checked_sub(minor.len()) else {
            return Err(invalid("more decimal places than the currency has"));
        };
        // Accumulate the magnitude in i128 so that i64::MIN's magnitude fits.
        let largest = i128::from(i64::MIN).unsigned_abs();
        let mut magnitude: u128 = 0;
        let padded = minor.bytes().chain(std::iter::repeat_n(b'0', padding));
        for b in major.bytes().chain(padded) {
            // Every byte is an ASCII digit (checked above).
            let digit = b.checked_sub(b'0').map(u128::from);
            magnitude = magnitude
                .checked_mul(10)
                .zip(digit)
                .and_then(|(a, d)| a.checked_add(d))
                .filter(|a| *a <= largest)
                .ok_or(MoneyError::Overflow)?;
        }
        let magnitude = i128::try_from(magnitude).map_err(|_| MoneyError::Overflow)?;
        let signed = if negative {
            magnitude.checked_neg().ok_or(MoneyError::Overflow)?
        } else {
            magnitude
        };
        let amount = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
        Ok(Self::new(amount, currency))
    }

    /// The amount in minor units.
    pub const fn minor(self) -> i64 {
        self.amount
    }

    /// The currency.
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.amount == 0
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.amount < 0
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`, or an error on overflow or currency mismatch.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self - other`, or an error on overflow or currency mismatch.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self × factor` (a quantity), or an error on overflow.
    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(factor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `-self`, or an error for `i64::MIN`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// The sum of `amounts`, all in `currency`. An empty iterator sums to
    /// zero. The sum is exact whatever the order of the terms: only the final
    /// total must fit in `i64`, not every running total.
    pub fn sum<I>(currency: Currency, amounts: I) -> Result<Money, MoneyError>
    where
        I: IntoIterator<Item = Money>,
    {
        let mut total: i128 = 0;
        for amount in amounts {
            if amount.currency != currency {
                return Err(MoneyError::CurrencyMismatch {
                    left: currency,
                    right: amount.currency,
                });
            }
            total = total
                .checked_add(i128::from(amount.amount))
                .ok_or(MoneyError::Overflow)?;
        }
        let total = i64::try_from(total).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(total, currency))
    }

    /// Splits this amount over `weights` by the largest-remainder method.
    ///
    /// Part `i` is `amount × weights[i] / Σ weights`, rounded down in
    /// magnitude; the minor units left over go one each to the parts with the
    /// largest remainders, and among equal remainders to the earliest part.
    /// The parts always sum exactly to `self`, every part has the sign of
    /// `self`, and the result depends only on the inputs. A zero weight gets
    /// zero. No weights, or all-zero weights, is [`MoneyError::NoWeights`].
    pub fn allocate(self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        let parts = allocate_minor(self.amount, weights)?;
        Ok(parts
            .into_iter()
            .map(|minor| Money::new(minor, self.currency))
            .collect())
    }
}

/// The allocation behind [`Money::allocate`], on bare minor units.
pub fn allocate_minor(total: i64, weights: &[u64]) -> Result<Vec<i64>, MoneyError> {
    let mut parts = Vec::with_capacity(weights.len());
    allocate_minor_into(total, weights, &mut parts, &mut Vec::new())?;
    Ok(parts)
}

/// [`allocate_minor`] into `parts` (cleared first), with `scratch` for the
/// remainders, so that a caller allocating often can reuse both.
///
/// Each part is `⌊|total| × weight / Σ weights⌋`, computed in `u64` when the
/// product fits and in `u128` otherwise. The units left over go one each to
/// the largest remainders, ties to the earlier part: only parts with a
/// non-zero remainder can get one (the remainders sum to the units left
/// over times `Σ weights`, and each is below `Σ weights`), and those are
/// chosen by selection rather than by sorting every remainder.
pub(crate) fn allocate_minor_into(
    total: i64,
    weights: &[u64],
    parts: &mut Vec<i64>,
    scratch: &mut Vec<(u128, usize)>,
) -> Result<(), MoneyError> {
    parts.clear();
    scratch.clear();
    let weight_sum = weights.iter().try_fold(0_u128, |sum, &w| {
        sum.checked_add(u128::from(w)).ok_or(MoneyError::Overflow)
    })?;
    if weight_sum == 0 {
        return Err(MoneyError::NoWeights);
    }
    let magnitude = total.unsigned_abs();
    let small_sum = u64::try_from(weight_sum).ok();
    let mut given: u64 = 0;
    for (index, &weight) in weights.iter().enumerate() {
        // Each part is at most `magnitude`, so it fits in a `u64` (and in
        // an `i64` once signed, checked below).
        let (part, remainder) = match (small_sum, magnitude.checked_mul(weight)) {
            (Some(sum), Some(exact)) => {
                let part = exact.checked_div(sum).ok_or(MoneyError::Overflow)?;
                let remainder = exact.checked_rem(sum).ok_or(MoneyError::Overflow)?;
                (part, u128::from(remainder))
            }
            _ => {
                // magnitude < 2^64 and weight < 2^64, so the product fits
                // in u128, and weight_sum is not zero; checked all the same.
                let exact = u128::from(magnitude)
                    .checked_mul(u128::from(weight))
                    .ok_or(MoneyError::Overflow)?;
                let part = exact.checked_div(weight_sum).ok_or(MoneyError::Overflow)?;
                let remainder = exact.checked_rem(weight_sum).ok_or(MoneyError::Overflow)?;
                (
                    u64::try_from(part).map_err(|_| MoneyError::Overflow)?,
                    remainder,
                )
            }
        };
        given = given.checked_add(part).ok_or(MoneyError::Overflow)?;
        if remainder > 0 {
            scratch.push((remainder, index));
        }
        parts.push(signed(part, total)?);
    }
    // Each part is rounded down, so what was given is at most the magnitude,
    // and less by fewer units than there are non-zero remainders.
    let leftover = usize::try_from(magnitude.checked_sub(given).ok_or(MoneyError::Overflow)?)
        .unwrap_or(usize::MAX);
    if leftover == 0 {
        return Ok(());
    }
    // Largest remainder first; equal remainders go to the earlier index.
    if leftover < scratch.len() {
        match small_sum {
            // Remainders below 2^64 and indices pack into one key that
            // orders them so, smallest first: a cheaper comparison.
            Some(_) => {
                for entry in scratch.iter_mut() {
                    let remainder = u64::try_from(entry.0).unwrap_or(u64::MAX);
                    let key = u128::from(u64::MAX.saturating_sub(remainder)) << 64;
                    *entry = (key | entry.1 as u128, entry.1);
                }
                scratch.select_nth_unstable_by_key(leftover, |entry| entry.0);
            }
            None => {
                scratch.select_nth_unstable_by(leftover, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            }
        }
    }
    let unit = if total < 0 { -1 } else { 1 };
    for &(_, index) in scratch.iter().take(leftover) {
        if let Some(part) = parts.get_mut(index) {
            *part = part.checked_add(unit).ok_or(MoneyError::Overflow)?;
        }
    }
    Ok(())
}

/// `magnitude` with the sign of `total`, or an overflow error.
fn signed(magnitude: u64, total: i64) -> Result<i64, MoneyError> {
    let signed = i128::from(magnitude);
    let signed = if total < 0 {
        signed.checked_neg().ok_or(MoneyError::Overflow)?
    } else {
        signed
    };
    i64::try_from(signed).map_err(|_| MoneyError::Overflow)
}

impl fmt::Display for Money {
    /// `AUD 12.34`, `JPY 1200`, `KWD -1.250`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let sign = if self.amount < 0 { "-" } else { "" };
        let magnitude = self.amount.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{} {sign}{magnitude}", self.currency);
        }
        // The exponent is at most 3, so the scale is a small power of ten.
        let scale = 10_u64.checked_pow(exponent).unwrap_or(u64::MAX);
        write!(
            f,
            "{} {sign}{}.{:0width$}",
            self.currency,
            magnitude.checked_div(scale).unwrap_or_default(),
            magnitude.checked_rem(scale).unwrap_or(magnitude),
            width = usize::try_from(exponent).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents() {
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::AUD.exponent(), 2);
        assert_eq!(Currency::KWD.exponent(), 3);
        assert_eq!(Currency::KWD.minor_per_major(), 1000);
    }

    #[test]
    fn display() {
        assert_eq!(Money::new(1234, Currency::AUD).to_string(), "AUD 12.34");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "USD -0.05");
        assert_eq!(Money::new(1200, Currency::JPY).to_string(), "JPY 1200");
        assert_eq!(Money::new(1250, Currency::KWD).to_string(), "KWD 1.250");
        assert_eq!(
            Money::new(i64::MIN, Currency::EUR).to_string(),
            "EUR -92233720368547758.08"
        );
    }

    #[test]
    fn parse_decimal() {
        let p = |s, c| Money::from_decimal_str(s, c);
        assert_eq!(
            p("12.34", Currency::AUD),
            Ok(Money::new(1234, Currency::AUD))
        );
        assert_eq!(
            p("12.3", Currency::AUD),
            Ok(Money::new(1230, Currency::AUD))
        );
        assert_eq!(p("-1", Currency::KWD), Ok(Money::new(-1000, Currency::KWD)));
        assert_eq!(
            p("1200", Currency::JPY),
            Ok(Money::new(1200, Currency::JPY))
        );
        assert!(p("12.345", Currency::AUD).is_err());
        assert!(p("1.5", Currency::JPY).is_err());
        assert!(p("", Currency::AUD).is_err());
        assert!(p("1e3", Currency::AUD).is_err());
        assert_eq!(
            p("99999999999999999999", Currency::AUD),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            p("92233720368547758.08", Currency::AUD),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            p("-92233720368547758.08", Currency::AUD),
            Ok(Money::new(i64::MIN, Currency::AUD))
        );
        let long = "9".repeat(60);
        assert_eq!(p(&long, Currency::AUD), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money::new(i64::MAX, Currency::AUD);
        assert_eq!(
            max.checked_add(Money::new(1, Currency::AUD)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            Money::new(i64::MIN, Currency::AUD).checked_neg(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(1, Currency::AUD).checked_add(Money::new(1, Currency::NZD)),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::AUD,
                right: Currency::NZD
            })
        );
    }

    #[test]
    fn allocation_examples() {
        let alloc = |total, weights: &[u64]| allocate_minor(total, weights);
        assert_eq!(alloc(100, &[1, 1, 1]), Ok(vec![34, 33, 33]));
        assert_eq!(alloc(-100, &[1, 1, 1]), Ok(vec![-34, -33, -33]));
        assert_eq!(alloc(5, &[0, 3, 7]), Ok(vec![0, 2, 3]));
        assert_eq!(alloc(10, &[]), Err(MoneyError::NoWeights));
        assert_eq!(alloc(10, &[0, 0]), Err(MoneyError::NoWeights));
        assert_eq!(alloc(i64::MIN, &[1]), Ok(vec![i64::MIN]));
        assert_eq!(
            alloc(i64::MAX, &[u64::MAX, u64::MAX]).map(|v| v.iter().sum::<i64>()),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_string(&Money::new(1234, Currency::AUD)).unwrap_or_default();
        assert_eq!(json, r#"{"amount":1234,"currency":"AUD"}"#);
        let back: Result<Money, _> = serde_json::from_str(r#"{"amount":-5,"currency":"kwd"}"#);
        assert_eq!(back.ok(), Some(Money::new(-5, Currency::KWD)));
        assert!(serde_json::from_str::<Money>(r#"{"amount":1,"currency":"XXX"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount":1.5,"currency":"AUD"}"#).is_err());
    }
}
