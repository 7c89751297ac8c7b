//! Host tests. `arith`: the comparator and TVAL arithmetic; `physical`: the emulated
//! physical timer; `virt`: the virtual-timer save/load/mask protocol; `protocol`: whole
//! scenarios with a model of the hardware timer and of guests; `deadline`: lines and
//! EL2-timer deadlines; `freq`: CNTFRQ conversions.

mod arith;
mod deadline;
mod freq;
mod physical;
mod protocol;
mod virt;
