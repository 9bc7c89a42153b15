//! Pickup slots: half-hour windows in the stores' opening hours, from an
//! hour after now, over the next two days. The stores are in Brisbane,
//! which keeps UTC+10 all year (no daylight saving), so a fixed offset is
//! the right clock.
//!
//! The chosen slot is a cart attribute ([`ATTRIBUTE`], its start as
//! RFC 3339), which placing the order copies to the order.

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, Offset as _, Timelike};
use commerce_core::Timestamp;

/// The cart (and order) attribute holding the slot's start.
pub const ATTRIBUTE: &str = "pickup.slot";

/// How long a slot is.
pub const SLOT_MINUTES: i64 = 30;
/// How soon the first slot may start.
pub const LEAD_MINUTES: i64 = 60;
/// The first slot of a day starts at 08:00.
pub const OPENS: u32 = 8;
/// The last slot of a day ends at 20:00.
pub const CLOSES: u32 = 20;
/// How many slots are offered at most.
pub const OFFERED: usize = 16;

/// Brisbane: UTC+10.
pub fn brisbane() -> FixedOffset {
    // 36,000 seconds is within a day, so this is always `Some`.
    FixedOffset::east_opt(10 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

/// A pickup slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// When it starts, in Brisbane time.
    pub start: DateTime<FixedOffset>,
    /// The form value and the attribute: the start, RFC 3339
    /// (`2026-01-02T10:30:00+10:00`).
    pub value: String,
    /// `Fri 2 Jan, 10:30-11:00`.
    pub label: String,
}

impl Slot {
    fn at(start: DateTime<FixedOffset>) -> Self {
        let end = start + Duration::minutes(SLOT_MINUTES);
        Self {
            value: start.to_rfc3339(),
            label: format!(
                "{}, {}-{}",
                start.format("%a %-d %b"),
                start.format("%H:%M"),
                end.format("%H:%M")
            ),
            start,
        }
    }
}

/// The slots offered at `now`: from the first half hour at least
/// [`LEAD_MINUTES`] away, those inside opening hours, at most
/// [`OFFERED`].
pub fn offered(now: Timestamp) -> Vec<Slot> {
    let local = now.with_timezone(&brisbane());
    let earliest = local + Duration::minutes(LEAD_MINUTES);
    // Round up to the next half hour.
    let past = i64::from(earliest.minute() % 30) * 60 + i64::from(earliest.second());
    let mut start = earliest - Duration::seconds(past);
    let has_fraction = earliest.nanosecond() > 0;
    if past > 0 || has_fraction {
        start += Duration::minutes(30);
    }
    let start = start.with_nanosecond(0).unwrap_or(start);
    let opens = NaiveTime::from_hms_opt(OPENS, 0, 0).unwrap_or_default();
    let last =
        NaiveTime::from_hms_opt(CLOSES, 0, 0).unwrap_or_default() - Duration::minutes(SLOT_MINUTES);
    let mut slots = Vec::with_capacity(OFFERED);
    let mut at = start;
    // Two days of half hours is 96 steps; stop there whatever happens.
    for _ in 0..96 {
        if slots.len() >= OFFERED {
            break;
        }
        let time = at.time();
        if time >= opens && time <= last {
            slots.push(Slot::at(at));
        }
        at += Duration::minutes(30);
    }
    slots
}

/// The slot whose value is `value`, if it is offered at `now`.
pub fn choose(now: Timestamp, value: &str) -> Option<Slot> {
    offered(now).into_iter().find(|slot| slot.value == value)
}

/// A stored slot value in words (`Fri 2 Jan, 10:30-11:00`), or the value
/// as it is when it is not one.
pub fn describe(value: &str) -> String {
    DateTime::parse_from_rfc3339(value).map_or_else(
        |_| value.to_owned(),
        |start| Slot::at(start.with_timezone(&brisbane())).label,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_core::Clock as _;
    use commerce_core::ManualClock;

    /// 2026-01-02 00:00 UTC is 10:00 in Brisbane, a Friday.
    const FRIDAY_10AM: i64 = 1_767_312_000;

    fn at(unix: i64) -> Timestamp {
        ManualClock::at_unix(unix).now()
    }

    #[test]
    fn slots_start_an_hour_out_on_the_half_hour() {
        let slots = offered(at(FRIDAY_10AM));
        assert_eq!(slots.len(), OFFERED);
        let first = slots.first().map(|s| (s.value.as_str(), s.label.as_str()));
        assert_eq!(
            first,
            Some(("2026-01-02T11:00:00+10:00", "Fri 2 Jan, 11:00-11:30"))
        );
        // 10:07 → the first slot is at 11:30.
        let later = offered(at(FRIDAY_10AM + 7 * 60));
        assert_eq!(
            later.first().map(|s| s.label.as_str()),
            Some("Fri 2 Jan, 11:30-12:00")
        );
    }

    #[test]
    fn slots_stay_in_opening_hours_and_roll_over_to_the_next_day() {
        // 18:15 in Brisbane: only 19:30-20:00 is left today, then tomorrow from 08:00.
        let evening = offered(at(FRIDAY_10AM + 8 * 3600 + 15 * 60));
        let labels: Vec<&str> = evening.iter().take(3).map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Fri 2 Jan, 19:30-20:00",
                "Sat 3 Jan, 08:00-08:30",
                "Sat 3 Jan, 08:30-09:00"
            ]
        );
        // 18:45: nothing is left today.
        let late = offered(at(FRIDAY_10AM + 8 * 3600 + 45 * 60));
        assert_eq!(
            late.first().map(|s| s.label.as_str()),
            Some("Sat 3 Jan, 08:00-08:30")
        );
        assert_eq!(late.len(), OFFERED);
        for slot in &evening {
            let hour = slot.start.hour();
            assert!((OPENS..CLOSES).contains(&hour), "{}", slot.label);
        }
    }

    #[test]
    fn only_an_offered_slot_can_be_chosen() {
        let now = at(FRIDAY_10AM);
        assert!(choose(now, "2026-01-02T11:00:00+10:00").is_some());
        assert!(
            choose(now, "2026-01-02T10:30:00+10:00").is_none(),
            "too soon"
        );
        assert!(choose(now, "2026-01-02T23:00:00+10:00").is_none(), "closed");
        assert!(choose(now, "tomorrow").is_none());
        assert_eq!(
            describe("2026-01-02T11:00:00+10:00"),
            "Fri 2 Jan, 11:00-11:30"
        );
        assert_eq!(describe("whenever"), "whenever");
    }
}
