//! Carts and pricing: a cart-level discount split over lines under each
//! leftover rule and line order (the table of the chapter, run by
//! `tests/pricing.rs`).

use commerce_core::pricing::{PricingInput, PricingLine, price};
use commerce_core::promotion::{Action, Promotion, PromotionSpec};
use commerce_core::rounding::{Leftover, LineOrder};
use commerce_core::tax::TaxConfig;
use commerce_core::{Clock, Currency, ManualClock, Money, PromotionId, Quantity, Sku};

use crate::quickstart::Failure;

// ANCHOR: split
/// A$3.00 off a cart of three lines added in the order Z (43.00), M
/// (14.00), A (23.00): what each line gets, in cart order, when the
/// leftover cent goes by `leftover` in `order`.
pub fn three_dollars_off(leftover: Leftover, order: LineOrder) -> Result<Vec<i64>, Failure> {
    let aud = |minor| Money::new(minor, Currency::AUD);
    let mut tax = TaxConfig::untaxed();
    tax.rounding.split.leftover = leftover;
    tax.rounding.split.order = order;
    let mut input = PricingInput::new(Currency::AUD, tax, ManualClock::at_unix(0).now());
    for (sku, price) in [("Z", 4_300), ("M", 1_400), ("A", 2_300)] {
        let line = PricingLine::new(Sku::parse(sku)?, aud(price), Quantity::new(1)?);
        input = input.with_line(line);
    }
    let off = Promotion::new(PromotionSpec {
        id: PromotionId::parse("three-off")?,
        name: "A$3 off the cart".into(),
        priority: 0,
        exclusive: false,
        group: None,
        conditions: vec![],
        action: Action::AmountOffCart { amount: aud(300) },
        cap: None,
        max_units_per_line: None,
        usage_limit: None,
        per_customer_limit: None,
    })?;
    let priced = price(&input.with_promotion(off))?;
    Ok(priced
        .lines
        .iter()
        .map(|l| l.discount_total.minor())
        .collect())
}
// ANCHOR_END: split
