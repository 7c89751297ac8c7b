//! Stopping the guest: `HYP_DOMAIN_EXIT(status)` when the bootargs say `exit=status`,
//! else PSCI `SYSTEM_OFF` over the DT's conduit.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::println;
use crate::smccc::{self, CallResult, Conduit};

static CONDUIT_IS_SMC: AtomicU8 = AtomicU8::new(0);
static EXIT_THROUGH_HYPERVISOR: AtomicBool = AtomicBool::new(false);

/// Records the PSCI conduit from the device tree.
pub fn set_conduit(conduit: Conduit) {
    CONDUIT_IS_SMC.store(u8::from(conduit == Conduit::Smc), Ordering::SeqCst);
}

/// The PSCI conduit from the device tree.
pub fn conduit() -> Conduit {
    match CONDUIT_IS_SMC.load(Ordering::SeqCst) {
        0 => Conduit::Hvc,
        _ => Conduit::Smc,
    }
}

/// Makes power-off go through `HYP_DOMAIN_EXIT` (bootargs `exit=status`).
pub fn set_exit_through_hypervisor(enabled: bool) {
    EXIT_THROUGH_HYPERVISOR.store(enabled, Ordering::SeqCst);
}

/// A PSCI call over the DT's conduit.
pub fn psci(function: u32, args: [u64; 3]) -> CallResult {
    smccc::call(conduit(), function, args)
}

/// `HYP_DOMAIN_EXIT(status)`: a fast call over `HVC #0`. Returns only if it failed.
pub fn hyp_domain_exit(status: u64) -> CallResult {
    smccc::call(Conduit::Hvc, hyp_abi::HYP_DOMAIN_EXIT, [status, 0, 0])
}

/// Stops this vCPU for good.
pub fn park() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Powers off at the end of the run: status `min(failures, 255)`.
pub fn finish(failures: u32) -> ! {
    finish_with_status(u64::from(failures.min(255)))
}

/// Powers off with `status` (which only `HYP_DOMAIN_EXIT` can carry).
pub fn finish_with_status(status: u64) -> ! {
    if EXIT_THROUGH_HYPERVISOR.load(Ordering::SeqCst) {
        let result = hyp_domain_exit(status);
        println!(
            "guest: HYP_DOMAIN_EXIT({status}) did not stop the guest: {result}; trying PSCI SYSTEM_OFF"
        );
    }
    let result = psci(smccc::psci::SYSTEM_OFF, [0; 3]);
    println!("guest: PSCI SYSTEM_OFF did not stop the guest: {result}; parking");
    park()
}

/// Powers off without a device tree: PSCI `SYSTEM_OFF` over HVC (the hypervisor takes
/// both conduits), then parks.
pub fn system_off_blind() -> ! {
    let _ = smccc::call(Conduit::Hvc, smccc::psci::SYSTEM_OFF, [0; 3]);
    park()
}
