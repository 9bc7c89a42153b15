//! Inventory: on-hand counts, reservations held by carts, allocations held by
//! orders awaiting payment, and the record of every stock adjustment.
//!
//! For every SKU at every instant:
//!
//! ```text
//! available(cart) = on_hand − live reservations of other carts − live allocations
//! live reservations + live allocations ≤ on_hand
//! ```
//!
//! A reservation or allocation is live while `now < expires_at`; from the
//! instant the clock reaches `expires_at` it stops counting, whether or not a
//! sweep has removed it yet. The earliest `expires_at` among a SKU's live
//! holds is when a held unit may come back
//! ([`InventoryStore::next_release`](crate::store::InventoryStore::next_release),
//! [`Shop::next_release`](crate::Shop::next_release)).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{CartId, OrderId, Quantity, Sku};

/// A cart's hold on units of one SKU, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reservation {
    /// The cart holding it.
    pub cart: CartId,
    /// The SKU held.
    pub sku: Sku,
    /// How many units.
    pub quantity: Quantity,
    /// The instant it stops counting.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl Reservation {
    /// Whether it still holds stock at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// An order's hold on units of one SKU while it awaits payment, until the
/// payment window closes at `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    /// The order holding it.
    pub order: OrderId,
    /// The SKU held.
    pub sku: Sku,
    /// How many units.
    pub quantity: Quantity,
    /// The end of the payment window.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl Allocation {
    /// Whether it still holds stock at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// The stock position of one SKU at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockLevel {
    /// The SKU.
    pub sku: Sku,
    /// Units physically on hand (received, less sold, plus corrections).
    pub on_hand: u32,
    /// Units held by live cart reservations.
    pub reserved: u32,
    /// Units held by live allocations of orders awaiting payment.
    pub allocated: u32,
}

impl StockLevel {
    /// Units nobody holds: `on_hand − reserved − allocated`.
    pub fn available(&self) -> u32 {
        self.on_hand
            .saturating_sub(self.reserved)
            .saturating_sub(self.allocated)
    }
}

/// Why the on-hand count of a SKU changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdjustmentKind {
    /// Stock arrived.
    Received,
    /// A count corrected the on-hand figure.
    Corrected,
    /// A paid order took the units.
    Sold {
        /// The order.
        order: OrderId,
    },
}

/// One recorded change of a SKU's on-hand count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockAdjustment {
    /// The SKU.
    pub sku: Sku,
    /// Why.
    pub kind: AdjustmentKind,
    /// The change in units (negative for a sale or a downward correction).
    pub delta: i64,
    /// The on-hand count after the change.
    pub on_hand_after: u32,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// A free-form note from whoever made it.
    pub note: Option<String>,
    /// The caller's reference of a receipt (a purchase order line, say):
    /// a receipt repeated with it counts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<crate::ids::IdempotencyKey>,
}
