//! Carts and the reservation hot path.

use async_trait::async_trait;

use crate::cart::CartLimits;
use crate::error::Result;

use super::holds::Held;
use super::{
    BackendError, BackendErrorKind, Cart, CartId, CartStore, CartUpdate, Cell, Entity, Error,
    Quantity, Sku, TenantStores, Timestamp,
};

#[async_trait]
impl CartStore for TenantStores {
    async fn insert_cart(&self, cart: &Cart) -> Result<()> {
        self.check_tenant(&cart.tenant)?;
        let mut d = self.lock();
        if d.carts.contains_key(&cart.id) {
            return Err(BackendError::new(
                BackendErrorKind::Conflict,
                format!("cart {} exists", cart.id),
            )
            .into());
        }
        d.carts.insert(cart.id, Box::new(Cell::new(cart.clone())));
        Ok(())
    }

    async fn cart(&self, id: CartId) -> Result<Option<Cart>> {
        Ok(self.read().carts.get(&id).map(|c| c.lock().clone()))
    }

    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart> {
        // Only the cart changes: its own lock is enough.
        let d = self.read();
        let mut c = d
            .carts
            .get(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?
            .lock();
        c.apply(update, now)?;
        Ok(c.clone())
    }

    async fn set_line(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: Quantity,
        limits: CartLimits,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Cart> {
        // The tenant's read lock keeps the catalog still; the cart's lock is
        // held to the end, so the line count checked here is the one the
        // line is added to; the SKU's lock is held from reading what is
        // available to writing the hold. Cart before SKU, as everywhere.
        let d = self.read();
        let mut c = d
            .carts
            .get(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?
            .lock();
        c.ensure_open()?;
        limits.check(&c, sku, quantity)?;
        let entry = d
            .stock
            .get(sku)
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        let offer = entry
            .offer
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        if !quantity.is_zero() {
            // An unpublished product's SKUs cannot be held; their lines can go.
            if !offer.published {
                return Err(Error::not_found(Entity::Sku, sku));
            }
            if offer.currency != c.currency {
                return Err(Error::CurrencyMismatch {
                    expected: c.currency,
                    found: offer.currency,
                });
            }
        }
        {
            let mut stock = entry.lock();
            stock.advance(now);
            if quantity.is_zero() {
                stock.reservations.remove(&cart);
            } else {
                // A cart holds a SKU only while it has a line of it: without
                // one there is no hold of its own to leave out, and no
                // look-up for it.
                let own = c.line(sku).map(|_| cart);
                let available = stock.available(now, own, None);
                if quantity.get() > available {
                    return Err(Error::InsufficientStock {
                        sku: sku.clone(),
                        requested: quantity.get(),
                        available,
                    });
                }
                stock.reservations.insert(
                    cart,
                    Held {
                        quantity,
                        expires_at,
                    },
                );
            }
        }
        // Cannot fail: the cart was checked open above, under its lock.
        c.put_line(sku, quantity, now)?;
        Ok(c.clone())
    }
}
