//! Free text: what the core accepts in names, option values, notes and
//! reasons, so that every store can keep it.
//!
//! Identifiers such as [`Sku`](crate::Sku) and [`Category`](crate::Category)
//! are parsed newtypes with narrow character sets. Free text is wider, but
//! not everything a Rust `String` holds can be stored everywhere:
//! PostgreSQL refuses a NUL character in `text` and `jsonb`, and its
//! full-text search refuses a word longer than 2,047 bytes. The core
//! refuses such text where it enters, with [`Error::InvalidText`], so that
//! every store accepts and refuses the same input, and the in-memory store
//! never keeps what PostgreSQL could not.
//!
//! ```
//! use commerce_core::text::{TextField, TextReason, check_text};
//! use commerce_core::Error;
//!
//! assert!(check_text(TextField::ProductName, "GeForce RTX 3090").is_ok());
//! assert!(matches!(
//!     check_text(TextField::StockNote, "pallet\0 3"),
//!     Err(Error::InvalidText { field: TextField::StockNote, reason: TextReason::NulByte { offset: 6 } })
//! ));
//! let word = "a".repeat(3_000);
//! assert!(matches!(
//!     check_text(TextField::ProductName, &word),
//!     Err(Error::InvalidText { reason: TextReason::WordTooLong { length: 3_000, max: 2_047 }, .. })
//! ));
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest search word, in bytes (PostgreSQL's limit on a lexeme).
pub const MAX_WORD_LEN: usize = 2_047;

/// A free-text field the core checks with [`check_text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TextField {
    /// A product's name. Searched, so its words are limited too.
    ProductName,
    /// The name of a variant option (`"size"`).
    OptionName,
    /// The value of a variant option (`"M"`).
    OptionValue,
    /// The note of a stock receipt or correction.
    StockNote,
    /// How a buyer's age was verified.
    AgeVerificationMethod,
    /// Who or what verified a buyer's age.
    AgeVerifiedBy,
    /// Why an order was cancelled.
    CancelReason,
    /// What was noted when an order was handed over (an ID check, say).
    FulfilmentNote,
    /// The name of an admin API key.
    ApiKeyName,
    /// The value of a cart attribute (and of the order's copy).
    CartAttributeValue,
}

impl TextField {
    /// The longest value accepted, in bytes (of UTF-8).
    ///
    /// Generous bounds that keep every stored document, and a product's
    /// search document, small.
    pub const fn max_len(self) -> usize {
        match self {
            TextField::ProductName => 4_096,
            TextField::OptionName => 256,
            TextField::OptionValue
            | TextField::AgeVerificationMethod
            | TextField::AgeVerifiedBy
            | TextField::ApiKeyName => 1_024,
            TextField::StockNote | TextField::CancelReason | TextField::FulfilmentNote => 16_384,
            TextField::CartAttributeValue => 500,
        }
    }

    /// Whether the field is searched, so that each of its words (as
    /// [`searchable_words`](crate::catalog::searchable_words) splits them)
    /// must be at most [`MAX_WORD_LEN`] bytes.
    pub const fn is_searchable(self) -> bool {
        matches!(self, TextField::ProductName)
    }

    /// The field's name in messages (`"product name"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TextField::ProductName => "product name",
            TextField::OptionName => "option name",
            TextField::OptionValue => "option value",
            TextField::StockNote => "stock note",
            TextField::AgeVerificationMethod => "age verification method",
            TextField::AgeVerifiedBy => "age verifier",
            TextField::CancelReason => "cancel reason",
            TextField::FulfilmentNote => "fulfilment note",
            TextField::ApiKeyName => "API key name",
            TextField::CartAttributeValue => "cart attribute value",
        }
    }
}

impl fmt::Display for TextField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`check_text`] refused a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TextReason {
    /// It holds a NUL character (`'\0'`), which PostgreSQL cannot store.
    NulByte {
        /// The byte offset of the first one.
        offset: usize,
    },
    /// It is longer than the field allows.
    TooLong {
        /// Its length in bytes.
        length: usize,
        /// The field's [`max_len`](TextField::max_len).
        max: usize,
    },
    /// One of its search words is longer than a search index takes.
    WordTooLong {
        /// The word's length in bytes.
        length: usize,
        /// [`MAX_WORD_LEN`].
        max: usize,
    },
}

impl fmt::Display for TextReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextReason::NulByte { offset } => {
                write!(f, "it holds a NUL character (at byte {offset})")
            }
            TextReason::TooLong { length, max } => {
                write!(f, "it is {length} bytes long, more than {max}")
            }
            TextReason::WordTooLong { length, max } => {
                write!(f, "it holds a word of {length} bytes, more than {max}")
            }
        }
    }
}

/// Checks `value` for `field`: no NUL character, at most
/// [`field.max_len()`](TextField::max_len) bytes, and for a searchable field
/// no word over [`MAX_WORD_LEN`] bytes. Refused with
/// [`Error::InvalidText`].
///
/// Call it wherever free text enters the core; stores call it too, so that
/// they refuse the same input when called directly.
pub fn check_text(field: TextField, value: &str) -> Result<()> {
    text_reason(field, value).map_or(Ok(()), |reason| Err(Error::InvalidText { field, reason }))
}

/// [`check_text`] for an optional value: `None` is accepted.
pub fn check_optional_text(field: TextField, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |value| check_text(field, value))
}

fn text_reason(field: TextField, value: &str) -> Option<TextReason> {
    if let Some(offset) = value.bytes().position(|b| b == 0) {
        return Some(TextReason::NulByte { offset });
    }
    let max = field.max_len();
    if value.len() > max {
        return Some(TextReason::TooLong {
            length: value.len(),
            max,
        });
    }
    if field.is_searchable() {
        let longest = crate::catalog::search_words(value)
            .map(str::len)
            .max()
            .unwrap_or(0);
        if longest > MAX_WORD_LEN {
            return Some(TextReason::WordTooLong {
                length: longest,
                max: MAX_WORD_LEN,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(field: TextField, value: &str) -> Option<TextReason> {
        match check_text(field, value) {
            Ok(()) => None,
            Err(Error::InvalidText { field: f, reason }) => {
                assert_eq!(f, field);
                Some(reason)
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ordinary_text_is_accepted() {
        for value in ["", "GeForce RTX 3090", "Größe", "délivrée le 3 mai", "🙂"] {
            assert_eq!(reason(TextField::ProductName, value), None, "{value:?}");
            assert_eq!(reason(TextField::StockNote, value), None, "{value:?}");
        }
        assert_eq!(reason(TextField::StockNote, &"a".repeat(16_384)), None);
        let word = "a".repeat(MAX_WORD_LEN);
        assert_eq!(reason(TextField::ProductName, &word), None);
    }

    #[test]
    fn nul_bytes_are_refused_in_every_field() {
        for field in [
            TextField::ProductName,
            TextField::OptionName,
            TextField::OptionValue,
            TextField::StockNote,
            TextField::AgeVerificationMethod,
            TextField::AgeVerifiedBy,
            TextField::CancelReason,
            TextField::FulfilmentNote,
            TextField::ApiKeyName,
            TextField::CartAttributeValue,
        ] {
            assert_eq!(
                reason(field, "ab\0c"),
                Some(TextReason::NulByte { offset: 2 })
            );
            assert_eq!(reason(field, "\0"), Some(TextReason::NulByte { offset: 0 }));
        }
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(
            reason(TextField::OptionName, &"s".repeat(257)),
            Some(TextReason::TooLong {
                length: 257,
                max: 256
            })
        );
        // Bytes, not characters: 'é' is two bytes.
        assert_eq!(
            reason(TextField::OptionName, &"é".repeat(129)),
            Some(TextReason::TooLong {
                length: 258,
                max: 256
            })
        );
    }

    #[test]
    fn search_words_are_bounded_in_searchable_fields_only() {
        let word = "a".repeat(3_000);
        assert_eq!(
            reason(TextField::ProductName, &format!("The {word} edition")),
            Some(TextReason::WordTooLong {
                length: 3_000,
                max: MAX_WORD_LEN
            })
        );
        assert_eq!(reason(TextField::StockNote, &word), None);
        // Words are what search stores: runs of ASCII letters and digits.
        let split = format!("{}-{}", "a".repeat(2_000), "b".repeat(2_000));
        assert_eq!(reason(TextField::ProductName, &split), None);
    }

    #[test]
    fn identifiers_never_hold_nul() {
        assert!(crate::Sku::parse("GPU\0").is_err());
        // A name a merchant types is normalised: the NUL separates words.
        assert_eq!(crate::Category::parse("wi\0ne").unwrap().as_str(), "wi-ne");
        assert_eq!(
            crate::TaxCategory::parse("stan\0dard").unwrap().as_str(),
            "stan-dard"
        );
    }
}
