//! The physical frame allocator: every 4 KiB page of RAM not used by the image, the DTB,
//! reserved regions, the boot table pool or the heap.

use buddy_system_allocator::FrameAllocator;
use spin::Mutex;
use stage2::PhysAddr;

use super::PAGE_SIZE;

/// Buddy orders: blocks up to 2^31 frames (8 TiB).
static FRAMES: Mutex<FrameAllocator<32>> = Mutex::new(FrameAllocator::new());

/// Adds `[start, start + size)` (page-aligned) to the allocator.
///
/// # Safety
/// The range is RAM that nothing else uses or will use except through [`alloc`], and it
/// is not in the allocator already.
pub unsafe fn add_range(start: PhysAddr, size: u64) {
    let first = start.as_u64() / PAGE_SIZE;
    let end = first + size / PAGE_SIZE;
    FRAMES.lock().add_frame(first as usize, end as usize);
}

/// Allocates `count` contiguous frames, aligned to the next power of two of `count`.
/// The memory is not zeroed.
pub fn alloc(count: usize) -> Option<PhysAddr> {
    let first = FRAMES.lock().alloc(count)?;
    Some(PhysAddr::new(first as u64 * PAGE_SIZE))
}

/// Returns frames obtained from [`alloc`] with the same `count`.
///
/// # Safety
/// The caller owns these frames (its `alloc` returned `start` for `count`) and nothing
/// uses them any more: no mapping, TLB entry or reference reaches them.
pub unsafe fn free(start: PhysAddr, count: usize) {
    FRAMES
        .lock()
        .dealloc((start.as_u64() / PAGE_SIZE) as usize, count);
}
