//! The GICv3 virtual CPU interface at EL2 (`ICH_*_EL2`): list registers and the controls
//! a vCPU's interrupts go through, for `guest::vcpuif`.

use core::arch::asm;

/// `ICH_HCR_EL2.En`: the virtual CPU interface is on.
pub const ICH_HCR_EN: u64 = 1 << 0;
/// `ICH_HCR_EL2.UIE`: maintenance interrupt when at most one list register is valid.
pub const ICH_HCR_UIE: u64 = 1 << 1;
/// `ICH_HCR_EL2.EOIcount`, bits 31:27.
pub const ICH_HCR_EOICOUNT_SHIFT: u32 = 27;

/// Reads `ICH_HCR_EL2`.
pub fn read_hcr() -> u64 {
    let value: u64;
    // SAFETY: reading ICH_HCR_EL2 at EL2 has no side effect.
    unsafe { asm!("mrs {}, s3_4_c12_c11_0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Writes `ICH_HCR_EL2`.
pub fn write_hcr(value: u64) {
    // SAFETY: ICH_HCR_EL2 only controls the virtual CPU interface of the guest this CPU
    // runs; the hypervisor's own interrupts do not go through it.
    unsafe { asm!("msr s3_4_c12_c11_0, {}", "isb", in(reg) value, options(nomem, nostack)) };
}

/// `ICH_EISR_EL2`: bit n set when list register n is invalid with its EOI maintenance
/// bit set (the guest deactivated an interrupt that asked for it), which keeps the
/// maintenance interrupt asserted until the register is rewritten.
pub fn read_eisr() -> u64 {
    let value: u64;
    // SAFETY: reading ICH_EISR_EL2 has no side effect.
    unsafe { asm!("mrs {}, s3_4_c12_c11_3", out(reg) value, options(nomem, nostack)) };
    value
}

/// Number of list registers (`ICH_VTR_EL2.ListRegs` + 1).
pub fn list_register_count() -> usize {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effect.
    unsafe { asm!("mrs {}, s3_4_c12_c11_1", out(reg) vtr, options(nomem, nostack)) };
    (vtr & 0x1f) as usize + 1
}

macro_rules! lr_access {
    ($($n:literal => $enc:literal,)*) => {
        /// Reads `ICH_LR<index>_EL2` (0 for an index the CPU does not have).
        pub fn read_lr(index: usize) -> u64 {
            let value: u64;
            match index {
                $(
                    // SAFETY: reading a list register has no side effect; callers keep
                    // `index` below `list_register_count`.
                    $n => unsafe { asm!(concat!("mrs {}, ", $enc), out(reg) value, options(nomem, nostack)) },
                )*
                _ => value = 0,
            }
            value
        }

        /// Writes `ICH_LR<index>_EL2` (ignored for an index the CPU does not have).
        pub fn write_lr(index: usize, value: u64) {
            match index {
                $(
                    // SAFETY: a list register only affects the virtual interrupts of the
                    // guest this CPU runs; callers keep `index` below `list_register_count`.
                    $n => unsafe { asm!(concat!("msr ", $enc, ", {}"), in(reg) value, options(nomem, nostack)) },
                )*
                _ => {}
            }
        }
    };
}

lr_access! {
    0 => "s3_4_c12_c12_0", 1 => "s3_4_c12_c12_1", 2 => "s3_4_c12_c12_2", 3 => "s3_4_c12_c12_3",
    4 => "s3_4_c12_c12_4", 5 => "s3_4_c12_c12_5", 6 => "s3_4_c12_c12_6", 7 => "s3_4_c12_c12_7",
    8 => "s3_4_c12_c13_0", 9 => "s3_4_c12_c13_1", 10 => "s3_4_c12_c13_2", 11 => "s3_4_c12_c13_3",
    12 => "s3_4_c12_c13_4", 13 => "s3_4_c12_c13_5", 14 => "s3_4_c12_c13_6", 15 => "s3_4_c12_c13_7",
}

/// Puts the virtual CPU interface in its reset state for a vCPU about to start: system
/// register access for EL1 (`ICC_SRE_EL2.SRE` and `.Enable`), `ICH_VMCR_EL2` and the
/// active-priority registers cleared, every list register empty, the interface on.
///
/// # Safety
/// No guest may be running on this CPU; the CPU must have a GICv3 CPU interface.
pub unsafe fn reset_for_vcpu() {
    let count = list_register_count();
    // SAFETY: the caller guarantees no guest runs here and that the registers exist;
    // they only configure the virtual interface the next guest on this CPU sees.
    unsafe {
        let sre: u64;
        asm!("mrs {}, s3_4_c12_c9_5", out(reg) sre, options(nomem, nostack));
        asm!("msr s3_4_c12_c9_5, {}", "isb", in(reg) sre | 0b1001, options(nomem, nostack));
        asm!(
            "msr s3_4_c12_c11_7, xzr", // ICH_VMCR_EL2
            "msr s3_4_c12_c8_0, xzr",  // ICH_AP0R0_EL2
            "msr s3_4_c12_c9_0, xzr",  // ICH_AP1R0_EL2
            options(nomem, nostack)
        );
    }
    for index in 0..count {
        write_lr(index, 0);
    }
    write_hcr(ICH_HCR_EN);
}

/// The part of a vCPU's GICv3 virtual CPU interface that is not in the list registers:
/// `ICH_VMCR_EL2` (its priority mask, binary points and group enables) and the
/// active-priority registers `ICH_AP0R<n>_EL2`/`ICH_AP1R<n>_EL2`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuInterfaceState {
    vmcr: u64,
    ap0: [u64; 4],
    ap1: [u64; 4],
}

/// How many `ICH_AP<g>R<n>_EL2` registers of each group exist (1, 2 or 4), from the
/// number of virtual preemption bits (`ICH_VTR_EL2.PREbits` + 1: 5, 6 or 7).
fn active_priority_registers() -> usize {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effect.
    unsafe { asm!("mrs {}, s3_4_c12_c11_1", out(reg) vtr, options(nomem, nostack)) };
    let preemption_bits = ((vtr >> 26) & 0x7) + 1;
    1 << preemption_bits.saturating_sub(5).min(2)
}

macro_rules! apr_access {
    ($save:ident, $restore:ident, $($n:literal => ($ap0:literal, $ap1:literal),)*) => {
        fn $save(state: &mut CpuInterfaceState, count: usize) {
            $(
                if $n < count {
                    // SAFETY: reading an active-priority register has no side effect;
                    // register $n exists (below `active_priority_registers`).
                    unsafe {
                        asm!(concat!("mrs {}, ", $ap0), out(reg) state.ap0[$n], options(nomem, nostack));
                        asm!(concat!("mrs {}, ", $ap1), out(reg) state.ap1[$n], options(nomem, nostack));
                    }
                }
            )*
        }

        fn $restore(state: &CpuInterfaceState, count: usize) {
            $(
                if $n < count {
                    // SAFETY: the active priorities of the vCPU about to run on this CPU;
                    // they affect only its virtual interrupts. Register $n exists.
                    unsafe {
                        asm!(concat!("msr ", $ap0, ", {}"), in(reg) state.ap0[$n], options(nomem, nostack));
                        asm!(concat!("msr ", $ap1, ", {}"), in(reg) state.ap1[$n], options(nomem, nostack));
                    }
                }
            )*
        }
    };
}

apr_access! {
    save_aprs, restore_aprs,
    0 => ("s3_4_c12_c8_0", "s3_4_c12_c9_0"),
    1 => ("s3_4_c12_c8_1", "s3_4_c12_c9_1"),
    2 => ("s3_4_c12_c8_2", "s3_4_c12_c9_2"),
    3 => ("s3_4_c12_c8_3", "s3_4_c12_c9_3"),
}

impl CpuInterfaceState {
    /// Reads the running vCPU's state from this CPU (after its list registers were
    /// unloaded).
    pub fn save(&mut self) {
        // SAFETY: reading ICH_VMCR_EL2 has no side effect.
        unsafe { asm!("mrs {}, s3_4_c12_c11_7", out(reg) self.vmcr, options(nomem, nostack)) };
        save_aprs(self, active_priority_registers());
    }

    /// Writes it back for the vCPU about to run on this CPU.
    ///
    /// # Safety
    /// No guest runs on this CPU; the CPU has a GICv3 CPU interface; the state belongs to
    /// the vCPU about to run.
    pub unsafe fn restore(&self) {
        // SAFETY: per the caller; ICH_VMCR_EL2 only shapes the next guest's virtual
        // CPU interface.
        unsafe { asm!("msr s3_4_c12_c11_7, {}", in(reg) self.vmcr, options(nomem, nostack)) };
        restore_aprs(self, active_priority_registers());
        // SAFETY: synchronises the writes before the guest runs.
        unsafe { asm!("isb", options(nomem, nostack)) };
    }
}
