//! Task metrics (docs/DISCOVERY.md, "Metrics"): a task may name a number its submission
//! reports and its evaluator confirms (a validation loss, an accuracy), and whether lower or
//! higher is better; tasks of one family are then ranked by their best confirmed value.
//! Values are decimal strings (`"0.2315"`, `"-3"`), never JSON floats, because they sit in
//! documents that are hashed (docs/RECEIPTS.md); they compare exactly, digit by digit.

use std::cmp::Ordering;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// At most this many characters in a metric value or name.
pub const MAX_METRIC_LEN: usize = 64;

/// Why a metric value, name or family is refused. Never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error(
        "a metric value is a decimal string of at most {MAX_METRIC_LEN} characters: an optional \
         '-', digits, and optionally '.' and more digits (for example \"0.2315\"); no exponent, \
         no JSON number"
    )]
    Value,
    #[error(
        "a metric or family name is 1 to {MAX_METRIC_LEN} characters: lowercase letters and \
         digits first, then those or . _ - : /"
    )]
    Name,
}

/// A decimal number as a string, checked: `-?[0-9]+(\.[0-9]+)?`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
#[schemars(
    description = "A decimal number as a string: an optional '-', digits, optionally '.' and \
                   more digits (for example \"0.2315\")."
)]
pub struct MetricValue(String);

impl MetricValue {
    pub fn parse(text: &str) -> Result<Self, MetricError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.len() <= MAX_METRIC_LEN && all_digits(int) && frac.is_none_or(all_digits) {
            Ok(Self(text.to_owned()))
        } else {
            Err(MetricError::Value)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sign, integer digits without leading zeros, fraction digits without trailing zeros.
    fn parts(&self) -> (bool, &str, &str) {
        let negative = self.0.starts_with('-');
        let digits = self.0.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let zero = int.is_empty() && frac.is_empty();
        (negative && !zero, int, frac)
    }

    /// Numeric order, exact: `"1.50"` equals `"1.5"`, `"-0"` equals `"0"`.
    pub fn numeric_cmp(&self, other: &Self) -> Ordering {
        let (an, ai, af) = self.parts();
        let (bn, bi, bf) = other.parts();
        let magnitude = ai
            .len()
            .cmp(&bi.len())
            .then_with(|| ai.cmp(bi))
            .then_with(|| af.cmp(bf));
        match (an, bn) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether a lower or a higher metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricGoal {
    /// Lower is better (a loss, an error rate).
    Minimize,
    /// Higher is better (an accuracy, a throughput).
    Maximize,
}

impl MetricGoal {
    /// Is `a` better than `b` under this goal?
    pub fn better(self, a: &MetricValue, b: &MetricValue) -> bool {
        match self {
            Self::Minimize => a.numeric_cmp(b) == Ordering::Less,
            Self::Maximize => a.numeric_cmp(b) == Ordering::Greater,
        }
    }
}

/// What a task measures: the metric's name and which way is better.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// For example `val_loss`.
    pub name: String,
    pub goal: MetricGoal,
}

impl MetricSpec {
    pub fn validate(&self) -> Result<(), MetricError> {
        check_name(&self.name)
    }
}

/// Checks a metric or task-family name: lowercase letters and digits first, then those or
/// `.`, `_`, `-`, `:`, `/`; at most [`MAX_METRIC_LEN`] characters.
pub fn check_name(name: &str) -> Result<(), MetricError> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:/".contains(&b));
    if first_ok && rest_ok && name.len() <= MAX_METRIC_LEN {
        Ok(())
    } else {
        Err(MetricError::Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MetricValue {
        MetricValue::parse(s).unwrap()
    }

    #[test]
    fn values_parse_strictly() {
        for ok in ["0", "12", "-3", "0.2315", "-0.5", "007.100"] {
            assert!(MetricValue::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", "1.2.3", " 1", "NaN", "0x10", "１",
        ] {
            assert_eq!(MetricValue::parse(bad), Err(MetricError::Value), "{bad}");
        }
        assert!(MetricValue::parse(&"1".repeat(MAX_METRIC_LEN + 1)).is_err());
        let err: Result<MetricValue, _> = serde_json::from_str("0.5");
        assert!(err.is_err(), "a JSON number is refused");
    }

    #[test]
    fn numeric_order_is_exact() {
        assert_eq!(v("1.50").numeric_cmp(&v("1.5")), Ordering::Equal);
        assert_eq!(v("-0").numeric_cmp(&v("0.000")), Ordering::Equal);
        assert_eq!(v("10").numeric_cmp(&v("9.999")), Ordering::Greater);
        assert_eq!(v("-10").numeric_cmp(&v("-9.999")), Ordering::Less);
        assert_eq!(v("0.12").numeric_cmp(&v("0.118")), Ordering::Greater);
        assert_eq!(v("-0.1").numeric_cmp(&v("0")), Ordering::Less);
        assert_eq!(
            v("0.10000000000000000001").numeric_cmp(&v("0.1")),
            Ordering::Greater,
            "beyond f64's precision"
        );
        assert!(MetricGoal::Minimize.better(&v("0.2"), &v("0.3")));
        assert!(MetricGoal::Maximize.better(&v("0.3"), &v("0.2")));
        assert!(!MetricGoal::Maximize.better(&v("0.3"), &v("0.30")));
    }

    #[test]
    fn names_follow_one_grammar() {
        assert!(check_name("val_loss").is_ok());
        assert!(check_name("nanogpt/speedrun-1").is_ok());
        for bad in ["", "Val", "_x", "a b", &"a".repeat(65)] {
            assert_eq!(check_name(bad), Err(MetricError::Name), "{bad}");
        }
    }
}
