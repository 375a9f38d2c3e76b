//! Memory of the CPU engine on the default model: a decode step allocates nothing once its
//! buffers have grown, batched or alone, and the weights are read from the mapped file
//! instead of copied (the process's anonymous memory grows by far less than the file).
//!
//! One test function: the allocation counter is global, so nothing else may run beside it.
//! Needs the model: `bash scripts/fetch-models.sh`.

#[path = "common/real.rs"]
mod real;

use lmwb::engine::kv::KvCache;
use lmwb::engine::model::llama::SeqStep;
use lmwb::engine::model::{load, LoadOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts every allocation (and reallocation) made by any thread.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This process's anonymous resident memory (heap, stacks), in bytes.
fn rss_anon() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon in /proc/self/status");
    kb * 1024
}

fn argmax(l: &[f32]) -> u32 {
    l.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |a, (i, &v)| if v > a.1 { (i, v) } else { a },
        )
        .0 as u32
}

#[test]
fn decode_steps_allocate_nothing_and_weights_stay_mapped() {
    let path = real::default_model_path();
    let file = std::fs::metadata(&path).expect("the default model").len() as usize;
    let before = rss_anon();
    let m = load(&path, &LoadOptions::default()).unwrap();
    assert!(
        m.model.uses_cpu_path(),
        "the default model runs on lmwb's CPU forward"
    );
    let layers = m.model.cfg.n_layers;

    // Two sequences: prefill each, then decode them together; the logits buffer is kept.
    let prompts: [&[u32]; 2] = [
        &[1, 9690, 198, 2683, 359, 253],
        &[1, 4093, 198, 19556, 28, 2],
    ];
    let mut caches = [KvCache::new(layers, None), KvCache::new(layers, None)];
    let mut logits = Vec::new();
    let mut next = [0u32; 2];
    for (i, (p, c)) in prompts.iter().zip(caches.iter_mut()).enumerate() {
        m.model
            .forward_batch_into(
                &mut [SeqStep {
                    tokens: p,
                    cache: c,
                }],
                &mut logits,
            )
            .unwrap();
        next[i] = argmax(&logits);
    }
    let vocab = logits.len();
    let step = |next: &mut [u32; 2], caches: &mut [KvCache; 2], logits: &mut Vec<f32>| {
        let [a, b] = caches;
        let (ta, tb) = ([next[0]], [next[1]]);
        let mut steps = [
            SeqStep {
                tokens: &ta,
                cache: a,
            },
            SeqStep {
                tokens: &tb,
                cache: b,
            },
        ];
        m.model.forward_batch_into(&mut steps, logits).unwrap();
        next[0] = argmax(&logits[..vocab]);
        next[1] = argmax(&logits[vocab..]);
    };
    // Warm up: scratch buffers grow to the batch, KV buffers take their first capacity.
    for _ in 0..4 {
        step(&mut next, &mut caches, &mut logits);
    }
    let start = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..32 {
        step(&mut next, &mut caches, &mut logits);
    }
    let during = ALLOCS.load(Ordering::Relaxed) - start;
    assert_eq!(
        during, 0,
        "32 batched decode steps made {during} allocations"
    );

    // The weights are the mapped file's pages, not copies: anonymous memory grew by the
    // tokenizer, the scratch buffers and two small KV caches — well under the file size.
    let grown = rss_anon().saturating_sub(before);
    let kv: usize = caches.iter().map(|c| c.buffer_bytes()).sum();
    println!(
        "anonymous memory grew by {:.1} MB (KV buffers {:.1} MB) for a {:.1} MB model file",
        grown as f64 / 1e6,
        kv as f64 / 1e6,
        file as f64 / 1e6
    );
    assert!(
        grown < kv + file / 5,
        "anonymous memory grew by {grown} bytes for a {file}-byte file"
    );
}
