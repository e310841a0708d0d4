//! Regenerates include/findity.h from src/ffi.rs. The header is committed; CI fails when a
//! build changes it, so the committed header always matches the library.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    soname();
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    // Only ffi.rs is parsed: everything exported lives there, and parsing the crate is slow.
    match cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{dir}/src/ffi.rs"))
        .generate()
    {
        Ok(bindings) => {
            // Writes only when the text changed, so builds don't touch the file needlessly.
            bindings.write_to_file(format!("{dir}/include/findity.h"));
        }
        Err(e) => panic!("cbindgen failed on src/ffi.rs: {e}"),
    }
}

/// Links libfindity.so with the soname libfindity.so.MAJOR (for 0.x: libfindity.so.0), so programs
/// record that name (NEEDED) and `make install` ships libfindity.so.MAJOR.MINOR.PATCH with the
/// usual symlinks. A program linked with -Ltarget/<profile> -lfindity then looks for
/// libfindity.so.MAJOR at run time, so a symlink of that name to libfindity.so is put next to the
/// built library (target/<profile>/, three levels above OUT_DIR): `-Wl,-rpath,$PWD/target/...`
/// builds keep working without an install. ELF targets only (macOS and Windows name differently).
fn soname() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "macos" | "ios" | "windows") {
        return;
    }
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let soname = format!("libfindity.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    #[cfg(unix)]
    if let Some(dir) = std::env::var_os("OUT_DIR")
        .as_deref()
        .and_then(|out| std::path::Path::new(out).ancestors().nth(3))
    {
        let link = dir.join(&soname);
        let target = std::path::Path::new("libfindity.so");
        if std::fs::read_link(&link).ok().as_deref() != Some(target) {
            // Best effort, never fails the build; dangling until the library is linked.
            let _ = std::fs::remove_file(&link);
            let _ = std::os::unix::fs::symlink(target, &link);
        }
    }
}
