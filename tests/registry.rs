//! The model registry on fixture stores (tests/common/stores.rs) holding tiny models: a
//! configured folder, the Hugging Face cache, LM Studio and Ollama are all found with the
//! right names, sources and paths; copies are one entry; names are stable; `-m` takes every
//! kind of name; `verify` catches truncated and damaged files. Nothing is downloaded.

mod common;

use candle_core::DType;
use common::stores::{sha256_hex, Stores};
use common::tiny::{self, Arch, Spec};
use lmwb::config::Config;
use lmwb::models::hash::HashCache;
use lmwb::models::{lookup, scan, verify, Entry, ResolveError, Source};
use std::path::{Path, PathBuf};

const MAIN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OLD: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ST: &str = "cccccccccccccccccccccccccccccccccccccccc";
const HF_GGUF: &str = "tinyorg/tiny-llama-gguf/tiny-llama-f32";
const LMS_GGUF: &str = "lmstudio-community/tiny-llama-gguf/tiny-llama-f32";

/// The stores, and the tiny model files they were filled from.
struct World {
    s: Stores,
    src: tempfile::TempDir,
    /// Paths as placed: the folder GGUF, the HF snapshot link, the HF safetensors snapshot,
    /// the LM Studio copy, the Ollama blob.
    folder_gguf: PathBuf,
    hf_link: PathBuf,
    hf_st: PathBuf,
    lms_copy: PathBuf,
    ollama_blob: PathBuf,
}

impl World {
    fn src(&self, name: &str) -> PathBuf {
        self.src.path().join(name)
    }
}

fn gguf(dir: &Path, name: &str, arch: Arch, seed: u64) -> PathBuf {
    let p = dir.join(name);
    tiny::write_gguf(
        &Spec {
            seed,
            ..Spec::new(arch)
        },
        &p,
    );
    p
}

fn world() -> World {
    let s = Stores::new();
    let src = tempfile::tempdir().unwrap();
    let llama = gguf(src.path(), "llama.gguf", Arch::Llama, 7);
    let qwen2 = gguf(src.path(), "qwen2.gguf", Arch::Qwen2, 7);
    let qwen3 = gguf(src.path(), "qwen3.gguf", Arch::Qwen3, 7);
    let old = gguf(src.path(), "old.gguf", Arch::Qwen2, 9);
    let hf_dir = src.path().join("qwen2-hf");
    tiny::write_hf(&Spec::new(Arch::Qwen2), &hf_dir, DType::F32);

    let folder_gguf = s.folder_file("Tiny-Qwen3.gguf", &qwen3);
    let repo = "TinyOrg/Tiny-Llama-GGUF";
    let snap = s.hf_snapshot(repo, MAIN, &[("tiny-llama-f32.gguf", &llama)], true);
    // An older snapshot refs/main no longer names: not listed.
    s.hf_snapshot(repo, OLD, &[("old.gguf", &old)], false);
    let st_files: Vec<(String, PathBuf)> = std::fs::read_dir(&hf_dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().to_string(), p)
        })
        .collect();
    let st_refs: Vec<(&str, &Path)> = st_files
        .iter()
        .map(|(n, p)| (n.as_str(), p.as_path()))
        .collect();
    let hf_st = s.hf_snapshot("TinyOrg/Tiny-Qwen2", ST, &st_refs, true);
    let lms_copy = s.lmstudio_file(
        "lmstudio-community/Tiny-Llama-GGUF/tiny-llama-f32.gguf",
        &llama,
    );
    let ollama_blob = s.ollama_model("registry.ollama.ai/library/tiny", "1b", &qwen2);
    // Another name for the same blob.
    s.ollama_model("registry.ollama.ai/someone/tiny", "latest", &qwen2);
    World {
        hf_link: snap.join("tiny-llama-f32.gguf"),
        s,
        src,
        folder_gguf,
        hf_st,
        lms_copy,
        ollama_blob,
    }
}

fn by_name<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no `{name}` in {:?}", names(entries)))
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn every_store_is_found_with_its_name_source_and_path() {
    let w = world();
    let entries = scan(&w.s.sources());
    assert_eq!(
        names(&entries),
        [
            "tiny-qwen3",
            HF_GGUF,
            "tinyorg/tiny-qwen2",
            "tiny:1b",
            "someone/tiny:latest"
        ],
        "one entry per model and store name, sources in priority order; the old snapshot is \
         not listed"
    );

    let f = by_name(&entries, "tiny-qwen3");
    assert_eq!(
        (f.source, f.path.as_path()),
        (Source::Folder, w.folder_gguf.as_path())
    );
    assert_eq!(f.sha256, None, "no other model has its size: not hashed");

    let h = by_name(&entries, HF_GGUF);
    assert_eq!(h.source, Source::HuggingFace);
    assert_eq!(h.path, w.hf_link, "the snapshot link is the path");
    let blob = std::fs::canonicalize(&w.hf_link).unwrap();
    assert!(blob.parent().unwrap().ends_with("blobs"), "{blob:?}");
    assert_eq!(h.locations[0].blob.as_ref(), Some(&blob));
    assert_eq!(
        h.sha256.as_deref(),
        Some(sha256_hex(&w.src("llama.gguf")).as_str())
    );
    assert_eq!(
        h.locations[0].origin.as_deref(),
        Some(format!("TinyOrg/Tiny-Llama-GGUF@{MAIN}").as_str())
    );
    // The LM Studio copy has the same content: the same entry, both places listed.
    assert_eq!(h.sources, [Source::HuggingFace, Source::LmStudio]);
    assert_eq!(h.locations.len(), 2);
    assert_eq!(h.locations[1].path, w.lms_copy);
    assert_eq!(h.locations[1].name, LMS_GGUF);

    let st = by_name(&entries, "tinyorg/tiny-qwen2");
    assert_eq!(
        (st.source, st.path.as_path()),
        (Source::HuggingFace, w.hf_st.as_path())
    );
    assert!(st.size > 0);

    let o = by_name(&entries, "tiny:1b");
    assert_eq!(
        (o.source, o.path.as_path()),
        (Source::Ollama, w.ollama_blob.as_path())
    );
    assert_eq!(
        o.sha256.as_deref(),
        Some(sha256_hex(&w.src("qwen2.gguf")).as_str())
    );
    // Two tags of one blob are two models, as `ollama list` shows them, with one sum.
    let o2 = by_name(&entries, "someone/tiny:latest");
    assert_eq!(
        (o2.path.as_path(), &o2.sha256),
        (w.ollama_blob.as_path(), &o.sha256)
    );
    assert_eq!(o.locations[0].expected_size, Some(o.size));
    assert!(
        o.locations[0]
            .notes
            .iter()
            .any(|n| n.contains("template layer")),
        "{:?}",
        o.locations[0].notes
    );

    // The Ollama blob has no .gguf extension and still reads as a GGUF model.
    let info = lmwb::engine::model::inspect(&o.path).expect("the blob reads as a GGUF");
    assert_eq!(info.arch, "qwen2");
}

#[test]
fn names_are_stable_across_scans_and_the_hash_is_cached() {
    let w = world();
    let first = scan(&w.s.sources());
    let cache = std::fs::read_to_string(w.s.hash_cache()).expect("the sums are cached");
    let lms_real = std::fs::canonicalize(&w.lms_copy).unwrap();
    assert!(cache.contains(&lms_real.display().to_string()), "{cache}");
    assert_eq!(
        cache.lines().count(),
        1,
        "only the file with a size twin was hashed: {cache}"
    );
    let cache_mtime = std::fs::metadata(w.s.hash_cache())
        .unwrap()
        .modified()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(scan(&w.s.sources()), first);
    }
    assert_eq!(
        std::fs::metadata(w.s.hash_cache())
            .unwrap()
            .modified()
            .unwrap(),
        cache_mtime,
        "nothing new to hash, nothing written"
    );
    // Without a cache, the same names.
    let mut no_cache = w.s.sources();
    no_cache.hash_cache = None;
    assert_eq!(names(&scan(&no_cache)), names(&first));
}

#[test]
fn model_names_of_every_store_resolve() {
    let w = world();
    let src = w.s.sources();
    let path = |spec: &str| {
        lookup(spec, &src)
            .unwrap_or_else(|e| panic!("{spec}: {e}"))
            .path
    };
    assert_eq!(path("tiny:1b"), w.ollama_blob);
    assert_eq!(path("someone/tiny"), w.ollama_blob, "no tag means :latest");
    assert_eq!(path(HF_GGUF), w.hf_link);
    assert_eq!(
        path("TinyOrg/Tiny-Qwen2"),
        w.hf_st,
        "names are case-insensitive"
    );
    assert_eq!(
        path("tiny-qwen3"),
        w.folder_gguf,
        "the folder's old name: the stem"
    );
    let r = lookup(LMS_GGUF, &src).unwrap();
    assert_eq!(r.name, HF_GGUF, "the LM Studio name finds the merged entry");
    // A path given directly gets the registry's name.
    assert_eq!(
        lookup(w.ollama_blob.to_str().unwrap(), &src).unwrap().name,
        "tiny:1b"
    );

    match lookup("tiny", &src) {
        Err(ResolveError::Ambiguous { matches, .. }) => {
            assert!(
                matches.contains("tiny-qwen3") && matches.contains("tiny:1b"),
                "{matches}"
            )
        }
        other => panic!("{other:?}"),
    }
    match lookup("tinyorg/nothing", &src) {
        Err(e @ ResolveError::NotFound { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(HF_GGUF) && msg.contains("Ollama"), "{msg}")
        }
        other => panic!("a name with a slash is a name, not a path: {other:?}"),
    }
}

#[test]
fn a_copy_in_a_folder_joins_the_ollama_model_and_a_same_size_other_does_not() {
    let w = world();
    let copy = w.s.folder_file("copy-of-tiny.gguf", &w.src("qwen2.gguf"));
    let other = gguf(&w.s.folder(), "other-seed.gguf", Arch::Qwen2, 8);
    assert_eq!(
        std::fs::metadata(&other).unwrap().len(),
        std::fs::metadata(&copy).unwrap().len()
    );
    let entries = scan(&w.s.sources());
    let e = by_name(&entries, "copy-of-tiny");
    assert_eq!(e.sources, [Source::Folder, Source::Ollama]);
    let aliases: Vec<&str> = e.aliases().collect();
    assert_eq!(aliases, ["copy-of-tiny", "tiny:1b", "someone/tiny:latest"]);
    assert_eq!(e.path, copy, "the configured folder's copy comes first");
    assert_eq!(
        lookup("tiny:1b", &w.s.sources()).unwrap().name,
        "copy-of-tiny"
    );
    let o = by_name(&entries, "other-seed");
    assert_eq!(o.sources, [Source::Folder]);
    assert!(o.sha256.is_some() && o.sha256 != e.sha256);
    assert!(!names(&entries).contains(&"tiny:1b"));
}

#[test]
fn stores_switched_off_are_left_out() {
    let w = world();
    let mut cfg = Config {
        models_dir: w.s.folder().display().to_string(),
        extra_model_dirs: vec![],
        ..Config::defaults()
    };
    cfg.registry.huggingface = false;
    cfg.registry.ollama = false;
    let entries = scan(&w.s.sources_with(cfg));
    // Without the HF cache the LM Studio copy stands alone, under its LM Studio name.
    assert_eq!(names(&entries), ["tiny-qwen3", LMS_GGUF]);
}

fn check_lines(r: &verify::Report) -> String {
    r.checks
        .iter()
        .map(|c| format!("{} {} {}: {}", c.ok, c.what, c.path.display(), c.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn verify_entry(e: &Entry) -> verify::Report {
    let mut cache = HashCache::open(None);
    verify::verify(
        &e.locations,
        e.sha256.as_deref(),
        &mut cache,
        &mut |_, _, _| {},
    )
}

#[test]
fn verify_passes_good_files_and_catches_truncated_and_damaged_ones() {
    let w = world();
    let entries = scan(&w.s.sources());
    for e in &entries {
        let r = verify_entry(e);
        assert!(r.passed(), "{}: {}", e.name, check_lines(&r));
    }
    let r = verify_entry(by_name(&entries, HF_GGUF));
    let sha = r.checks.iter().find(|c| c.what == "sha256").unwrap();
    assert!(
        sha.detail.contains("Hugging Face blob name"),
        "{}",
        sha.detail
    );
    // The safetensors snapshot: its header and its blob sum both checked.
    let r = verify_entry(by_name(&entries, "tinyorg/tiny-qwen2"));
    assert!(
        r.checks.iter().any(|c| c.what == "header") && r.checks.iter().any(|c| c.what == "sha256")
    );

    // A GGUF cut inside its tensor data: caught by the header, no sum needed.
    let cut = w.s.folder().join("cut.gguf");
    let keep = tiny::gguf_data_offset(&w.folder_gguf) + 100;
    tiny::write_truncated(&w.folder_gguf, &cut, keep);
    let entries = scan(&w.s.sources());
    let r = verify_entry(by_name(&entries, "cut"));
    assert!(!r.passed());
    let bad = r.checks.iter().find(|c| !c.ok).unwrap();
    assert_eq!(bad.what, "header");
    assert!(bad.detail.contains("truncated"), "{}", bad.detail);
    assert!(r.fixes[0].contains("cut.gguf"), "{:?}", r.fixes);

    // The HF blob's bytes changed, its length kept: the sum does not match its name.
    let blob = std::fs::canonicalize(&w.hf_link).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let r = verify_entry(by_name(&entries, HF_GGUF));
    assert!(!r.passed());
    let bad: Vec<_> = r.checks.iter().filter(|c| !c.ok).collect();
    assert_eq!(bad.len(), 1, "{}", check_lines(&r));
    assert_eq!(
        (bad[0].what, bad[0].path.as_path()),
        ("sha256", w.hf_link.as_path())
    );
    assert!(bad[0].detail.contains("damaged"), "{}", bad[0].detail);
    assert_eq!(
        r.fixes.len(),
        1,
        "the LM Studio copy is fine: {:?}",
        r.fixes
    );
    assert!(
        r.fixes[0].contains("lmwb models pull TinyOrg/Tiny-Llama-GGUF"),
        "{:?}",
        r.fixes
    );

    // The Ollama blob cut short: the manifest's size, the header and the digest all fail.
    let o = by_name(&entries, "tiny:1b");
    let data = std::fs::read(&w.ollama_blob).unwrap();
    std::fs::write(&w.ollama_blob, &data[..data.len() - 64]).unwrap();
    let r = verify_entry(o);
    let failed: Vec<&str> = r.checks.iter().filter(|c| !c.ok).map(|c| c.what).collect();
    assert_eq!(failed, ["size", "header", "sha256"], "{}", check_lines(&r));
    assert!(r.fixes[0].contains("ollama pull tiny:1b"), "{:?}", r.fixes);
}

#[test]
fn verify_catches_a_truncated_safetensors_file() {
    let w = world();
    let dir = w.s.folder().join("broken-hf");
    tiny::write_hf(&Spec::new(Arch::Llama), &dir, DType::F32);
    let st = dir.join("model.safetensors");
    let len = std::fs::metadata(&st).unwrap().len() as usize;
    let full = std::fs::read(&st).unwrap();
    std::fs::write(&st, &full[..len - 10]).unwrap();
    let entries = scan(&w.s.sources());
    let r = verify_entry(by_name(&entries, "broken-hf"));
    let bad = r.checks.iter().find(|c| !c.ok).expect("a failed check");
    assert_eq!(bad.what, "header");
    assert!(
        bad.detail.contains("truncated") && bad.detail.contains("10 missing"),
        "{}",
        bad.detail
    );
}
