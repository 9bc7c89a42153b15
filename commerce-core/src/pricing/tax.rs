//! Tax rules: rates per tax category, tax-inclusive or tax-exclusive prices,
//! and rounding chosen by configuration.
//!
//! Tax is always computed on the discounted amount. How it is rounded is
//! data, never code:
//!
//! - [`RoundingMode`]: half-up (away from zero) or half-even (banker's).
//! - [`RoundingLevel::PerLine`]: each line's tax is rounded on its own; the
//!   invoice tax is their sum.
//! - [`RoundingLevel::PerInvoice`]: the exact tax of all lines at one rate is
//!   summed and rounded once, then allocated back to the lines (largest
//!   remainder, by their taxable amounts), so the lines still sum exactly to
//!   the invoice tax.
//!
//! For tax-inclusive prices (GST, VAT) the tax of an amount `g` at rate `r`
//! is the part of `g` it includes, `g × r / (1 + r)`; for tax-exclusive
//! prices (US sales tax) it is added, `n × r`.
//!
//! ```
//! use commerce_core::tax::{TaxConfig, TaxRequest, TaxableAmount};
//! use commerce_core::{Currency, Money, TaxCategory};
//!
//! // A$11.00 of a GST-inclusive item includes A$1.00 of GST.
//! let gst = TaxConfig::australia_gst();
//! let request = TaxRequest {
//!     currency: Currency::AUD,
//!     lines: vec![TaxableAmount::new(
//!         TaxCategory::parse("standard")?,
//!         Money::new(1100, Currency::AUD),
//!     )],
//!     shipping: None,
//! };
//! let result = gst.compute(&request)?;
//! assert_eq!(result.lines[0].amount, Money::new(100, Currency::AUD));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Rounding level matters. Two lines of US$0.10 at a 5% sales tax: per line,
//! each line's exact tax of 0.5¢ rounds half-up to 1¢, 2¢ in all; per
//! invoice, the exact total of 1¢ is rounded once and allocated back, 1¢ in
//! all (to the first line, the tie-break of the largest-remainder method).
//!
//! ```
//! use commerce_core::tax::{RoundingLevel, TaxConfig, TaxRequest, TaxableAmount};
//! use commerce_core::{Currency, Money, TaxCategory};
//! use rust_decimal::Decimal;
//!
//! let line = TaxableAmount::new(TaxCategory::parse("standard")?, Money::new(10, Currency::USD));
//! let request = TaxRequest { currency: Currency::USD, lines: vec![line.clone(), line], shipping: None };
//! let taxes = |level| -> Result<Vec<i64>, Box<dyn std::error::Error>> {
//!     let mut us = TaxConfig::us_sales_tax("XX", Decimal::from(5));
//!     us.rounding.level = level;
//!     Ok(us.compute(&request)?.lines.iter().map(|t| t.amount.minor()).collect())
//! };
//! assert_eq!(taxes(RoundingLevel::PerLine)?, vec![1, 1]);
//! assert_eq!(taxes(RoundingLevel::PerInvoice)?, vec![1, 0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every computation is checked: an amount that does not fit is
//! [`MoneyError::Overflow`], never a wrap or a panic.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::ids::{Sku, TaxCategory};
use crate::money::{Currency, Money, MoneyError, allocate_minor};

/// How an exact amount is rounded to the minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Halves round away from zero (0.5 → 1, 2.5 → 3).
    #[default]
    HalfUp,
    /// Halves round to the even neighbour (0.5 → 0, 2.5 → 2): banker's rounding.
    HalfEven,
}

impl RoundingMode {
    /// Rounds `exact` minor units to a whole number of minor units.
    pub fn round(self, exact: Decimal) -> Decimal {
        let strategy = match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
        };
        exact.round_dp_with_strategy(0, strategy)
    }

    /// Rounds `exact` minor units to an `i64`, or an overflow error.
    pub fn to_minor(self, exact: Decimal) -> Result<i64, MoneyError> {
        self.round(exact).to_i64().ok_or(MoneyError::Overflow)
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
    /// The tax of each rate is rounded once over the whole invoice and
    /// allocated back to the lines.
    PerInvoice,
}

/// The rounding policy of a tax configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rounding {
    /// How halves round.
    pub mode: RoundingMode,
    /// Where rounding happens.
    pub level: RoundingLevel,
}

/// Whether catalog prices include tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PriceBasis {
    /// Prices include tax (GST, VAT): the buyer pays the price; the tax is
    /// the part of it the rate implies.
    TaxInclusive,
    /// Prices exclude tax (US sales tax): tax is added on top.
    TaxExclusive,
}

/// How a rate treats what it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxTreatment {
    /// Taxed at the rate's percentage.
    Taxable,
    /// Taxable at 0% (GST-free food, zero-rated VAT): reported with the rate.
    ZeroRated,
    /// Outside the tax (exempt supplies): no tax, reported as exempt.
    Exempt,
}

/// One tax rate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxRate {
    /// The name on an invoice (`"GST"`, `"VAT 19%"`, `"WA sales tax"`).
    pub label: String,
    /// The rate in percent (`10` for 10%).
    pub percent: Decimal,
    /// Taxable, zero-rated or exempt.
    pub treatment: TaxTreatment,
}

impl TaxRate {
    /// A taxable rate of `percent`.
    pub fn taxable(label: impl Into<String>, percent: Decimal) -> Self {
        Self {
            label: label.into(),
            percent,
            treatment: TaxTreatment::Taxable,
        }
    }

    /// A zero rate.
    pub fn zero_rated(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            percent: Decimal::ZERO,
            treatment: TaxTreatment::ZeroRated,
        }
    }

    /// An exemption.
    pub fn exempt(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            percent: Decimal::ZERO,
            treatment: TaxTreatment::Exempt,
        }
    }

    /// The exact tax, in minor units, of `amount` minor units priced on `basis`.
    ///
    /// [`MoneyError::Overflow`] when it cannot be represented, which for a
    /// rate [`TaxConfig::validate`] accepts (below 100%) never happens.
    pub fn exact_tax(&self, amount: i64, basis: PriceBasis) -> Result<Decimal, MoneyError> {
        let amount = Decimal::from(amount);
        let divisor = match basis {
            PriceBasis::TaxExclusive => Some(Decimal::ONE_HUNDRED),
            PriceBasis::TaxInclusive => Decimal::ONE_HUNDRED.checked_add(self.percent),
        };
        amount
            .checked_mul(self.percent)
            .zip(divisor)
            .and_then(|(product, divisor)| product.checked_div(divisor))
            .ok_or(MoneyError::Overflow)
    }
}

/// Whether shipping is taxed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShippingTax {
    /// Shipping is not taxed.
    NotTaxable,
    /// Shipping is taxed at the rate of this tax category.
    Taxable {
        /// The category whose rate applies.
        category: TaxCategory,
    },
}

/// The tax rules of one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxConfig {
    /// A name for the region (`"AU"`, `"US-WA"`, `"DE"`).
    pub region: String,
    /// Whether prices include tax.
    pub prices: PriceBasis,
    /// The rate of each tax category.
    pub rates: BTreeMap<TaxCategory, TaxRate>,
    /// The rate of categories not in `rates`; `None` makes an unlisted
    /// category an error ([`TaxError::UnknownCategory`]).
    #[serde(default)]
    pub fallback: Option<TaxRate>,
    /// Whether and how shipping is taxed.
    pub shipping: ShippingTax,
    /// The rounding policy.
    pub rounding: Rounding,
}

/// A tax configuration or calculation that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaxError {
    /// A line's tax category has no rate.
    #[error("no tax rate for category {0}")]
    UnknownCategory(TaxCategory),
    /// A rate is outside `[0, 100)`, or a zero-rated or exempt rate is not 0.
    #[error("invalid tax rate {label:?}: {reason}")]
    InvalidRate {
        /// The rate's label.
        label: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An amount to tax is negative or in another currency.
    #[error("invalid taxable amount: {0}")]
    InvalidAmount(String),
    /// The arithmetic overflowed.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// An external tax service failed.
    #[error("tax service failed: {message}")]
    Service {
        /// What happened.
        message: String,
        /// Whether retrying may succeed.
        retryable: bool,
    },
}

/// One amount to tax: a line's discounted amount, or shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxableAmount {
    /// Its tax category.
    pub category: TaxCategory,
    /// The amount, as priced (including tax if prices are tax-inclusive).
    pub amount: Money,
    /// The line it is the amount of (`None` for shipping, and for an
    /// amount built without one), so a custom calculator can tell lines
    /// apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<LineRef>,
}

impl TaxableAmount {
    /// `amount` in `category`, of no particular line.
    pub fn new(category: TaxCategory, amount: Money) -> Self {
        Self {
            category,
            amount,
            line: None,
        }
    }

    /// The same amount, as the amount of `line`.
    #[must_use]
    pub fn of_line(mut self, line: LineRef) -> Self {
        self.line = Some(line);
        self
    }
}

/// Which line a [`TaxableAmount`] is the amount of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineRef {
    /// Its position in [`PricingInput::lines`](crate::pricing::PricingInput::lines),
    /// from 0: the cart's line order when a [`Shop`](crate::Shop) prices a
    /// cart.
    pub position: usize,
    /// Its SKU.
    pub sku: Sku,
}

/// What a tax calculator is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxRequest {
    /// The currency of every amount.
    pub currency: Currency,
    /// The lines, in SKU order (the order pricing works in, so that no
    /// answer depends on the order lines were added in), each naming its
    /// line ([`TaxableAmount::line`]).
    pub lines: Vec<TaxableAmount>,
    /// Shipping, when it is charged and taxable.
    pub shipping: Option<TaxableAmount>,
}

/// The tax of one amount.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineTax {
    /// The rate's label.
    pub label: String,
    /// The rate in percent.
    pub percent: Decimal,
    /// Taxable, zero-rated or exempt.
    pub treatment: TaxTreatment,
    /// The tax.
    pub amount: Money,
}

/// The tax of one rate over the whole invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxLine {
    /// The rate's label.
    pub label: String,
    /// The rate in percent.
    pub percent: Decimal,
    /// Taxable, zero-rated or exempt.
    pub treatment: TaxTreatment,
    /// The amounts taxed at this rate, as priced.
    pub taxable: Money,
    /// The tax: exactly the sum of the line taxes at this rate.
    pub tax: Money,
}

/// A tax calculation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxResult {
    /// The tax of each line, in request order.
    pub lines: Vec<LineTax>,
    /// The tax of shipping, when shipping was in the request.
    pub shipping: Option<LineTax>,
    /// The tax per rate, in order of first appearance.
    pub summary: Vec<TaxLine>,
}

impl TaxConfig {
    /// Australian GST: prices include 10% GST (`"standard"`); fresh food is
    /// GST-free (`"gst-free"`); shipping is taxed at the standard rate; tax is
    /// rounded half-up per line.
    pub fn australia_gst() -> Self {
        let mut rates = BTreeMap::new();
        rates.insert(category("standard"), TaxRate::taxable("GST", Decimal::TEN));
        rates.insert(category("gst-free"), TaxRate::zero_rated("GST-free"));
        Self {
            region: "AU".into(),
            prices: PriceBasis::TaxInclusive,
            rates,
            fallback: None,
            shipping: ShippingTax::Taxable {
                category: category("standard"),
            },
            rounding: Rounding {
                mode: RoundingMode::HalfUp,
                level: RoundingLevel::PerLine,
            },
        }
    }

    /// A US state sales tax: prices exclude tax; `"standard"` goods are taxed
    /// at `percent`, `"exempt"` goods are not; shipping is not taxed; tax is
    /// rounded half-up once per invoice.
    pub fn us_sales_tax(state: &str, percent: Decimal) -> Self {
        let mut rates = BTreeMap::new();
        rates.insert(
            category("standard"),
            TaxRate::taxable(format!("{state} sales tax"), percent),
        );
        rates.insert(category("exempt"), TaxRate::exempt("Exempt"));
        Self {
            region: format!("US-{state}"),
            prices: PriceBasis::TaxExclusive,
            rates,
            fallback: None,
            shipping: ShippingTax::NotTaxable,
            rounding: Rounding {
                mode: RoundingMode::HalfUp,
                level: RoundingLevel::PerInvoice,
            },
        }
    }

    /// EU VAT: prices include VAT; `"standard"` and `"reduced"` rates,
    /// `"zero-rated"` and `"exempt"` supplies; shipping at the standard rate;
    /// rounded half-up once per invoice and rate.
    pub fn eu_vat(country: &str, standard: Decimal, reduced: Decimal) -> Self {
        let mut rates = BTreeMap::new();
        rates.insert(
            category("standard"),
            TaxRate::taxable(format!("VAT {}%", standard.normalize()), standard),
        );
        rates.insert(
            category("reduced"),
            TaxRate::taxable(format!("VAT {}%", reduced.normalize()), reduced),
        );
        rates.insert(category("zero-rated"), TaxRate::zero_rated("VAT 0%"));
        rates.insert(category("exempt"), TaxRate::exempt("VAT exempt"));
        Self {
            region: country.into(),
            prices: PriceBasis::TaxInclusive,
            rates,
            fallback: None,
            shipping: ShippingTax::Taxable {
                category: category("standard"),
            },
            rounding: Rounding {
                mode: RoundingMode::HalfUp,
                level: RoundingLevel::PerInvoice,
            },
        }
    }

    /// No tax at all: every category is exempt, prices are what the buyer
    /// pays. The default for a shop whose tax rules are not configured.
    pub fn untaxed() -> Self {
        Self {
            region: "untaxed".into(),
            prices: PriceBasis::TaxExclusive,
            rates: BTreeMap::new(),
            fallback: Some(TaxRate::exempt("No tax")),
            shipping: ShippingTax::NotTaxable,
            rounding: Rounding::default(),
        }
    }

    /// The rate of `category`.
    pub fn rate(&self, category: &TaxCategory) -> Result<&TaxRate, TaxError> {
        self.rates
            .get(category)
            .or(self.fallback.as_ref())
            .ok_or_else(|| TaxError::UnknownCategory(category.clone()))
    }

    /// Checks every rate, and that the shipping category has one.
    pub fn validate(&self) -> Result<(), TaxError> {
        for rate in self.rates.values().chain(self.fallback.as_ref()) {
            let invalid = |reason| TaxError::InvalidRate {
                label: rate.label.clone(),
                reason,
            };
            if rate.percent < Decimal::ZERO || rate.percent >= Decimal::ONE_HUNDRED {
                return Err(invalid("the percentage must be at least 0 and below 100"));
            }
            if rate.treatment != TaxTreatment::Taxable && !rate.percent.is_zero() {
                return Err(invalid("a zero-rated or exempt rate must be 0%"));
            }
        }
        if let ShippingTax::Taxable { category } = &self.shipping {
            self.rate(category)?;
        }
        Ok(())
    }

    /// Computes the tax of `request` under this configuration.
    pub fn compute(&self, request: &TaxRequest) -> Result<TaxResult, TaxError> {
        let currency = request.currency;
        let mut entries: Vec<(&TaxRate, i64)> =
            Vec::with_capacity(request.lines.len().saturating_add(1));
        for taxable in request.lines.iter().chain(request.shipping.as_ref()) {
            if taxable.amount.currency() != currency || taxable.amount.is_negative() {
                return Err(TaxError::InvalidAmount(format!(
                    "{} for {} in a {currency} request",
                    taxable.amount, taxable.category
                )));
            }
            entries.push((self.rate(&taxable.category)?, taxable.amount.minor()));
        }
        let mode = self.rounding.mode;
        let mut taxes = vec![0_i64; entries.len()];
        match self.rounding.level {
            RoundingLevel::PerLine => {
                for (tax, (rate, amount)) in taxes.iter_mut().zip(&entries) {
                    *tax = mode.to_minor(rate.exact_tax(*amount, self.prices)?)?;
                }
            }
            RoundingLevel::PerInvoice => {
                for group in group_by_rate(&entries) {
                    let Some(&(rate, _)) = group.first().and_then(|&i| entries.get(i)) else {
                        continue;
                    };
                    let amounts: Vec<i64> = group
                        .iter()
                        .filter_map(|&i| entries.get(i).map(|e| e.1))
                        .collect();
                    let total: i64 = amounts.iter().try_fold(0_i64, |sum, a| {
                        sum.checked_add(*a).ok_or(MoneyError::Overflow)
                    })?;
                    let invoice_tax = mode.to_minor(rate.exact_tax(total, self.prices)?)?;
                    if total == 0 {
                        continue;
                    }
                    let weights: Vec<u64> = amounts.iter().map(|a| a.unsigned_abs()).collect();
                    let parts = allocate_minor(invoice_tax, &weights)?;
                    for (&i, part) in group.iter().zip(parts) {
                        if let Some(tax) = taxes.get_mut(i) {
                            *tax = part;
                        }
                    }
                }
            }
        }
        let line_tax = |rate: &TaxRate, tax: i64| LineTax {
            label: rate.label.clone(),
            percent: rate.percent,
            treatment: rate.treatment,
            amount: Money::new(tax, currency),
        };
        let mut summary: Vec<TaxLine> = Vec::new();
        for ((rate, amount), &tax) in entries.iter().zip(&taxes) {
            let position = summary.iter().position(|line| {
                line.label == rate.label
                    && line.percent == rate.percent
                    && line.treatment == rate.treatment
            });
            match position.and_then(|p| summary.get_mut(p)) {
                Some(line) => {
                    line.taxable = line.taxable.checked_add(Money::new(*amount, currency))?;
                    line.tax = line.tax.checked_add(Money::new(tax, currency))?;
                }
                None => summary.push(TaxLine {
                    label: rate.label.clone(),
                    percent: rate.percent,
                    treatment: rate.treatment,
                    taxable: Money::new(*amount, currency),
                    tax: Money::new(tax, currency),
                }),
            }
        }
        let mut lines: Vec<LineTax> = entries
            .iter()
            .zip(&taxes)
            .map(|((rate, _), &tax)| line_tax(rate, tax))
            .collect();
        let shipping = if request.shipping.is_some() {
            lines.pop()
        } else {
            None
        };
        Ok(TaxResult {
            lines,
            shipping,
            summary,
        })
    }
}

/// Indices of `entries` grouped by rate (label, percent, treatment), groups
/// in order of first appearance.
fn group_by_rate(entries: &[(&TaxRate, i64)]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(&TaxRate, Vec<usize>)> = Vec::new();
    for (index, (rate, _)) in entries.iter().enumerate() {
        match groups.iter_mut().find(|(r, _)| {
            r.label == rate.label && r.percent == rate.percent && r.treatment == rate.treatment
        }) {
            Some((_, members)) => members.push(index),
            None => groups.push((rate, vec![index])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

fn category(name: &'static str) -> TaxCategory {
    TaxCategory::builtin(name)
}

/// Computes tax for a cart. The built-in [`ConfiguredTax`] applies the
/// shop's [`TaxConfig`]; implement this to call an external tax service.
///
/// # Behavior
///
/// Return one [`LineTax`] per request line, in order, plus shipping's when
/// it was asked, and a summary whose taxes sum exactly to the line taxes.
#[async_trait]
pub trait TaxCalculator: Send + Sync + fmt::Debug + 'static {
    /// The tax of `request` for a shop configured with `config`.
    async fn calculate(
        &self,
        config: &TaxConfig,
        request: &TaxRequest,
    ) -> Result<TaxResult, TaxError>;
}

/// The built-in calculator: [`TaxConfig::compute`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfiguredTax;

#[async_trait]
impl TaxCalculator for ConfiguredTax {
    async fn calculate(
        &self,
        config: &TaxConfig,
        request: &TaxRequest,
    ) -> Result<TaxResult, TaxError> {
        config.compute(request)
    }
}
