//! The receipt log (docs/RECEIPTS.md, "The receipt log"): receipts as JSON lines, each line
//! carrying the keccak256 of the line before it, ending with a line that counts them, so that
//! an edit, a removed or inserted line, two lines swapped or a cut anywhere shows at the line
//! where the chain breaks. [`LogWriter`] writes one; [`verify_log`] checks one.
//!
//! Lines: `{"prev":"0x…","receipt":{…}}` per receipt, then `{"prev":"0x…","end":{"count":N}}`.
//! The first line's `prev` is 32 zero bytes; each other `prev` is keccak256 of the previous
//! line's bytes (without its newline). Every receipt is also verified on its own.

use std::io::BufRead;

use serde_json::Value;

use super::hash::keccak256_hex;
use super::receipt::{ReceiptError, verify_receipt_json};

/// The `prev` of the first line.
pub const GENESIS: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

/// Writes a receipt log line by line.
#[derive(Debug, Clone)]
pub struct LogWriter {
    prev: String,
    count: u64,
}

impl Default for LogWriter {
    fn default() -> Self {
        Self {
            prev: GENESIS.to_owned(),
            count: 0,
        }
    }
}

impl LogWriter {
    /// The line for `receipt` (without its newline).
    pub fn line(&mut self, receipt: &Value) -> String {
        self.count += 1;
        self.chain(&serde_json::json!({ "prev": self.prev, "receipt": receipt }))
    }

    /// The closing line, counting the receipts written.
    pub fn end(&mut self) -> String {
        self.chain(&serde_json::json!({ "prev": self.prev, "end": { "count": self.count } }))
    }

    /// keccak256 of the last line written: what a reader can keep to pin the whole log.
    pub fn last_hash(&self) -> &str {
        &self.prev
    }

    fn chain(&mut self, value: &Value) -> String {
        let line = value.to_string();
        self.prev = keccak256_hex(line.as_bytes());
        line
    }
}

/// Why a log does not verify, at which line (1-based).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("line {line}: cannot read it ({reason})")]
    Read { line: u64, reason: String },
    #[error("line {line}: not a log line (JSON with `prev` and `receipt` or `end`)")]
    Malformed { line: u64 },
    #[error(
        "line {line}: `prev` is not the hash of the line before it: a line was edited, removed, \
         inserted or moved"
    )]
    Broken { line: u64 },
    #[error("line {line}: the receipt does not verify: {source}")]
    Receipt {
        line: u64,
        #[source]
        source: ReceiptError,
    },
    #[error("line {line}: the end line counts {claimed} receipts, the log holds {found}")]
    Count { line: u64, claimed: u64, found: u64 },
    #[error("line {line}: a line after the end line")]
    AfterEnd { line: u64 },
    #[error("line {line}: the log ends here without its end line: it was cut")]
    Cut { line: u64 },
}

/// A verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    pub receipts: u64,
    /// keccak256 of the end line: pins the whole log.
    pub last_hash: String,
}

/// Reads and checks a whole log.
pub fn verify_log(reader: impl BufRead) -> Result<LogSummary, LogError> {
    let mut prev = GENESIS.to_owned();
    let mut count = 0_u64;
    let mut ended = false;
    let mut line_no = 0_u64;
    for line in reader.lines() {
        line_no += 1;
        let line = line.map_err(|e| LogError::Read {
            line: line_no,
            reason: e.kind().to_string(),
        })?;
        if ended {
            return Err(LogError::AfterEnd { line: line_no });
        }
        let value: Value =
            serde_json::from_str(&line).map_err(|_| LogError::Malformed { line: line_no })?;
        if value.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(if value.get("prev").is_some_and(Value::is_string) {
                LogError::Broken { line: line_no }
            } else {
                LogError::Malformed { line: line_no }
            });
        }
        // Exactly the fields a line has: nothing can ride along unchecked.
        let shape_ok = value.as_object().is_some_and(|o| {
            o.len() == 2
                && (o.contains_key("receipt")
                    || o.get("end")
                        .and_then(Value::as_object)
                        .is_some_and(|e| e.len() == 1))
        });
        if !shape_ok {
            return Err(LogError::Malformed { line: line_no });
        }
        if let Some(receipt) = value.get("receipt") {
            verify_receipt_json(receipt).map_err(|source| LogError::Receipt {
                line: line_no,
                source,
            })?;
            count += 1;
        } else if let Some(claimed) = value.pointer("/end/count").and_then(Value::as_u64) {
            if claimed != count {
                return Err(LogError::Count {
                    line: line_no,
                    claimed,
                    found: count,
                });
            }
            ended = true;
        } else {
            return Err(LogError::Malformed { line: line_no });
        }
        prev = keccak256_hex(line.as_bytes());
    }
    if !ended {
        return Err(LogError::Cut { line: line_no });
    }
    Ok(LogSummary {
        receipts: count,
        last_hash: prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Amount, OutputHash, RECEIPT_VERSION, Receipt, ReceiptId, ReceiptKind, Usage, WorkerId,
    };

    fn receipt(i: u64) -> Value {
        let sealed = Receipt {
            receipt_version: RECEIPT_VERSION,
            receipt_id: ReceiptId::generate(),
            kind: ReceiptKind::GatewayJob,
            issued_at: 1_790_000_000 + i,
            worker_id: WorkerId::parse("gpu-1").unwrap(),
            wallet: None,
            model: Some("m".into()),
            job_id: None,
            task_id: None,
            submission_id: None,
            output_hash: OutputHash::of(format!("out {i}").as_bytes()),
            usage: Usage::default(),
            duration_ms: i,
            simulated: true,
            reward: Amount::ZERO,
            asset: "USDC".into(),
            attestation_hash: None,
            metering: None,
        }
        .seal()
        .unwrap();
        serde_json::to_value(sealed).unwrap()
    }

    fn log(n: u64) -> Vec<String> {
        let mut w = LogWriter::default();
        let mut lines: Vec<String> = (0..n).map(|i| w.line(&receipt(i))).collect();
        lines.push(w.end());
        lines
    }

    fn check(lines: &[String]) -> Result<LogSummary, LogError> {
        verify_log(lines.join("\n").as_bytes())
    }

    #[test]
    fn a_whole_log_verifies_and_any_change_fails_at_its_line() {
        let good = log(4);
        let summary = check(&good).unwrap();
        assert_eq!(summary.receipts, 4);

        // One byte changed inside a receipt: that receipt's own hash fails, at its line.
        let mut edited = good.clone();
        edited[1] = edited[1].replacen("\"duration_ms\":1", "\"duration_ms\":2", 1);
        assert_ne!(edited[1], good[1]);
        assert!(matches!(
            check(&edited),
            Err(LogError::Receipt { line: 2, .. })
        ));
        // A re-sealed, valid receipt put in place of line 2: the chain breaks at line 3.
        let mut replaced = good.clone();
        replaced[1] = LogWriter::default()
            .line(&receipt(9))
            .replace(GENESIS, &prev_of(&good[1]));
        assert!(matches!(
            check(&replaced),
            Err(LogError::Broken { line: 3 })
        ));
        // A line removed.
        let mut removed = good.clone();
        removed.remove(2);
        assert!(matches!(check(&removed), Err(LogError::Broken { line: 3 })));
        // Two lines swapped.
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert!(matches!(check(&swapped), Err(LogError::Broken { line: 2 })));
        // Cut before the end line, or with the end line gone.
        assert!(matches!(check(&good[..3]), Err(LogError::Cut { line: 3 })));
        // A field added to the end line.
        let mut padded = good.clone();
        let last = padded.len() - 1;
        padded[last] = padded[last].replace("\"end\":{", "\"end\":{\"note\":1,");
        assert!(matches!(
            check(&padded),
            Err(LogError::Malformed { line: 5 })
        ));
        // Not a log at all.
        assert!(matches!(
            check(&["{}".to_owned()]),
            Err(LogError::Malformed { line: 1 })
        ));
    }

    fn prev_of(line: &str) -> String {
        let v: Value = serde_json::from_str(line).unwrap();
        v["prev"].as_str().unwrap().to_owned()
    }
}
