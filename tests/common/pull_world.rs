//! The world of the pull/rm tests: a sandboxed home (HF_HOME, lmwb's cache and config
//! inside it, no inherited HF_* or proxy variables), a fake hub, and helpers to run `lmwb`
//! there and read what it left.
//!
//! Include it after `mod common;`, `mod fake_hub;` and `mod sandbox;` with
//! `#[path = "common/pull_world.rs"] mod pull_world;`.
#![allow(dead_code)]

use crate::common::tiny::{self, Arch, Spec};
use crate::fake_hub::{FakeHub, HubFile, HubRepo};
use crate::sandbox::{self, Out};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const GGUF_REPO: &str = "tiny/llama-GGUF";
pub const GGUF: &str = "tiny-llama-F32.gguf";

/// The tiny llama as GGUF bytes.
pub fn tiny_gguf() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.gguf");
    tiny::write_gguf(&Spec::new(Arch::Llama), &p);
    std::fs::read(p).unwrap()
}

pub fn gguf_repo() -> HubRepo {
    HubRepo::new(
        GGUF_REPO,
        vec![
            HubFile::git("README.md", b"# tiny llama\n".to_vec()),
            HubFile::lfs(GGUF, tiny_gguf()),
        ],
    )
}

/// A sandboxed home (HF_HOME, lmwb's cache and config inside it) and a fake hub.
pub struct World {
    pub dir: tempfile::TempDir,
    pub hub: FakeHub,
}

impl World {
    pub fn new(repos: Vec<HubRepo>) -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        World {
            dir,
            hub: FakeHub::start(repos),
        }
    }

    pub fn hf_home(&self) -> PathBuf {
        self.dir.path().join("hf")
    }

    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.hf_home()
            .join("hub")
            .join(format!("models--{}", repo.replace('/', "--")))
    }

    pub fn manifest(&self) -> Value {
        let p = self.dir.path().join("cache/lmwb/downloads.json");
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t).unwrap(),
            Err(_) => serde_json::json!({"files": []}),
        }
    }

    pub fn manifest_files(&self) -> Vec<Value> {
        self.manifest()["files"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = sandbox::assert_command(self.dir.path(), &self.dir.path().join("models"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if k.starts_with("HF_")
                || k.starts_with("HUGGING")
                || k.to_ascii_lowercase().ends_with("_proxy")
            {
                c.env_remove(k);
            }
        }
        c.env("HF_HOME", self.hf_home())
            .env("HF_ENDPOINT", &self.hub.url)
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        sandbox::output(&mut c)
    }

    pub fn lmwb(&self, args: &[&str]) -> Out {
        self.cmd(args, &[])
    }
}

pub fn ok(r: Out) -> Out {
    assert_eq!(
        r.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    r
}

pub fn failed(r: Out, code: i32, needles: &[&str]) -> Out {
    assert_eq!(
        r.code,
        Some(code),
        "stdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}: {}", r.stderr);
    }
    r
}

/// The last stdout line: NAME \t PATH.
pub fn name_and_path(r: &Out) -> (String, PathBuf) {
    let last = r.stdout.lines().last().expect("a stdout line");
    let (n, p) = last.split_once('\t').expect("NAME\\tPATH");
    (n.to_string(), PathBuf::from(p))
}

pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    pub fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
