//! The boot archive: one cpio "newc" archive holding the manifest and every file it names.
//!
//! The hypervisor is handed the archive as its own initrd (`/chosen/linux,initrd-start` and
//! `-end` of the boot device tree). It holds [`MANIFEST_FILE`] and the kernels and initrds
//! the manifest names, as regular files. Names are compared after dropping leading `./` and
//! `/`, so archives made with `find . | cpio -o -H newc` work too. Directories, links and
//! device nodes are ignored.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::manifest::{DomainSpec, ManifestError, read_manifest};

/// Name of the manifest inside the boot archive.
pub const MANIFEST_FILE: &str = "domains.dtb";

const NEWC_MAGIC: &[u8] = b"070701";
const NEWC_CRC_MAGIC: &[u8] = b"070702";
const NEWC_HEADER_LEN: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!\0";
const FILE_TYPE_MASK: u32 = 0o170_000;
const REGULAR_FILE: u32 = 0o100_000;

/// What is wrong with a boot archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// The data does not start with a newc (`070701`) or newc-with-CRC (`070702`) header.
    NotNewc,
    /// An entry header or its data is damaged or cut short, at this byte offset (a CRC
    /// mismatch in a `070702` archive shows up here too).
    Corrupt {
        /// Offset of the first entry that could not be read.
        offset: usize,
    },
    /// Two regular files have the same name.
    DuplicateFile(String),
    /// The archive has no [`MANIFEST_FILE`].
    NoManifest,
    /// The manifest is invalid.
    Manifest(ManifestError),
    /// A domain names a file the archive does not hold.
    MissingFile {
        /// The domain.
        domain: String,
        /// The file name.
        file: String,
    },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNewc => f.write_str("boot archive is not a cpio newc archive"),
            Self::Corrupt { offset } => write!(
                f,
                "boot archive is damaged or truncated at byte {offset:#x} (no readable entry or trailer there)"
            ),
            Self::DuplicateFile(name) => write!(f, "boot archive holds {name:?} twice"),
            Self::NoManifest => write!(f, "boot archive has no {MANIFEST_FILE}"),
            Self::Manifest(e) => write!(f, "{MANIFEST_FILE}: {e}"),
            Self::MissingFile { domain, file } => {
                write!(
                    f,
                    "domain {domain}: file {file:?} is not in the boot archive"
                )
            }
        }
    }
}

impl core::error::Error for ArchiveError {}

impl From<ManifestError> for ArchiveError {
    fn from(e: ManifestError) -> Self {
        Self::Manifest(e)
    }
}

/// A name with leading `./` and `/` dropped.
fn normalise(name: &str) -> &str {
    let mut name = name;
    loop {
        if let Some(rest) = name.strip_prefix("./") {
            name = rest;
        } else if let Some(rest) = name.strip_prefix('/') {
            name = rest;
        } else {
            return name;
        }
    }
}

/// The regular files of a cpio newc archive in memory, borrowed from it.
#[derive(Debug, Clone)]
pub struct BootArchive<'a> {
    files: Vec<(&'a str, &'a [u8])>,
}

impl<'a> BootArchive<'a> {
    /// Reads the archive's table of contents. The archive must be newc (`070701` or
    /// `070702`), readable entry by entry up to its `TRAILER!!!`, with no regular file twice.
    /// Nothing is copied: file contents are slices of `bytes`, aligned to 4 bytes within it.
    pub fn open(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        if !(bytes.starts_with(NEWC_MAGIC) || bytes.starts_with(NEWC_CRC_MAGIC)) {
            return Err(ArchiveError::NotNewc);
        }
        let base = bytes.as_ptr().addr();
        let mut files: Vec<(&'a str, &'a [u8])> = Vec::new();
        // Where the entry after the last one read must start.
        let mut next = 0usize;
        for entry in cpio_reader::iter_files(bytes) {
            let data = entry.file();
            // The data is a slice of `bytes`: its offset says where the entry ended.
            let end = data
                .as_ptr()
                .addr()
                .checked_sub(base)
                .and_then(|start| start.checked_add(data.len()))
                .filter(|&end| end <= bytes.len() && end >= next + NEWC_HEADER_LEN)
                .ok_or(ArchiveError::Corrupt { offset: next })?;
            next = end.next_multiple_of(4);
            if entry.mode().bits() & FILE_TYPE_MASK != REGULAR_FILE {
                continue;
            }
            let name = normalise(entry.name());
            if files.iter().any(|(n, _)| *n == name) {
                return Err(ArchiveError::DuplicateFile(name.into()));
            }
            files.push((name, data));
        }
        // The reader stops quietly at damage as well as at the trailer: tell them apart.
        let header = bytes.get(next..).unwrap_or_default();
        let magic_ok = header.starts_with(NEWC_MAGIC) || header.starts_with(NEWC_CRC_MAGIC);
        let trailer = header.get(NEWC_HEADER_LEN..NEWC_HEADER_LEN + TRAILER.len());
        if !magic_ok || trailer != Some(TRAILER) {
            return Err(ArchiveError::Corrupt { offset: next });
        }
        Ok(Self { files })
    }

    /// The contents of the regular file `name` (leading `./` and `/` ignored), if present.
    pub fn file(&self, name: &str) -> Option<&'a [u8]> {
        let name = normalise(name);
        self.files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, data)| data)
    }

    /// The regular files, in archive order, as (name, contents).
    pub fn files(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.files.iter().copied()
    }

    /// Number of regular files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the archive holds no regular file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Reads and checks [`MANIFEST_FILE`], then checks that every kernel and initrd it names
    /// is in the archive.
    pub fn manifest(&self) -> Result<Vec<DomainSpec>, ArchiveError> {
        let dtb = self.file(MANIFEST_FILE).ok_or(ArchiveError::NoManifest)?;
        let domains = read_manifest(dtb)?;
        for d in &domains {
            for file in core::iter::once(&d.kernel).chain(d.initrd.as_ref()) {
                if self.file(file).is_none() {
                    return Err(ArchiveError::MissingFile {
                        domain: d.name.clone(),
                        file: file.clone(),
                    });
                }
            }
        }
        Ok(domains)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::layout::MIB;
    use crate::manifest::write_manifest;
    use alloc::string::ToString;
    use alloc::vec;
    use cpio::newc::{Builder, ModeFileType, trailer};
    use std::io::Write;

    enum Item<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
    }

    /// Builds a newc archive with the `cpio` crate's writer.
    fn archive(items: &[Item<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, item) in items.iter().enumerate() {
            let ino = ino as u32 + 1;
            let (name, data, kind, perm) = match item {
                Item::File(n, d) => (*n, *d, ModeFileType::Regular, 0o644),
                Item::Dir(n) => (*n, &[][..], ModeFileType::Directory, 0o755),
                Item::Symlink(n, t) => (*n, t.as_bytes(), ModeFileType::Symlink, 0o777),
            };
            let mut w = Builder::new(name)
                .ino(ino)
                .mode(perm)
                .nlink(1)
                .set_mode_file_type(kind)
                .write(&mut out, data.len() as u32);
            w.write_all(data).unwrap();
            w.finish().unwrap();
        }
        trailer(&mut out).unwrap();
        out
    }

    fn domains() -> Vec<DomainSpec> {
        let mut dom0 = DomainSpec::new("dom0", "Image", 256 * MIB, 2);
        dom0.initrd = Some("initramfs.cpio.gz".to_string());
        dom0.cmdline = "console=ttyAMA0".to_string();
        vec![
            dom0,
            DomainSpec::new("test", "guests/hello.bin", 16 * MIB, 1),
        ]
    }

    #[test]
    fn files_and_manifest_read_back() {
        let manifest = write_manifest(&domains()).unwrap();
        let kernel: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let bytes = archive(&[
            Item::File(MANIFEST_FILE, &manifest),
            Item::Dir("guests"),
            Item::File("guests/hello.bin", b"hello"),
            Item::File("Image", &kernel),
            Item::File("initramfs.cpio.gz", b"\x1f\x8b rest"),
            Item::Symlink("latest", "Image"),
            Item::File("empty", b""),
        ]);
        let a = BootArchive::open(&bytes).unwrap();
        assert_eq!(a.len(), 5);
        assert!(!a.is_empty());
        assert_eq!(a.file("Image"), Some(&kernel[..]));
        assert_eq!(a.file("./Image"), Some(&kernel[..]));
        assert_eq!(a.file("guests/hello.bin"), Some(&b"hello"[..]));
        assert_eq!(a.file("empty"), Some(&b""[..]));
        assert_eq!(a.file("guests"), None);
        assert_eq!(a.file("latest"), None);
        assert_eq!(a.file("missing"), None);
        assert_eq!(a.file(MANIFEST_FILE), Some(&manifest[..]));
        let names: Vec<&str> = a.files().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                MANIFEST_FILE,
                "guests/hello.bin",
                "Image",
                "initramfs.cpio.gz",
                "empty"
            ]
        );
        for (_, data) in a.files() {
            assert_eq!((data.as_ptr().addr() - bytes.as_ptr().addr()) % 4, 0);
        }
        assert_eq!(a.manifest().unwrap(), domains());
    }

    #[test]
    fn leading_dot_slash_in_the_archive() {
        let manifest = write_manifest(&[DomainSpec::new("d", "Image", 4 * MIB, 1)]).unwrap();
        let bytes = archive(&[
            Item::Dir("."),
            Item::File("./domains.dtb", &manifest),
            Item::File("./Image", b"k"),
        ]);
        let a = BootArchive::open(&bytes).unwrap();
        assert_eq!(a.file("Image"), Some(&b"k"[..]));
        assert_eq!(a.manifest().unwrap().len(), 1);
    }

    #[test]
    fn manifest_problems() {
        let bytes = archive(&[Item::File("Image", b"k")]);
        let a = BootArchive::open(&bytes).unwrap();
        assert_eq!(a.manifest(), Err(ArchiveError::NoManifest));

        let manifest = write_manifest(&domains()).unwrap();
        let bytes = archive(&[
            Item::File(MANIFEST_FILE, &manifest),
            Item::File("Image", b"k"),
            Item::File("guests/hello.bin", b"h"),
        ]);
        let a = BootArchive::open(&bytes).unwrap();
        assert_eq!(
            a.manifest(),
            Err(ArchiveError::MissingFile {
                domain: "dom0".to_string(),
                file: "initramfs.cpio.gz".to_string()
            })
        );

        let bytes = archive(&[Item::File(MANIFEST_FILE, b"garbage")]);
        let a = BootArchive::open(&bytes).unwrap();
        assert!(matches!(
            a.manifest(),
            Err(ArchiveError::Manifest(ManifestError::Malformed(_)))
        ));
    }

    #[test]
    fn empty_archive_is_valid() {
        let bytes = archive(&[]);
        let a = BootArchive::open(&bytes).unwrap();
        assert!(a.is_empty());
        assert_eq!(a.manifest(), Err(ArchiveError::NoManifest));
    }

    #[test]
    fn trailing_padding_after_the_trailer_is_fine() {
        let mut bytes = archive(&[Item::File("a", b"1")]);
        bytes.resize(bytes.len().next_multiple_of(512), 0);
        assert_eq!(
            BootArchive::open(&bytes).unwrap().file("a"),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn refuses_damage() {
        assert_eq!(BootArchive::open(b"").unwrap_err(), ArchiveError::NotNewc);
        assert_eq!(
            BootArchive::open(b"070707 old portable format").unwrap_err(),
            ArchiveError::NotNewc
        );
        let bytes = archive(&[Item::File("a", b"0123456789"), Item::File("b", b"xyz")]);
        // Every truncation before the end of the trailer's name is refused: never a panic,
        // never a silent partial read.
        let trailer_at = bytes
            .windows(TRAILER.len())
            .position(|w| w == TRAILER)
            .unwrap();
        for len in 0..trailer_at + TRAILER.len() {
            assert!(BootArchive::open(&bytes[..len]).is_err(), "len {len}");
        }
        // A damaged second header: the first entry is a 110-byte header, "a\0" padded to
        // 4 bytes (112) and 10 bytes of data padded to 4 (124).
        let second = 124;
        let mut bad = bytes.clone();
        bad[second] = b'X';
        assert_eq!(
            BootArchive::open(&bad).unwrap_err(),
            ArchiveError::Corrupt { offset: second }
        );
        // Any single-byte change either still reads or gives an error.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] = b'g';
            let _ = BootArchive::open(&bad);
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        let bytes = archive(&[Item::File("a", b"1"), Item::File("./a", b"2")]);
        assert_eq!(
            BootArchive::open(&bytes).unwrap_err(),
            ArchiveError::DuplicateFile("a".to_string())
        );
    }
}
