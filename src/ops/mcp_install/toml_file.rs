//! The basis entry merged into Codex's `config.toml` as `[mcp_servers.basis]`, through
//! `toml_edit`: comments, key order and formatting of the rest of the file survive.

use toml_edit::{Array, DocumentMut, Item, Table, value};

use super::{Malformed, Merged};

/// The table that maps server names to their tables.
const SERVERS: &str = "mcp_servers";

/// Merges `[mcp_servers.<name>]` with `command` and `args` into `text` (the file's contents,
/// `None` when it does not exist).
pub fn merge(
    text: Option<&str>,
    name: &str,
    command: &str,
    args: &[String],
    force: bool,
) -> Result<Merged, Malformed> {
    let text = text.unwrap_or("");
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| line_column(text, span.start));
        Malformed::Syntax {
            line,
            column,
            // The message only: the error's Display would quote the offending line.
            reason: e.message().trim().to_owned(),
        }
    })?;
    let root = doc.as_table_mut();
    if !root.contains_key(SERVERS) {
        let mut servers = Table::new();
        servers.set_implicit(true);
        root.insert(SERVERS, Item::Table(servers));
    }
    let servers = root
        .get_mut(SERVERS)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| Malformed::NotATable(SERVERS.to_owned()))?;
    let replaced = match servers.get(name) {
        Some(existing) if same(existing, command, args) => return Ok(Merged::Unchanged),
        Some(_) if !force => return Ok(Merged::Conflict),
        Some(_) => true,
        None => false,
    };
    servers.insert(name, Item::Table(table(command, args)));
    Ok(Merged::Write {
        text: doc.to_string(),
        replaced,
    })
}

/// What a person pastes by hand.
pub fn snippet(name: &str, command: &str, args: &[String]) -> String {
    let mut doc = DocumentMut::new();
    let mut servers = Table::new();
    servers.set_implicit(true);
    servers.insert(name, Item::Table(table(command, args)));
    doc.insert(SERVERS, Item::Table(servers));
    doc.to_string()
}

fn table(command: &str, args: &[String]) -> Table {
    let mut table = Table::new();
    table.insert("command", value(command));
    table.insert("args", value(args.iter().collect::<Array>()));
    table
}

/// Is `item` a table with exactly `command` and these `args`?
fn same(item: &Item, command: &str, args: &[String]) -> bool {
    let Some(table) = item.as_table_like() else {
        return false;
    };
    let args_match = table
        .get("args")
        .and_then(Item::as_array)
        .is_some_and(|have| {
            have.len() == args.len()
                && have
                    .iter()
                    .zip(args)
                    .all(|(h, w)| h.as_str() == Some(w.as_str()))
        });
    table.len() == 2 && table.get("command").and_then(Item::as_str) == Some(command) && args_match
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Vec<String> {
        vec!["mcp".to_owned()]
    }

    fn written(merged: Merged) -> (String, bool) {
        match merged {
            Merged::Write { text, replaced } => (text, replaced),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_new_file_gets_one_table() {
        let (text, replaced) = written(merge(None, "basis", "/bin/basis", &args(), false).unwrap());
        assert_eq!(
            text,
            "[mcp_servers.basis]\ncommand = \"/bin/basis\"\nargs = [\"mcp\"]\n"
        );
        assert!(!replaced);
        assert_eq!(text, snippet("basis", "/bin/basis", &args()));
    }

    #[test]
    fn comments_formatting_and_other_servers_survive() {
        let before = "# my codex settings\nmodel = \"o3\"   # keep this comment\n\n[mcp_servers.docs]\ncommand = \"docs-server\" # the docs\nargs = [ \"--port\",  \"1\" ]\n\n[profiles.fast]\nmodel = \"mini\"\n";
        let (text, _) =
            written(merge(Some(before), "basis", "/bin/basis", &args(), false).unwrap());
        // Everything kept byte for byte; the new table follows its sibling.
        let (head, tail) = before.split_at(before.find("[profiles.fast]").unwrap());
        assert_eq!(
            text,
            format!(
                "{head}[mcp_servers.basis]\ncommand = \"/bin/basis\"\nargs = [\"mcp\"]\n\n{tail}"
            )
        );
        let again = merge(Some(&text), "basis", "/bin/basis", &args(), false).unwrap();
        assert!(matches!(again, Merged::Unchanged));
    }

    #[test]
    fn a_different_entry_needs_force() {
        let before =
            "[mcp_servers.basis]\ncommand = \"basis\"\nargs = [\"mcp\"]\nenv = { A = \"b\" }\n";
        assert!(matches!(
            merge(Some(before), "basis", "/bin/basis", &args(), false).unwrap(),
            Merged::Conflict
        ));
        let (text, replaced) =
            written(merge(Some(before), "basis", "/bin/basis", &args(), true).unwrap());
        assert!(replaced);
        let doc: DocumentMut = text.parse().unwrap();
        let basis = &doc["mcp_servers"]["basis"];
        assert_eq!(basis["command"].as_str(), Some("/bin/basis"));
        assert!(basis.get("env").is_none(), "{text}");
        // Extra args are a difference too.
        let more =
            "[mcp_servers.basis]\ncommand = \"/bin/basis\"\nargs = [\"mcp\", \"--read-only\"]\n";
        assert!(matches!(
            merge(Some(more), "basis", "/bin/basis", &args(), false).unwrap(),
            Merged::Conflict
        ));
    }

    #[test]
    fn an_inline_servers_table_is_extended_in_place() {
        let before = "mcp_servers = { docs = { command = \"d\" } }\n";
        let (text, _) =
            written(merge(Some(before), "basis", "/bin/basis", &args(), false).unwrap());
        let doc: DocumentMut = text.parse().unwrap();
        assert_eq!(doc["mcp_servers"]["docs"]["command"].as_str(), Some("d"));
        assert_eq!(
            doc["mcp_servers"]["basis"]["command"].as_str(),
            Some("/bin/basis")
        );
    }

    #[test]
    fn malformed_files_are_refused_without_quoting_them() {
        let text = "model = \"o3\"\napi_key = \"sk-secret\n";
        let err = merge(Some(text), "basis", "/bin/basis", &args(), false).unwrap_err();
        let Malformed::Syntax { line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 2);
        assert!(!err.to_string().contains("sk-secret"), "{err}");
        assert!(matches!(
            merge(Some("mcp_servers = 3\n"), "basis", "/b", &args(), false),
            Err(Malformed::NotATable(_))
        ));
    }
}
