//! Architecture invariants as tests (see ARCHITECTURE.md): the layer table (which top-level
//! module may import which, read from ARCHITECTURE.md itself), no import circle between files,
//! the `//!` header on every module, and the size of source files. Imports are found by
//! `scan`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

#[path = "architecture/scan.rs"]
mod scan;

use scan::{imports, is_ident_char, paths_at, tokens};

/// The line in ARCHITECTURE.md just above the layer table.
const TABLE_MARKER: &str = "<!-- layers:";

/// Circles between files that are known and tolerated for now, with why. The test fails when
/// one is gone, so the entry is removed with it.
const ALLOWED_CIRCLES: &[(&[&str], &str)] = &[];

/// Narrower rules inside an allowed edge: (module, path it must not import, why).
const NARROWER: &[(&str, &str, &str)] = &[(
    "fronts",
    "orchestrator::store",
    "fronts call the orchestrator's operations (`run`, `keys::create_in_database`), never its store",
)];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

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
    root().join("src")
}

// ---------------------------------------------------------------------------------------------
// The crate's files and the layer table.

#[derive(Debug)]
struct Source {
    /// Relative to the repository, e.g. `src/ops/start.rs`.
    rel: String,
    module: Vec<String>,
    text: String,
}

fn module_of(rel_to_src: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel_to_src
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every library file under `src/` (not `main.rs`) with the module it is.
fn sources() -> Vec<Source> {
    let mut out: Vec<Source> = rust_files(&src())
        .into_iter()
        .filter(|p| !p.ends_with("src/main.rs"))
        .map(|p| Source {
            rel: p.strip_prefix(root()).unwrap().display().to_string(),
            module: module_of(p.strip_prefix(src()).unwrap()),
            text: fs::read_to_string(&p).unwrap(),
        })
        .collect();
    // `#[path = "x.rs"] mod name;` makes x.rs the module `name` of the file that says so.
    let mut renamed = BTreeMap::new();
    for s in &out {
        let mut rest = s.text.as_str();
        while let Some(k) = rest.find("#[path") {
            rest = &rest[k + "#[path".len()..];
            let attr = &rest[..rest.find(']').unwrap()];
            let file = attr.split('"').nth(1).unwrap();
            let after = &rest[rest.find("mod ").unwrap() + "mod ".len()..];
            let name: String = after.chars().take_while(|&c| is_ident_char(c)).collect();
            let path = Path::new(&s.rel).parent().unwrap().join(file);
            let mut module = s.module.clone();
            module.push(name);
            renamed.insert(path.display().to_string(), module);
        }
    }
    for s in &mut out {
        if let Some(m) = renamed.remove(&s.rel) {
            s.module = m;
        }
    }
    out
}

fn file_modules(sources: &[Source]) -> BTreeSet<Vec<String>> {
    sources.iter().map(|s| s.module.clone()).collect()
}

/// ARCHITECTURE.md's layer table: each module and the modules it may import.
fn layer_table() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = doc
        .find(TABLE_MARKER)
        .expect("ARCHITECTURE.md has no layer table (`<!-- layers:` above it)");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(|w| w.trim_end_matches('…').trim_end_matches("::").to_owned())
            .collect()
    };
    let mut table = BTreeMap::new();
    for row in doc[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<&str> = row.split('|').collect();
        let (Some(module), Some(allowed)) = (ticked(cells[1]).first().cloned(), cells.get(2))
        else {
            continue; // the header and the rule under it
        };
        let allowed = ticked(allowed).into_iter().collect();
        assert!(
            table.insert(module.clone(), allowed).is_none(),
            "ARCHITECTURE.md's layer table names `{module}` twice"
        );
    }
    table
}

/// The top-level modules under `src/` (files and folders), and `main`.
fn top_level_modules() -> BTreeSet<String> {
    fs::read_dir(src())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect()
}

fn rule(table: &BTreeMap<String, BTreeSet<String>>, module: &str) -> String {
    let allowed = &table[module];
    if allowed.is_empty() {
        format!("`{module}` may import nothing else from the crate")
    } else {
        let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
        format!("`{module}` may import only {}", list.join(", "))
    }
}

/// Whether `to` is reachable from `from` by following "may import".
fn reaches(table: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(m) = stack.pop() {
        for next in &table[&m] {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn the_layer_table_names_every_module_and_has_no_cycle() {
    let table = layer_table();
    let modules = top_level_modules();
    let named: BTreeSet<String> = table.keys().cloned().collect();
    let missing: Vec<_> = modules.difference(&named).collect();
    let stale: Vec<_> = named.difference(&modules).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ARCHITECTURE.md's layer table must name each top-level module under src/ once: \
         add {missing:?}, remove {stale:?}"
    );
    for (module, allowed) in &table {
        for a in allowed {
            assert!(
                table.contains_key(a) && a != module,
                "layer table: `{module}` may import `{a}`, which is not another row"
            );
        }
    }
    // A layer order exists: following "may import" never comes back.
    for module in table.keys() {
        assert!(
            !reaches(&table, module, module),
            "layer table: `{module}` may import itself through other rows; layers go one way"
        );
    }
}

#[test]
fn every_import_follows_the_layer_table() {
    let table = layer_table();
    let sources = sources();
    let modules = file_modules(&sources);
    let mut hits = Vec::new();
    for s in &sources {
        let Some(from) = s.module.first() else {
            continue; // lib.rs: only `mod` lines
        };
        assert!(
            table.contains_key(from),
            "`{from}` is not in the layer table"
        );
        for imp in imports(&s.text, &s.module, &modules) {
            let to = &imp.target[0];
            if to != from && !table[from].contains(to) {
                hits.push(format!(
                    "{}:{}: `{}` imports `{to}` ({}); {} (ARCHITECTURE.md, Layers)",
                    s.rel,
                    imp.line,
                    from,
                    imp.written,
                    rule(&table, from)
                ));
            }
            let target = imp.target.join("::");
            for (module, forbidden, why) in NARROWER {
                if from == module
                    && (target == *forbidden || target.starts_with(&format!("{forbidden}::")))
                {
                    hits.push(format!(
                        "{}:{}: `{from}` imports `{forbidden}` ({}): {why}",
                        s.rel, imp.line, imp.written
                    ));
                }
            }
        }
    }
    // The binary reaches the library as `basis::…`.
    let main = fs::read_to_string(src().join("main.rs")).unwrap();
    let toks = tokens(&main);
    for (i, t) in toks.iter().enumerate() {
        if t.text == "basis" && toks.get(i + 1).is_some_and(|t| t.text == "::") {
            for path in paths_at(&toks, i).0 {
                let Some(to) = path.get(1) else { continue };
                if !table["main"].contains(to) {
                    hits.push(format!(
                        "src/main.rs:{}: `main` imports `{to}` ({}); {} (ARCHITECTURE.md, Layers)",
                        t.line,
                        path.join("::"),
                        rule(&table, "main")
                    ));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "imports against the layer table:\n{}",
        hits.join("\n")
    );
}

#[test]
fn no_import_circles_between_files() {
    let sources = sources();
    let modules = file_modules(&sources);
    // Edges between files, with the first place each is written. A folder's module and its
    // own children (`mod.rs` re-exporting a child, the child using its parent) do not count.
    let mut edges: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for s in &sources {
        for imp in imports(&s.text, &s.module, &modules) {
            let (a, b) = (&s.module, &imp.target);
            if a.starts_with(b) || b.starts_with(a) {
                continue;
            }
            edges
                .entry((a.clone(), b.clone()))
                .or_insert_with(|| format!("{}:{} ({})", s.rel, imp.line, imp.written));
        }
    }
    let mut next: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &Vec<String>| -> BTreeSet<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(m) = stack.pop() {
            for n in next.get(m).into_iter().flatten() {
                if seen.insert((*n).clone()) {
                    stack.push(n);
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        modules.iter().map(|m| (m, reach(m))).collect();
    // The circles: sets of files each reachable from every other.
    let mut circles: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for m in &modules {
        let circle: BTreeSet<String> = reached[m]
            .iter()
            .filter(|other| reached[other].contains(m))
            .map(|other| other.join("::"))
            .collect();
        if circle.len() > 1 {
            circles.insert(circle);
        }
    }
    let allowed: Vec<BTreeSet<String>> = ALLOWED_CIRCLES
        .iter()
        .map(|(files, _)| files.iter().map(|f| (*f).to_owned()).collect())
        .collect();
    let mut report = Vec::new();
    for circle in circles.iter().filter(|c| !allowed.contains(c)) {
        report.push(format!("circle between {circle:?}:"));
        for ((a, b), at) in &edges {
            if circle.contains(&a.join("::")) && circle.contains(&b.join("::")) {
                report.push(format!("  {} → {}: {at}", a.join("::"), b.join("::")));
            }
        }
    }
    for (circle, (_, why)) in allowed.iter().zip(ALLOWED_CIRCLES) {
        if !circles.contains(circle) {
            report.push(format!(
                "the allowed circle {circle:?} ({why}) is gone: remove it from ALLOWED_CIRCLES"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "files must import one way: move what both sides need into the module it belongs to, \
         or into a small leaf module\n{}",
        report.join("\n")
    );
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = rust_files(&src())
        .into_iter()
        .chain(rust_files(&root().join("tests")))
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

/// The store holds no market rule: nothing under `orchestrator/store/` imports
/// `orchestrator::market` (the engine sits above the store and reaches it through `MarketTx`).
#[test]
fn the_store_never_imports_the_market() {
    let mut hits = Vec::new();
    for file in rust_files(&src().join("orchestrator").join("store")) {
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.contains("orchestrator::market") || code.contains("super::market") {
                hits.push(format!("{}:{}: {}", file.display(), n + 1, code));
            }
        }
    }
    // The contract suite drives the whole market through the engine: it is test code above
    // both, compiled only for tests.
    hits.retain(|h| !h.contains("/store/contract/"));
    assert!(
        hits.is_empty(),
        "the store must not import the market (ARCHITECTURE.md, the market engine):\n{}",
        hits.join("\n")
    );
}

/// `basis worker` runs on tokio's current-thread runtime (ARCHITECTURE.md, `src/worker/`):
/// nothing it runs may block that one thread, and `block_in_place` would panic there.
#[test]
fn the_worker_never_blocks_its_one_thread() {
    let mut hits = Vec::new();
    for dir in ["worker", "runtime"] {
        for file in rust_files(&src().join(dir)) {
            let text = fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if ["block_in_place", "std::thread::sleep", "Handle::block_on"]
                    .iter()
                    .any(|banned| code.contains(banned))
                {
                    hits.push(format!("{}:{}: {}", file.display(), n + 1, code));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "the worker runs on one thread; use spawn_blocking or an async API instead:\n{}",
        hits.join("\n")
    );
}
