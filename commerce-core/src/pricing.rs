//! Pricing a cart: a pure function of the cart and the catalog.
//!
//! The storefront's preview and checkout call the same function, so the
//! buyer is charged what they were shown.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::cart::Cart;
use crate::catalog::Product;
use crate::error::{Entity, Error, Result};
use crate::ids::Sku;
use crate::money::{Currency, Money};
use crate::order::OrderLine;

/// A cart with every line priced from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedCart {
    /// The currency.
    pub currency: Currency,
    /// The priced lines, in the cart's order.
    pub lines: Vec<OrderLine>,
    /// The sum of the line totals: what the buyer pays.
    pub total: Money,
}

/// Prices every line of `cart` from `products` (keyed by SKU).
///
/// A SKU missing from `products` is [`Error::NotFound`]; a price in another
/// currency than the cart's is [`Error::CurrencyMismatch`]; an overflow is a
/// [`MoneyError`](crate::MoneyError). The total is the exact sum of the
/// line totals.
pub fn price_cart(cart: &Cart, products: &HashMap<Sku, Product>) -> Result<PricedCart> {
    let mut lines = Vec::with_capacity(cart.lines.len());
    for line in &cart.lines {
        let product = products
            .get(&line.sku)
            .ok_or_else(|| Error::not_found(Entity::Sku, &line.sku))?;
        let variant = product
            .variant(&line.sku)
            .ok_or_else(|| Error::not_found(Entity::Sku, &line.sku))?;
        let unit_price = variant.price();
        if unit_price.currency() != cart.currency {
            return Err(Error::CurrencyMismatch {
                expected: cart.currency,
                found: unit_price.currency(),
            });
        }
        lines.push(OrderLine {
            sku: line.sku.clone(),
            product: product.id(),
            name: product.name().to_owned(),
            options: variant.options().clone(),
            quantity: line.quantity,
            unit_price,
            line_total: unit_price.checked_mul(i64::from(line.quantity.get()))?,
        });
    }
    let total = Money::sum(cart.currency, lines.iter().map(|l| l.line_total))?;
    Ok(PricedCart {
        currency: cart.currency,
        lines,
        total,
    })
}
