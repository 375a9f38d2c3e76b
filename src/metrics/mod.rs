//! Process and system sampling for live gauges and benchmarks: this process's CPU % and
//! resident memory, and the machine's memory in use.
//!
//! GPU figures are `None` unless a backend reports them: lmwb does not query NVML (or
//! Metal) yet, so front ends show a dash — a number is never made up.

use serde::Serialize;
use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// One reading of this process and the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProcessSample {
    /// CPU used by this process since the previous sample; 100 = one core fully busy.
    /// `None` on the first sample (CPU usage needs two readings).
    pub cpu_percent: Option<f32>,
    /// Resident set size of this process.
    pub rss_bytes: u64,
    /// Memory in use on the machine, and its total.
    pub sys_used_bytes: u64,
    pub sys_total_bytes: u64,
    /// GPU utilisation and memory, when a backend reports them (never made up).
    pub gpu: Option<GpuSample>,
}

/// One reading of the GPU the engine runs on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GpuSample {
    pub util_percent: f32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
}

/// Samples this process; keep one and call [`ProcessSampler::sample`] periodically.
pub struct ProcessSampler {
    /// `None` where sysinfo cannot read this platform (every sample is then zeros).
    sys: Option<System>,
    pid: Option<Pid>,
    samples: u64,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        ProcessSampler::new()
    }
}

impl ProcessSampler {
    pub fn new() -> ProcessSampler {
        ProcessSampler {
            sys: System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
            samples: 0,
        }
    }

    /// Refresh only this process (CPU, memory) and the machine's RAM, and read them.
    pub fn sample(&mut self) -> ProcessSample {
        let Some(sys) = self.sys.as_mut() else {
            return ProcessSample::default();
        };
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let mut out = ProcessSample {
            sys_used_bytes: sys.used_memory(),
            sys_total_bytes: sys.total_memory(),
            ..ProcessSample::default()
        };
        if let Some(pid) = self.pid {
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            if let Some(p) = sys.process(pid) {
                out.rss_bytes = p.memory();
                if self.samples > 0 {
                    out.cpu_percent = Some(p.cpu_usage());
                }
            }
        }
        self.samples += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_positive_and_system_memory_is_known() {
        let s = ProcessSampler::new().sample();
        assert!(s.rss_bytes > 0, "{s:?}");
        assert!(
            s.sys_total_bytes >= s.sys_used_bytes && s.sys_used_bytes > 0,
            "{s:?}"
        );
        assert_eq!(s.gpu, None);
    }

    #[test]
    fn cpu_percent_needs_two_samples() {
        let mut m = ProcessSampler::new();
        assert_eq!(m.sample().cpu_percent, None);
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let cpu = m.sample().cpu_percent.expect("second sample has CPU %");
        assert!(cpu >= 0.0, "{cpu}");
    }

    #[test]
    fn rss_grows_after_touching_64_mb() {
        let mut m = ProcessSampler::new();
        let before = m.sample().rss_bytes;
        let mut big = vec![0u8; 64 << 20];
        for i in (0..big.len()).step_by(4096) {
            big[i] = 1;
        }
        std::hint::black_box(&mut big);
        let after = m.sample().rss_bytes;
        drop(big);
        assert!(
            after >= before + (48 << 20),
            "rss before {before}, after touching 64 MB {after}"
        );
    }
}
