//! The holds on one SKU (its carts' reservations, or its orders'
//! allocations), with running totals so that "how many units are held at
//! `now`" costs the same with 100,000 holds as with none.
//!
//! A hold counts while `now < expires_at`, whether or not a sweep has
//! removed it yet. The totals keep that exact: `total` is every hold's
//! quantity, `lapsed` the quantity of the holds that expired at or before
//! `horizon` (the latest instant [`Holds::advance`] was told of), and
//! `pending` orders the others by expiry. So at any `now ≥ horizon` the
//! live quantity is `total − lapsed − (what pending has expiring by now)`,
//! and that last part is empty unless holds lapsed since the last advance.
//! An instant before the horizon (a manual clock moved back) is answered by
//! summing every hold, as it was before the totals existed.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use crate::clock::Timestamp;
use crate::ids::{CartId, OrderId};
use crate::inventory::{Allocation, Reservation};

/// What a hold tells the totals.
pub(super) trait Hold {
    /// Units held.
    fn units(&self) -> u64;
    /// The instant it stops counting.
    fn expires_at(&self) -> Timestamp;
}

impl Hold for Reservation {
    fn units(&self) -> u64 {
        u64::from(self.quantity.get())
    }
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl Hold for Allocation {
    fn units(&self) -> u64 {
        u64::from(self.quantity.get())
    }
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

/// The holds of one SKU, by holder (a cart or an order).
#[derive(Debug)]
pub(super) struct Holds<K, H> {
    by_holder: HashMap<K, H>,
    /// The holds not yet counted as lapsed, by expiry.
    pending: BTreeSet<(Timestamp, K)>,
    total: u64,
    lapsed: u64,
    horizon: Option<Timestamp>,
}

/// A cart's reservations of one SKU.
pub(super) type Reservations = Holds<CartId, Reservation>;
/// An order's allocations of one SKU.
pub(super) type Allocations = Holds<OrderId, Allocation>;

impl<K, H> Default for Holds<K, H> {
    fn default() -> Self {
        Self {
            by_holder: HashMap::new(),
            pending: BTreeSet::new(),
            total: 0,
            lapsed: 0,
            horizon: None,
        }
    }
}

impl<K: Copy + Ord + Hash, H: Hold> Holds<K, H> {
    /// Whether a hold expiring at `at` is counted in `lapsed`.
    fn counted_as_lapsed(&self, at: Timestamp) -> bool {
        self.horizon.is_some_and(|horizon| at <= horizon)
    }

    /// The hold of `holder`, live or not.
    pub(super) fn get(&self, holder: &K) -> Option<&H> {
        self.by_holder.get(holder)
    }

    /// Every hold, live or not, in no particular order.
    pub(super) fn values(&self) -> impl Iterator<Item = &H> {
        self.by_holder.values()
    }

    /// Puts `hold` for `holder`, replacing (and returning) the one it had.
    pub(super) fn insert(&mut self, holder: K, hold: H) -> Option<H> {
        let old = self.remove(&holder);
        let (units, at) = (hold.units(), hold.expires_at());
        self.total = self.total.saturating_add(units);
        if self.counted_as_lapsed(at) {
            self.lapsed = self.lapsed.saturating_add(units);
        } else {
            self.pending.insert((at, holder));
        }
        self.by_holder.insert(holder, hold);
        old
    }

    /// Removes (and returns) the hold of `holder`.
    pub(super) fn remove(&mut self, holder: &K) -> Option<H> {
        let hold = self.by_holder.remove(holder)?;
        let (units, at) = (hold.units(), hold.expires_at());
        self.total = self.total.saturating_sub(units);
        if self.counted_as_lapsed(at) {
            self.lapsed = self.lapsed.saturating_sub(units);
        } else {
            self.pending.remove(&(at, *holder));
        }
        Some(hold)
    }

    /// Counts the holds expired by `now` as lapsed (nothing when `now` is
    /// before the horizon).
    pub(super) fn advance(&mut self, now: Timestamp) {
        if self.horizon.is_some_and(|horizon| now < horizon) {
            return;
        }
        while let Some(&(at, holder)) = self.pending.first() {
            if at > now {
                break;
            }
            self.pending.pop_first();
            let units = self.by_holder.get(&holder).map_or(0, Hold::units);
            self.lapsed = self.lapsed.saturating_add(units);
        }
        self.horizon = Some(now);
    }

    /// Units held at `now` by live holds, less the live hold of `except`.
    pub(super) fn live(&self, now: Timestamp, except: Option<K>) -> u64 {
        let all = if self.horizon.is_none_or(|horizon| now >= horizon) {
            let lapsing: u64 = self
                .pending
                .iter()
                .take_while(|(at, _)| *at <= now)
                .filter_map(|(_, holder)| self.by_holder.get(holder))
                .map(Hold::units)
                .sum();
            self.total
                .saturating_sub(self.lapsed)
                .saturating_sub(lapsing)
        } else {
            self.by_holder
                .values()
                .filter(|h| now < h.expires_at())
                .map(Hold::units)
                .sum()
        };
        let own = except
            .and_then(|holder| self.by_holder.get(&holder))
            .filter(|h| now < h.expires_at())
            .map_or(0, Hold::units);
        all.saturating_sub(own)
    }

    /// The earliest expiry among the holds live at `now`.
    pub(super) fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        if self.horizon.is_none_or(|horizon| now >= horizon) {
            self.pending.iter().map(|(at, _)| *at).find(|at| now < *at)
        } else {
            self.by_holder
                .values()
                .map(Hold::expires_at)
                .filter(|at| now < *at)
                .min()
        }
    }

    /// Whether a hold has expired by `now` (and waits for a sweep).
    pub(super) fn any_expired(&self, now: Timestamp) -> bool {
        if self.horizon.is_none_or(|horizon| now >= horizon) {
            self.lapsed > 0 || self.pending.first().is_some_and(|(at, _)| *at <= now)
        } else {
            self.by_holder.values().any(|h| h.expires_at() <= now)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;

    use super::*;
    use crate::ids::{Quantity, Sku};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + TimeDelta::seconds(seconds)
    }

    fn hold(cart: CartId, units: u32, expires: i64) -> Reservation {
        Reservation {
            cart,
            sku: Sku::parse("SKU").unwrap(),
            quantity: Quantity::new(units).unwrap(),
            expires_at: at(expires),
        }
    }

    /// One step against the holds: put, remove, or look at an instant
    /// (advancing to it or not).
    #[derive(Debug, Clone)]
    enum Step {
        Put {
            cart: usize,
            units: u32,
            expires: i64,
        },
        Remove {
            cart: usize,
        },
        Look {
            now: i64,
            advance: bool,
            except: Option<usize>,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..6usize, 1..5u32, 0..40i64).prop_map(|(cart, units, expires)| Step::Put {
                cart,
                units,
                expires
            }),
            (0..6usize).prop_map(|cart| Step::Remove { cart }),
            (0..40i64, any::<bool>(), proptest::option::of(0..6usize)).prop_map(
                |(now, advance, except)| Step::Look {
                    now,
                    advance,
                    except
                }
            ),
        ]
    }

    proptest! {
        /// Whatever the steps (clock moved back included), the totals
        /// answer what summing every hold answers.
        #[test]
        fn the_totals_agree_with_summing_every_hold(steps in proptest::collection::vec(step(), 1..80)) {
            let carts: Vec<CartId> = (0..6).map(|_| CartId::new()).collect();
            let mut holds = Reservations::default();
            let mut plain: HashMap<CartId, Reservation> = HashMap::new();
            for step in steps {
                match step {
                    Step::Put { cart, units, expires } => {
                        let h = hold(carts[cart], units, expires);
                        prop_assert_eq!(holds.insert(carts[cart], h.clone()), plain.insert(carts[cart], h));
                    }
                    Step::Remove { cart } => {
                        prop_assert_eq!(holds.remove(&carts[cart]), plain.remove(&carts[cart]));
                    }
                    Step::Look { now, advance, except } => {
                        let now = at(now);
                        if advance {
                            holds.advance(now);
                        }
                        let except = except.map(|i| carts[i]);
                        let live: u64 = plain
                            .values()
                            .filter(|r| r.is_live(now) && Some(r.cart) != except)
                            .map(|r| u64::from(r.quantity.get()))
                            .sum();
                        prop_assert_eq!(holds.live(now, except), live);
                        let next = plain.values().filter(|r| r.is_live(now)).map(|r| r.expires_at).min();
                        prop_assert_eq!(holds.next_release(now), next);
                        let expired = plain.values().any(|r| !r.is_live(now));
                        prop_assert_eq!(holds.any_expired(now), expired);
                    }
                }
            }
        }
    }
}
