//! Every GPU operation against its plain-Rust CPU reference (`src/cpu/`), one file per op,
//! on shapes that exercise the edges: batch 1, odd sizes, stride 2, lengths that are not
//! multiples of the workgroup size. One test binary, so one device serves them all.

#[path = "../common/mod.rs"]
mod common;

mod batch_norm;
mod conv2d;
mod cross_entropy;
mod linear;
mod pool;
mod prepare_batch;
mod relu;
mod sgd;
mod shake;
