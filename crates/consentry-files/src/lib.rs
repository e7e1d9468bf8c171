//! Writing where the user said.
//!
//! Every command that writes a file the user names goes through [`Output`]:
//!
//! - a regular file, or a path where nothing exists yet, is written atomically: a temporary file
//!   beside the target, synced, given its mode explicitly (never left to the umask) and renamed
//!   over the target when complete, so a reader never sees half a file;
//! - a character or block device or a FIFO is written to directly, as `sort -o` and `cp` do:
//!   replacing `/dev/null` or a pipe a reader waits on with a regular file would break them;
//! - a symbolic link is followed (the atomic write happens beside its final target, so the link
//!   stays), or refused with [`OutputOptions::no_follow`];
//! - a directory, a socket or a link loop where a file is expected is refused, as bad input.
//!
//! Commands that write a directory they own (a dataset, a model, an evidence bundle) ask
//! [`taken`] first: anything already at the path, even a dangling link, is refused before any
//! work starts; [`commit_dir`] sets the modes of what they wrote ([`seal_dir`]) and renames it
//! into place.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many links are followed before a chain counts as a loop (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Mode of files anyone on the machine may read: reports, redacted text, public keys.
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode of files holding member data: receipts, exports, datasets, models.
pub const MODE_MEMBER_DATA: u32 = 0o640;
/// Mode of secrets: signing and noise keys.
pub const MODE_SECRET: u32 = 0o600;

/// What went wrong writing an output; [`OutputError::is_bad_input`] tells the user's mistakes apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A directory stands where a file is to be written.
    #[error("{0} is a directory; name a file to write (for example {0}/out.txt)")]
    IsDirectory(PathBuf),
    /// A socket cannot be opened for writing.
    #[error("{0} is a socket; name a file, a FIFO or a device to write to")]
    Socket(PathBuf),
    /// The user asked not to follow links and the path is one.
    #[error("{path} is a symbolic link (to {target}); name the target itself, or allow following links")]
    LinkRefused {
        /// The link.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// Following links never ended.
    #[error("{0} is a symbolic link that loops (more than {MAX_LINKS} links deep); fix or remove the link")]
    LinkLoop(PathBuf),
    /// The directory the file would go in does not exist.
    #[error("cannot write {path}: its directory {dir} does not exist; create it first")]
    NoDirectory {
        /// The file to write.
        path: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// The file system refused.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file being written (the resolved target for links).
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl OutputError {
    /// True when the user named a wrong output (exit code 2), not when the write itself failed.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, OutputError::Io { .. })
    }

    fn io(path: &Path, source: io::Error) -> OutputError {
        OutputError::Io { path: path.to_path_buf(), source }
    }
}

/// What stands at a path, looked at without following a final link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing.
    Missing,
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (dangling or not).
    Link,
    /// A character or block device.
    Device,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl Kind {
    /// What stands at `path`, without following a final link.
    pub fn of(path: &Path) -> io::Result<Kind> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Kind::Missing),
            Err(e) => return Err(e),
        };
        let t = meta.file_type();
        Ok(if t.is_symlink() {
            Kind::Link
        } else if t.is_dir() {
            Kind::Directory
        } else if t.is_char_device() || t.is_block_device() {
            Kind::Device
        } else if t.is_fifo() {
            Kind::Fifo
        } else if t.is_socket() {
            Kind::Socket
        } else {
            Kind::Regular
        })
    }
}

/// True when anything stands at `path` (a file, a directory, a device, even a dangling link):
/// a command about to create a directory of its own refuses such a path before any work starts,
/// since what stands there is the user's and is never replaced.
pub fn taken(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// How an output is written.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    /// Permission bits of a newly written regular file, set explicitly whatever the umask.
    pub mode: u32,
    /// Follow a symbolic link to its target (the default), or refuse it.
    pub follow_links: bool,
}

impl OutputOptions {
    /// Files anyone may read.
    pub const PUBLIC: OutputOptions = OutputOptions { mode: MODE_PUBLIC, follow_links: true };
    /// Files holding member data.
    pub const MEMBER_DATA: OutputOptions = OutputOptions { mode: MODE_MEMBER_DATA, follow_links: true };
    /// Secrets.
    pub const SECRET: OutputOptions = OutputOptions { mode: MODE_SECRET, follow_links: true };

    /// The same options, refusing symbolic links.
    pub fn no_follow(self) -> OutputOptions {
        OutputOptions { follow_links: false, ..self }
    }
}

/// Follows `path`'s chain of links to what finally stands there (which may be missing).
fn resolve(path: &Path, follow: bool) -> Result<(PathBuf, Kind), OutputError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let kind = Kind::of(&p).map_err(|e| OutputError::io(&p, e))?;
        if kind != Kind::Link {
            return Ok((p, kind));
        }
        let target = std::fs::read_link(&p).map_err(|e| OutputError::io(&p, e))?;
        if !follow {
            return Err(OutputError::LinkRefused { path: p, target });
        }
        p = match p.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    Err(OutputError::LinkLoop(path.to_path_buf()))
}

/// A file being written where the user said; [`Output::commit`] completes it.
///
/// Dropped without `commit`, an atomic output removes its temporary file and leaves the target
/// as it was.
pub struct Output {
    file: Option<File>,
    /// The resolved target (a link's final target).
    target: PathBuf,
    /// The temporary file renamed over the target; `None` when writing directly.
    tmp: Option<PathBuf>,
}

impl Output {
    /// Opens `path` for writing as the module documentation describes.
    pub fn create(path: &Path, opts: OutputOptions) -> Result<Output, OutputError> {
        let (target, kind) = resolve(path, opts.follow_links)?;
        match kind {
            Kind::Directory => Err(OutputError::IsDirectory(target)),
            Kind::Socket => Err(OutputError::Socket(target)),
            Kind::Device | Kind::Fifo => {
                // Opening a FIFO blocks until a reader comes, as it does for every writer.
                let file = OpenOptions::new().write(true).open(&target).map_err(|e| OutputError::io(&target, e))?;
                Ok(Output { file: Some(file), target, tmp: None })
            }
            Kind::Missing | Kind::Regular => {
                let dir = match target.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                if !dir.is_dir() {
                    return Err(OutputError::NoDirectory { path: target, dir });
                }
                let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
                // A leftover of an earlier run with the same pid is ours to replace, and those of processes that
                // died mid-write (a crash, a kill) are junk nobody else will remove.
                let _ = std::fs::remove_file(&tmp);
                remove_dead_temporaries(&dir, &name);
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(opts.mode)
                    .open(&tmp)
                    .map_err(|e| OutputError::io(&target, e))?;
                // The mode given at creation is filtered by the umask; set it explicitly.
                file.set_permissions(std::fs::Permissions::from_mode(opts.mode))
                    .map_err(|e| OutputError::io(&target, e))?;
                Ok(Output { file: Some(file), target, tmp: Some(tmp) })
            }
            Kind::Link => Err(OutputError::LinkLoop(path.to_path_buf())),
        }
    }

    /// The file the bytes end up in (for a link, its final target).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Finishes the output: an atomic one is synced and renamed over its target (and the rename
    /// made durable); a direct one is flushed.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let Some(file) = self.file.take() else { return Ok(()) };
        match self.tmp.take() {
            None => Ok(()),
            Some(tmp) => {
                let done = file.sync_all().and_then(|()| {
                    fail::fail_point!("files::commit::before_rename", |a| Err(fault::injected(a)));
                    std::fs::rename(&tmp, &self.target)
                });
                if let Err(e) = done {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(OutputError::io(&self.target, e));
                }
                sync_parent(&self.target);
                fail::fail_point!("files::commit::after_rename", |a| Err(OutputError::io(
                    &self.target,
                    fault::injected(a)
                )));
                Ok(())
            }
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file.as_mut().ok_or_else(|| io::Error::other("the output was already committed"))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file()?;
        fail::fail_point!("files::output::write", |a| fault::short_write(file, buf, a));
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            self.file = None;
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Removes `dir/.NAME.PID.tmp` files [`Output`] left for `name` in processes no longer running (Linux's
/// `/proc` says which are); a live writer's temporary file is never touched.
fn remove_dead_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id()
            && Path::new("/proc/self").exists()
            && !Path::new("/proc").join(pid.to_string()).exists()
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `path` in one go, as [`Output`] does.
pub fn write(path: &Path, bytes: &[u8], opts: OutputOptions) -> Result<PathBuf, OutputError> {
    let mut out = Output::create(path, opts)?;
    out.write_all(bytes).map_err(|e| OutputError::io(out.target(), e))?;
    let target = out.target().to_path_buf();
    out.commit()?;
    Ok(target)
}

/// Writes one file of a directory a command is producing (before [`commit_dir`] puts the directory in place),
/// with the fail point `point` in front of it so the fault-injection tests can fail that very write (an I/O
/// error, a full disk, half the bytes written).
pub fn write_part(point: &str, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _ = point; // Unused when fail points are compiled out.
    fail::fail_point!(point, |a| {
        let mut f = File::create(path)?;
        fault::short_write(&mut f, bytes, a).map(|_| ())
    });
    std::fs::write(path, bytes)
}

/// A fail point where only a crash makes sense (right after a commit, when an error returned would be a lie):
/// `return(crash)` aborts the process there; any other action does nothing.
pub fn crash_point(point: &str) {
    let _ = point; // Unused when fail points are compiled out.
    let fire = || -> Option<()> {
        fail::fail_point!(point, |a| {
            let _ = fault::injected(a);
            None
        });
        Some(())
    };
    let _ = fire();
}

/// Creates a new secret file (a signing or noise key) with mode 0600 exactly, whatever the umask;
/// an existing file is never overwritten (a key is made once).
pub fn create_secret(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create_new(true).mode(MODE_SECRET).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(MODE_SECRET))?;
    Ok(file)
}

/// Sets the modes of a directory a command produced (a dataset, a model, an evidence bundle)
/// before it is renamed into place: files [`MODE_MEMBER_DATA`], directories 0750, whatever the
/// umask, and every file and directory synced to disk. Links inside are left as they are and never followed.
pub fn seal_dir(dir: &Path) -> io::Result<()> {
    let set = |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        set(&d, 0o750)?;
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let t = entry.file_type()?;
            if t.is_dir() {
                stack.push(entry.path());
            } else if t.is_file() {
                set(&entry.path(), MODE_MEMBER_DATA)?;
                // On disk before the rename makes the directory count: a power cut never leaves a committed
                // directory with empty files.
                File::open(entry.path())?.sync_all()?;
            }
        }
        // Best effort, as for the directory a file is renamed into.
        if let Ok(f) = File::open(&d) {
            let _ = f.sync_all();
        }
    }
    Ok(())
}

/// Puts a directory a command produced under a temporary name (beside `out`) into place: seals its
/// modes ([`seal_dir`]) and renames it to `out`, so a dataset, model or bundle is never seen partial.
/// On failure the temporary directory is removed and `out` is left as it was.
pub fn commit_dir(tmp: &Path, out: &Path) -> io::Result<()> {
    let done = seal_dir(tmp).and_then(|()| {
        fail::fail_point!("files::commit_dir::before_rename", |a| Err(fault::injected(a)));
        std::fs::rename(tmp, out)
    });
    if done.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
        return done;
    }
    // The rename is durable only once the directory holding `out` is synced.
    sync_parent(out);
    fail::fail_point!("files::commit_dir::after_rename", |a| Err(fault::injected(a)));
    Ok(())
}

/// Syncs the directory holding `path`, so a rename into it survives a power cut (best effort: some
/// file systems refuse to sync a directory).
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Failures the fault-injection tests inject at the named fail points (`fail::fail_point!`) of every
/// crate; the fail points compile to nothing unless a crate's `failpoints` feature is on.
///
/// A fail point's action is `return(KIND)` in the `FAILPOINTS` environment variable
/// (`FAILPOINTS='files::commit::before_rename=return(crash)'`), KIND being `io` (an I/O error, the
/// default), `enospc` (a full disk), `short` (half the bytes written, then a full disk; only where
/// bytes are written) or `crash` (the process aborts on the spot, as a kill or a power cut would
/// stop it).
pub mod fault {
    use std::io::{self, Write};

    /// `ENOSPC` on Linux: no space left on device.
    const ENOSPC: i32 = 28;

    /// The error a fail point's argument asks for; `crash` aborts the process instead of returning.
    pub fn injected(arg: Option<String>) -> io::Error {
        match arg.as_deref() {
            Some("crash") => std::process::abort(),
            Some("enospc") | Some("short") => io::Error::from_raw_os_error(ENOSPC),
            Some(other) => io::Error::other(format!("injected fault ({other})")),
            None => io::Error::other("injected fault"),
        }
    }

    /// A write cut short: with `short`, half of `buf` reaches `out` and the write then fails as a
    /// full disk would; any other argument fails as [`injected`] says, writing nothing.
    pub fn short_write(out: &mut impl Write, buf: &[u8], arg: Option<String>) -> io::Result<usize> {
        if arg.as_deref() == Some("short") {
            out.write_all(&buf[..buf.len() / 2])?;
        }
        Err(injected(arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn missing_and_regular_files_are_written_atomically_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write(&p, b"one", OutputOptions::SECRET).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        write(&p, b"two", OutputOptions::MEMBER_DATA).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(mode(&p), 0o640);
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_uncommitted_output_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        std::fs::write(&p, b"before").unwrap();
        {
            let mut o = Output::create(&p, OutputOptions::PUBLIC).unwrap();
            o.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"before");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_link_is_followed_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let target = sub.join("real.txt");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.txt");
        symlink("sub/real.txt", &link).unwrap();
        let written = write(&link, b"new", OutputOptions::PUBLIC).unwrap();
        assert_eq!(written, dir.path().join("sub/real.txt"));
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // A dangling link gets its target created.
        let dangling = dir.path().join("dangling");
        symlink(sub.join("new.txt"), &dangling).unwrap();
        write(&dangling, b"x", OutputOptions::PUBLIC).unwrap();
        assert_eq!(std::fs::read(sub.join("new.txt")).unwrap(), b"x");
        assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    }

    #[test]
    fn no_follow_loops_directories_and_sockets_are_refused_as_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        symlink("elsewhere", &link).unwrap();
        let e = write(&link, b"x", OutputOptions::PUBLIC.no_follow()).unwrap_err();
        assert!(matches!(e, OutputError::LinkRefused { .. }) && e.is_bad_input(), "{e}");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        let e = write(&a, b"x", OutputOptions::PUBLIC).unwrap_err();
        assert!(matches!(e, OutputError::LinkLoop(_)) && e.is_bad_input(), "{e}");
        let e = write(dir.path(), b"x", OutputOptions::PUBLIC).unwrap_err();
        assert!(matches!(e, OutputError::IsDirectory(_)) && e.is_bad_input(), "{e}");
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = write(&sock, b"x", OutputOptions::PUBLIC).unwrap_err();
        assert!(matches!(e, OutputError::Socket(_)) && e.is_bad_input(), "{e}");
        let e = write(&dir.path().join("no/such/dir/f"), b"x", OutputOptions::PUBLIC).unwrap_err();
        assert!(matches!(e, OutputError::NoDirectory { .. }) && e.is_bad_input(), "{e}");
    }

    #[test]
    fn a_fifo_is_written_through_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = fifo.clone();
        std::thread::spawn(move || {
            if let Ok(bytes) = std::fs::read(reader) {
                let _ = tx.send(bytes);
            }
        });
        write(&fifo, b"through the pipe", OutputOptions::PUBLIC).unwrap();
        let got = rx.recv_timeout(std::time::Duration::from_secs(30)).ok();
        assert_eq!(got.as_deref(), Some(&b"through the pipe"[..]));
        assert_eq!(Kind::of(&fifo).unwrap(), Kind::Fifo);
    }

    #[test]
    fn a_device_is_written_through_and_stays_a_device() {
        // A null device of our own (mknod needs root; elsewhere there is nothing to test).
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        let made = std::process::Command::new("mknod").arg(&null).args(["c", "1", "3"]).output();
        if !matches!(made, Ok(ref o) if o.status.success()) {
            eprintln!("skipped: mknod needs root");
            return;
        }
        write(&null, b"discarded", OutputOptions::PUBLIC).unwrap();
        assert_eq!(Kind::of(&null).unwrap(), Kind::Device);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn seal_dir_sets_modes_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ds");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), b"1").unwrap();
        std::fs::write(d.join("sub/b"), b"2").unwrap();
        std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o666)).unwrap();
        seal_dir(&d).unwrap();
        assert_eq!((mode(&d), mode(&d.join("sub"))), (0o750, 0o750));
        assert_eq!((mode(&d.join("a")), mode(&d.join("sub/b"))), (0o640, 0o640));
    }

    #[test]
    fn commit_dir_seals_and_renames_and_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, out) = (dir.path().join(".ds.partial"), dir.path().join("ds"));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("a"), b"1").unwrap();
        commit_dir(&tmp, &out).unwrap();
        assert!(!tmp.exists());
        assert_eq!((mode(&out), mode(&out.join("a"))), (0o750, 0o640));
        // A non-empty directory already at `out` cannot be renamed over: it stays, the temporary goes.
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("b"), b"2").unwrap();
        assert!(commit_dir(&tmp, &out).is_err());
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(out.join("a")).unwrap(), b"1");
    }

    #[test]
    fn secrets_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        create_secret(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(create_secret(&p).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_dangling_link_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        assert!(!taken(&p));
        symlink("nowhere", &p).unwrap();
        assert!(taken(&p) && !p.exists());
    }

    #[test]
    fn a_short_write_or_a_full_disk_fails_the_write_and_reports_enospc() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part");
        // Names of this test's own, so no other test running meanwhile hits them.
        fail::cfg("files::test::short", "return(short)").unwrap();
        let e = write_part("files::test::short", &p, b"abcdef").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        assert_eq!(std::fs::read(&p).unwrap(), b"abc", "half the bytes, then the error");
        fail::cfg("files::test::enospc", "return(enospc)").unwrap();
        let e = write_part("files::test::enospc", &p, b"abcdef").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        fail::cfg("files::test::io", "return(io)").unwrap();
        let e = write_part("files::test::io", &p, b"abcdef").unwrap_err();
        assert!(e.to_string().contains("injected fault"), "{e}");
        // Off, the write is whole.
        fail::remove("files::test::short");
        write_part("files::test::short", &p, b"abcdef").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcdef");
    }

    #[test]
    fn an_output_whose_write_fails_half_way_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        std::fs::write(&p, b"before").unwrap();
        let mut o = Output::create(&p, OutputOptions::PUBLIC).unwrap();
        let file = o.file().unwrap();
        let e = fault::short_write(file, b"abcdef", Some("short".into())).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28));
        drop(o); // The caller gives up on the error: nothing is committed.
        assert_eq!(std::fs::read(&p).unwrap(), b"before");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        // 4194999 is above Linux's largest pid (so never running); pid 1 always runs.
        let dead = dir.path().join(".out.txt.4194999.tmp");
        let live = dir.path().join(".out.txt.1.tmp");
        std::fs::write(&dead, b"junk").unwrap();
        std::fs::write(&live, b"busy").unwrap();
        write(&p, b"x", OutputOptions::PUBLIC).unwrap();
        assert!(!dead.exists() && live.exists());
    }
}
