//! Taking interrupts: the IRQ vector acknowledges the interrupt, calls the handler the
//! running test installed, and ends the interrupt (EOIR: priority drop, and deactivation
//! with EOImode 0). An IRQ while no handler is installed is an unexpected exception.
//!
//! The handler runs with PSTATE.I masked; it may unmask it to let a higher-priority
//! interrupt preempt it (`entry.S` saved ELR_EL1 and SPSR_EL1 on the stack before the
//! handler runs, so a nested exception cannot lose them), and must mask it again before
//! returning.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::dt::{Gic, MAX_CPUS};
use crate::gic::{self, Ack};

/// What the IRQ vector calls with each acknowledged interrupt.
pub type Handler = fn(Gic, Ack);

static HANDLER: AtomicUsize = AtomicUsize::new(0);
/// The GIC, encoded: kind (0 none, 2, 3) and three addresses.
static GIC_WORDS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// IRQ exceptions that acknowledged nothing (a special ID), per vCPU index.
pub static SPURIOUS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn store_gic(gic: Gic) {
    let words = match gic {
        Gic::V2 { gicd, gicc } => [2, gicd, gicc, 0],
        Gic::V3 {
            gicd,
            gicr,
            gicr_size,
        } => [3, gicd, gicr, gicr_size],
    };
    for (slot, word) in GIC_WORDS.iter().zip(words) {
        slot.store(word, Ordering::SeqCst);
    }
}

/// The GIC given to [`install`].
pub fn gic() -> Option<Gic> {
    let w = |i: usize| GIC_WORDS[i].load(Ordering::SeqCst);
    match w(0) {
        2 => Some(Gic::V2 {
            gicd: w(1),
            gicc: w(2),
        }),
        3 => Some(Gic::V3 {
            gicd: w(1),
            gicr: w(2),
            gicr_size: w(3),
        }),
        _ => None,
    }
}

/// Makes every vCPU's IRQ vector call `handler` from now on.
pub fn install(gic: Gic, handler: Handler) {
    store_gic(gic);
    HANDLER.store(handler as usize, Ordering::SeqCst);
}

/// Makes IRQs unexpected again.
pub fn uninstall() {
    HANDLER.store(0, Ordering::SeqCst);
}

/// Unmasks IRQs in PSTATE.
pub fn unmask() {
    // SAFETY: clears PSTATE.I; an IRQ then taken goes through the vectors to `handle`.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
}

/// Masks IRQs in PSTATE.
pub fn mask() {
    // SAFETY: sets PSTATE.I; no other state changes.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack)) };
}

/// Called by the exception handler for an IRQ taken from EL1 (SP_EL1); whether an
/// installed handler dealt with it.
pub fn handle() -> bool {
    let handler = HANDLER.load(Ordering::SeqCst);
    let Some(gic) = gic() else {
        return false;
    };
    if handler == 0 {
        return false;
    }
    // SAFETY: `HANDLER` only ever holds 0 or a `Handler` stored by `install`.
    let handler: Handler = unsafe { core::mem::transmute::<usize, Handler>(handler) };
    let ack = gic::acknowledge(gic);
    if !ack.is_interrupt() {
        SPURIOUS[gic::cpu_index()].fetch_add(1, Ordering::SeqCst);
        return true;
    }
    handler(gic, ack);
    gic::end_of_interrupt(gic, ack);
    true
}
