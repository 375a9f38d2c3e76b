//! Tiny random-weight llama / qwen2 / qwen3 models written on the fly (tests/common/tiny.rs):
//! GGUF and safetensors loads agree token for token, the bias / q-k norm / RoPE-permutation
//! paths are live, the engine streams a chat, and every broken model is a typed error.
//! Nothing is downloaded.

mod common;

use candle_core::DType;
use common::tiny::{self, Arch, Spec, Tiny, ARCHS};
use common::tiny_vocab::{self, CHATML, VOCAB};
use lmwb::engine::kv::KvCache;
use lmwb::engine::model::{inspect, load, LoadOptions, LoadedModel};
use lmwb::engine::sampler::SamplingParams;
use lmwb::engine::template::{ChatMessage, ChatTemplate};
use lmwb::engine::{
    EngineError, EngineHandle, EngineOptions, FinishReason, GenerateRequest, LoadError, Prompt,
};
use std::path::Path;

const STEPS: usize = 20;

fn load_ok(path: &Path) -> LoadedModel {
    load(path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {} failed: {e}", path.display()))
}

fn load_err(path: &Path) -> LoadError {
    match load(path, &LoadOptions::default()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e,
    }
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("You are a tiny model."),
        ChatMessage::user("hello world, and the 42 others"),
    ]
}

/// The chat prompt as token ids, through the model's own tokenizer.
fn prompt_ids(m: &LoadedModel) -> Vec<u32> {
    let text = ChatTemplate::new(CHATML, None, None)
        .unwrap()
        .render(&messages(), true)
        .unwrap();
    m.tokenizer.encode(&text, false).unwrap()
}

/// Greedy decoding straight through `forward`: (logits of every step, tokens).
fn greedy(m: &LoadedModel, prompt: &[u32], steps: usize) -> (Vec<Vec<f32>>, Vec<u32>) {
    let mut cache = KvCache::new(m.model.cfg.n_layers, None);
    let mut logits = m.model.forward(prompt, &mut cache).unwrap();
    let (mut all, mut ids) = (vec![], vec![]);
    for _ in 0..steps {
        let l = logits.to_vec1::<f32>().unwrap();
        assert_eq!(l.len(), VOCAB);
        assert!(l.iter().all(|x| x.is_finite()), "non-finite logits");
        let id = l
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as u32;
        all.push(l);
        ids.push(id);
        logits = m.model.forward(&[id], &mut cache).unwrap();
    }
    (all, ids)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Both models decode the same tokens and agree on the first logits within `tol`.
fn assert_same_run(what: &str, a: &LoadedModel, b: &LoadedModel, tol: f32) -> Vec<u32> {
    let ids = prompt_ids(a);
    assert_eq!(ids, prompt_ids(b), "{what}: tokenizers disagree");
    let (la, ta) = greedy(a, &ids, STEPS);
    let (lb, tb) = greedy(b, &ids, STEPS);
    let d = max_diff(&la[0], &lb[0]);
    assert!(d < tol, "{what}: first-step logits differ by {d}");
    assert_eq!(ta, tb, "{what}: greedy tokens differ");
    ta
}

#[test]
fn gguf_and_safetensors_agree_for_every_arch() {
    for arch in ARCHS {
        let t = Tiny::write(&Spec::new(arch));
        let (g, h) = (load_ok(&t.gguf), load_ok(&t.hf));
        assert_eq!(g.model.cfg, h.model.cfg, "{arch:?}: configs differ");
        assert_eq!(g.model.cfg.head_dim, arch.head_dim());
        let tokens = assert_same_run(arch.name(), &g, &h, 1e-3);
        // Random weights that collapse onto one token would hide a broken attention.
        let distinct = tokens
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(distinct > 2, "{arch:?}: degenerate output {tokens:?}");
    }
}

/// The plain-buffer CPU forward (lmwb's kernels, F16 cache rows, batched steps) gives the
/// candle-tensor forward's logits bit for bit, for every arch (biases, q/k norms, both
/// RoPE styles) and weight type, and a batch of two sequences gives each its own result.
#[test]
fn cpu_forward_equals_tensor_forward_and_batches_exactly() {
    use candle_core::quantized::GgmlDType;
    use lmwb::engine::model::quantize::requantize_gguf;
    use lmwb::engine::model::SeqStep;
    for arch in ARCHS {
        let t = Tiny::write(&Spec::new(arch));
        for to in [GgmlDType::Q8_0, GgmlDType::Q4_1, GgmlDType::Q4_0] {
            let q = t.tmp.path().join(format!("tiny-{to:?}.gguf"));
            requantize_gguf(&t.gguf, &q, to).unwrap();
            let fast = load_ok(&q);
            assert!(
                fast.model.uses_cpu_path(),
                "{arch:?} {to:?}: not on the CPU path"
            );
            let mut slow = load_ok(&q);
            slow.model.drop_cpu_path();
            let ids = prompt_ids(&fast);
            let (lf, tf) = greedy(&fast, &ids, 8);
            let (ls, ts) = greedy(&slow, &ids, 8);
            assert_eq!(tf, ts, "{arch:?} {to:?}: tokens differ");
            for (a, b) in lf.iter().zip(&ls) {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{arch:?} {to:?}: logits differ"
                );
            }
            // Two sequences in one step (a prompt chunk and a one-token step) each get
            // the logits they get alone.
            let n = fast.model.cfg.n_layers;
            let (mut c1, mut c2) = (KvCache::new(n, None), KvCache::new(n, None));
            fast.model.forward(&ids[..3], &mut c2).unwrap();
            let both = fast
                .model
                .forward_batch(&mut [
                    SeqStep {
                        tokens: &ids,
                        cache: &mut c1,
                    },
                    SeqStep {
                        tokens: &ids[3..4],
                        cache: &mut c2,
                    },
                ])
                .unwrap();
            let (mut a1, mut a2) = (KvCache::new(n, None), KvCache::new(n, None));
            let alone1 = fast
                .model
                .forward(&ids, &mut a1)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            fast.model.forward(&ids[..3], &mut a2).unwrap();
            let alone2 = fast
                .model
                .forward(&ids[3..4], &mut a2)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(both[0], alone1, "{arch:?} {to:?}: batched prompt differs");
            assert_eq!(both[1], alone2, "{arch:?} {to:?}: batched step differs");
        }
    }
}

#[test]
fn tokenizers_from_gguf_and_tokenizer_json_agree() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let t = Tiny::write(&Spec::new(arch));
        let (g, h) = (load_ok(&t.gguf), load_ok(&t.hf));
        for text in [
            "hello world",
            "  the 2024 answers,\n\nand you're there!",
            "<|im_start|>user\nhi<|im_end|>\n",
            "ünïcödé ✓ tabs\tand   spaces",
        ] {
            let a = g.tokenizer.encode(text, false).unwrap();
            assert_eq!(
                a,
                h.tokenizer.encode(text, false).unwrap(),
                "{arch:?} {text:?}"
            );
            assert_eq!(g.tokenizer.decode(&a, false).unwrap(), text);
        }
        let (mut eg, mut eh) = (
            g.tokenizer.eos_ids().to_vec(),
            h.tokenizer.eos_ids().to_vec(),
        );
        eg.sort();
        eh.sort();
        assert_eq!(eg, eh, "{arch:?}: EOS ids differ");
        assert!(eg.contains(&tiny_vocab::id_of(tiny_vocab::EOS)));
        assert_eq!(g.tokenizer.bos_id(), h.tokenizer.bos_id());
    }
}

/// A variant that changes one weight family must change the logits: the path is not dead.
fn assert_differs(what: &str, a: &Path, b: &Path) {
    let (a, b) = (load_ok(a), load_ok(b));
    let ids = prompt_ids(&a);
    let (la, _) = greedy(&a, &ids, 1);
    let (lb, _) = greedy(&b, &ids, 1);
    let d = max_diff(&la[0], &lb[0]);
    assert!(d > 1e-2, "{what}: logits differ by only {d}");
}

#[test]
fn biases_qk_norms_and_rope_permutation_are_live() {
    let base = Tiny::write(&Spec::new(Arch::Qwen2));
    let zero = Tiny::write(&Spec {
        zero_bias: true,
        ..Spec::new(Arch::Qwen2)
    });
    assert_differs("qwen2 gguf without biases", &base.gguf, &zero.gguf);
    assert_differs("qwen2 hf without biases", &base.hf, &zero.hf);

    let base = Tiny::write(&Spec::new(Arch::Qwen3));
    let unit = Tiny::write(&Spec {
        unit_qk_norm: true,
        ..Spec::new(Arch::Qwen3)
    });
    assert_differs("qwen3 gguf with unit q/k norms", &base.gguf, &unit.gguf);
    assert_differs("qwen3 hf with unit q/k norms", &base.hf, &unit.hf);

    // A llama GGUF whose q/k rows were not permuted is read with the wrong RoPE pairing.
    let base = Tiny::write(&Spec::new(Arch::Llama));
    let raw = Tiny::write(&Spec {
        permute_llama: false,
        ..Spec::new(Arch::Llama)
    });
    assert_differs("llama gguf without q/k permutation", &base.hf, &raw.gguf);
}

#[test]
fn bf16_safetensors_match_f32_of_the_same_values() {
    let spec = Spec {
        round_bf16: true,
        ..Spec::new(Arch::Qwen2)
    };
    let t = Tiny::write(&spec);
    let bf16 = t.path("qwen2-bf16");
    tiny::write_hf(&spec, &bf16, DType::BF16);
    let (f, b, g) = (load_ok(&t.hf), load_ok(&bf16), load_ok(&t.gguf));
    assert_eq!(b.info.quant, "BF16");
    assert_eq!(f.info.quant, "F32");
    assert!(
        b.info.notes.iter().any(|n| n.contains("BF16")),
        "{:?}",
        b.info.notes
    );
    assert_same_run("bf16 vs f32", &f, &b, 1e-4);
    assert_same_run("bf16 vs gguf f32", &g, &b, 1e-3);
}

fn greedy_request(max_tokens: usize, template: Option<&str>) -> GenerateRequest {
    GenerateRequest {
        sampling: SamplingParams {
            temperature: 0.0,
            seed: Some(1),
            ..Default::default()
        },
        max_tokens: Some(max_tokens),
        ..GenerateRequest::new(Prompt::Chat {
            messages: messages(),
            template: template.map(String::from),
            options: Default::default(),
        })
    }
}

#[test]
fn engine_streams_a_chat_like_the_forward_loop() {
    for arch in ARCHS {
        let t = Tiny::write(&Spec::new(arch));
        for path in [&t.gguf, &t.hf] {
            let m = load_ok(path);
            let ids = prompt_ids(&m);
            let (_, want) = greedy(&m, &ids, STEPS);
            // What the engine must produce: the greedy tokens up to the first EOS.
            let eos = m.tokenizer.eos_ids().to_vec();
            let end = want.iter().position(|t| eos.contains(t));
            let want: Vec<u32> = want[..end.unwrap_or(STEPS)].to_vec();

            let engine = EngineHandle::load(path, EngineOptions::default()).unwrap();
            assert_eq!(engine.info().arch, arch.name());
            let mut pieces = vec![];
            let out = engine
                .generate(greedy_request(STEPS, None))
                .collect_with(|p| pieces.push(p.to_string()))
                .unwrap();
            let s = &out.stats;
            assert_eq!(out.token_ids, want, "{}", path.display());
            assert_eq!(s.prompt_tokens, ids.len());
            assert_eq!(s.generated_tokens, want.len());
            let reason = if end.is_some() {
                FinishReason::Stop
            } else {
                FinishReason::Length
            };
            assert_eq!(s.finish_reason, reason);
            assert!(!pieces.is_empty());
            assert_eq!(pieces.concat(), out.text);

            // The same request again reuses the cached prompt and gives the same tokens.
            let again = engine
                .generate(greedy_request(STEPS, None))
                .collect()
                .unwrap();
            assert_eq!(again.token_ids, out.token_ids);
            assert!(again.stats.cached_tokens > 0);
        }
    }
}

/// A load error whose message names the file and says `what`.
fn assert_load_error(e: &LoadError, file: &Path, what: &str) {
    let msg = e.to_string();
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(name), "`{msg}` does not name {name}");
    assert!(msg.contains(what), "`{msg}` does not say `{what}`");
}

#[test]
fn broken_models_give_typed_errors() {
    let t = Tiny::write(&Spec::new(Arch::Qwen2));

    let missing = t.path("nowhere.gguf");
    let e = load_err(&missing);
    assert!(matches!(e, LoadError::NotFound(_)), "{e:?}");
    assert_load_error(&e, &missing, "does not exist");

    // Cut inside the tensor data, and inside the metadata.
    let data_at = tiny::gguf_data_offset(&t.gguf);
    let len = std::fs::metadata(&t.gguf).unwrap().len() as usize;
    for (name, keep) in [
        ("cut-data.gguf", (data_at + len) / 2),
        ("cut-meta.gguf", data_at / 2),
    ] {
        let cut = t.path(name);
        tiny::write_truncated(&t.gguf, &cut, keep);
        let e = load_err(&cut);
        assert!(matches!(e, LoadError::Truncated { .. }), "{name}: {e:?}");
        assert_load_error(&e, &cut, "truncated");
    }

    let gpt2 = t.path("gpt2.gguf");
    tiny::write_gguf(
        &Spec {
            gguf_arch: Some("gpt2".into()),
            ..Spec::new(Arch::Qwen2)
        },
        &gpt2,
    );
    let e = load_err(&gpt2);
    assert!(matches!(e, LoadError::Config { .. }), "{e:?}");
    assert_load_error(&e, &gpt2, "unknown architecture `gpt2`");

    let no_tok = t.path("no-tokenizer.gguf");
    tiny::write_gguf(
        &Spec {
            gguf_tokenizer: false,
            ..Spec::new(Arch::Qwen2)
        },
        &no_tok,
    );
    let e = load_err(&no_tok);
    assert!(matches!(e, LoadError::Tokenizer { .. }), "{e:?}");
    assert_load_error(&e, &no_tok, "tokenizer.ggml.tokens");

    let no_tok_json = t.path("hf-no-tokenizer");
    tiny::hf_without(&t.hf, &no_tok_json, "tokenizer.json");
    let e = load_err(&no_tok_json);
    assert!(matches!(e, LoadError::Tokenizer { .. }), "{e:?}");
    assert_load_error(&e, &no_tok_json, "tokenizer.json");

    let no_cfg = t.path("hf-no-config");
    tiny::hf_without(&t.hf, &no_cfg, "config.json");
    let e = load_err(&no_cfg);
    assert!(matches!(e, LoadError::Format { .. }), "{e:?}");
    assert_load_error(&e, &no_cfg, "config.json");
    // inspect reads the same folder without panicking either.
    assert!(inspect(&no_cfg).is_err());

    // The engine hands a load failure back through its ready handshake.
    match EngineHandle::load(&gpt2, EngineOptions::default()) {
        Err(EngineError::Load(LoadError::Config { .. })) => {}
        Err(e) => panic!("wrong error {e:?}"),
        Ok(_) => panic!("gpt2 GGUF loaded"),
    }
}

#[test]
fn model_without_chat_template_needs_template_flag() {
    let t = Tiny::write(&Spec {
        chat_template: false,
        ..Spec::new(Arch::Llama)
    });
    for path in [&t.gguf, &t.hf] {
        assert!(!inspect(path).unwrap().has_chat_template);
        let engine = EngineHandle::load(path, EngineOptions::default()).unwrap();
        let e = engine
            .generate(greedy_request(4, None))
            .collect()
            .unwrap_err();
        assert!(matches!(e, EngineError::Template(_)), "{e:?}");
        assert!(e.to_string().contains("--template"), "{e}");
        let out = engine
            .generate(greedy_request(4, Some("chatml")))
            .collect()
            .unwrap();
        assert!(out.stats.prompt_tokens > 0);
        assert!(out.stats.generated_tokens <= 4);
        assert!(matches!(
            out.stats.finish_reason,
            FinishReason::Length | FinishReason::Stop
        ));
    }
}

#[test]
fn inspect_reports_arch_params_and_context() {
    for arch in ARCHS {
        let t = Tiny::write(&Spec::new(arch));
        for (path, format) in [(&t.gguf, "gguf"), (&t.hf, "safetensors")] {
            let info = inspect(path).unwrap();
            assert_eq!(info.format, format);
            assert_eq!(info.arch, arch.name(), "{}", path.display());
            assert_eq!(info.params, arch.params(), "{arch:?} {format}");
            assert_eq!(info.context_length, arch.context());
            assert_eq!(info.quant, "F32");
            assert!(info.has_chat_template);
            let cfg = info.config.expect("a config");
            assert_eq!(cfg.head_dim, arch.head_dim());
            assert_eq!(cfg.vocab_size, VOCAB);
            assert_eq!(cfg.n_kv_heads, tiny::KV_HEADS);
            assert!((cfg.rope_theta - arch.rope_theta()).abs() < 1.0);
            // Loading reports the same description.
            assert_eq!(load_ok(path).info.params, arch.params());
        }
    }
}
