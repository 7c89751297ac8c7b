//! Memory: the EL2 identity map with W^X per image section, the heap, and the frame
//! allocator, all built from the RAM the device tree describes.
//!
//! Order matters. The tables are written with the MMU and caches off, from a small pool
//! of pages carved out of free RAM; the image and the pool are then invalidated from the
//! data caches and the MMU turned on. Only then do the heap and the frame allocator (both
//! lock-based) come up.

pub mod frames;
pub mod heap;
mod table;

use core::fmt;

use heapless::Vec;
use log::info;
use platforms::{MAX_FREE_RANGES, Platform, Region, usable_memory};
use spin::Mutex;
use stage2::{Attributes, El2Stage1, El2Stage1Config, PageTable, PhysAddr, VirtAddr};

use crate::arch::{self, cache, tlb::El2Tlb};
use table::El2TableMemory;
pub use table::FrameTables;

/// Translation granule.
pub const PAGE_SIZE: u64 = 4096;

/// Pages per CPU stack slot: a guard page and 15 stack pages (60 KiB).
const STACK_SLOT_PAGES: u64 = 16;

/// Base of the CPU stack slots and how many there are.
static STACKS: Mutex<Option<(PhysAddr, usize)>> = Mutex::new(None);

/// The hypervisor's own stage-1 tables, once the MMU is on.
static EL2_MAP: Mutex<Option<(PageTable<El2Stage1>, El2TableMemory)>> = Mutex::new(None);

/// Section boundaries of the loaded image, from the linker script.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// Start of the image (the Image header).
    pub start: u64,
    /// End of code; read-only data follows.
    pub text_end: u64,
    /// End of read-only data; read-write data follows.
    pub rodata_end: u64,
    /// End of read-write data and bss; the boot stack's guard page follows.
    pub data_end: u64,
    /// Lowest address of the boot stack.
    pub stack_bottom: u64,
    /// One past the image, the top of the boot stack.
    pub end: u64,
}

impl ImageLayout {
    /// The layout of the running image.
    pub fn current() -> Self {
        unsafe extern "C" {
            static __image_start: u8;
            static __text_end: u8;
            static __rodata_end: u8;
            static __boot_stack_guard: u8;
            static __boot_stack_bottom: u8;
            static __image_end: u8;
        }
        let addr = |p: *const u8| p as u64;
        ImageLayout {
            start: addr(&raw const __image_start),
            text_end: addr(&raw const __text_end),
            rodata_end: addr(&raw const __rodata_end),
            data_end: addr(&raw const __boot_stack_guard),
            stack_bottom: addr(&raw const __boot_stack_bottom),
            end: addr(&raw const __image_end),
        }
    }

    /// The whole image as a region.
    pub fn region(&self) -> Region {
        Region::new(self.start, self.end - self.start)
    }
}

/// What `init` set up, for the boot report.
pub struct MemoryReport {
    /// Total RAM in the device tree.
    pub ram: u64,
    /// The image.
    pub image: Region,
    /// The heap.
    pub heap: Region,
    /// Bytes handed to the frame allocator.
    pub frames: u64,
    /// Number of free ranges the frame allocator got.
    pub free_ranges: usize,
    /// Free ranges dropped because there were too many.
    pub dropped_ranges: usize,
    /// Pages used for the EL2 tables.
    pub table_pages: usize,
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RAM {} MiB; image {:?} ({} KiB); heap {:?} ({} MiB); \
             frame allocator {} MiB in {} ranges; EL2 tables {} pages",
            self.ram >> 20,
            self.image,
            self.image.size >> 10,
            self.heap,
            self.heap.size >> 20,
            self.frames >> 20,
            self.free_ranges,
            self.table_pages,
        )?;
        if self.dropped_ranges > 0 {
            write!(f, " ({} small ranges left unused)", self.dropped_ranges)?;
        }
        Ok(())
    }
}

/// Why memory could not be set up.
#[derive(Debug)]
pub enum MemoryError {
    /// Not enough free RAM for the table pool or the heap.
    OutOfMemory(&'static str),
    /// The table engine refused a mapping.
    Map(&'static str, stage2::MapError),
    /// ID_AA64MMFR0_EL1.PARange holds an encoding the engine does not know.
    UnknownPaRange(u8),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::OutOfMemory(what) => write!(f, "not enough free RAM for the {what}"),
            MemoryError::Map(what, e) => write!(f, "cannot map the {what}: {e:?}"),
            MemoryError::UnknownPaRange(v) => write!(f, "unknown PARange encoding {v:#x}"),
        }
    }
}

/// Builds the EL2 map, turns the MMU on, and creates the heap and frame allocator.
///
/// Must run once, on the boot CPU, with the MMU off. `dtb` is the device tree's region.
pub fn init(platform: &Platform<'_>, dtb: Region) -> Result<MemoryReport, MemoryError> {
    let image = ImageLayout::current();
    let mut holes: Vec<Region, { platforms::MAX_RESERVED_REGIONS + 3 }> = Vec::new();
    let _ = holes.push(image.region());
    let _ = holes.push(dtb);
    if let Some(archive) = platform.initrd {
        let _ = holes.push(page_span(archive));
    }
    for r in &platform.reserved {
        let _ = holes.push(*r);
    }
    let (mut free, dropped_ranges) = usable_memory(&platform.memory, &holes);

    let pool = take(&mut free, table::POOL_PAGES as u64 * PAGE_SIZE)
        .ok_or(MemoryError::OutOfMemory("boot page-table pool"))?;
    // Firmware may have left dirty lines over the pool; evicted later, they would
    // overwrite the tables written below with the caches off.
    // SAFETY: the pool is free RAM: nothing in it matters yet.
    unsafe { cache::invalidate_to_poc(pool.base as usize, pool.size as usize) };
    let cpus = platform.cpus.len().max(1);
    let stacks = take(&mut free, cpus as u64 * STACK_SLOT_PAGES * PAGE_SIZE)
        .ok_or(MemoryError::OutOfMemory("CPU stacks"))?;
    // SAFETY: the pool was just removed from free RAM, so nothing else uses it, and the
    // MMU is off, so the identity addresses are the physical ones.
    let mut memory = unsafe { El2TableMemory::new(PhysAddr::new(pool.base)) };
    let mut tlb = El2Tlb;
    let config = El2Stage1Config::from_parange(arch::parange())
        .map_err(|_| MemoryError::UnknownPaRange(arch::parange()))?;
    let mut tables = PageTable::<El2Stage1>::new(&mut memory, config)
        .map_err(|e| MemoryError::Map("root table", e))?;

    let mut map = |what, base: u64, end: u64, attrs: Attributes| {
        if end > base {
            tables
                .map(
                    VirtAddr::new(base),
                    PhysAddr::new(base),
                    end - base,
                    attrs,
                    &mut memory,
                    &mut tlb,
                )
                .map_err(|e| MemoryError::Map(what, e))
        } else {
            Ok(())
        }
    };
    // W^X: code is read-only, data is never executable; the boot stack's guard page
    // (data_end..stack_bottom) stays unmapped.
    map(
        "image text",
        image.start,
        image.text_end,
        Attributes::NORMAL_RX,
    )?;
    map(
        "image rodata",
        image.text_end,
        image.rodata_end,
        Attributes::NORMAL_R,
    )?;
    map(
        "image data",
        image.rodata_end,
        image.data_end,
        Attributes::NORMAL_RW,
    )?;
    map(
        "boot stack",
        image.stack_bottom,
        image.end,
        Attributes::NORMAL_RW,
    )?;
    let dtb_pages = page_span(dtb);
    map(
        "device tree",
        dtb_pages.base,
        dtb_pages.end(),
        Attributes::NORMAL_R,
    )?;
    if let Some(archive) = platform.initrd {
        let pages = page_span(archive);
        map(
            "boot archive",
            pages.base,
            pages.end(),
            Attributes::NORMAL_R,
        )?;
    }
    map("table pool", pool.base, pool.end(), Attributes::NORMAL_RW)?;
    // One slot per CPU: a guard page, never mapped, below the stack. Mapping them now
    // with pages means no live block ever has to be split for a guard.
    for slot in 0..cpus as u64 {
        let guard = stacks.base + slot * STACK_SLOT_PAGES * PAGE_SIZE;
        let top = guard + STACK_SLOT_PAGES * PAGE_SIZE;
        map("CPU stack", guard + PAGE_SIZE, top, Attributes::NORMAL_RW)?;
    }
    for r in &free {
        map("free RAM", r.base, r.end(), Attributes::NORMAL_RW)?;
    }
    if let Some(uart) = crate::console::uart_base() {
        let page = uart as u64 & !(PAGE_SIZE - 1);
        map(
            "console UART",
            page,
            page + PAGE_SIZE,
            Attributes::DEVICE_RW,
        )?;
    }

    // The GIC, which the hypervisor puts in a quiet state at boot (`crate::gic`).
    if let Some(gic) = &platform.gic {
        let frames = core::iter::once(("GIC distributor", gic.distributor))
            .chain(
                gic.redistributors
                    .iter()
                    .map(|r| ("GIC redistributors", *r)),
            )
            .chain(gic.cpu_interface.map(|r| ("GIC CPU interface", r)))
            .chain(
                gic.hyp_interface
                    .map(|r| ("GIC virtual interface control", r)),
            );
        for (what, region) in frames {
            let pages = page_span(region);
            map(what, pages.base, pages.end(), Attributes::DEVICE_RW)?;
        }
    }

    // Everything the MMU-off code wrote (relocations, bss, stack, tables) went straight
    // to memory; drop any stale cache lines over it before caches come on.
    // SAFETY: the caches have been off since boot, so no line in these ranges holds data
    // that matters.
    unsafe {
        cache::invalidate_to_poc(image.start as usize, (image.end - image.start) as usize);
        cache::invalidate_to_poc(pool.base as usize, pool.size as usize);
    }
    let root = tables.root();
    // SAFETY: the tables map the running image (text executable, the stack and data
    // writable) and the console at their identity addresses, so execution continues
    // seamlessly once translation is on.
    unsafe {
        arch::enable_el2_mmu(
            stage2::MAIR_EL2,
            config.tcr_el2(),
            root.as_u64(),
            arch::SCTLR_EL2_MMU_ON,
        );
    }
    crate::console::enable_locking();

    let heap = take(&mut free, heap::HEAP_SIZE).ok_or(MemoryError::OutOfMemory("heap"))?;
    // SAFETY: the heap range was removed from free RAM and is mapped read-write.
    unsafe { heap::init(heap.base as usize, heap.size as usize) };
    let mut frames_total = 0;
    for r in &free {
        // SAFETY: `free` is the RAM left once the image, the DTB, reserved regions, the
        // boot table pool and the heap were taken out; each range is added once.
        unsafe { frames::add_range(PhysAddr::new(r.base), r.size) };
        frames_total += r.size;
    }
    let table_pages = memory.pages_in_use();
    *STACKS.lock() = Some((PhysAddr::new(stacks.base), cpus));
    *EL2_MAP.lock() = Some((tables, memory));

    let report = MemoryReport {
        ram: platform.memory.iter().map(|r| r.size).sum(),
        image: image.region(),
        heap,
        frames: frames_total,
        free_ranges: free.len(),
        dropped_ranges,
        table_pages,
    };
    info!("memory: {report}");
    Ok(report)
}

/// Removes `size` bytes (page-aligned, at the top) from the largest free range.
fn take(free: &mut Vec<Region, MAX_FREE_RANGES>, size: u64) -> Option<Region> {
    let largest = free.iter_mut().max_by_key(|r| r.size)?;
    if largest.size < size {
        return None;
    }
    largest.size -= size;
    Some(Region::new(largest.base + largest.size, size))
}

/// The pages covering `region`.
fn page_span(region: Region) -> Region {
    let base = region.base & !(PAGE_SIZE - 1);
    let end = region.end().next_multiple_of(PAGE_SIZE);
    Region::new(base, end - base)
}

/// The top of CPU `index`'s stack (secondary CPUs; the boot CPU uses the image's).
pub fn cpu_stack_top(index: usize) -> Option<PhysAddr> {
    let (base, count) = (*STACKS.lock())?;
    (index < count).then(|| base.offset((index as u64 + 1) * STACK_SLOT_PAGES * PAGE_SIZE))
}

/// Runs `f` with the page holding `addr` mapped (identity) as Device-nGnRE, read-write,
/// then unmaps it: for the few writes to memory the hypervisor does not own (a spin-table
/// release address in firmware-reserved memory). The page must not already be mapped.
pub fn with_device_page(addr: u64, f: impl FnOnce(u64)) -> Result<(), stage2::MapError> {
    let page = addr & !(PAGE_SIZE - 1);
    let mut guard = EL2_MAP.lock();
    let (tables, memory) = guard.as_mut().expect("EL2 map exists once the MMU is on");
    let va = VirtAddr::new(page);
    tables.map(
        va,
        PhysAddr::new(page),
        PAGE_SIZE,
        Attributes::DEVICE_RW,
        memory,
        &mut El2Tlb,
    )?;
    f(addr);
    tables.unmap(va, PAGE_SIZE, memory, &mut El2Tlb)
}
