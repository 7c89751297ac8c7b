//! Links the image with its own script as a static position-independent executable.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed={dir}/linker.ld");
    println!("cargo:rerun-if-env-changed=HYP_FALLBACK_UART");
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    // A static PIE: the linker turns every absolute address into an R_AARCH64_RELATIVE
    // entry that entry.S applies at boot, so the image runs wherever it is loaded.
    println!("cargo:rustc-link-arg-bins=-pie");
    println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    println!("cargo:rustc-link-arg-bins=-znotext");
    println!("cargo:rustc-link-arg-bins=-znorelro");
    println!("cargo:rustc-link-arg-bins=--hash-style=sysv");
}
