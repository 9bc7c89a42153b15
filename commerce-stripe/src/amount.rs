//! Amounts between the core's minor units and Stripe's, by currency.
//!
//! This is the only place units change. Stripe takes amounts as integers in
//! a currency's smallest unit, and for every currency the core knows that
//! unit has the same number of decimals as ISO 4217 gives it (so the
//! integer is the same): JPY and KRW are zero-decimal (¥1,000 is `1000`),
//! AUD, USD, EUR... are two-decimal (A$10.00 is `1000`), and KWD and BHD
//! are three-decimal (KWD 1.250 is `1250`).
//!
//! The conversion still goes through each currency's exponent on both sides,
//! so a currency whose Stripe unit differed from its ISO minor unit would be
//! scaled (and refused when scaling would lose precision) rather than
//! silently misread. A currency not in this crate's table is refused.
//!
//! Three-decimal currencies carry one more rule: Stripe accepts only amounts
//! whose last digit is 0 (KWD 1.250, not KWD 1.255). Nothing is rounded:
//! an amount that breaks the rule is refused with
//! [`Error::Unsupported`](crate::Error::Unsupported).

use commerce_core::{Currency, Money};

use crate::error::Error;

/// How Stripe handles one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StripeUnit {
    /// The number of decimals of the integer amounts Stripe takes.
    pub(crate) exponent: u32,
    /// Every amount sent must be a multiple of this (10 for three-decimal
    /// currencies).
    pub(crate) granularity: i64,
}

/// Stripe's unit for `currency`, or `None` for a currency this crate does
/// not know how Stripe handles.
pub(crate) fn stripe_unit(currency: Currency) -> Option<StripeUnit> {
    let unit = |exponent, granularity| {
        Some(StripeUnit {
            exponent,
            granularity,
        })
    };
    match currency {
        Currency::JPY | Currency::KRW => unit(0, 1),
        Currency::AUD
        | Currency::CAD
        | Currency::CHF
        | Currency::DKK
        | Currency::EUR
        | Currency::GBP
        | Currency::NOK
        | Currency::NZD
        | Currency::SEK
        | Currency::SGD
        | Currency::USD => unit(2, 1),
        Currency::BHD | Currency::KWD => unit(3, 10),
        _ => None,
    }
}

fn unit_or_refuse(currency: Currency) -> Result<StripeUnit, Error> {
    stripe_unit(currency).ok_or_else(|| {
        Error::Unsupported(format!(
            "currency {currency} is not supported by this Stripe gateway"
        ))
    })
}

fn power_of_ten(exponent: u32) -> Result<i64, Error> {
    10_i64
        .checked_pow(exponent)
        .ok_or_else(|| Error::Unsupported("currency exponent out of range".into()))
}

/// `money` as the integer amount Stripe takes.
///
/// Refused: a negative amount, a currency this crate does not know, an
/// amount a three-decimal currency cannot carry, an overflow.
pub(crate) fn to_stripe(money: Money) -> Result<i64, Error> {
    let currency = money.currency();
    let unit = unit_or_refuse(currency)?;
    if money.is_negative() {
        return Err(Error::Unsupported(format!(
            "negative amount {money} cannot be sent to Stripe"
        )));
    }
    let core = currency.exponent();
    let amount = if unit.exponent >= core {
        money
            .minor()
            .checked_mul(power_of_ten(unit.exponent - core)?)
            .ok_or_else(|| Error::Unsupported(format!("amount {money} overflows")))?
    } else {
        let divisor = power_of_ten(core - unit.exponent)?;
        if money.minor() % divisor != 0 {
            return Err(Error::Unsupported(format!(
                "{money} has more decimals than Stripe accepts for {currency}"
            )));
        }
        money.minor() / divisor
    };
    if amount % unit.granularity != 0 {
        return Err(Error::Unsupported(format!(
            "Stripe accepts {currency} amounts only in multiples of {} minor units; \
             {money} is not one (nothing is rounded)",
            unit.granularity
        )));
    }
    Ok(amount)
}

/// Whether `money` can be sent to Stripe as it is.
pub(crate) fn is_sendable(money: Money) -> bool {
    to_stripe(money).is_ok()
}

/// An integer `amount` Stripe reported in the currency with lower-case code
/// `code`, as core money.
pub(crate) fn from_stripe(amount: i64, code: &str) -> Result<Money, String> {
    let currency: Currency = code
        .parse()
        .map_err(|_| format!("currency {code:?} is not one the core knows"))?;
    let unit = stripe_unit(currency)
        .ok_or_else(|| format!("currency {currency} is not supported by this Stripe gateway"))?;
    let core = currency.exponent();
    let minor = if unit.exponent >= core {
        let divisor = 10_i64
            .checked_pow(unit.exponent - core)
            .ok_or("currency exponent out of range")?;
        if amount % divisor != 0 {
            return Err(format!(
                "{amount} {code} has more decimals than the core keeps"
            ));
        }
        amount / divisor
    } else {
        10_i64
            .checked_pow(core - unit.exponent)
            .and_then(|factor| amount.checked_mul(factor))
            .ok_or_else(|| format!("{amount} {code} overflows"))?
    };
    Ok(Money::new(minor, currency))
}

/// Stripe's lower-case currency code for `currency`.
pub(crate) fn stripe_currency(currency: Currency) -> Result<stripe_types::Currency, Error> {
    unit_or_refuse(currency)?;
    // `FromStr` for Stripe's currency is infallible (unknown codes become
    // `Unknown`), and every code in the table is one Stripe knows.
    currency
        .code()
        .to_ascii_lowercase()
        .parse()
        .map_err(|never: std::convert::Infallible| match never {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_currency_round_trips_through_stripe_units() {
        for &currency in Currency::ALL {
            let unit = stripe_unit(currency).expect("every core currency is in the table");
            assert_eq!(
                unit.exponent,
                currency.exponent(),
                "{currency}: Stripe's unit is the ISO minor unit"
            );
            let money = Money::new(12_340, currency);
            let sent = to_stripe(money).unwrap();
            let back = from_stripe(sent, &currency.code().to_ascii_lowercase()).unwrap();
            assert_eq!(back, money);
            assert_eq!(
                stripe_currency(currency).unwrap().to_string(),
                currency.code().to_ascii_lowercase()
            );
        }
    }

    #[test]
    fn zero_two_and_three_decimal_examples() {
        // ¥1,000 is 1000; A$10.00 is 1000; KWD 1.250 is 1250.
        assert_eq!(to_stripe(Money::new(1_000, Currency::JPY)).unwrap(), 1_000);
        assert_eq!(to_stripe(Money::new(1_000, Currency::AUD)).unwrap(), 1_000);
        assert_eq!(to_stripe(Money::new(1_250, Currency::KWD)).unwrap(), 1_250);
        assert_eq!(
            to_stripe(Money::new(50_000, Currency::KRW)).unwrap(),
            50_000
        );
        assert_eq!(
            from_stripe(1_250, "bhd").unwrap(),
            Money::new(1_250, Currency::BHD)
        );
    }

    #[test]
    fn three_decimal_amounts_must_end_in_zero() {
        for currency in [Currency::KWD, Currency::BHD] {
            let err = to_stripe(Money::new(1_255, currency)).unwrap_err();
            assert!(matches!(err, Error::Unsupported(ref m) if m.contains("multiples of 10")));
            assert!(!is_sendable(Money::new(1_255, currency)));
            assert!(is_sendable(Money::new(1_250, currency)));
        }
    }

    #[test]
    fn negative_and_unknown_are_refused() {
        assert!(to_stripe(Money::new(-1, Currency::USD)).is_err());
        assert!(from_stripe(100, "xyz").is_err());
        assert_eq!(
            from_stripe(100, "USD").unwrap(),
            Money::new(100, Currency::USD)
        );
    }
}
