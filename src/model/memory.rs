//! The device memory a run needs, computed from its graphs before anything is allocated:
//! the activations, images and scratch of its training and evaluation steps, and the
//! parameters with their gradients and momentum. `train` prints it and `adapters` shows it;
//! a device that runs out of memory is told what would fit.

use super::gpu_params::flat_layout;
use super::graph::{ForwardOp, Graph, Node};
use super::plan::BufferPlan;
use super::{Mode, ModelConfig};
use crate::ops::batch_norm::BatchNorm;
use crate::ops::conv2d::{Conv2d, ConvVariant};
use crate::shapes::{IMAGE_BYTES, Precision};

/// A run's batch and data set sizes.
#[derive(Clone, Copy, Debug)]
pub struct RunSize {
    pub batch: usize,
    pub train_images: usize,
    pub test_images: usize,
    /// Training batch norms over ghost batches of this many images (`--bn-group`).
    pub bn_group: Option<usize>,
    /// What the activations are stored in.
    pub precision: Precision,
}

/// Bytes a run needs on the device, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    pub activations: u64,
    /// Images and labels of a batch.
    pub batches: u64,
    /// Convolution scratch (split weight gradients, Winograd's matrices) and batch-norm
    /// statistics.
    pub scratch: u64,
    /// Parameters, gradients, momentum and running statistics.
    pub parameters: u64,
}

impl Memory {
    pub fn total(&self) -> u64 {
        self.activations + self.batches + self.scratch + self.parameters
    }

    /// A training run of `config` at `batch` over `train_images` images, evaluated on
    /// `test_images`: what `train` allocates (a graph for the full batch and one for the
    /// last, smaller batch of each, the second sharing the first's activations and scratch).
    /// `conv_scratch` gives a graph's convolution scratch for the variants chosen (`None`:
    /// the most any variant would take); `on_gpu` sizes batch norm's reductions as a GPU
    /// runs them.
    pub fn of_run<E>(
        config: ModelConfig,
        run: RunSize,
        on_gpu: bool,
        conv_scratch: &mut dyn FnMut(&Graph) -> Result<Option<usize>, E>,
    ) -> Result<Memory, E> {
        let mut total = Memory { parameters: parameter_bytes(config), ..Memory::default() };
        for (mode, images) in [(Mode::Train, run.train_images), (Mode::Eval, run.test_images)] {
            let full = Graph::build(config, run.batch.min(images), mode)
                .with_ghost_batches(run.bn_group)
                .in_precision(run.precision);
            total.add(&StepSizes::of(&full, conv_scratch(&full)?, on_gpu).memory());
            let rest = images % run.batch;
            if images > run.batch && rest > 0 {
                total.batches +=
                    StepSizes::of(&Graph::build(config, rest, mode), Some(0), on_gpu).memory().batches;
            }
        }
        Ok(total)
    }

    /// `of_run` before any kernel is chosen: the most any convolution variant would take.
    pub fn at_most(config: ModelConfig, run: RunSize, on_gpu: bool) -> Memory {
        let unchosen: Result<Memory, std::convert::Infallible> =
            Memory::of_run(config, run, on_gpu, &mut |_| Ok(None));
        unchosen.unwrap_or_else(|never| match never {})
    }

    /// The largest batch of at most `run.batch` whose run needs at most `bytes` (0: none).
    pub fn largest_batch_within(config: ModelConfig, run: RunSize, on_gpu: bool, bytes: u64) -> usize {
        let fits = |batch| Memory::at_most(config, RunSize { batch, ..run }, on_gpu).total() <= bytes;
        // The need grows with the batch: bisect.
        let (mut lo, mut hi) = (0, run.batch);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid) { lo = mid } else { hi = mid - 1 }
        }
        lo
    }

    fn add(&mut self, other: &Memory) {
        self.activations += other.activations;
        self.batches += other.batches;
        self.scratch += other.scratch;
        self.parameters += other.parameters;
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        write!(
            f,
            "{:.0} MB (activations {:.0}, parameters {:.1}, scratch {:.0}, batches {:.1})",
            mb(self.total()),
            mb(self.activations),
            mb(self.parameters),
            mb(self.scratch),
            mb(self.batches)
        )
    }
}

/// Weights, gradients and momentum (flat, each binding aligned as the device lays them out,
/// to WebGPU's 256 bytes at most), and the running statistics.
fn parameter_bytes(config: ModelConfig) -> u64 {
    let specs = Graph::build(config, 1, Mode::Eval).params;
    let (_, trainable, running) = flat_layout(&specs, &wgpu::Limits::default());
    (4 * (3 * trainable + running)) as u64
}

/// The sizes, in 4-byte words (f32s, or two f16 activations, or four image bytes), of the
/// buffers a step graph allocates.
pub struct StepSizes {
    pub activation_words: Vec<usize>,
    pub pixel_words: usize,
    pub labels: usize,
    /// Batch-norm statistics saved for the backward pass, each layer's at a multiple of 64.
    pub saved_floats: usize,
    pub conv_scratch_floats: usize,
    pub bn_partials_floats: usize,
}

impl StepSizes {
    /// `conv_scratch_floats`: what the chosen convolutions need (`None`: the most any variant
    /// would). `on_gpu`: batch norm reduces as on a GPU (see `BatchNorm::for_device`).
    pub fn of(graph: &Graph, conv_scratch_floats: Option<usize>, on_gpu: bool) -> StepSizes {
        let conv_scratch_floats = conv_scratch_floats.unwrap_or_else(|| {
            let scratch =
                |shape| ConvVariant::ALL.map(|v| Conv2d::with_variants(shape, [v; 3]).scratch_floats());
            graph.conv_shapes().into_iter().flat_map(scratch).max().unwrap_or(0)
        });
        let bn_partials_floats = graph
            .nodes
            .iter()
            .filter_map(|node| match node {
                Node::Forward(ForwardOp::BatchNorm { shape, .. }) => {
                    Some(BatchNorm::reducing(*shape, on_gpu).partials_floats())
                }
                _ => None,
            })
            .max()
            .unwrap_or(4);
        StepSizes {
            activation_words: BufferPlan::new(graph).buffer_words,
            pixel_words: graph.batch * IMAGE_BYTES / 4,
            labels: graph.batch,
            saved_floats: saved_offsets(graph).last().map_or(0, |(end, _)| *end),
            conv_scratch_floats,
            bn_partials_floats,
        }
    }

    /// Bytes.
    pub fn memory(&self) -> Memory {
        let bytes = |floats: usize| (floats * 4) as u64;
        Memory {
            activations: bytes(self.activation_words.iter().sum()),
            batches: bytes(self.pixel_words + self.labels),
            scratch: bytes(self.saved_floats + self.conv_scratch_floats + self.bn_partials_floats),
            parameters: 0,
        }
    }
}

/// Where each batch-norm layer's saved statistics start, and where the whole buffer ends
/// (`(end, start)` a layer, in floats): 2 x channels a ghost batch each, at multiples of 64
/// floats.
pub fn saved_offsets(graph: &Graph) -> Vec<(usize, usize)> {
    let mut end = 0;
    graph
        .bn_channels
        .iter()
        .map(|c| {
            let start = end;
            end = (start + 2 * c * graph.bn_ghosts()).next_multiple_of(64);
            (end, start)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches of 128 over 1000 training and 500 test images, f32 activations.
    fn small_run() -> RunSize {
        RunSize {
            batch: 128,
            train_images: 1000,
            test_images: 500,
            bn_group: None,
            precision: Precision::F32,
        }
    }

    #[test]
    fn the_largest_batch_within_a_budget_is_the_one_that_fills_it() {
        let config = ModelConfig::new(8, 16).unwrap();
        let run = small_run();
        let need = |batch| Memory::at_most(config, RunSize { batch, ..run }, true).total();
        assert!(need(64) < need(65));
        assert_eq!(Memory::largest_batch_within(config, run, true, need(64)), 64);
        assert_eq!(Memory::largest_batch_within(config, run, true, need(1) - 1), 0);
        assert_eq!(Memory::largest_batch_within(config, run, true, u64::MAX), 128);
    }

    /// f16 activations take half the bytes of f32 ones (the head's few f32 tensors aside), so
    /// a budget holds about twice the batch.
    #[test]
    fn f16_activations_halve_the_activations_memory() {
        let config = ModelConfig::new(8, 16).unwrap();
        let run = small_run();
        let f16 = RunSize { precision: Precision::F16, ..run };
        let (m32, m16) = (Memory::at_most(config, run, true), Memory::at_most(config, f16, true));
        let ratio = m16.activations as f64 / m32.activations as f64;
        assert!((0.49..0.52).contains(&ratio), "f16 activations are {ratio} of f32's");
        assert_eq!((m16.parameters, m16.batches), (m32.parameters, m32.batches));
        let budget = m32.total();
        assert!(Memory::largest_batch_within(config, RunSize { batch: 256, ..f16 }, true, budget) > 128);
    }

    /// The last, smaller batch's graph shares the full one's activations and scratch: it
    /// adds only its images and labels.
    #[test]
    fn a_last_batch_adds_only_its_images() {
        let config = ModelConfig::new(8, 8).unwrap();
        let even = Memory::at_most(
            config,
            RunSize {
                batch: 100,
                train_images: 1000,
                test_images: 100,
                bn_group: None,
                precision: Precision::F32,
            },
            false,
        );
        let odd = Memory::at_most(
            config,
            RunSize {
                batch: 100,
                train_images: 1030,
                test_images: 100,
                bn_group: None,
                precision: Precision::F32,
            },
            false,
        );
        assert_eq!(odd.total() - even.total(), 30 * (IMAGE_BYTES as u64 + 4));
    }
}
