//! After promotions as of `fea34db` (copied from
//! `commerce-core/src/pricing/finish.rs`): the tax request, and totals
//! summed from the lines. Changed only in its imports and in the outputs
//! added since (each discount on both bases, the unit net price), computed
//! as the engine computes them so that both engines' answers compare.

#![deny(clippy::arithmetic_side_effects)]

use commerce_core::Decimal;
use commerce_core::money::{Money, MoneyError};
use commerce_core::pricing::{
    LineDiscount, PricedCart, PricedLine, PromotionReport, ShippingCharge, Totals,
};
use commerce_core::tax::{
    LineTax, PriceBasis, RoundingMode, ShippingTax, TaxError, TaxRequest, TaxResult, TaxableAmount,
};
use commerce_core::{Error, Result};

use super::DiscountedCart;

impl DiscountedCart {
    /// The promotions considered, in evaluation order.
    pub fn promotions(&self) -> &[PromotionReport] {
        &self.reports
    }

    /// What a tax calculator must be asked: each line's discounted amount,
    /// in SKU order (so that per-invoice rounding does not depend on the
    /// order of the cart's lines), and shipping's when it is charged and
    /// taxable.
    pub fn tax_request(&self) -> TaxRequest {
        let currency = self.currency;
        let lines = self
            .canonical
            .iter()
            .filter_map(|&i| Some((self.lines.get(i)?, self.remaining.get(i)?)))
            .map(|(line, remaining)| {
                TaxableAmount::new(line.tax_category.clone(), Money::new(*remaining, currency))
            })
            .collect();
        let shipping = match (&self.shipping_tax, self.shipping) {
            (ShippingTax::Taxable { category }, Some(amount)) => Some(TaxableAmount::new(
                category.clone(),
                Money::new(amount, currency),
            )),
            _ => None,
        };
        TaxRequest {
            currency,
            lines,
            shipping,
        }
    }

    /// Completes the priced cart with the tax calculator's answer, which must
    /// cover exactly the lines of [`tax_request`](Self::tax_request).
    pub fn finish(self, tax: TaxResult) -> Result<PricedCart> {
        let currency = self.currency;
        let money = |minor| Money::new(minor, currency);
        let malformed = |what: &str| {
            Error::Tax(TaxError::InvalidAmount(format!(
                "the tax calculator returned {what}"
            )))
        };
        if tax.lines.len() != self.lines.len() {
            return Err(malformed("a different number of lines than asked"));
        }
        let expects_shipping_tax = matches!(
            (&self.shipping_tax, self.shipping),
            (ShippingTax::Taxable { .. }, Some(_))
        );
        if tax.shipping.is_some() != expects_shipping_tax {
            return Err(malformed(
                "shipping tax where none was asked, or none where it was",
            ));
        }
        let all_taxes = tax.lines.iter().chain(tax.shipping.as_ref());
        if all_taxes
            .clone()
            .any(|t| t.amount.currency() != currency || t.amount.is_negative())
        {
            return Err(malformed("a negative tax or one in another currency"));
        }
        let line_tax_total = Money::sum(currency, all_taxes.map(|t| t.amount))?;
        let summary_total = Money::sum(currency, tax.summary.iter().map(|t| t.tax))?;
        if line_tax_total != summary_total {
            return Err(malformed(
                "a summary that does not add up to the line taxes",
            ));
        }
        let inclusive = self.prices == PriceBasis::TaxInclusive;
        let mut lines = Vec::with_capacity(self.lines.len());
        // The calculator answered in SKU order; put its answers in cart order.
        let mut line_taxes: Vec<Option<LineTax>> = vec![None; self.lines.len()];
        for (&i, line_tax) in self.canonical.iter().zip(tax.lines) {
            if let Some(slot) = line_taxes.get_mut(i) {
                *slot = Some(line_tax);
            }
        }
        let line_taxes = line_taxes
            .into_iter()
            .map(|t| t.ok_or_else(|| malformed("fewer lines than asked")))
            .collect::<Result<Vec<LineTax>>>()?;
        for (((line, discounts), remaining), line_tax) in self
            .lines
            .into_iter()
            .zip(self.discounts)
            .zip(self.remaining)
            .zip(line_taxes)
        {
            let subtotal = line
                .unit_price
                .checked_mul(i64::from(line.quantity.get()))?;
            let discount_total = Money::sum(currency, discounts.iter().map(|d| d.amount))?;
            // The outputs added since `fea34db`, computed as the engine does.
            let discounts = on_both_bases(discounts, &line_tax, self.prices, self.tax_mode)?;
            let discounted = money(remaining);
            let (total, net) = if inclusive {
                (discounted, discounted.checked_sub(line_tax.amount)?)
            } else {
                (discounted.checked_add(line_tax.amount)?, discounted)
            };
            let unit_net_price = money(
                RoundingMode::HalfUp.to_minor(
                    Decimal::from(net.minor())
                        .checked_div(Decimal::from(line.quantity.get()))
                        .ok_or(MoneyError::Overflow)?,
                )?,
            );
            lines.push(PricedLine {
                sku: line.sku,
                product: line.product,
                name: line.name,
                options: line.options,
                category: line.category,
                tax_category: line.tax_category,
                age_restricted: line.age_restricted,
                quantity: line.quantity,
                unit_price: line.unit_price,
                subtotal,
                discounts,
                discount_total,
                discounted,
                unit_net_price,
                tax: line_tax,
                total,
            });
        }
        let shipping = match self.shipping {
            None => None,
            Some(remaining) => {
                let discount_total =
                    Money::sum(currency, self.shipping_discounts.iter().map(|d| d.amount))?;
                let discounted = money(remaining);
                let amount = discounted.checked_add(discount_total)?;
                let total = match (&tax.shipping, inclusive) {
                    (Some(t), false) => discounted.checked_add(t.amount)?,
                    _ => discounted,
                };
                let discounts = match &tax.shipping {
                    Some(shipping_tax) => on_both_bases(
                        self.shipping_discounts,
                        shipping_tax,
                        self.prices,
                        self.tax_mode,
                    )?,
                    None => self.shipping_discounts,
                };
                Some(ShippingCharge {
                    amount,
                    discounts,
                    discount_total,
                    discounted,
                    tax: tax.shipping,
                    total,
                })
            }
        };
        let zero = Money::zero(currency);
        let subtotal = Money::sum(currency, lines.iter().map(|l| l.subtotal))?;
        let discount_total = Money::sum(
            currency,
            lines
                .iter()
                .map(|l| l.discount_total)
                .chain(shipping.as_ref().map(|s| s.discount_total)),
        )?;
        let grand_total = Money::sum(
            currency,
            lines
                .iter()
                .map(|l| l.total)
                .chain(shipping.as_ref().map(|s| s.total)),
        )?;
        let totals = Totals {
            subtotal,
            discount_total,
            shipping: shipping.as_ref().map_or(zero, |s| s.amount),
            tax_total: line_tax_total,
            grand_total,
        };
        Ok(PricedCart {
            currency,
            prices: self.prices,
            lines,
            shipping,
            taxes: tax.summary,
            totals,
            promotions: self.reports,
        })
    }
}

/// `discounts` of a line taxed as `tax`, each with its amount on both
/// bases.
fn on_both_bases(
    mut discounts: Vec<LineDiscount>,
    tax: &LineTax,
    prices: PriceBasis,
    mode: RoundingMode,
) -> Result<Vec<LineDiscount>> {
    for discount in &mut discounts {
        discount.set_rate(tax.percent, prices, mode)?;
    }
    Ok(discounts)
}
