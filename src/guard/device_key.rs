//! The worker's device key (`domain::DeviceKey`) to the guard: its text form
//! (`basis_dk_` + 43 base64url) is refused wherever it is pasted, like every private key
//! ([`has_device_key`]); and [`device_key_forms`] lists what a key held in memory looks like
//! in an output (its text, its raw 32-byte seed, that seed as hex, base64 and base64url), for
//! [`HostSecrets::known`](super::HostSecrets) so an output carrying it in any of those forms, in
//! any layer the payload guard decodes, is refused.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::domain::{DEVICE_KEY_PREFIX, DEVICE_KEY_TEXT_LEN, DeviceKey};

/// The length of a device key's base64url body.
const BODY_LEN: usize = DEVICE_KEY_TEXT_LEN - DEVICE_KEY_PREFIX.len();

fn base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// Whether `text` holds a device key's text form: the prefix at a word start (not after a
/// letter or digit), then exactly 43 base64url characters, then none.
pub(super) fn has_device_key(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(DEVICE_KEY_PREFIX).any(|(at, _)| {
        let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let body = &bytes[at + DEVICE_KEY_PREFIX.len()..];
        let len = body.iter().take_while(|b| base64url_byte(**b)).count();
        // At least a whole key: a key with more base64url glued to it is still a key.
        starts_word && len >= BODY_LEN
    })
}

/// Every form of `key` an output must not carry: the text form, the raw seed, and the seed
/// as lowercase hex, base64 (its unpadded prefix, which the padded form contains) and
/// base64url. Zeroized when dropped.
pub fn device_key_forms(key: &DeviceKey) -> Vec<Zeroizing<Vec<u8>>> {
    let seed = key.seed_bytes();
    let text = key.expose_secret();
    vec![
        Zeroizing::new(text.as_bytes().to_vec()),
        Zeroizing::new(seed.to_vec()),
        Zeroizing::new(hex::encode(seed.as_ref()).into_bytes()),
        Zeroizing::new(STANDARD_NO_PAD.encode(seed.as_ref()).into_bytes()),
        Zeroizing::new(URL_SAFE_NO_PAD.encode(seed.as_ref()).into_bytes()),
    ]
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::guard::{HostSecrets, SecretKind, check_output, check_text, redact_line};

    #[test]
    fn a_pasted_device_key_is_refused_without_echo() {
        let key = DeviceKey::generate();
        let text = key.expose_secret();
        for pasted in [
            text.to_string(),
            format!("my key is {}", *text),
            format!("BASIS_DEVICE_KEY={}", *text),
            format!("\"{}\"", *text),
            format!("{}A", *text),
        ] {
            let refused = check_text("worker_id", &pasted).unwrap_err();
            assert_eq!(refused.kind, SecretKind::PrivateKey, "{pasted}");
            let shown = format!("{refused} {refused:?} {}", refused.fix());
            assert!(!shown.contains(&text[DEVICE_KEY_PREFIX.len()..]), "{shown}");
        }
        assert!(!redact_line(&format!("key {}", *text)).contains(&text[9..]));
        // The prefix alone, a cut key, one glued to a word before it, and a public key pass.
        let cut = &text[..text.len() - 1];
        for fine in [
            "basis_dk_",
            cut,
            &format!("xbasis_dk_{}", &text[9..]),
            &key.public().to_string(),
            key.fingerprint().as_str(),
        ] {
            assert!(check_text("f", fine).is_ok(), "{fine}");
        }
    }

    /// An output carrying the key held in memory, in any of its encodings, is refused; one
    /// carrying another key's seed passes (only what the host holds is known).
    #[test]
    fn outputs_with_the_held_key_in_any_encoding_are_refused() {
        let key = DeviceKey::generate();
        let forms = device_key_forms(&key);
        let known: Vec<&[u8]> = forms.iter().map(|f| f.as_slice()).collect();
        let host = HostSecrets {
            known: &known,
            ..HostSecrets::NONE
        };
        let seed = key.seed_bytes();
        let mut raw = b"binary: ".to_vec();
        raw.extend_from_slice(seed.as_ref());
        let outputs: Vec<Vec<u8>> = vec![
            raw,
            format!("seed {}", hex::encode(seed.as_ref())).into_bytes(),
            format!("seed {}", hex::encode_upper(seed.as_ref())).into_bytes(),
            format!("seed {}", STANDARD.encode(seed.as_ref())).into_bytes(),
            format!("seed {}", URL_SAFE_NO_PAD.encode(seed.as_ref())).into_bytes(),
            key.expose_secret().as_bytes().to_vec(),
        ];
        for output in &outputs {
            assert!(check_output("output", output, &host).is_err());
        }
        // A seed whose bytes include whitespace is found too (the guard searches without it).
        let seed: Vec<u8> = (0u8..32)
            .map(|i| if i % 3 == 0 { b'\t' } else { 0x80 + i })
            .collect();
        let spaced =
            DeviceKey::parse(&format!("basis_dk_{}", URL_SAFE_NO_PAD.encode(&seed))).unwrap();
        let forms = device_key_forms(&spaced);
        let known: Vec<&[u8]> = forms.iter().map(|f| f.as_slice()).collect();
        let host = HostSecrets {
            known: &known,
            ..HostSecrets::NONE
        };
        let mut raw = b"binary:\n".to_vec();
        raw.extend_from_slice(&seed);
        assert!(check_output("output", &raw, &host).is_err());
        let other = DeviceKey::generate().seed_bytes();
        let fine = format!("digest {}", STANDARD.encode(other.as_ref()));
        assert!(check_output("output", fine.as_bytes(), &host).is_ok());
    }
}
