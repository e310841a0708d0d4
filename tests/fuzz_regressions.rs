//! Every input kept under fuzz/regressions/<target>/ (seeds, and any crash a fuzzer ever found)
//! replayed through the same checks the fuzz targets run (fuzz/checks.rs).

#[path = "../fuzz/checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = format!("{}/fuzz/regressions/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for f in std::fs::read_dir(&dir).expect("regression folder") {
        let path = f.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| check(&data)) {
            panic!("{} fails again: {e:?}", path.display());
        }
        n += 1;
    }
    assert!(n > 0, "no inputs in {dir}");
}

#[test]
fn token_response() {
    replay("token_response", checks::token_response);
}

#[test]
fn base_url() {
    replay("base_url", checks::base_url);
}

#[test]
fn ffi_args() {
    replay("ffi_args", checks::ffi_args);
}
