//! Training end to end through the library: a tiny network learns, runs repeat bit for bit,
//! and a resumed run equals an uninterrupted one.

use crate::common::*;
use shakeshake::gpu::{AdapterChoice, Gpu};
use shakeshake::train::checkpoint;
use shakeshake::train::options::TrainOptions;
use shakeshake::train::run_dir::{CHECKPOINT_FILE, EpochRow, Run};
use shakeshake::train::{data, trainer};
use std::path::Path;

fn options(data: &Path) -> TrainOptions {
    TrainOptions {
        depth: 8,
        width: 8,
        variant: "shake-shake-image".into(),
        epochs: 3,
        // The command-line tests' batch, whose kernels a new machine has compiled by then.
        batch_size: 16,
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 1e-4,
        seed: 4,
        train_subset: Some(80),
        test_subset: Some(20),
        no_augment: false,
        bn_group: None,
        data: data.to_path_buf(),
        records_per_file: 20,
    }
}

fn device() -> Gpu {
    Gpu::open(&AdapterChoice::from_flag_or_env(None)).unwrap()
}

/// A new run of `opts` in `dir` (at most `stop_after` epochs).
fn train(gpu: Gpu, opts: &TrainOptions, dir: &Path, stop_after: Option<usize>) -> Vec<EpochRow> {
    run(gpu, &Run::new(opts.clone(), dir.to_path_buf()).unwrap(), stop_after)
}

fn run(gpu: Gpu, run: &Run, stop_after: Option<usize>) -> Vec<EpochRow> {
    let (train_set, test_set) = data::load(&run.options.data, Some(run.options.records_per_file)).unwrap();
    let schedule = trainer::Schedule { stop_after, ..Default::default() };
    trainer::train(gpu, run, train_set, test_set, schedule).unwrap()
}

#[test]
fn a_tiny_network_drives_the_loss_on_16_images_to_near_zero() {
    let dir = temp_dir("learn");
    tiny_cifar(&dir, 20);
    // Without augmentation or random shake coefficients the loss can reach zero.
    let opts = TrainOptions {
        variant: "even-even-batch".into(),
        epochs: 30,
        train_subset: Some(16),
        test_subset: Some(10),
        no_augment: true,
        lr: 0.1,
        ..options(&dir)
    };
    let rows = train(device(), &opts, &dir.join("run"), None);
    let first = rows.first().unwrap().train_loss;
    let last = rows.last().unwrap();
    assert!(first > 1.5, "the first epoch's loss {first} should be near ln 10");
    assert!(last.train_loss < 0.05, "loss after 30 steps: {}", last.train_loss);
    assert_eq!(last.train_accuracy, 1.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoints_inside_epochs_do_not_change_the_run() {
    let dir = temp_dir("interval");
    tiny_cifar(&dir, 20);
    let opts = options(&dir);
    let gpu = device();
    let plain = train(gpu.clone(), &opts, &dir.join("plain"), None);
    // A checkpoint after every step: each reads the GPU's state back mid-epoch.
    let (train_set, test_set) = data::load(&opts.data, Some(opts.records_per_file)).unwrap();
    let every_step =
        trainer::Schedule { stop_after: None, checkpoint_every: Some(std::time::Duration::from_nanos(1)) };
    let run = Run::new(opts.clone(), dir.join("every-step")).unwrap();
    let checkpointed = trainer::train(gpu, &run, train_set, test_set, every_step).unwrap();
    let losses = |rows: &[EpochRow]| rows.iter().map(|r| (r.train_loss, r.test_loss)).collect::<Vec<_>>();
    assert_eq!(losses(&plain), losses(&checkpointed));
    let weights = |run: &str| checkpoint::load(&dir.join(run).join(CHECKPOINT_FILE), None).unwrap();
    assert_eq!(weights("plain").params, weights("every-step").params);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Per epoch: train loss and accuracy, test loss and accuracy.
fn losses(rows: &[EpochRow]) -> Vec<(f64, f64, f64, f64)> {
    rows.iter().map(|r| (r.train_loss, r.train_accuracy, r.test_loss, r.test_accuracy)).collect()
}

/// The checkpoint of the run in `dir`/`run`.
fn weights(dir: &Path, run: &str) -> checkpoint::Checkpoint {
    checkpoint::load(&dir.join(run).join(CHECKPOINT_FILE), None).unwrap()
}

#[test]
fn same_seed_same_run_and_resume_equals_uninterrupted() {
    let dir = temp_dir("resume");
    tiny_cifar(&dir, 20);
    let opts = options(&dir);
    let gpu = device();
    let straight = train(gpu.clone(), &opts, &dir.join("a"), None);
    let again = train(gpu.clone(), &opts, &dir.join("b"), None);
    train(gpu.clone(), &opts, &dir.join("c"), Some(2));
    let resumed = run(gpu, &Run::resume(&dir.join("c")).unwrap(), None);

    assert_eq!(straight.len(), 3);
    assert_eq!(losses(&straight), losses(&again), "same seed, same losses");
    assert_eq!(losses(&straight), losses(&resumed), "resumed run differs");
    let (a, b, c) = (weights(&dir, "a"), weights(&dir, "b"), weights(&dir, "c"));
    assert_eq!(a.params, b.params, "same seed, same weights, bit for bit");
    assert_eq!(a.params, c.params, "resumed weights differ from the uninterrupted run's");
    assert_eq!(a.momentum, c.momentum);
    assert_eq!(a.position, c.position);

    let other_seed = TrainOptions { seed: 5, ..opts };
    let different = train(device(), &other_seed, &dir.join("d"), None);
    assert_ne!(losses(&straight), losses(&different), "the seed should matter");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Batch norm over ghost batches of 8 (two a batch of 16) changes the run, and a resume
/// keeps it (options.json), to the same weights.
#[test]
fn ghost_batches_change_the_run_and_a_resume_keeps_them() {
    let dir = temp_dir("ghosts");
    tiny_cifar(&dir, 20);
    let opts = options(&dir);
    let whole = train(device(), &opts, &dir.join("whole"), None);
    let ghosts = TrainOptions { bn_group: Some(8), ..opts };
    let straight = train(device(), &ghosts, &dir.join("straight"), None);
    train(device(), &ghosts, &dir.join("resumed"), Some(1));
    let resumed = run(device(), &Run::resume(&dir.join("resumed")).unwrap(), None);
    assert_eq!(losses(&straight), losses(&resumed), "resumed ghost-batch run differs");
    assert_eq!(weights(&dir, "straight").params, weights(&dir, "resumed").params);
    // The whole-batch run's options but for the ghost batches (the epochs too: they set the
    // learning rate's schedule).
    assert_ne!(losses(&whole), losses(&straight), "ghost batches should change the run");
    std::fs::remove_dir_all(&dir).unwrap();
}
