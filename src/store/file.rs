//! The file store: one directory (0700, ours), opened once (`O_DIRECTORY|O_NOFOLLOW`) and used
//! only relative to that descriptor, so renaming or replacing the path later changes nothing.
//! Per key, in format 2 (see record::FORMAT): a record `<id>.2.rec` (0600, replaced atomically:
//! temp file, fsync, rename, directory fsync) and a lock file `<id>.2.lock`.
//!
//! The lock is an open-file-description lock (`F_OFD_SETLK`) on the lock file, not the file's
//! existence: the kernel drops it when the holder closes it or dies, so a crash needs no
//! clean-up. Three rules keep it exclusive:
//! - identity: after locking, the locked descriptor must still be the file at that name (same
//!   device and inode); a lock file removed or replaced meanwhile (a tmp cleaner, an operator)
//!   is let go and the lock taken again; and every write re-checks it, so a holder whose lock
//!   file was removed under it writes nothing;
//! - fork: a child created by `fork()` shares its parent's descriptions, and with them the
//!   parent's held locks, which would outlive a killed parent until the child exits. The fork
//!   handler closes the child's copies of every descriptor registered in [`HELD`];
//! - sweeping: only a holder of a lock file's lock removes it (and only when its record is gone),
//!   so a remover never strands a holder. Records past the longest life a record can have
//!   (record::MAX_KEEP) and temp files left by a kill are swept once an hour.

use super::record::MAX_KEEP;
use super::{Change, Guard, Store, StoreError};
use std::ffi::CString;
use std::fs::{DirBuilder, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The format in this store's file names (see record::FORMAT).
const TAG: &str = ".2";
/// Temp files older than this were left by a process killed between create and rename.
const TMP_KEEP: Duration = Duration::from_secs(3600);
/// A lock file with no record and unchanged this long is swept (under its own lock).
const LOCK_KEEP: Duration = Duration::from_secs(3600);
const SWEEP_EVERY: u64 = 3600;

pub struct FileStore {
    dir: PathBuf,
    fd: OwnedFd,
    /// Unix seconds of the last sweep (0: none yet in this process).
    swept: AtomicU64,
}

fn cstr(name: &str) -> CString {
    CString::new(name).expect("store file names are hex and dots")
}

fn last_os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn stat_fd(fd: RawFd) -> std::io::Result<libc::stat> {
    // SAFETY: an all-zero stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a descriptor number and a writable stat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last_os_error());
    }
    Ok(st)
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
        let c = CString::new(dir).map_err(|_| format!("{dir}: a NUL byte in the path"))?;
        // SAFETY: a NUL-terminated path; the flags only open a directory, never a symlink.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            let e = last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOTDIR) => format!("{dir} is not a directory"),
                Some(libc::ELOOP) => format!("{dir} is a symbolic link; give the real directory"),
                _ => format!("{dir}: {e}"),
            });
        }
        // SAFETY: a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let meta = stat_fd(fd.as_raw_fd()).map_err(|e| format!("{dir}: {e}"))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.st_uid != me {
            return Err(format!(
                "{dir} belongs to uid {}, not to this user (uid {me}); refusing to share tokens through it",
                meta.st_uid
            ));
        }
        let mode = meta.st_mode as u32;
        if mode & 0o022 != 0 {
            return Err(format!(
                "{dir} is writable by group or others (mode {:o}); chmod 700 it",
                mode & 0o7777
            ));
        }
        Ok(FileStore {
            dir: path.to_path_buf(),
            fd,
            swept: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, what: &str, name: &str, e: std::io::Error) -> StoreError {
        StoreError::down(format!("{what} {}: {e}", self.dir.join(name).display()))
    }

    fn openat(&self, name: &str, flags: libc::c_int) -> std::io::Result<File> {
        let c = cstr(name);
        // SAFETY: our directory descriptor, a NUL-terminated name, a mode for O_CREAT.
        let raw = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600 as libc::c_uint,
            )
        };
        if raw < 0 {
            return Err(last_os_error());
        }
        // SAFETY: a descriptor we just opened and own.
        Ok(unsafe { File::from_raw_fd(raw) })
    }

    /// Open (creating) a lock file and register its descriptor in HELD, as one step as far as
    /// fork() is concerned (see OPENING).
    fn open_lock(&self, name: &str, flags: libc::c_int) -> std::io::Result<(File, Held)> {
        loop {
            while FORKING.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            OPENING.fetch_add(1, Ordering::SeqCst);
            if !FORKING.load(Ordering::SeqCst) {
                break;
            }
            OPENING.fetch_sub(1, Ordering::SeqCst);
        }
        let opened = self.openat(name, flags).map(|f| {
            let held = Held::register(f.as_raw_fd());
            (f, held)
        });
        OPENING.fetch_sub(1, Ordering::SeqCst);
        opened
    }

    fn stat_name(&self, name: &str) -> std::io::Result<libc::stat> {
        let c = cstr(name);
        // SAFETY: an all-zero stat is valid; fstatat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: our directory descriptor, a NUL-terminated name, a writable stat.
        let rc = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(last_os_error());
        }
        Ok(st)
    }

    fn unlink(&self, name: &str) -> std::io::Result<()> {
        let c = cstr(name);
        // SAFETY: our directory descriptor and a NUL-terminated name.
        if unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            let e = last_os_error();
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether `fd` is still the file called `name` here (a lock file removed or replaced
    /// under its holder no longer excludes anyone).
    fn is_at(&self, fd: RawFd, name: &str) -> bool {
        match (stat_fd(fd), self.stat_name(name)) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }

    /// Once an hour per process: remove temp files left by a kill, records past the longest
    /// life a record can have, and lock files with no record (each under its own lock).
    fn sweep_if_due(&self) {
        let now = unix_secs(SystemTime::now());
        let last = self.swept.load(Ordering::Relaxed);
        if now < last + SWEEP_EVERY
            || self
                .swept
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let _ = self.sweep(SystemTime::now());
    }

    /// One sweep (see sweep_if_due); `now` is a parameter so tests can age files.
    pub fn sweep(&self, now: SystemTime) -> std::io::Result<usize> {
        let now = unix_secs(now);
        let old = |st: &libc::stat, keep: Duration| {
            (st.st_mtime.max(0) as u64).saturating_add(keep.as_secs()) < now
        };
        let mut removed = 0;
        for name in self.names()? {
            let Ok(st) = self.stat_name(&name) else {
                continue;
            };
            if (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                if old(&st, TMP_KEEP) && self.unlink(&name).is_ok() {
                    removed += 1;
                }
            } else if let Some(id) = name.strip_suffix(&format!("{TAG}.rec")) {
                if old(&st, MAX_KEEP) && self.sweep_key(id, true) {
                    removed += 1;
                }
            } else if let Some(id) = name.strip_suffix(&format!("{TAG}.lock")) {
                let rec = format!("{id}{TAG}.rec");
                if old(&st, LOCK_KEEP) && self.stat_name(&rec).is_err() && self.sweep_key(id, false)
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Under the key's lock, if free: remove its record if `record` (it is past MAX_KEEP), and
    /// its lock file if no record is left. True if something was removed.
    fn sweep_key(&self, id: &str, record: bool) -> bool {
        let lock = format!("{id}{TAG}.lock");
        let rec = format!("{id}{TAG}.rec");
        let Ok((f, held)) = self.open_lock(&lock, libc::O_RDWR) else {
            // No lock file: nobody can be writing the record under a lock; remove it.
            return record && self.unlink(&rec).is_ok();
        };
        if !matches!(ofd_lock(&f, libc::F_WRLCK as libc::c_int), Ok(true))
            || !self.is_at(f.as_raw_fd(), &lock)
        {
            drop(held);
            return false;
        }
        let mut removed = false;
        if record {
            // Still old under the lock (a holder may have just replaced it).
            let still_old = self.stat_name(&rec).is_ok_and(|st| {
                (st.st_mtime.max(0) as u64).saturating_add(MAX_KEEP.as_secs())
                    < unix_secs(SystemTime::now())
            });
            removed = still_old && self.unlink(&rec).is_ok();
        }
        if self.stat_name(&rec).is_err() {
            // Removed while locked: whoever waits on this file finds it gone and starts over.
            removed |= self.unlink(&lock).is_ok();
        }
        let _ = ofd_lock(&f, libc::F_UNLCK as libc::c_int);
        drop(held);
        removed
    }

    fn names(&self) -> std::io::Result<Vec<String>> {
        // SAFETY: dup of our own descriptor; fdopendir takes ownership of the copy.
        let copy = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if copy < 0 {
            return Err(last_os_error());
        }
        // SAFETY: a descriptor of a directory that we own.
        let d = unsafe { libc::fdopendir(copy) };
        if d.is_null() {
            let e = last_os_error();
            // SAFETY: fdopendir failed, so the copy is still ours to close.
            unsafe { libc::close(copy) };
            return Err(e);
        }
        // SAFETY: rewinddir on a valid DIR (the copy shares the offset with earlier reads).
        unsafe { libc::rewinddir(d) };
        let mut names = Vec::new();
        loop {
            // SAFETY: a valid DIR; the entry is read before the next readdir.
            let ent = unsafe { libc::readdir(d) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            if let Ok(n) = name.to_str() {
                if n != "." && n != ".." {
                    names.push(n.to_string());
                }
            }
        }
        // SAFETY: a valid DIR, closed once (this closes the copy).
        unsafe { libc::closedir(d) };
        Ok(names)
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Try to take (F_WRLCK) or drop (F_UNLCK) a lock on the whole file: Ok(true) done,
/// Ok(false) held by another. Linux: an open-file-description lock (F_OFD_SETLK).
#[cfg(any(target_os = "linux", target_os = "android"))]
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
    let e = last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Elsewhere (macOS, the BSDs): flock(2), which also belongs to the open file description
/// and is dropped when its last descriptor closes.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn ofd_lock(f: &File, kind: libc::c_int) -> std::io::Result<bool> {
    let op = if kind == libc::F_UNLCK as libc::c_int {
        libc::LOCK_UN
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: a valid descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// Descriptors of lock files this process has open (and may hold locked): a child after fork
/// closes its copies (see the module documentation). A fixed table, because the fork handler
/// may only do async-signal-safe things: atomics and close().
const HELD_SLOTS: usize = 4096;
static HELD: [AtomicI32; HELD_SLOTS] = [const { AtomicI32::new(-1) }; HELD_SLOTS];

/// A registered descriptor; unregistered on drop (before its File closes it).
struct Held {
    slot: Option<usize>,
    fd: RawFd,
}

impl Held {
    fn register(fd: RawFd) -> Held {
        let start = fd.unsigned_abs() as usize % HELD_SLOTS;
        for i in (start..HELD_SLOTS).chain(0..start) {
            if HELD[i]
                .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Held { slot: Some(i), fd };
            }
        }
        // More than HELD_SLOTS locks open at once in one process: this one is not closed in a
        // forked child. Nothing else changes.
        Held { slot: None, fd }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            // Only our own registration: after a fork the slot may hold a newer one.
            let _ = HELD[i].compare_exchange(self.fd, -1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Threads between opening a lock file and registering its descriptor, and whether a fork is
/// waiting for them: a descriptor opened but not yet registered when fork() runs would give the
/// child an unregistered copy of a lock the parent takes right after.
static OPENING: AtomicI32 = AtomicI32::new(0);
static FORKING: AtomicBool = AtomicBool::new(false);

/// The fork handler's prepare step: no new opens, and wait for those in progress (an open and a
/// registration: microseconds).
pub fn hold_opens_for_fork() {
    FORKING.store(true, Ordering::SeqCst);
    while OPENING.load(Ordering::SeqCst) > 0 {
        std::hint::spin_loop();
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
    }
}

/// After fork, in the parent.
pub fn release_opens_after_fork() {
    FORKING.store(false, Ordering::SeqCst);
}

/// After fork, in the child: its only thread is not opening a lock file, whatever the count
/// said (a thread that had just counted itself in the parent does not exist here; left as it
/// was, the count would hold this child's own forks forever).
pub fn reset_opens_in_child() {
    OPENING.store(0, Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
}

/// In a child after fork (the pthread_atfork handler): close the copies of the parent's lock
/// descriptors, so a parent killed while holding a lock releases it at once. The child's own
/// guards (only the forking thread's can still run) notice the fork and leave them alone.
pub fn close_inherited_locks() {
    for slot in HELD.iter() {
        let fd = slot.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: close is async-signal-safe; the descriptor is the child's copy.
            unsafe { libc::close(fd) };
        }
    }
}

impl Store for FileStore {
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        _hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError> {
        let (g, waited) = self.lock_file(id, deadline)?;
        Ok((Box::new(g), waited))
    }

    fn shares_throttle(&self) -> bool {
        true
    }

    /// Under the record's lock; written without fsync (a throttle record lost in a crash only
    /// costs the fleet what it had learnt).
    fn update(&self, name: &str, deadline: Instant, f: &mut Change) -> Result<(), StoreError> {
        let (mut g, _) = self.lock_file(name, deadline)?;
        let current = g.read()?;
        match f(current.as_deref()) {
            Some(next) => g.write_record(&next, false),
            None => Ok(()),
        }
    }
}

impl FileStore {
    fn lock_file(&self, id: &str, deadline: Instant) -> Result<(FileGuard<'_>, bool), StoreError> {
        self.sweep_if_due();
        let name = format!("{id}{TAG}.lock");
        let mut waited = false;
        let mut pause = Duration::from_micros(200);
        loop {
            // Registered before it is locked, in one step with the open as far as fork() is
            // concerned: a fork at any moment leaves the child nothing to keep the lock with.
            let (f, held) = self
                .open_lock(&name, libc::O_RDWR | libc::O_CREAT)
                .map_err(|e| self.io("cannot open", &name, e))?;
            let generation = crate::state::fork_generation();
            loop {
                if ofd_lock(&f, libc::F_WRLCK as libc::c_int)
                    .map_err(|e| self.io("cannot lock", &name, e))?
                {
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
                if !self.is_at(f.as_raw_fd(), &name) {
                    break; // Removed or replaced while we waited: open the new one.
                }
            }
            if self.is_at(f.as_raw_fd(), &name) {
                return Ok((
                    FileGuard {
                        store: self,
                        id: id.to_string(),
                        name,
                        lock: Some(f),
                        held,
                        generation,
                    },
                    waited,
                ));
            }
            // Locked a file nobody else will find: let it go and start over.
            let _ = ofd_lock(&f, libc::F_UNLCK as libc::c_int);
            drop(held);
            drop(f);
            if Instant::now() >= deadline {
                return Err(StoreError::busy(
                    "the lock file for this key kept being replaced",
                ));
            }
        }
    }
}

struct FileGuard<'a> {
    store: &'a FileStore,
    id: String,
    /// The lock file's name.
    name: String,
    /// None only after a fork (see Drop).
    lock: Option<File>,
    held: Held,
    generation: u64,
}

impl FileGuard<'_> {
    fn record(&self) -> String {
        format!("{}{TAG}.rec", self.id)
    }

    /// Writes need the lock to be real still. If the lock file was removed or replaced under
    /// us (a tmp cleaner, an operator), another process may hold the new one and may have read
    /// the record since: write nothing (Lost), and the caller sends no refresh token it took.
    /// (Retaking the new lock would not do: the record may have changed in between.)
    fn still_held(&mut self) -> Result<(), StoreError> {
        if self.generation != crate::state::fork_generation() {
            return Err(StoreError::lost("the lock belongs to the parent process"));
        }
        let held = self
            .lock
            .as_ref()
            .is_some_and(|f| self.store.is_at(f.as_raw_fd(), &self.name));
        if held {
            return Ok(());
        }
        Err(StoreError::lost(format!(
            "the lock file {} was removed or replaced while held; nothing written",
            self.store.dir.join(&self.name).display()
        )))
    }

    /// Unlock, then unregister, then close: a fork between any two of these leaves the child
    /// nothing locked.
    fn release(&mut self) {
        let Some(f) = self.lock.take() else { return };
        let _ = ofd_lock(&f, libc::F_UNLCK as libc::c_int);
        if let Some(i) = self.held.slot.take() {
            let _ = HELD[i].compare_exchange(self.held.fd, -1, Ordering::AcqRel, Ordering::Relaxed);
        }
        drop(f);
    }
}

impl Guard for FileGuard<'_> {
    fn read(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let name = self.record();
        let f = match self.store.openat(&name, libc::O_RDONLY) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.store.io("cannot open", &name, e)),
        };
        let mut buf = Vec::with_capacity(1024);
        f.take(super::record::MAX_RECORD as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.store.io("cannot read", &name, e))?;
        Ok(Some(buf))
    }

    fn write(&mut self, bytes: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        self.write_record(bytes, true)
    }

    fn remove(&mut self) -> Result<(), StoreError> {
        self.still_held()?;
        let name = self.record();
        self.store
            .unlink(&name)
            .map_err(|e| self.store.io("cannot remove", &name, e))
    }
}

impl FileGuard<'_> {
    /// Replace the record atomically (temp file, rename); `durable`: fsync the file and the
    /// directory too.
    fn write_record(&mut self, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
        self.still_held()?;
        let name = self.record();
        let mut nonce = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
        let tmp = format!(
            ".{}{TAG}.{}.{:016x}.tmp",
            self.id,
            std::process::id(),
            u64::from_ne_bytes(nonce)
        );
        let dirfd = self.store.fd.as_raw_fd();
        let result = (|| {
            let mut f = self
                .store
                .openat(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL)?;
            f.write_all(bytes)?;
            if durable {
                f.sync_all()?;
            }
            let (from, to) = (cstr(&tmp), cstr(&name));
            // SAFETY: our directory descriptor and NUL-terminated names.
            if unsafe { libc::renameat(dirfd, from.as_ptr(), dirfd, to.as_ptr()) } != 0 {
                return Err(last_os_error());
            }
            // The rename itself is durable once the directory is synced.
            // SAFETY: our directory descriptor.
            if durable && unsafe { libc::fsync(dirfd) } != 0 {
                return Err(last_os_error());
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = self.store.unlink(&tmp);
            return Err(self.store.io("cannot write", &name, e));
        }
        Ok(())
    }
}

impl Drop for FileGuard<'_> {
    fn drop(&mut self) {
        if self.generation != crate::state::fork_generation() {
            // A child after fork: the fork handler already closed this descriptor (its number
            // may be reused by now), and the lock is the parent's to release.
            if let Some(f) = self.lock.take() {
                std::mem::forget(f);
            }
            self.held.slot = None;
            return;
        }
        self.release();
    }
}
