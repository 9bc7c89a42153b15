//! The holds on one SKU (its carts' reservations, or its orders'
//! allocations), with running totals so that "how many units are held at
//! `now`" costs the same with 100,000 holds as with none.
//!
//! A hold counts while `now < expires_at`, whether or not a sweep has
//! removed it yet. The totals keep that exact: `total` is every hold's
//! quantity, `lapsed` the quantity of the holds that expired at or before
//! `horizon` (the latest instant [`Holds::advance`] was told of), and
//! `queue` gives, instant by instant in expiry order, the units of the
//! holds expiring then, with `cursor` where the horizon falls in it. So at
//! any `now` the live quantity is `total − lapsed`, less what expires in
//! `(horizon, now]` when `now` is later, plus what expires in
//! `(now, horizon]` when it is earlier: a walk from the cursor over the
//! instants between the two, which is empty unless holds lapsed in
//! between. Callers read the clock before they take the lock, so two
//! threads often arrive a few microseconds out of order; an earlier
//! instant costs the same as a later one.
//!
//! Holds arrive in expiry order but for such inversions (the TTL is the
//! engine's), so a new hold's units go at the back of the queue or a few
//! places before it: no tree, no allocation per hold, 16 bytes of queue a
//! hold. A hold that goes (removed or replaced) takes its units out of its
//! instant's entry, found by a binary search on its expiry; an entry left
//! with no units stays until a compaction.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use crate::clock::Timestamp;
use crate::ids::{CartId, OrderId, Quantity, Sku};
use crate::inventory::{Allocation, Reservation};

/// What a hold tells the totals.
pub(super) trait Hold {
    /// Units held.
    fn units(&self) -> u32;
    /// The instant it stops counting.
    fn expires_at(&self) -> Timestamp;
}

/// One hold as the holds of a SKU keep it: how many units, until when.
/// The holder is the key and the SKU the owner of the holds, so neither is
/// stored again: 16 bytes a hold, no reference count to touch, nothing to
/// drop. [`Held::reservation`] and [`Held::allocation`] give it back whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) quantity: Quantity,
    pub(super) expires_at: Timestamp,
}

impl Held {
    /// Whether it still holds stock at `now`.
    pub(super) fn is_live(self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// The reservation of `cart` on `sku` it stands for.
    pub(super) fn reservation(self, cart: CartId, sku: &Sku) -> Reservation {
        Reservation {
            cart,
            sku: sku.clone(),
            quantity: self.quantity,
            expires_at: self.expires_at,
        }
    }

    /// The allocation of `order` on `sku` it stands for.
    pub(super) fn allocation(self, order: OrderId, sku: &Sku) -> Allocation {
        Allocation {
            order,
            sku: sku.clone(),
            quantity: self.quantity,
            expires_at: self.expires_at,
        }
    }
}

impl Hold for Held {
    fn units(&self) -> u32 {
        self.quantity.get()
    }
    fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

/// Empty entries tolerated in the queue before a compaction (which also
/// needs them to be half of it). Four in tests, so that the property test
/// compacts often.
const EMPTY_BEFORE_COMPACTION: usize = if cfg!(test) { 4 } else { 64 };

/// One entry of the queue: an instant, and the units of holds expiring
/// then. An instant has one entry unless its units would pass `u32::MAX`.
type Entry = (Timestamp, u32);

/// The holds of one SKU, by holder (a cart or an order).
#[derive(Debug)]
pub(super) struct Holds<K, H> {
    /// Each holder's hold.
    by_holder: HashMap<K, H, foldhash::fast::RandomState>,
    /// The units held, by expiry.
    queue: VecDeque<Entry>,
    /// The entries of `queue` left with no units.
    empty: usize,
    /// `queue[..cursor]` expire at or before `horizon`.
    cursor: usize,
    /// The expiry of `queue[cursor]`, or the latest instant when the cursor
    /// is at the end: a read later than the horizon but before it walks
    /// nothing, without touching the queue (whose front is seldom in the
    /// cache when holds pile up).
    next: Timestamp,
    total: u64,
    /// The units of the holds expiring at or before `horizon`.
    lapsed: u64,
    horizon: Timestamp,
}

/// A cart's reservations of one SKU.
pub(super) type Reservations = Holds<CartId, Held>;
/// An order's allocations of one SKU.
pub(super) type Allocations = Holds<OrderId, Held>;

impl<K, H> Default for Holds<K, H> {
    fn default() -> Self {
        Self {
            by_holder: HashMap::default(),
            queue: VecDeque::new(),
            empty: 0,
            cursor: 0,
            next: Timestamp::MAX_UTC,
            total: 0,
            lapsed: 0,
            horizon: Timestamp::MIN_UTC,
        }
    }
}

impl<K: Copy + Eq + Hash, H: Hold> Holds<K, H> {
    /// The hold of `holder`, live or not.
    pub(super) fn get(&self, holder: &K) -> Option<&H> {
        self.by_holder.get(holder)
    }

    /// Every holder and its hold, live or not, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &H)> {
        self.by_holder.iter()
    }

    /// Puts `hold` for `holder`, replacing (and returning) the one it had.
    pub(super) fn insert(&mut self, holder: K, hold: H) -> Option<H> {
        let (units, at) = (hold.units(), hold.expires_at());
        // One look-up for the holder: the replaced hold, if any, leaves the
        // totals as `remove` would take it out.
        let old = self.by_holder.insert(holder, hold);
        if let Some(old) = &old {
            self.take_out(old.units(), old.expires_at());
        }
        self.put_in(units, at);
        old
    }

    /// Removes (and returns) the hold of `holder`.
    pub(super) fn remove(&mut self, holder: &K) -> Option<H> {
        let hold = self.by_holder.remove(holder)?;
        self.take_out(hold.units(), hold.expires_at());
        Some(hold)
    }

    /// Adds `units` expiring at `at` to the totals and the queue.
    fn put_in(&mut self, units: u32, at: Timestamp) {
        // A hold of nothing has no entry (the store makes none: a line of
        // zero units is a removal).
        if units == 0 {
            return;
        }
        self.total = self.total.saturating_add(u64::from(units));
        if at <= self.horizon {
            self.lapsed = self.lapsed.saturating_add(u64::from(units));
        }
        let mut position = if self.queue.back().is_none_or(|last| last.0 < at) {
            self.queue.len()
        } else {
            self.queue.partition_point(|entry| entry.0 < at)
        };
        // The instant's entry takes them if it has room.
        while let Some(entry) = self.queue.get_mut(position).filter(|entry| entry.0 == at) {
            if let Some(sum) = entry.1.checked_add(units) {
                if entry.1 == 0 {
                    self.empty = self.empty.saturating_sub(1);
                }
                entry.1 = sum;
                return;
            }
            position += 1;
        }
        self.queue.insert(position, (at, units));
        if at <= self.horizon {
            // Entries expiring at or before the horizon come before the
            // cursor, so this one did too.
            self.cursor = self.cursor.saturating_add(1);
        } else if position == self.cursor {
            self.next = at;
        }
    }

    /// Takes `units` expiring at `at` (a hold that left `by_holder`) out
    /// of the totals and the queue.
    fn take_out(&mut self, units: u32, at: Timestamp) {
        self.total = self.total.saturating_sub(u64::from(units));
        if at <= self.horizon {
            self.lapsed = self.lapsed.saturating_sub(u64::from(units));
        }
        let mut left = units;
        let mut position = self.queue.partition_point(|entry| entry.0 < at);
        while left > 0 {
            let Some(entry) = self.queue.get_mut(position).filter(|entry| entry.0 == at) else {
                break;
            };
            let taken = entry.1.min(left);
            entry.1 -= taken;
            left -= taken;
            if taken > 0 && entry.1 == 0 {
                self.empty = self.empty.saturating_add(1);
            }
            position += 1;
        }
        debug_assert_eq!(left, 0, "a hold's units were in the queue");
        if self.empty > EMPTY_BEFORE_COMPACTION && self.empty > self.queue.len() / 2 {
            self.compact();
        }
    }

    /// Drops the empty entries.
    fn compact(&mut self) {
        self.queue.retain(|entry| entry.1 > 0);
        self.empty = 0;
        let horizon = self.horizon;
        self.cursor = self.queue.partition_point(|entry| entry.0 <= horizon);
        self.next = self.expiry_at(self.cursor);
    }

    /// The expiry of `queue[at]`, or the latest instant past the end.
    fn expiry_at(&self, at: usize) -> Timestamp {
        self.queue
            .get(at)
            .map_or(Timestamp::MAX_UTC, |entry| entry.0)
    }

    /// Where `now` falls in the queue (the entries before expire at or
    /// before it), and the units of the holds between there and the
    /// cursor: lapsing since the horizon (`now` later) or not yet lapsed at
    /// `now` (earlier).
    fn walk(&self, now: Timestamp) -> (usize, u64) {
        let mut at = self.cursor;
        let mut units = 0u64;
        // At the horizon itself (every read just after an advance to the
        // same instant, as a reservation's check), or later but before the
        // next expiry, the queue is not read.
        if now > self.horizon && now >= self.next {
            while let Some(entry) = self.queue.get(at).filter(|entry| entry.0 <= now) {
                units = units.saturating_add(u64::from(entry.1));
                at += 1;
            }
        } else if now < self.horizon {
            while let Some(entry) = at
                .checked_sub(1)
                .and_then(|before| self.queue.get(before))
                .filter(|entry| entry.0 > now)
            {
                units = units.saturating_add(u64::from(entry.1));
                at -= 1;
            }
        }
        (at, units)
    }

    /// Where `now` falls in the queue (as [`Self::walk`]) and the units of
    /// the holds expired at `now`.
    fn lapsed_at(&self, now: Timestamp) -> (usize, u64) {
        let (at, units) = self.walk(now);
        let lapsed = if now >= self.horizon {
            self.lapsed.saturating_add(units)
        } else {
            self.lapsed.saturating_sub(units)
        };
        (at, lapsed)
    }

    /// Moves the horizon to `now`, so later reads at `now` walk nothing
    /// and reads near it little.
    pub(super) fn advance(&mut self, now: Timestamp) {
        let cursor = self.cursor;
        (self.cursor, self.lapsed) = self.lapsed_at(now);
        if self.cursor != cursor {
            self.next = self.expiry_at(self.cursor);
        }
        self.horizon = now;
    }

    /// Units held at `now` by live holds, less the live hold of `except`.
    pub(super) fn live(&self, now: Timestamp, except: Option<K>) -> u64 {
        let (_, lapsed) = self.lapsed_at(now);
        let all = self.total.saturating_sub(lapsed);
        let own = except
            .and_then(|holder| self.get(&holder))
            .filter(|h| now < h.expires_at())
            .map_or(0, Hold::units);
        all.saturating_sub(u64::from(own))
    }

    /// The earliest expiry among the holds live at `now`.
    pub(super) fn next_release(&self, now: Timestamp) -> Option<Timestamp> {
        let (from, _) = self.walk(now);
        self.queue
            .range(from..)
            .find(|entry| entry.1 > 0)
            .map(|entry| entry.0)
    }

    /// Whether a hold has expired by `now` (and waits for a sweep).
    pub(super) fn any_expired(&self, now: Timestamp) -> bool {
        self.queue
            .iter()
            .take_while(|entry| entry.0 <= now)
            .any(|entry| entry.1 > 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeDelta;
    use proptest::prelude::*;

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + TimeDelta::seconds(seconds)
    }

    fn hold(units: u32, expires: i64) -> Held {
        Held {
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

    /// The carts of the property test, and the instants its holds expire
    /// at: enough of both that removed and replaced holds empty entries
    /// past the compaction threshold.
    const CARTS: usize = 12;
    const EXPIRIES: i64 = 60;

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..CARTS, 1..5u32, 0..EXPIRIES).prop_map(|(cart, units, expires)| Step::Put {
                cart,
                units,
                expires
            }),
            (0..CARTS).prop_map(|cart| Step::Remove { cart }),
            (0..EXPIRIES, any::<bool>(), proptest::option::of(0..CARTS)).prop_map(
                |(now, advance, except)| Step::Look {
                    now,
                    advance,
                    except
                }
            ),
        ]
    }

    /// More units expiring at one instant than an entry counts (5,000
    /// holds of a million units) spill into more entries of the same
    /// instant, and go back out of them exactly.
    #[test]
    fn an_instant_holds_more_units_than_one_entry_counts() {
        let carts: Vec<CartId> = (0..5_000).map(|_| CartId::new()).collect();
        let mut holds = Reservations::default();
        let big = hold(Quantity::MAX, 10);
        for cart in &carts {
            holds.insert(*cart, big);
        }
        let all = 5_000 * u64::from(Quantity::MAX);
        assert!(holds.queue.len() > 1);
        assert_eq!(holds.live(at(0), None), all);
        assert_eq!(holds.live(at(10), None), 0);
        holds.advance(at(5));
        for cart in &carts[..2_500] {
            holds.remove(cart);
        }
        assert_eq!(holds.live(at(5), None), all / 2);
        assert_eq!(holds.next_release(at(5)), Some(at(10)));
        holds.advance(at(10));
        assert_eq!(holds.live(at(10), None), 0);
        assert_eq!(holds.live(at(9), None), all / 2);
        for cart in &carts[2_500..] {
            holds.remove(cart);
        }
        assert_eq!(holds.live(at(0), None), 0);
        assert!(!holds.any_expired(at(20)));
    }

    /// Holds replaced and removed over and over leave a queue about the
    /// size of the live holds, and the totals stay exact.
    #[test]
    fn empty_entries_are_compacted() {
        let carts: Vec<CartId> = (0..10).map(|_| CartId::new()).collect();
        let mut holds = Reservations::default();
        for round in 0..1_000i64 {
            for (i, cart) in carts.iter().enumerate() {
                holds.insert(*cart, hold(1, 100 + round + i64::try_from(i).unwrap()));
            }
            holds.remove(&carts[0]);
            holds.advance(at(round));
        }
        assert!(holds.queue.len() <= 2 * carts.len() + EMPTY_BEFORE_COMPACTION);
        assert_eq!(holds.live(at(0), None), 9);
        assert_eq!(holds.live(at(1_200), None), 0);
    }

    /// What the running totals promise of the queue, checked whole.
    fn check_invariants(holds: &Reservations) -> Result<(), TestCaseError> {
        let queue = &holds.queue;
        let units = |entries: &mut dyn Iterator<Item = &Entry>| -> u64 {
            entries.map(|entry| u64::from(entry.1)).sum()
        };
        prop_assert!(
            queue
                .iter()
                .zip(queue.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0)
        );
        prop_assert_eq!(
            holds.cursor,
            queue.partition_point(|entry| entry.0 <= holds.horizon)
        );
        prop_assert_eq!(holds.next, holds.expiry_at(holds.cursor));
        prop_assert_eq!(holds.lapsed, units(&mut queue.range(..holds.cursor)));
        prop_assert_eq!(holds.total, units(&mut queue.iter()));
        let held: u64 = holds.iter().map(|(_, h)| u64::from(h.units())).sum();
        prop_assert_eq!(holds.total, held);
        prop_assert_eq!(
            holds.empty,
            queue.iter().filter(|entry| entry.1 == 0).count()
        );
        Ok(())
    }

    proptest! {
        /// Whatever the steps (clock moved back included, and enough
        /// replaced holds to compact the queue), the totals answer what
        /// summing every hold answers, and the queue keeps what the totals
        /// promise of it after every step.
        #[test]
        fn the_totals_agree_with_summing_every_hold(steps in proptest::collection::vec(step(), 1..600)) {
            let carts: Vec<CartId> = (0..CARTS).map(|_| CartId::new()).collect();
            let mut holds = Reservations::default();
            let mut plain: HashMap<CartId, Held> = HashMap::new();
            for step in steps {
                match step {
                    Step::Put { cart, units, expires } => {
                        let h = hold(units, expires);
                        prop_assert_eq!(holds.insert(carts[cart], h), plain.insert(carts[cart], h));
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
                            .iter()
                            .filter(|(cart, r)| r.is_live(now) && Some(**cart) != except)
                            .map(|(_, r)| u64::from(r.quantity.get()))
                            .sum();
                        prop_assert_eq!(holds.live(now, except), live);
                        let next = plain.values().filter(|r| r.is_live(now)).map(|r| r.expires_at).min();
                        prop_assert_eq!(holds.next_release(now), next);
                        let expired = plain.values().any(|r| !r.is_live(now));
                        prop_assert_eq!(holds.any_expired(now), expired);
                    }
                }
                check_invariants(&holds)?;
            }
        }
    }
}
