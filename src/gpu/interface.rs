//! What the Rust side believes about each WGSL module, stated once, beside the code that
//! dispatches it: the bindings (number and WGSL name), the layouts of the structs it writes
//! into uniforms, and the constants both sides must agree on. `check` holds a module to
//! that belief by reflecting its WGSL with naga (no device needed); the tests run it on every
//! module, so a params struct, a binding or a stream number changed on one side only fails.

/// One binding of a module: its number in group 0 and the name its WGSL variable has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub number: u32,
    pub name: &'static str,
}

impl Binding {
    pub const fn new(number: u32, name: &'static str) -> Binding {
        Binding { number, name }
    }
}

/// A `#[repr(C)]` Rust struct that mirrors a WGSL struct of the same name: its size and the
/// offsets of its named fields (padding fields, `_`-prefixed, are covered by the size).
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

/// `struct_layout!(ConvParams { batch, cin, ... })`: the layout of a Rust params struct.
#[macro_export]
macro_rules! struct_layout {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        $crate::gpu::interface::StructLayout {
            name: stringify!($ty),
            size: std::mem::size_of::<$ty>(),
            fields: &[$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        }
    };
}

/// The interface of one or more modules that share it (the variants of a kernel).
#[derive(Clone, Copy, Debug)]
pub struct ShaderInterface {
    pub modules: &'static [&'static str],
    /// Every binding the modules declare.
    pub bindings: &'static [Binding],
    pub structs: &'static [StructLayout],
    /// WGSL `const`s (u32) whose values Rust mirrors.
    pub constants: &'static [(&'static str, u32)],
}

/// Every disagreement between `iface` and the WGSL of its modules, in words.
pub fn check(iface: &ShaderInterface) -> Vec<String> {
    let mut errors = vec![];
    for &module in iface.modules {
        let text = super::shaders::source(module);
        match naga::front::wgsl::parse_str(&text) {
            Ok(parsed) => errors.extend(check_module(module, &parsed, iface)),
            Err(e) => errors.push(format!("{module}: {}", e.emit_to_string(&text))),
        }
    }
    errors
}

fn check_module(module: &str, m: &naga::Module, iface: &ShaderInterface) -> Vec<String> {
    let mut errors = vec![];
    let declared: Vec<(u32, String)> = m
        .global_variables
        .iter()
        .filter_map(|(_, var)| Some((var.binding.as_ref()?.binding, var.name.clone().unwrap_or_default())))
        .collect();
    for b in iface.bindings {
        match declared.iter().find(|(number, _)| *number == b.number) {
            Some((_, name)) if name == b.name => {}
            Some((_, name)) => errors
                .push(format!("{module}: binding {} is `{name}` in WGSL, `{}` in Rust", b.number, b.name)),
            None => errors.push(format!(
                "{module}: Rust binds {} `{}`, WGSL declares no such binding",
                b.number, b.name
            )),
        }
    }
    for (number, name) in &declared {
        if !iface.bindings.iter().any(|b| b.number == *number) {
            errors.push(format!("{module}: WGSL binding {number} `{name}` has no Rust counterpart"));
        }
    }
    for layout in iface.structs {
        errors.extend(check_struct(module, m, layout));
    }
    for (name, want) in iface.constants {
        match constant_u32(m, name) {
            Some(v) if v == *want => {}
            Some(v) => errors.push(format!("{module}: const {name} is {v} in WGSL, {want} in Rust")),
            None => errors.push(format!("{module}: no u32 const {name} in WGSL")),
        }
    }
    errors
}

fn check_struct(module: &str, m: &naga::Module, layout: &StructLayout) -> Vec<String> {
    let found = m.types.iter().find_map(|(_, ty)| match &ty.inner {
        naga::TypeInner::Struct { members, span } if ty.name.as_deref() == Some(layout.name) => {
            Some((members, *span))
        }
        _ => None,
    });
    let Some((members, span)) = found else {
        return vec![format!("{module}: no struct {} in WGSL", layout.name)];
    };
    let mut errors = vec![];
    if span as usize != layout.size {
        errors.push(format!("{module}: {} is {span} bytes in WGSL, {} in Rust", layout.name, layout.size));
    }
    for member in members {
        let name = member.name.as_deref().unwrap_or_default();
        if name.starts_with('_') {
            continue;
        }
        match layout.fields.iter().find(|(field, _)| *field == name) {
            Some((_, offset)) if *offset == member.offset as usize => {}
            Some((_, offset)) => errors.push(format!(
                "{module}: {}.{name} is at byte {} in WGSL, {offset} in Rust",
                layout.name, member.offset
            )),
            None => errors.push(format!("{module}: {}.{name} is missing in Rust", layout.name)),
        }
    }
    for (field, _) in layout.fields {
        if !members.iter().any(|member| member.name.as_deref() == Some(field)) {
            errors.push(format!("{module}: {}.{field} is missing in WGSL", layout.name));
        }
    }
    errors
}

fn constant_u32(m: &naga::Module, name: &str) -> Option<u32> {
    let (_, c) = m.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name))?;
    match m.global_expressions[c.init] {
        naga::Expression::Literal(naga::Literal::U32(v)) => Some(v),
        naga::Expression::Literal(naga::Literal::AbstractInt(v)) => u32::try_from(v).ok(),
        _ => None,
    }
}
