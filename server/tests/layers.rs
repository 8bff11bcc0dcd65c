//! The layers, checked on the source: the layers of ARCHITECTURE.md are folders
//! (domain < store < infra < idm < edge), and a module may import only from its own layer or
//! lower ones. The four lower layers are the crate `promio_core` (`core/src`), so the compiler
//! already refuses an import from them up into the front doors; the edge is the server
//! functions' adapter and principals (`app/src/edge`) and the server's routes, forms, OpenID
//! Provider and command line (`server/src/edge`). Within the crates, a new import upwards, a file
//! outside the layer folders, or a circle of files importing each other fails here. The crate
//! roots (`lib.rs`, `main.rs`) wire everything and are exempt.
//!
//! The graph is read from the text: `use crate::…` / `use super::…` (groups expanded) and inline
//! `crate::…` paths, each resolved to the longest module (file) it names; `promio_core::…`,
//! `promio_server::…` and `promio_app::edge::…` name the same modules. Comments, string literals
//! and the `#[cfg(test)] mod …` at the end of a file are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// The folders whose files are modules of the layers, with the module path of the folder.
const ROOTS: [(&str, &str); 3] = [
    ("core/src", ""),
    ("server/src", ""),
    ("app/src/edge", "edge"),
];
const LAYERS: [&str; 5] = ["domain", "store", "infra", "idm", "edge"];

/// One source file: where it is and the modules (files) it refers to.
struct Module {
    file: String,
    imports: BTreeSet<String>,
}

fn layer_rank(module: &str) -> Option<usize> {
    let first = module.split("::").next()?;
    LAYERS.iter().position(|layer| *layer == first)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `idm/sso/flow.rs` is `idm::sso::flow`, `idm/sso/mod.rs` is `idm::sso`.
fn module_path(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last.as_str() == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The module path of a file under a root: `idm/sso/flow.rs` is `idm::sso::flow`,
/// `idm/sso/mod.rs` is `idm::sso`, and under `app/src/edge` (module `edge`) `principal.rs` is
/// `edge::principal`.
fn module_in(prefix: &str, relative: &Path) -> String {
    let inner = module_path(relative);
    match (prefix.is_empty(), inner.is_empty()) {
        (true, _) => inner,
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}::{inner}"),
    }
}

/// Every source file of the layers as (module, file, text); the crate roots are left out.
fn sources() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (dir, prefix) in ROOTS {
        let root = Path::new(WORKSPACE).join(dir);
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for path in &files {
            let relative = path.strip_prefix(&root).expect("a file under its root");
            if prefix.is_empty()
                && (relative == Path::new("lib.rs") || relative == Path::new("main.rs"))
            {
                continue;
            }
            let text = fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let text = text
                .replace("promio_core::", "crate::")
                .replace("promio_server::", "crate::")
                .replace("promio_app::edge::", "crate::edge::");
            out.push((
                module_in(prefix, relative),
                format!("{dir}/{}", relative.display()),
                text,
            ));
        }
    }
    out
}

/// Every module of the layers, with what it imports. The `edge` module's two files (the server
/// functions' adapter and the server's front doors) count as one.
fn read_graph() -> BTreeMap<String, Module> {
    let mut texts: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, file, text) in sources() {
        let entry = texts.entry(name).or_default();
        if !entry.0.is_empty() {
            entry.0.push_str(" + ");
        }
        entry.0.push_str(&file);
        entry.1.push('\n');
        entry.1.push_str(cut_test_module(&text));
    }
    texts
        .iter()
        .map(|(name, (file, text))| {
            let imports = references(name, text)
                .iter()
                .filter_map(|path| resolve(&texts, path))
                .filter(|target| target != name)
                .collect();
            (
                name.clone(),
                Module {
                    file: file.clone(),
                    imports,
                },
            )
        })
        .collect()
}

/// The longest prefix of `path` that is a module, if any.
fn resolve<V>(modules: &BTreeMap<String, V>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains_key(m))
}

/// The full paths (`domain::audit::Event`) that the file of `module` refers to.
fn references(module: &str, text: &str) -> Vec<String> {
    let code = strip_comments_and_strings(cut_test_module(text));
    let mut found = BTreeSet::new();
    for path in use_paths(&code).iter().chain(&inline_crate_paths(&code)) {
        found.extend(absolute(module, path));
    }
    found.into_iter().collect()
}

/// The text before the first `#[cfg(test)] mod …`.
fn cut_test_module(text: &str) -> &str {
    const MARK: &str = "#[cfg(test)]";
    let mut from = 0;
    while let Some(found) = text[from..].find(MARK) {
        let at = from + found;
        let after = text[at + MARK.len()..].trim_start();
        if after
            .strip_prefix("mod")
            .is_some_and(|rest| rest.starts_with(char::is_whitespace))
        {
            return &text[..at];
        }
        from = at + MARK.len();
    }
    text
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The code with comments, string and char literals each replaced by a space.
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        let skip_to = match chars[i] {
            '/' if next == Some('/') => Some(
                (i..chars.len())
                    .find(|&j| chars[j] == '\n')
                    .unwrap_or(chars.len()),
            ),
            '/' if next == Some('*') => Some(block_comment_end(&chars, i)),
            '"' => Some(string_end(&chars, i)),
            '\'' => char_literal_end(&chars, i),
            'r' if starts_literal(&chars, i) => raw_string_end(&chars, i),
            _ => None,
        };
        match skip_to {
            Some(end) => {
                code.push(' ');
                i = end;
            }
            None => {
                code.push(chars[i]);
                i += 1;
            }
        }
    }
    code
}

/// Whether the `r` at `at` can open a raw string: not inside a word, or right after a lone `b`.
fn starts_literal(chars: &[char], at: usize) -> bool {
    match at.checked_sub(1).map(|before| chars[before]) {
        None => true,
        Some('b') => at < 2 || !is_ident(chars[at - 2]),
        Some(before) => !is_ident(before),
    }
}

fn block_comment_end(chars: &[char], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1).copied()) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth = depth.saturating_sub(1);
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

fn string_end(chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The end of `r"…"` or `r#"…"#` starting at `at`; `None` for a raw identifier (`r#type`).
fn raw_string_end(chars: &[char], at: usize) -> Option<usize> {
    let hashes = chars[at + 1..].iter().take_while(|&&c| c == '#').count();
    if chars.get(at + 1 + hashes) != Some(&'"') {
        return None;
    }
    let closes = |i: usize| {
        chars[i] == '"' && chars[i + 1..].iter().take_while(|&&c| c == '#').count() >= hashes
    };
    let end = (at + 2 + hashes..chars.len())
        .find(|&i| closes(i))
        .map_or(chars.len(), |i| i + 1 + hashes);
    Some(end)
}

/// The end of a char literal (`'x'`, `'\''`) at `open`; `None` for a lifetime or a label.
fn char_literal_end(chars: &[char], open: usize) -> Option<usize> {
    match (chars.get(open + 1).copied(), chars.get(open + 2).copied()) {
        (Some('\\'), _) => (open + 3..chars.len())
            .find(|&j| chars[j] == '\'')
            .map(|j| j + 1),
        (Some(_), Some('\'')) => Some(open + 3),
        _ => None,
    }
}

/// `use crate::…;` and `use super::…;` (also `pub use`), groups expanded: `crate::a::{b, c}`
/// gives `crate::a::b` and `crate::a::c`.
fn use_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("use") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &code[at + "use".len()..];
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let rest = rest.trim_start();
        if let Some(end) = rest.find(';') {
            expand("", &rest[..end], &mut paths);
        }
    }
    paths
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        // `name as alias` imports `name`; `self` in a group is the group's prefix.
        match tree.split_whitespace().next() {
            Some("self") => out.push(prefix.trim_end_matches(':').to_owned()),
            Some(name) => out.push(format!("{prefix}{name}")),
            None => {}
        }
        return;
    };
    let prefix = format!("{prefix}{}", tree[..open].trim());
    let close = tree
        .rfind('}')
        .filter(|&close| close > open)
        .unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                expand(&prefix, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&prefix, &inner[start..], out);
}

/// `crate::x::y` anywhere (not the tail of a longer path like `other::crate::…`).
fn inline_crate_paths(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|&(at, _)| {
            !code[..at]
                .chars()
                .next_back()
                .is_some_and(|c| is_ident(c) || c == ':')
        })
        .filter_map(|(at, _)| {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches(':');
            path.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                .then(|| format!("crate::{path}"))
        })
        .collect()
}

/// `crate::a::b` is `a::b`; `super::x` is `x` in the parent of `module` (for `a::b::c`, from
/// `a/b/c.rs` or `a/b/c/mod.rs` alike, that is `a::b`). `None` for anything else.
fn absolute(module: &str, path: &str) -> Option<String> {
    let mut segments = path.split("::").peekable();
    let mut full: Vec<&str> = Vec::new();
    match segments.next()? {
        "crate" => {}
        "self" => full = module.split("::").collect(),
        "super" => {
            full = module.split("::").collect();
            full.pop()?;
            while segments.next_if_eq(&"super").is_some() {
                full.pop()?;
            }
        }
        // A path relative to this module (`use sessions::X;` in `idm/mod.rs`): a child module
        // of it, or another crate, whose path then resolves to no module of ours.
        first => {
            full = module.split("::").collect();
            full.push(first);
        }
    }
    full.extend(segments);
    (!full.is_empty()).then(|| full.join("::"))
}

/// Strongly connected components of a graph given as adjacency lists (Tarjan).
fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        found: Vec<Vec<usize>>,
        next: usize,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        let edges = s.edges;
        for &w in &edges[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(index_w) if s.on_stack[w] => s.low[v] = s.low[v].min(index_w),
                Some(_) => {}
            }
        }
        if s.index[v] == Some(s.low[v]) {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is still on the stack");
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.found.push(component);
        }
    }
    let n = edges.len();
    let mut state = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on_stack: vec![false; n],
        found: Vec::new(),
        next: 0,
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn every_layer_imports_only_its_own_or_lower_ones() {
    let mut violations = Vec::new();
    for (name, module) in &read_graph() {
        let Some(own) = layer_rank(name) else {
            violations.push(format!(
                "{} lies outside the layer folders {LAYERS:?}",
                module.file
            ));
            continue;
        };
        for target in &module.imports {
            if layer_rank(target).is_some_and(|rank| rank > own) {
                violations.push(format!("{} -> {target}", module.file));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports up the layers of ARCHITECTURE.md (domain < store < infra < idm < edge):\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_import_circles_between_files() {
    let graph = read_graph();
    let names: Vec<&String> = graph.keys().collect();
    let edges: Vec<Vec<usize>> = graph
        .values()
        .map(|module| {
            module
                .imports
                .iter()
                .filter_map(|target| names.binary_search(&target).ok())
                .collect()
        })
        .collect();
    let mut circles: Vec<String> = components(&edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            let mut members: Vec<&str> = component.iter().map(|&i| names[i].as_str()).collect();
            members.sort_unstable();
            members.join(", ")
        })
        .collect();
    circles.sort_unstable();
    assert!(
        circles.is_empty(),
        "modules that import each other in a circle:\n{}",
        circles.join("\n")
    );
}

fn depends_on_layer(graph: &BTreeMap<String, Module>, from: &str, layer: &str) -> bool {
    let module = graph
        .get(from)
        .unwrap_or_else(|| panic!("module {from} not found"));
    module
        .imports
        .iter()
        .any(|target| target.split("::").next() == Some(layer))
}

#[test]
fn the_graph_is_read_at_all() {
    let graph = read_graph();
    assert!(
        graph.len() > 40,
        "only {} modules found under {ROOTS:?}",
        graph.len()
    );
    assert!(
        depends_on_layer(&graph, "edge::principal", "idm"),
        "edge::principal (app/src/edge) imports nothing from idm"
    );
    assert!(
        depends_on_layer(&graph, "edge::http", "idm"),
        "edge::http imports nothing from idm"
    );
    assert!(
        depends_on_layer(&graph, "store::users", "domain"),
        "store::users imports nothing from domain"
    );
}

#[test]
fn references_are_read_from_code_only() {
    let sample = r##"
//! Talks to crate::edge::doc.
use std::fmt;
pub(crate) use crate::domain::{self, audit::{Event, Kind as K}, clock};
use super::{throttle, sso::flow::*};
/* crate::edge::block */
const URL: &str = "http://example.com // crate::edge::y";
const RAW: &str = r#"// crate::edge::raw "quoted" "#;
const QUOTE: char = '"';
fn first<'a>(s: &'a str) -> &'a str { s }
fn check() -> bool {
    crate::store::users::exists() // crate::edge::x
}
#[cfg(test)]
mod tests {
    use crate::edge::z;
}
"##;
    assert_eq!(
        references("idm::login", sample),
        [
            "domain",
            "domain::audit::Event",
            "domain::audit::Kind",
            "domain::clock",
            // A relative path (here another crate's) is kept as written under this module, and
            // resolves to no module of ours.
            "idm::login::std::fmt",
            "idm::sso::flow::*",
            "idm::throttle",
            "store::users::exists",
        ]
    );
}

/// The modules whose code (comments, strings and test modules left out) contains `needle`:
/// those of the layers and, as `app::…`, the rest of the UI crate (its pages included).
fn modules_containing(needle: &str) -> Vec<String> {
    let mut texts: Vec<(String, String)> = sources()
        .into_iter()
        .map(|(name, _, text)| (name, text))
        .collect();
    let app = Path::new(WORKSPACE).join("app/src");
    let mut files = Vec::new();
    rust_files(&app, &mut files);
    for path in files
        .iter()
        .filter(|path| !path.starts_with(app.join("edge")))
    {
        let relative = path.strip_prefix(&app).expect("a file under app/src");
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        texts.push((module_in("app", relative), text));
    }
    let mut found: Vec<String> = texts
        .into_iter()
        .filter(|(_, text)| strip_comments_and_strings(cut_test_module(text)).contains(needle))
        .map(|(name, _)| name)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Cookies leave only through the flows' cookie intents: the one place that turns an intent into
/// a `Set-Cookie` header is `edge::principal::write_cookies`.
#[test]
fn cookies_leave_only_through_intents() {
    assert_eq!(modules_containing("SET_COOKIE"), ["edge::principal"]);
}

/// Users by an id from outside are looked up in `idm::directory` alone (clippy.toml refuses the
/// call elsewhere; this says where it is).
#[test]
fn users_by_id_are_looked_up_in_the_directory_alone() {
    assert_eq!(modules_containing(".user_in_scope("), ["idm::directory"]);
}
