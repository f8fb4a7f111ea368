//! Walking a JSON value: every string and every object key is scanned, every object is checked
//! for keystore shape, and a refusal names the path (`input.messages[0].content`). The path is
//! built only when something is refused; a clean walk allocates nothing.

use std::fmt::Write as _;

use serde_json::Value;

use super::free_text::wallet_checks;
use super::{Rule, SecretKind, SecretRefused, keystore, scan};

/// Keys longer than this are shortened when shown in a path.
const MAX_SHOWN_KEY: usize = 40;

/// One step of a path, linked to its parent on the stack.
pub(super) enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Self::Root(field) => out.push_str(field),
            Self::Key(parent, key) => {
                parent.render_into(out);
                push_key(out, key);
            }
            Self::Index(parent, index) => {
                parent.render_into(out);
                // Writing into a String cannot fail.
                let _ = write!(out, "[{index}]");
            }
        }
    }
}

/// Appends `.key` for plain keys, `["key"]` (JSON-escaped, shortened) for others.
pub(super) fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.len() <= MAX_SHOWN_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
        return;
    }
    let shown: String = key.chars().take(MAX_SHOWN_KEY).collect();
    let quoted = serde_json::to_string(&shown).unwrap_or_default();
    out.push('[');
    out.push_str(&quoted);
    if shown.len() < key.len() {
        out.push('…');
    }
    out.push(']');
}

/// The path of an object key that was itself refused, inside the object at `path`: shown as
/// `[<key>]`, since the key's text must not be echoed.
pub(super) fn refused_key_path(path: &str) -> String {
    format!("{path}[<key>]")
}

pub(super) fn walk(value: &Value, path: &Path<'_>) -> Result<(), SecretRefused> {
    match value {
        Value::String(text) => match scan(text, Rule::Strict, &wallet_checks()) {
            Some(finding) => Err(finding.refuse(path.render())),
            None => Ok(()),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(index, item)| walk(item, &Path::Index(path, index))),
        Value::Object(object) => {
            if keystore::is_keystore_object(object) {
                return Err(SecretRefused::new(path.render(), SecretKind::Keystore));
            }
            for (key, item) in object {
                if let Some(finding) = scan(key, Rule::Strict, &wallet_checks()) {
                    return Err(finding.refuse(refused_key_path(&path.render())));
                }
                walk(item, &Path::Key(path, key))?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}
