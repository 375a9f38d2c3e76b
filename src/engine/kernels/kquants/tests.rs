use super::*;
use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

const DTYPES: [GgmlDType; 3] = [GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K];

/// Uniform in ±1, 5% of values ×8 (outliers), as the other kernel tests.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * if rng.random_bool(0.05) { 8.0 } else { 1.0 })
        .collect()
}

/// A row of `k` random weights quantized by candle: its raw GGML bytes and candle's
/// dequantization.
fn candle_row(dtype: GgmlDType, k: usize, seed: u64) -> (Vec<u8>, Vec<f32>) {
    let w = Tensor::from_vec(random(k, seed), (1, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
    (
        q.data().unwrap().into_owned(),
        deq.to_vec1::<f32>().unwrap(),
    )
}

/// Raw bytes as 2-byte-aligned storage (a Vec<u8> may sit at any address).
fn aligned(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect()
}

fn bytes_of(v: &[u16], len: usize) -> &[u8] {
    // SAFETY: u16 storage viewed as its bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, len) }
}

/// llama.cpp's `get_scale_min_k4`, independent of the kernels' `utmp` unpacking.
fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// d, dmin, packed scales, high bits (zero for Q4_K), low nibbles.
type Q45Parts = (f32, f32, [u8; 12], [u8; 32], [u8; 128]);

/// llama.cpp's `dequantize_row_q{4,5,6}_K` (ggml-quants.c), straight from the blocks.
fn dequantize(dtype: GgmlDType, bytes: &[u8]) -> Vec<f32> {
    let mut y = Vec::new();
    match dtype {
        GgmlDType::Q4K | GgmlDType::Q5K => {
            let blocks: Vec<Q45Parts> = if dtype == GgmlDType::Q4K {
                as_blocks::<BlockQ4K>(bytes)
                    .iter()
                    .map(|b| (b.d.to_f32(), b.dmin.to_f32(), b.scales, [0; 32], b.qs))
                    .collect()
            } else {
                as_blocks::<BlockQ5K>(bytes)
                    .iter()
                    .map(|b| (b.d.to_f32(), b.dmin.to_f32(), b.scales, b.qh, b.qs))
                    .collect()
            };
            for (d, min, scales, qh, qs) in blocks {
                for j in 0..4 {
                    let (sc1, m1) = get_scale_min_k4(2 * j, &scales);
                    let (sc2, m2) = get_scale_min_k4(2 * j + 1, &scales);
                    let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                    let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                    let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
                    let q = &qs[32 * j..32 * j + 32];
                    for l in 0..32 {
                        let h = if qh[l] & u1 != 0 { 16 } else { 0 };
                        y.push(d1 * ((q[l] & 0xf) + h) as f32 - m1);
                    }
                    for l in 0..32 {
                        let h = if qh[l] & u2 != 0 { 16 } else { 0 };
                        y.push(d2 * ((q[l] >> 4) + h) as f32 - m2);
                    }
                }
            }
        }
        GgmlDType::Q6K => {
            for b in as_blocks::<BlockQ6K>(bytes) {
                let d = b.d.to_f32();
                for n in 0..2 {
                    let (ql, qh, sc) = (&b.ql[64 * n..], &b.qh[32 * n..], &b.scales[8 * n..]);
                    let mut out = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        out[l] = d * sc[is] as f32 * q1 as f32;
                        out[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                        out[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                        out[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
                    }
                    y.extend_from_slice(&out);
                }
            }
        }
        _ => unreachable!(),
    }
    y
}

fn scalar_dot(dtype: GgmlDType, bytes: &[u8], a: &[BlockQ8K]) -> f32 {
    match dtype {
        GgmlDType::Q4K => scalar::dot_q4_k_q8_k_scalar(as_blocks(bytes), a),
        GgmlDType::Q5K => scalar::dot_q5_k_q8_k_scalar(as_blocks(bytes), a),
        _ => scalar::dot_q6_k_q8_k_scalar(as_blocks(bytes), a),
    }
}

/// Our dot of the raw row (`dot_row`, AVX2 here) and the scalar version on the same blocks.
fn dots(dtype: GgmlDType, bytes: &[u8], a: &[BlockQ8K]) -> (f32, f32) {
    (dot_row(dtype, bytes, a), scalar_dot(dtype, bytes, a))
}

/// (1) Each dot against the dequantized weights times the activations, in f64: against
/// the dequantized Q8_K activations (d·q) the only error is f32 rounding (1e-5 of Σ|terms|);
/// against the f32 activations add the 8-bit rounding, at most d/2 per element, so
/// Σ|w|·d/2 (a rigorous bound; for these inputs it is a few % of Σ|terms|).
#[test]
fn dots_match_a_dequantized_reference() {
    for dtype in DTYPES {
        for seed in 0..6u64 {
            for nb in [1, 2, 5, 11] {
                let k = QK_K * nb;
                let (bytes, _) = candle_row(dtype, k, seed);
                let store = aligned(&bytes);
                let bytes = bytes_of(&store, bytes.len());
                let w = dequantize(dtype, bytes);
                let x = random(k, 1000 + seed);
                let a = quantize_q8_k(&x);
                let got = dot_row(dtype, bytes, &a) as f64;

                let aq: Vec<f64> = (0..k)
                    .map(|i| a[i / QK_K].d as f64 * a[i / QK_K].qs[i % QK_K] as f64)
                    .collect();
                let exact_q: f64 = w.iter().zip(&aq).map(|(w, x)| *w as f64 * x).sum();
                let scale_q: f64 = w.iter().zip(&aq).map(|(w, x)| (*w as f64 * x).abs()).sum();
                assert!(
                    (got - exact_q).abs() <= 1e-5 * scale_q + 1e-6,
                    "{dtype:?} seed {seed} nb {nb}: {got} vs {exact_q} (quantized acts)"
                );

                let exact: f64 = w.iter().zip(&x).map(|(w, x)| *w as f64 * *x as f64).sum();
                let scale: f64 = w
                    .iter()
                    .zip(&x)
                    .map(|(w, x)| (*w as f64 * *x as f64).abs())
                    .sum();
                let bound: f64 = w
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (*w as f64).abs() * (a[i / QK_K].d as f64).abs() / 2.0)
                    .sum();
                assert!(
                    (got - exact).abs() <= bound * 1.001 + 1e-5 * scale + 1e-6,
                    "{dtype:?} seed {seed} nb {nb}: {got} vs {exact}, bound {bound}"
                );
                // And the usual rule of thumb for 8-bit activations, loosely.
                assert!((got - exact).abs() <= 0.05 * scale + 1e-4);
            }
        }
    }
}

/// Random bytes as a row of `nb` blocks, with finite f16 scales of either sign.
fn random_blocks(dtype: GgmlDType, nb: usize, rng: &mut rand::rngs::StdRng) -> Vec<u16> {
    let size = dtype.type_size();
    let mut bytes: Vec<u8> = (0..size * nb).map(|_| rng.random()).collect();
    for b in bytes.chunks_mut(size) {
        let mut f16_at = |at: usize, rng: &mut rand::rngs::StdRng| {
            let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
            b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        };
        match dtype {
            GgmlDType::Q6K => f16_at(208, rng),
            _ => {
                f16_at(0, rng);
                f16_at(2, rng);
            }
        }
    }
    aligned(&bytes)
}

/// (2) AVX2 and scalar return the same bits: candle-quantized rows and random raw blocks
/// (every bit pattern of scales, mins and quants; activations with any i8 incl. −128).
#[test]
fn simd_and_scalar_dots_are_bit_identical() {
    if !avx2::available() {
        return; // the scalar path is the only one on this CPU
    }
    for seed in 0..24u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let nb = 1 + (seed as usize % 9);
        let k = QK_K * nb;
        let a = quantize_q8_k(&random(k, 500 + seed));
        let mut raw_a = a.clone();
        for b in &mut raw_a {
            b.d = rng.random_range(-2.0f32..2.0);
            b.qs.iter_mut().for_each(|q| *q = rng.random());
            b.bsums
                .iter_mut()
                .for_each(|s| *s = rng.random_range(-2048..=2048));
        }
        for dtype in DTYPES {
            let (bytes, _) = candle_row(dtype, k, seed);
            let store = aligned(&bytes);
            let (simd, scalar) = dots(dtype, bytes_of(&store, bytes.len()), &a);
            assert_eq!(
                simd.to_bits(),
                scalar.to_bits(),
                "{dtype:?} seed {seed}: {simd} vs {scalar}"
            );

            let raw = random_blocks(dtype, nb, &mut rng);
            let raw = bytes_of(&raw, dtype.type_size() * nb);
            for acts in [&a, &raw_a] {
                let (simd, scalar) = dots(dtype, raw, acts);
                assert_eq!(
                    simd.to_bits(),
                    scalar.to_bits(),
                    "{dtype:?} raw seed {seed}"
                );
            }
        }
    }
}

/// (3) Q8_K quantization: llama.cpp's rounding (ties to even through 1.5·2²³), the sign of
/// the largest-magnitude value (first one on ties), the zero block and the bsums.
#[test]
fn q8_k_rounds_like_llama_cpp() {
    let mut x = vec![0f32; 2 * QK_K];
    // Block 0: max = −127 → iscale = 1, d = 1.
    x[0] = -127.0;
    x[1] = 2.5;
    x[2] = 3.5;
    x[3] = -2.5;
    x[4] = 0.5;
    x[5] = 1.5;
    x[6] = 127.0; // same magnitude later: the first one (−127) sets the sign
    x[17] = 100.49;
    // Block 1: max = +127 → iscale = −1, d = −1: the values flip sign.
    x[QK_K] = 127.0;
    x[QK_K + 1] = 2.5;
    x[QK_K + 2] = -3.5;
    let mut b = [BlockQ8K::default(), BlockQ8K::default()];
    quantize_row_q8_k(&x, &mut b);
    assert_eq!(b[0].d, 1.0);
    assert_eq!(&b[0].qs[..7], &[-127, 2, 4, -2, 0, 2, 127]);
    assert_eq!(b[0].qs[17], 100);
    assert_eq!(b[0].bsums[0], -127 + 2 + 4 - 2 + 2 + 127);
    assert_eq!(b[0].bsums[1], 100);
    assert!(b[0].bsums[2..].iter().all(|&s| s == 0));
    assert_eq!(b[1].d, -1.0);
    assert_eq!(&b[1].qs[..3], &[-127, -2, 4]);
    assert_eq!(b[1].bsums[0], -125);

    // All zeros: d = 0 and nothing else.
    let mut z = [BlockQ8K::default()];
    z[0].qs[3] = 9;
    quantize_row_q8_k(&[0f32; QK_K], &mut z);
    assert_eq!(z[0].d, 0.0);
    assert!(z[0].qs.iter().all(|&q| q == 0) && z[0].bsums.iter().all(|&s| s == 0));

    // Random rows: q = round_ties_even(iscale·x) with iscale = −127/max, bsums their sums.
    for seed in 0..8 {
        let x = random(3 * QK_K, seed);
        for (b, x) in quantize_q8_k(&x).iter().zip(x.chunks(QK_K)) {
            let max = x
                .iter()
                .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let iscale = -127.0f32 / max;
            assert_eq!(b.d.to_bits(), (1.0 / iscale).to_bits());
            for (q, v) in b.qs.iter().zip(x) {
                assert_eq!(*q as f32, (iscale * v).round_ties_even().min(127.0));
            }
            for (s, q) in b.bsums.iter().zip(b.qs.chunks(16)) {
                assert_eq!(*s as i32, q.iter().map(|&v| v as i32).sum::<i32>());
            }
        }
    }
}

/// (4) The block structs read candle's quantized bytes: dequantizing the raw blocks gives
/// candle's `dequantize`, bit for bit.
#[test]
fn blocks_reinterpret_candle_bytes() {
    for dtype in DTYPES {
        assert!(supported(dtype));
        for seed in 0..4 {
            let k = QK_K * (1 + seed as usize);
            let (bytes, deq) = candle_row(dtype, k, 40 + seed);
            assert_eq!(bytes.len(), k / QK_K * dtype.type_size());
            let store = aligned(&bytes);
            let ours = dequantize(dtype, bytes_of(&store, bytes.len()));
            assert_eq!(ours.len(), deq.len());
            for (i, (a, b)) in ours.iter().zip(&deq).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{dtype:?} seed {seed} [{i}]: {a} vs {b}"
                );
            }
        }
    }
    assert!(!supported(GgmlDType::Q4_0) && !supported(GgmlDType::Q8K));
}

/// `cargo test --lib kquants_speed -- --ignored --nocapture`: ns per 256-value block
/// (dev profile, on a loaded 2-core AVX-512 machine: AVX2 15-19 ns, scalar ~400 ns).
#[test]
#[ignore]
fn kquants_speed() {
    let nb = 64;
    let k = QK_K * nb;
    let a = quantize_q8_k(&random(k, 1));
    for dtype in DTYPES {
        let (bytes, _) = candle_row(dtype, k, 2);
        let store = aligned(&bytes);
        let bytes = bytes_of(&store, bytes.len());
        let time = |f: &dyn Fn() -> f32| {
            let reps = 2000;
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                let mut s = 0f32;
                for _ in 0..reps {
                    s += std::hint::black_box(f());
                }
                std::hint::black_box(s);
                best = best.min(t.elapsed().as_nanos() as f64 / (reps * nb) as f64);
            }
            best
        };
        let simd = time(&|| dot_row(dtype, std::hint::black_box(bytes), &a));
        let scalar = time(&|| scalar_dot(dtype, std::hint::black_box(bytes), &a));
        println!(
            "{dtype:?}: dispatch (AVX2: {}) {simd:.1} ns/block, scalar {scalar:.1} ns/block",
            avx2::available()
        );
    }
}
