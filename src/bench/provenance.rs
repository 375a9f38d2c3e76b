//! Where a benchmark ran and on what: machine, lmwb build, model file.

use crate::client::{GenerationClient, Target};
use crate::engine::model::ModelInfo;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// The machine and the build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cpu_arch: String,
    pub physical_cores: Option<usize>,
    pub logical_cpus: usize,
    pub ram_bytes: u64,
    pub os: String,
    pub lmwb_version: String,
    pub git_commit: String,
    /// /proc/loadavg at the start: other work on the machine skews the numbers.
    pub load_avg_at_start: Option<String>,
}

impl Machine {
    pub fn detect() -> Machine {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
        let kind = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let sys = System::new_with_specifics(kind).ok();
        let cpus = sys.as_ref().map_or(&[][..], |s| s.cpus());
        Machine {
            cpu: cpus
                .first()
                .map(|c| c.brand().trim().to_string())
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "unknown".into()),
            cpu_arch: System::cpu_arch(),
            physical_cores: System::physical_core_count().ok(),
            logical_cpus: std::thread::available_parallelism().map_or(cpus.len(), |n| n.get()),
            ram_bytes: sys.as_ref().map_or(0, |s| s.total_memory()),
            os: System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
            lmwb_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("LMWB_GIT_COMMIT").into(),
            load_avg_at_start: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .map(|s| s.trim().to_string()),
        }
    }
}

/// The model a result belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelMeta {
    /// What `-m` said.
    pub name: String,
    pub path: String,
    /// Of the file; `None` for a folder (safetensors) or a remote backend.
    pub sha256: Option<String>,
    pub arch: String,
    /// Weight type as stored.
    pub quantization: String,
    /// What loading did beyond reading (e.g. requantized to Q8_0 for speed).
    pub load_notes: Vec<String>,
    pub params: u64,
    pub size_bytes: u64,
    pub context_length: usize,
    pub device: String,
    /// CPU threads the engine computes with.
    pub threads: usize,
    pub load_ms: f64,
}

impl ModelMeta {
    /// A model loaded in-process from `path` (`sha256` of the file; none for a folder).
    pub fn local(
        name: &str,
        path: &Path,
        info: &ModelInfo,
        device: &str,
        threads: usize,
        load_ms: f64,
    ) -> ModelMeta {
        ModelMeta {
            name: name.to_string(),
            path: path.display().to_string(),
            sha256: path.is_file().then(|| sha256_file(path).ok()).flatten(),
            arch: info.arch.clone(),
            quantization: info.quant.clone(),
            load_notes: info.notes.clone(),
            params: info.params,
            size_bytes: info.size_bytes,
            context_length: info.context_length,
            device: device.to_string(),
            threads,
            load_ms,
        }
    }

    /// A model on a remote backend (`target`), reached through `client`, connected in
    /// `load_ms`.
    pub fn remote(client: &dyn GenerationClient, target: &Target, load_ms: f64) -> ModelMeta {
        let (base, kind) = match target {
            Target::Remote { backend, .. } => (backend.base(), backend.kind.as_str()),
            Target::Local { .. } => (target.location(), "?"),
        };
        let mut notes = vec![format!(
            "served by {base}; times are measured by lmwb's HTTP client"
        )];
        if !client.vocab_listed() {
            notes.push(format!(
                "the server does not list the vocabulary size: prompt token ids are drawn below {}",
                crate::client::FALLBACK_VOCAB
            ));
        }
        ModelMeta {
            name: client.model_name().to_string(),
            path: target.location(),
            sha256: None,
            arch: format!("remote ({kind})"),
            quantization: "?".into(),
            load_notes: notes,
            params: 0,
            size_bytes: 0,
            context_length: client.context_length().unwrap_or(0),
            device: target.transport(),
            threads: 0,
            load_ms,
        }
    }
}

/// sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `YYYYMMDD-HHMMSS` (UTC) for folder names.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    crate::engine::template::format_unix_time(secs, "%Y%m%d-%H%M%S")
}

/// A folder-safe version of a model name: letters, digits, `.`, `-`, `_`.
pub fn slug(name: &str) -> String {
    let stem = Path::new(name)
        .file_name()
        .map_or(name.into(), |s| s.to_string_lossy().into_owned());
    let s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}
