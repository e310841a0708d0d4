//! The file store: one directory (0700, ours), per key a record `<id>.rec` (0600, replaced
//! atomically: temp file, fsync, rename) and a lock file `<id>.lock` that is never replaced or
//! removed. The lock is an open-file-description lock (`F_OFD_SETLK`) on it, not the file's
//! existence: the kernel drops it when the holder closes it or dies, so a crash never needs
//! clean-up. The descriptor is opened O_CLOEXEC; a child after fork() inherits it but never
//! unlocks it (the guard lives on the parent's stack, which the child never runs).

use super::{Guard, Store, StoreError};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Creates the directory (0700) if needed; refuses one that is not ours or that group or
    /// others may write to (they could replace records or the lock files).
    pub fn open(dir: &str) -> Result<FileStore, String> {
        let path = Path::new(dir);
        if !path.is_absolute() {
            return Err(format!("{dir}: the directory must be an absolute path"));
        }
        if !path.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| format!("cannot create {dir}: {e}"))?;
        }
        let meta = std::fs::metadata(path).map_err(|e| format!("{dir}: {e}"))?;
        if !meta.is_dir() {
            return Err(format!("{dir} is not a directory"));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "{dir} belongs to uid {}, not to this user (uid {me}); refusing to share tokens through it",
                meta.uid()
            ));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            return Err(format!(
                "{dir} is writable by group or others (mode {:o}); chmod 700 it",
                meta.permissions().mode() & 0o7777
            ));
        }
        Ok(FileStore {
            dir: path.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::down(format!("{what} {}: {e}", path.display()))
}

/// Try to take a write lock on the whole file: Ok(true) taken, Ok(false) held by another.
fn ofd_lock(f: &File, kind: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: an all-zero flock is valid; the fields that matter are set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: a valid descriptor and a valid flock for F_OFD_SETLK.
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

impl Store for FileStore {
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        _hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError> {
        let path = self.dir.join(format!("{id}.lock"));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io("cannot open", &path, e))?;
        let mut waited = false;
        let mut pause = Duration::from_micros(200);
        loop {
            if ofd_lock(&f, libc::F_WRLCK).map_err(|e| io("cannot lock", &path, e))? {
                break;
            }
            waited = true;
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::busy(
                    "another process held the lock for this key too long",
                ));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
        Ok((
            Box::new(FileGuard {
                store: self,
                id: id.to_string(),
                lock: f,
            }),
            waited,
        ))
    }
}

struct FileGuard<'a> {
    store: &'a FileStore,
    id: String,
    lock: File,
}

impl FileGuard<'_> {
    fn record(&self) -> PathBuf {
        self.store.dir.join(format!("{}.rec", self.id))
    }
}

impl Guard for FileGuard<'_> {
    fn read(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.record();
        let f = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot open", &path, e)),
        };
        let mut buf = Vec::with_capacity(1024);
        f.take(super::record::MAX_RECORD as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| io("cannot read", &path, e))?;
        Ok(Some(buf))
    }

    fn write(&mut self, bytes: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        let path = self.record();
        let mut nonce = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
        let tmp = self.store.dir.join(format!(
            ".{}.{}.{:016x}.tmp",
            self.id,
            std::process::id(),
            u64::from_ne_bytes(nonce)
        ));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // The rename itself is durable once the directory is synced.
            File::open(&self.store.dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("cannot write", &path, e));
        }
        Ok(())
    }

    fn remove(&mut self) -> Result<(), StoreError> {
        let path = self.record();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot remove", &path, e)),
        }
    }
}

impl Drop for FileGuard<'_> {
    fn drop(&mut self) {
        // Explicit unlock (a close alone would do, but an fd inherited by a fork()ed child
        // keeps the description open); then the descriptor closes.
        let _ = ofd_lock(&self.lock, libc::F_UNLCK);
    }
}
