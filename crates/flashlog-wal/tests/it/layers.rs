//! The library's modules import each other one way only (docs/design.md,
//! "Module map"): this test reads every `src/**/*.rs`, collects the modules each
//! one names through `crate::` paths (in `use` items and in code), `self::` paths
//! and paths into its own child modules, and fails naming a cycle in that graph,
//! or an import that points up the layer table below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module and its layer: a module may import from its own layer (without a
/// cycle) and from lower ones, never from a higher one. A top-level module
/// missing here fails the test: place it. A child module not named here is in
/// its parent's layer; one named here must exist.
const LAYERS: &[(&str, &[&str])] = &[
    // The format: the bytes and the words for them, the options, and the file
    // seam that `Options` carries (it needs only `error`).
    (
        "format",
        &[
            "sync",
            "op",
            "position",
            "error",
            "codec",
            "entry",
            "fs",
            "scrub_rate",
            "retention",
            "options",
        ],
    ),
    // Files: the directory, one segment (scanning, reading, writing), side files
    // (the checkpoint's records and their bytes in `checkpoint::record`).
    (
        "files",
        &[
            "dir",
            "meta",
            "cursors",
            "sealed",
            "checkpoint",
            "checkpoint::record",
            "segment",
            "segment_writer",
        ],
    ),
    // State: the in-memory index (one segment's part in `index::segment_index`),
    // the recovery report, the shared state.
    (
        "state",
        &[
            "index",
            "index::segment_index",
            "metrics",
            "receipt",
            "report",
            "retainer",
            "state",
            "waiters",
        ],
    ),
    // Paths: group commit, reading (the iterator's loading of runs in
    // `reader::load`), truncation, recovery.
    (
        "paths",
        &[
            "rollback",
            "syncer",
            "writer",
            "reader",
            "reader::load",
            "truncate",
            "recovery",
            "scrub",
            "scrub::background",
        ],
    ),
    // The public API: `wal` is the handle (open, close); its other methods are
    // in `wal::append`, `wal::read` and `wal::maintenance`.
    (
        "api",
        &[
            "batch",
            "repair",
            "wal",
            "wal::append",
            "wal::read",
            "wal::retention",
            "wal::maintenance",
            "wal::ops",
        ],
    ),
];

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn module_imports_point_down_the_layers_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_sources(&src);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let reexports = reexports(&files[""], &modules);
    let mut graph = Graph::new();
    let mut problems = Vec::new();
    for (module, text) in &files {
        if module.is_empty() {
            // lib.rs only declares and re-exports.
            continue;
        }
        let code = strip_comments(text);
        for line in code.lines() {
            let line = line.trim();
            if line.contains("super::") && line != "use super::*;" {
                problems.push(format!(
                    "{module}: `{line}`: name the module with `crate::` instead of `super::`"
                ));
            }
        }
        let targets = graph.entry(module.clone()).or_default();
        for path in crate_paths(&code, module) {
            if let Some(target) = resolve(&path, &modules, &reexports) {
                if target != *module {
                    targets.insert(target);
                }
            } else {
                problems.push(format!(
                    "{module}: cannot resolve `crate::{}`",
                    path.join("::")
                ));
            }
        }
    }

    let layer_of: BTreeMap<&str, (usize, &str)> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(at, (name, members))| members.iter().map(move |m| (*m, (at, *name))))
        .collect();
    let top = |module: &str| module.split("::").next().unwrap_or("").to_string();
    // A module's own entry, or else its top-level module's.
    let place = |module: &str| {
        layer_of
            .get(module)
            .or_else(|| layer_of.get(top(module).as_str()))
            .copied()
    };
    for module in graph.keys() {
        if place(module).is_none() {
            problems.push(format!(
                "module `{module}` is in no layer: add it to LAYERS"
            ));
        }
    }
    for listed in layer_of.keys() {
        if !modules.contains(*listed) {
            problems.push(format!("LAYERS names `{listed}`, which is no module"));
        }
    }
    for (from, targets) in &graph {
        let Some((from_layer, from_name)) = place(from) else {
            continue;
        };
        for to in targets {
            let Some((to_layer, to_name)) = place(to) else {
                continue;
            };
            if to_layer > from_layer {
                problems.push(format!(
                    "`{from}` ({from_name}) imports from `{to}` ({to_name}), a higher layer"
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    // The reader found the imports it must find (not a vacuous pass).
    for (from, to) in [
        ("wal", "recovery"),
        ("recovery::plan::decide", "recovery::verdict"),
        ("recovery", "recovery::execute"),
        ("state", "segment_writer"),
        ("codec", "op"),
        ("wal::read", "reader"),
        ("wal::maintenance", "truncate"),
        ("reader::load", "segment"),
        ("index", "index::segment_index"),
        ("checkpoint", "checkpoint::record"),
    ] {
        if !graph.get(from).is_some_and(|targets| targets.contains(to)) {
            problems.push(format!("the reader missed `{from}` -> `{to}`"));
        }
    }
    assert!(
        problems.is_empty(),
        "module layering broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_names_it() {
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
    }
    assert_eq!(
        find_cycle(&graph).unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
    graph.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn paths_are_read_from_use_trees_and_code() {
    let code = "use crate::a::{self, b::C, d::{E, F}};\nlet x = crate::g::h(1);\nmod k;\nk::f();";
    let paths = crate_paths(code, "m");
    for expected in ["a", "a::b::C", "a::d::E", "a::d::F", "g::h", "m::k::f"] {
        assert!(
            paths.iter().any(|path| path.join("::") == expected),
            "{expected} not in {paths:?}"
        );
    }
}

/// Every source file by module path: `src/lib.rs` is `""`, `src/a.rs` and
/// `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b`.
fn read_sources(src: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts
                .last()
                .is_some_and(|last| last == "mod" || last == "lib")
            {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            files.insert(parts.join("::"), text);
        }
    }
    files
}

/// The code of a file without its comments (doc links name modules freely).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let code = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The paths, from the crate root, that the code of `module` names: each
/// `crate::` path (use trees expanded), each `self::` path, and each path that
/// starts with a child module the file declares (`mod child;`).
fn crate_paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let here: Vec<String> = module
        .split("::")
        .filter(|part| !part.is_empty())
        .map(String::from)
        .collect();
    let bytes = code.as_bytes();
    let mut starts: Vec<(usize, Vec<String>)> = Vec::new();
    let mut children = Vec::new();
    for line in code.lines() {
        let line = line.trim();
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = decl.and_then(|rest| rest.strip_suffix(';')) {
            children.push(name.trim().to_string());
        }
    }
    let mut prefixes: Vec<(String, Vec<String>)> = vec![
        ("crate::".to_string(), Vec::new()),
        ("self::".to_string(), here.clone()),
    ];
    for child in children {
        let mut base = here.clone();
        base.push(child.clone());
        // `child::x` reads as the path `here::child::x`: the child's segment is
        // part of the prefix, so it is pushed back below.
        prefixes.push((format!("{child}::"), base));
    }
    for (prefix, base) in &prefixes {
        let mut from = 0;
        while let Some(at) = code[from..].find(prefix.as_str()) {
            let at = from + at;
            from = at + prefix.len();
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            starts.push((from, base.clone()));
        }
    }
    let mut paths = Vec::new();
    for (at, base) in starts {
        let mut pos = at;
        parse_tree(bytes, &mut pos, base, &mut paths);
    }
    paths
}

fn skip_space(bytes: &[u8], pos: &mut usize) {
    while *pos < bytes.len() && bytes[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

fn ident(bytes: &[u8], pos: &mut usize) -> Option<String> {
    let start = *pos;
    while *pos < bytes.len() && (bytes[*pos].is_ascii_alphanumeric() || bytes[*pos] == b'_') {
        *pos += 1;
    }
    (*pos > start).then(|| String::from_utf8_lossy(&bytes[start..*pos]).into_owned())
}

/// Reads a use tree (or a plain path) at `pos`, pushing each full path.
fn parse_tree(bytes: &[u8], pos: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    skip_space(bytes, pos);
    if bytes.get(*pos) == Some(&b'{') {
        *pos += 1;
        loop {
            skip_space(bytes, pos);
            match bytes.get(*pos) {
                Some(b'}') | None => {
                    *pos += 1;
                    return;
                }
                Some(b',') => *pos += 1,
                _ => {
                    let before = *pos;
                    parse_tree(bytes, pos, prefix.clone(), out);
                    // Skip what a tree leaves (`as name`) up to `,` or `}`.
                    while *pos < bytes.len() && !matches!(bytes[*pos], b',' | b'}') {
                        *pos += 1;
                    }
                    if *pos == before {
                        *pos += 1;
                    }
                }
            }
        }
    }
    if bytes.get(*pos) == Some(&b'*') {
        *pos += 1;
        out.push(prefix);
        return;
    }
    let Some(name) = ident(bytes, pos) else {
        out.push(prefix);
        return;
    };
    let mut path = prefix;
    if name != "self" {
        path.push(name);
    }
    if bytes[*pos..].starts_with(b"::") {
        *pos += 2;
        parse_tree(bytes, pos, path, out);
    } else {
        out.push(path);
    }
}

/// The crate root's re-exports (`pub use module::{Name, ..}`): name to module.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let code = strip_comments(lib);
    let mut names = BTreeMap::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("pub use ") {
        let mut pos = from + at + "pub use ".len();
        from = pos;
        let mut paths = Vec::new();
        parse_tree(code.as_bytes(), &mut pos, Vec::new(), &mut paths);
        for path in paths {
            if let (Some(name), Some(module)) = (path.last(), longest_module(&path, modules)) {
                names.insert(name.clone(), module);
            }
        }
    }
    names
}

/// The longest prefix of `path` that names a module of the crate.
fn longest_module(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|len| path[..len].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// The module a path from the crate root names, or whose item it names.
fn resolve(
    path: &[String],
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    longest_module(path, modules).or_else(|| reexports.get(path.first()?).cloned())
}

/// A cycle in `graph` (its modules in order, the first repeated at the end), if
/// there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|on| on == node)?;
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
