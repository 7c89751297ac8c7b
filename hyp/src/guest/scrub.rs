//! Clearing the guest-visible CPU state a vCPU could otherwise inherit when it starts:
//! `arch::scrub` does it (its documentation has the list).

pub use crate::arch::scrub::clear_guest_state;
