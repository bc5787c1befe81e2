//! Tells the program which wgpu it was built with (`SHAKESHAKE_WGPU_VERSION`): the kernel
//! cache's choices were measured on the SPIR-V, MSL, HLSL or GLSL that one wgpu's naga wrote,
//! so another wgpu must measure again. Read from Cargo.lock, which records the version
//! resolved; without one (a build that ignores it), the requirement in Cargo.toml.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let version = std::fs::read_to_string("Cargo.lock")
        .ok()
        .and_then(|lock| locked_version(&lock, "wgpu"))
        .unwrap_or_else(|| "30 (no Cargo.lock)".to_string());
    println!("cargo:rustc-env=SHAKESHAKE_WGPU_VERSION={version}");
}

/// The version of package `name` in a Cargo.lock: the line after its `name = "..."`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    lines.find(|l| *l == format!("name = \"{name}\""))?;
    let version = lines.next()?.strip_prefix("version = \"")?.strip_suffix('"')?;
    Some(version.to_string())
}
