//! How many lines a cart may hold and how many units one line may reserve.

use crate::error::{Error, Result};
use crate::ids::{Quantity, Sku};

use super::Cart;

/// The bounds on a cart's lines, so that bots cannot hold a shop's stock
/// with one cart: at most `max_lines` lines, each of at most
/// `max_units_per_line` units (default 100 lines of 1,000 units).
///
/// The facade passes the configured limits
/// ([`Config::with_cart_limits`](crate::Config::with_cart_limits)) to
/// [`CartStore::set_line`](crate::store::CartStore::set_line), and every
/// store calls [`check`](Self::check) inside its atomic step, against the
/// cart as locked, so concurrent calls on one cart cannot pass the line
/// count together.
///
/// ```
/// use commerce_core::cart::CartLimits;
/// let limits = CartLimits::new(2, 3);
/// assert_eq!((limits.max_lines(), limits.max_units_per_line()), (2, 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLimits {
    max_lines: usize,
    max_units_per_line: u32,
}

impl Default for CartLimits {
    /// 100 lines of at most 1,000 units.
    fn default() -> Self {
        Self::new(100, 1_000)
    }
}

impl CartLimits {
    /// At most `max_lines` lines of at most `max_units_per_line` units.
    /// (A zero limit refuses every line; the facade's builder refuses it.)
    pub const fn new(max_lines: usize, max_units_per_line: u32) -> Self {
        Self {
            max_lines,
            max_units_per_line,
        }
    }

    /// The most lines a cart may hold.
    pub const fn max_lines(&self) -> usize {
        self.max_lines
    }

    /// The most units one line may reserve.
    pub const fn max_units_per_line(&self) -> u32 {
        self.max_units_per_line
    }

    /// `Ok` when setting the line of `sku` in `cart` to `quantity` keeps
    /// the cart within the limits; otherwise [`Error::CartLimit`]: with
    /// `per_line: true` when `quantity` is past the units per line, with
    /// `per_line: false` when `sku` would be a new line of a cart that
    /// already holds `max_lines` lines.
    ///
    /// Removing a line (zero) is never refused, and neither is changing
    /// the quantity of a line the cart holds, within the units per line.
    /// Stores call it inside their atomic `set_line`, on the cart as
    /// locked; it changes nothing.
    pub fn check(&self, cart: &Cart, sku: &Sku, quantity: Quantity) -> Result<()> {
        if quantity.is_zero() {
            return Ok(());
        }
        if quantity.get() > self.max_units_per_line {
            return Err(Error::CartLimit {
                cart: cart.id,
                per_line: true,
                max: self.max_units_per_line,
            });
        }
        if cart.line(sku).is_none() && cart.lines.len() >= self.max_lines {
            return Err(Error::CartLimit {
                cart: cart.id,
                per_line: false,
                max: u32::try_from(self.max_lines).unwrap_or(u32::MAX),
            });
        }
        Ok(())
    }
}
