//! The redacting stderr writer under every log layer: each formatted event passes
//! [`crate::guard::redact_line`], line by line, before it reaches stderr. It sits below the
//! formatter, so it holds at every level (`RUST_LOG=trace` included), for the crate's own
//! events and for those of its dependencies (rmcp logging a tool call's arguments, an HTTP
//! client logging a header), in every process and whoever started it.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] for stderr whose writers redact what they are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = Redacting<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(io::stderr())
    }
}

/// Redacts each `write` before handing it on. The fmt layers format a whole event into one
/// buffer and write it with one `write_all`, so a write is one or more whole lines.
#[derive(Debug)]
pub struct Redacting<W>(pub W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            out.push_str(&crate::guard::redact_line(body));
            out.push_str(&line[body.len()..]);
        }
        self.0.write_all(out.as_bytes())?;
        // All of `buf` was consumed (redacted), so the caller's `write_all` ends here.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_redacted_and_newlines_stay() {
        let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let mut out = Redacting(Vec::new());
        write!(
            out,
            "DEBUG call arguments {{\"wallet\":\"{key}\"}}\nINFO plain line\n"
        )
        .unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert!(!text.contains(key), "{text}");
        assert!(text.ends_with("INFO plain line\n"), "{text}");
        assert_eq!(text.lines().count(), 2);
    }
}
