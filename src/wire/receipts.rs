//! Receipts on the wire: `GET /api/receipts/{id}` answers the stored
//! [`crate::domain::HashedReceipt`] JSON exactly as it was sealed, so anyone can re-verify it
//! offline with [`crate::domain::verify_receipt_json`]. `{id}` is the receipt id
//! (`rcpt-` + 32 hex) or its `receipt_hash` (`0x` + 64 hex). `GET /api/receipts` pages
//! through them in issue order ([`ReceiptPage`]), for `basis receipts export`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /api/receipts/{id}`.
pub const RECEIPTS: &str = "/api/receipts";

/// `GET /api/receipts/{id}` for a receipt id or hash (neither needs percent-encoding).
pub fn receipt_path(id_or_hash: &str) -> String {
    format!("{RECEIPTS}/{id_or_hash}")
}

/// `GET /api/receipts` page size when `limit` is not given, and its maximum.
pub const RECEIPTS_PAGE_DEFAULT: usize = 100;
pub const RECEIPTS_PAGE_MAX: usize = 1000;

/// `GET /api/receipts?since=&worker=&after=&limit=`: receipts in `(issued_at, receipt_id)`
/// order, each exactly as sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptPage {
    /// Each a `HashedReceipt` as sealed (verify it with its own `receipt_hash`).
    pub receipts: Vec<Value>,
    /// Pass as `?after=` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// `GET /api/receipts` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptQuery {
    /// Only receipts issued at or after this unix second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Only this worker's receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<crate::domain::WorkerId>,
    /// The `next_after` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// 1 to 1000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}
