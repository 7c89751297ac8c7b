//! Volatile access to GIC registers (identity-mapped Device memory in the EL2 map).

use core::ptr::{read_volatile, write_volatile};

/// Writes a 32-bit GIC register.
///
/// # Safety
/// `base + offset` must be a GIC register mapped as device memory in the EL2 map, and the
/// write must be one the GIC driver means to make.
pub unsafe fn write32(base: u64, offset: usize, value: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { write_volatile((base as usize + offset) as *mut u32, value) }
}

/// Reads a 32-bit GIC register.
///
/// # Safety
/// As for [`write32`].
pub unsafe fn read32(base: u64, offset: usize) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { read_volatile((base as usize + offset) as *const u32) }
}

/// Writes one byte of a byte-accessible GIC register (IPRIORITYR, ITARGETSR).
///
/// # Safety
/// As for [`write32`], and the register must allow byte accesses.
pub unsafe fn write8(base: u64, offset: usize, value: u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { write_volatile((base as usize + offset) as *mut u8, value) }
}

/// Reads a 64-bit GIC register (GICR_TYPER, GICD_IROUTER).
///
/// # Safety
/// As for [`write32`], and the register must allow 64-bit accesses.
pub unsafe fn read64(base: u64, offset: usize) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe { read_volatile((base as usize + offset) as *const u64) }
}

/// Writes a 64-bit GIC register.
///
/// # Safety
/// As for [`read64`].
pub unsafe fn write64(base: u64, offset: usize, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { write_volatile((base as usize + offset) as *mut u64, value) }
}

/// Waits (bounded) for the `rwp` bit of the CTLR register at `base` to clear. Returns
/// whether it did.
///
/// # Safety
/// As for [`write32`]; CTLR is at offset 0 of `base`.
pub unsafe fn wait_rwp(base: u64, rwp: u32) -> bool {
    for _ in 0..1_000_000 {
        // SAFETY: guaranteed by the caller.
        if unsafe { read32(base, 0) } & rwp == 0 {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// `GICD_ICPENDR<n>`, `GICD_ICACTIVER<n>`: the same offsets on GICv2 and GICv3.
const GICD_ICPENDR: usize = 0x0280;
const GICD_ICACTIVER: usize = 0x0380;

/// Clears SPI `intid`'s pending and active states in the distributor at `gicd`.
///
/// # Safety
/// `gicd` is the mapped distributor; `intid` is one of its SPIs.
pub unsafe fn clear_spi_state(gicd: u64, intid: u32) {
    let word = (intid / 32) as usize * 4;
    // SAFETY: per the caller; clear-pending and clear-active bits only touch this
    // interrupt.
    unsafe {
        write32(gicd, GICD_ICPENDR + word, 1 << (intid % 32));
        write32(gicd, GICD_ICACTIVER + word, 1 << (intid % 32));
    }
}
