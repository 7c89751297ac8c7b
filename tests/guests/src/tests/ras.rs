//! `ras`: the RAS error-record registers are the hypervisor's (HCR_EL2.TERR): a guest
//! reads them as zero without a fault, and its writes are ignored.

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
    let reads = [
        ("ERRIDR_EL1 (S3_0_C5_C3_0)", probe_read!("s3_0_c5_c3_0")),
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
            fault.is_none() && value == 0,
            format_args!("reading {name} gives 0 without a fault"),
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
        probe_read!("s3_0_c5_c3_1").0,
        probe_read!("s3_0_c5_c4_1").0,
        probe_read!("s3_0_c5_c4_3").0,
        probe_read!("s3_0_c5_c5_0").0,
    ];
    let fault = writes.iter().flatten().next().copied();
    r.check(
        fault.is_none() && after.iter().all(|&v| v == 0),
        "writes of all ones to ERRSELR/ERXCTLR/ERXSTATUS/ERXADDR/ERXMISC0 are ignored (read 0 after)",
        format_args!("{}; read back {after:#x?}", super::FaultDetail(fault)),
    );
}
