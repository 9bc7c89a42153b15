//! Tax computation as of `fea34db` (copied from
//! `commerce-core/src/pricing/tax.rs`, `TaxConfig::compute` and its
//! helper): changed only to be a free function over a [`TaxConfig`] and in
//! its imports.

#![deny(clippy::arithmetic_side_effects)]

use commerce_core::money::{Money, MoneyError};

use super::allocate::allocate_minor;
use commerce_core::tax::{
    LineTax, RoundingLevel, TaxConfig, TaxError, TaxLine, TaxRate, TaxRequest, TaxResult,
};

/// Computes the tax of `request` under `config`: `TaxConfig::compute` as of
/// `fea34db`.
pub fn compute(config: &TaxConfig, request: &TaxRequest) -> Result<TaxResult, TaxError> {
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
        entries.push((config.rate(&taxable.category)?, taxable.amount.minor()));
    }
    let mode = config.rounding.tax_mode;
    let mut taxes = vec![0_i64; entries.len()];
    match config.rounding.tax_level {
        RoundingLevel::PerLine => {
            for (tax, (rate, amount)) in taxes.iter_mut().zip(&entries) {
                *tax = mode.to_minor(rate.exact_tax(*amount, config.prices)?)?;
            }
        }
        RoundingLevel::PerUnit => {
            return Err(TaxError::InvalidAmount(
                "the baseline engine does not round tax per unit".into(),
            ));
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
                let invoice_tax = mode.to_minor(rate.exact_tax(total, config.prices)?)?;
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
