//! [`check_bytes`]: the guard over an output's raw bytes (a file, or what a bytes output
//! decodes to), before any encoding. Each layer is scanned as text (lossy UTF-8, and again
//! without NULs for UTF-16), for key containers and credential files, and for the secrets held
//! in memory; then what it decodes to is scanned the same way: gzip, zlib and raw deflate
//! streams, zip entries, base64 and hex blocks, down to [`MAX_DEPTH`] layers. Inflating is
//! capped ([`MAX_DECODED_BYTES`] in all, [`MAX_RATIO`] per stream), so a zip bomb is refused,
//! not expanded. Formats it cannot open (bzip2, xz, zstd, 7z, rar, an encrypted zip entry) are
//! refused as [`SecretKind::Uninspectable`]: what basis cannot read, it does not vouch for.

use std::borrow::Cow;

use subtle::ConstantTimeEq as _;

use super::decode::{self, Stream, ZipEntry};
use super::free_text::{HostSecrets, Rule, WalletChecks, wallet_checks};
use super::{Finding, SecretKind, SecretRefused, containers, credentials, scan};

/// Layers of decoding below the raw bytes (base64 of a gzip of a zip entry is three).
pub const MAX_DEPTH: usize = 5;
/// All decoded bytes of one check together (inflated, unzipped, base64 and hex decoded).
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;
/// One stream may inflate to this many times its compressed size (or [`RATIO_FLOOR`])...
pub const MAX_RATIO: usize = 100;
/// ...or to this much, whichever is larger.
pub const RATIO_FLOOR: usize = 1024 * 1024;
/// Key containers and archive formats are recognised in a text-decoded layer (base64, hex)
/// this long or longer; shorter ones are what ordinary words decode to.
const MIN_CONTAINER: usize = 64;
/// Secrets held in memory shorter than this are not searched for.
const MIN_KNOWN: usize = 16;

/// Refuses `bytes` if any layer of them holds a secret, every 64-hex value included
/// ([`Rule::Strict`]); `field` names them in the error.
pub fn check_bytes(field: &str, bytes: &[u8]) -> Result<(), SecretRefused> {
    check_bytes_with(field, bytes, Rule::Strict, &HostSecrets::NONE)
}

/// The guard over a task output's raw bytes: free text ([`Rule::FreeText`] with `host`, so a
/// transaction hash passes and the worker wallet's key does not), also refusing `host.known`
/// (the worker token and the evaluator key held in memory) wherever they appear, in any case,
/// with whitespace inside, in any layer.
pub fn check_output(
    field: &str,
    bytes: &[u8],
    host: &HostSecrets<'_>,
) -> Result<(), SecretRefused> {
    check_bytes_with(field, bytes, Rule::FreeText(host), host)
}

fn check_bytes_with(
    field: &str,
    bytes: &[u8],
    rule: Rule<'_>,
    host: &HostSecrets<'_>,
) -> Result<(), SecretRefused> {
    let mut forms: Vec<Vec<u8>> = Vec::new();
    // Without whitespace, as `Walk::known` searches (a binary secret, a raw key seed, may hold
    // whitespace bytes itself).
    let stripped = host.known.iter().map(|s| {
        s.iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<u8>>()
    });
    for secret in stripped.filter(|s| s.len() >= MIN_KNOWN) {
        for form in [
            secret.clone(),
            secret.to_ascii_lowercase(),
            secret.to_ascii_uppercase(),
        ] {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    let mut walk = Walk {
        known: forms,
        budget: MAX_DECODED_BYTES,
        rule,
        checks: wallet_checks(),
    };
    walk.layer(bytes, 0, Origin::Raw)
        .map_err(|finding| finding.refuse(field))
}

/// How a layer came to be: the input, inflated or unzipped, or decoded from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Raw,
    Inflated,
    Text,
}

struct Walk<'r> {
    known: Vec<Vec<u8>>,
    /// The 64-hex rule every layer is scanned by.
    rule: Rule<'r>,
    /// The rule's wallet derivations left, over all layers.
    checks: WalletChecks,
    /// Decoded bytes still allowed.
    budget: usize,
}

fn uninspectable(what: &'static str) -> Finding {
    Finding {
        kind: SecretKind::Uninspectable,
        vendor: Some(what),
    }
}

/// Whether `needle` occurs in `hay`; each candidate window is compared in constant time.
fn contains_secret(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return false;
    };
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w[0] == first && bool::from(w.ct_eq(needle)))
}

impl Walk<'_> {
    fn layer(&mut self, bytes: &[u8], depth: usize, origin: Origin) -> Result<(), Finding> {
        self.known(bytes)?;
        let magic = origin != Origin::Text || bytes.len() >= MIN_CONTAINER;
        if magic && let Some(name) = containers::key_container(bytes) {
            return Err(Finding {
                kind: SecretKind::CredentialFile,
                vendor: Some(name),
            });
        }
        let text = String::from_utf8_lossy(bytes);
        scan_text(&text, self.rule, &self.checks)?;
        let nuls = bytes.len() - bytes.iter().filter(|b| **b != 0).count();
        if nuls > 0 && nuls >= bytes.len() / 4 {
            // UTF-16 (or text padded with NULs): the same characters without them.
            let stripped: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
            self.known(&stripped)?;
            scan_text(&String::from_utf8_lossy(&stripped), self.rule, &self.checks)?;
        }
        if magic && let Some(name) = containers::unreadable_archive(bytes) {
            return Err(uninspectable(name));
        }
        self.streams(bytes, depth, magic)?;
        if depth < MAX_DEPTH {
            let text = text.as_bytes();
            for block in decode::base64_blocks(text)
                .into_iter()
                .chain(decode::hex_blocks(text))
            {
                self.charge(block.len())?;
                self.layer(&block, depth + 1, Origin::Text)?;
            }
        }
        Ok(())
    }

    /// The secrets held in memory, in `bytes` as they are and with ASCII whitespace removed
    /// (a token folded over lines).
    fn known(&self, bytes: &[u8]) -> Result<(), Finding> {
        if self.known.is_empty() {
            return Ok(());
        }
        let folded: Cow<'_, [u8]> = if bytes.iter().any(u8::is_ascii_whitespace) {
            Cow::Owned(
                bytes
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect(),
            )
        } else {
            Cow::Borrowed(bytes)
        };
        if self
            .known
            .iter()
            .any(|secret| contains_secret(&folded, secret))
        {
            return Err(Finding::of(SecretKind::WorkerToken));
        }
        Ok(())
    }

    fn charge(&mut self, len: usize) -> Result<(), Finding> {
        self.budget = self
            .budget
            .checked_sub(len)
            .ok_or_else(|| uninspectable("more decoded data than basis checks"))?;
        Ok(())
    }

    /// The compressed streams and zip entries in `bytes`, each inflated and checked as a
    /// layer below. At the depth limit, finding one refuses: it cannot be opened any further.
    fn streams(&mut self, bytes: &[u8], depth: usize, magic: bool) -> Result<(), Finding> {
        let mut found: Vec<(Stream, &[u8])> = decode::gzip_members(bytes)
            .map(|at| (Stream::Gzip, &bytes[at..]))
            .collect();
        if magic && decode::is_zlib(bytes) {
            found.push((Stream::Zlib, bytes));
        }
        let mut stored: Vec<&[u8]> = Vec::new();
        for entry in decode::zip_entries(bytes) {
            match entry {
                ZipEntry::Stored(data) => stored.push(data),
                ZipEntry::Deflated(data) => found.push((Stream::Deflate, data)),
                ZipEntry::Unreadable(what) => return Err(uninspectable(what)),
            }
        }
        if depth >= MAX_DEPTH {
            return if found.is_empty() && stored.is_empty() {
                Ok(())
            } else {
                Err(uninspectable("data nested deeper than basis looks"))
            };
        }
        for data in stored {
            self.charge(data.len())?;
            self.layer(data, depth + 1, Origin::Inflated)?;
        }
        for (stream, data) in found {
            self.inflated(stream, data, depth, Origin::Inflated)?;
        }
        // Binary that is nothing else may be a bare deflate stream (no header to tell).
        let other = magic && std::str::from_utf8(bytes).is_err();
        if other && decode::gzip_members(bytes).next().is_none() && !decode::is_zlib(bytes) {
            self.inflated(Stream::Deflate, bytes, depth, Origin::Text)?;
        }
        Ok(())
    }

    /// Inflates `data` under the caps and checks what came out as the next layer (`origin`
    /// `Text` for a guess, so its first bytes are only trusted when long enough).
    fn inflated(
        &mut self,
        stream: Stream,
        data: &[u8],
        depth: usize,
        origin: Origin,
    ) -> Result<(), Finding> {
        let limit = self
            .budget
            .min(data.len().saturating_mul(MAX_RATIO).max(RATIO_FLOOR));
        let inflated = decode::inflate(stream, data, limit);
        if inflated.over_limit {
            return Err(uninspectable("a stream expanding past basis's limits"));
        }
        if inflated.data.is_empty() {
            return Ok(());
        }
        self.charge(inflated.data.len())?;
        self.layer(&inflated.data, depth + 1, origin)
    }
}

/// One layer's text: the secret scanners, then the credential-file markers.
fn scan_text(text: &str, rule: Rule<'_>, checks: &WalletChecks) -> Result<(), Finding> {
    if let Some(finding) = scan(text, rule, checks) {
        return Err(finding);
    }
    if let Some(name) = credentials::find(text) {
        return Err(Finding {
            kind: SecretKind::CredentialFile,
            vendor: Some(name),
        });
    }
    Ok(())
}
