//! Everything a training run is made of; saved as `options.json` in the run directory, so
//! `--resume` continues with exactly the same settings.

use super::shares::Shares;
use crate::gpu::PrecisionChoice;
use crate::model::ModelConfig;
use anyhow::{Result, bail};
use std::path::PathBuf;

/// The paper's recipe by default: batch 128, lr 0.2 with cosine annealing per iteration,
/// Nesterov momentum 0.9, weight decay 1e-4, 1800 epochs.
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Depth 6n + 2: n residual blocks a stage (26 is the paper's CIFAR-10 network).
    #[arg(long, default_value_t = 26)]
    pub depth: usize,
    /// Width k of the first stage (stages have k, 2k, 4k channels): 32, 64, 96 or 112 in the paper.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Shake variant FORWARD-BACKWARD-LEVEL: forward shake|even, backward shake|even|keep,
    /// level batch|image.
    #[arg(long, default_value = "shake-shake-image")]
    pub variant: String,
    /// Passes over the training set.
    #[arg(long, default_value_t = 1800)]
    pub epochs: usize,
    /// Images a step (the last batch of an epoch keeps the rest).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Initial learning rate, annealed to 0 by a cosine over all iterations.
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    pub lr: f64,
    /// Nesterov momentum of SGD.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// L2 weight decay, on every parameter.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Seeds the initial weights, the data order, the crops and flips, and the shake coefficients.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_subset: Option<usize>,
    /// Train without random crops and flips.
    #[arg(long)]
    #[serde(default)]
    pub no_augment: bool,
    /// Batch norm takes its statistics over groups of this many images of each batch ("ghost
    /// batches"), as each of several GPUs does over its share: 64 with batch 128 is the
    /// authors' two-GPU setup. Default: the whole batch.
    #[arg(long, value_name = "SIZE")]
    #[serde(default)]
    pub bn_group: Option<usize>,
    /// With several adapters (`--adapter 0,1`): how each batch is split among them, in
    /// proportion (3,1: three quarters of every batch on the first). Default: equal shares.
    #[arg(long, value_delimiter = ',', value_name = "W,W,...")]
    #[serde(default)]
    pub shares: Option<Vec<usize>>,
    /// What activations and their gradients are stored in: f32 (the paper's), f16 (half the
    /// memory traffic; f32 arithmetic, weights and optimizer, with dynamic loss scaling), or
    /// auto (f16 on a GPU that has f16 in shaders, f32 elsewhere).
    #[arg(long, value_enum, default_value = "f32")]
    #[serde(default)]
    pub precision: PrecisionChoice,
    /// Folder holding cifar-10-batches-bin/ or cifar-10-binary.tar.gz.
    #[arg(long, default_value = "assets")]
    pub data: PathBuf,
    /// Records each data file must hold (the official files hold 10,000).
    #[arg(long, default_value_t = 10_000, hide = true)]
    pub records_per_file: usize,
}

impl TrainOptions {
    /// How each batch is split among `devices` devices: as `--shares` where it lists that
    /// many, else equally (a run resumed on another number of devices).
    pub fn device_shares(&self, devices: usize) -> Shares {
        match &self.shares {
            Some(weights) if weights.len() == devices => Shares(weights.clone()),
            _ => Shares::equal(devices),
        }
    }

    /// The network; an error if the depth, width or variant is not one.
    pub fn model(&self) -> Result<ModelConfig> {
        ModelConfig::with_variant(self.depth, self.width, &self.variant)
    }

    /// Every option checked, before anything is read or written: the network, and numbers
    /// that would train nothing, or train on NaN.
    pub fn check(&self) -> Result<ModelConfig> {
        let config = self.model()?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a positive number, not {}", self.lr);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("--momentum must be at least 0 and below 1, not {}", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("--weight-decay must be 0 or a positive number, not {}", self.weight_decay);
        }
        for (flag, value) in [("--batch-size", Some(self.batch_size)), ("--epochs", Some(self.epochs))]
            .into_iter()
            .chain([("--train-subset", self.train_subset), ("--test-subset", self.test_subset)])
        {
            if value == Some(0) {
                bail!("{flag} must be at least 1 (leave a subset flag out to use every image)");
            }
        }
        if let Some(group) = self.bn_group
            && !(1..=self.batch_size).contains(&group)
        {
            bail!("--bn-group must be from 1 to the batch size ({}), not {group}", self.batch_size);
        }
        if let Some(weights) = &self.shares
            && weights.contains(&0)
        {
            bail!("--shares must all be at least 1, not {weights:?}");
        }
        Ok(config)
    }
}
