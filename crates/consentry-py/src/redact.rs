//! `consentry.Redactor`: the gate's PII detector and redaction over Python strings and Arrow string arrays, with the
//! GIL released while Rust works (and, for arrays, every core busy).

use crate::errors::{bad_input, to_py};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, GenericStringArray, OffsetSizeTrait};
use arrow_schema::DataType;
use consentry_gate::materialize::redact_text;
use consentry_redact::Detector;
use pyo3::prelude::*;
use pyo3_arrow::PyArray;
use std::sync::Arc;

/// One detection in a Python string: its type (`EMAIL`, `PERSON`, …), where it is in CHARACTER offsets of the
/// string (end exclusive, so `text[start:end]` is it), the text itself and the detector's confidence.
#[pyclass(frozen, get_all, module = "consentry")]
pub struct Span {
    /// The type, e.g. `EMAIL`, `PHONE`, `PERSON`.
    kind: String,
    /// Character offset of the first character.
    start: usize,
    /// Character offset one past the last character.
    end: usize,
    /// The detected text (`text[start:end]`).
    text: String,
    /// Confidence in 0..1.
    score: f32,
}

#[pymethods]
impl Span {
    fn __repr__(&self) -> String {
        format!(
            "Span(kind={:?}, start={}, end={}, text={:?}, score={:.2})",
            self.kind, self.start, self.end, self.text, self.score
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Span>().is_ok_and(|o| {
            let o = o.get();
            (o.kind.as_str(), o.start, o.end, o.text.as_str())
                == (self.kind.as_str(), self.start, self.end, self.text.as_str())
        })
    }
}

/// Redacts PII with the detector the gate uses (the shipped gazetteer, the default confidence, every type), plus the
/// full names in `member_names`; thread-safe, so one redactor serves many threads.
#[pyclass(frozen, module = "consentry")]
pub struct Redactor {
    det: Arc<Detector>,
}

/// Byte offsets of `s` (ascending) → character offsets, in one pass.
fn char_offsets(s: &str, bytes: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by_key(|&i| bytes[i]);
    let mut out = vec![0; bytes.len()];
    let (mut byte, mut chars) = (0usize, 0usize);
    let mut it = s.char_indices().peekable();
    for i in order {
        let target = bytes[i];
        while byte < target {
            match it.next() {
                Some((_, c)) => {
                    byte += c.len_utf8();
                    chars += 1;
                }
                None => break,
            }
        }
        out[i] = chars;
    }
    out
}

/// Redacts every value of a string array, in parallel over contiguous slices; nulls stay null.
fn redact_strings<O: OffsetSizeTrait>(det: &Detector, a: &GenericStringArray<O>) -> ArrayRef {
    let n = a.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.div_ceil(1024)).max(1);
    let chunk = n.div_ceil(threads).max(1);
    let parts: Vec<Vec<Option<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|from| {
                let to = (from + chunk).min(n);
                s.spawn(move || {
                    (from..to)
                        .map(|i| a.is_valid(i).then(|| redact_text(det, a.value(i)).into_owned()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A worker only panics on a bug in the detector; re-raise it here rather than lose rows.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    Arc::new(parts.into_iter().flatten().collect::<GenericStringArray<O>>())
}

#[pymethods]
impl Redactor {
    /// A redactor recognising these members' full names (`"Given Surname"`) besides the gazetteer.
    #[new]
    #[pyo3(signature = (member_names=Vec::new()))]
    fn new(py: Python<'_>, member_names: Vec<String>) -> PyResult<Redactor> {
        let det = py.detach(move || consentry_app::redact::gate_detector(member_names)).map_err(to_py)?;
        Ok(Redactor { det: Arc::new(det) })
    }

    /// `text` with every detection replaced by its typed placeholder (`<EMAIL>`, `<PERSON>`, …), exactly as the gate
    /// writes free text into a dataset.
    fn redact(&self, py: Python<'_>, text: &str) -> String {
        let det = &self.det;
        py.detach(|| redact_text(det, text).into_owned())
    }

    /// Every detection in `text`, in order, with character offsets.
    fn spans(&self, py: Python<'_>, text: &str) -> Vec<Span> {
        let det = &self.det;
        py.detach(|| {
            let spans = det.detect(text);
            let bytes: Vec<usize> = spans.iter().flat_map(|s| [s.start, s.end]).collect();
            let chars = char_offsets(text, &bytes);
            spans
                .iter()
                .enumerate()
                .map(|(i, s)| Span {
                    kind: s.kind.as_str().to_string(),
                    start: chars[2 * i],
                    end: chars[2 * i + 1],
                    text: text.get(s.start..s.end).unwrap_or_default().to_string(),
                    score: s.score,
                })
                .collect()
        })
    }

    /// Redacts a `pyarrow` string or large_string array (anything with `__arrow_c_array__`), on every core with the
    /// GIL released; returns an array of the same type and length, nulls kept. Zero-copy in (Arrow C data interface).
    fn redact_array<'py>(&self, py: Python<'py>, array: PyArray) -> PyResult<Bound<'py, PyAny>> {
        let (array, field) = array.into_inner();
        let det = &self.det;
        let out: ArrayRef = match array.data_type() {
            DataType::Utf8 => py.detach(|| redact_strings(det, array.as_string::<i32>())),
            DataType::LargeUtf8 => py.detach(|| redact_strings(det, array.as_string::<i64>())),
            other => {
                return Err(bad_input(format!(
                    "redact_array: expected a string or large_string array, got {other}; cast it first \
                     (pyarrow.compute.cast(arr, pyarrow.string()))"
                )));
            }
        };
        let field = Arc::new(field.as_ref().clone().with_nullable(true));
        let out = PyArray::try_new(out, field).map_err(|e| bad_input(e.to_string()))?;
        // `pyarrow.array` imports it through `__arrow_c_array__`: no copy.
        py.import("pyarrow")?.getattr("array")?.call1((Bound::new(py, out)?,))
    }

    fn __repr__(&self) -> String {
        format!("consentry.Redactor({} member names)", self.det.name_count())
    }
}
