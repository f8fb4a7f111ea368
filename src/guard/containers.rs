//! What a layer of an output is, told by its first bytes: a key container (a binary OpenSSH or
//! OpenPGP secret key, a KeePass database, a Java keystore, PKCS#12, a DER private key), or a
//! compressed or archive format the guard does not decode (bzip2, xz, lzma, zstd, lz4, lzip,
//! 7z, rar). Each check reads a few bytes at the start; nothing is parsed further.

/// The key container `bytes` starts with, named for the refusal, if any.
pub(super) fn key_container(bytes: &[u8]) -> Option<&'static str> {
    const PREFIXES: &[(&[u8], &str)] = &[
        (b"openssh-key-v1\0", "OpenSSH private key"),
        (b"PuTTY-User-Key-File-", "PuTTY private key"),
        (
            &[0x03, 0xD9, 0xA2, 0x9A, 0x67, 0xFB, 0x4B, 0xB5],
            "KeePass database",
        ),
        (
            &[0x03, 0xD9, 0xA2, 0x9A, 0x66, 0xFB, 0x4B, 0xB5],
            "KeePass database",
        ),
        (
            &[0x03, 0xD9, 0xA2, 0x9A, 0x65, 0xFB, 0x4B, 0xB5],
            "KeePass database",
        ),
        (&[0xFE, 0xED, 0xFE, 0xED], "Java keystore"),
        (&[0xCE, 0xCE, 0xCE, 0xCE], "Java keystore"),
    ];
    PREFIXES
        .iter()
        .find(|(prefix, _)| bytes.starts_with(prefix))
        .map(|(_, name)| *name)
        .or_else(|| der_private_key(bytes))
        .or_else(|| openpgp_secret_key(bytes).then_some("OpenPGP secret key"))
}

/// The compressed or archive format `bytes` starts with that the guard cannot look inside.
pub(super) fn unreadable_archive(bytes: &[u8]) -> Option<&'static str> {
    const PREFIXES: &[(&[u8], &str)] = &[
        (&[0xFD, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x28, 0xB5, 0x2F, 0xFD], "zstd"),
        (&[0x04, 0x22, 0x4D, 0x18], "lz4"),
        (b"LZIP\x01", "lzip"),
        (&[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C], "7z"),
        (b"Rar!\x1A\x07", "rar"),
    ];
    if let Some((_, name)) = PREFIXES.iter().find(|(p, _)| bytes.starts_with(p)) {
        return Some(name);
    }
    // bzip2: "BZh" + block size 1-9 + a block magic (pi) or the end-of-stream magic (sqrt pi).
    if let [b'B', b'Z', b'h', b'1'..=b'9', rest @ ..] = bytes
        && (rest.starts_with(&[0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
            || rest.starts_with(&[0x17, 0x72, 0x45, 0x38, 0x50, 0x90]))
    {
        return Some("bzip2");
    }
    // lzma-alone: properties byte 0x5D (lc=3, lp=0, pb=2, what every encoder writes), a
    // power-of-two dictionary size, then the size (unknown: all ones, or below 2^40).
    if let [0x5D, d0, d1, d2, d3, size @ ..] = bytes
        && size.len() >= 8
    {
        let dict = u32::from_le_bytes([*d0, *d1, *d2, *d3]);
        let unknown = size[..8].iter().all(|&b| b == 0xFF);
        let plausible = size[5..8].iter().all(|&b| b == 0);
        if dict.is_power_of_two() && dict >= 1 << 12 && (unknown || plausible) {
            return Some("lzma");
        }
    }
    None
}

/// The content of a DER SEQUENCE starting at `bytes[0]` (definite length), if it is one.
fn der_sequence(bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    match len {
        0..=0x7F => Some(rest),
        0x81 => rest.get(1..),
        0x82 => rest.get(2..),
        0x83 => rest.get(3..),
        _ => None,
    }
}

/// DER private keys: PKCS#8 (`SEQUENCE { INTEGER 0|1, SEQUENCE { OID … } … }`), encrypted
/// PKCS#8 (PBES/PKCS#12 algorithm OIDs), PKCS#1 RSA and DSA (`INTEGER 0, INTEGER <big>`),
/// SEC1 EC (`INTEGER 1, OCTET STRING`) and PKCS#12 (`INTEGER 3, SEQUENCE { pkcs7-data … }`).
fn der_private_key(bytes: &[u8]) -> Option<&'static str> {
    const PKCS5: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05];
    const PKCS12_PBE: &[u8] = &[0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C];
    const PKCS7_DATA: &[u8] = &[
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01,
    ];
    let body = der_sequence(bytes)?;
    match body {
        [0x02, 0x01, 0x00 | 0x01, rest @ ..]
            if der_sequence(rest).is_some_and(|a| a.first() == Some(&0x06)) =>
        {
            Some("PKCS#8 private key")
        }
        [0x02, 0x01, 0x00, 0x02, 0x81 | 0x82, ..] => Some("PKCS#1 private key"),
        [0x02, 0x01, 0x01, 0x04, 0x18..=0x42, ..] => Some("SEC1 EC private key"),
        [0x02, 0x01, 0x03, rest @ ..]
            if der_sequence(rest).is_some_and(|c| c.starts_with(PKCS7_DATA)) =>
        {
            Some("PKCS#12 key store")
        }
        _ => der_sequence(body)
            .filter(|alg| alg.starts_with(PKCS5) || alg.starts_with(PKCS12_PBE))
            .map(|_| "encrypted PKCS#8 private key"),
    }
}

/// An OpenPGP secret-key packet (tag 5, as `gpg --export-secret-keys` starts): its header,
/// a length that fits, version 3 to 6, and a known public-key algorithm.
fn openpgp_secret_key(bytes: &[u8]) -> bool {
    let (len, body) = match bytes {
        [0x94, l, body @ ..] | [0xC5, l @ 0..=191, body @ ..] => (usize::from(*l), body),
        [0x95, a, b, body @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), body),
        [0xC5, a @ 192..=223, b, body @ ..] => {
            ((usize::from(*a) - 192) * 256 + usize::from(*b) + 192, body)
        }
        _ => return false,
    };
    let algorithm = match body {
        [4..=6, _, _, _, _, algorithm, ..] | [3, _, _, _, _, _, _, algorithm, ..] => *algorithm,
        _ => return false,
    };
    (20..=body.len()).contains(&len) && matches!(algorithm, 1..=3 | 16..=22 | 25 | 27..=29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_named_and_plain_data_is_not() {
        assert_eq!(
            key_container(b"openssh-key-v1\0\0\0\0\x04none"),
            Some("OpenSSH private key")
        );
        assert_eq!(
            key_container(&[0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]),
            Some("Java keystore")
        );
        // PKCS#8 Ed25519: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING }.
        let ed25519 = [
            0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22,
        ];
        assert_eq!(key_container(&ed25519), Some("PKCS#8 private key"));
        // A public key (SubjectPublicKeyInfo) is not a private key.
        let spki = [
            0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21,
        ];
        assert_eq!(key_container(&spki), None);
        let mut pgp = vec![0x95, 0x01, 0xD8, 4, 0x5F, 0x00, 0x00, 0x00, 1];
        pgp.resize(480, 7);
        assert_eq!(key_container(&pgp), Some("OpenPGP secret key"));
        for plain in [&b"hello world"[..], b"", &[0x30, 0x03, 0x02, 0x01, 0x05]] {
            assert_eq!(key_container(plain), None);
        }
    }

    #[test]
    fn unreadable_archives_are_named() {
        assert_eq!(unreadable_archive(b"BZh91AY&SY\x01\x02"), Some("bzip2"));
        assert_eq!(
            unreadable_archive(&[0xFD, b'7', b'z', b'X', b'Z', 0, 0, 4]),
            Some("xz")
        );
        assert_eq!(
            unreadable_archive(&[0x28, 0xB5, 0x2F, 0xFD, 0x24]),
            Some("zstd")
        );
        let lzma = [
            0x5D, 0, 0, 0x80, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0,
        ];
        assert_eq!(unreadable_archive(&lzma), Some("lzma"));
        for plain in [&b"BZh is a prefix"[..], b"LZIP is a compressor", b"7z", b""] {
            assert_eq!(unreadable_archive(plain), None);
        }
    }
}
