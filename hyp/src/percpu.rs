//! Per-CPU state, indexed by the hypervisor's own CPU number (the position of the CPU's
//! node in the device tree). TPIDR_EL2 holds the current CPU's index.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use platforms::MAX_CPUS;

/// What the hypervisor keeps for one physical CPU.
pub struct PerCpu {
    /// Set by the CPU itself once it runs hypervisor code with its MMU on.
    pub online: AtomicBool,
    /// Top of its stack: where a guest's trap frame goes.
    pub stack_top: AtomicU64,
}

// A `const` item is the way to repeat a non-Copy value in an array initialiser.
#[allow(clippy::declare_interior_mutable_const)]
const OFFLINE: PerCpu = PerCpu {
    online: AtomicBool::new(false),
    stack_top: AtomicU64::new(0),
};

static CPUS: [PerCpu; MAX_CPUS] = [OFFLINE; MAX_CPUS];

/// The state of CPU `index`.
pub fn cpu(index: usize) -> &'static PerCpu {
    &CPUS[index]
}

/// Marks this CPU as number `index`.
///
/// # Safety
/// Must run at EL2, once per CPU, before anything calls [`current_index`] on it; `index`
/// must be below [`MAX_CPUS`] and unique to this CPU.
pub unsafe fn set_current(index: usize, stack_top: u64) {
    CPUS[index].stack_top.store(stack_top, Ordering::Relaxed);
    // SAFETY: TPIDR_EL2 is reserved for this CPU's index; the caller gives the index of
    // this CPU alone.
    unsafe { crate::arch::write_tpidr_el2(index as u64) };
}

/// This CPU's index. Only meaningful at EL2 after [`set_current`].
pub fn current_index() -> usize {
    crate::arch::read_tpidr_el2() as usize
}

/// Marks this CPU online.
pub fn set_online() {
    CPUS[current_index()].online.store(true, Ordering::Release);
}
