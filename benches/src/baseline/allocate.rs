//! `commerce_core::money::allocate_minor` as of `fea34db` (copied from
//! `commerce-core/src/domain/money.rs`), which the old engine and tax
//! computation call: the current one gives the same parts, faster.

#![deny(clippy::arithmetic_side_effects)]

use std::cmp::Ordering;

use commerce_core::MoneyError;

/// The largest-remainder allocation of `total` over `weights`, as of `fea34db`.
pub fn allocate_minor(total: i64, weights: &[u64]) -> Result<Vec<i64>, MoneyError> {
    let weight_sum = weights.iter().try_fold(0_u128, |sum, &w| {
        sum.checked_add(u128::from(w)).ok_or(MoneyError::Overflow)
    })?;
    if weight_sum == 0 {
        return Err(MoneyError::NoWeights);
    }
    let magnitude = u128::from(total.unsigned_abs());
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u128 = 0;
    for (index, &weight) in weights.iter().enumerate() {
        // magnitude < 2^64 and weight < 2^64, so the product fits in u128,
        // and weight_sum is not zero; checked all the same.
        let exact = magnitude
            .checked_mul(u128::from(weight))
            .ok_or(MoneyError::Overflow)?;
        let part = exact.checked_div(weight_sum).ok_or(MoneyError::Overflow)?;
        let remainder = exact.checked_rem(weight_sum).ok_or(MoneyError::Overflow)?;
        given = given.checked_add(part).ok_or(MoneyError::Overflow)?;
        parts.push(part);
        remainders.push((remainder, index));
    }
    // Largest remainder first; equal remainders go to the earlier index.
    remainders.sort_by(|a, b| match b.0.cmp(&a.0) {
        Ordering::Equal => a.1.cmp(&b.1),
        other => other,
    });
    // Each part is rounded down, so what was given is at most the magnitude,
    // and less by fewer units than there are parts.
    let leftover = magnitude.checked_sub(given).ok_or(MoneyError::Overflow)?;
    for &(_, index) in remainders
        .iter()
        .take(usize::try_from(leftover).unwrap_or(usize::MAX))
    {
        if let Some(part) = parts.get_mut(index) {
            *part = part.checked_add(1).ok_or(MoneyError::Overflow)?;
        }
    }
    parts
        .into_iter()
        .map(|part| {
            let signed = i128::try_from(part).map_err(|_| MoneyError::Overflow)?;
            let signed = if total < 0 {
                signed.checked_neg().ok_or(MoneyError::Overflow)?
            } else {
                signed
            };
            i64::try_from(signed).map_err(|_| MoneyError::Overflow)
        })
        .collect()
}
