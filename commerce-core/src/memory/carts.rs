//! Carts and the reservation hot path.

use async_trait::async_trait;

use crate::cart::CartLimits;
use crate::error::Result;

use super::{
    BackendError, BackendErrorKind, Cart, CartId, CartStore, CartUpdate, Entity, Error, Quantity,
    Reservation, Sku, TenantStores, Timestamp,
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
        d.carts.insert(cart.id, cart.clone());
        Ok(())
    }

    async fn cart(&self, id: CartId) -> Result<Option<Cart>> {
        Ok(self.lock().carts.get(&id).cloned())
    }

    async fn update_cart(&self, cart: CartId, update: &CartUpdate, now: Timestamp) -> Result<Cart> {
        let mut d = self.lock();
        let c = d
            .carts
            .get_mut(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
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
        // The tenant's lock is held to the end: the line count checked here
        // is the one the line is added to.
        let mut d = self.lock();
        let c = d
            .carts
            .get(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        c.ensure_open()?;
        limits.check(c, sku, quantity)?;
        let product = d
            .sku_owner
            .get(sku)
            .and_then(|id| d.products.get(id))
            .ok_or_else(|| Error::not_found(Entity::Sku, sku))?;
        if !quantity.is_zero() {
            // An unpublished product's SKUs cannot be held; their lines can go.
            if !product.is_published() {
                return Err(Error::not_found(Entity::Sku, sku));
            }
            let found = product
                .variant(sku)
                .ok_or_else(|| Error::not_found(Entity::Sku, sku))?
                .price()
                .currency();
            if found != c.currency {
                return Err(Error::CurrencyMismatch {
                    expected: c.currency,
                    found,
                });
            }
        }
        let stock = d.stock_mut(sku)?;
        stock.advance(now);
        if quantity.is_zero() {
            stock.reservations.remove(&cart);
        } else {
            let available = stock.available(now, Some(cart), None);
            if quantity.get() > available {
                return Err(Error::InsufficientStock {
                    sku: sku.clone(),
                    requested: quantity.get(),
                    available,
                });
            }
            stock.reservations.insert(
                cart,
                Reservation {
                    cart,
                    sku: sku.clone(),
                    quantity,
                    expires_at,
                },
            );
        }
        let c = d
            .carts
            .get_mut(&cart)
            .ok_or_else(|| Error::not_found(Entity::Cart, cart))?;
        c.put_line(sku, quantity, now)?;
        Ok(c.clone())
    }
}
