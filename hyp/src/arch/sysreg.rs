//! System registers `aarch64-cpu` lacks, written in its style: one module per register
//! with its fields (`register_bitfields!`), a unit struct implementing tock-registers'
//! `Readable` and/or `Writeable`, and a constant of that name. Read-only and write-only
//! registers only get the direction the assembler accepts.
//!
//! Unlike `aarch64-cpu`, the accessors do not tell the compiler that they leave memory
//! alone: reading `ICC_IAR1_EL1` acknowledges an interrupt, writing `ICC_SGI1R_EL1` sends
//! one, so they must stay ordered with the memory accesses around them.
#![allow(non_snake_case)]

/// Defines the accessor struct and constant of one system register: `read`, `write` or
/// both give the directions it has.
macro_rules! system_register {
    ($module:ident, $asm:literal $(, $dir:ident)+) => {
        /// Accessor for the register.
        pub struct Reg;

        $(system_register!(@$dir $module, $asm);)+

        /// The register.
        pub const $module: Reg = Reg;
    };
    (@read $module:ident, $asm:literal) => {
        impl tock_registers::interfaces::Readable for Reg {
            type T = u64;
            type R = $module::Register;

            #[inline]
            fn get(&self) -> u64 {
                let value;
                // SAFETY: reading this register is allowed at EL2, where the hypervisor
                // runs; what the read does (acknowledging an interrupt, for IAR) is the
                // caller's intent.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {}, ", $asm),
                        out(reg) value,
                        options(nostack, preserves_flags)
                    )
                };
                value
            }
        }
    };
    (@write $module:ident, $asm:literal) => {
        impl tock_registers::interfaces::Writeable for Reg {
            type T = u64;
            type R = $module::Register;

            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: this register configures or drives the GIC CPU interface or the
                // EL2 timer, which belong to the hypervisor; it touches no memory the
                // compiler knows about.
                unsafe {
                    core::arch::asm!(
                        concat!("msr ", $asm, ", {}"),
                        in(reg) value,
                        options(nostack, preserves_flags)
                    )
                };
            }
        }
    };
}

/// ICC_IAR1_EL1: Interrupt Controller Interrupt Acknowledge Register 1 (read-only). A read
/// acknowledges the highest-priority pending group 1 interrupt.
pub mod icc_iar1_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_IAR1_EL1 [
            /// The acknowledged interrupt; 1020..=1023 are special (1023: none pending).
            INTID OFFSET(0) NUMBITS(24) [],
        ]
    }
    system_register!(ICC_IAR1_EL1, "icc_iar1_el1", read);
}

/// ICC_EOIR1_EL1: End Of Interrupt Register 1 (write-only). With ICC_CTLR_EL1.EOImode = 1
/// a write only drops the running priority; deactivation is ICC_DIR_EL1's.
pub mod icc_eoir1_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_EOIR1_EL1 [
            /// The interrupt, as read from ICC_IAR1_EL1.
            INTID OFFSET(0) NUMBITS(24) [],
        ]
    }
    system_register!(ICC_EOIR1_EL1, "icc_eoir1_el1", write);
}

/// ICC_DIR_EL1: Deactivate Interrupt Register (write-only; used when EOImode = 1).
pub mod icc_dir_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_DIR_EL1 [
            /// The interrupt to deactivate.
            INTID OFFSET(0) NUMBITS(24) [],
        ]
    }
    system_register!(ICC_DIR_EL1, "icc_dir_el1", write);
}

/// ICC_PMR_EL1: Priority Mask Register. Only interrupts of higher priority (lower value)
/// are signalled.
pub mod icc_pmr_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_PMR_EL1 [
            /// The mask.
            PRIORITY OFFSET(0) NUMBITS(8) [],
        ]
    }
    system_register!(ICC_PMR_EL1, "icc_pmr_el1", read, write);
}

/// ICC_BPR1_EL1: Binary Point Register 1 (group priority / subpriority split).
pub mod icc_bpr1_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_BPR1_EL1 [
            /// The binary point.
            BINARYPOINT OFFSET(0) NUMBITS(3) [],
        ]
    }
    system_register!(ICC_BPR1_EL1, "icc_bpr1_el1", read, write);
}

/// ICC_CTLR_EL1: Interrupt Controller Control Register (EL1), read-write (the crate's is
/// read-only and has one field).
pub mod icc_ctlr_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_CTLR_EL1 [
            /// Extended INTID range supported.
            EXTRANGE OFFSET(19) NUMBITS(1) [],
            /// Range Selector Support: SGIs can target Aff0 values 16..=255.
            RSS OFFSET(18) NUMBITS(1) [],
            /// Affinity 3 valid in SGI generation.
            A3V OFFSET(15) NUMBITS(1) [],
            /// INTID bits: 0b000 = 16, 0b001 = 24.
            IDBITS OFFSET(11) NUMBITS(3) [],
            /// Priority bits implemented, minus one.
            PRIBITS OFFSET(8) NUMBITS(3) [],
            /// Priority mask hint enable.
            PMHE OFFSET(6) NUMBITS(1) [],
            /// EOI mode: 1 = ICC_EOIR1_EL1 drops priority only, ICC_DIR_EL1 deactivates.
            EOIMODE OFFSET(1) NUMBITS(1) [],
            /// Common binary point.
            CBPR OFFSET(0) NUMBITS(1) [],
        ]
    }
    system_register!(ICC_CTLR_EL1, "icc_ctlr_el1", read, write);
}

/// ICC_IGRPEN1_EL1: Interrupt Group 1 Enable.
pub mod icc_igrpen1_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_IGRPEN1_EL1 [
            /// Group 1 interrupts are signalled to this PE.
            ENABLE OFFSET(0) NUMBITS(1) [],
        ]
    }
    system_register!(ICC_IGRPEN1_EL1, "icc_igrpen1_el1", read, write);
}

/// ICC_SGI1R_EL1: generates a group 1 SGI (write-only).
pub mod icc_sgi1r_el1 {
    tock_registers::register_bitfields! {u64,
        pub ICC_SGI1R_EL1 [
            /// Aff3 of the targets.
            AFF3 OFFSET(48) NUMBITS(8) [],
            /// Range selector: the target list covers Aff0 values RS * 16 ..= RS * 16 + 15.
            RS OFFSET(44) NUMBITS(4) [],
            /// Interrupt routing mode: 1 = every PE but this one.
            IRM OFFSET(40) NUMBITS(1) [],
            /// Aff2 of the targets.
            AFF2 OFFSET(32) NUMBITS(8) [],
            /// The SGI (0..=15).
            INTID OFFSET(24) NUMBITS(4) [],
            /// Aff1 of the targets.
            AFF1 OFFSET(16) NUMBITS(8) [],
            /// One bit per target Aff0 value (within the range RS selects).
            TARGETLIST OFFSET(0) NUMBITS(16) [],
        ]
    }
    system_register!(ICC_SGI1R_EL1, "icc_sgi1r_el1", write);
}

/// CNTHP_CVAL_EL2: the EL2 physical timer's compare value (the crate has only its
/// control register).
pub mod cnthp_cval_el2 {
    tock_registers::register_bitfields! {u64,
        pub CNTHP_CVAL_EL2 [
            /// Fires when the physical count reaches this value.
            COMPAREVALUE OFFSET(0) NUMBITS(64) [],
        ]
    }
    system_register!(CNTHP_CVAL_EL2, "cnthp_cval_el2", read, write);
}

pub use cnthp_cval_el2::CNTHP_CVAL_EL2;
pub use icc_bpr1_el1::ICC_BPR1_EL1;
pub use icc_ctlr_el1::ICC_CTLR_EL1;
pub use icc_dir_el1::ICC_DIR_EL1;
pub use icc_eoir1_el1::ICC_EOIR1_EL1;
pub use icc_iar1_el1::ICC_IAR1_EL1;
pub use icc_igrpen1_el1::ICC_IGRPEN1_EL1;
pub use icc_pmr_el1::ICC_PMR_EL1;
pub use icc_sgi1r_el1::ICC_SGI1R_EL1;
