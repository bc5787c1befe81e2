//! The network's parameters and running statistics: what each is called in a checkpoint,
//! how it is initialised, and its values on the host (PyTorch layouts).

use crate::layout::conv_weight_to_gpu;
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// One GPU binding's worth of parameters or statistics.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamKind {
    /// `<prefix>.weight`, [cout][cin][k][k].
    Conv { cout: usize, cin: usize, ksize: usize },
    /// `<prefix>.weight` (gamma) then `<prefix>.bias` (beta), C each.
    BnAffine { channels: usize },
    /// `<prefix>.running_mean` then `<prefix>.running_var`: statistics, not trained.
    BnRunning { channels: usize },
    /// `<prefix>.weight` [out][in] then `<prefix>.bias` [out].
    Linear { inputs: usize, outputs: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub prefix: String,
    pub kind: ParamKind,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        match self.kind {
            ParamKind::Conv { cout, cin, ksize } => cout * cin * ksize * ksize,
            ParamKind::BnAffine { channels } | ParamKind::BnRunning { channels } => 2 * channels,
            ParamKind::Linear { inputs, outputs } => outputs * (inputs + 1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Trained by SGD (running statistics are not).
    pub fn trainable(&self) -> bool {
        !matches!(self.kind, ParamKind::BnRunning { .. })
    }

    /// The checkpoint tensors this binding holds: (name, shape, range of the host values).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, std::ops::Range<usize>)> {
        let p = &self.prefix;
        match self.kind {
            ParamKind::Conv { cout, cin, ksize } => {
                vec![(format!("{p}.weight"), vec![cout, cin, ksize, ksize], 0..self.len())]
            }
            ParamKind::BnAffine { channels: c } => {
                vec![(format!("{p}.weight"), vec![c], 0..c), (format!("{p}.bias"), vec![c], c..2 * c)]
            }
            ParamKind::BnRunning { channels: c } => vec![
                (format!("{p}.running_mean"), vec![c], 0..c),
                (format!("{p}.running_var"), vec![c], c..2 * c),
            ],
            ParamKind::Linear { inputs, outputs } => vec![
                (format!("{p}.weight"), vec![outputs, inputs], 0..outputs * inputs),
                (format!("{p}.bias"), vec![outputs], outputs * inputs..self.len()),
            ],
        }
    }

    /// The authors' initialisation: He (fan-out) normal for convolutions, gamma 1 and beta 0,
    /// running mean 0 and variance 1, linear weight uniform(+-1/sqrt(in)) and bias 0.
    pub fn init(&self, rng: &mut StdRng) -> Vec<f32> {
        match self.kind {
            ParamKind::Conv { cout, ksize, .. } => {
                let std = (2.0 / (ksize * ksize * cout) as f64).sqrt();
                (0..self.len()).map(|_| (standard_normal(rng) * std) as f32).collect()
            }
            ParamKind::BnAffine { channels } | ParamKind::BnRunning { channels } => {
                let first = if matches!(self.kind, ParamKind::BnAffine { .. }) { 1.0 } else { 0.0 };
                let second = 1.0 - first;
                [vec![first; channels], vec![second; channels]].concat()
            }
            ParamKind::Linear { inputs, outputs } => {
                let bound = 1.0 / (inputs as f32).sqrt();
                let mut v: Vec<f32> =
                    (0..outputs * inputs).map(|_| rng.random_range(-bound..bound)).collect();
                v.extend(std::iter::repeat_n(0.0, outputs));
                v
            }
        }
    }

    /// Host (PyTorch) layout to the GPU's (only convolutions differ; see `layout`).
    pub fn to_gpu_layout(&self, host: &[f32]) -> Vec<f32> {
        match self.kind {
            ParamKind::Conv { cout, cin, ksize } => conv_weight_to_gpu(host, cout, cin, ksize),
            _ => host.to_vec(),
        }
    }

    pub fn from_gpu_layout(&self, gpu: &[f32]) -> Vec<f32> {
        match self.kind {
            ParamKind::Conv { cout, cin, ksize } => {
                crate::layout::conv_weight_from_gpu(gpu, cout, cin, ksize)
            }
            _ => gpu.to_vec(),
        }
    }
}

/// Box-Muller: rand's core crate has no normal distribution.
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Values of every binding of a network, in host layout.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamStore {
    pub specs: Vec<ParamSpec>,
    pub values: Vec<Vec<f32>>,
}

impl ParamStore {
    pub fn init(specs: &[ParamSpec], seed: u64) -> ParamStore {
        let mut rng = StdRng::seed_from_u64(seed);
        let values = specs.iter().map(|s| s.init(&mut rng)).collect();
        ParamStore { specs: specs.to_vec(), values }
    }

    /// Trainable parameters in all.
    pub fn trainable_count(&self) -> usize {
        self.specs.iter().filter(|s| s.trainable()).map(|s| s.len()).sum()
    }
}
