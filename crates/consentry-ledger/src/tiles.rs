//! The Merkle tree kept as tiles, in C2SP `tlog-tiles`' layout: a tile at level `L` and index `N` holds 256
//! consecutive hashes of tree level `8·L` (the leaves at level 0), and the nodes between two tile levels are
//! recomputed from a tile when a proof needs them. Full tiles live in the store (`merkle_tiles`); only the right
//! edge (the partial tile of each level, under 256 hashes each) and a bounded cache stay in memory, so a log of a
//! billion entries needs kilobytes of tree in memory instead of 64 GB, and a proof reads O(log n) tiles.
//!
//! Tiles are derived data: every process rebuilds them from the entries it verifies ([`crate::Ledger`]'s
//! first verification reads the whole log), writes the ones the store lacks (a store from before tiles is
//! converted so, event by event untouched) and compares the ones it has — a stored tile that differs from the
//! entries is tampering, named by `ledger verify`. Checkpoints are signed over roots of the right edge, which
//! is always in memory and always recomputed from verified entries, never read from a stored tile.
//!
//! Hand-written because the crates that implement tlog-tiles fix SHA-256 and their own storage; the layout and
//! the arithmetic are the specification's.

use crate::event::node_hash;
use crate::merkle::{self, Nodes};
use crate::schema::Component;
use crate::store::Store;
use crate::{Hash, LedgerError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Tree levels per tile level (C2SP's tile height).
pub const TILE_HEIGHT: u32 = 8;

/// Hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// Bytes of a full tile as stored and served: its hashes, concatenated.
pub const TILE_BYTES: usize = TILE_WIDTH * 32;

/// Full tiles kept in memory for proofs (two generations of half this each): 16 MiB at most.
const CACHE_TILES: usize = 2048;

/// The Merkle tile table: a schema component of its own (like the keys), so a store from before tiles opened
/// read-only reads as having none, and one opened for writing gains the table and is filled on first use.
pub static TILES: Component = Component { name: "tiles", migrations: &[] };

/// The tile table on SQLite.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS merkle_tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL, hashes BLOB NOT NULL,
                                         PRIMARY KEY (level, idx)) WITHOUT ROWID;
";

/// The tile table on PostgreSQL.
#[cfg(feature = "postgres")]
pub(crate) const PG_TABLES: &str = "
CREATE TABLE IF NOT EXISTS merkle_tiles (level INTEGER NOT NULL, idx BIGINT NOT NULL, hashes BYTEA NOT NULL,
                                         PRIMARY KEY (level, idx));
";

/// One full tile: its place and its 256 hashes.
pub type Tile = (u32, u64, Arc<[Hash]>);

/// A tile's hashes as bytes (the stored and served form).
pub fn encode(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.iter().copied()).collect()
}

/// A stored full tile's hashes; anything but 256 whole hashes is corruption.
pub fn decode(level: u32, index: u64, bytes: &[u8]) -> Result<Arc<[Hash]>, LedgerError> {
    if bytes.len() != TILE_BYTES {
        return Err(LedgerError::Corrupt(format!(
            "the Merkle tile {level}/{index} holds {} bytes, not {TILE_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
}

/// The hash of `hashes` (a power of two of them) as one subtree.
fn reduce(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level.first().copied().unwrap_or_else(merkle::empty_root)
}

/// C2SP's path of a tile: `tile/<L>/<N>` with `N` in three-digit groups (`x001/x234/067`), and `.p/<W>` for a
/// partial tile of `W` hashes.
pub fn tile_path(level: u32, index: u64, width: usize) -> String {
    let mut groups = Vec::new();
    let mut n = index;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    let parts: Vec<String> = groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| if i < last { format!("x{g:03}") } else { format!("{g:03}") })
        .collect();
    let mut path = format!("tile/{level}/{}", parts.join("/"));
    if width < TILE_WIDTH {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// Parses the part of a tile path after `tile/`: `(level, index, width)`; `None` for anything C2SP does not
/// produce (so a served route never guesses).
pub fn parse_tile_path(original: &str) -> Option<(u32, u64, usize)> {
    let path = original;
    let (path, width) = match path.split_once(".p/") {
        Some((p, w)) => {
            let w: usize = w.parse().ok().filter(|w| (1..TILE_WIDTH).contains(w))?;
            (p, w)
        }
        None => (path, TILE_WIDTH),
    };
    let mut parts = path.split('/');
    let level: u32 = parts.next()?.parse().ok().filter(|l| *l < 8)?;
    let groups: Vec<&str> = parts.collect();
    let (last, front) = groups.split_last()?;
    let mut index: u64 = 0;
    for g in front {
        let digits = g.strip_prefix('x')?;
        index = index.checked_mul(1000)?.checked_add(three_digits(digits)?)?;
    }
    index = index.checked_mul(1000)?.checked_add(three_digits(last)?)?;
    // One spelling per tile: leading zeros beyond three digits, or an `x` group of zero in front, are refused.
    (tile_path(level, index, width).strip_prefix("tile/") == Some(original)).then_some((level, index, width))
}

fn three_digits(s: &str) -> Option<u64> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A stored tile that differs from the one the entries give: what [`TiledTree::flush`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileMismatch {
    /// Tile level.
    pub level: u32,
    /// Tile index.
    pub index: u64,
    /// The first entry (sequence number, from 1) the tile covers.
    pub first_seq: u64,
}

impl std::fmt::Display for TileMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the stored Merkle tile {} (from entry {}) does not match the log's entries: it was edited",
            tile_path(self.level, self.index, TILE_WIDTH),
            self.first_seq
        )
    }
}

/// What [`TiledTree::flush`] does with the tiles completed since the last flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Write those the store lacks, leave the others (the append path: the tiles are this process's own).
    Write,
    /// Compare those the store has, write those it lacks (the verification of a process's first read).
    CheckAndWrite,
    /// Compare those the store has, then forget them all (a read-only verification in bounded memory).
    CheckOnly,
}

/// The tree as tiles: the right edge in memory, full tiles in the store, recently read ones cached.
#[derive(Debug, Default)]
pub struct TiledTree {
    len: u64,
    /// `partial[L]`: the hashes of the incomplete tile at tile level `L` (fewer than 256).
    partial: Vec<Vec<Hash>>,
    /// Full tiles completed here and not (yet) in the store, by `(level, index)`.
    unstored: BTreeMap<(u32, u64), Arc<[Hash]>>,
    hot: HashMap<(u32, u64), Arc<[Hash]>>,
    cold: HashMap<(u32, u64), Arc<[Hash]>>,
}

impl TiledTree {
    /// An empty tree.
    pub fn new() -> TiledTree {
        TiledTree::default()
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a leaf hash; a tile that fills is set aside for the store and its root climbs a level.
    pub fn push(&mut self, leaf: Hash) {
        self.len += 1;
        let mut level = 0usize;
        let mut hash = leaf;
        loop {
            if self.partial.len() == level {
                self.partial.push(Vec::with_capacity(TILE_WIDTH));
            }
            self.partial[level].push(hash);
            if self.partial[level].len() < TILE_WIDTH {
                return;
            }
            let full = std::mem::replace(&mut self.partial[level], Vec::with_capacity(TILE_WIDTH));
            let index = (self.len >> (TILE_HEIGHT * (level as u32 + 1))) - 1;
            hash = reduce(&full);
            self.unstored.insert((level as u32, index), full.into());
            level += 1;
        }
    }

    /// The partial tile at `level` as it stands (fewer than 256 hashes): the right edge a server shows.
    pub fn partial(&self, level: u32) -> &[Hash] {
        self.partial.get(level as usize).map_or(&[], |p| p.as_slice())
    }

    /// Stores, checks or forgets the tiles completed since the last flush (see [`Flush`]); returns the stored
    /// tiles that differ from them. Tiles the store does not keep (in memory, or opened read-only) stay here.
    pub fn flush(&mut self, store: &dyn Store, how: Flush) -> Result<Vec<TileMismatch>, LedgerError> {
        if self.unstored.is_empty() {
            return Ok(Vec::new());
        }
        let mut mismatches = Vec::new();
        let mut missing: Vec<(u32, u64, Vec<u8>)> = Vec::new();
        let mut present: Vec<(u32, u64)> = Vec::new();
        if how == Flush::Write {
            missing = self.unstored.iter().map(|(&(l, i), h)| (l, i, encode(h))).collect();
        } else {
            let mut by_level: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            for &(l, i) in self.unstored.keys() {
                let r = by_level.entry(l).or_insert((i, i));
                r.0 = r.0.min(i);
                r.1 = r.1.max(i);
            }
            for (level, (from, to)) in by_level {
                let stored: HashMap<u64, Vec<u8>> = store.tiles(level, from, to)?.into_iter().collect();
                for (&(l, i), hashes) in self.unstored.range((level, from)..=(level, to)) {
                    let bytes = encode(hashes);
                    match stored.get(&i) {
                        Some(s) if *s == bytes => present.push((l, i)),
                        Some(_) => {
                            mismatches.push(TileMismatch {
                                level: l,
                                index: i,
                                first_seq: (i << (TILE_HEIGHT * (l + 1))) + 1,
                            });
                            present.push((l, i));
                        }
                        None => missing.push((l, i, bytes)),
                    }
                }
            }
        }
        if how == Flush::CheckOnly {
            self.unstored.clear();
            return Ok(mismatches);
        }
        for key in present {
            self.unstored.remove(&key);
        }
        // A store that cannot take them now (a read-only role, a full disk) leaves them here: they are a cache of
        // the entries, and the next flush tries again.
        if !missing.is_empty() && store.put_tiles(&missing).unwrap_or(false) {
            for (l, i, _) in &missing {
                self.unstored.remove(&(*l, *i));
            }
        }
        Ok(mismatches)
    }

    /// The root of the whole tree, from the right edge alone (never a stored tile): what a checkpoint signs.
    pub fn edge_root(&self) -> Hash {
        match merkle::root_of(&mut EdgeNodes(self), self.len) {
            Ok(Some(root)) => root,
            // The edge holds every node of the whole tree's root (the largest perfect subtrees sit in the partial
            // tiles of their levels); reaching here would be a bug in that arithmetic.
            _ => unreachable!("the root of the whole tree reads only the right edge"),
        }
    }

    /// Reads nodes from this tree and `store`, for the RFC 9162 algorithms.
    pub fn nodes<'a>(&'a mut self, store: &'a dyn Store) -> TileNodes<'a> {
        TileNodes { tree: self, store }
    }

    /// The Merkle tree hash of the first `size` leaves (`None` if the tree is smaller).
    pub fn root(&mut self, store: &dyn Store, size: u64) -> Result<Option<Hash>, LedgerError> {
        merkle::root_of(&mut self.nodes(store), size)
    }

    /// Inclusion proof of leaf `index` (from 0) in the tree of the first `size` leaves.
    pub fn inclusion_proof(
        &mut self,
        store: &dyn Store,
        index: u64,
        size: u64,
    ) -> Result<Option<Vec<Hash>>, LedgerError> {
        merkle::inclusion_proof_of(&mut self.nodes(store), index, size)
    }

    /// Consistency proof between the trees of the first `first` and `second` leaves.
    pub fn consistency_proof(
        &mut self,
        store: &dyn Store,
        first: u64,
        second: u64,
    ) -> Result<Option<Vec<Hash>>, LedgerError> {
        merkle::consistency_proof_of(&mut self.nodes(store), first, second)
    }

    /// The full tile at `(level, index)`: completed here, cached, or read from the store.
    pub fn full_tile(&mut self, store: &dyn Store, level: u32, index: u64) -> Result<Arc<[Hash]>, LedgerError> {
        let key = (level, index);
        if let Some(t) = self.unstored.get(&key).or_else(|| self.hot.get(&key)) {
            return Ok(t.clone());
        }
        let tile = match self.cold.remove(&key) {
            Some(t) => t,
            None => {
                let bytes = store.tiles(level, index, index)?.into_iter().find(|(i, _)| *i == index).ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "the Merkle tile {} is missing from the store: it was deleted; reopen the ledger to rebuild it",
                        tile_path(level, index, TILE_WIDTH)
                    ))
                })?;
                decode(level, index, &bytes.1)?
            }
        };
        if self.hot.len() >= CACHE_TILES / 2 {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.hot.insert(key, tile.clone());
        Ok(tile)
    }

    /// Number of full tiles at `level`.
    pub fn full_tiles(&self, level: u32) -> u64 {
        self.len.checked_shr(TILE_HEIGHT * (level + 1)).unwrap_or(0)
    }
}

/// A [`TiledTree`] with the store its full tiles are read from.
pub struct TileNodes<'a> {
    tree: &'a mut TiledTree,
    store: &'a dyn Store,
}

impl Nodes for TileNodes<'_> {
    type Error = LedgerError;

    fn size(&self) -> u64 {
        self.tree.len
    }

    fn node(&mut self, height: u32, index: u64) -> Result<Hash, LedgerError> {
        let level = height / TILE_HEIGHT;
        let r = height % TILE_HEIGHT;
        let first = index << r;
        let tile = first >> TILE_HEIGHT;
        let offset = (first % TILE_WIDTH as u64) as usize;
        let count = 1usize << r;
        let len = self.tree.len;
        let beyond = || LedgerError::Corrupt(format!("node {height}/{index} is beyond the tree of {len}"));
        let full = self.tree.full_tiles(level);
        if tile < full {
            let t = self.tree.full_tile(self.store, level, tile)?;
            return t.get(offset..offset + count).map(reduce).ok_or_else(beyond);
        }
        if tile == full {
            return self.tree.partial(level).get(offset..offset + count).map(reduce).ok_or_else(beyond);
        }
        Err(beyond())
    }
}

/// The right edge alone, for [`TiledTree::edge_root`].
struct EdgeNodes<'a>(&'a TiledTree);

impl Nodes for EdgeNodes<'_> {
    type Error = ();

    fn size(&self) -> u64 {
        self.0.len
    }

    fn node(&mut self, height: u32, index: u64) -> Result<Hash, ()> {
        let level = height / TILE_HEIGHT;
        let first = index << (height % TILE_HEIGHT);
        if first >> TILE_HEIGHT != self.0.full_tiles(level) {
            return Err(());
        }
        let offset = (first % TILE_WIDTH as u64) as usize;
        self.0.partial(level).get(offset..offset + (1usize << (height % TILE_HEIGHT))).map(reduce).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::leaf_hash;
    use crate::merkle::Tree;

    #[test]
    fn paths_follow_c2sp() {
        assert_eq!(tile_path(0, 0, 256), "tile/0/000");
        assert_eq!(tile_path(1, 1234067, 256), "tile/1/x001/x234/067");
        assert_eq!(tile_path(2, 5, 17), "tile/2/005.p/17");
        for (l, i, w) in [(0, 0, 256), (1, 1234067, 256), (2, 5, 17), (3, 1000, 1), (0, 999, 255)] {
            let p = tile_path(l, i, w);
            assert_eq!(parse_tile_path(p.strip_prefix("tile/").unwrap()), Some((l, i, w)), "{p}");
        }
        for bad in ["0/1", "0/0001", "9/000", "0/x000/001", "0/001.p/256", "0/001.p/0", "a/000", "0/x1/000", "0/"] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }

    /// The tiled tree's roots and proofs equal the in-memory reference at every size, on both sides of tile
    /// edges, with tiles kept only in memory (a store that keeps none).
    #[cfg(feature = "sqlite")]
    #[test]
    fn tiles_answer_like_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::sqlite::SqliteStore::open(&dir.path().join("tiles.db")).unwrap();
        let mut tiled = TiledTree::new();
        let mut reference = Tree::new();
        let n = 3 * 256 * 256 + 300;
        for i in 0..n as u64 {
            let l = leaf_hash(&i.to_be_bytes());
            tiled.push(l);
            reference.push(l);
            if i % 97 == 0 || (i + 1) % 256 < 2 {
                assert_eq!(Some(tiled.edge_root()), reference.root(i + 1), "edge root at {}", i + 1);
            }
        }
        tiled.flush(&store, Flush::Write).unwrap();
        for size in [0u64, 1, 2, 255, 256, 257, 511, 512, 65535, 65536, 65537, 131072, 196608, n as u64] {
            assert_eq!(tiled.root(&store, size).unwrap(), reference.root(size), "root {size}");
            for first in [0u64, 1, 255, 256, 65536, size / 2, size] {
                if first <= size {
                    assert_eq!(
                        tiled.consistency_proof(&store, first, size).unwrap(),
                        reference.consistency_proof(first, size),
                        "{first}→{size}"
                    );
                }
            }
            for index in [0u64, 1, 255, 256, 65535, 65536, size.saturating_sub(1)] {
                assert_eq!(
                    tiled.inclusion_proof(&store, index, size).unwrap(),
                    reference.inclusion_proof(index, size),
                    "{index} in {size}"
                );
            }
        }
        assert_eq!(tiled.root(&store, n as u64 + 1).unwrap(), None);
        assert_eq!((tiled.partial(0).len(), tiled.partial(1).len(), tiled.partial(2).len()), (44, 1, 3));
    }
}
