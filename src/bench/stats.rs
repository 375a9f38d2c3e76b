//! Statistics of benchmark samples: mean, sample standard deviation, exact percentiles,
//! and the per-request latency metrics of vLLM's benchmark (TTFT, TPOT, ITL, E2E).
//!
//! Percentiles are exact: the samples are sorted and the p-th percentile is read at rank
//! `h = (n − 1) · p / 100`, interpolating linearly between the two closest ranks (numpy's
//! default `linear` method, the one vLLM's `benchmark_serving` reports through
//! `np.percentile`).

use serde::{Deserialize, Serialize};

/// Arithmetic mean; 0 for no samples.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Sample standard deviation (divides by n − 1); 0 for fewer than two samples.
pub fn sample_sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// The `p`-th percentile (0–100) of samples already sorted ascending; `None` when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 100.0) / 100.0;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// The `p`-th percentile (0–100) of unsorted samples; `None` when empty.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, p)
}

/// What every reported metric shows: count, mean ± sample sd, and the distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarise samples (all zeros when there are none).
    pub fn of(xs: &[f64]) -> Summary {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let p = |q| percentile_sorted(&v, q).unwrap_or(0.0);
        Summary {
            n: v.len(),
            mean: mean(&v),
            sd: sample_sd(&v),
            min: v.first().copied().unwrap_or(0.0),
            p50: p(50.0),
            p90: p(90.0),
            p99: p(99.0),
            max: v.last().copied().unwrap_or(0.0),
        }
    }

    /// `mean ± sd` as llama-bench prints it.
    pub fn mean_sd(&self, decimals: usize) -> String {
        format!("{:.*} ± {:.*}", decimals, self.mean, decimals, self.sd)
    }
}

/// Time per output token after the first: (E2E − TTFT) / (output tokens − 1); `None` for
/// fewer than two output tokens (vLLM leaves such requests out of TPOT as well).
pub fn tpot(e2e: f64, ttft: f64, output_tokens: usize) -> Option<f64> {
    (output_tokens > 1).then(|| (e2e - ttft) / (output_tokens - 1) as f64)
}

/// Gaps between consecutive token arrival times of one request.
pub fn gaps(arrivals: &[f64]) -> Vec<f64> {
    arrivals.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Inter-token latencies of several requests, pooled: every gap of every request counts
/// once (a request with more tokens weighs more), as vLLM's ITL does.
pub fn pooled_itl<'a>(requests: impl IntoIterator<Item = &'a [f64]>) -> Vec<f64> {
    requests.into_iter().flat_map(gaps).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn mean_and_sample_sd_of_a_known_sample() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&xs), 5.0));
        // Σ(x − 5)² = 32; sample variance 32 / 7.
        assert!(close(sample_sd(&xs), (32.0f64 / 7.0).sqrt()));
        assert_eq!(sample_sd(&[3.0]), 0.0);
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn percentiles_interpolate_between_closest_ranks() {
        // 1..=10: rank h = 9p/100 → p50 = 5.5, p90 = 9.1, p99 = 9.91 (numpy's values).
        let xs: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert!(close(percentile(&xs, 50.0).unwrap(), 5.5));
        assert!(close(percentile(&xs, 90.0).unwrap(), 9.1));
        assert!(close(percentile(&xs, 99.0).unwrap(), 9.91));
        assert!(close(percentile(&xs, 0.0).unwrap(), 1.0));
        assert!(close(percentile(&xs, 100.0).unwrap(), 10.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert!(close(percentile(&[7.0], 99.0).unwrap(), 7.0));
        // 15, 20, 35, 40, 50: p40 at rank 1.6 → 20 + 0.6·15 = 29.
        assert!(close(
            percentile(&[50.0, 15.0, 40.0, 20.0, 35.0], 40.0).unwrap(),
            29.0
        ));
    }

    #[test]
    fn summary_holds_every_figure() {
        let s = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.n, s.min, s.max), (3, 1.0, 3.0));
        assert!(close(s.mean, 2.0) && close(s.sd, 1.0) && close(s.p50, 2.0));
        assert!(close(s.p90, 2.8) && close(s.p99, 2.98));
        assert_eq!(s.mean_sd(1), "2.0 ± 1.0");
        assert_eq!(Summary::of(&[]), Summary::default());
    }

    #[test]
    fn tpot_excludes_the_first_token() {
        // 10 tokens: first at 100 ms, last at 1000 ms → 900 ms over 9 gaps.
        assert!(close(tpot(1000.0, 100.0, 10).unwrap(), 100.0));
        assert_eq!(tpot(50.0, 50.0, 1), None);
        assert_eq!(tpot(50.0, 50.0, 0), None);
    }

    #[test]
    fn itl_pools_every_gap_of_every_request() {
        let a = [0.0, 10.0, 30.0]; // gaps 10, 20
        let b = [5.0, 45.0]; // gap 40
        let c = [1.0]; // no gap
        let pooled = pooled_itl([&a[..], &b[..], &c[..]]);
        assert_eq!(pooled, vec![10.0, 20.0, 40.0]);
        // Pooled mean weighs gaps, not requests: (10 + 20 + 40) / 3, not mean(15, 40).
        assert!(close(mean(&pooled), 70.0 / 3.0));
    }
}
