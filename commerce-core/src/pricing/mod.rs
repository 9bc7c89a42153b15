//! Pricing: a pure function from a cart snapshot, the active promotions, the
//! tax rules, the applied codes, the customer and the time to a priced cart
//! in which every total is the exact sum of its parts.
//!
//! The storefront's preview and checkout call the same function, so a buyer
//! is charged what they were shown, and every promotion considered is
//! reported with the reason it did or did not apply.
//!
//! # How promotions combine
//!
//! Promotions are evaluated in ascending [`priority`](crate::promotion::PromotionSpec::priority)
//! (ties by id). For each, in this order:
//!
//! 1. If an *exclusive* promotion has already applied, it is
//!    [excluded](NotApplied::ExcludedBy).
//! 2. Its date window, coupon code, usage limits and currency are checked,
//!    then its other conditions, measured on the cart as the earlier
//!    promotions left it where the condition says so
//!    ([`DiscountBasis`](crate::promotion::DiscountBasis)).
//! 3. Its action computes a discount per line from what the earlier
//!    promotions *left*: discounts compound. A discount never takes a line
//!    below zero, and a cap limits the promotion's total.
//!
//! By default, percentages are taken of the total of the lines they apply
//! to and rounded once (half-up); that amount is then allocated over the
//! lines by the largest-remainder method, so the lines' parts sum exactly
//! to it. Fixed amounts spread over several lines are allocated the same
//! way. Ties go by SKU, so the result does not depend on the order of the
//! cart's lines. Each of these is a setting of
//! [`Rounding`](crate::rounding::Rounding), in
//! [`TaxConfig::rounding`](crate::tax::TaxConfig::rounding): rounding per
//! line, other rounding modes, net or gross weights, leftovers to the first
//! or last line, ties by cart order.
//!
//! A worked example of compounding: a A$100.00 basket of wine, with
//! "10% off wine" (priority 1) and "10% off the cart" (priority 2). The
//! first takes A$10.00; the second takes 10% of the A$90.00 left, A$9.00.
//! The buyer pays A$81.00, not A$80.00.
//!
//! ```
//! use commerce_core::pricing::{price, PricingInput, PricingLine};
//! use commerce_core::promotion::{Action, Promotion, PromotionSpec, Selector};
//! use commerce_core::tax::TaxConfig;
//! use commerce_core::*;
//! use rust_decimal::Decimal;
//!
//! let percent = |id: &str, priority, action| -> Result<Promotion, Box<dyn std::error::Error>> {
//!     Ok(Promotion::new(PromotionSpec {
//!         id: PromotionId::parse(id)?,
//!         name: id.into(),
//!         priority,
//!         exclusive: false,
//!         group: None,
//!         conditions: vec![],
//!         action,
//!         cap: None,
//!         max_units_per_line: None,
//!         usage_limit: None,
//!         per_customer_limit: None,
//!     })?)
//! };
//! let wine = Selector::Category { category: Category::parse("wine")? };
//! let mut input = PricingInput::new(Currency::AUD, TaxConfig::australia_gst(), ManualClock::at_unix(0).now());
//! input.lines.push(PricingLine {
//!     sku: Sku::parse("SHIRAZ")?,
//!     product: ProductId::new(),
//!     name: "Shiraz".into(),
//!     options: Default::default(),
//!     category: Category::parse("wine")?,
//!     tax_category: TaxCategory::parse("standard")?,
//!     age_restricted: true,
//!     unit_price: Money::new(2_000, Currency::AUD),
//!     quantity: Quantity::new(5)?,
//! });
//! input.promotions.push(percent("wine-10", 1, Action::PercentOffItems { selector: wine, percent: Decimal::TEN })?);
//! input.promotions.push(percent("cart-10", 2, Action::PercentOffCart { percent: Decimal::TEN })?);
//!
//! let priced = price(&input)?;
//! assert_eq!(priced.totals.discount_total, Money::new(1_900, Currency::AUD));
//! assert_eq!(priced.totals.grand_total, Money::new(8_100, Currency::AUD));
//! // GST included in A$81.00 is 81 × 10/110 = 7.3636..., rounded half-up per line.
//! assert_eq!(priced.totals.tax_total, Money::new(736, Currency::AUD));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Totals
//!
//! For each line: `subtotal = unit_price × quantity`, `discounted =
//! subtotal − discounts`, and `total = discounted` when prices include tax
//! (the tax is part of it) or `discounted + tax` when they do not. Shipping
//! is charged the same way. For the cart:
//!
//! ```text
//! grand_total = subtotal − discount_total + shipping (+ tax_total if prices exclude tax)
//!             = Σ line totals + shipping total
//! tax_total   = Σ line taxes + shipping tax = Σ taxes by rate
//! ```
//!
//! Amounts that do not fit in `i64` minor units (a cart of very expensive
//! lines, say) are refused with [`MoneyError::Overflow`] (as
//! [`Error::Money`]), never wrapped and never a panic: every sum, product and
//! difference in pricing, promotions and tax is checked.

#![deny(clippy::arithmetic_side_effects)]

pub mod promotion;
pub mod rounding;
pub mod settings;
pub mod tax;

mod engine;
mod finish;

pub use engine::discount;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::catalog::Product;
use crate::clock::Timestamp;
use crate::error::{Entity, Error, Result};
use crate::ids::{
    Category, CouponCode, CustomerGroup, CustomerId, ProductId, PromotionId, Quantity, Sku,
    TaxCategory,
};
use crate::money::{Currency, Money, MoneyError};
use crate::promotion::{Promotion, PromotionUsage};
use crate::tax::{LineTax, PriceBasis, RoundingMode, ShippingTax, TaxConfig, TaxLine};

/// One cart line as pricing sees it: the catalog facts and the quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricingLine {
    /// The SKU (unique within a cart).
    pub sku: Sku,
    /// The product.
    pub product: ProductId,
    /// The product name.
    pub name: String,
    /// The variant's option values.
    pub options: BTreeMap<String, String>,
    /// The category promotions select on.
    pub category: Category,
    /// The tax category.
    pub tax_category: TaxCategory,
    /// Whether it needs an age verification.
    pub age_restricted: bool,
    /// The unit price.
    pub unit_price: Money,
    /// How many units.
    pub quantity: Quantity,
}

impl PricingLine {
    /// `quantity` of `sku` at `unit_price`, with only what pricing needs:
    /// the other facts are neutral until set with the `with_*` methods
    /// (product: the nil id; name: the SKU; no options; category
    /// `uncategorized`; tax category `standard`; not age-restricted).
    ///
    /// ```
    /// use commerce_core::pricing::{price, PricingInput, PricingLine};
    /// use commerce_core::tax::TaxConfig;
    /// use commerce_core::*;
    ///
    /// let input = PricingInput::new(Currency::AUD, TaxConfig::australia_gst(), ManualClock::at_unix(0).now())
    ///     .with_line(PricingLine::new(Sku::parse("TEA")?, Money::new(1_100, Currency::AUD), Quantity::new(2)?))
    ///     .with_line(
    ///         PricingLine::new(Sku::parse("APPLES")?, Money::new(450, Currency::AUD), Quantity::new(1)?)
    ///             .with_tax_category(TaxCategory::parse("gst-free")?),
    ///     );
    /// let priced = price(&input)?;
    /// assert_eq!(priced.totals.grand_total, Money::new(2_650, Currency::AUD));
    /// assert_eq!(priced.totals.tax_total, Money::new(200, Currency::AUD));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(sku: Sku, unit_price: Money, quantity: Quantity) -> Self {
        Self {
            name: sku.as_str().to_owned(),
            sku,
            product: ProductId::from_uuid(uuid::Uuid::nil()),
            options: BTreeMap::new(),
            category: Category::builtin("uncategorized"),
            tax_category: TaxCategory::builtin("standard"),
            age_restricted: false,
            unit_price,
            quantity,
        }
    }

    /// The same line, of `product`.
    #[must_use]
    pub fn with_product(mut self, product: ProductId) -> Self {
        self.product = product;
        self
    }

    /// The same line, in `category`.
    #[must_use]
    pub fn with_category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// The same line, taxed as `tax_category`.
    #[must_use]
    pub fn with_tax_category(mut self, tax_category: TaxCategory) -> Self {
        self.tax_category = tax_category;
        self
    }

    /// The line for `quantity` of `sku` of `product`.
    pub fn from_product(product: &Product, sku: &Sku, quantity: Quantity) -> Result<Self> {
        let variant = product
            .variant(sku)
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        Ok(Self {
            sku: sku.clone(),
            product: product.id(),
            name: product.name().to_owned(),
            options: variant.options().clone(),
            category: product.category().clone(),
            tax_category: product.tax_category().clone(),
            age_restricted: product.age_restricted(),
            unit_price: variant.price(),
            quantity,
        })
    }
}

/// Who is buying, as far as promotions care.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerContext {
    /// The customer, when known (per-customer limits need it).
    pub id: Option<CustomerId>,
    /// The groups they belong to.
    #[serde(default)]
    pub groups: BTreeSet<CustomerGroup>,
    /// Whether this would be their first order.
    #[serde(default)]
    pub first_order: bool,
}

/// Everything pricing depends on. Build it with [`PricingInput::new`] and
/// fill in what applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingInput {
    /// The cart's currency.
    pub currency: Currency,
    /// The lines, in cart order.
    pub lines: Vec<PricingLine>,
    /// The promotions to consider (any order).
    pub promotions: Vec<Promotion>,
    /// How often each limited promotion has been redeemed (missing: never).
    pub usage: HashMap<PromotionId, PromotionUsage>,
    /// The coupon codes the buyer entered.
    pub codes: BTreeSet<CouponCode>,
    /// The buyer.
    pub customer: CustomerContext,
    /// The flat shipping fee, if shipping is charged.
    pub shipping: Option<Money>,
    /// The tax rules, and how every amount is rounded and split
    /// ([`TaxConfig::rounding`]).
    pub tax: TaxConfig,
    /// The pricing time (promotion windows).
    pub now: Timestamp,
}

impl PricingInput {
    /// An input with no lines, promotions, codes or shipping, and an
    /// anonymous customer.
    pub fn new(currency: Currency, tax: TaxConfig, now: Timestamp) -> Self {
        Self {
            currency,
            lines: Vec::new(),
            promotions: Vec::new(),
            usage: HashMap::new(),
            codes: BTreeSet::new(),
            customer: CustomerContext::default(),
            shipping: None,
            tax,
            now,
        }
    }

    /// The same input with `line` after its lines.
    #[must_use]
    pub fn with_line(mut self, line: PricingLine) -> Self {
        self.lines.push(line);
        self
    }

    /// The same input with `promotion` to consider.
    #[must_use]
    pub fn with_promotion(mut self, promotion: Promotion) -> Self {
        self.promotions.push(promotion);
        self
    }

    /// The same input with the buyer's coupon `code` entered.
    #[must_use]
    pub fn with_code(mut self, code: CouponCode) -> Self {
        self.codes.insert(code);
        self
    }

    /// The same input with `fee` charged for shipping.
    #[must_use]
    pub fn with_shipping(mut self, fee: Money) -> Self {
        self.shipping = Some(fee);
        self
    }

    /// The same input for `customer`.
    #[must_use]
    pub fn with_customer(mut self, customer: CustomerContext) -> Self {
        self.customer = customer;
        self
    }
}

/// A discount a promotion gave to a line or to shipping, on both bases.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineDiscount {
    /// The promotion.
    pub promotion: PromotionId,
    /// The amount taken off, as priced (the basis prices are entered on:
    /// with tax when they include it).
    pub amount: Money,
    /// The same discount including tax: `amount` when prices include tax,
    /// else `amount` plus its tax at the line's rate.
    pub including_tax: Money,
    /// The same discount excluding tax: `amount` when prices exclude tax,
    /// else `amount` less the tax it includes at the line's rate.
    pub excluding_tax: Money,
}

impl LineDiscount {
    /// `amount` off by `promotion`, entered on `prices`, at a rate of
    /// `percent`: the tax it carries is rounded by `mode` (the shop's tax
    /// rounding), so that `including_tax − excluding_tax` is that tax.
    ///
    /// ```
    /// use commerce_core::pricing::LineDiscount;
    /// use commerce_core::tax::{PriceBasis, RoundingMode};
    /// use commerce_core::{Currency, Decimal, Money, PromotionId};
    ///
    /// // US$10.00 off a line taxed at 6.5%, prices excluding tax: US$10.65 with tax.
    /// let off = LineDiscount::at_rate(
    ///     PromotionId::parse("ten")?,
    ///     Money::new(1_000, Currency::USD),
    ///     Decimal::new(65, 1),
    ///     PriceBasis::TaxExclusive,
    ///     RoundingMode::HalfUp,
    /// )?;
    /// assert_eq!(off.including_tax, Money::new(1_065, Currency::USD));
    /// assert_eq!(off.excluding_tax, Money::new(1_000, Currency::USD));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn at_rate(
        promotion: PromotionId,
        amount: Money,
        percent: rust_decimal::Decimal,
        prices: PriceBasis,
        mode: RoundingMode,
    ) -> Result<Self, MoneyError> {
        let mut discount = Self {
            promotion,
            amount,
            including_tax: amount,
            excluding_tax: amount,
        };
        discount.set_rate(percent, prices, mode)?;
        Ok(discount)
    }

    /// Sets [`including_tax`](Self::including_tax) and
    /// [`excluding_tax`](Self::excluding_tax) from `amount`, as
    /// [`at_rate`](Self::at_rate) does.
    pub fn set_rate(
        &mut self,
        percent: rust_decimal::Decimal,
        prices: PriceBasis,
        mode: RoundingMode,
    ) -> Result<(), MoneyError> {
        set_rates(std::slice::from_mut(self), percent, prices, mode)
    }
}

/// Sets every one of `discounts` (of one line, at `percent`) on both bases:
/// the rate's ratio is worked out once, and each discount's tax is then a
/// 64-bit multiplication and division where it fits (every real amount and
/// rate), else the exact decimal tax rounded by `mode`.
pub(crate) fn set_rates(
    discounts: &mut [LineDiscount],
    percent: rust_decimal::Decimal,
    prices: PriceBasis,
    mode: RoundingMode,
) -> Result<(), MoneyError> {
    if percent.is_zero() {
        // Untaxed: the amount on both bases.
        for discount in discounts {
            discount.including_tax = discount.amount;
            discount.excluding_tax = discount.amount;
        }
        return Ok(());
    }
    let ratio = u64::try_from(percent.mantissa()).ok().and_then(|mantissa| {
        let hundred = 10_u64.checked_pow(percent.scale())?.checked_mul(100)?;
        let denominator = match prices {
            PriceBasis::TaxExclusive => hundred,
            PriceBasis::TaxInclusive => hundred.checked_add(mantissa)?,
        };
        Some((mantissa, denominator))
    });
    for discount in discounts {
        let amount = discount.amount;
        let fast = ratio.and_then(|(mantissa, denominator)| {
            let numerator = u64::try_from(amount.minor()).ok()?.checked_mul(mantissa)?;
            let tax = mode.round_ratio(i128::from(numerator), i128::from(denominator))?;
            i64::try_from(tax).ok()
        });
        let tax = match fast {
            Some(tax) => tax,
            // Past 64 bits (or a negative amount): the same value in decimals.
            None => mode.to_minor(
                crate::tax::TaxRate::taxable("", percent).exact_tax(amount.minor(), prices)?,
            )?,
        };
        let tax = Money::new(tax, amount.currency());
        (discount.including_tax, discount.excluding_tax) = match prices {
            PriceBasis::TaxInclusive => (amount, amount.checked_sub(tax)?),
            PriceBasis::TaxExclusive => (amount.checked_add(tax)?, amount),
        };
    }
    Ok(())
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricedLine {
    /// The SKU.
    pub sku: Sku,
    /// The product.
    pub product: ProductId,
    /// The product name.
    pub name: String,
    /// The variant's option values.
    pub options: BTreeMap<String, String>,
    /// The category.
    pub category: Category,
    /// The tax category.
    pub tax_category: TaxCategory,
    /// Whether it needs an age verification.
    pub age_restricted: bool,
    /// How many units.
    pub quantity: Quantity,
    /// The unit price.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub subtotal: Money,
    /// Each discount, in evaluation order.
    pub discounts: Vec<LineDiscount>,
    /// The sum of the discounts.
    pub discount_total: Money,
    /// `subtotal − discount_total`, as priced (with tax if prices include it).
    pub discounted: Money,
    /// What one unit comes to without tax, after discounts: the line's net
    /// amount ([`net`](Self::net), exact) over its quantity, to the nearest
    /// minor unit (half-up). The "item net price" of an invoice line
    /// (EN 16931, BT-146).
    pub unit_net_price: Money,
    /// The line's tax.
    pub tax: LineTax,
    /// What the buyer pays for the line: `discounted`, plus the tax when
    /// prices exclude it.
    pub total: Money,
}

impl PricedLine {
    /// The line's amount without tax.
    pub fn net(&self) -> Result<Money, MoneyError> {
        if self.total == self.discounted {
            self.discounted.checked_sub(self.tax.amount)
        } else {
            Ok(self.discounted)
        }
    }
}

/// Shipping as priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingCharge {
    /// The fee before discounts.
    pub amount: Money,
    /// Each discount (free shipping).
    pub discounts: Vec<LineDiscount>,
    /// The sum of the discounts.
    pub discount_total: Money,
    /// `amount − discount_total`.
    pub discounted: Money,
    /// Its tax, when shipping is taxable.
    pub tax: Option<LineTax>,
    /// What the buyer pays for shipping.
    pub total: Money,
}

/// The cart's totals. Each is the exact sum of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    /// Σ line subtotals, before discounts.
    pub subtotal: Money,
    /// Σ discounts on lines and shipping.
    pub discount_total: Money,
    /// The shipping fee before discounts (zero when none is charged).
    pub shipping: Money,
    /// Σ taxes (included in the prices, or added, by the price basis).
    pub tax_total: Money,
    /// What the buyer pays.
    pub grand_total: Money,
}

/// What a measured condition found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Measured {
    /// Units of matching lines.
    Quantity {
        /// The minimum asked.
        required: u32,
        /// The units found.
        found: u32,
    },
    /// The amount of matching lines.
    Subtotal {
        /// The minimum asked.
        required: Money,
        /// The amount found (rounded half-up for display; the comparison is exact).
        found: Money,
    },
    /// Units on the one matching line that has the most.
    LineQuantity {
        /// The threshold asked.
        required: u32,
        /// The most units found on one matching line.
        found: u32,
    },
    /// The customer is not in the group.
    CustomerGroup {
        /// The group asked for.
        required: CustomerGroup,
    },
    /// The customer is in none of the groups.
    CustomerGroups {
        /// The groups asked for.
        required: BTreeSet<CustomerGroup>,
    },
    /// None of a set of alternatives holds ([`Condition::AnyOf`](crate::promotion::Condition::AnyOf)).
    NoneOf {
        /// Why each does not, in order.
        #[cfg_attr(feature = "openapi", schema(no_recursion))]
        unmet: Vec<NotApplied>,
    },
    /// This is not the customer's first order.
    FirstOrder,
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotApplied {
    /// An exclusive promotion evaluated earlier applied.
    ExcludedBy {
        /// That promotion.
        promotion: PromotionId,
    },
    /// Its window has not started.
    NotStarted {
        /// When it starts.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        starts_at: Timestamp,
    },
    /// Its window has ended.
    Ended {
        /// When it ended.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        ended_at: Timestamp,
    },
    /// Its coupon code was not entered.
    CodeMissing {
        /// The code.
        code: CouponCode,
    },
    /// It has been redeemed as often as it may be.
    UsageExhausted {
        /// The limit.
        limit: u32,
    },
    /// This customer has redeemed it as often as they may.
    CustomerLimitReached {
        /// The per-customer limit.
        limit: u32,
    },
    /// It has a per-customer limit and the customer is anonymous.
    CustomerRequired,
    /// Its amounts are in another currency than the cart's.
    CurrencyMismatch {
        /// The promotion's currency.
        found: Currency,
    },
    /// A condition does not hold.
    ConditionNotMet {
        /// What was measured.
        measured: Measured,
    },
    /// Its conditions hold but there was nothing left to discount.
    NothingToDiscount,
}

/// What became of one promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PromotionOutcome {
    /// It applied and took `discount` off in total.
    Applied {
        /// The total it took off (lines and shipping).
        discount: Money,
    },
    /// It did not apply.
    NotApplied(NotApplied),
}

/// One promotion considered, in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromotionReport {
    /// The promotion.
    pub promotion: PromotionId,
    /// Its name.
    pub name: String,
    /// Whether it was limited (its redemption must be counted).
    pub limited: bool,
    /// What became of it.
    pub outcome: PromotionOutcome,
}

impl PromotionReport {
    /// Whether it applied.
    pub fn applied(&self) -> bool {
        matches!(self.outcome, PromotionOutcome::Applied { .. })
    }
}

/// A priced cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricedCart {
    /// The currency.
    pub currency: Currency,
    /// Whether prices include tax.
    pub prices: PriceBasis,
    /// The lines, in cart order.
    pub lines: Vec<PricedLine>,
    /// Shipping, when charged.
    pub shipping: Option<ShippingCharge>,
    /// The tax per rate.
    pub taxes: Vec<TaxLine>,
    /// The totals.
    pub totals: Totals,
    /// Every promotion considered, in evaluation order.
    pub promotions: Vec<PromotionReport>,
}

impl PricedCart {
    /// The promotions that applied.
    pub fn applied_promotions(&self) -> impl Iterator<Item = &PromotionReport> {
        self.promotions.iter().filter(|p| p.applied())
    }
}

/// The cart after promotions, before tax. [`PricingInput`] →
/// [`discount`] → [`tax_request`](Self::tax_request) → a
/// [`TaxCalculator`](crate::tax::TaxCalculator) → [`finish`](Self::finish).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountedCart {
    currency: Currency,
    prices: PriceBasis,
    shipping_tax: ShippingTax,
    lines: Vec<PricingLine>,
    discounts: Vec<Vec<LineDiscount>>,
    remaining: Vec<i64>,
    shipping: Option<i64>,
    shipping_discounts: Vec<LineDiscount>,
    reports: Vec<PromotionReport>,
    /// How taxes round: the tax carried by each discount.
    tax_mode: RoundingMode,
    /// Line indices in SKU order: the order of the tax request.
    canonical: Vec<usize>,
}

/// Applies the promotions of `input` and prices its lines, taxing them with
/// its [`TaxConfig`].
pub fn price(input: &PricingInput) -> Result<PricedCart> {
    let discounted = discount(input)?;
    let tax = input.tax.compute(&discounted.tax_request())?;
    discounted.finish(tax)
}
