//! The top-level modules of `api/src` import one way: no module imports one
//! that imports it back (README, Architecture). This reads the sources the
//! way `layers.py` does and fails on any cycle, naming it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("api/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules each file names through `crate::`, including the
/// heads of `use crate::{a, b::c}` groups.
fn imports(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items, split at its own commas; each item's head.
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(head(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.insert(head(&item));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found.retain(|m| modules.contains(m));
    found
}

fn head(item: &str) -> String {
    item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

#[test]
fn the_top_level_modules_of_api_src_import_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(&src).ok()?;
        let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
        let name = first.trim_end_matches(".rs").to_owned();
        (name != "lib" && name != "main").then_some(name)
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    assert!(modules.len() > 10 && modules.contains("http") && modules.contains("store"), "{modules:?}");
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(module) = module_of(file) else { continue };
        let text = std::fs::read_to_string(file).expect("a source file");
        let mut uses = imports(&text, &modules);
        uses.remove(&module);
        graph.entry(module).or_default().extend(uses);
    }
    // The layering the README draws, checked edge by edge where it matters.
    // The store reaches only below it: the cache adapter (read replicas'
    // marks) and the plain modules (settings, errors, metrics, spans).
    let below_store = ["cache", "config", "error", "metrics", "net", "roles", "telemetry"];
    assert!(graph["store"].iter().all(|m| below_store.contains(&m.as_str())), "store -> {:?}", graph["store"]);
    for plain in ["config", "metrics", "telemetry"] {
        assert!(graph[plain].iter().all(|m| m == "config" || m == "net"), "{plain} -> {:?}", graph[plain]);
    }
    assert!(!graph["graphql"].contains("http") && !graph["state"].contains("graphql"), "{graph:?}");
    // Any cycle: a module that reaches itself.
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = graph[start].iter().map(|m| (m.clone(), vec![start.clone(), m.clone()])).collect();
        while let Some((at, path)) = stack.pop() {
            assert!(at != *start, "import cycle: {}", path.join(" -> "));
            if seen.insert(at.clone()) {
                stack.extend(graph[&at].iter().map(|m| (m.clone(), [path.clone(), vec![m.clone()]].concat())));
            }
        }
    }
}
