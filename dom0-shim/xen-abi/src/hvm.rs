//! `hvm_op` (`hvm/hvm_op.h`) get/set param and the parameters (`hvm/params.h`) a guest
//! reads on Arm.

use crate::DomId;

abi_enum! {
    /// `hvm_op` sub-op (first argument).
    pub enum HvmOp: u32 {
        /// Set a parameter ([`XenHvmParam`]).
        SetParam = 0,
        /// Get a parameter ([`XenHvmParam`]).
        GetParam = 1,
    }
}

wire_struct! {
    /// `struct xen_hvm_param`.
    pub struct XenHvmParam {
        /// IN: domain (`DOMID_SELF`).
        pub domid: DomId,
        /// Padding.
        pub pad: u16,
        /// IN: `HVM_PARAM_*`.
        pub index: u32,
        /// IN/OUT: value.
        pub value: u64,
    }
}

/// Parameter indexes (`HVM_PARAM_*`).
pub mod param {
    /// How the event upcall is delivered; the type is in bits 56..63.
    pub const CALLBACK_IRQ: u32 = 0;
    /// Frame of the xenstore ring (0: no xenstore).
    pub const STORE_PFN: u32 = 1;
    /// Event channel of the xenstore ring.
    pub const STORE_EVTCHN: u32 = 2;
    /// Frame of the ioreq page.
    pub const IOREQ_PFN: u32 = 5;
    /// Frame of the buffered ioreq page.
    pub const BUFIOREQ_PFN: u32 = 6;
    /// Frame of the PV console ring (a domU's `hvc0`).
    pub const CONSOLE_PFN: u32 = 17;
    /// Event channel of the PV console ring.
    pub const CONSOLE_EVTCHN: u32 = 18;
    /// Mask of the callback type in a [`CALLBACK_IRQ`] value.
    pub const CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
    /// Callback type: a PPI (Arm).
    pub const CALLBACK_TYPE_PPI: u64 = 2;
}
