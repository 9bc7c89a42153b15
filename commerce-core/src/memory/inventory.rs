//! Stock, reservations and allocations.

use async_trait::async_trait;

use crate::error::Result;
use crate::text::{TextField, check_optional_text};

use super::{
    AdjustmentKind, Allocation, CartId, Error, IdempotencyKey, InventoryStore, OrderId, Quantity,
    Reservation, Sku, SkuEntry, StockAdjustment, StockLevel, TenantStores, Timestamp,
};

#[async_trait]
impl InventoryStore for TenantStores {
    async fn receive(
        &self,
        sku: &Sku,
        quantity: Quantity,
        reference: Option<&IdempotencyKey>,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        let mut d = self.lock();
        let stock = d.stock_mut(sku)?;
        if reference.is_some_and(|r| stock.receipts.contains(r)) {
            return Ok(stock.level(sku, now));
        }
        let on_hand = stock
            .on_hand
            .checked_add(quantity.get())
            .filter(|n| *n <= Quantity::MAX)
            .ok_or_else(|| Error::StockOverflow { sku: sku.clone() })?;
        stock.on_hand = on_hand;
        stock.adjustments.push(StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Received,
            delta: i64::from(quantity.get()),
            on_hand_after: on_hand,
            at: now,
            note,
            reference: reference.cloned(),
        });
        if let Some(reference) = reference {
            stock.receipts.insert(reference.clone());
        }
        Ok(stock.level(sku, now))
    }

    async fn correct(
        &self,
        sku: &Sku,
        on_hand: Quantity,
        note: Option<String>,
        now: Timestamp,
    ) -> Result<StockLevel> {
        check_optional_text(TextField::StockNote, note.as_deref())?;
        let mut d = self.lock();
        let stock = d.stock_mut(sku)?;
        let held = stock.held(now, None, None);
        if u64::from(on_hand.get()) < held {
            return Err(Error::StockBelowHeld {
                sku: sku.clone(),
                requested: on_hand.get(),
                held: u32::try_from(held).unwrap_or(u32::MAX),
            });
        }
        let delta = i64::from(on_hand.get()) - i64::from(stock.on_hand);
        stock.on_hand = on_hand.get();
        stock.adjustments.push(StockAdjustment {
            sku: sku.clone(),
            kind: AdjustmentKind::Corrected,
            delta,
            on_hand_after: on_hand.get(),
            at: now,
            note,
            reference: None,
        });
        Ok(stock.level(sku, now))
    }

    async fn stock(&self, sku: &Sku, now: Timestamp) -> Result<StockLevel> {
        Ok(self.read().stock(sku)?.level(sku, now))
    }

    async fn next_release(&self, sku: &Sku, now: Timestamp) -> Result<Option<Timestamp>> {
        Ok(self.read().stock(sku)?.next_release(now))
    }

    async fn adjustments(&self, sku: &Sku) -> Result<Vec<StockAdjustment>> {
        Ok(self.read().stock(sku)?.adjustments.clone())
    }

    async fn cart_reservations(&self, cart: CartId) -> Result<Vec<Reservation>> {
        let d = self.read();
        let Some(c) = d.carts.get(&cart) else {
            return Ok(Vec::new());
        };
        // Cart before SKU, as everywhere.
        let c = c.lock();
        Ok(c.lines
            .iter()
            .filter_map(|line| {
                d.stock
                    .get(&line.sku)?
                    .lock()
                    .reservations
                    .get(&cart)
                    .map(|held| held.reservation(cart, &line.sku))
            })
            .collect())
    }

    async fn order_allocations(&self, order: OrderId) -> Result<Vec<Allocation>> {
        let d = self.read();
        let Some(o) = d.orders.get(&order) else {
            return Ok(Vec::new());
        };
        Ok(o.lines
            .iter()
            .filter_map(|line| {
                d.stock
                    .get(&line.sku)?
                    .lock()
                    .allocations
                    .get(&order)
                    .map(|held| held.allocation(order, &line.sku))
            })
            .collect())
    }

    async fn sweep_reservations(&self, now: Timestamp, limit: usize) -> Result<usize> {
        let mut d = self.lock();
        let mut removed = 0;
        for stock in d.stock.values_mut().map(SkuEntry::get_mut) {
            let expired: Vec<CartId> = stock
                .reservations
                .iter()
                .filter(|(_, held)| !held.is_live(now))
                .map(|(cart, _)| *cart)
                .take(limit - removed)
                .collect();
            for cart in expired {
                stock.reservations.remove(&cart);
                removed += 1;
            }
            if removed >= limit {
                break;
            }
        }
        Ok(removed)
    }
}
