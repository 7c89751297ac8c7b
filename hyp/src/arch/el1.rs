//! The EL1 (and EL0) system registers of the guest whose state is live on this CPU: the
//! whole set saved and restored when a vCPU leaves or takes up a CPU ([`El1State`]; its
//! reset value and the FP/SIMD registers are in `guest::el1`), and the few read or
//! written while an exit is handled.
//!
//! Reading or writing these is safe: they shape only the guest's EL1/EL0 execution, never
//! the hypervisor's own translation, memory or interrupts (EL2 has registers of its own,
//! runs on SP_EL2, and the GIC CPU interface's `ICC_*_EL1` are not among these).
//! `El1State::restore` is `unsafe` because it replaces the whole guest context at once
//! and so must only load the vCPU about to run.

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

/// `VBAR_EL1`: the guest's exception vector base.
#[inline(always)]
pub fn read_vbar() -> u64 {
    let value: u64;
    // SAFETY: reading the guest's VBAR_EL1 has no side effect.
    unsafe { asm!("mrs {}, vbar_el1", out(reg) value, options(nomem, nostack)) };
    value
}

/// `SCTLR_EL1`: the guest's system control register.
#[inline(always)]
pub fn read_sctlr() -> u64 {
    let value: u64;
    // SAFETY: reading the guest's SCTLR_EL1 has no side effect.
    unsafe { asm!("mrs {}, sctlr_el1", out(reg) value, options(nomem, nostack)) };
    value
}

/// `ACTLR_EL1`: the (implementation-defined) auxiliary control register.
#[inline(always)]
pub fn read_actlr() -> u64 {
    let value: u64;
    // SAFETY: reading ACTLR_EL1 at EL2 has no side effect.
    unsafe { asm!("mrs {}, actlr_el1", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes what taking an exception to EL1 leaves in the guest's `ELR_EL1`, `SPSR_EL1`
/// and `ESR_EL1` (for an injected exception).
#[inline(always)]
pub fn write_exception_entry(elr: u64, spsr: u64, esr: u64) {
    // SAFETY: the guest's own EL1 registers (see the module documentation); they take
    // effect in the guest only.
    unsafe {
        asm!(
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "msr esr_el1, {esr}",
            elr = in(reg) elr,
            spsr = in(reg) spsr,
            esr = in(reg) esr,
            options(nomem, nostack)
        )
    };
}

/// Writes the guest's `FAR_EL1` (for an injected abort).
#[inline(always)]
pub fn write_far(far: u64) {
    // SAFETY: the guest's own EL1 register (see the module documentation).
    unsafe { asm!("msr far_el1, {}", in(reg) far, options(nomem, nostack)) };
}

/// The EL1 registers [`write_guest_el1!`] accepts: the virtual-memory controls a trapped
/// guest write may reach (`HCR_EL2.TVM`).
const GUEST_WRITABLE: &[&str] = &[
    "sctlr_el1",
    "ttbr0_el1",
    "ttbr1_el1",
    "tcr_el1",
    "esr_el1",
    "far_el1",
    "afsr0_el1",
    "afsr1_el1",
    "mair_el1",
    "amair_el1",
    "contextidr_el1",
];

/// Whether [`write_guest_el1!`] accepts register `name` (evaluated at compile time).
pub const fn is_guest_writable(name: &str) -> bool {
    let name = name.as_bytes();
    let mut i = 0;
    while i < GUEST_WRITABLE.len() {
        let candidate = GUEST_WRITABLE[i].as_bytes();
        if candidate.len() == name.len() {
            let mut j = 0;
            while j < name.len() && candidate[j] == name[j] {
                j += 1;
            }
            if j == name.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Writes `$value` to the guest's EL1 register named by the literal `$reg` (one of the
/// virtual-memory controls, checked at compile time: nothing that touches EL2), without
/// an `ISB`: the caller synchronises.
macro_rules! write_guest_el1 {
    ($reg:literal, $value:expr) => {{
        const {
            assert!(
                $crate::arch::el1::is_guest_writable($reg),
                "not a guest EL1 register write_guest_el1! accepts"
            )
        };
        let value: u64 = $value;
        // SAFETY: one of the guest's own EL1 registers (checked above); see the module
        // documentation of `arch::el1`.
        unsafe {
            core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) value, options(nomem, nostack))
        }
    }};
}
pub(crate) use write_guest_el1;
