//! What the gauges strip shows: tok/s over the last minute, the last turn's TTFT and
//! prefill speed, process CPU and memory, KV-cache fill, GPU where a backend reports it.

use crate::metrics::ProcessSample;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Seconds of tok/s history kept for the sparkline.
pub const WINDOW: usize = 60;

#[derive(Clone, Debug)]
pub struct Gauges {
    /// Tokens generated in each of the last WINDOW seconds, oldest first.
    buckets: VecDeque<u64>,
    bucket_start: Instant,
    pub last_ttft_ms: Option<f64>,
    pub last_prefill_tok_s: Option<f64>,
    pub last_decode_tok_s: Option<f64>,
    pub process: Option<ProcessSample>,
    /// KV entries in use, and the window or context they can grow to.
    pub kv: Option<(usize, usize)>,
}

impl Gauges {
    pub fn new(now: Instant) -> Gauges {
        Gauges {
            buckets: std::iter::repeat_n(0, WINDOW).collect(),
            bucket_start: now,
            last_ttft_ms: None,
            last_prefill_tok_s: None,
            last_decode_tok_s: None,
            process: None,
            kv: None,
        }
    }

    /// Roll the buckets forward to `now`.
    pub fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.bucket_start).as_secs() as usize;
        if elapsed == 0 {
            return;
        }
        for _ in 0..elapsed.min(WINDOW) {
            self.buckets.pop_front();
            self.buckets.push_back(0);
        }
        self.bucket_start += Duration::from_secs(elapsed as u64);
    }

    pub fn token(&mut self, now: Instant) {
        self.advance(now);
        if let Some(b) = self.buckets.back_mut() {
            *b += 1;
        }
    }

    /// Forget the tok/s history (the last turn's figures stay).
    pub fn clear_history(&mut self, now: Instant) {
        self.buckets.iter_mut().for_each(|b| *b = 0);
        self.bucket_start = now;
    }

    /// Tokens per second for each of the last WINDOW seconds (the current one last).
    pub fn history(&self) -> Vec<u64> {
        self.buckets.iter().copied().collect()
    }

    /// Whether the sparkline still shows activity (it needs redrawing as time passes).
    pub fn active(&self) -> bool {
        self.buckets.iter().any(|b| *b > 0)
    }
}

/// Bytes as "123 MiB" / "1.5 GiB".
pub fn bytes(b: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let m = b as f64 / MIB;
    if m >= 1024.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{m:.0} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_roll_per_second() {
        let t0 = Instant::now();
        let mut g = Gauges::new(t0);
        g.token(t0);
        g.token(t0 + Duration::from_millis(500));
        g.token(t0 + Duration::from_millis(1500));
        let h = g.history();
        assert_eq!(h.len(), WINDOW);
        assert_eq!(&h[WINDOW - 2..], &[2, 1]);
        g.advance(t0 + Duration::from_secs(200));
        assert!(!g.active());
    }
}
