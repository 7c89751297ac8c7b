//! `cargo xtask image rpi4`: a Raspberry Pi 4 SD-card image, written as a plain file.
//!
//! The image holds an MBR (`mbrman`) with one bootable FAT32 partition (type 0x0c, LBA,
//! from 1 MiB) formatted and filled in Rust (`fatfs`): no root, no loop device, no
//! `mkfs`. On it go the GPU firmware from Debian's `raspi-firmware` package
//! ([`FIRMWARE_FILES`]), the firmware's device tree for the board ([`DTB`]), the
//! hypervisor as the "kernel" ([`KERNEL`]), the boot archive as the "initramfs"
//! ([`ARCHIVE`]) and a `config.txt` naming them ([`config_txt`]). [`read`] opens an image
//! with the same crates and checks all of it; the `sd_image` boot cases boot the files it
//! returns (`docs/raspberry-pi-4.md`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// The hypervisor image's name on the card (`kernel=` in `config.txt`).
pub const KERNEL: &str = "hyp.bin";
/// The boot archive's name on the card (`initramfs` in `config.txt`).
pub const ARCHIVE: &str = "domains.cpio";
/// The Raspberry Pi 4 Model B's device tree, which the firmware loads by this name.
pub const DTB: &str = "bcm2711-rpi-4-b.dtb";
/// The firmware files a Raspberry Pi 4 needs from `raspi-firmware` (the boot ROM in its
/// EEPROM loads `start4.elf`, which needs the matching `fixup4.dat`).
pub const FIRMWARE_FILES: &[&str] = &["start4.elf", "fixup4.dat"];
/// The configuration file the firmware reads.
pub const CONFIG: &str = "config.txt";

const SECTOR: u64 = 512;
/// Where the partition starts: 1 MiB, the usual alignment for flash media.
pub const PARTITION_START_LBA: u32 = 2048;
/// FAT32 with CHS-less (LBA) addressing.
pub const PARTITION_TYPE: u8 = 0x0c;
/// The smallest image written; it grows with the files (a 256 MiB card holds the default
/// system's two Linux kernels with room to spare).
pub const MIN_IMAGE_SIZE: u64 = 256 << 20;
/// Fixed identifiers, so the same inputs give the same image.
const DISK_SIGNATURE: [u8; 4] = *b"rhyp";
const VOLUME_ID: u32 = 0x2026_0409;
const LABEL: [u8; 11] = *b"RHYP-BOOT  ";

/// The `config.txt` the image gets: 64-bit mode, the hypervisor as the kernel, the boot
/// archive as the initramfs loaded right after it, and the UART on GPIO 14/15 (the mini
/// UART on a Pi 4, as Bluetooth keeps the PL011).
pub fn config_txt() -> String {
    format!(
        "# Raspberry Pi 4 boot configuration written by `cargo xtask image rpi4`.\n\
         # The firmware (start4.elf) loads {KERNEL}, the hypervisor, as a 64-bit kernel\n\
         # and {ARCHIVE}, its boot archive (the domains to start), right after it,\n\
         # and passes both with {DTB} to the hypervisor at EL2.\n\
         # Console: the mini UART on GPIO 14/15 (header pins 8/10), 115200 8N1.\n\
         # See docs/raspberry-pi-4.md.\n\
         arm_64bit=1\n\
         kernel={KERNEL}\n\
         initramfs {ARCHIVE} followkernel\n\
         enable_uart=1\n"
    )
}

/// What goes on the card, each as (name, contents).
pub fn contents(
    firmware_dir: &Path,
    hypervisor: &Path,
    archive: &Path,
    dtb: &Path,
) -> Result<Vec<(String, Vec<u8>)>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let mut files = Vec::new();
    for name in FIRMWARE_FILES {
        files.push(((*name).to_owned(), read(&firmware_dir.join(name))?));
    }
    files.push((CONFIG.to_owned(), config_txt().into_bytes()));
    files.push((KERNEL.to_owned(), read(hypervisor)?));
    files.push((ARCHIVE.to_owned(), read(archive)?));
    files.push((DTB.to_owned(), read(dtb)?));
    Ok(files)
}

/// The image size for `files`: at least [`MIN_IMAGE_SIZE`], else their size plus a
/// quarter and 16 MiB, in whole MiB.
pub fn image_size(files: &[(String, Vec<u8>)]) -> u64 {
    let data: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let wanted = (u64::from(PARTITION_START_LBA) * SECTOR + data + data / 4 + (16 << 20))
        .next_multiple_of(1 << 20);
    wanted.max(MIN_IMAGE_SIZE)
}

/// Writes the image to `out` (replaced if it exists).
pub fn write(out: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let size = image_size(files);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut disk = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    disk.set_len(size)?;

    let sectors = u32::try_from(size / SECTOR - u64::from(PARTITION_START_LBA))
        .context("image too large for an MBR")?;
    let mut mbr = mbrman::MBR::new_from(&mut disk, SECTOR as u32, DISK_SIGNATURE)
        .context("cannot make a partition table")?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: PARTITION_TYPE,
        last_chs: mbrman::CHS::empty(),
        starting_lba: PARTITION_START_LBA,
        sectors,
    };
    mbr.write_into(&mut disk)
        .context("cannot write the partition table")?;

    let mut part = Window::new(&mut disk, PARTITION_START_LBA, sectors)?;
    fatfs::format_volume(
        &mut part,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .volume_id(VOLUME_ID)
            .volume_label(LABEL),
    )
    .context("cannot format the FAT32 partition")?;
    {
        let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())?;
        for (name, data) in files {
            let root = fs.root_dir();
            let mut file = root
                .create_file(name)
                .with_context(|| format!("cannot create {name} on the card"))?;
            file.truncate()?;
            file.write_all(data)
                .with_context(|| format!("cannot write {name} on the card"))?;
        }
        fs.unmount()?;
    }
    disk.sync_all()?;
    Ok(())
}

/// An image read back: the partition entry and every file of the FAT's root directory.
#[derive(Debug)]
pub struct ReadBack {
    /// The used MBR entries: (number, type, start LBA, sectors, active).
    pub partitions: Vec<(usize, u8, u32, u32, bool)>,
    /// The FAT type found.
    pub fat_type: fatfs::FatType,
    /// The root directory's files, in directory order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ReadBack {
    /// The contents of `name`, if the card has it.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
    }
}

/// Opens `image` with `mbrman` and `fatfs` and reads the boot partition's files.
pub fn read(image: &Path) -> Result<ReadBack> {
    let mut disk = File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let mbr = mbrman::MBR::read_from(&mut disk, SECTOR as u32)
        .with_context(|| format!("{}: no MBR", image.display()))?;
    let partitions: Vec<_> = mbr
        .iter()
        .filter(|(_, p)| p.is_used())
        .map(|(i, p)| (i, p.sys, p.starting_lba, p.sectors, p.is_active()))
        .collect();
    let Some(&(_, _, start, sectors, _)) = partitions.first() else {
        bail!("{}: the MBR has no partition", image.display());
    };
    let mut part = Window::new(&mut disk, start, sectors)?;
    let fs = fatfs::FileSystem::new(&mut part, fatfs::FsOptions::new())
        .with_context(|| format!("{}: partition 1 is not a FAT", image.display()))?;
    let fat_type = fs.fat_type();
    let mut files = Vec::new();
    for entry in fs.root_dir().iter() {
        let entry = entry?;
        if entry.is_file() {
            let mut data = Vec::new();
            entry.to_file().read_to_end(&mut data)?;
            files.push((entry.file_name(), data));
        }
    }
    Ok(ReadBack {
        partitions,
        fat_type,
        files,
    })
}

/// Checks a card read back against what it should hold: one active FAT32 partition
/// (type 0x0c) from 1 MiB, the firmware files, `config.txt` as [`config_txt`] writes it
/// and the hypervisor, boot archive and device tree. `expected` gives the contents of any
/// file to compare byte for byte.
pub fn check(card: &ReadBack, expected: &[(String, Vec<u8>)]) -> Result<()> {
    ensure!(
        card.partitions.len() == 1,
        "{} partitions, not 1: {:?}",
        card.partitions.len(),
        card.partitions
    );
    let (number, sys, start, _, active) = card.partitions[0];
    ensure!(
        number == 1 && sys == PARTITION_TYPE && start == PARTITION_START_LBA && active,
        "partition {number}: type {sys:#04x}, start {start}, active {active}; expected 1: \
         type {PARTITION_TYPE:#04x}, start {PARTITION_START_LBA}, active"
    );
    ensure!(
        card.fat_type == fatfs::FatType::Fat32,
        "the file system is {:?}, not FAT32",
        card.fat_type
    );
    let config = card.file(CONFIG).context("no config.txt")?;
    let config = std::str::from_utf8(config).context("config.txt is not UTF-8")?;
    let settings: Vec<&str> = config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let wanted = [
        "arm_64bit=1".to_owned(),
        format!("kernel={KERNEL}"),
        format!("initramfs {ARCHIVE} followkernel"),
        "enable_uart=1".to_owned(),
    ];
    ensure!(
        settings == wanted,
        "config.txt sets {settings:?}, expected {wanted:?}"
    );
    for name in FIRMWARE_FILES.iter().chain(&[KERNEL, ARCHIVE, DTB]) {
        let data = card.file(name).with_context(|| format!("no {name}"))?;
        ensure!(!data.is_empty(), "{name} is empty");
    }
    for (name, data) in expected {
        let found = card.file(name).with_context(|| format!("no {name}"))?;
        ensure!(found == data.as_slice(), "{name} differs from its source");
    }
    Ok(())
}

/// The part of a disk from sector `start`, `sectors` long: what `fatfs` sees as its
/// volume.
struct Window<'a, D> {
    disk: &'a mut D,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a, D: Seek> Window<'a, D> {
    fn new(disk: &'a mut D, start: u32, sectors: u32) -> io::Result<Self> {
        let start = u64::from(start) * SECTOR;
        disk.seek(SeekFrom::Start(start))?;
        Ok(Self {
            disk,
            start,
            len: u64::from(sectors) * SECTOR,
            pos: 0,
        })
    }

    /// How much of a `want`-byte access at the current position stays inside.
    fn clamp(&self, want: usize) -> usize {
        usize::try_from(self.len.saturating_sub(self.pos)).map_or(want, |left| want.min(left))
    }
}

impl<D: Read + Seek> Read for Window<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.clamp(buf.len());
        let n = self.disk.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Write + Seek> Write for Window<'_, D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.clamp(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the partition's end",
            ));
        }
        let n = self.disk.write(&buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush()
    }
}

impl<D: Seek> Seek for Window<'_, D> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .filter(|t| *t <= self.len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek outside"))?;
        self.disk.seek(SeekFrom::Start(self.start + target))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_a_card() {
        let dir = crate::linux::deb::tests::temp_dir("sd-image");
        let firmware = dir.join("fw");
        std::fs::create_dir_all(&firmware).unwrap();
        std::fs::write(firmware.join("start4.elf"), vec![0x5a; 300_000]).unwrap();
        std::fs::write(firmware.join("fixup4.dat"), b"fixup").unwrap();
        let hyp = dir.join("hyp.bin");
        std::fs::write(&hyp, vec![7u8; 123_457]).unwrap();
        let archive = dir.join("a.cpio");
        std::fs::write(
            &archive,
            (0..2_000_000u32).map(|i| i as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        let dtb = dir.join("b.dtb");
        std::fs::write(&dtb, [0xd0, 0x0d, 0xfe, 0xed]).unwrap();

        let files = contents(&firmware, &hyp, &archive, &dtb).unwrap();
        let image = dir.join("card.img");
        write(&image, &files).unwrap();
        assert_eq!(std::fs::metadata(&image).unwrap().len(), MIN_IMAGE_SIZE);
        let card = read(&image).unwrap();
        check(&card, &files).unwrap();
        assert_eq!(card.partitions, [(1, 0x0c, 2048, 522_240, true)]);
        let names: Vec<&str> = card.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "start4.elf",
                "fixup4.dat",
                CONFIG,
                KERNEL,
                ARCHIVE,
                "bcm2711-rpi-4-b.dtb"
            ]
        );
        // The same inputs give the same bytes.
        let again = dir.join("again.img");
        write(&again, &files).unwrap();
        assert!(std::fs::read(&image).unwrap() == std::fs::read(&again).unwrap());

        // A card missing a file, or with another config.txt, fails the check.
        let mut short = card;
        short.files.retain(|(n, _)| n != "fixup4.dat");
        assert!(check(&short, &[]).is_err());
        short.files.push(("fixup4.dat".into(), b"x".to_vec()));
        check(&short, &[]).unwrap();
        for (n, d) in &mut short.files {
            if n == CONFIG {
                *d = b"arm_64bit=1\nkernel=hyp.bin\n".to_vec();
            }
        }
        assert!(check(&short, &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn size_grows_with_the_files() {
        let big = vec![("x".to_owned(), vec![0u8; 300 << 20])];
        let size = image_size(&big);
        assert!(size > (300 << 20) + (1 << 20));
        assert_eq!(size % (1 << 20), 0);
        assert_eq!(image_size(&[]), MIN_IMAGE_SIZE);
    }

    #[test]
    fn config_names_the_files() {
        let text = config_txt();
        assert!(text.starts_with("# "));
        for line in [
            "arm_64bit=1",
            "kernel=hyp.bin",
            "initramfs domains.cpio followkernel",
            "enable_uart=1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}");
        }
    }
}
