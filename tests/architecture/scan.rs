//! The import scanner of the architecture tests: a small lexer (comments, strings and char
//! literals skipped) and a resolver that turns every `crate::…`, `super::…` and `self::…` path
//! (`use` groups included, inline `mod tests { … }` blocks tracked) into the file module it
//! names. A path through a name imported earlier (`orchestrator::keys::…` after
//! `use crate::orchestrator`) counts at its `use`, not again.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub line: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tokens of Rust source that matter for paths: identifiers, `::` and single punctuation.
/// Comments, strings (raw and byte ones too), char literals and numbers are dropped.
pub fn tokens(text: &str) -> Vec<Tok> {
    let s: Vec<char> = text.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // Skips from `i` to the first `end` (not consumed when `inclusive` is false), counting lines.
    let skip_to = |i: &mut usize, line: &mut usize, end: &str| {
        let end: Vec<char> = end.chars().collect();
        while *i < s.len() && !s[*i..].starts_with(&end) {
            if s[*i] == '\n' {
                *line += 1;
            }
            *i += 1;
        }
        *i = (*i + end.len()).min(s.len());
    };
    while i < s.len() {
        let c = s[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            skip_to(&mut i, &mut line, "*/");
        } else if c == '"' || (c == 'b' && at(i + 1) == '"') {
            i += if c == 'b' { 2 } else { 1 };
            while i < s.len() && s[i] != '"' {
                if s[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if let Some(hashes) = raw_string_at(&s, i) {
            let open = s[i..].iter().position(|&c| c == '"').unwrap();
            i += open + 1;
            skip_to(&mut i, &mut line, &format!("\"{}", "#".repeat(hashes)));
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                i = q + 3;
                while i < s.len() && s[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                i = q + 1; // a lifetime: its name lexes as an identifier, harmlessly
            }
        } else if c == 'r' && at(i + 1) == '#' && is_ident_start(at(i + 2)) {
            i += 2; // a raw identifier: lexed as the identifier
        } else if is_ident_start(c) {
            let start = i;
            while i < s.len() && is_ident_char(s[i]) {
                i += 1;
            }
            out.push(Tok {
                text: s[start..i].iter().collect(),
                line,
            });
        } else if c.is_ascii_digit() {
            while i < s.len()
                && (is_ident_char(s[i]) || (s[i] == '.' && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The number of `#`s when a raw string (`r"…"`, `r#"…"#`, `br"…"`) starts at `i`.
fn raw_string_at(s: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if s.get(j) == Some(&'b') {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    (s.get(j + hashes) == Some(&'"')).then_some(hashes)
}

fn is_ident(t: &Tok) -> bool {
    t.text.chars().next().is_some_and(is_ident_start)
}

/// The paths written at `toks[i]` (an identifier): one, or one per item of a `use` group.
pub fn paths_at(toks: &[Tok], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut segs = vec![toks[i].text.clone()];
    i += 1;
    while i + 1 < toks.len() && toks[i].text == "::" {
        let next = &toks[i + 1];
        if is_ident(next) {
            segs.push(next.text.clone());
            i += 2;
        } else if next.text == "{" {
            let (items, end) = group(toks, i + 2);
            let paths = items
                .into_iter()
                .map(|item| segs.iter().cloned().chain(item).collect())
                .collect();
            return (paths, end);
        } else {
            break;
        }
    }
    (vec![segs], i)
}

/// The items of a `use` group starting after its `{`, and the index after its `}`.
fn group(toks: &[Tok], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut out = Vec::new();
    while i < toks.len() {
        let t = &toks[i];
        if t.text == "}" {
            return (out, i + 1);
        } else if t.text == "{" {
            let (items, end) = group(toks, i + 1);
            out.extend(items);
            i = end;
        } else if t.text == "as" {
            i += 2;
        } else if is_ident(t) {
            let (paths, end) = paths_at(toks, i);
            out.extend(paths);
            i = end;
        } else {
            if t.text == "*" {
                out.push(Vec::new());
            }
            i += 1;
        }
    }
    (out, i)
}

/// The file module `path` names, written in module `cur` (inline modules included): the
/// longest prefix of the resolved path that is a module. `None` for the crate root.
fn resolve(
    path: &[String],
    cur: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut full: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        "self" => cur.to_vec(),
        "super" => cur.split_last()?.1.to_vec(),
        _ => return None,
    };
    for seg in &path[1..] {
        match seg.as_str() {
            "super" => {
                full.pop()?;
            }
            "self" => {}
            _ => full.push(seg.clone()),
        }
    }
    (1..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| modules.contains(m))
}

#[derive(Debug, Clone)]
pub struct Import {
    pub line: usize,
    /// As written, e.g. `super::state::AppState`.
    pub written: String,
    /// The file module it names.
    pub target: Vec<String>,
}

/// Every `crate::`/`super::`/`self::` path in `text`, a file of module `module`, resolved.
pub fn imports(text: &str, module: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<Import> {
    let toks = tokens(text);
    let mut out = Vec::new();
    let mut depth = 0usize;
    // Inline modules (`mod tests { … }`) open here, with the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i].text;
        let next = toks.get(i + 1).map(|t| t.text.as_str());
        let after_colons = i > 0 && toks[i - 1].text == "::";
        if t == "mod" && toks.get(i + 2).is_some_and(|t| t.text == "{") {
            inline.push((toks[i + 1].text.clone(), depth));
        } else if t == "{" {
            depth += 1;
        } else if t == "}" {
            depth = depth.saturating_sub(1);
            while inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
        } else if matches!(t.as_str(), "crate" | "super" | "self")
            && next == Some("::")
            && !after_colons
        {
            let cur: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect();
            let (paths, end) = paths_at(&toks, i);
            for path in paths {
                if let Some(target) = resolve(&path, &cur, modules) {
                    out.push(Import {
                        line: toks[i].line,
                        written: path.join("::"),
                        target,
                    });
                }
            }
            i = end;
            continue;
        }
        i += 1;
    }
    out
}

#[test]
fn the_import_scanner_finds_paths_and_skips_comments_and_strings() {
    let modules: BTreeSet<Vec<String>> = [
        "",
        "wire",
        "wire::channel",
        "a",
        "a::b",
        "a::sibling",
        "a::other",
        "a::up",
        "ops",
        "fronts",
    ]
    .iter()
    .map(|m| {
        m.split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .collect();
    let text = r##"
        //! use crate::fronts::cli;
        use crate::wire::{Task, channel::{self, WorkerMessage as W}};
        use super::{sibling, other::Thing};
        /* crate::ops::x */
        const S: &str = "crate::fronts::x \" crate::ops::y";
        const C: char = '"'; const L: &'static str = r#"crate::ops "x" "#;
        pub(super) fn f<'a>(x: &'a u8) -> u8 { 1..2; *x }
        mod tests {
            use super::super::up::Item;
            fn g() { crate::wire::Task::new(); }
        }
        fn h() { self::inner::x(); super::sibling::y(); }
    "##;
    let found: Vec<(usize, String)> = imports(text, &["a".into(), "b".into()], &modules)
        .into_iter()
        .map(|i| (i.line, i.target.join("::")))
        .collect();
    assert_eq!(
        found,
        [
            (3, "wire".into()),
            (3, "wire::channel".into()),
            (3, "wire::channel".into()),
            (4, "a::sibling".into()),
            (4, "a::other".into()),
            (10, "a::up".into()),
            (11, "wire".into()),
            (13, "a::b".into()),
            (13, "a::sibling".into()),
        ]
    );
}
