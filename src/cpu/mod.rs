//! Plain-Rust references of every GPU operation, in f64, written for clarity rather than
//! speed. Tests hold each shader to its reference here, and each reference's backward to
//! finite differences (see `gradcheck`). Weights use PyTorch's layouts.

pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod gradcheck;
pub mod linear;
pub mod loss_scale;
pub mod pool;
pub mod prepare_batch;
pub mod relu;
pub mod sgd;
pub mod shake;
pub mod shortcut;
