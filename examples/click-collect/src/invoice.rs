//! A tax invoice in words: each line's GST-inclusive amount and the GST
//! it includes (computed per line by the engine and snapshotted on the
//! order), GST-free lines marked, and the total GST. The numbers are the
//! engine's; this only lays them out.

use commerce_core::pricing::PricedLine;
use commerce_core::tax::{TaxLine, TaxTreatment};
use commerce_core::{AppliedPromotion, Order, PricedCart, Totals};

use crate::money::dollars;

/// One line of the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    /// The product's name.
    pub name: String,
    /// The SKU.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The unit price, GST-inclusive.
    pub unit_price: String,
    /// The discounts the line got (`-$1.25`), empty when none.
    pub discount: String,
    /// What the line costs, GST-inclusive, after discounts.
    pub amount: String,
    /// The GST it includes (`$0.00` when GST-free).
    pub gst: String,
    /// GST-free (zero-rated) rather than taxable.
    pub gst_free: bool,
    /// Liquor: sold only with an age verification.
    pub age_restricted: bool,
}

/// The whole invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The lines, in cart order.
    pub lines: Vec<InvoiceLine>,
    /// The lines before discounts.
    pub subtotal: String,
    /// The discounts (`-$10.00`), empty when none.
    pub discount: String,
    /// What is paid, GST-inclusive.
    pub total: String,
    /// The GST the total includes.
    pub gst: String,
    /// The GST-inclusive amount of taxable supplies.
    pub taxable: String,
    /// The amount of GST-free supplies.
    pub gst_free: String,
    /// The promotions that applied, with what each took off.
    pub promotions: Vec<(String, String)>,
    /// Whether a line is liquor.
    pub has_liquor: bool,
}

fn line(line: &PricedLine) -> InvoiceLine {
    InvoiceLine {
        name: line.name.clone(),
        sku: line.sku.to_string(),
        quantity: line.quantity.get(),
        unit_price: dollars(&line.unit_price),
        discount: if line.discount_total.is_zero() {
            String::new()
        } else {
            format!("-{}", dollars(&line.discount_total))
        },
        amount: dollars(&line.total),
        gst: dollars(&line.tax.amount),
        gst_free: line.tax.treatment != TaxTreatment::Taxable,
        age_restricted: line.age_restricted,
    }
}

fn build(
    lines: &[PricedLine],
    totals: &Totals,
    taxes: &[TaxLine],
    promotions: Vec<(String, String)>,
) -> Invoice {
    let by_treatment = |taxable: bool| {
        let amounts = taxes
            .iter()
            .filter(|t| (t.treatment == TaxTreatment::Taxable) == taxable)
            .map(|t| t.taxable);
        commerce_core::Money::sum(totals.grand_total.currency(), amounts)
            .map_or_else(|_| String::new(), |sum| dollars(&sum))
    };
    Invoice {
        lines: lines.iter().map(line).collect(),
        subtotal: dollars(&totals.subtotal),
        discount: if totals.discount_total.is_zero() {
            String::new()
        } else {
            format!("-{}", dollars(&totals.discount_total))
        },
        total: dollars(&totals.grand_total),
        gst: dollars(&totals.tax_total),
        taxable: by_treatment(true),
        gst_free: by_treatment(false),
        promotions,
        has_liquor: lines.iter().any(|l| l.age_restricted),
    }
}

/// The invoice of a placed order: its snapshot, whatever prices, rates
/// or promotions are now.
pub fn of_order(order: &Order) -> Invoice {
    let applied = order
        .promotions
        .iter()
        .map(|AppliedPromotion { name, discount, .. }| {
            (name.clone(), format!("-{}", dollars(discount)))
        })
        .collect();
    build(&order.lines, &order.totals, &order.taxes, applied)
}

/// The invoice a priced cart would make (the checkout page's summary).
pub fn of_cart(priced: &PricedCart) -> Invoice {
    let applied = priced
        .promotions
        .iter()
        .filter_map(|report| match &report.outcome {
            commerce_core::pricing::PromotionOutcome::Applied { discount } => {
                Some((report.name.clone(), format!("-{}", dollars(discount))))
            }
            _ => None,
        })
        .collect();
    build(&priced.lines, &priced.totals, &priced.taxes, applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;
    use commerce_core::pricing::{PricingInput, PricingLine, price};
    use commerce_core::tax::TaxConfig;
    use commerce_core::{
        Category, Clock as _, Currency, ManualClock, Money, ProductId, Promotion, Quantity, Sku,
        TaxCategory,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn priced(
        lines: &[(&str, &str, &str, i64, u32)],
    ) -> Result<PricedCart, Box<dyn std::error::Error>> {
        let mut input = PricingInput::new(
            Currency::AUD,
            TaxConfig::australia_gst(),
            ManualClock::at_unix(1_767_312_000).now(),
        );
        for (sku, category, tax, cents, quantity) in lines {
            input.lines.push(PricingLine {
                sku: Sku::parse(*sku)?,
                product: ProductId::new(),
                name: (*sku).to_owned(),
                options: Default::default(),
                category: Category::parse(*category)?,
                tax_category: TaxCategory::parse(*tax)?,
                age_restricted: *category == "wine",
                unit_price: Money::new(*cents, Currency::AUD),
                quantity: Quantity::new(*quantity)?,
            });
        }
        input.promotions = rules::specs()?
            .into_iter()
            .map(Promotion::new)
            .collect::<Result<_, _>>()?;
        Ok(price(&input)?)
    }

    #[test]
    fn gst_per_line_with_a_gst_free_line() -> TestResult {
        // Bananas $4.20 (GST-free), shiraz $24.99 (GST 24.99/11 = 2.2718...,
        // $2.27), chips $4.50 (4.50/11 = 0.409..., $0.41): GST $2.68.
        let invoice = of_cart(&priced(&[
            ("BANANAS", "fresh", "gst-free", 420, 1),
            ("SHIRAZ", "wine", "standard", 2499, 1),
            ("CHIPS", "snacks", "standard", 450, 1),
        ])?);
        let rows: Vec<(&str, &str, bool)> = invoice
            .lines
            .iter()
            .map(|l| (l.amount.as_str(), l.gst.as_str(), l.gst_free))
            .collect();
        assert_eq!(
            rows,
            [
                ("$4.20", "$0.00", true),
                ("$24.99", "$2.27", false),
                ("$4.50", "$0.41", false)
            ]
        );
        assert_eq!(invoice.total, "$33.69");
        assert_eq!(invoice.gst, "$2.68");
        assert_eq!(invoice.gst_free, "$4.20");
        assert_eq!(invoice.taxable, "$29.49");
        assert!(invoice.has_liquor);
        assert!(invoice.discount.is_empty() && invoice.promotions.is_empty());
        Ok(())
    }

    #[test]
    fn gst_is_on_the_discounted_amount() -> TestResult {
        // Four $25.00 platters: $100.00, 10% off is $10.00; $90.00 includes
        // $8.18 of GST (90/11 = 8.1818...).
        let invoice = of_cart(&priced(&[("PLATTER", "meals", "standard", 2500, 4)])?);
        assert_eq!(invoice.subtotal, "$100.00");
        assert_eq!(invoice.discount, "-$10.00");
        assert_eq!(invoice.total, "$90.00");
        assert_eq!(invoice.gst, "$8.18");
        assert_eq!(
            invoice.promotions,
            [(
                "Spend $100+: 10% off the cart".to_owned(),
                "-$10.00".to_owned()
            )]
        );
        assert_eq!(
            invoice.lines.first().map(|l| l.discount.as_str()),
            Some("-$10.00")
        );
        Ok(())
    }
}
