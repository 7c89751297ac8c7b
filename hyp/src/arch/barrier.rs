//! Memory barriers the callers name explicitly (the rest of the hypervisor uses
//! `aarch64_cpu::asm::barrier`, or barriers inside the `arch` function that needs them).
//!
//! The data barriers here are also compiler barriers: their `asm!` may touch memory as
//! far as the compiler knows, so no memory access is moved across them.

use core::arch::asm;

/// `DMB ISHST`: every earlier store is observed before any later store, in the inner
/// shareable domain (e.g. a table's contents before the descriptor that points to it).
#[inline(always)]
pub fn dmb_ishst() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dmb ishst", options(nostack, preserves_flags)) };
}

/// `DSB ISHST`: every earlier store has completed in the inner shareable domain (e.g.
/// before an SGI whose receiver reads what was stored).
#[inline(always)]
pub fn dsb_ishst() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// `DSB SY`: every earlier memory access has completed, for every observer.
#[inline(always)]
pub fn dsb_sy() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// `ISB`: later instructions see the effect of earlier system-register writes. Not a
/// compiler barrier for memory (system registers are not memory).
#[inline(always)]
pub fn isb() {
    // SAFETY: an ISB only synchronises the instruction stream.
    unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
}
