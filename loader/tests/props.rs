//! Property tests of the readers of file-controlled input: the boot manifest, the boot
//! archive and the kernel image header. Round trips for what the writers produce, and
//! errors (never panics) for damaged input. Bounded for CI; the fuzz targets in `fuzz/`
//! explore further.

use std::collections::BTreeSet;
use std::io::Write;

use cpio::newc::{Builder, ModeFileType, trailer};
use loader::layout::{MAX_VCPUS, MIB, RAM_MAX_SIZE, RAM_SIZE_ALIGN};
use loader::{
    BootArchive, DomainSpec, ImageFormat, MANIFEST_FILE, MAX_AFFINITY_CPU, PsciConduit,
    parse_image, read_manifest, write_manifest,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A file name as a boot archive holds it: non-empty, no NUL, not starting with `/` or
/// `./` (the archive drops those).
fn file_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_][a-zA-Z0-9_./-]{0,20}".prop_filter("no leading ./", |s| !s.starts_with("./"))
}

/// A valid `cpus` list: distinct CPU numbers in any order, often none.
fn cpu_list() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::btree_set(0..MAX_AFFINITY_CPU, 0..8)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// A valid `devices` list: distinct device-tree paths, often none.
fn device_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("(/[a-z][a-z0-9,._+-]{0,12}(@[0-9a-f]{1,8})?){1,3}", 0..4)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

fn domain() -> impl Strategy<Value = DomainSpec> {
    (
        "[a-zA-Z][a-zA-Z0-9._-]{0,30}",
        file_name(),
        prop::option::of(file_name()),
        "[^\0]{0,40}",
        1..=RAM_MAX_SIZE / RAM_SIZE_ALIGN,
        1..=MAX_VCPUS,
        any::<bool>(),
        any::<bool>(),
        (cpu_list(), device_list(), any::<bool>()),
    )
        .prop_map(
            |(name, kernel, initrd, cmdline, blocks, vcpus, console, smc, (cpus, devices, xen))| {
                DomainSpec {
                    name,
                    kernel,
                    initrd,
                    cmdline,
                    memory: blocks * RAM_SIZE_ALIGN,
                    vcpus,
                    console,
                    privileged: false,
                    xen,
                    psci_conduit: if smc {
                        PsciConduit::Smc
                    } else {
                        PsciConduit::Hvc
                    },
                    cpus,
                    devices,
                }
            },
        )
}

/// One to four domains with distinct names.
fn domains() -> impl Strategy<Value = Vec<DomainSpec>> {
    prop::collection::vec(domain(), 1..5).prop_map(|mut list| {
        let mut seen = BTreeSet::new();
        list.retain(|d| seen.insert(d.name.clone()));
        list
    })
}

/// A newc archive of `files` (name, contents), in order, then the trailer.
fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
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

/// The archive a boot would use: the manifest of `domains` plus every file it names.
fn boot_archive(domains: &[DomainSpec], seed: u8) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let mut files = vec![(MANIFEST_FILE.to_string(), write_manifest(domains).unwrap())];
    for d in domains {
        for name in std::iter::once(&d.kernel).chain(d.initrd.as_ref()) {
            if files.iter().all(|(n, _)| n != name) {
                let len = (name.len() * 7 + usize::from(seed)) % 67;
                let data = (0..len).map(|i| (i as u8) ^ seed).collect();
                files.push((name.clone(), data));
            }
        }
    }
    (archive(&files), files)
}

/// Whatever a reader accepts is itself valid.
fn check_accepted(domains: &[DomainSpec]) -> Result<(), TestCaseError> {
    prop_assert!(!domains.is_empty());
    let mut names = BTreeSet::new();
    for d in domains {
        prop_assert_eq!(d.validate(), Ok(()));
        prop_assert!(names.insert(&d.name), "duplicate name accepted");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Writing a valid domain list and reading it back gives the same list.
    #[test]
    fn manifest_round_trip(list in domains()) {
        let dtb = write_manifest(&list).unwrap();
        prop_assert_eq!(read_manifest(&dtb).unwrap(), list);
    }

    /// A damaged manifest is refused or read as a valid list; never a panic.
    #[test]
    fn damaged_manifests_never_panic(
        list in domains(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut dtb = write_manifest(&list).unwrap();
        for (at, value) in edits {
            let i = at.index(dtb.len());
            dtb[i] = value;
        }
        if let Some(cut) = cut {
            dtb.truncate(cut.index(dtb.len()));
        }
        if let Ok(read) = read_manifest(&dtb) {
            check_accepted(&read)?;
        }
    }

    /// A boot archive made of a manifest and its files reads back: every file by name with
    /// its contents, in archive order, 4-byte aligned within the archive, and the manifest.
    #[test]
    fn archive_round_trip(list in domains(), seed: u8) {
        let (bytes, files) = boot_archive(&list, seed);
        let a = BootArchive::open(&bytes).unwrap();
        prop_assert_eq!(a.len(), files.len());
        let listed: Vec<(&str, &[u8])> = a.files().collect();
        let expected: Vec<(&str, &[u8])> =
            files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        prop_assert_eq!(listed, expected);
        for (name, data) in &files {
            let found = a.file(name).unwrap();
            prop_assert_eq!(found, data.as_slice());
            prop_assert_eq!((found.as_ptr() as usize - bytes.as_ptr() as usize) % 4, 0);
            prop_assert_eq!(a.file(&format!("./{name}")), Some(found));
        }
        prop_assert_eq!(a.manifest().unwrap(), list);
    }

    /// A damaged or truncated archive is refused or read consistently; never a panic, and
    /// never a file that does not lie inside the archive.
    #[test]
    fn damaged_archives_never_panic(
        list in domains(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (mut bytes, _) = boot_archive(&list, 0x5a);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(a) = BootArchive::open(&bytes) {
            let range = bytes.as_ptr_range();
            for (name, data) in a.files() {
                prop_assert!(range.start <= data.as_ptr());
                prop_assert!(data.as_ptr_range().end <= range.end);
                prop_assert_eq!(a.file(name), Some(data));
            }
            if let Ok(read) = a.manifest() {
                check_accepted(&read)?;
                for d in &read {
                    prop_assert!(a.file(&d.kernel).is_some());
                }
            }
        }
    }

    /// Any bytes: a kernel image is recognised or refused, never a panic, and what is
    /// recognised covers at least the file.
    #[test]
    fn image_headers(bytes in prop::collection::vec(any::<u8>(), 0..200), magic: bool) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 64 {
            bytes[56..60].copy_from_slice(b"ARM\x64");
        }
        let Ok(info) = parse_image(&bytes) else { return Ok(()) };
        prop_assert!(info.effective_size >= bytes.len() as u64);
        let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        match info.format {
            ImageFormat::Raw => prop_assert!(bytes.len() < 64 || &bytes[56..60] != b"ARM\x64"),
            ImageFormat::LinuxLegacy => {
                prop_assert_eq!(le64(16), 0);
                prop_assert_eq!(info.effective_size, bytes.len() as u64 + 4 * MIB);
            }
            ImageFormat::Linux => {
                prop_assert_eq!(info.text_offset, le64(8));
                prop_assert_eq!(info.effective_size, le64(16).max(bytes.len() as u64));
                prop_assert_eq!(le64(24) & 1, 0, "big-endian image accepted");
                prop_assert!(info.text_offset.checked_add(le64(16)).is_some());
            }
        }
    }
}
