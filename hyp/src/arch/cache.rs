//! Data-cache maintenance by virtual address (to the point of coherency).
//!
//! Needed where memory is shared with an observer that does not use the caches: code that
//! runs with the MMU off (the boot CPU before `enable_el2_mmu`, secondaries until they turn
//! theirs on) and the firmware.

use core::arch::asm;

/// Smallest data-cache line size in bytes, from CTR_EL0.DminLine (`aarch64-cpu` has no
/// accessor for CTR_EL0).
fn dcache_line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effect.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}

/// The cache lines covering `[start, start + len)`.
fn lines(start: usize, len: usize) -> impl Iterator<Item = usize> {
    let line = dcache_line_size();
    let first = start & !(line - 1);
    (first..start.saturating_add(len)).step_by(line)
}

/// Cleans `[start, start + len)` to the point of coherency, so a CPU or device reading
/// memory with caches off sees what was written through the caches.
pub fn clean_to_poc(start: usize, len: usize) {
    for line in lines(start, len) {
        // SAFETY: DC CVAC writes back a line; it does not change memory contents as seen
        // by this CPU. An address that is not mapped faults, which callers avoid by only
        // passing memory they own.
        unsafe { asm!("dc cvac, {}", in(reg) line, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidates `[start, start + len)` in the data caches, discarding any stale lines so
/// that data written with caches off is read correctly once they are on.
///
/// # Safety
/// Dirty lines in the range are discarded: the caller must know nothing written through
/// the caches in that range still matters (e.g. the MMU and caches have been off since
/// the range was last written).
pub unsafe fn invalidate_to_poc(start: usize, len: usize) {
    for line in lines(start, len) {
        // SAFETY: the caller guarantees no needed dirty data lives in these lines.
        unsafe { asm!("dc ivac, {}", in(reg) line, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency: memory then
/// holds the latest data and no cache keeps a copy, so an observer with caches off (a
/// guest starting with its MMU off) and later cacheable accesses both see it.
pub fn clean_invalidate_to_poc(start: usize, len: usize) {
    for line in lines(start, len) {
        // SAFETY: DC CIVAC writes back and drops a line; the data seen is unchanged.
        unsafe { asm!("dc civac, {}", in(reg) line, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Invalidates all instruction caches to the point of unification, in the inner
/// shareable domain (every CPU), after code was written for a guest.
pub fn invalidate_icache_all() {
    // SAFETY: instruction-cache invalidation and barriers change no data.
    unsafe {
        asm!(
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Zeroes `[start, start + len)` with `DC ZVA` where the CPU allows it (a block per
/// instruction, 64 bytes on most cores), else with plain stores. `start` and `len` must be
/// multiples of 4 KiB (every ZVA block size divides that).
///
/// # Safety
/// The range is memory the caller owns, mapped writable as Normal memory at EL2, and no
/// reference to it is live.
pub unsafe fn zero_pages(start: usize, len: usize) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effect.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    let prohibited = dczid & (1 << 4) != 0;
    let block = 4usize << (dczid & 0xf);
    if prohibited || block > 4096 || !start.is_multiple_of(4096) || !len.is_multiple_of(4096) {
        // SAFETY: per the caller, the range is ours, writable, with no live reference.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len) };
        return;
    }
    for address in (start..start + len).step_by(block) {
        // SAFETY: per the caller; DC ZVA zeroes exactly one aligned block of it.
        unsafe { asm!("dc zva, {}", in(reg) address, options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier only orders the zeroing before later accesses.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
}
