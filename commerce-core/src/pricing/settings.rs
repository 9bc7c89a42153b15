//! A shop's settings: data a non-programmer owner can change, not code.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::money::Money;
use crate::tax::{RoundingMode, TaxConfig};

/// The pricing settings of one shop (tenant).
///
/// Rounding, of discounts and of tax, is configured in one place:
/// [`TaxConfig::rounding`]. Settings stored when discount rounding was a
/// field of its own (`discount_rounding`) read with it moved there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(from = "StoredSettings")]
pub struct ShopSettings {
    /// The tax rules, and how every amount is rounded and split.
    pub tax: TaxConfig,
    /// The flat shipping fee charged on every order, if any.
    #[serde(default)]
    pub shipping_fee: Option<Money>,
    /// Whether checkout places new orders. `false` pauses the shop:
    /// [`Shop::checkout`](crate::Shop::checkout) refuses with
    /// [`Error::NotAcceptingOrders`] (a checkout replayed with the key of an
    /// order placed earlier still answers with that order); carts, holds
    /// and payments of orders already placed go on as before.
    #[serde(default = "accepting_by_default")]
    pub accepting_orders: bool,
    /// The shop's own feature switches (`"show_sold_items"`), stored with
    /// the settings so they change without a deploy. The engine keeps them
    /// and does not read them; a name is 1 to 64 ASCII letters, digits,
    /// `_`, `-` or `.`, and a shop has at most 64.
    #[serde(default)]
    pub switches: BTreeMap<String, bool>,
}

fn accepting_by_default() -> bool {
    true
}

/// [`ShopSettings`] as stored, including the field discount rounding had
/// before it moved into [`TaxConfig::rounding`].
#[derive(Deserialize)]
struct StoredSettings {
    tax: TaxConfig,
    #[serde(default)]
    shipping_fee: Option<Money>,
    #[serde(default)]
    discount_rounding: Option<RoundingMode>,
    #[serde(default = "accepting_by_default")]
    accepting_orders: bool,
    #[serde(default)]
    switches: BTreeMap<String, bool>,
}

impl From<StoredSettings> for ShopSettings {
    fn from(stored: StoredSettings) -> Self {
        let mut tax = stored.tax;
        if let Some(mode) = stored.discount_rounding {
            tax.rounding.discount_mode = mode;
        }
        Self {
            tax,
            shipping_fee: stored.shipping_fee,
            accepting_orders: stored.accepting_orders,
            switches: stored.switches,
        }
    }
}

/// The most switches one shop keeps.
const MAX_SWITCHES: usize = 64;
/// The longest switch name, in bytes.
const MAX_SWITCH_NAME: usize = 64;

impl Default for ShopSettings {
    /// No tax, no shipping fee, amounts rounded half-up.
    fn default() -> Self {
        Self {
            tax: TaxConfig::untaxed(),
            shipping_fee: None,
            accepting_orders: true,
            switches: BTreeMap::new(),
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

    /// Switch `name`, or `default` when the shop never set it.
    ///
    /// ```
    /// let mut settings = commerce_core::ShopSettings::default();
    /// assert!(!settings.switch("show_sold_items", false));
    /// settings.switches.insert("show_sold_items".into(), true);
    /// assert!(settings.switch("show_sold_items", false));
    /// ```
    pub fn switch(&self, name: &str, default: bool) -> bool {
        self.switches.get(name).copied().unwrap_or(default)
    }

    /// Checks the tax rules, that the shipping fee is not negative and the
    /// switches' names and number: [`Error::InvalidConfig`] naming what is
    /// wrong (a rate out of range, a shipping category without a rate).
    pub fn validate(&self) -> Result<()> {
        self.tax
            .validate()
            .map_err(|error| Error::InvalidConfig(error.to_string()))?;
        if self.shipping_fee.is_some_and(Money::is_negative) {
            return Err(Error::InvalidConfig(
                "the shipping fee must not be negative".into(),
            ));
        }
        if self.switches.len() > MAX_SWITCHES {
            return Err(Error::InvalidConfig(format!(
                "a shop keeps at most {MAX_SWITCHES} switches, not {}",
                self.switches.len()
            )));
        }
        if let Some(name) = self
            .switches
            .keys()
            .find(|name| !switch_name_is_valid(name))
        {
            return Err(Error::InvalidConfig(format!(
                "switch name {name:?} must be 1 to {MAX_SWITCH_NAME} ASCII letters, digits, '_', '-' or '.'"
            )));
        }
        Ok(())
    }
}

fn switch_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SWITCH_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
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

    #[test]
    fn switches_default_to_what_the_shop_says_and_bad_names_are_refused() {
        let mut settings = ShopSettings::default();
        assert!(settings.accepting_orders);
        assert!(settings.switch("show_sold_items", true));
        settings.switches.insert("show_sold_items".into(), false);
        assert!(!settings.switch("show_sold_items", true));
        settings.validate().unwrap();
        for bad in ["", "has space", "ümlaut", &"x".repeat(65)] {
            let mut bad_settings = settings.clone();
            bad_settings.switches.insert(bad.to_owned(), true);
            assert!(
                matches!(bad_settings.validate(), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
        let mut many = ShopSettings::default();
        for i in 0..=MAX_SWITCHES {
            many.switches.insert(format!("s{i}"), true);
        }
        assert!(matches!(many.validate(), Err(Error::InvalidConfig(_))));
    }

    /// Settings stored before the switches existed read as accepting
    /// orders with no switches.
    #[test]
    fn settings_stored_before_the_switches_read_as_accepting_orders() {
        let old = serde_json::json!({
            "tax": serde_json::to_value(TaxConfig::untaxed()).unwrap(),
            "shipping_fee": null,
        });
        let read: ShopSettings = serde_json::from_value(old).unwrap();
        assert!(read.accepting_orders);
        assert!(read.switches.is_empty());
    }

    /// Discount rounding stored as a field of its own (before rounding was
    /// configured in one place) reads into the tax configuration's
    /// rounding, and is written back there.
    #[test]
    fn discount_rounding_stored_on_its_own_moves_into_the_one_rounding_setting() {
        let mut tax = serde_json::to_value(TaxConfig::australia_gst()).unwrap();
        tax["rounding"] = serde_json::json!({"mode": "half_up", "level": "per_line"});
        let old = serde_json::json!({
            "tax": tax,
            "shipping_fee": null,
            "discount_rounding": "half_even",
        });
        let read: ShopSettings = serde_json::from_value(old).unwrap();
        assert_eq!(read.tax.rounding.discount_mode, RoundingMode::HalfEven);
        let written = serde_json::to_value(&read).unwrap();
        assert!(written.get("discount_rounding").is_none(), "{written}");
        assert_eq!(written["tax"]["rounding"]["discount_mode"], "half_even");
        let again: ShopSettings = serde_json::from_value(written).unwrap();
        assert_eq!(again, read);
    }
}
