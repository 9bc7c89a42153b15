//! Promotions as data: conditions, selectors, actions, combination and
//! limits. A [`Promotion`] is checked when it is built (or deserialized), so
//! nonsense such as 150% off never reaches pricing.
//!
//! How promotions are evaluated is described in [`crate::pricing`].
//!
//! ```
//! use commerce_core::promotion::{Action, Condition, Promotion, PromotionSpec, Selector};
//! use commerce_core::{Category, PromotionId};
//! use rust_decimal::Decimal;
//!
//! // "5+ wines: 5% off wine", as JSON a merchant could store.
//! let json = r#"{
//!     "id": "wine-5-off",
//!     "name": "5% off wine when you buy 5",
//!     "priority": 10,
//!     "conditions": [
//!         { "type": "min_quantity", "selector": { "type": "category", "category": "wine" }, "quantity": 5 }
//!     ],
//!     "action": { "type": "percent_off_items", "selector": { "type": "category", "category": "wine" }, "percent": "5" }
//! }"#;
//! let promotion: Promotion = serde_json::from_str(json)?;
//! assert_eq!(promotion.id().as_str(), "wine-5-off");
//!
//! // Validation refuses nonsense, from JSON or from code.
//! let nonsense = json.replace(r#""percent": "5""#, r#""percent": "150""#);
//! assert!(serde_json::from_str::<Promotion>(&nonsense).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The vocabulary
//!
//! | What a merchant says | How it is written |
//! |---|---|
//! | "5% off wine" | [`Action::PercentOffItems`] with [`Selector::Category`] |
//! | "2.00 off each, limit 2 per item" | [`Action::AmountOffItems`], [`PromotionSpec::max_units_per_line`] |
//! | "these SKUs", "this product", "items from 10.00 to 20.00" | [`Selector::Skus`], [`Selector::Product`], [`Selector::PriceRange`] |
//! | "spend 50 get 5 off, spend 100 get 15 off" | [`Action::Tiered`] |
//! | "buy 2 get 1 free" | [`Action::BuyXGetY`] |
//! | "the cheapest 2 items half price" | [`Action::CheapestUnits`] |
//! | "3 for 10.00", "burger, fries and a drink for 12.00" | [`Action::Bundle`] |
//! | "orders over 50" (strictly), "at least 3" | [`Condition::MinSubtotal`], [`Condition::MinQuantity`] with a [`Threshold`] |
//! | "3 of the same shirt" | [`Condition::LineQuantity`] |
//! | "staff or wholesale" | [`Condition::CustomerGroups`] |
//! | "with the code SAVE5, or for VIPs" | [`Condition::AnyOf`] (and [`Condition::AllOf`] inside it) |
//! | "not with other loyalty offers" | [`PromotionSpec::exclusive`] with a [`PromotionSpec::group`] |
//!
//! A worked example: "spend 50 get 5 off, spend 100 get 15 off", and "3 pairs
//! of socks for 10.00", on a cart of four pairs at 4.00 and a 95.00 jacket
//! (untaxed). The socks promotion comes first: A$12.00 of socks for A$10.00,
//! A$2.00 off. The tiers measure the cart before discounts, A$111.00, so the
//! second tier applies: A$15.00 off what is left, spread by amount.
//!
//! ```
//! use commerce_core::pricing::{price, PricingInput, PricingLine};
//! use commerce_core::promotion::Promotion;
//! use commerce_core::tax::TaxConfig;
//! use commerce_core::*;
//!
//! let tiers: Promotion = serde_json::from_str(r#"{
//!     "id": "spend-more", "name": "Spend more, save more", "priority": 2,
//!     "action": { "type": "tiered", "selector": { "type": "all" }, "tiers": [
//!         { "threshold": { "amount": 5000, "currency": "AUD" },
//!           "reward": { "type": "amount_off", "amount": { "amount": 500, "currency": "AUD" } } },
//!         { "threshold": { "amount": 10000, "currency": "AUD" },
//!           "reward": { "type": "amount_off", "amount": { "amount": 1500, "currency": "AUD" } } }
//!     ] }
//! }"#)?;
//! let socks: Promotion = serde_json::from_str(r#"{
//!     "id": "socks-3", "name": "3 pairs for $10", "priority": 1,
//!     "action": { "type": "bundle", "price": { "amount": 1000, "currency": "AUD" },
//!         "items": [ { "selector": { "type": "category", "category": "socks" }, "quantity": 3 } ] }
//! }"#)?;
//! let aud = |minor| Money::new(minor, Currency::AUD);
//! let input = PricingInput::new(Currency::AUD, TaxConfig::untaxed(), ManualClock::at_unix(0).now())
//!     .with_line(PricingLine::new(Sku::parse("SOCKS")?, aud(400), Quantity::new(4)?)
//!         .with_category(Category::parse("socks")?))
//!     .with_line(PricingLine::new(Sku::parse("JACKET")?, aud(9_500), Quantity::new(1)?))
//!     .with_promotion(tiers)
//!     .with_promotion(socks);
//! let priced = price(&input)?;
//! assert_eq!(priced.totals.discount_total, aud(1_700));
//! assert_eq!(priced.totals.grand_total, aud(9_400));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{
    Category, CouponCode, CustomerGroup, ProductId, PromotionGroup, PromotionId, Sku,
};
use crate::money::{Currency, Money};
use crate::pricing::PricingLine;

/// How deep selectors and conditions may nest ("any of" inside "all of"…).
const MAX_NESTING: usize = 8;

/// Which cart lines a condition or action looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Selector {
    /// Every line.
    All,
    /// Lines whose product is in the category.
    Category {
        /// The category.
        category: Category,
    },
    /// The line with this SKU.
    Sku {
        /// The SKU.
        sku: Sku,
    },
    /// Lines of any variant of this product.
    Product {
        /// The product.
        product: ProductId,
    },
    /// Lines with any of these SKUs.
    Skus {
        /// The SKUs (at least one).
        skus: BTreeSet<Sku>,
    },
    /// Lines whose unit price is within the bounds (each inclusive; at
    /// least one of them).
    PriceRange {
        /// The lowest unit price that matches.
        #[serde(default)]
        min: Option<Money>,
        /// The highest unit price that matches.
        #[serde(default)]
        max: Option<Money>,
    },
    /// Lines any of these selectors matches.
    AnyOf {
        /// The selectors (at least one).
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        selectors: Vec<Selector>,
    },
}

impl Selector {
    /// Whether `line` matches.
    ///
    /// ```
    /// use commerce_core::promotion::Selector;
    /// use commerce_core::pricing::PricingLine;
    /// use commerce_core::{Currency, Money, Quantity};
    ///
    /// let line = PricingLine::new("MUG".parse()?, Money::new(1_250, Currency::EUR), Quantity::new(1)?);
    /// let mid_price = Selector::PriceRange {
    ///     min: Some(Money::new(1_000, Currency::EUR)),
    ///     max: Some(Money::new(2_000, Currency::EUR)),
    /// };
    /// assert!(mid_price.matches(&line));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn matches(&self, line: &PricingLine) -> bool {
        match self {
            Selector::All => true,
            Selector::Category { category } => *category == line.category,
            Selector::Sku { sku } => *sku == line.sku,
            Selector::Skus { skus } => skus.contains(&line.sku),
            Selector::Product { product } => *product == line.product,
            Selector::PriceRange { min, max } => {
                let price = line.unit_price.minor();
                min.is_none_or(|min| price >= min.minor())
                    && max.is_none_or(|max| price <= max.minor())
            }
            Selector::AnyOf { selectors } => selectors.iter().any(|s| s.matches(line)),
        }
    }

    fn validate(&self, depth: usize, currencies: &mut Vec<Currency>) -> Result<(), PromotionError> {
        if depth > MAX_NESTING {
            return Err(PromotionError::new(format!(
                "selectors nest at most {MAX_NESTING} deep"
            )));
        }
        match self {
            Selector::AnyOf { selectors } => {
                if selectors.is_empty() {
                    return Err(PromotionError::new("a set of selectors must not be empty"));
                }
                for selector in selectors {
                    selector.validate(depth.saturating_add(1), currencies)?;
                }
            }
            Selector::Skus { skus } if skus.is_empty() => {
                return Err(PromotionError::new("a set of SKUs must not be empty"));
            }
            Selector::PriceRange { min, max } => {
                if min.is_none() && max.is_none() {
                    return Err(PromotionError::new(
                        "a price range needs a lowest or a highest price",
                    ));
                }
                if min.is_some_and(Money::is_negative) || max.is_some_and(Money::is_negative) {
                    return Err(PromotionError::new("a price range must not be negative"));
                }
                if let (Some(min), Some(max)) = (min, max)
                    && min.currency() == max.currency()
                    && min.minor() > max.minor()
                {
                    return Err(PromotionError::new(
                        "a price range's lowest price must not be above its highest",
                    ));
                }
                currencies.extend(min.iter().chain(max).map(|m| m.currency()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// How a quantity or subtotal condition compares what it finds with its
/// threshold.
///
/// Platforms differ here: "spend $50 or more" (`>=`) is the common reading
/// and the default; "orders over $50" is often meant strictly (`>`), and a
/// merchant moving from a platform that compares strictly keeps its
/// promotions' meaning by saying so.
///
/// ```
/// use commerce_core::promotion::Threshold;
///
/// assert!(Threshold::AtLeast.met(50, 50));
/// assert!(!Threshold::MoreThan.met(50, 50));
/// assert!(Threshold::MoreThan.met(51, 50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// Met by the threshold itself (`found >= threshold`).
    #[default]
    AtLeast,
    /// Met only above the threshold (`found > threshold`).
    MoreThan,
}

impl Threshold {
    /// Whether `found` meets `threshold` under this comparison.
    pub fn met<T: PartialOrd>(self, found: T, threshold: T) -> bool {
        match self {
            Threshold::AtLeast => found >= threshold,
            Threshold::MoreThan => found > threshold,
        }
    }
}

/// Whether a subtotal condition counts discounts that earlier promotions
/// already gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiscountBasis {
    /// Measured on prices before any discount.
    #[default]
    BeforeDiscounts,
    /// Measured after the discounts of the promotions evaluated before this one.
    AfterDiscounts,
}

/// Whether a subtotal condition measures with or without tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaxBasis {
    /// As prices are shown: with tax where prices include it, without where
    /// they do not.
    #[default]
    AsPriced,
    /// Including tax (for tax-exclusive prices, the line's rate is added).
    IncludingTax,
    /// Excluding tax (for tax-inclusive prices, the line's tax is removed).
    ExcludingTax,
}

/// Something that must hold for a promotion to apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// At least `quantity` units of matching lines (or more than
    /// `quantity`, with [`Threshold::MoreThan`]).
    MinQuantity {
        /// Which lines count.
        selector: Selector,
        /// The threshold number of units.
        quantity: u32,
        /// Whether `quantity` itself meets it (`>=`, the default) or only
        /// more does (`>`).
        #[serde(default)]
        threshold: Threshold,
    },
    /// The matching lines come to at least `amount` (or more than `amount`,
    /// with [`Threshold::MoreThan`]).
    MinSubtotal {
        /// Which lines count.
        selector: Selector,
        /// The threshold.
        amount: Money,
        /// Whether `amount` itself meets it (`>=`, the default) or only more
        /// does (`>`).
        #[serde(default)]
        threshold: Threshold,
        /// Before or after earlier discounts.
        #[serde(default)]
        discounts: DiscountBasis,
        /// With or without tax.
        #[serde(default)]
        tax: TaxBasis,
    },
    /// The buyer entered this coupon code (compared case-insensitively).
    Coupon {
        /// The code.
        code: CouponCode,
    },
    /// Some one matching line has at least `quantity` units (or more than
    /// `quantity`, with [`Threshold::MoreThan`]): "buy 3 of the same shirt".
    LineQuantity {
        /// Which lines count.
        selector: Selector,
        /// The threshold number of units on one line.
        quantity: u32,
        /// Whether `quantity` itself meets it (`>=`, the default) or only
        /// more does (`>`).
        #[serde(default)]
        threshold: Threshold,
    },
    /// The buyer belongs to this customer group.
    CustomerGroup {
        /// The group.
        group: CustomerGroup,
    },
    /// The buyer belongs to at least one of these customer groups.
    CustomerGroups {
        /// The groups (at least one).
        groups: BTreeSet<CustomerGroup>,
    },
    /// At least one of these conditions holds.
    AnyOf {
        /// The conditions (at least one).
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        conditions: Vec<Condition>,
    },
    /// Every one of these conditions holds (to nest inside
    /// [`AnyOf`](Condition::AnyOf): a promotion's own conditions must
    /// already all hold).
    AllOf {
        /// The conditions (at least one).
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        conditions: Vec<Condition>,
    },
    /// This is the buyer's first order.
    FirstOrder,
    /// The pricing time is within `[starts_at, ends_at)`.
    Window {
        /// The first instant it applies, if bounded.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        starts_at: Option<Timestamp>,
        /// The first instant it no longer applies, if bounded.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
        ends_at: Option<Timestamp>,
    },
}

impl Condition {
    /// The coupon codes this condition names, nested ones included.
    pub fn codes(&self) -> Vec<&CouponCode> {
        let mut codes = Vec::new();
        self.collect_codes(&mut codes);
        codes
    }

    fn collect_codes<'a>(&'a self, codes: &mut Vec<&'a CouponCode>) {
        match self {
            Condition::Coupon { code } => codes.push(code),
            Condition::AnyOf { conditions } | Condition::AllOf { conditions } => {
                for condition in conditions {
                    condition.collect_codes(codes);
                }
            }
            _ => {}
        }
    }

    fn validate(&self, depth: usize, currencies: &mut Vec<Currency>) -> Result<(), PromotionError> {
        if depth > MAX_NESTING {
            return Err(PromotionError::new(format!(
                "conditions nest at most {MAX_NESTING} deep"
            )));
        }
        let next = depth.saturating_add(1);
        match self {
            Condition::MinQuantity {
                selector,
                quantity,
                threshold,
            }
            | Condition::LineQuantity {
                selector,
                quantity,
                threshold,
            } => {
                selector.validate(next, currencies)?;
                // "More than 0 units" is a real condition; "at least 0"
                // always holds and is refused as a mistake.
                if *quantity == 0 && *threshold == Threshold::AtLeast {
                    return Err(PromotionError::new("a minimum quantity must be at least 1"));
                }
            }
            Condition::MinSubtotal {
                selector, amount, ..
            } => {
                selector.validate(next, currencies)?;
                check_amount("a minimum subtotal", *amount)?;
                currencies.push(amount.currency());
            }
            Condition::Window {
                starts_at: Some(start),
                ends_at: Some(end),
            } if start >= end => {
                return Err(PromotionError::new("the window must start before it ends"));
            }
            Condition::CustomerGroups { groups } if groups.is_empty() => {
                return Err(PromotionError::new(
                    "a set of customer groups must not be empty",
                ));
            }
            Condition::AnyOf { conditions } | Condition::AllOf { conditions } => {
                if conditions.is_empty() {
                    return Err(PromotionError::new("a set of conditions must not be empty"));
                }
                for condition in conditions {
                    condition.validate(next, currencies)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// How a fixed amount off items is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AmountPer {
    /// The amount off every matching unit.
    #[default]
    Unit,
    /// The amount once, spread over the matching lines in proportion to
    /// what they come to.
    Selection,
}

/// Which items a "buy X get Y" discounts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiscountOrder {
    /// The cheapest eligible items are discounted.
    #[default]
    CheapestFirst,
    /// The most expensive eligible items are discounted.
    MostExpensiveFirst,
}

/// What a promotion gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// `percent`% off the matching lines.
    PercentOffItems {
        /// Which lines.
        selector: Selector,
        /// Percent off, above 0 and at most 100.
        percent: Decimal,
    },
    /// A fixed amount off the matching lines.
    AmountOffItems {
        /// Which lines.
        selector: Selector,
        /// The amount (positive).
        amount: Money,
        /// Per unit, or once over the selection.
        #[serde(default)]
        per: AmountPer,
    },
    /// `percent`% off the whole cart (not shipping).
    PercentOffCart {
        /// Percent off, above 0 and at most 100.
        percent: Decimal,
    },
    /// A fixed amount off the whole cart (not shipping).
    AmountOffCart {
        /// The amount (positive).
        amount: Money,
    },
    /// Buy `buy_quantity` of `buy`, get `get_quantity` of `get` at `percent`%
    /// off (100 = free).
    BuyXGetY {
        /// What must be bought.
        buy: Selector,
        /// How many units must be bought per group.
        buy_quantity: u32,
        /// What is discounted.
        get: Selector,
        /// How many units are discounted per group.
        get_quantity: u32,
        /// Percent off the discounted units, above 0 and at most 100.
        percent: Decimal,
        /// Whether the offer repeats for every complete group (else once).
        #[serde(default)]
        repeat: bool,
        /// Which eligible units are discounted.
        #[serde(default)]
        order: DiscountOrder,
    },
    /// The `count` cheapest units of the matching lines (or the most
    /// expensive, by `order`) get `off`, with nothing else to buy: "the
    /// cheapest 2 items half price". Fewer matching units get it too.
    CheapestUnits {
        /// Which lines.
        selector: Selector,
        /// How many units at most (at least one).
        count: u32,
        /// What each of them gets.
        off: UnitsOff,
        /// Which units are discounted.
        #[serde(default)]
        order: DiscountOrder,
    },
    /// The best tier the matching lines reach applies: "spend 50 get 5 off,
    /// spend 100 get 15 off". The lines are measured as priced, before
    /// discounts; the tier's reward is taken off them.
    Tiered {
        /// Which lines are measured and discounted.
        selector: Selector,
        /// The tiers, by rising threshold (at least one).
        tiers: Vec<Tier>,
    },
    /// A bundle price: "these items for X". Each bundle takes `quantity`
    /// units of each item (the cheapest, or most expensive, units matching
    /// it, not taken by an earlier item); the units of as many bundles as
    /// the cart completes (one unless `repeat`) are discounted so that each
    /// bundle costs `price`, as priced, after earlier promotions. A bundle
    /// already cheaper than its price is not discounted.
    Bundle {
        /// What one bundle holds (at least one item).
        items: Vec<BundleItem>,
        /// What one bundle costs (positive).
        price: Money,
        /// Whether every complete bundle is priced so (else the first).
        #[serde(default)]
        repeat: bool,
        /// Which units go into bundles first.
        #[serde(default)]
        order: DiscountOrder,
    },
    /// Shipping is free.
    FreeShipping,
}

/// One item of a [`Bundle`](Action::Bundle): units of the lines a selector
/// matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleItem {
    /// Which lines supply it.
    pub selector: Selector,
    /// How many units of it one bundle holds (at least one).
    pub quantity: u32,
}

/// What each unit a [`CheapestUnits`](Action::CheapestUnits) picks gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnitsOff {
    /// `percent`% off each (100 = free), rounded as the shop's discounts
    /// round.
    Percent {
        /// Above 0 and at most 100.
        percent: Decimal,
    },
    /// `amount` off each (never below zero).
    Amount {
        /// Positive.
        amount: Money,
    },
}

/// One tier of a [`Tiered`](Action::Tiered) promotion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tier {
    /// The subtotal that reaches it (at least).
    pub threshold: Money,
    /// What it gives.
    pub reward: TierReward,
}

/// What a [`Tier`] gives, taken off the matching lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TierReward {
    /// A fixed amount, spread over the lines.
    AmountOff {
        /// Positive.
        amount: Money,
    },
    /// A percentage of the lines.
    PercentOff {
        /// Above 0 and at most 100.
        percent: Decimal,
    },
}

/// A promotion as a merchant writes it: plain data, checked by
/// [`Promotion::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionSpec {
    /// The identifier.
    pub id: PromotionId,
    /// The name shown to buyers.
    pub name: String,
    /// Evaluation order: lower numbers are evaluated first; ties by id.
    #[serde(default)]
    pub priority: i32,
    /// When it applies, promotions evaluated after it are not applied
    /// (only those of its [`group`](Self::group), when it has one).
    #[serde(default)]
    pub exclusive: bool,
    /// The group an exclusive promotion excludes the others of; promotions
    /// outside it, or of no group, still apply. `None`: an exclusive
    /// promotion excludes every promotion after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<PromotionGroup>,
    /// What must hold (all of them).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What it gives.
    pub action: Action,
    /// The most it can take off one cart.
    #[serde(default)]
    pub cap: Option<Money>,
    /// The most units of each line its discount covers ("limit 2 per
    /// item"): the rest of the line pays full price. For the percent and
    /// amount actions (items, cart, tiers); refused with the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_units_per_line: Option<u32>,
    /// How many orders can use it, in total.
    #[serde(default)]
    pub usage_limit: Option<u32>,
    /// How many orders one customer can use it for.
    #[serde(default)]
    pub per_customer_limit: Option<u32>,
}

/// A promotion that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid promotion: {reason}")]
pub struct PromotionError {
    /// What is wrong.
    pub reason: String,
}

impl PromotionError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A checked promotion. Serializes as its [`PromotionSpec`]; deserializing
/// checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PromotionSpec", into = "PromotionSpec")]
pub struct Promotion {
    spec: PromotionSpec,
    /// The currency of the amounts it names, if any (checked to be one).
    #[serde(skip)]
    currency: Option<Currency>,
}

/// On the wire a promotion is its spec.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Promotion {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <PromotionSpec as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Promotion {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PromotionSpec as utoipa::ToSchema>::schemas(schemas);
    }
}

fn check_percent(percent: Decimal) -> Result<(), PromotionError> {
    if percent <= Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
        return Err(PromotionError::new(format!(
            "a percentage must be above 0 and at most 100, not {percent}"
        )));
    }
    Ok(())
}

fn check_amount(what: &str, amount: Money) -> Result<(), PromotionError> {
    if amount.minor() <= 0 {
        return Err(PromotionError::new(format!(
            "{what} must be positive, not {amount}"
        )));
    }
    Ok(())
}

impl Promotion {
    /// Checks `spec`: a non-blank name; percentages above 0 and at most 100;
    /// positive amounts, caps and thresholds; quantities of at least one
    /// (a quantity condition's may be zero when it is strict: "more than 0");
    /// non-empty sets of selectors, SKUs, customer groups and conditions;
    /// price ranges with a bound, not negative, the lowest not above the
    /// highest; nesting at most 8 deep; a window that starts before it
    /// ends; limits of at least one; all amounts in one currency.
    pub fn new(spec: PromotionSpec) -> Result<Self, PromotionError> {
        if spec.name.trim().is_empty() {
            return Err(PromotionError::new("the name must not be blank"));
        }
        let mut currencies = Vec::new();
        match &spec.action {
            Action::PercentOffItems { selector, percent } => {
                selector.validate(0, &mut currencies)?;
                check_percent(*percent)?;
            }
            Action::AmountOffItems {
                selector, amount, ..
            } => {
                selector.validate(0, &mut currencies)?;
                check_amount("the amount off", *amount)?;
                currencies.push(amount.currency());
            }
            Action::PercentOffCart { percent } => check_percent(*percent)?,
            Action::AmountOffCart { amount } => {
                check_amount("the amount off", *amount)?;
                currencies.push(amount.currency());
            }
            Action::BuyXGetY {
                buy,
                buy_quantity,
                get,
                get_quantity,
                percent,
                ..
            } => {
                buy.validate(0, &mut currencies)?;
                get.validate(0, &mut currencies)?;
                check_percent(*percent)?;
                if *buy_quantity == 0 || *get_quantity == 0 {
                    return Err(PromotionError::new(
                        "buy X get Y needs at least one unit to buy and one to get",
                    ));
                }
            }
            Action::CheapestUnits {
                selector,
                count,
                off,
                ..
            } => {
                selector.validate(0, &mut currencies)?;
                if *count == 0 {
                    return Err(PromotionError::new(
                        "the cheapest units need a count of at least one",
                    ));
                }
                match off {
                    UnitsOff::Percent { percent } => check_percent(*percent)?,
                    UnitsOff::Amount { amount } => {
                        check_amount("the amount off", *amount)?;
                        currencies.push(amount.currency());
                    }
                }
            }
            Action::Tiered { selector, tiers } => {
                selector.validate(0, &mut currencies)?;
                if tiers.is_empty() {
                    return Err(PromotionError::new("a tiered promotion needs a tier"));
                }
                for tier in tiers {
                    check_amount("a tier's threshold", tier.threshold)?;
                    currencies.push(tier.threshold.currency());
                    match tier.reward {
                        TierReward::AmountOff { amount } => {
                            check_amount("a tier's amount off", amount)?;
                            currencies.push(amount.currency());
                        }
                        TierReward::PercentOff { percent } => check_percent(percent)?,
                    }
                }
                if tiers.windows(2).any(|w| {
                    w.first().map(|t| t.threshold.minor()) >= w.last().map(|t| t.threshold.minor())
                }) {
                    return Err(PromotionError::new(
                        "tiers must be listed by strictly rising threshold",
                    ));
                }
            }
            Action::Bundle { items, price, .. } => {
                if items.is_empty() {
                    return Err(PromotionError::new("a bundle needs an item"));
                }
                for item in items {
                    item.selector.validate(0, &mut currencies)?;
                    if item.quantity == 0 {
                        return Err(PromotionError::new(
                            "a bundle item's quantity must be at least 1",
                        ));
                    }
                }
                check_amount("a bundle price", *price)?;
                currencies.push(price.currency());
            }
            Action::FreeShipping => {}
        }
        for condition in &spec.conditions {
            condition.validate(0, &mut currencies)?;
        }
        if let Some(units) = spec.max_units_per_line {
            if units == 0 {
                return Err(PromotionError::new(
                    "a limit of units per line must be at least 1",
                ));
            }
            if !matches!(
                spec.action,
                Action::PercentOffItems { .. }
                    | Action::AmountOffItems { .. }
                    | Action::PercentOffCart { .. }
                    | Action::AmountOffCart { .. }
                    | Action::Tiered { .. }
            ) {
                return Err(PromotionError::new(
                    "a limit of units per line applies to percent and amount actions only",
                ));
            }
        }
        if let Some(cap) = spec.cap {
            check_amount("the cap", cap)?;
            currencies.push(cap.currency());
        }
        if spec.usage_limit == Some(0) || spec.per_customer_limit == Some(0) {
            return Err(PromotionError::new("a usage limit must be at least 1"));
        }
        if currencies.windows(2).any(|w| w.first() != w.last()) {
            return Err(PromotionError::new("all amounts must be in one currency"));
        }
        let currency = currencies.first().copied();
        Ok(Self { spec, currency })
    }

    /// The specification.
    pub fn spec(&self) -> &PromotionSpec {
        &self.spec
    }

    /// The identifier.
    pub fn id(&self) -> &PromotionId {
        &self.spec.id
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The evaluation priority (lower first).
    pub fn priority(&self) -> i32 {
        self.spec.priority
    }

    /// Whether it stops the promotions after it when it applies.
    pub fn exclusive(&self) -> bool {
        self.spec.exclusive
    }

    /// The conditions.
    pub fn conditions(&self) -> &[Condition] {
        &self.spec.conditions
    }

    /// The action.
    pub fn action(&self) -> &Action {
        &self.spec.action
    }

    /// The cap.
    pub fn cap(&self) -> Option<Money> {
        self.spec.cap
    }

    /// The total usage limit.
    pub fn usage_limit(&self) -> Option<u32> {
        self.spec.usage_limit
    }

    /// The per-customer usage limit.
    pub fn per_customer_limit(&self) -> Option<u32> {
        self.spec.per_customer_limit
    }

    /// Whether redeeming it must be counted (it has a limit).
    pub fn is_limited(&self) -> bool {
        self.spec.usage_limit.is_some() || self.spec.per_customer_limit.is_some()
    }

    /// The amounts it names are in this currency (`None` if it names none).
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }

    /// The most units of each line its discount covers, if limited.
    pub fn max_units_per_line(&self) -> Option<u32> {
        self.spec.max_units_per_line
    }

    /// The group its exclusivity is limited to, if any.
    pub fn group(&self) -> Option<&PromotionGroup> {
        self.spec.group.as_ref()
    }
}

impl TryFrom<PromotionSpec> for Promotion {
    type Error = PromotionError;

    fn try_from(spec: PromotionSpec) -> Result<Self, Self::Error> {
        Self::new(spec)
    }
}

impl From<Promotion> for PromotionSpec {
    fn from(promotion: Promotion) -> Self {
        promotion.spec
    }
}

impl fmt::Display for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.spec.name, self.spec.id)
    }
}

/// How often a promotion has been redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionUsage {
    /// Orders that used it, in total.
    pub total: u32,
    /// Orders of the customer being priced that used it.
    pub by_customer: u32,
}
