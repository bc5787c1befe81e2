//! Choosing among kernel variants once per adapter and driver, and remembering the choice.
//!
//! A kernel that is right for a GPU (workgroup-memory tiles) can be 20-50x too slow on a CPU
//! adapter and the reverse, so each hot op keeps several variants; and real drivers compute
//! some kernel/shape pairs wrongly. The first time a shape is seen, every variant that
//! supports it is checked against the CPU reference, those that pass are timed, and the
//! fastest is kept. Choices and failures go to `<cache dir>/variants-<adapter key>-<kernels
//! hash>.json`, sealed with a checksum: a file that does not parse or whose checksum does
//! not match (corrupt, or edited by hand) is ignored with a warning, never trusted.

use crate::checks::Check;
use crate::files::{cache_dir, write_atomically};
use crate::gpu::{DeviceLost, Gpu};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Choices = BTreeMap<String, String>;
/// Per key, the variants found wrong there and how wrong.
type Failures = BTreeMap<String, BTreeMap<String, String>>;

/// The cache file.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct CacheFile {
    adapter: String,
    driver: String,
    choices: Choices,
    failed: Failures,
    checksum: String,
}

/// FNV-1a, 64 bits.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn checksum(choices: &Choices, failed: &Failures) -> String {
    let text = serde_json::to_string(&(choices, failed)).expect("choices serialise");
    format!("{:016x}", fnv(text.bytes()))
}

/// The cache's choices and failures; nothing if it is missing, and nothing (with a
/// warning) if it is damaged or was edited.
fn read_cache(path: &Path) -> (Choices, Failures) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Default::default();
    };
    match serde_json::from_str::<CacheFile>(&text) {
        Ok(file) if file.checksum == checksum(&file.choices, &file.failed) => (file.choices, file.failed),
        outcome => {
            let why = match outcome {
                Ok(_) => "its checksum does not match (edited by hand?)".to_string(),
                Err(e) => format!("it does not parse ({e})"),
            };
            eprintln!(
                "warning: ignoring the kernel cache {}: {why}. Kernels will be measured again.",
                path.display()
            );
            Default::default()
        }
    }
}

/// A run's own record of its choices (a plain map), or none.
fn read_pinned(path: &Path) -> Choices {
    std::fs::read_to_string(path).ok().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default()
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

pub struct VariantChooser {
    /// The adapter's cache file.
    path: Option<PathBuf>,
    adapter: String,
    driver: String,
    /// A training run's own record, which wins over the cache (see `for_run`), and what it
    /// holds. Every choice the run uses is written there, from the cache or measured.
    pinned: Option<(PathBuf, Choices)>,
    choices: Choices,
    /// Choices checked on this adapter: read from a sealed cache, or made here.
    checked: Choices,
    /// Pinned choices checked here (not written to the cache, whose choice may be faster).
    pinned_checked: std::collections::BTreeSet<(String, String)>,
    failed: Failures,
    /// Milliseconds an image of a chosen kernel took, per key and variant, measured once
    /// in this process (see `ms_per_image`).
    speeds: std::collections::HashMap<(String, String), f64>,
}

impl VariantChooser {
    /// Choices remembered on disk for this adapter (none yet is fine).
    pub fn for_adapter(gpu: &Gpu) -> Self {
        // A change to any shader or to the set of variants makes earlier measurements stale:
        // the file name says which kernels they were made with.
        let name = format!("variants-{}-{:016x}.json", gpu.adapter_key(), kernels_hash(WGPU_VERSION));
        Self::with_cache(gpu, cache_dir().map(|d| d.join(name)))
    }

    /// Measures every time and remembers nothing on disk.
    pub fn in_memory(gpu: &Gpu) -> Self {
        Self::with_cache(gpu, None)
    }

    fn with_cache(gpu: &Gpu, path: Option<PathBuf>) -> Self {
        let driver = format!("{} {} (wgpu {WGPU_VERSION})", gpu.info.driver, gpu.info.driver_info);
        Self::described(gpu.describe(), driver, path)
    }

    fn described(adapter: String, driver: String, path: Option<PathBuf>) -> Self {
        let (choices, failed) = path.as_deref().map(read_cache).unwrap_or_default();
        VariantChooser {
            path,
            adapter,
            driver,
            pinned: None,
            checked: choices.clone(),
            pinned_checked: Default::default(),
            choices,
            failed,
            speeds: Default::default(),
        }
    }

    /// Takes `variant` as `key`'s choice, as if checked here, without running anything: how
    /// `shakeshake kernels` builds a step whose pipelines it only creates. In memory only.
    pub fn assume(&mut self, key: &str, variant: &str) {
        assert!(self.path.is_none(), "an assumed choice must not reach the kernel cache");
        self.choices.insert(key.to_string(), variant.to_string());
        self.checked.insert(key.to_string(), variant.to_string());
    }

    /// The choices a training run made are kept in its own `file` and win over the cache, so
    /// a resumed run uses the same kernels, whatever the cache says by then (kernels that add
    /// in a different order round differently). A pinned choice the cache does not vouch for
    /// is checked again before it is used.
    pub fn with_run_file(mut self, file: &Path) -> Self {
        let pinned = read_pinned(file);
        self.choices.extend(pinned.clone());
        self.pinned = Some((file.to_path_buf(), pinned));
        self
    }

    /// Milliseconds an image of `variant` takes for `key`: `measure`d the first time it is
    /// asked for, remembered after (a run builds its training and evaluation steps from the
    /// same choices).
    pub fn ms_per_image<E>(
        &mut self,
        key: &str,
        variant: &str,
        measure: impl FnOnce() -> Result<f64, E>,
    ) -> Result<f64, E> {
        let entry = (key.to_string(), variant.to_string());
        if let Some(&ms) = self.speeds.get(&entry) {
            return Ok(ms);
        }
        let ms = measure()?;
        self.speeds.insert(entry, ms);
        Ok(ms)
    }

    /// The variant remembered for `key` (a run's own choice, or the cache's), if any.
    pub fn known(&self, key: &str) -> Option<&str> {
        self.choices.get(key).map(String::as_str)
    }

    /// The variant of `candidates` to use for `key`: the remembered one, or else the fastest
    /// by `time` (milliseconds of each variant given, or why it cannot run) of those whose
    /// `verify` checks pass (one check a variant given, in order). A variant that fails is
    /// recorded as failed for `key`, reported once, and never chosen; none passing is an error.
    pub fn choose<V: Copy>(
        &mut self,
        key: &str,
        candidates: &[V],
        name: impl Fn(V) -> &'static str,
        mut verify: impl FnMut(&[V]) -> Result<Vec<Check>, DeviceLost>,
        time: impl FnOnce(&[V]) -> Result<Vec<Result<f64, String>>, DeviceLost>,
    ) -> Result<V> {
        assert!(!candidates.is_empty(), "{key}: no variant supports it");
        let known_bad = |failed: &Failures, v: V| failed.get(key).is_some_and(|f| f.contains_key(name(v)));
        if let Some(known) = self.choices.get(key)
            && let Some(&v) = candidates.iter().find(|v| name(**v) == known)
            && !known_bad(&self.failed, v)
        {
            let entry = (key.to_string(), known.clone());
            let vouched = self.checked.get(key) == Some(known) || self.pinned_checked.contains(&entry);
            if vouched || self.passes(key, &[v], &name, &mut verify)?.len() == 1 {
                // Checked once is enough for this chooser's other graphs.
                self.pinned_checked.insert(entry);
                self.pin(key, name(v));
                return Ok(v);
            }
        }
        let untested: Vec<V> = candidates.iter().copied().filter(|v| !known_bad(&self.failed, *v)).collect();
        let mut passing = self.passes(key, &untested, &name, &mut verify)?;
        if passing.len() > 1 {
            let mut timed = vec![];
            for (v, ms) in passing.iter().zip(time(&passing)?) {
                match ms {
                    Ok(ms) => timed.push((*v, ms)),
                    Err(why) => self.reject(key, name(*v), "cannot run", why),
                }
            }
            // Fastest first; a stable sort keeps the candidates' order between equals.
            timed.sort_by(|a, b| a.1.total_cmp(&b.1));
            passing = timed.into_iter().map(|(v, _)| v).collect();
        }
        let Some(&best) = passing.first() else {
            bail!(
                "no kernel variant computes {key} correctly on {}: {:?}. Run `shakeshake selftest` and \
                 include its output in a bug report",
                self.adapter,
                self.failed.get(key).cloned().unwrap_or_default()
            )
        };
        let chosen =
            self.record_choice(key, name(best), &passing.iter().map(|v| name(*v)).collect::<Vec<_>>());
        let best = *passing.iter().find(|v| name(**v) == chosen).expect("the choice is one that passed");
        self.pin(key, name(best));
        Ok(best)
    }

    /// The variants of `candidates` whose checks pass; the others are recorded as failed. A
    /// device lost while checking fails nothing: it is the error.
    fn passes<V: Copy>(
        &mut self,
        key: &str,
        candidates: &[V],
        name: &impl Fn(V) -> &'static str,
        verify: &mut impl FnMut(&[V]) -> Result<Vec<Check>, DeviceLost>,
    ) -> Result<Vec<V>, DeviceLost> {
        let checks = verify(candidates)?;
        assert_eq!(checks.len(), candidates.len(), "one check a candidate");
        let mut passing = vec![];
        for (v, check) in candidates.iter().zip(checks) {
            match (check.passed(), check.failure) {
                (true, _) => passing.push(*v),
                (false, Some(failure)) => self.reject(key, name(*v), "does not compile", failure),
                (false, None) => {
                    let why = format!("error {:.2e} over tolerance {:.0e}", check.max_error, check.tolerance);
                    self.reject(key, name(*v), "is wrong", why);
                }
            }
        }
        Ok(passing)
    }

    /// Records `variant` as failed for `key` (it `is wrong`, `does not compile`, ...) and
    /// reports it, once: the cache remembers it.
    pub fn reject(&mut self, key: &str, variant: &str, verdict: &str, why: String) {
        eprintln!("warning: {key}: kernel variant {variant} {verdict} on this adapter ({why}); not used.");
        self.failed.entry(key.to_string()).or_default().insert(variant.to_string(), why);
        self.save();
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

    /// Records `measured` as `key`'s choice, unless the cache already holds another that
    /// passed here: a run beside this one (a second training, a test) measured the same shape
    /// and saved first, and the first choice saved wins, so that two runs of one configuration
    /// compute with the same kernels (timings differ between measurements, and kernels that
    /// add in a different order round differently). Returns the choice.
    fn record_choice(&mut self, key: &str, measured: &str, passing: &[&str]) -> String {
        let _saving = lock_saving();
        let on_disk = self.path.as_deref().map(read_cache);
        let saved = on_disk.as_ref().and_then(|(choices, _)| choices.get(key));
        let choice =
            saved.filter(|s| passing.contains(&s.as_str())).cloned().unwrap_or_else(|| measured.to_string());
        self.choices.insert(key.to_string(), choice.clone());
        self.checked.insert(key.to_string(), choice.clone());
        self.write_merged(on_disk);
        choice
    }

    fn save(&self) {
        let _saving = lock_saving();
        self.write_merged(self.path.as_deref().map(read_cache));
    }

    /// Writes `on_disk` (the cache as read under `lock_saving`, which callers hold) with this
    /// chooser's choices and failures added.
    fn write_merged(&self, on_disk: Option<(Choices, Failures)>) {
        // Best effort: an unwritable cache only costs a measurement next time. The cache is
        // shared, so add to what is there now rather than overwrite it.
        let (Some(path), Some((mut choices, mut failed))) = (&self.path, on_disk) else { return };
        choices.extend(self.checked.clone());
        for (key, variants) in &self.failed {
            failed.entry(key.clone()).or_default().extend(variants.clone());
        }
        let file = CacheFile {
            adapter: self.adapter.clone(),
            driver: self.driver.clone(),
            checksum: checksum(&choices, &failed),
            choices,
            failed,
        };
        let json = serde_json::to_vec_pretty(&file).expect("choices serialise");
        let dir = path.parent().expect("cache path has a parent");
        let _ = std::fs::create_dir_all(dir).map(|_| write_atomically(path, &json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(variant: &str, passes: bool) -> Check {
        let max_error = if passes { 0.0 } else { 1.0 };
        Check {
            op: "conv2d",
            pass: "forward".into(),
            variant: variant.into(),
            shape: "s".into(),
            max_error,
            tolerance: 0.5,
            failure: None,
        }
    }

    #[test]
    fn another_wgpu_measures_again() {
        assert_ne!(kernels_hash("30.0.2"), kernels_hash("30.0.3"));
        assert!(WGPU_VERSION.starts_with("30."), "{WGPU_VERSION}");
    }

    /// Two choosers that measure one shape at once (two trainings, or tests beside each
    /// other) end with the same choice, the first saved, whatever the second measured; a
    /// saved choice that fails here is not adopted.
    #[test]
    fn the_first_choice_saved_wins_where_it_passes() {
        let dir = std::env::temp_dir().join(format!("shakeshake-chooser-{}", std::process::id()));
        let path = dir.join("variants.json");
        let chooser = || VariantChooser::described("adapter".into(), "driver".into(), Some(path.clone()));
        let name = |v: &'static str| v;
        let all_pass = |vs: &[&'static str]| Ok(vs.iter().map(|v| check(v, true)).collect());
        let a_fails = |vs: &[&'static str]| Ok(vs.iter().map(|v| check(v, *v != "a")).collect());
        let fastest = |winner: &'static str| {
            move |vs: &[&'static str]| {
                Ok(vs.iter().map(|v| Ok(if *v == winner { 1.0 } else { 2.0 })).collect())
            }
        };
        // All three read the cache before any of them saves.
        let (mut first, mut second, mut third) = (chooser(), chooser(), chooser());
        assert_eq!(first.choose("k", &["a", "b", "c"], name, all_pass, fastest("a")).unwrap(), "a");
        assert_eq!(second.choose("k", &["a", "b", "c"], name, all_pass, fastest("b")).unwrap(), "a");
        assert_eq!(third.choose("k", &["a", "b", "c"], name, a_fails, fastest("c")).unwrap(), "c");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
