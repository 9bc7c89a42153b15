//! Latencies kept whole (a run makes at most a few hundred thousand
//! requests: a sorted vector is exact and small enough), percentiles by
//! nearest rank, and tallies of outcomes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Every latency of one kind of request, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    micros: Vec<u64>,
}

impl Samples {
    pub fn record(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn merge(&mut self, other: Self) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The percentiles of what was recorded; `None` when nothing was.
    pub fn summary(&self) -> Option<Summary> {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        Some(Summary {
            count: sorted.len(),
            p50: percentile(&sorted, 500)?,
            p99: percentile(&sorted, 990)?,
            max: *sorted.last()?,
        })
    }
}

/// The value at `per_mille`/1000 of `sorted` by nearest rank: the smallest
/// value with at least that share of the values at or below it. `None`
/// for no values.
pub fn percentile(sorted: &[u64], per_mille: u32) -> Option<u64> {
    let n = u128::try_from(sorted.len()).ok()?;
    // rank = ceil(n × p / 1000), at least 1.
    let rank = (n * u128::from(per_mille.min(1000))).div_ceil(1000).max(1);
    let index = usize::try_from(rank - 1).ok()?;
    sorted.get(index).copied()
}

/// Count, median, 99th percentile and maximum, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Microseconds as milliseconds with one decimal, or from 1 s as seconds
/// with three.
pub struct Millis(pub u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0;
        if micros >= 1_000_000 {
            write!(
                f,
                "{}.{:03} s",
                micros / 1_000_000,
                micros % 1_000_000 / 1000
            )
        } else {
            write!(f, "{}.{} ms", micros / 1000, micros % 1000 / 100)
        }
    }
}

/// Counts by name (a status, a problem code, an error kind), in name
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, name: impl Into<String>) {
        *self.0.entry(name.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: Self) {
        for (name, count) in other.0 {
            *self.0.entry(name).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `name × count, …`, or `none`.
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (name, count)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} × {count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let hundred: Vec<u64> = (1..=100).collect();
        let cases: [(&[u64], u32, Option<u64>); 12] = [
            (&[], 500, None),
            (&[7], 0, Some(7)),
            (&[7], 500, Some(7)),
            (&[7], 1000, Some(7)),
            (&[1, 2], 500, Some(1)),
            (&[1, 2], 501, Some(2)),
            (&[1, 2, 3], 500, Some(2)),
            (&hundred, 500, Some(50)),
            (&hundred, 990, Some(99)),
            (&hundred, 991, Some(100)),
            (&hundred, 1000, Some(100)),
            (&hundred, 5000, Some(100)),
        ];
        for (values, per_mille, expected) in cases {
            assert_eq!(
                percentile(values, per_mille),
                expected,
                "{per_mille}‰ of {} values",
                values.len()
            );
        }
        // p99 of 1,000 values is the 990th: 10 values lie above it.
        let thousand: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 990), Some(990));
    }

    #[test]
    fn samples_sort_before_summarizing() {
        let mut samples = Samples::default();
        assert_eq!(samples.summary(), None);
        for ms in [30, 10, 20] {
            samples.record(Duration::from_millis(ms));
        }
        let mut more = Samples::default();
        more.record(Duration::from_micros(40_500));
        samples.merge(more);
        assert_eq!(samples.len(), 4);
        assert_eq!(
            samples.summary(),
            Some(Summary {
                count: 4,
                p50: 20_000,
                p99: 40_500,
                max: 40_500,
            })
        );
    }

    #[test]
    fn millis_read_well() {
        assert_eq!(Millis(0).to_string(), "0.0 ms");
        assert_eq!(Millis(1_234).to_string(), "1.2 ms");
        assert_eq!(Millis(999_999).to_string(), "999.9 ms");
        assert_eq!(Millis(1_000_000).to_string(), "1.000 s");
        assert_eq!(Millis(12_345_678).to_string(), "12.345 s");
    }

    #[test]
    fn tallies_count_and_merge() {
        let mut tally = Tally::default();
        assert_eq!(tally.to_string(), "none");
        tally.add("409 insufficient_stock");
        tally.add("409 insufficient_stock");
        let mut other = Tally::default();
        other.add("503");
        other.add("409 insufficient_stock");
        tally.merge(other);
        assert_eq!(tally.total(), 4);
        assert_eq!(tally.to_string(), "409 insufficient_stock × 3, 503 × 1");
    }
}
