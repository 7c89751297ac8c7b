//! `setway`: set/way cache maintenance in a loop must not cost the hypervisor a clean of
//! the guest's whole RAM each time (it flushes on the first one, then only when the guest
//! turns its caches on or off, which it traps through HCR_EL2.TVM). The guest must still
//! be able to turn its caches off and on, read SCTLR_EL1 back as written, and find data
//! it wrote with caches on when it reads with them off.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::FaultDetail;
use super::probe::{probe_insn_arg, probe_read, probe_write};
use crate::{Ctx, println, time};

/// Set/way operations in the loop.
const OPS: u64 = 2000;
/// Guest time they must fit in: generous for a busy host (about 0.4 s when idle), and
/// still far below the 1000 s they took when each cleaned all 512 MiB.
const BOUND_MS: u64 = 20_000;

const SCTLR_M: u64 = 1 << 0;
const SCTLR_C: u64 = 1 << 2;

const WORDS: usize = 8192;
static DATA: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

/// Cleans and invalidates every data and unified cache level by set/way, as an OS does
/// before turning its caches off (CLIDR_EL1/CCSIDR_EL1 walk, A64 `DC CISW`).
fn clean_all_by_set_way() {
    let (clidr, _) = probe_read!("clidr_el1");
    let loc = (clidr >> 24) & 7;
    for level in 0..loc {
        let kind = (clidr >> (3 * level)) & 7;
        if kind < 2 {
            continue; // no cache or instruction only
        }
        let _ = probe_write!("csselr_el1", level << 1);
        // SAFETY: a barrier only.
        unsafe { asm!("isb", options(nostack)) };
        let (ccsidr, _) = probe_read!("ccsidr_el1");
        let (mmfr2, _) = probe_read!("id_aa64mmfr2_el1");
        let line_shift = (ccsidr & 7) + 4;
        // FEAT_CCIDX (ID_AA64MMFR2_EL1.CCIDX) widens both fields.
        let (ways, sets) = if (mmfr2 >> 20) & 0xf != 0 {
            (
                ((ccsidr >> 3) & 0x1f_ffff) + 1,
                ((ccsidr >> 32) & 0xff_ffff) + 1,
            )
        } else {
            (((ccsidr >> 3) & 0x3ff) + 1, ((ccsidr >> 13) & 0x7fff) + 1)
        };
        let way_shift = (ways as u32 - 1).leading_zeros();
        for set in 0..sets {
            for way in 0..ways {
                let operand = (way << way_shift) | (set << line_shift) | (level << 1);
                let _ = probe_insn_arg!("dc cisw, {}", operand);
            }
        }
    }
    // SAFETY: a barrier only.
    unsafe { asm!("dsb sy", "isb", options(nostack)) };
}

pub fn run(ctx: &mut Ctx<'_>) {
    let start = time::now();
    let deadline = start + time::ms_to_ticks(BOUND_MS);
    let mut done = 0;
    let mut fault = None;
    while done < OPS && time::now() < deadline {
        let op = match done % 3 {
            0 => probe_insn_arg!("dc cisw, {}", 0),
            1 => probe_insn_arg!("dc isw, {}", 0),
            _ => probe_insn_arg!("dc csw, {}", 0),
        };
        fault = fault.or(op);
        done += 1;
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: setway: {done} set/way operations in {ms} ms");
    ctx.report.check(
        done == OPS && fault.is_none(),
        format_args!(
            "{OPS} set/way operations (DC CISW, DC ISW, DC CSW on set 0 way 0 of level 1) \
             complete within {BOUND_MS} ms"
        ),
        format_args!("{done} done in {ms} ms; {}", FaultDetail(fault)),
    );

    let (sctlr, _) = probe_read!("sctlr_el1");
    let off = probe_write!("sctlr_el1", sctlr & !SCTLR_C);
    let (seen_off, _) = probe_read!("sctlr_el1");
    let on = probe_write!("sctlr_el1", sctlr);
    let (seen_on, _) = probe_read!("sctlr_el1");
    ctx.report.check(
        off.is_none() && on.is_none() && seen_off == sctlr & !SCTLR_C && seen_on == sctlr,
        "SCTLR_EL1.C cleared and set again reads back as written",
        format_args!(
            "{} / {}: wrote {:#x} read {seen_off:#x}, wrote {sctlr:#x} read {seen_on:#x}",
            FaultDetail(off),
            FaultDetail(on),
            sctlr & !SCTLR_C
        ),
    );

    // Data written with caches on, cleaned by set/way, read with MMU and caches off.
    for (i, word) in DATA.iter().enumerate() {
        word.store(
            0x5e7_0000_0000 ^ (i as u64).wrapping_mul(0x9e37_79b9),
            Ordering::Relaxed,
        );
    }
    clean_all_by_set_way();
    let first = DATA[0].as_ptr() as u64;
    let last = DATA[WORDS - 1].as_ptr() as u64;
    let (a, b, seen): (u64, u64, u64);
    // SAFETY: turns the MMU and data cache off for two aligned loads of our own data and
    // a read of SCTLR_EL1, then restores SCTLR_EL1. With the MMU off, addresses are
    // physical, equal to virtual here (identity map), and this code does not touch the
    // stack or anything else in between.
    unsafe {
        asm!(
            "dsb sy",
            "msr sctlr_el1, {off}",
            "isb",
            "ldr {a}, [{first}]",
            "ldr {b}, [{last}]",
            "mrs {seen}, sctlr_el1",
            "msr sctlr_el1, {on}",
            "isb",
            off = in(reg) sctlr & !(SCTLR_C | SCTLR_M),
            on = in(reg) sctlr,
            first = in(reg) first,
            last = in(reg) last,
            a = out(reg) a,
            b = out(reg) b,
            seen = out(reg) seen,
            options(nostack),
        )
    };
    let want_a = DATA[0].load(Ordering::Relaxed);
    let want_b = DATA[WORDS - 1].load(Ordering::Relaxed);
    ctx.report.check(
        seen == sctlr & !(SCTLR_C | SCTLR_M),
        "SCTLR_EL1 with MMU and caches off reads back as written",
        format_args!("wrote {:#x}, read {seen:#x}", sctlr & !(SCTLR_C | SCTLR_M)),
    );
    ctx.report.check(
        a == want_a && b == want_b,
        "data written with caches on reads back with MMU and caches off",
        format_args!("read {a:#x}, {b:#x}; wrote {want_a:#x}, {want_b:#x}"),
    );
    let (now, _) = probe_read!("sctlr_el1");
    ctx.report.check(
        now == sctlr,
        "caches and MMU back on",
        format_args!("SCTLR_EL1 {now:#x}, expected {sctlr:#x}"),
    );
}
