//! A shop's settings: data a non-programmer owner can change, not code.

#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::Money;
use crate::tax::{RoundingMode, TaxConfig};

/// The pricing settings of one shop (tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShopSettings {
    /// The tax rules.
    pub tax: TaxConfig,
    /// The flat shipping fee charged on every order, if any.
    #[serde(default)]
    pub shipping_fee: Option<Money>,
    /// How percentage discounts are rounded to the minor unit.
    #[serde(default)]
    pub discount_rounding: RoundingMode,
}

impl Default for ShopSettings {
    /// No tax, no shipping fee, discounts rounded half-up.
    fn default() -> Self {
        Self {
            tax: TaxConfig::untaxed(),
            shipping_fee: None,
            discount_rounding: RoundingMode::HalfUp,
        }
    }
}

impl ShopSettings {
    /// Settings with these tax rules and nothing else.
    pub fn with_tax(tax: TaxConfig) -> Self {
        Self {
            tax,
            ..Self::default()
        }
    }

    /// Checks the tax rules and that the shipping fee is not negative:
    /// [`Error::InvalidConfig`] naming what is wrong (a rate out of range,
    /// a shipping category without a rate).
    pub fn validate(&self) -> Result<()> {
        self.tax
            .validate()
            .map_err(|error| Error::InvalidConfig(error.to_string()))?;
        if self.shipping_fee.is_some_and(Money::is_negative) {
            return Err(Error::InvalidConfig(
                "the shipping fee must not be negative".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a failing test")]

    use super::*;
    use crate::TaxCategory;
    use crate::tax::ShippingTax;

    /// Settings that cannot price a cart are refused as a configuration
    /// the merchant must fix, not as a failure of the engine.
    #[test]
    fn a_shipping_category_without_a_rate_is_an_invalid_configuration() {
        let mut tax = TaxConfig::untaxed();
        tax.fallback = None;
        tax.shipping = ShippingTax::Taxable {
            category: TaxCategory::parse("freight").unwrap(),
        };
        let settings = ShopSettings {
            tax,
            ..ShopSettings::default()
        };
        match settings.validate() {
            Err(Error::InvalidConfig(reason)) => assert!(reason.contains("freight"), "{reason}"),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
}
