//! The holds on one SKU (its carts' reservations, or its orders'
//! allocations), with running totals so that "how many units are held at
//! `now`" costs the same with 100,000 holds as with none.
//!
//! A hold counts while `now < expires_at`, whether or not a sweep has
//! removed it yet. The totals keep that exact: `total` is every hold's
//! quantity, `lapsed` the quantity of the holds that expired at or before
//! `horizon` (the latest instant [`Holds::advance`] was told of), and
//! `by_expiry` orders every hold by expiry. So at any `now` the live
//! quantity is `total − lapsed`, less what expires in `(horizon, now]` when
//! `now` is later, plus what expires in `(now, horizon]` when it is
//! earlier: a walk over the holds expiring between the two instants, which
//! is empty unless holds lapsed in between. Callers read the clock before
//! they take the lock, so two threads often arrive a few microseconds out
//! of order; an earlier instant costs the same as a later one.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::ops::Bound;

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

/// A holder's key, with the largest of its type, so that `(at, K::MAX)`
/// bounds every hold expiring at `at`.
pub(super) trait Holder: Copy + Ord + Hash {
    /// The largest key.
    const MAX: Self;
}

impl Holder for CartId {
    const MAX: Self = CartId::from_uuid(uuid::Uuid::max());
}

impl Holder for OrderId {
    const MAX: Self = OrderId::from_uuid(uuid::Uuid::max());
}

/// The holds of one SKU, by holder (a cart or an order).
#[derive(Debug)]
pub(super) struct Holds<K, H> {
    by_holder: HashMap<K, H, foldhash::fast::RandomState>,
    /// Every hold, by expiry.
    by_expiry: BTreeSet<(Timestamp, K)>,
    total: u64,
    /// The units of the holds expiring at or before `horizon`.
    lapsed: u64,
    horizon: Timestamp,
}

/// A cart's reservations of one SKU.
pub(super) type Reservations = Holds<CartId, Reservation>;
/// An order's allocations of one SKU.
pub(super) type Allocations = Holds<OrderId, Allocation>;

impl<K, H> Default for Holds<K, H> {
    fn default() -> Self {
        Self {
            by_holder: HashMap::default(),
            by_expiry: BTreeSet::new(),
            total: 0,
            lapsed: 0,
            horizon: Timestamp::MIN_UTC,
        }
    }
}

impl<K: Holder, H: Hold> Holds<K, H> {
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
        if at <= self.horizon {
            self.lapsed = self.lapsed.saturating_add(units);
        }
        self.by_expiry.insert((at, holder));
        self.by_holder.insert(holder, hold);
        old
    }

    /// Removes (and returns) the hold of `holder`.
    pub(super) fn remove(&mut self, holder: &K) -> Option<H> {
        let hold = self.by_holder.remove(holder)?;
        let (units, at) = (hold.units(), hold.expires_at());
        self.total = self.total.saturating_sub(units);
        if at <= self.horizon {
            self.lapsed = self.lapsed.saturating_sub(units);
        }
        self.by_expiry.remove(&(at, *holder));
        Some(hold)
    }

    /// The units of the holds expiring after `from` and at or before `to`:
    /// one descent of the tree, then a walk over what is in between.
    fn expiring_between(&self, from: Timestamp, to: Timestamp) -> u64 {
        if to <= from {
            return 0;
        }
        self.by_expiry
            .range((Bound::Excluded((from, K::MAX)), Bound::Unbounded))
            .take_while(|(at, _)| *at <= to)
            .filter_map(|(_, holder)| self.by_holder.get(holder))
            .map(Hold::units)
            .sum()
    }

    /// The units of the holds expired at `now`.
    fn lapsed_at(&self, now: Timestamp) -> u64 {
        if now >= self.horizon {
            self.lapsed
                .saturating_add(self.expiring_between(self.horizon, now))
        } else {
            self.lapsed
                .saturating_sub(self.expiring_between(now, self.horizon))
        }
    }

    /// Moves the horizon to `now`, so later reads near `now` walk nothing.
    pub(super) fn advance(&mut self, now: Timestamp) {
        self.lapsed = self.lapsed_at(now);
        self.horizon = now;
    }

    /// Units held at `now` by live holds, less the live hold of `except`.
    pub(super) fn live(&self, now: Timestamp, except: Option<K>) -> u64 {
        let all = self.total.saturating_sub(self.lapsed_at(now));
        let own = except
            .and_then(|holder| self.by_holder.get(&holder))
            .filter(|h| now < h.expires_at())
            .map_or(0, Hold::units);
        all.saturating_sub(own)
    }

    /// The earliest expiry among the holds live at `now`.
    pub(super) fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        self.by_expiry
            .range((Bound::Excluded((now, K::MAX)), Bound::Unbounded))
            .next()
            .map(|(at, _)| *at)
    }

    /// Whether a hold has expired by `now` (and waits for a sweep).
    pub(super) fn any_expired(&self, now: Timestamp) -> bool {
        self.by_expiry.first().is_some_and(|(at, _)| *at <= now)
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
