//! BIP-39 seed phrases: a run of [`MIN_WORDS`] or more consecutive words of the English wordlist
//! (taken from the `bip39` crate), whatever their case, separators or checksum.

use std::sync::LazyLock;

use bip39::Language;

/// The shortest run of wordlist words that is refused (the shortest standard mnemonic).
pub(super) const MIN_WORDS: usize = 12;

/// English wordlist words are 3 to 8 ASCII lowercase letters.
const MAX_WORD_LEN: usize = 8;

/// Slots in the open-addressing table: a power of two, twice the wordlist, so probes are short.
const SLOTS: usize = 4096;

/// The wordlist packed as integers (see [`pack`]) in an open-addressing hash table with linear
/// probing; 0 marks an empty slot (no packed word is 0). Built once; a lookup is a multiply,
/// a shift and one or two loads, with no string comparison and no allocation.
static TABLE: LazyLock<Box<[u64; SLOTS]>> = LazyLock::new(|| {
    let mut table = Box::new([0u64; SLOTS]);
    for key in Language::English
        .word_list()
        .iter()
        .filter_map(|word| pack(word))
    {
        let mut slot = home(key);
        while table[slot] != 0 {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = key;
    }
    table
});

/// The first slot to probe for `key` (Fibonacci hashing: the top 12 bits of a multiply).
fn home(key: u64) -> usize {
    const SHIFT: u32 = u64::BITS - SLOTS.trailing_zeros();
    // The shift leaves 12 bits, so the value is below SLOTS and fits any usize.
    usize::try_from(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> SHIFT).unwrap_or(0)
}

/// A word of 3 to 8 ASCII letters, lowercased, as the big-endian bytes of a `u64` (zero-padded:
/// distinct words give distinct numbers); `None` for anything else.
fn pack(token: &str) -> Option<u64> {
    let bytes = token.as_bytes();
    if bytes.len() < 3 || bytes.len() > MAX_WORD_LEN {
        return None;
    }
    let mut buf = [0u8; MAX_WORD_LEN];
    for (slot, b) in buf.iter_mut().zip(bytes) {
        if !b.is_ascii_alphabetic() {
            return None;
        }
        *slot = b.to_ascii_lowercase();
    }
    Some(u64::from_be_bytes(buf))
}

/// Whether `token` (any case) is a BIP-39 English word.
pub(super) fn is_wordlist_word(token: &str) -> bool {
    let Some(key) = pack(token) else {
        return false;
    };
    let table = &**TABLE;
    let mut slot = home(key);
    // The table is half empty, so every probe sequence reaches an empty slot.
    loop {
        match table[slot] {
            0 => return false,
            found if found == key => return true,
            _ => slot = (slot + 1) % SLOTS,
        }
    }
}

/// Whether `text` holds a run of at least [`MIN_WORDS`] wordlist words.
///
/// Words are maximal runs of alphanumeric characters (Unicode-aware); everything else
/// (whitespace, punctuation, `-`, `_`) separates them. A token made only of digits neither
/// counts nor breaks the run, so numbered lists (`1. abandon 2. ability …`) are caught; any
/// other token that is not a wordlist word (`the`, `a`, `llama3`, `café`) ends the run.
pub(super) fn has_mnemonic(text: &str) -> bool {
    let mut run = 0usize;
    for token in text.split(|c: char| !c.is_alphanumeric()) {
        if token.is_empty() || token.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if is_wordlist_word(token) {
            run += 1;
            if run >= MIN_WORDS {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}
