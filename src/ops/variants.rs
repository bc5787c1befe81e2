//! Choosing among kernel variants by measuring them once, per adapter and driver.
//!
//! A kernel that is right for a GPU (workgroup-memory tiles) can be 20-50x too slow on a CPU
//! adapter and the reverse, so each hot op keeps several variants. The first time a shape is
//! seen, every variant that supports it is timed and the fastest kept; the choice is written
//! to `<cache dir>/variants-<adapter key>.json` so later runs skip the measurement.

use crate::gpu::Gpu;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct VariantChooser {
    path: Option<PathBuf>,
    choices: BTreeMap<String, String>,
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
        let choices = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        VariantChooser { path, choices }
    }

    /// Measures every time and remembers nothing on disk.
    pub fn in_memory() -> Self {
        VariantChooser { path: None, choices: BTreeMap::new() }
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
        best
    }

    fn save(&self) {
        let Some(path) = &self.path else { return };
        let text = serde_json::to_string_pretty(&self.choices).expect("choices serialise");
        // Best effort: a read-only cache directory only costs a measurement next time.
        // Several processes and threads may save at once: each writes its own file first.
        let tmp =
            path.with_extension(format!("{}-{:?}.tmp", std::process::id(), std::thread::current().id()));
        let _ = std::fs::create_dir_all(path.parent().expect("cache path has a parent"))
            .and_then(|_| std::fs::write(&tmp, text))
            .and_then(|_| std::fs::rename(&tmp, path));
    }
}
