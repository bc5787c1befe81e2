//! The GPU side: choosing a device, embedding shaders, pipelines and dispatches, buffers.

pub mod buffers;
mod context;
#[cfg(test)]
mod fragments;
#[cfg(test)]
mod fxc;
pub mod interface;
pub mod kernel;
mod pipeline_cache;
pub mod probe;
pub mod shaders;
pub mod timing;

pub use context::{
    AdapterChoice, DeviceLost, GRID_MAX_X, Gpu, GrantedFeatures, LimitsMode, PrecisionChoice, WaitLimit,
    choose_adapter, describe_info, list_adapters, other_usable_adapters, unusable,
};
pub use interface::{Binding, ShaderInterface};
pub use kernel::{CompileError, Dispatch, GpuError, Kernel, Slice, create_in_parallel};
