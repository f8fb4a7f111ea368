//! Decoding one layer of an output for [`super::check_bytes`]: gzip, zlib and raw deflate
//! streams and zip entries (found by their local headers, inflated with `flate2` under a cap),
//! and the base64 (standard or URL-safe) and hex blocks of its text. Nothing here decides
//! what is a secret; it only finds what else the bytes say.

use std::io::Read;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// A base64 run shorter than this (12 bytes decoded) is not decoded.
pub(super) const MIN_BASE64_RUN: usize = 16;
/// A hex run shorter than this (16 bytes decoded) is not decoded.
pub(super) const MIN_HEX_RUN: usize = 32;

/// A compressed stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Gzip,
    Zlib,
    Deflate,
}

/// What inflating gave: the bytes (all of them, or those before a corrupt or truncated part)
/// and whether the stream went past the limit.
#[derive(Debug)]
pub(super) struct Inflated {
    pub data: Vec<u8>,
    pub over_limit: bool,
}

/// Inflates `input` as `stream`, keeping at most `limit` bytes. A stream that fails part way
/// keeps what came before the failure: a receiver could recover that much too.
pub(super) fn inflate(stream: Stream, input: &[u8], limit: usize) -> Inflated {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut data = Vec::new();
    // An error only ends the stream early; what was read before it stays in `data`.
    let _ = match stream {
        Stream::Gzip => GzDecoder::new(input).take(cap).read_to_end(&mut data),
        Stream::Zlib => ZlibDecoder::new(input).take(cap).read_to_end(&mut data),
        Stream::Deflate => DeflateDecoder::new(input).take(cap).read_to_end(&mut data),
    };
    let over_limit = data.len() > limit;
    data.truncate(limit);
    Inflated { data, over_limit }
}

/// Whether `bytes` starts with a zlib header (deflate, window ≤ 32 KiB, check bits right).
pub(super) fn is_zlib(bytes: &[u8]) -> bool {
    match bytes {
        [cmf, flg, ..] => {
            cmf & 0x0F == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// The offsets of gzip member headers (magic, deflate, reserved flag bits clear) anywhere in
/// `bytes`: a gzip file, or one inside a tar or another container.
pub(super) fn gzip_members(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w[0] == 0x1F && w[1] == 0x8B && w[2] == 0x08 && w[3] & 0xE0 == 0)
        .map(|(at, _)| at)
}

/// One zip entry, found by its local file header.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ZipEntry<'a> {
    /// Stored, of known size: the entry's bytes.
    Stored(&'a [u8]),
    /// Deflated: the stream starts here (the decoder finds its end).
    Deflated(&'a [u8]),
    /// Encrypted, or compressed with a method the guard does not decode.
    Unreadable(&'static str),
}

/// The zip entries of `bytes`, by their local headers (`PK\3\4`) wherever they are, so a
/// truncated archive or one inside another file is read too.
pub(super) fn zip_entries(bytes: &[u8]) -> impl Iterator<Item = ZipEntry<'_>> + '_ {
    const HEADER: usize = 30;
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x03\x04")
        .filter_map(move |(at, _)| {
            if bytes.len() < at + HEADER {
                return None;
            }
            let flags = u16_at(at + 6);
            let method = u16_at(at + 8);
            let compressed = u32::from_le_bytes([
                bytes[at + 18],
                bytes[at + 19],
                bytes[at + 20],
                bytes[at + 21],
            ]);
            let start = at + HEADER + u16_at(at + 26) + u16_at(at + 28);
            let data = bytes.get(start..)?;
            let sized = flags & 0x08 == 0 && compressed != u32::MAX;
            let unreadable = |what| Some(ZipEntry::Unreadable(what));
            match method {
                _ if flags & 0x01 != 0 && matches!(method, 0 | 8 | 99) => {
                    unreadable("encrypted zip entry")
                }
                // A stored entry's bytes are in the input already; only one of known size is
                // looked at on its own (its first bytes, a stream starting there).
                0 if sized => {
                    let len = usize::try_from(compressed).unwrap_or(usize::MAX);
                    Some(ZipEntry::Stored(&data[..data.len().min(len)]))
                }
                8 => Some(ZipEntry::Deflated(data)),
                9 => unreadable("deflate64 zip entry"),
                12 => unreadable("bzip2 zip entry"),
                14 => unreadable("lzma zip entry"),
                93 => unreadable("zstd zip entry"),
                95 => unreadable("xz zip entry"),
                98 => unreadable("ppmd zip entry"),
                99 => unreadable("encrypted zip entry"),
                // Stored of unknown size (its bytes are in the input already), not a real header,
                // or a method nobody writes: nothing to read on its own.
                _ => None,
            }
        })
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// A lenient decoder for `alphabet`: padding optional, trailing bits allowed.
fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// `run` (base64 characters only, no padding) decoded with the alphabet it uses.
fn decode_base64(run: &[u8]) -> Option<Vec<u8>> {
    let url = run.iter().any(|b| matches!(b, b'-' | b'_'));
    let standard = run.iter().any(|b| matches!(b, b'+' | b'/'));
    if url && standard {
        return None;
    }
    // A length of 4n + 1 cannot be base64: drop the stray last character.
    let run = if run.len() % 4 == 1 {
        &run[..run.len() - 1]
    } else {
        run
    };
    let engine = lenient(if url {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    });
    engine.decode(run).ok()
}

/// The maximal runs of `is_byte` bytes in `line`, at least `min` long.
fn runs(line: &[u8], min: usize, is_byte: fn(u8) -> bool) -> impl Iterator<Item = &[u8]> {
    line.split(move |b| !is_byte(*b))
        .filter(move |r| r.len() >= min)
}

/// Whether `line` (trimmed) is one run of `is_byte` bytes, `=` padding allowed at the end.
fn whole_line(line: &[u8], is_byte: fn(u8) -> bool) -> Option<&[u8]> {
    let line = line.trim_ascii();
    let body = line
        .strip_suffix(b"==")
        .or_else(|| line.strip_suffix(b"="))
        .unwrap_or(line);
    (!body.is_empty() && body.iter().all(|b| is_byte(*b))).then_some(body)
}

/// The base64 blocks of `text`, decoded: consecutive lines that are wholly base64 (as
/// `base64` and PEM wrap them) joined into one block, and runs of 16 or more base64
/// characters inside other lines.
pub(super) fn base64_blocks(text: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut joined: Vec<u8> = Vec::new();
    let flush = |joined: &mut Vec<u8>, blocks: &mut Vec<Vec<u8>>| {
        if joined.len() >= MIN_BASE64_RUN
            && let Some(bytes) = decode_base64(joined)
        {
            blocks.push(bytes);
        }
        joined.clear();
    };
    for line in text.split(|b| *b == b'\n') {
        if let Some(body) = whole_line(line, is_base64_byte) {
            joined.extend_from_slice(body);
            // Padding ends a block.
            if body.len() < line.trim_ascii().len() {
                flush(&mut joined, &mut blocks);
            }
            continue;
        }
        flush(&mut joined, &mut blocks);
        blocks.extend(runs(line, MIN_BASE64_RUN, is_base64_byte).filter_map(decode_base64));
    }
    flush(&mut joined, &mut blocks);
    blocks
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    let hex = if hex.len() % 2 == 1 {
        &hex[..hex.len() - 1]
    } else {
        hex
    };
    hex::decode(hex).ok()
}

fn is_hex(word: &[u8]) -> bool {
    !word.is_empty() && word.iter().all(u8::is_ascii_hexdigit)
}

/// A group of a hex dump: 2, 4 or 8 hex digits.
fn is_group(word: &&[u8]) -> bool {
    is_hex(word) && matches!(word.len(), 2 | 4 | 8)
}

/// The data of a hex dump line, as hex text: `xxd -p` (one run), `xxd`, `hexdump -C` and
/// the like (an offset, then groups of 2, 4 or 8 hex digits; the ASCII column after them is
/// left out). `None` when the line is not one.
fn dump_line(line: &[u8]) -> Option<Vec<u8>> {
    let words: Vec<&[u8]> = line
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .collect();
    let (first, rest) = words.split_first()?;
    if rest.is_empty() {
        return is_hex(first).then(|| first.to_vec());
    }
    let offset = match first.strip_suffix(b":") {
        Some(digits) => is_hex(digits),
        None => {
            is_hex(first) && (6..=10).contains(&first.len()) && rest.first().is_some_and(is_group)
        }
    };
    let data: Vec<u8> = (if offset { rest } else { &words[..] })
        .iter()
        .take_while(|w| is_group(w))
        .flat_map(|w| w.iter().copied())
        .collect();
    (!data.is_empty()).then_some(data)
}

/// The hex blocks of `text`, decoded: consecutive hex dump lines joined into one block, and
/// runs of 32 or more hex digits inside other lines.
pub(super) fn hex_blocks(text: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut joined = Vec::new();
    let flush = |joined: &mut Vec<u8>, blocks: &mut Vec<Vec<u8>>| {
        if joined.len() >= MIN_HEX_RUN
            && let Some(bytes) = decode_hex(joined)
        {
            blocks.push(bytes);
        }
        joined.clear();
    };
    for line in text.split(|b| *b == b'\n') {
        if let Some(data) = dump_line(line) {
            joined.extend_from_slice(&data);
        } else {
            flush(&mut joined, &mut blocks);
            blocks
                .extend(runs(line, MIN_HEX_RUN, |b| b.is_ascii_hexdigit()).filter_map(decode_hex));
        }
    }
    flush(&mut joined, &mut blocks);
    blocks
}
