//! `lmwb models rm NAME`: remove what lmwb downloaded (per its download list) and nothing
//! else: the snapshot links, each blob no other snapshot still links to, and the repo's
//! folders left empty.

use super::downloaded::{Download, Manifest, ManifestError, ManifestFile};
use super::hf_cache::CacheRepo;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(thiserror::Error, Debug)]
pub enum RmError {
    #[error("lmwb did not download {name} (it is in {}); remove it with the tool that put it there", .path.display())]
    NotOurs { name: String, path: PathBuf },
    #[error("lmwb did not download a model named {name}; {hint}")]
    Unknown { name: String, hint: String },
    #[error("{}: cannot remove it: {why}", .path.display())]
    Io { path: PathBuf, why: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What `rm` will remove.
#[derive(Debug)]
pub struct RemovalPlan {
    pub name: String,
    /// The download-list entries that go.
    pub entries: Vec<Download>,
    /// Snapshot links (or files) to remove.
    pub links: Vec<PathBuf>,
    /// Blobs to remove (lmwb wrote them and nothing else links to them).
    pub blobs: Vec<PathBuf>,
    /// Blobs kept because another snapshot still links to them.
    pub kept: Vec<PathBuf>,
    /// Bytes the blobs free.
    pub bytes: u64,
}

/// `dir/models--X/blobs/<etag>`'s repo folder, when `blob` is laid out that way.
fn repo_of_blob(blob: &Path) -> Option<CacheRepo> {
    let blobs = blob.parent()?;
    (blobs.file_name()? == "blobs").then(|| CacheRepo {
        dir: blobs.parent().unwrap_or(blobs).to_path_buf(),
    })
}

/// `p` with its folder canonicalized (a link itself is not followed).
fn norm(p: &Path) -> PathBuf {
    match (
        p.parent().and_then(|d| std::fs::canonicalize(d).ok()),
        p.file_name(),
    ) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => p.to_path_buf(),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Plan the removal of `name`. When lmwb did not download it, `elsewhere` says where the
/// model is (the registry's answer), for the refusal.
pub fn plan(
    name: &str,
    manifest: &Manifest,
    hub_cache: &Path,
    elsewhere: Option<PathBuf>,
) -> Result<RemovalPlan, RmError> {
    let entries: Vec<Download> = manifest.matching(name).into_iter().cloned().collect();
    if entries.is_empty() {
        return Err(refusal(name, manifest, hub_cache, elsewhere));
    }
    let mut links = Vec::new();
    for e in &entries {
        if e.snapshot.symlink_metadata().is_ok()
            && e.snapshot
                .components()
                .any(|c| c.as_os_str() == "snapshots")
        {
            links.push(e.snapshot.clone());
        }
    }
    let ours: Vec<PathBuf> = links.iter().map(|l| norm(l)).collect();
    let (mut blobs, mut kept, mut bytes) = (Vec::new(), Vec::new(), 0);
    let unique: BTreeSet<&PathBuf> = entries.iter().map(|e| &e.blob).collect();
    for blob in unique {
        let Some(repo) = repo_of_blob(blob) else {
            continue;
        };
        if !blob.is_file() {
            continue;
        }
        let lmwb_wrote_it = manifest
            .files
            .iter()
            .any(|d| &d.blob == blob && d.blob_created);
        let linked_elsewhere = repo
            .snapshot_entries()
            .iter()
            .any(|l| !ours.contains(&norm(l)) && same_file(l, blob));
        if !lmwb_wrote_it {
            continue;
        }
        if linked_elsewhere {
            kept.push(blob.clone());
        } else {
            bytes += std::fs::metadata(blob).map(|m| m.len()).unwrap_or(0);
            blobs.push(blob.clone());
        }
    }
    Ok(RemovalPlan {
        name: name.into(),
        entries,
        links,
        blobs,
        kept,
        bytes,
    })
}

/// Why `name` is not lmwb's to remove, with where it is when that is known.
fn refusal(
    name: &str,
    manifest: &Manifest,
    hub_cache: &Path,
    elsewhere: Option<PathBuf>,
) -> RmError {
    let in_cache = super::pull::parse_spec(name).ok().and_then(|(repo, file)| {
        let r = CacheRepo::new(hub_cache, &repo);
        match file {
            Some(f) => r.cached_file("main", &f),
            None => r.dir.is_dir().then(|| r.dir.clone()),
        }
    });
    if let Some(path) = in_cache.or(elsewhere) {
        return RmError::NotOurs {
            name: name.into(),
            path,
        };
    }
    let mut names: Vec<&str> = manifest.files.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    names.dedup();
    let hint = if names.is_empty() {
        "it has downloaded nothing yet (`lmwb models pull REPO[:FILE]` does)".to_string()
    } else {
        format!("the models it downloaded: {}", names.join(", "))
    };
    RmError::Unknown {
        name: name.into(),
        hint,
    }
}

/// What `execute` removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub files: usize,
    pub bytes: u64,
}

/// Remove what `plan` lists, prune the emptied folders, and drop the entries from the list.
pub fn execute(plan: &RemovalPlan, manifest: &ManifestFile) -> Result<Removed, RmError> {
    let rm = |p: &Path| match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RmError::Io {
            path: p.to_path_buf(),
            why: e.to_string(),
        }),
    };
    for l in &plan.links {
        rm(l)?;
    }
    for b in &plan.blobs {
        rm(b)?;
        let _ = std::fs::remove_file(b.with_extension("lock"));
    }
    let mut repos: Vec<PathBuf> = plan
        .entries
        .iter()
        .filter_map(|e| repo_of_blob(&e.blob))
        .map(|r| r.dir)
        .collect();
    repos.sort();
    repos.dedup();
    for dir in repos {
        CacheRepo { dir }.prune();
    }
    let gone: BTreeSet<&PathBuf> = plan.entries.iter().map(|e| &e.snapshot).collect();
    manifest.update(|m| m.files.retain(|d| !gone.contains(&d.snapshot)))?;
    Ok(Removed {
        files: plan.links.len() + plan.blobs.len(),
        bytes: plan.bytes,
    })
}
