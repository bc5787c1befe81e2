//! Choosing among kernel variants once per adapter and driver.
//!
//! A kernel that is right for a GPU (workgroup-memory tiles) can be 20-50x too slow on a CPU
//! adapter and the reverse, so each hot op keeps several variants; and real drivers compute
//! some kernel/shape pairs wrongly. The first time a shape is seen, every variant that
//! supports it is checked against the CPU reference, those that pass are timed, and the
//! fastest is kept in the kernel cache (`cache`). A training run also pins its choices in its
//! own file, which wins over the cache, so that a resume computes with the same kernels.

use super::cache::{Choices, Entries, KernelCache};
use crate::checks::Check;
use crate::files::write_atomically;
use crate::gpu::{DeviceLost, Gpu};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// How far a choice can be trusted on this adapter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Vouched {
    /// A run's pinned choice the cache does not vouch for: checked before it is used.
    NotYet,
    /// A pinned choice checked here; not for the cache, whose own choice may be faster.
    CheckedHere,
    /// Read from the sealed cache, or measured here: the cache keeps it.
    ForTheCache,
}

/// What this chooser knows of one key (a pass of a shape).
#[derive(Default)]
struct Known {
    /// The variant to use, and how far it is trusted.
    choice: Option<(String, Vouched)>,
    /// Variants found wrong here (or by the cache), and why.
    failed: BTreeMap<String, String>,
    /// Milliseconds an image of each variant, measured once in this process.
    ms_per_image: HashMap<String, f64>,
}

pub struct VariantChooser {
    cache: KernelCache,
    /// A training run's own record of the choices it uses (see `with_run_file`), and what it
    /// holds.
    pinned: Option<(PathBuf, Choices)>,
    known: BTreeMap<String, Known>,
}

impl VariantChooser {
    /// Choices remembered on disk for this adapter (none yet is fine).
    pub fn for_adapter(gpu: &Gpu) -> Self {
        Self::with_cache(KernelCache::for_adapter(gpu))
    }

    /// Measures every time and remembers nothing on disk.
    pub fn in_memory(gpu: &Gpu) -> Self {
        Self::with_cache(KernelCache::none(gpu))
    }

    fn with_cache(cache: KernelCache) -> Self {
        let entries = cache.read();
        let mut known: BTreeMap<String, Known> = BTreeMap::new();
        for (key, variant) in entries.choices {
            known.entry(key).or_default().choice = Some((variant, Vouched::ForTheCache));
        }
        for (key, failed) in entries.failed {
            known.entry(key).or_default().failed = failed;
        }
        VariantChooser { cache, pinned: None, known }
    }

    /// Takes `variant` as `key`'s choice, as if checked here, without running anything: how
    /// `shakeshake kernels` builds a step whose pipelines it only creates. In memory only.
    pub fn assume(&mut self, key: &str, variant: &str) {
        assert!(!self.cache.is_kept(), "an assumed choice must not reach the kernel cache");
        self.entry(key).choice = Some((variant.to_string(), Vouched::ForTheCache));
    }

    /// The choices a training run made are kept in its own `file` and win over the cache, so
    /// a resumed run uses the same kernels, whatever the cache says by then (kernels that add
    /// in a different order round differently). A pinned choice the cache does not vouch for
    /// is checked again before it is used.
    pub fn with_run_file(mut self, file: &Path) -> Self {
        let pinned: Choices = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        for (key, variant) in &pinned {
            let known = self.entry(key);
            if known.choice.as_ref().map(|(v, _)| v) != Some(variant) {
                known.choice = Some((variant.clone(), Vouched::NotYet));
            }
        }
        self.pinned = Some((file.to_path_buf(), pinned));
        self
    }

    fn entry(&mut self, key: &str) -> &mut Known {
        self.known.entry(key.to_string()).or_default()
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
        let speeds = &mut self.entry(key).ms_per_image;
        if let Some(&ms) = speeds.get(variant) {
            return Ok(ms);
        }
        let ms = measure()?;
        speeds.insert(variant.to_string(), ms);
        Ok(ms)
    }

    /// The variant remembered for `key` (a run's own choice, or the cache's), if any.
    pub fn known(&self, key: &str) -> Option<&str> {
        self.known.get(key)?.choice.as_ref().map(|(v, _)| v.as_str())
    }

    fn has_failed(&self, key: &str, variant: &str) -> bool {
        self.known.get(key).is_some_and(|k| k.failed.contains_key(variant))
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
        let remembered = self.known.get(key).and_then(|k| k.choice.clone());
        if let Some((known, vouched)) = remembered
            && let Some(&v) = candidates.iter().find(|v| name(**v) == known)
            && !self.has_failed(key, &known)
            && (vouched != Vouched::NotYet || self.passes(key, &[v], &name, &mut verify)?.len() == 1)
        {
            if vouched == Vouched::NotYet {
                // Checked once is enough for this chooser's other graphs.
                self.entry(key).choice = Some((known, Vouched::CheckedHere));
            }
            self.pin(key, name(v));
            return Ok(v);
        }
        let untested: Vec<V> =
            candidates.iter().copied().filter(|v| !self.has_failed(key, name(*v))).collect();
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
            let failed = self.known.get(key).map(|k| k.failed.clone()).unwrap_or_default();
            bail!(
                "no kernel variant computes {key} correctly on {}: {failed:?}. Run `shakeshake selftest` and \
                 include its output in a bug report",
                self.cache.adapter(),
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
        self.entry(key).failed.insert(variant.to_string(), why);
        self.cache.update(|on_disk| add_to(&self.known, on_disk));
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
        let Self { cache, known, .. } = self;
        cache.update(|on_disk| {
            let saved = on_disk.choices.get(key).filter(|s| passing.contains(&s.as_str()));
            let choice = saved.cloned().unwrap_or_else(|| measured.to_string());
            known.entry(key.to_string()).or_default().choice = Some((choice.clone(), Vouched::ForTheCache));
            add_to(known, on_disk);
            choice
        })
    }
}

/// Adds what `known` holds for the cache (choices vouched for here, failures) to `on_disk`.
fn add_to(known: &BTreeMap<String, Known>, on_disk: &mut Entries) {
    for (key, known) in known {
        if let Some((variant, Vouched::ForTheCache)) = &known.choice {
            on_disk.choices.insert(key.clone(), variant.clone());
        }
        if !known.failed.is_empty() {
            on_disk.failed.entry(key.clone()).or_default().extend(known.failed.clone());
        }
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
            precision: "f32",
            max_error,
            tolerance: 0.5,
            failure: None,
        }
    }

    /// Two choosers that measure one shape at once (two trainings, or tests beside each
    /// other) end with the same choice, the first saved, whatever the second measured; a
    /// saved choice that fails here is not adopted.
    #[test]
    fn the_first_choice_saved_wins_where_it_passes() {
        let dir = std::env::temp_dir().join(format!("shakeshake-chooser-{}", std::process::id()));
        let path = dir.join("variants.json");
        let chooser = || VariantChooser::with_cache(KernelCache::at(path.clone()));
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
