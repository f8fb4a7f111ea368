//! The traits param structs use: [`Guarded`] for a whole struct, [`GuardText`] for one field of
//! any string-like, optional, list, map or JSON type.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use serde_json::Value;

use super::json::{push_key, refused_key_path};
use super::{Rule, SecretRefused, check_json, check_text, check_text_with};

/// A value (typically an MCP tool's or an API call's params) whose free-text fields can be
/// checked for secrets. Implement it with [`GuardText::guard`] on every free-text field; leave
/// out fields typed as hashes, addresses, ids or numbers.
pub trait Guarded {
    fn check_secrets(&self) -> Result<(), SecretRefused>;
}

impl<T: Guarded + ?Sized> Guarded for &T {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        (**self).check_secrets()
    }
}

impl<T: Guarded> Guarded for Option<T> {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.as_ref().map_or(Ok(()), Guarded::check_secrets)
    }
}

/// One field's check: `self.description.guard("description")?`. Lists report `field[i]`, maps
/// and JSON report `field.key`. A list of strings is also checked whole, its items joined, so
/// a seed phrase split over several items is refused like one in a single item.
///
/// [`guard`](GuardText::guard) is strict (every 64-hex value refused: ids, names, paths);
/// [`guard_free_text`](GuardText::guard_free_text) is for text where a hash belongs (an
/// output, a description, a reason), under [`Rule::FREE_TEXT`].
pub trait GuardText {
    /// The check under `rule`; JSON values and URLs are always checked strictly.
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused>;

    fn guard(&self, field: &str) -> Result<(), SecretRefused> {
        self.guard_with(field, Rule::Strict)
    }

    fn guard_free_text(&self, field: &str) -> Result<(), SecretRefused> {
        self.guard_with(field, Rule::FREE_TEXT)
    }

    /// The text a list joins with its neighbours' for the whole-list check (strings only).
    fn as_text(&self) -> Option<&str> {
        None
    }
}

impl GuardText for str {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        check_text_with(field, self, rule)
    }

    fn as_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl GuardText for String {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        check_text_with(field, self, rule)
    }

    fn as_text(&self) -> Option<&str> {
        Some(self)
    }
}

impl GuardText for Value {
    fn guard_with(&self, field: &str, _rule: Rule<'_>) -> Result<(), SecretRefused> {
        check_json(field, self)
    }
}

impl GuardText for url::Url {
    fn guard_with(&self, field: &str, _rule: Rule<'_>) -> Result<(), SecretRefused> {
        check_text(field, self.as_str())
    }
}

impl<T: GuardText + ?Sized> GuardText for &T {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        (**self).guard_with(field, rule)
    }

    fn as_text(&self) -> Option<&str> {
        (**self).as_text()
    }
}

impl<T: GuardText + ?Sized> GuardText for Box<T> {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        (**self).guard_with(field, rule)
    }
}

impl<T: GuardText> GuardText for Option<T> {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        self.as_ref()
            .map_or(Ok(()), |value| value.guard_with(field, rule))
    }
}

impl<T: GuardText> GuardText for [T] {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        self.iter().enumerate().try_for_each(|(index, item)| {
            // The item reports paths that start with `field`: the index goes right after it,
            // so nested lists read `field[i][j]`. Nothing is allocated unless refused.
            item.guard_with(field, rule).map_err(|mut refused| {
                refused.field.insert_str(field.len(), &format!("[{index}]"));
                refused
            })
        })?;
        // Whole: the items joined, so a secret split over several is seen as one.
        if self.len() > 1 {
            let joined: Vec<&str> = self.iter().filter_map(GuardText::as_text).collect();
            if joined.len() > 1 {
                check_text_with(field, &joined.join(" "), rule)?;
            }
        }
        Ok(())
    }
}

impl<T: GuardText> GuardText for Vec<T> {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        self.as_slice().guard_with(field, rule)
    }
}

/// Checks each key (refused as `field[<key>]`) and each value (reported as `field.key`).
fn guard_entries<'a, T: GuardText + 'a>(
    field: &str,
    entries: impl IntoIterator<Item = (&'a String, &'a T)>,
    rule: Rule<'_>,
) -> Result<(), SecretRefused> {
    entries.into_iter().try_for_each(|(key, value)| {
        check_text(field, key).map_err(|mut refused| {
            refused.field = refused_key_path(field);
            refused
        })?;
        value.guard_with(field, rule).map_err(|mut refused| {
            // As for lists: the value's path starts with `field`; the key goes right after it.
            let mut path = field.to_owned();
            push_key(&mut path, key);
            refused.field.replace_range(..field.len(), &path);
            refused
        })
    })
}

impl<T: GuardText> GuardText for BTreeMap<String, T> {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        guard_entries(field, self, rule)
    }
}

impl<T: GuardText, S: BuildHasher> GuardText for HashMap<String, T, S> {
    fn guard_with(&self, field: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
        guard_entries(field, self, rule)
    }
}
