//! `debug`: the OS lock, OS double lock, power-down and trace-filter registers are the
//! hypervisor's (MDCR_EL2.TDOSA, TTRF): a guest's accesses do not UNDEF, OSLAR/OSLSR
//! behave as an OS lock, the other writes are ignored. The breakpoint and watchpoint
//! registers stay the guest's: what it writes reads back.

use super::FaultDetail;
use super::hostile::id_regs;
use super::probe::{probe_read, probe_write};
use crate::Ctx;

/// OSLSR_EL1.OSLK.
const OSLK: u64 = 1 << 1;

pub fn run(ctx: &mut Ctx<'_>) {
    let r = &mut ctx.report;

    let lock = probe_write!("oslar_el1", 1);
    let (locked, read1) = probe_read!("oslsr_el1");
    let unlock = probe_write!("oslar_el1", 0);
    let (unlocked, read2) = probe_read!("oslsr_el1");
    let fault = lock.or(read1).or(unlock).or(read2);
    r.check(
        fault.is_none() && locked & OSLK != 0 && unlocked & OSLK == 0,
        "OSLAR_EL1 = 1 sets OSLSR_EL1.OSLK, OSLAR_EL1 = 0 clears it, no UNDEF",
        format_args!(
            "{}; OSLSR_EL1 {locked:#x} then {unlocked:#x}",
            FaultDetail(fault)
        ),
    );

    let write = probe_write!("osdlr_el1", 1);
    let (value, read) = probe_read!("osdlr_el1");
    let _ = probe_write!("osdlr_el1", 0);
    r.check(
        write.is_none() && read.is_none() && value & 1 == 0,
        "OSDLR_EL1.DLK = 1 (OS double lock) is ignored: reads 0, no UNDEF",
        format_args!(
            "{} / {}; read {value:#x}",
            FaultDetail(write),
            FaultDetail(read)
        ),
    );

    // QEMU's `max` CPU (MIDR implementer 0, "software use") does not implement
    // DBGPRCR_EL1: its accesses are UNDEFINED before any trap to EL2 could apply.
    let (midr, _) = probe_read!("midr_el1");
    let qemu_max = midr >> 24 == 0;
    let write = probe_write!("dbgprcr_el1", 1);
    let (value, read) = probe_read!("dbgprcr_el1");
    let both_undef = [write, read]
        .iter()
        .all(|f| f.is_some_and(|f| f.ec() == crate::exception::EC_UNKNOWN));
    r.check(
        (write.is_none() && read.is_none()) || (qemu_max && both_undef),
        "DBGPRCR_EL1 (core power-down request) is accessible: no UNDEF (QEMU max: not implemented)",
        format_args!(
            "{} / {}; read {value:#x}",
            FaultDetail(write),
            FaultDetail(read)
        ),
    );

    let trace_filter = (id_regs().1 >> 40) & 0xf;
    if trace_filter != 0 {
        let write = probe_write!("s3_0_c1_c2_1", 0b11); // TRFCR_EL1: E0TRE, E1TRE
        let (value, read) = probe_read!("s3_0_c1_c2_1");
        let _ = probe_write!("s3_0_c1_c2_1", 0);
        r.check(
            write.is_none() && read.is_none() && value == 0,
            "TRFCR_EL1 (S3_0_C1_C2_1) write is ignored: reads 0, no UNDEF",
            format_args!(
                "{} / {}; read {value:#x}",
                FaultDetail(write),
                FaultDetail(read)
            ),
        );
    } else {
        r.skip(
            "no self-hosted trace filter (ID_AA64DFR0_EL1.TraceFilt is 0): TRFCR_EL1 not checked",
        );
    }

    // Breakpoint 0 and watchpoint 0, written disabled (E = 0) so they never fire.
    let bvr = 0x4000_1000;
    let bcr = (0xf << 5) | (0b11 << 1); // BAS = 0xf, PMC = EL1 and EL0
    let wvr = 0x4000_2000;
    let wcr = (0xff << 5) | (0b11 << 3) | (0b11 << 1); // BAS, LSC = load and store, PAC
    let writes = [
        probe_write!("dbgbvr0_el1", bvr),
        probe_write!("dbgbcr0_el1", bcr),
        probe_write!("dbgwvr0_el1", wvr),
        probe_write!("dbgwcr0_el1", wcr),
    ];
    let seen = [
        probe_read!("dbgbvr0_el1").0,
        probe_read!("dbgbcr0_el1").0,
        probe_read!("dbgwvr0_el1").0,
        probe_read!("dbgwcr0_el1").0,
    ];
    let fault = writes.iter().flatten().next().copied();
    r.check(
        fault.is_none() && seen == [bvr, bcr, wvr, wcr],
        "DBGBVR0/DBGBCR0/DBGWVR0/DBGWCR0_EL1 read back what was written",
        format_args!("{}; read {seen:#x?}", FaultDetail(fault)),
    );
    // Disabled again (they were written disabled; this is belt and braces).
    let _ = probe_write!("dbgbcr0_el1", 0);
    let _ = probe_write!("dbgwcr0_el1", 0);

    let (mdscr, _) = probe_read!("mdscr_el1");
    let write = probe_write!("mdscr_el1", mdscr | (1 << 15));
    let (seen, _) = probe_read!("mdscr_el1");
    let _ = probe_write!("mdscr_el1", mdscr);
    r.check(
        write.is_none() && seen & (1 << 15) != 0,
        "MDSCR_EL1.MDE reads back what was written",
        format_args!("{}; read {seen:#x}", FaultDetail(write)),
    );
    r.pass("the guest still runs after every debug register access");
}
