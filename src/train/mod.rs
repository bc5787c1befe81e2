//! Training: data, the loop, checkpoints and what the user sees.

pub mod checkpoint;
pub mod data;
pub mod download;
pub mod options;
pub mod plot;
pub mod precision;
pub mod ranks;
pub mod replicas;
pub mod run_dir;
pub mod session;
pub mod shares;
pub mod stop;
pub mod trainer;
pub mod watchdog;
