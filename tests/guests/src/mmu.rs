//! The guest's own stage-1 translation: an identity map, turned on at boot.
//!
//! With the MMU off every data access is Device-nGnRnE, where unaligned accesses fault and
//! exclusives may not work; compiled Rust (and the `fdt` crate) assumes neither. So the
//! boot vCPU turns the MMU on before it parses anything, in two steps:
//!
//! 1. [`enable_early`] (still MMU off, so only aligned volatile accesses): normal memory
//!    for the 2 MiB blocks holding the image and the DTB, Device-nGnRnE for everything else.
//! 2. [`enable_final`], once the DT is parsed: normal memory for every `/memory` bank too
//!    (2 MiB blocks wholly inside a bank; partial blocks stay Device), Device elsewhere.
//!
//! Both table sets map what is in use with the same attributes and block sizes, so moving
//! from one to the other is a TTBR0 switch. Addresses past the end of RAM are mapped as
//! Device, so a test's access there is a real, non-speculative access that reaches stage 2
//! (where the hypervisor turns it into an injected data abort).
//!
//! Format: 4 KiB granule, 39-bit VA (T0SZ 25), walks start at level 1. A level-1 entry is a
//! 1 GiB Device block unless the GiB holds normal memory, in which case it points to a
//! level-2 table of 2 MiB blocks. Secondary vCPUs use the final tables (`smp.rs`).

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable, SCTLR_EL1};

use crate::dt::Platform;

const ENTRIES: usize = 512;
const L2_TABLES: usize = 8;
const GIB: u64 = 1 << 30;
const BLOCK_2M: u64 = 2 << 20;
/// Output-address bits of a descriptor ([47:12]).
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Everything a level-1 table can map with T0SZ 25.
const VA_LIMIT: u64 = 1 << 39;

const DESC_VALID_MASK: u64 = 0b11;
const DESC_BLOCK: u64 = 0b01;
const DESC_TABLE: u64 = 0b11;
/// MAIR_EL1 index 0: Device-nGnRnE.
const ATTR_DEVICE: u64 = 0 << 2;
/// MAIR_EL1 index 1: normal, inner and outer write-back read/write-allocate.
const ATTR_NORMAL: u64 = 1 << 2;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const DEVICE_BLOCK: u64 = DESC_BLOCK | ATTR_DEVICE | AF | PXN | UXN;
const NORMAL_BLOCK: u64 = DESC_BLOCK | ATTR_NORMAL | SH_INNER | AF | UXN;

const MAIR: u64 = 0xff << 8;

const SCTLR_M: u64 = 1 << 0;
const SCTLR_A: u64 = 1 << 1;
const SCTLR_C: u64 = 1 << 2;
const SCTLR_SA: u64 = 1 << 3;
const SCTLR_I: u64 = 1 << 12;
const SCTLR_WXN: u64 = 1 << 19;
const SCTLR_E0E: u64 = 1 << 24;
const SCTLR_EE: u64 = 1 << 25;
/// Bits that are RES1 in ARMv8.0 (and select the v8.0 behaviour where later features
/// give them a meaning): LSMAOE, nTLSMD, SPAN, EIS, TSCXT, EOS.
const SCTLR_RES1: u64 = (1 << 29) | (1 << 28) | (1 << 23) | (1 << 22) | (1 << 20) | (1 << 11);

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

#[repr(C)]
struct TableSet {
    l1: Table,
    l2: [Table; L2_TABLES],
}

/// Two table sets (early, final), in bss.
struct Tables(UnsafeCell<[TableSet; 2]>);

// SAFETY: only the boot vCPU writes the tables, each set once, before any other vCPU runs
// (secondaries only ever walk the final set through their MMU).
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables(UnsafeCell::new(
    [const {
        TableSet {
            l1: Table([0; ENTRIES]),
            l2: [const { Table([0; ENTRIES]) }; L2_TABLES],
        }
    }; 2],
));

/// The translation registers in force, for the secondary vCPUs.
pub struct MmuConfig {
    pub mair: u64,
    pub tcr: u64,
    pub ttbr0: u64,
    pub sctlr: u64,
}

static TCR: AtomicU64 = AtomicU64::new(0);
static TTBR0: AtomicU64 = AtomicU64::new(0);
static SCTLR: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    fn enable_mmu_el1(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
    fn switch_ttbr0_el1(ttbr0: u64);
}

/// The physical address size, as ID_AA64MMFR0_EL1.PARange encodes it (capped at 48 bits),
/// and the first address beyond it (capped at what one level-1 table maps).
fn pa_range() -> (u64, u64) {
    let parange = (ID_AA64MMFR0_EL1.get() & 0xf).min(5);
    let bits = [32, 36, 40, 42, 44, 48][parange as usize];
    (parange, (1u64 << bits).min(VA_LIMIT))
}

struct Builder {
    set: *mut TableSet,
    next_l2: usize,
    limit: u64,
}

impl Builder {
    /// Starts a table set: every GiB below `limit` a Device block, nothing above.
    ///
    /// # Safety
    /// `set` is one of `TABLES`' sets, which nothing is walking or reading.
    unsafe fn new(set: *mut TableSet, limit: u64) -> Self {
        for i in 0..ENTRIES {
            let base = i as u64 * GIB;
            let entry = if base < limit { base | DEVICE_BLOCK } else { 0 };
            // SAFETY: in bounds of the level-1 table of a set the caller owns; an aligned
            // volatile store (the MMU may be off).
            unsafe { ptr::write_volatile(&raw mut (*set).l1.0[i], entry) };
        }
        Self {
            set,
            next_l2: 0,
            limit,
        }
    }

    /// The level-2 table for the GiB at `gib`, made from a Device block if need be.
    fn l2_table(&mut self, gib: usize) -> Option<*mut Table> {
        // SAFETY: in bounds; the set is ours (see `new`).
        let l1_entry = unsafe { &raw mut (*self.set).l1.0[gib] };
        // SAFETY: as above; aligned volatile load.
        let entry = unsafe { ptr::read_volatile(l1_entry) };
        if entry & DESC_VALID_MASK == DESC_TABLE {
            return Some((entry & ADDR_MASK) as *mut Table);
        }
        if self.next_l2 == L2_TABLES || gib as u64 * GIB >= self.limit {
            return None;
        }
        // SAFETY: in bounds (checked above); the set is ours.
        let table = unsafe { &raw mut (*self.set).l2[self.next_l2] };
        self.next_l2 += 1;
        for j in 0..ENTRIES {
            let base = gib as u64 * GIB + j as u64 * BLOCK_2M;
            // SAFETY: in bounds of a level-2 table of our set; aligned volatile store.
            unsafe { ptr::write_volatile(&raw mut (*table).0[j], base | DEVICE_BLOCK) };
        }
        // SAFETY: as for the load above. The table is complete before it is linked.
        unsafe { ptr::write_volatile(l1_entry, table as u64 | DESC_TABLE) };
        Some(table)
    }

    /// Maps the 2 MiB blocks from `start` to `end` (both 2 MiB-aligned) as normal memory.
    fn map_normal(&mut self, start: u64, end: u64) {
        let mut block = start;
        while block < end && block < self.limit {
            let gib = (block / GIB) as usize;
            if let Some(table) = self.l2_table(gib) {
                let index = ((block % GIB) / BLOCK_2M) as usize;
                // SAFETY: index < 512, in a level-2 table of our set; aligned volatile store.
                unsafe { ptr::write_volatile(&raw mut (*table).0[index], block | NORMAL_BLOCK) };
            }
            block += BLOCK_2M;
        }
    }

    /// Maps every 2 MiB block that `[start, end)` touches as normal memory.
    fn map_normal_covering(&mut self, start: u64, end: u64) {
        self.map_normal(start & !(BLOCK_2M - 1), end.next_multiple_of(BLOCK_2M));
    }

    /// Maps the 2 MiB blocks that lie wholly inside `[start, end)` as normal memory.
    fn map_normal_inside(&mut self, start: u64, end: u64) {
        self.map_normal(start.next_multiple_of(BLOCK_2M), end & !(BLOCK_2M - 1));
    }

    fn root(&self) -> u64 {
        // SAFETY: only the address of the set's level-1 table is taken.
        unsafe { &raw const (*self.set).l1 as u64 }
    }
}

fn table_set(index: usize) -> *mut TableSet {
    // SAFETY: only a raw pointer to one of the two sets is made; index is 0 or 1.
    unsafe { (&raw mut (*TABLES.0.get())[index]) }
}

/// DTB magic, big endian.
const FDT_MAGIC: u32 = 0xd00d_feed;

/// The DTB's extent from its header, read with aligned volatile loads (MMU off).
fn dtb_extent(dtb: u64) -> Option<(u64, u64)> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the boot protocol puts a DTB at `dtb` (8-byte aligned, checked); its first two
    // header words are read with aligned loads only.
    let (magic, size) = unsafe {
        (
            u32::from_be(ptr::read_volatile(dtb as *const u32)),
            u32::from_be(ptr::read_volatile((dtb + 4) as *const u32)),
        )
    };
    (magic == FDT_MAGIC && size <= 2 << 20).then_some((dtb, dtb + u64::from(size)))
}

/// Turns the MMU and caches on with the early map (image and DTB normal, all else Device).
/// Runs with the MMU off, before anything reads the DT.
#[inline(never)]
pub fn enable_early(dtb: u64) {
    let (parange, limit) = pa_range();
    let (image_start, image_end) = crate::image_range();
    // SAFETY: set 0 is not in use: the MMU is off and no other vCPU runs.
    let mut builder = unsafe { Builder::new(table_set(0), limit) };
    builder.map_normal_covering(image_start, image_end);
    if let Some((start, end)) = dtb_extent(dtb) {
        builder.map_normal_covering(start, end);
    }

    let tcr = 25                // T0SZ: 39-bit addresses, walks start at level 1
        | (0b01 << 8)           // IRGN0: write-back, write-allocate
        | (0b01 << 10)          // ORGN0: write-back, write-allocate
        | (0b11 << 12)          // SH0: inner shareable
        | (1 << 23)             // EPD1: no TTBR1 walks
        | (parange << 32); // IPS
    let sctlr = (SCTLR_EL1.get() | SCTLR_RES1 | SCTLR_M | SCTLR_C | SCTLR_I | SCTLR_SA)
        & !(SCTLR_A | SCTLR_WXN | SCTLR_EE | SCTLR_E0E);
    let ttbr0 = builder.root();
    TCR.store(tcr, Ordering::Relaxed);
    SCTLR.store(sctlr, Ordering::Relaxed);
    TTBR0.store(ttbr0, Ordering::Relaxed);
    // SAFETY: the tables map this code, its stack and data (normal memory, identity) and the
    // console (Device), and were written with the MMU off after entry.S invalidated every
    // cache line over the image, so the walker sees them.
    unsafe { enable_mmu_el1(MAIR, tcr, ttbr0, sctlr) };
}

/// Moves to the final map: every RAM bank normal memory, everything else Device.
pub fn enable_final(platform: &Platform<'_>) {
    let (_, limit) = pa_range();
    let (image_start, image_end) = crate::image_range();
    // SAFETY: set 1 is not in use yet (the early map uses set 0) and no other vCPU runs.
    let mut builder = unsafe { Builder::new(table_set(1), limit) };
    for (start, end) in platform.ram.iter() {
        builder.map_normal_inside(start, end);
    }
    builder.map_normal_covering(image_start, image_end);
    builder.map_normal_covering(platform.dtb.0, platform.dtb.1);
    let ttbr0 = builder.root();
    TTBR0.store(ttbr0, Ordering::Relaxed);
    // SAFETY: the final tables map everything the early ones map as normal memory (image,
    // DTB) with the same attributes and block sizes, and the rest as Device, as before; they
    // were written through the caches, which the walker is coherent with.
    unsafe { switch_ttbr0_el1(ttbr0) };
}

/// A 1 GiB window at the top of the virtual address space, which [`window_to`] points at
/// any GiB of the (intermediate) physical address space as Device memory: how a test
/// reaches addresses beyond the 39-bit identity map.
pub const WINDOW_VA: u64 = VA_LIMIT - GIB;

/// Replaces the final map's level-1 entry for [`WINDOW_VA`] (break, invalidate, make).
fn set_window_entry(entry: u64) {
    let l1 = table_set(1);
    // SAFETY: the last level-1 entry of the final set; only the boot vCPU changes it (see
    // `window_to`), with aligned volatile stores; the TLB maintenance below makes the walker
    // and the TLBs see the change before any access through the window.
    unsafe {
        ptr::write_volatile(&raw mut (*l1).l1.0[ENTRIES - 1], 0);
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {va}",
            "dsb ish",
            "isb",
            va = in(reg) WINDOW_VA >> 12,
            options(nostack, preserves_flags)
        );
        ptr::write_volatile(&raw mut (*l1).l1.0[ENTRIES - 1], entry);
        core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags));
    }
}

/// Points the window at the GiB that holds `pa` and returns the virtual address of `pa`.
/// Only the boot vCPU may use it, while no other vCPU touches the top GiB of addresses;
/// [`window_reset`] puts the identity entry back.
pub fn window_to(pa: u64) -> u64 {
    set_window_entry((pa & !(GIB - 1)) | DEVICE_BLOCK);
    WINDOW_VA + (pa & (GIB - 1))
}

/// Gives the window its identity mapping back (as [`enable_final`] made it).
pub fn window_reset() {
    let (_, limit) = pa_range();
    set_window_entry(if WINDOW_VA < limit {
        WINDOW_VA | DEVICE_BLOCK
    } else {
        0
    });
}

/// The physical address size in bits (ID_AA64MMFR0_EL1.PARange, at most 48).
pub fn pa_bits() -> u32 {
    [32, 36, 40, 42, 44, 48][pa_range().0 as usize]
}

/// The registers a secondary vCPU loads to share the boot vCPU's map.
pub fn config() -> MmuConfig {
    MmuConfig {
        mair: MAIR,
        tcr: TCR.load(Ordering::Relaxed),
        ttbr0: TTBR0.load(Ordering::Relaxed),
        sctlr: SCTLR.load(Ordering::Relaxed),
    }
}

/// Replaces the final map's level-1 entry for the GiB at `va` with `entry`, break before
/// make, and returns the old entry.
///
/// # Safety
/// Nothing may be using the old mapping of that GiB while it changes, and the new one
/// must not alias anything Rust code uses.
unsafe fn replace_l1_entry(va: u64, entry: u64) -> u64 {
    let index = (va / GIB) as usize;
    // SAFETY: index < 512 (callers pass a VA below VA_LIMIT); the final set is live but
    // only this entry changes, which the caller guarantees nothing uses.
    let slot = unsafe { &raw mut (*table_set(1)).l1.0[index % ENTRIES] };
    // SAFETY: aligned volatile accesses to the entry; break before make with TLB
    // maintenance for that GiB (the maintenance touches no memory).
    unsafe {
        let old = ptr::read_volatile(slot);
        ptr::write_volatile(slot, 0);
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {page}",
            "dsb ish",
            "isb",
            page = in(reg) va >> 12,
            options(nostack, preserves_flags),
        );
        ptr::write_volatile(slot, entry);
        core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags));
        old
    }
}

/// Runs `f` with the GiB of virtual addresses at `va` mapped to the physical GiB at `pa`
/// as *normal* memory (so unaligned and page-straddling accesses there are allowed by
/// stage 1 and reach stage 2), then puts the previous mapping back. `None` if `va` is not
/// a GiB of this map that holds only a Device block (RAM and the image are never aliased
/// over), or `pa` is not GiB aligned.
pub fn with_normal_alias<R>(va: u64, pa: u64, f: impl FnOnce(u64) -> R) -> Option<R> {
    with_alias(va, pa, NORMAL_BLOCK | PXN, f)
}

/// AP[2]: read-only at EL1.
const AP_READ_ONLY: u64 = 1 << 7;

/// Like [`with_normal_alias`], but the alias is read-only (stage 1 `AP[2]` set): how a
/// test hands the hypervisor a buffer the guest itself may not write. `pa` may be a GiB
/// of RAM: the alias has the same attributes as the identity map of RAM.
pub fn with_readonly_alias<R>(va: u64, pa: u64, f: impl FnOnce(u64) -> R) -> Option<R> {
    with_alias(va, pa, NORMAL_BLOCK | PXN | AP_READ_ONLY, f)
}

fn with_alias<R>(va: u64, pa: u64, attributes: u64, f: impl FnOnce(u64) -> R) -> Option<R> {
    if !va.is_multiple_of(GIB) || !pa.is_multiple_of(GIB) || va >= pa_range().1 {
        return None;
    }
    // SAFETY: reading one entry of the final set (index < 512: va < VA_LIMIT).
    let current =
        unsafe { ptr::read_volatile(&raw const (*table_set(1)).l1.0[(va / GIB) as usize]) };
    if current != va | DEVICE_BLOCK {
        return None;
    }
    let alias = pa | attributes;
    // SAFETY: the GiB at `va` is a Device block of nothing this program uses (checked:
    // not RAM, not the image); the alias maps device space, which no Rust object lives
    // in, or RAM read-only with the attributes of its identity map (no write through it
    // can change a Rust object behind the compiler's back).
    let old = unsafe { replace_l1_entry(va, alias) };
    let result = f(va);
    // SAFETY: as above; the alias is no longer used once `f` returned.
    unsafe { replace_l1_entry(va, old) };
    Some(result)
}
