//! A pattern valid WGSL allows and one of wgpu's shader compilers rejects: DX12's FXC (used on
//! Windows without `dxcompiler.dll`) cannot write one component of a vector through an index
//! that is not a constant (`v[i] = x` in a loop: error X3500, "array reference cannot be used
//! as an l-value; not natively addressable", wgpu issue 8334). naga's HLSL output keeps such
//! writes as they are, so the shaders must build those vectors whole. This reads naga's IR of
//! every module and names each such write, with its line in the joined source.

use naga::{Block, Expression, Function, Handle, Module, Statement, TypeInner, valid::FunctionInfo};

/// Every store through a non-constant index into a vector or matrix in `text` (WGSL), as
/// "function (line N)".
pub fn dynamic_component_writes(text: &str) -> Vec<String> {
    let module = naga::front::wgsl::parse_str(text).unwrap_or_else(|e| panic!("{}", e.emit_to_string(text)));
    let info =
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(text)));
    let mut found = vec![];
    for (handle, function) in module.functions.iter() {
        writes_in(
            &function.body,
            &Reader { module: &module, function, info: &info[handle], text },
            &mut found,
        );
    }
    for (i, entry) in module.entry_points.iter().enumerate() {
        let reader =
            Reader { module: &module, function: &entry.function, info: info.get_entry_point(i), text };
        writes_in(&entry.function.body, &reader, &mut found);
    }
    found
}

/// One function's IR and what validation learned of it (each expression's type).
struct Reader<'a> {
    module: &'a Module,
    function: &'a Function,
    info: &'a FunctionInfo,
    text: &'a str,
}

fn writes_in(block: &Block, r: &Reader, found: &mut Vec<String>) {
    for (statement, span) in block.span_iter() {
        match statement {
            Statement::Store { pointer, .. } if indexes_a_vector(*pointer, r) => {
                let name = r.function.name.as_deref().unwrap_or("?");
                found.push(format!("{name} (line {})", span.location(r.text).line_number));
            }
            Statement::Block(inner) => writes_in(inner, r, found),
            Statement::If { accept, reject, .. } => {
                writes_in(accept, r, found);
                writes_in(reject, r, found);
            }
            Statement::Switch { cases, .. } => cases.iter().for_each(|case| writes_in(&case.body, r, found)),
            Statement::Loop { body, continuing, .. } => {
                writes_in(body, r, found);
                writes_in(continuing, r, found);
            }
            _ => {}
        }
    }
}

/// Whether the pointer `p` reaches a vector's (or matrix's) component through a dynamic
/// index somewhere along its chain of accesses.
fn indexes_a_vector(mut p: Handle<Expression>, r: &Reader) -> bool {
    loop {
        match r.function.expressions[p] {
            Expression::Access { base, .. } => {
                let types = &r.module.types;
                let into_vector = match *r.info[base].ty.inner_with(types) {
                    TypeInner::Pointer { base, .. } => {
                        matches!(types[base].inner, TypeInner::Vector { .. } | TypeInner::Matrix { .. })
                    }
                    TypeInner::ValuePointer { size, .. } => size.is_some(),
                    _ => false,
                };
                if into_vector {
                    return true;
                }
                p = base;
            }
            Expression::AccessIndex { base, .. } => p = base,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::{MODULES, source};

    #[test]
    fn no_module_writes_a_vector_component_through_a_dynamic_index() {
        let found: Vec<String> = MODULES
            .iter()
            .flat_map(|m| {
                dynamic_component_writes(&source(m.name)).into_iter().map(move |w| format!("{}: {w}", m.name))
            })
            .collect();
        assert!(
            found.is_empty(),
            "writes FXC rejects (X3500); build the vector whole:\n{}",
            found.join("\n")
        );
    }

    /// The check finds the pattern where it hides: in a loop, behind a struct and an array,
    /// as a compound assignment; and leaves constant indices and arrays alone.
    #[test]
    fn a_dynamic_vector_write_is_found() {
        let text = "
            struct S { a: array<vec4<f32>, 2> }
            fn plain() -> vec4<f32> {
                var v = vec4<f32>(0.0);
                for (var i = 0u; i < 4u; i++) {
                    v[i] = f32(i);
                }
                return v;
            }
            fn nested(j: u32) -> f32 {
                var s: S;
                s.a[j][j] += 1.0;
                s.a[j][1] = 2.0;
                var arr: array<f32, 4>;
                arr[j] = 3.0;
                return s.a[0].x + arr[0];
            }
            @compute @workgroup_size(1) fn main() { _ = plain(); _ = nested(1u); }
        ";
        assert_eq!(dynamic_component_writes(text), ["plain (line 6)", "nested (line 12)"]);
    }
}
