//! What one step of a network needs from a device, computed from its graph before anything
//! is allocated, and held against the device's limits: so a network or batch too large for
//! a device is a clear error naming the limit, not a crash in the driver.

use super::graph::{ForwardOp, Graph, Node, TensorId};
use super::plan::BufferPlan;
use crate::gpu::shaders::{ModuleNeeds, Shortfall, most_needed};
use crate::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use crate::shapes::IMAGE_BYTES;

/// The largest amounts a step asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requirements {
    /// What the kernels themselves need, whatever the network.
    pub shaders: ModuleNeeds,
    /// The largest buffer bound at once (bytes): an activation, the images, a parameter, the
    /// scratch of a split weight gradient. The flat parameter buffers are bound in ranges
    /// (see `ops::sgd`).
    pub largest_binding: u64,
    pub largest_buffer: u64,
    pub workgroups_per_dimension: u32,
}

impl Requirements {
    /// The needs of `graph`'s step, with every kernel variant it might choose; parameters
    /// start at multiples of the device's storage offset alignment (from `limits`).
    pub fn of(graph: &Graph, limits: &wgpu::Limits) -> Requirements {
        let shaders = most_needed();
        let plan = BufferPlan::new(graph);
        let floats = |n: usize| (n * 4) as u64;
        // The longest activation buffer, or the images (bytes, read as u32s).
        let longest = plan.buffer_words.iter().copied().max().unwrap_or(0).max(graph.batch * IMAGE_BYTES / 4);
        let mut largest_binding = floats(longest);
        // Each parameter (and its gradient) is bound on its own.
        largest_binding =
            largest_binding.max(graph.params.iter().map(|p| floats(p.len())).max().unwrap_or(0));
        let mut grid = [0u32; 3];
        for node in &graph.nodes {
            if let Node::Forward(ForwardOp::Conv { shape, .. }) = node {
                // Winograd is offered only where its scratch fits the device (see
                // `ConvVariant::supports`), so it asks nothing of it.
                for variant in ConvVariant::ALL.into_iter().filter(|v| v.winograd_tile().is_none()) {
                    let conv = Conv2d::with_variants(*shape, [variant; 3]);
                    largest_binding = largest_binding.max(floats(conv.partial_floats()));
                    for pass in ConvPass::ALL {
                        let (_, g) = conv.launch(pass);
                        grid = [0, 1, 2].map(|i| grid[i].max(g[i]));
                    }
                }
            }
        }
        // The widest 1-D grid, as `Gpu::grid_1d` spreads it (an invocation an element of the
        // longest tensor, whatever its precision), and one workgroup a channel of batch-norm
        // statistics.
        let elements = (0..graph.tensors.len()).map(|t| graph.tensor_len(TensorId(t))).max().unwrap_or(0);
        let [x, y, _] = crate::gpu::kernel::grid_1d(elements.max(longest), crate::gpu::GRID_MAX_X);
        let widest_bn = graph.bn_channels.iter().copied().max().unwrap_or(0) as u32;
        grid[0] = grid[0].max(x).max(widest_bn);
        grid[1] = grid[1].max(y);
        let (_, trainable, _) = super::gpu_params::flat_layout(&graph.params, limits);
        Requirements {
            shaders,
            largest_binding,
            largest_buffer: largest_binding.max(floats(trainable)),
            workgroups_per_dimension: grid.into_iter().max().unwrap_or(0),
        }
    }

    /// Every limit of `limits` below what the step needs.
    pub fn shortfalls(&self, limits: &wgpu::Limits) -> Vec<Shortfall> {
        let need = |limit, needed: u64, offered: u64, grows_with_batch| {
            (needed > offered).then_some(Shortfall { limit, needed, offered, grows_with_batch })
        };
        let mut short = self.shaders.shortfalls(limits);
        short.extend(
            [
                need(
                    "maxStorageBufferBindingSize",
                    self.largest_binding,
                    limits.max_storage_buffer_binding_size,
                    true,
                ),
                need("maxBufferSize", self.largest_buffer, limits.max_buffer_size, true),
                need(
                    "maxComputeWorkgroupsPerDimension",
                    self.workgroups_per_dimension.into(),
                    limits.max_compute_workgroups_per_dimension.into(),
                    true,
                ),
            ]
            .into_iter()
            .flatten(),
        );
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mode, ModelConfig};

    fn needs(depth: usize, width: usize, batch: usize) -> Requirements {
        let graph = Graph::build(ModelConfig::new(depth, width).unwrap(), batch, Mode::Train);
        Requirements::of(&graph, &wgpu::Limits::default())
    }

    /// 26 2x32d at batch 128 fits WebGPU's defaults; its largest binding is the first
    /// stage's activations (128 x 32 x 32 x 32 floats = 16 MiB), and it doubles with the batch.
    #[test]
    fn the_default_network_fits_webgpu_defaults_and_bindings_grow_with_the_batch() {
        let defaults = wgpu::Limits::default();
        let r = needs(26, 32, 128);
        assert_eq!(r.shortfalls(&defaults), vec![]);
        assert_eq!(r.largest_binding, 128 * 32 * 32 * 32 * 4);
        assert_eq!(needs(26, 32, 256).largest_binding, 2 * r.largest_binding);
    }

    /// 26 2x112d at batch 128 binds 56 MiB at most, inside the 128 MiB default; a batch of
    /// 4096 is refused, naming the binding limit.
    #[test]
    fn too_large_a_batch_names_the_binding_limit() {
        let defaults = wgpu::Limits::default();
        assert_eq!(needs(26, 112, 128).shortfalls(&defaults), vec![]);
        let short = needs(8, 16, 4096).shortfalls(&defaults);
        assert!(
            short.iter().any(|s| s.limit == "maxStorageBufferBindingSize" && s.grows_with_batch),
            "{short:?}"
        );
    }
}
