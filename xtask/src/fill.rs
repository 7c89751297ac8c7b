//! `fill_ram`: RAM that QEMU fills with a byte before the hypervisor starts, so memory the
//! hypervisor hands to a domain is not the zeroes of fresh QEMU RAM.
//!
//! QEMU loads a file of that many bytes with `-device loader,file=F,addr=A,force-raw=on`.
//! The range must lie in RAM and must not overlap what QEMU's `virt` machine itself places
//! there when it boots an arm64 `Image` with `-kernel` (QEMU 10, `hw/arm/boot.c`):
//!
//! - its boot stub, at the RAM base (0x4000_0000; we keep its first 4 KiB clear);
//! - the image, at RAM base + `text_offset` (+ 2 MiB when `text_offset` is below 4 KiB,
//!   where the boot stub is), `image_size` bytes (the file's length if that is 0);
//! - the `-initrd`, at RAM base + min(RAM / 2, 128 MiB) (page-aligned, and not below the
//!   image's end);
//! - the device tree, after the initrd aligned up to 2 MiB (1 MiB for `virt`'s; we keep
//!   2 MiB clear).
//!
//! With 1 GiB of RAM, the hypervisor at 0x4020_0000 and no `text_offset` patch, the free
//! stretches are roughly 0x4030_0000..0x4800_0000 and, above the device tree,
//! 0x4840_0000 (more with a large initrd) up to the top of RAM.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::image::ImageHeader;
use crate::qemu::MIB;

/// Where RAM starts on QEMU's `virt` machine.
pub const VIRT_RAM_BASE: u64 = 0x4000_0000;
const BOOT_STUB_SIZE: u64 = 4 << 10;
/// Where QEMU loads an image whose header gives no usable `text_offset`.
const DEFAULT_TEXT_OFFSET: u64 = 0x8_0000;
const DTB_ALIGN: u64 = 2 * MIB;
const DTB_ROOM: u64 = 2 * MIB;
const PAGE: u64 = 4 << 10;

/// One `fill_ram` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Guest-physical start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// The value of every byte.
    pub byte: u8,
}

impl Fill {
    fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fill_ram {:#x}..{:#x} ({} MiB of {:#04x})",
            self.addr,
            self.end(),
            self.size / MIB,
            self.byte
        )
    }
}

/// A range QEMU writes itself, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupied {
    pub start: u64,
    pub end: u64,
    pub what: &'static str,
}

/// What QEMU's `virt` machine loads into RAM for a `-kernel` image with header `header` and
/// `image_len` bytes, and an initrd of `initrd_len` bytes, on a machine with `mem` of RAM.
pub fn virt_occupied(
    mem: u64,
    header: &ImageHeader,
    image_len: u64,
    initrd_len: Option<u64>,
) -> Vec<Occupied> {
    let base = VIRT_RAM_BASE;
    let mut offset = if header.image_size != 0 {
        header.text_offset
    } else {
        DEFAULT_TEXT_OFFSET
    };
    if offset < BOOT_STUB_SIZE {
        offset += 2 * MIB;
    }
    let image_start = base + offset;
    let image_end = image_start + header.image_size.max(image_len);
    let initrd_start = (base + (mem / 2).min(128 * MIB))
        .max(image_end)
        .next_multiple_of(PAGE);
    let initrd_end = initrd_start + initrd_len.unwrap_or(0);
    let dtb_start = initrd_end.next_multiple_of(DTB_ALIGN);
    let mut v = vec![
        Occupied {
            start: base,
            end: base + BOOT_STUB_SIZE,
            what: "boot stub",
        },
        Occupied {
            start: image_start,
            end: image_end,
            what: "hypervisor image",
        },
    ];
    if initrd_end > initrd_start {
        v.push(Occupied {
            start: initrd_start,
            end: initrd_end,
            what: "initrd (boot archive)",
        });
    }
    v.push(Occupied {
        start: dtb_start,
        end: dtb_start + DTB_ROOM,
        what: "device tree",
    });
    v
}

/// Checks that every fill lies in `virt`'s RAM (`mem` bytes) and clear of `occupied` and of
/// each other.
pub fn check(fills: &[Fill], mem: u64, occupied: &[Occupied]) -> Result<()> {
    let ram_end = VIRT_RAM_BASE + mem;
    for (i, fill) in fills.iter().enumerate() {
        ensure!(
            fill.addr >= VIRT_RAM_BASE && fill.end() <= ram_end && fill.addr < fill.end(),
            "{fill} is outside RAM {VIRT_RAM_BASE:#x}..{ram_end:#x}"
        );
        if let Some(o) = occupied
            .iter()
            .find(|o| fill.addr < o.end && o.start < fill.end())
        {
            bail!(
                "{fill} overlaps what QEMU loads itself: the {} at {:#x}..{:#x}",
                o.what,
                o.start,
                o.end
            );
        }
        if let Some(other) = fills[..i]
            .iter()
            .find(|o| fill.addr < o.end() && o.addr < fill.end())
        {
            bail!("{fill} overlaps {other}");
        }
    }
    Ok(())
}

/// The file of `size` bytes of `byte` under `dir`, written once and reused.
pub fn file(dir: &Path, size: u64, byte: u8) -> Result<PathBuf> {
    let path = dir.join(format!("fill-{}M-{byte:02x}.bin", size / MIB));
    if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Parallel cases may want the same file: write a private copy, then rename it in place.
    let tmp = dir.join(format!(
        "{}.{}.{:?}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("fill"),
        std::process::id(),
        std::thread::current().id()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let chunk = vec![byte; MIB as usize];
        let mut left = size;
        while left > 0 {
            let n = left.min(MIB);
            out.write_all(&chunk[..n as usize])?;
            left -= n;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    write()
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The `-device loader` argument that loads `file` at `addr` as raw bytes.
pub fn loader_device(file: &Path, addr: u64) -> String {
    // QEMU's option syntax: a comma in a value is written twice.
    let file = file.to_string_lossy().replace(',', ",,");
    format!("loader,file={file},addr={addr:#x},force-raw=on")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: ImageHeader = ImageHeader {
        text_offset: 0,
        image_size: 0x47000,
        flags: 0xa,
    };

    fn fill(addr: u64, size: u64) -> Fill {
        Fill {
            addr,
            size,
            byte: 0xa5,
        }
    }

    #[test]
    fn occupied_ranges_match_qemu_virt() {
        // As the hypervisor reports them: loaded at 0x40200000, device tree at 0x48000000
        // without an initrd and at 0x48200000 with a 169 KiB one.
        let o = virt_occupied(1 << 30, &HEADER, 0x35000, None);
        assert_eq!((o[1].start, o[1].end), (0x4020_0000, 0x4024_7000));
        assert_eq!(o.last().unwrap().start, 0x4800_0000);
        let o = virt_occupied(1 << 30, &HEADER, 0x35000, Some(169 << 10));
        assert_eq!((o[2].start, o[2].end), (0x4800_0000, 0x4802_a400));
        assert_eq!(o[3].start, 0x4820_0000);
        // 128 MiB of RAM: the initrd goes half way up.
        let o = virt_occupied(128 * MIB, &HEADER, 0x35000, Some(4096));
        assert_eq!(o[2].start, 0x4400_0000);
        // A relocated image (text_offset 0x3200000) is not moved further.
        let moved = ImageHeader {
            text_offset: 0x320_0000,
            ..HEADER
        };
        let o = virt_occupied(1 << 30, &moved, 0x35000, None);
        assert_eq!(o[1].start, 0x4320_0000);
    }

    #[test]
    fn checks_ranges() {
        let occupied = virt_occupied(1 << 30, &HEADER, 0x35000, Some(1 << 20));
        let mem = 1 << 30;
        check(&[fill(0x4200_0000, 64 * MIB)], mem, &occupied).unwrap();
        check(
            &[fill(0x4200_0000, 32 * MIB), fill(0x5000_0000, 64 * MIB)],
            mem,
            &occupied,
        )
        .unwrap();
        let err = |fills: &[Fill]| check(fills, mem, &occupied).unwrap_err().to_string();
        assert!(err(&[fill(0x3ff0_0000, 2 * MIB)]).contains("outside RAM"));
        assert!(err(&[fill(0x7ff0_0000, 2 * MIB)]).contains("outside RAM"));
        assert!(err(&[fill(0x4010_0000, 2 * MIB)]).contains("hypervisor image"));
        assert!(err(&[fill(0x4000_0000, MIB)]).contains("boot stub"));
        assert!(err(&[fill(0x4700_0000, 32 * MIB)]).contains("initrd"));
        assert!(err(&[fill(0x4830_0000, 2 * MIB)]).contains("device tree"));
        assert!(
            err(&[fill(0x5000_0000, 64 * MIB), fill(0x5100_0000, MIB)])
                .contains("overlaps fill_ram")
        );
    }

    #[test]
    fn writes_and_reuses_fill_files() {
        let dir = std::env::temp_dir().join(format!("xtask-fill-test-{}", std::process::id()));
        let path = file(&dir, 2 * MIB, 0xa5).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 2 << 20);
        assert!(data.iter().all(|&b| b == 0xa5));
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(file(&dir, 2 * MIB, 0xa5).unwrap(), path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified,
            "reused, not rewritten"
        );
        assert_ne!(file(&dir, MIB, 0xa5).unwrap(), path);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loader_arguments() {
        assert_eq!(
            loader_device(Path::new("target/xtask/fill/a,b.bin"), 0x4200_0000),
            "loader,file=target/xtask/fill/a,,b.bin,addr=0x42000000,force-raw=on"
        );
    }
}
