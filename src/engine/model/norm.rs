//! Normalisation computed the way llama.cpp's CPU backend computes it.

/// RMS norm as ggml computes it: Σx² in f64, `1/sqrt(mean + eps)` in f32, `x·scale·w`.
pub fn rms_norm_ggml(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let dim = w.len();
    for (row, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        let mean = (sum / dim as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &w) in o.iter_mut().zip(row).zip(w) {
            *o = (v * scale) * w;
        }
    }
}
