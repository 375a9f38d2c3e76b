//! Model stores laid out as the tools that own them lay them out, in a temp folder: a
//! configured folder, the Hugging Face hub cache (blobs named by sha256, refs/main, snapshot
//! symlinks), LM Studio's models folder and Ollama's store (manifests + blobs). Tests put tiny
//! models (tests/common/tiny.rs) in them and point lmwb at them through HOME, HF_HOME and
//! OLLAMA_MODELS, as a user's machine would.

use lmwb::config::Config;
use lmwb::models::Sources;
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A temp folder holding every store, empty until a test fills them.
pub struct Stores {
    pub tmp: tempfile::TempDir,
}

impl Stores {
    pub fn new() -> Stores {
        let s = Stores {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(s.home()).unwrap();
        std::fs::create_dir_all(s.folder()).unwrap();
        s
    }

    /// The sandbox root (tests/common/sandbox.rs puts HOME at `root/home`).
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    /// The configured models folder (`models_dir`).
    pub fn folder(&self) -> PathBuf {
        self.root().join("models")
    }
    pub fn hf_home(&self) -> PathBuf {
        self.root().join("hf")
    }
    pub fn hub(&self) -> PathBuf {
        self.hf_home().join("hub")
    }
    pub fn lmstudio(&self) -> PathBuf {
        self.home().join(".lmstudio").join("models")
    }
    pub fn ollama(&self) -> PathBuf {
        self.root().join("ollama")
    }
    /// Where lmwb keeps computed sums (XDG_CACHE_HOME is `root/cache` in the sandbox).
    pub fn hash_cache(&self) -> PathBuf {
        self.root().join("cache").join("lmwb").join("sha256.tsv")
    }

    /// The environment that points lmwb at these stores.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.home()),
            ("XDG_CACHE_HOME", self.root().join("cache")),
            ("HF_HOME", self.hf_home()),
            ("OLLAMA_MODELS", self.ollama()),
        ]
    }

    /// The registry's sources as `lmwb` would build them with [`Stores::env`].
    pub fn sources(&self) -> Sources {
        self.sources_with(Config {
            models_dir: self.folder().display().to_string(),
            extra_model_dirs: vec![],
            ..Config::defaults()
        })
    }

    pub fn sources_with(&self, cfg: Config) -> Sources {
        let env = self.env();
        Sources::from_env(&cfg, |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        })
    }

    /// `src` copied to `rel` under the configured folder.
    pub fn folder_file(&self, rel: &str, src: &Path) -> PathBuf {
        copy_to(src, &self.folder().join(rel))
    }

    /// `src` copied to `rel` (`publisher/repo/file.gguf`) under LM Studio's folder.
    pub fn lmstudio_file(&self, rel: &str, src: &Path) -> PathBuf {
        copy_to(src, &self.lmstudio().join(rel))
    }

    /// A snapshot of `repo` (`Org/Name`) at `commit` holding `files` (name in the snapshot,
    /// source file): each file stored once as a blob named by its sha256 (LFS) — or, for
    /// small text files, a 40-hex git-style name — and linked from the snapshot as the hub
    /// client does (`../../blobs/<name>`). With `main`, refs/main names this commit.
    pub fn hf_snapshot(
        &self,
        repo: &str,
        commit: &str,
        files: &[(&str, &Path)],
        main: bool,
    ) -> PathBuf {
        let repo_dir = self
            .hub()
            .join(format!("models--{}", repo.replace('/', "--")));
        let snap = repo_dir.join("snapshots").join(commit);
        std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
        std::fs::create_dir_all(&snap).unwrap();
        for (name, src) in files {
            let lfs = name.ends_with(".gguf") || name.ends_with(".safetensors");
            let sha = sha256_hex(src);
            let blob_name = if lfs { sha } else { sha[..40].to_string() };
            let blob = repo_dir.join("blobs").join(&blob_name);
            std::fs::copy(src, &blob).unwrap();
            let link = snap.join(name);
            let up = "../".repeat(name.matches('/').count() + 2);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(Path::new(&format!("{up}blobs/{blob_name}")), &link);
        }
        if main {
            std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
            std::fs::write(repo_dir.join("refs").join("main"), commit).unwrap();
        }
        snap
    }

    /// An Ollama model `name` (`host/namespace/model`) at `tag` whose model layer is the GGUF
    /// `src`, with a template and a params layer beside it. Returns the model blob.
    pub fn ollama_model(&self, name: &str, tag: &str, src: &Path) -> PathBuf {
        let blobs = self.ollama().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| -> (String, u64) {
            let sha: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            std::fs::write(blobs.join(format!("sha256-{sha}")), bytes).unwrap();
            (sha, bytes.len() as u64)
        };
        let (model_sha, model_size) = put(&std::fs::read(src).unwrap());
        let (tpl_sha, tpl_size) = put(b"{{ .Prompt }}");
        let (cfg_sha, cfg_size) = put(b"{\"model_format\":\"gguf\"}");
        let (par_sha, par_size) = put(b"{\"stop\":[\"<|im_end|>\"]}");
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": format!("sha256:{cfg_sha}"), "size": cfg_size},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.model",
                 "digest": format!("sha256:{model_sha}"), "size": model_size},
                {"mediaType": "application/vnd.ollama.image.template",
                 "digest": format!("sha256:{tpl_sha}"), "size": tpl_size},
                {"mediaType": "application/vnd.ollama.image.params",
                 "digest": format!("sha256:{par_sha}"), "size": par_size},
            ]
        });
        let dir = self.ollama().join("manifests").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(tag), serde_json::to_string(&manifest).unwrap()).unwrap();
        blobs.join(format!("sha256-{model_sha}"))
    }
}

fn copy_to(src: &Path, dst: &Path) -> PathBuf {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if src.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    } else {
        std::fs::copy(src, dst).unwrap();
    }
    dst.to_path_buf()
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) {
    // No symlinks: the hub client copies the blob into the snapshot instead.
    std::fs::copy(link.parent().unwrap().join(target), link).unwrap();
}
