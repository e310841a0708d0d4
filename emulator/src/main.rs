//! `findity-emulator` binary: parse arguments, start, print the URL.

use std::io::{Read, Write};
use std::path::Path;
use std::process::exit;

use findity_emulator::cli::{parse_args, CliCommand, HELP};
use findity_emulator::Emulator;

/// Write-then-rename, so a harness polling the file never reads half of it.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

fn main() {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(CliCommand::Run(o)) => o,
        Ok(CliCommand::Help) => {
            print!("{HELP}");
            return;
        }
        Ok(CliCommand::Version) => {
            println!("findity-emulator {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(e) => {
            eprintln!("findity-emulator: {e}\nTry 'findity-emulator --help'.");
            exit(2);
        }
    };
    let emu = match Emulator::start(opts.config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("findity-emulator: cannot start: {e}");
            exit(1);
        }
    };
    let fail = |what: &str, path: &Path, e: std::io::Error| -> ! {
        eprintln!(
            "findity-emulator: cannot write {what} {}: {e}",
            path.display()
        );
        exit(1);
    };
    if let (Some(path), Some(pem)) = (&opts.ca_out, emu.ca_pem()) {
        if let Err(e) = write_atomically(path, &pem) {
            fail("CA certificate to", path, e);
        }
    }
    if let Some(path) = &opts.url_file {
        if let Err(e) = write_atomically(path, &format!("{}\n", emu.url())) {
            fail("URL to", path, e);
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", emu.url());
    let _ = out.flush();
    drop(out);

    if opts.exit_on_stdin_close {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        emu.shutdown();
        return;
    }
    // Runs until killed (SIGINT/SIGTERM keep their default action).
    loop {
        std::thread::park();
    }
}
