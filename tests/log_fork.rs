//! A child forked while another thread held std's stderr lock can still log: log lines go to
//! fd 2 in one write(2), not through that lock, which the child inherits held by a thread it
//! does not have (issue 18, item 8). (Own process: it forks.)

use findity::log::{set_level, write, Level};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn a_child_logs_although_stderr_was_locked_at_fork() {
    set_level(Level::Info);
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let guard = std::io::stderr().lock();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(guard);
    });
    locked_rx.recv().unwrap();
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The child: only this thread exists; the stderr lock is held by a thread that doesn't.
        unsafe {
            libc::dup2(fds[1], 2);
            write(Level::Error, format_args!("line from the child"));
            libc::_exit(0);
        }
    }
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    unsafe { libc::close(fds[1]) };
    let t0 = Instant::now();
    let mut status = 0;
    let exited = loop {
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(5) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = vec![0u8; 4096];
    let n = unsafe { libc::read(fds[0], out.as_mut_ptr().cast(), out.len()) };
    unsafe { libc::close(fds[0]) };
    assert!(
        exited,
        "the child hung logging (stderr lock inherited held)"
    );
    let text = String::from_utf8_lossy(&out[..n.max(0) as usize]).into_owned();
    assert_eq!(text, "findity error: line from the child\n");
}
