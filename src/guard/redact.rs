//! Redaction for text that is shown rather than refused (log lines): each word the guard flags
//! becomes `[REDACTED]`; a line still flagged after that (a seed phrase, a PEM header spanning
//! words) is withheld whole. Never echoes what it removed.

use std::borrow::Cow;

use super::check_text;

/// What replaces a redacted word.
pub const REDACTED: &str = "[REDACTED]";

/// `line` with every secret the guard finds replaced by [`REDACTED`], or a notice in place of
/// the whole line. Borrowed (no copy) when nothing is found, the common case.
pub fn redact_line(line: &str) -> Cow<'_, str> {
    if check_text("log", line).is_ok() {
        return Cow::Borrowed(line);
    }
    let words = redact_words(line);
    match check_text("log", &words) {
        Ok(()) => Cow::Owned(words),
        Err(refused) => Cow::Owned(format!(
            "[REDACTED: a line that looked like {} was withheld]",
            refused.kind.description()
        )),
    }
}

/// Characters that end a word: whitespace and the punctuation that frames values in log
/// formats (JSON, `key=value`, debug structs), so a key inside a JSON log line is replaced
/// alone and the line stays valid JSON. `-`, `_`, `.`, `/`, `+` stay inside words (API keys
/// and base64 hold them).
fn separates(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | ','
                | ':'
                | ';'
                | '='
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '<'
                | '>'
                | '`'
        )
}

/// Replaces each word (see [`separates`]) the guard flags, keeping the separators.
fn redact_words(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for piece in line.split_inclusive(separates) {
        let word = piece.trim_end_matches(separates);
        if !word.is_empty() && check_text("log", word).is_err() {
            out.push_str(REDACTED);
            out.push_str(&piece[word.len()..]);
        } else {
            out.push_str(piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    #[test]
    fn a_key_in_a_json_log_line_goes_and_the_line_stays_json() {
        let line =
            format!(r#"{{"level":"DEBUG","fields":{{"arguments":{{"wallet":"0x{KEY}"}}}}}}"#);
        let out = redact_line(&line);
        assert!(!out.contains(KEY), "{out}");
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["fields"]["arguments"]["wallet"], REDACTED);
    }

    #[test]
    fn a_bearer_header_is_redacted() {
        let line = format!("authorization: Bearer {KEY}");
        let out = redact_line(&line);
        assert_eq!(out, "authorization: Bearer [REDACTED]");
    }
}
