//! Regenerates include/findity.h from src/ffi.rs. The header is committed; CI fails when a
//! build changes it, so the committed header always matches the library.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
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
