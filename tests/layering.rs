//! The architecture as a test: the library's top-level modules form layers, and a module may
//! use only modules of lower layers; inside a module, files never import each other in a
//! circle. Read from the `crate::…` and `super::…` paths in the source (test modules aside),
//! so a new import that goes up fails here with the file and the path that does it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["ews", "graph", "tracking", "telemetry"],
    &["http"],
    &["client"],
    &["feed"],
    &["store"],
    &["watch"],
    &["deliver"],
    &["admin"],
    &["config"],
    &["agent"],
    &["sim"],
    &["harness"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code before its test module, without comments.
fn code(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .map(|l| l.split("//").next().unwrap_or("").to_owned())
        .collect()
}

/// Every `prefix::name` in the lines.
fn names_after(lines: &[String], prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in lines {
        let mut rest = line.as_str();
        while let Some(i) = rest.find(prefix) {
            let boundary = rest[..i]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            rest = &rest[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if boundary && !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// `src/a/b.rs` → ("a", "b"); `src/a/mod.rs` → ("a", "mod"); `src/a.rs` → ("a", "mod").
fn module_and_file(src: &Path, path: &Path) -> (String, String) {
    let rel = path.strip_prefix(src).unwrap();
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    match parts.as_slice() {
        [single] => (single.clone(), "mod".into()),
        [module, file, ..] => (module.clone(), file.clone()),
        [] => unreachable!(),
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for path in &files {
        let (module, _) = module_and_file(&src, path);
        let Some(own) = layer(&module) else {
            continue; // lib.rs, main.rs and the binary's cli/
        };
        for used in names_after(&code(path), "crate::") {
            match layer(&used) {
                Some(l) if used == module || l < own => {}
                Some(_) => wrong.push(format!(
                    "src/{}: uses crate::{used}, which is not below {module}",
                    path.strip_prefix(&src).unwrap().display()
                )),
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that go up:\n{}",
        wrong.join("\n")
    );
    let listed: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
    for path in &files {
        let (module, _) = module_and_file(&src, path);
        let top = path.parent() == Some(src.as_path()) || module_and_file(&src, path).1 == "mod";
        if top && !["lib", "main", "cli"].contains(&module.as_str()) {
            assert!(
                listed.contains(module.as_str()),
                "src/{module}: add it to LAYERS in tests/layering.rs"
            );
        }
    }
}

#[test]
fn files_inside_a_module_import_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module → file → files of the same module it uses
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in &files {
        let (module, file) = module_and_file(&src, path);
        let lines = code(path);
        let mut uses = names_after(&lines, &format!("crate::{module}::"));
        if file != "mod" {
            uses.extend(names_after(&lines, "super::"));
        }
        graphs
            .entry(module)
            .or_default()
            .entry(file)
            .or_default()
            .extend(uses);
    }
    for (module, graph) in &graphs {
        let files: BTreeSet<&String> = graph.keys().collect();
        for start in graph.keys().filter(|f| *f != "mod") {
            // Depth-first from `start` over files of the module (mod.rs re-exports are not
            // edges: a file naming `super::X` for a type declared in mod.rs is fine).
            let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
            while let Some((at, path)) = stack.pop() {
                for next in graph.get(&at).into_iter().flatten() {
                    if !files.contains(next) || next == "mod" {
                        continue;
                    }
                    if next == start {
                        panic!(
                            "src/{module}: files import each other in a circle: {} -> {next}",
                            path.join(" -> ")
                        );
                    }
                    if !path.contains(next) {
                        let mut longer = path.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
}
