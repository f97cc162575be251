//! Keeps the modules layered: reads every `src/*.rs`, collects the modules each one
//! reaches through `crate::` paths (`use` lines and inline paths alike), and fails
//! on a cycle. `main.rs` is the root: a path to one of its own items is an edge to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name → the modules it refers to.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules `source` refers to through `crate::` paths; `modules` are the known
/// module names, anything else is an item of the root (`main`).
fn references(source: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut add = |name: String| {
        if name.is_empty() {
            return;
        }
        out.insert(if modules.contains(&name) {
            name
        } else {
            "main".to_owned()
        });
    };
    let prefix = concat!("crate", "::");
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::c, d::{e, f}}`: the first segment of each top-level item.
                let mut depth = 0usize;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphanumeric() || c == '_') => {
                            add(ident(&group[i..]));
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                add(ident(after));
            }
            rest = after;
        }
    }
    out
}

/// A cycle in `graph`, as the modules along it (the first repeated at the end).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn graph_of(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().map(|(name, _)| name.clone()).collect();
    files
        .iter()
        .map(|(name, source)| {
            let mut refs = references(source, &modules);
            refs.remove(name);
            (name.clone(), refs)
        })
        .collect()
}

fn crate_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).expect("read src/") {
        let path = entry.expect("src/ entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        // This file only names the prefix in its test inputs.
        if path.extension().is_some_and(|e| e == "rs") && name != "layers" {
            let source = std::fs::read_to_string(&path).expect("read a source file");
            files.push((name, source));
        }
    }
    files
}

#[test]
fn modules_import_one_way() {
    let files = crate_sources();
    assert!(files.len() > 5, "found the sources: {}", files.len());
    let graph = graph_of(&files);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    // Nothing reaches up into the root for an item.
    for (module, refs) in &graph {
        assert!(!refs.contains("main"), "{module} imports from main.rs");
    }
}

#[test]
fn a_cycle_is_found_through_groups_and_inline_paths() {
    let c = concat!("crate", "::");
    let files = [
        ("a".to_owned(), format!("use {c}{{b::X, stats}};\n")),
        ("b".to_owned(), format!("fn f() {{ {c}c::g() }}\n")),
        ("c".to_owned(), format!("use {c}a::{{self, Y}}; // {c}d\n")),
        ("stats".to_owned(), String::new()),
        ("main".to_owned(), format!("use {c}a;\n")),
    ];
    let graph = graph_of(&files);
    assert_eq!(graph["a"], ["b", "stats"].map(String::from).into());
    assert_eq!(
        graph["c"],
        ["a"].map(String::from).into(),
        "comments ignored"
    );
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a");
    assert_eq!(cycle.len(), 4);
    assert_eq!(cycle.first(), cycle.last());

    let acyclic = graph_of(&files[..2]);
    assert_eq!(find_cycle(&acyclic), None);
}
