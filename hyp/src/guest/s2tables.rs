//! TLB maintenance for a domain's stage-2 tables, tagged with its VMID: `arch::tlb`'s
//! [`Stage2Tlb`]. (Their memory is `mm::FrameTables`.)

pub use crate::arch::tlb::Stage2Tlb;
