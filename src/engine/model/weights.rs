//! Reading weights from GGUF files and safetensors checkpoints into candle tensors.

use super::names::bias_of;
use crate::engine::error::{candle_msg, LoadError};
use crate::engine::kernels::{self, QWeight};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result as CResult, Tensor};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A weight matrix: candle's own matmul, or our GGML kernels on the CPU.
#[derive(Clone, Debug)]
pub enum Matrix {
    Candle(QMatMul),
    Ggml(QWeight),
}

impl Matrix {
    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        match self {
            Matrix::Candle(m) => m.forward(x),
            Matrix::Ggml(w) => w.forward(x),
        }
    }

    /// Rows `ids` of the matrix (token embeddings), as f32.
    pub fn embedding(&self, ids: &Tensor) -> CResult<Tensor> {
        match self {
            Matrix::Candle(m) => m.embedding(ids),
            Matrix::Ggml(w) => w.embedding(&ids.to_vec1::<u32>()?, ids.device()),
        }
    }
}

/// A matrix multiplication with an optional bias: `y = x Wᵀ + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Matrix,
    pub b: Option<Tensor>,
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = self.w.forward(x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Quant types whose CPU dot product has no SIMD kernel in candle: they are requantized to
/// Q8_0 at load so they never run on the slow scalar path.
pub fn slow_on_cpu(dtype: GgmlDType) -> bool {
    matches!(
        dtype,
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1
    )
}

/// How a GGUF weight type runs on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuPath {
    /// lmwb's own kernels, as stored.
    Own,
    /// Requantized to Q8_0 at load (candle has no fast kernel for the stored type).
    Requantized,
    /// candle's matmul, as stored.
    Candle,
}

/// The path a 2-D weight of `dtype` takes on the CPU.
pub fn cpu_path(dtype: GgmlDType, requantize: bool, own_kernels: bool) -> CpuPath {
    if own_kernels && kernels::supported(dtype) {
        CpuPath::Own
    } else if requantize && slow_on_cpu(dtype) {
        CpuPath::Requantized
    } else {
        CpuPath::Candle
    }
}

/// `models show` notes for the weights that take each path: (type, path) → tensor count.
pub fn cpu_notes(counts: &std::collections::BTreeMap<(String, CpuPath), usize>) -> Vec<String> {
    counts
        .iter()
        .filter_map(|((dtype, path), n)| match path {
            CpuPath::Own => Some(format!(
                "{n} {dtype} tensors run as stored on lmwb's CPU kernels (llama.cpp-compatible arithmetic)"
            )),
            CpuPath::Requantized => Some(format!(
                "{n} {dtype} tensors requantized to Q8_0 at load (no fast CPU kernel for {dtype})"
            )),
            CpuPath::Candle => None,
        })
        .collect()
}

/// Where weights come from: the loader asks by name.
pub trait WeightSource {
    fn path(&self) -> &Path;
    fn has(&self, name: &str) -> bool;
    /// A 2-D weight for a matmul, in the best form for the device.
    fn matrix(&mut self, name: &str) -> Result<Matrix, LoadError>;
    /// A small tensor (norm weights, biases) as f32.
    fn vector(&mut self, name: &str) -> Result<Tensor, LoadError>;
    /// Notes for `models show` (e.g. what was requantized).
    fn notes(&self) -> Vec<String>;

    fn linear(&mut self, name: &str) -> Result<Linear, LoadError> {
        let w = self.matrix(name)?;
        let bias = bias_of(name);
        let b = if self.has(&bias) {
            Some(self.vector(&bias)?)
        } else {
            None
        };
        Ok(Linear { w, b })
    }

    fn missing(&self, name: &str) -> LoadError {
        LoadError::MissingTensor {
            path: self.path().to_path_buf(),
            name: name.to_string(),
        }
    }
}

pub struct GgufWeights {
    pub path: PathBuf,
    pub content: gguf_file::Content,
    reader: BufReader<File>,
    /// The whole file, mapped: weights on lmwb's kernels are read in place.
    map: Option<Arc<memmap2::Mmap>>,
    device: Device,
    requantize: bool,
    own_kernels: bool,
    paths: std::collections::BTreeMap<(String, CpuPath), usize>,
}

impl GgufWeights {
    pub fn open(
        path: &Path,
        device: &Device,
        requantize: bool,
        own_kernels: bool,
    ) -> Result<GgufWeights, LoadError> {
        let file = File::open(path).map_err(|e| LoadError::Io {
            path: path.into(),
            why: e.to_string(),
        })?;
        // SAFETY: the file is only read; lmwb never writes a model file while it is mapped.
        // (Another program truncating it under us would fault, as with any mmap reader,
        // llama.cpp's included.)
        let map = unsafe { memmap2::Mmap::map(&file) }.ok().map(Arc::new);
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| classify(path, e))?;
        Ok(GgufWeights {
            path: path.into(),
            content,
            reader,
            map,
            device: device.clone(),
            requantize: requantize && device.is_cpu(),
            own_kernels,
            paths: Default::default(),
        })
    }

    fn read(&mut self, name: &str) -> Result<QTensor, LoadError> {
        if !self.has(name) {
            return Err(self.missing(name));
        }
        self.content
            .tensor(&mut self.reader, name, &self.device)
            .map_err(|e| classify(&self.path, e))
    }

    /// The GGUF type of a tensor, if present.
    pub fn dtype_of(&self, name: &str) -> Option<GgmlDType> {
        self.content.tensor_infos.get(name).map(|t| t.ggml_dtype)
    }
}

/// Turn a candle read error into a truncation or format error naming the file.
pub(crate) fn classify(path: &Path, e: candle_core::Error) -> LoadError {
    let why = candle_msg(&e);
    let truncated = [
        // candle's bounds checks: "… only N remaining in file", "exceeds remaining file bytes".
        "remaining",
        "failed to fill whole buffer",
        "UnexpectedEof",
        "unexpected end",
    ]
    .iter()
    .any(|p| why.contains(p));
    if truncated {
        LoadError::Truncated {
            path: path.into(),
            why,
        }
    } else {
        LoadError::Format {
            path: path.into(),
            why,
        }
    }
}

impl WeightSource for GgufWeights {
    fn path(&self) -> &Path {
        &self.path
    }

    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn matrix(&mut self, name: &str) -> Result<Matrix, LoadError> {
        let path = self.path.clone();
        let err = |e| tensor_err(&path, name, e);
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Err(self.missing(name));
        };
        let from = info.ggml_dtype;
        let plan = if self.device.is_cpu() {
            cpu_path(from, self.requantize, self.own_kernels)
        } else {
            CpuPath::Candle
        };
        *self.paths.entry((format!("{from:?}"), plan)).or_default() += 1;
        if let (CpuPath::Own, Some(map)) = (plan, &self.map) {
            // In place from the mapped file: nothing copied, pages shared with the cache.
            let dims = info.shape.dims();
            let (n, k) = match dims {
                [k] => (1, *k),
                [n, k] => (*n, *k),
                _ => {
                    return Err(err(candle_core::Error::msg(format!(
                        "expected a matrix, got {dims:?}"
                    ))))
                }
            };
            let start = (self.content.tensor_data_offset + info.offset) as usize;
            let len = n * k / from.block_size() * from.type_size();
            let w = QWeight::mapped(map.clone(), start, len, from, (n, k)).map_err(|e| {
                if start + len > map.len() {
                    LoadError::Truncated {
                        path: path.clone(),
                        why: format!(
                            "tensor `{name}` needs bytes up to {} but the file has {}",
                            start + len,
                            map.len()
                        ),
                    }
                } else {
                    err(e)
                }
            })?;
            return Ok(Matrix::Ggml(w));
        }
        let mut q = self.read(name)?;
        if plan == CpuPath::Requantized {
            let t = q.dequantize(&self.device).map_err(err)?;
            q = QTensor::quantize(&t, GgmlDType::Q8_0).map_err(err)?;
        }
        let q = Arc::new(q);
        match plan {
            CpuPath::Own => Ok(Matrix::Ggml(QWeight::new(q).map_err(err)?)),
            CpuPath::Requantized if self.own_kernels => {
                Ok(Matrix::Ggml(QWeight::new(q).map_err(err)?))
            }
            _ => Ok(Matrix::Candle(QMatMul::from_arc(q).map_err(err)?)),
        }
    }

    fn vector(&mut self, name: &str) -> Result<Tensor, LoadError> {
        let q = self.read(name)?;
        q.dequantize(&self.device)
            .map_err(|e| tensor_err(&self.path, name, e))
    }

    fn notes(&self) -> Vec<String> {
        cpu_notes(&self.paths)
    }
}

fn tensor_err(path: &Path, name: &str, e: candle_core::Error) -> LoadError {
    LoadError::Tensor {
        path: path.into(),
        why: format!("tensor `{name}`: {}", candle_msg(&e)),
    }
}

/// Safetensors shards of an HF checkpoint, memory-mapped.
pub struct SafetensorsWeights {
    pub path: PathBuf,
    st: candle_core::safetensors::MmapedSafetensors,
    device: Device,
    dtype_seen: Option<DType>,
}

impl SafetensorsWeights {
    pub fn open(
        dir: &Path,
        files: &[PathBuf],
        device: &Device,
    ) -> Result<SafetensorsWeights, LoadError> {
        // SAFETY: the files are only read; lmwb never writes model files while they are mapped.
        let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(files) }
            .map_err(|e| classify(dir, e))?;
        Ok(SafetensorsWeights {
            path: dir.into(),
            st,
            device: device.clone(),
            dtype_seen: None,
        })
    }

    fn load(&mut self, name: &str) -> Result<Tensor, LoadError> {
        if !self.has(name) {
            return Err(self.missing(name));
        }
        let t = self
            .st
            .load(name, &self.device)
            .map_err(|e| classify(&self.path, e))?;
        match t.dtype() {
            DType::F32 | DType::F16 | DType::BF16 => {}
            other => {
                return Err(LoadError::Format {
                    path: self.path.clone(),
                    why: format!("tensor `{name}` is {other:?}; only F32, F16 and BF16 checkpoints are supported"),
                })
            }
        }
        self.dtype_seen.get_or_insert(t.dtype());
        t.to_dtype(DType::F32)
            .map_err(|e| tensor_err(&self.path, name, e))
    }
}

impl WeightSource for SafetensorsWeights {
    fn path(&self) -> &Path {
        &self.path
    }

    fn has(&self, name: &str) -> bool {
        self.st.get(name).is_ok()
    }

    fn matrix(&mut self, name: &str) -> Result<Matrix, LoadError> {
        Ok(Matrix::Candle(QMatMul::Tensor(self.load(name)?)))
    }

    fn vector(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.load(name)
    }

    fn notes(&self) -> Vec<String> {
        match self.dtype_seen {
            Some(DType::F32) | None => vec![],
            Some(d) => vec![format!("{d:?} weights computed in F32")],
        }
    }
}

impl SafetensorsWeights {
    /// Parameter count and the most common dtype, from the headers.
    pub fn summary(&self) -> (u64, String) {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        let mut params = 0u64;
        for (_, view) in self.st.tensors() {
            let n: u64 = view.shape().iter().map(|&d| d as u64).product();
            params += n;
            *counts.entry(format!("{:?}", view.dtype())).or_default() += n;
        }
        let dtype = counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(d, _)| d)
            .unwrap_or_default();
        (params, dtype)
    }
}
