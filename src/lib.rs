//! Shake-Shake on any GPU through wgpu. The modules, lowest layer first (`layers` states the
//! order and its tests enforce it: a module uses only modules of lower layers):
//!
//! - `shapes`: plain shapes and settings every layer agrees on (convolution, batch norm,
//!   linear, shake modes, SGD, normalisation, CIFAR sizes).
//! - `random`: the counter-based generator shared by shaders and references.
//! - `layout`: how tensors are laid out in GPU memory.
//! - `files`: atomic file writes.
//! - `cpu`: plain-Rust references of every operation in f64, the ground truth for tests.
//! - `gpu`: device selection, embedded shaders, pipelines and dispatches, shader interfaces
//!   (checked against the WGSL by naga), timing, buffer read-back.
//! - `ops`: each operation's GPU dispatch (shader in `shaders/`, CPU reference in `cpu`,
//!   checks in `checks`).
//! - `checks`: every op against its CPU reference on edge shapes, the one list of cases
//!   that the tests (`tests/suite/ops.rs`), `selftest` and the variant tuner run.
//! - `tuning`: which kernel variant runs each shape on this adapter (checked, then timed,
//!   then remembered).
//! - `model`: the network declared once as a graph, its backward derived, buffers planned,
//!   and its two executors (CPU reference and GPU step).
//! - `train`: data, run directories, the training loop, checkpoints, download, the plot.
//! - `bench`: op and training benchmarks; `selftest`: every check on the user's adapter;
//!   `kernels`: every pipeline a network could use, created and nothing run.

pub mod bench;
pub mod checks;
pub mod cpu;
pub mod files;
pub mod gpu;
pub mod kernels;
pub mod layers;
pub mod layout;
pub mod model;
pub mod ops;
pub mod random;
pub mod selftest;
pub mod shapes;
pub mod train;
pub mod tuning;
