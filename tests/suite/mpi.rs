//! Several processes through MPI (`--features mpi`; `.ci/run` installs Open MPI): `mpirun -np 2`
//! on this machine trains as two devices in one process do, bit for bit; it stops on one
//! signal and resumes; a rank that fails ends the run, naming it, its checkpoint intact.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

/// `mpirun -np 2` of the program with `args` (its kernel cache in `cache`); `rank_1_env` is
/// set for rank 1 alone.
fn mpirun(cache: &Path, args: &[String], rank_1_env: &[(&str, &str)]) -> Command {
    let program = env!("CARGO_BIN_EXE_shakeshake");
    // A rank left waiting in a sum would wait for ever: a test fails after 5 minutes instead.
    let mut command = Command::new("timeout");
    // Root in CI containers; two ranks on two cores.
    command.args(["300", "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "1", program]).args(args);
    command.args([":", "-np", "1"]);
    for (name, value) in rank_1_env {
        command.args(["-x", &format!("{name}={value}")]);
    }
    command.arg(program).args(args).env("SHAKESHAKE_CACHE_DIR", cache);
    command
}

fn resumed(run: &Path) -> Vec<String> {
    vec!["train".into(), "--resume".into(), run.to_str().unwrap().into()]
}

#[test]
fn two_ranks_train_as_two_devices_stop_on_one_signal_and_resume_exactly() {
    let dir = temp_dir("mpi");
    tiny_cifar(&dir, 20);
    let cache = warm_cache(&dir);
    let args = |run: &Path| tiny_train(&dir, run, &["--epochs", "8", "--train-subset", "32"]);

    // Two devices in one process: what two ranks must compute.
    let devices = dir.join("devices");
    let mut two = args(&devices);
    two.extend(["--adapter".to_string(), "high-performance,high-performance".to_string()]);
    assert_ok(&shakeshake(&cache, &strs(&two)));

    // mpirun passes SIGUSR1 to every rank at once (a Ctrl-C reaches only mpirun, which
    // gives the ranks a SIGTERM a moment before it kills them).
    let run = dir.join("ranks");
    let child = mpirun(&cache, &args(&run), &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::fs::read_to_string(run.join("metrics.csv")).map_or(0, |t| t.lines().count()) < 3 {
        assert!(started.elapsed().as_secs() < 180, "the ranks never finished two epochs");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // mpirun is the child of `timeout` (see `mpirun`).
    let parent = child.id().to_string();
    assert!(Command::new("pkill").args(["-USR1", "-P", &parent, "mpirun"]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert_eq!(t.matches("Stopped after step").count(), 1, "rank 0 alone says it:\n{t}");
    assert!(!run.join("model.safetensors").exists(), "{t}");

    let out = mpirun(&cache, &resumed(&run), &[]).output().unwrap();
    assert_ok(&out);
    assert_same_run(&devices, &run);
    // A checkpoint of two ranks evaluates on one device.
    let model = run.join("model.safetensors");
    assert_ok(&shakeshake(
        &cache,
        &[
            "eval",
            "--checkpoint",
            model.to_str().unwrap(),
            "--data",
            dir.to_str().unwrap(),
            "--records-per-file",
            "20",
        ],
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rank_that_loses_its_device_ends_the_run_naming_it_and_the_checkpoint_is_kept() {
    let dir = temp_dir("mpi-lost");
    tiny_cifar(&dir, 20);
    let cache = warm_cache(&dir);
    let run = dir.join("run");
    // 2 steps an epoch: rank 1's device is lost in the third epoch.
    let args = tiny_train(&dir, &run, &["--epochs", "4", "--train-subset", "32"]);
    let out: Output = mpirun(&cache, &args, &[("SHAKESHAKE_LOSE_DEVICE_AFTER_STEPS", "5")]).output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("Error in rank 1 of 2") && t.contains("device 1"), "{t}");
    let kept = shakeshake::train::checkpoint::load(&run.join("checkpoint.safetensors"), None).unwrap();
    assert_eq!((kept.position.epoch, kept.position.batches), (2, 0), "{t}");

    // MPI_Abort ends the other rank with SIGTERM (which asks for a graceful stop, so it
    // waits in its sum) and then SIGKILL, perhaps after mpirun has returned: until then it
    // holds the run, which a resume says.
    let started = std::time::Instant::now();
    let out = loop {
        let out = mpirun(&cache, &resumed(&run), &[]).output().unwrap();
        if !text(&out).contains("is in use by another shakeshake process") || started.elapsed().as_secs() > 60
        {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_ok(&out);
    assert_eq!(losses(&run).len(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
