//! Safe on any adapter: a kernel variant that computes wrongly or does not compile is never
//! chosen, the kernel cache cannot be tampered with, `selftest` reports what it checked, a
//! lost device leaves the run resumable, and a device whose bindings are smaller than the parameters trains the
//! same, bit for bit, through the split SGD update.

use crate::common::*;
use shakeshake::gpu::{Gpu, LimitsMode, list_adapters};
use shakeshake::model::gpu_params::GpuParams;
use shakeshake::model::gpu_step::StepGraph;
use shakeshake::model::{Graph, Mode, ModelConfig, ParamStore};
use shakeshake::ops::StepUniform;
use shakeshake::selftest::test_batch;
use shakeshake::shapes::Precision;
use shakeshake::shapes::{Normalization, SgdSettings};
use shakeshake::train::session::check_fits;
use shakeshake::tuning::VariantChooser;
use std::path::Path;
use std::process::Output;

/// A tiny run of one epoch into `run`, with `env` set.
fn train_with(cache: &Path, data: &Path, run: &Path, env: &[(&str, &str)]) -> Output {
    let args = tiny_train(data, run, &["--epochs", "2", "--train-subset", "32", "--lr", "0.05"]);
    let mut command = command(cache, &strs(&args));
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The cache directory's one file of kernel choices (beside it on Vulkan: the driver's
/// compiled pipelines).
fn cache_file(cache: &Path) -> std::path::PathBuf {
    let files = std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().path());
    let choices: Vec<_> = files.filter(|f| f.extension() == Some("json".as_ref())).collect();
    assert_eq!(choices.len(), 1, "{choices:?}");
    choices[0].clone()
}

/// A variant that computes wrongly, or whose kernels the driver will not compile, is never
/// chosen, is reported once, and training goes on with another.
#[test]
fn a_variant_that_computes_wrongly_or_does_not_compile_is_never_chosen_and_is_reported_once() {
    let dir = temp_dir("broken-variant");
    tiny_cifar(&dir, 20);
    let clean = train_with(&warm_cache(&dir.join("seeded")), &dir, &dir.join("clean"), &[]);
    assert_ok(&clean);
    // Break the variant this adapter prefers for the network's 3x3 convolutions.
    let chosen = read_json(&dir.join("clean/variants.json"));
    let favourite = chosen["conv2d forward 3x3 8->8 @32"].as_str().unwrap().to_string();
    for (hook, verdict) in
        [("SHAKESHAKE_BREAK_VARIANT", "is wrong"), ("SHAKESHAKE_UNCOMPILABLE_VARIANT", "does not compile")]
    {
        let runs = dir.join(hook);
        let cache = runs.join("cache");
        let hook = [(hook, favourite.as_str())];
        let first = train_with(&cache, &dir, &runs.join("first"), &hook);
        assert_ok(&first);
        let report = format!("kernel variant {favourite} {verdict} on this adapter");
        assert!(text(&first).contains(&report), "{}", text(&first));
        // Quoted: a name is a prefix of others ("register_subgroup" of "register_subgroup_n16").
        let quoted = format!("\"{favourite}\"");
        let pinned = std::fs::read_to_string(runs.join("first/variants.json")).unwrap();
        assert!(!pinned.contains(&quoted), "{favourite} was chosen although it {verdict}:\n{pinned}");
        let cached = read_json(&cache_file(&cache));
        let failed = cached["failed"].as_object().unwrap();
        assert!(failed.values().any(|v| v.get(&favourite).is_some()), "{cached}");
        assert!(!cached["adapter"].as_str().unwrap().is_empty() && cached["driver"].is_string(), "{cached}");

        // Known from the cache: not checked, nor reported, again; still never chosen.
        let second = train_with(&cache, &dir, &runs.join("second"), &hook);
        assert_ok(&second);
        assert!(!text(&second).contains(verdict), "{}", text(&second));
        let pinned = std::fs::read_to_string(runs.join("second/variants.json")).unwrap();
        assert!(!pinned.contains(&quoted), "{pinned}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A kernel cache edited by hand is ignored with a warning, and the run measures and seals
/// it again.
#[test]
fn a_damaged_or_edited_kernel_cache_is_ignored_with_a_warning() {
    let dir = temp_dir("cache-tamper");
    tiny_cifar(&dir, 20);
    let cache = warm_cache(&dir);
    assert_ok(&train_with(&cache, &dir, &dir.join("first"), &[]));
    let file = cache_file(&cache);

    // A choice edited by hand (valid JSON) breaks the seal.
    let mut json = read_json(&file);
    let key = json["choices"].as_object().unwrap().keys().next().unwrap().clone();
    json["choices"][&key] = "tiled".into();
    json["choices"]["conv2d forward 3x3 8->8 @32"] = "register_plain".into();
    json["choices"]["conv2d grad_input 3x3 8->8 @32"] = "no_such_variant".into();
    std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
    let edited = train_with(&cache, &dir, &dir.join("edited"), &[]);
    assert_ok(&edited);
    assert!(text(&edited).contains("checksum does not match"), "{}", text(&edited));
    // Measured again and sealed again. (A file that does not parse is ignored the same way:
    // `tuning::cache`'s unit test.)
    let resealed = read_json(&file);
    assert_ne!(resealed["choices"]["conv2d grad_input 3x3 8->8 @32"], "no_such_variant");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `selftest --precision f32` on the first adapter (lavapipe here): all pass, one JSON object
/// a check; and with one variant computing wrongly and another not compiling, it fails naming
/// both and still runs the rest (its f16 kernels: `selftest_in_f16_passes_on_the_first_adapter`). The broken run comes after: it breaks register variants, whose
/// pipelines do not depend on the shape, so it compiles nothing new. (Its name sorts it
/// first, so the binary's longest test starts first.) The other adapters: see
/// `selftest_passes_on_every_other_adapter`.
#[test]
fn a_broken_or_uncompilable_variant_fails_selftest_and_the_first_adapter_passes_it() {
    let dir = temp_dir("selftest");
    let f32_only = ["selftest", "--json", "--adapter", "0", "--precision", "f32"];
    let checks = assert_selftest_passed(&shakeshake(&dir, &f32_only));
    assert!(checks.iter().all(|l| l["precision"] == "f32"));
    let broken = command(&dir, &["selftest", "--precision", "f32"])
        .env("SHAKESHAKE_BREAK_VARIANT", "register_subgroup")
        .env("SHAKESHAKE_UNCOMPILABLE_VARIANT", "register_plain")
        .output()
        .unwrap();
    assert_fails_with(&broken, &["FAILED", "checks failed", "cannot compile"]);
    if list_adapters().len() > 1 {
        assert_fails_with(&broken, &["Other adapters here"]);
    }
    let stdout = String::from_utf8_lossy(&broken.stdout);
    let rows: Vec<&str> = stdout.lines().collect();
    for variant in ["register_subgroup", "register_plain"] {
        assert!(rows.iter().any(|l| l.contains(&format!(" {variant} ")) && l.ends_with("FAIL")), "{stdout}");
    }
    assert!(stdout.contains("the driver could not compile kernel conv2d_forward_register_plain"), "{stdout}");
    assert!(rows.iter().filter(|l| l.ends_with("pass")).count() > 100, "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `selftest` passes on every other adapter (llvmpipe through GL here), side by side: each
/// is another driver, which on a new machine compiles every edge shape's kernels again, so
/// this is part of the exhaustive matrix CI runs beside the README's command.
#[test]
#[ignore = "the exhaustive matrix (minutes on a new machine): cargo test --release -- --ignored"]
fn selftest_passes_on_every_other_adapter() {
    let dir = temp_dir("selftest-others");
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = (1..list_adapters().len())
            .map(|i| {
                let dir = &dir;
                scope.spawn(move || shakeshake(dir, &["selftest", "--json", "--adapter", &i.to_string()]))
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    assert!(!outputs.is_empty(), "a second adapter (apt-get install libegl1 libegl-mesa0 libgles2)");
    outputs.iter().for_each(|out| {
        assert_selftest_passed(out);
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `selftest` on the first adapter (lavapipe has f16 in shaders) without `--precision`:
/// every check in f32 and in f16 passes. It compiles every f16 twin at every edge shape, so it
/// is part of the exhaustive matrix CI runs beside the README's command.
#[test]
#[ignore = "the exhaustive matrix (minutes on a new machine): cargo test --release -- --ignored"]
fn selftest_in_f16_passes_on_the_first_adapter() {
    let dir = temp_dir("selftest-f16");
    let checks = assert_selftest_passed(&shakeshake(&dir, &["selftest", "--json", "--adapter", "0"]));
    for precision in ["f32", "f16"] {
        for op in ["conv2d", "batch_norm", "shake", "network"] {
            let found = checks.iter().any(|l| l["op"] == op && l["precision"] == precision);
            assert!(found, "no {precision} check of {op}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `selftest --json` passed every check, of every op and the network, more than 100 in all:
/// the checks.
#[track_caller]
fn assert_selftest_passed(out: &Output) -> Vec<serde_json::Value> {
    assert_ok(out);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 100, "{} checks", lines.len());
    assert!(lines.iter().all(|l| l["passed"] == true));
    let ops =
        ["conv2d", "batch_norm", "relu", "shake", "pool", "linear", "cross_entropy", "sgd", "loss_scale"];
    for op in ops.into_iter().chain(["network"]) {
        assert!(lines.iter().any(|l| l["op"] == op), "no check of {op}");
    }
    lines
}

#[test]
fn a_lost_hung_or_skipping_device_keeps_the_last_checkpoint_and_says_to_resume() {
    let dir = temp_dir("lost-device");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    // Two steps an epoch: lost in the second epoch, after the first epoch's checkpoint.
    let lost = train_with(&cache, &dir, &run, &[("SHAKESHAKE_LOSE_DEVICE_AFTER_STEPS", "3")]);
    assert_fails_with(
        &lost,
        &["GPU stopped working (Destroyed)", "in epoch 2", "checkpoint of step 2", "--resume"],
    );
    let checkpoint = run.join("checkpoint.safetensors");
    let eval = shakeshake(
        &cache,
        &[
            "eval",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--data",
            dir.to_str().unwrap(),
            "--records-per-file",
            "20",
        ],
    );
    assert_ok(&eval);
    assert_ok(&resume_run(&cache, &run));
    assert!(run.join("model.safetensors").exists());

    // A step the GPU did not run though it reported it done (a driver that stops a long
    // command buffer): its count at the epoch's end is short, and the run ends as for a lost
    // device, with the last checkpoint intact.
    let dropped = dir.join("dropped");
    let out = train_with(&cache, &dir, &dropped, &[("SHAKESHAKE_DROP_STEP", "3")]);
    assert_fails_with(
        &out,
        &["ran 1 of the 2 steps submitted", "in epoch 2", "checkpoint of step 2", "--resume"],
    );
    assert_ok(&resume_run(&cache, &dropped));
    assert!(dropped.join("model.safetensors").exists());

    // A GPU that does not finish within the wait limit counts as hung, and the run ends as
    // for a lost device (the test fixes the limit at 1 ms; a run derives it from its steps).
    let hung = train_with(&cache, &dir, &dir.join("hung"), &[("SHAKESHAKE_WAIT_LIMIT_MS", "1")]);
    assert_fails_with(
        &hung,
        &["GPU stopped working (it had not finished its work after 1.0ms", "No checkpoint"],
    );

    // Lost before any checkpoint: nothing to resume, and it says so.
    let early = train_with(&cache, &dir, &dir.join("early"), &[("SHAKESHAKE_LOSE_DEVICE_AFTER_STEPS", "1")]);
    assert_fails_with(&early, &["GPU stopped working", "No checkpoint"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn resume_run(cache: &Path, run: &Path) -> Output {
    shakeshake(cache, &["train", "--resume", run.to_str().unwrap()])
}

/// A device whose storage bindings (72 KiB) are smaller than the parameters of 8 2x8d
/// (163 KB) updates them in ranges; three training steps on it equal three on the
/// full device bit for bit. Its limit also refuses a batch too large for it, by name,
/// before anything is allocated.
#[test]
fn a_lowered_binding_limit_splits_sgd_and_trains_the_same_bit_for_bit() {
    let adapter = list_adapters().into_iter().next().expect("an adapter");
    let full = Gpu::open_adapter(adapter.clone(), "full".into(), LimitsMode::Adapter).unwrap();
    let limits = wgpu::Limits { max_storage_buffer_binding_size: 72 << 10, ..adapter.limits() };
    let small = Gpu::open_with_limits(adapter, "small".into(), limits).unwrap();
    let config = ModelConfig::new(8, 8).unwrap();
    // The stem's output of one image (16 channels of 32 x 32) is 64 KiB; the tuner checks a
    // convolution on a window of one channel more (68 KiB).
    let batch = 1;
    check_fits(&small, config, batch, Mode::Train, Precision::F32).unwrap();
    let refused = check_fits(&small, config, 64, Mode::Train, Precision::F32).unwrap_err().to_string();
    assert!(refused.contains("maxStorageBufferBindingSize") && refused.contains("--batch-size"), "{refused}");

    let dir = temp_dir("split-sgd");
    let pinned = dir.join("variants.json");
    let graph = Graph::build(config, batch, Mode::Train);
    let param_bytes: usize = graph.params.iter().map(|spec| spec.len() * 4).sum();
    assert!(param_bytes > 2 * (72 << 10), "{param_bytes} bytes of parameters fit in 2 ranges");
    let store = ParamStore::init(&graph.params, 3);
    let (pixels, labels) = test_batch(batch);
    let train = |gpu: &Gpu| {
        let params = GpuParams::upload(gpu, &store, None);
        // The same kernels on both (the second reads the first's choices: the small device's
        // first, since Winograd's scratch may not fit its bindings), and no shared cache.
        let mut chooser = VariantChooser::in_memory(gpu).with_run_file(&pinned);
        let step = StepGraph::new(
            gpu,
            &graph,
            &params,
            &Normalization::CIFAR10,
            &SgdSettings::PAPER,
            &mut chooser,
            None,
        )
        .unwrap();
        let sgd_dispatches = step.dispatches().iter().filter(|d| d.label.starts_with("sgd")).count();
        for i in 0..3 {
            step.submit(gpu, &params, &pixels, &labels, StepUniform { step: i, seed: 9, lr: 0.1, _pad: 0 });
        }
        let metrics: Vec<f32> = gpu.read(&params.metrics);
        (
            sgd_dispatches,
            params.download(gpu).unwrap().values,
            params.download_velocity(gpu).unwrap(),
            metrics,
        )
    };
    let (split_sgd, split_w, split_v, split_m) = train(&small);
    let (whole_sgd, whole_w, whole_v, whole_m) = train(&full);
    assert_eq!(whole_sgd, 1);
    assert!(split_sgd >= 3, "{split_sgd} SGD dispatches");
    assert!(whole_w == split_w && whole_v == split_v && whole_m == split_m, "split SGD trains differently");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A dispatch budget lowered to nothing cuts every convolution pass that can be cut into
/// pieces of images and the step into many command buffers, and three steps train the same
/// weights, momentum and metrics as whole passes in one command buffer, bit for bit.
#[test]
fn a_lowered_dispatch_budget_cuts_passes_and_trains_the_same_bit_for_bit() {
    let dir = temp_dir("dispatch-budget");
    let pinned = dir.join("variants.json");
    let whole = Gpu::open(&shakeshake::gpu::AdapterChoice::from_flag_or_env(None)).unwrap();
    let whole = whole.with_dispatch_budget_ms(None);
    let cut = whole.with_dispatch_budget_ms(Some(0.0));
    let batch = 16;
    let graph = Graph::build(ModelConfig::new(8, 8).unwrap(), batch, Mode::Train);
    let store = ParamStore::init(&graph.params, 3);
    let (pixels, labels) = test_batch(batch);
    let train = |gpu: &Gpu| {
        let params = GpuParams::upload(gpu, &store, None);
        // The same kernels on both: the second reads the first's choices.
        let mut chooser = VariantChooser::in_memory(gpu).with_run_file(&pinned);
        let (norm, sgd) = (Normalization::CIFAR10, SgdSettings::PAPER);
        let step = StepGraph::new(gpu, &graph, &params, &norm, &sgd, &mut chooser, None).unwrap();
        let convs = step.dispatches().iter().filter(|d| d.label.starts_with("conv2d")).count();
        for i in 0..3 {
            step.submit(gpu, &params, &pixels, &labels, StepUniform { step: i, seed: 9, lr: 0.1, _pad: 0 });
        }
        let metrics: Vec<f32> = gpu.read(&params.metrics);
        let state = (params.download(gpu).unwrap().values, params.download_velocity(gpu).unwrap(), metrics);
        (convs, step.command_buffer_count(), state)
    };
    let (whole_convs, whole_buffers, whole_state) = train(&whole);
    let (cut_convs, cut_buffers, cut_state) = train(&cut);
    assert_eq!(whole_buffers, 1);
    assert!(cut_convs > whole_convs, "{cut_convs} convolution dispatches cut, {whole_convs} whole");
    assert!(cut_buffers > 10, "{cut_buffers} command buffers");
    assert!(whole_state == cut_state, "passes cut by images train differently");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A choice a run already made stays its kernel wherever the device runs it, even a variant
/// this device's tuner would not measure (on lavapipe, `tiled` or `register_plain` beside
/// `register_subgroup`): a resumed run, or a second device sharing the run's file, computes
/// with the same kernels.
#[test]
fn a_pinned_variant_is_kept_where_the_tuner_would_not_measure_it() {
    use shakeshake::checks::conv2d::variants_for;
    use shakeshake::ops::conv2d::ConvPass;
    use shakeshake::shapes::Conv2dShape;
    use shakeshake::tuning::conv2d::{candidates, key, pick};
    let gpu = Gpu::open(&shakeshake::gpu::AdapterChoice::from_flag_or_env(None)).unwrap();
    let (shape, pass) = (Conv2dShape::new(2, 8, 16, 16, 8, 3, 1, 1), ConvPass::Forward);
    let measured = candidates(&gpu, &shape, pass);
    let unmeasured = variants_for(&gpu, pass, &shape).into_iter().find(|v| !measured.contains(v));
    let unmeasured = unmeasured.expect("a CPU adapter with subgroups leaves some variants unmeasured");
    let dir = temp_dir("pinned-unmeasured");
    let file = dir.join("variants.json");
    let pinned = serde_json::json!({ key(pass, &shape): unmeasured.name() });
    std::fs::write(&file, pinned.to_string()).unwrap();
    let mut chooser = VariantChooser::in_memory(&gpu).with_run_file(&file);
    let conv = pick(&gpu, shape, &mut chooser).unwrap();
    assert_eq!(conv.variants[pass as usize], unmeasured);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On a GPU the tuner first creates every candidate's pipelines on every core
/// (`create_unknown`): they are the pipelines choosing then checks, times and keeps, so
/// choosing creates none of its own.
#[test]
fn pipelines_created_ahead_are_the_ones_choosing_uses() {
    use shakeshake::shapes::Conv2dShape;
    use shakeshake::tuning::conv2d::{create_unknown, pick};
    let gpu = Gpu::open(&shakeshake::gpu::AdapterChoice::from_flag_or_env(None)).unwrap();
    let shapes = [Conv2dShape::new(5, 8, 9, 9, 16, 3, 2, 1), Conv2dShape::new(5, 16, 5, 5, 16, 3, 1, 1)];
    let mut chooser = VariantChooser::in_memory(&gpu);
    create_unknown(&gpu, &shapes, &chooser, &|_, _| {});
    let (ahead, failed) = gpu.kernels_made();
    assert!(ahead > 10 && failed == 0, "{ahead} pipelines, {failed} failed");
    for shape in shapes {
        pick(&gpu, shape, &mut chooser).unwrap();
    }
    assert_eq!(gpu.kernels_made().0, ahead, "choosing created pipelines of its own");
}
