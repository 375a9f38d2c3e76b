//! Kernel tests: every SIMD path against the scalar reference, bit for bit, and the
//! scalar reference against dequantized weights within quantization tolerance.

use super::blocks::{quantize_row_q8_0, quantize_row_q8_1};
use super::*;
use candle_core::Device;
use rand::{Rng, SeedableRng};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * if rng.random_bool(0.05) { 8.0 } else { 1.0 })
        .collect()
}

fn weight(dtype: GgmlDType, n: usize, k: usize, seed: u64) -> (QWeight, Tensor) {
    let w = Tensor::from_vec(random(n * k, seed), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let deq = q.dequantize(&Device::Cpu).unwrap();
    (QWeight::new(Arc::new(q)).unwrap(), deq)
}

/// Our matmul against the dequantized weights times unquantized activations, in f64.
#[test]
fn matmul_matches_a_dequantized_reference() {
    for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let (n, k, m) = (70, 256, 3);
        let (w, deq) = weight(dtype, n, k, 7);
        let x = Tensor::from_vec(random(m * k, 11), (m, k), &Device::Cpu).unwrap();
        let got = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let wv = deq.to_vec2::<f32>().unwrap();
        let xv = x.to_vec2::<f32>().unwrap();
        for (r, row) in got.iter().enumerate() {
            for (c, &g) in row.iter().enumerate() {
                let exact: f64 = wv[c]
                    .iter()
                    .zip(&xv[r])
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
                let scale: f64 = wv[c]
                    .iter()
                    .zip(&xv[r])
                    .map(|(a, b)| (*a as f64 * *b as f64).abs())
                    .sum();
                // Activations are quantized to 8 bits: relative error ~1/127 of the terms.
                assert!(
                    (g as f64 - exact).abs() <= 0.01 * scale + 1e-4,
                    "{dtype:?} [{r},{c}]: {g} vs {exact}"
                );
            }
        }
    }
}

/// The SIMD and scalar dot products return the same bits.
#[test]
#[cfg(target_arch = "x86_64")]
fn simd_and_scalar_dots_are_bit_identical() {
    if !avx2::available() {
        return; // nothing to compare on this CPU: the scalar path is the only one
    }
    let k = 32 * 37;
    let xs = random(k, 3);
    let mut a8_0 = vec![BlockQ8_0::default(); k / QK];
    let mut a8_1 = vec![BlockQ8_1::default(); k / QK];
    quantize_row_q8_0(&xs, &mut a8_0);
    quantize_row_q8_1(&xs, &mut a8_1);
    for seed in 0..20 {
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            let (w, _) = weight(dtype, 1, k, seed);
            let data = w.bytes();
            #[cfg(target_arch = "x86_64")]
            let (simd, scalar) = unsafe {
                match dtype {
                    GgmlDType::Q4_0 => {
                        let b = as_blocks::<BlockQ4_0>(&data);
                        (
                            avx2::dot_q4_0_q8_0(b, &a8_0),
                            dot::dot_q4_0_q8_0_scalar(b, &a8_0),
                        )
                    }
                    GgmlDType::Q4_1 => {
                        let b = as_blocks::<BlockQ4_1>(&data);
                        (
                            avx2::dot_q4_1_q8_1(b, &a8_1),
                            dot::dot_q4_1_q8_1_scalar(b, &a8_1),
                        )
                    }
                    _ => {
                        let b = as_blocks::<BlockQ8_0>(&data);
                        (
                            avx2::dot_q8_0_q8_0(b, &a8_0),
                            dot::dot_q8_0_q8_0_scalar(b, &a8_0),
                        )
                    }
                }
            };
            assert_eq!(
                simd.to_bits(),
                scalar.to_bits(),
                "{dtype:?} seed {seed}: {simd} vs {scalar}"
            );
        }
    }
}

/// Four rows at once give each row's single-row result, bit for bit.
#[test]
fn four_row_dots_equal_single_row_dots() {
    let k = 32 * 18;
    let xs = random(k, 4);
    let mut a8_0 = vec![BlockQ8_0::default(); k / QK];
    let mut a8_1 = vec![BlockQ8_1::default(); k / QK];
    quantize_row_q8_0(&xs, &mut a8_0);
    quantize_row_q8_1(&xs, &mut a8_1);
    let (w41, _) = weight(GgmlDType::Q4_1, 4, k, 1);
    let (w80, _) = weight(GgmlDType::Q8_0, 4, k, 2);
    let (d41, d80) = (w41.bytes(), w80.bytes());
    let (b41, b80) = (as_blocks::<BlockQ4_1>(&d41), as_blocks::<BlockQ8_0>(&d80));
    let nb = k / QK;
    let four = dot4_q4_1_q8_1([0, 1, 2, 3].map(|r| &b41[r * nb..(r + 1) * nb]), &a8_1);
    let four8 = dot4_q8_0_q8_0([0, 1, 2, 3].map(|r| &b80[r * nb..(r + 1) * nb]), &a8_0);
    for r in 0..4 {
        let one = dot_q4_1_q8_1(&b41[r * nb..(r + 1) * nb], &a8_1);
        assert_eq!(four[r].to_bits(), one.to_bits());
        let one = dot_q8_0_q8_0(&b80[r * nb..(r + 1) * nb], &a8_0);
        assert_eq!(four8[r].to_bits(), one.to_bits());
    }
}

/// The matmul (AVX-512 tiles where the CPU has them, else four-row AVX2 dots) gives
/// every cell the bits of the single-row dot product, for every weight type, tile
/// shape and leftover row/column count.
#[test]
fn matmul_cells_equal_single_row_dots() {
    for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
        for (n, k, m) in [
            (70, 256, 1),
            (16, 128, 2),
            (9, 64, 3),
            (12, 576, 4),
            (13, 96, 5),
            (8, 32, 9),
            (11, 32 * 70, 6),
            (21, 160, 18),
            (9, 96, 35),
        ] {
            let (w, _) = weight(dtype, n, k, (n * m) as u64);
            let xs = random(m * k, 17 + m as u64);
            let x = Tensor::from_vec(xs.clone(), (m, k), &Device::Cpu).unwrap();
            let got = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
            let data = w.bytes();
            let nb = k / QK;
            for c in 0..m {
                let row = &xs[c * k..(c + 1) * k];
                let mut a0 = vec![BlockQ8_0::default(); nb];
                let mut a1 = vec![BlockQ8_1::default(); nb];
                quantize_row_q8_0(row, &mut a0);
                quantize_row_q8_1(row, &mut a1);
                for r in 0..n {
                    let want = match dtype {
                        GgmlDType::Q4_0 => dot::dot_q4_0_q8_0_scalar(
                            &as_blocks::<BlockQ4_0>(&data)[r * nb..(r + 1) * nb],
                            &a0,
                        ),
                        GgmlDType::Q4_1 => dot::dot_q4_1_q8_1_scalar(
                            &as_blocks::<BlockQ4_1>(&data)[r * nb..(r + 1) * nb],
                            &a1,
                        ),
                        _ => dot::dot_q8_0_q8_0_scalar(
                            &as_blocks::<BlockQ8_0>(&data)[r * nb..(r + 1) * nb],
                            &a0,
                        ),
                    };
                    assert_eq!(
                        got[c][r].to_bits(),
                        want.to_bits(),
                        "{dtype:?} n={n} k={k} m={m} [{c},{r}]: {} vs {want}",
                        got[c][r]
                    );
                }
            }
        }
    }
}

/// K-quant weights go through the same matmul: every cell is the K-quant dot product
/// of the row with the Q8_K activations, and embedding rows equal candle's dequantized
/// matrix.
#[test]
fn k_quant_weights_matmul_and_dequantize() {
    for dtype in [GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K] {
        let (n, k, m) = (9, 512, 3);
        let (w, deq) = weight(dtype, n, k, 21);
        let xs = random(m * k, 5);
        let x = Tensor::from_vec(xs.clone(), (m, k), &Device::Cpu).unwrap();
        let got = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let data = w.bytes();
        let row_bytes = k / 256 * dtype.type_size();
        for c in 0..m {
            let a = kquants::quantize_q8_k(&xs[c * k..(c + 1) * k]);
            for r in 0..n {
                let want = kquants::dot_row(dtype, &data[r * row_bytes..(r + 1) * row_bytes], &a);
                assert_eq!(got[c][r].to_bits(), want.to_bits(), "{dtype:?} [{c},{r}]");
            }
        }
        let deq = deq.to_vec2::<f32>().unwrap();
        let mut row = vec![0f32; k];
        for (r, want) in deq.iter().enumerate() {
            w.dequantize_row(r, &mut row);
            assert_eq!(&row, want, "{dtype:?} row {r}");
        }
    }
}

/// A row's result does not depend on the other rows computed with it.
#[test]
fn rows_are_batch_invariant() {
    let (w, _) = weight(GgmlDType::Q4_1, 40, 128, 5);
    let x = Tensor::from_vec(random(5 * 128, 9), (5, 128), &Device::Cpu).unwrap();
    let all = w.forward(&x).unwrap().to_vec2::<f32>().unwrap();
    for (r, row) in all.iter().enumerate() {
        let one = w
            .forward(&x.narrow(0, r, 1).unwrap())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(&one[0], row);
    }
}

#[test]
fn q8_1_rounds_like_llama_cpp() {
    // 0.5 steps round half to even; s is f16(d * Σq).
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = 3.5;
    x[3] = -2.5;
    let mut b = [BlockQ8_1::default()];
    quantize_row_q8_1(&x, &mut b);
    assert_eq!(&b[0].qs[..4], &[127, 2, 4, -2]);
    assert_eq!(b[0].d.to_f32(), 1.0);
    assert_eq!(b[0].s.to_f32(), 131.0);
}

/// The AVX2 activation quantizer writes the bytes of the scalar one: random rows, rows
/// with exact .5 ties, all-zero blocks and single large values.
#[test]
fn simd_activation_quantization_equals_scalar() {
    let k = 32 * 40;
    let mut rows = vec![random(k, 31), vec![0f32; k]];
    // Values whose scaled form lands on .5 (ties round to even) and a spike per block.
    rows.push(
        (0..k)
            .map(|i| {
                if i % 32 == 0 {
                    127.0
                } else {
                    (i % 9) as f32 - 3.5
                }
            })
            .collect(),
    );
    rows.push(
        (0..k)
            .map(|i| if i % 32 == 5 { -1e-3 } else { 1e-7 * i as f32 })
            .collect(),
    );
    for (n, x) in rows.iter().enumerate() {
        let nb = k / QK;
        let (mut a, mut b) = (
            vec![BlockQ8_0::default(); nb],
            vec![BlockQ8_0::default(); nb],
        );
        blocks::quantize_row_q8_0(x, &mut a);
        blocks::quantize_row_q8_0_scalar(x, &mut b);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(
                (a.d.to_bits(), a.qs),
                (b.d.to_bits(), b.qs),
                "q8_0 row {n} block {i}"
            );
        }
        let (mut a, mut b) = (
            vec![BlockQ8_1::default(); nb],
            vec![BlockQ8_1::default(); nb],
        );
        blocks::quantize_row_q8_1(x, &mut a);
        blocks::quantize_row_q8_1_scalar(x, &mut b);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(
                (a.d.to_bits(), a.s.to_bits(), a.qs),
                (b.d.to_bits(), b.s.to_bits(), b.qs),
                "q8_1 row {n} block {i}"
            );
        }
    }
}
