//! A file read once and kept until it changes on disk: the API keys, a platform's JWKS and the signed-out web
//! sessions are consulted on every request, and replaced (by rename) by another process or the platform at any time.

use crate::error::{AppError, Result};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What identifies one version of a file: files here are replaced by rename, so the inode changes with every write
/// (length and modification time catch an edit in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    /// The stamp of the file `meta` describes.
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }

    /// The stamp of the file `path` leads to now, through symbolic links (a key file mounted the Kubernetes way is
    /// a link whose target changes); none when it cannot be read, e.g. it does not exist.
    pub(crate) fn read(path: &Path) -> Option<FileStamp> {
        std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }
}

/// The parsed contents of one file as last read, and the stamp it was read at.
pub(crate) struct FileCache<T>(Mutex<Option<(FileStamp, Arc<T>)>>);

impl<T> Default for FileCache<T> {
    fn default() -> Self {
        FileCache(Mutex::new(None))
    }
}

impl<T> FileCache<T> {
    /// The contents of `path`: the cached value while the file's stamp is unchanged, else `load()` (which returns
    /// the stamp it read at, taken before reading, or none for a file it treats as absent — not cached).
    pub(crate) fn get(&self, path: &Path, load: impl FnOnce() -> Result<(Option<FileStamp>, T)>) -> Result<Arc<T>> {
        let stamp = FileStamp::read(path);
        let mut cache =
            self.0.lock().map_err(|_| AppError::internal(format!("the cache of {} is poisoned", path.display())))?;
        if let (Some(now), Some((then, value))) = (stamp, cache.as_ref())
            && now == *then
        {
            return Ok(Arc::clone(value));
        }
        let (stamp, value) = load()?;
        let value = Arc::new(value);
        *cache = stamp.map(|s| (s, Arc::clone(&value)));
        Ok(value)
    }
}
