//! The Hugging Face hub as `lmwb models pull` talks to it: settings from the environment,
//! the repo listing, a file's metadata and its download (hf-hub's sync API, which resumes a
//! `.part` file with a Range request), with every failure turned into a [`PullError`] that
//! says what to do.

use super::hf_cache::{hf_home, hub_cache_dir, RepoId};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the hub is and how lmwb talks to it, from `HF_*` variables.
#[derive(Clone)]
pub struct HubEnv {
    /// `HF_ENDPOINT` (a mirror, or the tests' fake hub), no trailing `/`.
    pub endpoint: String,
    /// The Hugging Face cache folder (see [`hub_cache_dir`]).
    pub cache: PathBuf,
    /// `HF_TOKEN`, else the token file `$HF_HOME/token`.
    pub token: Option<String>,
    /// Where the token came from (for messages; never the token itself).
    pub token_source: Option<String>,
    /// `HF_HUB_OFFLINE=1`: use the cache only.
    pub offline: bool,
}

impl std::fmt::Debug for HubEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubEnv")
            .field("endpoint", &self.endpoint)
            .field("cache", &self.cache)
            .field("token_source", &self.token_source)
            .field("offline", &self.offline)
            .finish()
    }
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl HubEnv {
    /// From the process environment.
    pub fn from_env() -> HubEnv {
        Self::from_vars(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// From variables read through `var` (tests pass their own).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> HubEnv {
        let endpoint = var("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let (token, token_source) = match var("HF_TOKEN")
            .map(|t| ("HF_TOKEN", t))
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN").map(|t| ("HUGGING_FACE_HUB_TOKEN", t)))
        {
            Some((name, t)) => (Some(t.trim().to_string()), Some(name.to_string())),
            None => {
                let path = var("HF_TOKEN_PATH")
                    .map(|p| crate::config::expand_home(&p))
                    .unwrap_or_else(|| hf_home(var).join("token"));
                match std::fs::read_to_string(&path) {
                    Ok(t) if !t.trim().is_empty() => {
                        (Some(t.trim().to_string()), Some(path.display().to_string()))
                    }
                    _ => (None, None),
                }
            }
        };
        HubEnv {
            endpoint,
            // Absolute: the snapshot links and lmwb's download list hold paths into it.
            cache: std::path::absolute(hub_cache_dir(var)).unwrap_or_else(|_| hub_cache_dir(var)),
            token,
            token_source,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
        }
    }
}

/// Why a pull failed; each message says what to do.
#[derive(thiserror::Error, Debug)]
pub enum PullError {
    #[error("`{0}` is not a hub model: give ORG/NAME or ORG/NAME:FILE (e.g. bartowski/SmolLM2-135M-Instruct-GGUF:SmolLM2-135M-Instruct-Q4_K_M.gguf)")]
    BadSpec(String),
    #[error("`{0}` is not a revision lmwb can use: give a branch, tag or commit (e.g. main, v1.0, a commit hash)")]
    BadRevision(String),
    #[error("no repo named {repo} on {endpoint}: check the name on the hub (or HF_ENDPOINT if you use a mirror)")]
    RepoNotFound { repo: String, endpoint: String },
    #[error(
        "no file named {file} in {repo} (revision {revision}) on {endpoint}; its files: {files}"
    )]
    FileNotFound {
        repo: String,
        file: String,
        revision: String,
        endpoint: String,
        files: String,
    },
    #[error("{endpoint} answered {status} for {repo}: the repo is gated or private (or does not exist); accept its licence on {endpoint}/{repo} and set HF_TOKEN to a token with access (https://huggingface.co/settings/tokens){token_note}")]
    Gated {
        repo: String,
        endpoint: String,
        status: u16,
        token_note: String,
    },
    #[error("cannot reach {endpoint} ({why}); check the connection, or HF_ENDPOINT for a mirror; HF_HUB_OFFLINE=1 (or --offline) uses the files already in the cache")]
    Network { endpoint: String, why: String },
    #[error("{endpoint} answered {status} for {what}; try again later")]
    Status {
        endpoint: String,
        status: u16,
        what: String,
    },
    #[error("{endpoint} gave an answer lmwb cannot use for {what} ({why}); is HF_ENDPOINT a Hugging Face hub?")]
    BadAnswer {
        endpoint: String,
        what: String,
        why: String,
    },
    #[error("the download of {file} stopped at {have} of {total} bytes ({why}); run the same `lmwb models pull` again to resume from there (the partial file is {part})")]
    Interrupted {
        file: String,
        have: u64,
        total: u64,
        why: String,
        part: PathBuf,
    },
    #[error("{file} from {endpoint} does not match what the hub announced: {what}; lmwb deleted it. Pull it again; if this repeats, the hub or mirror serves a broken file")]
    Mismatch {
        file: String,
        endpoint: String,
        what: String,
    },
    #[error("another download of {file} is running (lock {lock}); wait for it to finish")]
    Busy { file: String, lock: PathBuf },
    #[error("offline (HF_HUB_OFFLINE or --offline) and {what} is not in the cache {cache}: pull it once with the network on")]
    NotCached { what: String, cache: PathBuf },
    #[error("{repo} has no .gguf or .safetensors model files lmwb can pick; pull one with {repo}:FILE; its files: {files}")]
    NoModelFiles { repo: String, files: String },
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error(transparent)]
    Manifest(#[from] super::downloaded::ManifestError),
}

impl PullError {
    pub fn io(path: &std::path::Path, e: impl std::fmt::Display) -> PullError {
        PullError::Io {
            path: path.to_path_buf(),
            why: e.to_string(),
        }
    }
}

/// One file of a repo as the listing gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteFile {
    pub path: String,
    pub size: Option<u64>,
}

/// A repo at one revision: its commit and files.
#[derive(Clone, Debug)]
pub struct Listing {
    pub commit: String,
    pub files: Vec<RemoteFile>,
}

impl Listing {
    pub fn names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

/// The files of a listing for a message, at most 40.
pub fn file_list(names: &[String]) -> String {
    if names.is_empty() {
        return "(none)".into();
    }
    let mut s = names
        .iter()
        .take(40)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 40 {
        s.push_str(&format!(" and {} more", names.len() - 40));
    }
    s
}

#[derive(Deserialize)]
struct ApiListing {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<ApiSibling>,
}

#[derive(Deserialize)]
struct ApiSibling {
    rfilename: String,
    size: Option<u64>,
    lfs: Option<ApiLfs>,
}

#[derive(Deserialize)]
struct ApiLfs {
    size: Option<u64>,
}

/// What the hub says about one file before it is downloaded.
#[derive(Clone, Debug)]
pub struct FileMeta {
    pub commit: String,
    /// The LFS sha256 (64 hex digits) or, for a small file kept in git, its git blob sha1.
    pub etag: String,
    pub size: u64,
}

/// The hub client: hf-hub's sync API plus lmwb's error messages.
pub struct Hub {
    api: Api,
    pub env: HubEnv,
}

impl Hub {
    pub fn new(env: HubEnv) -> Result<Hub, PullError> {
        let api = ApiBuilder::from_cache(Cache::new(env.cache.clone()))
            .with_endpoint(env.endpoint.clone())
            .with_token(env.token.clone())
            .with_progress(false)
            .with_retries(0)
            .with_user_agent("lmwb", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| PullError::Network {
                endpoint: env.endpoint.clone(),
                why: e.to_string(),
            })?;
        Ok(Hub { api, env })
    }

    fn repo(&self, repo: &RepoId, revision: &str) -> Repo {
        Repo::with_revision(repo.to_string(), RepoType::Model, revision.into())
    }

    fn gated(&self, repo: &RepoId, status: u16) -> PullError {
        PullError::Gated {
            repo: repo.to_string(),
            endpoint: self.env.endpoint.clone(),
            status,
            token_note: match &self.env.token_source {
                Some(src) => format!(
                    "; the token from {src} was sent and refused, so it lacks access to this repo"
                ),
                None => {
                    "; no token was sent (HF_TOKEN is not set and there is no token file)".into()
                }
            },
        }
    }

    /// `GET /api/models/{repo}/revision/{revision}?blobs=true`: the commit and the files.
    pub fn list(&self, repo: &RepoId, revision: &str) -> Result<Listing, PullError> {
        let endpoint = &self.env.endpoint;
        let what = format!("the file list of {repo}");
        let call = self
            .api
            .repo(self.repo(repo, revision))
            .info_request()
            .query("blobs", "true")
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .call();
        let mut resp = call.map_err(|e| self.request_error(repo, &what, e))?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => return Err(self.gated(repo, resp.status().as_u16())),
            404 => {
                return Err(PullError::RepoNotFound {
                    repo: repo.to_string(),
                    endpoint: endpoint.clone(),
                })
            }
            status => {
                return Err(PullError::Status {
                    endpoint: endpoint.clone(),
                    status,
                    what,
                })
            }
        }
        let bad = |why: String| PullError::BadAnswer {
            endpoint: endpoint.clone(),
            what: what.clone(),
            why,
        };
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| bad(e.to_string()))?;
        let listing: ApiListing = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut files: Vec<RemoteFile> = listing
            .siblings
            .into_iter()
            .map(|s| RemoteFile {
                size: s.lfs.and_then(|l| l.size).or(s.size),
                path: s.rfilename,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Listing {
            commit: listing.sha.unwrap_or_default(),
            files,
        })
    }

    /// The commit, etag and size the hub gives for `file` (a Range request for one byte).
    /// A 404 is told apart: no such repo, or no such file (with the repo's files).
    pub fn metadata(
        &self,
        repo: &RepoId,
        revision: &str,
        file: &str,
    ) -> Result<FileMeta, PullError> {
        let api_repo = self.api.repo(self.repo(repo, revision));
        let url = api_repo.url(file);
        let what = format!("{repo}:{file}");
        let meta = guarded(&self.env.endpoint, &what, || self.api.metadata(&url))?;
        match meta {
            Ok(m) => Ok(FileMeta {
                commit: m.commit_hash().to_string(),
                etag: m.etag().to_string(),
                size: m.size() as u64,
            }),
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::StatusCode(404)) => {
                let listing = self.list(repo, revision)?;
                Err(PullError::FileNotFound {
                    repo: repo.to_string(),
                    file: file.into(),
                    revision: revision.into(),
                    endpoint: self.env.endpoint.clone(),
                    files: file_list(&listing.names()),
                })
            }
            Err(e) => Err(self.api_error(repo, &what, e)),
        }
    }

    /// Download `file` into the cache (resuming its `.part`); returns the snapshot path.
    /// The raw hf-hub error comes back so the caller can tell an interruption apart.
    pub fn download<P: hf_hub::api::Progress>(
        &self,
        repo: &RepoId,
        revision: &str,
        file: &str,
        progress: P,
    ) -> Result<Result<PathBuf, ApiError>, PullError> {
        let api_repo = self.api.repo(self.repo(repo, revision));
        guarded(&self.env.endpoint, &format!("{repo}:{file}"), || {
            api_repo.download_with_progress(file, progress)
        })
    }

    fn request_error(&self, repo: &RepoId, what: &str, e: ureq::Error) -> PullError {
        match e {
            ureq::Error::StatusCode(s @ (401 | 403)) => self.gated(repo, s),
            ureq::Error::StatusCode(404) => PullError::RepoNotFound {
                repo: repo.to_string(),
                endpoint: self.env.endpoint.clone(),
            },
            ureq::Error::StatusCode(status) => PullError::Status {
                endpoint: self.env.endpoint.clone(),
                status,
                what: what.into(),
            },
            ureq::Error::Protocol(p) => PullError::BadAnswer {
                endpoint: self.env.endpoint.clone(),
                what: what.into(),
                why: p.to_string(),
            },
            other => PullError::Network {
                endpoint: self.env.endpoint.clone(),
                why: other.to_string(),
            },
        }
    }

    /// An hf-hub error as a [`PullError`] (`what` names the file or listing).
    pub fn api_error(&self, repo: &RepoId, what: &str, e: ApiError) -> PullError {
        let bad = |why: String| PullError::BadAnswer {
            endpoint: self.env.endpoint.clone(),
            what: what.into(),
            why,
        };
        match e {
            ApiError::RequestError(e) => self.request_error(repo, what, *e),
            ApiError::TooManyRetries(inner) => self.api_error(repo, what, *inner),
            ApiError::MissingHeader(h) => bad(format!("no {h} header")),
            ApiError::InvalidHeader(h) => bad(format!("a {h} header it cannot read")),
            ApiError::ParseIntError(e) => bad(format!("a size it cannot read: {e}")),
            ApiError::IoError(e) => PullError::Io {
                path: self.env.cache.clone(),
                why: e.to_string(),
            },
            ApiError::InvalidResume => bad("a partial download longer than the file".into()),
            ApiError::LockAcquisition(lock) => PullError::Busy {
                file: what.into(),
                lock,
            },
        }
    }
}

/// Run an hf-hub call, turning a panic inside it (it `expect`s some headers) into an error.
fn guarded<T>(endpoint: &str, what: &str, f: impl FnOnce() -> T) -> Result<T, PullError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "hf-hub stopped".into());
        PullError::BadAnswer {
            endpoint: endpoint.into(),
            what: what.into(),
            why,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> HubEnv {
        HubEnv::from_vars(&move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn settings_from_the_environment() {
        let e = env(&[("HF_HOME", "/nonexistent-lmwb-test")]);
        assert_eq!(e.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(e.cache, PathBuf::from("/nonexistent-lmwb-test/hub"));
        assert!(e.token.is_none() && !e.offline);
        let e = env(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_TOKEN", "hf_x"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HOME", "/nonexistent-lmwb-test"),
        ]);
        assert_eq!(e.endpoint, "http://127.0.0.1:9");
        assert_eq!(e.token.as_deref(), Some("hf_x"));
        assert_eq!(e.token_source.as_deref(), Some("HF_TOKEN"));
        assert!(e.offline);
        assert!(
            !format!("{e:?}").contains("hf_x"),
            "Debug never shows the token"
        );
    }

    #[test]
    fn token_file_under_hf_home() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("token"), "hf_file\n").unwrap();
        let home = tmp.path().to_string_lossy().to_string();
        let e = HubEnv::from_vars(&|k| (k == "HF_HOME").then(|| home.clone()));
        assert_eq!(e.token.as_deref(), Some("hf_file"));
    }
}
