//! The row commitment: an order-independent, mergeable multiset hash (LtHash).
//!
//! Each row is encoded canonically (below) and hashed with BLAKE3 keyed by
//! the table's *schema key*; the 2048-byte BLAKE3 extendable output of that
//! 32-byte digest (`blake3::hash(digest)`'s XOF) is read as 1024
//! little-endian `u16` lanes. A table's commitment is the lane-wise sum of
//! its rows' lanes modulo 2^16. Sums commute, so the commitment does not
//! depend on row order or on how rows are split into files or partitions,
//! and two partitions' commitments merge by adding them. Changing,
//! adding or removing any row changes it (finding a collision is as hard as
//! the short-integer-solution problem for 1024 lanes of 16 bits, Bellare–
//! Micciancio 1997; this is the LtHash16 construction of Lewi et al. 2019,
//! "Securing Update Propagation with Homomorphic Hashing", whose parameter
//! estimate for 1024 × 16-bit lanes is at least 200 bits of security). Like
//! every LtHash16, a multiplicity is only seen modulo 2^16: 2^16 copies of one
//! row add nothing (the manifest's row counts still change).
//!
//! **Speed.** This is the gate's hottest code, so it is written out with AVX2
//! and AVX-512 (each tested equal to the `blake3` crate and to a portable
//! fallback; the kernels live in `commit/x86_64.rs`, the one module allowed `unsafe`, and the
//! widest the CPU runs is picked once per process): rows' digests
//! are computed side by side, one 32-bit lane each (sixteen rows with
//! AVX-512, eight with AVX2; rows up to one 1024-byte chunk), and each row's
//! 32 XOF blocks the same way (with AVX-512 as two interleaved vectors of
//! sixteen, which keeps more of the core busy than one), with round 1's
//! quarter-rounds on columns 1–3 (identical for every block) done once per
//! row. Lanes are stored in the order the SIMD expansion produces them, so a
//! row is added with plain vector adds; serialisation converts to canonical
//! order. None of this changes a single output bit.
//!
//! **Schema key.** `blake3::derive_key("consentry-gate row commitment v1",
//! D)` where `D` is the table name, then for each output column in file
//! order its name and its logical type ([`logical_type`]), each followed by
//! a zero byte. The key binds the rows to their columns without repeating
//! names in every row.
//!
//! **Canonical row encoding.** For each column in order, one cell:
//! - null: the byte `0x00`;
//! - otherwise `0x01` then the value:
//!   - integers of any width: 8 bytes little-endian (`u64` for unsigned, two's-complement `i64` for signed);
//!   - floats: the `f64` bit pattern, 8 bytes little-endian;
//!   - booleans: one byte, 0 or 1;
//!   - text: the UTF-8 length as 8 bytes little-endian, then the bytes;
//!   - `Date32`: days since 1970-01-01, `Date64`: milliseconds, timestamps: the stored integer in its unit — all as `i64`, 8 bytes little-endian;
//!   - a list: its length as 8 bytes little-endian, then each element as a cell.
//!
//! Any engine that can compute BLAKE3 can reproduce these bytes.

use crate::GateError;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Schema, TimeUnit};

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::Simd;

/// Off x86-64 there is no SIMD kernel: the portable code runs.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Clone, Copy, Debug)]
enum Simd {}

#[cfg(not(target_arch = "x86_64"))]
impl Simd {
    /// Never a kernel on this architecture.
    fn detected() -> Option<Simd> {
        None
    }

    /// Unreachable: no value of this type exists.
    fn kernel(self) -> Kernel {
        match self {}
    }

    /// Unreachable: no value of this type exists.
    fn xof_add(self, _: &mut [u16; LANES], _: &[u32; 8]) {
        match self {}
    }

    /// Unreachable: no value of this type exists.
    fn keyed_hash16(self, _: &[u32; 8], _: &[&[u8]; BATCH]) -> [[u32; 16]; BATCH] {
        match self {}
    }
}

/// The environment variable that caps the commitment's kernel (`avx512`, `avx2` or `scalar`), so one
/// machine can measure what a narrower one runs; unset or unrecognised, the widest the CPU runs is used.
pub const KERNEL_ENV: &str = "CONSENTRY_LTHASH_KERNEL";

/// A kernel of the row commitment; all compute the same lanes, only their speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// The portable code, on any CPU.
    Scalar,
    /// AVX2: eight rows' digests, then eight output blocks, per vector.
    Avx2,
    /// AVX-512F: sixteen rows' digests, then sixteen output blocks, per vector.
    Avx512,
}

impl Kernel {
    /// The name [`KERNEL_ENV`] takes and benchmarks print.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }

    /// Parses [`Kernel::name`] (`None` for anything else).
    pub fn parse(s: &str) -> Option<Kernel> {
        [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512].into_iter().find(|k| k.name() == s.trim())
    }
}

/// The kernel [`KERNEL_ENV`] asks for, if it names one.
fn requested_kernel() -> Option<Kernel> {
    std::env::var(KERNEL_ENV).ok().as_deref().and_then(Kernel::parse)
}

/// The kernel this process computes commitments with: chosen once, the widest the CPU runs unless
/// [`KERNEL_ENV`] caps it (a cap the CPU cannot reach gives the widest below it).
pub fn kernel() -> Kernel {
    Simd::detected().map_or(Kernel::Scalar, Simd::kernel)
}

/// Lanes of the multiset hash.
pub const LANES: usize = 1024;

/// Output blocks of the 2048-byte expansion (64 bytes each).
const BLOCKS: usize = LANES * 2 / 64;

/// Where canonical lane `c` (lane `c` of the 2048-byte XOF read as little-endian `u16`s) is stored.
///
/// Lanes are kept in the order the 8-way SIMD expansion produces them — for each group of eight
/// output blocks, word `w` of all eight blocks side by side — so a row is added with plain vector
/// adds and no transposition; [`LtHash::to_bytes`] and [`LtHash::from_hex`] convert. Addition is
/// lane-wise, so the storage order changes nothing but speed.
const fn stored(c: usize) -> usize {
    let (block, within) = (c / 32, c % 32);
    let (group, l) = (block / WAYS, block % WAYS);
    let (w, h) = (within / 2, within % 2);
    (group * 16 + w) * 16 + 2 * l + h
}

/// A multiset hash of rows: 1024 lanes of 16 bits, added modulo 2^16.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash(Box<[u16; LANES]>);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", &self.digest_hex()[..16])
    }
}

impl Default for LtHash {
    fn default() -> Self {
        LtHash::new()
    }
}

impl LtHash {
    /// The commitment to the empty multiset (all lanes zero).
    pub fn new() -> LtHash {
        LtHash(Box::new([0u16; LANES]))
    }

    /// Adds one row, given its canonical bytes, under a schema key.
    pub fn add_row(&mut self, key: &[u8; 32], row: &[u8]) {
        self.add_digest(blake3::keyed_hash(key, row).as_bytes());
    }

    /// Adds one element given its 32-byte row digest: the lanes are the digest's 2048-byte BLAKE3 XOF.
    pub fn add_digest(&mut self, digest: &[u8; 32]) {
        self.add_digest_with(Simd::detected(), digest);
    }

    /// [`LtHash::add_digest`] with the kernel the caller already chose.
    fn add_digest_with(&mut self, simd: Option<Simd>, digest: &[u8; 32]) {
        let mut m = [0u32; 8];
        for (w, c) in m.iter_mut().zip(digest.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        xof_add_with(simd, &mut self.0, &m);
    }

    /// Adds another multiset (merging partitions).
    pub fn merge(&mut self, other: &LtHash) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Removes another multiset (e.g. the rows of a withdrawn member).
    pub fn subtract(&mut self, other: &LtHash) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// The lanes as 2048 little-endian bytes, in canonical (XOF) order.
    pub fn to_bytes(&self) -> Vec<u8> {
        (0..LANES).flat_map(|c| self.0[stored(c)].to_le_bytes()).collect()
    }

    /// The lanes as hex (4096 characters): what manifests store, so commitments stay mergeable.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Parses [`LtHash::to_hex`].
    pub fn from_hex(s: &str) -> Option<LtHash> {
        let b = hex::decode(s).ok()?;
        if b.len() != LANES * 2 {
            return None;
        }
        let mut out = LtHash::new();
        for (c, pair) in b.chunks_exact(2).enumerate() {
            out.0[stored(c)] = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Some(out)
    }

    /// BLAKE3 of the lanes, hex: a short name for the commitment.
    pub fn digest_hex(&self) -> String {
        blake3::hash(&self.to_bytes()).to_hex().to_string()
    }
}

const IV: [u32; 8] = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19];
const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
/// The message word order of each of the seven rounds (the permutation applied repeatedly).
const SCHEDULE: [[usize; 16]; 7] = {
    let mut out = [[0usize; 16]; 7];
    let mut k = 0;
    while k < 16 {
        out[0][k] = k;
        k += 1;
    }
    let mut r = 1;
    while r < 7 {
        let mut k = 0;
        while k < 16 {
            out[r][k] = out[r - 1][PERMUTATION[k]];
            k += 1;
        }
        r += 1;
    }
    out
};
/// CHUNK_START | CHUNK_END | ROOT: the flags of a one-block input's output blocks.
const ROOT_FLAGS: u32 = 1 | 2 | 8;
/// Output blocks computed side by side (one SIMD lane each).
const WAYS: usize = 8;

/// One BLAKE3 quarter-round on `WAYS` independent states; `mx`/`my` are shared message words.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
fn g(s: &mut [[u32; WAYS]; 16], a: usize, b: usize, c: usize, d: usize, mx: u32, my: u32) {
    for i in 0..WAYS {
        s[a][i] = s[a][i].wrapping_add(s[b][i]).wrapping_add(mx);
        s[d][i] = (s[d][i] ^ s[a][i]).rotate_right(16);
        s[c][i] = s[c][i].wrapping_add(s[d][i]);
        s[b][i] = (s[b][i] ^ s[c][i]).rotate_right(12);
        s[a][i] = s[a][i].wrapping_add(s[b][i]).wrapping_add(my);
        s[d][i] = (s[d][i] ^ s[a][i]).rotate_right(8);
        s[c][i] = s[c][i].wrapping_add(s[d][i]);
        s[b][i] = (s[b][i] ^ s[c][i]).rotate_right(7);
    }
}

/// Adds the 2048-byte BLAKE3 XOF of a 32-byte input (its eight message words; the block's other eight are
/// zero, which the SIMD kernels exploit by adding nothing for them) to the lanes (stored order).
///
/// A one-block input's output block `t` is `compress(IV, block, counter = t,
/// len = 32, CHUNK_START | CHUNK_END | ROOT)`; the 32 blocks are independent,
/// so they are computed `WAYS` at a time. Equal to `blake3::hash(..).finalize_xof()`
/// (tested); written out because the crate's XOF runs one block at a time
/// without AVX-512, and this loop is the gate's hottest.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
fn xof_add(acc: &mut [u16; LANES], digest: &[u32; 8]) {
    let mut m = [0u32; 16];
    m[..8].copy_from_slice(digest);
    for group in 0..(BLOCKS / WAYS) {
        let mut s = [[0u32; WAYS]; 16];
        for i in 0..8 {
            s[i] = [IV[i]; WAYS];
        }
        for i in 0..4 {
            s[8 + i] = [IV[i]; WAYS];
        }
        for (l, c) in s[12].iter_mut().enumerate() {
            *c = (group * WAYS + l) as u32;
        }
        s[13] = [0; WAYS];
        s[14] = [32; WAYS];
        s[15] = [ROOT_FLAGS; WAYS];
        for sc in &SCHEDULE {
            g(&mut s, 0, 4, 8, 12, m[sc[0]], m[sc[1]]);
            g(&mut s, 1, 5, 9, 13, m[sc[2]], m[sc[3]]);
            g(&mut s, 2, 6, 10, 14, m[sc[4]], m[sc[5]]);
            g(&mut s, 3, 7, 11, 15, m[sc[6]], m[sc[7]]);
            g(&mut s, 0, 5, 10, 15, m[sc[8]], m[sc[9]]);
            g(&mut s, 1, 6, 11, 12, m[sc[10]], m[sc[11]]);
            g(&mut s, 2, 7, 8, 13, m[sc[12]], m[sc[13]]);
            g(&mut s, 3, 4, 9, 14, m[sc[14]], m[sc[15]]);
        }
        for w in 0..16 {
            let base = (group * 16 + w) * 16;
            for l in 0..WAYS {
                let word = if w < 8 { s[w][l] ^ s[w + 8][l] } else { s[w][l] ^ IV[w - 8] };
                acc[base + 2 * l] = acc[base + 2 * l].wrapping_add(word as u16);
                acc[base + 2 * l + 1] = acc[base + 2 * l + 1].wrapping_add((word >> 16) as u16);
            }
        }
    }
}

/// Rows gathered before digesting: one AVX-512 pass, or two AVX2 ones.
const BATCH: usize = 16;
/// The longest row encoding digested side by side: one BLAKE3 chunk. Longer rows go one by one.
const CHUNK_LEN: usize = 1024;

/// Adds rows `buf[ends[k - 1]..ends[k]]` (at most [`BATCH`] of them) under `key`, a full batch of
/// short rows side by side with `simd` when there is one.
fn add_rows(simd: Option<Simd>, acc: &mut LtHash, key: &[u8; 32], buf: &[u8], ends: &[usize]) {
    let row = |k: usize| &buf[if k == 0 { 0 } else { ends[k - 1] }..ends[k]];
    if let Some(simd) = simd
        && ends.len() == BATCH
        && (0..BATCH).all(|k| row(k).len() <= CHUNK_LEN)
    {
        let mut kw = [0u32; 8];
        for (w, c) in kw.iter_mut().zip(key.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        let rows: [&[u8]; BATCH] = std::array::from_fn(row);
        for m in &simd.keyed_hash16(&kw, &rows) {
            let digest: [u32; 8] = std::array::from_fn(|k| m[k]);
            simd.xof_add(&mut acc.0, &digest);
        }
        return;
    }
    for k in 0..ends.len() {
        acc.add_digest_with(simd, blake3::keyed_hash(key, row(k)).as_bytes());
    }
}

/// Adds a digest's expansion with `simd` when there is one, else portably (all give the same lanes).
#[inline]
fn xof_add_with(simd: Option<Simd>, acc: &mut [u16; LANES], m: &[u32; 8]) {
    match simd {
        Some(simd) => simd.xof_add(acc, m),
        None => xof_add(acc, m),
    }
}

/// The logical type name used in the schema key; `None` for unsupported types.
pub fn logical_type(dt: &DataType) -> Option<String> {
    Some(match dt {
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "uint".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "int".into(),
        DataType::Float32 | DataType::Float64 => "float".into(),
        DataType::Boolean => "bool".into(),
        DataType::Utf8 | DataType::LargeUtf8 => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Date64 => "date_ms".into(),
        DataType::Timestamp(unit, _) => format!(
            "timestamp_{}",
            match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            }
        ),
        DataType::List(f) | DataType::LargeList(f) => format!("list<{}>", logical_type(f.data_type())?),
        _ => return None,
    })
}

/// True when the gate can commit to (and so pass) a column of this type.
pub fn supported(dt: &DataType) -> bool {
    match dt {
        DataType::List(f) | DataType::LargeList(f) => {
            !matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_)) && supported(f.data_type())
        }
        other => logical_type(other).is_some(),
    }
}

/// The schema key of a table's output (see the module docs).
pub fn schema_key(table: &str, schema: &Schema) -> Result<[u8; 32], GateError> {
    let mut d = Vec::new();
    d.extend_from_slice(table.as_bytes());
    d.push(0);
    for f in schema.fields() {
        let t = logical_type(f.data_type()).ok_or_else(|| {
            GateError::Invalid(format!("table `{table}`: column `{}` has unsupported type {}", f.name(), f.data_type()))
        })?;
        d.extend_from_slice(f.name().as_bytes());
        d.push(0);
        d.extend_from_slice(t.as_bytes());
        d.push(0);
    }
    Ok(blake3::derive_key("consentry-gate row commitment v1", &d))
}

/// A column viewed through its concrete type, downcast once per batch.
enum Cell<'a> {
    U8(&'a arrow_array::UInt8Array),
    U16(&'a arrow_array::UInt16Array),
    U32(&'a arrow_array::UInt32Array),
    U64(&'a arrow_array::UInt64Array),
    I8(&'a arrow_array::Int8Array),
    I16(&'a arrow_array::Int16Array),
    I32(&'a [i32], Option<&'a NullBuffer>),
    I64(&'a [i64], Option<&'a NullBuffer>),
    F32(&'a arrow_array::Float32Array),
    F64(&'a arrow_array::Float64Array),
    Bool(&'a arrow_array::BooleanArray),
    Str(&'a arrow_array::StringArray),
    /// Text read as views (the gate reads `Utf8` this way): encoded exactly as `Str`.
    View(&'a arrow_array::StringViewArray),
    LStr(&'a arrow_array::LargeStringArray),
    List(&'a arrow_array::ListArray, Box<Cell<'a>>),
    LList(&'a arrow_array::LargeListArray, Box<Cell<'a>>),
}

fn view(a: &ArrayRef) -> Option<Cell<'_>> {
    Some(match a.data_type() {
        DataType::UInt8 => Cell::U8(a.as_primitive::<UInt8Type>()),
        DataType::UInt16 => Cell::U16(a.as_primitive::<UInt16Type>()),
        DataType::UInt32 => Cell::U32(a.as_primitive::<UInt32Type>()),
        DataType::UInt64 => Cell::U64(a.as_primitive::<UInt64Type>()),
        DataType::Int8 => Cell::I8(a.as_primitive::<Int8Type>()),
        DataType::Int16 => Cell::I16(a.as_primitive::<Int16Type>()),
        DataType::Int32 => raw32(a.as_primitive::<Int32Type>()),
        DataType::Int64 => raw64(a.as_primitive::<Int64Type>()),
        DataType::Float32 => Cell::F32(a.as_primitive::<Float32Type>()),
        DataType::Float64 => Cell::F64(a.as_primitive::<Float64Type>()),
        DataType::Boolean => Cell::Bool(a.as_boolean()),
        DataType::Utf8 => Cell::Str(a.as_string::<i32>()),
        DataType::Utf8View => Cell::View(a.as_string_view()),
        DataType::LargeUtf8 => Cell::LStr(a.as_string::<i64>()),
        DataType::Date32 => raw32(a.as_primitive::<Date32Type>()),
        DataType::Date64 => raw64(a.as_primitive::<Date64Type>()),
        DataType::Timestamp(TimeUnit::Second, _) => raw64(a.as_primitive::<TimestampSecondType>()),
        DataType::Timestamp(TimeUnit::Millisecond, _) => raw64(a.as_primitive::<TimestampMillisecondType>()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => raw64(a.as_primitive::<TimestampMicrosecondType>()),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => raw64(a.as_primitive::<TimestampNanosecondType>()),
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            Cell::List(l, Box::new(view(l.values())?))
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            Cell::LList(l, Box::new(view(l.values())?))
        }
        _ => return None,
    })
}

fn raw32<T: ArrowPrimitiveType<Native = i32>>(a: &arrow_array::PrimitiveArray<T>) -> Cell<'_> {
    Cell::I32(a.values(), a.nulls())
}

fn raw64<T: ArrowPrimitiveType<Native = i64>>(a: &arrow_array::PrimitiveArray<T>) -> Cell<'_> {
    Cell::I64(a.values(), a.nulls())
}

impl Cell<'_> {
    fn is_null(&self, i: usize) -> bool {
        match self {
            Cell::U8(a) => a.is_null(i),
            Cell::U16(a) => a.is_null(i),
            Cell::U32(a) => a.is_null(i),
            Cell::U64(a) => a.is_null(i),
            Cell::I8(a) => a.is_null(i),
            Cell::I16(a) => a.is_null(i),
            Cell::I32(_, n) | Cell::I64(_, n) => n.is_some_and(|n| n.is_null(i)),
            Cell::F32(a) => a.is_null(i),
            Cell::F64(a) => a.is_null(i),
            Cell::Bool(a) => a.is_null(i),
            Cell::Str(a) => a.is_null(i),
            Cell::View(a) => a.is_null(i),
            Cell::LStr(a) => a.is_null(i),
            Cell::List(a, _) => a.is_null(i),
            Cell::LList(a, _) => a.is_null(i),
        }
    }

    /// Appends cell `i` as the module docs define it. A present fixed-width value goes in as one 9-byte
    /// copy and text after one reservation: the encoding runs for every committed row.
    fn encode(&self, i: usize, out: &mut Vec<u8>) {
        if self.is_null(i) {
            out.push(0);
            return;
        }
        match self {
            Cell::U8(a) => word(u64::from(a.value(i)).to_le_bytes(), out),
            Cell::U16(a) => word(u64::from(a.value(i)).to_le_bytes(), out),
            Cell::U32(a) => word(u64::from(a.value(i)).to_le_bytes(), out),
            Cell::U64(a) => word(a.value(i).to_le_bytes(), out),
            Cell::I8(a) => word(i64::from(a.value(i)).to_le_bytes(), out),
            Cell::I16(a) => word(i64::from(a.value(i)).to_le_bytes(), out),
            Cell::I32(v, _) => word(i64::from(v[i]).to_le_bytes(), out),
            Cell::I64(v, _) => word(v[i].to_le_bytes(), out),
            Cell::F32(a) => word(f64::from(a.value(i)).to_bits().to_le_bytes(), out),
            Cell::F64(a) => word(a.value(i).to_bits().to_le_bytes(), out),
            Cell::Bool(a) => out.extend_from_slice(&[1, u8::from(a.value(i))]),
            Cell::Str(a) => text(a.value(i), out),
            Cell::View(a) => text(a.value(i), out),
            Cell::LStr(a) => text(a.value(i), out),
            Cell::List(a, inner) => {
                let o = a.value_offsets();
                let (s, e) = (o[i] as usize, o[i + 1] as usize);
                word(((e - s) as u64).to_le_bytes(), out);
                for j in s..e {
                    inner.encode(j, out);
                }
            }
            Cell::LList(a, inner) => {
                let o = a.value_offsets();
                let (s, e) = (o[i] as usize, o[i + 1] as usize);
                word(((e - s) as u64).to_le_bytes(), out);
                for j in s..e {
                    inner.encode(j, out);
                }
            }
        }
    }
}

/// A present 8-byte cell (or a list's length): `0x01` then the bytes.
#[inline(always)]
fn word(v: [u8; 8], out: &mut Vec<u8>) {
    let mut cell = [1u8; 9];
    cell[1..].copy_from_slice(&v);
    out.extend_from_slice(&cell);
}

/// A present text cell: `0x01`, the UTF-8 length as 8 bytes little-endian, the bytes.
#[inline(always)]
fn text(s: &str, out: &mut Vec<u8>) {
    out.reserve(9 + s.len());
    word((s.len() as u64).to_le_bytes(), out);
    out.extend_from_slice(s.as_bytes());
}

/// Adds every row of `batch` to `acc` under `key`.
pub fn add_batch(acc: &mut LtHash, key: &[u8; 32], batch: &RecordBatch) -> Result<(), GateError> {
    let cells: Vec<Cell<'_>> = batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(c, f)| {
            view(c)
                .ok_or_else(|| GateError::Invalid(format!("column `{}`: unsupported type {}", f.name(), f.data_type())))
        })
        .collect::<Result<_, _>>()?;
    let simd = Simd::detected();
    let mut buf = Vec::with_capacity(BATCH * 256);
    let mut ends = Vec::with_capacity(BATCH);
    for i in 0..batch.num_rows() {
        for c in &cells {
            c.encode(i, &mut buf);
        }
        ends.push(buf.len());
        if ends.len() == BATCH {
            add_rows(simd, acc, key, &buf, &ends);
            buf.clear();
            ends.clear();
        }
    }
    add_rows(simd, acc, key, &buf, &ends);
    Ok(())
}

/// The commitment of one batch (a convenience for tests and engines).
pub fn commit_batch(table: &str, batch: &RecordBatch) -> Result<LtHash, GateError> {
    let key = schema_key(table, &batch.schema())?;
    let mut acc = LtHash::new();
    add_batch(&mut acc, &key, batch)?;
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn batch(rows: &[(i64, Option<String>)]) -> RecordBatch {
        let a = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
        let b = StringArray::from_iter(rows.iter().map(|r| r.1.as_deref()));
        RecordBatch::try_from_iter(vec![("a", Arc::new(a) as ArrayRef), ("b", Arc::new(b) as ArrayRef)]).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn independent_of_order_and_partitioning(
            rows in prop::collection::vec((any::<i64>(), prop::option::of("[a-z]{0,6}")), 0..40),
            cut in any::<prop::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let whole = commit_batch("t", &batch(&rows)).unwrap();
            // Shuffled deterministically.
            let mut shuffled = rows.clone();
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            prop_assert_eq!(&commit_batch("t", &batch(&shuffled)).unwrap(), &whole);
            // Split into two partitions and merged.
            let k = if n == 0 { 0 } else { cut.index(n + 1) };
            let mut left = commit_batch("t", &batch(&shuffled[..k])).unwrap();
            left.merge(&commit_batch("t", &batch(&shuffled[k..])).unwrap());
            prop_assert_eq!(&left, &whole);
            // Subtracting a part gives the rest.
            let mut rest = whole.clone();
            rest.subtract(&commit_batch("t", &batch(&shuffled[..k])).unwrap());
            prop_assert_eq!(rest, commit_batch("t", &batch(&shuffled[k..])).unwrap());
        }

        #[test]
        fn sensitive_to_any_change(
            rows in prop::collection::vec((any::<i64>(), prop::option::of("[a-z]{0,6}")), 1..20),
            which in any::<prop::sample::Index>(),
            change in 0u8..4,
        ) {
            let whole = commit_batch("t", &batch(&rows)).unwrap();
            let mut other = rows.clone();
            let i = which.index(rows.len());
            match change {
                0 => other[i].0 = other[i].0.wrapping_add(1),
                1 => other[i].1 = match &other[i].1 { None => Some(String::new()), Some(_) => None },
                2 => { other.remove(i); }
                _ => other.push(rows[i].clone()),
            }
            prop_assert_ne!(&commit_batch("t", &batch(&other)).unwrap(), &whole);
            // The table name is bound in too.
            prop_assert_ne!(commit_batch("u", &batch(&rows)).unwrap(), whole);
        }
    }

    #[test]
    fn expansion_is_the_blake3_xof() {
        for seed in 0..20u8 {
            let digest = *blake3::hash(&[seed; 5]).as_bytes();
            let mut want = [0u8; LANES * 2];
            blake3::Hasher::new().update(&digest).finalize_xof().fill(&mut want);
            let mut got = LtHash::new();
            got.add_digest(&digest);
            assert_eq!(got.to_bytes(), want.to_vec());
            let mut portable = [0u16; LANES];
            let mut m = [0u32; 8];
            for (w, c) in m.iter_mut().zip(digest.chunks_exact(4)) {
                *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            xof_add(&mut portable, &m);
            assert_eq!(&portable, got.0.as_ref());
        }
    }

    /// Every SIMD kernel this CPU runs adds exactly the portable lanes (the dispatcher picks only one).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_kernel_adds_the_same_lanes() {
        let kernels: Vec<(&str, Simd)> = Simd::supported().into_iter().map(|k| (k.name(), k)).collect();
        if kernels.is_empty() {
            eprintln!("no SIMD kernel runs on this CPU; only the portable one is tested");
        }
        let mut want = [0u16; LANES];
        let mut got = vec![[0u16; LANES]; kernels.len()];
        for seed in 0..50u32 {
            let m: [u32; 8] = std::array::from_fn(|k| seed.wrapping_mul(0x9E37_79B9) ^ (k as u32 * 7919));
            xof_add(&mut want, &m);
            for ((name, f), acc) in kernels.iter().zip(got.iter_mut()) {
                f.xof_add(acc, &m);
                assert_eq!(acc, &want, "{name}, after {} digests", seed + 1);
            }
        }
    }

    /// The commitment as the module docs define it, with nothing but the `blake3` crate.
    fn reference(table: &str, b: &RecordBatch) -> Vec<u8> {
        let key = schema_key(table, &b.schema()).unwrap();
        let cells: Vec<Cell<'_>> = b.columns().iter().map(|c| view(c).unwrap()).collect();
        let mut lanes = [0u16; LANES];
        for i in 0..b.num_rows() {
            let mut row = Vec::new();
            for c in &cells {
                c.encode(i, &mut row);
            }
            let digest = blake3::keyed_hash(&key, &row);
            let mut xof = [0u8; LANES * 2];
            blake3::Hasher::new().update(digest.as_bytes()).finalize_xof().fill(&mut xof);
            for (lane, pair) in lanes.iter_mut().zip(xof.chunks_exact(2)) {
                *lane = lane.wrapping_add(u16::from_le_bytes([pair[0], pair[1]]));
            }
        }
        lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    #[test]
    fn batches_equal_the_reference_definition() {
        // 37 rows: batches of eight and a remainder; some rows longer than one chunk.
        let rows: Vec<(i64, Option<String>)> = (0..37)
            .map(|i| {
                (i * 1_000_003 - 17, (i % 5 != 0).then(|| "x".repeat(if i % 7 == 0 { 1500 } else { i as usize * 3 })))
            })
            .collect();
        let b = batch(&rows);
        assert_eq!(commit_batch("t", &b).unwrap().to_bytes(), reference("t", &b));
    }

    #[test]
    fn storage_order_is_a_permutation() {
        let mut seen = [false; LANES];
        for c in 0..LANES {
            assert!(!std::mem::replace(&mut seen[stored(c)], true));
        }
    }

    #[test]
    fn rows_side_by_side_equal_rows_one_by_one() {
        let key = [3u8; 32];
        // Lengths around block and chunk edges, including empty rows; the over-long ones last, so
        // the first windows take the side-by-side path and the last ones the row-by-row one.
        let lens = [0usize, 1, 63, 64, 65, 127, 128, 500, 1023, 1024, 7, 200, 64, 9, 33, 191, 192, 2, 640, 1025, 3000];
        let rows: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect()).collect();
        for start in 0..rows.len() - BATCH {
            let mut buf = Vec::new();
            let mut ends = Vec::new();
            let mut want = LtHash::new();
            for r in &rows[start..start + BATCH] {
                buf.extend_from_slice(r);
                ends.push(buf.len());
                want.add_row(&key, r);
            }
            let mut got = LtHash::new();
            add_rows(Simd::detected(), &mut got, &key, &buf, &ends);
            assert_eq!(got, want, "rows {start}..");
        }
        // Each digest kernel this CPU runs, on rows no longer than a chunk (the dispatcher picks one).
        #[cfg(target_arch = "x86_64")]
        {
            let mut kw = [0u32; 8];
            for (w, c) in kw.iter_mut().zip(key.chunks_exact(4)) {
                *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            let short: Vec<&[u8]> = rows.iter().map(Vec::as_slice).filter(|r| r.len() <= CHUNK_LEN).collect();
            let sixteen: [&[u8]; BATCH] = std::array::from_fn(|k| short[k]);
            let got: Vec<(&str, Vec<[u32; 16]>)> =
                Simd::supported().into_iter().map(|k| (k.name(), k.keyed_hash16(&kw, &sixteen).to_vec())).collect();
            for (name, digests) in &got {
                for (k, words) in digests.iter().enumerate() {
                    let want = blake3::keyed_hash(&key, sixteen[k]);
                    let bytes: Vec<u8> = words[..8].iter().flat_map(|w| w.to_le_bytes()).collect();
                    assert_eq!(bytes, want.as_bytes().to_vec(), "{name}, row {k}");
                    assert!(words[8..].iter().all(|w| *w == 0));
                }
            }
        }
    }

    /// Text read as views (as the gate reads `Utf8`) commits exactly as the strings it views.
    #[test]
    fn views_commit_as_their_strings() {
        let rows: Vec<(i64, Option<String>)> =
            (0..40).map(|i| (i, (i % 6 != 0).then(|| "y".repeat(i as usize * 3)))).collect();
        let b = batch(&rows);
        let views = arrow_cast::cast(b.column(1), &DataType::Utf8View).unwrap();
        let v = RecordBatch::try_from_iter(vec![("a", b.column(0).clone()), ("b", views)]).unwrap();
        assert_eq!(v.column(1).data_type(), &DataType::Utf8View);
        let key = schema_key("t", &b.schema()).unwrap();
        let (mut x, mut y) = (LtHash::new(), LtHash::new());
        add_batch(&mut x, &key, &b).unwrap();
        add_batch(&mut y, &key, &v).unwrap();
        assert_eq!(x, y);
    }

    /// Kernel names round-trip, and the kernel in use is one this CPU runs, no wider than any cap asked for.
    #[test]
    fn kernels_are_named_and_capped() {
        for k in [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512] {
            assert_eq!(Kernel::parse(k.name()), Some(k));
        }
        assert_eq!(Kernel::parse("avx1024"), None);
        let k = kernel();
        if let Some(cap) = requested_kernel() {
            assert!(k <= cap, "{k:?} above the cap {cap:?}");
        }
        #[cfg(target_arch = "x86_64")]
        assert!(k == Kernel::Scalar || Simd::supported().iter().any(|s| s.kernel() == k));
    }

    #[test]
    fn hex_round_trip_and_empty() {
        let c = commit_batch("t", &batch(&[(1, Some("x".into()))])).unwrap();
        assert_eq!(LtHash::from_hex(&c.to_hex()), Some(c));
        assert_eq!(commit_batch("t", &batch(&[])).unwrap(), LtHash::new());
        assert!(LtHash::from_hex("00").is_none());
    }
}
