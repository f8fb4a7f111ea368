//! Dotenv syntax for `worker.env`: one `KEY=value` per line. Known keys are always written
//! bare, which systemd `EnvironmentFile=`, `docker --env-file` and shells read alike; an
//! unknown key's value is quoted only when it must be (docker would keep such quotes).
//!
//! Read: `#` comment lines, blank lines, an optional `export `, bare values (trimmed, taken
//! literally) and single- or double-quoted values on one line (`\\`, `\"`, `\$`, `` \` ``
//! escapes in double quotes). Written: bare unless quoting is needed to read back the same.

/// A key: ASCII letters, digits and `_`, not starting with a digit.
pub(super) fn is_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The value of one `KEY=...` line after the `=`, quotes removed. Errors never echo it.
fn unquote(rest: &str) -> Result<String, &'static str> {
    let rest = rest.trim_start();
    let (value, after) = if let Some(body) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\' | '$' | '`'))) => value.push(e),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => value.push('\\'),
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated double quote (values must fit on one line)")?;
        (value, &body[end..])
    } else if let Some(body) = rest.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or("unterminated single quote (values must fit on one line)")?;
        (body[..end].to_owned(), &body[end + 1..])
    } else {
        return Ok(rest.trim_end().to_owned());
    };
    let after = after.trim();
    if after.is_empty() || after.starts_with('#') {
        Ok(value)
    } else {
        Err("unexpected text after the closing quote")
    }
}

/// Splits a non-blank, non-comment line into key and value.
pub(super) fn split_line(line: &str) -> Result<(&str, String), &'static str> {
    let line = line
        .strip_prefix("export")
        .filter(|r| r.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let (key, rest) = line
        .split_once('=')
        .ok_or("expected KEY=value (a comment line starts with #)")?;
    let key = key.trim_end();
    if !is_key(key) {
        return Err(
            "the key before '=' must be letters, digits and '_', not starting with a digit",
        );
    }
    Ok((key, unquote(rest)?))
}

/// Appends `KEY=value\n`.
pub(super) fn push_line(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push('=');
    out.push_str(value);
    out.push('\n');
}

/// An unknown key's value as written: bare when it reads back unchanged, otherwise quoted.
pub(super) fn quote_if_needed(value: &str) -> String {
    let bare = !value.is_empty()
        && value.trim() == value
        && !value.starts_with('#')
        && !value.contains(['"', '\'', '\\', '`']);
    if bare || value.is_empty() {
        value.to_owned()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        let mut out = String::from("\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["A", "_a1", "BASIS_WORKER_ID"] {
            assert!(is_key(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É"] {
            assert!(!is_key(bad), "{bad}");
        }
    }

    #[test]
    fn lines() {
        assert_eq!(split_line("A=1").unwrap(), ("A", "1".to_owned()));
        assert_eq!(
            split_line("export\tA = x y ").unwrap(),
            ("A", "x y".to_owned())
        );
        assert_eq!(split_line("export=1").unwrap(), ("export", "1".to_owned()));
        assert_eq!(
            split_line("A='a # b' # c").unwrap(),
            ("A", "a # b".to_owned())
        );
        assert_eq!(
            split_line(r#"A="\\ \n""#).unwrap(),
            ("A", r"\ \n".to_owned())
        );
        assert_eq!(split_line("A=#x").unwrap(), ("A", "#x".to_owned()));
        assert!(split_line("A").is_err());
        assert!(split_line("A B=1").is_err());
        assert!(split_line("A=\"x").is_err());
        assert!(split_line("A='x' y").is_err());
    }

    #[test]
    fn quoting_reads_back_the_same() {
        for value in [
            "",
            "plain",
            "with inner space",
            " lead",
            "trail ",
            "#hash",
            "a#b",
            "it's",
            "say \"hi\"",
            "both ' and \"",
            r"back\slash",
            "$HOME",
            "`cmd`",
            "a=b",
        ] {
            let mut line = String::new();
            push_line(&mut line, "K", &quote_if_needed(value));
            let (key, back) = split_line(line.trim_end_matches('\n')).unwrap();
            assert_eq!((key, back.as_str()), ("K", value), "{line}");
        }
        assert_eq!(quote_if_needed("a b"), "a b");
        assert_eq!(quote_if_needed("a'b"), r#""a'b""#);
        assert_eq!(quote_if_needed(" a"), "' a'");
    }
}
