//! Carts: a buyer's lines in one currency, each backed by a reservation.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{CartId, OrderId, Quantity, Sku, TenantId};
use crate::money::Currency;

/// Whether a cart can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CartStatus {
    /// Lines can be set and removed.
    Open,
    /// The cart became an order and is frozen.
    CheckedOut {
        /// The order.
        order: OrderId,
    },
}

/// One line of a cart: a SKU and a quantity (never zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The SKU.
    pub sku: Sku,
    /// How many units (at least one).
    pub quantity: Quantity,
}

/// A cart. Every line's SKU appears once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// The identifier.
    pub id: CartId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The one currency its prices are in.
    pub currency: Currency,
    /// The lines, in the order they were first added.
    pub lines: Vec<CartLine>,
    /// Open or checked out.
    pub status: CartStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Cart {
    /// A new empty open cart.
    pub fn new(id: CartId, tenant: TenantId, currency: Currency, now: Timestamp) -> Self {
        Self {
            id,
            tenant,
            currency,
            lines: Vec::new(),
            status: CartStatus::Open,
            created_at: now,
            updated_at: now,
        }
    }

    /// The line for `sku`, if any.
    pub fn line(&self, sku: &Sku) -> Option<&CartLine> {
        self.lines.iter().find(|line| &line.sku == sku)
    }

    /// Sets the line for `sku` to `quantity` (zero removes it). This changes
    /// only the value; stores call it inside their atomic `set_line`.
    pub fn put_line(&mut self, sku: &Sku, quantity: Quantity, now: Timestamp) {
        if quantity.is_zero() {
            self.lines.retain(|line| &line.sku != sku);
        } else if let Some(line) = self.lines.iter_mut().find(|line| &line.sku == sku) {
            line.quantity = quantity;
        } else {
            self.lines.push(CartLine {
                sku: sku.clone(),
                quantity,
            });
        }
        self.updated_at = now;
    }

    /// Whether lines can still change.
    pub fn is_open(&self) -> bool {
        self.status == CartStatus::Open
    }
}
