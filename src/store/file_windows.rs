//! The file store on Windows: the same promises as the Unix one (src/store/file.rs), kept with
//! Windows means. One directory, ours alone, opened once and held open (without
//! `FILE_SHARE_DELETE`, so it cannot be renamed or removed while we use it); every file in it is
//! reached through the directory's canonical (`\\?\`) path, so the path given may be long.
//! Per key, in format 2 (see record::FORMAT): a record `<id>.2.rec`, replaced atomically (temp
//! file, FlushFileBuffers, `MoveFileExW(REPLACE_EXISTING | WRITE_THROUGH)`, retried while
//! another process has the record open; Windows has no directory fsync, WRITE_THROUGH makes the
//! rename itself durable), and a lock file `<id>.2.lock`.
//!
//! The lock is a `LockFileEx` lock (exclusive, whole file) on an open handle of the lock file,
//! not the file's existence: it excludes other processes and other handles of this process,
//! and the system drops it when the handle closes or the process dies, so a crash needs no
//! clean-up. Every handle is opened with `FILE_SHARE_DELETE`, so a lock file can be removed
//! (by the sweep, an operator) while others hold it open, as on Unix, and with
//! `FILE_FLAG_OPEN_REPARSE_POINT`, so a symbolic link is never followed. Handles are not
//! inheritable (std's default): a child process never keeps a lock. The rules of the Unix store:
//! - identity: after locking, the locked handle must still be the file at that name (same
//!   volume serial number and file index); a lock file removed or replaced meanwhile is let go
//!   and the lock taken again; every write re-checks it;
//! - sweeping: only a holder of a lock file's lock removes it (and only when its record is gone).
//!
//! The directory: one the library creates gets a protected DACL granting full access to the
//! current user only (inherited by every file in it); an existing one must be owned by the
//! current user (or by the token's default owner, BUILTIN\Administrators for an elevated
//! administrator) and grant no write access to anyone but that user, SYSTEM and Administrators.

use super::record::MAX_KEEP;
use super::{Guard, Store, StoreError};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use windows_sys::Win32::Foundation::{
    LocalFree, ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, HANDLE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo,
    SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    AclSizeInformation, EqualSid, GetAce, GetAclInformation, GetTokenInformation, IsWellKnownSid,
    TokenOwner, TokenUser, WinBuiltinAdministratorsSid, WinLocalSystemSid, ACE_HEADER, ACL,
    ACL_SIZE_INFORMATION, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES, TOKEN_OWNER, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateDirectoryW, GetFileInformationByHandle, LockFileEx, MoveFileExW, UnlockFileEx,
    BY_HANDLE_FILE_INFORMATION, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
    MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// The format in this store's file names (see record::FORMAT).
const TAG: &str = ".2";
/// Temp files older than this were left by a process killed between create and rename.
const TMP_KEEP: Duration = Duration::from_secs(3600);
/// A lock file with no record and unchanged this long is swept (under its own lock).
const LOCK_KEEP: Duration = Duration::from_secs(3600);
const SWEEP_EVERY: u64 = 3600;
/// How long a record replace (or a lock file open) is retried while another process (an
/// antivirus scanner, a backup, a holder closing a removed file) has the file open.
const BUSY_RETRY: Duration = Duration::from_secs(2);

const FILE_SHARE_READ: u32 = 1;
const FILE_SHARE_WRITE: u32 = 2;
const FILE_SHARE_DELETE: u32 = 4;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
/// Rights that let another user change the directory or what is in it: FILE_ADD_FILE (2),
/// FILE_ADD_SUBDIRECTORY (4), FILE_WRITE_EA (0x10), FILE_DELETE_CHILD (0x40),
/// FILE_WRITE_ATTRIBUTES (0x100), DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_ALL, GENERIC_WRITE.
const WRITE_RIGHTS: u32 = 0x2
    | 0x4
    | 0x10
    | 0x40
    | 0x100
    | 0x0001_0000
    | 0x0004_0000
    | 0x0008_0000
    | 0x1000_0000
    | 0x4000_0000;

pub struct FileStore {
    /// As given (shown in messages).
    dir: PathBuf,
    /// The canonical path (`\\?\C:\...`) every file is reached through.
    base: PathBuf,
    /// The directory, held open without FILE_SHARE_DELETE: it stays the directory we checked.
    _handle: File,
    /// Unix seconds of the last sweep (0: none yet in this process).
    swept: AtomicU64,
}

fn wide(p: &OsStr) -> Vec<u16> {
    p.encode_wide().chain(std::iter::once(0)).collect()
}

fn last_os_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Another process has the file open in a way that blocks this operation (for now).
fn busy(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_SHARING_VIOLATION) | Some(ERROR_ACCESS_DENIED) | Some(ERROR_LOCK_VIOLATION)
    )
}

/// (volume serial number, file index): a file's identity while it exists.
fn identity(f: &File) -> std::io::Result<(u32, u64)> {
    // SAFETY: an all-zero BY_HANDLE_FILE_INFORMATION is valid; the call fills it.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle and a writable structure.
    if unsafe { GetFileInformationByHandle(f.as_raw_handle() as HANDLE, &mut info) } == 0 {
        return Err(last_os_error());
    }
    Ok((
        info.dwVolumeSerialNumber,
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    ))
}

/// Try to take an exclusive lock on the whole file: Ok(true) taken, Ok(false) held by another
/// handle (of this process or another).
fn try_lock(f: &File) -> std::io::Result<bool> {
    // SAFETY: an all-zero OVERLAPPED (offset 0) is valid for a synchronous handle.
    let mut ov = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle; the OVERLAPPED lives across the (immediate) call.
    let ok = unsafe {
        LockFileEx(
            f.as_raw_handle() as HANDLE,
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            u32::MAX,
            u32::MAX,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = last_os_error();
    match e.raw_os_error().map(|c| c as u32) {
        Some(ERROR_LOCK_VIOLATION) | Some(997 /* ERROR_IO_PENDING */) => Ok(false),
        _ => Err(e),
    }
}

/// Unlock (closing the handle would too; an error changes nothing: Wine reports one although
/// the lock is released).
fn unlock(f: &File) {
    // SAFETY: as in try_lock.
    let mut ov = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle.
    unsafe { UnlockFileEx(f.as_raw_handle() as HANDLE, 0, u32::MAX, u32::MAX, &mut ov) };
}

/// The current user's SID and the token's default owner, as strings ("S-1-5-21-...").
struct Me {
    user: Vec<u8>,
    owner: Vec<u8>,
}

fn token_info(class: i32) -> std::io::Result<Vec<u8>> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the current-process pseudo handle; a writable handle slot.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_os_error());
    }
    let mut len = 0u32;
    // SAFETY: a size query (null buffer, length 0).
    unsafe { GetTokenInformation(token, class, std::ptr::null_mut(), 0, &mut len) };
    let mut buf = vec![0u8; len.max(64) as usize];
    // SAFETY: a buffer of the size asked for.
    let ok = unsafe {
        GetTokenInformation(
            token,
            class,
            buf.as_mut_ptr().cast(),
            buf.len() as u32,
            &mut len,
        )
    };
    let e = last_os_error();
    // SAFETY: the token handle we opened.
    unsafe { windows_sys::Win32::Foundation::CloseHandle(token) };
    if ok == 0 {
        return Err(e);
    }
    Ok(buf)
}

impl Me {
    fn get() -> std::io::Result<Me> {
        Ok(Me {
            user: token_info(TokenUser)?,
            owner: token_info(TokenOwner)?,
        })
    }
    fn user_sid(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_USER (GetTokenInformation(TokenUser)).
        unsafe { (*(self.user.as_ptr() as *const TOKEN_USER)).User.Sid }
    }
    fn owner_sid(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_OWNER.
        unsafe { (*(self.owner.as_ptr() as *const TOKEN_OWNER)).Owner }
    }
    fn is_me(&self, sid: PSID) -> bool {
        // SAFETY: valid SIDs.
        unsafe { EqualSid(sid, self.user_sid()) != 0 || EqualSid(sid, self.owner_sid()) != 0 }
    }
}

fn sid_string(sid: PSID) -> String {
    let mut s: *mut u16 = std::ptr::null_mut();
    // SAFETY: a valid SID; the string is LocalAlloc'ed and freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut s) } == 0 || s.is_null() {
        return "(unknown SID)".into();
    }
    // SAFETY: a NUL-terminated wide string from the call above.
    let len = (0..).take_while(|&i| unsafe { *s.add(i) } != 0).count();
    // SAFETY: len characters are readable.
    let out = OsString::from_wide(unsafe { std::slice::from_raw_parts(s, len) });
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(s.cast()) };
    out.to_string_lossy().into_owned()
}

fn sid_name(sid: PSID) -> String {
    let s = sid_string(sid);
    let known = match s.as_str() {
        "S-1-1-0" => " (Everyone)",
        "S-1-5-11" => " (Authenticated Users)",
        "S-1-5-32-545" => " (Users)",
        "S-1-3-0" => " (CREATOR OWNER)",
        _ => "",
    };
    format!("{s}{known}")
}

/// Creates `path` with a protected DACL: full access for the current user only, inherited by
/// every file and directory created in it.
fn create_private_dir(path: &Path, me: &Me) -> std::io::Result<()> {
    create_dir_with_sddl(
        path,
        &format!("D:P(A;OICI;FA;;;{})", sid_string(me.user_sid())),
    )
}

fn create_dir_with_sddl(path: &Path, sddl: &str) -> std::io::Result<()> {
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a NUL-terminated SDDL string; the descriptor is LocalAlloc'ed, freed below.
    if unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            wide(OsStr::new(&sddl)).as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    } == 0
    {
        return Err(last_os_error());
    }
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    // SAFETY: a NUL-terminated path and valid attributes.
    let ok = unsafe { CreateDirectoryW(wide(path.as_os_str()).as_ptr(), &sa) };
    let e = last_os_error();
    // SAFETY: allocated by the conversion above.
    unsafe { LocalFree(sd) };
    if ok == 0 {
        return Err(e);
    }
    Ok(())
}

/// The directory must be ours and writable by nobody else (see the module documentation).
fn check_owner_and_dacl(dir: &str, handle: &File, me: &Me) -> Result<(), String> {
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a valid handle; the out pointers point into `sd`, freed below.
    let rc = unsafe {
        GetSecurityInfo(
            handle.as_raw_handle() as HANDLE,
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc != 0 {
        return Err(format!(
            "{dir}: cannot read its owner and permissions: {}",
            std::io::Error::from_raw_os_error(rc as i32)
        ));
    }
    let result = (|| {
        if owner.is_null() || !me.is_me(owner) {
            return Err(format!(
                "{dir} belongs to {}, not to this user ({}); refusing to share tokens through it",
                if owner.is_null() {
                    "nobody".into()
                } else {
                    sid_name(owner)
                },
                sid_string(me.user_sid())
            ));
        }
        if dacl.is_null() {
            return Err(format!(
                "{dir} has no access control list (everyone may write to it); give it one that only you can write through, or remove it and let the library create it"
            ));
        }
        // SAFETY: an all-zero size information is valid; the call fills it.
        let mut size: ACL_SIZE_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a valid ACL and a writable structure of the size given.
        if unsafe {
            GetAclInformation(
                dacl,
                (&mut size as *mut ACL_SIZE_INFORMATION).cast(),
                std::mem::size_of::<ACL_SIZE_INFORMATION>() as u32,
                AclSizeInformation,
            )
        } == 0
        {
            return Err(format!(
                "{dir}: cannot read its permissions: {}",
                last_os_error()
            ));
        }
        for i in 0..size.AceCount {
            let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
            // SAFETY: an index below AceCount of a valid ACL.
            if unsafe { GetAce(dacl, i, &mut ace) } == 0 {
                continue;
            }
            // SAFETY: every ACE starts with an ACE_HEADER.
            let header = unsafe { &*(ace as *const ACE_HEADER) };
            if header.AceType != ACCESS_ALLOWED_ACE_TYPE {
                continue; // deny ACEs only take rights away; object ACEs do not apply to files
            }
            // ACCESS_ALLOWED_ACE: header, mask (u32), then the SID in place of SidStart.
            // SAFETY: an access-allowed ACE is at least that long.
            let mask = unsafe { *(ace.cast::<u8>().add(4) as *const u32) };
            // SAFETY: as above; the SID starts at offset 8.
            let sid: PSID = unsafe { ace.cast::<u8>().add(8) }.cast();
            if mask & WRITE_RIGHTS == 0 || me.is_me(sid) {
                continue;
            }
            // SAFETY: a valid SID.
            let trusted = unsafe {
                IsWellKnownSid(sid, WinLocalSystemSid) != 0
                    || IsWellKnownSid(sid, WinBuiltinAdministratorsSid) != 0
            };
            if !trusted {
                return Err(format!(
                    "{dir} is writable by {} (an access control entry grants it rights 0x{mask:08x}); only you may write to it: remove that entry (icacls \"{dir}\" /inheritance:r /grant:r \"%USERNAME%:(OI)(CI)F\"), or give a directory the library creates",
                    sid_name(sid)
                ));
            }
        }
        Ok(())
    })();
    // SAFETY: allocated by GetSecurityInfo.
    unsafe { LocalFree(sd) };
    result
}

impl FileStore {
    /// Creates the directory (owner-only ACL) if needed; refuses one that is not ours or that
    /// others may write to (they could replace records or the lock files). `C:/dir`, `C:\dir`
    /// and `\\server\share\dir` are absolute paths here.
    pub fn open(dir: &str) -> Result<FileStore, String> {
        let path = Path::new(dir);
        if !path.is_absolute() {
            return Err(format!(
                "{dir}: the directory must be an absolute path (C:\\path or C:/path)"
            ));
        }
        let me = Me::get().map_err(|e| format!("{dir}: cannot tell who this user is: {e}"))?;
        if std::fs::symlink_metadata(path).is_err() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            match create_private_dir(path, &me) {
                Ok(()) => {}
                // Another process created it meanwhile: checked below like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {dir}: {e}")),
            }
        }
        // Opened once, held without FILE_SHARE_DELETE, never through a symbolic link.
        let handle = OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)
            .map_err(|e| format!("{dir}: {e}"))?;
        let meta = handle.metadata().map_err(|e| format!("{dir}: {e}"))?;
        {
            use std::os::windows::fs::MetadataExt;
            if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
                return Err(format!(
                    "{dir} is a symbolic link or junction; give the real directory"
                ));
            }
        }
        if !meta.is_dir() {
            return Err(format!("{dir} is not a directory"));
        }
        check_owner_and_dacl(dir, &handle, &me)?;
        let base = std::fs::canonicalize(path).map_err(|e| format!("{dir}: {e}"))?;
        Ok(FileStore {
            dir: path.to_path_buf(),
            base,
            _handle: handle,
            swept: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, what: &str, name: &str, e: std::io::Error) -> StoreError {
        StoreError::down(format!("{what} {}: {e}", self.dir.join(name).display()))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// Opens a file of ours: shared for reading, writing and deleting, never through a link.
    fn open_file(&self, name: &str, opts: &mut OpenOptions) -> std::io::Result<File> {
        opts.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(self.path(name))
    }

    fn open_lock(&self, name: &str) -> std::io::Result<File> {
        self.open_file(name, OpenOptions::new().read(true).write(true).create(true))
    }

    /// Opens a lock file, retrying for a while when the name is held by a file being deleted
    /// (Windows without POSIX delete semantics keeps the name until every handle is closed).
    fn open_lock_retrying(&self, name: &str, deadline: Instant) -> std::io::Result<File> {
        let until = deadline.max(Instant::now() + Duration::from_millis(50));
        let mut pause = Duration::from_micros(500);
        loop {
            match self.open_lock(name) {
                Err(e) if busy(&e) && Instant::now() < until => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                r => return r,
            }
        }
    }

    /// The identity of the file now called `name`, if any.
    fn identity_of(&self, name: &str) -> std::io::Result<(u32, u64)> {
        let f = self.open_file(
            name,
            OpenOptions::new().access_mode(0x80 /* FILE_READ_ATTRIBUTES */),
        )?;
        identity(&f)
    }

    fn unlink(&self, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether `f` is still the file called `name` here (a lock file removed or replaced
    /// under its holder no longer excludes anyone).
    fn is_at(&self, f: &File, name: &str) -> bool {
        match (identity(f), self.identity_of(name)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    fn modified(&self, name: &str) -> Option<(u64, bool)> {
        let m = std::fs::symlink_metadata(self.path(name)).ok()?;
        let secs = m.modified().map_or(0, unix_secs);
        Some((secs, m.file_type().is_file()))
    }

    /// Once an hour per process (see the Unix store).
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

    /// One sweep: temp files left by a kill, records past the longest life a record can have,
    /// lock files with no record (each under its own lock). `now` is a parameter so tests can
    /// age files.
    pub fn sweep(&self, now: SystemTime) -> std::io::Result<usize> {
        let now = unix_secs(now);
        let old = |mtime: u64, keep: Duration| mtime.saturating_add(keep.as_secs()) < now;
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.base)? {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some((mtime, is_file)) = self.modified(&name) else {
                continue;
            };
            if !is_file {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                if old(mtime, TMP_KEEP) && self.unlink(&name).is_ok() {
                    removed += 1;
                }
            } else if let Some(id) = name.strip_suffix(&format!("{TAG}.rec")) {
                if old(mtime, MAX_KEEP) && self.sweep_key(id, true) {
                    removed += 1;
                }
            } else if let Some(id) = name.strip_suffix(&format!("{TAG}.lock")) {
                let rec = format!("{id}{TAG}.rec");
                if old(mtime, LOCK_KEEP)
                    && self.modified(&rec).is_none()
                    && self.sweep_key(id, false)
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
        let Ok(f) = self.open_file(&lock, OpenOptions::new().read(true).write(true)) else {
            // No lock file: nobody can be writing the record under a lock; remove it.
            return record && self.unlink(&rec).is_ok();
        };
        if !matches!(try_lock(&f), Ok(true)) || !self.is_at(&f, &lock) {
            return false;
        }
        let mut removed = false;
        if record {
            // Still old under the lock (a holder may have just replaced it).
            let still_old = self.modified(&rec).is_some_and(|(m, _)| {
                m.saturating_add(MAX_KEEP.as_secs()) < unix_secs(SystemTime::now())
            });
            removed = still_old && self.unlink(&rec).is_ok();
        }
        if self.modified(&rec).is_none() {
            // Removed while locked (FILE_SHARE_DELETE): whoever waits on this file finds it
            // gone and starts over.
            removed |= self.unlink(&lock).is_ok();
        }
        unlock(&f);
        removed
    }

    /// Moves `tmp` onto `name` (replacing it), durably, retrying while another process has
    /// the target open (a rename onto an open file fails on Windows).
    fn replace(&self, tmp: &str, name: &str) -> std::io::Result<()> {
        let (from, to) = (
            wide(self.path(tmp).as_os_str()),
            wide(self.path(name).as_os_str()),
        );
        let until = Instant::now() + BUSY_RETRY;
        let mut pause = Duration::from_millis(1);
        loop {
            // SAFETY: NUL-terminated wide paths.
            if unsafe {
                MoveFileExW(
                    from.as_ptr(),
                    to.as_ptr(),
                    MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
                )
            } != 0
            {
                return Ok(());
            }
            let e = last_os_error();
            if !busy(&e) || Instant::now() >= until {
                return Err(e);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Store for FileStore {
    fn lock(
        &self,
        id: &str,
        deadline: Instant,
        _hold: Duration,
    ) -> Result<(Box<dyn Guard + '_>, bool), StoreError> {
        self.sweep_if_due();
        let name = format!("{id}{TAG}.lock");
        let mut waited = false;
        let mut pause = Duration::from_micros(200);
        loop {
            let f = self
                .open_lock_retrying(&name, deadline)
                .map_err(|e| self.io("cannot open", &name, e))?;
            loop {
                if try_lock(&f).map_err(|e| self.io("cannot lock", &name, e))? {
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
                if !self.is_at(&f, &name) {
                    break; // Removed or replaced while we waited: open the new one.
                }
            }
            if self.is_at(&f, &name) {
                return Ok((
                    Box::new(FileGuard {
                        store: self,
                        id: id.to_string(),
                        name,
                        lock: Some(f),
                    }),
                    waited,
                ));
            }
            // Locked a file nobody else will find: let it go and start over.
            unlock(&f);
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
    lock: Option<File>,
}

impl FileGuard<'_> {
    fn record(&self) -> String {
        format!("{}{TAG}.rec", self.id)
    }

    /// Writes need the lock to be real still (see the Unix store): if the lock file was
    /// removed or replaced under us, take the lock of the file now at that name, if it is
    /// free, or write nothing.
    fn still_held(&mut self) -> Result<(), StoreError> {
        let Some(old) = self.lock.as_ref() else {
            return Err(StoreError::lost("no lock"));
        };
        if self.store.is_at(old, &self.name) {
            return Ok(());
        }
        let lost = || {
            StoreError::lost(format!(
                "the lock file {} was replaced while held, and the new one is taken; nothing written",
                self.store.dir.join(&self.name).display()
            ))
        };
        let f = self.store.open_lock(&self.name).map_err(|_| lost())?;
        let got = matches!(try_lock(&f), Ok(true));
        if !got || !self.store.is_at(&f, &self.name) {
            return Err(lost());
        }
        // Ours again: the old lock goes, the new one is kept until the guard drops.
        self.release();
        self.lock = Some(f);
        Ok(())
    }

    fn release(&mut self) {
        if let Some(f) = self.lock.take() {
            unlock(&f);
        }
    }
}

impl Guard for FileGuard<'_> {
    fn read(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let name = self.record();
        let f = match self.store.open_file(&name, OpenOptions::new().read(true)) {
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
        let result = (|| {
            let mut f = self
                .store
                .open_file(&tmp, OpenOptions::new().write(true).create_new(true))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            self.store.replace(&tmp, &name)
        })();
        if let Err(e) = result {
            let _ = self.store.unlink(&tmp);
            return Err(self.store.io("cannot write", &name, e));
        }
        Ok(())
    }

    fn remove(&mut self) -> Result<(), StoreError> {
        self.still_held()?;
        let name = self.record();
        self.store
            .unlink(&name)
            .map_err(|e| self.store.io("cannot remove", &name, e))
    }
}

impl Drop for FileGuard<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Failure;

    fn temp(name: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "findity-ut-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn creates_an_owner_only_directory_and_refuses_one_others_may_write() {
        let dir = temp("acl");
        let s = FileStore::open(dir.to_str().unwrap()).expect("created");
        // What the library created passes its own check, and grants only this user.
        let me = Me::get().unwrap();
        check_owner_and_dacl("created", &s._handle, &me).expect("owner-only");
        drop(s);
        let open = temp("everyone");
        create_dir_with_sddl(&open, "D:P(A;OICI;FA;;;WD)").unwrap();
        match FileStore::open(open.to_str().unwrap()) {
            Err(e) => assert!(e.contains("writable by S-1-1-0 (Everyone)"), "{e}"),
            // Wine 8 does not give back the DACL it was given here (it reports one made from
            // the Unix mode): the refusal cannot be checked on such a system.
            Ok(_) => eprintln!(
                "NOTE: this system did not report the Everyone ACE it was given (Wine); the refusal of a directory others may write to is untested here"
            ),
        }
        let users = temp("users-read");
        create_dir_with_sddl(
            &users,
            &format!(
                "D:P(A;OICI;FA;;;{})(A;OICI;FR;;;BU)",
                sid_string(me.user_sid())
            ),
        )
        .unwrap();
        FileStore::open(users.to_str().unwrap()).expect("others may read, not write");
        for d in [dir, open, users] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn paths_with_either_slash_and_a_relative_one() {
        let dir = temp("slashes");
        let fwd = dir.to_str().unwrap().replace('\\', "/");
        let a = FileStore::open(&fwd).expect("C:/ form");
        assert_eq!(a.dir(), Path::new(&fwd));
        let b = FileStore::open(dir.to_str().unwrap()).expect("C:\\ form");
        assert_eq!(a.base, b.base);
        assert!(FileStore::open("relative\\dir")
            .err()
            .unwrap()
            .contains("absolute"));
        let shown = crate::store::open(&format!("file:{fwd}")).unwrap().unwrap();
        assert_eq!(shown.shown, format!("file:{fwd}"));
        crate::store::open(&format!("file:///{fwd}"))
            .unwrap()
            .unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_lock_excludes_other_handles_until_dropped() {
        let dir = temp("lock");
        let s = FileStore::open(dir.to_str().unwrap()).unwrap();
        let (mut g, waited) = s.lock("k1", soon(1000), Duration::from_secs(1)).unwrap();
        assert!(!waited);
        let e = s
            .lock("k1", soon(50), Duration::from_secs(1))
            .err()
            .expect("busy");
        assert_eq!(e.kind, Failure::Busy);
        // Another key is not affected.
        drop(s.lock("k2", soon(50), Duration::from_secs(1)).unwrap());
        assert_eq!(g.read().unwrap(), None);
        g.write(b"one", Duration::from_secs(9)).unwrap();
        g.write(b"two", Duration::from_secs(9)).unwrap();
        assert_eq!(g.read().unwrap().as_deref(), Some(&b"two"[..]));
        drop(g);
        let (mut g, _) = s
            .lock("k1", soon(50), Duration::from_secs(1))
            .expect("released");
        assert_eq!(g.read().unwrap().as_deref(), Some(&b"two"[..]));
        g.remove().unwrap();
        assert_eq!(g.read().unwrap(), None);
        drop(g);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_holder_whose_lock_file_was_removed_writes_nothing_while_another_holds_the_new_one() {
        let dir = temp("removed");
        let s = FileStore::open(dir.to_str().unwrap()).unwrap();
        let (mut a, _) = s.lock("k", soon(1000), Duration::from_secs(1)).unwrap();
        // Removable although held open and locked (FILE_SHARE_DELETE).
        std::fs::remove_file(s.path("k.2.lock")).expect("lock file removed while held");
        match s.lock("k", soon(300), Duration::from_secs(1)) {
            // POSIX delete semantics (Windows 10 1709+ on NTFS): the name is free at once, a
            // new lock file is made and locked; the old holder must write nothing.
            Ok((mut b, _)) => {
                let e = a
                    .write(b"stale", Duration::from_secs(9))
                    .err()
                    .expect("lost");
                assert_eq!(e.kind, Failure::Lost);
                b.write(b"fresh", Duration::from_secs(9)).unwrap();
            }
            // Classic semantics (Wine, older Windows, FAT): the name stays on the held file
            // until its last handle closes, so the holder is still the only one.
            Err(e) => {
                assert_eq!(e.kind, Failure::Busy, "{}", e.message);
                eprintln!("NOTE: delete-pending semantics: the removed lock file still excludes");
                a.write(b"fresh", Duration::from_secs(9)).unwrap();
            }
        }
        assert_eq!(a.read().unwrap().as_deref(), Some(&b"fresh"[..]));
        drop(a);
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn sweep_removes_old_temp_files_and_orphan_lock_files_only() {
        let dir = temp("sweep");
        let s = FileStore::open(dir.to_str().unwrap()).unwrap();
        drop(s.lock("orphan", soon(100), Duration::from_secs(1)).unwrap());
        let (mut g, _) = s.lock("kept", soon(100), Duration::from_secs(1)).unwrap();
        g.write(b"x", Duration::from_secs(9)).unwrap();
        drop(g);
        std::fs::write(s.path(".kept.2.1.0000000000000000.tmp"), b"t").unwrap();
        assert_eq!(s.sweep(SystemTime::now()).unwrap(), 0, "nothing old yet");
        let later = SystemTime::now() + LOCK_KEEP + Duration::from_secs(60);
        assert_eq!(
            s.sweep(later).unwrap(),
            2,
            "the temp file and the orphan lock file"
        );
        assert!(s.modified("kept.2.rec").is_some() && s.modified("kept.2.lock").is_some());
        assert!(s.modified("orphan.2.lock").is_none());
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
