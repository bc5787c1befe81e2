//! The contract of each WGSL file in `shaders/`: a module is files joined (`shaders::MODULES`),
//! so each file states, in its first lines, what it takes from the others and gives them:
//!
//! ```text
//! // fills: gemm_pass, gemm_b      the slots it is one alternative of (if any)
//! // requires: CIN, COUT, p        names it uses that another file of its modules declares
//! // provides: load_a, store_c     names it declares that another file of its modules uses
//! ```
//!
//! (a list may go on over several lines of the same kind). The tests hold every file to its
//! lines: the lists are exactly what the code uses and declares (read from the WGSL, every
//! joined module parsed by naga), and two files that provide the same name are alternatives
//! of one slot (`quad_vec4.wgsl` and `quad_scalar.wgsl` fill `quad`), never two unrelated
//! definitions that happen to share it.

use std::collections::BTreeSet;

/// The contract lines of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Contract {
    fills: BTreeSet<String>,
    requires: BTreeSet<String>,
    provides: BTreeSet<String>,
}

/// The contract a file's `// fills:`, `// requires:` and `// provides:` lines state.
fn contract(text: &str) -> Contract {
    let mut c = Contract::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("// ") else { continue };
        let (list, names) = match rest.split_once(": ") {
            Some(("fills", names)) => (&mut c.fills, names),
            Some(("requires", names)) => (&mut c.requires, names),
            Some(("provides", names)) => (&mut c.provides, names),
            _ => continue,
        };
        list.extend(names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::{FILES, all_modules};
    use std::collections::BTreeMap;

    /// The text without `//` comments.
    fn code(text: &str) -> String {
        text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
    }

    /// Identifiers and the character before each, spaces skipped (numbers such as `8u` are
    /// not identifiers).
    fn identifiers(text: &str) -> Vec<(Option<char>, &str)> {
        let mut out = vec![];
        let (mut start, mut before) = (None, None);
        for (i, ch) in text.char_indices().chain([(text.len(), ' ')]) {
            let part = ch.is_ascii_alphanumeric() || ch == '_';
            match (start, part) {
                (None, true) => start = Some(i),
                (Some(s), false) => {
                    let word = &text[s..i];
                    if !word.starts_with(|c: char| c.is_ascii_digit()) {
                        out.push((before, word));
                    }
                    before = word.chars().last();
                    start = None;
                }
                _ => {}
            }
            if !part && !ch.is_whitespace() {
                before = Some(ch);
            }
        }
        out
    }

    /// Names a file declares at its top level: functions, constants, overrides, structs,
    /// aliases and module-scope variables (declarations start at the line's first column,
    /// after any attributes).
    fn declarations(text: &str) -> BTreeSet<String> {
        declared_with(text, &["fn", "const", "override", "struct", "alias", "var"])
    }

    /// Module-scope variables (bindings, workgroup memory): views of a module's buffers,
    /// which two files may each declare for the modules they make (the Rust side's
    /// `ShaderInterface` holds every module's bindings).
    fn variables(text: &str) -> BTreeSet<String> {
        declared_with(text, &["var"])
    }

    fn declared_with(text: &str, keywords: &[&str]) -> BTreeSet<String> {
        // `var<storage, read_write> name`: the address space and access mode come first.
        const SPACES: [&str; 7] =
            ["storage", "uniform", "workgroup", "private", "read", "read_write", "write"];
        let mut names = BTreeSet::new();
        for line in code(text).lines().filter(|l| !l.starts_with(char::is_whitespace)) {
            let mut rest = line;
            while let Some(attribute) = rest.strip_prefix('@') {
                let end = attribute.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
                rest = &attribute[end.unwrap_or(attribute.len())..];
                if let Some(arguments) = rest.strip_prefix('(') {
                    rest = arguments.split_once(')').map_or("", |(_, after)| after);
                }
                rest = rest.trim_start();
            }
            let words = identifiers(rest);
            if words.first().is_some_and(|(_, w)| keywords.contains(w))
                && let Some((_, name)) = words[1..].iter().find(|(_, w)| !SPACES.contains(w))
            {
                names.insert(name.to_string());
            }
        }
        names
    }

    /// Names a file uses that it does not bind itself: not members (after `.`), locals
    /// (after let, var, const) or parameters and fields (before `:`).
    fn uses(text: &str) -> BTreeSet<String> {
        let code = code(text);
        let words = identifiers(&code);
        let mut local = BTreeSet::new();
        for (i, (_, word)) in words.iter().enumerate() {
            if ["let", "var", "const"].contains(word)
                && let Some((_, name)) = words.get(i + 1)
            {
                local.insert(*name);
            }
        }
        let mut rest = code.as_str();
        while let Some(at) = rest.find(':') {
            let name = identifiers(&rest[..at]).last().map(|(_, n)| *n);
            if let Some(name) = name.filter(|n| rest[..at].trim_end().ends_with(n)) {
                local.insert(name);
            }
            rest = &rest[at + 1..];
        }
        words
            .iter()
            .filter(|(before, w)| *before != Some('.') && !local.contains(w))
            .map(|(_, w)| w.to_string())
            .collect()
    }

    /// Every way `files` break their contracts as joined into `modules`, in words.
    fn check(files: &[(&str, &str)], modules: &[(&str, &[&str])]) -> Vec<String> {
        let text = |name: &str| files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t).unwrap_or("");
        let declared: BTreeMap<&str, BTreeSet<String>> =
            files.iter().map(|(name, t)| (*name, declarations(t))).collect();
        let mut required: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut provided: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut errors = vec![];
        for (module, joined) in modules {
            for file in *joined {
                let used = uses(text(file));
                for other in joined.iter().filter(|o| *o != file) {
                    let theirs: BTreeSet<String> = declared[other].intersection(&used).cloned().collect();
                    let theirs: BTreeSet<String> = theirs.difference(&declared[file]).cloned().collect();
                    required.entry(file).or_default().extend(theirs.iter().cloned());
                    provided.entry(other).or_default().extend(theirs);
                }
            }
            errors.extend(naga_sees_every_provided_name(module, joined, &text));
        }
        for (file, t) in files {
            let stated = contract(t);
            for (what, stated, derived) in [
                ("requires", &stated.requires, required.remove(file).unwrap_or_default()),
                ("provides", &stated.provides, provided.remove(file).unwrap_or_default()),
            ] {
                if *stated != derived {
                    let missing: Vec<_> = derived.difference(stated).collect();
                    let extra: Vec<_> = stated.difference(&derived).collect();
                    errors.push(format!(
                        "{file}: `// {what}:` lacks {missing:?} and has {extra:?} beyond the code"
                    ));
                }
            }
        }
        errors.extend(shared_names_are_alternatives_of_a_slot(files));
        errors
    }

    /// Each name a file provides is in the module naga parses from the joined files.
    fn naga_sees_every_provided_name<'a>(
        module: &str,
        joined: &[&str],
        text: &impl Fn(&str) -> &'a str,
    ) -> Vec<String> {
        let source: String = joined.iter().map(|f| format!("{}\n", text(f))).collect();
        let parsed = match naga::front::wgsl::parse_str(&source) {
            Ok(parsed) => parsed,
            Err(e) => return vec![format!("{module}: {}", e.emit_to_string(&source))],
        };
        let mut names: BTreeSet<&str> = BTreeSet::new();
        names.extend(parsed.functions.iter().filter_map(|(_, f)| f.name.as_deref()));
        names.extend(parsed.entry_points.iter().map(|e| e.name.as_str()));
        names.extend(parsed.constants.iter().filter_map(|(_, c)| c.name.as_deref()));
        names.extend(parsed.overrides.iter().filter_map(|(_, o)| o.name.as_deref()));
        names.extend(parsed.global_variables.iter().filter_map(|(_, v)| v.name.as_deref()));
        names.extend(parsed.types.iter().filter_map(|(_, t)| t.name.as_deref()));
        let mut errors = vec![];
        for file in joined {
            for name in contract(text(file)).provides {
                // Aliases leave no name in naga's module; the type they stand for has its own.
                if !names.contains(name.as_str()) && !code(text(file)).contains(&format!("alias {name}")) {
                    errors.push(format!("{module}: {file} provides `{name}`, which naga does not find"));
                }
            }
        }
        errors
    }

    /// Two files providing one function, constant or type must fill a common slot.
    fn shared_names_are_alternatives_of_a_slot(files: &[(&str, &str)]) -> Vec<String> {
        let contracts: Vec<(&str, Contract, BTreeSet<String>)> =
            files.iter().map(|(n, t)| (*n, contract(t), variables(t))).collect();
        let mut errors = vec![];
        for (i, (a, ca, vars)) in contracts.iter().enumerate() {
            for (b, cb, _) in &contracts[i + 1..] {
                let shared: Vec<_> =
                    ca.provides.intersection(&cb.provides).filter(|n| !vars.contains(*n)).collect();
                if !shared.is_empty() && ca.fills.is_disjoint(&cb.fills) {
                    errors.push(format!("{a} and {b} both provide {shared:?} but fill no common slot"));
                }
            }
        }
        errors
    }

    fn shader_modules() -> Vec<(&'static str, &'static [&'static str])> {
        all_modules().map(|m| (m.name, m.files)).collect()
    }

    #[test]
    fn every_shader_file_keeps_its_contract() {
        let errors = check(FILES, &shader_modules());
        assert!(errors.is_empty(), "{}", errors.join("\n"));
    }

    /// A fragment that uses a name its lines do not state, one that states a name it does not
    /// provide, and two unrelated fragments defining one function: each is found.
    #[test]
    fn a_broken_contract_is_found() {
        let shape = "// provides: SIZE\nconst SIZE: u32 = 4u;\n";
        let quiet = "// requires: SIZE\n// provides: helper\nfn helper() -> u32 { return 1u; }\n";
        let main = "// requires: SIZE, helper\n@compute @workgroup_size(1)\nfn main() { let n = SIZE + helper(); }\n";
        let other_helper = "// requires: SIZE\n// provides: helper\nfn helper() -> u32 { return SIZE; }\n";
        let modules: &[(&str, &[&str])] =
            &[("one", &["shape", "quiet", "main"]), ("two", &["shape", "other", "main"])];
        let files = [("shape", shape), ("quiet", quiet), ("main", main), ("other", other_helper)];
        let errors = check(&files, modules);
        assert!(errors.iter().any(|e| e.starts_with("quiet: `// requires:`")), "{errors:#?}");
        assert!(
            errors.iter().any(|e| e.contains("quiet and other both provide [\"helper\"]")),
            "{errors:#?}"
        );
        assert_eq!(errors.len(), 2, "{errors:#?}");
        // As alternatives of one slot, and with the lines right, they pass.
        let quiet = "// fills: helper\n// provides: helper\nfn helper() -> u32 { return 1u; }\n";
        let other_helper = format!("// fills: helper\n{other_helper}");
        let files = [("shape", shape), ("quiet", quiet), ("main", main), ("other", other_helper.as_str())];
        assert_eq!(check(&files, modules), Vec::<String>::new());
    }
}
