//! Worker labels: free-form tags an operator gives a worker in its env file
//! (`BASIS_WORKER_LABELS=region=eu,tier=gold`), sent at registration and shown in the registry.
//! A task may require one (`label:<label>` among its required capabilities) and a gateway
//! request may ask for one (`x-basis-worker-label`). One grammar everywhere: lowercase ASCII
//! letters and digits, then up to 63 more of those or `.`, `_`, `-`, `=`, `:`, `/`.

/// At most this many labels per worker.
pub const MAX_LABELS: usize = 16;
/// At most this many characters per label.
pub const MAX_LABEL_LEN: usize = 64;

/// Why a label or a list of them is refused. Never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error(
        "a label is 1 to {MAX_LABEL_LEN} characters: lowercase letters and digits first, then \
         those or . _ - = : /"
    )]
    Malformed,
    #[error("at most {MAX_LABELS} labels")]
    TooMany,
}

/// Checks one label.
pub fn check_label(label: &str) -> Result<(), LabelError> {
    let mut bytes = label.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_=:/".contains(&b));
    if first_ok && rest_ok && label.len() <= MAX_LABEL_LEN {
        Ok(())
    } else {
        Err(LabelError::Malformed)
    }
}

/// Parses a comma-separated list (the env file's form): trimmed, empty items skipped, each
/// checked, duplicates dropped, order kept.
pub fn parse_labels(text: &str) -> Result<Vec<String>, LabelError> {
    let mut out: Vec<String> = Vec::new();
    for label in text.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        check_label(label)?;
        if !out.iter().any(|l| l == label) {
            out.push(label.to_owned());
        }
    }
    check_labels(&out)?;
    Ok(out)
}

/// Checks a list: each label, and how many.
pub fn check_labels(labels: &[String]) -> Result<(), LabelError> {
    if labels.len() > MAX_LABELS {
        return Err(LabelError::TooMany);
    }
    labels.iter().try_for_each(|l| check_label(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_accepts_tags_and_refuses_the_rest() {
        for ok in ["region=eu", "tier:gold", "a", "rack/12", "zone-1.b_c"] {
            assert_eq!(check_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Region", "-x", "a b", "é", &"a".repeat(65), "a,b"] {
            assert_eq!(check_label(bad), Err(LabelError::Malformed), "{bad}");
        }
        assert_eq!(
            parse_labels(" region=eu, ,tier:gold,region=eu ").unwrap(),
            ["region=eu", "tier:gold"]
        );
        let many: Vec<String> = (0..17).map(|i| format!("l{i}")).collect();
        assert_eq!(parse_labels(&many.join(",")), Err(LabelError::TooMany));
    }
}
