//! The EL1 (and EL0) system-register state of a vCPU, and its FP/SIMD registers.
//!
//! While a vCPU runs these live in the hardware registers; they are saved when its
//! physical CPU leaves it and restored when one takes it up.

use core::arch::asm;

/// Generates `El1State` with one field per register and `save`/`restore` moving them.
macro_rules! el1_registers {
    ($($field:ident => $reg:literal,)*) => {
        /// EL1/EL0 system registers a guest owns.
        #[derive(Clone, Debug, Default)]
        pub struct El1State {
            $(
                #[doc = concat!("`", $reg, "`")]
                pub $field: u64,
            )*
        }

        impl El1State {
            /// Reads every register from this CPU.
            pub fn save(&mut self) {
                $(
                    // SAFETY: reading an EL1 register from EL2 has no side effect.
                    unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) self.$field, options(nomem, nostack, preserves_flags)) };
                )*
            }

            /// Writes every register on this CPU.
            ///
            /// # Safety
            /// Only while no guest runs on this CPU and the values belong to the vCPU
            /// about to run: they take effect at the next exception return to EL1.
            pub unsafe fn restore(&self) {
                $(
                    // SAFETY: the caller guarantees these are the next guest's values; EL2
                    // does not use EL1 registers itself.
                    unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) self.$field, options(nomem, nostack, preserves_flags)) };
                )*
                // SAFETY: synchronises the writes above before the next exception return.
                unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
            }
        }
    };
}

el1_registers! {
    sctlr => "sctlr_el1",
    tcr => "tcr_el1",
    ttbr0 => "ttbr0_el1",
    ttbr1 => "ttbr1_el1",
    mair => "mair_el1",
    amair => "amair_el1",
    vbar => "vbar_el1",
    contextidr => "contextidr_el1",
    tpidr_el0 => "tpidr_el0",
    tpidrro_el0 => "tpidrro_el0",
    tpidr_el1 => "tpidr_el1",
    cpacr => "cpacr_el1",
    esr => "esr_el1",
    far => "far_el1",
    afsr0 => "afsr0_el1",
    afsr1 => "afsr1_el1",
    par => "par_el1",
    cntkctl => "cntkctl_el1",
    csselr => "csselr_el1",
    mdscr => "mdscr_el1",
    sp_el0 => "sp_el0",
    sp_el1 => "sp_el1",
    elr => "elr_el1",
    spsr => "spsr_el1",
    cntv_ctl => "cntv_ctl_el0",
    cntv_cval => "cntv_cval_el0",
}

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
