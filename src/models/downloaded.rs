//! What lmwb downloaded: a small manifest (`~/.cache/lmwb/downloads.json`, written atomically
//! under a lock) of the files `lmwb models pull` put in the Hugging Face cache, so that
//! `lmwb models rm` removes those and nothing another tool put there.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One file lmwb downloaded (or linked into a snapshot) in the Hugging Face cache.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Download {
    /// The model name `pull` printed (`ORG/NAME:FILE`, or `ORG/NAME` for a safetensors model).
    pub name: String,
    pub repo: String,
    pub revision: String,
    pub commit: String,
    /// The file's path in the repo.
    pub file: String,
    /// `…/models--ORG--NAME/blobs/<etag>`.
    pub blob: PathBuf,
    /// `…/snapshots/<commit>/<file>` (a symlink to the blob).
    pub snapshot: PathBuf,
    /// What `-m NAME` loads: the GGUF file, or the snapshot folder of a safetensors model.
    pub model_path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Whether lmwb wrote the blob (false: it was already there and lmwb only linked it).
    pub blob_created: bool,
    /// RFC 3339, UTC.
    pub downloaded_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default = "version")]
    pub version: u32,
    #[serde(default)]
    pub files: Vec<Download>,
}

fn version() -> u32 {
    1
}

#[derive(thiserror::Error, Debug)]
pub enum ManifestError {
    #[error("cannot {action} lmwb's download list {path}: {why}")]
    Io {
        action: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("lmwb's download list {path} is damaged ({why}); move it away and lmwb starts a new one (then `lmwb models rm` no longer knows the older downloads)")]
    Damaged { path: PathBuf, why: String },
}

/// The manifest's default place: `<cache dir>/lmwb/downloads.json` (`~/.cache/lmwb/` on Linux).
pub fn default_path() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("lmwb")
        .join("downloads.json")
}

/// The manifest file, opened for reading or for a locked read-modify-write.
pub struct ManifestFile {
    pub path: PathBuf,
}

impl ManifestFile {
    pub fn new(path: PathBuf) -> ManifestFile {
        ManifestFile { path }
    }

    pub fn at_default() -> ManifestFile {
        ManifestFile::new(default_path())
    }

    /// The manifest as it is now (empty when there is none yet).
    pub fn load(&self) -> Result<Manifest, ManifestError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => {
                return Err(ManifestError::Io {
                    action: "read",
                    path: self.path.clone(),
                    why: e.to_string(),
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| ManifestError::Damaged {
            path: self.path.clone(),
            why: e.to_string(),
        })
    }

    /// Change the manifest under an exclusive lock (two pulls at once lose nothing) and
    /// write it atomically (temp file + rename).
    pub fn update<T>(&self, f: impl FnOnce(&mut Manifest) -> T) -> Result<T, ManifestError> {
        let io = |action: &'static str, e: std::io::Error| ManifestError::Io {
            action,
            path: self.path.clone(),
            why: e.to_string(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))
            .map_err(|e| io("lock", e))?;
        lock.lock().map_err(|e| io("lock", e))?;
        let mut m = self.load()?;
        let out = f(&mut m);
        let text = serde_json::to_string_pretty(&m).map_err(|e| ManifestError::Damaged {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io("write", e))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| io("write", e))?;
        tmp.persist(&self.path).map_err(|e| io("write", e.error))?;
        let _ = lock.unlock();
        Ok(out)
    }

    /// Add `d`, replacing an entry for the same snapshot file.
    pub fn record(&self, d: Download) -> Result<(), ManifestError> {
        self.update(|m| {
            m.files.retain(|x| x.snapshot != d.snapshot);
            m.files.push(d);
        })
    }
}

impl Manifest {
    /// The entries `name` stands for: the name `pull` printed, `REPO:FILE`, or `REPO` (every
    /// file lmwb downloaded from that repo). Exact match first, then ignoring case.
    pub fn matching(&self, name: &str) -> Vec<&Download> {
        let hit = |d: &Download, eq: &dyn Fn(&str, &str) -> bool| {
            eq(&d.name, name) || eq(&format!("{}:{}", d.repo, d.file), name) || eq(&d.repo, name)
        };
        let exact: Vec<&Download> = self
            .files
            .iter()
            .filter(|d| hit(d, &|a, b| a == b))
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        self.files
            .iter()
            .filter(|d| hit(d, &|a, b| a.eq_ignore_ascii_case(b)))
            .collect()
    }

    /// The entry for a snapshot file.
    pub fn by_snapshot(&self, snapshot: &Path) -> Option<&Download> {
        self.files.iter().find(|d| d.snapshot == snapshot)
    }
}

/// The time now as RFC 3339 (UTC).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, repo: &str, file: &str) -> Download {
        Download {
            name: name.into(),
            repo: repo.into(),
            revision: "main".into(),
            commit: "c".into(),
            file: file.into(),
            blob: PathBuf::from(format!("/b/{file}")),
            snapshot: PathBuf::from(format!("/s/{repo}/{file}")),
            model_path: PathBuf::from(format!("/s/{repo}/{file}")),
            size: 1,
            sha256: "x".into(),
            blob_created: true,
            downloaded_at: now(),
        }
    }

    #[test]
    fn record_load_and_match() {
        let tmp = tempfile::tempdir().unwrap();
        let mf = ManifestFile::new(tmp.path().join("lmwb").join("downloads.json"));
        assert!(mf.load().unwrap().files.is_empty());
        mf.record(entry("o/a:a.gguf", "o/a", "a.gguf")).unwrap();
        mf.record(entry("o/b", "o/b", "config.json")).unwrap();
        mf.record(entry("o/b", "o/b", "model.safetensors")).unwrap();
        mf.record(entry("o/a:a.gguf", "o/a", "a.gguf")).unwrap();
        let m = mf.load().unwrap();
        assert_eq!(m.files.len(), 3, "the same snapshot file is recorded once");
        assert_eq!(m.matching("o/a:a.gguf").len(), 1);
        assert_eq!(m.matching("O/A:A.GGUF").len(), 1);
        assert_eq!(m.matching("o/b").len(), 2);
        assert_eq!(m.matching("o/b:config.json").len(), 1);
        assert!(m.matching("o/c").is_empty());
        let left: Vec<String> = std::fs::read_dir(mf.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(
            left.iter().all(|n| n.starts_with("downloads.")),
            "no temp files left: {left:?}"
        );
    }

    #[test]
    fn a_damaged_manifest_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let mf = ManifestFile::new(tmp.path().join("downloads.json"));
        std::fs::write(&mf.path, "{not json").unwrap();
        let e = mf.load().unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("move it away"), "{e}");
    }
}
