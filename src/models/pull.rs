//! `lmwb models pull REPO[:FILE]`: download into the Hugging Face cache (resuming a `.part`
//! left by a cut connection or Ctrl-C), check size and hash against what the hub announced,
//! and record the files in lmwb's download list. Offline, only look in the cache.

use super::downloaded::{self, Download, ManifestFile};
use super::hf_cache::{safe_component, safe_repo_file, CacheRepo, RepoId};
use super::hub::{file_list, FileMeta, Hub, HubEnv, PullError};
use super::pick::{choose, quant_of, Choice};
use hf_hub::api::sync::ApiError;
use sha2::Digest;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What to pull.
#[derive(Clone, Debug)]
pub struct PullRequest {
    /// `REPO`, `REPO:FILE` or `REPO:QUANT` (e.g. `org/model-GGUF:Q8_0`).
    pub spec: String,
    pub revision: String,
    /// `--offline` (HF_HUB_OFFLINE also turns it on).
    pub offline: bool,
}

/// Where the download stands, for a progress bar or plain lines.
pub trait PullProgress {
    /// A line worth telling the user (which file was picked, a resume).
    fn note(&mut self, line: &str);
    /// `file` starts (or restarts) with `total` bytes to reach.
    fn start(&mut self, file: &str, total: u64);
    fn advance(&mut self, bytes: u64);
    fn finish(&mut self);
}

/// How a file came to be on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum FileStatus {
    /// Downloaded now (`resumed_from` > 0: continued a partial download).
    Downloaded { resumed_from: u64 },
    /// lmwb downloaded it before; nothing was transferred.
    AlreadyPulled,
    /// Another tool put it in the cache; lmwb leaves it to that tool (rm will not touch it).
    InCache,
    /// Its content was already in the cache (another revision); lmwb only linked it.
    Linked,
    /// Offline: found in the cache.
    Offline,
}

#[derive(Clone, Debug)]
pub struct PulledFile {
    pub file: String,
    pub path: PathBuf,
    pub size: u64,
    pub status: FileStatus,
}

#[derive(Clone, Debug)]
pub struct PullOutcome {
    /// What `-m` and `lmwb models rm` take.
    pub name: String,
    /// The GGUF file, or the snapshot folder of a safetensors model.
    pub model_path: PathBuf,
    pub files: Vec<PulledFile>,
}

/// `REPO[:FILE]` → repo and file (a file without `.` or `/` is a quantization tag).
pub fn parse_spec(spec: &str) -> Result<(RepoId, Option<String>), PullError> {
    let (repo, file) = match spec.split_once(':') {
        Some((r, f)) => (r, Some(f.to_string())),
        None => (spec, None),
    };
    let repo = RepoId::parse(repo.trim()).ok_or_else(|| PullError::BadSpec(spec.into()))?;
    if let Some(f) = &file {
        if !safe_repo_file(f) {
            return Err(PullError::BadSpec(spec.into()));
        }
    }
    Ok((repo, file))
}

pub(super) fn is_quant_tag(file: &str) -> bool {
    !file.contains('.') && !file.contains('/')
}

/// What the pulled files make: one file, or a safetensors folder.
pub(super) enum Target {
    File(String),
    Folder,
}

impl Target {
    pub(super) fn model_path(&self, repo: &CacheRepo, commit: &str) -> PathBuf {
        match self {
            Target::File(f) => repo.snapshot(commit).join(f),
            Target::Folder => repo.snapshot(commit),
        }
    }
}

/// Pull (or, offline, find) what `req` names. `manifest` is lmwb's download list.
pub fn pull(
    req: &PullRequest,
    env: HubEnv,
    manifest: &ManifestFile,
    progress: &mut dyn PullProgress,
) -> Result<PullOutcome, PullError> {
    let (repo, file) = parse_spec(&req.spec)?;
    if !safe_repo_file(&req.revision) {
        return Err(PullError::BadRevision(req.revision.clone()));
    }
    if req.offline || env.offline {
        return super::offline::pull(&repo, file.as_deref(), &req.revision, &env);
    }
    let hub = Hub::new(env)?;
    let rev = req.revision.as_str();
    let (name, files, target) = match file {
        Some(f) if is_quant_tag(&f) => {
            let listing = hub.list(&repo, rev)?;
            let names = listing.names();
            let ggufs: Vec<String> = names
                .iter()
                .filter(|n| n.to_ascii_lowercase().ends_with(".gguf"))
                .filter(|n| quant_of(n).is_some_and(|q| q.eq_ignore_ascii_case(&f)))
                .cloned()
                .collect();
            match choose(&ggufs) {
                Some(Choice::Gguf { files, .. }) => {
                    let c = Choice::Gguf {
                        files,
                        why: format!("the {f} GGUF"),
                        others: Vec::new(),
                    };
                    from_choice(&repo, c, progress)
                }
                Some(c) => from_choice(&repo, c, progress),
                None => {
                    return Err(PullError::FileNotFound {
                        repo: repo.to_string(),
                        file: format!("a {f} GGUF"),
                        revision: rev.into(),
                        endpoint: hub.env.endpoint.clone(),
                        files: file_list(&names),
                    })
                }
            }
        }
        Some(f) => (format!("{repo}:{f}"), vec![f.clone()], Target::File(f)),
        None => {
            let listing = hub.list(&repo, rev)?;
            let names = listing.names();
            let c = choose(&names).ok_or_else(|| PullError::NoModelFiles {
                repo: repo.to_string(),
                files: file_list(&names),
            })?;
            from_choice(&repo, c, progress)
        }
    };
    let cache_repo = CacheRepo::new(&hub.env.cache, &repo);
    let mut out = Vec::new();
    let mut commit = String::new();
    for f in &files {
        let meta = hub.metadata(&repo, rev, f)?;
        check_names(&hub, f, &meta)?;
        let model_path = target.model_path(&cache_repo, &meta.commit);
        let one = OneFile {
            hub: &hub,
            repo: &repo,
            cache: &cache_repo,
            revision: rev,
            file: f,
            name: &name,
            meta: &meta,
            model_path,
        };
        out.push(one.pull(manifest, progress)?);
        commit = meta.commit.clone();
    }
    Ok(PullOutcome {
        model_path: target.model_path(&cache_repo, &commit),
        name,
        files: out,
    })
}

pub(super) fn from_choice(
    repo: &RepoId,
    c: Choice,
    progress: &mut dyn PullProgress,
) -> (String, Vec<String>, Target) {
    match c {
        Choice::Gguf { files, why, others } => {
            progress.note(&format!("{repo}: picked {} ({why})", files[0]));
            if !others.is_empty() {
                progress.note(&format!(
                    "others: {} (pull one with {repo}:FILE)",
                    file_list(&others)
                ));
            }
            let first = files[0].clone();
            (format!("{repo}:{first}"), files, Target::File(first))
        }
        Choice::Safetensors { files } => {
            progress.note(&format!(
                "{repo}: a safetensors model; pulling {}",
                files.join(", ")
            ));
            (repo.to_string(), files, Target::Folder)
        }
    }
}

/// The commit and etag become folder and file names: they must be plain names.
fn check_names(hub: &Hub, file: &str, meta: &FileMeta) -> Result<(), PullError> {
    for (what, v) in [("commit", &meta.commit), ("etag", &meta.etag)] {
        if !safe_component(v) {
            return Err(PullError::BadAnswer {
                endpoint: hub.env.endpoint.clone(),
                what: file.into(),
                why: format!("a {what} that is not a plain name: {v:?}"),
            });
        }
    }
    Ok(())
}

/// One file to bring into the cache.
struct OneFile<'a> {
    hub: &'a Hub,
    repo: &'a RepoId,
    cache: &'a CacheRepo,
    revision: &'a str,
    file: &'a str,
    name: &'a str,
    meta: &'a FileMeta,
    model_path: PathBuf,
}

/// Forwards hf-hub's progress calls to lmwb's [`PullProgress`].
struct Adapter<'a> {
    sink: &'a mut dyn PullProgress,
    file: &'a str,
}

impl hf_hub::api::Progress for Adapter<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.sink.start(self.file, size as u64);
    }
    fn update(&mut self, size: usize) {
        self.sink.advance(size as u64);
    }
    fn finish(&mut self) {
        self.sink.finish();
    }
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

impl OneFile<'_> {
    fn pull(
        &self,
        manifest: &ManifestFile,
        progress: &mut dyn PullProgress,
    ) -> Result<PulledFile, PullError> {
        let (meta, cache) = (self.meta, self.cache);
        let blob = cache.blob(&meta.etag);
        let snapshot = cache.snapshot(&meta.commit).join(self.file);
        let done = |status| PulledFile {
            file: self.file.into(),
            path: snapshot.clone(),
            size: meta.size,
            status,
        };
        if file_len(&snapshot) == Some(meta.size) {
            cache
                .write_ref(self.revision, &meta.commit)
                .map_err(|e| PullError::io(&cache.dir, e))?;
            let ours = manifest.load()?.by_snapshot(&snapshot).is_some();
            return Ok(done(if ours {
                FileStatus::AlreadyPulled
            } else {
                FileStatus::InCache
            }));
        }
        // A link left dangling (its blob deleted by hand) would stop hf-hub from linking.
        if snapshot.symlink_metadata().is_ok() && !snapshot.exists() {
            std::fs::remove_file(&snapshot).map_err(|e| PullError::io(&snapshot, e))?;
        }
        // Someone else's file of another size: not lmwb's to replace.
        if let Some(len) = file_len(&snapshot) {
            return Err(PullError::io(
                &snapshot,
                format!(
                    "it is already in the cache with {len} bytes where the hub announces {} (another tool's unfinished copy?); move it away and pull again",
                    meta.size
                ),
            ));
        }
        let (status, blob_created) = if file_len(&blob) == Some(meta.size) {
            cache
                .link(&meta.commit, self.file, &blob)
                .map_err(|e| PullError::io(&snapshot, e))?;
            (FileStatus::Linked, false)
        } else {
            let resumed_from = self.download(&blob, progress)?;
            (FileStatus::Downloaded { resumed_from }, true)
        };
        cache
            .write_ref(self.revision, &meta.commit)
            .map_err(|e| PullError::io(&cache.dir, e))?;
        let sha256 = match self.verify(&snapshot, progress) {
            Ok(sha) => sha,
            Err(e) => {
                let _ = std::fs::remove_file(&snapshot);
                if blob_created {
                    let _ = std::fs::remove_file(&blob);
                }
                cache.prune();
                return Err(e);
            }
        };
        manifest.record(Download {
            name: self.name.into(),
            repo: self.repo.to_string(),
            revision: self.revision.into(),
            commit: meta.commit.clone(),
            file: self.file.into(),
            blob,
            snapshot: snapshot.clone(),
            model_path: self.model_path.clone(),
            size: meta.size,
            sha256,
            blob_created,
            downloaded_at: downloaded::now(),
        })?;
        Ok(done(status))
    }

    /// Download into `blob` through hf-hub (which appends to `<blob>.part` with a Range
    /// request); returns the bytes a previous attempt had left.
    fn download(&self, blob: &Path, progress: &mut dyn PullProgress) -> Result<u64, PullError> {
        let total = self.meta.size;
        let part = blob.with_extension("part");
        let mut have = file_len(&part).unwrap_or(0);
        if have > total {
            progress.note(&format!(
                "{}: the partial download is longer than the file; starting again",
                self.file
            ));
            std::fs::remove_file(&part).map_err(|e| PullError::io(&part, e))?;
            have = 0;
        }
        if have == total && total > 0 {
            // Complete but never moved into place (stopped between the two): finish it here.
            std::fs::rename(&part, blob).map_err(|e| PullError::io(blob, e))?;
            self.cache
                .link(&self.meta.commit, self.file, blob)
                .map_err(|e| PullError::io(blob, e))?;
            return Ok(have);
        }
        if have > 0 {
            progress.note(&format!(
                "{}: resuming at {have} of {total} bytes",
                self.file
            ));
        }
        let adapter = Adapter {
            sink: progress,
            file: self.file,
        };
        let result = self
            .hub
            .download(self.repo, self.revision, self.file, adapter)?;
        let _ = std::fs::remove_file(blob.with_extension("lock"));
        let what = format!("{}:{}", self.repo, self.file);
        match result {
            Ok(_) => Ok(have),
            Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::StatusCode(_)) => Err(self
                .hub
                .api_error(self.repo, &what, ApiError::RequestError(e))),
            Err(e) if file_len(&part).is_some_and(|n| n > 0) => Err(PullError::Interrupted {
                file: what,
                have: file_len(&part).unwrap_or(0),
                total,
                why: e.to_string(),
                part,
            }),
            Err(e) => Err(self.hub.api_error(self.repo, &what, e)),
        }
    }

    /// Size, then sha256 (LFS files) or the git blob sha1 (small files kept in git), against
    /// the hub's etag. Returns the file's sha256.
    fn verify(&self, path: &Path, progress: &mut dyn PullProgress) -> Result<String, PullError> {
        let (meta, endpoint) = (self.meta, &self.hub.env.endpoint);
        let mismatch = |what: String| PullError::Mismatch {
            file: format!("{}:{}", self.repo, self.file),
            endpoint: endpoint.clone(),
            what,
        };
        let len = file_len(path).unwrap_or(0);
        if len != meta.size {
            return Err(mismatch(format!(
                "the hub announced {} bytes, lmwb got {len}",
                meta.size
            )));
        }
        if meta.size > 256 << 20 {
            progress.note(&format!("{}: checking its sha256", self.file));
        }
        let (sha256, sha1) = hash_file(path, meta.size).map_err(|e| PullError::io(path, e))?;
        let etag = meta.etag.to_ascii_lowercase();
        let hexy = etag.bytes().all(|b| b.is_ascii_hexdigit());
        if hexy && etag.len() == 64 && etag != sha256 {
            return Err(mismatch(format!(
                "the hub announced sha256 {etag}, the file has {sha256}"
            )));
        }
        if hexy && etag.len() == 40 && etag != sha1 {
            return Err(mismatch(format!(
                "the hub announced git sha1 {etag}, the file has {sha1}"
            )));
        }
        Ok(sha256)
    }
}

/// The file's sha256 and its git blob sha1 (`sha1("blob <len>\0" + bytes)`), in one read.
fn hash_file(path: &Path, len: u64) -> std::io::Result<(String, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut s256 = sha2::Sha256::new();
    let mut s1 = sha1::Sha1::new();
    s1.update(format!("blob {len}\0").as_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s256.update(&buf[..n]);
        s1.update(&buf[..n]);
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok((hex(&s256.finalize()), hex(&s1.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let (r, f) = parse_spec("org/m-GGUF:m.Q4_K_M.gguf").unwrap();
        assert_eq!(
            (r.as_str(), f.as_deref()),
            ("org/m-GGUF", Some("m.Q4_K_M.gguf"))
        );
        let (r, f) = parse_spec("org/m").unwrap();
        assert_eq!((r.as_str(), f), ("org/m", None));
        assert!(is_quant_tag("Q8_0") && !is_quant_tag("m.gguf"));
        for bad in [
            "",
            "org/m:",
            "org/m:../x",
            "a/b/c",
            "org/m:/etc/passwd",
            "http://x/y",
        ] {
            let e = parse_spec(bad).unwrap_err().to_string();
            assert!(e.contains("ORG/NAME"), "{bad}: {e}");
        }
    }

    #[test]
    fn git_blob_sha1_and_sha256() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        let (s256, s1) = hash_file(&p, 6).unwrap();
        // `printf 'hello\n' | git hash-object --stdin`, `sha256sum`
        assert_eq!(s1, "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(
            s256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
    }
}
