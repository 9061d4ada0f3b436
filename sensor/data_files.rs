//! Files trawl writes in its data directory: the writer locks and appends and replacements
//! that never follow a symlink.
//!
//! The locks are `flock`s, one file per role so the roles are independent: one `trawl run` per
//! data directory (`DATA/.lock`, held for the daemon's life) and one snapshot update at a time
//! (`DATA/.update.lock`, held by `trawl update` and by the daemon's own scheduled updates while
//! they run). A lock ends with the process that holds it, even on `kill -9`: there is no stale
//! lock to clean up.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file of the data directory that could not be locked, opened or written.
#[derive(Debug, thiserror::Error)]
pub enum DataFileError {
    /// A lock file could not be opened (or is a symlink).
    #[error("opening the lock file {}", path.display())]
    OpenLock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `flock` failed.
    #[error("locking {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be opened to append (or is a symlink).
    #[error("opening {} to append", path.display())]
    Append {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A replacement's temporary file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The temporary file could not be renamed over the file.
    #[error("replacing {}", path.display())]
    Replace {
        /// The file replaced.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What a lock holder does with the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `trawl run`: one daemon per data directory.
    Daemon,
    /// Publishing a snapshot (`trawl update`, the daemon's feed scheduler).
    Update,
    /// Writing the retro index (`scan --record`, `replay --record`, `trawl run` with
    /// `[retro]`): one writer at a time.
    Retro,
}

impl Role {
    fn file(self, data: &Path) -> PathBuf {
        data.join(match self {
            Role::Daemon => ".lock",
            Role::Update => ".update.lock",
            Role::Retro => ".retro.lock",
        })
    }
}

/// A held lock on a data directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// `flock` the file, waiting or not; `false` when someone else holds it and we do not wait.
fn flock(file: &File, wait: bool) -> std::io::Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

impl DataLock {
    fn open(path: &Path) -> Result<File, DataFileError> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o644)
            .open(path)
            .map_err(|e| DataFileError::OpenLock {
                path: path.to_path_buf(),
                source: refusing_symlink(path, e),
            })
    }

    /// Take `role` on `data` if nobody holds it; `None` when another process does.
    pub fn try_lock(data: &Path, role: Role) -> Result<Option<DataLock>, DataFileError> {
        let path = role.file(data);
        let file = Self::open(&path)?;
        let got = flock(&file, false).map_err(|source| DataFileError::Lock { path, source })?;
        Ok(got.then_some(DataLock { _file: file }))
    }

    /// Take `role` on `data`, waiting for its holder to finish; `on_wait` runs once first
    /// when someone holds it.
    pub fn lock(
        data: &Path,
        role: Role,
        on_wait: impl FnOnce(),
    ) -> Result<DataLock, DataFileError> {
        if let Some(l) = Self::try_lock(data, role)? {
            return Ok(l);
        }
        on_wait();
        let path = role.file(data);
        let file = Self::open(&path)?;
        flock(&file, true).map_err(|source| DataFileError::Lock { path, source })?;
        Ok(DataLock { _file: file })
    }
}

/// Open `path` for appending (created 0644 if missing), refusing a symlink in its place.
pub fn open_append(path: &Path) -> Result<File, DataFileError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| DataFileError::Append {
            path: path.to_path_buf(),
            source: refusing_symlink(path, e),
        })
}

/// Replace `path` with `bytes` (write a temp file beside it, rename over), following no symlink.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), DataFileError> {
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    replace_via(path, &tmp, bytes, false)
}

/// [`replace`], crash-safe and for files more than one process may write: the temporary file
/// is this process's own (`.NAME.PID.tmp`), fsynced before the rename, and removed on failure;
/// the directory is fsynced after the rename.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> Result<(), DataFileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let done = replace_via(path, &tmp, bytes, true);
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn replace_via(path: &Path, tmp: &Path, bytes: &[u8], sync: bool) -> Result<(), DataFileError> {
    let written = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(tmp)
        .map_err(|e| refusing_symlink(tmp, e))
        .and_then(|mut f| {
            f.write_all(bytes)?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        });
    if let Err(source) = written {
        return Err(DataFileError::Write {
            path: tmp.to_path_buf(),
            source,
        });
    }
    let replaced = std::fs::rename(tmp, path).and_then(|()| match (sync, path.parent()) {
        // The rename is durable only once the directory holding it is on disk.
        (true, Some(dir)) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        (true, _) => std::fs::File::open(".")?.sync_all(),
        (false, _) => Ok(()),
    });
    replaced.map_err(|source| DataFileError::Replace {
        path: path.to_path_buf(),
        source,
    })
}

/// `O_NOFOLLOW` on a symlink fails with ELOOP: say so in words.
pub fn refusing_symlink(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        std::io::Error::other(format!(
            "{} is a symbolic link: refusing to follow it",
            path.display()
        ))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_role_and_roles_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = DataLock::try_lock(dir.path(), Role::Daemon).unwrap();
        assert!(daemon.is_some());
        assert!(DataLock::try_lock(dir.path(), Role::Daemon)
            .unwrap()
            .is_none());
        let update = DataLock::try_lock(dir.path(), Role::Update).unwrap();
        assert!(update.is_some(), "an update runs beside the daemon");
        // A second update waits for the first one, then proceeds.
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let l = DataLock::lock(&d, Role::Update, || tx.send(()).unwrap()).unwrap();
            drop(l);
        });
        rx.recv().unwrap();
        drop(update);
        waiter.join().unwrap();
        drop(daemon);
        assert!(DataLock::try_lock(dir.path(), Role::Daemon)
            .unwrap()
            .is_some());
    }

    #[test]
    fn appends_and_replacements_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let link = dir.path().join("spool.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_append(&link).unwrap_err();
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            cause
                .as_deref()
                .is_some_and(|c| c.contains("symbolic link")),
            "{err}: {cause:?}"
        );
        let pos = dir.path().join("spool.pos");
        std::os::unix::fs::symlink(&target, dir.path().join("spool.pos.tmp")).unwrap();
        assert!(replace(&pos, b"12").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        std::fs::write(dir.path().join("plain"), "a\n").unwrap();
        writeln!(open_append(&dir.path().join("plain")).unwrap(), "b").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("plain")).unwrap(),
            "a\nb\n"
        );
    }
}
