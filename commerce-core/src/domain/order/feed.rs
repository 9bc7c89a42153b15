//! The tenant's feed: every order event of one tenant, in one order, read
//! from a position.
//!
//! A consumer (an admin stream, outbound webhooks) keeps the position of
//! the last item it handled and reads on from it. Positions strictly
//! increase in the order the feed hands items out, and a store hands an
//! event out only once no event with a lower position can still appear, so
//! reading on from the last position never misses one (see
//! [`OrderStore::feed`](crate::store::OrderStore::feed)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, ParseError};

use super::OrderEvent;

/// Where an event sits in its tenant's feed.
///
/// Opaque to consumers: compare positions, store them, and hand one back
/// to read on from it. Two numbers, compared in order: the store's commit
/// order (a PostgreSQL transaction id, the in-memory store's count of
/// changes), then the event's order within it. Displayed (and serialized)
/// as `"{commit}-{index}"`, for an SSE `Last-Event-ID` or a webhook's
/// cursor; [`FromStr`] parses that form back and nothing else.
///
/// ```
/// use commerce_core::order::FeedPosition;
/// let position = FeedPosition::new(42, 7);
/// assert_eq!(position.to_string(), "42-7");
/// assert_eq!("42-7".parse::<FeedPosition>()?, position);
/// assert!(FeedPosition::new(42, 8) > position);
/// assert!("42-+7".parse::<FeedPosition>().is_err());
/// # Ok::<(), commerce_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct FeedPosition {
    // Field order is the comparison order.
    commit: u64,
    index: u64,
}

impl FeedPosition {
    /// The position of the `index`-th event of the store's `commit` (store
    /// authors: both must grow as the store's contract says).
    pub const fn new(commit: u64, index: u64) -> Self {
        Self { commit, index }
    }

    /// The commit part.
    pub const fn commit(&self) -> u64 {
        self.commit
    }

    /// The index part.
    pub const fn index(&self) -> u64 {
        self.index
    }
}

impl fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.commit, self.index)
    }
}

fn number(part: &str) -> Result<u64, ParseError> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            "feed position",
            "expected two decimal numbers joined by '-'",
        ));
    }
    part.parse()
        .map_err(|e: std::num::ParseIntError| ParseError::new("feed position", e.to_string()))
}

impl FromStr for FeedPosition {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (commit, index) = s.split_once('-').ok_or_else(|| {
            ParseError::new(
                "feed position",
                "expected two decimal numbers joined by '-'",
            )
        })?;
        Ok(Self::new(number(commit)?, number(index)?))
    }
}

impl From<FeedPosition> for String {
    fn from(position: FeedPosition) -> Self {
        position.to_string()
    }
}

impl TryFrom<String> for FeedPosition {
    type Error = ParseError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// On the wire a position is its text, `{commit}-{index}`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FeedPosition {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[0-9]+-[0-9]+$"))
            .description(Some(
                "A place in the tenant's event feed: read on from here.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FeedPosition {}

/// One event of the tenant's feed, with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedItem {
    /// Where it sits in the feed: read on from here.
    pub position: FeedPosition,
    /// The event, with its order and its place in the order's log.
    pub event: OrderEvent,
}

impl FeedItem {
    /// The order the event is about.
    pub fn order(&self) -> OrderId {
        self.event.order
    }

    /// The event's place in its order's log, from 1.
    pub fn seq(&self) -> u32 {
        self.event.seq
    }
}
