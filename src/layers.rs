//! The crate's layers, lowest first. A module may use its own layer's module and those of
//! lower layers, never a sibling or anything above: so shapes and references stay free of
//! devices, kernels free of the network, the network free of training, and each can be
//! read and tested alone. The test below holds every file to it, and forbids cycles among
//! the files of one module.

/// Lowest first; the command line (`main.rs`) sits above them all.
pub const LAYERS: &[&[&str]] = &[
    &["shapes", "random", "files", "layout"],
    &["cpu", "gpu"],
    &["ops"],
    &["checks"],
    &["tuning"],
    &["model"],
    &["train"],
    &["bench", "selftest", "kernels"],
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// Every .rs file under src/ but the crate roots and the build script (a program of its
    /// own), with its top-level module (a folder inside a module, such as ops/conv2d/, is part
    /// of it).
    fn sources() -> Vec<(String, PathBuf)> {
        fn files(dir: &Path) -> Vec<PathBuf> {
            let entries = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
            entries.flat_map(|path| if path.is_dir() { files(&path) } else { vec![path] }).collect()
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = vec![];
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                out.extend(files(&path).into_iter().map(|file| (name.clone(), file)));
            } else if !["lib", "main", "layers", "build"].contains(&name.as_str()) {
                out.push((name, path));
            }
        }
        out
    }

    /// The code of a file, without comments and without its unit tests.
    fn code(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
    }

    /// The names that follow each `prefix` in `text` (`crate::ops::conv2d` -> `ops`).
    fn after(text: &str, prefix: &str) -> BTreeSet<String> {
        text.match_indices(prefix)
            .map(|(i, _)| {
                text[i + prefix.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
            })
            .filter(|name: &String| !name.is_empty())
            .collect()
    }

    #[test]
    fn no_module_uses_a_sibling_or_a_higher_layer() {
        let mut wrong = vec![];
        for (module, path) in sources() {
            let own = layer_of(&module).unwrap_or_else(|| panic!("{module} is in no layer of LAYERS"));
            for used in after(&code(&path), "crate::") {
                let Some(theirs) = layer_of(&used) else { continue };
                if used != module && theirs >= own {
                    wrong.push(format!("{} uses crate::{used}", path.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_files_of_a_module_use_each_other_without_cycles() {
        let mut uses: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (module, path) in sources() {
            let file = path.file_stem().unwrap().to_string_lossy().to_string();
            let text = code(&path);
            let mut used = after(&text, "super::");
            used.extend(after(&text, &format!("crate::{module}::")));
            used.retain(|u| *u != file && path.with_file_name(format!("{u}.rs")).exists());
            uses.insert((module, file), used);
        }
        // Depth-first search from every file; meeting a file on the current path is a cycle.
        fn visit(
            node: &(String, String),
            uses: &BTreeMap<(String, String), BTreeSet<String>>,
            path: &mut Vec<String>,
        ) -> Option<String> {
            if path.contains(&node.1) {
                return Some(format!("{}: {} -> {}", node.0, path.join(" -> "), node.1));
            }
            path.push(node.1.clone());
            for next in uses.get(node).into_iter().flatten() {
                if let Some(cycle) = visit(&(node.0.clone(), next.clone()), uses, path) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        for node in uses.keys() {
            if let Some(cycle) = visit(node, &uses, &mut vec![]) {
                panic!("the files of a module use each other in a cycle: {cycle}");
            }
        }
    }
}
