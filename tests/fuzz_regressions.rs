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

/// The ffi_args target covers the whole C ABI: every function the header declares is called
/// by fuzz/checks.rs (a new export without fuzzing fails here).
#[test]
fn ffi_args_covers_every_exported_function() {
    let root = env!("CARGO_MANIFEST_DIR");
    let header = std::fs::read_to_string(format!("{root}/include/findity.h")).unwrap();
    let checks = std::fs::read_to_string(format!("{root}/fuzz/checks.rs")).unwrap();
    // Declarations: "findity_name(" at the start of a line's identifier (not in prose).
    let mut exported: Vec<&str> = header
        .lines()
        .filter(|l| !l.trim_start().starts_with('*'))
        .filter_map(|l| {
            let at = l.find("findity_")?;
            let name = &l[at..l[at..].find('(')? + at];
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then_some(name)
        })
        .collect();
    exported.sort_unstable();
    exported.dedup();
    assert!(
        exported.len() >= 12,
        "only {exported:?} found in the header"
    );
    let missing: Vec<_> = exported
        .iter()
        .filter(|f| !checks.contains(&format!("{f}(")))
        .collect();
    assert!(missing.is_empty(), "not fuzzed by ffi_args: {missing:?}");
}
