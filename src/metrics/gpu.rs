//! GPU utilisation and memory from NVML, for a `cuda:N` device, when lmwb is built with
//! the `nvml` feature (part of `cuda`). NVML is loaded at run time: without an NVIDIA
//! driver, or in a build without the feature, there is no reader and front ends show a
//! dash — never a made-up number. (Metal's wired memory is not read yet.)

use super::GpuSample;

/// The device index a `cuda` / `cuda:N` device string names; None for other devices.
pub fn cuda_index(device: &str) -> Option<u32> {
    match device.split_once(':') {
        Some(("cuda", n)) => n.parse().ok(),
        None if device == "cuda" => Some(0),
        _ => None,
    }
}

#[cfg(feature = "nvml")]
pub struct GpuReader {
    nvml: nvml_wrapper::Nvml,
    index: u32,
}

#[cfg(feature = "nvml")]
impl GpuReader {
    /// A reader for the device `device` names, if it is a CUDA device and NVML answers.
    pub fn for_device(device: &str) -> Option<GpuReader> {
        let index = cuda_index(device)?;
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        nvml.device_by_index(index).ok()?;
        Some(GpuReader { nvml, index })
    }

    pub fn read(&self) -> Option<GpuSample> {
        let d = self.nvml.device_by_index(self.index).ok()?;
        let util = d.utilization_rates().ok()?;
        let mem = d.memory_info().ok()?;
        Some(GpuSample {
            util_percent: util.gpu as f32,
            mem_used_bytes: mem.used,
            mem_total_bytes: mem.total,
        })
    }
}

#[cfg(not(feature = "nvml"))]
pub struct GpuReader;

#[cfg(not(feature = "nvml"))]
impl GpuReader {
    /// Always None: this lmwb was built without NVML.
    pub fn for_device(_device: &str) -> Option<GpuReader> {
        None
    }

    pub fn read(&self) -> Option<GpuSample> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cuda_devices_get_a_reader() {
        assert_eq!(cuda_index("cuda"), Some(0));
        assert_eq!(cuda_index("cuda:1"), Some(1));
        assert_eq!(cuda_index("cpu"), None);
        assert_eq!(cuda_index("metal"), None);
        assert!(GpuReader::for_device("cpu").is_none());
    }
}
