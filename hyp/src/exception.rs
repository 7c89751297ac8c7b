//! Exceptions taken to EL2: exits from guests (handed to `guest`, IRQ exits then to
//! `gic`), IRQs taken at EL2 itself (to `gic`), and everything else, which is unexpected:
//! it is decoded, dumped, and the CPU that took it is stopped. Other CPUs carry on.

use core::fmt;

use crate::{arch, console, percpu};

/// Registers saved by `vectors.S`, in its layout. 16-byte aligned: a vCPU's frame is
/// the stack while it runs (`guest_run`), and SCTLR_EL2.SA checks stack alignment.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the exception was taken.
    pub elr: u64,
    /// SPSR_EL2: the state at that point.
    pub spsr: u64,
    /// ESR_EL2: the syndrome.
    pub esr: u64,
    /// FAR_EL2: the faulting virtual address, where the class defines one.
    pub far: u64,
    /// While a vCPU runs: the hypervisor's stack pointer to return to (`guest_run`).
    host_sp: u64,
}

impl TrapFrame {
    /// All registers zero.
    pub const fn zeroed() -> Self {
        TrapFrame {
            x: [0; 31],
            elr: 0,
            spsr: 0,
            esr: 0,
            far: 0,
            host_sp: 0,
        }
    }
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 36 * 8);

/// Which vector-table entry was taken (the `kind` passed by `vectors.S`).
#[derive(Clone, Copy, Debug)]
struct VectorKind(u64);

impl fmt::Display for VectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.0 / 4 {
            0 => "current EL with SP_EL0",
            1 => "current EL with SP_EL2",
            2 => "lower EL (AArch64)",
            _ => "lower EL (AArch32)",
        };
        let kind = match self.0 % 4 {
            0 => "synchronous",
            1 => "IRQ",
            2 => "FIQ",
            _ => "SError",
        };
        write!(f, "{kind} from {source}")
    }
}

/// Name of an ESR exception class.
pub fn exception_class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE",
        0x07 => "SVE/SIMD/FP access",
        0x0e => "illegal execution state",
        0x11 | 0x15 => "SVC",
        0x12 | 0x16 => "HVC",
        0x13 | 0x17 => "SMC",
        0x18 => "MSR/MRS/system instruction",
        0x19 => "SVE access",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort, same EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort, same EL",
        0x26 => "SP alignment fault",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x38 | 0x3c => "BRK instruction",
        _ => "reserved or unhandled class",
    }
}

/// Called by `vectors.S` for every exception taken to EL2.
#[unsafe(no_mangle)]
extern "C" fn handle_exception(frame: &mut TrapFrame, kind: u64) {
    match kind {
        // IRQ at EL2 itself: code that unmasked IRQs (`arch::wait_for_interrupt_unmasked`).
        1 | 5 => crate::gic::handle_irq_exception(),
        // Exceptions from guests never come here: `guest_run` returns them to the run loop.
        _ => unexpected(frame, kind),
    }
}

/// An exception the hypervisor did not expect: dump it and stop this CPU.
pub fn unexpected(frame: &TrapFrame, kind: u64) -> ! {
    let cpu = percpu::current_index();
    let ec = (frame.esr >> 26) & 0x3f;
    let il = (frame.esr >> 25) & 1;
    let iss = frame.esr & 0x1ff_ffff;
    // The console lock may be held by the interrupted code on this CPU.
    console::write_fmt_unlocked(format_args!(
        "\n[ERROR] cpu{cpu}: EXCEPTION: {kind}\n  \
         ESR {esr:#018x}: EC {ec:#04x} ({name}), IL {il}, ISS {iss:#09x}\n  \
         FAR {far:#018x}  ELR {elr:#018x}  SPSR {spsr:#010x}\n",
        kind = VectorKind(kind),
        esr = frame.esr,
        name = exception_class_name(ec),
        far = frame.far,
        elr = frame.elr,
        spsr = frame.spsr,
    ));
    for (row, regs) in frame.x.chunks(4).enumerate() {
        console::write_fmt_unlocked(format_args!("  "));
        for (col, value) in regs.iter().enumerate() {
            let n = row * 4 + col;
            console::write_fmt_unlocked(format_args!("x{n:<2} {value:#018x}  "));
        }
        console::write_fmt_unlocked(format_args!("\n"));
    }
    console::write_fmt_unlocked(format_args!("[ERROR] cpu{cpu}: stopped\n"));
    arch::halt()
}
