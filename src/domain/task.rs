//! Task-market vocabulary (docs/TASK_MARKET.md): a task's [`TaskStatus`], its [`OutputFormat`]
//! (which also says what the "raw output bytes" behind `output_hash` are), and an [`Evaluation`]
//! with its attestation hash `keccak256(JCS(evaluation))`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::canonical::{CanonicalError, canonical_hash};
use super::hash::{OutputHash, ReceiptHash};
use super::metric::MetricValue;

/// Where a task stands. The allowed moves between these live in `task_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a worker to claim it.
    Open,
    /// A worker holds an exclusive, leased claim.
    Claimed,
    /// Output submitted; waiting for the evaluator.
    Submitted,
    /// Evaluated as passed (or a dispute resolved for the worker); the reward is credited.
    Completed,
    /// Evaluated as failed; may be disputed within the window.
    Rejected,
    /// The worker disputes the rejection; the operator resolves it.
    Disputed,
    /// Three claims lapsed or were released without a submission.
    Abandoned,
    /// The deadline passed before any output was submitted.
    Expired,
}

impl TaskStatus {
    pub const ALL: [Self; 8] = [
        Self::Open,
        Self::Claimed,
        Self::Submitted,
        Self::Completed,
        Self::Rejected,
        Self::Disputed,
        Self::Abandoned,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Claimed => "claimed",
            Self::Submitted => "submitted",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Disputed => "disputed",
            Self::Abandoned => "abandoned",
            Self::Expired => "expired",
        }
    }

    /// No further move is possible (a rejected task may still be disputed, so it is not final).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Abandoned | Self::Expired)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "task status must be one of: open, claimed, submitted, completed, rejected, disputed, abandoned, expired"
)]
pub struct UnknownTaskStatus;

impl FromStr for TaskStatus {
    type Err = UnknownTaskStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(UnknownTaskStatus)
    }
}

/// What shape a task's output takes, and so which bytes `output_hash` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// UTF-8 text; the hash covers its UTF-8 bytes.
    Text,
    /// A JSON document (must parse); the hash covers the text exactly as sent.
    Json,
    /// Binary, sent as standard base64 (with padding); the hash covers the decoded bytes.
    Bytes,
    /// An IPFS content id (`Qm…` v0 or base32 `b…` v1); the hash covers its UTF-8 bytes.
    IpfsCid,
}

impl OutputFormat {
    pub const ALL: [Self; 4] = [Self::Text, Self::Json, Self::Bytes, Self::IpfsCid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Bytes => "bytes",
            Self::IpfsCid => "ipfs_cid",
        }
    }

    /// Validates `output` for this format and returns the raw bytes its hash covers.
    /// Errors never quote the output.
    pub fn raw_bytes(self, output: &str) -> Result<Cow<'_, [u8]>, OutputFormatError> {
        match self {
            Self::Text => Ok(Cow::Borrowed(output.as_bytes())),
            Self::Json => match serde_json::from_str::<serde::de::IgnoredAny>(output) {
                Ok(_) => Ok(Cow::Borrowed(output.as_bytes())),
                Err(e) => Err(OutputFormatError::Json {
                    line: e.line(),
                    column: e.column(),
                }),
            },
            Self::Bytes => base64::engine::general_purpose::STANDARD
                .decode(output)
                .map(Cow::Owned)
                .map_err(|_| OutputFormatError::Base64),
            Self::IpfsCid => {
                if is_cid(output) {
                    Ok(Cow::Borrowed(output.as_bytes()))
                } else {
                    Err(OutputFormatError::Cid)
                }
            }
        }
    }

    /// keccak256 of the raw bytes of `output` in this format.
    pub fn hash(self, output: &str) -> Result<OutputHash, OutputFormatError> {
        self.raw_bytes(output).map(|b| OutputHash::of(&b))
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output_format must be one of: text, json, bytes, ipfs_cid")]
pub struct UnknownOutputFormat;

impl FromStr for OutputFormat {
    type Err = UnknownOutputFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(UnknownOutputFormat)
    }
}

/// Why an output does not fit its format. Never contains the output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputFormatError {
    #[error("the output is not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("the output is not standard base64 (the bytes format sends binary as base64)")]
    Base64,
    #[error("the output is not an IPFS CID (Qm… base58 v0, or b… base32 v1)")]
    Cid,
}

/// `Qm` + 44 base58 characters (v0), or `b` + at least 58 lowercase base32 characters (v1).
fn is_cid(s: &str) -> bool {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if let Some(rest) = s.strip_prefix("Qm") {
        return rest.len() == 44 && rest.chars().all(|c| BASE58.contains(c));
    }
    if let Some(rest) = s.strip_prefix('b') {
        return (58..=128).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    }
    false
}

/// Upper bound on an evaluation's score.
pub const MAX_SCORE: u8 = 100;
/// Upper bound on the number of reasons in one evaluation.
pub const MAX_REASONS: usize = 32;
/// Upper bound on one reason's length, in bytes.
pub const MAX_REASON_LEN: usize = 1_000;

/// An evaluator's verdict on a submission. Its canonical JSON is what the attestation hash
/// covers; integers only, so it always canonicalises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// 0 to 100.
    pub score: u8,
    /// The evaluator's pass/fail judgement (the task's pass threshold applies too).
    pub passed: bool,
    /// Why: one short sentence per criterion is a good shape.
    pub reasons: Vec<String>,
    /// For a task with a metric: the value the evaluator confirms (it may correct the one the
    /// submission reported). Absent otherwise, and then absent from the canonical JSON, so
    /// attestation hashes made before metrics existed are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    #[error("score must be between 0 and {MAX_SCORE}, got {0}")]
    Score(u8),
    #[error("at most {MAX_REASONS} reasons, got {0}")]
    TooManyReasons(usize),
    #[error("reason {0} is longer than {MAX_REASON_LEN} bytes")]
    ReasonTooLong(usize),
    #[error("a rejection needs at least one reason")]
    NoReason,
}

impl Evaluation {
    /// Checks the bounds. A failed evaluation must say why.
    pub fn validate(&self) -> Result<(), EvaluationError> {
        if self.score > MAX_SCORE {
            return Err(EvaluationError::Score(self.score));
        }
        if self.reasons.len() > MAX_REASONS {
            return Err(EvaluationError::TooManyReasons(self.reasons.len()));
        }
        if let Some(i) = self.reasons.iter().position(|r| r.len() > MAX_REASON_LEN) {
            return Err(EvaluationError::ReasonTooLong(i + 1));
        }
        if !self.passed && self.reasons.iter().all(|r| r.trim().is_empty()) {
            return Err(EvaluationError::NoReason);
        }
        Ok(())
    }

    /// Whether the submission passes: the evaluator said so and the score reaches the task's
    /// threshold.
    pub fn passes(&self, threshold: u8) -> bool {
        self.passed && self.score >= threshold
    }

    /// `keccak256(JCS(evaluation))`: the attestation hash stored and put in the receipt.
    pub fn attestation_hash(&self) -> Result<ReceiptHash, CanonicalError> {
        canonical_hash(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(s));
        }
        for f in OutputFormat::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
            assert_eq!(f.as_str().parse::<OutputFormat>(), Ok(f));
        }
        assert!("done".parse::<TaskStatus>().is_err());
        assert!("xml".parse::<OutputFormat>().is_err());
    }

    #[test]
    fn raw_bytes_per_format() {
        assert_eq!(
            OutputFormat::Text.hash("hello").unwrap().to_string(),
            "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"
        );
        // json: must parse; the hash covers the text as sent (not a re-serialisation).
        assert_eq!(
            OutputFormat::Json.hash("{ \"a\": 1 }").unwrap(),
            OutputHash::of(b"{ \"a\": 1 }")
        );
        let err = OutputFormat::Json.hash("{\"a\": ").unwrap_err();
        assert!(matches!(err, OutputFormatError::Json { line: 1, .. }));
        // bytes: base64 of "hello"
        assert_eq!(
            OutputFormat::Bytes.hash("aGVsbG8=").unwrap(),
            OutputHash::of(b"hello")
        );
        assert_eq!(
            OutputFormat::Bytes.hash("not base64!"),
            Err(OutputFormatError::Base64)
        );
        let v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
        assert!(OutputFormat::IpfsCid.hash(v0).is_ok());
        let v1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
        assert!(OutputFormat::IpfsCid.hash(v1).is_ok());
        assert_eq!(
            OutputFormat::IpfsCid.hash("Qm123"),
            Err(OutputFormatError::Cid)
        );
    }

    #[test]
    fn format_errors_do_not_quote_the_output() {
        let secret_like = "{\"k\": \"0xdeadbeef";
        let msg = OutputFormat::Json
            .hash(secret_like)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("deadbeef"));
    }

    #[test]
    fn evaluation_bounds_and_attestation() {
        let e = Evaluation {
            score: 90,
            passed: true,
            reasons: vec!["meets all criteria".into()],
            metric: None,
        };
        e.validate().unwrap();
        assert!(e.passes(70));
        assert!(!e.passes(95));
        let h1 = e.attestation_hash().unwrap();
        // Field order does not matter: the hash is over canonical JSON.
        let reordered: Evaluation =
            serde_json::from_str(r#"{"reasons":["meets all criteria"],"passed":true,"score":90}"#)
                .unwrap();
        assert_eq!(reordered.attestation_hash().unwrap(), h1);
        let mut other = e.clone();
        other.score = 91;
        assert_ne!(other.attestation_hash().unwrap(), h1);

        assert_eq!(
            Evaluation {
                score: 101,
                ..e.clone()
            }
            .validate(),
            Err(EvaluationError::Score(101))
        );
        assert_eq!(
            Evaluation {
                score: 10,
                passed: false,
                reasons: vec![" ".into()],
                metric: None,
            }
            .validate(),
            Err(EvaluationError::NoReason)
        );
        assert!(
            serde_json::from_str::<Evaluation>(r#"{"score":1.5,"passed":true,"reasons":[]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Evaluation>(r#"{"score":-1,"passed":true,"reasons":[]}"#)
                .is_err()
        );
    }
}
