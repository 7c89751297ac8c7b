//! Writes small seed corpora for the fuzz targets into `fuzz/corpus/<target>/` (not
//! committed): the device trees under `platforms/tests/data`, a manifest and a boot archive
//! written by `loader`, and kernel image headers. Run from `fuzz/`:
//!
//!     cargo +nightly run --bin gen_seeds

use std::fs;
use std::io::Write;
use std::path::Path;

use cpio::newc::{Builder, ModeFileType, trailer};
use loader::layout::MIB;
use loader::{DomainSpec, MANIFEST_FILE, PsciConduit, write_manifest};

fn seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ino, (name, data)) in files.iter().enumerate() {
        let mut w = Builder::new(name)
            .ino(ino as u32 + 1)
            .mode(0o644)
            .nlink(1)
            .set_mode_file_type(ModeFileType::Regular)
            .write(&mut out, data.len() as u32);
        w.write_all(data).unwrap();
        w.finish().unwrap();
    }
    trailer(&mut out).unwrap();
    out
}

fn main() {
    for entry in fs::read_dir("../platforms/tests/data").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "dtb") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            seed("platform_dtb", &name, &fs::read(&path).unwrap());
        }
    }

    let mut dom0 = DomainSpec::new("dom0", "Image", 256 * MIB, 2);
    dom0.initrd = Some("initrd.cpio".into());
    dom0.cmdline = "console=ttyAMA0".into();
    let mut guest = DomainSpec::new("guest", "guest.bin", 16 * MIB, 1);
    guest.console = false;
    guest.psci_conduit = PsciConduit::Smc;
    guest.cpus = vec![1, 0];
    let manifest = write_manifest(&[dom0, guest]).unwrap();
    seed("manifest", "two-domains.dtb", &manifest);
    let one = write_manifest(&[DomainSpec::new("d", "k", 2 * MIB, 1)]).unwrap();
    seed("manifest", "one-domain.dtb", &one);

    let mut header = vec![0u8; 64];
    header[16..24].copy_from_slice(&0x20_0000u64.to_le_bytes());
    header[24..32].copy_from_slice(&0b1010u64.to_le_bytes());
    header[56..60].copy_from_slice(b"ARM\x64");
    seed("kernel_image", "linux-header", &header);
    seed("kernel_image", "raw", b"\x00\x00\x80\xd2raw code");

    let boot = archive(&[
        (MANIFEST_FILE, &manifest),
        ("Image", &header),
        ("initrd.cpio", b"070701"),
        ("./guest.bin", b"\x00\x00\x80\xd2"),
    ]);
    seed("boot_archive", "boot.cpio", &boot);
    seed("boot_archive", "empty.cpio", &archive(&[]));
    println!("seeds written under fuzz/corpus/");
}
