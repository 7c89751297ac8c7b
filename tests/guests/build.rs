//! Links the guest with its own script as a static position-independent executable, the
//! way `hyp/build.rs` links the hypervisor: the image relocates itself at boot
//! (`src/entry.S`), so it runs wherever the loader puts it.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed={dir}/linker.ld");
    println!("cargo:rerun-if-changed={dir}/src/entry.S");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    // Every absolute address becomes an R_AARCH64_RELATIVE entry in .rela.dyn, which
    // entry.S applies before any Rust code runs.
    println!("cargo:rustc-link-arg-bins=-pie");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-znotext");
    println!("cargo:rustc-link-arg-bins=-znorelro");
    println!("cargo:rustc-link-arg-bins=--hash-style=sysv");
}
