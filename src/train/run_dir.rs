//! A training run's directory: the files it holds, its metrics table, and starting a new
//! run or resuming one in it (`Run`). Everything that knows a run directory's layout is here.

use super::checkpoint::{self, Checkpoint};
use super::options::TrainOptions;
use crate::files::{remove_leftover_temporaries, write_atomically};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

pub const OPTIONS_FILE: &str = "options.json";
pub const METRICS_FILE: &str = "metrics.csv";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const MODEL_FILE: &str = "model.safetensors";
pub const PLOT_FILE: &str = "curves.png";
/// Locked while a process trains in the directory (see `RunLock`).
pub const LOCK_FILE: &str = "train.lock";
/// The kernel variants the run computes with (see `tuning::chooser`).
pub const VARIANTS_FILE: &str = "variants.json";

/// The file of the kernel variants device `device` of a run computes with: device 0's is
/// `VARIANTS_FILE`; with several devices (or MPI ranks, which may be other machines) each
/// keeps its own.
pub fn variants_file(device: usize) -> String {
    match device {
        0 => VARIANTS_FILE.to_string(),
        d => format!("variants-device{d}.json"),
    }
}
const CSV_HEADER: &str = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,lr,seconds,images_per_second,loss_scale,skipped_steps";

/// One epoch's results: a row of metrics.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// The loss scale at the epoch's end (1 with f32 activations), and the steps skipped
    /// for an overflow since the run began.
    pub loss_scale: f64,
    pub skipped_steps: u64,
}

impl EpochRow {
    fn csv(&self) -> String {
        format!(
            // Losses and accuracies in full: resumed runs are compared bit for bit.
            "{},{},{},{},{},{:.6e},{:.2},{:.1},{},{}",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.lr,
            self.seconds,
            self.images_per_second,
            self.loss_scale,
            self.skipped_steps
        )
    }

    fn parse(line: &str) -> Option<EpochRow> {
        let mut f: Vec<f64> = line.split(',').map(|v| v.parse().ok()).collect::<Option<_>>()?;
        // Runs from before f16 wrote no scale: theirs was 1, and nothing was skipped.
        if f.len() == 8 {
            f.extend([1.0, 0.0]);
        }
        let [
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            lr,
            seconds,
            images_per_second,
            loss_scale,
            skipped_steps,
        ] = f[..]
        else {
            return None;
        };
        Some(EpochRow {
            epoch: epoch as usize,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            lr,
            seconds,
            images_per_second,
            loss_scale,
            skipped_steps: skipped_steps as u64,
        })
    }
}

/// Reads the rows of a run's metrics.csv.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochRow>> {
    let path = run_dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().skip(1).filter_map(EpochRow::parse).collect())
}

/// Writes metrics.csv with `rows`, atomically.
pub fn write_metrics(run_dir: &Path, rows: &[EpochRow]) -> Result<()> {
    let text: String = std::iter::once(CSV_HEADER.to_string())
        .chain(rows.iter().map(EpochRow::csv))
        .collect::<Vec<_>>()
        .join("\n");
    write_atomically(&run_dir.join(METRICS_FILE), (text + "\n").as_bytes())
}

/// The run directory when `--run-dir` is not given: runs/<depth>-2x<width>d-seed<seed>.
pub fn default_run_dir(opts: &TrainOptions) -> PathBuf {
    PathBuf::from("runs").join(format!("{}-2x{}d-seed{}", opts.depth, opts.width, opts.seed))
}

/// An OS lock on a run directory's `LOCK_FILE`, held while a process trains there and
/// released when it exits, however it exits. The file names the holder for the error.
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    pub fn take(dir: &Path) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if let Err(e) = file.try_lock() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(match e {
                std::fs::TryLockError::WouldBlock => anyhow::anyhow!(
                    "{} is in use by another shakeshake process ({}): wait for it to finish, or stop it \
                     and continue with --resume",
                    dir.display(),
                    holder.trim()
                ),
                std::fs::TryLockError::Error(e) => {
                    anyhow::Error::new(e).context(format!("locking {}", path.display()))
                }
            });
        }
        let me = format!("pid {}", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(me.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(RunLock { _file: file })
    }
}

/// Where a run starts.
pub enum Start {
    New,
    /// From the last checkpoint, with the metrics of the epochs before it.
    Resume {
        checkpoint: Checkpoint,
        rows: Vec<EpochRow>,
    },
}

/// A run, checked and ready to train: nothing is written until `begin`.
pub struct Run {
    pub dir: PathBuf,
    pub options: TrainOptions,
    pub start: Start,
}

impl Run {
    /// A new run in `dir`, which must not hold one already. The data folder is recorded as
    /// an absolute path, so the run can be resumed from any working directory.
    pub fn new(mut options: TrainOptions, dir: PathBuf) -> Result<Run> {
        options.check()?;
        options.data = std::path::absolute(&options.data)
            .with_context(|| format!("resolving --data {}", options.data.display()))?;
        if dir.join(CHECKPOINT_FILE).exists() {
            bail!(
                "{} already holds a run: continue it with --resume {}, or choose another --run-dir",
                dir.display(),
                dir.display()
            );
        }
        Ok(Run { dir, options, start: Start::New })
    }

    /// The run in `dir`, from its last checkpoint, with the options it was started with.
    pub fn resume(dir: &Path) -> Result<Run> {
        let path = dir.join(OPTIONS_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{} is not a run directory (no {})", dir.display(), path.display()))?;
        let options: TrainOptions =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let config = options.check().with_context(|| format!("{} holds bad options", path.display()))?;
        let checkpoint = checkpoint::load(&dir.join(CHECKPOINT_FILE), Some(&config))?;
        if checkpoint.position.seed != options.seed {
            bail!(
                "{} was written with seed {}, but {} says seed {}: the run directory is damaged or mixed \
                 with another run's files",
                dir.join(CHECKPOINT_FILE).display(),
                checkpoint.position.seed,
                path.display(),
                options.seed
            );
        }
        let mut rows = read_metrics(dir)?;
        let epochs = checkpoint.position.epoch;
        // A run stopped between writing a row and its checkpoint has one row too many.
        rows.truncate(epochs);
        if rows.len() != epochs || rows.iter().enumerate().any(|(i, r)| r.epoch != i + 1) {
            bail!(
                "{} does not hold a row for each of the checkpoint's {epochs} epochs; the run directory is damaged",
                dir.join(METRICS_FILE).display(),
            );
        }
        Ok(Run { dir: dir.to_path_buf(), options, start: Start::Resume { checkpoint, rows } })
    }

    /// Create and lock the directory, and write what a run holds from its start:
    /// options.json for a new run, and metrics.csv with the rows so far. Removes the
    /// temporary files of a killed run's writes. The run is this
    /// process's while the returned lock lives.
    pub fn begin(&self) -> Result<RunLock> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let lock = RunLock::take(&self.dir)?;
        let leftovers = remove_leftover_temporaries(&self.dir)?;
        if !leftovers.is_empty() {
            eprintln!("Removed what a killed run left half-written: {}.", leftovers.join(", "));
        }
        let rows = match &self.start {
            Start::New => {
                // Checked again under the lock: another process may have started here since.
                if self.dir.join(CHECKPOINT_FILE).exists() {
                    bail!("{} already holds a run: continue it with --resume", self.dir.display());
                }
                let options = serde_json::to_string_pretty(&self.options)?;
                write_atomically(&self.file(OPTIONS_FILE), options.as_bytes())?;
                &[][..]
            }
            Start::Resume { rows, .. } => &rows[..],
        };
        write_metrics(&self.dir, rows)?;
        Ok(lock)
    }

    /// A file of the run directory, by name (`CHECKPOINT_FILE`, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
