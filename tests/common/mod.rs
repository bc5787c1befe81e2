//! Shared by the GPU tests: one device per test binary, and f64 <-> f32 buffer helpers.
#![allow(dead_code)] // each test binary uses a different part of this module

use shakeshake::cpu::gradcheck::max_relative_error;
use shakeshake::gpu::{AdapterChoice, Gpu};
use std::sync::OnceLock;

/// The device the tests run on: `SHAKESHAKE_ADAPTER` if set, else the best one (lavapipe on CI).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::open(&AdapterChoice::from_flag_or_env(None)).expect("tests need a GPU adapter");
        eprintln!("testing on {}", gpu.describe());
        gpu
    })
}

pub fn upload(gpu: &Gpu, data: &[f64]) -> wgpu::Buffer {
    let v: Vec<f32> = data.iter().map(|x| *x as f32).collect();
    gpu.storage_from("test input", &v)
}

pub fn download(gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<f32> {
    gpu.read(buffer)
}

/// The values as the GPU sees them (rounded to f32), so references start from the same inputs.
pub fn rounded(data: &[f64]) -> Vec<f64> {
    data.iter().map(|x| *x as f32 as f64).collect()
}

#[track_caller]
pub fn assert_close(got: &[f32], want: &[f64], tolerance: f64, what: &str) {
    let err = max_relative_error(got, want);
    assert!(err <= tolerance, "{what}: relative error {err:.3e} over tolerance {tolerance:.1e}");
}
