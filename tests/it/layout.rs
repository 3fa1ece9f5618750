//! The layout of src/ (the Layout section of src/lib.rs), checked on the
//! source text: at most 12 top-level modules, all named in the Layout
//! section, the simulator behind its wall, the wire model importing nothing
//! internal, and a short `main.rs`.

use std::path::{Path, PathBuf};

/// Most top-level modules src/lib.rs may declare.
const MAX_TOP_LEVEL: usize = 12;
/// Most lines of src/main.rs.
const MAX_MAIN_LINES: usize = 40;

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
    out.sort();
    out
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `src` with the contents of comments, string and char literals blanked
/// (newlines kept), so scans see code only.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }))
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let start = i;
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]))
            && matches!(c.get(i + 1), Some('"' | '#'))
        {
            // A raw string r#"..."#: up to a quote and as many hashes.
            let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
            if c.get(i + 1 + hashes) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            i += hashes + 2;
            while i < c.len()
                && !(c[i] == '"'
                    && c[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes)
            {
                i += 1;
            }
            i = (i + 1 + hashes).min(c.len());
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(c.len());
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            i += 2;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(c.len());
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        }
        blank(&mut out, &c[start..i.min(c.len())]);
    }
    out
}

/// The lines of `src` (code only, see [`code_only`]) outside its
/// `#[cfg(test)]` items, numbered from 1.
fn non_test_lines(src: &str) -> Vec<(usize, String)> {
    let code = code_only(src);
    let lines: Vec<&str> = code.lines().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].trim_start().strip_prefix("#[cfg(test)]") else {
            kept.push((i + 1, lines[i].to_string()));
            i += 1;
            continue;
        };
        // Skip the item: up to its closing brace, or its `;` at depth 0.
        let mut depth = 0i32;
        let mut line = rest;
        'item: loop {
            for ch in line.chars() {
                match ch {
                    '{' | '(' | '[' => depth += 1,
                    '}' | ')' | ']' => {
                        depth -= 1;
                        if depth == 0 && ch == '}' {
                            break 'item;
                        }
                    }
                    ';' if depth == 0 => break 'item,
                    _ => {}
                }
            }
            i += 1;
            match lines.get(i) {
                Some(l) => line = l,
                None => break,
            }
        }
        i += 1;
    }
    kept
}

/// Whether `needle` stands in `code` as a whole word (not the tail of a
/// longer name: `print!` is not in `eprint!`).
fn has_word(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The top-level modules `src` reaches through `crate::` paths, outside
/// comments: `crate::a::b` and `crate::{a, b::c}` name `a` (and `b`).
fn crate_modules(src: &str) -> Vec<String> {
    let code = code_only(src);
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => found.extend(top_level_items(group)),
            None => found.push(first_name(rest)),
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

/// The top-level modules `lib` declares: `mod x;`, `pub mod x;` or an
/// inline `mod x {`, starting in the first column.
fn declared_modules(lib: &str) -> Vec<String> {
    code_only(lib)
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            Some(first_name(l.strip_prefix("mod ")?))
        })
        .collect()
}

/// The modules in the order the Layout section of `lib` lists them: the
/// first word of each line of its `text` block that starts in the first
/// column (`cli/`, `run.rs`, `error.rs`, ...), kept when `lib` declares
/// that module.
fn layout_order(lib: &str) -> Vec<String> {
    let declared = declared_modules(lib);
    let doc: Vec<&str> = lib
        .lines()
        .map_while(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| l.trim() != "# Layout")
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let mut order: Vec<String> = Vec::new();
    for line in doc {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        let name = word.trim_end_matches([',', '/']).trim_end_matches(".rs");
        if declared.iter().any(|d| d == name) && !order.iter().any(|o| o == name) {
            order.push(name.to_string());
        }
    }
    order
}

fn lib_rs() -> String {
    std::fs::read_to_string(src_dir().join("lib.rs")).expect("src/lib.rs")
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
fn lib_declares_at_most_twelve_top_level_modules() {
    let declared = declared_modules(&lib_rs());
    assert!(
        declared.len() <= MAX_TOP_LEVEL,
        "src/lib.rs declares {} top-level modules (at most {MAX_TOP_LEVEL}): {declared:?}",
        declared.len()
    );
}

#[test]
fn main_rs_stays_short() {
    let main = std::fs::read_to_string(src_dir().join("main.rs")).expect("src/main.rs");
    let n = main.lines().count();
    assert!(
        n <= MAX_MAIN_LINES,
        "src/main.rs has {n} lines (at most {MAX_MAIN_LINES}): parse, dispatch, exit; \
         the rest belongs in cli/"
    );
}

#[test]
fn the_layout_section_names_every_declared_module() {
    let lib = lib_rs();
    let mut order = layout_order(&lib);
    let mut declared = declared_modules(&lib);
    order.sort();
    declared.sort();
    assert_eq!(
        order, declared,
        "the Layout section of src/lib.rs and its `mod` lines name different modules"
    );
}

#[test]
fn the_import_scan_sees_every_form_of_crate_path() {
    let src = "use crate::device::Mac;\n\
               use crate::{exit_code, client::{Session, Call}};\n\
               // crate::ledger in a comment is no import\n\
               let s = \"crate::run in a string is none either\";\n\
               let x = crate::report::escape(&s);\n";
    assert_eq!(
        crate_modules(src),
        ["device", "exit_code", "client", "report"]
    );
}

#[test]
fn the_size_scan_skips_test_items_whatever_their_braces() {
    let src = "fn a() {}\n\
               #[cfg(test)]\n\
               mod tests {\n\
                   const S: &str = \"}}}\";\n\
                   const C: char = '}';\n\
                   const R: &str = r#\"\"{\"#;\n\
                   // }\n\
                   fn t<'a>(x: &'a str) { let _ = [x; 2]; }\n\
               }\n\
               fn b() {}\n\
               #[cfg(test)]\n\
               mod more;\n\
               #[cfg(test)] use std::{io, fmt};\n\
               fn c() { println!(\"x\"); }\n";
    let kept: Vec<usize> = non_test_lines(src).into_iter().map(|(n, _)| n).collect();
    assert_eq!(kept, [1, 10, 14]);
    assert!(has_word(&non_test_lines(src)[2].1, "println!"));
    assert!(!has_word("eprint!(x)", "print!"));
}

#[test]
fn the_layout_order_is_read_from_the_section() {
    let lib = "//! # Layout\n\
               //!\n\
               //! ```text\n\
               //! main.rs   parse\n\
               //! b.rs, b/  owns b\n\
               //!           more about b\n\
               //! b/        again\n\
               //! a.rs      owns a\n\
               //! ```\n\
               //! c.rs is said after the block\n\
               \n\
               pub mod a;\n\
               mod b;\n\
               pub(crate) mod c {\n    mod inner;\n}\n";
    assert_eq!(declared_modules(lib), ["a", "b", "c"]);
    assert_eq!(layout_order(lib), ["b", "a"]);
}
