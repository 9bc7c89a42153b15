//! Amounts as an Australian shop writes them: `$24.99`.

use commerce_core::{Currency, Money};

/// `$24.99`, `-$4.75`; another currency as the engine writes it
/// (`NZD 24.99`).
pub fn dollars(amount: &Money) -> String {
    if amount.currency() != Currency::AUD {
        return amount.to_string();
    }
    let sign = if amount.is_negative() { "-" } else { "" };
    let cents = amount.minor().unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_and_cents() {
        let aud = |cents| dollars(&Money::new(cents, Currency::AUD));
        assert_eq!(aud(2499), "$24.99");
        assert_eq!(aud(5), "$0.05");
        assert_eq!(aud(0), "$0.00");
        assert_eq!(aud(-475), "-$4.75");
        assert_eq!(aud(i64::MIN), "-$92233720368547758.08");
        assert_eq!(dollars(&Money::new(2499, Currency::NZD)), "NZD 24.99");
    }
}
