//! Benchmarks: `bench ops` times every operation of Shake-Shake at the shapes the network
//! really has (`ops`); `bench train` measures steady-state training throughput (`train`).
//! Throughput is only ever measured here, never in timed tests.

pub mod ops;
pub mod train;

pub use ops::{Filter, OpFigure, OpsBench, format_figure, op_figures};
pub use train::{TrainFigure, train_figure};
