//! Latencies counted in a fixed number of buckets: exact below 128 ns, then 64 buckets for each
//! power of two, so a quantile is read within 1.6% of its value whatever the number of calls,
//! in a constant 18 KiB.

use std::time::Duration;

/// Buckets for each power of two above the exact range; 64 gives 1/64 of relative precision.
const SUB_BUCKETS: u64 = 64;
const SUB_BUCKET_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Values below this are counted exactly, one bucket each, in nanoseconds.
const EXACT_NS_MAX: u64 = 2 * SUB_BUCKETS;
/// The largest latency counted as itself; a longer one counts as this, in nanoseconds (about
/// 18 minutes: far past any call's timeout).
const LATENCY_NS_MAX: u64 = (1 << 40) - 1;
/// Buckets in all: the exact ones, then 64 for each power of two from 2^7 to 2^39.
const BUCKETS: usize = (EXACT_NS_MAX + (40 - SUB_BUCKET_BITS as u64 - 1) * SUB_BUCKETS) as usize;

/// The latencies of one kind of call.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    total: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Histogram").field("total", &self.total).finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: vec![0; BUCKETS].into_boxed_slice(), total: 0 }
    }
}

impl Histogram {
    pub(crate) fn record(&mut self, latency: Duration) {
        let latency_ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).min(LATENCY_NS_MAX);
        self.counts[bucket(latency_ns)] += 1;
        self.total += 1;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (count, added) in self.counts.iter_mut().zip(other.counts.iter()) {
            *count += added;
        }
        self.total += other.total;
    }

    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// The latency under which a `quantile` (0 to 1) of the calls fell: the middle of its
    /// bucket. Zero when nothing was recorded.
    pub(crate) fn quantile(&self, quantile: f64) -> Duration {
        debug_assert!((0.0..=1.0).contains(&quantile), "a quantile is between 0 and 1");
        if self.total == 0 {
            return Duration::ZERO;
        }
        // The rank of the call at the quantile, counting from 1.
        let rank = ((quantile * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_nanos(middle_ns(index));
            }
        }
        unreachable!("the counts add up to the total")
    }
}

fn bucket(value_ns: u64) -> usize {
    if value_ns < EXACT_NS_MAX {
        return value_ns as usize;
    }
    let top_bit = 63 - value_ns.leading_zeros();
    let shift = top_bit - SUB_BUCKET_BITS;
    let sub_bucket = (value_ns >> shift) - SUB_BUCKETS;
    (EXACT_NS_MAX + u64::from(shift - 1) * SUB_BUCKETS + sub_bucket) as usize
}

fn middle_ns(index: usize) -> u64 {
    let index = index as u64;
    if index < EXACT_NS_MAX {
        return index;
    }
    let shift = (index - EXACT_NS_MAX) / SUB_BUCKETS + 1;
    let low = (SUB_BUCKETS + (index - EXACT_NS_MAX) % SUB_BUCKETS) << shift;
    low + (1 << shift) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_middle_is_within_two_percent() {
        for value_ns in (0..10_000).chain((1..40).map(|bits| (1_u64 << bits) + 12_345 % (1 << bits))) {
            let value_ns = value_ns.min(LATENCY_NS_MAX);
            let index = bucket(value_ns);
            assert!(index < BUCKETS, "{value_ns}");
            let middle_ns = middle_ns(index);
            assert!(
                middle_ns.abs_diff(value_ns) as f64 <= value_ns as f64 / 50.0,
                "{value_ns} read {middle_ns}"
            );
        }
        assert_eq!(bucket(LATENCY_NS_MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_read_from_the_counts() {
        let mut histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(Duration::from_micros(micros));
        }
        let p50 = histogram.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = histogram.quantile(0.99).as_secs_f64() * 1e6;
        assert!((p50 - 500.0).abs() < 10.0, "{p50}");
        assert!((p99 - 990.0).abs() < 20.0, "{p99}");
        let mut merged = Histogram::default();
        merged.merge(&histogram);
        merged.merge(&histogram);
        assert_eq!(merged.count(), 2000);
        assert_eq!(merged.quantile(0.5), histogram.quantile(0.5));
    }
}
