//! A disk for Linux cases (`linux = { disk = true }`): a raw image holding a FAT file
//! system with one known file, attached to QEMU as a virtio-blk device on the `virt`
//! machine's virtio-mmio transports.
//!
//! The image is written in Rust (`fatfs`), fresh for every case run and named after the
//! case, so cases running side by side never share one. Its contents are fixed: the file
//! [`KNOWN_FILE`] holds [`KNOWN_LEN`] bytes of a pseudo-random sequence from a fixed seed
//! ([`known_content`]), whose MD5 `tests/linux/disk.sh` knows ([`KNOWN_MD5`]). After the
//! run, [`check`] reads the image back on the host: the known file must be unchanged and,
//! if the guest wrote [`WRITTEN_FILE`], it must hold what `disk.sh` writes
//! ([`written_content`]), so a write that never reached the disk cannot pass.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, ensure};

/// The modules the stock Debian 6.1 kernel needs to reach and mount the disk (each with
/// its dependencies: `vfat` needs `fat`): the virtio-mmio transport and the block driver
/// are modules, and so are the code page and the I/O character set a vfat mount with
/// default options loads (`CONFIG_FAT_DEFAULT_CODEPAGE=437`,
/// `CONFIG_FAT_DEFAULT_IOCHARSET="ascii"`). `virtio` itself and devtmpfs are built in.
pub const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_blk",
    "vfat",
    "nls_cp437",
    "nls_ascii",
];
/// The image's size: room for the two files and FAT16's minimum cluster count.
pub const IMAGE_SIZE: usize = 16 << 20;
/// The file xtask puts on the disk (an 8.3 name: no long-name entry needed).
pub const KNOWN_FILE: &str = "KNOWN.BIN";
/// Its length.
pub const KNOWN_LEN: usize = 1 << 20;
/// The MD5 of [`known_content`], as busybox `md5sum` prints it; `tests/linux/disk.sh`
/// holds the same value (a unit test keeps the two equal).
pub const KNOWN_MD5: &str = "c9ad512f22d06ff7f58dabf4f673fb94";
/// The file `tests/linux/disk.sh` writes, checked on the host after the run.
pub const WRITTEN_FILE: &str = "WRITTEN.TXT";
/// What `disk.sh` writes to [`WRITTEN_FILE`]: `seq 1 WRITTEN_LINES`.
pub const WRITTEN_LINES: u32 = 20_000;
/// The volume label (11 bytes, space-padded, as FAT stores it).
const LABEL: [u8; 11] = *b"RUSTHYPDISK";
/// A fixed volume serial number, so the image is the same on every run.
const VOLUME_ID: u32 = 0x2026_1201;
/// The seed of [`known_content`]'s sequence.
const SEED: u64 = 0x7275_7374_2d68_7970; // "rust-hyp"

/// The QEMU arguments that attach `image` as a virtio-blk disk on a virtio-mmio transport
/// (`/dev/vda` in Linux). A comma in the path is doubled, as QEMU's option syntax wants.
pub fn qemu_args(image: &Path) -> [String; 4] {
    let file = image.to_string_lossy().replace(',', ",,");
    [
        "-drive".into(),
        format!("file={file},if=none,format=raw,id=hd0"),
        "-device".into(),
        "virtio-blk-device,drive=hd0".into(),
    ]
}

/// The known file's contents: [`KNOWN_LEN`] bytes of xorshift64* output from [`SEED`].
pub fn known_content() -> Vec<u8> {
    let mut state = SEED;
    let mut out = Vec::with_capacity(KNOWN_LEN);
    while out.len() < KNOWN_LEN {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(KNOWN_LEN);
    out
}

/// What `disk.sh` writes to [`WRITTEN_FILE`]: busybox `seq 1 N`'s output.
pub fn written_content() -> Vec<u8> {
    let mut out = String::new();
    for i in 1..=WRITTEN_LINES {
        out += &i.to_string();
        out.push('\n');
    }
    out.into_bytes()
}

/// Writes a fresh disk image to `path`: a FAT volume (no partition table; `fatfs` picks
/// FAT16 for this size) holding [`KNOWN_FILE`].
pub fn create(path: &Path) -> Result<()> {
    let mut disk = Cursor::new(vec![0u8; IMAGE_SIZE]);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .volume_label(LABEL)
            .volume_id(VOLUME_ID),
    )
    .context("cannot format the disk image")?;
    disk.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
            .context("cannot open the new FAT volume")?;
        let mut file = fs.root_dir().create_file(KNOWN_FILE)?;
        file.write_all(&known_content())?;
        file.flush()?;
        drop(file);
        fs.unmount().context("cannot close the new FAT volume")?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, disk.into_inner())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads `path` back after a run: the known file must be unchanged, and a
/// [`WRITTEN_FILE`] (if any) must hold [`written_content`]. Returns what was found.
pub fn check(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut disk = Cursor::new(bytes);
    let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
        .context("not a readable FAT volume any more")?;
    let root = fs.root_dir();
    let read = |name: &str| -> Result<Option<Vec<u8>>> {
        let mut file = match root.open_file(name) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot open {name}")),
        };
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .with_context(|| format!("cannot read {name}"))?;
        Ok(Some(data))
    };
    let known = read(KNOWN_FILE)?.with_context(|| format!("{KNOWN_FILE} is gone"))?;
    ensure!(known == known_content(), "{KNOWN_FILE} changed");
    Ok(match read(WRITTEN_FILE)? {
        None => format!("{KNOWN_FILE} unchanged; no {WRITTEN_FILE}"),
        Some(data) => {
            ensure!(
                data == written_content(),
                "{WRITTEN_FILE} does not hold `seq 1 {WRITTEN_LINES}` ({} bytes)",
                data.len()
            );
            format!("{KNOWN_FILE} unchanged; {WRITTEN_FILE} holds `seq 1 {WRITTEN_LINES}`")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_content_is_fixed() {
        let data = known_content();
        assert_eq!(data.len(), KNOWN_LEN);
        assert_eq!(data, known_content());
        // FNV-1a over the whole file: a change to the generator shows here, before any
        // boot case notices a wrong MD5.
        let fnv = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        assert_eq!(fnv, 0x1a86_1eae_742c_3f0a, "{fnv:#018x}");
        let written = written_content();
        assert!(written.starts_with(b"1\n2\n3\n") && written.ends_with(b"\n19999\n20000\n"));
    }

    #[test]
    fn the_script_expects_the_known_md5() {
        let script = include_str!("../../../tests/linux/disk.sh");
        assert!(
            script.contains(&format!("KNOWN_MD5={KNOWN_MD5}\n")),
            "tests/linux/disk.sh must set KNOWN_MD5={KNOWN_MD5}"
        );
        assert!(script.contains(&format!("seq 1 {WRITTEN_LINES} ")));
        // The MD5 itself, where the host has md5sum (coreutils).
        let dir = crate::linux::deb::tests::temp_dir("disk-md5");
        let file = dir.join("known.bin");
        std::fs::write(&file, known_content()).unwrap();
        if let Ok(out) = std::process::Command::new("md5sum").arg(&file).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.split_whitespace().next(), Some(KNOWN_MD5));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn image_round_trip_and_check() {
        let dir = crate::linux::deb::tests::temp_dir("disk");
        let path = dir.join("case.img");
        create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), IMAGE_SIZE as u64);
        assert_eq!(
            check(&path).unwrap(),
            format!("{KNOWN_FILE} unchanged; no {WRITTEN_FILE}")
        );
        let first = std::fs::read(&path).unwrap();
        create(&path).unwrap();
        assert_eq!(
            first,
            std::fs::read(&path).unwrap(),
            "the image is reproducible"
        );
        {
            let bytes = std::fs::read(&path).unwrap();
            let mut disk = Cursor::new(bytes);
            {
                let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
                assert_eq!(fs.fat_type(), fatfs::FatType::Fat16);
                assert_eq!(fs.volume_label(), "RUSTHYPDISK");
                let mut f = fs.root_dir().create_file(WRITTEN_FILE).unwrap();
                f.write_all(&written_content()).unwrap();
                drop(f);
                fs.unmount().unwrap();
            }
            std::fs::write(&path, disk.into_inner()).unwrap();
        }
        assert!(check(&path).unwrap().contains("holds `seq 1 20000`"));
        // A damaged known file or a wrong written file fails.
        let mut bytes = std::fs::read(&path).unwrap();
        let head = &known_content()[..64];
        let at = bytes.windows(64).position(|w| w == head).unwrap();
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(format!("{:#}", check(&path).unwrap_err()).contains("changed"));
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        assert!(check(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn qemu_arguments() {
        assert_eq!(
            qemu_args(Path::new("target/xtask/disks/a,b.img")),
            [
                "-drive",
                "file=target/xtask/disks/a,,b.img,if=none,format=raw,id=hd0",
                "-device",
                "virtio-blk-device,drive=hd0"
            ]
        );
    }
}
