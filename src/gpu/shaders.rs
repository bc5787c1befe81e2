//! Every WGSL file in `shaders/`, embedded in the binary, and the modules made from them.
//!
//! WGSL has no includes, so a module is the concatenation of a few files: shared pieces
//! (the random generator, the conv shape, the lane strategy) are written once and composed.

use crate::shapes::Precision;

/// `(file name, its text)`, from the file in `shaders/<folder>`.
macro_rules! wgsl {
    ($folder:literal, $name:literal) => {
        ($name, include_str!(concat!("../../shaders/", $folder, $name)))
    };
}

/// Each `.wgsl` file under `shaders/`, by file name (unique across the folders): the
/// shared pieces and the other ops at the top, the convolution's shared pieces in `conv2d/`,
/// each convolution family's own files in `conv2d/<family>/`.
pub const FILES: &[(&str, &str)] = &[
    wgsl!("", "activations.wgsl"),
    wgsl!("", "batch_norm.wgsl"),
    wgsl!("", "cross_entropy.wgsl"),
    wgsl!("", "element_f16.wgsl"),
    wgsl!("", "element_f32.wgsl"),
    wgsl!("", "grid.wgsl"),
    wgsl!("", "linear.wgsl"),
    wgsl!("", "loss_scale.wgsl"),
    wgsl!("", "loss_scale_state.wgsl"),
    wgsl!("", "pool.wgsl"),
    wgsl!("", "prepare_batch.wgsl"),
    wgsl!("", "quad_scalar.wgsl"),
    wgsl!("", "quad_vec4.wgsl"),
    wgsl!("", "random.wgsl"),
    wgsl!("", "relu.wgsl"),
    wgsl!("", "sgd.wgsl"),
    wgsl!("", "shake.wgsl"),
    wgsl!("", "step.wgsl"),
    wgsl!("conv2d/", "conv2d_params.wgsl"),
    wgsl!("conv2d/", "gemm_shape.wgsl"),
    wgsl!("conv2d/", "lanes_plain.wgsl"),
    wgsl!("conv2d/", "lanes_subgroup.wgsl"),
    wgsl!("conv2d/", "reduce_splits.wgsl"),
    wgsl!("conv2d/", "register_block.wgsl"),
    wgsl!("conv2d/", "register_main_subgroup.wgsl"),
    wgsl!("conv2d/direct/", "conv2d_direct.wgsl"),
    wgsl!("conv2d/direct/", "conv2d_forward_direct.wgsl"),
    wgsl!("conv2d/direct/", "conv2d_grad_input_direct.wgsl"),
    wgsl!("conv2d/register/", "conv2d_forward_register.wgsl"),
    wgsl!("conv2d/register/", "conv2d_grad_input_register.wgsl"),
    wgsl!("conv2d/register/", "conv2d_grad_weight_quads.wgsl"),
    wgsl!("conv2d/register/", "conv2d_grad_weight_register.wgsl"),
    wgsl!("conv2d/register/", "grad_weight_taps.wgsl"),
    wgsl!("conv2d/register/", "register_span.wgsl"),
    wgsl!("conv2d/tiled/", "conv2d_forward_gemm.wgsl"),
    wgsl!("conv2d/tiled/", "conv2d_forward_gemm_wt_scalar.wgsl"),
    wgsl!("conv2d/tiled/", "conv2d_forward_gemm_wt_vec4.wgsl"),
    wgsl!("conv2d/tiled/", "conv2d_grad_input_gemm.wgsl"),
    wgsl!("conv2d/tiled/", "conv2d_grad_weight_gemm.wgsl"),
    wgsl!("conv2d/tiled/", "gemm_b_columns.wgsl"),
    wgsl!("conv2d/tiled/", "gemm_tiled.wgsl"),
    wgsl!("conv2d/winograd/", "winograd4_transforms.wgsl"),
    wgsl!("conv2d/winograd/", "winograd_columns.wgsl"),
    wgsl!("conv2d/winograd/", "winograd_gemm.wgsl"),
    wgsl!("conv2d/winograd/", "winograd_grad_weight.wgsl"),
    wgsl!("conv2d/winograd/", "winograd_io.wgsl"),
    wgsl!("conv2d/winograd/", "winograd_shape.wgsl"),
];

/// A shader module: the files it is made of, in order.
#[derive(Clone, Copy, Debug)]
pub struct ModuleDef {
    pub name: &'static str,
    pub files: &'static [&'static str],
    /// Uses subgroup operations: only for devices that granted `SUBGROUP`.
    pub needs_subgroups: bool,
    /// Clamps or masks every buffer index itself, so it is created without wgpu's injected
    /// bounds checks (the hot convolution kernels).
    pub checks_own_bounds: bool,
}

const fn module(name: &'static str, files: &'static [&'static str]) -> ModuleDef {
    ModuleDef { name, files, needs_subgroups: false, checks_own_bounds: false }
}

const fn conv_module(name: &'static str, files: &'static [&'static str]) -> ModuleDef {
    ModuleDef { name, files, needs_subgroups: false, checks_own_bounds: true }
}

const fn conv_subgroup_module(name: &'static str, files: &'static [&'static str]) -> ModuleDef {
    ModuleDef { name, files, needs_subgroups: true, checks_own_bounds: true }
}

pub const MODULES: &[ModuleDef] = &[
    conv_subgroup_module(
        "conv2d_forward_register_subgroup",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_forward_register.wgsl",
            "register_block.wgsl",
            "register_span.wgsl",
            "lanes_subgroup.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_module(
        "conv2d_forward_register_plain",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_forward_register.wgsl",
            "register_block.wgsl",
            "register_span.wgsl",
            "lanes_plain.wgsl",
        ],
    ),
    conv_module(
        "conv2d_forward_tiled",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_forward_gemm.wgsl",
            "conv2d_forward_gemm_wt_vec4.wgsl",
            "gemm_tiled.wgsl",
        ],
    ),
    conv_module(
        "conv2d_forward_tiled_scalar",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_forward_gemm.wgsl",
            "conv2d_forward_gemm_wt_scalar.wgsl",
            "gemm_b_columns.wgsl",
            "gemm_tiled.wgsl",
        ],
    ),
    conv_module(
        "conv2d_forward_direct",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_forward_direct.wgsl",
            "conv2d_direct.wgsl",
        ],
    ),
    conv_subgroup_module(
        "conv2d_grad_input_register_subgroup",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_grad_input_register.wgsl",
            "register_block.wgsl",
            "register_span.wgsl",
            "lanes_subgroup.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_module(
        "conv2d_grad_input_register_plain",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_grad_input_register.wgsl",
            "register_block.wgsl",
            "register_span.wgsl",
            "lanes_plain.wgsl",
        ],
    ),
    conv_module(
        "conv2d_grad_input_tiled",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_grad_input_gemm.wgsl",
            "gemm_b_columns.wgsl",
            "gemm_tiled.wgsl",
        ],
    ),
    conv_module(
        "conv2d_grad_input_direct",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_grad_input_direct.wgsl",
            "conv2d_direct.wgsl",
        ],
    ),
    conv_subgroup_module(
        "conv2d_grad_weight_register_subgroup",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_grad_weight_register.wgsl",
            "grad_weight_taps.wgsl",
            "register_block.wgsl",
            "lanes_subgroup.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_module(
        "conv2d_grad_weight_register_plain",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_grad_weight_register.wgsl",
            "grad_weight_taps.wgsl",
            "register_block.wgsl",
            "lanes_plain.wgsl",
        ],
    ),
    conv_subgroup_module(
        "conv2d_grad_weight_quads_subgroup",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "conv2d_grad_weight_quads.wgsl",
            "grad_weight_taps.wgsl",
            "register_block.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_module(
        "conv2d_grad_weight_tiled",
        &[
            "element_f32.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "conv2d_grad_weight_gemm.wgsl",
            "gemm_b_columns.wgsl",
            "gemm_tiled.wgsl",
        ],
    ),
    conv_subgroup_module(
        "winograd_gemm_subgroup",
        &[
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "winograd_shape.wgsl",
            "winograd_columns.wgsl",
            "winograd_gemm.wgsl",
            "register_block.wgsl",
            "lanes_subgroup.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_subgroup_module(
        "winograd_grad_weight_subgroup",
        &[
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "winograd_shape.wgsl",
            "winograd_columns.wgsl",
            "winograd_grad_weight.wgsl",
            "register_block.wgsl",
            "lanes_subgroup.wgsl",
            "register_main_subgroup.wgsl",
        ],
    ),
    conv_module(
        "winograd4_transforms",
        &[
            "element_f32.wgsl",
            "grid.wgsl",
            "conv2d_params.wgsl",
            "gemm_shape.wgsl",
            "winograd_shape.wgsl",
            "winograd_io.wgsl",
            "winograd4_transforms.wgsl",
        ],
    ),
    conv_module("reduce_splits", &["grid.wgsl", "reduce_splits.wgsl"]),
    module(
        "batch_norm_vec4",
        &["element_f32.wgsl", "grid.wgsl", "quad_vec4.wgsl", "activations.wgsl", "batch_norm.wgsl"],
    ),
    module(
        "batch_norm_scalar",
        &["element_f32.wgsl", "grid.wgsl", "quad_scalar.wgsl", "activations.wgsl", "batch_norm.wgsl"],
    ),
    module(
        "relu_vec4",
        &["element_f32.wgsl", "grid.wgsl", "quad_vec4.wgsl", "activations.wgsl", "relu.wgsl"],
    ),
    module(
        "relu_scalar",
        &["element_f32.wgsl", "grid.wgsl", "quad_scalar.wgsl", "activations.wgsl", "relu.wgsl"],
    ),
    module(
        "shake_vec4",
        &["element_f32.wgsl", "grid.wgsl", "step.wgsl", "random.wgsl", "quad_vec4.wgsl", "shake.wgsl"],
    ),
    module(
        "shake_scalar",
        &["element_f32.wgsl", "grid.wgsl", "step.wgsl", "random.wgsl", "quad_scalar.wgsl", "shake.wgsl"],
    ),
    module("pool", &["element_f32.wgsl", "grid.wgsl", "pool.wgsl"]),
    module("linear", &["grid.wgsl", "linear.wgsl"]),
    module("cross_entropy", &["grid.wgsl", "loss_scale_state.wgsl", "cross_entropy.wgsl"]),
    module("sgd", &["grid.wgsl", "step.wgsl", "loss_scale_state.wgsl", "sgd.wgsl"]),
    module("loss_scale", &["grid.wgsl", "loss_scale_state.wgsl", "loss_scale.wgsl"]),
    module(
        "prepare_batch",
        &["element_f32.wgsl", "grid.wgsl", "step.wgsl", "random.wgsl", "prepare_batch.wgsl"],
    ),
];

pub fn file(name: &str) -> &'static str {
    FILES.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no shader file {name}")).1
}

pub fn module_def(name: &str) -> &'static ModuleDef {
    all_modules().find(|m| m.name == name).unwrap_or_else(|| panic!("no shader module {name}"))
}

/// The file that makes a module's activations f32, and the one its f16 twin joins instead.
const F32_ELEMENTS: &str = "element_f32.wgsl";
const F16_ELEMENTS: &str = "element_f16.wgsl";

/// Every module that reads or writes activations joins element_f32.wgsl; each has an f16
/// twin, made here rather than listed, so the two can never differ but in that file:
/// `<name>_f16`, with element_f16.wgsl in its place.
fn f16_twins() -> &'static [ModuleDef] {
    static TWINS: std::sync::OnceLock<Vec<ModuleDef>> = std::sync::OnceLock::new();
    TWINS.get_or_init(|| {
        let twin = |m: &ModuleDef| {
            let files: Vec<&'static str> =
                m.files.iter().map(|f| if *f == F32_ELEMENTS { F16_ELEMENTS } else { f }).collect();
            ModuleDef {
                name: Box::leak(format!("{}_f16", m.name).into_boxed_str()),
                files: Box::leak(files.into_boxed_slice()),
                ..*m
            }
        };
        MODULES.iter().filter(|m| m.files.contains(&F32_ELEMENTS)).map(twin).collect()
    })
}

/// `MODULES` and their f16 twins.
pub fn all_modules() -> impl Iterator<Item = &'static ModuleDef> {
    MODULES.iter().chain(f16_twins())
}

/// The module that runs `name` (one of `MODULES`) with activations in `precision`: its f16
/// twin, or `name` itself where it reads and writes no activations (Winograd's GEMMs, the
/// reductions), which serves both.
pub fn module_in(name: &'static str, precision: Precision) -> &'static str {
    let def = MODULES.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no shader module {name}"));
    match precision {
        Precision::F32 => name,
        Precision::F16 if !def.files.contains(&F32_ELEMENTS) => name,
        Precision::F16 => {
            let twin = format!("{name}_f16");
            f16_twins().iter().find(|m| m.name == twin).expect("a module of activations has a twin").name
        }
    }
}

impl ModuleDef {
    /// The element type of the activations it reads and writes (f32 for a module that has
    /// none).
    pub fn precision(&self) -> Precision {
        if self.files.contains(&F16_ELEMENTS) { Precision::F16 } else { Precision::F32 }
    }
}

/// The WGSL text of a module: its files joined in order.
pub fn source(name: &str) -> String {
    module_def(name).files.iter().map(|f| format!("// ---- {f}\n{}", file(f))).collect::<Vec<_>>().join("\n")
}

/// Parse and validate a module with naga, as a device would (no device needed).
pub fn validate(name: &str) -> Result<(), String> {
    let text = source(name);
    let module =
        naga::front::wgsl::parse_str(&text).map_err(|e| format!("{name}: {}", e.emit_to_string(&text)))?;
    let caps = naga::valid::Capabilities::SUBGROUP | naga::valid::Capabilities::SHADER_FLOAT16;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| format!("{name}: {}", e.emit_to_string(&text)))?;
    Ok(())
}

/// What a module asks of a device, read from its WGSL (overrides at their defaults, which
/// are the largest values the Rust side sets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleNeeds {
    pub storage_buffers: u32,
    pub uniform_buffers: u32,
    /// The largest workgroup of any entry point: its invocations and its x and y sizes.
    pub invocations: u32,
    pub workgroup_size: [u32; 2],
    /// Bytes of `var<workgroup>` memory.
    pub workgroup_bytes: u32,
}

/// One of a device's limits that a step needs more of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// The limit's name in WebGPU (and wgpu::Limits).
    pub limit: &'static str,
    pub needed: u64,
    pub offered: u64,
    /// Whether a smaller batch needs less of it.
    pub grows_with_batch: bool,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}, and the step needs {}", self.limit, self.offered, self.needed)
    }
}

impl ModuleNeeds {
    /// Every limit of `limits` below these needs: a device that cannot run the kernels at all.
    pub fn shortfalls(&self, limits: &wgpu::Limits) -> Vec<Shortfall> {
        let need = |limit, needed: u32, offered: u32| {
            (needed > offered).then_some(Shortfall {
                limit,
                needed: needed.into(),
                offered: offered.into(),
                grows_with_batch: false,
            })
        };
        [
            need(
                "maxStorageBuffersPerShaderStage",
                self.storage_buffers,
                limits.max_storage_buffers_per_shader_stage,
            ),
            need(
                "maxUniformBuffersPerShaderStage",
                self.uniform_buffers,
                limits.max_uniform_buffers_per_shader_stage,
            ),
            need(
                "maxComputeInvocationsPerWorkgroup",
                self.invocations,
                limits.max_compute_invocations_per_workgroup,
            ),
            need("maxComputeWorkgroupSizeX", self.workgroup_size[0], limits.max_compute_workgroup_size_x),
            need("maxComputeWorkgroupSizeY", self.workgroup_size[1], limits.max_compute_workgroup_size_y),
            need(
                "maxComputeWorkgroupStorageSize",
                self.workgroup_bytes,
                limits.max_compute_workgroup_storage_size,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// `name`'s needs (see `ModuleNeeds`).
pub fn needs(name: &str) -> ModuleNeeds {
    let text = source(name);
    let module = naga::front::wgsl::parse_str(&text).expect("embedded shaders parse (a test checks)");
    let info =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .expect("embedded shaders validate (a test checks)");
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &Default::default())
            .expect("overrides have defaults");
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("types lay out");
    // Per entry point: a pipeline binds only the globals its entry point uses.
    let mut needs = ModuleNeeds::default();
    for (i, entry) in module.entry_points.iter().enumerate() {
        let uses = info.get_entry_point(i);
        let mut one = ModuleNeeds::default();
        for (handle, var) in module.global_variables.iter() {
            if uses[handle].is_empty() {
                continue;
            }
            match var.space {
                naga::AddressSpace::Storage { .. } => one.storage_buffers += 1,
                naga::AddressSpace::Uniform => one.uniform_buffers += 1,
                naga::AddressSpace::WorkGroup => one.workgroup_bytes += layouter[var.ty].size,
                _ => {}
            }
        }
        let [x, y, z] = entry.workgroup_size;
        (one.invocations, one.workgroup_size) = (x * y * z, [x, y]);
        needs = needs.max(one);
    }
    needs
}

impl ModuleNeeds {
    /// The larger of each need.
    fn max(self, b: ModuleNeeds) -> ModuleNeeds {
        ModuleNeeds {
            storage_buffers: self.storage_buffers.max(b.storage_buffers),
            uniform_buffers: self.uniform_buffers.max(b.uniform_buffers),
            invocations: self.invocations.max(b.invocations),
            workgroup_size: [
                self.workgroup_size[0].max(b.workgroup_size[0]),
                self.workgroup_size[1].max(b.workgroup_size[1]),
            ],
            workgroup_bytes: self.workgroup_bytes.max(b.workgroup_bytes),
        }
    }
}

/// The most any module needs: what a device must offer to run every kernel variant.
pub fn most_needed() -> ModuleNeeds {
    static MOST: std::sync::OnceLock<ModuleNeeds> = std::sync::OnceLock::new();
    *MOST.get_or_init(|| all_modules().map(|m| needs(m.name)).fold(ModuleNeeds::default(), ModuleNeeds::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_validates() {
        let errors: Vec<String> = all_modules().filter_map(|m| validate(m.name).err()).collect();
        assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    }

    /// Every module through naga's other back ends, as wgpu does on each platform: SPIR-V
    /// (Vulkan), MSL 2.4 (Metal), HLSL shader model 6.0 (DX12 with DXC), and GLSL ES 3.10
    /// (GL, the compute version of GLES). Subgroup modules skip GLSL: GL adapters offer no
    /// subgroups, so those variants are never chosen there. Overrides keep their defaults.
    #[test]
    fn every_module_translates_for_vulkan_metal_dx12_and_gl() {
        use naga::back::{glsl, hlsl, msl, spv};
        let mut errors = vec![];
        for def in MODULES {
            let text = source(def.name);
            let module = naga::front::wgsl::parse_str(&text).unwrap();
            let info = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::all(),
            )
            .validate(&module)
            .unwrap();
            for entry in &module.entry_points {
                let stage = naga::ShaderStage::Compute;
                let name = entry.name.clone();
                let no_constants = naga::back::PipelineConstants::default();
                let (module, info) = naga::back::pipeline_constants::process_overrides(
                    &module,
                    &info,
                    Some((stage, &name)),
                    &no_constants,
                )
                .unwrap();
                let mut fail =
                    |backend: &str, e: String| errors.push(format!("{} {name} for {backend}: {e}", def.name));
                let spv_pipeline = spv::PipelineOptions { shader_stage: stage, entry_point: name.clone() };
                match spv::write_vec(&module, &info, &spv::Options::default(), Some(&spv_pipeline)) {
                    Ok(words) if words.len() > 100 => {}
                    Ok(words) => fail("SPIR-V", format!("only {} words", words.len())),
                    Err(e) => fail("SPIR-V", e.to_string()),
                }
                let msl_options = msl::Options { lang_version: (2, 4), ..Default::default() };
                let msl_pipeline =
                    msl::PipelineOptions { entry_point: Some((stage, name.clone())), ..Default::default() };
                match msl::write_string(&module, &info, &msl_options, &msl_pipeline) {
                    Ok((text, _)) if text.contains("kernel void") => {}
                    Ok(_) => fail("MSL", "no kernel in the output".into()),
                    Err(e) => fail("MSL", e.to_string()),
                }
                let hlsl_options = hlsl::Options {
                    shader_model: hlsl::ShaderModel::V6_0,
                    fake_missing_bindings: true,
                    ..Default::default()
                };
                let hlsl_pipeline = hlsl::PipelineOptions { entry_point: Some((stage, name.clone())) };
                let mut hlsl_text = String::new();
                match hlsl::Writer::new(&mut hlsl_text, &hlsl_options, &hlsl_pipeline)
                    .write(&module, &info, None)
                {
                    Ok(_) if hlsl_text.contains("[numthreads(") => {}
                    Ok(_) => fail("HLSL", "no compute entry point in the output".into()),
                    Err(e) => fail("HLSL", e.to_string()),
                }
                if !def.needs_subgroups {
                    let glsl_options = glsl::Options {
                        version: glsl::Version::Embedded { version: 310, is_webgl: false },
                        ..Default::default()
                    };
                    let glsl_pipeline = glsl::PipelineOptions {
                        shader_stage: stage,
                        entry_point: name.clone(),
                        multiview: None,
                    };
                    let mut glsl_text = String::new();
                    let written = glsl::Writer::new(
                        &mut glsl_text,
                        &module,
                        &info,
                        &glsl_options,
                        &glsl_pipeline,
                        Default::default(),
                    )
                    .and_then(|mut w| w.write());
                    match written {
                        Ok(_) if glsl_text.contains("layout(local_size_x") => {}
                        Ok(_) => fail("GLSL ES 3.10", "no compute layout in the output".into()),
                        Err(e) => fail("GLSL ES 3.10", e.to_string()),
                    }
                }
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// `flat_index` spreads a `grid_1d` grid over y assuming workgroups of `WG_SIZE`: every
    /// entry point that takes `num_workgroups` (the grid_1d kernels) must have exactly that
    /// size, and `WG_SIZE` must be the Rust side's `GRID_WG_SIZE`.
    #[test]
    fn every_grid_1d_kernel_has_the_grid_workgroup_size() {
        let want = crate::gpu::kernel::GRID_WG_SIZE as u32;
        let mut errors = vec![];
        for def in MODULES {
            let module = naga::front::wgsl::parse_str(&source(def.name)).unwrap();
            for entry in &module.entry_points {
                let takes_grid = entry
                    .function
                    .arguments
                    .iter()
                    .any(|a| a.binding == Some(naga::Binding::BuiltIn(naga::BuiltIn::NumWorkGroups)));
                if takes_grid && entry.workgroup_size != [want, 1, 1] {
                    errors.push(format!("{} {}: {:?}", def.name, entry.name, entry.workgroup_size));
                }
            }
            if def.files.contains(&"grid.wgsl") {
                let wg_size = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some("WG_SIZE"));
                let value = wg_size.map(|(_, c)| &module.global_expressions[c.init]);
                if !matches!(value, Some(naga::Expression::Literal(naga::Literal::U32(v))) if *v == want) {
                    errors.push(format!("{}: WG_SIZE is {value:?}, not {want}", def.name));
                }
            }
        }
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// The reflection sees what the WGSL says: the tiled convolution's 16x8 workgroup and
    /// its two tiles of 256 vec4s; of the linear layer's six storage buffers, the three each
    /// pass uses, and its one uniform; of shake's twelve, the eight of its forward (two
    /// branches and their norms' statistics and affine parameters, shortcut, output): as
    /// many as WebGPU's defaults allow.
    #[test]
    fn needs_are_read_from_the_wgsl() {
        let tiled = needs("conv2d_forward_tiled");
        assert_eq!((tiled.invocations, tiled.workgroup_size), (128, [16, 8]));
        assert_eq!(tiled.workgroup_bytes, 2 * 256 * 16);
        let linear = needs("linear");
        assert_eq!((linear.storage_buffers, linear.uniform_buffers), (3, 1));
        assert_eq!(needs("shake_vec4").storage_buffers, 8);
        assert!(most_needed().storage_buffers >= 4 && most_needed().storage_buffers <= 8);
    }

    #[test]
    fn every_file_in_shaders_is_embedded_and_used() {
        fn walk(dir: &std::path::Path, found: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "wgsl") {
                    let name = path.file_name().unwrap().to_str().unwrap().to_string();
                    found.push((name, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut found = vec![];
        walk(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")), &mut found);
        assert_eq!(found.len(), FILES.len(), "a file twice in FILES, or two files of one name");
        for (name, text) in &found {
            assert!(FILES.contains(&(name.as_str(), text.as_str())), "{name} is not embedded");
            assert!(all_modules().any(|m| m.files.contains(&name.as_str())), "{name} is in no module");
        }
    }
}
