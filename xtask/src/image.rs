//! The hypervisor image: ELF to flat binary, and the Linux arm64 `Image` header it starts with.

use anyhow::{Context, Result, bail, ensure};
use object::Endianness;
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};

/// Length of the arm64 `Image` header.
pub const HEADER_LEN: usize = 64;
const TEXT_OFFSET_AT: usize = 8;
const IMAGE_SIZE_AT: usize = 16;
const FLAGS_AT: usize = 24;
const MAGIC_AT: usize = 56;
const MAGIC: &[u8; 4] = b"ARM\x64";
/// A flat image larger than this means a segment was linked at a stray address.
const MAX_FLAT_LEN: u64 = 256 << 20;

/// The fields of an arm64 `Image` header that matter to a loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset from a 2 MiB-aligned RAM base at which the image wants to be loaded.
    pub text_offset: u64,
    /// Bytes the image occupies once loaded, bss included (0: unknown, old kernels).
    pub image_size: u64,
    /// Endianness, page size and placement flags.
    pub flags: u64,
}

/// Checks that `data` is a statically linked AArch64 ELF executable, as a program in a
/// busybox initramfs must be (there is no dynamic loader there): type `ET_EXEC` or
/// `ET_DYN` (a static PIE), machine AArch64, no `PT_INTERP` program header.
pub fn check_static_aarch64_executable(data: &[u8]) -> Result<()> {
    let header = FileHeader64::<Endianness>::parse(data)
        .map_err(|e| anyhow::anyhow!("not a 64-bit ELF file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow::anyhow!("bad ELF header: {e}"))?;
    let machine = header.e_machine(endian);
    ensure!(
        machine == elf::EM_AARCH64,
        "ELF machine is {machine}, not AArch64 ({})",
        elf::EM_AARCH64
    );
    let kind = header.e_type(endian);
    ensure!(
        kind == elf::ET_EXEC || kind == elf::ET_DYN,
        "ELF type {kind} is not an executable"
    );
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| anyhow::anyhow!("bad ELF program headers: {e}"))?;
    ensure!(
        phdrs.iter().any(|ph| ph.p_type(endian) == elf::PT_LOAD),
        "ELF file has no PT_LOAD segment"
    );
    if let Some(interp) = phdrs.iter().find(|ph| ph.p_type(endian) == elf::PT_INTERP) {
        let path = interp.data(endian, data).unwrap_or_default();
        bail!(
            "dynamically linked (PT_INTERP {:?}): not a static executable",
            String::from_utf8_lossy(path).trim_end_matches('\0')
        );
    }
    Ok(())
}

/// Builds the flat image of an ELF file: each non-empty `PT_LOAD` segment's file bytes at its
/// offset from the lowest such segment's physical address, gaps zero-filled, bss not appended.
pub fn elf_to_flat(data: &[u8]) -> Result<Vec<u8>> {
    let header = FileHeader64::<Endianness>::parse(data)
        .map_err(|e| anyhow::anyhow!("not a 64-bit ELF file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow::anyhow!("bad ELF header: {e}"))?;
    let machine = header.e_machine(endian);
    ensure!(
        machine == elf::EM_AARCH64,
        "ELF machine is {machine:?}, not AArch64"
    );
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| anyhow::anyhow!("bad ELF program headers: {e}"))?;

    let mut loads = Vec::new();
    for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_LOAD) {
        let bytes = ph
            .data(endian, data)
            .map_err(|()| anyhow::anyhow!("PT_LOAD segment lies outside the file"))?;
        if !bytes.is_empty() {
            loads.push((ph.p_paddr(endian), bytes));
        }
    }
    ensure!(
        !loads.is_empty(),
        "ELF file has no PT_LOAD segment with file contents"
    );
    loads.sort_by_key(|&(addr, _)| addr);

    let base = loads[0].0;
    let mut end = base;
    for &(addr, bytes) in &loads {
        ensure!(
            addr >= end,
            "PT_LOAD segment at {addr:#x} overlaps the previous one (ends at {end:#x})"
        );
        end = addr
            .checked_add(bytes.len() as u64)
            .context("PT_LOAD segment wraps the address space")?;
    }
    let len = end - base;
    ensure!(
        len <= MAX_FLAT_LEN,
        "flat image would be {len:#x} bytes (segments from {base:#x} to {end:#x}); check the linker script"
    );

    let mut flat = vec![0u8; len as usize];
    for (addr, bytes) in loads {
        let at = (addr - base) as usize;
        flat[at..at + bytes.len()].copy_from_slice(bytes);
    }
    Ok(flat)
}

fn read_u64(image: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&image[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Reads the arm64 `Image` header at the start of `image`.
pub fn parse_header(image: &[u8]) -> Result<ImageHeader> {
    ensure!(
        image.len() >= HEADER_LEN,
        "image is {} bytes, too short for the {HEADER_LEN}-byte arm64 Image header",
        image.len()
    );
    let magic = &image[MAGIC_AT..MAGIC_AT + MAGIC.len()];
    if magic != MAGIC {
        bail!(
            "no arm64 Image header: expected magic \"ARM\\x64\" at offset {MAGIC_AT}, found {magic:02x?}"
        );
    }
    Ok(ImageHeader {
        text_offset: read_u64(image, TEXT_OFFSET_AT),
        image_size: read_u64(image, IMAGE_SIZE_AT),
        flags: read_u64(image, FLAGS_AT),
    })
}

/// Checks that `image` is a bootable flat image: magic present, `image_size` covering the file.
pub fn check_image(image: &[u8]) -> Result<ImageHeader> {
    let header = parse_header(image)?;
    ensure!(
        header.image_size == 0 || header.image_size >= image.len() as u64,
        "header image_size {:#x} is smaller than the flat image ({:#x} bytes)",
        header.image_size,
        image.len()
    );
    Ok(header)
}

/// Returns a copy of `image` whose header asks to be loaded at `text_offset`.
pub fn with_text_offset(image: &[u8], text_offset: u64) -> Result<Vec<u8>> {
    let header = check_image(image)?;
    // Loaders (QEMU, Linux's boot protocol) ignore text_offset when image_size is 0.
    ensure!(
        header.image_size != 0,
        "cannot relocate: header image_size is 0, so loaders ignore text_offset"
    );
    let mut patched = image.to_vec();
    patched[TEXT_OFFSET_AT..TEXT_OFFSET_AT + 8].copy_from_slice(&text_offset.to_le_bytes());
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One program header: (type, paddr, file bytes, memsz).
    type Seg<'a> = (u32, u64, &'a [u8], u64);

    /// Hand-assembles a little-endian ELF64 file with the given program headers.
    fn make_elf(machine: u16, segs: &[Seg]) -> Vec<u8> {
        let phoff = 64u64;
        let mut data_off = phoff + 56 * segs.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN: a static PIE
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        for half in [64u16, 56, segs.len() as u16, 64, 0, 0] {
            out.extend_from_slice(&half.to_le_bytes());
        }
        assert_eq!(out.len(), 64);
        for &(p_type, paddr, bytes, memsz) in segs {
            out.extend_from_slice(&p_type.to_le_bytes());
            out.extend_from_slice(&5u32.to_le_bytes()); // R+X
            for word in [data_off, paddr, paddr, bytes.len() as u64, memsz, 0x1000] {
                out.extend_from_slice(&word.to_le_bytes());
            }
            data_off += bytes.len() as u64;
        }
        for &(_, _, bytes, _) in segs {
            out.extend_from_slice(bytes);
        }
        out
    }

    fn header(text_offset: u64, image_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; HEADER_LEN];
        h[TEXT_OFFSET_AT..][..8].copy_from_slice(&text_offset.to_le_bytes());
        h[IMAGE_SIZE_AT..][..8].copy_from_slice(&image_size.to_le_bytes());
        h[FLAGS_AT..][..8].copy_from_slice(&0xau64.to_le_bytes());
        h[MAGIC_AT..][..4].copy_from_slice(MAGIC);
        h
    }

    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const EM_AARCH64: u16 = 183;

    #[test]
    fn static_executables_are_told_from_dynamic_ones() {
        let code: &[u8] = &[0x1f, 0x20, 0x03, 0xd5];
        let static_pie = make_elf(
            EM_AARCH64,
            &[(PT_LOAD, 0x1000, code, 4), (PT_DYNAMIC, 0, &[], 0)],
        );
        check_static_aarch64_executable(&static_pie).unwrap();
        let mut exec = static_pie.clone();
        exec[16] = 2; // ET_EXEC
        check_static_aarch64_executable(&exec).unwrap();
        let dynamic = make_elf(
            EM_AARCH64,
            &[
                (PT_INTERP, 0, b"/lib/ld-linux-aarch64.so.1\0", 27),
                (PT_LOAD, 0x1000, code, 4),
            ],
        );
        let err = check_static_aarch64_executable(&dynamic).unwrap_err();
        assert!(
            format!("{err:#}").contains("/lib/ld-linux-aarch64.so.1"),
            "{err:#}"
        );
        let x86 = make_elf(62, &[(PT_LOAD, 0x1000, code, 4)]);
        assert!(check_static_aarch64_executable(&x86).is_err());
        let mut relocatable = static_pie.clone();
        relocatable[16] = 1; // ET_REL
        assert!(check_static_aarch64_executable(&relocatable).is_err());
        assert!(check_static_aarch64_executable(&make_elf(EM_AARCH64, &[])).is_err());
        assert!(check_static_aarch64_executable(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn flattens_segments_with_gaps_and_without_bss() {
        let text = header(0, 0x3000);
        let elf = make_elf(
            EM_AARCH64,
            &[
                (PT_DYNAMIC, 0x1000, b"dyn!", 4),
                (PT_LOAD, 0x1000, b"data", 0x800), // memsz > filesz: bss not appended
                (PT_LOAD, 0, &text, 64),
                (PT_LOAD, 0x2000, b"", 0x1000), // bss-only segment: ignored
            ],
        );
        let flat = elf_to_flat(&elf).unwrap();
        assert_eq!(flat.len(), 0x1004);
        assert_eq!(&flat[..64], &text[..]);
        assert!(flat[64..0x1000].iter().all(|&b| b == 0));
        assert_eq!(&flat[0x1000..], b"data");
        let h = check_image(&flat).unwrap();
        assert_eq!(
            h,
            ImageHeader {
                text_offset: 0,
                image_size: 0x3000,
                flags: 0xa
            }
        );
    }

    #[test]
    fn flat_image_starts_at_lowest_segment() {
        let elf = make_elf(
            EM_AARCH64,
            &[(PT_LOAD, 0x8_0010, b"b", 1), (PT_LOAD, 0x8_0000, b"a", 1)],
        );
        let flat = elf_to_flat(&elf).unwrap();
        assert_eq!(flat.len(), 0x11);
        assert_eq!((flat[0], flat[0x10]), (b'a', b'b'));
    }

    #[test]
    fn rejects_bad_elves() {
        assert!(elf_to_flat(b"not an elf at all, definitely not one").is_err());
        let x86 = make_elf(62, &[(PT_LOAD, 0, b"x", 1)]);
        assert!(format!("{:#}", elf_to_flat(&x86).unwrap_err()).contains("not AArch64"));
        let empty = make_elf(EM_AARCH64, &[(PT_LOAD, 0, b"", 0x100)]);
        assert!(elf_to_flat(&empty).is_err());
        let overlap = make_elf(
            EM_AARCH64,
            &[(PT_LOAD, 0, b"abcd", 4), (PT_LOAD, 2, b"ef", 2)],
        );
        assert!(format!("{:#}", elf_to_flat(&overlap).unwrap_err()).contains("overlaps"));
        let stray = make_elf(
            EM_AARCH64,
            &[(PT_LOAD, 0, b"a", 1), (PT_LOAD, 1 << 40, b"b", 1)],
        );
        assert!(elf_to_flat(&stray).is_err());
    }

    #[test]
    fn header_checks() {
        assert!(parse_header(&[0; 63]).is_err());
        let err = parse_header(&[0; 64]).unwrap_err();
        assert!(err.to_string().contains("offset 56"));
        let mut img = header(0x8_0000, 0x40);
        img.extend_from_slice(&[1; 0x40]);
        assert!(format!("{:#}", check_image(&img).unwrap_err()).contains("smaller"));
        assert!(check_image(&header(0, 0)).is_ok());
    }

    #[test]
    fn patches_text_offset() {
        let mut img = header(0, 0x10_0000);
        img.extend_from_slice(b"code");
        let patched = with_text_offset(&img, 0x0320_0000).unwrap();
        assert_eq!(patched.len(), img.len());
        assert_eq!(parse_header(&patched).unwrap().text_offset, 0x0320_0000);
        assert_eq!(parse_header(&patched).unwrap().image_size, 0x10_0000);
        assert_eq!(&patched[TEXT_OFFSET_AT + 8..], &img[TEXT_OFFSET_AT + 8..]);
        assert!(with_text_offset(&header(0, 0), 0x20_0000).is_err());
    }
}
