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
//!    ([`DiscountBasis`]).
//! 3. Its action computes a discount per line from what the earlier
//!    promotions *left*: discounts compound. A discount never takes a line
//!    below zero, and a cap limits the promotion's total.
//!
//! Percentages are taken of the total of the lines they apply to and rounded
//! once (by the policy's [`RoundingMode`], half-up by default); that amount
//! is then allocated over the lines by the largest-remainder method, so the
//! lines' parts sum exactly to it. Fixed amounts spread over several lines
//! are allocated the same way. Lines are processed in SKU order, so the
//! result does not depend on the order of the cart's lines.
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
//!         conditions: vec![],
//!         action,
//!         cap: None,
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::catalog::Product;
use crate::clock::Timestamp;
use crate::error::{Entity, Error, Result};
use crate::ids::{
    Category, CouponCode, CustomerGroup, CustomerId, ProductId, PromotionId, Quantity, Sku,
    TaxCategory,
};
use crate::money::{Currency, Money, MoneyError, allocate_minor};
use crate::promotion::{
    Action, AmountPer, Condition, DiscountBasis, DiscountOrder, Promotion, PromotionUsage,
    Selector, TaxBasis,
};
use crate::tax::{
    LineTax, PriceBasis, RoundingMode, ShippingTax, TaxConfig, TaxError, TaxLine, TaxRequest,
    TaxResult, TaxableAmount,
};

/// One cart line as pricing sees it: the catalog facts and the quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The tax rules.
    pub tax: TaxConfig,
    /// How percentage discounts are rounded to the minor unit.
    pub discount_rounding: RoundingMode,
    /// The pricing time (promotion windows).
    pub now: Timestamp,
}

impl PricingInput {
    /// An input with no lines, promotions, codes or shipping, an anonymous
    /// customer, and half-up discount rounding.
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
            discount_rounding: RoundingMode::HalfUp,
            now,
        }
    }
}

/// A discount a promotion gave to a line or to shipping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineDiscount {
    /// The promotion.
    pub promotion: PromotionId,
    /// The amount taken off.
    pub amount: Money,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The customer is not in the group.
    CustomerGroup {
        /// The group asked for.
        required: CustomerGroup,
    },
    /// This is not the customer's first order.
    FirstOrder,
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        starts_at: Timestamp,
    },
    /// Its window has ended.
    Ended {
        /// When it ended.
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

/// Applies the promotions of `input`, leaving tax to be computed.
pub fn discount(input: &PricingInput) -> Result<DiscountedCart> {
    let currency = input.currency;
    for line in &input.lines {
        if line.unit_price.currency() != currency {
            return Err(Error::CurrencyMismatch {
                expected: currency,
                found: line.unit_price.currency(),
            });
        }
        if line.unit_price.is_negative() {
            return Err(Error::InvalidProduct(format!(
                "{} has a negative price",
                line.sku
            )));
        }
    }
    if let Some(fee) = input.shipping {
        if fee.currency() != currency {
            return Err(Error::CurrencyMismatch {
                expected: currency,
                found: fee.currency(),
            });
        }
        if fee.is_negative() {
            return Err(Error::InvalidConfig(
                "the shipping fee must not be negative".into(),
            ));
        }
    }
    let subtotals = input
        .lines
        .iter()
        .map(|line| {
            line.unit_price
                .checked_mul(i64::from(line.quantity.get()))
                .map(Money::minor)
        })
        .collect::<Result<Vec<i64>, MoneyError>>()?;
    let mut canonical: Vec<usize> = (0..input.lines.len()).collect();
    canonical.sort_by(|&a, &b| sku_of(input, a).cmp(&sku_of(input, b)).then(a.cmp(&b)));

    let mut state = Engine {
        input,
        canonical,
        subtotals: subtotals.clone(),
        remaining: subtotals,
        discounts: vec![Vec::new(); input.lines.len()],
        shipping: input.shipping.map(Money::minor),
        shipping_discounts: Vec::new(),
    };
    let mut promotions: Vec<&Promotion> = input.promotions.iter().collect();
    promotions.sort_by(|a, b| {
        a.priority()
            .cmp(&b.priority())
            .then_with(|| a.id().cmp(b.id()))
    });
    let mut stopped_by: Option<PromotionId> = None;
    let mut reports = Vec::with_capacity(promotions.len());
    for promotion in promotions {
        let outcome = match &stopped_by {
            Some(by) => PromotionOutcome::NotApplied(NotApplied::ExcludedBy {
                promotion: by.clone(),
            }),
            None => match state.eligibility(promotion)? {
                Some(reason) => PromotionOutcome::NotApplied(reason),
                None => state.apply(promotion)?,
            },
        };
        if promotion.exclusive() && matches!(outcome, PromotionOutcome::Applied { .. }) {
            stopped_by = Some(promotion.id().clone());
        }
        reports.push(PromotionReport {
            promotion: promotion.id().clone(),
            name: promotion.name().to_owned(),
            limited: promotion.is_limited(),
            outcome,
        });
    }
    Ok(DiscountedCart {
        currency,
        prices: input.tax.prices,
        shipping_tax: input.tax.shipping.clone(),
        lines: input.lines.clone(),
        discounts: state.discounts,
        remaining: state.remaining,
        shipping: state.shipping,
        shipping_discounts: state.shipping_discounts,
        reports,
        canonical: state.canonical,
    })
}

/// Splits `total` minor units over exact shares by the largest-remainder
/// method: each part is its share rounded down, and the units left go one
/// each to the largest fractional remainders (ties to the earlier share).
fn allocate_exact(total: i64, exacts: &[Decimal]) -> Vec<i64> {
    let mut parts: Vec<i64> = exacts
        .iter()
        .map(|e| e.floor().to_i64().unwrap_or(0))
        .collect();
    let mut left = total - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..exacts.len()).collect();
    order.sort_by(|&a, &b| {
        let frac = |i: usize| exacts.get(i).map(|e| *e - e.floor()).unwrap_or_default();
        frac(b).cmp(&frac(a)).then(a.cmp(&b))
    });
    for i in order
        .into_iter()
        .cycle()
        .take(exacts.len().saturating_mul(2))
    {
        if left <= 0 {
            break;
        }
        if let Some(part) = parts.get_mut(i) {
            *part += 1;
            left -= 1;
        }
    }
    parts
}

fn sku_of(input: &PricingInput, index: usize) -> Option<&Sku> {
    input.lines.get(index).map(|line| &line.sku)
}

struct Engine<'a> {
    input: &'a PricingInput,
    /// Line indices in SKU order: the order allocations see.
    canonical: Vec<usize>,
    subtotals: Vec<i64>,
    remaining: Vec<i64>,
    discounts: Vec<Vec<LineDiscount>>,
    shipping: Option<i64>,
    shipping_discounts: Vec<LineDiscount>,
}

impl Engine<'_> {
    fn line(&self, index: usize) -> Option<&PricingLine> {
        self.input.lines.get(index)
    }

    fn remaining(&self, index: usize) -> i64 {
        self.remaining.get(index).copied().unwrap_or(0)
    }

    /// Matching line indices in canonical order.
    fn matching(&self, selector: &Selector) -> Vec<usize> {
        self.canonical
            .iter()
            .copied()
            .filter(|&i| {
                self.line(i)
                    .is_some_and(|l| selector.matches(&l.sku, l.product, &l.category))
            })
            .collect()
    }

    /// Why `promotion` cannot apply, or `None` if it can.
    fn eligibility(&self, promotion: &Promotion) -> Result<Option<NotApplied>> {
        let now = self.input.now;
        for condition in promotion.conditions() {
            if let Condition::Window { starts_at, ends_at } = condition {
                if let Some(start) = starts_at.filter(|start| now < *start) {
                    return Ok(Some(NotApplied::NotStarted { starts_at: start }));
                }
                if let Some(end) = ends_at.filter(|end| now >= *end) {
                    return Ok(Some(NotApplied::Ended { ended_at: end }));
                }
            }
        }
        for condition in promotion.conditions() {
            if let Condition::Coupon { code } = condition
                && !self.input.codes.contains(code)
            {
                return Ok(Some(NotApplied::CodeMissing { code: code.clone() }));
            }
        }
        let usage = self
            .input
            .usage
            .get(promotion.id())
            .copied()
            .unwrap_or_default();
        if let Some(limit) = promotion
            .usage_limit()
            .filter(|limit| usage.total >= *limit)
        {
            return Ok(Some(NotApplied::UsageExhausted { limit }));
        }
        if let Some(limit) = promotion.per_customer_limit() {
            if self.input.customer.id.is_none() {
                return Ok(Some(NotApplied::CustomerRequired));
            }
            if usage.by_customer >= limit {
                return Ok(Some(NotApplied::CustomerLimitReached { limit }));
            }
        }
        if let Some(found) = promotion.currency().filter(|c| *c != self.input.currency) {
            return Ok(Some(NotApplied::CurrencyMismatch { found }));
        }
        for condition in promotion.conditions() {
            if let Some(measured) = self.unmet(condition)? {
                return Ok(Some(NotApplied::ConditionNotMet { measured }));
            }
        }
        Ok(None)
    }

    /// What an unmet condition measured, or `None` if it holds.
    fn unmet(&self, condition: &Condition) -> Result<Option<Measured>> {
        let customer = &self.input.customer;
        Ok(match condition {
            Condition::CustomerGroup { group } if !customer.groups.contains(group) => {
                Some(Measured::CustomerGroup {
                    required: group.clone(),
                })
            }
            Condition::FirstOrder if !customer.first_order => Some(Measured::FirstOrder),
            Condition::MinQuantity { selector, quantity } => {
                let found: u64 = self
                    .matching(selector)
                    .iter()
                    .filter_map(|&i| self.line(i))
                    .map(|l| u64::from(l.quantity.get()))
                    .sum();
                (found < u64::from(*quantity)).then(|| Measured::Quantity {
                    required: *quantity,
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                })
            }
            Condition::MinSubtotal {
                selector,
                amount,
                discounts,
                tax,
            } => {
                let mut found = Decimal::ZERO;
                for i in self.matching(selector) {
                    let base = match discounts {
                        DiscountBasis::BeforeDiscounts => {
                            self.subtotals.get(i).copied().unwrap_or(0)
                        }
                        DiscountBasis::AfterDiscounts => self.remaining(i),
                    };
                    found += self.measure_tax(i, base, *tax)?;
                }
                (found < Decimal::from(amount.minor())).then(|| Measured::Subtotal {
                    required: *amount,
                    found: Money::new(
                        RoundingMode::HalfUp.to_minor(found).unwrap_or(i64::MAX),
                        self.input.currency,
                    ),
                })
            }
            _ => None,
        })
    }

    /// `base` minor units of line `index`, on the tax basis asked for.
    fn measure_tax(&self, index: usize, base: i64, basis: TaxBasis) -> Result<Decimal> {
        let amount = Decimal::from(base);
        let prices = self.input.tax.prices;
        let adjust = match (basis, prices) {
            (TaxBasis::AsPriced, _)
            | (TaxBasis::IncludingTax, PriceBasis::TaxInclusive)
            | (TaxBasis::ExcludingTax, PriceBasis::TaxExclusive) => return Ok(amount),
            (TaxBasis::IncludingTax, PriceBasis::TaxExclusive) => true,
            (TaxBasis::ExcludingTax, PriceBasis::TaxInclusive) => false,
        };
        let Some(line) = self.line(index) else {
            return Ok(amount);
        };
        let rate = self.input.tax.rate(&line.tax_category)?;
        let tax = rate.exact_tax(base, prices);
        Ok(if adjust { amount + tax } else { amount - tax })
    }

    fn round_percent(&self, base: i64, percent: Decimal) -> Result<i64> {
        let exact = Decimal::from(base) * percent / Decimal::ONE_HUNDRED;
        Ok(self.input.discount_rounding.to_minor(exact)?)
    }

    /// `total` allocated over `lines` by what they have left.
    fn spread(&self, total: i64, lines: &[usize]) -> Result<Vec<(usize, i64)>> {
        let weights: Vec<u64> = lines
            .iter()
            .map(|&i| self.remaining(i).unsigned_abs())
            .collect();
        if total == 0 || weights.iter().all(|w| *w == 0) {
            return Ok(Vec::new());
        }
        let parts = allocate_minor(total, &weights)?;
        Ok(lines.iter().copied().zip(parts).collect())
    }

    fn percent_off(&self, lines: &[usize], percent: Decimal) -> Result<Vec<(usize, i64)>> {
        let base: i64 = lines.iter().map(|&i| self.remaining(i)).sum();
        let off = self.round_percent(base, percent)?.min(base);
        self.spread(off, lines)
    }

    fn amount_off(&self, lines: &[usize], amount: i64) -> Result<Vec<(usize, i64)>> {
        let base: i64 = lines.iter().map(|&i| self.remaining(i)).sum();
        self.spread(amount.min(base), lines)
    }

    /// Per line, how many units a buy-X-get-Y discounts.
    fn get_units(
        &self,
        buy: &Selector,
        buy_quantity: u32,
        get: &Selector,
        get_quantity: u32,
        repeat: bool,
        order: DiscountOrder,
    ) -> Vec<(usize, u64)> {
        let mut get_lines = self.matching(get);
        get_lines.sort_by(|&a, &b| {
            let price = |i| self.line(i).map(|l| l.unit_price.minor()).unwrap_or(0);
            let by_price = match order {
                DiscountOrder::CheapestFirst => price(a).cmp(&price(b)),
                DiscountOrder::MostExpensiveFirst => price(b).cmp(&price(a)),
            };
            by_price.then_with(|| {
                let rank = |i| self.canonical.iter().position(|&c| c == i);
                rank(a).cmp(&rank(b))
            })
        });
        let quantity = |i| {
            self.line(i)
                .map(|l| u64::from(l.quantity.get()))
                .unwrap_or(0)
        };
        let buy_lines = self.matching(buy);
        let get_total: u64 = get_lines.iter().map(|&i| quantity(i)).sum();
        let (x, y) = (u64::from(buy_quantity), u64::from(get_quantity));
        let most = if repeat {
            get_total / y
        } else {
            (get_total / y).min(1)
        };
        for groups in (1..=most).rev() {
            // The first `groups × y` units in discount order are discounted...
            let mut left = groups * y;
            let mut chosen = Vec::new();
            for &i in &get_lines {
                let take = quantity(i).min(left);
                if take > 0 {
                    chosen.push((i, take));
                    left -= take;
                }
            }
            // ...if enough other units remain to be the ones bought.
            let buyable: u64 = buy_lines
                .iter()
                .map(|&i| {
                    let taken = chosen.iter().find(|(c, _)| *c == i).map_or(0, |(_, t)| *t);
                    quantity(i) - taken
                })
                .sum();
            if buyable >= groups * x {
                return chosen;
            }
        }
        Vec::new()
    }

    /// Applies `promotion`'s action, cap included.
    fn apply(&mut self, promotion: &Promotion) -> Result<PromotionOutcome> {
        let mut lines: Vec<(usize, i64)> = Vec::new();
        let mut shipping_off = 0;
        match promotion.action() {
            Action::PercentOffItems { selector, percent } => {
                lines = self.percent_off(&self.matching(selector), *percent)?;
            }
            Action::PercentOffCart { percent } => {
                lines = self.percent_off(&self.canonical.clone(), *percent)?;
            }
            Action::AmountOffItems {
                selector,
                amount,
                per,
            } => match per {
                AmountPer::Unit => {
                    for i in self.matching(selector) {
                        let units = self
                            .line(i)
                            .map(|l| i64::from(l.quantity.get()))
                            .unwrap_or(0);
                        let off = amount
                            .minor()
                            .checked_mul(units)
                            .ok_or(MoneyError::Overflow)?;
                        lines.push((i, off.min(self.remaining(i))));
                    }
                }
                AmountPer::Selection => {
                    lines = self.amount_off(&self.matching(selector), amount.minor())?;
                }
            },
            Action::AmountOffCart { amount } => {
                lines = self.amount_off(&self.canonical.clone(), amount.minor())?;
            }
            Action::BuyXGetY {
                buy,
                buy_quantity,
                get,
                get_quantity,
                percent,
                repeat,
                order,
            } => {
                // The exact discount of each line's discounted units, rounded
                // once in total and allocated by largest remainder.
                let mut exacts = Vec::new();
                for (i, units) in
                    self.get_units(buy, *buy_quantity, get, *get_quantity, *repeat, *order)
                {
                    let quantity = self
                        .line(i)
                        .map(|l| u64::from(l.quantity.get()))
                        .unwrap_or(1);
                    let share = Decimal::from(self.remaining(i)) * Decimal::from(units)
                        / Decimal::from(quantity);
                    exacts.push((i, share * *percent / Decimal::ONE_HUNDRED));
                }
                let total = self
                    .input
                    .discount_rounding
                    .to_minor(exacts.iter().map(|(_, e)| *e).sum())?;
                let parts =
                    allocate_exact(total, &exacts.iter().map(|(_, e)| *e).collect::<Vec<_>>());
                for ((i, _), off) in exacts.iter().zip(parts) {
                    lines.push((*i, off.min(self.remaining(*i))));
                }
            }
            Action::FreeShipping => shipping_off = self.shipping.unwrap_or(0),
        }
        lines.retain(|(_, off)| *off > 0);
        let total = lines.iter().map(|(_, off)| *off).sum::<i64>() + shipping_off;
        if let Some(cap) = promotion.cap().filter(|cap| total > cap.minor()) {
            let mut weights: Vec<u64> = lines.iter().map(|(_, off)| off.unsigned_abs()).collect();
            weights.push(shipping_off.unsigned_abs());
            let mut parts = allocate_minor(cap.minor(), &weights)?;
            shipping_off = parts.pop().unwrap_or(0);
            for ((_, off), part) in lines.iter_mut().zip(parts) {
                *off = part;
            }
            lines.retain(|(_, off)| *off > 0);
        }
        let total = lines.iter().map(|(_, off)| *off).sum::<i64>() + shipping_off;
        if total == 0 {
            return Ok(PromotionOutcome::NotApplied(NotApplied::NothingToDiscount));
        }
        let currency = self.input.currency;
        for (i, off) in lines {
            if let (Some(remaining), Some(discounts)) =
                (self.remaining.get_mut(i), self.discounts.get_mut(i))
            {
                *remaining -= off;
                discounts.push(LineDiscount {
                    promotion: promotion.id().clone(),
                    amount: Money::new(off, currency),
                });
            }
        }
        if shipping_off > 0 {
            if let Some(shipping) = self.shipping.as_mut() {
                *shipping -= shipping_off;
            }
            self.shipping_discounts.push(LineDiscount {
                promotion: promotion.id().clone(),
                amount: Money::new(shipping_off, currency),
            });
        }
        Ok(PromotionOutcome::Applied {
            discount: Money::new(total, currency),
        })
    }
}

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
            .map(|(line, remaining)| TaxableAmount {
                category: line.tax_category.clone(),
                amount: Money::new(*remaining, currency),
            })
            .collect();
        let shipping = match (&self.shipping_tax, self.shipping) {
            (ShippingTax::Taxable { category }, Some(amount)) => Some(TaxableAmount {
                category: category.clone(),
                amount: Money::new(amount, currency),
            }),
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
            let discounted = money(remaining);
            let total = if inclusive {
                discounted
            } else {
                discounted.checked_add(line_tax.amount)?
            };
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
                Some(ShippingCharge {
                    amount,
                    discounts: self.shipping_discounts,
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
