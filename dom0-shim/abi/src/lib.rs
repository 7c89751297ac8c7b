//! The hypervisor's own calls: function IDs in the SMC Calling Convention's
//! vendor-specific hypervisor service range (owner 6), made with `HVC #0` or `SMC #0`.
//! Dependency-free so the hypervisor, bare-metal guests and dom0 tools all share it.
#![no_std]
#![forbid(unsafe_code)]

/// `HYP_ABI_VERSION()` -> `x0` = major << 16 | minor.
pub const HYP_ABI_VERSION: u32 = 0x8600_0000;

/// `HYP_DOMAIN_EXIT(status)`: stops the calling domain, recording `status` (like PSCI
/// `SYSTEM_OFF`, which records 0). Does not return.
pub const HYP_DOMAIN_EXIT: u32 = 0x8600_0001;

/// `HYP_DOMAIN_RESET_COUNT()` -> `x0` = how many times the calling domain has been reset
/// (PSCI `SYSTEM_RESET`) since it was built.
pub const HYP_DOMAIN_RESET_COUNT: u32 = 0x8600_0002;

/// ABI version this crate describes.
pub const ABI_VERSION: (u16, u16) = (0, 2);

/// `ABI_VERSION` encoded as `HYP_ABI_VERSION` returns it.
pub const fn encoded_version() -> u64 {
    ((ABI_VERSION.0 as u64) << 16) | ABI_VERSION.1 as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fast_smc32_vendor_hypervisor_calls() {
        for id in [HYP_ABI_VERSION, HYP_DOMAIN_EXIT, HYP_DOMAIN_RESET_COUNT] {
            assert_eq!(id >> 31, 1, "fast call");
            assert_eq!((id >> 30) & 1, 0, "SMC32 convention");
            assert_eq!((id >> 24) & 0x3f, 6, "vendor-specific hypervisor service");
        }
        assert_eq!(encoded_version(), 2);
    }
}
