//! Guest-visible CPU state beyond `El1State` and `FpState` (keys, PMU, debug, SVE/SME,
//! ...), saved when a vCPU leaves a CPU and restored when it takes one up. The register
//! work, the list and the order against `El1State`/`FpState` are `arch::guest_state`'s;
//! this adds the one policy it needs: whether the PMU is the guest's (`regs::pmu_trapped`).

use super::regs;
use crate::arch::guest_state;

/// A vCPU's extra CPU state (see `arch::guest_state::ExtraState`).
#[derive(Clone, Debug)]
pub struct ExtraState(guest_state::ExtraState);

impl ExtraState {
    /// The state of a vCPU at reset (see `arch::guest_state::ExtraState::reset`).
    pub fn reset() -> Self {
        Self(guest_state::ExtraState::reset())
    }

    /// Reads the state from this CPU's registers.
    ///
    /// # Safety
    /// As for `arch::guest_state::ExtraState::save`.
    pub unsafe fn save(&mut self) {
        // SAFETY: per the caller.
        unsafe { self.0.save(!regs::pmu_trapped()) };
    }

    /// Writes the state to this CPU's registers (ends with an ISB).
    ///
    /// # Safety
    /// As for `arch::guest_state::ExtraState::restore`.
    pub unsafe fn restore(&self) {
        // SAFETY: per the caller.
        unsafe { self.0.restore(!regs::pmu_trapped()) };
    }
}
