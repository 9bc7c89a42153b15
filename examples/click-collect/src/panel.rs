//! The cart page's promotion panel: for each promotion, whether it applies
//! and, when it does not, why and how close the basket is, in words.
//!
//! What applied, and by how much, is the engine's: the priced cart's
//! [`PromotionReport`]s, which also carry what each unmet condition
//! measured (`found` of `required`). This module only puts them into
//! words, using the promotion's definition for what it offers ("5% off
//! wine"). Without a priced cart (no basket yet), it reads the conditions
//! as if nothing were in it.

use commerce_core::pricing::{Measured, NotApplied, PromotionOutcome, PromotionReport};
use commerce_core::promotion::{Action, Condition, Selector};
use commerce_core::{Money, Promotion};
use rust_decimal::Decimal;

use crate::money::dollars;

/// Where a promotion stands for the basket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It applied: the basket is cheaper.
    Applied,
    /// Its conditions hold, but nothing it discounts is in the basket.
    Qualified,
    /// A condition does not hold yet: the text says what is missing.
    NotYet,
    /// It cannot apply to this basket now (its window, its limits).
    Unavailable,
}

impl Standing {
    /// The name in the page's `data-standing` attribute and CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Applied => "applied",
            Standing::Qualified => "qualified",
            Standing::NotYet => "not-yet",
            Standing::Unavailable => "unavailable",
        }
    }
}

/// One promotion in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The promotion's id (the panel item's `data-testid` is `promo-{id}`).
    pub promotion: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub standing: Standing,
    /// Why, in a sentence.
    pub text: String,
}

/// The panel: one explanation per promotion, in the engine's evaluation
/// order when the basket was priced (`reports`), else in `promotions`'
/// order.
pub fn explain_all(
    promotions: &[Promotion],
    reports: Option<&[PromotionReport]>,
) -> Vec<Explanation> {
    match reports {
        Some(reports) => reports
            .iter()
            .map(|report| {
                let promotion = promotions.iter().find(|p| p.id() == &report.promotion);
                explain(promotion, report)
            })
            .collect(),
        None => promotions.iter().map(explain_empty).collect(),
    }
}

/// `report` (of `promotion`, when its definition is known) in words.
pub fn explain(promotion: Option<&Promotion>, report: &PromotionReport) -> Explanation {
    let offer = promotion.map_or_else(|| report.name.clone(), |p| offer(p.action()));
    let (standing, text) = match &report.outcome {
        PromotionOutcome::Applied { discount } => (
            Standing::Applied,
            format!("Applied: you save {} ({offer}).", dollars(discount)),
        ),
        PromotionOutcome::NotApplied(why) => match why {
            NotApplied::ConditionNotMet { measured } => {
                let selector = promotion.and_then(|p| measured_selector(p, measured));
                (Standing::NotYet, missing(measured, selector, &offer))
            }
            NotApplied::NothingToDiscount => {
                let wanted = promotion.map_or("the items it discounts".to_owned(), |p| {
                    action_selector(p.action()).map_or("the items it discounts".to_owned(), |s| {
                        plural(s).to_owned()
                    })
                });
                (
                    Standing::Qualified,
                    format!("You qualify: add {wanted} to get {offer}."),
                )
            }
            NotApplied::NotStarted { .. } | NotApplied::Ended { .. } => {
                (Standing::Unavailable, "Not on at the moment.".to_owned())
            }
            NotApplied::ExcludedBy { .. } => (
                Standing::Unavailable,
                "Not combined with the offer that applied.".to_owned(),
            ),
            NotApplied::CodeMissing { code } => (
                Standing::NotYet,
                format!("Enter the code {code} to get {offer}."),
            ),
            NotApplied::UsageExhausted { .. } | NotApplied::CustomerLimitReached { .. } => {
                (Standing::Unavailable, "No longer available.".to_owned())
            }
            _ => (
                Standing::Unavailable,
                "Does not apply to this basket.".to_owned(),
            ),
        },
        _ => (
            Standing::Unavailable,
            "Does not apply to this basket.".to_owned(),
        ),
    };
    Explanation {
        promotion: report.promotion.to_string(),
        name: report.name.clone(),
        standing,
        text,
    }
}

/// `promotion` for an empty basket: every quantity and amount found is 0.
pub fn explain_empty(promotion: &Promotion) -> Explanation {
    let offer = offer(promotion.action());
    let first = promotion
        .conditions()
        .iter()
        .find_map(|condition| match condition {
            Condition::MinQuantity {
                selector, quantity, ..
            } => Some(missing(
                &Measured::Quantity {
                    required: *quantity,
                    found: 0,
                },
                Some(selector),
                &offer,
            )),
            Condition::MinSubtotal { amount, .. } => Some(missing(
                &Measured::Subtotal {
                    required: *amount,
                    found: Money::zero(amount.currency()),
                },
                None,
                &offer,
            )),
            _ => None,
        });
    Explanation {
        promotion: promotion.id().to_string(),
        name: promotion.name().to_owned(),
        standing: Standing::NotYet,
        text: first.unwrap_or_else(|| format!("Add items to get {offer}.")),
    }
}

/// What is missing for `measured` to hold, and what it gives.
fn missing(measured: &Measured, selector: Option<&Selector>, offer: &str) -> String {
    match measured {
        Measured::Quantity { required, found } => {
            let short = required.saturating_sub(*found);
            let noun = selector.map_or(if short == 1 { "item" } else { "items" }, |s| {
                if short == 1 { singular(s) } else { plural(s) }
            });
            if *found == 0 {
                format!("Add {short} {noun} to get {offer}.")
            } else {
                format!("Add {short} more {noun} to get {offer}.")
            }
        }
        Measured::Subtotal { required, found } => match required.checked_sub(*found) {
            Ok(short) if found.is_zero() => {
                format!("Spend {} to get {offer}.", dollars(&short))
            }
            Ok(short) => format!(
                "Spend {} more to get {offer} (your basket is {}).",
                dollars(&short),
                dollars(found)
            ),
            Err(_) => format!("Spend {} to get {offer}.", dollars(required)),
        },
        Measured::CustomerGroup { .. } => format!("Members only: {offer}."),
        Measured::FirstOrder => format!("First orders only: {offer}."),
        _ => format!("Not yet: {offer}."),
    }
}

/// The selector of the condition that measured `measured`.
fn measured_selector<'p>(promotion: &'p Promotion, measured: &Measured) -> Option<&'p Selector> {
    promotion
        .conditions()
        .iter()
        .find_map(|condition| match (condition, measured) {
            (
                Condition::MinQuantity {
                    selector, quantity, ..
                },
                Measured::Quantity { required, .. },
            ) if quantity == required => Some(selector),
            _ => None,
        })
}

fn action_selector(action: &Action) -> Option<&Selector> {
    match action {
        Action::PercentOffItems { selector, .. } | Action::AmountOffItems { selector, .. } => {
            Some(selector)
        }
        Action::BuyXGetY { get, .. } => Some(get),
        _ => None,
    }
}

/// What `action` gives, in words: `5% off wine`.
pub fn offer(action: &Action) -> String {
    match action {
        Action::PercentOffItems { selector, percent } => {
            format!("{}% off {}", percent_text(*percent), mass(selector))
        }
        Action::AmountOffItems {
            selector, amount, ..
        } => {
            format!("{} off {}", dollars(amount), mass(selector))
        }
        Action::PercentOffCart { percent } => {
            format!("{}% off the whole basket", percent_text(*percent))
        }
        Action::AmountOffCart { amount } => format!("{} off the basket", dollars(amount)),
        Action::BuyXGetY { get, .. } => format!("a deal on {}", mass(get)),
        Action::FreeShipping => "free delivery".to_owned(),
        _ => "a discount".to_owned(),
    }
}

/// `5`, `12.5`.
fn percent_text(percent: Decimal) -> String {
    percent.normalize().to_string()
}

/// The marketplace's categories as nouns: (one, many, the goods in general).
fn nouns(selector: &Selector) -> (&str, &str, &str) {
    match selector {
        Selector::Category { category } => match category.as_str() {
            "wine" => ("wine", "wines", "wine"),
            "beer" => ("beer", "beers", "beer"),
            "spirits" => ("spirit", "spirits", "spirits"),
            "snacks" => ("snack", "snacks", "snacks"),
            "meals" => ("counter meal", "counter meals", "counter meals"),
            "fresh" => ("fresh item", "fresh items", "fresh food"),
            _ => ("item", "items", "these items"),
        },
        Selector::All => ("item", "items", "everything"),
        _ => ("item", "items", "these items"),
    }
}

fn singular(selector: &Selector) -> &str {
    nouns(selector).0
}

fn plural(selector: &Selector) -> &str {
    nouns(selector).1
}

fn mass(selector: &Selector) -> &str {
    nouns(selector).2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;
    use commerce_core::pricing::{PricingInput, PricingLine, price};
    use commerce_core::tax::TaxConfig;
    use commerce_core::{
        Category, Clock as _, Currency, ManualClock, ProductId, Quantity, Sku, TaxCategory,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;
    type Panel = Vec<(String, Standing, String)>;

    fn promotions() -> Result<Vec<Promotion>, Box<dyn std::error::Error>> {
        Ok(rules::specs()?
            .into_iter()
            .map(Promotion::new)
            .collect::<Result<_, _>>()?)
    }

    /// The panel for a basket of `(category, unit cents, quantity)` lines,
    /// priced by the engine with the three rules.
    fn panel(lines: &[(&str, i64, u32)]) -> Result<Panel, Box<dyn std::error::Error>> {
        let promotions = promotions()?;
        let mut input = PricingInput::new(
            Currency::AUD,
            TaxConfig::australia_gst(),
            ManualClock::at_unix(1_767_312_000).now(),
        );
        for (n, (category, cents, quantity)) in lines.iter().enumerate() {
            input.lines.push(PricingLine {
                sku: Sku::parse(format!("SKU-{n}"))?,
                product: ProductId::new(),
                name: format!("{category} {n}"),
                options: Default::default(),
                category: Category::parse(*category)?,
                tax_category: TaxCategory::parse("standard")?,
                age_restricted: false,
                unit_price: Money::new(*cents, Currency::AUD),
                quantity: Quantity::new(*quantity)?,
            });
        }
        input.promotions = promotions.clone();
        let priced = price(&input)?;
        Ok(explain_all(&promotions, Some(&priced.promotions))
            .into_iter()
            .map(|e| (e.promotion, e.standing, e.text))
            .collect())
    }

    fn check(lines: &[(&str, i64, u32)], rule: &str, expected: (Standing, &str)) -> TestResult {
        let panel = panel(lines)?;
        let found = panel
            .iter()
            .find(|(id, ..)| id == rule)
            .map(|(_, s, t)| (*s, t.as_str()));
        assert_eq!(found, Some(expected), "{lines:?}");
        Ok(())
    }

    #[test]
    fn wine_rule_counts_down_to_five_then_applies() -> TestResult {
        let rule = rules::WINE;
        check(
            &[("pantry", 300, 1)],
            rule,
            (Standing::NotYet, "Add 5 wines to get 5% off wine."),
        )?;
        check(
            &[("wine", 2000, 3)],
            rule,
            (Standing::NotYet, "Add 2 more wines to get 5% off wine."),
        )?;
        check(
            &[("wine", 2000, 4)],
            rule,
            (Standing::NotYet, "Add 1 more wine to get 5% off wine."),
        )?;
        // 5 × $20.00 = $100.00 of wine; 5% is $5.00.
        check(
            &[("wine", 2000, 5)],
            rule,
            (Standing::Applied, "Applied: you save $5.00 (5% off wine)."),
        )?;
        // Two wines lines count together: 2 + 3 = 5; 5% of $24.99×2 + $18.00×3 = $103.98 is $5.199, $5.20.
        check(
            &[("wine", 2499, 2), ("wine", 1800, 3)],
            rule,
            (Standing::Applied, "Applied: you save $5.20 (5% off wine)."),
        )
    }

    #[test]
    fn beer_rule_needs_six_beers_and_snacks_to_discount() -> TestResult {
        let rule = rules::BEER_SNACKS;
        check(
            &[("beer", 450, 5), ("snacks", 450, 2)],
            rule,
            (Standing::NotYet, "Add 1 more beer to get 20% off snacks."),
        )?;
        check(
            &[("beer", 450, 6)],
            rule,
            (
                Standing::Qualified,
                "You qualify: add snacks to get 20% off snacks.",
            ),
        )?;
        // 20% of 2 × $4.50 = $1.80.
        check(
            &[("beer", 450, 6), ("snacks", 450, 2)],
            rule,
            (
                Standing::Applied,
                "Applied: you save $1.80 (20% off snacks).",
            ),
        )
    }

    #[test]
    fn spend_rule_applies_from_one_hundred_dollars() -> TestResult {
        let rule = rules::SPEND;
        check(
            &[("meals", 2500, 3), ("pantry", 2499, 1)],
            rule,
            (
                Standing::NotYet,
                "Spend $0.01 more to get 10% off the whole basket (your basket is $99.99).",
            ),
        )?;
        check(
            &[("meals", 2500, 4)],
            rule,
            (
                Standing::Applied,
                "Applied: you save $10.00 (10% off the whole basket).",
            ),
        )?;
        // Measured before other discounts, taken from what they left: 5 wines
        // at $20.00 is $100.00; 5% off wine leaves $95.00; 10% of it is $9.50.
        check(
            &[("wine", 2000, 5)],
            rule,
            (
                Standing::Applied,
                "Applied: you save $9.50 (10% off the whole basket).",
            ),
        )
    }

    #[test]
    fn an_empty_basket_reads_the_rules() -> TestResult {
        let panel: Vec<_> = explain_all(&promotions()?, None)
            .into_iter()
            .map(|e| (e.standing, e.text))
            .collect();
        assert_eq!(
            panel,
            [
                (
                    Standing::NotYet,
                    "Add 5 wines to get 5% off wine.".to_owned()
                ),
                (
                    Standing::NotYet,
                    "Add 6 beers to get 20% off snacks.".to_owned()
                ),
                (
                    Standing::NotYet,
                    "Spend $100.00 to get 10% off the whole basket.".to_owned()
                ),
            ]
        );
        Ok(())
    }

    #[test]
    fn unknown_promotions_and_other_reasons_still_read() -> TestResult {
        let report = PromotionReport {
            promotion: commerce_core::PromotionId::parse("gone")?,
            name: "An old offer".into(),
            limited: true,
            outcome: PromotionOutcome::NotApplied(NotApplied::UsageExhausted { limit: 3 }),
        };
        let explained = explain(None, &report);
        assert_eq!(explained.standing, Standing::Unavailable);
        assert_eq!(explained.text, "No longer available.");
        assert_eq!(offer(&Action::FreeShipping), "free delivery");
        assert_eq!(percent_text(Decimal::new(125, 1)), "12.5");
        assert_eq!(percent_text(Decimal::new(500, 2)), "5");
        Ok(())
    }
}
