//! Token vectors to sentence vectors: pooling over the attention mask, then L2 norm.

use super::files::Pooling;
use candle_core::{DType, Result, Tensor, D};

/// `hidden` `[batch, tokens, dims]`, `mask` `[batch, tokens]` (1 keeps a token, 0 is
/// padding) → `[batch, dims]`.
pub fn pool(hidden: &Tensor, mask: &Tensor, how: Pooling) -> Result<Tensor> {
    match how {
        Pooling::Mean => mean_pool(hidden, mask),
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
    }
}

/// The mean of the kept token vectors (sentence-transformers clamps the count at 1e-9).
pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    sum.broadcast_div(&count)
}

/// Each row divided by its L2 norm (a zero row stays zero: torch's eps of 1e-12).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .to_dtype(DType::F32)?
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The reference: plain loops over nested vectors.
    fn mean_ref(h: &[Vec<Vec<f32>>], mask: &[Vec<u32>]) -> Vec<Vec<f32>> {
        h.iter()
            .zip(mask)
            .map(|(rows, m)| {
                let kept: Vec<&Vec<f32>> = rows
                    .iter()
                    .zip(m)
                    .filter(|(_, k)| **k == 1)
                    .map(|(r, _)| r)
                    .collect();
                (0..rows[0].len())
                    .map(|j| kept.iter().map(|r| r[j]).sum::<f32>() / kept.len() as f32)
                    .collect()
            })
            .collect()
    }

    fn norm_ref(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    fn sample() -> (Vec<Vec<Vec<f32>>>, Vec<Vec<u32>>) {
        let h: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|b| {
                (0..4)
                    .map(|t| {
                        (0..3)
                            .map(|d| (b * 12 + t * 3 + d) as f32 * 0.5 - 4.0)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        (h, vec![vec![1, 1, 1, 1], vec![1, 1, 0, 0]])
    }

    #[test]
    fn mean_pooling_skips_padding() {
        let (h, mask) = sample();
        let ht = Tensor::new(h.clone(), &Device::Cpu).unwrap();
        let mt = Tensor::new(mask.clone(), &Device::Cpu).unwrap();
        let got: Vec<Vec<f32>> = pool(&ht, &mt, Pooling::Mean).unwrap().to_vec2().unwrap();
        close(&got, &mean_ref(&h, &mask));
        // Padding rows changed to anything: the same result.
        let mut h2 = h.clone();
        h2[1][3] = vec![1e6, -1e6, 7.0];
        let ht2 = Tensor::new(h2, &Device::Cpu).unwrap();
        let got2: Vec<Vec<f32>> = mean_pool(&ht2, &mt).unwrap().to_vec2().unwrap();
        close(&got2, &got);
    }

    #[test]
    fn cls_pooling_takes_the_first_token() {
        let (h, mask) = sample();
        let ht = Tensor::new(h.clone(), &Device::Cpu).unwrap();
        let mt = Tensor::new(mask, &Device::Cpu).unwrap();
        let got: Vec<Vec<f32>> = pool(&ht, &mt, Pooling::Cls).unwrap().to_vec2().unwrap();
        close(&got, &[h[0][0].clone(), h[1][0].clone()]);
    }

    #[test]
    fn l2_normalize_gives_unit_rows_and_keeps_zero_rows() {
        let v = vec![
            vec![3.0f32, 4.0, 0.0],
            vec![-1.0, 2.0, 2.0],
            vec![0.0, 0.0, 0.0],
        ];
        let t = Tensor::new(v.clone(), &Device::Cpu).unwrap();
        let got: Vec<Vec<f32>> = l2_normalize(&t).unwrap().to_vec2().unwrap();
        close(&got[..2], &[norm_ref(&v[0]), norm_ref(&v[1])]);
        assert_eq!(got[2], vec![0.0, 0.0, 0.0]);
    }
}
