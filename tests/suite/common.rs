//! Shared by the tests: the devices the GPU tests run on, tiny data, temporary folders, and
//! the command line. (The GPU-vs-reference helpers are `shakeshake::checks`.)
#![allow(dead_code)] // each test binary uses a different part of this module

use shakeshake::checks::Breadth;
use shakeshake::gpu::{AdapterChoice, Gpu, LimitsMode};
use std::cell::Cell;
use std::sync::OnceLock;

/// Every device the tests run on, each opened once per test binary: `SHAKESHAKE_ADAPTER`'s
/// choice if it is set, else every adapter wgpu finds that can open a device (here lavapipe
/// through Vulkan, and llvmpipe through GL where EGL is installed: two drivers and two
/// shader paths, SPIR-V and naga's GLSL), the first of them once more with only WebGPU's
/// default limits and no optional features (no subgroups, no timestamps), and once more with
/// 1-D grids that spread over y past 1 workgroup (as 8 million invocations would), so every
/// elementwise kernel's `flat_index` is exercised.
pub fn gpus() -> &'static [Gpu] {
    &devices().0
}

/// How many edge shapes the checks run on each of `gpus()`: every one on the first adapter
/// (and its lowered twins), each kernel at one on the others, another driver compiling the
/// same arithmetic (`Breadth::Sampled`). Every one on every device is an ignored test of
/// tests/ops, which CI runs too (`cargo test --release -- --ignored`).
pub fn breadths() -> &'static [Breadth] {
    &devices().1
}

fn devices() -> &'static (Vec<Gpu>, Vec<Breadth>) {
    static DEVICES: OnceLock<(Vec<Gpu>, Vec<Breadth>)> = OnceLock::new();
    DEVICES.get_or_init(|| {
        let gpus: Vec<(Gpu, Breadth)> = if std::env::var_os("SHAKESHAKE_ADAPTER").is_some() {
            let chosen = Gpu::open(&AdapterChoice::from_flag_or_env(None)).expect("tests need a GPU adapter");
            vec![(chosen, Breadth::Full)]
        } else {
            let adapters = shakeshake::gpu::list_adapters();
            let strict = adapters.first().map(|a| (0, a.clone(), LimitsMode::WebGpuDefault));
            let all = adapters.into_iter().enumerate().map(|(i, a)| (i, a, LimitsMode::Adapter));
            let opened = all.chain(strict).filter_map(|(i, a, mode)| {
                let breadth = if i == 0 { Breadth::Full } else { Breadth::Sampled };
                Gpu::open_adapter(a, format!("adapter {i}"), mode)
                    .inspect_err(|e| eprintln!("not testing on adapter {i} ({mode:?}): {e:#}"))
                    .ok()
                    .map(|gpu| (gpu, breadth))
            });
            let mut gpus: Vec<(Gpu, Breadth)> = opened.collect();
            if let Some((first, breadth)) = gpus.first() {
                gpus.push((first.with_grid_max_x(1), *breadth));
            }
            gpus
        };
        assert!(!gpus.is_empty(), "tests need a GPU adapter (on Linux: apt-get install mesa-vulkan-drivers)");
        for (gpu, breadth) in &gpus {
            eprintln!("testing on {} ({breadth:?} edge shapes)", gpu.describe());
        }
        gpus.into_iter().unzip()
    })
}

thread_local! {
    /// Which of `gpus()` this test thread runs on now.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The device a test runs on now (see `on_every_gpu`); the first of `gpus()` otherwise.
pub fn gpu() -> &'static Gpu {
    &gpus()[CURRENT.get()]
}

/// The breadth of checks on `gpu()`.
pub fn breadth() -> Breadth {
    breadths()[CURRENT.get()]
}

/// Run `test` once on every adapter of `gpus()`; `gpu()` returns each in turn, and
/// `assert_close` names it. On a GL device one test at a time: wgpu's GL backend has one
/// context a device, which a thread waits at most 6 s for and then panics ("Could not lock
/// adapter context"), and on a new machine one test's pipelines can hold it longer while
/// two cores compile everything (seen once, in `ops::batch_norm`).
pub fn on_every_gpu(test: impl Fn()) {
    static GL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    for i in 0..gpus().len() {
        CURRENT.set(i);
        let _one_at_a_time = (gpus()[i].info.backend == wgpu::Backend::Gl)
            .then(|| GL.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        test();
    }
    CURRENT.set(0);
}

/// A small CIFAR-shaped data set in `dir`/cifar-10-batches-bin: `records` images a file (five
/// training files and a test file), whose brightness and colour depend on the class, so a
/// network can learn it quickly.
pub fn tiny_cifar(dir: &std::path::Path, records: usize) {
    use shakeshake::train::data::{Dataset, FOLDER, TEST_FILE, TRAIN_FILES, write_records};
    let folder = dir.join(FOLDER);
    std::fs::create_dir_all(&folder).unwrap();
    for (f, name) in TRAIN_FILES.iter().chain([&TEST_FILE]).enumerate() {
        let mut d = Dataset::default();
        for i in 0..records {
            let label = ((i * 7 + f) % 10) as u8;
            d.labels.push(label);
            d.pixels.extend((0..3072).map(|p| {
                let noise = shakeshake::random::pcg_hash((f * 1_000_000 + i * 3072 + p) as u32) % 48;
                let channel_boost = if p / 1024 == label as usize % 3 { 60 } else { 0 };
                (noise + 18 * label as u32 + channel_boost) as u8
            }));
        }
        write_records(&folder.join(name), &d).unwrap();
    }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shakeshake-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// The command line, for the tests that run it end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The CLI with its kernel-variant cache in `cache`.
pub fn command(cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shakeshake"));
    command.args(args).env("SHAKESHAKE_CACHE_DIR", cache);
    command
}

/// `dir`/cache holding the kernel choices for the tests' tiny network (8 2x8d, as
/// `tiny_train` trains it) on the default adapter, measured once per test binary by a short
/// `bench train`: a test that is not about choosing kernels then measures nothing in its
/// processes. Each test still has a cache of its own, so none sees another's choices.
pub fn warm_cache(dir: &Path) -> PathBuf {
    static SEED: OnceLock<(std::ffi::OsString, Vec<u8>)> = OnceLock::new();
    let (name, bytes) = SEED.get_or_init(|| {
        let seed = temp_dir("kernel-cache-seed");
        let args = ["bench", "train", "--depth", "8", "--width", "8", "--batch-size", "16", "--steps", "1"];
        assert_ok(&shakeshake(&seed, &args));
        let mut files = std::fs::read_dir(&seed).unwrap().map(|e| e.unwrap());
        let file = files
            .find(|f| f.file_name().to_string_lossy().starts_with("variants-"))
            .expect("bench train wrote its choices");
        let kept = (file.file_name(), std::fs::read(file.path()).unwrap());
        std::fs::remove_dir_all(&seed).unwrap();
        kept
    });
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join(name), bytes).unwrap();
    cache
}

pub fn shakeshake(cache: &Path, args: &[&str]) -> Output {
    command(cache, args).output().expect("running shakeshake")
}

/// `train` of a tiny network into `run` (8 2x8d, batch 16, 16 test images of 20-record
/// files), then `extra`, which gives --epochs and --train-subset.
pub fn tiny_train(data: &Path, run: &Path, extra: &[&str]) -> Vec<String> {
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let base = ["train", "--data", d, "--run-dir", r, "--depth", "8", "--width", "8", "--batch-size", "16"];
    let more = ["--test-subset", "16", "--records-per-file", "20"];
    base.iter().chain(&more).chain(extra).map(|a| a.to_string()).collect()
}

pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "should have succeeded:\n{}", text(out));
}

#[track_caller]
pub fn assert_fails_with(out: &Output, needles: &[&str]) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "should have failed with a message, not a panic or abort:\n{t}");
    for n in needles {
        assert!(t.contains(n), "the error should mention {n:?}:\n{t}");
    }
}

/// Per epoch: train loss and accuracy, test loss and accuracy, learning rate (metrics.csv).
pub fn losses(run: &Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().skip(1).map(|l| l.split(',').skip(1).take(5).map(str::to_string).collect()).collect()
}

#[track_caller]
pub fn assert_same_run(a: &Path, b: &Path) {
    use shakeshake::train::checkpoint::load;
    assert_eq!(losses(a), losses(b), "losses differ");
    let (x, y) = (
        load(&a.join("model.safetensors"), None).unwrap(),
        load(&b.join("model.safetensors"), None).unwrap(),
    );
    assert_eq!(x.params, y.params, "weights differ");
    assert_eq!(x.momentum, y.momentum, "momentum differs");
    assert_eq!(x.position, y.position);
}
