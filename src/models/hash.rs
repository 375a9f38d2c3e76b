//! sha256 of model files, and a cache of the ones computed, kept between runs in
//! `~/.cache/lmwb/sha256.tsv` keyed by (path, size, mtime) so a file is read once until it
//! changes. The cache file is rewritten whole through a temp file and a rename.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes read at a time while hashing (256 KiB: half the system time of 4 MiB reads).
const CHUNK: usize = 256 << 10;

#[derive(thiserror::Error, Debug)]
#[error("cannot read {path} to hash it: {why}")]
pub struct HashError {
    pub path: PathBuf,
    pub why: String,
}

/// The sha256 of a file as 64 hex digits; `progress` gets the bytes read so far.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<String, HashError> {
    let err = |e: std::io::Error| HashError {
        path: path.into(),
        why: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What identifies a file's content without reading it: size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    let t = m.modified().ok()?;
    let mtime_ns = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    Some(Stamp {
        size: m.len(),
        mtime_ns,
    })
}

/// Computed hashes by canonical path, loaded from and saved to one file.
#[derive(Debug, Default)]
pub struct HashCache {
    file: Option<PathBuf>,
    known: BTreeMap<PathBuf, (Stamp, String)>,
    dirty: bool,
}

impl HashCache {
    /// The cache kept in `file` (none: in memory only). A missing or damaged file is an
    /// empty cache; damaged lines are dropped.
    pub fn open(file: Option<&Path>) -> HashCache {
        let mut known = BTreeMap::new();
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
            for line in text.lines() {
                let mut it = line.splitn(4, '\t');
                let (Some(sha), Some(size), Some(mtime), Some(path)) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    continue;
                };
                let (Ok(size), Ok(mtime_ns)) = (size.parse(), mtime.parse()) else {
                    continue;
                };
                if super::sources::is_sha256_hex(sha) {
                    known.insert(
                        PathBuf::from(path),
                        (Stamp { size, mtime_ns }, sha.to_string()),
                    );
                }
            }
        }
        HashCache {
            file: file.map(Path::to_path_buf),
            known,
            dirty: false,
        }
    }

    /// The hash of `path` if it was computed before and the file has not changed since.
    pub fn get(&self, path: &Path) -> Option<String> {
        let real = std::fs::canonicalize(path).ok()?;
        let (s, sha) = self.known.get(&real)?;
        (stamp(&real)? == *s).then(|| sha.clone())
    }

    /// Remember the hash of `path` (as it is now on disk).
    pub fn put(&mut self, path: &Path, sha: &str) {
        let Ok(real) = std::fs::canonicalize(path) else {
            return;
        };
        let Some(s) = stamp(&real) else { return };
        // A path that would break a line of the file is not kept.
        if real.to_string_lossy().contains(['\t', '\n', '\r']) {
            return;
        }
        self.known.insert(real, (s, sha.to_string()));
        self.dirty = true;
    }

    /// The cached hash of `path`, else computed now (and remembered).
    pub fn hash(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<String, HashError> {
        if let Some(h) = self.get(path) {
            return Ok(h);
        }
        let h = sha256_file(path, progress)?;
        self.put(path, &h);
        Ok(h)
    }

    /// Write the cache back when it changed, dropping files that are gone: a temp file in
    /// the same folder renamed over the old one, so a reader never sees half a file.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.clone().filter(|_| self.dirty) else {
            return Ok(());
        };
        self.known.retain(|p, _| p.exists());
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut text = String::new();
        for (p, (s, sha)) in &self.known {
            text.push_str(&format!(
                "{sha}\t{}\t{}\t{}\n",
                s.size,
                s.mtime_ns,
                p.display()
            ));
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(&file).map_err(|e| e.error)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sum_and_cache_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.bin");
        std::fs::write(&f, b"abc").unwrap();
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&f, &mut |_| {}).unwrap(), want);

        let cache_file = d.path().join("cache").join("sha256.tsv");
        let mut c = HashCache::open(Some(&cache_file));
        let mut reads = 0;
        assert_eq!(c.hash(&f, &mut |_| reads += 1).unwrap(), want);
        assert_eq!(reads, 1);
        c.save().unwrap();
        assert!(cache_file.is_file());

        // A second run finds it without reading the file.
        let mut c = HashCache::open(Some(&cache_file));
        let mut reads = 0;
        assert_eq!(c.hash(&f, &mut |_| reads += 1).unwrap(), want);
        assert_eq!(reads, 0, "the cached sum is used");

        // A changed file is hashed again.
        std::fs::write(&f, b"abcd").unwrap();
        let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
        assert_eq!(c.get(&f), None);
        assert_ne!(c.hash(&f, &mut |_| {}).unwrap(), want);
    }

    #[test]
    fn damaged_cache_lines_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let cache_file = d.path().join("sha256.tsv");
        std::fs::write(&cache_file, "garbage\nnot-a-hash\t1\t2\t/x\n").unwrap();
        let c = HashCache::open(Some(&cache_file));
        assert!(c.known.is_empty());
    }
}
