//! Kernel microbenchmark: lmwb's quantized matmul on the shapes of the default model's
//! feed-forward (1536 × 576) for decode (1 activation row) and prefill (4, 64, 256 rows),
//! per weight type. Prints ns per (weight row × activation row × 32-value block) and the
//! rate at which the weights stream. `RAYON_NUM_THREADS=1` measures one core.
//!
//!     cargo run --release --example kbench [q4_0|q4_1|q8_0|q4_k|q6_k ...]
//!     KBENCH_SHAPES=1536x576,576x1536 cargo run --release --example kbench q8_0

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use lmwb::engine::kernels::{matmul, Acts, Job, QWeight};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let all = ["q4_0", "q4_1", "q8_0", "q4_k", "q6_k"];
    let picked: Vec<&str> = if names.is_empty() {
        all.to_vec()
    } else {
        names.iter().map(|s| s.as_str()).collect()
    };
    let shapes: Vec<(usize, usize)> = match std::env::var("KBENCH_SHAPES") {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.split_once('x'))
            .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .collect(),
        Err(_) => vec![(1536, 576)],
    };
    for (n, k) in shapes {
        for name in &picked {
            let dtype = match *name {
                "q4_0" => GgmlDType::Q4_0,
                "q4_1" => GgmlDType::Q4_1,
                "q8_0" => GgmlDType::Q8_0,
                "q4_k" => GgmlDType::Q4K,
                "q6_k" => GgmlDType::Q6K,
                other => {
                    eprintln!("kbench: unknown type '{other}' (try {})", all.join(", "));
                    std::process::exit(2);
                }
            };
            if k % dtype.block_size() != 0 {
                eprintln!(
                    "kbench: {name} needs k to be a multiple of {}; skipping {n}x{k}",
                    dtype.block_size()
                );
                continue;
            }
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).expect("random weights");
            let w = QWeight::new(Arc::new(QTensor::quantize(&w, dtype).expect("quantize")))
                .expect("weight");
            for m in [1usize, 4, 64, 256] {
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                    .collect();
                let mut acts = Acts::default();
                acts.set(m, k);
                acts.prepare(&x, w.act_kind());
                let mut out = vec![0f32; m * n];
                let reps = (4000 / m).max(4);
                matmul(&mut [Job {
                    w: &w,
                    acts: &acts,
                    out: &mut out,
                }]);
                let t = Instant::now();
                for _ in 0..reps {
                    matmul(&mut [Job {
                        w: &w,
                        acts: &acts,
                        out: &mut out,
                    }]);
                }
                let dt = t.elapsed().as_secs_f64() / reps as f64;
                let cells = (m * n * k / 32) as f64;
                let bytes = (n * k / dtype.block_size() * dtype.type_size()) as f64;
                println!(
                "{name:5} {n}x{k} m={m:<3} {:7.1} us/matmul  {:6.3} ns/cell-block  {:6.1} GB/s of weights",
                dt * 1e6,
                dt * 1e9 / cells,
                bytes / dt / 1e9
            );
            }
        }
    }
}
