//! Streams rows out of a CSV, JSON Lines or JSON array file, keeping each row's physical line (1-based, the header
//! counted) and only the columns a mapping reads. Memory is bounded: a line (CSV, JSON Lines) or array element of
//! more than [`MAX_RECORD`] bytes is refused, never buffered whole.

use super::Problem;
use super::mapping::{Column, Format};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

/// The longest line (CSV, JSON Lines) or JSON array element read.
pub const MAX_RECORD: usize = 1 << 20;

/// The physical shape of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// One JSON array of objects.
    JsonArray,
    /// A Fides API page: one object whose `items` array holds the rows.
    FidesPage,
}

/// One row: its first physical line and the text of each mapped column (`None`: absent, null or empty).
#[derive(Debug, Clone)]
pub struct RawRow {
    /// 1-based physical line where the row starts.
    pub line: u64,
    /// One value per mapped column, in the mapping's column order.
    pub values: Vec<Option<String>>,
}

/// A row's problem (reading goes on) or the file's (reading stops).
#[derive(Debug)]
pub enum ReadError {
    /// This row is bad; the next can be read.
    Row(Problem),
    /// The file cannot be read further.
    Fatal(Problem),
}

/// What every byte read passes through: the digest of the file (to notice a file changed between passes) and the
/// line-length cap.
struct TapState {
    hasher: blake3::Hasher,
    lines: u64,
    since_newline: usize,
    cap: bool,
    /// Blank lines skipped before the readers began (see [`RowReader`]'s `line_base`).
    skipped: u64,
}

impl TapState {
    /// The line being read, counted as the readers count (from after the skipped blank lines), so that the
    /// reader's shift makes it the file's line again.
    fn reading_line(&self) -> u64 {
        (self.lines + 1).saturating_sub(self.skipped).max(1)
    }
}

struct Tap<R> {
    inner: R,
    state: Rc<RefCell<TapState>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.borrow_mut();
        let chunk = buf.get(..n).unwrap_or_default();
        s.hasher.update(chunk);
        for part in chunk.split_inclusive(|&b| b == b'\n') {
            if part.last() == Some(&b'\n') {
                s.lines += 1;
                s.since_newline = 0;
            } else {
                s.since_newline += part.len();
            }
            if s.cap && s.since_newline > MAX_RECORD {
                return Err(std::io::Error::other(format!(
                    "line {} is longer than {} MiB: not a CSV or JSON Lines file a platform exports",
                    s.lines + 1,
                    MAX_RECORD >> 20
                )));
            }
        }
        Ok(n)
    }
}

/// CRLF line ends read as LF: the csv crate counts a CRLF file's record lines one short otherwise (a record's
/// position is taken before the `\n` of the line end before it).
pub(crate) struct Crlf<R> {
    inner: R,
    held_cr: bool,
}

impl<R: Read> Read for Crlf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            return self.inner.read(buf);
        }
        loop {
            let carry = usize::from(std::mem::take(&mut self.held_cr));
            if carry == 1 {
                buf[0] = b'\r';
            }
            let n = self.inner.read(&mut buf[carry..])?;
            if n == 0 {
                return Ok(carry);
            }
            let total = carry + n;
            let (mut w, mut i) = (0, 0);
            while i < total {
                let b = buf[i];
                if b == b'\r' {
                    if i + 1 == total {
                        self.held_cr = true;
                        break;
                    }
                    if buf[i + 1] == b'\n' {
                        i += 1;
                        continue;
                    }
                }
                buf[w] = b;
                w += 1;
                i += 1;
            }
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

/// A file's rows, one at a time.
pub struct RowReader {
    shape: Shape,
    state: Rc<RefCell<TapState>>,
    inner: Inner,
    columns: Vec<Column>,
    rows: u64,
    /// Blank lines skipped before the readers began (a whole buffer of them): added to every line they report.
    line_base: u64,
}

enum Inner {
    Csv { reader: csv::Reader<Crlf<BufReader<Tap<std::fs::File>>>>, index: Vec<Option<usize>>, record: csv::ByteRecord },
    Lines { reader: BufReader<Tap<std::fs::File>>, line: u64, buf: Vec<u8> },
    Array { reader: BufReader<Tap<std::fs::File>>, line: u64, array: ArrayState },
}

fn fatal(line: u64, message: impl Into<String>) -> ReadError {
    ReadError::Fatal(Problem::new(line, message))
}

/// Picks the shape: `--from csv` is CSV; JSON is an array or lines by its first non-blank character; a Fides export
/// by its extension, then by that character.
fn shape_of(path: &Path, format: Format, first: Option<u8>, first_line_is_a_row: bool) -> Result<Shape, ReadError> {
    let by_char = |c: Option<u8>| match c {
        Some(b'[') => Some(Shape::JsonArray),
        Some(b'{') => Some(Shape::JsonLines),
        _ => None,
    };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    Ok(match format {
        Format::Csv => Shape::Csv,
        Format::Json => by_char(first).ok_or_else(|| {
            fatal(1, "not JSON: a JSON import is one array of objects (`[`) or one object per line (`{`)")
        })?,
        Format::Fides => match ext.as_deref() {
            Some("csv") => Shape::Csv,
            Some("jsonl" | "ndjson") => Shape::JsonLines,
            _ => match by_char(first) {
                Some(Shape::JsonLines) if !first_line_is_a_row => Shape::FidesPage,
                other => other.unwrap_or(Shape::Csv),
            },
        },
    })
}

impl RowReader {
    /// Opens `path` (a regular file: it is read more than once) for the mapped `columns`.
    pub fn open(path: &Path, format: Format, columns: &[Column]) -> Result<RowReader, ReadError> {
        let meta = std::fs::metadata(path).map_err(|e| fatal(0, format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(fatal(
                0,
                "not a regular file (a device, a pipe or a directory): an import reads its file twice, validating \
                 first; copy the data to a regular file and import that",
            ));
        }
        let file = std::fs::File::open(path).map_err(|e| fatal(0, format!("cannot open it: {e}")))?;
        let state = Rc::new(RefCell::new(TapState {
            hasher: blake3::Hasher::new(),
            lines: 0,
            since_newline: 0,
            cap: true,
            skipped: 0,
        }));
        let mut reader = BufReader::with_capacity(64 * 1024, Tap { inner: file, state: state.clone() });
        let io = |e: std::io::Error| fatal(state.borrow().lines + 1, e.to_string());
        // (Before the blank lines are known, the line is the file's; the shifts below apply only after.)
        // A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name.
        let head = reader.fill_buf().map_err(io)?;
        if head.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
        let (first, skipped) = first_non_blank(&mut reader).map_err(io)?;
        state.borrow_mut().skipped = skipped;
        if first.is_none() {
            return Err(fatal(1, "the file is empty: nothing to import"));
        }
        Self::open_at(reader, state, path, format, first, columns)
            .map(|r| RowReader { line_base: skipped, ..r })
            .map_err(|e| e.shifted(skipped))
    }

    /// The rest of [`RowReader::open`], from the first non-blank byte on: lines as the readers count them.
    fn open_at(
        mut reader: BufReader<Tap<std::fs::File>>,
        state: Rc<RefCell<TapState>>,
        path: &Path,
        format: Format,
        first: Option<u8>,
        columns: &[Column],
    ) -> Result<RowReader, ReadError> {
        let io = |e: std::io::Error| fatal(state.borrow().reading_line(), e.to_string());
        // A first line that is a whole JSON object, and not a page of them, makes JSON Lines; a Fides API page
        // (`{"items": [...]}`, pretty-printed or not) is read as the array it holds.
        let first_line_is_a_row = {
            let buf = reader.fill_buf().map_err(io)?;
            let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
            matches!(serde_json::from_slice::<serde_json::Value>(line), Ok(serde_json::Value::Object(o)) if !o.contains_key("items"))
        };
        let shape = shape_of(path, format, first, first_line_is_a_row)?;
        let inner = match shape {
            Shape::Csv => {
                // The header's own line: after the blank lines still in the buffer (the csv reader skips them).
                let header_line = {
                    let buf = reader.fill_buf().map_err(io)?;
                    let lead = buf.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(buf.len());
                    1 + buf.get(..lead).unwrap_or_default().iter().filter(|&&b| b == b'\n').count() as u64
                };
                let mut reader =
                    csv::ReaderBuilder::new().has_headers(true).from_reader(Crlf { inner: reader, held_cr: false });
                let headers = reader.byte_headers().map_err(|e| csv_error(e, header_line))?.clone();
                let mut names = Vec::with_capacity(headers.len());
                for (i, h) in headers.iter().enumerate() {
                    let h = std::str::from_utf8(h).map_err(|_| {
                        fatal(
                            header_line,
                            format!("the header's column {} is not UTF-8 text; save the file as UTF-8", i + 1),
                        )
                    })?;
                    names.push(h.trim().to_string());
                }
                let mut index = Vec::with_capacity(columns.len());
                for c in columns {
                    let found = names.iter().position(|n| n == &c.name);
                    if found.is_none() && c.required {
                        return Err(ReadError::Fatal(
                            Problem::new(
                                header_line,
                                format!(
                                    "the header has no column `{}`; it has {}. Fix the mapping's `{}` or the file",
                                    c.name,
                                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                                    c.field.as_str()
                                ),
                            )
                            .at(c),
                        ));
                    }
                    index.push(found);
                }
                Inner::Csv { reader, index, record: csv::ByteRecord::new() }
            }
            Shape::JsonLines => Inner::Lines { reader, line: 0, buf: Vec::new() },
            Shape::JsonArray | Shape::FidesPage => {
                state.borrow_mut().cap = false;
                let array = ArrayState { started: false, done: false, page: shape == Shape::FidesPage };
                Inner::Array { reader, line: 1, array }
            }
        };
        Ok(RowReader { shape, state, inner, columns: columns.to_vec(), rows: 0, line_base: 0 })
    }

    /// The shape read.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Data rows read so far (refused ones included).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// BLAKE3 of every byte read so far (the whole file once `next` returned `None`).
    pub fn digest(&self) -> [u8; 32] {
        *self.state.borrow().hasher.clone().finalize().as_bytes()
    }

    /// The next row, a row's problem, or the file's; `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        let out = match &mut self.inner {
            Inner::Csv { reader, index, record } => next_csv(reader, index, record, &self.columns),
            Inner::Lines { reader, line, buf } => next_line(reader, line, buf, &self.columns, &self.state),
            Inner::Array { reader, line, array } => next_element(reader, line, array, &self.columns),
        };
        if matches!(out, Some(Ok(_)) | Some(Err(ReadError::Row(_)))) {
            self.rows += 1;
        }
        let base = self.line_base;
        out.map(|r| r.map(|row| RawRow { line: row.line + base, ..row }).map_err(|e| e.shifted(base)))
    }
}

/// The first non-blank byte, and the newlines of the whole buffers of blanks consumed before it (the readers count
/// lines from where they start, so those must be added to the lines they report).
fn first_non_blank<R: BufRead>(r: &mut R) -> std::io::Result<(Option<u8>, u64)> {
    // Looks without consuming past the buffer: blank lines before the data are few.
    let mut skipped = 0u64;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((None, skipped));
        }
        if let Some(&b) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok((Some(b), skipped));
        }
        // A buffer of nothing but blanks: consumed, its newlines counted.
        skipped += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        r.consume(n);
    }
}

impl ReadError {
    /// The same problem `base` lines further down (a problem of the file as a whole, line 0, stays so).
    fn shifted(self, base: u64) -> ReadError {
        let shift = |mut p: Problem| {
            if p.line > 0 {
                p.line += base;
            }
            p
        };
        match self {
            ReadError::Row(p) => ReadError::Row(shift(p)),
            ReadError::Fatal(p) => ReadError::Fatal(shift(p)),
        }
    }
}

fn csv_error(e: csv::Error, fallback_line: u64) -> ReadError {
    let line = e.position().map_or(fallback_line, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => ReadError::Row(Problem::new(
            line,
            format!("{len} fields where the header has {expected_len}; quote values that hold commas (\"a,b\")"),
        )),
        csv::ErrorKind::Io(io) => fatal(line, io.to_string()),
        _ => fatal(line, e.to_string()),
    }
}

fn next_csv(
    reader: &mut csv::Reader<Crlf<BufReader<Tap<std::fs::File>>>>,
    index: &[Option<usize>],
    record: &mut csv::ByteRecord,
    columns: &[Column],
) -> Option<Result<RawRow, ReadError>> {
    match reader.read_byte_record(record) {
        Ok(false) => None,
        Err(e) => Some(Err(csv_error(e, reader.position().line()))),
        Ok(true) => {
            let line = record.position().map_or(0, |p| p.line());
            if let Err(e) = std::str::from_utf8(record.as_slice()) {
                return Some(Err(ReadError::Row(Problem::new(
                    line,
                    format!("invalid UTF-8 (byte {} of the row's values); save the file as UTF-8", e.valid_up_to() + 1),
                ))));
            }
            let values = index
                .iter()
                .map(|i| {
                    i.and_then(|i| record.get(i))
                        .map(|b| String::from_utf8_lossy(b).trim().to_string())
                        .filter(|s| !s.is_empty())
                })
                .collect();
            let _ = columns;
            Some(Ok(RawRow { line, values }))
        }
    }
}

/// The mapped columns of one JSON object (a number or boolean as its text, null as absent).
fn object_values(v: serde_json::Value, line: u64, columns: &[Column]) -> Result<RawRow, ReadError> {
    let serde_json::Value::Object(map) = v else {
        return Err(ReadError::Row(Problem::new(
            line,
            "not a JSON object; each row is one {\"column\": value, …} object",
        )));
    };
    let mut values = Vec::with_capacity(columns.len());
    for c in columns {
        let text = match map.get(&c.name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                return Err(ReadError::Row(
                    Problem::new(line, "an object or array where a single value belongs").at(c),
                ));
            }
        };
        values.push(text);
    }
    Ok(RawRow { line, values })
}

fn next_line(
    reader: &mut BufReader<Tap<std::fs::File>>,
    line: &mut u64,
    buf: &mut Vec<u8>,
    columns: &[Column],
    state: &Rc<RefCell<TapState>>,
) -> Option<Result<RawRow, ReadError>> {
    loop {
        buf.clear();
        match reader.read_until(b'\n', buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(fatal(state.borrow().reading_line(), e.to_string()))),
        }
        *line += 1;
        let Ok(text) = std::str::from_utf8(buf) else {
            return Some(Err(ReadError::Row(Problem::new(*line, "invalid UTF-8; save the file as UTF-8"))));
        };
        if text.trim().is_empty() {
            continue;
        }
        return Some(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => object_values(v, *line, columns),
            Err(e) => Err(ReadError::Row(Problem::new(
                *line,
                format!("not JSON at column {}: {e}; JSON Lines holds one complete object per line", e.column()),
            ))),
        });
    }
}

/// Reads one byte of a JSON array, counting lines.
fn byte(reader: &mut BufReader<Tap<std::fs::File>>, line: &mut u64) -> Result<Option<u8>, ReadError> {
    let buf = reader.fill_buf().map_err(|e| fatal(*line, e.to_string()))?;
    let Some(&b) = buf.first() else { return Ok(None) };
    reader.consume(1);
    if b == b'\n' {
        *line += 1;
    }
    Ok(Some(b))
}

fn next_blank_skipped(reader: &mut BufReader<Tap<std::fs::File>>, line: &mut u64) -> Result<Option<u8>, ReadError> {
    loop {
        match byte(reader, line)? {
            Some(b) if b.is_ascii_whitespace() => continue,
            other => return Ok(other),
        }
    }
}

/// Reads one JSON value whose first byte is `first` (already read), capped at [`MAX_RECORD`] bytes.
fn read_value(reader: &mut BufReader<Tap<std::fs::File>>, line: &mut u64, first: u8) -> Result<Vec<u8>, ReadError> {
    let start = *line;
    let mut bytes = vec![first];
    let nested = first == b'{' || first == b'[';
    let (mut depth, mut in_string, mut escaped) = (i64::from(nested), first == b'"', false);
    loop {
        if bytes.len() > MAX_RECORD {
            return Err(fatal(start, format!("a JSON value longer than {} MiB", MAX_RECORD >> 20)));
        }
        if !nested && !in_string {
            // A number, true, false or null ends before the next `,`, `]`, `}` or blank, left unread.
            let buf = reader.fill_buf().map_err(|e| fatal(*line, e.to_string()))?;
            match buf.first() {
                None | Some(b',' | b']' | b'}') => return Ok(bytes),
                Some(b) if b.is_ascii_whitespace() => return Ok(bytes),
                _ => {}
            }
        }
        let Some(b) = byte(reader, line)? else {
            return Err(fatal(*line, "the file ends inside a JSON value (no closing `]`)"));
        };
        bytes.push(b);
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if !nested {
                    return Ok(bytes);
                }
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if nested && depth == 0 {
                    return Ok(bytes);
                }
            }
            _ => {}
        }
    }
}

/// In a Fides API page (`{"items": [...], "total": …}`), reads up to and including the `[` of `items`.
fn seek_items(reader: &mut BufReader<Tap<std::fs::File>>, line: &mut u64) -> Result<(), ReadError> {
    let no_items =
        |line: u64| fatal(line, "a JSON object without an `items` array: not a Fides consent-reporting page");
    if next_blank_skipped(reader, line)? != Some(b'{') {
        return Err(no_items(*line));
    }
    loop {
        let Some(b'"') = next_blank_skipped(reader, line)? else { return Err(no_items(*line)) };
        let key = read_value(reader, line, b'"')?;
        if next_blank_skipped(reader, line)? != Some(b':') {
            return Err(fatal(*line, "not JSON: a key without `:`"));
        }
        let Some(first) = next_blank_skipped(reader, line)? else { return Err(no_items(*line)) };
        if key == b"\"items\"" {
            return if first == b'[' { Ok(()) } else { Err(no_items(*line)) };
        }
        read_value(reader, line, first)?;
        match next_blank_skipped(reader, line)? {
            Some(b',') => continue,
            _ => return Err(no_items(*line)),
        }
    }
}

fn next_element(
    reader: &mut BufReader<Tap<std::fs::File>>,
    line: &mut u64,
    array: &mut ArrayState,
    columns: &[Column],
) -> Option<Result<RawRow, ReadError>> {
    if array.done {
        return None;
    }
    let result = (|| -> Result<Option<RawRow>, ReadError> {
        let mut c;
        if !array.started {
            if array.page {
                seek_items(reader, line)?;
            } else if next_blank_skipped(reader, line)? != Some(b'[') {
                return Err(fatal(*line, "a JSON array import starts with `[`"));
            }
            array.started = true;
            c = next_blank_skipped(reader, line)?;
            if c == Some(b']') {
                return end(reader, line, array);
            }
        } else {
            c = next_blank_skipped(reader, line)?;
            match c {
                Some(b',') => c = next_blank_skipped(reader, line)?,
                Some(b']') => return end(reader, line, array),
                Some(other) => {
                    return Err(fatal(*line, format!("`{}` where `,` or `]` belongs in the array", other as char)));
                }
                None => return Err(fatal(*line, "the file ends inside the JSON array (no closing `]`)")),
            }
        }
        let Some(first) = c else {
            return Err(fatal(*line, "the file ends inside the JSON array (no closing `]`)"));
        };
        let start = *line;
        let bytes = read_value(reader, line, first)?;
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => object_values(v, start, columns).map(Some),
            Err(e) => {
                Err(ReadError::Row(Problem::new(start + e.line().saturating_sub(1) as u64, format!("not JSON: {e}"))))
            }
        }
    })();
    match result {
        Ok(Some(row)) => Some(Ok(row)),
        Ok(None) => None,
        Err(e) => {
            if matches!(e, ReadError::Fatal(_)) {
                array.done = true;
            }
            Some(Err(e))
        }
    }
}

/// Where a JSON array is: started, done, and whether it is a Fides page's `items`.
pub(crate) struct ArrayState {
    started: bool,
    done: bool,
    page: bool,
}

fn end(
    reader: &mut BufReader<Tap<std::fs::File>>,
    line: &mut u64,
    array: &mut ArrayState,
) -> Result<Option<RawRow>, ReadError> {
    array.done = true;
    if array.page {
        // The page's other keys (total, page, size) say nothing about consent.
        return Ok(None);
    }
    match next_blank_skipped(reader, line)? {
        None => Ok(None),
        Some(_) => Err(fatal(*line, "text after the JSON array's closing `]`; a JSON import is one array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row read (line, member id) or a problem (fatal, line, message).
    type Got = Result<(u64, Option<String>), (bool, u64, String)>;

    fn rows(name: &str, text: &str, format: Format) -> Vec<Got> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let columns = [Column { name: "uid".into(), field: super::super::mapping::Field::MemberId, required: true }];
        let mut r = match RowReader::open(&path, format, &columns) {
            Ok(r) => r,
            Err(ReadError::Row(p) | ReadError::Fatal(p)) => return vec![Err((true, p.line, p.message))],
        };
        let mut out = Vec::new();
        while let Some(next) = r.next_row() {
            out.push(match next {
                Ok(row) => Ok((row.line, row.values[0].clone())),
                Err(ReadError::Row(p)) => Err((false, p.line, p.message)),
                Err(ReadError::Fatal(p)) => Err((true, p.line, p.message)),
            });
        }
        out
    }

    /// Blank lines before the data, more than one read buffer of them (found by reading the fuzz target's code: the
    /// lines came out thousands too low), count in every line reported, in every shape.
    #[test]
    fn lines_count_the_blank_lines_before_the_data_beyond_one_buffer() {
        let blanks = "\n".repeat(70_000);
        let csv = rows("a.csv", &format!("{blanks}uid\n7\n8,9\n"), Format::Csv);
        assert_eq!(csv[0], Ok((70_002, Some("7".into()))), "{csv:?}");
        assert!(matches!(&csv[1], Err((false, 70_003, _))), "{csv:?}");
        let lines = rows("a.jsonl", &format!("{blanks}{{\"uid\": 7}}\nnot json\n"), Format::Json);
        assert_eq!(lines[0], Ok((70_001, Some("7".into()))), "{lines:?}");
        assert!(matches!(&lines[1], Err((false, 70_002, _))), "{lines:?}");
        let array = rows("a.json", &format!("{blanks}[\n{{\"uid\": 7}},\n1\n]\n"), Format::Json);
        assert_eq!(array[0], Ok((70_002, Some("7".into()))), "{array:?}");
        assert!(matches!(&array[1], Err((false, 70_003, _))), "{array:?}");
        let header = rows("b.csv", &format!("{blanks}name\nx\n"), Format::Csv);
        assert!(matches!(&header[0], Err((true, 70_001, m)) if m.contains("no column `uid`")), "{header:?}");
        // Fewer blank lines than a buffer were always right; still are.
        let few = rows("c.csv", "\n\nuid\n7\n", Format::Csv);
        assert_eq!(few[0], Ok((4, Some("7".into()))), "{few:?}");
    }

    #[test]
    fn json_arrays_pages_and_lines_keep_their_lines() {
        let got = rows("a.json", "[\n  1,\n  \"x\",\n  {\"uid\": 4, \"s\": \"],}\\\"\"}\n]\n", Format::Json);
        assert!(matches!(&got[0], Err((false, 2, m)) if m.contains("not a JSON object")), "{got:?}");
        assert!(matches!(&got[1], Err((false, 3, _))), "{got:?}");
        assert_eq!(got[2], Ok((4, Some("4".into()))), "{got:?}");
        assert_eq!(got.len(), 3);
        let got = rows(
            "p.json",
            "{\"total\": [1, {\"a\": \"]\"}], \"items\": [{\"uid\": \"7\"}], \"page\": 1}",
            Format::Fides,
        );
        assert_eq!(got, [Ok((1, Some("7".into())))]);
        let got = rows("t.json", "[{\"uid\": 4},\n", Format::Json);
        assert!(matches!(got.last(), Some(Err((true, _, m))) if m.contains("ends inside")), "{got:?}");
        let got = rows("l.jsonl", "{\"uid\": 1}\n\n{\"uid\": null}\n{\"uid\": [1]}\nnot json\n", Format::Json);
        assert_eq!(got[0], Ok((1, Some("1".into()))));
        assert_eq!(got[1], Ok((3, None)));
        assert!(matches!(&got[2], Err((false, 4, _))), "{got:?}");
        assert!(matches!(&got[3], Err((false, 5, m)) if m.contains("not JSON")), "{got:?}");
        let got = rows("e.json", "  \n", Format::Json);
        assert!(matches!(&got[0], Err((true, _, m)) if m.contains("empty")), "{got:?}");
    }

    #[test]
    fn crlf_reads_as_lf_across_reads_of_any_size() {
        let input = b"a,b\r\n\"x\ry\",2\r\n\r\nlast\r";
        for size in [2usize, 3, 5, 64] {
            let mut r = Crlf { inner: std::io::Cursor::new(&input[..]), held_cr: false };
            let mut out = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, b"a,b\n\"x\ry\",2\n\nlast\r", "read size {size}");
        }
    }
}
