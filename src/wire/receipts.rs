//! Receipts on the wire: `GET /api/receipts/{id}` answers the stored
//! [`crate::domain::HashedReceipt`] JSON exactly as it was sealed, so anyone can re-verify it
//! offline with [`crate::domain::verify_receipt_json`]. `{id}` is the receipt id
//! (`rcpt-` + 32 hex) or its `receipt_hash` (`0x` + 64 hex).

/// `GET /api/receipts/{id}`.
pub const RECEIPTS: &str = "/api/receipts";

/// `GET /api/receipts/{id}` for a receipt id or hash (neither needs percent-encoding).
pub fn receipt_path(id_or_hash: &str) -> String {
    format!("{RECEIPTS}/{id_or_hash}")
}
