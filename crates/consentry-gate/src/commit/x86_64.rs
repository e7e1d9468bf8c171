//! The AVX2 and AVX-512 kernels of the row commitment, and the one place that picks among them.
//!
//! Every function here computes exactly what the portable code in the parent module computes
//! (tested there, kernel by kernel); only speed differs. The CPU's features are detected once per
//! process ([`Simd::detected`]) and the chosen kernel is passed down, so no row or batch asks again.
//!
//! This is the one module of the workspace allowed `unsafe` (besides the CLI's SIGPIPE reset):
//! SIMD intrinsics on unaligned memory and calls into `#[target_feature]` functions cannot be
//! written without it. Each block states why it is sound; a [`Simd`] value exists only once the
//! CPU has been seen to run its instructions, which is what makes its safe methods sound.
#![allow(unsafe_code)]

use super::{BATCH, BLOCKS, IV, LANES, ROOT_FLAGS, SCHEDULE, WAYS};
use std::sync::OnceLock;

/// An instruction set this CPU was seen to run; only [`Simd::detected`] and [`Simd::supported`] make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Simd(Level);

/// The private choice inside [`Simd`], so no other module can claim a feature the CPU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Avx2,
    Avx512,
}

/// The widest kernel this CPU runs, detected on first use.
static DETECTED: OnceLock<Option<Simd>> = OnceLock::new();

impl Simd {
    /// The kernel of this process, chosen once: the widest this CPU runs (AVX-512F, else AVX2, else
    /// none), or no wider than [`super::KERNEL_ENV`] asks, so one machine can measure the others' kernels.
    pub(super) fn detected() -> Option<Simd> {
        *DETECTED.get_or_init(|| {
            let cap = super::requested_kernel();
            Simd::supported().into_iter().rfind(|k| cap.is_none_or(|c| k.kernel() <= c))
        })
    }

    /// The kernel this value runs, as [`super::Kernel`] names it.
    pub(super) fn kernel(self) -> super::Kernel {
        match self.0 {
            Level::Avx2 => super::Kernel::Avx2,
            Level::Avx512 => super::Kernel::Avx512,
        }
    }

    /// Every kernel this CPU runs, narrowest first: the tests check each against the portable code.
    pub(super) fn supported() -> Vec<Simd> {
        let mut out = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") {
            out.push(Simd(Level::Avx2));
        }
        // The AVX-512 kernels also use AVX2 instructions.
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx2") {
            out.push(Simd(Level::Avx512));
        }
        out
    }

    /// The kernel's name, for test failure messages.
    #[cfg(test)]
    pub(super) fn name(self) -> &'static str {
        self.kernel().name()
    }

    /// Adds the 2048-byte BLAKE3 XOF of a digest (as message words) to the lanes, in stored order.
    #[inline]
    pub(super) fn xof_add(self, acc: &mut [u16; LANES], m: &[u32; 8]) {
        match self.0 {
            // SAFETY: a `Simd` holding `Avx2` exists only when the CPU runs AVX2 (`supported`).
            Level::Avx2 => unsafe { xof_add_avx2(acc, m) },
            // SAFETY: a `Simd` holding `Avx512` exists only when the CPU runs AVX-512F and AVX2.
            Level::Avx512 => unsafe { xof_add_avx512(acc, m) },
        }
    }

    /// `blake3::keyed_hash(key, row)` of sixteen rows of at most one chunk each, as digest words
    /// (then zeros: the message words of the XOF's one block).
    pub(super) fn keyed_hash16(self, key: &[u32; 8], rows: &[&[u8]; BATCH]) -> [[u32; 16]; BATCH] {
        match self.0 {
            // SAFETY: as in `xof_add`, the CPU runs AVX2.
            Level::Avx2 => unsafe { keyed_hash16_avx2(key, rows) },
            // SAFETY: as in `xof_add`, the CPU runs AVX-512F.
            Level::Avx512 => unsafe { keyed_hash16_avx512(key, rows) },
        }
    }
}

/// Rows whose digests the AVX2 path computes side by side: half a batch.
const ROWS: usize = BATCH / 2;
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

/// The `_mm256_shuffle_epi8` masks that rotate every 32-bit lane right by 16 and by 8 bits.
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

/// `blake3::keyed_hash(key, row)` of eight rows of at most [`CHUNK_LEN`] bytes, as digest words.
///
/// Each row is one chunk: blocks compressed in turn from the key, the first flagged
/// CHUNK_START, the last CHUNK_END | ROOT with its true length (zero-padded); rows with fewer
/// blocks keep their chaining value once finished. Tested equal to the `blake3` crate.
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
fn row_digests<const N: usize>(words: [[u32; N]; 8]) -> [[u32; 16]; N] {
    std::array::from_fn(|l| std::array::from_fn(|i| if i < 8 { words[i][l] } else { 0 }))
}

/// Transposes an 8×8 matrix of `u32`, one row per vector (as in the BLAKE3 reference AVX2 code).
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

/// [`keyed_hash8_avx2`] for a batch of sixteen rows: two passes of eight.
#[target_feature(enable = "avx2")]
fn keyed_hash16_avx2(key: &[u32; 8], rows: &[&[u8]; BATCH]) -> [[u32; 16]; BATCH] {
    let halves: [[&[u8]; ROWS]; 2] = std::array::from_fn(|h| std::array::from_fn(|l| rows[h * ROWS + l]));
    let [a, b] = halves.map(|h| keyed_hash8_avx2(key, &h));
    std::array::from_fn(|k| if k < ROWS { a[k] } else { b[k - ROWS] })
}

/// [`keyed_hash8_avx2`] for sixteen rows with AVX-512F: each row's block is one vector, the
/// sixteen are transposed to one vector per message word, and finished rows are masked out.
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

/// [`super::xof_add`] with AVX2 intrinsics: eight output blocks per pass, one per 32-bit lane; each output
/// word vector is added to the stored lanes as sixteen `u16`s, with no transposition.
#[target_feature(enable = "avx2")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
unsafe fn xof_add_avx2(acc: &mut [u16; LANES], m: &[u32; 8]) {
    use std::arch::x86_64::*;
    // The message is the same for every output block: broadcast once. Its last eight words are
    // zero (a 32-byte input), constant here, so the compiler drops their additions from the rounds.
    let mut mv = [_mm256_setzero_si256(); 16];
    for k in 0..8 {
        mv[k] = _mm256_set1_epi32(m[k] as i32);
    }
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

/// [`super::xof_add`] with AVX-512F: sixteen output blocks per vector and native rotates; the row's two
/// sets of sixteen are computed interleaved, since one alone is bound by its dependency chains.
/// Lanes 0–7 of a set are one [`WAYS`]-group of the stored order and lanes 8–15 the next, so each
/// half is added where [`xof_add_avx2`] would add it.
#[target_feature(enable = "avx2,avx512f")]
#[allow(clippy::needless_range_loop)] // lanes of parallel arrays, indexed together
unsafe fn xof_add_avx512(acc: &mut [u16; LANES], m: &[u32; 8]) {
    use std::arch::x86_64::*;
    const PASS: usize = 2 * WAYS;
    const { assert!(BLOCKS == 2 * PASS) };
    // As in the AVX2 kernel, the last eight message words stay a constant zero.
    let mut mv = [_mm512_setzero_si512(); 16];
    for k in 0..8 {
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
