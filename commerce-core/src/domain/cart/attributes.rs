//! Cart attributes: a small, bounded map of key → text a buyer or a
//! storefront attaches to a cart (an email for the receipt, a pickup slot),
//! copied to the order when it is placed.
//!
//! ```
//! use commerce_core::cart::{AttributeKey, CartAttributeError};
//!
//! let key = AttributeKey::parse("pickup.slot")?;
//! assert_eq!(key.as_str(), "pickup.slot");
//! assert!(matches!(
//!     AttributeKey::parse("Pickup Slot"),
//!     Err(CartAttributeError::InvalidKey { .. })
//! ));
//! # Ok::<(), CartAttributeError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::TextReason;

/// The most attributes a cart holds.
pub const MAX_ATTRIBUTES: usize = 16;

/// The key of a cart attribute: 1 to [`AttributeKey::MAX_LEN`] characters
/// of `a`–`z`, `0`–`9`, `_`, `.` and `-`, starting with a letter
/// (`"email"`, `"pickup.slot"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct AttributeKey(String);

impl AttributeKey {
    /// The longest key, in characters (all ASCII, so also in bytes).
    pub const MAX_LEN: usize = 40;

    /// Parses `key`; anything else is [`CartAttributeError::InvalidKey`].
    pub fn parse(key: impl Into<String>) -> Result<Self, CartAttributeError> {
        let key = key.into();
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        let well_formed = key.len() <= Self::MAX_LEN
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key.chars().all(allowed);
        if well_formed {
            Ok(Self(key))
        } else {
            Err(CartAttributeError::invalid_key(&key))
        }
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AttributeKey {
    type Err = CartAttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for AttributeKey {
    type Error = CartAttributeError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl AsRef<str> for AttributeKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AttributeKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(value).map_err(serde::de::Error::custom)
    }
}

/// Why a cart attribute was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CartAttributeError {
    /// The key is not 1 to [`AttributeKey::MAX_LEN`] characters of
    /// `a`–`z`, `0`–`9`, `_`, `.` and `-` starting with a letter.
    #[error(
        "invalid attribute key {key:?}: a key is 1 to {max} characters of a-z, 0-9, '_', '.' and '-', starting with a letter"
    )]
    InvalidKey {
        /// The key as given, cut to its first [`AttributeKey::MAX_LEN`] + 1
        /// characters.
        key: String,
        /// [`AttributeKey::MAX_LEN`].
        max: usize,
    },
    /// The cart holds [`MAX_ATTRIBUTES`] attributes already and `key` is not
    /// one of them.
    #[error("a cart holds at most {max} attributes: {key} would be one more")]
    TooMany {
        /// The key that would have been added.
        key: AttributeKey,
        /// [`MAX_ATTRIBUTES`].
        max: usize,
    },
    /// The value is text not every store can keep (a NUL character) or
    /// longer than [`TextField::CartAttributeValue`](crate::text::TextField::CartAttributeValue)
    /// allows (500 bytes of UTF-8), as
    /// [`check_text`](crate::text::check_text) says.
    #[error("invalid value of attribute {key}: {reason}")]
    InvalidValue {
        /// The attribute.
        key: AttributeKey,
        /// What is wrong with the value (with the limit, when too long).
        reason: TextReason,
    },
}

impl CartAttributeError {
    fn invalid_key(key: &str) -> Self {
        CartAttributeError::InvalidKey {
            key: key.chars().take(AttributeKey::MAX_LEN + 1).collect(),
            max: AttributeKey::MAX_LEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "email", "pickup.slot", "gift-note_2", &"k".repeat(40)] {
            assert_eq!(AttributeKey::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Email",
            "1st",
            "_x",
            ".x",
            "pick up",
            "é",
            "a\0",
            "a/b",
            &"k".repeat(41),
        ] {
            assert!(
                matches!(
                    AttributeKey::parse(bad),
                    Err(CartAttributeError::InvalidKey { max: 40, .. })
                ),
                "{bad:?}"
            );
        }
        let long = "k".repeat(10_000);
        match AttributeKey::parse(long) {
            Err(CartAttributeError::InvalidKey { key, .. }) => assert_eq!(key.len(), 41),
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<AttributeKey>("\"Bad\"").is_err());
        assert_eq!(
            serde_json::from_str::<AttributeKey>("\"ok\"").unwrap(),
            AttributeKey::parse("ok").unwrap()
        );
    }
}
