//! The promotions engine: applies promotions in order to the lines of a
//! [`PricingInput`], allocating every discount exactly.
//!
//! Every sum, product and difference is checked: amounts that do not fit
//! are [`MoneyError::Overflow`], never a wrap or a panic.
//!
//! The engine works on the lines in SKU order (the order allocations see),
//! by their position in that order. It indexes them once, by SKU, category
//! and product, so a selector is answered by a few lookups into a bit set
//! of positions rather than a comparison per line and selector, and the
//! lines it matches are the set bits, already in SKU order. A subtotal
//! measured as priced is summed in integers (the decimal sum of whole minor
//! units was exactly that); one measured with or without tax keeps the
//! decimal arithmetic, computing each line's adjusted amount once per
//! amount, and a sum before discounts once per selection.

#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{Error, Result};
use crate::ids::{Category, ProductId, PromotionGroup, PromotionId, Sku};
use crate::money::{Money, MoneyError, allocate_minor_into};
use crate::promotion::{
    Action, AmountPer, BundleItem, Condition, DiscountBasis, DiscountOrder, Promotion, Selector,
    TaxBasis, TierReward, UnitsOff,
};
use crate::tax::{PriceBasis, RoundingMode};

use super::rounding::{DiscountLevel, LineOrder, Split, SplitWeights, split_exact, split_weighted};

use super::{
    DiscountedCart, LineDiscount, Measured, NotApplied, PricingInput, PricingLine,
    PromotionOutcome, PromotionReport,
};

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
    // The cart's subtotal, and with shipping, must fit: every discount is
    // bounded by them, so no later sum of amounts can overflow.
    let subtotal = checked_sum(subtotals.iter().copied())?;
    subtotal
        .checked_add(input.shipping.map_or(0, Money::minor))
        .ok_or(MoneyError::Overflow)?;
    // Line indices in SKU order (equal SKUs, which a cart does not have, by index).
    let mut keyed: Vec<(&str, usize)> = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| (line.sku.as_str(), i))
        .collect();
    keyed.sort_unstable();
    let canonical: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();

    let mut state = Engine::new(input, &canonical, &subtotals);
    let mut promotions: Vec<&Promotion> = input.promotions.iter().collect();
    promotions.sort_by(|a, b| {
        a.priority()
            .cmp(&b.priority())
            .then_with(|| a.id().cmp(b.id()))
    });
    // The exclusive promotion that applied, and those that applied within
    // their groups.
    let mut stopped_by: Option<PromotionId> = None;
    let mut stopped_groups: Vec<(&PromotionGroup, &PromotionId)> = Vec::new();
    let mut reports = Vec::with_capacity(promotions.len());
    for promotion in promotions {
        let excluded_by = stopped_by.as_ref().or_else(|| {
            let group = promotion.group()?;
            stopped_groups
                .iter()
                .find(|(g, _)| *g == group)
                .map(|(_, by)| *by)
        });
        let outcome = match excluded_by {
            Some(by) => PromotionOutcome::NotApplied(NotApplied::ExcludedBy {
                promotion: by.clone(),
            }),
            None => match state.eligibility(promotion)? {
                Some(reason) => PromotionOutcome::NotApplied(reason),
                None => state.apply(promotion)?,
            },
        };
        if promotion.exclusive() && matches!(outcome, PromotionOutcome::Applied { .. }) {
            match promotion.group() {
                Some(group) => stopped_groups.push((group, promotion.id())),
                None => stopped_by = Some(promotion.id().clone()),
            }
        }
        reports.push(PromotionReport {
            promotion: promotion.id().clone(),
            name: promotion.name().to_owned(),
            limited: promotion.is_limited(),
            outcome,
        });
    }
    // Back from SKU order to cart order, each line's discounts in the
    // order they were given.
    let mut counts = vec![0_usize; canonical.len()];
    for &(p, _, _) in &state.given {
        if let Some(count) = counts.get_mut(p) {
            *count = count.saturating_add(1);
        }
    }
    let mut discounts: Vec<Vec<LineDiscount>> = vec![Vec::new(); input.lines.len()];
    let mut remaining = subtotals;
    for ((&i, count), left) in canonical.iter().zip(counts).zip(&state.remaining) {
        if let (Some(d), Some(r)) = (discounts.get_mut(i), remaining.get_mut(i)) {
            *d = Vec::with_capacity(count);
            *r = *left;
        }
    }
    for (p, promotion, off) in state.given {
        if let Some(d) = canonical.get(p).and_then(|&i| discounts.get_mut(i)) {
            let amount = Money::new(off, currency);
            d.push(LineDiscount {
                promotion: promotion.clone(),
                amount,
                including_tax: amount,
                excluding_tax: amount,
            });
        }
    }
    Ok(DiscountedCart {
        currency,
        prices: input.tax.prices,
        shipping_tax: input.tax.shipping.clone(),
        lines: input.lines.clone(),
        discounts,
        remaining,
        shipping: state.shipping,
        shipping_discounts: state.shipping_discounts,
        reports,
        tax_mode: input.tax.rounding.tax_mode,
        canonical,
    })
}

/// The sum of `amounts`, or an overflow error.
fn checked_sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64, MoneyError> {
    amounts.into_iter().try_fold(0_i64, |sum, amount| {
        sum.checked_add(amount).ok_or(MoneyError::Overflow)
    })
}

/// `a + b` for exact amounts, or an overflow error.
fn decimal_add(a: Decimal, b: Decimal) -> Result<Decimal, MoneyError> {
    a.checked_add(b).ok_or(MoneyError::Overflow)
}

/// `a × b ÷ c` for exact amounts, or an overflow error (also for `c = 0`).
fn decimal_mul_div(a: Decimal, b: Decimal, c: Decimal) -> Result<Decimal, MoneyError> {
    a.checked_mul(b)
        .and_then(|p| p.checked_div(c))
        .ok_or(MoneyError::Overflow)
}

/// Splits `total` minor units over exact shares by the largest-remainder
/// method: each part is its share rounded down, and the units left go one
/// each to the largest fractional remainders (ties to the earlier share).
fn allocate_exact(total: i64, exacts: &[Decimal]) -> Result<Vec<i64>, MoneyError> {
    let mut parts: Vec<i64> = exacts
        .iter()
        .map(|e| e.floor().to_i64().ok_or(MoneyError::Overflow))
        .collect::<Result<_, _>>()?;
    let given = checked_sum(parts.iter().copied())?;
    let mut left = total.checked_sub(given).ok_or(MoneyError::Overflow)?;
    let mut order: Vec<usize> = (0..exacts.len()).collect();
    order.sort_by(|&a, &b| {
        let frac = |i: usize| {
            exacts
                .get(i)
                .and_then(|e| e.checked_sub(e.floor()))
                .unwrap_or_default()
        };
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
            *part = part.checked_add(1).ok_or(MoneyError::Overflow)?;
            left = left.checked_sub(1).ok_or(MoneyError::Overflow)?;
        }
    }
    Ok(parts)
}

/// Carts of up to `64 × INLINE_WORDS` lines keep their bit sets inline.
const INLINE_WORDS: usize = 4;

/// A set of line positions (in SKU order), one bit each.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mask {
    Inline([u64; INLINE_WORDS]),
    Heap(Vec<u64>),
}

impl Mask {
    /// No line of a cart of `len` lines.
    fn empty(len: usize) -> Self {
        let words = len.div_ceil(64);
        if words <= INLINE_WORDS {
            Mask::Inline([0; INLINE_WORDS])
        } else {
            Mask::Heap(vec![0; words])
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            Mask::Inline(words) => words,
            Mask::Heap(words) => words,
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Mask::Inline(words) => words,
            Mask::Heap(words) => words,
        }
    }

    fn insert(&mut self, position: usize) {
        if let Some(word) = self.words_mut().get_mut(position / 64) {
            *word |= 1_u64 << (position % 64);
        }
    }

    fn union(&mut self, other: &Mask) {
        for (word, other) in self.words_mut().iter_mut().zip(other.words()) {
            *word |= *other;
        }
    }

    /// The positions, in ascending (SKU) order.
    fn positions(&self) -> Positions<'_> {
        Positions {
            words: self.words().iter(),
            current: 0,
            base: 0,
            next_base: 0,
        }
    }
}

/// The set bits of a [`Mask`], lowest first.
struct Positions<'a> {
    words: std::slice::Iter<'a, u64>,
    /// The bits of the current word not yet returned.
    current: u64,
    /// The position of the current word's lowest bit.
    base: usize,
    /// The position of the next word's lowest bit.
    next_base: usize,
}

impl Iterator for Positions<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.current == 0 {
            self.current = *self.words.next()?;
            self.base = self.next_base;
            self.next_base = self.next_base.saturating_add(64);
        }
        let bit = self.current.trailing_zeros() as usize;
        self.current &= self.current.wrapping_sub(1);
        Some(self.base.saturating_add(bit))
    }
}

/// The lines in SKU order, indexed for selectors.
struct Index<'a> {
    /// The lines, by position.
    lines: Vec<&'a PricingLine>,
    /// Every line.
    all: Mask,
    /// Positions grouped by category, each group in SKU order.
    by_category: Vec<usize>,
    /// Each category, with its group's range in `by_category`, by category.
    categories: Vec<(&'a Category, usize, usize)>,
    /// Positions grouped by product, each group in SKU order.
    by_product: Vec<usize>,
    /// Each product, with its group's range in `by_product`, by product.
    products: Vec<(ProductId, usize, usize)>,
}

/// `keyed` (key, position) pairs sorted, as the positions and each distinct
/// key with the range of its positions.
fn group<K: Ord + Copy>(mut keyed: Vec<(K, usize)>) -> (Vec<usize>, Vec<(K, usize, usize)>) {
    keyed.sort_unstable();
    let mut groups: Vec<(K, usize, usize)> = Vec::new();
    for (at, &(key, _)) in keyed.iter().enumerate() {
        match groups.last_mut() {
            Some((last, _, end)) if *last == key => *end = at.saturating_add(1),
            _ => groups.push((key, at, at.saturating_add(1))),
        }
    }
    (keyed.into_iter().map(|(_, p)| p).collect(), groups)
}

impl<'a> Index<'a> {
    /// The index of `lines`; grouped by category and product only when
    /// there are `promotions` to select lines (a cart without them needs
    /// none of it).
    fn new(lines: Vec<&'a PricingLine>, promotions: bool) -> Self {
        if !promotions {
            return Self {
                all: Mask::empty(0),
                lines,
                by_category: Vec::new(),
                categories: Vec::new(),
                by_product: Vec::new(),
                products: Vec::new(),
            };
        }
        let (by_category, categories) = group(
            lines
                .iter()
                .enumerate()
                .map(|(p, line)| (&line.category, p))
                .collect(),
        );
        let (by_product, products) = group(
            lines
                .iter()
                .enumerate()
                .map(|(p, line)| (line.product, p))
                .collect(),
        );
        let mut all = Mask::empty(lines.len());
        (0..lines.len()).for_each(|p| all.insert(p));
        Self {
            lines,
            all,
            by_category,
            categories,
            by_product,
            products,
        }
    }

    fn line(&self, position: usize) -> Option<&'a PricingLine> {
        self.lines.get(position).copied()
    }

    fn quantity(&self, position: usize) -> u64 {
        self.line(position)
            .map_or(0, |line| u64::from(line.quantity.get()))
    }

    /// The lines `selector` matches.
    fn select(&self, selector: &Selector) -> Mask {
        if let Selector::All = selector {
            return self.all.clone();
        }
        let mut mask = Mask::empty(self.lines.len());
        self.add(selector, &mut mask);
        mask
    }

    /// Adds the lines of `sku` (one at most: a cart has each SKU once) to `mask`.
    fn add_sku(&self, sku: &Sku, mask: &mut Mask) {
        let start = self.lines.partition_point(|line| line.sku < *sku);
        (start..self.lines.len())
            .take_while(|&p| self.line(p).is_some_and(|line| line.sku == *sku))
            .for_each(|p| mask.insert(p));
    }

    /// Adds the lines `selector` matches to `mask`.
    fn add(&self, selector: &Selector, mask: &mut Mask) {
        let insert_group = |mask: &mut Mask, positions: &[usize], start: usize, end: usize| {
            positions
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .for_each(|&p| mask.insert(p));
        };
        match selector {
            Selector::All => mask.union(&self.all),
            Selector::Category { category } => {
                if let Ok(at) = self
                    .categories
                    .binary_search_by(|(c, _, _)| (*c).cmp(category))
                    && let Some(&(_, start, end)) = self.categories.get(at)
                {
                    insert_group(mask, &self.by_category, start, end);
                }
            }
            Selector::Sku { sku } => self.add_sku(sku, mask),
            Selector::Skus { skus } => skus.iter().for_each(|sku| self.add_sku(sku, mask)),
            Selector::PriceRange { .. } => {
                for (p, line) in self.lines.iter().enumerate() {
                    if selector.matches(line) {
                        mask.insert(p);
                    }
                }
            }
            Selector::Product { product } => {
                if let Ok(at) = self.products.binary_search_by(|(p, _, _)| p.cmp(product))
                    && let Some(&(_, start, end)) = self.products.get(at)
                {
                    insert_group(mask, &self.by_product, start, end);
                }
            }
            Selector::AnyOf { selectors } => {
                for selector in selectors {
                    self.add(selector, mask);
                }
            }
        }
    }
}

struct Engine<'a> {
    input: &'a PricingInput,
    index: Index<'a>,
    /// The split settings.
    split: Split,
    /// By position: the line's place in the split order (its position in
    /// SKU order, or in the cart).
    ranks: Vec<usize>,
    /// By position: the subtotals before any discount.
    subtotals: Vec<i64>,
    /// By position: what is left of each line.
    remaining: Vec<i64>,
    /// Each discount given to a line, in the order given: (position,
    /// promotion, amount). Kept flat, and made into each line's list once
    /// at the end.
    given: Vec<(usize, &'a PromotionId, i64)>,
    shipping: Option<i64>,
    shipping_discounts: Vec<LineDiscount>,
    /// By position: the last amount measured with or without tax, and what
    /// it came to. Only one of the two adjustments can apply to a cart
    /// (adding tax to tax-exclusive prices, or taking it out of inclusive
    /// ones), so the amount is the key.
    adjusted: Vec<Option<(i64, Decimal)>>,
    /// Sums before discounts, with or without tax, of the selections
    /// measured so far.
    adjusted_before: Vec<(TaxBasis, Mask, Decimal)>,
    /// Buffers reused from one promotion to the next: the weights, parts
    /// and remainders of an allocation, and the discounts of one promotion.
    weights: Vec<u64>,
    parts: Vec<i64>,
    remainders: Vec<(u128, usize)>,
    offs: Vec<(usize, i64)>,
}

impl<'a> Engine<'a> {
    fn new(input: &'a PricingInput, canonical: &[usize], subtotals: &[i64]) -> Self {
        let lines = canonical
            .iter()
            .filter_map(|&i| input.lines.get(i))
            .collect();
        let subtotals: Vec<i64> = canonical
            .iter()
            .map(|&i| subtotals.get(i).copied().unwrap_or(0))
            .collect();
        let split = input.tax.rounding.split;
        let ranks = match split.order {
            LineOrder::Sku => (0..canonical.len()).collect(),
            LineOrder::Cart => canonical.to_vec(),
        };
        Self {
            input,
            index: Index::new(lines, !input.promotions.is_empty()),
            split,
            ranks,
            remaining: subtotals.clone(),
            given: Vec::new(),
            adjusted: vec![None; subtotals.len()],
            subtotals,
            shipping: input.shipping.map(Money::minor),
            shipping_discounts: Vec::new(),
            adjusted_before: Vec::new(),
            weights: Vec::new(),
            parts: Vec::new(),
            remainders: Vec::new(),
            offs: Vec::new(),
        }
    }

    fn remaining(&self, position: usize) -> i64 {
        self.remaining.get(position).copied().unwrap_or(0)
    }

    /// Why `promotion` cannot apply, or `None` if it can.
    fn eligibility(&mut self, promotion: &Promotion) -> Result<Option<NotApplied>> {
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
        // The usage only matters to a limited promotion.
        if promotion.usage_limit().is_some() || promotion.per_customer_limit().is_some() {
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
        }
        if let Some(found) = promotion.currency().filter(|c| *c != self.input.currency) {
            return Ok(Some(NotApplied::CurrencyMismatch { found }));
        }
        for condition in promotion.conditions() {
            if let Some(reason) = self.reason(condition)? {
                return Ok(Some(reason));
            }
        }
        Ok(None)
    }

    /// Why `condition` does not hold, or `None` if it does; nested sets of
    /// conditions included.
    fn reason(&mut self, condition: &Condition) -> Result<Option<NotApplied>> {
        let now = self.input.now;
        Ok(match condition {
            Condition::Window { starts_at, ends_at } => {
                if let Some(start) = starts_at.filter(|start| now < *start) {
                    Some(NotApplied::NotStarted { starts_at: start })
                } else {
                    ends_at
                        .filter(|end| now >= *end)
                        .map(|end| NotApplied::Ended { ended_at: end })
                }
            }
            Condition::Coupon { code } => (!self.input.codes.contains(code))
                .then(|| NotApplied::CodeMissing { code: code.clone() }),
            Condition::AllOf { conditions } => {
                for condition in conditions {
                    if let Some(reason) = self.reason(condition)? {
                        return Ok(Some(reason));
                    }
                }
                None
            }
            Condition::AnyOf { conditions } => {
                let mut unmet = Vec::with_capacity(conditions.len());
                for condition in conditions {
                    match self.reason(condition)? {
                        None => return Ok(None),
                        Some(reason) => unmet.push(reason),
                    }
                }
                Some(NotApplied::ConditionNotMet {
                    measured: Measured::NoneOf { unmet },
                })
            }
            other => self
                .unmet(other)?
                .map(|measured| NotApplied::ConditionNotMet { measured }),
        })
    }

    /// What an unmet condition measured, or `None` if it holds.
    fn unmet(&mut self, condition: &Condition) -> Result<Option<Measured>> {
        let customer = &self.input.customer;
        Ok(match condition {
            Condition::CustomerGroup { group } if !customer.groups.contains(group) => {
                Some(Measured::CustomerGroup {
                    required: group.clone(),
                })
            }
            Condition::CustomerGroups { groups } if customer.groups.is_disjoint(groups) => {
                Some(Measured::CustomerGroups {
                    required: groups.clone(),
                })
            }
            Condition::FirstOrder if !customer.first_order => Some(Measured::FirstOrder),
            Condition::LineQuantity {
                selector,
                quantity,
                threshold,
            } => {
                let found = self
                    .index
                    .select(selector)
                    .positions()
                    .map(|p| self.index.quantity(p))
                    .max()
                    .unwrap_or(0);
                (!threshold.met(found, u64::from(*quantity))).then(|| Measured::LineQuantity {
                    required: *quantity,
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                })
            }
            Condition::MinQuantity {
                selector,
                quantity,
                threshold,
            } => {
                let found = self
                    .index
                    .select(selector)
                    .positions()
                    .try_fold(0_u64, |sum, p| sum.checked_add(self.index.quantity(p)))
                    .ok_or(MoneyError::Overflow)?;
                (!threshold.met(found, u64::from(*quantity))).then(|| Measured::Quantity {
                    required: *quantity,
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                })
            }
            Condition::MinSubtotal {
                selector,
                amount,
                threshold,
                discounts,
                tax,
            } => {
                let selected = self.index.select(selector);
                let currency = self.input.currency;
                match self.tax_adjustment(*tax) {
                    None => {
                        // Whole minor units: their decimal sum is exact, so
                        // it is this sum (of at most 2^32 amounts below
                        // 2^63, it fits in an i128 and the decimal's 96 bits).
                        let bases = match discounts {
                            DiscountBasis::BeforeDiscounts => &self.subtotals,
                            DiscountBasis::AfterDiscounts => &self.remaining,
                        };
                        let mut found: i128 = 0;
                        for p in selected.positions() {
                            let base = bases.get(p).copied().unwrap_or(0);
                            found = found
                                .checked_add(i128::from(base))
                                .ok_or(MoneyError::Overflow)?;
                        }
                        (!threshold.met(found, i128::from(amount.minor()))).then(|| {
                            Measured::Subtotal {
                                required: *amount,
                                found: Money::new(
                                    i64::try_from(found).unwrap_or(i64::MAX),
                                    currency,
                                ),
                            }
                        })
                    }
                    Some(add) => {
                        let found = self.adjusted_sum(&selected, *discounts, *tax, add)?;
                        (!threshold.met(found, Decimal::from(amount.minor()))).then(|| {
                            Measured::Subtotal {
                                required: *amount,
                                found: Money::new(
                                    RoundingMode::HalfUp.to_minor(found).unwrap_or(i64::MAX),
                                    currency,
                                ),
                            }
                        })
                    }
                }
            }
            _ => None,
        })
    }

    /// Whether measuring on `basis` adds the tax to the prices (`true`),
    /// takes it out of them (`false`), or takes them as they are (`None`).
    fn tax_adjustment(&self, basis: TaxBasis) -> Option<bool> {
        match (basis, self.input.tax.prices) {
            (TaxBasis::AsPriced, _)
            | (TaxBasis::IncludingTax, PriceBasis::TaxInclusive)
            | (TaxBasis::ExcludingTax, PriceBasis::TaxExclusive) => None,
            (TaxBasis::IncludingTax, PriceBasis::TaxExclusive) => Some(true),
            (TaxBasis::ExcludingTax, PriceBasis::TaxInclusive) => Some(false),
        }
    }

    /// The exact sum over `selected` of each line's amount (before or after
    /// discounts) with its tax added (`add`) or taken out: the same decimal
    /// operations in the same order as line by line, each line's computed
    /// once per amount, and a sum before discounts once per selection.
    fn adjusted_sum(
        &mut self,
        selected: &Mask,
        discounts: DiscountBasis,
        basis: TaxBasis,
        add: bool,
    ) -> Result<Decimal> {
        let before = discounts == DiscountBasis::BeforeDiscounts;
        if before
            && let Some((_, _, sum)) = self
                .adjusted_before
                .iter()
                .find(|(b, mask, _)| *b == basis && mask == selected)
        {
            return Ok(*sum);
        }
        let mut found = Decimal::ZERO;
        for p in selected.positions() {
            let bases = if before {
                &self.subtotals
            } else {
                &self.remaining
            };
            let base = bases.get(p).copied().unwrap_or(0);
            found = decimal_add(found, self.adjusted(p, base, add)?)?;
        }
        if before {
            self.adjusted_before.push((basis, selected.clone(), found));
        }
        Ok(found)
    }

    /// `base` minor units of the line at `position`, with its tax added
    /// (`add`) or taken out.
    fn adjusted(&mut self, position: usize, base: i64, add: bool) -> Result<Decimal> {
        if let Some(Some((amount, measured))) = self.adjusted.get(position)
            && *amount == base
        {
            return Ok(*measured);
        }
        let amount = Decimal::from(base);
        let Some(line) = self.index.line(position) else {
            return Ok(amount);
        };
        let prices = self.input.tax.prices;
        let rate = self.input.tax.rate(&line.tax_category)?;
        let tax = rate.exact_tax(base, prices)?;
        let measured = if add {
            amount.checked_add(tax)
        } else {
            amount.checked_sub(tax)
        }
        .ok_or(MoneyError::Overflow)?;
        if let Some(slot) = self.adjusted.get_mut(position) {
            *slot = Some((base, measured));
        }
        Ok(measured)
    }

    fn round_percent(&self, base: i64, percent: Decimal) -> Result<i64> {
        let exact = decimal_mul_div(Decimal::from(base), percent, Decimal::ONE_HUNDRED)?;
        Ok(self.input.tax.rounding.discount_mode.to_minor(exact)?)
    }

    /// `total` allocated over `selected` by what they have left, added to
    /// `lines`.
    fn spread(&mut self, total: i64, selected: &Mask, lines: &mut Vec<(usize, i64)>) -> Result<()> {
        if !self.split.is_default() {
            return self.spread_by_settings(total, selected, lines);
        }
        self.weights.clear();
        for p in selected.positions() {
            let weight = self.remaining.get(p).copied().unwrap_or(0).unsigned_abs();
            self.weights.push(weight);
        }
        if total == 0 || self.weights.iter().all(|w| *w == 0) {
            return Ok(());
        }
        allocate_minor_into(total, &self.weights, &mut self.parts, &mut self.remainders)?;
        lines.extend(selected.positions().zip(self.parts.iter().copied()));
        Ok(())
    }

    /// [`spread`](Self::spread) by the shop's [`Split`] settings: the
    /// weights what each line has left as priced, net or gross, the
    /// leftover units where the settings say, no line given more than it
    /// has left.
    fn spread_by_settings(
        &mut self,
        total: i64,
        selected: &Mask,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        let positions: Vec<usize> = selected.positions().collect();
        let caps: Vec<i64> = positions.iter().map(|&p| self.remaining(p)).collect();
        if total == 0 || caps.iter().all(|c| *c == 0) {
            return Ok(());
        }
        let ranks: Vec<usize> = positions
            .iter()
            .map(|&p| self.ranks.get(p).copied().unwrap_or(p))
            .collect();
        let adjustment = match self.split.weights {
            SplitWeights::AsPriced => None,
            SplitWeights::Net => self.tax_adjustment(TaxBasis::ExcludingTax),
            SplitWeights::Gross => self.tax_adjustment(TaxBasis::IncludingTax),
        };
        // Net or gross weights in whole minor units (rounded half-up): the
        // split is then exact integer arithmetic whatever the amounts.
        let mut weights: Vec<u64> = Vec::with_capacity(positions.len());
        for (&p, &left) in positions.iter().zip(&caps) {
            let weight = match adjustment {
                None => left,
                Some(add) => RoundingMode::HalfUp.to_minor(self.adjusted(p, left, add)?)?,
            };
            weights.push(weight.unsigned_abs());
        }
        if weights.iter().all(|w| *w == 0) {
            return Ok(());
        }
        let parts = split_weighted(total, &weights, &caps, &ranks, self.split.leftover)?;
        lines.extend(positions.into_iter().zip(parts));
        Ok(())
    }

    fn percent_off(
        &mut self,
        selected: &Mask,
        percent: Decimal,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        if self.input.tax.rounding.discount_level == DiscountLevel::PerLine {
            for p in selected.positions() {
                let left = self.remaining(p);
                lines.push((p, self.round_percent(left, percent)?.min(left)));
            }
            return Ok(());
        }
        let base = checked_sum(selected.positions().map(|p| self.remaining(p)))?;
        let off = self.round_percent(base, percent)?.min(base);
        self.spread(off, selected, lines)
    }

    fn amount_off(
        &mut self,
        selected: &Mask,
        amount: i64,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        let base = checked_sum(selected.positions().map(|p| self.remaining(p)))?;
        self.spread(amount.min(base), selected, lines)
    }

    /// Per line, how many units a buy-X-get-Y discounts: as many complete
    /// groups as possible (at most one unless it repeats).
    ///
    /// For `g` groups, the first `g × y` units in discount order are
    /// discounted if at least `g × x` other units of the buy selection
    /// remain to be the ones bought. The units left to buy only shrink as
    /// `g` grows while the units needed grow, so whether `g` groups work is
    /// true up to some `g` and false after it: a binary search finds the
    /// largest, in a number of steps logarithmic in the quantities.
    fn get_units(
        &self,
        buy: &Selector,
        buy_quantity: u32,
        get: &Selector,
        get_quantity: u32,
        repeat: bool,
        order: DiscountOrder,
    ) -> Result<Vec<(usize, u64)>, MoneyError> {
        let mut get_lines: Vec<usize> = self.index.select(get).positions().collect();
        self.sort_by_price(&mut get_lines, order);
        let quantity = |p| self.index.quantity(p);
        let buy_lines: Vec<usize> = self.index.select(buy).positions().collect();
        let get_total = get_lines
            .iter()
            .try_fold(0_u64, |sum, &p| sum.checked_add(quantity(p)))
            .ok_or(MoneyError::Overflow)?;
        let (x, y) = (u64::from(buy_quantity), u64::from(get_quantity));
        // A promotion's quantities are at least one (checked when it is built).
        let whole_groups = get_total.checked_div(y).unwrap_or(0);
        let most = if repeat {
            whole_groups
        } else {
            whole_groups.min(1)
        };
        // The units `groups` groups discount, if enough others remain to be bought.
        let try_groups = |groups: u64| -> Result<Option<Vec<(usize, u64)>>, MoneyError> {
            let mut left = groups.checked_mul(y).ok_or(MoneyError::Overflow)?;
            let mut chosen = Vec::new();
            for &p in &get_lines {
                let take = quantity(p).min(left);
                if take > 0 {
                    chosen.push((p, take));
                    left = left.saturating_sub(take);
                }
            }
            let mut buyable: u64 = 0;
            for &p in &buy_lines {
                let taken = chosen.iter().find(|(c, _)| *c == p).map_or(0, |(_, t)| *t);
                buyable = buyable
                    .checked_add(quantity(p).saturating_sub(taken))
                    .ok_or(MoneyError::Overflow)?;
            }
            let needed = groups.checked_mul(x).ok_or(MoneyError::Overflow)?;
            Ok((buyable >= needed).then_some(chosen))
        };
        // The largest number of groups in 0..=most that works (0 always does).
        let (mut low, mut high) = (0_u64, most);
        let mut best = Vec::new();
        while low < high {
            let mid = low.saturating_add(high.saturating_sub(low).div_ceil(2));
            match try_groups(mid)? {
                Some(chosen) => {
                    low = mid;
                    best = chosen;
                }
                None => high = mid.saturating_sub(1),
            }
        }
        // `best` is the choice for `low`, or empty for no group.
        Ok(best)
    }

    /// What `picks` (position, units) have left, exactly: each line's
    /// remaining amount times its share of units.
    fn units_left(&self, picks: Vec<(usize, u64)>) -> Result<Vec<(usize, Decimal)>, MoneyError> {
        picks
            .into_iter()
            .map(|(p, units)| {
                let quantity = self.index.quantity(p).max(1);
                let left = decimal_mul_div(
                    Decimal::from(self.remaining(p)),
                    Decimal::from(units),
                    Decimal::from(quantity),
                )?;
                Ok((p, left))
            })
            .collect()
    }

    /// Sorts `positions` by unit price in `order`, ties in SKU order.
    fn sort_by_price(&self, positions: &mut [usize], order: DiscountOrder) {
        let price = |p| {
            self.index
                .line(p)
                .map(|l| l.unit_price.minor())
                .unwrap_or(0)
        };
        positions.sort_unstable_by(|&a, &b| {
            let by_price = match order {
                DiscountOrder::CheapestFirst => price(a).cmp(&price(b)),
                DiscountOrder::MostExpensiveFirst => price(b).cmp(&price(a)),
            };
            by_price.then(a.cmp(&b))
        });
    }

    /// `percent`% off the lines of `selected`, or of at most `unit_cap`
    /// units of each.
    fn percent_within(
        &mut self,
        selected: &Mask,
        percent: Decimal,
        unit_cap: Option<u32>,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        match unit_cap {
            None => self.percent_off(selected, percent, lines),
            Some(cap) => {
                let picks = self.capped_units(selected, cap);
                self.percent_of_units(picks, percent, lines)
            }
        }
    }

    /// `amount` off the lines of `selected` (spread over them), or over at
    /// most `unit_cap` units of each.
    fn amount_within(
        &mut self,
        selected: &Mask,
        amount: i64,
        unit_cap: Option<u32>,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        let Some(cap) = unit_cap else {
            return self.amount_off(selected, amount, lines);
        };
        // What the covered units of each line have left, exactly.
        let exacts = self.units_left(self.capped_units(selected, cap))?;
        let base = exacts
            .iter()
            .try_fold(Decimal::ZERO, |sum, (_, e)| decimal_add(sum, *e))?;
        let total = amount.min(base.floor().to_i64().ok_or(MoneyError::Overflow)?);
        if total <= 0 {
            return Ok(());
        }
        let shares = exacts
            .iter()
            .map(|(_, e)| decimal_mul_div(*e, Decimal::from(total), base))
            .collect::<Result<Vec<Decimal>, MoneyError>>()?;
        self.allocate_shares(total, &exacts, &shares, lines)
    }

    /// `total` split over `exacts`' lines by their exact `shares`, as the
    /// shop's split settings say, no line given more than it has left.
    fn allocate_shares(
        &mut self,
        total: i64,
        exacts: &[(usize, Decimal)],
        shares: &[Decimal],
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        let parts = if self.split.is_default() {
            allocate_exact(total, shares)?
        } else {
            let caps: Vec<i64> = exacts.iter().map(|(p, _)| self.remaining(*p)).collect();
            let ranks: Vec<usize> = exacts
                .iter()
                .map(|(p, _)| self.ranks.get(*p).copied().unwrap_or(*p))
                .collect();
            split_exact(total, shares, &caps, &ranks, self.split.leftover)?
        };
        for ((p, _), off) in exacts.iter().zip(parts) {
            lines.push((*p, off.min(self.remaining(*p))));
        }
        Ok(())
    }

    /// At most `cap` units of each line of `selected`: (position, units).
    fn capped_units(&self, selected: &Mask, cap: u32) -> Vec<(usize, u64)> {
        selected
            .positions()
            .map(|p| (p, self.index.quantity(p).min(u64::from(cap))))
            .filter(|(_, units)| *units > 0)
            .collect()
    }

    /// `percent`% off `picks` (position, units): each line's exact
    /// discount of its units, rounded per line or once in total and
    /// allocated, as the shop's rounding says.
    fn percent_of_units(
        &mut self,
        picks: Vec<(usize, u64)>,
        percent: Decimal,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        // The exact discount of each line's discounted units, rounded as
        // the shop's discounts round.
        let mut exacts = self.units_left(picks)?;
        for (_, exact) in &mut exacts {
            *exact = decimal_mul_div(*exact, percent, Decimal::ONE_HUNDRED)?;
        }
        self.give_exact(exacts, lines)
    }

    /// Exact discounts of lines (position, exact minor units), rounded per
    /// line or once in total and allocated, as the shop's rounding says; no
    /// line given more than it has left.
    fn give_exact(
        &mut self,
        exacts: Vec<(usize, Decimal)>,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<()> {
        let rounding = self.input.tax.rounding;
        if rounding.discount_level == DiscountLevel::PerLine {
            for (p, exact) in exacts {
                let off = rounding.discount_mode.to_minor(exact)?;
                lines.push((p, off.min(self.remaining(p))));
            }
        } else {
            let exact_total = exacts
                .iter()
                .try_fold(Decimal::ZERO, |sum, (_, e)| decimal_add(sum, *e))?;
            let total = rounding.discount_mode.to_minor(exact_total)?;
            let shares: Vec<Decimal> = exacts.iter().map(|(_, e)| *e).collect();
            // Ties to the units discounted first (by default).
            self.allocate_shares(total, &exacts, &shares, lines)?;
        }
        Ok(())
    }

    /// The bundles of `items` the cart completes (at most one unless
    /// `repeat`) and the units they take of each line: (bundles, [(position,
    /// units)]). Each item takes its units from the lines it matches in
    /// `order`, skipping units an earlier item took; the largest number of
    /// bundles that fits is found by a binary search (what fits for `k`
    /// bundles fits for fewer).
    fn bundle_units(
        &self,
        items: &[BundleItem],
        repeat: bool,
        order: DiscountOrder,
    ) -> Result<(u64, Vec<(usize, u64)>), MoneyError> {
        let candidates: Vec<Vec<usize>> = items
            .iter()
            .map(|item| {
                let mut lines: Vec<usize> = self.index.select(&item.selector).positions().collect();
                self.sort_by_price(&mut lines, order);
                lines
            })
            .collect();
        let mut most = u64::MAX;
        for (item, lines) in items.iter().zip(&candidates) {
            let units = lines
                .iter()
                .try_fold(0_u64, |sum, &p| sum.checked_add(self.index.quantity(p)))
                .ok_or(MoneyError::Overflow)?;
            most = most.min(units.checked_div(u64::from(item.quantity)).unwrap_or(0));
        }
        if !repeat {
            most = most.min(1);
        }
        let fill = |bundles: u64| -> Result<Option<Vec<u64>>, MoneyError> {
            let mut taken = vec![0_u64; self.index.lines.len()];
            for (item, lines) in items.iter().zip(&candidates) {
                let mut need = bundles
                    .checked_mul(u64::from(item.quantity))
                    .ok_or(MoneyError::Overflow)?;
                for &p in lines {
                    if need == 0 {
                        break;
                    }
                    let Some(slot) = taken.get_mut(p) else {
                        continue;
                    };
                    let take = self.index.quantity(p).saturating_sub(*slot).min(need);
                    *slot = slot.saturating_add(take);
                    need = need.saturating_sub(take);
                }
                if need > 0 {
                    return Ok(None);
                }
            }
            Ok(Some(taken))
        };
        let (mut low, mut high) = (0_u64, most);
        let mut best = Vec::new();
        while low < high {
            let mid = low.saturating_add(high.saturating_sub(low).div_ceil(2));
            match fill(mid)? {
                Some(taken) => {
                    low = mid;
                    best = taken;
                }
                None => high = mid.saturating_sub(1),
            }
        }
        let picks = best
            .into_iter()
            .enumerate()
            .filter(|(_, units)| *units > 0)
            .collect();
        Ok((low, picks))
    }

    /// Up to `count` units of the lines `selector` matches, cheapest (or
    /// most expensive) first, ties in SKU order: (position, units).
    fn cheapest_units(
        &self,
        selector: &Selector,
        count: u32,
        order: DiscountOrder,
    ) -> Vec<(usize, u64)> {
        let mut candidates: Vec<usize> = self.index.select(selector).positions().collect();
        self.sort_by_price(&mut candidates, order);
        let mut left = u64::from(count);
        let mut picks = Vec::new();
        for p in candidates {
            if left == 0 {
                break;
            }
            let take = self.index.quantity(p).min(left);
            if take > 0 {
                picks.push((p, take));
                left = left.saturating_sub(take);
            }
        }
        picks
    }

    /// Applies `promotion`'s action, cap included.
    fn apply(&mut self, promotion: &'a Promotion) -> Result<PromotionOutcome> {
        // (position, discount) per line, in a buffer kept for the next one.
        let mut lines = std::mem::take(&mut self.offs);
        lines.clear();
        let outcome = self.apply_with(promotion, &mut lines);
        self.offs = lines;
        outcome
    }

    fn apply_with(
        &mut self,
        promotion: &'a Promotion,
        lines: &mut Vec<(usize, i64)>,
    ) -> Result<PromotionOutcome> {
        let mut shipping_off = 0;
        let unit_cap = promotion.max_units_per_line();
        match promotion.action() {
            Action::PercentOffItems { selector, percent } => {
                let selected = self.index.select(selector);
                self.percent_within(&selected, *percent, unit_cap, lines)?;
            }
            Action::PercentOffCart { percent } => {
                let selected = self.index.select(&Selector::All);
                self.percent_within(&selected, *percent, unit_cap, lines)?;
            }
            Action::AmountOffItems {
                selector,
                amount,
                per,
            } => {
                let selected = self.index.select(selector);
                match per {
                    AmountPer::Unit => {
                        for p in selected.positions() {
                            let units = self
                                .index
                                .quantity(p)
                                .min(unit_cap.map_or(u64::MAX, u64::from));
                            // The amount and the units are positive, and what the
                            // line has left bounds the discount: a product past
                            // `i64::MAX` takes all of it, so saturating is exact.
                            let off = amount
                                .minor()
                                .saturating_mul(i64::try_from(units).unwrap_or(i64::MAX));
                            lines.push((p, off.min(self.remaining(p))));
                        }
                    }
                    AmountPer::Selection => {
                        self.amount_within(&selected, amount.minor(), unit_cap, lines)?;
                    }
                }
            }
            Action::AmountOffCart { amount } => {
                let selected = self.index.select(&Selector::All);
                self.amount_within(&selected, amount.minor(), unit_cap, lines)?;
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
                let picks =
                    self.get_units(buy, *buy_quantity, get, *get_quantity, *repeat, *order)?;
                self.percent_of_units(picks, *percent, lines)?;
            }
            Action::CheapestUnits {
                selector,
                count,
                off,
                order,
            } => {
                let picks = self.cheapest_units(selector, *count, *order);
                match off {
                    UnitsOff::Percent { percent } => {
                        self.percent_of_units(picks, *percent, lines)?
                    }
                    UnitsOff::Amount { amount } => {
                        for (p, units) in picks {
                            // Positive amount and units; what the line has
                            // left bounds it, so saturating is exact.
                            let off = amount
                                .minor()
                                .saturating_mul(i64::try_from(units).unwrap_or(i64::MAX));
                            lines.push((p, off.min(self.remaining(p))));
                        }
                    }
                }
            }
            Action::Tiered { selector, tiers } => {
                let selected = self.index.select(selector);
                let reached = checked_sum(
                    selected
                        .positions()
                        .map(|p| self.subtotals.get(p).copied().unwrap_or(0)),
                )?;
                let Some(tier) = tiers
                    .iter()
                    .rev()
                    .find(|tier| reached >= tier.threshold.minor())
                else {
                    let lowest = tiers.first().map(|tier| tier.threshold);
                    let currency = self.input.currency;
                    return Ok(PromotionOutcome::NotApplied(NotApplied::ConditionNotMet {
                        measured: Measured::Subtotal {
                            required: lowest.unwrap_or(Money::zero(currency)),
                            found: Money::new(reached, currency),
                        },
                    }));
                };
                match tier.reward {
                    TierReward::AmountOff { amount } => {
                        self.amount_within(&selected, amount.minor(), unit_cap, lines)?;
                    }
                    TierReward::PercentOff { percent } => {
                        self.percent_within(&selected, percent, unit_cap, lines)?;
                    }
                }
            }
            Action::Bundle {
                items,
                price,
                repeat,
                order,
            } => {
                let (bundles, picks) = self.bundle_units(items, *repeat, *order)?;
                // The exact value of the bundled units, as they are left.
                let values = self.units_left(picks)?;
                let value = values
                    .iter()
                    .try_fold(Decimal::ZERO, |sum, (_, v)| decimal_add(sum, *v))?;
                let bundled_price = Decimal::from(price.minor())
                    .checked_mul(Decimal::from(bundles))
                    .ok_or(MoneyError::Overflow)?;
                let off = value
                    .checked_sub(bundled_price)
                    .ok_or(MoneyError::Overflow)?;
                if off > Decimal::ZERO {
                    let exacts = values
                        .into_iter()
                        .map(|(p, v)| Ok((p, decimal_mul_div(v, off, value)?)))
                        .collect::<Result<Vec<(usize, Decimal)>, MoneyError>>()?;
                    self.give_exact(exacts, lines)?;
                }
            }
            Action::FreeShipping => shipping_off = self.shipping.unwrap_or(0),
        }
        lines.retain(|(_, off)| *off > 0);
        let total = checked_sum(lines.iter().map(|(_, off)| *off).chain([shipping_off]))?;
        if let Some(cap) = promotion.cap().filter(|cap| total > cap.minor()) {
            self.weights.clear();
            self.weights
                .extend(lines.iter().map(|(_, off)| off.unsigned_abs()));
            self.weights.push(shipping_off.unsigned_abs());
            if self.split.is_default() {
                allocate_minor_into(
                    cap.minor(),
                    &self.weights,
                    &mut self.parts,
                    &mut self.remainders,
                )?;
            } else {
                // Each part at most the discount it replaces; shipping last.
                let caps: Vec<i64> = lines
                    .iter()
                    .map(|(_, off)| *off)
                    .chain([shipping_off])
                    .collect();
                let ranks: Vec<usize> = lines
                    .iter()
                    .map(|(p, _)| self.ranks.get(*p).copied().unwrap_or(*p))
                    .chain([usize::MAX])
                    .collect();
                self.parts = split_weighted(
                    cap.minor(),
                    &self.weights,
                    &caps,
                    &ranks,
                    self.split.leftover,
                )?;
            }
            shipping_off = self.parts.pop().unwrap_or(0);
            for ((_, off), part) in lines.iter_mut().zip(&self.parts) {
                *off = *part;
            }
            lines.retain(|(_, off)| *off > 0);
        }
        let total = checked_sum(lines.iter().map(|(_, off)| *off).chain([shipping_off]))?;
        if total == 0 {
            return Ok(PromotionOutcome::NotApplied(NotApplied::NothingToDiscount));
        }
        let currency = self.input.currency;
        for &(p, off) in lines.iter() {
            if let Some(remaining) = self.remaining.get_mut(p) {
                *remaining = remaining.checked_sub(off).ok_or(MoneyError::Overflow)?;
                self.given.push((p, promotion.id(), off));
            }
        }
        if shipping_off > 0 {
            if let Some(shipping) = self.shipping.as_mut() {
                *shipping = shipping
                    .checked_sub(shipping_off)
                    .ok_or(MoneyError::Overflow)?;
            }
            let amount = Money::new(shipping_off, currency);
            self.shipping_discounts.push(LineDiscount {
                promotion: promotion.id().clone(),
                amount,
                including_tax: amount,
                excluding_tax: amount,
            });
        }
        Ok(PromotionOutcome::Applied {
            discount: Money::new(total, currency),
        })
    }
}
