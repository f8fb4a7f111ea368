//! An incremental Server-Sent Events reader for streamed chat completions: bytes in as they
//! arrive, each event's `data` out as soon as its closing blank line is seen (no buffering
//! beyond the current line). Lines are split on raw bytes, so a UTF-8 character cut across
//! two network reads is reassembled before decoding.

/// A single line longer than this is refused (a streamed chunk is a few hundred bytes).
const MAX_LINE: usize = 4 << 20;

/// Why the event stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event-stream line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("an event-stream line is not valid UTF-8")]
    NotUtf8,
}

/// The parser's state between two reads.
#[derive(Debug, Default)]
pub struct SseReader {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseReader {
    /// Feeds the next bytes; returns the `data` of every event they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            let event = if self.line.is_empty() {
                // The usual case: the whole line is in this read, so nothing is copied.
                self.line_done(piece)?
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(piece);
                let event = self.line_done(&line)?;
                line.clear();
                self.line = line;
                event
            };
            if let Some(event) = event {
                events.push(event);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        Ok(events)
    }

    /// The stream ended: the event still open (a last line without its blank line), if any.
    pub fn finish(&mut self) -> Result<Option<String>, SseError> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            // The event completes at the end of the stream, not at a blank line.
            let _ = self.line_done(&line)?;
        }
        Ok(self.data.take())
    }

    fn line_done(&mut self, raw: &[u8]) -> Result<Option<String>, SseError> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            return Ok(self.data.take());
        }
        let line = std::str::from_utf8(raw).map_err(|_| SseError::NotUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        // Comments (`:keep-alive`) have an empty field name; `event:`, `id:` and `retry:` do
        // not matter for chat completions.
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_crlf() {
        let mut r = SseReader::default();
        assert!(r.push(b"data: {\"a\"").unwrap().is_empty());
        assert!(r.push(b":1}\r\n").unwrap().is_empty());
        assert_eq!(
            r.push(b"\r\n: keep-alive\n\ndata: [DONE]\n\n").unwrap(),
            ["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(r.finish().unwrap(), None);
    }

    #[test]
    fn multi_line_data_comments_and_a_cut_utf8_character() {
        let mut r = SseReader::default();
        let text = "data: é\nevent: x\ndata:two\n\n".as_bytes();
        let (a, b) = text.split_at(7); // inside the two bytes of 'é'
        assert!(r.push(a).unwrap().is_empty());
        assert_eq!(r.push(b).unwrap(), ["é\ntwo"]);
        assert!(r.push(b"data: last").unwrap().is_empty());
        assert_eq!(r.finish().unwrap().as_deref(), Some("last"));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut r = SseReader::default();
        assert_eq!(r.push(b"data: \xff\n"), Err(SseError::NotUtf8));
    }
}
