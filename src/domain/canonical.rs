//! Canonical JSON (RFC 8785, JCS) and the hash over it: `canonical_hash(v) = keccak256(JCS(v))`.
//!
//! Hashed documents carry no floats and no integers beyond 2^53 (amounts are decimal
//! strings), so every JCS implementation in every language agrees on the bytes.

use serde::Serialize;
use serde_json::Value;

use super::float_check::{Integers, MAX_SAFE_INTEGER, refuse_floats};
use super::hash::ReceiptHash;

#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("the document cannot be written as JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error(
        "a hashed document cannot hold a floating-point number (NaN, infinity or any float); use an integer or a decimal string"
    )]
    FloatValue,
    #[error(
        "a hashed document cannot hold an integer beyond 2^53 (at {path}); write large values such as amounts as decimal strings"
    )]
    IntegerTooLarge { path: String },
}

/// The RFC 8785 canonical bytes of `value`, after checking it holds no float and no integer
/// beyond 2^53.
pub fn canonical_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    // serde_json writes NaN and infinity inside arrays and maps as `null`: catch every float
    // on the Rust value before any JSON is written.
    let integers = refuse_floats(value).map_err(|_| CanonicalError::FloatValue)?;
    let bytes = serde_json_canonicalizer::to_vec(value).map_err(CanonicalError::NotJson)?;
    if integers == Integers::Unsure {
        // Re-read what was written: this sees numbers exactly as a verifier in another
        // language will, and names the path of the one that is too large.
        let parsed: Value = serde_json::from_slice(&bytes).map_err(CanonicalError::NotJson)?;
        check_numbers(&parsed, &mut String::from("$"))?;
    }
    Ok(bytes)
}

/// `keccak256(JCS(value))`.
pub fn canonical_hash<T: Serialize>(value: &T) -> Result<ReceiptHash, CanonicalError> {
    canonical_bytes(value).map(|b| ReceiptHash::keccak(&b))
}

fn check_numbers(v: &Value, path: &mut String) -> Result<(), CanonicalError> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge { path: path.clone() });
                }
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerTooLarge { path: path.clone() });
                }
            } else {
                // Floats were refused before writing, so this is an integer too large for
                // u64/i64 (serde_json reads it back as a float).
                return Err(CanonicalError::IntegerTooLarge { path: path.clone() });
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jcs(v: &Value) -> String {
        String::from_utf8(serde_json_canonicalizer::to_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_key_ordering_vector() {
        // RFC 8785 section 3.2.3: keys sorted by UTF-16 code units.
        let input: Value = serde_json::from_str(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
        )
        .unwrap();
        let out = jcs(&input);
        let keys: Vec<&str> = ["\\r", "1", "\u{80}", "ö", "€", "😀", "\u{fb33}"].to_vec();
        let mut at = 0;
        for k in keys {
            let pos = out[at..].find(&format!("\"{k}\"")).map(|p| p + at);
            assert!(pos.is_some(), "key {k:?} out of order in {out}");
            at = pos.unwrap_or(at);
        }
    }

    #[test]
    fn rfc8785_number_vectors() {
        // RFC 8785 Appendix B (IEEE 754 -> JCS text), a selection.
        let cases = [
            ("0", "0"),
            ("-0.0", "0"),
            ("1e+21", "1e+21"),
            ("1e21", "1e+21"),
            ("9007199254740992", "9007199254740992"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("333333333.3333333", "333333333.3333333"),
            ("1e23", "1e+23"),
            ("4.5", "4.5"),
            ("2e-3", "0.002"),
            ("295147905179352830000", "295147905179352830000"),
        ];
        for (input, expected) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(jcs(&v), expected, "input {input}");
        }
        // The RFC's own sample document, section 3.2.2.
        let sample: Value = serde_json::from_str(
            r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#,
        )
        .unwrap();
        assert_eq!(
            jcs(&sample),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn hash_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": "2", "x": [1, 2]}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":[1,2],"y":"2"},"b":1}"#).unwrap();
        assert_eq!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
        assert_ne!(
            canonical_hash(&a).unwrap(),
            canonical_hash(&json!({"b": 2})).unwrap()
        );
    }

    #[test]
    fn floats_nan_and_big_integers_are_refused() {
        assert!(matches!(
            canonical_hash(&f64::NAN),
            Err(CanonicalError::FloatValue)
        ));
        assert!(matches!(
            canonical_hash(&vec![f64::INFINITY]),
            Err(CanonicalError::FloatValue)
        ));
        let mut map = std::collections::BTreeMap::new();
        map.insert("x", f64::NEG_INFINITY);
        assert!(matches!(
            canonical_hash(&map),
            Err(CanonicalError::FloatValue)
        ));
        assert!(matches!(
            canonical_hash(&Some(1.5_f32)),
            Err(CanonicalError::FloatValue)
        ));
        assert!(matches!(
            canonical_hash(&json!({"x": 1.5})),
            Err(CanonicalError::FloatValue)
        ));
        assert!(matches!(
            canonical_hash(&json!({"a": [0, 9_007_199_254_740_992_u64]})),
            Err(CanonicalError::IntegerTooLarge { path }) if path == "$.a[1]"
        ));
        assert!(canonical_hash(&json!({"a": MAX_SAFE_INTEGER})).is_ok());
        assert!(canonical_hash(&u128::MAX).is_err());
    }
}
