//! From the sources' locations to the registry's entries: one entry per model, however many
//! places hold it, under a name that is the same on every scan and unique.
//!
//! Locations in different stores are one model when they are the same file (symlinks) or
//! have the same sha256; within one store, each name the store gives stays its own model
//! (two Ollama tags of one blob, two symlinks in a folder), as that store lists them, and
//! the other stores' copies are listed with the first of them. The hash comes for free
//! where the store names files by it (HF LFS blobs, Ollama digests); any other file is
//! hashed only when another model has exactly its size, and the sum is cached (see
//! [`super::hash`]); a sum cached before (by an earlier scan or `models verify`) is used
//! whatever the sizes.
//!
//! Names: an entry takes the name of its first location (sources in the order folders, HF,
//! LM Studio, Ollama). When an earlier entry already has that name, a configured folder's
//! model is qualified with its parent folder (`parent/name`), then any with its source
//! (`name@hf`), then numbered (`name@hf~2`). Every location's own name still resolves.

use super::hash::HashCache;
use super::sources::{Location, Source};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// A model found on disk, with every place it is.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Entry {
    /// What `-m` takes and `models list` shows: unique, stable across scans.
    pub name: String,
    /// What loads (the first location's path).
    pub path: PathBuf,
    /// The first location's source.
    pub source: Source,
    /// Every source holding it, in priority order.
    pub sources: Vec<Source>,
    /// Bytes of the weights.
    pub size: u64,
    /// The content's sha256, when a store names the file by it or it was computed.
    pub sha256: Option<String>,
    /// Every place it is, the first one first.
    pub locations: Vec<Location>,
}

impl Entry {
    /// The names its locations have in their sources (the entry's own name may differ).
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.locations.iter().map(|l| l.name.as_str())
    }
}

struct Group {
    /// (scan order, location)
    locs: Vec<(usize, Location)>,
    is_file: bool,
    size: u64,
    sha256: Option<String>,
}

/// Merge locations (in the sources' priority order) into named entries.
pub fn merge(locations: Vec<Location>, cache: &mut HashCache) -> Vec<Entry> {
    // 1. The same file or folder reached by several paths.
    let mut groups: Vec<Group> = Vec::new();
    let mut by_real: HashMap<PathBuf, usize> = HashMap::new();
    for (order, loc) in locations.into_iter().enumerate() {
        let real = std::fs::canonicalize(&loc.path).unwrap_or_else(|_| loc.path.clone());
        if let Some(&g) = by_real.get(&real) {
            let g = &mut groups[g];
            // The same place seen twice by one source (a folder configured twice).
            if g.locs
                .iter()
                .any(|(_, l)| l.source == loc.source && l.name == loc.name)
            {
                continue;
            }
            g.sha256 = g.sha256.take().or_else(|| loc.expected_sha256.clone());
            g.locs.push((order, loc));
            continue;
        }
        by_real.insert(real, groups.len());
        groups.push(Group {
            is_file: loc.is_file(),
            size: loc.size,
            sha256: loc.expected_sha256.clone(),
            locs: vec![(order, loc)],
        });
    }
    // 2. Files of equal size with no known hash are hashed (cached across runs).
    let mut sizes: HashMap<u64, usize> = HashMap::new();
    for g in groups.iter().filter(|g| g.is_file) {
        *sizes.entry(g.size).or_default() += 1;
    }
    for g in groups
        .iter_mut()
        .filter(|g| g.is_file && g.sha256.is_none())
    {
        let path = g.locs[0].1.path.clone();
        // A sum computed before (by a scan or `models verify`) costs a stat.
        if let Some(h) = cache.get(&path) {
            g.sha256 = Some(h);
        } else if sizes[&g.size] > 1 {
            match cache.hash(&path, &mut |_| {}) {
                Ok(h) => g.sha256 = Some(h),
                Err(e) => tracing::warn!(%e, "not hashed"),
            }
        }
    }
    // 3. Same content: one entry.
    let mut merged: Vec<Group> = Vec::new();
    let mut by_sha: HashMap<String, usize> = HashMap::new();
    for g in groups {
        match g.sha256.as_ref().and_then(|h| by_sha.get(h)) {
            Some(&i) => merged[i].locs.extend(g.locs),
            None => {
                if let Some(h) = &g.sha256 {
                    by_sha.insert(h.clone(), merged.len());
                }
                merged.push(g);
            }
        }
    }
    // 4. One entry per location of the group's first source (a store's own names for one
    //    file stay apart, as that store lists them); the other stores' copies go with the
    //    first of them.
    let mut entries: Vec<(usize, Entry)> = Vec::new();
    for mut g in merged {
        g.locs.sort_by_key(|(order, l)| (l.source, *order));
        let source = g.locs[0].1.source;
        let split = g
            .locs
            .iter()
            .take_while(|(_, l)| l.source == source)
            .count();
        let others: Vec<Location> = g.locs.drain(split..).map(|(_, l)| l).collect();
        let mut others = Some(others);
        for (order, loc) in g.locs {
            let mut locations = vec![loc];
            locations.extend(others.take().unwrap_or_default());
            let mut sources: Vec<Source> = locations.iter().map(|l| l.source).collect();
            sources.dedup();
            let p = &locations[0];
            let e = Entry {
                name: p.name.clone(),
                path: p.path.clone(),
                source: p.source,
                size: p.size,
                sha256: g.sha256.clone(),
                sources,
                locations,
            };
            entries.push((order, e));
        }
    }
    entries.sort_by_key(|(first, e)| (e.source, *first));
    let mut entries: Vec<Entry> = entries.into_iter().map(|(_, e)| e).collect();
    unique_names(&mut entries);
    entries
}

/// Qualify names taken by an earlier entry (see the module comment).
fn unique_names(entries: &mut [Entry]) {
    let mut taken: HashSet<String> = HashSet::new();
    for e in entries.iter_mut() {
        let base = e.name.clone();
        let mut candidates = vec![base.clone()];
        if e.source == Source::Folder {
            if let Some(parent) = e.path.parent().and_then(|p| p.file_name()) {
                candidates.push(format!(
                    "{}/{base}",
                    parent.to_string_lossy().to_lowercase()
                ));
            }
        }
        let qualified = format!("{base}@{}", e.source.label());
        candidates.push(qualified.clone());
        let name = candidates
            .into_iter()
            .find(|c| !taken.contains(c))
            .unwrap_or_else(|| {
                (2..)
                    .map(|n| format!("{qualified}~{n}"))
                    .find(|c| !taken.contains(c))
                    .expect("an unused number")
            });
        taken.insert(name.clone());
        e.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn loc(source: Source, name: &str, path: &Path) -> Location {
        Location::at(source, name.into(), path.into())
    }

    #[test]
    fn same_content_is_one_entry_and_names_are_qualified() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        std::fs::create_dir_all(p("a")).unwrap();
        std::fs::create_dir_all(p("b")).unwrap();
        std::fs::write(p("a/m.gguf"), b"same bytes").unwrap();
        std::fs::write(p("b/m.gguf"), b"other byte").unwrap(); // same size, other content
        std::fs::write(p("copy.gguf"), b"same bytes").unwrap();
        std::fs::write(p("lone.gguf"), b"no twin in size").unwrap();
        let mut cache = HashCache::open(None);
        let entries = merge(
            vec![
                loc(Source::Folder, "m", &p("a/m.gguf")),
                loc(Source::Folder, "m", &p("b/m.gguf")),
                loc(Source::Folder, "lone", &p("lone.gguf")),
                loc(Source::LmStudio, "pub/repo/m", &p("copy.gguf")),
                loc(Source::Ollama, "m", &p("b/m.gguf")), // the same file again
            ],
            &mut cache,
        );
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["m", "b/m", "lone"]);
        assert_eq!(entries[0].sources, [Source::Folder, Source::LmStudio]);
        assert_eq!(entries[0].locations[1].path, p("copy.gguf"));
        assert_eq!(entries[1].sources, [Source::Folder, Source::Ollama]);
        assert!(entries[0].sha256.is_some() && entries[2].sha256.is_none());
        // Any location's own name is an alias.
        assert!(entries[0].aliases().any(|a| a == "pub/repo/m"));
    }

    #[test]
    fn other_sources_are_qualified_by_source() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("x.gguf");
        let b = d.path().join("y.gguf");
        let c = d.path().join("z.gguf");
        std::fs::write(&a, b"1").unwrap();
        std::fs::write(&b, b"22").unwrap();
        std::fs::write(&c, b"333").unwrap();
        let mut cache = HashCache::open(None);
        let entries = merge(
            vec![
                loc(Source::Folder, "foo", &a),
                loc(Source::LmStudio, "foo", &b),
                loc(Source::LmStudio, "foo", &c),
            ],
            &mut cache,
        );
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["foo", "foo@lmstudio", "foo@lmstudio~2"]);
    }
}
