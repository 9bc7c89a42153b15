//! The order pipeline's effects in memory: the one place this store
//! changes stock, promotion usage, carts and refunds for an order (compare
//! `commerce-postgres/src/effects.rs`).

use crate::clock::Timestamp;
use crate::error::Result;
use crate::inventory::{AdjustmentKind, StockAdjustment};
use crate::order::{Order, OrderEffect, RefundError, check_redemption};
use crate::promotion::PromotionUsage;

use super::holds::Held;

use super::{Cell, TenantData};

impl TenantData {
    /// Carries out `effects` for `order`, in order. Every check comes first
    /// (a refused redemption or a taken refund id leaves nothing changed),
    /// then every write.
    pub(super) fn carry_out(
        &mut self,
        order: &Order,
        effects: Vec<OrderEffect>,
        now: Timestamp,
    ) -> Result<()> {
        for effect in &effects {
            match effect {
                OrderEffect::Redeem(redemptions) => {
                    for redemption in redemptions {
                        let counts = self.usage.get(&redemption.promotion);
                        let usage = PromotionUsage {
                            total: counts.map_or(0, |c| c.total),
                            by_customer: match (&redemption.customer, counts) {
                                (Some(customer), Some(c)) => {
                                    c.by_customer.get(customer).copied().unwrap_or(0)
                                }
                                _ => 0,
                            },
                        };
                        check_redemption(redemption, usage)?;
                    }
                }
                OrderEffect::RecordRefund(refund)
                    if self.refunds.iter().any(|r| r.id == refund.id) =>
                {
                    return Err(RefundError::IdReused {
                        refund: refund.id.clone(),
                    }
                    .into());
                }
                _ => {}
            }
        }
        for effect in effects {
            match effect {
                OrderEffect::Redeem(redemptions) | OrderEffect::RestoreRedemptions(redemptions) => {
                    for redemption in redemptions {
                        let counts = self.usage.entry(redemption.promotion).or_default();
                        counts.total = counts.total.saturating_add(1);
                        if let Some(customer) = redemption.customer {
                            let used = counts.by_customer.entry(customer).or_default();
                            *used = used.saturating_add(1);
                        }
                    }
                }
                OrderEffect::ReleaseRedemptions(redemptions) => {
                    for redemption in redemptions {
                        if let Some(counts) = self.usage.get_mut(&redemption.promotion) {
                            counts.total = counts.total.saturating_sub(1);
                            if let Some(used) = redemption
                                .customer
                                .as_ref()
                                .and_then(|customer| counts.by_customer.get_mut(customer))
                            {
                                *used = used.saturating_sub(1);
                            }
                        }
                    }
                }
                OrderEffect::AllocateStock => {
                    for line in &order.lines {
                        let stock = self.stock_mut(&line.sku)?;
                        stock.reservations.remove(&order.cart);
                        stock.allocations.insert(
                            order.id,
                            Held {
                                quantity: line.quantity,
                                expires_at: order.payment_expires_at,
                            },
                        );
                    }
                }
                OrderEffect::SellStock => {
                    for line in &order.lines {
                        let stock = self.stock_mut(&line.sku)?;
                        stock.allocations.remove(&order.id);
                        stock.on_hand = stock.on_hand.saturating_sub(line.quantity.get());
                        let on_hand_after = stock.on_hand;
                        stock.adjustments.push(StockAdjustment {
                            sku: line.sku.clone(),
                            kind: AdjustmentKind::Sold { order: order.id },
                            delta: -i64::from(line.quantity.get()),
                            on_hand_after,
                            at: now,
                            note: None,
                            reference: None,
                        });
                    }
                }
                OrderEffect::ReleaseAllocation => self.release_allocations(order),
                OrderEffect::CheckOutCart(cart) => {
                    self.carts.insert(cart.id, Box::new(Cell::new(*cart)));
                }
                OrderEffect::RecordRefund(refund) => self.refunds.push(refund),
                OrderEffect::UpdateRefund(refund) => {
                    let stored = self.refund_mut(&refund.id)?;
                    *stored = refund;
                }
            }
        }
        Ok(())
    }
}
