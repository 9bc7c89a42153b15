//! Typed identifiers and parsed newtypes.
//!
//! Every value here is parsed, not validated: once you hold a [`Sku`] or a
//! [`Quantity`] it is well formed, because the only ways to build one check
//! it. Fields are private.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Input that does not parse into a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ParseError {
    /// What was being parsed (`"sku"`, `"quantity"`, ...).
    pub field: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        ///
        /// A UUID; [`new`](Self::new) makes a time-ordered one (UUID
        /// version 7: the creation time in milliseconds, then 74 random
        /// bits), so ids made in different milliseconds sort by their
        /// time and a database index on them grows at its end. Displayed
        /// and serialized as the hyphenated UUID string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new identifier: the current millisecond and 74 random
            /// bits, as unguessable as its neighbours are.
            pub fn new() -> Self {
                Self(Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext)))
            }

            /// Wraps an existing UUID (for example one read from a database).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|e| ParseError::new($field, e.to_string()))
            }
        }
    };
}

uuid_id!(
    /// Identifies a product.
    ProductId,
    "product id"
);
uuid_id!(
    /// Identifies a cart.
    CartId,
    "cart id"
);
uuid_id!(
    /// Identifies an order.
    OrderId,
    "order id"
);

/// Which characters a text newtype accepts.
#[derive(Clone, Copy)]
enum Charset {
    /// Lowercase ASCII letters, digits, `-` and `_`; starts with a letter or digit.
    Slug,
    /// Any printable ASCII character except space.
    Graphic,
    /// A name a merchant types, normalised to a slug by [`label`]: lower
    /// case letters (any script) and digits, `-` and `_`, starting with a
    /// letter or digit.
    Label,
}

/// Normalises what a merchant typed as a category, a tax category, a
/// customer group or a promotion id, in the one documented way: letters
/// are lower-cased, every run of characters other than letters, digits,
/// `-` and `_` becomes one `-` (none at the start or the end), and leading
/// `-` and `_` are dropped. So `"Wine & Spirits"` is `"wine-spirits"`,
/// `" GST Free "` is `"gst-free"`, `"Getränke"` is `"getränke"`, and a
/// value that is already a slug (`"wine_5-off"`) is left as it is:
/// normalising twice changes nothing.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut gap = false;
    for c in value.chars().flat_map(char::to_lowercase) {
        let joiner = c == '-' || c == '_';
        if c.is_alphanumeric() {
            // A gap between two words is one `-`, unless a typed `-` or
            // `_` already separates them.
            if gap && !out.is_empty() && !out.ends_with(['-', '_']) {
                out.push('-');
            }
            out.push(c);
            gap = false;
        } else if joiner && !out.is_empty() {
            if !(gap && out.ends_with(['-', '_'])) {
                out.push(c);
            }
            gap = false;
        } else {
            gap = true;
        }
    }
    out
}

fn check_text(
    field: &'static str,
    s: &str,
    max: usize,
    charset: Charset,
) -> Result<(), ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(ParseError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    match charset {
        Charset::Slug => {
            let ok_char =
                |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
            if !s.chars().all(ok_char) {
                return Err(ParseError::new(
                    field,
                    "may hold only lowercase ASCII letters, digits, '-' and '_'",
                ));
            }
            if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                return Err(ParseError::new(field, "must start with a letter or digit"));
            }
        }
        Charset::Graphic => {
            if !s.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ParseError::new(
                    field,
                    "may hold only printable ASCII characters without spaces",
                ));
            }
        }
        // Normalised before the check: only emptiness and length can fail.
        Charset::Label => {}
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $charset:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        text_id_impls!($name, $field, $max, $charset);
    };
    // Shared: the text is reference-counted, so a clone is a count, not a
    // copy (an identifier cloned into many values, such as a promotion's
    // into each discount it gives). Compares, hashes, orders, prints and
    // serializes exactly as the text.
    (shared $(#[$doc:meta])* $name:ident, $field:literal, $max:literal, $charset:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub struct $name(std::sync::Arc<str>);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        text_id_impls!($name, $field, $max, $charset);
    };
}

/// What every text identifier has, whatever holds its text.
macro_rules! text_id_impls {
    ($name:ident, $field:literal, $max:literal, $charset:expr) => {
        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Parses `value`, refusing anything malformed.
            pub fn parse(value: impl Into<String>) -> Result<Self, ParseError> {
                let value = value.into();
                let value = match $charset {
                    Charset::Label => label(&value),
                    Charset::Slug | Charset::Graphic => value,
                };
                check_text($field, &value, $max, $charset)?;
                Ok(Self(value.into()))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(value).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(
    shared
    /// A tenant: one shop. Every aggregate belongs to exactly one.
    ///
    /// 1 to 63 characters: lowercase ASCII letters, digits, `-` and `_`,
    /// starting with a letter or digit (`"gpu-exchange"`).
    TenantId,
    "tenant id",
    63,
    Charset::Slug
);
text_id!(
    shared
    /// A stock-keeping unit: one sellable variant, unique within a tenant.
    ///
    /// 1 to 64 printable ASCII characters without spaces (`"GPU-3090-FE"`).
    /// Case is kept and significant.
    Sku,
    "sku",
    64,
    Charset::Graphic
);
text_id!(
    /// A caller-chosen key that makes a checkout idempotent: a repeated
    /// checkout with the same key returns the same order.
    ///
    /// 1 to 255 printable ASCII characters without spaces.
    IdempotencyKey,
    "idempotency key",
    255,
    Charset::Graphic
);
text_id!(
    /// The payment provider's identifier of one event (for Stripe, `evt_...`).
    /// Exactly-once application of payment events is keyed on it.
    ///
    /// 1 to 255 printable ASCII characters without spaces.
    PaymentEventId,
    "payment event id",
    255,
    Charset::Graphic
);
text_id!(
    /// Identifies a refund. It is also the idempotency key sent to the
    /// payment provider, so a retried refund is never made twice.
    ///
    /// 1 to 255 printable ASCII characters without spaces.
    RefundId,
    "refund id",
    255,
    Charset::Graphic
);
text_id!(
    /// A merchandising category that promotions select on (`"wine"`).
    ///
    /// Parsing accepts what a merchant types and normalises it (`"Wine &
    /// Spirits"` is `"wine-spirits"`): letters are lower-cased, and each run
    /// of characters that are not letters, digits, `-` or `_` becomes one
    /// `-`, none at the ends. At most 64 bytes once normalised, and at
    /// least one letter or digit.
    Category,
    "category",
    64,
    Charset::Label
);
text_id!(
    /// A tax category that tax rules map to a rate (`"standard"`, `"gst-free"`).
    ///
    /// Parsing normalises what a merchant types as [`Category`] does
    /// (`"GST Free"` is `"gst-free"`). At most 64 bytes once normalised.
    TaxCategory,
    "tax category",
    64,
    Charset::Label
);

text_id!(
    shared
    /// Identifies a promotion; chosen by the merchant (`"wine-5-off"`).
    ///
    /// Parsing normalises what a merchant types as [`Category`] does
    /// (`"Wine 5 Off!"` is `"wine-5-off"`). At most 64 bytes once
    /// normalised.
    PromotionId,
    "promotion id",
    64,
    Charset::Label
);
text_id!(
    /// Identifies a customer, as the embedding service knows them.
    ///
    /// 1 to 255 printable ASCII characters without spaces.
    CustomerId,
    "customer id",
    255,
    Charset::Graphic
);
text_id!(
    /// A customer group promotions can target (`"staff"`, `"wholesale"`).
    ///
    /// Parsing normalises what a merchant types as [`Category`] does
    /// (`"Staff"` is `"staff"`). At most 64 bytes once normalised.
    CustomerGroup,
    "customer group",
    64,
    Charset::Label
);

text_id!(
    /// A named group of promotions within which one exclusive promotion
    /// excludes the others (`"loyalty"`, `"clearance"`), while promotions
    /// outside it still apply.
    ///
    /// Parsing normalises what a merchant types as [`Category`] does. At
    /// most 64 bytes once normalised.
    PromotionGroup,
    "promotion group",
    64,
    Charset::Label
);

/// A coupon code. Codes are case-insensitive: parsing trims surrounding
/// white space and upper-cases, so `" welcome10 "` and `"WELCOME10"` are the
/// same code.
///
/// 1 to 64 printable ASCII characters without inner spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct CouponCode(String);

impl CouponCode {
    /// Parses and normalises `value`.
    pub fn parse(value: impl AsRef<str>) -> Result<Self, ParseError> {
        let code = value.as_ref().trim().to_ascii_uppercase();
        check_text("coupon code", &code, 64, Charset::Graphic)?;
        Ok(Self(code))
    }

    /// The normalised (upper-case) code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CouponCode {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for CouponCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(value).map_err(serde::de::Error::custom)
    }
}

impl Category {
    /// A category from a name known at compile time to be a valid slug
    /// (`uncategorized`, the category of a pricing line built without one;
    /// a unit test parses it).
    pub(crate) fn builtin(name: &'static str) -> Self {
        Self(name.into())
    }
}

impl TaxCategory {
    /// A category from a name known at compile time to be a valid slug (the
    /// built-in tax configurations' names; a unit test parses each).
    pub(crate) fn builtin(name: &'static str) -> Self {
        Self(name.to_owned())
    }
}

impl RefundId {
    /// A new random refund id, for refunds a merchant asks for.
    pub fn new_random() -> Self {
        Self(format!("refund_{}", Uuid::new_v4().simple()))
    }

    /// The refund id for a payment event that must be refunded (an oversold
    /// or cancelled order): derived from the event id, so every store and
    /// every retry names the same refund.
    pub fn for_payment_event(event: &PaymentEventId) -> Self {
        // `refund_for_` + a graphic id of at most 255 characters would be too long,
        // so long ids are hashed.
        let candidate = format!("refund_for_{}", event.as_str());
        if candidate.len() <= Self::MAX_LEN {
            Self(candidate)
        } else {
            use sha2::Digest;
            Self(format!(
                "refund_for_{}",
                hex::encode(sha2::Sha256::digest(event.as_str()))
            ))
        }
    }
}

/// A count of units: a cart line's quantity, a stock receipt.
///
/// From 0 to [`Quantity::MAX`]; zero on a cart line means "remove it". The
/// upper bound keeps every `price × quantity` far from overflow in practice
/// (overflow is still checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity accepted.
    pub const MAX: u32 = 1_000_000;
    /// Zero units.
    pub const ZERO: Quantity = Quantity(0);
    /// One unit.
    pub const ONE: Quantity = Quantity(1);

    /// Parses `units`, refusing more than [`Quantity::MAX`].
    pub fn new(units: u32) -> Result<Self, ParseError> {
        if units > Self::MAX {
            return Err(ParseError::new(
                "quantity",
                format!("must be at most {}", Self::MAX),
            ));
        }
        Ok(Self(units))
    }

    /// The number of units.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<u32> for Quantity {
    type Error = ParseError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<i64> for Quantity {
    type Error = ParseError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        let units = u32::try_from(value)
            .map_err(|_| ParseError::new("quantity", "must be between 0 and 1000000"))?;
        Self::new(units)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(u32::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_parsing() {
        assert!(Sku::parse("GPU-3090-FE").is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse("x".repeat(65)).is_err());
        assert!(Sku::parse("é").is_err());
        assert!(serde_json::from_str::<Sku>("\"\"").is_err());
    }

    #[test]
    fn tenant_parsing() {
        assert!(TenantId::parse("gpu-exchange").is_ok());
        assert!(TenantId::parse("GPU").is_err());
        assert!(TenantId::parse("-x").is_err());
        assert!(TenantId::parse("a b").is_err());
    }

    /// What merchants type, and what it becomes.
    #[test]
    fn labels_take_what_merchants_type() {
        let cases = [
            ("Wine & Spirits", "wine-spirits"),
            ("  Staff ", "staff"),
            ("GST Free", "gst-free"),
            ("GST-Free", "gst-free"),
            ("Summer Sale 2026!", "summer-sale-2026"),
            ("wine_5-off", "wine_5-off"),
            ("a--b_", "a--b_"),
            ("Wine - 5 Off", "wine-5-off"),
            ("_internal", "internal"),
            ("Getränke", "getränke"),
            ("ÉTÉ 10 %", "été-10"),
        ];
        for (typed, expected) in cases {
            assert_eq!(
                Category::parse(typed).unwrap().as_str(),
                expected,
                "{typed}"
            );
            assert_eq!(TaxCategory::parse(typed).unwrap().as_str(), expected);
            assert_eq!(PromotionId::parse(typed).unwrap().as_str(), expected);
            assert_eq!(CustomerGroup::parse(typed).unwrap().as_str(), expected);
        }
        for nothing in ["", "   ", "!!!", "--", "%_"] {
            assert!(Category::parse(nothing).is_err(), "{nothing:?}");
        }
        assert!(Category::parse("é".repeat(33)).is_err(), "66 bytes");
        assert!(Category::parse("é".repeat(32)).is_ok(), "64 bytes");
        let read: CustomerGroup = serde_json::from_str("\"Wholesale Buyers\"").unwrap();
        assert_eq!(read.as_str(), "wholesale-buyers");
    }

    proptest::proptest! {
        /// Normalising is idempotent (so a stored value reads back as
        /// itself), leaves every slug the stricter parser accepted as it
        /// was, and makes only letters, digits, `-` and `_`, starting with
        /// a letter or digit.
        #[test]
        fn labels_are_stable(typed in "\\PC{0,40}", slug in "[a-z0-9][a-z0-9_-]{0,30}") {
            let once = label(&typed);
            proptest::prop_assert_eq!(label(&once), once.clone());
            proptest::prop_assert!(once.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_'));
            proptest::prop_assert!(once.is_empty() || once.starts_with(char::is_alphanumeric));
            proptest::prop_assert_eq!(label(&slug), slug);
        }
    }

    #[test]
    fn builtin_categories_are_valid() {
        assert_eq!(
            Category::parse("uncategorized").unwrap(),
            Category::builtin("uncategorized")
        );
    }

    #[test]
    fn builtin_tax_categories_are_valid() {
        for name in [
            "standard",
            "gst-free",
            "exempt",
            "reduced",
            "zero-rated",
            "shipping",
        ] {
            assert_eq!(
                TaxCategory::parse(name).unwrap(),
                TaxCategory::builtin(name)
            );
        }
    }

    #[test]
    fn coupon_codes_are_case_insensitive() {
        assert_eq!(
            CouponCode::parse(" welcome10 ").unwrap(),
            CouponCode::parse("WELCOME10").unwrap()
        );
        assert!(CouponCode::parse("two words").is_err());
        assert!(CouponCode::parse("   ").is_err());
    }

    #[test]
    fn quantity_bounds() {
        assert_eq!(Quantity::new(0).map(Quantity::get), Ok(0));
        assert!(Quantity::new(Quantity::MAX).is_ok());
        assert!(Quantity::new(Quantity::MAX + 1).is_err());
        assert!(Quantity::try_from(-1_i64).is_err());
        assert!(serde_json::from_str::<Quantity>("2000000").is_err());
    }

    #[test]
    fn refund_id_for_event_is_stable_and_bounded() {
        let short = PaymentEventId::parse("evt_1").unwrap();
        assert_eq!(
            RefundId::for_payment_event(&short).as_str(),
            "refund_for_evt_1"
        );
        let long = PaymentEventId::parse("e".repeat(255)).unwrap();
        let id = RefundId::for_payment_event(&long);
        assert!(id.as_str().len() <= RefundId::MAX_LEN);
        assert_eq!(id, RefundId::for_payment_event(&long));
    }
}
