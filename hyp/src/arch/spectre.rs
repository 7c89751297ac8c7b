//! The branch-history mitigations `crate::spectre` runs on a guest exit (the firmware
//! ones go through `arch::smc`/`arch::hvc`).

use core::arch::asm;

/// `CLRBHB` (a hint encoding, so the assembler needs no support for it), then `ISB`:
/// clears the branch history.
#[inline(always)]
pub fn clear_branch_history() {
    // SAFETY: CLRBHB and ISB only clear the branch history.
    unsafe { asm!(".inst 0xd50322df", "isb", options(nomem, nostack)) };
}

/// A loop of `k` taken branches, then `DSB NSH; ISB`: overwrites the branch history on
/// cores without CLRBHB.
#[inline(always)]
pub fn branch_history_loop(k: u64) {
    // SAFETY: a loop of taken branches over registers of its own, then barriers: it
    // overwrites the branch history and touches nothing else.
    unsafe {
        asm!(
            "2: b 3f",
            "3: subs {k}, {k}, #1",
            "b.ne 2b",
            "dsb nsh",
            "isb",
            k = inout(reg) k => _,
            options(nomem, nostack)
        )
    };
}
