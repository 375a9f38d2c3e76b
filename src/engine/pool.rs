//! Idle KV caches kept between requests, so a chat's next turn (or a benchmark that extends
//! a cached prompt) only prefills what is new even while other sequences come and go.
//!
//! KV buffers are reused too: a new request takes the idle cache of its window size with
//! the longest common prefix with its prompt (the most recently returned one on a tie), or
//! a fresh cache when none has its window size. At most `cap` caches stay idle; returning
//! one more drops the least recently returned.

use super::kv::KvCache;

struct Idle {
    /// The tokens the cache holds, in order (empty once its window rotated).
    tokens: Vec<u32>,
    cache: KvCache,
}

pub(crate) struct CachePool {
    /// Least recently returned first.
    idle: Vec<Idle>,
    cap: usize,
    n_layers: usize,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Which of the idle caches (window, tokens held; least recently returned first) suits
/// `prompt` best: same window, longest common prefix, the latest returned on a tie.
fn pick<'a>(
    idle: impl Iterator<Item = (Option<usize>, &'a [u32])>,
    prompt: &[u32],
    max_kv_size: Option<usize>,
) -> Option<usize> {
    idle.enumerate()
        .filter(|(_, (window, _))| *window == max_kv_size)
        .max_by_key(|(i, (_, tokens))| (common_prefix(tokens, prompt), *i))
        .map(|(i, _)| i)
}

impl CachePool {
    pub(crate) fn new(n_layers: usize, cap: usize) -> CachePool {
        CachePool {
            idle: Vec::new(),
            cap: cap.max(1),
            n_layers,
        }
    }

    /// The best cache for `prompt` with window `max_kv_size`, its prefix kept
    /// ([`KvCache::reuse_prefix`]); returns the cache and the number of cached tokens.
    pub(crate) fn take(&mut self, prompt: &[u32], max_kv_size: Option<usize>) -> (KvCache, usize) {
        let idle = self
            .idle
            .iter()
            .map(|c| (c.cache.max_kv_size(), &c.tokens[..]));
        let mut cache = match pick(idle, prompt, max_kv_size) {
            Some(i) => self.idle.remove(i).cache,
            None => KvCache::new(self.n_layers, max_kv_size),
        };
        let cached = cache.reuse_prefix(prompt);
        cache.reset_peak();
        (cache, cached)
    }

    /// Give back a cache holding `tokens` (pass what was fed through the model).
    pub(crate) fn put(&mut self, mut tokens: Vec<u32>, cache: KvCache) {
        if cache.rotated() || cache.len() != tokens.len() {
            tokens.clear();
        }
        self.idle.push(Idle { tokens, cache });
        if self.idle.len() > self.cap {
            self.idle.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_longest_common_prefix_of_the_same_window() {
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[1, 2, 3, 4, 5];
        let c: &[u32] = &[1, 2, 3, 4, 5, 6];
        let idle = [(None, a), (None, b), (Some(64), c)];
        assert_eq!(
            pick(idle.into_iter(), &[1, 2, 3, 4, 5, 6, 7], None),
            Some(1)
        );
        assert_eq!(
            pick(idle.into_iter(), &[1, 2, 3, 4, 5, 6, 7], Some(64)),
            Some(2)
        );
        assert_eq!(
            pick(idle.into_iter(), &[9], Some(32)),
            None,
            "no cache of that window"
        );
        // Nothing in common: the most recently returned one, so its buffers are reused.
        assert_eq!(pick(idle.into_iter(), &[9], None), Some(1));
    }

    #[test]
    fn keeps_at_most_cap_idle_caches_and_hands_out_fresh_ones() {
        let mut pool = CachePool::new(2, 2);
        let (c, cached) = pool.take(&[1, 2, 3], None);
        assert_eq!((cached, c.len()), (0, 0));
        pool.put(vec![], c);
        for _ in 0..3 {
            pool.put(vec![], KvCache::new(2, None));
        }
        assert_eq!(pool.idle.len(), 2);
        let (w, _) = pool.take(&[1], Some(16));
        assert_eq!(
            w.max_kv_size(),
            Some(16),
            "a fresh cache with the asked window"
        );
        assert_eq!(pool.idle.len(), 2);
    }
}
