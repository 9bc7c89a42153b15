//! Tax rules: rates per tax category, tax-inclusive or tax-exclusive prices,
//! and rounding chosen by configuration.
//!
//! Tax is always computed on the discounted amount. How it is rounded is
//! data, never code, set in [`TaxConfig::rounding`] (the one place rounding
//! is configured, [`crate::rounding`]):
//!
//! - [`RoundingMode`] ([`Rounding::tax_mode`]): half-up, half-even, half
//!   toward positive infinity, down or up.
//! - [`RoundingLevel::PerLine`]: each line's tax is rounded on its own; the
//!   invoice tax is their sum.
//! - [`RoundingLevel::PerUnit`]: the tax of one unit is rounded, then
//!   multiplied by the quantity ([`TaxableAmount::units`]).
//! - [`RoundingLevel::PerInvoice`]: the exact tax of all lines at one rate is
//!   summed and rounded once, then allocated back to the lines (by their
//!   taxable amounts, leftovers as [`Split`](crate::rounding::Split) says),
//!   so the lines still sum exactly to the invoice tax.
//!
//! Shipping is taxed at its own category's rate, at the cart's line rates
//! (apportioned over them by the lines' amounts), or not at all
//! ([`ShippingTax`]).
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
//!     us.rounding.tax_level = level;
//!     Ok(us.compute(&request)?.lines.iter().map(|t| t.amount.minor()).collect())
//! };
//! assert_eq!(taxes(RoundingLevel::PerLine)?, vec![1, 1]);
//! assert_eq!(taxes(RoundingLevel::PerInvoice)?, vec![1, 0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Per unit, three mugs of US$0.99 at 6.5% carry 6.435¢ each, rounded to
//! 6¢, 18¢ in all; per line 19.305¢ rounds to 19¢ (Adobe Commerce's "Unit
//! Price" and "Row Total" calculation methods).
//!
//! ```
//! use commerce_core::tax::{RoundingLevel, TaxConfig, TaxRequest, TaxableAmount};
//! use commerce_core::{Currency, Decimal, Money, TaxCategory};
//!
//! let mugs = TaxableAmount::new(TaxCategory::parse("standard")?, Money::new(297, Currency::USD))
//!     .with_units(3);
//! let request = TaxRequest { currency: Currency::USD, lines: vec![mugs], shipping: None };
//! let tax = |level| -> Result<i64, Box<dyn std::error::Error>> {
//!     let mut us = TaxConfig::us_sales_tax("XX", Decimal::new(65, 1));
//!     us.rounding.tax_level = level;
//!     Ok(us.compute(&request)?.lines[0].amount.minor())
//! };
//! assert_eq!(tax(RoundingLevel::PerUnit)?, 18);
//! assert_eq!(tax(RoundingLevel::PerLine)?, 19);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Shipping apportioned over the lines' rates: A$10.00 of shipping on A$60.00
//! of taxable goods and A$40.00 of GST-free ones is A$6.00 at 10% GST
//! (included: 54.5¢ → 55¢) and A$4.00 GST-free.
//!
//! ```
//! use commerce_core::tax::{ShippingTax, TaxConfig, TaxRequest, TaxableAmount};
//! use commerce_core::{Currency, Money, TaxCategory};
//!
//! let mut gst = TaxConfig::australia_gst();
//! gst.shipping = ShippingTax::Apportioned;
//! let aud = |minor| Money::new(minor, Currency::AUD);
//! let request = TaxRequest {
//!     currency: Currency::AUD,
//!     lines: vec![
//!         TaxableAmount::new(TaxCategory::parse("standard")?, aud(6_000)),
//!         TaxableAmount::new(TaxCategory::parse("gst-free")?, aud(4_000)),
//!     ],
//!     shipping: Some(TaxableAmount::new(TaxRequest::apportioned_category(), aud(1_000))),
//! };
//! let shipping = gst.compute(&request)?.shipping.expect("shipping is taxed");
//! assert_eq!(shipping.amount, aud(55));
//! assert_eq!(shipping.label, "GST + GST-free");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every computation is checked: an amount that does not fit is
//! [`MoneyError::Overflow`], never a wrap or a panic.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{Sku, TaxCategory};
use crate::money::{Currency, Money, MoneyError};

use super::rounding::{Leftover, LineOrder, split_weighted};
pub use super::rounding::{Rounding, RoundingLevel, RoundingMode};

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
    /// Shipping is taxed at the cart's line rates: it is apportioned over
    /// the rates in proportion to the lines' (discounted) amounts at each,
    /// and each part taxed at its rate, so its tax is the weighted average
    /// of the line rates (HMRC's VAT Notice 700/24 has a delivery charge
    /// for goods at different rates apportioned so). With no line
    /// amount to weigh by, the lines weigh equally; with no lines, shipping
    /// is not taxed.
    Apportioned,
}

impl ShippingTax {
    /// Whether shipping, when charged, is taxed.
    pub fn taxes_shipping(&self) -> bool {
        !matches!(self, ShippingTax::NotTaxable)
    }
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
    /// How many units the amount is of (1 for shipping), which
    /// [`RoundingLevel::PerUnit`] rounds one by one.
    #[serde(default = "one_unit")]
    pub units: u32,
}

fn one_unit() -> u32 {
    1
}

impl TaxableAmount {
    /// `amount` in `category`, of no particular line.
    pub fn new(category: TaxCategory, amount: Money) -> Self {
        Self {
            category,
            amount,
            line: None,
            units: 1,
        }
    }

    /// The same amount, of `units` units (at least one: 0 reads as 1).
    #[must_use]
    pub fn with_units(mut self, units: u32) -> Self {
        self.units = units.max(1);
        self
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
    /// line ([`TaxableAmount::line`]: its position in the cart and its SKU)
    /// and its units.
    pub lines: Vec<TaxableAmount>,
    /// Shipping, when it is charged and taxable. When it is
    /// [apportioned](ShippingTax::Apportioned) its category is
    /// `shipping` ([`TaxRequest::apportioned_category`]) and is not looked
    /// up: the amount is shared over the lines' rates.
    pub shipping: Option<TaxableAmount>,
}

impl TaxRequest {
    /// The category of shipping [apportioned](ShippingTax::Apportioned)
    /// over the lines' rates: `shipping`, a name that selects no rate.
    pub fn apportioned_category() -> TaxCategory {
        category("shipping")
    }
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
    /// The tax of shipping, when shipping was in the request. Shipping
    /// [apportioned](ShippingTax::Apportioned) over several rates has
    /// one entry labelled with theirs (`"GST + GST-free"`), at their
    /// weighted average rate (to four decimal places), its tax the sum of
    /// its parts'; the parts are in the summary under their rates.
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
            rounding: Rounding::half_up(RoundingLevel::PerLine),
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
            rounding: Rounding::half_up(RoundingLevel::PerInvoice),
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
            rounding: Rounding::half_up(RoundingLevel::PerInvoice),
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
        let split = self.rounding.split;
        let mut entries: Vec<Entry<'_>> = Vec::with_capacity(request.lines.len().saturating_add(1));
        for taxable in request.lines.iter().chain(request.shipping.as_ref()) {
            if taxable.amount.currency() != currency || taxable.amount.is_negative() {
                return Err(TaxError::InvalidAmount(format!(
                    "{} for {} in a {currency} request",
                    taxable.amount, taxable.category
                )));
            }
        }
        for (index, taxable) in request.lines.iter().enumerate() {
            let rank = match (split.order, &taxable.line) {
                (LineOrder::Cart, Some(line)) => line.position,
                _ => index,
            };
            entries.push(Entry {
                rate: self.rate(&taxable.category)?,
                amount: taxable.amount.minor(),
                units: taxable.units.max(1),
                rank,
            });
        }
        let line_count = entries.len();
        // Shipping: one entry at its category's rate, or one part per rate
        // of the lines when it is apportioned over them.
        let mut apportioned = false;
        if let Some(shipping) = &request.shipping {
            let after_lines = line_count;
            if self.shipping == ShippingTax::Apportioned {
                apportioned = true;
                let groups = group_by_rate(&entries);
                let mut weights: Vec<u64> = groups
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            .filter_map(|&i| entries.get(i))
                            .fold(0_u64, |sum, e| sum.saturating_add(e.amount.unsigned_abs()))
                    })
                    .collect();
                if weights.iter().all(|w| *w == 0) {
                    weights = groups.iter().map(|g| g.len() as u64).collect();
                }
                if !groups.is_empty() {
                    let ranks: Vec<usize> = (0..groups.len()).collect();
                    let caps = vec![i64::MAX; groups.len()];
                    let parts = split_weighted(
                        shipping.amount.minor(),
                        &weights,
                        &caps,
                        &ranks,
                        split.leftover,
                    )?;
                    for (group, part) in groups.iter().zip(parts) {
                        if let Some(rate) =
                            group.first().and_then(|&i| entries.get(i)).map(|e| e.rate)
                        {
                            entries.push(Entry {
                                rate,
                                amount: part,
                                units: 1,
                                rank: after_lines,
                            });
                        }
                    }
                }
            } else {
                entries.push(Entry {
                    rate: self.rate(&shipping.category)?,
                    amount: shipping.amount.minor(),
                    units: 1,
                    rank: after_lines,
                });
            }
        }
        let taxes = self.round(&entries)?;
        let line_tax = |rate: &TaxRate, tax: i64| LineTax {
            label: rate.label.clone(),
            percent: rate.percent,
            treatment: rate.treatment,
            amount: Money::new(tax, currency),
        };
        let mut summary: Vec<TaxLine> = Vec::new();
        for (entry, &tax) in entries.iter().zip(&taxes) {
            let rate = entry.rate;
            let position = summary.iter().position(|line| {
                line.label == rate.label
                    && line.percent == rate.percent
                    && line.treatment == rate.treatment
            });
            match position.and_then(|p| summary.get_mut(p)) {
                Some(line) => {
                    line.taxable = line
                        .taxable
                        .checked_add(Money::new(entry.amount, currency))?;
                    line.tax = line.tax.checked_add(Money::new(tax, currency))?;
                }
                None => summary.push(TaxLine {
                    label: rate.label.clone(),
                    percent: rate.percent,
                    treatment: rate.treatment,
                    taxable: Money::new(entry.amount, currency),
                    tax: Money::new(tax, currency),
                }),
            }
        }
        let lines: Vec<LineTax> = entries
            .iter()
            .zip(&taxes)
            .take(line_count)
            .map(|(entry, &tax)| line_tax(entry.rate, tax))
            .collect();
        let shipping_parts: Vec<(&Entry<'_>, i64)> = entries
            .iter()
            .zip(taxes.iter().copied())
            .skip(line_count)
            .collect();
        let shipping = match (&request.shipping, apportioned) {
            (None, _) => None,
            (Some(_), false) => shipping_parts
                .first()
                .map(|(entry, tax)| line_tax(entry.rate, *tax)),
            (Some(shipping), true) => Some(apportioned_tax(
                &shipping_parts,
                shipping.amount.minor(),
                currency,
            )?),
        };
        Ok(TaxResult {
            lines,
            shipping,
            summary,
        })
    }

    /// The rounded tax of each entry, at the configured level and mode.
    fn round(&self, entries: &[Entry<'_>]) -> Result<Vec<i64>, TaxError> {
        let mode = self.rounding.tax_mode;
        let split = self.rounding.split;
        let mut taxes = vec![0_i64; entries.len()];
        match self.rounding.tax_level {
            RoundingLevel::PerLine => {
                for (tax, entry) in taxes.iter_mut().zip(entries) {
                    *tax = mode.to_minor(entry.rate.exact_tax(entry.amount, self.prices)?)?;
                }
            }
            RoundingLevel::PerUnit => {
                for (tax, entry) in taxes.iter_mut().zip(entries) {
                    // `units` units of `each` and, for the remainder, `rest`
                    // of them one minor unit more: they sum to the amount.
                    let units = i64::from(entry.units.max(1));
                    let each = entry
                        .amount
                        .checked_div(units)
                        .ok_or(MoneyError::Overflow)?;
                    let rest = entry
                        .amount
                        .checked_rem(units)
                        .ok_or(MoneyError::Overflow)?;
                    let plain = units.checked_sub(rest).ok_or(MoneyError::Overflow)?;
                    let unit_tax = |amount: i64| -> Result<i64, TaxError> {
                        Ok(mode.to_minor(entry.rate.exact_tax(amount, self.prices)?)?)
                    };
                    let mut total = unit_tax(each)?
                        .checked_mul(plain)
                        .ok_or(MoneyError::Overflow)?;
                    if rest > 0 {
                        let more = each.checked_add(1).ok_or(MoneyError::Overflow)?;
                        total = unit_tax(more)?
                            .checked_mul(rest)
                            .and_then(|t| t.checked_add(total))
                            .ok_or(MoneyError::Overflow)?;
                    }
                    *tax = total;
                }
            }
            RoundingLevel::PerInvoice => {
                for group in group_by_rate(entries) {
                    let Some(rate) = group.first().and_then(|&i| entries.get(i)).map(|e| e.rate)
                    else {
                        continue;
                    };
                    let members: Vec<&Entry<'_>> =
                        group.iter().filter_map(|&i| entries.get(i)).collect();
                    let total: i64 = members.iter().try_fold(0_i64, |sum, e| {
                        sum.checked_add(e.amount).ok_or(MoneyError::Overflow)
                    })?;
                    if total == 0 {
                        continue;
                    }
                    let invoice_tax = mode.to_minor(rate.exact_tax(total, self.prices)?)?;
                    let weights: Vec<u64> =
                        members.iter().map(|e| e.amount.unsigned_abs()).collect();
                    let parts = if split.leftover == Leftover::LargestRemainder
                        && split.order == LineOrder::Sku
                    {
                        crate::money::allocate_minor(invoice_tax, &weights)?
                    } else {
                        let caps: Vec<i64> = members.iter().map(|e| e.amount).collect();
                        let ranks: Vec<usize> = members.iter().map(|e| e.rank).collect();
                        split_weighted(invoice_tax, &weights, &caps, &ranks, split.leftover)?
                    };
                    for (&i, part) in group.iter().zip(parts) {
                        if let Some(tax) = taxes.get_mut(i) {
                            *tax = part;
                        }
                    }
                }
            }
        }
        Ok(taxes)
    }
}

/// One amount to tax: a line, shipping, or shipping's part at one rate.
struct Entry<'r> {
    rate: &'r TaxRate,
    amount: i64,
    units: u32,
    /// Its place in the split order ([`LineOrder`]).
    rank: usize,
}

/// The tax of shipping apportioned over `parts` (each at its rate) of
/// `amount` minor units: one entry labelled with the parts' rates, at
/// their weighted average rate, taxed their sum; no tax with no parts.
fn apportioned_tax(
    parts: &[(&Entry<'_>, i64)],
    amount: i64,
    currency: Currency,
) -> Result<LineTax, TaxError> {
    let mut labels: Vec<&str> = Vec::new();
    let mut tax: i64 = 0;
    let mut weighted = Decimal::ZERO;
    let mut treatment = TaxTreatment::Exempt;
    for (entry, part_tax) in parts {
        if entry.amount > 0 || parts.len() == 1 {
            labels.push(&entry.rate.label);
        }
        tax = tax.checked_add(*part_tax).ok_or(MoneyError::Overflow)?;
        weighted = Decimal::from(entry.amount)
            .checked_mul(entry.rate.percent)
            .and_then(|w| weighted.checked_add(w))
            .ok_or(MoneyError::Overflow)?;
        treatment = match (treatment, entry.rate.treatment) {
            (TaxTreatment::Taxable, _) | (_, TaxTreatment::Taxable) => TaxTreatment::Taxable,
            (TaxTreatment::ZeroRated, _) | (_, TaxTreatment::ZeroRated) => TaxTreatment::ZeroRated,
            _ => TaxTreatment::Exempt,
        };
    }
    let percent = if amount > 0 {
        weighted
            .checked_div(Decimal::from(amount))
            .ok_or(MoneyError::Overflow)?
            .round_dp(4)
            .normalize()
    } else {
        Decimal::ZERO
    };
    let label = if labels.is_empty() {
        "Not taxed".to_owned()
    } else {
        labels.join(" + ")
    };
    Ok(LineTax {
        label,
        percent,
        treatment,
        amount: Money::new(tax, currency),
    })
}

/// Indices of `entries` grouped by rate (label, percent, treatment), groups
/// in order of first appearance.
fn group_by_rate(entries: &[Entry<'_>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(&TaxRate, Vec<usize>)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let rate = entry.rate;
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
