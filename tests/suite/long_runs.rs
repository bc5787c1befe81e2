//! What a person running a days-long job relies on, tried as a careless or hostile user
//! would: a run stopped at any point still ends with its model, a resume computes with the
//! kernels the run started with, and damaged or hostile run files are refused clearly.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

/// A tiny run of `epochs` epochs into `run`.
fn train(cache: &Path, data: &Path, run: &Path, epochs: &str) -> Output {
    let args = tiny_train(data, run, &["--epochs", epochs, "--train-subset", "32", "--lr", "0.05"]);
    shakeshake(cache, &strs(&args))
}

fn resume(cache: &Path, run: &Path) -> Output {
    shakeshake(cache, &["train", "--resume", run.to_str().unwrap()])
}

/// Rewrites a JSON file's `key` (a top-level field) to `value`.
fn set_json(path: &Path, key: &str, value: serde_json::Value) {
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    json[key] = value;
    std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}

#[test]
fn a_run_stopped_before_its_model_was_written_still_ends_with_it() {
    let dir = temp_dir("final-model");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    assert_ok(&train(&cache, &dir, &run, "2"));
    let model = std::fs::read(run.join("model.safetensors")).unwrap();
    assert_eq!(
        model,
        std::fs::read(run.join("checkpoint.safetensors")).unwrap(),
        "the model is the last checkpoint"
    );

    // Killed after the last checkpoint, before the model: the resume writes it.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    let out = resume(&cache, &run);
    assert_ok(&out);
    assert!(text(&out).contains("Done"), "{}", text(&out));
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);

    // options.json asking for fewer epochs than the checkpoint holds: the run is complete.
    std::fs::remove_file(run.join("model.safetensors")).unwrap();
    set_json(&run.join("options.json"), "epochs", 1.into());
    assert_ok(&resume(&cache, &run));
    assert_eq!(std::fs::read(run.join("model.safetensors")).unwrap(), model);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_run_records_its_kernel_choices_even_from_a_warm_cache() {
    let dir = temp_dir("pinned-variants");
    tiny_cifar(&dir, 20);
    let cache = dir.join("cache");
    assert_ok(&train(&cache, &dir, &dir.join("cold"), "1"));
    // The second run finds every choice in the cache and measures nothing.
    assert_ok(&train(&cache, &dir, &dir.join("warm"), "1"));
    let cold = std::fs::read_to_string(dir.join("cold/variants.json")).unwrap();
    let warm = std::fs::read_to_string(dir.join("warm/variants.json"))
        .expect("a run with a warm cache must record its choices too");
    assert_eq!(cold, warm);
    assert!(cold.contains("conv2d forward"), "{cold}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_or_mixed_run_files_are_refused_clearly() {
    let dir = temp_dir("hostile");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    assert_ok(&train(&cache, &dir, &run, "1"));

    // A checkpoint whose metadata claims an absurd depth: an error, not an 8 GiB allocation.
    let path = run.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let hostile = header.replace("\"depth\":\"8\"", "\"depth\":\"600000002\"");
    assert_ne!(hostile, header, "the test should find the depth in the header");
    let mut forged = (hostile.len() as u64).to_le_bytes().to_vec();
    forged.extend(hostile.as_bytes());
    forged.extend(&bytes[8 + header_len..]);
    let forged_path = dir.join("forged.safetensors");
    std::fs::write(&forged_path, forged).unwrap();
    let d = dir.to_str().unwrap();
    let out = shakeshake(
        &cache,
        &["eval", "--checkpoint", forged_path.to_str().unwrap(), "--data", d, "--records-per-file", "20"],
    );
    assert_fails_with(&out, &["forged.safetensors", "depth", "600000002"]);

    // A checkpoint of another seed than options.json says: the run is mixed up.
    set_json(&run.join("options.json"), "seed", 77.into());
    assert_fails_with(&resume(&cache, &run), &["seed 0", "seed 77"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_run_stops_at_once_and_keeps_no_broken_checkpoint() {
    let dir = temp_dir("diverge");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    let d = dir.to_str().unwrap();
    let args = tiny_train(&dir, &run, &["--epochs", "6", "--train-subset", "32", "--lr", "100000"]);
    let out = shakeshake(&cache, &strs(&args));
    assert_fails_with(&out, &["diverged", "--lr"]);
    assert!(!run.join("model.safetensors").exists());
    if run.join("checkpoint.safetensors").exists() {
        // Whatever checkpoint was kept is whole and finite.
        let c = run.join("checkpoint.safetensors");
        shakeshake::train::checkpoint::load(&c, None).expect("the kept checkpoint loads");
    }

    // A checkpoint holding a NaN is refused by eval, naming the tensor.
    assert_ok(&train(&cache, &dir, &dir.join("good"), "1"));
    let path = dir.join("good/model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let out = shakeshake(
        &cache,
        &["eval", "--checkpoint", path.to_str().unwrap(), "--data", d, "--records-per-file", "20"],
    );
    assert_fails_with(&out, &["non-finite", "tensor"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_are_clear_errors_that_create_nothing() {
    let dir = temp_dir("bad-values");
    tiny_cifar(&dir, 20);
    // Every command here is refused before any kernel is chosen.
    let (cache, run) = (dir.join("cache"), dir.join("run"));
    let (d, r) = (dir.to_str().unwrap(), run.to_str().unwrap());
    let base = ["train", "--data", d, "--run-dir", r, "--depth", "8", "--records-per-file", "20"];
    let cases: [(&[&str], &str); 14] = [
        (&["--lr", "nan"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--lr", "-1"], "--lr"),
        (&["--lr", "0"], "--lr"),
        (&["--momentum", "1.5"], "--momentum"),
        (&["--weight-decay", "-0.1"], "--weight-decay"),
        (&["--batch-size", "0"], "--batch-size must be at least 1"),
        (&["--epochs", "0"], "--epochs must be at least 1"),
        (&["--test-subset", "0"], "--test-subset must be at least 1"),
        (&["--train-subset", "0"], "--train-subset must be at least 1"),
        (&["--width", "100000"], "--width"),
        (&["--stop-after", "0"], "--stop-after must be at least 1"),
        (&["--bn-group", "0"], "--bn-group must be from 1 to the batch size (128), not 0"),
        (&["--batch-size", "16", "--bn-group", "17"], "--bn-group must be from 1 to the batch size (16)"),
    ];
    for (extra, message) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        assert_fails_with(&shakeshake(&cache, &args), &[message]);
        assert!(!run.exists(), "{extra:?} created the run directory");
    }
    for args in [
        &["bench", "train", "--depth", "8", "--width", "4", "--batch-size", "0"][..],
        &["bench", "train", "--depth", "8", "--width", "4", "--steps", "0"],
        &["bench", "ops", "--batch-size", "0"],
    ] {
        assert_fails_with(&shakeshake(&cache, args), &["must be at least 1"]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_needs_only_the_test_file_and_predict_warns_of_a_cut_jpeg() {
    let dir = temp_dir("eval-test-only");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    assert_ok(&train(&cache, &dir, &run, "1"));
    for name in
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
    {
        std::fs::remove_file(dir.join("cifar-10-batches-bin").join(name)).unwrap();
    }
    let model = run.join("model.safetensors");
    let (m, d) = (model.to_str().unwrap(), dir.to_str().unwrap());
    assert_ok(&shakeshake(&cache, &["eval", "--checkpoint", m, "--data", d, "--records-per-file", "20"]));

    let jpeg = dir.join("cat.jpg");
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 2, 90])).save(&jpeg).unwrap();
    let whole = shakeshake(&cache, &["predict", "--checkpoint", m, jpeg.to_str().unwrap()]);
    assert_ok(&whole);
    assert!(!text(&whole).contains("warning"), "{}", text(&whole));
    let bytes = std::fs::read(&jpeg).unwrap();
    std::fs::write(&jpeg, &bytes[..bytes.len() / 3]).unwrap();
    let cut = shakeshake(&cache, &["predict", "--checkpoint", m, jpeg.to_str().unwrap()]);
    let t = text(&cut);
    assert!(t.contains("warning") && t.contains("cut short"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_directory_in_use_is_refused_and_free_again_once_released() {
    use shakeshake::train::run_dir::RunLock;
    let dir = temp_dir("lock");
    tiny_cifar(&dir, 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    std::fs::create_dir_all(&run).unwrap();
    let held = RunLock::take(&run).unwrap();
    let out = train(&cache, &dir, &run, "1");
    assert_fails_with(
        &out,
        &["in use by another shakeshake process", &format!("pid {}", std::process::id())],
    );
    assert!(!run.join("options.json").exists(), "the refused run wrote nothing");
    drop(held);
    assert_ok(&train(&cache, &dir, &run, "1"));

    let held = RunLock::take(&run).unwrap();
    assert_fails_with(&resume(&cache, &run), &["in use"]);
    drop(held);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flags_beside_resume_are_refused_and_a_relative_data_folder_still_resumes() {
    let dir = temp_dir("resume-flags");
    tiny_cifar(&dir.join("data"), 20);
    let (cache, run) = (warm_cache(&dir), dir.join("run"));
    // Started from `dir` with a relative --data.
    let relative = Path::new("data");
    let args = tiny_train(
        relative,
        Path::new("run"),
        &["--epochs", "2", "--train-subset", "32", "--stop-after", "1"],
    );
    let out = command(&cache, &strs(&args)).current_dir(&dir).output().unwrap();
    assert_ok(&out);

    let r = run.to_str().unwrap();
    let out = shakeshake(&cache, &["train", "--resume", r, "--epochs", "5", "--lr", "5"]);
    assert_fails_with(&out, &["--resume", "--epochs", "--lr", "options.json"]);
    let rows = std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count();
    assert_eq!(rows, 2, "the refused resume trained nothing");

    // Resumed from another working directory (this test's), the data is still found.
    assert_ok(&resume(&cache, &run));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tiny run of 3 epochs of 3 batches (16, 16 and 8 images), stopped as `stop_steps` say.
fn stopped_train(cache: &Path, data: &Path, run: &Path, stop_steps: Option<u64>) -> Output {
    let args = tiny_train(data, run, &["--epochs", "3", "--train-subset", "40", "--lr", "0.05"]);
    let mut command = command(cache, &strs(&args));
    if let Some(n) = stop_steps {
        command.env("SHAKESHAKE_STOP_AFTER_STEPS", n.to_string());
    }
    command.output().unwrap()
}

#[test]
fn stopped_at_any_step_and_resumed_a_run_equals_an_uninterrupted_one() {
    let dir = temp_dir("stop-anywhere");
    tiny_cifar(&dir, 20);
    let cache = warm_cache(&dir);
    let straight = dir.join("straight");
    assert_ok(&stopped_train(&cache, &dir, &straight, None));
    // Stops inside the first epoch, at an epoch's last batch, inside the second epoch, and
    // at the very last step (the final checkpoint written, the model not yet).
    for (name, first_stop) in [("s1", 1), ("s3", 3), ("s5", 5), ("s9", 9)] {
        let run = dir.join(name);
        let out = stopped_train(&cache, &dir, &run, Some(first_stop));
        assert_eq!(out.status.code(), Some(130), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("Stopped after step") && t.contains("--resume"), "{t}");
        assert!(!run.join("model.safetensors").exists());
        // Stopped again two steps after the resume, then to the end.
        let again = command(&cache, &["train", "--resume", run.to_str().unwrap()])
            .env("SHAKESHAKE_STOP_AFTER_STEPS", "2")
            .output()
            .unwrap();
        let finished = first_stop + 2 > 9;
        assert_eq!(again.status.code(), Some(if finished { 0 } else { 130 }), "{}", text(&again));
        assert_ok(&resume(&cache, &run));
        assert_same_run(&straight, &run);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C, or signals in a burst (GNU `timeout` sends SIGTERM to the program and to its
/// group; schedulers repeat theirs), stop once, after the step, with a checkpoint; and a
/// resume first removes what a kill mid-write left.
#[cfg(unix)]
#[test]
fn ctrl_c_or_a_burst_of_signals_writes_one_checkpoint_and_the_resumed_run_equals_an_uninterrupted_one() {
    interrupted_and_resumed("ctrl-c", &[]);
}

/// The same on two devices (one adapter twice): one Ctrl-C stops both at the same step,
/// with one checkpoint, and the run resumed on both equals the uninterrupted one.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_two_devices_at_one_step_and_the_resumed_run_equals_an_uninterrupted_one() {
    interrupted_and_resumed("ctrl-c-two-devices", &["--adapter", "high-performance,high-performance"]);
}

/// A run of `devices` (extra `train` arguments, given again to the resume) interrupted by a
/// burst of signals after its first epoch, then resumed: equal to the uninterrupted run.
#[cfg(unix)]
fn interrupted_and_resumed(name: &str, devices: &[&str]) {
    let dir = temp_dir(name);
    tiny_cifar(&dir, 20);
    let cache = warm_cache(&dir);
    let args = |run: &Path| {
        let mut args = tiny_train(&dir, run, &["--epochs", "20", "--train-subset", "32"]);
        args.extend(devices.iter().map(|a| a.to_string()));
        args
    };
    let run = dir.join("interrupted");
    let child = command(&cache, &strs(&args(&run))).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Once the first epoch is written, interrupt it as a terminal's Ctrl-C would, in a burst
    // of a scheduler's SIGTERMs.
    let started = std::time::Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(0, |t| t.lines().count()) < 2 {
        assert!(started.elapsed().as_secs() < 120, "the run never finished an epoch");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id();
    for signal in ["-TERM", "-INT", "-TERM", "-TERM"] {
        Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("Stopped after step") && t.contains("--resume"), "{t}");
    assert_eq!(t.matches("Stopping after this step").count(), 1, "{t}");

    // What a kill -9 during a checkpoint's write leaves: its temporary file, cut short.
    let leftover = run.join(format!("checkpoint.{pid}-ThreadId(1).tmp"));
    std::fs::write(&leftover, &std::fs::read(run.join("checkpoint.safetensors")).unwrap()[..100]).unwrap();
    let r = run.to_str().unwrap();
    let resumed = shakeshake(&cache, &[&["train", "--resume", r][..], devices].concat());
    assert_ok(&resumed);
    assert!(text(&resumed).contains("Removed what a killed run left half-written"), "{}", text(&resumed));
    assert!(!leftover.exists());

    let straight = dir.join("straight");
    assert_ok(&shakeshake(&cache, &strs(&args(&straight))));
    assert_same_run(&straight, &run);
    std::fs::remove_dir_all(&dir).unwrap();
}
