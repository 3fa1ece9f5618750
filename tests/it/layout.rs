//! The walls of the layout (src/lib.rs), checked on the source text: the
//! simulator imports only the wire model and the exit codes, and the wire
//! model imports nothing internal.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

/// The top-level modules `src` reaches through `crate::` paths, outside
/// comments: `crate::a::b` and `crate::{a, b::c}` name `a` (and `b`).
fn crate_modules(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            match rest.strip_prefix('{') {
                Some(group) => found.extend(top_level_items(group)),
                None => found.push(first_name(rest)),
            }
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

/// The leading identifier of `s`.
fn first_name(s: &str) -> String {
    s.trim_start()
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
        .to_string()
}

/// The first names of the items of a `{a, b::{c, d}}` group (from after
/// its opening brace): `a`, `b`.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![first_name(group)];
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(first_name(&group[i + 1..])),
            _ => {}
        }
    }
    items
}

/// The `(file, module)` pairs in `dir` that reach a module not in `allowed`.
fn outside(dir: &str, allowed: &[&str]) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut bad = Vec::new();
    for file in rust_files(&root) {
        let src = std::fs::read_to_string(&file).expect("a source file");
        for m in crate_modules(&src) {
            if !allowed.contains(&m.as_str()) {
                bad.push((file.display().to_string(), m));
            }
        }
    }
    bad
}

#[test]
fn the_simulator_imports_only_the_wire_model_and_exit_codes() {
    let bad = outside("src/sim", &["device", "exit_code"]);
    assert!(
        bad.is_empty(),
        "the simulator imports harness code: {bad:?}"
    );
}

#[test]
fn the_wire_model_imports_nothing_internal() {
    let bad = outside("src/device", &["device"]);
    assert!(bad.is_empty(), "device imports other modules: {bad:?}");
}

#[test]
fn the_import_scan_sees_every_form_of_crate_path() {
    let src = "use crate::device::Mac;\n\
               use crate::{exit_code, client::{Session, Call}};\n\
               // crate::ledger in a comment is no import\n\
               let x = crate::report::escape(&s);\n";
    assert_eq!(
        crate_modules(src),
        ["device", "exit_code", "client", "report"]
    );
}
