//! Log lines: to stderr when FINDITY_LOG=error|warn|info|debug is set, or to a host's callback
//! (findity_set_log_callback). Lines name keys, grants and endpoints, and show tokens only as
//! a short fingerprint; secrets never reach a log call (they are `Secret`s, which print as
//! "[redacted]").
//!
//! Lock-free and fork-safe: the sink is one atomic pointer, so logging never blocks and a child
//! after fork() keeps its parent's settings. Lines to stderr are one write(2) each on fd 2,
//! never through std's stderr lock, which a child forked while another thread held it would
//! inherit held forever.

use std::collections::hash_map::DefaultHasher;
use std::ffi::{c_char, c_void, CString};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Level::Off,
            "error" | "1" => Level::Error,
            "warn" | "warning" | "2" => Level::Warn,
            "info" | "3" => Level::Info,
            "debug" | "4" => Level::Debug,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// A host's callback: level (FINDITY_LOG_*), the line (UTF-8, NUL-terminated, valid only
/// during the call), and the userdata given when it was set.
pub type Callback = unsafe extern "C" fn(level: u32, message: *const c_char, userdata: *mut c_void);

struct Sink {
    callback: Callback,
    userdata: *mut c_void,
    /// The sink installed before this one (see ALL_SINKS).
    older: *mut Sink,
}

static SINK: AtomicPtr<Sink> = AtomicPtr::new(std::ptr::null_mut());
/// Every sink ever installed, newest first. Sinks are never freed, because a thread may still be
/// calling a replaced one; keeping them on this list keeps them reachable rather than leaked.
/// Hosts set a callback once or twice per process.
static ALL_SINKS: AtomicPtr<Sink> = AtomicPtr::new(std::ptr::null_mut());
/// u32::MAX: not decided yet (read FINDITY_LOG on first use).
static LEVEL: AtomicU32 = AtomicU32::new(u32::MAX);
/// The level was raised to info only because a callback was installed (undone on removal).
static RAISED_FOR_CALLBACK: AtomicBool = AtomicBool::new(false);

/// Route lines to `callback` (None: back to stderr per FINDITY_LOG). A line being logged on
/// another thread at this moment may still reach the previous callback.
pub fn set_callback(callback: Option<Callback>, userdata: *mut c_void) {
    let new = match callback {
        Some(callback) => {
            let new = Box::into_raw(Box::new(Sink {
                callback,
                userdata,
                older: std::ptr::null_mut(),
            }));
            let mut head = ALL_SINKS.load(Ordering::Acquire);
            loop {
                // SAFETY: `new` is ours until published by the exchange below.
                unsafe { (*new).older = head };
                match ALL_SINKS.compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(h) => head = h,
                }
            }
            new
        }
        None => std::ptr::null_mut(),
    };
    SINK.store(new, Ordering::Release);
    if callback.is_some() && level() == Level::Off {
        // A host that installs a callback wants lines; info unless it chose otherwise.
        LEVEL.store(Level::Info as u32, Ordering::Release);
        RAISED_FOR_CALLBACK.store(true, Ordering::Release);
    } else if callback.is_none() && RAISED_FOR_CALLBACK.swap(false, Ordering::AcqRel) {
        // Back to what it was before the callback: no lines on stderr nobody asked for.
        LEVEL.store(Level::Off as u32, Ordering::Release);
    }
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u32, Ordering::Release);
    RAISED_FOR_CALLBACK.store(false, Ordering::Release);
}

/// The level FINDITY_LOG asks for (off when unset or not a level).
pub fn env_level() -> Level {
    std::env::var("FINDITY_LOG")
        .ok()
        .and_then(|v| Level::parse(&v))
        .unwrap_or(Level::Off)
}

pub fn level() -> Level {
    match LEVEL.load(Ordering::Acquire) {
        u32::MAX => {
            let l = env_level();
            LEVEL.store(l as u32, Ordering::Release);
            l
        }
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Off,
    }
}

pub fn enabled(l: Level) -> bool {
    l != Level::Off && l <= level()
}

/// Write one line if its level is enabled. Use through the `log!` macro.
pub fn write(l: Level, msg: std::fmt::Arguments) {
    if !enabled(l) {
        return;
    }
    let line = msg.to_string();
    let sink = SINK.load(Ordering::Acquire);
    if sink.is_null() {
        write_stderr(format!("findity {}: {line}\n", l.name()).as_bytes());
        return;
    }
    // SAFETY: sinks are never freed (see set_callback).
    let sink = unsafe { &*sink };
    let c = CString::new(line.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the host promised a callable function; the pointers are valid for the call.
    unsafe { (sink.callback)(l as u32, c.as_ptr(), sink.userdata) };
}

/// The whole line in one write(2) to fd 2 (lines up to PIPE_BUF bytes are not interleaved
/// with other writers' on a pipe); no lock, so a child after fork() can always log.
#[cfg(unix)]
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid slice; fd 2 may be closed, which is just an error.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Windows (no fork): std's stderr, the process's standard error handle (a console gets the
/// line as UTF-16, a pipe or file as UTF-8); one write_all under std's lock per line. No handle
/// (a service or GUI process) is just an error, and the line is dropped.
#[cfg(windows)]
fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// A short, stable fingerprint of a token for correlating log lines; the token itself cannot be
/// recovered from 32 bits of a hash of ~128 random characters.
pub fn fingerprint(token: &str) -> String {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    format!("#{:08x}", h.finish() as u32)
}

macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write($crate::log::Level::$level, format_args!($($arg)*))
        }
    };
}
pub(crate) use log;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("warning"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Error < Level::Debug);
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        let f = fingerprint("RsT5OjbzRn4k9zqMLgV3Ia");
        assert_eq!(f.len(), 9);
        assert_eq!(f, fingerprint("RsT5OjbzRn4k9zqMLgV3Ia"));
        assert_ne!(f, fingerprint("RsT5OjbzRn4k9zqMLgV3Ib"));
    }
}
