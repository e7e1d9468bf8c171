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
//! fallback; the widest the CPU runs is picked at run time): rows' digests
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
        let mut m = [0u32; 16];
        for (w, c) in m.iter_mut().zip(digest.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        xof_add_fastest(&mut self.0, &m);
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

/// Adds the 2048-byte BLAKE3 XOF of a 32-byte input (as message words, zero-padded) to the lanes (stored order).
///
/// A one-block input's output block `t` is `compress(IV, block, counter = t,
/// len = 32, CHUNK_START | CHUNK_END | ROOT)`; the 32 blocks are independent,
/// so they are computed `WAYS` at a time. Equal to `blake3::hash(..).finalize_xof()`
/// (tested); written out because the crate's XOF runs one block at a time
/// without AVX-512, and this loop is the gate's hottest.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
fn xof_add(acc: &mut [u16; LANES], m: &[u32; 16]) {
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

/// The `_mm256_shuffle_epi8` masks that rotate every 32-bit lane right by 16 and by 8 bits.
#[cfg(target_arch = "x86_64")]
macro_rules! rot_masks_avx2 {
    () => {
        (
            _mm256_set_epi8(
                13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0,
                3, 2,
            ),
            _mm256_set_epi8(
                12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1, 12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3,
                2, 1,
            ),
        )
    };
}

/// One BLAKE3 quarter-round (G) on words `$a $b $c $d` of eight states side by side (`$s: [__m256i; 16]`),
/// with the masks of [`rot_masks_avx2`]. Only for use inside AVX2 functions.
#[cfg(target_arch = "x86_64")]
macro_rules! g_avx2 {
    ($s:expr, $rot:expr, $a:expr, $b:expr, $c:expr, $d:expr, $mx:expr, $my:expr) => {{
        let (rot16, rot8) = $rot;
        $s[$a] = _mm256_add_epi32(_mm256_add_epi32($s[$a], $s[$b]), $mx);
        $s[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($s[$d], $s[$a]), rot16);
        $s[$c] = _mm256_add_epi32($s[$c], $s[$d]);
        let t = _mm256_xor_si256($s[$b], $s[$c]);
        $s[$b] = _mm256_or_si256(_mm256_srli_epi32(t, 12), _mm256_slli_epi32(t, 20));
        $s[$a] = _mm256_add_epi32(_mm256_add_epi32($s[$a], $s[$b]), $my);
        $s[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($s[$d], $s[$a]), rot8);
        $s[$c] = _mm256_add_epi32($s[$c], $s[$d]);
        let t = _mm256_xor_si256($s[$b], $s[$c]);
        $s[$b] = _mm256_or_si256(_mm256_srli_epi32(t, 7), _mm256_slli_epi32(t, 25));
    }};
}

/// One BLAKE3 quarter-round (G) on words `$a $b $c $d` of sixteen states side by side, for each
/// of the state arrays listed (`[s]` or `[s, t]`, each a `[__m512i; 16]`), step by step, so that
/// several arrays' dependency chains overlap. AVX-512 rotates natively. Only for use inside
/// AVX-512F functions.
#[cfg(target_arch = "x86_64")]
macro_rules! g_avx512 {
    ([$($s:ident),+], $a:expr, $b:expr, $c:expr, $d:expr, $mx:expr, $my:expr) => {{
        $( $s[$a] = _mm512_add_epi32(_mm512_add_epi32($s[$a], $s[$b]), $mx); )+
        $( $s[$d] = _mm512_ror_epi32::<16>(_mm512_xor_si512($s[$d], $s[$a])); )+
        $( $s[$c] = _mm512_add_epi32($s[$c], $s[$d]); )+
        $( $s[$b] = _mm512_ror_epi32::<12>(_mm512_xor_si512($s[$b], $s[$c])); )+
        $( $s[$a] = _mm512_add_epi32(_mm512_add_epi32($s[$a], $s[$b]), $my); )+
        $( $s[$d] = _mm512_ror_epi32::<8>(_mm512_xor_si512($s[$d], $s[$a])); )+
        $( $s[$c] = _mm512_add_epi32($s[$c], $s[$d]); )+
        $( $s[$b] = _mm512_ror_epi32::<7>(_mm512_xor_si512($s[$b], $s[$c])); )+
    }};
}

/// The seven BLAKE3 rounds on states side by side (one per 32-bit lane): `$s` is a local array of
/// sixteen vectors (or, for [`g_avx512`], a bracketed list of them), `$mv` the sixteen message word vectors, `$g[..]` the quarter-round macro of
/// the instruction set with its leading arguments. A macro, fully unrolled with constant message
/// indices, so the state stays in registers (a function would be called, not inlined, across
/// `target_feature` boundaries). With `first: columns_1_to_3_done`, the caller has already
/// applied round 1's quarter-rounds on columns 1, 2 and 3.
#[cfg(target_arch = "x86_64")]
macro_rules! rounds_simd {
    ($g:ident[$($x:expr),*], $s:tt, $mv:ident, first: $first:ident) => {{
        macro_rules! g {
            ($a:expr, $b:expr, $c:expr, $d:expr, $mx:expr, $my:expr) => {
                $g!($s, $($x,)* $a, $b, $c, $d, $mx, $my)
            };
        }
        macro_rules! round {
            ($r:expr) => {
                g!(0, 4, 8, 12, $mv[SCHEDULE[$r][0]], $mv[SCHEDULE[$r][1]]);
                g!(1, 5, 9, 13, $mv[SCHEDULE[$r][2]], $mv[SCHEDULE[$r][3]]);
                g!(2, 6, 10, 14, $mv[SCHEDULE[$r][4]], $mv[SCHEDULE[$r][5]]);
                g!(3, 7, 11, 15, $mv[SCHEDULE[$r][6]], $mv[SCHEDULE[$r][7]]);
                g!(0, 5, 10, 15, $mv[SCHEDULE[$r][8]], $mv[SCHEDULE[$r][9]]);
                g!(1, 6, 11, 12, $mv[SCHEDULE[$r][10]], $mv[SCHEDULE[$r][11]]);
                g!(2, 7, 8, 13, $mv[SCHEDULE[$r][12]], $mv[SCHEDULE[$r][13]]);
                g!(3, 4, 9, 14, $mv[SCHEDULE[$r][14]], $mv[SCHEDULE[$r][15]]);
            };
        }
        macro_rules! first {
            (all) => {
                round!(0);
            };
            (columns_1_to_3_done) => {
                g!(0, 4, 8, 12, $mv[0], $mv[1]);
                g!(0, 5, 10, 15, $mv[8], $mv[9]);
                g!(1, 6, 11, 12, $mv[10], $mv[11]);
                g!(2, 7, 8, 13, $mv[12], $mv[13]);
                g!(3, 4, 9, 14, $mv[14], $mv[15]);
            };
        }
        first!($first);
        round!(1);
        round!(2);
        round!(3);
        round!(4);
        round!(5);
        round!(6);
    }};
}

/// Rows whose digests the AVX2 path computes side by side.
const ROWS: usize = 8;
/// Rows gathered before digesting: one AVX-512 pass, or two AVX2 ones.
const BATCH: usize = 2 * ROWS;
/// The longest row encoding digested side by side: one BLAKE3 chunk. Longer rows go one by one.
const CHUNK_LEN: usize = 1024;
/// BLAKE3 flags: CHUNK_START, CHUNK_END, ROOT, KEYED_HASH.
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const ROOT: u32 = 8;
const KEYED_HASH: u32 = 16;

/// Block `j` of a one-chunk row of `blocks` blocks, as a keyed hash compresses it: its 64 bytes
/// (zero-padded through `pad` when short), its length and its flags.
fn chunk_block<'a>(row: &'a [u8], j: usize, blocks: usize, pad: &'a mut [u8; 64]) -> (&'a [u8], u32, u32) {
    let start = j * 64;
    let end = row.len().min(start + 64);
    let flags = KEYED_HASH | if j == 0 { CHUNK_START } else { 0 } | if j + 1 == blocks { CHUNK_END | ROOT } else { 0 };
    let src: &'a [u8] = if end - start == 64 {
        &row[start..end]
    } else {
        pad[..end - start].copy_from_slice(&row[start..end]);
        pad
    };
    (src, (end - start) as u32, flags)
}

/// `blake3::keyed_hash(key, row)` of eight rows of at most [`CHUNK_LEN`] bytes, as digest words.
///
/// Each row is one chunk: blocks compressed in turn from the key, the first flagged
/// CHUNK_START, the last CHUNK_END | ROOT with its true length (zero-padded); rows with fewer
/// blocks keep their chaining value once finished. Tested equal to the `blake3` crate.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
fn keyed_hash8_avx2(key: &[u32; 8], rows: &[&[u8]; ROWS]) -> [[u32; 16]; ROWS] {
    use std::arch::x86_64::*;
    let blocks: [usize; ROWS] = std::array::from_fn(|l| rows[l].len().div_ceil(64).max(1));
    let most = blocks.iter().copied().max().unwrap_or(1);
    let rot = rot_masks_avx2!();
    let mut cv: [__m256i; 8] = std::array::from_fn(|i| _mm256_set1_epi32(key[i] as i32));
    for j in 0..most {
        // Block j of each row as two vectors (words 0-7, 8-15): straight from the row when whole,
        // else through a zero-padded copy; then transposed to one vector per message word.
        let mut lo = [_mm256_setzero_si256(); ROWS];
        let mut hi = [_mm256_setzero_si256(); ROWS];
        let mut len = [0u32; ROWS];
        let mut flags = [0u32; ROWS];
        let mut live = [0i32; ROWS];
        for l in 0..ROWS {
            if j >= blocks[l] {
                continue;
            }
            let mut pad = [0u8; 64];
            let src;
            (src, len[l], flags[l]) = chunk_block(rows[l], j, blocks[l], &mut pad);
            // SAFETY: `src` holds exactly 64 bytes; unaligned loads.
            unsafe {
                lo[l] = _mm256_loadu_si256(src.as_ptr().cast());
                hi[l] = _mm256_loadu_si256(src.as_ptr().add(32).cast());
            }
            live[l] = -1;
        }
        transpose8(&mut lo);
        transpose8(&mut hi);
        let mv: [__m256i; 16] = std::array::from_fn(|w| if w < 8 { lo[w] } else { hi[w - 8] });
        // SAFETY: every array read holds exactly 8 u32 / i32 (32 bytes); unaligned loads.
        let load = |a: &[u32; ROWS]| unsafe { _mm256_loadu_si256(a.as_ptr().cast()) };
        // SAFETY: as above.
        let live = unsafe { _mm256_loadu_si256(live.as_ptr().cast()) };
        let mut s = [_mm256_setzero_si256(); 16];
        s[..8].copy_from_slice(&cv);
        for i in 0..4 {
            s[8 + i] = _mm256_set1_epi32(IV[i] as i32);
        }
        s[14] = load(&len);
        s[15] = load(&flags);
        rounds_simd!(g_avx2[rot], s, mv, first: all);
        for i in 0..8 {
            cv[i] = _mm256_blendv_epi8(cv[i], _mm256_xor_si256(s[i], s[i + 8]), live);
        }
    }
    let mut words = [[0u32; ROWS]; 8];
    for i in 0..8 {
        // SAFETY: each `words` row holds 8 u32 (32 bytes); unaligned store.
        unsafe { _mm256_storeu_si256(words[i].as_mut_ptr().cast(), cv[i]) };
    }
    row_digests(words)
}

/// Per row, its digest words (then zeros, as message words of the XOF's one block) from the
/// chaining-value words of `N` rows side by side.
#[cfg(target_arch = "x86_64")]
fn row_digests<const N: usize>(words: [[u32; N]; 8]) -> [[u32; 16]; N] {
    std::array::from_fn(|l| std::array::from_fn(|i| if i < 8 { words[i][l] } else { 0 }))
}

/// Transposes an 8×8 matrix of `u32`, one row per vector (as in the BLAKE3 reference AVX2 code).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose8(v: &mut [std::arch::x86_64::__m256i; 8]) {
    use std::arch::x86_64::*;
    let ab_0145 = _mm256_unpacklo_epi32(v[0], v[1]);
    let ab_2367 = _mm256_unpackhi_epi32(v[0], v[1]);
    let cd_0145 = _mm256_unpacklo_epi32(v[2], v[3]);
    let cd_2367 = _mm256_unpackhi_epi32(v[2], v[3]);
    let ef_0145 = _mm256_unpacklo_epi32(v[4], v[5]);
    let ef_2367 = _mm256_unpackhi_epi32(v[4], v[5]);
    let gh_0145 = _mm256_unpacklo_epi32(v[6], v[7]);
    let gh_2367 = _mm256_unpackhi_epi32(v[6], v[7]);
    let abcd_04 = _mm256_unpacklo_epi64(ab_0145, cd_0145);
    let abcd_15 = _mm256_unpackhi_epi64(ab_0145, cd_0145);
    let abcd_26 = _mm256_unpacklo_epi64(ab_2367, cd_2367);
    let abcd_37 = _mm256_unpackhi_epi64(ab_2367, cd_2367);
    let efgh_04 = _mm256_unpacklo_epi64(ef_0145, gh_0145);
    let efgh_15 = _mm256_unpackhi_epi64(ef_0145, gh_0145);
    let efgh_26 = _mm256_unpacklo_epi64(ef_2367, gh_2367);
    let efgh_37 = _mm256_unpackhi_epi64(ef_2367, gh_2367);
    v[0] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x20);
    v[1] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x20);
    v[2] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x20);
    v[3] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x20);
    v[4] = _mm256_permute2x128_si256(abcd_04, efgh_04, 0x31);
    v[5] = _mm256_permute2x128_si256(abcd_15, efgh_15, 0x31);
    v[6] = _mm256_permute2x128_si256(abcd_26, efgh_26, 0x31);
    v[7] = _mm256_permute2x128_si256(abcd_37, efgh_37, 0x31);
}

/// Adds rows `buf[ends[k - 1]..ends[k]]` (at most [`BATCH`] of them) under `key`.
fn add_rows(acc: &mut LtHash, key: &[u8; 32], buf: &[u8], ends: &[usize]) {
    let row = |k: usize| &buf[if k == 0 { 0 } else { ends[k - 1] }..ends[k]];
    #[cfg(target_arch = "x86_64")]
    {
        if ends.len() == BATCH && (0..BATCH).all(|k| row(k).len() <= CHUNK_LEN) {
            let mut kw = [0u32; 8];
            for (w, c) in kw.iter_mut().zip(key.chunks_exact(4)) {
                *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            let rows: [&[u8]; BATCH] = std::array::from_fn(row);
            let digests: Option<[[u32; 16]; BATCH]> = if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F, checked just above.
                Some(unsafe { keyed_hash16_avx512(&kw, &rows) })
            } else if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                Some(unsafe { keyed_hash16_avx2(&kw, &rows) })
            } else {
                None
            };
            if let Some(digests) = digests {
                for m in &digests {
                    xof_add_fastest(&mut acc.0, m);
                }
                return;
            }
        }
    }
    for k in 0..ends.len() {
        acc.add_row(key, row(k));
    }
}

/// [`keyed_hash8_avx2`] for a batch of sixteen rows: two passes of eight.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn keyed_hash16_avx2(key: &[u32; 8], rows: &[&[u8]; BATCH]) -> [[u32; 16]; BATCH] {
    let halves: [[&[u8]; ROWS]; 2] = std::array::from_fn(|h| std::array::from_fn(|l| rows[h * ROWS + l]));
    let [a, b] = halves.map(|h| keyed_hash8_avx2(key, &h));
    std::array::from_fn(|k| if k < ROWS { a[k] } else { b[k - ROWS] })
}

/// [`keyed_hash8_avx2`] for sixteen rows with AVX-512F: each row's block is one vector, the
/// sixteen are transposed to one vector per message word, and finished rows are masked out.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
fn keyed_hash16_avx512(key: &[u32; 8], rows: &[&[u8]; BATCH]) -> [[u32; 16]; BATCH] {
    use std::arch::x86_64::*;
    let blocks: [usize; BATCH] = std::array::from_fn(|l| rows[l].len().div_ceil(64).max(1));
    let most = blocks.iter().copied().max().unwrap_or(1);
    let mut cv = [_mm512_setzero_si512(); 8];
    for i in 0..8 {
        cv[i] = _mm512_set1_epi32(key[i] as i32);
    }
    for j in 0..most {
        let mut mv = [_mm512_setzero_si512(); 16];
        let mut len = [0u32; BATCH];
        let mut flags = [0u32; BATCH];
        let mut live: __mmask16 = 0;
        for l in 0..BATCH {
            if j >= blocks[l] {
                continue;
            }
            let mut pad = [0u8; 64];
            let src;
            (src, len[l], flags[l]) = chunk_block(rows[l], j, blocks[l], &mut pad);
            // SAFETY: `src` holds exactly 64 bytes; unaligned load.
            mv[l] = unsafe { _mm512_loadu_si512(src.as_ptr().cast()) };
            live |= 1 << l;
        }
        transpose16(&mut mv);
        let mut s = [_mm512_setzero_si512(); 16];
        s[..8].copy_from_slice(&cv);
        for i in 0..4 {
            s[8 + i] = _mm512_set1_epi32(IV[i] as i32);
        }
        // SAFETY: both arrays hold exactly 16 u32 (64 bytes); unaligned loads.
        unsafe {
            s[14] = _mm512_loadu_si512(len.as_ptr().cast());
            s[15] = _mm512_loadu_si512(flags.as_ptr().cast());
        }
        rounds_simd!(g_avx512[], [s], mv, first: all);
        for i in 0..8 {
            cv[i] = _mm512_mask_blend_epi32(live, cv[i], _mm512_xor_si512(s[i], s[i + 8]));
        }
    }
    let mut words = [[0u32; BATCH]; 8];
    for i in 0..8 {
        // SAFETY: each `words` row holds 16 u32 (64 bytes); unaligned store.
        unsafe { _mm512_storeu_si512(words[i].as_mut_ptr().cast(), cv[i]) };
    }
    row_digests(words)
}

/// Transposes a 16×16 matrix of `u32`, one row per vector (as in the BLAKE3 reference AVX-512 code).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose16(v: &mut [std::arch::x86_64::__m512i; 16]) {
    use std::arch::x86_64::*;
    // 32-bit interleave of row pairs, then 64-bit interleave of pair pairs: lane groups of four.
    let mut p = [_mm512_setzero_si512(); 16];
    for k in 0..8 {
        p[2 * k] = _mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]);
        p[2 * k + 1] = _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]);
    }
    let mut q = [_mm512_setzero_si512(); 16];
    for k in 0..4 {
        let (a0, a2, b0, b2) = (p[4 * k], p[4 * k + 1], p[4 * k + 2], p[4 * k + 3]);
        q[4 * k] = _mm512_unpacklo_epi64(a0, b0);
        q[4 * k + 1] = _mm512_unpackhi_epi64(a0, b0);
        q[4 * k + 2] = _mm512_unpacklo_epi64(a2, b2);
        q[4 * k + 3] = _mm512_unpackhi_epi64(a2, b2);
    }
    // 128-bit interleaves: rows 0-3 with 4-7 and 8-11 with 12-15, then the two halves.
    let mut r = [_mm512_setzero_si512(); 16];
    for h in 0..2 {
        for k in 0..4 {
            let (a, b) = (q[8 * h + k], q[8 * h + 4 + k]);
            r[8 * h + k] = _mm512_shuffle_i32x4::<0x88>(a, b);
            r[8 * h + 4 + k] = _mm512_shuffle_i32x4::<0xdd>(a, b);
        }
    }
    for k in 0..8 {
        v[k] = _mm512_shuffle_i32x4::<0x88>(r[k], r[8 + k]);
        v[8 + k] = _mm512_shuffle_i32x4::<0xdd>(r[k], r[8 + k]);
    }
}

/// [`xof_add`] with AVX2 intrinsics: eight output blocks per pass, one per 32-bit lane; each output
/// word vector is added to the stored lanes as sixteen `u16`s, with no transposition.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
unsafe fn xof_add_avx2(acc: &mut [u16; LANES], m: &[u32; 16]) {
    use std::arch::x86_64::*;
    // The message is the same for every output block: broadcast once.
    let mv: [__m256i; 16] = std::array::from_fn(|k| _mm256_set1_epi32(m[k] as i32));
    let dst = acc.as_mut_ptr().cast::<__m256i>();
    // Output blocks differ only in their counter (word 12), so round 1's quarter-rounds on
    // columns 1 to 3 give the same result for all of them: computed once per row, here.
    let mut init = [_mm256_setzero_si256(); 16];
    for i in 0..8 {
        init[i] = _mm256_set1_epi32(IV[i] as i32);
    }
    for i in 0..4 {
        init[8 + i] = _mm256_set1_epi32(IV[i] as i32);
    }
    init[14] = _mm256_set1_epi32(32);
    init[15] = _mm256_set1_epi32(ROOT_FLAGS as i32);
    let rot = rot_masks_avx2!();
    for i in 1..4 {
        g_avx2!(init, rot, i, 4 + i, 8 + i, 12 + i, mv[2 * i], mv[2 * i + 1]);
    }
    for group in 0..(BLOCKS / WAYS) {
        let c0 = (group * WAYS) as i32;
        let mut s = init;
        s[12] = _mm256_setr_epi32(c0, c0 + 1, c0 + 2, c0 + 3, c0 + 4, c0 + 5, c0 + 6, c0 + 7);
        rounds_simd!(g_avx2[rot], s, mv, first: columns_1_to_3_done);
        for i in 0..8 {
            let lo = _mm256_xor_si256(s[i], s[i + 8]);
            let hi = _mm256_xor_si256(s[i + 8], _mm256_set1_epi32(IV[i] as i32));
            // SAFETY: `acc` holds 1024 u16 = 64 vectors of 32 bytes; the index is below
            // (BLOCKS / WAYS) * 16 = 64. Unaligned loads and stores.
            unsafe {
                let p = dst.add(group * 16 + i);
                _mm256_storeu_si256(p, _mm256_add_epi16(_mm256_loadu_si256(p), lo));
                let q = dst.add(group * 16 + 8 + i);
                _mm256_storeu_si256(q, _mm256_add_epi16(_mm256_loadu_si256(q), hi));
            }
        }
    }
}

/// [`xof_add`] with AVX-512F: sixteen output blocks per vector and native rotates; the row's two
/// sets of sixteen are computed interleaved, since one alone is bound by its dependency chains.
/// Lanes 0–7 of a set are one [`WAYS`]-group of the stored order and lanes 8–15 the next, so each
/// half is added where [`xof_add_avx2`] would add it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
unsafe fn xof_add_avx512(acc: &mut [u16; LANES], m: &[u32; 16]) {
    use std::arch::x86_64::*;
    const PASS: usize = 2 * WAYS;
    const { assert!(BLOCKS == 2 * PASS) };
    let mut mv = [_mm512_setzero_si512(); 16];
    for k in 0..16 {
        mv[k] = _mm512_set1_epi32(m[k] as i32);
    }
    let dst = acc.as_mut_ptr().cast::<__m256i>();
    // As in the AVX2 kernel: round 1's columns 1 to 3 are the same for every output block.
    let mut init = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        init[i] = _mm512_set1_epi32(IV[i] as i32);
    }
    for i in 0..4 {
        init[8 + i] = _mm512_set1_epi32(IV[i] as i32);
    }
    init[14] = _mm512_set1_epi32(32);
    init[15] = _mm512_set1_epi32(ROOT_FLAGS as i32);
    for i in 1..4 {
        g_avx512!([init], i, 4 + i, 8 + i, 12 + i, mv[2 * i], mv[2 * i + 1]);
    }
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut s = init;
    let mut t = init;
    s[12] = lanes;
    t[12] = _mm512_add_epi32(_mm512_set1_epi32(PASS as i32), lanes);
    rounds_simd!(g_avx512[], [s, t], mv, first: columns_1_to_3_done);
    for (pass, st) in [s, t].iter().enumerate() {
        for i in 0..8 {
            let lo = _mm512_xor_si512(st[i], st[i + 8]);
            let hi = _mm512_xor_si512(st[i + 8], _mm512_set1_epi32(IV[i] as i32));
            for (word, v) in [(i, lo), (8 + i, hi)] {
                let halves = [_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v)];
                for (h, half) in halves.into_iter().enumerate() {
                    // SAFETY: `acc` holds 64 vectors of 32 bytes; the index is below
                    // (BLOCKS / WAYS) * 16 = 64. Unaligned loads and stores.
                    unsafe {
                        let p = dst.add((2 * pass + h) * 16 + word);
                        _mm256_storeu_si256(p, _mm256_add_epi16(_mm256_loadu_si256(p), half));
                    }
                }
            }
        }
    }
}

/// Adds a digest's expansion with the widest kernel this CPU runs (all give the same lanes).
#[inline]
fn xof_add_fastest(acc: &mut [u16; LANES], m: &[u32; 16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (and so AVX2), checked just above.
            unsafe { xof_add_avx512(acc, m) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { xof_add_avx2(acc, m) };
            return;
        }
    }
    xof_add(acc, m);
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
            Cell::LStr(a) => a.is_null(i),
            Cell::List(a, _) => a.is_null(i),
            Cell::LList(a, _) => a.is_null(i),
        }
    }

    fn encode(&self, i: usize, out: &mut Vec<u8>) {
        if self.is_null(i) {
            out.push(0);
            return;
        }
        out.push(1);
        match self {
            Cell::U8(a) => out.extend_from_slice(&u64::from(a.value(i)).to_le_bytes()),
            Cell::U16(a) => out.extend_from_slice(&u64::from(a.value(i)).to_le_bytes()),
            Cell::U32(a) => out.extend_from_slice(&u64::from(a.value(i)).to_le_bytes()),
            Cell::U64(a) => out.extend_from_slice(&a.value(i).to_le_bytes()),
            Cell::I8(a) => out.extend_from_slice(&i64::from(a.value(i)).to_le_bytes()),
            Cell::I16(a) => out.extend_from_slice(&i64::from(a.value(i)).to_le_bytes()),
            Cell::I32(v, _) => out.extend_from_slice(&i64::from(v[i]).to_le_bytes()),
            Cell::I64(v, _) => out.extend_from_slice(&v[i].to_le_bytes()),
            Cell::F32(a) => out.extend_from_slice(&f64::from(a.value(i)).to_bits().to_le_bytes()),
            Cell::F64(a) => out.extend_from_slice(&a.value(i).to_bits().to_le_bytes()),
            Cell::Bool(a) => out.push(u8::from(a.value(i))),
            Cell::Str(a) => text(a.value(i), out),
            Cell::LStr(a) => text(a.value(i), out),
            Cell::List(a, inner) => {
                let o = a.value_offsets();
                let (s, e) = (o[i] as usize, o[i + 1] as usize);
                out.extend_from_slice(&((e - s) as u64).to_le_bytes());
                for j in s..e {
                    inner.encode(j, out);
                }
            }
            Cell::LList(a, inner) => {
                let o = a.value_offsets();
                let (s, e) = (o[i] as usize, o[i + 1] as usize);
                out.extend_from_slice(&((e - s) as u64).to_le_bytes());
                for j in s..e {
                    inner.encode(j, out);
                }
            }
        }
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
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
    let mut buf = Vec::with_capacity(BATCH * 256);
    let mut ends = Vec::with_capacity(BATCH);
    for i in 0..batch.num_rows() {
        for c in &cells {
            c.encode(i, &mut buf);
        }
        ends.push(buf.len());
        if ends.len() == BATCH {
            add_rows(acc, key, &buf, &ends);
            buf.clear();
            ends.clear();
        }
    }
    add_rows(acc, key, &buf, &ends);
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
            let mut m = [0u32; 16];
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
        type Kernel = unsafe fn(&mut [u16; LANES], &[u32; 16]);
        let mut kernels: Vec<(&str, Kernel)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") {
            kernels.push(("avx2", xof_add_avx2));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            kernels.push(("avx512", xof_add_avx512));
        }
        if kernels.is_empty() {
            eprintln!("no SIMD kernel runs on this CPU; only the portable one is tested");
        }
        let mut want = [0u16; LANES];
        let mut got = vec![[0u16; LANES]; kernels.len()];
        for seed in 0..50u32 {
            let m: [u32; 16] =
                std::array::from_fn(|k| if k < 8 { seed.wrapping_mul(0x9E37_79B9) ^ (k as u32 * 7919) } else { 0 });
            xof_add(&mut want, &m);
            for ((name, f), acc) in kernels.iter().zip(got.iter_mut()) {
                // SAFETY: each kernel was pushed only if the CPU supports its features.
                unsafe { f(acc, &m) };
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
            add_rows(&mut got, &key, &buf, &ends);
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
            let mut got: Vec<(&str, Vec<[u32; 16]>)> = Vec::new();
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 checked above.
                got.push(("avx2", unsafe { keyed_hash16_avx2(&kw, &sixteen) }.to_vec()));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F checked above.
                got.push(("avx512", unsafe { keyed_hash16_avx512(&kw, &sixteen) }.to_vec()));
            }
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

    #[test]
    fn hex_round_trip_and_empty() {
        let c = commit_batch("t", &batch(&[(1, Some("x".into()))])).unwrap();
        assert_eq!(LtHash::from_hex(&c.to_hex()), Some(c));
        assert_eq!(commit_batch("t", &batch(&[])).unwrap(), LtHash::new());
        assert!(LtHash::from_hex("00").is_none());
    }
}
