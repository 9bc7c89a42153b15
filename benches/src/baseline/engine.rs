//! The promotions engine as of `fea34db` (copied from
//! `commerce-core/src/pricing/engine.rs`): applies promotions in order to
//! the lines of a [`PricingInput`], allocating every discount exactly.
//!
//! Changed from the original only to compile outside `commerce-core`: the
//! imports, and [`DiscountedCart`] is this module's own.

#![deny(clippy::arithmetic_side_effects)]

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use commerce_core::money::{Money, MoneyError};

use super::allocate::allocate_minor;
use commerce_core::pricing::{
    LineDiscount, Measured, NotApplied, PricingInput, PricingLine, PromotionOutcome,
    PromotionReport,
};
use commerce_core::promotion::{
    Action, AmountPer, Condition, DiscountBasis, DiscountOrder, Promotion, Selector, TaxBasis,
};
use commerce_core::tax::{PriceBasis, RoundingMode};
use commerce_core::{Error, PromotionId, Result, Sku};

use super::DiscountedCart;

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
        tax_mode: input.tax.rounding.tax_mode,
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
            .filter(|&i| self.line(i).is_some_and(|l| selector.matches(l)))
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
            Condition::MinQuantity {
                selector, quantity, ..
            } => {
                let found = self
                    .matching(selector)
                    .iter()
                    .filter_map(|&i| self.line(i))
                    .try_fold(0_u64, |sum, l| sum.checked_add(u64::from(l.quantity.get())))
                    .ok_or(MoneyError::Overflow)?;
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
                ..
            } => {
                let mut found = Decimal::ZERO;
                for i in self.matching(selector) {
                    let base = match discounts {
                        DiscountBasis::BeforeDiscounts => {
                            self.subtotals.get(i).copied().unwrap_or(0)
                        }
                        DiscountBasis::AfterDiscounts => self.remaining(i),
                    };
                    found = decimal_add(found, self.measure_tax(i, base, *tax)?)?;
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
        let tax = rate.exact_tax(base, prices)?;
        let measured = if adjust {
            amount.checked_add(tax)
        } else {
            amount.checked_sub(tax)
        };
        Ok(measured.ok_or(MoneyError::Overflow)?)
    }

    fn round_percent(&self, base: i64, percent: Decimal) -> Result<i64> {
        let exact = decimal_mul_div(Decimal::from(base), percent, Decimal::ONE_HUNDRED)?;
        Ok(self.input.tax.rounding.discount_mode.to_minor(exact)?)
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
        let base = checked_sum(lines.iter().map(|&i| self.remaining(i)))?;
        let off = self.round_percent(base, percent)?.min(base);
        self.spread(off, lines)
    }

    fn amount_off(&self, lines: &[usize], amount: i64) -> Result<Vec<(usize, i64)>> {
        let base = checked_sum(lines.iter().map(|&i| self.remaining(i)))?;
        self.spread(amount.min(base), lines)
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
        let get_total = get_lines
            .iter()
            .try_fold(0_u64, |sum, &i| sum.checked_add(quantity(i)))
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
            for &i in &get_lines {
                let take = quantity(i).min(left);
                if take > 0 {
                    chosen.push((i, take));
                    left = left.saturating_sub(take);
                }
            }
            let mut buyable: u64 = 0;
            for &i in &buy_lines {
                let taken = chosen.iter().find(|(c, _)| *c == i).map_or(0, |(_, t)| *t);
                buyable = buyable
                    .checked_add(quantity(i).saturating_sub(taken))
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
                        // The amount and the units are positive, and what the
                        // line has left bounds the discount: a product past
                        // `i64::MAX` takes all of it, so saturating is exact.
                        let off = amount.minor().saturating_mul(units);
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
                    self.get_units(buy, *buy_quantity, get, *get_quantity, *repeat, *order)?
                {
                    let quantity = self
                        .line(i)
                        .map(|l| u64::from(l.quantity.get()))
                        .unwrap_or(1);
                    let share = decimal_mul_div(
                        Decimal::from(self.remaining(i)),
                        Decimal::from(units),
                        Decimal::from(quantity),
                    )?;
                    exacts.push((i, decimal_mul_div(share, *percent, Decimal::ONE_HUNDRED)?));
                }
                let exact_total = exacts
                    .iter()
                    .try_fold(Decimal::ZERO, |sum, (_, e)| decimal_add(sum, *e))?;
                let total = self
                    .input
                    .tax
                    .rounding
                    .discount_mode
                    .to_minor(exact_total)?;
                let parts =
                    allocate_exact(total, &exacts.iter().map(|(_, e)| *e).collect::<Vec<_>>())?;
                for ((i, _), off) in exacts.iter().zip(parts) {
                    lines.push((*i, off.min(self.remaining(*i))));
                }
            }
            Action::FreeShipping => shipping_off = self.shipping.unwrap_or(0),
            // `Action` is non-exhaustive outside `commerce-core`; the engine
            // of `fea34db` knew no other action.
            _ => {
                return Err(Error::InvalidConfig(
                    "an action the baseline engine does not know".into(),
                ));
            }
        }
        lines.retain(|(_, off)| *off > 0);
        let total = checked_sum(lines.iter().map(|(_, off)| *off).chain([shipping_off]))?;
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
        let total = checked_sum(lines.iter().map(|(_, off)| *off).chain([shipping_off]))?;
        if total == 0 {
            return Ok(PromotionOutcome::NotApplied(NotApplied::NothingToDiscount));
        }
        let currency = self.input.currency;
        for (i, off) in lines {
            if let (Some(remaining), Some(discounts)) =
                (self.remaining.get_mut(i), self.discounts.get_mut(i))
            {
                *remaining = remaining.checked_sub(off).ok_or(MoneyError::Overflow)?;
                let amount = Money::new(off, currency);
                discounts.push(LineDiscount {
                    promotion: promotion.id().clone(),
                    amount,
                    including_tax: amount,
                    excluding_tax: amount,
                });
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
