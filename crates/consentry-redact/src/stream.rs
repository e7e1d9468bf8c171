//! Streaming redaction of input of any size in bounded memory. Bytes are
//! validated as UTF-8 on the way in (an error names the line), buffered
//! until a cut point — preferably a newline, otherwise blank space once the
//! window is full — and the detector runs over the buffer plus a little
//! already-written context, so cues such as a greeting on the previous line
//! still count. A cut never falls inside a detection.

use crate::scan::floor_boundary;
use crate::{Detector, Numbering, RedactError, Span};
use std::io::Write;

/// Bytes of already-written text kept as context for the next window.
const CONTEXT: usize = 512;
/// Bytes at the end of a full window never cut through, so a value being written is seen whole.
const HOLD: usize = 4096;

/// Redacts a stream chunk by chunk into a writer, numbering placeholders if asked.
pub struct StreamRedactor<'d, W: Write> {
    detector: &'d Detector,
    out: W,
    buf: String,
    /// Bytes at the start of `buf` already written (context only).
    done: usize,
    /// An incomplete UTF-8 sequence at the end of the last chunk.
    pending: Vec<u8>,
    numbering: Option<Numbering>,
    window: usize,
    flush_at: usize,
    line: u64,
    column: u64,
}

impl<'d, W: Write> StreamRedactor<'d, W> {
    /// Redacts into `out` with plain placeholders and a 1 MiB window.
    pub fn new(detector: &'d Detector, out: W) -> Self {
        StreamRedactor {
            detector,
            out,
            buf: String::new(),
            done: 0,
            pending: Vec::new(),
            numbering: None,
            window: 1 << 20,
            flush_at: 256 << 10,
            line: 1,
            column: 0,
        }
    }

    /// Numbers placeholders (`<PERSON_1>`) consistently across the whole stream.
    pub fn numbered(mut self) -> Self {
        self.numbering = Some(Numbering::new());
        self
    }

    /// Longest stretch without a newline held before cutting at blank space (default 1 MiB, at least 16 KiB).
    pub fn window(mut self, bytes: usize) -> Self {
        self.window = bytes.max(4 * HOLD);
        self.flush_at = self.flush_at.min(self.window);
        self
    }

    /// Feeds raw bytes; fails on invalid UTF-8 with the line and column of the first bad byte.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), RedactError> {
        let mut data = std::mem::take(&mut self.pending);
        data.extend_from_slice(bytes);
        let (valid, rest) = match std::str::from_utf8(&data) {
            Ok(s) => (s.len(), 0),
            Err(e) => match e.error_len() {
                None => (e.valid_up_to(), data.len() - e.valid_up_to()),
                Some(_) => {
                    self.advance_position(&data[..e.valid_up_to()]);
                    return Err(RedactError::InvalidUtf8 { line: self.line, column: self.column + 1 });
                }
            },
        };
        self.advance_position(&data[..valid]);
        // `valid` bytes were just checked, so this conversion cannot fail.
        if let Ok(s) = std::str::from_utf8(&data[..valid]) {
            self.buf.push_str(s);
        }
        self.pending = data[valid..valid + rest].to_vec();
        self.drain(false)
    }

    /// Feeds text that is already UTF-8.
    pub fn write_str(&mut self, s: &str) -> Result<(), RedactError> {
        if !self.pending.is_empty() {
            return self.write_bytes(s.as_bytes());
        }
        self.advance_position(s.as_bytes());
        self.buf.push_str(s);
        self.drain(false)
    }

    /// Redacts what is left, flushes, and returns the writer; fails if the input ended inside a UTF-8 sequence.
    pub fn finish(mut self) -> Result<W, RedactError> {
        if !self.pending.is_empty() {
            return Err(RedactError::InvalidUtf8 { line: self.line, column: self.column + 1 });
        }
        self.drain(true)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn advance_position(&mut self, bytes: &[u8]) {
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
                self.column = (bytes.len() - last - 1) as u64;
            }
            None => self.column += bytes.len() as u64,
        }
    }

    fn drain(&mut self, last: bool) -> Result<(), RedactError> {
        // One window at a time (at most `window` fresh bytes), so a huge write is detected piece by piece in
        // cache-sized windows and the buffer is compacted once at the end.
        loop {
            let fresh = self.buf.len() - self.done;
            if fresh == 0 || (!last && fresh < self.flush_at) {
                break;
            }
            let region_end =
                if fresh > self.window { floor_boundary(&self.buf, self.done + self.window) } else { self.buf.len() };
            let whole = region_end == self.buf.len();
            let mut cut = if last && whole {
                self.buf.len()
            } else if let Some(nl) = memchr::memrchr(b'\n', &self.buf.as_bytes()[self.done..region_end]) {
                self.done + nl + 1
            } else if fresh >= self.window {
                let limit = floor_boundary(&self.buf, region_end.saturating_sub(HOLD)).max(self.done);
                let blank = self.buf.as_bytes()[self.done..limit].iter().rposition(|c| c.is_ascii_whitespace());
                match blank {
                    Some(p) => self.done + p + 1,
                    None => limit,
                }
            } else {
                break;
            };
            if cut <= self.done {
                // A window of one unbroken token longer than the window: take it whole.
                cut = region_end.max(self.done + 1).min(self.buf.len());
                cut = floor_boundary(&self.buf, cut);
                if cut <= self.done {
                    cut = self.buf.len();
                }
            }
            // Detect over some already-written context before and some lookahead after the cut.
            let det_start = floor_boundary(&self.buf, self.done.saturating_sub(CONTEXT));
            let det_end = floor_boundary(&self.buf, (cut + HOLD).min(self.buf.len()));
            let spans: Vec<Span> = self
                .detector
                .detect(&self.buf[det_start..det_end])
                .into_iter()
                .map(|s| Span { start: s.start + det_start, end: s.end + det_start, ..s })
                .collect();
            // Never cut inside a detection.
            if let Some(s) = spans.iter().find(|s| s.start < cut && cut < s.end) {
                cut = if s.start > self.done { s.start } else { s.end };
            }
            let done = self.done;
            let shifted: Vec<Span> = spans
                .iter()
                .filter(|s| s.end > done && s.start < cut)
                .map(|s| Span { start: s.start.max(done) - done, end: s.end.min(cut) - done, ..*s })
                .collect();
            let piece = &self.buf[done..cut];
            let text = match self.numbering.as_mut() {
                Some(n) => crate::redact_with(piece, &shifted, n),
                None => crate::redact(piece, &shifted),
            };
            self.out.write_all(text.as_bytes())?;
            self.done = cut;
        }
        let keep_from = floor_boundary(&self.buf, self.done.saturating_sub(CONTEXT));
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.done -= keep_from;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_matches_whole_text() {
        let d = Detector::new().unwrap_or_else(|e| panic!("{e}"));
        let line = "Hi Sarah, call +44 20 7946 0958 or mail sarah@example.com today.\n";
        let text = line.repeat(20_000);
        let mut s = StreamRedactor::new(&d, Vec::new()).window(16 << 10);
        for chunk in text.as_bytes().chunks(7777) {
            s.write_bytes(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        let out = s.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(String::from_utf8(out).unwrap_or_default(), d.redact(line).repeat(20_000));
    }

    #[test]
    fn long_line_without_newlines() {
        let d = Detector::new().unwrap_or_else(|e| panic!("{e}"));
        let unit = "mail sarah@example.com now ";
        let text = unit.repeat(5_000);
        let mut s = StreamRedactor::new(&d, Vec::new()).window(16 << 10);
        for chunk in text.as_bytes().chunks(1000) {
            s.write_bytes(chunk).unwrap_or_else(|e| panic!("{e}"));
        }
        let out = String::from_utf8(s.finish().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default();
        assert_eq!(out, "mail <EMAIL> now ".repeat(5_000));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let d = Detector::new().unwrap_or_else(|e| panic!("{e}"));
        let mut s = StreamRedactor::new(&d, Vec::new());
        let r = s.write_bytes(b"ok\nfine\nbad \xff here\n");
        assert!(matches!(r, Err(RedactError::InvalidUtf8 { line: 3, column: 5 })), "{r:?}");
        let mut s = StreamRedactor::new(&d, Vec::new());
        s.write_bytes("é".as_bytes().get(..1).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(s.finish(), Err(RedactError::InvalidUtf8 { line: 1, column: 1 })));
    }
}
