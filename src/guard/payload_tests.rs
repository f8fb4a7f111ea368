//! Tests of [`check_bytes`]: a worker env file refused raw and through each encoding (gzip,
//! zlib, raw deflate, zip stored and deflated, base64 standard and URL-safe, hex dumps, UTF-16,
//! nested), the host's own token wherever it hides, key containers, the caps (ratio, total,
//! depth) and formats it cannot open, and outputs that must pass.

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use rand::{RngCore as _, SeedableRng as _};

use super::tests::assert_no_leak;
use super::*;

const TOKEN: &str = "9f2c4e1a7b3d5f60819a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";

fn env_file() -> Vec<u8> {
    format!(
        "BASIS_ORCHESTRATOR_URL=http://127.0.0.1:8080\nBASIS_WORKER_ID=gpu-1\n\
         BASIS_WORKER_TOKEN={TOKEN}\nBASIS_WALLET_ADDRESS=0x52908400098527886E0F7030069857D2E4169EE7\n"
    )
    .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A zip archive with one entry, `method` 0 (stored) or 8 (deflated), `flags` as given, and
/// its central directory.
fn zip(name: &str, data: &[u8], method: u16, flags: u16) -> Vec<u8> {
    let body = if method == 8 {
        deflate(data)
    } else {
        data.to_vec()
    };
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let sizes = |out: &mut Vec<u8>| {
        out.extend(crc.sum().to_le_bytes());
        out.extend(u32::try_from(body.len()).unwrap().to_le_bytes());
        out.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    };
    let name_len = u16::try_from(name.len()).unwrap().to_le_bytes();
    let mut out = b"PK\x03\x04\x14\x00".to_vec();
    out.extend(flags.to_le_bytes());
    out.extend(method.to_le_bytes());
    out.extend([0, 0, 0x21, 0]);
    sizes(&mut out);
    out.extend(name_len);
    out.extend([0, 0]);
    out.extend(name.as_bytes());
    out.extend(&body);
    let central = out.len();
    out.extend(b"PK\x01\x02\x14\x00\x14\x00");
    out.extend(flags.to_le_bytes());
    out.extend(method.to_le_bytes());
    out.extend([0, 0, 0x21, 0]);
    sizes(&mut out);
    out.extend(name_len);
    out.extend([0; 12]);
    out.extend([0; 4]);
    out.extend(name.as_bytes());
    let dir_len = u32::try_from(out.len() - central).unwrap();
    out.extend(b"PK\x05\x06\0\0\0\0\x01\x00\x01\x00");
    out.extend(dir_len.to_le_bytes());
    out.extend(u32::try_from(central).unwrap().to_le_bytes());
    out.extend([0, 0]);
    out
}

fn wrap(text: &str, width: usize) -> String {
    text.as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `xxd`'s default format: offset, eight groups of four hex digits, the ASCII column.
fn xxd(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let hex = hex::encode(chunk);
        let groups: Vec<&str> = hex
            .as_bytes()
            .chunks(4)
            .map(|g| std::str::from_utf8(g).unwrap())
            .collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        writeln!(out, "{:08x}: {}  {ascii}", i * 16, groups.join(" ")).unwrap();
    }
    out
}

/// `hexdump -C`: offset, sixteen bytes in two halves, `|ASCII|`.
fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let bytes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        writeln!(out, "{:08x}  {}  |{ascii}|", i * 16, bytes.join(" ")).unwrap();
    }
    out
}

/// [`check_output`] with `known` held in memory and nothing else known about the host.
fn with_known(bytes: &[u8], known: &[&[u8]]) -> Result<(), SecretRefused> {
    let host = HostSecrets {
        known,
        ..HostSecrets::NONE
    };
    check_output("output", bytes, &host)
}

/// Refused, of `kind`, with nothing of the token in any text of the refusal.
fn refused_as(bytes: &[u8], known: &[&[u8]], kind: SecretKind) {
    let err = with_known(bytes, known).expect_err("should be refused");
    assert_eq!(err.kind, kind, "{err}");
    assert_eq!(err.field, "output");
    assert_no_leak(&err, TOKEN);
}

fn refused_any(bytes: &[u8]) -> SecretRefused {
    let err = check_bytes("output", bytes).expect_err("should be refused");
    assert_no_leak(&err, TOKEN);
    err
}

#[test]
fn an_env_file_is_refused_raw_and_through_every_encoding() {
    let env = env_file();
    let text = String::from_utf8(env.clone()).unwrap();
    let b64 = STANDARD.encode(&env);
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("raw", env.clone()),
        ("gzip", gzip(&env)),
        ("zlib", zlib(&env)),
        ("raw deflate", deflate(&env)),
        ("zip, deflated", zip("worker.env", &env, 8, 0)),
        ("zip, stored", zip("worker.env", &env, 0, 0)),
        (
            "tar-like: a gzip after other bytes",
            [vec![7u8; 600], gzip(&env)].concat(),
        ),
        ("base64", b64.clone().into_bytes()),
        ("base64 wrapped at 76", wrap(&b64, 76).into_bytes()),
        (
            "base64 in a sentence",
            format!("here: {b64} (done)").into_bytes(),
        ),
        ("base64url", URL_SAFE_NO_PAD.encode(&env).into_bytes()),
        ("hex", hex::encode(&env).into_bytes()),
        ("xxd -p", wrap(&hex::encode(&env), 60).into_bytes()),
        ("xxd", xxd(&env).into_bytes()),
        ("hexdump -C", hexdump(&env).into_bytes()),
        ("UTF-16LE", utf16),
        ("base64 of a gzip", STANDARD.encode(gzip(&env)).into_bytes()),
        (
            "base64 of a gzip of a zip",
            STANDARD.encode(gzip(&zip("w", &env, 8, 0))).into_bytes(),
        ),
        ("hex of a zlib", hex::encode(zlib(&env)).into_bytes()),
    ];
    for (what, bytes) in cases {
        let err = check_bytes("output", &bytes).expect_err(what);
        assert_no_leak(&err, TOKEN);
        // With the token known, the same outputs are refused too (as whatever matched first).
        assert!(with_known(&bytes, &[TOKEN.as_bytes()]).is_err(), "{what}");
    }
}

#[test]
fn the_hosts_own_token_is_refused_wherever_it_hides() {
    let known: &[&[u8]] = &[TOKEN.as_bytes()];
    let folded = wrap(TOKEN, 16);
    for bytes in [
        format!("id{TOKEN}x"),
        format!("x{}y", TOKEN.to_uppercase()),
        folded.clone(),
        STANDARD.encode(format!("a{TOKEN}b")),
        hex::encode(format!("a{TOKEN}b")),
    ] {
        refused_as(bytes.as_bytes(), known, SecretKind::WorkerToken);
    }
    refused_as(
        &gzip(format!("a{TOKEN}b").as_bytes()),
        known,
        SecretKind::WorkerToken,
    );
    // Without it known, a token glued inside a longer word is not a 64-hex key.
    assert_eq!(
        check_bytes("output", format!("id{TOKEN}x").as_bytes()),
        Ok(())
    );
}

#[test]
fn key_containers_and_credential_files_are_refused() {
    let mut openssh = b"openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none".to_vec();
    openssh.resize(400, 0x41);
    // The body of an OpenSSH PEM without its header lines still decodes to the container.
    let body = wrap(&STANDARD.encode(&openssh), 70);
    for bytes in [openssh.clone(), body.into_bytes(), gzip(&openssh)] {
        let err = refused_any(&bytes);
        assert_eq!(err.kind, SecretKind::CredentialFile, "{err}");
        assert_eq!(err.vendor, Some("OpenSSH private key"));
    }
    let netrc = b"machine api.example.com\n  login me\n  password hunter2\n";
    assert_eq!(refused_any(netrc).kind, SecretKind::CredentialFile);
    assert_eq!(refused_any(&gzip(netrc)).kind, SecretKind::CredentialFile);
}

#[test]
fn what_cannot_be_opened_is_refused() {
    let xz = [&[0xFD, b'7', b'z', b'X', b'Z', 0x00][..], &[9; 64]].concat();
    let encrypted = zip("secret.txt", b"anything", 0, 0x01);
    let bzip2_entry = {
        let mut z = zip("a", b"anything at all", 0, 0);
        z[8] = 12; // method: bzip2
        z
    };
    for (bytes, what) in [
        (xz, "xz"),
        (encrypted, "encrypted zip entry"),
        (bzip2_entry, "bzip2 zip entry"),
    ] {
        let err = refused_any(&bytes);
        assert_eq!(
            (err.kind, err.vendor),
            (SecretKind::Uninspectable, Some(what))
        );
    }
}

#[test]
fn a_bomb_is_refused_without_being_expanded() {
    // 8 MiB of zeros: about 8 KiB compressed, far past the ratio.
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 64 * 1024);
    let err = refused_any(&bomb);
    assert_eq!(err.kind, SecretKind::Uninspectable);
    // Many members each within the ratio, together past the total.
    let member = gzip(&zeros[..RATIO_FLOOR]);
    let many: Vec<u8> = std::iter::repeat_n(member, MAX_DECODED_BYTES / RATIO_FLOOR + 1)
        .flatten()
        .collect();
    assert_eq!(refused_any(&many).kind, SecretKind::Uninspectable);
    // Nested deeper than basis looks.
    let mut nested = b"nothing secret here".to_vec();
    for _ in 0..=MAX_DEPTH {
        nested = gzip(&nested);
    }
    let err = refused_any(&nested);
    assert_eq!(err.kind, SecretKind::Uninspectable);
}

#[test]
fn ordinary_outputs_pass() {
    let prose = "Silicon hums softly. The quick brown fox jumps over the lazy dog; \
                 internationalization, OrchestratorClientBuilder and a commit \
                 3f2a9c1e5b7d9f0a1c3e5b7d9f0a1c3e5b7d9f0a are all fine.\n"
        .repeat(200);
    let mut random = vec![0u8; 256 * 1024];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut random);
    let json = br#"{"haiku": "fans hum / tensors flow", "score": 3}"#.to_vec();
    let mut nested = prose.as_bytes().to_vec();
    for _ in 0..MAX_DEPTH - 1 {
        nested = gzip(&nested);
    }
    for (what, bytes) in [
        ("prose", prose.as_bytes().to_vec()),
        ("random bytes", random.clone()),
        (
            "base64 of random bytes",
            STANDARD.encode(&random).into_bytes(),
        ),
        ("gzip of prose", gzip(prose.as_bytes())),
        ("zip of prose", zip("poem.txt", prose.as_bytes(), 8, 0)),
        (
            "base64 of prose",
            STANDARD.encode(prose.as_bytes()).into_bytes(),
        ),
        ("hexdump of prose", hexdump(prose.as_bytes()).into_bytes()),
        ("json", json),
        ("gzip nested within the depth", nested),
        ("empty", Vec::new()),
    ] {
        assert_eq!(check_bytes("output", &bytes), Ok(()), "{what}");
        assert_eq!(with_known(&bytes, &[TOKEN.as_bytes()]), Ok(()), "{what}");
    }
}

#[test]
fn outputs_with_hashes_pass_unless_one_is_the_wallets_key_or_there_are_too_many_to_check() {
    // The wallet of the well-known web3 example key below.
    let wallet = crate::domain::WalletAddress::parse("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
        .expect("a valid address");
    let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    let wallets = [wallet];
    let host = HostSecrets {
        wallets: &wallets,
        ..HostSecrets::NONE
    };
    let hashes: Vec<String> = (0..100u64)
        .map(|i| format!("0x{:064x}", i * 7919 + 1))
        .collect();
    let listing = hashes.join("\n");
    assert_eq!(check_output("output", listing.as_bytes(), &host), Ok(()));
    // The same listing in a gzip layer too.
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(listing.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(check_output("output", &gz, &host), Ok(()));
    // The wallet's key among them, in any layer, is refused.
    let hidden = format!("{listing}\n{key}");
    let err = check_output("output", hidden.as_bytes(), &host).unwrap_err();
    assert_eq!(err.kind, SecretKind::PrivateKey);
    let encoded = STANDARD.encode(hidden.as_bytes());
    assert!(check_output("output", encoded.as_bytes(), &host).is_err());
    // Strictly (no host), every one of them is refused.
    assert!(check_bytes("output", listing.as_bytes()).is_err());
    // Past the allowance of wallet derivations: uninspectable, not let through.
    let many: Vec<String> = (0..=MAX_WALLET_CHECKS as u64)
        .map(|i| format!("{:064x}", i + 1))
        .collect();
    let err = check_output("output", many.join(" ").as_bytes(), &host).unwrap_err();
    assert_eq!(err.kind, SecretKind::Uninspectable);
    assert!(
        SecretKind::Uninspectable
            .fix()
            .contains(&MAX_WALLET_CHECKS.to_string())
    );
}
