//! The design the code relies on lives in the repository's own `docs/`, and the code's comments
//! point there: no comment (nor a schema description made from one) cites a numbered section of
//! a document outside the repository, and every `docs/<NAME>.md` a comment or a doc names
//! exists, with the section it names as a heading.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::fs;
use std::path::{Path, PathBuf};

/// The section sign, written as an escape so this file does not trip its own check.
const SECTION_SIGN: char = '\u{a7}';

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files under `dir` (relative to the root) whose name ends with `ext`, as relative paths.
fn files(dir: &str, ext: &str) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, ext: &str, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "node_modules" && name != "target" {
                    walk(base, &path, ext, out);
                }
            } else if name.to_string_lossy().ends_with(ext) {
                let rel = path.strip_prefix(base).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root().join(dir), ext, &mut out);
    out.sort();
    out
}

/// The Rust sources of `src/` and `tests/`.
fn rust_sources() -> Vec<String> {
    let mut out = files("src", ".rs");
    out.extend(files("tests", ".rs"));
    out
}

/// The repository's own prose: `docs/`, the skills, the README and ARCHITECTURE.md.
fn markdown() -> Vec<String> {
    let mut out = files("docs", ".md");
    out.extend(files("skills", ".md"));
    out.extend(["README.md".to_owned(), "ARCHITECTURE.md".to_owned()]);
    out
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A file's text as one line: comment markers dropped and whitespace collapsed, so a pointer
/// wrapped over two comment lines reads as it would in prose.
fn flat(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        let line = ["//!", "///", "//"]
            .iter()
            .find_map(|m| line.strip_prefix(m))
            .unwrap_or(line);
        out.push(' ');
        out.push_str(line);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `docs/<NAME>.md` in `text`, with the quoted section names that follow it
/// (`docs/<NAME>.md, "Section"`, `docs/<NAME>.md ("Section")`, `…, "A" and "B"`).
fn pointers(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("docs/") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "docs/".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '.') {
            continue;
        }
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with(".md") {
            continue;
        }
        let file = format!("docs/{}.md", &after[..name_len]);
        let mut tail = &after[name_len + ".md".len()..];
        let mut sections = Vec::new();
        let mut opener: &[&str] = &[", \"", " (\""];
        while let Some(open) = opener.iter().find(|o| tail.starts_with(**o)) {
            let body = &tail[open.len()..];
            let Some(end) = body.find('"') else { break };
            sections.push(body[..end].to_owned());
            tail = &body[end + 1..];
            opener = &[", \"", " and \""];
        }
        out.push((file, sections));
    }
    out
}

/// The headings of a Markdown file, without their `#`s.
fn headings(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_owned())
        .collect()
}

/// Where `text` has a section sign followed by a digit, as 1-based line numbers.
fn section_citations(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let chars: Vec<char> = line.chars().collect();
            chars
                .windows(2)
                .any(|w| w[0] == SECTION_SIGN && w[1].is_ascii_digit())
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn nothing_cites_numbered_sections_of_an_outside_document() {
    let mut hits = Vec::new();
    let schemas = files("schemas", ".json");
    for rel in rust_sources().iter().chain(&markdown()).chain(&schemas) {
        for line in section_citations(&read(rel)) {
            hits.push(format!("{rel}:{line}"));
        }
    }
    assert!(
        hits.is_empty(),
        "these lines cite a numbered section (the section sign and a digit) of a document that \
         is not in the repository; point them at docs/<NAME>.md and a section heading instead:\n{}",
        hits.join("\n")
    );
}

#[test]
fn every_docs_pointer_names_a_doc_and_a_heading_that_exist() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for rel in rust_sources().iter().chain(markdown().iter()) {
        for (file, sections) in pointers(&flat(&read(rel))) {
            seen += 1;
            let Ok(doc) = fs::read_to_string(root().join(&file)) else {
                problems.push(format!("{rel}: {file} does not exist"));
                continue;
            };
            let heads = headings(&doc);
            for section in sections {
                if !heads.contains(&section) {
                    problems.push(format!("{rel}: {file} has no heading \"{section}\""));
                }
            }
        }
    }
    assert!(
        seen > 50,
        "only {seen} docs/ pointers found: is the scan broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_pointer_parser_reads_what_comments_write() {
    let text = flat(
        "//! see (docs/PROTOCOL.md, \"Worker\n//! channel\") and docs/FILES.md (\"Keys\"),\n\
         /// docs/FILES.md, \"A\" and \"B\"; not xdocs/NO.md nor docs/lower",
    );
    assert_eq!(
        pointers(&text),
        vec![
            ("docs/PROTOCOL.md".into(), vec!["Worker channel".into()]),
            ("docs/FILES.md".into(), vec!["Keys".into()]),
            ("docs/FILES.md".into(), vec!["A".into(), "B".into()]),
        ]
    );
    assert_eq!(section_citations("ok\nsee \u{a7}7\n\u{a7} alone"), vec![2]);
}
