//! `hash`: the output hash (keccak256 of the raw bytes) of a file or of stdin, streamed so a
//! large output is never held in memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::{ErrorCode, OutputHash, Problem};

/// What `basis hash` reports.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HashReport {
    pub output_hash: OutputHash,
    /// Number of bytes hashed.
    pub bytes: u64,
}

/// Hashes the bytes of `path`, or of standard input when `path` is `-`.
pub fn hash_input(path: &Path) -> Result<HashReport, Problem> {
    let result = if path.as_os_str() == "-" {
        hash_reader(io::stdin().lock())
    } else {
        File::open(path).and_then(hash_reader)
    };
    result.map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {e}", path.display()),
        )
        .with_fix("check the path exists and is readable, or pass - to hash standard input")
    })
}

/// keccak256 of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<HashReport> {
    let mut hasher = alloy_primitives::Keccak256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(HashReport {
        output_hash: OutputHash::from_bytes(hasher.finalize().0),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_hash_equals_one_shot() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let r = hash_reader(&data[..]).unwrap();
        assert_eq!(r.output_hash, OutputHash::of(&data));
        assert_eq!(r.bytes, 200_000);
    }

    #[test]
    fn missing_file_is_an_io_problem() {
        let p = hash_input(Path::new("/nonexistent/basis-test")).unwrap_err();
        assert_eq!(p.code, ErrorCode::IoError);
        assert!(p.fix.is_some());
    }
}
