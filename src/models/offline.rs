//! The Hugging Face cache without the network: `lmwb models pull --offline` (or
//! `HF_HUB_OFFLINE=1`) and `-m ORG/NAME[:FILE]` find models already there.

use super::downloaded::ManifestFile;
use super::hf_cache::{hub_cache_dir, snapshot_files, CacheRepo, RepoId};
use super::hub::{file_list, HubEnv, PullError};
use super::pick::{choose, quant_of};
use super::pull::{
    from_choice, is_quant_tag, parse_spec, FileStatus, PullOutcome, PullProgress, PulledFile,
    Target,
};
use std::path::{Path, PathBuf};

struct Silent;

impl PullProgress for Silent {
    fn note(&mut self, _: &str) {}
    fn start(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// The files `file` names (a repo path or a quantization tag; none: the model `choose`
/// picks) in `snapshot`, with the name and target they make; `None` when absent.
fn find(
    repo: &RepoId,
    file: Option<&str>,
    snapshot: &Path,
) -> Option<(String, Vec<String>, Target)> {
    let present = snapshot_files(snapshot);
    match file {
        Some(f) if !is_quant_tag(f) => present.iter().any(|p| p == f).then(|| {
            (
                format!("{repo}:{f}"),
                vec![f.to_string()],
                Target::File(f.into()),
            )
        }),
        tag => {
            let candidates: Vec<String> = match tag {
                Some(q) => present
                    .into_iter()
                    .filter(|n| quant_of(n).is_some_and(|x| x.eq_ignore_ascii_case(q)))
                    .collect(),
                None => present,
            };
            choose(&candidates).map(|c| from_choice(repo, c, &mut Silent))
        }
    }
}

/// Offline pull: the file (or the picked model) from the cache, or [`PullError::NotCached`].
pub(super) fn pull(
    repo: &RepoId,
    file: Option<&str>,
    revision: &str,
    env: &HubEnv,
) -> Result<PullOutcome, PullError> {
    let cache = CacheRepo::new(&env.cache, repo);
    let not_cached = |what: String| PullError::NotCached {
        what,
        cache: env.cache.clone(),
    };
    let Some(commit) = cache.commit_for(revision) else {
        return Err(not_cached(format!("{repo} (revision {revision})")));
    };
    let snapshot = cache.snapshot(&commit);
    let Some((name, files, target)) = find(repo, file, &snapshot) else {
        return Err(not_cached(format!(
            "{repo}{} (cached files of revision {revision}: {})",
            file.map(|f| format!(":{f}")).unwrap_or_default(),
            file_list(&snapshot_files(&snapshot))
        )));
    };
    let files = files
        .into_iter()
        .map(|f| {
            let path = snapshot.join(&f);
            PulledFile {
                size: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                file: f,
                path,
                status: FileStatus::Offline,
            }
        })
        .collect();
    Ok(PullOutcome {
        name,
        model_path: target.model_path(&cache, &commit),
        files,
    })
}

/// What `-m ORG/NAME[:FILE]` loads: a model lmwb pulled under that name (any revision, the
/// newest), else that model in the Hugging Face cache at `main`. `None` when neither.
pub fn cached_model(spec: &str) -> Option<PathBuf> {
    let (repo, file) = parse_spec(spec).ok()?;
    if let Ok(m) = ManifestFile::at_default().load() {
        let mut hits: Vec<_> = m
            .matching(spec)
            .into_iter()
            .filter(|d| d.name.eq_ignore_ascii_case(spec) && d.model_path.exists())
            .collect();
        hits.sort_by(|a, b| a.downloaded_at.cmp(&b.downloaded_at));
        if let Some(d) = hits.last() {
            return Some(d.model_path.clone());
        }
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let cache = CacheRepo::new(&hub_cache_dir(&var), &repo);
    let commit = cache.commit_for("main")?;
    let (_, _, target) = find(&repo, file.as_deref(), &cache.snapshot(&commit))?;
    let path = target.model_path(&cache, &commit);
    path.exists().then_some(path)
}
