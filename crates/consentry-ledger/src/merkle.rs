//! RFC 9162 Merkle tree over event leaves: tree heads, inclusion proofs and
//! consistency proofs, with BLAKE3 in place of SHA-256.
//!
//! Hand-written because the algorithms are short, fixed by the RFC, and the
//! crates that implement them (ct-merkle and friends) keep their own storage
//! and hash choice; here the tree caches every complete subtree so any
//! historical root or proof costs O(log n) hashes.

use crate::Hash;
use crate::event::node_hash;

/// The hash of the empty tree: `H()`.
pub fn empty_root() -> Hash {
    *blake3::hash(b"").as_bytes()
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Where the proof algorithms read complete subtrees from: the in-memory [`Tree`] or the tiles on disk
/// ([`crate::tiles::TiledTree`]), so both answer with one implementation of RFC 9162's recursions.
pub trait Nodes {
    /// What reading a node can fail with (nothing for the in-memory tree; a store error for tiles).
    type Error;

    /// Number of leaves.
    fn size(&self) -> u64;

    /// The hash of the complete subtree of height `height` at `index`: leaves `[index·2^height, (index+1)·2^height)`,
    /// all below [`Nodes::size`].
    fn node(&mut self, height: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Hash of leaves `[lo, hi)`, a range that RFC 9162's recursion produces.
fn subtree<N: Nodes + ?Sized>(t: &mut N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return t.node(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    Ok(node_hash(&subtree(t, lo, lo + k)?, &subtree(t, lo + k, hi)?))
}

/// The Merkle tree hash of the first `size` leaves (`None` if the tree is smaller).
pub fn root_of<N: Nodes + ?Sized>(t: &mut N, size: u64) -> Result<Option<Hash>, N::Error> {
    match size {
        0 => Ok(Some(empty_root())),
        s if s > t.size() => Ok(None),
        s => subtree(t, 0, s).map(Some),
    }
}

/// Inclusion proof of leaf `index` in the tree of the first `size` leaves (`None` when out of range).
pub fn inclusion_proof_of<N: Nodes + ?Sized>(t: &mut N, index: u64, size: u64) -> Result<Option<Vec<Hash>>, N::Error> {
    if index >= size || size > t.size() {
        return Ok(None);
    }
    let mut path = Vec::new();
    let (mut m, mut lo, mut hi) = (index, 0, size);
    let mut siblings = Vec::new();
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < k {
            siblings.push((lo + k, hi));
            hi = lo + k;
        } else {
            siblings.push((lo, lo + k));
            m -= k;
            lo += k;
        }
    }
    for (a, b) in siblings.into_iter().rev() {
        path.push(subtree(t, a, b)?);
    }
    Ok(Some(path))
}

/// Consistency proof between the trees of the first `first` and `second` leaves (`None` when out of range).
pub fn consistency_proof_of<N: Nodes + ?Sized>(
    t: &mut N,
    first: u64,
    second: u64,
) -> Result<Option<Vec<Hash>>, N::Error> {
    if first > second || second > t.size() {
        return Ok(None);
    }
    let mut ranges = Vec::new();
    if first > 0 && first < second {
        let (mut m, mut lo, mut hi, mut complete) = (first, 0, second, true);
        loop {
            let n = hi - lo;
            if m == n {
                if !complete {
                    ranges.push((lo, hi));
                }
                break;
            }
            let k = split(n);
            if m <= k {
                ranges.push((lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push((lo, lo + k));
                m -= k;
                lo += k;
                complete = false;
            }
        }
    }
    let mut out = Vec::with_capacity(ranges.len());
    for (a, b) in ranges.into_iter().rev() {
        out.push(subtree(t, a, b)?);
    }
    Ok(Some(out))
}

/// Leaf hashes plus every complete subtree's hash, level by level: the reference the tiled tree is checked
/// against, and the tree of logs small enough to hold (tests, witnesses, receipts).
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// `levels[h][i]` is the hash of leaves `[i·2^h, (i+1)·2^h)`.
    levels: Vec<Vec<Hash>>,
}

/// The value of a computation that cannot fail.
fn sure<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree { levels: vec![Vec::new()] }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash, completing parents as pairs fill.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    /// The leaf hash at 0-based `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first().and_then(|l| l.get(usize::try_from(index).ok()?)).copied()
    }

    /// The Merkle tree hash of the first `size` leaves (`None` if the tree is smaller).
    pub fn root(&self, size: u64) -> Option<Hash> {
        sure(root_of(&mut self.view(), size))
    }

    /// Inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        sure(inclusion_proof_of(&mut self.view(), index, size))
    }

    /// Consistency proof between the trees of the first `first` and `second` leaves.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Option<Vec<Hash>> {
        sure(consistency_proof_of(&mut self.view(), first, second))
    }

    /// A borrowing reader, so `&self` methods can use the `&mut` [`Nodes`] algorithms without copying.
    fn view(&self) -> TreeView<'_> {
        TreeView(self)
    }
}

/// [`Tree`] read through a shared reference.
struct TreeView<'a>(&'a Tree);

impl Nodes for TreeView<'_> {
    type Error = std::convert::Infallible;

    fn size(&self) -> u64 {
        self.0.len()
    }

    fn node(&mut self, height: u32, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.0.levels[height as usize][index as usize])
    }
}

/// The right edge of a tree: the roots of its perfect subtrees, left to right, so a streaming reader knows the
/// root at every size it passes in O(log n) memory (a verifier or an auditor that never holds the whole tree).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    len: u64,
    /// `(height, hash)` of each perfect subtree, heights strictly decreasing.
    edge: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The edge of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Number of leaves seen.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before the first leaf.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a leaf hash, merging equal-height subtrees.
    pub fn push(&mut self, leaf: Hash) {
        self.edge.push((0, leaf));
        self.len += 1;
        while let [.., (ha, a), (hb, b)] = self.edge[..]
            && ha == hb
        {
            self.edge.truncate(self.edge.len() - 2);
            self.edge.push((ha + 1, node_hash(&a, &b)));
        }
    }

    /// The Merkle tree hash of the leaves seen so far.
    pub fn root(&self) -> Hash {
        let mut it = self.edge.iter().rev();
        match it.next() {
            None => empty_root(),
            Some((_, last)) => it.fold(*last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree with `root` of `size` leaves?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: is the tree (`second`, `second_root`) an append-only extension of (`first`, `first_root`)?
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty() && *first_root == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    &fr == first_root && &sr == second_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::leaf_hash;
    use proptest::prelude::*;

    /// RFC 9162's definition, straight from the text, to check the cached tree against.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (Tree, Vec<Hash>) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = Tree::new();
        for l in &leaves {
            t.push(*l);
        }
        (t, leaves)
    }

    #[test]
    fn roots_match_the_definition() {
        let (t, leaves) = tree(70);
        for size in 0..=70u64 {
            assert_eq!(t.root(size).unwrap(), reference_root(&leaves[..size as usize]), "size {size}");
        }
        assert!(t.root(71).is_none());
    }

    #[test]
    fn the_frontier_knows_every_root_it_passes() {
        let (_, leaves) = tree(300);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), reference_root(&leaves[..=i]), "size {}", i + 1);
            assert_eq!(f.len(), i as u64 + 1);
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies() {
        let (t, leaves) = tree(33);
        for size in 1..=33u64 {
            let root = t.root(size).unwrap();
            for i in 0..size {
                let p = t.inclusion_proof(i, size).unwrap();
                assert!(verify_inclusion(i, size, &leaves[i as usize], &p, &root), "{i} in {size}");
                assert!(!verify_inclusion(i, size, &leaf_hash(b"other"), &p, &root));
            }
            for first in 0..=size {
                let p = t.consistency_proof(first, size).unwrap();
                assert!(verify_consistency(first, size, &t.root(first).unwrap(), &root, &p), "{first}→{size}");
            }
        }
    }

    proptest! {
        /// A proof against a log whose past was rewritten never verifies.
        #[test]
        fn rewritten_history_fails_consistency(n in 2u64..200, first_frac in 0.0f64..1.0, victim_frac in 0.0f64..1.0) {
            let (t, leaves) = tree(n);
            let first = ((first_frac * (n - 1) as f64) as u64).max(1);
            let victim = (victim_frac * first as f64) as usize % first as usize;
            let old_root = t.root(first).unwrap();
            let mut forged = Tree::new();
            for (i, l) in leaves.iter().enumerate() {
                forged.push(if i == victim { leaf_hash(b"forged") } else { *l });
            }
            let p = forged.consistency_proof(first, n).unwrap();
            prop_assert!(!verify_consistency(first, n, &old_root, &forged.root(n).unwrap(), &p));
        }

        /// Any change to an inclusion proof breaks it.
        #[test]
        fn altered_inclusion_proof_fails(n in 2u64..200, i_frac in 0.0f64..1.0, which in any::<prop::sample::Index>(), bit in 0usize..256) {
            let (t, leaves) = tree(n);
            let i = ((i_frac * n as f64) as u64).min(n - 1);
            let mut p = t.inclusion_proof(i, n).unwrap();
            let root = t.root(n).unwrap();
            prop_assert!(verify_inclusion(i, n, &leaves[i as usize], &p, &root));
            let j = which.index(p.len());
            p[j][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!verify_inclusion(i, n, &leaves[i as usize], &p, &root));
        }
    }
}
