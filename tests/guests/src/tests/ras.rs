//! `ras`: the RAS error-record registers are the hypervisor's (HCR_EL2.TERR): a guest
//! reads them as zero without a fault, and its writes are ignored. ERRIDR_EL1 must read 0
//! (no records). With no records the architecture lets ERRSELR_EL1 and the ERX* registers
//! be UNDEFINED instead (QEMU's `max` does that, before any trap to EL2), so for those an
//! UNDEF is accepted too; what must never happen is a guest seeing a non-zero record.

use super::hostile::ras_version;
use super::probe::{probe_read, probe_write};
use crate::Ctx;

pub fn run(ctx: &mut Ctx<'_>) {
    let ras = ras_version();
    if ras == 0 {
        ctx.report
            .skip("no RAS extension (ID_AA64PFR0_EL1.RAS is 0): nothing to check");
        return;
    }
    let r = &mut ctx.report;
    let (idr, fault) = probe_read!("s3_0_c5_c3_0");
    r.check(
        fault.is_none() && idr == 0,
        "reading ERRIDR_EL1 (S3_0_C5_C3_0) gives 0 (no error records) without a fault",
        format_args!("{} (read {idr:#x})", super::FaultDetail(fault)),
    );
    let undef_ok = |fault: Option<crate::exception::Fault>| {
        fault.is_some_and(|f| f.ec() == crate::exception::EC_UNKNOWN)
    };
    let reads = [
        ("ERRSELR_EL1 (S3_0_C5_C3_1)", probe_read!("s3_0_c5_c3_1")),
        ("ERXFR_EL1 (S3_0_C5_C4_0)", probe_read!("s3_0_c5_c4_0")),
        ("ERXCTLR_EL1 (S3_0_C5_C4_1)", probe_read!("s3_0_c5_c4_1")),
        ("ERXSTATUS_EL1 (S3_0_C5_C4_2)", probe_read!("s3_0_c5_c4_2")),
        ("ERXADDR_EL1 (S3_0_C5_C4_3)", probe_read!("s3_0_c5_c4_3")),
        ("ERXMISC0_EL1 (S3_0_C5_C5_0)", probe_read!("s3_0_c5_c5_0")),
        ("ERXMISC1_EL1 (S3_0_C5_C5_1)", probe_read!("s3_0_c5_c5_1")),
    ];
    for (name, (value, fault)) in reads {
        r.check(
            (fault.is_none() && value == 0) || undef_ok(fault),
            format_args!("reading {name} gives 0 (or is UNDEFINED: no records)"),
            format_args!("{} (read {value:#x})", super::FaultDetail(fault)),
        );
    }
    let writes = [
        probe_write!("s3_0_c5_c3_1", 1),        // ERRSELR_EL1
        probe_write!("s3_0_c5_c4_1", u64::MAX), // ERXCTLR_EL1
        probe_write!("s3_0_c5_c4_2", u64::MAX), // ERXSTATUS_EL1 (write 1 to clear)
        probe_write!("s3_0_c5_c4_3", u64::MAX), // ERXADDR_EL1
        probe_write!("s3_0_c5_c5_0", u64::MAX), // ERXMISC0_EL1
    ];
    let after = [
        probe_read!("s3_0_c5_c3_1"),
        probe_read!("s3_0_c5_c4_1"),
        probe_read!("s3_0_c5_c4_3"),
        probe_read!("s3_0_c5_c5_0"),
    ];
    let fault = writes
        .iter()
        .flatten()
        .find(|&&f| !undef_ok(Some(f)))
        .copied();
    let after_ok = after
        .iter()
        .all(|&(v, f)| (f.is_none() && v == 0) || undef_ok(f));
    let (disr, disr_fault) = probe_read!("s3_0_c12_c1_1");
    r.check(
        disr_fault.is_none() && disr == 0,
        "DISR_EL1 (S3_0_C12_C1_1) reads 0: no deferred SError",
        format_args!("{} (read {disr:#x})", super::FaultDetail(disr_fault)),
    );
    r.check(
        fault.is_none() && after_ok,
        "writes of all ones to ERRSELR/ERXCTLR/ERXSTATUS/ERXADDR/ERXMISC0 are ignored \
         (read 0 after, or UNDEFINED: no records)",
        format_args!(
            "{}; read back {:#x?}",
            super::FaultDetail(fault),
            after.map(|(v, _)| v)
        ),
    );
}
