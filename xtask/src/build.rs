//! Building the hypervisor and turning its ELF into the flat image QEMU boots.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::image;
use crate::shell;

/// The hypervisor's target triple.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The triple of the programs that run inside the Linux domains (the dom0 tools).
pub const LINUX_TOOLS_TARGET: &str = "aarch64-unknown-linux-musl";

/// The linker setting for [`LINUX_TOOLS_TARGET`], given to that one cargo command (the
/// host's own builds keep their linker). `rust-lld` ships with the toolchain; since it is
/// not a C compiler driver, rustc links self-contained: the target's own `crt1.o`,
/// `libc.a` (musl) and `libunwind.a` from the toolchain's `self-contained` directory. No
/// cross gcc is needed.
const LINUX_TOOLS_LINKER: (&str, &str) =
    ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld");

/// Builds `xenctl` (`dom0-shim/xenctl`) for [`LINUX_TOOLS_TARGET`] in release into the
/// workspace's target directory, checks that it is a static AArch64 executable, and
/// returns its path.
pub fn build_xenctl() -> Result<PathBuf> {
    build_xenctl_in(&target_dir())
}

/// [`build_xenctl`] into another target directory.
pub fn build_xenctl_in(target_dir: &Path) -> Result<PathBuf> {
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "-p",
        "xenctl",
        "--bin",
        "xenctl",
        "--release",
        "--target",
        LINUX_TOOLS_TARGET,
    ])
    .env("CARGO_TARGET_DIR", target_dir);
    let (var, linker) = LINUX_TOOLS_LINKER;
    // A linker the user chose for this target (a cross gcc, say) wins.
    if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
        cmd.env(var, linker);
    }
    shell::run_checked(&mut cmd).with_context(|| {
        format!(
            "cannot build xenctl for {LINUX_TOOLS_TARGET} (is the target installed? \
             `rustup target add {LINUX_TOOLS_TARGET}` or `bash .ci/install-deps`)"
        )
    })?;
    let path = target_dir
        .join(LINUX_TOOLS_TARGET)
        .join("release")
        .join("xenctl");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    image::check_static_aarch64_executable(&bytes)
        .with_context(|| format!("{} is not what an initramfs can run", path.display()))?;
    println!(
        "{}: static AArch64 executable, {} bytes",
        path.display(),
        bytes.len()
    );
    Ok(path)
}

/// Where cargo puts its output: `$CARGO_TARGET_DIR` or `target`, relative to the workspace root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// Where xtask puts its output.
pub fn xtask_dir() -> PathBuf {
    target_dir().join("xtask")
}

/// The build artifacts.
#[derive(Debug, Clone)]
pub struct Built {
    /// The flat image for `-kernel`.
    pub bin: PathBuf,
    /// The ELF, with symbols, for gdb.
    pub elf: PathBuf,
}

/// Builds `hyp` (release, or dev with `debug`), writes `hyp.bin` and copies `hyp.elf`.
pub fn build(debug: bool) -> Result<Built> {
    build_package("hyp", debug)
}

/// Builds the bare-metal test guest (`tests/guests`), writes `test-guest.bin` and copies
/// `test-guest.elf`.
pub fn build_test_guest(debug: bool) -> Result<Built> {
    build_package("test-guest", debug)
}

/// Builds the bare-metal binary `package` (its binary has the package's name) and
/// writes `<package>.bin` (flat image) and `<package>.elf` into the xtask directory.
fn build_package(package: &str, debug: bool) -> Result<Built> {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "-p", package, "--target", TARGET]);
    if !debug {
        cmd.arg("--release");
    }
    shell::run_checked(&mut cmd)?;

    let profile_dir = if debug { "debug" } else { "release" };
    let elf_path = target_dir().join(TARGET).join(profile_dir).join(package);
    let out = xtask_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let built = Built {
        bin: out.join(format!("{package}.bin")),
        elf: out.join(format!("{package}.elf")),
    };
    write_flat(&elf_path, &built.bin)?;
    std::fs::copy(&elf_path, &built.elf).with_context(|| {
        format!(
            "cannot copy {} to {}",
            elf_path.display(),
            built.elf.display()
        )
    })?;
    Ok(built)
}

/// Converts the ELF at `elf_path` to a checked flat image at `bin_path`.
fn write_flat(elf_path: &Path, bin_path: &Path) -> Result<()> {
    let elf =
        std::fs::read(elf_path).with_context(|| format!("cannot read {}", elf_path.display()))?;
    let flat = image::elf_to_flat(&elf)
        .with_context(|| format!("cannot flatten {}", elf_path.display()))?;
    let header = image::check_image(&flat)
        .with_context(|| format!("{} is not a bootable arm64 Image", elf_path.display()))?;
    std::fs::write(bin_path, &flat)
        .with_context(|| format!("cannot write {}", bin_path.display()))?;
    println!(
        "{}: {} bytes (header: text_offset {:#x}, image_size {:#x}, flags {:#x})",
        bin_path.display(),
        flat.len(),
        header.text_offset,
        header.image_size,
        header.flags
    );
    Ok(())
}

/// Compiles a device-tree source with `dtc` into the xtask directory; returns the blob.
pub fn compile_dts(dts: &Path) -> Result<PathBuf> {
    let stem = dts
        .file_stem()
        .context("device-tree source has no file name")?
        .to_string_lossy();
    let out_dir = xtask_dir().join("dtb");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let out = out_dir.join(format!("{stem}.dtb"));
    let mut cmd = Command::new("dtc");
    cmd.args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&out)
        .arg(dts);
    shell::run_checked(&mut cmd).context(
        "dtc failed (is it installed? `sudo apt-get install device-tree-compiler` or \
         `bash .ci/install-deps`)",
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real cross build (cargo runs in `xtask/`, inside the workspace) (about 10 s the first time; needs the musl target installed):
    /// `cargo test -p xtask -- --ignored xenctl`. `cargo xtask test` does the same build
    /// and check whenever a case sets `linux.xen_tools`.
    #[test]
    #[ignore = "builds xenctl for aarch64-unknown-linux-musl (slow; needs the target)"]
    fn xenctl_builds_as_a_static_aarch64_executable() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::path::absolute(root.join("target/xtask/xenctl-build-test")).unwrap();
        let path = build_xenctl_in(&dir).unwrap();
        assert!(path.ends_with("aarch64-unknown-linux-musl/release/xenctl"));
    }
}
