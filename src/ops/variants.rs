//! Choosing among kernel variants by measuring them once, per adapter and driver.
//!
//! A kernel that is right for a GPU (workgroup-memory tiles) can be 20-50x too slow on a CPU
//! adapter and the reverse, so each hot op keeps several variants. The first time a shape is
//! seen, every variant that supports it is timed and the fastest kept; the choice is written
//! to `<cache dir>/variants-<adapter key>.json` so later runs skip the measurement.

use crate::files::write_atomically;
use crate::gpu::Gpu;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct VariantChooser {
    /// The adapter's cache file.
    path: Option<PathBuf>,
    /// A training run's own record, which wins over the cache (see `for_run`), and what it
    /// holds. Every choice the run uses is written there, from the cache or measured.
    pinned: Option<(PathBuf, BTreeMap<String, String>)>,
    choices: BTreeMap<String, String>,
}

/// The file's choices, or none (a missing or unreadable file only costs a measurement).
fn read_choices(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
}

/// `$SHAKESHAKE_CACHE_DIR`, else `$XDG_CACHE_HOME/shakeshake`, else `~/.cache/shakeshake`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SHAKESHAKE_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("shakeshake"))
}

/// FNV-1a over every embedded shader's text.
fn shaders_hash() -> u64 {
    crate::gpu::shaders::FILES
        .iter()
        .flat_map(|(_, text)| text.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

impl VariantChooser {
    /// Choices remembered on disk for this adapter (none yet is fine; an unreadable file is
    /// ignored and rewritten).
    pub fn for_adapter(gpu: &Gpu) -> Self {
        // A change to any shader makes earlier measurements stale: the file name says which
        // shaders they were made with.
        let name = format!("variants-{}-{:016x}.json", gpu.adapter_key(), shaders_hash());
        let path = cache_dir().map(|d| d.join(name));
        let choices = path.as_deref().map(read_choices).unwrap_or_default();
        VariantChooser { path, pinned: None, choices }
    }

    /// As `for_adapter`, but the choices a training run made are kept in its own `file` and
    /// win over the cache, so a resumed run uses the same kernels, whatever the cache says
    /// by then (kernels that add in a different order round differently).
    pub fn for_run(gpu: &Gpu, file: &Path) -> Self {
        let mut chooser = Self::for_adapter(gpu);
        let pinned = read_choices(file);
        chooser.choices.extend(pinned.clone());
        chooser.pinned = Some((file.to_path_buf(), pinned));
        chooser
    }

    /// Measures every time and remembers nothing on disk.
    pub fn in_memory() -> Self {
        VariantChooser { path: None, pinned: None, choices: BTreeMap::new() }
    }

    /// The remembered variant for `key`, or the fastest of `candidates` by `measure_ms`, which
    /// is also given the best time so far (a candidate may stop early once clearly slower).
    pub fn choose<V: Copy>(
        &mut self,
        key: &str,
        candidates: &[V],
        name: impl Fn(V) -> &'static str,
        mut measure_ms: impl FnMut(V, f64) -> f64,
    ) -> V {
        assert!(!candidates.is_empty(), "{key}: no variant supports it");
        if let Some(known) = self.choices.get(key)
            && let Some(v) = candidates.iter().find(|v| name(**v) == known)
        {
            self.pin(key, name(*v));
            return *v;
        }
        let best = if candidates.len() == 1 {
            candidates[0]
        } else {
            let mut best = (candidates[0], f64::INFINITY);
            for v in candidates {
                let ms = measure_ms(*v, best.1);
                if ms < best.1 {
                    best = (*v, ms);
                }
            }
            best.0
        };
        self.choices.insert(key.to_string(), name(best).to_string());
        self.save();
        self.pin(key, name(best));
        best
    }

    /// Record a training run's choice in its own file (once), so that a resume computes with
    /// the same kernels whatever the shared cache says by then.
    fn pin(&mut self, key: &str, variant: &str) {
        if let Some((file, pinned)) = &mut self.pinned
            && pinned.get(key).map(String::as_str) != Some(variant)
        {
            pinned.insert(key.to_string(), variant.to_string());
            let json = serde_json::to_vec_pretty(pinned).expect("choices serialise");
            // Best effort, like the cache: the run directory's own writes report a full disk.
            let _ = write_atomically(file, &json);
        }
    }

    fn save(&self) {
        // Best effort: an unwritable cache only costs a measurement next time. The cache is
        // shared, so add to what is there now rather than overwrite it.
        if let Some(path) = &self.path {
            let mut all = read_choices(path);
            all.extend(self.choices.clone());
            let json = serde_json::to_vec_pretty(&all).expect("choices serialise");
            let dir = path.parent().expect("cache path has a parent");
            let _ = std::fs::create_dir_all(dir).map(|_| write_atomically(path, &json));
        }
    }
}
