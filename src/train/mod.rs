//! Training: data, the loop, checkpoints and what the user sees.

pub mod data;
