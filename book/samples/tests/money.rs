//! The money chapter's sample, run.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failing test")]

use commerce_book::money::{share_a_hundred, too_much};
use commerce_core::money::MoneyError;
use commerce_core::{Currency, Money};

// ANCHOR: test
#[test]
fn shares_sum_to_the_whole_and_overflow_is_an_error() {
    let aud = |minor| Money::new(minor, Currency::AUD);
    assert_eq!(
        share_a_hundred().unwrap(),
        [aud(3_334), aud(3_333), aud(3_333)]
    );
    assert_eq!(too_much(), Err(MoneyError::Overflow));
}
// ANCHOR_END: test
