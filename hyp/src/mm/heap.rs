//! The global heap (`alloc`), a buddy allocator over one block of RAM carved at boot.

use buddy_system_allocator::LockedHeap;

/// Heap size: enough for per-domain bookkeeping; page-sized and larger memory comes from
/// the frame allocator instead.
pub const HEAP_SIZE: u64 = 8 << 20;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Gives the heap its memory.
///
/// # Safety
/// `[start, start + size)` must be mapped read-write, unused by anything else, and never
/// handed out again; call once, after the MMU is on.
pub unsafe fn init(start: usize, size: usize) {
    // SAFETY: the caller guarantees the range is ours alone and mapped.
    unsafe { HEAP.lock().init(start, size) };
}
