//! The test suite, one binary: its tests run side by side (two at a time on two cores), so a
//! test that mostly waits on one core for a driver's compiler leaves the other to the rest,
//! and devices, compiled kernels and the tests' kernel choices are made once for all of it.
//! Each module is one subject (docs/testing.md).

mod any_adapter;
mod cli;
mod common;
mod cpu_gradients;
mod long_runs;
#[cfg(feature = "mpi")]
mod mpi;
mod network;
mod ops;
mod training;
