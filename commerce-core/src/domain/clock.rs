//! Time, from a trait, so tests can move it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use parking_lot::Mutex;

/// An instant in UTC.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time.
///
/// The facade reads the clock once per use case and hands that instant to the
/// store, so a store never reads time itself: reservation expiry, payment
/// windows, sweeps and webhook tolerance all follow the clock.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use commerce_core::{Clock, ManualClock};
/// let clock = ManualClock::at_unix(1_767_225_600);
/// let before = clock.now();
/// clock.advance(Duration::from_secs(15 * 60));
/// assert_eq!((clock.now() - before).num_minutes(), 15);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// A clock standing at `seconds` after the Unix epoch (the epoch itself
    /// if `seconds` is out of range).
    pub fn at_unix(seconds: i64) -> Self {
        let now = Utc
            .timestamp_opt(seconds, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH);
        Self::new(now)
    }

    /// Moves the clock forward by `by` (saturating at the largest instant).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        *now = now
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    /// Sets the clock to `now` (backwards too).
    pub fn set(&self, now: Timestamp) {
        *self.now.lock() = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}
