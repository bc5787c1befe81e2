//! The Shake-Shake network: its configuration, its parameters, its declaration as a graph of
//! operations (from which the backward pass is derived), and the two executors of that graph:
//! a plain f64 CPU reference and the GPU training step; and what a step needs of a device.

pub mod config;
pub mod cpu_exec;
pub mod gpu_params;
pub mod gpu_step;
pub mod graph;
pub mod memory;
pub mod params;
pub mod plan;
pub mod requirements;
mod show;

pub use config::ModelConfig;
pub use graph::{Graph, Mode};
pub use params::ParamStore;
