//! The EL1 (and EL0) system-register state of a vCPU, and its FP/SIMD registers.
//!
//! While a vCPU runs these live in the hardware registers; they are saved when its
//! physical CPU leaves it and restored when one takes it up. The register list and the
//! code moving it are `arch::el1`'s; the reset state is here.

pub use crate::arch::el1::El1State;

/// SCTLR_EL1 at reset as the architecture leaves it for software: MMU and caches off,
/// little endian, with the RES1 bits set.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

impl El1State {
    /// The state a vCPU starts with (PSCI `CPU_ON`, domain boot): everything zero but
    /// SCTLR_EL1's RES1 bits.
    pub fn reset() -> Self {
        El1State {
            sctlr: SCTLR_EL1_RESET,
            ..Default::default()
        }
    }
}

/// FP/SIMD registers: q0..q31, then FPSR and FPCR. Layout fixed by `guest.S`.
#[repr(C, align(16))]
#[derive(Clone, Debug, Default)]
pub struct FpState {
    q: [u128; 32],
    fpsr: u64,
    fpcr: u64,
}

unsafe extern "C" {
    fn fpsimd_save(state: *mut FpState);
    fn fpsimd_restore(state: *const FpState);
}

impl FpState {
    /// Reads the FP/SIMD registers.
    pub fn save(&mut self) {
        // SAFETY: writes exactly one `FpState` through a valid pointer. FP/SIMD access
        // is not trapped at EL2 (CPTR_EL2.TFP = 0).
        unsafe { fpsimd_save(self) };
    }

    /// Loads the FP/SIMD registers.
    pub fn restore(&self) {
        // SAFETY: reads exactly one `FpState`; the hypervisor itself never uses FP/SIMD
        // (soft-float target), so nothing of ours is overwritten.
        unsafe { fpsimd_restore(self) };
    }
}
