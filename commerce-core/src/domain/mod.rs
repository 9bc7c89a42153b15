//! The domain: money, identifiers, the catalog, carts, stock, orders and
//! payments. Plain values and pure rules; nothing here reads the clock or
//! touches a store.
//!
//! Each module is also reachable from the crate root
//! (`commerce_core::order`, `commerce_core::money`, ...).

pub mod api_key;
pub mod cart;
pub mod catalog;
pub mod clock;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod order;
pub mod payment;
pub mod text;
