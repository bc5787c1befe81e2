//! Shake-Shake on any GPU through wgpu.
//!
//! - `gpu`: device selection, embedded shaders, pipelines and dispatches.
//! - `ops`: each operation's GPU dispatch (shader in `shaders/`, CPU reference in `cpu`).
//! - `cpu`: plain-Rust references of every operation, the ground truth for tests.
//! - `layout`: how tensors are laid out in GPU memory.
//! - `random`: the counter-based generator shared by shaders and references.

pub mod bench;
pub mod cpu;
pub mod files;
pub mod gpu;
pub mod layers;
pub mod layout;
pub mod model;
pub mod ops;
pub mod random;
pub mod shapes;
pub mod train;
