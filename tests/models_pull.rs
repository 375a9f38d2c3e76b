//! `lmwb models pull` end to end against a fake hub on 127.0.0.1
//! (tests/common/fake_hub.rs) serving tiny models written by the test: the Hugging Face cache
//! layout, lmwb's download list, no second download, resume after a cut connection with a
//! Range request, 404s, a gated repo and HF_TOKEN, a broken body refused, offline mode.
//! Nothing is downloaded from the internet.

mod common;
#[path = "common/fake_hub.rs"]
mod fake_hub;
#[path = "common/pull_world.rs"]
mod pull_world;
#[path = "common/sandbox.rs"]
mod sandbox;

use common::tiny::{self, Arch, Spec};
use fake_hub::{Fault, HubFile, HubRepo};
use pull_world::*;
use std::path::PathBuf;

#[test]
fn pull_a_file_into_the_hf_cache_then_again_without_downloading() {
    let repo = gguf_repo();
    let (commit, file) = (repo.commit.clone(), repo.files[1].clone());
    let w = World::new(vec![repo]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    let r = ok(w.lmwb(&["models", "pull", &spec]));
    let (name, path) = name_and_path(&r);
    assert_eq!(name, spec);
    let dir = w.repo_dir(GGUF_REPO);
    assert_eq!(path, dir.join("snapshots").join(&commit).join(GGUF));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        file.bytes,
        "the bytes the hub served"
    );
    // HF cache layout: a relative symlink to the blob named by the sha256, refs/main.
    let link = std::fs::read_link(&path).expect("the snapshot file is a symlink");
    assert_eq!(
        link,
        PathBuf::from(format!("../../blobs/{}", file.sha256()))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        commit
    );
    assert_eq!(
        files_under(&dir),
        [
            format!("blobs/{}", file.sha256()),
            "refs/main".into(),
            format!("snapshots/{commit}/{GGUF}")
        ],
        "no .part or .lock left"
    );
    // lmwb's download list.
    let m = w.manifest_files();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["name"], spec.as_str());
    assert_eq!(m[0]["repo"], GGUF_REPO);
    assert_eq!(m[0]["revision"], "main");
    assert_eq!(m[0]["commit"], commit.as_str());
    assert_eq!(m[0]["file"], GGUF);
    assert_eq!(m[0]["size"], file.bytes.len());
    assert_eq!(m[0]["sha256"], file.sha256().as_str());
    assert_eq!(m[0]["snapshot"], path.to_str().unwrap());
    assert!(m[0]["downloaded_at"].as_str().unwrap().contains('T'));
    assert_eq!(w.hub.body_requests(&file.sha256()).len(), 1);
    // The printed name is what -m takes.
    let show = ok(w.lmwb(&["models", "show", &name]));
    assert!(
        show.stdout.contains("architecture:  llama"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains(path.to_str().unwrap()),
        "{}",
        show.stdout
    );
    // Again: nothing downloaded.
    let r = ok(w.lmwb(&["models", "pull", &spec]));
    assert!(r.stderr.contains("already downloaded"), "{}", r.stderr);
    assert_eq!(name_and_path(&r).1, path);
    assert_eq!(
        w.hub.body_requests(&file.sha256()).len(),
        1,
        "no second download"
    );
    assert_eq!(w.manifest_files().len(), 1);
}

#[test]
fn pull_a_repo_picks_q4_k_m_among_several_ggufs() {
    let gguf = tiny_gguf();
    let other = |b: u8| vec![b; 4096];
    let repo = HubRepo::new(
        "tiny/many-GGUF",
        vec![
            HubFile::lfs("tiny-F16.gguf", other(1)),
            HubFile::lfs("tiny-Q4_K_M.gguf", gguf.clone()),
            HubFile::lfs("tiny-Q8_0.gguf", other(2)),
            HubFile::git("README.md", b"hi".to_vec()),
        ],
    );
    let w = World::new(vec![repo]);
    let r = ok(w.lmwb(&["models", "pull", "tiny/many-GGUF"]));
    assert!(r.stderr.contains("picked tiny-Q4_K_M.gguf"), "{}", r.stderr);
    assert!(r.stderr.contains("tiny-F16.gguf") && r.stderr.contains("tiny-Q8_0.gguf"));
    let (name, path) = name_and_path(&r);
    assert_eq!(name, "tiny/many-GGUF:tiny-Q4_K_M.gguf");
    assert_eq!(std::fs::read(&path).unwrap(), gguf);
    let bodies: Vec<_> = w
        .hub
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/cdn/") && s.is_body())
        .collect();
    assert_eq!(bodies.len(), 1, "only the picked file comes: {bodies:?}");
    // A quantization tag picks that one.
    let r = ok(w.lmwb(&["models", "pull", "tiny/many-GGUF:Q8_0"]));
    assert_eq!(name_and_path(&r).0, "tiny/many-GGUF:tiny-Q8_0.gguf");
}

#[test]
fn pull_a_safetensors_repo_takes_config_tokenizer_and_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    tiny::write_hf(&Spec::new(Arch::Llama), &hf, candle_core::DType::F32);
    let mut files: Vec<HubFile> = std::fs::read_dir(&hf)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            let bytes = std::fs::read(&p).unwrap();
            if n.ends_with(".safetensors") || n == "tokenizer.json" {
                HubFile::lfs(&n, bytes)
            } else {
                HubFile::git(&n, bytes)
            }
        })
        .collect();
    let wanted: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    files.push(HubFile::git("README.md", b"readme".to_vec()));
    files.push(HubFile::lfs("onnx/model.onnx", vec![9; 100]));
    let repo = HubRepo::new("tiny/llama-hf", files);
    let commit = repo.commit.clone();
    let w = World::new(vec![repo]);
    let r = ok(w.lmwb(&["models", "pull", "tiny/llama-hf"]));
    let (name, path) = name_and_path(&r);
    assert_eq!(name, "tiny/llama-hf");
    let snap = w.repo_dir("tiny/llama-hf").join("snapshots").join(&commit);
    assert_eq!(path, snap);
    let mut got = files_under(&snap);
    let mut want = wanted.clone();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "config, tokenizer and weights; no README or onnx"
    );
    assert!(
        want.iter().any(|f| f == "config.json") && want.iter().any(|f| f == "model.safetensors")
    );
    assert_eq!(w.manifest_files().len(), want.len());
    let show = ok(w.lmwb(&["models", "show", "tiny/llama-hf"]));
    assert!(show.stdout.contains("llama"), "{}", show.stdout);
}

#[test]
fn a_cut_connection_resumes_with_a_range_request() {
    let repo = gguf_repo();
    let file = repo.files[1].clone();
    let w = World::new(vec![repo]);
    w.hub.set_fault(Fault::CutNext);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    failed(
        w.lmwb(&["models", "pull", &spec]),
        1,
        &["stopped at", "run the same `lmwb models pull` again"],
    );
    let part = w
        .repo_dir(GGUF_REPO)
        .join("blobs")
        .join(format!("{}.part", file.sha256()));
    let have = std::fs::metadata(&part).expect("a .part is left").len();
    assert!(have > 0 && (have as usize) < file.bytes.len(), "{have}");
    assert!(
        w.manifest_files().is_empty(),
        "nothing recorded for a partial file"
    );
    let r = ok(w.lmwb(&["models", "pull", &spec]));
    assert!(
        r.stderr.contains(&format!("resuming at {have} of")),
        "{}",
        r.stderr
    );
    let bodies = w.hub.body_requests(&file.sha256());
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(
        bodies[1].range.as_deref(),
        Some(format!("bytes={have}-").as_str()),
        "the second pull continues"
    );
    let (_, path) = name_and_path(&r);
    assert_eq!(std::fs::read(&path).unwrap(), file.bytes);
    assert!(!part.exists());
    assert_eq!(w.manifest_files()[0]["sha256"], file.sha256().as_str());
}

#[test]
fn unknown_repo_and_unknown_file_say_which() {
    let w = World::new(vec![gguf_repo()]);
    let r = failed(
        w.lmwb(&["models", "pull", "nobody/nothing"]),
        1,
        &["no repo named nobody/nothing on", &w.hub.url],
    );
    assert!(r.stdout.is_empty());
    failed(
        w.lmwb(&["models", "pull", &format!("{GGUF_REPO}:missing.gguf")]),
        1,
        &[
            "no file named missing.gguf in tiny/llama-GGUF",
            "its files: README.md, tiny-llama-F32.gguf",
        ],
    );
    failed(
        w.lmwb(&["models", "pull", "not a repo"]),
        2,
        &["is not a hub model", "ORG/NAME:FILE"],
    );
    assert!(!w.repo_dir(GGUF_REPO).join("snapshots").exists());
    assert!(w.manifest_files().is_empty());
}

#[test]
fn a_gated_repo_needs_hf_token() {
    let mut repo = gguf_repo();
    repo.token = Some("hf_letmein".into());
    let w = World::new(vec![repo]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    failed(
        w.lmwb(&["models", "pull", &spec]),
        1,
        &[
            "answered 401",
            "gated or private",
            "accept its licence",
            "set HF_TOKEN",
            "no token was sent",
        ],
    );
    failed(
        w.cmd(&["models", "pull", &spec], &[("HF_TOKEN", "hf_wrong")]),
        1,
        &["the token from HF_TOKEN was sent and refused"],
    );
    ok(w.cmd(&["models", "pull", &spec], &[("HF_TOKEN", "hf_letmein")]));
    assert!(w
        .hub
        .seen()
        .iter()
        .any(|s| s.auth.as_deref() == Some("Bearer hf_letmein")));
    // The token file under HF_HOME works too (a new cache, so it downloads again).
    let w2 = World::new(vec![{
        let mut r = gguf_repo();
        r.token = Some("hf_fromfile".into());
        r
    }]);
    std::fs::create_dir_all(w2.hf_home()).unwrap();
    std::fs::write(w2.hf_home().join("token"), "hf_fromfile\n").unwrap();
    ok(w2.lmwb(&["models", "pull", &spec]));
}

#[test]
fn a_wrong_or_truncated_body_is_refused_and_deleted() {
    let repo = gguf_repo();
    let file = repo.files[1].clone();
    let w = World::new(vec![repo]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    w.hub.set_fault(Fault::Corrupt);
    failed(
        w.lmwb(&["models", "pull", &spec]),
        1,
        &[
            "does not match",
            &format!("sha256 {}", file.sha256()),
            "lmwb deleted it",
        ],
    );
    let left = files_under(&w.repo_dir(GGUF_REPO));
    assert!(
        left.iter()
            .all(|f| !f.starts_with("blobs/") && !f.starts_with("snapshots/")),
        "{left:?}"
    );
    w.hub.set_fault(Fault::Truncate);
    failed(
        w.lmwb(&["models", "pull", &spec]),
        1,
        &[&format!(
            "announced {} bytes, lmwb got {}",
            file.bytes.len(),
            file.bytes.len() / 2
        )],
    );
    assert!(w.manifest_files().is_empty());
    // A small git file is checked against its git blob sha1.
    w.hub.set_fault(Fault::Corrupt);
    failed(
        w.lmwb(&["models", "pull", &format!("{GGUF_REPO}:README.md")]),
        1,
        &["git sha1"],
    );
    w.hub.set_fault(Fault::None);
    ok(w.lmwb(&["models", "pull", &format!("{GGUF_REPO}:README.md")]));
}

#[test]
fn offline_uses_the_cache_only() {
    let w = World::new(vec![gguf_repo()]);
    let spec = format!("{GGUF_REPO}:{GGUF}");
    failed(
        w.cmd(&["models", "pull", &spec], &[("HF_HUB_OFFLINE", "1")]),
        1,
        &["offline", "not in the cache"],
    );
    assert!(w.hub.seen().is_empty(), "no request offline");
    let (_, path) = name_and_path(&ok(w.lmwb(&["models", "pull", &spec])));
    let n = w.hub.seen().len();
    for r in [
        w.lmwb(&["models", "pull", "--offline", &spec]),
        w.cmd(&["models", "pull", GGUF_REPO], &[("HF_HUB_OFFLINE", "1")]),
    ] {
        let r = ok(r);
        assert!(
            r.stderr
                .contains("offline: tiny-llama-F32.gguf is in the cache"),
            "{}",
            r.stderr
        );
        assert_eq!(name_and_path(&r), (spec.clone(), path.clone()));
    }
    assert_eq!(w.hub.seen().len(), n, "no request offline");
}

#[test]
fn another_tools_file_of_another_size_is_left_alone() {
    let repo = gguf_repo();
    let commit = repo.commit.clone();
    let w = World::new(vec![repo]);
    let snap = w.repo_dir(GGUF_REPO).join("snapshots").join(&commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join(GGUF), b"half a file").unwrap();
    failed(
        w.lmwb(&["models", "pull", &format!("{GGUF_REPO}:{GGUF}")]),
        1,
        &[
            "already in the cache with 11 bytes",
            "move it away and pull again",
        ],
    );
    assert_eq!(std::fs::read(snap.join(GGUF)).unwrap(), b"half a file");
    assert!(w.manifest_files().is_empty());
}
