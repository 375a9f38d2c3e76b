//! Requantizing a GGUF file once, on disk: `lmwb models requantize NAME --to q8_0`.
//!
//! Every 2-D weight whose row length is a multiple of the target's block size is
//! dequantized to f32 and quantized again to the target type; 1-D tensors (norms, biases)
//! and matrices whose rows do not split into blocks are copied as they are. All metadata is
//! copied, with `general.file_type` set to llama.cpp's number for the target. The new file
//! is written next to its destination under a hidden temporary name and renamed into place,
//! so a reader never sees half a file.
//!
//! The whole model is held in memory while it is written (candle's GGUF writer takes every
//! tensor at once): about the size of the source plus the size of the result.

use crate::engine::error::LoadError;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The types `requantize_gguf` writes: CLI name, candle type, llama.cpp `general.file_type`.
pub const TARGETS: &[(&str, GgmlDType, u32)] = &[
    ("q8_0", GgmlDType::Q8_0, 7),
    ("q4_0", GgmlDType::Q4_0, 2),
    ("q4_1", GgmlDType::Q4_1, 3),
    ("q5_0", GgmlDType::Q5_0, 8),
    ("q5_1", GgmlDType::Q5_1, 9),
    ("f16", GgmlDType::F16, 1),
    ("f32", GgmlDType::F32, 0),
];

/// The accepted `--to` names, comma-separated (for error messages).
pub fn target_names() -> String {
    TARGETS
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse a `--to` name (case-insensitive, `-` and `_` alike: `Q8_0`, `q8-0`).
pub fn parse_target(name: &str) -> Option<GgmlDType> {
    let want = name.trim().to_ascii_lowercase().replace('-', "_");
    TARGETS
        .iter()
        .find(|(n, _, _)| *n == want)
        .map(|(_, t, _)| *t)
}

/// llama.cpp's `general.file_type` ("mostly X") for a target type.
pub fn file_type_of(to: GgmlDType) -> Option<u32> {
    TARGETS
        .iter()
        .find(|(_, t, _)| *t == to)
        .map(|(_, _, f)| *f)
}

/// The conventional file-name spelling of a type: `Q8_0`, `F16`.
pub fn type_label(to: GgmlDType) -> String {
    format!("{to:?}").to_ascii_uppercase()
}

/// Does this file-name part name a quantization (`Q4_1`, `q8_0`, `Q4_K_M`, `IQ2_XS`, `F16`)?
fn is_quant_suffix(part: &str) -> bool {
    let p = part.to_ascii_uppercase();
    if matches!(p.as_str(), "F16" | "F32" | "BF16") {
        return true;
    }
    let rest = p
        .strip_prefix("IQ")
        .or_else(|| p.strip_prefix('Q'))
        .unwrap_or("");
    rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where `models requantize` writes by default: the source's folder, its file name with the
/// quantization part replaced (`X.Q4_1.gguf` → `X.Q8_0.gguf`), or added when it has none.
pub fn default_output(src: &Path, to: GgmlDType) -> PathBuf {
    let stem = src
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let label = type_label(to);
    let base = match stem.rfind(['.', '-']) {
        Some(i) if is_quant_suffix(&stem[i + 1..]) => format!("{}{}", &stem[..=i], label),
        _ => format!("{stem}.{label}"),
    };
    src.with_file_name(format!("{base}.gguf"))
}

/// What a requantization did.
#[derive(Clone, Debug, Serialize)]
pub struct QuantizeReport {
    pub src: PathBuf,
    pub dst: PathBuf,
    /// The target type, as in file names (`Q8_0`).
    pub to: String,
    /// Tensors rewritten into the target type, and how many of each source type.
    pub converted: usize,
    pub converted_from: BTreeMap<String, usize>,
    /// Tensors copied as they were (1-D, already the target type, other shapes).
    pub kept: usize,
    /// 2-D tensors kept because their rows do not split into the target's blocks.
    pub unsplittable: Vec<String>,
    pub src_bytes: u64,
    pub dst_bytes: u64,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Io {
        path: path.into(),
        why: e.to_string(),
    }
}

/// The absolute form of a path that may not exist yet (its folder must).
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (parent.canonicalize(), p.file_name()) {
        (Ok(d), Some(n)) => d.join(n),
        _ => p.to_path_buf(),
    }
}

/// Should this tensor be rewritten into `to`?
fn convertible(t: &gguf_file::TensorInfo, to: GgmlDType) -> bool {
    let dims = t.shape.dims();
    dims.len() == 2 && t.ggml_dtype != to && dims[1].is_multiple_of(to.block_size())
}

/// Rewrite the GGUF file `src` into `dst` with its 2-D weights in `to` (see the module docs).
pub fn requantize_gguf(src: &Path, dst: &Path, to: GgmlDType) -> Result<QuantizeReport, LoadError> {
    let Some(file_type) = file_type_of(to) else {
        return Err(LoadError::Config {
            path: src.into(),
            why: format!(
                "cannot requantize to {to:?}; the types lmwb writes are {}",
                target_names()
            ),
        });
    };
    if !src.is_file() {
        return Err(LoadError::NotFound(src.into()));
    }
    if absolute(src) == absolute(dst) {
        return Err(LoadError::Io {
            path: dst.into(),
            why: "this is the source model; refusing to overwrite it (give another output path)"
                .into(),
        });
    }
    let mut reader = BufReader::new(File::open(src).map_err(|e| io_err(src, e))?);
    let content =
        gguf_file::Content::read(&mut reader).map_err(|e| super::weights::classify(src, e))?;

    // Tensors in file order, read as stored.
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| (content.tensor_infos[*n].offset, n.as_str()));
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let q = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| super::weights::classify(src, e))?;
        tensors.push((name.clone(), q));
    }
    drop(reader);

    // Convert in parallel: dequantize to f32, quantize to the target.
    let converted: Vec<(String, QTensor, Option<GgmlDType>)> = tensors
        .into_par_iter()
        .map(|(name, q)| {
            if !convertible(&content.tensor_infos[&name], to) {
                return Ok((name, q, None));
            }
            let from = q.dtype();
            let t = q.dequantize(&Device::Cpu)?;
            let nq = QTensor::quantize(&t, to)?;
            Ok((name, nq, Some(from)))
        })
        .collect::<candle_core::Result<_>>()
        .map_err(|e: candle_core::Error| LoadError::Tensor {
            path: src.into(),
            why: format!("requantizing to {to:?}: {e}"),
        })?;

    let mut report = QuantizeReport {
        src: src.into(),
        dst: dst.into(),
        to: type_label(to),
        converted: 0,
        converted_from: BTreeMap::new(),
        kept: 0,
        unsplittable: vec![],
        src_bytes: std::fs::metadata(src).map(|m| m.len()).unwrap_or(0),
        dst_bytes: 0,
    };
    for (name, q, from) in &converted {
        match from {
            Some(f) => {
                report.converted += 1;
                *report.converted_from.entry(format!("{f:?}")).or_default() += 1;
            }
            None => {
                report.kept += 1;
                if q.shape().rank() == 2 && q.dtype() != to {
                    report.unsplittable.push(name.clone());
                }
            }
        }
    }

    // Metadata: everything, with the file type fixed and the alignment candle writes.
    let mut metadata: Vec<(String, gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut set = |key: &str, value: gguf_file::Value, add: bool| match metadata
        .iter_mut()
        .find(|(k, _)| k == key)
    {
        Some(slot) => slot.1 = value,
        None if add => metadata.push((key.to_string(), value)),
        None => {}
    };
    set("general.file_type", gguf_file::Value::U32(file_type), true);
    // candle's writer pads tensor data to 32 bytes whatever the source used.
    set("general.alignment", gguf_file::Value::U32(32), false);
    if !matches!(to, GgmlDType::F16 | GgmlDType::F32)
        && !metadata
            .iter()
            .any(|(k, _)| k == "general.quantization_version")
    {
        metadata.push((
            "general.quantization_version".into(),
            gguf_file::Value::U32(2),
        ));
    }
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let meta_refs: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> =
        converted.iter().map(|(n, q, _)| (n.as_str(), q)).collect();

    // Write beside the destination, then rename into place.
    let dir = match dst.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(io_err(
            dst,
            format!("the folder {} does not exist", dir.display()),
        ));
    }
    let file_name = dst
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| io_err(dst, "not a file path"))?;
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| -> Result<(), LoadError> {
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let mut w = BufWriter::new(file);
        gguf_file::write(&mut w, &meta_refs, &tensor_refs).map_err(|e| io_err(&tmp, e))?;
        w.flush().map_err(|e| io_err(&tmp, e))?;
        let file = w.into_inner().map_err(|e| io_err(&tmp, e.error()))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, dst).map_err(|e| io_err(dst, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    report.dst_bytes = std::fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
    tracing::info!(
        src = %src.display(),
        dst = %dst.display(),
        to = %report.to,
        converted = report.converted,
        kept = report.kept,
        "requantized"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use gguf_file::Value;

    /// A tiny GGUF: an F32 matrix, a Q4_1 matrix, a matrix with 48-wide rows, a norm vector.
    fn write_tiny(path: &Path) -> BTreeMap<String, Tensor> {
        let dev = Device::Cpu;
        let ramp = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * scale)
                .collect()
        };
        let w_f32 = Tensor::from_vec(ramp(8 * 64, 2.0), (8, 64), &dev).unwrap();
        let w_q41 = Tensor::from_vec(ramp(4 * 64, 1.0), (4, 64), &dev).unwrap();
        let odd = Tensor::from_vec(ramp(4 * 48, 1.0), (4, 48), &dev).unwrap();
        let norm = Tensor::from_vec(ramp(64, 1.0), 64, &dev).unwrap();
        let tensors = [
            (
                "blk.0.attn_q.weight",
                QTensor::quantize(&w_f32, GgmlDType::F32).unwrap(),
            ),
            (
                "blk.0.ffn_up.weight",
                QTensor::quantize(&w_q41, GgmlDType::Q4_1).unwrap(),
            ),
            (
                "blk.0.odd.weight",
                QTensor::quantize(&odd, GgmlDType::F32).unwrap(),
            ),
            (
                "blk.0.attn_norm.weight",
                QTensor::quantize(&norm, GgmlDType::F32).unwrap(),
            ),
        ];
        let meta = [
            ("general.architecture", Value::String("llama".into())),
            ("general.file_type", Value::U32(3)),
            ("llama.block_count", Value::U32(1)),
            ("llama.rope.freq_base", Value::F32(10000.0)),
            (
                "tokenizer.ggml.tokens",
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            ),
        ];
        let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
        let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (*k, v)).collect();
        let mut f = File::create(path).unwrap();
        gguf_file::write(&mut f, &meta_refs, &t_refs).unwrap();
        tensors
            .iter()
            .map(|(n, q)| (n.to_string(), q.dequantize(&dev).unwrap()))
            .collect()
    }

    fn read(path: &Path) -> (gguf_file::Content, BTreeMap<String, QTensor>) {
        let mut r = BufReader::new(File::open(path).unwrap());
        let ct = gguf_file::Content::read(&mut r).unwrap();
        let mut ts = BTreeMap::new();
        for name in ct.tensor_infos.keys() {
            ts.insert(name.clone(), ct.tensor(&mut r, name, &Device::Cpu).unwrap());
        }
        (ct, ts)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        max_abs(&(a - b).unwrap())
    }

    fn max_abs(a: &Tensor) -> f32 {
        a.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn round_trip_to_q8_0_keeps_metadata_shapes_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tiny.Q4_1.gguf");
        let original = write_tiny(&src);
        let dst = default_output(&src, GgmlDType::Q8_0);
        assert_eq!(dst, dir.path().join("tiny.Q8_0.gguf"));

        let report = requantize_gguf(&src, &dst, GgmlDType::Q8_0).unwrap();
        assert_eq!(report.to, "Q8_0");
        assert_eq!(report.converted, 2, "{report:?}");
        assert_eq!(report.kept, 2, "{report:?}");
        assert_eq!(report.converted_from.get("F32"), Some(&1));
        assert_eq!(report.converted_from.get("Q4_1"), Some(&1));
        assert_eq!(report.unsplittable, vec!["blk.0.odd.weight".to_string()]);
        assert_eq!(report.dst_bytes, std::fs::metadata(&dst).unwrap().len());
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");

        let (src_ct, _) = read(&src);
        let (ct, ts) = read(&dst);
        // Metadata: every key, same values, only the file type changed (Q8_0 = 7).
        for (k, v) in &src_ct.metadata {
            let got = ct.metadata.get(k).unwrap_or_else(|| panic!("{k} lost"));
            if k == "general.file_type" {
                assert_eq!(got.to_u32().unwrap(), 7);
            } else {
                assert_eq!(format!("{got:?}"), format!("{v:?}"), "{k}");
            }
        }
        assert_eq!(
            ct.metadata["general.quantization_version"]
                .to_u32()
                .unwrap(),
            2
        );
        // Shapes kept; the divisible matrices are Q8_0, the rest as they were.
        assert_eq!(ct.tensor_infos.len(), src_ct.tensor_infos.len());
        for (name, info) in &src_ct.tensor_infos {
            assert_eq!(ct.tensor_infos[name].shape, info.shape, "{name}");
        }
        let dtype = |n: &str| ct.tensor_infos[n].ggml_dtype;
        assert_eq!(dtype("blk.0.attn_q.weight"), GgmlDType::Q8_0);
        assert_eq!(dtype("blk.0.ffn_up.weight"), GgmlDType::Q8_0);
        assert_eq!(dtype("blk.0.odd.weight"), GgmlDType::F32);
        assert_eq!(dtype("blk.0.attn_norm.weight"), GgmlDType::F32);
        // Values: Q8_0 rounds to amax/127 per block of 32.
        for (name, want) in &original {
            let got = ts[name].dequantize(&Device::Cpu).unwrap();
            let err = max_abs_diff(&got, want);
            let tol = if dtype(name) == GgmlDType::Q8_0 {
                max_abs(want) / 127.0 * 0.6 + 1e-6
            } else {
                0.0
            };
            assert!(err <= tol, "{name}: error {err} > {tol}");
        }
    }

    #[test]
    fn other_targets_and_file_types() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tiny-q4_1.gguf");
        let original = write_tiny(&src);
        for (to, ft, tol) in [(GgmlDType::Q4_0, 2, 0.13), (GgmlDType::F16, 1, 1e-3)] {
            let dst = default_output(&src, to);
            let report = requantize_gguf(&src, &dst, to).unwrap();
            let (ct, ts) = read(&dst);
            assert_eq!(ct.metadata["general.file_type"].to_u32().unwrap(), ft);
            let q = &ts["blk.0.attn_q.weight"];
            assert_eq!(q.dtype(), to);
            let err = max_abs_diff(
                &q.dequantize(&Device::Cpu).unwrap(),
                &original["blk.0.attn_q.weight"],
            );
            assert!(err <= tol, "{to:?}: error {err}");
            // F16 has block size 1: the 48-wide matrix converts too.
            if to == GgmlDType::F16 {
                assert_eq!(report.converted, 3);
                assert!(!ct.metadata.contains_key("general.quantization_version"));
            }
        }
        assert_eq!(
            default_output(&src, GgmlDType::F16),
            dir.path().join("tiny-F16.gguf")
        );
    }

    #[test]
    fn refuses_the_source_and_unknown_targets() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tiny.Q8_0.gguf");
        write_tiny(&src);
        let before = std::fs::read(&src).unwrap();
        let err = requantize_gguf(&src, &src, GgmlDType::Q8_0).unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        let err = requantize_gguf(&src, &dir.path().join("x.gguf"), GgmlDType::Q4K).unwrap_err();
        assert!(err.to_string().contains("q8_0, q4_0"), "{err}");
        assert_eq!(std::fs::read(&src).unwrap(), before);
        let err = requantize_gguf(
            &dir.path().join("none.gguf"),
            &dir.path().join("x.gguf"),
            GgmlDType::Q8_0,
        )
        .unwrap_err();
        assert!(matches!(err, LoadError::NotFound(_)), "{err}");
    }

    #[test]
    fn names() {
        assert_eq!(parse_target("Q8_0"), Some(GgmlDType::Q8_0));
        assert_eq!(parse_target("q4-0"), Some(GgmlDType::Q4_0));
        assert_eq!(parse_target("q4_k_m"), None);
        let p = Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(
            default_output(p, GgmlDType::Q8_0),
            Path::new("/m/SmolLM2-135M-Instruct.Q8_0.gguf")
        );
        assert_eq!(
            default_output(Path::new("/m/llama-7b.Q4_K_M.gguf"), GgmlDType::Q8_0),
            Path::new("/m/llama-7b.Q8_0.gguf")
        );
        assert_eq!(
            default_output(Path::new("/m/qwen2-0.5b-instruct-fp.gguf"), GgmlDType::Q8_0),
            Path::new("/m/qwen2-0.5b-instruct-fp.Q8_0.gguf")
        );
        assert_eq!(
            default_output(Path::new("/m/model.gguf"), GgmlDType::Q4_0),
            Path::new("/m/model.Q4_0.gguf")
        );
    }
}
