//! The kernel cache: what was chosen and what failed for each shape on this adapter and
//! driver, kept across processes.
//!
//! The file is `<cache dir>/variants-<adapter key>-<kernels hash>.json`, sealed with a
//! checksum: a file that does not parse or whose checksum does not match (corrupt, or edited
//! by hand) is ignored with a warning, never trusted. Several processes and threads share
//! it, so each write adds to what is on disk now instead of overwriting it.

use crate::files::{cache_dir, write_atomically};
use crate::gpu::Gpu;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Per key, the variant chosen there.
pub type Choices = BTreeMap<String, String>;
/// Per key, the variants found wrong there and how wrong.
pub type Failures = BTreeMap<String, BTreeMap<String, String>>;

/// What the cache holds.
#[derive(serde::Serialize, serde::Deserialize, Default, Debug)]
pub struct Entries {
    pub choices: Choices,
    pub failed: Failures,
}

/// The file as written.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedFile {
    adapter: String,
    driver: String,
    #[serde(flatten)]
    entries: Entries,
    checksum: String,
}

/// FNV-1a, 64 bits.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn checksum(entries: &Entries) -> String {
    let text = serde_json::to_string(&(&entries.choices, &entries.failed)).expect("choices serialise");
    format!("{:016x}", fnv(text.bytes()))
}

/// The wgpu this program was built with (build.rs).
pub const WGPU_VERSION: &str = env!("SHAKESHAKE_WGPU_VERSION");

/// FNV-1a over every embedded shader's text, the names of the variants there are to choose
/// from (a new variant must be measured against the old choice) and `wgpu_version` (another
/// wgpu's naga writes other shader code for the driver).
fn kernels_hash(wgpu_version: &str) -> u64 {
    let variants = crate::ops::conv2d::ConvVariant::ALL.map(|v| v.name()).join(" ");
    let shaders = crate::gpu::shaders::FILES.iter().flat_map(|(_, text)| text.bytes());
    fnv(shaders.chain(variants.bytes()).chain(wgpu_version.bytes()))
}

/// Choosers in one process (trainings, tests) read the cache, add to it and write it back
/// one at a time, so that none loses another's entries or misses its choice. Between
/// processes the read-to-write window is a few microseconds; a lost entry there costs only a
/// measurement.
fn lock_saving() -> std::sync::MutexGuard<'static, ()> {
    static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SAVING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One adapter's cache file, or none (measure every time, remember nothing).
pub struct KernelCache {
    path: Option<PathBuf>,
    adapter: String,
    driver: String,
}

impl KernelCache {
    /// This adapter's file in the cache folder.
    pub fn for_adapter(gpu: &Gpu) -> Self {
        // A change to any shader or to the set of variants makes earlier measurements stale:
        // the file name says which kernels they were made with.
        let name = format!("variants-{}-{:016x}.json", gpu.adapter_key(), kernels_hash(WGPU_VERSION));
        Self::described(gpu, cache_dir().map(|d| d.join(name)))
    }

    /// No file: nothing read, nothing written.
    pub fn none(gpu: &Gpu) -> Self {
        Self::described(gpu, None)
    }

    fn described(gpu: &Gpu, path: Option<PathBuf>) -> Self {
        let driver = format!("{} {} (wgpu {WGPU_VERSION})", gpu.info.driver, gpu.info.driver_info);
        KernelCache { path, adapter: gpu.describe(), driver }
    }

    #[cfg(test)]
    pub fn at(path: PathBuf) -> Self {
        KernelCache { path: Some(path), adapter: "adapter".into(), driver: "driver".into() }
    }

    /// The adapter, as the cache names it.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// Whether there is a file to keep choices in.
    pub fn is_kept(&self) -> bool {
        self.path.is_some()
    }

    /// What the file holds now: nothing if it is missing, and nothing (with a warning) if it
    /// is damaged or was edited.
    pub fn read(&self) -> Entries {
        let Some(path) = &self.path else { return Entries::default() };
        read_sealed(path).unwrap_or_else(|why| {
            eprintln!(
                "warning: ignoring the kernel cache {}: {why}. Kernels will be measured again.",
                path.display()
            );
            Entries::default()
        })
    }

    /// Reads the file, lets `add` add to what it holds (seeing what is there now), and writes
    /// it back, while no other chooser of this process does the same. With no file, `add`
    /// sees nothing and nothing is written.
    pub fn update<R>(&self, add: impl FnOnce(&mut Entries) -> R) -> R {
        let _saving = lock_saving();
        let mut entries = self.read();
        let result = add(&mut entries);
        if let Some(path) = &self.path {
            let file = SealedFile {
                adapter: self.adapter.clone(),
                driver: self.driver.clone(),
                checksum: checksum(&entries),
                entries,
            };
            let json = serde_json::to_vec_pretty(&file).expect("choices serialise");
            // Best effort: an unwritable cache only costs a measurement next time.
            let dir = path.parent().expect("cache path has a parent");
            let _ = std::fs::create_dir_all(dir).map(|_| write_atomically(path, &json));
        }
        result
    }
}

/// The file's entries; none if it is missing; why not if it is damaged or was edited.
fn read_sealed(path: &Path) -> Result<Entries, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Entries::default());
    };
    match serde_json::from_str::<SealedFile>(&text) {
        Ok(file) if file.checksum == checksum(&file.entries) => Ok(file.entries),
        Ok(_) => Err("its checksum does not match (edited by hand?)".to_string()),
        Err(e) => Err(format!("it does not parse ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file edited by hand (valid JSON) or damaged is not trusted, and says why; what the
    /// cache writes reads back.
    #[test]
    fn an_edited_or_damaged_file_is_ignored_and_says_why() {
        let dir = std::env::temp_dir().join(format!("shakeshake-sealed-{}", std::process::id()));
        let cache = KernelCache::at(dir.join("variants.json"));
        cache.update(|entries| {
            entries.choices.insert("k".into(), "a".into());
            entries.failed.entry("k".into()).or_default().insert("b".into(), "is wrong".into());
        });
        let read = read_sealed(&dir.join("variants.json")).unwrap();
        assert_eq!((read.choices["k"].as_str(), read.failed["k"]["b"].as_str()), ("a", "is wrong"));

        let text = std::fs::read_to_string(dir.join("variants.json")).unwrap();
        std::fs::write(dir.join("variants.json"), text.replace("\"a\"", "\"c\"")).unwrap();
        assert!(read_sealed(&dir.join("variants.json")).unwrap_err().contains("checksum does not match"));
        std::fs::write(dir.join("variants.json"), b"{ not json").unwrap();
        assert!(read_sealed(&dir.join("variants.json")).unwrap_err().contains("does not parse"));
        assert!(cache.read().choices.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_wgpu_measures_again() {
        assert_ne!(kernels_hash("30.0.2"), kernels_hash("30.0.3"));
        assert!(WGPU_VERSION.starts_with("30."), "{WGPU_VERSION}");
    }
}
