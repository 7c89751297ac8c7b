//! CPU-level primitives: the assembly entry points, barriers, cache and TLB maintenance,
//! calls to firmware, the system registers `aarch64-cpu` does not cover, and the guest
//! state the hypervisor loads, saves and clears.
//!
//! All of the hypervisor's inline assembly is here (docs/architecture.md; a unit test in
//! `xtask/src/source_rules.rs` keeps it so): the rest of `hyp` calls these wrappers, safe
//! where any argument is sound and `unsafe fn` where the caller must uphold something.

pub mod at;
pub mod barrier;
pub mod cache;
pub mod el1;
pub mod el2;
pub mod gicv3_virt;
pub mod guest_state;
pub mod id;
pub mod scrub;
pub mod spectre;
pub mod sysreg;
pub mod timer;
pub mod tlb;

use core::arch::{asm, global_asm};

use aarch64_cpu::registers::{MPIDR_EL1, Readable};

global_asm!(include_str!("entry.S"));
global_asm!(include_str!("vectors.S"));
global_asm!(include_str!("guest.S"));

unsafe extern "C" {
    /// Secondary-CPU entry point (physical address handed to PSCI `CPU_ON`).
    pub fn secondary_entry();
    /// Entry point written to a spin-table CPU's release address.
    pub fn secondary_spin_entry();
    /// Programs MAIR/TCR/TTBR0_EL2, invalidates the EL2 TLB and writes SCTLR_EL2.
    pub fn enable_el2_mmu(mair: u64, tcr: u64, ttbr0: u64, sctlr: u64);
}

/// SCTLR_EL2 with the MMU, caches, stack-alignment checks and write-implies-XN on, little
/// endian, plus the bits that are RES1 when HCR_EL2.E2H is 0.
pub const SCTLR_EL2_MMU_ON: u64 = {
    const RES1: u64 = (1 << 29)
        | (1 << 28)
        | (1 << 23)
        | (1 << 22)
        | (1 << 18)
        | (1 << 16)
        | (1 << 11)
        | (1 << 5)
        | (1 << 4);
    const M: u64 = 1 << 0;
    const C: u64 = 1 << 2;
    const SA: u64 = 1 << 3;
    const I: u64 = 1 << 12;
    const WXN: u64 = 1 << 19;
    RES1 | M | C | SA | I | WXN
};

/// The CPU's physical address size field (ID_AA64MMFR0_EL1.PARange).
pub fn parange() -> u8 {
    use aarch64_cpu::registers::ID_AA64MMFR0_EL1;
    (ID_AA64MMFR0_EL1.get() & 0xf) as u8
}

/// The exception level this code runs at (CurrentEL).
pub fn current_el() -> u64 {
    use aarch64_cpu::registers::CurrentEL;
    CurrentEL.get() >> 2
}

/// Affinity fields (Aff3..Aff0) of this CPU's MPIDR_EL1, the form the DT's `reg` uses.
pub fn current_mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// Registers returned by an SMC Calling Convention call.
#[derive(Clone, Copy, Debug)]
pub struct SmcResult {
    /// `x0`.
    pub x0: u64,
}

/// Defines a function making an SMC Calling Convention call with `$insn #0`.
macro_rules! smccc_call {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        pub fn $name(function: u32, a1: u64, a2: u64, a3: u64) -> SmcResult {
            let x0: u64;
            // SAFETY: an SMCCC call clobbers at most x0-x17 (SMCCC 1.1+ preserves x4-x17,
            // older versions do not, so all are marked clobbered); it does not touch our
            // memory. The callee only acts as the function ID asks.
            unsafe {
                asm!(concat!($insn, " #0"),
                    inout("x0") u64::from(function) => x0,
                    inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack));
            }
            SmcResult { x0 }
        }
    };
}

smccc_call!(
    /// Issues an SMCCC call with `SMC #0` (firmware at EL3).
    smc,
    "smc"
);
smccc_call!(
    /// Issues an SMCCC call with `HVC #0` (used when entered at EL1, where firmware PSCI
    /// is reached through a hypervisor).
    hvc,
    "hvc"
);

/// `DSB ISH`, then `SEV`: wakes every CPU waiting in WFE, after this CPU's earlier stores
/// are visible to them.
#[inline(always)]
pub fn send_event() {
    // SAFETY: a barrier and SEV only order memory and wake waiting CPUs.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

/// `DSB SY`, then `SEV`: as [`send_event`], for a CPU that reads memory with its MMU and
/// caches off (a spin-table CPU being released).
#[inline(always)]
pub fn send_event_sy() {
    // SAFETY: a barrier and SEV only order memory and wake waiting CPUs.
    unsafe { asm!("dsb sy", "sev", options(nostack, preserves_flags)) };
}

/// `TPIDR_EL2`: this CPU's index, once `percpu::set_current` wrote it.
#[inline(always)]
pub fn read_tpidr_el2() -> u64 {
    let value: u64;
    // SAFETY: reading TPIDR_EL2 has no side effect.
    unsafe { asm!("mrs {}, tpidr_el2", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes `TPIDR_EL2`.
///
/// # Safety
/// `percpu` keeps this CPU's index there, and code that touches per-CPU state relies on
/// it being this CPU's alone: only `percpu::set_current` writes it, once per CPU.
#[inline(always)]
pub unsafe fn write_tpidr_el2(value: u64) {
    // SAFETY: per the caller; TPIDR_EL2 is a scratch register no hardware uses.
    unsafe { asm!("msr tpidr_el2, {}", in(reg) value, options(nomem, nostack)) };
}

/// Masks all exceptions on this CPU and waits forever.
pub fn halt() -> ! {
    // SAFETY: setting DAIF only masks interrupts on this CPU.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Reads the physical counter (CNTPCT_EL0).
pub fn counter() -> u64 {
    use aarch64_cpu::registers::CNTPCT_EL0;
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn counter_frequency() -> u64 {
    use aarch64_cpu::registers::CNTFRQ_EL0;
    CNTFRQ_EL0.get()
}

/// Sleeps until an interrupt is pending for this CPU (WFI), with interrupts still masked:
/// WFI wakes on a pending physical interrupt whether or not PSTATE.I masks it, so the
/// caller then finds it by reading the GIC's acknowledge register. The `dsb` first makes
/// this CPU's earlier stores visible before it sleeps. May return early (spuriously).
pub fn wait_for_interrupt_masked() {
    // SAFETY: a barrier and WFI change no memory and no state but this CPU's power state.
    unsafe { asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
}

/// Sleeps until an interrupt is pending (WFI with IRQs masked, as in
/// [`wait_for_interrupt_masked`]), then unmasks IRQs at EL2 (PSTATE.I) for a moment: the
/// pending interrupt is taken through the current-EL IRQ vector (`exception.rs`), which
/// dispatches it, and IRQs are masked again. Sleeping masked and unmasking after the
/// wake-up leaves no window in which the interrupt could be taken just before the WFI and
/// the WFI then sleep on. Must not be called with any lock held: the IRQ handlers take
/// locks of their own (the console's, for one).
pub fn wait_for_interrupt_unmasked() {
    // SAFETY: unmasking lets an IRQ be taken at EL2 between the two `msr`s only; the
    // vector saves and restores every register, and the caller holds no lock a handler
    // could want.
    unsafe {
        asm!(
            "dsb sy",
            "wfi",
            "msr daifclr, #2",
            "isb",
            "msr daifset, #2",
            options(nostack, preserves_flags)
        )
    };
}

/// Routes physical IRQs and FIQs to EL2 (HCR_EL2.IMO/FMO) before any guest runs, so that
/// EL2 can take them when it unmasks PSTATE.I; with IMO = 0 an IRQ would target EL1 and
/// never be taken at EL2. A vCPU's HCR_EL2 value keeps both bits set.
pub fn route_interrupts_to_el2() {
    use aarch64_cpu::registers::{HCR_EL2, ReadWriteable};
    HCR_EL2.modify(HCR_EL2::IMO::SET + HCR_EL2::FMO::SET);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Arms this CPU's EL2 physical timer (CNTHP) to fire when the physical counter reaches
/// `deadline` (counter ticks); its interrupt is the DT's hypervisor timer PPI.
pub fn arm_el2_timer(deadline: u64) {
    use aarch64_cpu::registers::{CNTHP_CTL_EL2, Writeable};
    use sysreg::CNTHP_CVAL_EL2;
    CNTHP_CVAL_EL2.set(deadline);
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Stops this CPU's EL2 physical timer (its level interrupt goes away).
pub fn stop_el2_timer() {
    use aarch64_cpu::registers::{CNTHP_CTL_EL2, Writeable};
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::SET);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
