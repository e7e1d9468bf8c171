//! Weighted alternating least squares for implicit feedback (Hu, Koren, Volinsky, "Collaborative Filtering for
//! Implicit Feedback Datasets", ICDM 2008), each row solved with a few conjugate-gradient steps from its previous
//! value (Takács, Pilászy, Tikk, RecSys 2011 — the solver `implicit` uses).
//!
//! Hand-written because no maintained Rust crate does implicit ALS; it is ~200 lines of linear algebra. It is
//! deterministic by construction: every row's solve reads only the other side's factors and its own row, and the
//! Gram matrix is summed over fixed-size chunks in chunk order, so the thread count never changes a bit.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A sparse matrix in compressed rows; `val` holds the observation weight `w` (confidence is `1 + alpha * w`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    /// Row starts into `idx`/`val`, `rows + 1` entries.
    pub ptr: Vec<usize>,
    /// Column of each entry, ascending within a row.
    pub idx: Vec<u32>,
    /// Weight of each entry.
    pub val: Vec<f32>,
}

impl Csr {
    /// Builds rows from `(row, col, weight)` triplets; duplicates in a row are summed, so input order never matters.
    pub fn from_triplets(rows: usize, mut t: Vec<(u32, u32, f32)>) -> Csr {
        t.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        let mut ptr = vec![0usize; rows + 1];
        let mut idx = Vec::with_capacity(t.len());
        let mut val: Vec<f32> = Vec::with_capacity(t.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, w) in t {
            if last == Some((r, c)) {
                if let Some(v) = val.last_mut() {
                    *v += w;
                }
                continue;
            }
            last = Some((r, c));
            idx.push(c);
            val.push(w);
            ptr[r as usize + 1] = idx.len();
        }
        for r in 1..=rows {
            ptr[r] = ptr[r].max(ptr[r - 1]);
        }
        Csr { ptr, idx, val }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    /// Row `r` as (columns, weights).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.ptr[r], self.ptr[r + 1]);
        (&self.idx[a..b], &self.val[a..b])
    }

    /// The transpose with `cols` rows; entries stay in ascending row order (a stable counting sort).
    pub fn transpose(&self, cols: usize) -> Csr {
        let mut ptr = vec![0usize; cols + 1];
        for &c in &self.idx {
            ptr[c as usize + 1] += 1;
        }
        for c in 0..cols {
            ptr[c + 1] += ptr[c];
        }
        let mut next = ptr.clone();
        let mut idx = vec![0u32; self.idx.len()];
        let mut val = vec![0f32; self.idx.len()];
        for r in 0..self.rows() {
            let (cs, ws) = self.row(r);
            for (&c, &w) in cs.iter().zip(ws) {
                let p = &mut next[c as usize];
                idx[*p] = r as u32;
                val[*p] = w;
                *p += 1;
            }
        }
        Csr { ptr, idx, val }
    }
}

/// Hyper-parameters of one ALS run.
#[derive(Debug, Clone, Copy)]
pub struct AlsParams {
    /// Latent dimension.
    pub factors: usize,
    /// Alternations (users then items).
    pub iterations: usize,
    /// L2 regularisation added to the Gram diagonal.
    pub reg: f32,
    /// Confidence scale: `c = 1 + alpha * w`.
    pub alpha: f32,
    /// Conjugate-gradient steps per row and alternation.
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
    /// Worker threads (0 = all cores); never changes the result.
    pub threads: usize,
}

/// Trained factors, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Factors {
    /// `rows × factors` of the row side (users).
    pub rows: Vec<f32>,
    /// `cols × factors` of the column side (items and pseudo-items).
    pub cols: Vec<f32>,
}

/// Fits `rows` (users × `n_cols`) by implicit ALS.
pub fn train(m: &Csr, n_cols: usize, p: &AlsParams) -> Factors {
    let k = p.factors.max(1);
    let t = m.transpose(n_cols);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    // Like `implicit`: small random factors on both sides, users first.
    let mut x: Vec<f32> = (0..m.rows() * k).map(|_| rng.random::<f32>() * 0.01).collect();
    let mut y: Vec<f32> = (0..n_cols * k).map(|_| rng.random::<f32>() * 0.01).collect();
    // A row or column without observations solves to exactly zero (its subproblem is min ‖Y x‖² + λ‖x‖²): it
    // starts there, is never solved, and adds nothing to the other side's Gram. A shard holds the whole job
    // catalogue, mostly unseen by its members, so this is what keeps a shard's cost proportional to its members.
    zero_empty(m, &mut x, k);
    zero_empty(&t, &mut y, k);
    let threads = resolve_threads(p.threads);
    for _ in 0..p.iterations {
        solve_side(m, &mut x, &y, k, p, threads);
        solve_side(&t, &mut y, &x, k, p, threads);
    }
    Factors { rows: x, cols: y }
}

/// Sets to zero the factors of `m`'s rows without entries.
fn zero_empty(m: &Csr, x: &mut [f32], k: usize) {
    for (r, xr) in x.chunks_mut(k).enumerate().take(m.rows()) {
        if m.row(r).0.is_empty() {
            xr.fill(0.0);
        }
    }
}

/// The worker count: `0` means every core the OS grants.
pub fn resolve_threads(threads: usize) -> usize {
    if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads }
}

/// `[f(0), …, f(n - 1)]` computed by up to `threads` workers (0 = all cores) taking the next index as they free
/// up, so uneven tasks (shards of different sizes) balance; the result is in index order whatever the thread count.
pub fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let workers = resolve_threads(threads).min(n).max(1);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        // A worker's panic is passed on, as the scope would.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// `Σ y yᵀ` over the rows of `y` (row-major `n × k`) plus `reg · I`, summed in fixed chunks so it never depends on
/// the thread count.
pub fn gram(y: &[f32], k: usize, reg: f32, threads: usize) -> Vec<f32> {
    const CHUNK: usize = 1024;
    let n = y.len() / k;
    let chunks = n.div_ceil(CHUNK);
    let mut partial = vec![vec![0f64; k * k]; chunks];
    let per = chunks.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (ci, part) in partial.chunks_mut(per).enumerate() {
            s.spawn(move || {
                for (j, acc) in part.iter_mut().enumerate() {
                    let c = ci * per + j;
                    for r in c * CHUNK..((c + 1) * CHUNK).min(n) {
                        let v = &y[r * k..(r + 1) * k];
                        // A zero row adds only zeros: skipping it leaves every sum bit for bit the same.
                        if v.iter().all(|x| *x == 0.0) {
                            continue;
                        }
                        for a in 0..k {
                            let va = f64::from(v[a]);
                            let row = &mut acc[a * k..(a + 1) * k];
                            for b in 0..k {
                                row[b] += va * f64::from(v[b]);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut g = vec![0f64; k * k];
    for part in &partial {
        for (a, b) in g.iter_mut().zip(part) {
            *a += b;
        }
    }
    for d in 0..k {
        g[d * k + d] += f64::from(reg);
    }
    g.into_iter().map(|v| v as f32).collect()
}

fn solve_side(m: &Csr, x: &mut [f32], y: &[f32], k: usize, p: &AlsParams, threads: usize) {
    let yty = gram(y, k, p.reg, threads);
    let rows = m.rows();
    if rows == 0 {
        return;
    }
    let per = rows.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (ci, part) in x.chunks_mut(per * k).enumerate() {
            let yty = &yty;
            s.spawn(move || {
                let mut scratch = Scratch::new(k);
                for (j, xu) in part.chunks_mut(k).enumerate() {
                    let (cols, ws) = m.row(ci * per + j);
                    if cols.is_empty() {
                        // Exactly zero (see `train`); already there.
                        continue;
                    }
                    cg_row(xu, cols, ws, y, yty, k, p.alpha, p.cg_steps, &mut scratch);
                }
            });
        }
    });
}

struct Scratch {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl Scratch {
    fn new(k: usize) -> Scratch {
        Scratch { r: vec![0.0; k], p: vec![0.0; k], ap: vec![0.0; k] }
    }
}

/// `a · b` in eight independent lanes, so the compiler vectorises it; a fixed order, so a fixed result.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[inline]
fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

fn matvec(out: &mut [f32], m: &[f32], v: &[f32], k: usize) {
    for (a, o) in out.iter_mut().enumerate() {
        *o = dot(&m[a * k..(a + 1) * k], v);
    }
}

/// One row's solve of `(YᵀY + Σ (c−1) y yᵀ + λI) x = Σ c y` by conjugate gradient, warm-started from `x`.
#[allow(clippy::too_many_arguments)]
fn cg_row(
    x: &mut [f32],
    cols: &[u32],
    ws: &[f32],
    y: &[f32],
    yty: &[f32],
    k: usize,
    alpha: f32,
    steps: usize,
    s: &mut Scratch,
) {
    let item = |c: u32| &y[c as usize * k..(c as usize + 1) * k];
    // r = b - A x
    matvec(&mut s.r, yty, x, k);
    for v in s.r.iter_mut() {
        *v = -*v;
    }
    for (&c, &w) in cols.iter().zip(ws) {
        let conf = 1.0 + alpha * w;
        let yi = item(c);
        axpy(&mut s.r, conf - (conf - 1.0) * dot(yi, x), yi);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot(&s.r, &s.r);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        matvec(&mut s.ap, yty, &s.p, k);
        for (&c, &w) in cols.iter().zip(ws) {
            let yi = item(c);
            axpy(&mut s.ap, alpha * w * dot(yi, &s.p), yi);
        }
        let pap = dot(&s.p, &s.ap);
        if pap.is_nan() || pap <= 0.0 {
            break;
        }
        let a = rs_old / pap;
        axpy(x, a, &s.p);
        axpy(&mut s.r, -a, &s.ap);
        let rs_new = dot(&s.r, &s.r);
        let beta = rs_new / rs_old;
        for (pv, rv) in s.p.iter_mut().zip(&s.r) {
            *pv = rv + beta * *pv;
        }
        rs_old = rs_new;
    }
}

/// Solves the symmetric positive-definite `a x = b` (`a` is `n × n`, row-major) in f64 by Cholesky; `None` when `a`
/// is not positive definite.
pub fn cholesky_solve(a: &[f64], n: usize, b: &mut [f64], rhs: usize) -> Option<()> {
    let mut l = a.to_vec();
    for j in 0..n {
        let mut d = l[j * n + j];
        for p in 0..j {
            d -= l[j * n + p] * l[j * n + p];
        }
        if d.is_nan() || d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let mut v = l[i * n + j];
            for p in 0..j {
                v -= l[i * n + p] * l[j * n + p];
            }
            l[i * n + j] = v / d;
        }
    }
    // b is n × rhs, row-major.
    for c in 0..rhs {
        for i in 0..n {
            let mut v = b[i * rhs + c];
            for p in 0..i {
                v -= l[i * n + p] * b[p * rhs + c];
            }
            b[i * rhs + c] = v / l[i * n + i];
        }
        for i in (0..n).rev() {
            let mut v = b[i * rhs + c];
            for p in i + 1..n {
                v -= l[p * n + i] * b[p * rhs + c];
            }
            b[i * rhs + c] = v / l[i * n + i];
        }
    }
    Some(())
}

/// The exact ALS solution for one row given the column factors `y`, their Gram `yty` (with λ), and the row's entries:
/// used to fold a member in from profile tokens at inference.
pub fn fold_in(cols: &[u32], ws: &[f32], y: &[f32], yty: &[f32], k: usize, alpha: f32) -> Option<Vec<f32>> {
    let mut a: Vec<f64> = yty.iter().map(|&v| f64::from(v)).collect();
    let mut b = vec![0f64; k];
    for (&c, &w) in cols.iter().zip(ws) {
        let yi = &y[c as usize * k..(c as usize + 1) * k];
        let conf = 1.0 + f64::from(alpha) * f64::from(w);
        for i in 0..k {
            let vi = f64::from(yi[i]);
            b[i] += conf * vi;
            for j in 0..k {
                a[i * k + j] += (conf - 1.0) * vi * f64::from(yi[j]);
            }
        }
    }
    cholesky_solve(&a, k, &mut b, 1)?;
    Some(b.into_iter().map(|v| v as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_is_in_index_order_for_any_thread_count() {
        let want: Vec<usize> = (0..37).map(|i| i * i).collect();
        for threads in [1, 2, 5, 64] {
            assert_eq!(par_map(37, threads, |i| i * i), want, "{threads} threads");
        }
        assert!(par_map(0, 4, |i| i).is_empty());
    }

    fn toy() -> Csr {
        // Two blocks of users who like two blocks of items.
        let mut t = Vec::new();
        for u in 0..40u32 {
            for i in 0..10u32 {
                if (u < 20) == (i < 5) && (u + i) % 3 != 0 {
                    t.push((u, i, 1.0));
                }
            }
        }
        Csr::from_triplets(40, t)
    }

    fn params(threads: usize) -> AlsParams {
        AlsParams { factors: 8, iterations: 8, reg: 0.1, alpha: 10.0, cg_steps: 3, seed: 7, threads }
    }

    #[test]
    fn same_result_whatever_the_thread_count() {
        let m = toy();
        let a = train(&m, 10, &params(1));
        let b = train(&m, 10, &params(3));
        let c = train(&m, 10, &params(0));
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn learns_the_block_structure() {
        let m = toy();
        // Two factors for two blocks: enough to generalise, too few to memorise the holes.
        let f = train(&m, 10, &AlsParams { factors: 2, reg: 1.0, ..params(2) });
        let score = |u: usize, i: usize| dot(&f.rows[u * 2..u * 2 + 2], &f.cols[i * 2..i * 2 + 2]);
        // User 0 has not seen item 0 ((0+0)%3==0) but should prefer it over item 7 from the other block.
        assert!(score(0, 0) > score(0, 7) + 0.2, "{} vs {}", score(0, 0), score(0, 7));
        assert!(score(21, 9) > score(21, 0) + 0.2);
    }

    #[test]
    fn triplet_order_and_duplicates_do_not_matter() {
        let t = vec![(1, 2, 1.0), (0, 1, 2.0), (1, 0, 1.0), (1, 2, 3.0)];
        let mut r = t.clone();
        r.reverse();
        let a = Csr::from_triplets(3, t);
        assert_eq!(a, Csr::from_triplets(3, r));
        assert_eq!(a.row(1), (&[0u32, 2][..], &[1.0f32, 4.0][..]));
        assert_eq!(a.row(2).0.len(), 0);
        let tt = a.transpose(3);
        assert_eq!(tt.row(2), (&[1u32][..], &[4.0f32][..]));
    }

    #[test]
    fn cholesky_solves_and_refuses_indefinite() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let mut b = [2.0, 1.0];
        cholesky_solve(&a, 2, &mut b, 1).expect("spd");
        assert!((4.0 * b[0] + 2.0 * b[1] - 2.0f64).abs() < 1e-12);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], 2, &mut [1.0, 1.0], 1).is_none());
    }
}
