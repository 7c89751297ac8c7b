//! Address translation of the guest loaded on this CPU: `AT S12E1R` / `AT S12E1W` walk its
//! stage-1 tables (as its EL1 would, with its `SCTLR_EL1`, `TCR_EL1`, `TTBRn_EL1`) and
//! then its stage 2 (`VTTBR_EL2`), and leave the result in `PAR_EL1`.
//!
//! Hypercall arguments are guest virtual addresses (Xen's Arm ABI): this is how the
//! hypervisor finds the memory behind them. `PAR_EL1` is the guest's register, so its
//! value is put back after each walk. `AT` is not affected by `PSTATE.PAN`, so the user
//! buffers Linux's privcmd passes translate as the kernel's own.

use core::arch::asm;

/// Why a guest virtual address did not translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranslationFault {
    /// `PAR_EL1.FST`: the fault status code.
    pub status: u8,
    /// The fault was in stage 2 (`PAR_EL1.S`), not in the guest's own tables.
    pub stage2: bool,
}

/// Translates `va` as the guest loaded on this CPU would reach it at EL1, for a read
/// (`write` false) or a write, through both stages. Returns the physical address.
///
/// Safe: the walk reads only translation tables and writes nothing but `PAR_EL1`, whose
/// guest value is restored before returning. Call it while handling an exit of the vCPU
/// whose context is live on this CPU (its EL1 registers and `VTTBR_EL2` loaded), as the
/// hypervisor always is when it handles a hypercall.
pub fn guest_va_to_pa(va: u64, write: bool) -> Result<u64, TranslationFault> {
    /// One walk with `AT <op>` and the guest's `PAR_EL1` put back.
    macro_rules! walk {
        ($op:literal) => {{
            let par: u64;
            // SAFETY: as documented above: `AT` only walks tables, its result replaces
            // the guest's `PAR_EL1` for the moment between the `MRS`/`MSR` around it, and
            // the `ISB` orders the walk's result before it is read.
            unsafe {
                asm!(
                    "mrs {saved}, par_el1",
                    concat!("at ", $op, ", {va}"),
                    "isb",
                    "mrs {par}, par_el1",
                    "msr par_el1, {saved}",
                    va = in(reg) va,
                    saved = out(reg) _,
                    par = out(reg) par,
                    options(nostack, preserves_flags),
                )
            };
            par
        }};
    }
    let par = if write {
        walk!("s12e1w")
    } else {
        walk!("s12e1r")
    };
    decode_par(par, va)
}

/// `PAR_EL1` after a walk: the physical address (bits 51:12, with `va`'s page offset), or
/// the fault.
fn decode_par(par: u64, va: u64) -> Result<u64, TranslationFault> {
    if par & 1 != 0 {
        return Err(TranslationFault {
            status: ((par >> 1) & 0x3f) as u8,
            stage2: par & (1 << 9) != 0,
        });
    }
    Ok((par & 0x000f_ffff_ffff_f000) | (va & 0xfff))
}
