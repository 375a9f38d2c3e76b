//! Tiny random-weight llama / qwen2 / qwen3 models written on the fly, as a GGUF file (the way
//! llama.cpp's `convert_hf_to_gguf.py` lays it out) and as an HF safetensors folder, plus
//! broken variants for the error paths. Weights are seeded per tensor name, so a variant
//! (zeroed biases, unit q/k norms) changes only the tensors it names.

use super::tiny_vocab::{self, CHATML, VOCAB};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

pub const ARCHS: [Arch; 3] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3];
pub const HIDDEN: usize = 64;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const FFN: usize = 128;

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
    /// Qwen3 gets a head dimension that is not hidden / heads, as the real ones have.
    pub fn head_dim(self) -> usize {
        match self {
            Arch::Qwen3 => 32,
            _ => HIDDEN / HEADS,
        }
    }
    pub fn context(self) -> usize {
        match self {
            Arch::Llama => 256,
            Arch::Qwen2 => 512,
            Arch::Qwen3 => 1024,
        }
    }
    pub fn rope_theta(self) -> f32 {
        match self {
            Arch::Llama => 10_000.0,
            _ => 1_000_000.0,
        }
    }
    pub fn rms_eps(self) -> f32 {
        match self {
            Arch::Llama => 1e-5,
            _ => 1e-6,
        }
    }
    /// SmolLM-style llama unties its output; the small Qwens tie it to the embeddings.
    pub fn tied(self) -> bool {
        self != Arch::Llama
    }
    pub fn pre(self) -> &'static str {
        match self {
            Arch::Llama => "smollm",
            _ => "qwen2",
        }
    }
    pub fn biases(self) -> bool {
        self == Arch::Qwen2
    }
    pub fn qk_norm(self) -> bool {
        self == Arch::Qwen3
    }
    /// Parameter count, from the shapes alone.
    pub fn params(self) -> u64 {
        let (h, hd) = (HIDDEN, self.head_dim());
        let (q, kv) = (HEADS * hd, KV_HEADS * hd);
        let mut layer = 2 * h + h * q + 2 * h * kv + q * h + 3 * h * FFN;
        if self.biases() {
            layer += q + 2 * kv;
        }
        if self.qk_norm() {
            layer += 2 * hd;
        }
        let head = if self.tied() { 0 } else { VOCAB * h };
        (VOCAB * h + LAYERS * layer + h + head) as u64
    }
}

/// What to write.
#[derive(Clone, Debug)]
pub struct Spec {
    pub arch: Arch,
    pub seed: u64,
    pub chat_template: bool,
    /// qwen2: write every q/k/v bias as zeros.
    pub zero_bias: bool,
    /// qwen3: write q_norm / k_norm as all ones.
    pub unit_qk_norm: bool,
    /// Permute llama q/k rows in the GGUF as llama.cpp does (`false` writes HF order).
    pub permute_llama: bool,
    /// Round every weight to bf16 (so F32 and BF16 files hold the same values).
    pub round_bf16: bool,
    /// Override `general.architecture` (and the metadata key prefix) in the GGUF.
    pub gguf_arch: Option<String>,
    /// Write the `tokenizer.ggml.*` metadata.
    pub gguf_tokenizer: bool,
}

impl Spec {
    pub fn new(arch: Arch) -> Spec {
        Spec {
            arch,
            seed: 7,
            chat_template: true,
            zero_bias: false,
            unit_qk_norm: false,
            permute_llama: true,
            round_bf16: false,
            gguf_arch: None,
            gguf_tokenizer: true,
        }
    }
}

/// splitmix64 over (seed, name): a stream of uniform f32 in [-1, 1).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, name: &str) -> Rng {
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed ^ h)
    }
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `center + spread * U[-1, 1)` of the given shape.
fn tensor(spec: &Spec, name: &str, shape: &[usize], center: f32, spread: f32) -> Tensor {
    let mut rng = Rng::new(spec.seed, name);
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| center + spread * rng.next()).collect();
    let t = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
    if spec.round_bf16 {
        t.to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
    } else {
        t
    }
}

/// The weights under their HF names, in a fixed order.
pub fn hf_weights(spec: &Spec) -> Vec<(String, Tensor)> {
    let a = spec.arch;
    let (h, hd) = (HIDDEN, a.head_dim());
    let (q, kv) = (HEADS * hd, KV_HEADS * hd);
    let mat = |n: &str, out: usize, inp: usize| {
        let spread = 3f32.sqrt() / (inp as f32).sqrt();
        (n.to_string(), tensor(spec, n, &[out, inp], 0.0, spread))
    };
    let vec = |n: &str, len: usize, center: f32, spread: f32| {
        (n.to_string(), tensor(spec, n, &[len], center, spread))
    };
    let mut w = vec![(
        "model.embed_tokens.weight".to_string(),
        tensor(spec, "embed", &[VOCAB, h], 0.0, 0.15),
    )];
    for i in 0..LAYERS {
        let p = |s: &str| format!("model.layers.{i}.{s}");
        w.push(vec(&p("input_layernorm.weight"), h, 1.0, 0.2));
        w.push(mat(&p("self_attn.q_proj.weight"), q, h));
        w.push(mat(&p("self_attn.k_proj.weight"), kv, h));
        w.push(mat(&p("self_attn.v_proj.weight"), kv, h));
        if a.biases() {
            let s = if spec.zero_bias { 0.0 } else { 0.3 };
            w.push(vec(&p("self_attn.q_proj.bias"), q, 0.0, s));
            w.push(vec(&p("self_attn.k_proj.bias"), kv, 0.0, s));
            w.push(vec(&p("self_attn.v_proj.bias"), kv, 0.0, s));
        }
        if a.qk_norm() {
            let s = if spec.unit_qk_norm { 0.0 } else { 0.5 };
            w.push(vec(&p("self_attn.q_norm.weight"), hd, 1.0, s));
            w.push(vec(&p("self_attn.k_norm.weight"), hd, 1.0, s));
        }
        w.push(mat(&p("self_attn.o_proj.weight"), h, q));
        w.push(vec(&p("post_attention_layernorm.weight"), h, 1.0, 0.2));
        w.push(mat(&p("mlp.gate_proj.weight"), FFN, h));
        w.push(mat(&p("mlp.up_proj.weight"), FFN, h));
        w.push(mat(&p("mlp.down_proj.weight"), h, FFN));
    }
    w.push(vec("model.norm.weight", h, 1.0, 0.2));
    if !a.tied() {
        let (n, t) = mat("lm_head.weight", VOCAB, h);
        w.push((n, (t * 2.0).unwrap()));
    }
    w
}

/// llama.cpp's tensor name for an HF one.
fn gguf_name(hf: &str) -> String {
    const MAP: &[(&str, &str)] = &[
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];
    match hf {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.").expect("a layer tensor");
    let (layer, rest) = rest.split_once('.').unwrap();
    let (stem, kind) = rest.rsplit_once('.').unwrap();
    let short = MAP
        .iter()
        .find(|(h, _)| *h == stem)
        .expect("known tensor")
        .1;
    format!("blk.{layer}.{short}.{kind}")
}

/// `LlamaModel.permute` of convert_hf_to_gguf.py: rows reordered for interleaved RoPE.
pub fn permute(w: &Tensor, n_head: usize) -> Tensor {
    let (out, inp) = w.dims2().unwrap();
    w.reshape((n_head, 2, out / n_head / 2, inp))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((out, inp))
        .unwrap()
}

/// Write the model as a GGUF file at `path`.
pub fn write_gguf(spec: &Spec, path: &Path) {
    let a = spec.arch;
    let arch = spec.gguf_arch.clone().unwrap_or_else(|| a.name().into());
    let k = |s: &str| format!("{arch}.{s}");
    let hd = a.head_dim() as u32;
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.clone())),
        ("general.name".into(), Value::String(format!("tiny-{arch}"))),
        (k("block_count"), Value::U32(LAYERS as u32)),
        (k("embedding_length"), Value::U32(HIDDEN as u32)),
        (k("feed_forward_length"), Value::U32(FFN as u32)),
        (k("attention.head_count"), Value::U32(HEADS as u32)),
        (k("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
        (k("attention.key_length"), Value::U32(hd)),
        (k("attention.value_length"), Value::U32(hd)),
        (
            k("attention.layer_norm_rms_epsilon"),
            Value::F32(a.rms_eps()),
        ),
        (k("rope.freq_base"), Value::F32(a.rope_theta())),
        (k("rope.dimension_count"), Value::U32(hd)),
        (k("context_length"), Value::U32(a.context() as u32)),
        (k("vocab_size"), Value::U32(VOCAB as u32)),
    ];
    if spec.gguf_tokenizer {
        md.extend(tiny_vocab::gguf_metadata(a.pre()));
    }
    if spec.chat_template {
        md.push((
            "tokenizer.chat_template".into(),
            Value::String(CHATML.into()),
        ));
    }
    let tensors: Vec<(String, QTensor)> = hf_weights(spec)
        .into_iter()
        .map(|(name, t)| {
            let permute_rows = a == Arch::Llama && spec.permute_llama;
            let t = match name.rsplit('.').nth(1) {
                Some("q_proj") if permute_rows => permute(&t, HEADS),
                Some("k_proj") if permute_rows => permute(&t, KV_HEADS),
                _ => t,
            };
            (
                gguf_name(&name),
                QTensor::quantize(&t, GgmlDType::F32).unwrap(),
            )
        })
        .collect();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
}

/// Write the model as an HF folder (config.json, model.safetensors in `dtype`, tokenizer).
pub fn write_hf(spec: &Spec, dir: &Path, dtype: DType) {
    let a = spec.arch;
    std::fs::create_dir_all(dir).unwrap();
    let class = match a {
        Arch::Llama => "LlamaForCausalLM",
        Arch::Qwen2 => "Qwen2ForCausalLM",
        Arch::Qwen3 => "Qwen3ForCausalLM",
    };
    let config = serde_json::json!({
        "architectures": [class],
        "model_type": a.name(),
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": a.head_dim(),
        "hidden_act": "silu",
        "rms_norm_eps": a.rms_eps(),
        "rope_theta": a.rope_theta(),
        "rope_scaling": null,
        "max_position_embeddings": a.context(),
        "vocab_size": VOCAB,
        "tie_word_embeddings": a.tied(),
        "use_sliding_window": false,
        "torch_dtype": if dtype == DType::BF16 { "bfloat16" } else { "float32" },
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    let weights: HashMap<String, Tensor> = hf_weights(spec)
        .into_iter()
        .map(|(n, t)| (n, t.to_dtype(dtype).unwrap()))
        .collect();
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
    let template = spec.chat_template.then_some(CHATML);
    tiny_vocab::write_hf_tokenizer(dir, a.pre(), template);
}

/// A temp folder holding one model of each format.
pub struct Tiny {
    pub tmp: tempfile::TempDir,
    pub gguf: PathBuf,
    pub hf: PathBuf,
}

impl Tiny {
    /// Write `spec` as `<arch>.gguf` and `<arch>-hf/` (F32).
    pub fn write(spec: &Spec) -> Tiny {
        let tmp = tempfile::tempdir().unwrap();
        let gguf = tmp.path().join(format!("{}.gguf", spec.arch.name()));
        let hf = tmp.path().join(format!("{}-hf", spec.arch.name()));
        write_gguf(spec, &gguf);
        write_hf(spec, &hf, DType::F32);
        Tiny { tmp, gguf, hf }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// A copy of `src` cut to its first `keep` bytes.
pub fn write_truncated(src: &Path, dst: &Path, keep: usize) {
    let bytes = std::fs::read(src).unwrap();
    assert!(keep < bytes.len());
    std::fs::write(dst, &bytes[..keep]).unwrap();
}

/// Where a GGUF's tensor data starts (the header and metadata end).
pub fn gguf_data_offset(path: &Path) -> usize {
    let mut f = std::fs::File::open(path).unwrap();
    gguf_file::Content::read(&mut f).unwrap().tensor_data_offset as usize
}

/// A copy of the HF folder `src` without `file`.
pub fn hf_without(src: &Path, dst: &Path, file: &str) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        if name != file {
            std::fs::copy(&p, dst.join(name)).unwrap();
        }
    }
}
