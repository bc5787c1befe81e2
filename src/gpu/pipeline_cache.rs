//! The driver's compiled pipelines kept on disk between runs, where wgpu offers it (Vulkan's
//! `VkPipelineCache`; not Metal, DX12 or GL in wgpu 30).
//!
//! A GPU driver compiles a pipeline when it is created. Measured with AMD's compiler (RADV's
//! null device, `shakeshake kernels --depth 26 --width 32`): 235 pipelines took 4.9-5.5 s to
//! create one at a time, and 0.4 s from this file (docs/kernels.md). Most desktop drivers keep
//! a cache of their own as well; this one serves those that do not (Android's, some others).
//!
//! The file is `<cache dir>/<wgpu's key for the adapter>.bin`: an MD5 of the data, then the
//! data `PipelineCache::get_data` gave. wgpu and the driver both check that data was made on
//! this adapter and driver; the checksum catches what they cannot, a file altered on disk.

use md5::{Digest, Md5};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A device's pipeline cache and the file it was read from; written back when the last
/// `Gpu` holding it is dropped, if pipelines were added to it.
pub struct DiskPipelineCache {
    pub(super) cache: wgpu::PipelineCache,
    path: PathBuf,
    /// Pipelines created with it in this process.
    added: AtomicUsize,
    /// The device's failure flag: a lost device's cache is not written.
    failure: Arc<Mutex<Option<String>>>,
}

const CHECKSUM_BYTES: usize = 16;

impl DiskPipelineCache {
    /// The cache for `device`, filled from its file where that exists and is intact; none
    /// where wgpu keeps no pipeline cache for the backend, or no cache folder is known.
    /// `SHAKESHAKE_PIPELINE_CACHE=off` turns it off.
    pub(super) fn open(
        device: &wgpu::Device,
        info: &wgpu::AdapterInfo,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Option<DiskPipelineCache> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE)
            || std::env::var("SHAKESHAKE_PIPELINE_CACHE").as_deref() == Ok("off")
        {
            return None;
        }
        let path = crate::files::cache_dir()?.join(format!("{}.bin", wgpu::util::pipeline_cache_key(info)?));
        let data = std::fs::read(&path).ok().and_then(|file| intact(&file).map(<[u8]>::to_vec));
        // SAFETY: `data` is what `get_data` returned on an adapter with this file's key (wgpu
        // names the file by adapter), written whole (renamed over the old file) and checked
        // against its checksum, so it is as `get_data` gave it. wgpu and the driver still
        // check its header against this adapter and driver, and `fallback` starts an empty
        // cache when they reject it.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("shakeshake pipelines"),
                data: data.as_deref(),
                fallback: true,
            })
        };
        Some(DiskPipelineCache { cache, path, added: AtomicUsize::new(0), failure })
    }

    /// Count a pipeline created with the cache.
    pub(super) fn added_one(&self) {
        self.added.fetch_add(1, Ordering::Relaxed);
    }

    /// Write the cache's data to its file (a temporary file renamed over it, so a reader
    /// sees the old file or the new, and concurrent runs each leave a whole one).
    fn save(&self) -> anyhow::Result<()> {
        let Some(data) = self.cache.get_data() else {
            return Ok(()); // The driver keeps nothing to share.
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = Md5::digest(&data).to_vec();
        file.extend_from_slice(&data);
        crate::files::write_atomically(&self.path, &file)
    }
}

impl Drop for DiskPipelineCache {
    fn drop(&mut self) {
        let failed = self.failure.lock().map_or(true, |f| f.is_some());
        if self.added.load(Ordering::Relaxed) == 0 || failed {
            return;
        }
        if let Err(e) = self.save() {
            // A cache: the run it served is not harmed, only the next start is slower.
            eprintln!(
                "warning: could not keep the compiled kernels in {} ({e:#}); the next run compiles them again",
                self.path.display()
            );
        }
    }
}

/// The data of a cache file whose checksum matches it.
fn intact(file: &[u8]) -> Option<&[u8]> {
    let (sum, data) = file.split_at_checked(CHECKSUM_BYTES)?;
    (Md5::digest(data).as_slice() == sum).then_some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_file_altered_on_disk_is_not_used() {
        let data = b"pipelines".to_vec();
        let mut file = Md5::digest(&data).to_vec();
        file.extend_from_slice(&data);
        assert_eq!(intact(&file), Some(&data[..]));
        for cut in [0, 5, CHECKSUM_BYTES, file.len() - 1] {
            assert_eq!(intact(&file[..cut]), None, "cut to {cut} bytes");
        }
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(intact(&flipped), None);
    }
}
