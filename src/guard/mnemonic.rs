//! BIP-39 seed phrases: a run of [`MIN_WORDS`] or more consecutive words of one BIP-39 wordlist
//! (taken from the `bip39` crate, all ten languages), whatever their case, separators or
//! checksum. English words also count in their 4-letter abbreviated form (BIP-39 English words
//! are unique in their first four letters, and wallets accept that form); Chinese words are
//! single ideographs, counted one by one even when written without spaces.

use std::collections::HashSet;
use std::sync::LazyLock;

use bip39::Language;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// The shortest run of wordlist words that is refused (the shortest standard mnemonic).
pub(super) const MIN_WORDS: usize = 12;

/// English wordlist words are 3 to 8 ASCII lowercase letters.
const MAX_WORD_LEN: usize = 8;

/// Slots in the open-addressing table: a power of two, twice the wordlist and its 4-letter
/// prefixes, so probes are short.
const SLOTS: usize = 8192;

/// The wordlist packed as integers (see [`pack`]) in an open-addressing hash table with linear
/// probing; 0 marks an empty slot (no packed word is 0). Built once; a lookup is a multiply,
/// a shift and one or two loads, with no string comparison and no allocation.
static TABLE: LazyLock<Box<[u64; SLOTS]>> = LazyLock::new(|| {
    let mut table = Box::new([0u64; SLOTS]);
    let words = Language::English.word_list().iter();
    let prefixes = words.clone().filter_map(|word| word.get(..4));
    for key in words.copied().chain(prefixes).filter_map(pack) {
        let mut slot = home(key);
        while table[slot] != 0 && table[slot] != key {
            slot = (slot + 1) % SLOTS;
        }
        table[slot] = key;
    }
    table
});

/// The other nine wordlists, each as a set of its words in NFKD form (as BIP-39 compares them).
static OTHER: LazyLock<Vec<HashSet<String>>> = LazyLock::new(|| {
    Language::ALL
        .iter()
        .filter(|language| **language != Language::English)
        .map(|language| language.word_list().iter().map(|w| normalized(w)).collect())
        .collect()
});

/// The longest word of the other wordlists, in characters (a longer token is none of them).
const MAX_OTHER_WORD_CHARS: usize = 12;

/// `token` lowercased, in NFKD.
fn normalized(token: &str) -> String {
    token.nfkd().flat_map(char::to_lowercase).collect()
}

/// A Han ideograph (Chinese wordlist words are one each).
fn is_han(c: char) -> bool {
    matches!(u32::from(c), 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

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

/// Whether `token` (any case) is a BIP-39 English word or the 4-letter abbreviation of one.
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

/// Consecutive-word counters: English, and each other language.
struct Runs {
    english: usize,
    other: Vec<usize>,
}

impl Runs {
    /// Counts `token` for every wordlist that has it, resets the others; true once a run is
    /// long enough.
    fn feed(&mut self, token: &str) -> bool {
        self.english = if is_wordlist_word(token) {
            self.english + 1
        } else {
            0
        };
        let candidate = token.chars().count() <= MAX_OTHER_WORD_CHARS;
        let word = candidate.then(|| normalized(token));
        for (run, list) in self.other.iter_mut().zip(OTHER.iter()) {
            *run = match &word {
                Some(word) if list.contains(word) => *run + 1,
                _ => 0,
            };
        }
        self.english >= MIN_WORDS || self.other.iter().any(|run| *run >= MIN_WORDS)
    }
}

/// Whether `text` holds a run of at least [`MIN_WORDS`] words of one wordlist.
///
/// Words are maximal runs of alphanumeric characters (Unicode-aware); everything else
/// (whitespace, punctuation, `-`, `_`) separates them. A token made only of digits neither
/// counts nor breaks the run, so numbered lists (`1. abandon 2. ability …`) are caught; any
/// other token that is not a wordlist word (`the`, `a`, `llama3`, `café`) ends the run. A
/// token of Han ideographs is read one ideograph at a time.
pub(super) fn has_mnemonic(text: &str) -> bool {
    let mut runs = Runs {
        english: 0,
        other: vec![0; OTHER.len()],
    };
    // Combining marks stay inside words: a decomposed `bâton` (NFKD, as wordlists and some
    // wallets write it) is one word.
    for token in text.split(|c: char| !c.is_alphanumeric() && !is_combining_mark(c)) {
        if token.is_empty() || token.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if token.chars().all(is_han) {
            let mut buf = [0u8; 4];
            if token.chars().any(|c| runs.feed(c.encode_utf8(&mut buf))) {
                return true;
            }
        } else if runs.feed(token) {
            return true;
        }
    }
    false
}
