//! Money: integer minor units with a currency; splits that sum to the
//! whole; arithmetic that refuses to overflow (run by `tests/money.rs`).

use commerce_core::money::MoneyError;
use commerce_core::{Currency, Money};

// ANCHOR: split
/// A$100.00 shared by three people: the parts sum to the whole, the cent
/// left over going to the first (largest remainder, ties to the earlier).
pub fn share_a_hundred() -> Result<Vec<Money>, MoneyError> {
    Money::new(10_000, Currency::AUD).allocate(&[1, 1, 1])
}

/// The largest amount there is, plus one cent: an error, never a wrapped
/// total.
pub fn too_much() -> Result<Money, MoneyError> {
    Money::new(i64::MAX, Currency::AUD).checked_add(Money::new(1, Currency::AUD))
}
// ANCHOR_END: split
