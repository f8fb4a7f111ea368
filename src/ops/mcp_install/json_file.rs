//! The basis entry merged into a client's JSON config file: every other top-level key and every
//! other server is kept as it was. serde_json is built without `preserve_order`, so a rewritten
//! file comes out pretty-printed with its object keys sorted.

use serde_json::{Map, Value};

use super::{Malformed, Merged};

/// Merges `entry` as `servers_key.name` into `text` (the file's contents, `None` when it does
/// not exist; blank counts as an empty object).
pub fn merge(
    text: Option<&str>,
    servers_key: &str,
    name: &str,
    entry: &Value,
    force: bool,
) -> Result<Merged, Malformed> {
    let mut root = match text {
        Some(text) if !text.trim().is_empty() => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Malformed::NotAnObject),
            Err(e) => {
                return Err(Malformed::Syntax {
                    line: e.line(),
                    column: e.column(),
                    reason: syntax_reason(&e),
                });
            }
        },
        _ => Map::new(),
    };
    let servers = root
        .entry(servers_key)
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(Malformed::NotATable(servers_key.to_owned()));
    };
    let replaced = match servers.get(name) {
        Some(existing) if existing == entry => return Ok(Merged::Unchanged),
        Some(_) if !force => return Ok(Merged::Conflict),
        Some(_) => true,
        None => false,
    };
    servers.insert(name.to_owned(), entry.clone());
    Ok(Merged::Write {
        text: render(&Value::Object(root)),
        replaced,
    })
}

/// What a person pastes by hand: `{ "<servers_key>": { "<name>": entry } }`.
pub fn snippet(servers_key: &str, name: &str, entry: &Value) -> String {
    let mut servers = Map::new();
    servers.insert(name.to_owned(), entry.clone());
    let mut root = Map::new();
    root.insert(servers_key.to_owned(), Value::Object(servers));
    render(&Value::Object(root))
}

/// Two-space pretty JSON with a final newline.
fn render(value: &Value) -> String {
    // Serializing a `Value` cannot fail (its keys are strings).
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// serde_json's reason without its " at line L column C" tail (the caller reports those). The
/// reason names what was expected, never the file's content.
fn syntax_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry() -> Value {
        json!({"command": "/bin/basis", "args": ["mcp"]})
    }

    fn written(merged: Merged) -> (Value, bool) {
        match merged {
            Merged::Write { text, replaced } => {
                assert!(text.ends_with("}\n"), "{text}");
                (serde_json::from_str(&text).unwrap(), replaced)
            }
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_new_file_gets_just_the_entry() {
        for text in [None, Some(""), Some("  \n")] {
            let (value, replaced) =
                written(merge(text, "mcpServers", "basis", &entry(), false).unwrap());
            assert_eq!(value, json!({"mcpServers": {"basis": entry()}}));
            assert!(!replaced);
        }
    }

    #[test]
    fn other_servers_and_keys_are_kept() {
        let text = r#"{"theme": "dark", "numStartups": 7, "servers": {"x": {"url": "u"}},
                      "mcpServers": {"other": {"command": "o", "args": [], "env": {"K": "v"}}}}"#;
        let (value, _) =
            written(merge(Some(text), "mcpServers", "basis", &entry(), false).unwrap());
        assert_eq!(
            value,
            json!({
                "theme": "dark",
                "numStartups": 7,
                "servers": {"x": {"url": "u"}},
                "mcpServers": {
                    "other": {"command": "o", "args": [], "env": {"K": "v"}},
                    "basis": entry(),
                }
            })
        );
    }

    #[test]
    fn identical_is_unchanged_and_different_needs_force() {
        let same = json!({"servers": {"basis": entry()}}).to_string();
        assert!(matches!(
            merge(Some(&same), "servers", "basis", &entry(), true).unwrap(),
            Merged::Unchanged
        ));
        let other =
            json!({"servers": {"basis": {"command": "basis", "args": ["mcp"]}}}).to_string();
        assert!(matches!(
            merge(Some(&other), "servers", "basis", &entry(), false).unwrap(),
            Merged::Conflict
        ));
        let (value, replaced) =
            written(merge(Some(&other), "servers", "basis", &entry(), true).unwrap());
        assert_eq!(value, json!({"servers": {"basis": entry()}}));
        assert!(replaced);
    }

    #[test]
    fn malformed_files_are_refused_without_quoting_them() {
        let err = merge(
            Some("{\n  \"a\": \"sk-secret\",\n}"),
            "mcpServers",
            "basis",
            &entry(),
            false,
        )
        .unwrap_err();
        let Malformed::Syntax { line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 3);
        assert!(!err.to_string().contains("sk-secret"), "{err}");
        assert!(matches!(
            merge(Some("[1]"), "mcpServers", "basis", &entry(), false),
            Err(Malformed::NotAnObject)
        ));
        assert!(matches!(
            merge(Some(r#"{"mcpServers": []}"#), "mcpServers", "basis", &entry(), false),
            Err(Malformed::NotATable(key)) if key == "mcpServers"
        ));
    }

    #[test]
    fn snippet_nests_the_entry() {
        let text = snippet("servers", "basis", &entry());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"servers": {"basis": entry()}}));
    }
}
