//! The comparator arithmetic of one generic timer, as the Arm ARM states it, on plain
//! counter values.
//!
//! Every function is total: the counter and the comparator are unsigned 64-bit values and
//! all arithmetic is explicitly wrapping or saturating, so no input panics (debug builds
//! included).

/// The timer condition: `count >= cval`, an unsigned 64-bit comparison.
///
/// For the EL1 physical timer `count` is `CNTPCT_EL0`; for the EL1 virtual timer it is
/// the virtual count, `CNTPCT_EL0 - CNTVOFF_EL2` (see [`virtual_count`]). This is the
/// condition only: `ISTATUS` also needs `ENABLE` (see [`crate::Ctl`]).
#[must_use]
pub const fn condition_met(count: u64, cval: u64) -> bool {
    count >= cval
}

/// The value a read of `CNTx_TVAL_EL0` returns: `(cval - count)[31:0]`, with bits
/// \[63:32\] zero (they are RES0 in the register).
///
/// A guest that treats the result as a signed 32-bit number (as the architecture intends:
/// negative once the condition is met) gets [`tval_as_signed`] of it.
#[must_use]
pub const fn tval_read(cval: u64, count: u64) -> u64 {
    cval.wrapping_sub(count) as u32 as u64
}

/// The signed 32-bit reading of a `TVAL` value: negative when the comparator is behind the
/// counter (the condition is met), positive when it is ahead.
#[must_use]
pub const fn tval_as_signed(tval: u64) -> i32 {
    tval as u32 as i32
}

/// The comparator a write of `tval` to `CNTx_TVAL_EL0` sets: `count + SignExtend(tval[31:0])`,
/// modulo 2^64. Bits \[63:32\] of the written value are ignored (RES0).
#[must_use]
pub const fn tval_write(count: u64, tval: u64) -> u64 {
    let delta = tval as u32 as i32 as i64 as u64;
    count.wrapping_add(delta)
}

/// Ticks of `count` until the condition is met: 0 if it is met already, `cval - count`
/// otherwise. The result never overflows: a counter below `cval` reaches it before it
/// could wrap.
#[must_use]
pub const fn ticks_until_met(count: u64, cval: u64) -> u64 {
    cval.saturating_sub(count)
}

/// The virtual count seen by a guest whose domain has `CNTVOFF_EL2` = `cntvoff`, when the
/// physical counter reads `physical`: `physical - cntvoff` modulo 2^64.
#[must_use]
pub const fn virtual_count(physical: u64, cntvoff: u64) -> u64 {
    physical.wrapping_sub(cntvoff)
}
