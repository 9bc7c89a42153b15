//! The marketplace's three promotion rules, as the engine's promotions:
//! data every store holds, evaluated by the engine's pricing in priority
//! order (wine first, then beer and snacks, then the cart), so the
//! spend-$100 discount is taken from what the other two left.

use commerce_core::promotion::{
    Action, Condition, DiscountBasis, PromotionSpec, Selector, TaxBasis, Threshold,
};
use commerce_core::{Category, Currency, Money, ParseError, PromotionId};
use rust_decimal::Decimal;

/// 5+ wines: 5% off wine.
pub const WINE: &str = "wine-5-for-5";
/// 6+ beers: 20% off snacks.
pub const BEER_SNACKS: &str = "beer-6-snacks-20";
/// Spend $100+: 10% off the cart.
pub const SPEND: &str = "spend-100-save-10";

/// The threshold of the spend rule, in cents (GST-inclusive, before other
/// discounts).
pub const SPEND_THRESHOLD_CENTS: i64 = 10_000;

fn category(name: &str) -> Result<Selector, ParseError> {
    Ok(Selector::Category {
        category: Category::parse(name)?,
    })
}

fn spec(
    id: &str,
    name: &str,
    priority: i32,
    condition: Condition,
    action: Action,
) -> Result<PromotionSpec, ParseError> {
    Ok(PromotionSpec {
        id: PromotionId::parse(id)?,
        name: name.to_owned(),
        priority,
        exclusive: false,
        group: None,
        conditions: vec![condition],
        action,
        cap: None,
        max_units_per_line: None,
        usage_limit: None,
        per_customer_limit: None,
    })
}

/// The three rules, in priority order.
pub fn specs() -> Result<Vec<PromotionSpec>, ParseError> {
    Ok(vec![
        spec(
            WINE,
            "5+ wines: 5% off wine",
            10,
            Condition::MinQuantity {
                selector: category("wine")?,
                quantity: 5,
                threshold: Threshold::AtLeast,
            },
            Action::PercentOffItems {
                selector: category("wine")?,
                percent: Decimal::from(5),
            },
        )?,
        spec(
            BEER_SNACKS,
            "6+ beers: 20% off snacks",
            20,
            Condition::MinQuantity {
                selector: category("beer")?,
                quantity: 6,
                threshold: Threshold::AtLeast,
            },
            Action::PercentOffItems {
                selector: category("snacks")?,
                percent: Decimal::from(20),
            },
        )?,
        spec(
            SPEND,
            "Spend $100+: 10% off the cart",
            30,
            Condition::MinSubtotal {
                selector: Selector::All,
                amount: Money::new(SPEND_THRESHOLD_CENTS, Currency::AUD),
                threshold: Threshold::AtLeast,
                discounts: DiscountBasis::BeforeDiscounts,
                tax: TaxBasis::AsPriced,
            },
            Action::PercentOffCart {
                percent: Decimal::TEN,
            },
        )?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_core::Promotion;

    #[test]
    fn the_rules_are_valid_promotions_in_priority_order() -> Result<(), Box<dyn std::error::Error>>
    {
        let promotions = specs()?
            .into_iter()
            .map(Promotion::new)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<&str> = promotions.iter().map(|p| p.id().as_str()).collect();
        assert_eq!(ids, [WINE, BEER_SNACKS, SPEND]);
        assert!(promotions.windows(2).all(|w| match w {
            [a, b] => a.priority() < b.priority(),
            _ => true,
        }));
        Ok(())
    }
}
