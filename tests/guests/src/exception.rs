//! EL1 exception handling: expected faults are recorded and skipped, anything else stops
//! the guest.
//!
//! A test arms its vCPU's slot with [`capture`] around an instruction that may fault. A
//! synchronous exception taken while the slot is armed has its ESR_EL1, FAR_EL1 and ELR_EL1
//! recorded, `ELR_EL1` moved past the instruction (every A64 instruction is 4 bytes), and
//! execution resumes there. Any exception outside such a window is a bug in the guest or
//! the hypervisor: it is printed with `EXCEPTION` (which the boot-test harness treats as a
//! failure) and the guest powers off with status 255.
//!
//! An IRQ taken at EL1 goes to the handler a test installed with `irq::install`; without
//! one it is unexpected too.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, compiler_fence};

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable, TPIDR_EL1};

use crate::dt::MAX_CPUS;
use crate::println;

/// ESR_EL1.EC of an unknown instruction (UNDEF).
pub const EC_UNKNOWN: u64 = 0x00;
/// ESR_EL1.EC of a data abort taken without a change in exception level.
pub const EC_DATA_ABORT_CURRENT_EL: u64 = 0x25;

/// A synchronous exception taken inside a [`capture`] window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub esr: u64,
    pub far: u64,
    pub elr: u64,
}

impl Fault {
    /// The exception class, ESR_EL1[31:26].
    pub fn ec(&self) -> u64 {
        (self.esr >> 26) & 0x3f
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exception EC {:#04x} (ESR {:#x}, FAR {:#x}, ELR {:#x})",
            self.ec(),
            self.esr,
            self.far,
            self.elr
        )
    }
}

struct Slot {
    armed: AtomicBool,
    taken: AtomicBool,
    esr: AtomicU64,
    far: AtomicU64,
    elr: AtomicU64,
}

impl Slot {
    const fn new() -> Self {
        Self {
            armed: AtomicBool::new(false),
            taken: AtomicBool::new(false),
            esr: AtomicU64::new(0),
            far: AtomicU64::new(0),
            elr: AtomicU64::new(0),
        }
    }
}

/// One "last exception" slot per vCPU, indexed by TPIDR_EL1 (the vCPU's place in /cpus).
static SLOTS: [Slot; MAX_CPUS] = [const { Slot::new() }; MAX_CPUS];

/// Set once an unexpected exception is being reported, so a fault while reporting it
/// cannot recurse.
static FATAL: AtomicBool = AtomicBool::new(false);

fn my_slot() -> &'static Slot {
    let index = (TPIDR_EL1.get() as usize).min(MAX_CPUS - 1);
    &SLOTS[index]
}

/// Runs `f` with this vCPU's slot armed, and returns what it returned together with the
/// synchronous exception it caused, if any (only the first is recorded; a second one
/// inside the same window is unexpected).
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Option<Fault>) {
    let slot = my_slot();
    slot.taken.store(false, Ordering::SeqCst);
    slot.armed.store(true, Ordering::SeqCst);
    compiler_fence(Ordering::SeqCst);
    let result = f();
    compiler_fence(Ordering::SeqCst);
    slot.armed.store(false, Ordering::SeqCst);
    let fault = slot.taken.load(Ordering::SeqCst).then(|| Fault {
        esr: slot.esr.load(Ordering::SeqCst),
        far: slot.far.load(Ordering::SeqCst),
        elr: slot.elr.load(Ordering::SeqCst),
    });
    (result, fault)
}

/// Vector offsets, as `entry.S` numbers them.
const KIND_NAMES: [&str; 16] = [
    "synchronous (current EL, SP_EL0)",
    "IRQ (current EL, SP_EL0)",
    "FIQ (current EL, SP_EL0)",
    "SError (current EL, SP_EL0)",
    "synchronous",
    "IRQ",
    "FIQ",
    "SError",
    "synchronous (lower EL, AArch64)",
    "IRQ (lower EL, AArch64)",
    "FIQ (lower EL, AArch64)",
    "SError (lower EL, AArch64)",
    "synchronous (lower EL, AArch32)",
    "IRQ (lower EL, AArch32)",
    "FIQ (lower EL, AArch32)",
    "SError (lower EL, AArch32)",
];
const KIND_SYNC_CURRENT_SPX: u64 = 4;
const KIND_IRQ_CURRENT_SPX: u64 = 5;

/// Index of the saved ELR_EL1 in the frame `entry.S` builds (x0-x30 come first).
const FRAME_ELR: usize = 31;
/// Index of the saved SPSR_EL1 in the frame.
const FRAME_SPSR: usize = 32;

/// Called by every vector in `entry.S` with the saved registers and the vector number.
#[unsafe(no_mangle)]
extern "C" fn guest_exception(frame: *mut u64, kind: u64) {
    let esr = ESR_EL1.get();
    let far = FAR_EL1.get();
    // SAFETY: `frame` points at the 34-word frame entry.S just pushed on this stack; it is
    // not otherwise referenced until this function returns.
    let frame = unsafe { &mut *frame.cast::<[u64; 34]>() };
    let elr = frame[FRAME_ELR];
    let slot = my_slot();
    if kind == KIND_SYNC_CURRENT_SPX && slot.armed.load(Ordering::SeqCst) {
        slot.esr.store(esr, Ordering::SeqCst);
        slot.far.store(far, Ordering::SeqCst);
        slot.elr.store(elr, Ordering::SeqCst);
        slot.armed.store(false, Ordering::SeqCst);
        slot.taken.store(true, Ordering::SeqCst);
        frame[FRAME_ELR] = elr + 4;
        return;
    }
    if kind == KIND_IRQ_CURRENT_SPX && crate::irq::handle() {
        return;
    }
    if FATAL.swap(true, Ordering::SeqCst) {
        crate::power::park();
    }
    println!(
        "guest: unexpected EXCEPTION: {} on vCPU {:#x}: ESR {:#x} (EC {:#04x}), FAR {:#x}, ELR {:#x}, SPSR {:#x}",
        KIND_NAMES[(kind & 15) as usize],
        crate::current_mpidr(),
        esr,
        (esr >> 26) & 0x3f,
        far,
        elr,
        frame[FRAME_SPSR]
    );
    for (i, pair) in frame[..31].chunks(2).enumerate() {
        match pair {
            [a, b] => println!("  x{:<2} {:#018x}  x{:<2} {:#018x}", 2 * i, a, 2 * i + 1, b),
            [a] => println!("  x{:<2} {:#018x}", 2 * i, a),
            _ => {}
        }
    }
    crate::power::finish_with_status(255)
}
