//! Architecture invariants as tests: the dependency direction between modules, the `//!`
//! header on every module, and the size of source files (see ARCHITECTURE.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Lines of `path` that are code (not comments), for import scanning.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

/// Fails listing every line in `module`'s files that mentions one of `forbidden` paths.
fn assert_no_imports(module: &str, forbidden: &[&str]) {
    let mut hits = Vec::new();
    for file in rust_files(&src().join(module)) {
        for (n, line) in code_lines(&file) {
            for f in forbidden {
                if line.contains(f) {
                    hits.push(format!("{}:{n}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "src/{module} must not depend on {forbidden:?}:\n{}",
        hits.join("\n")
    );
}

#[test]
fn domain_imports_nothing_else_from_the_crate() {
    assert_no_imports("domain", &["crate::", "super::super", "basis::"]);
}

#[test]
fn wire_types_depend_only_on_the_domain() {
    assert_no_imports(
        "wire",
        &[
            "crate::orchestrator",
            "crate::client",
            "crate::ops",
            "crate::fronts",
            "crate::config",
            "crate::worker",
            "crate::supervisor",
        ],
    );
}

#[test]
fn nothing_below_the_fronts_imports_a_front() {
    for module in [
        "domain",
        "guard",
        "config",
        "ops",
        "wire",
        "client",
        "orchestrator",
        "hardware",
        "worker",
        "supervisor",
        "runtime",
    ] {
        assert_no_imports(module, &["crate::fronts"]);
    }
}

#[test]
fn the_orchestrator_never_reaches_into_the_agent_side() {
    assert_no_imports(
        "orchestrator",
        &["crate::ops", "crate::client", "crate::fronts"],
    );
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = rust_files(&src())
        .into_iter()
        .chain(rust_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"),
        ))
        .filter(|f| {
            !fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! header: {missing:#?}"
    );
}

#[test]
fn source_files_stay_small() {
    const LIMIT: usize = 650;
    let big: Vec<String> = rust_files(&src())
        .into_iter()
        .filter_map(|f| {
            let text = fs::read_to_string(&f).unwrap();
            // Count the code above the unit tests: tests may grow, code should split.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let n = code.lines().count();
            (n > LIMIT).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        big.is_empty(),
        "split these files (> {LIMIT} lines of code): {big:#?}"
    );
}
