//! `semihosting`: a guest's semihosting calls (`HLT #0xf000`) must never reach the host.
//! It opens, writes and closes a file on the host, asks the host to run a command and to
//! exit QEMU with status 42. With semihosting off, `HLT` is UNDEFINED at EL1 and each call
//! is the guest's own UNDEF (EC 0x00), which it takes and carries on from. The boot case
//! checks that the file does not exist afterwards and that QEMU's exit status is the
//! guest's own, not 42.

use super::FaultDetail;
use super::hostile::semihosting_call;
use crate::exception::EC_UNKNOWN;
use crate::{Ctx, println};

const SYS_OPEN: u64 = 0x01;
const SYS_CLOSE: u64 = 0x02;
const SYS_WRITE: u64 = 0x05;
const SYS_SYSTEM: u64 = 0x12;
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// `ADP_Stopped_ApplicationExit`.
const APPLICATION_EXIT: u64 = 0x2_0026;
/// SYS_OPEN mode "w".
const MODE_W: u64 = 4;

const PATH: &[u8] = b"/tmp/rust-hyp-semihosting-probe\0";
const COMMAND: &[u8] = b"touch /tmp/rust-hyp-semihosting-probe";
const TEXT: &[u8] = b"a guest reached the host through semihosting\n";

pub fn run(ctx: &mut Ctx<'_>) {
    let mut call = |name: &str, op: u64, block: &[u64]| -> u64 {
        let (x0, fault) = semihosting_call(op, block.as_ptr() as u64);
        ctx.report.check(
            fault.is_some_and(|f| f.ec() == EC_UNKNOWN),
            format_args!("{name} (HLT #0xf000) is UNDEFINED at EL1; the guest carries on"),
            format_args!("{} (x0 {x0:#x})", FaultDetail(fault)),
        );
        x0
    };
    let handle = call(
        "SYS_OPEN(\"/tmp/rust-hyp-semihosting-probe\", \"w\")",
        SYS_OPEN,
        &[PATH.as_ptr() as u64, MODE_W, (PATH.len() - 1) as u64],
    );
    // With semihosting off `x0` still holds the operation number; use what came back as
    // the handle, as a guest that believed the call would.
    call(
        "SYS_WRITE",
        SYS_WRITE,
        &[handle, TEXT.as_ptr() as u64, TEXT.len() as u64],
    );
    call("SYS_CLOSE", SYS_CLOSE, &[handle]);
    call(
        "SYS_SYSTEM(\"touch /tmp/rust-hyp-semihosting-probe\")",
        SYS_SYSTEM,
        &[COMMAND.as_ptr() as u64, COMMAND.len() as u64],
    );
    call(
        "SYS_EXIT_EXTENDED(42)",
        SYS_EXIT_EXTENDED,
        &[APPLICATION_EXIT, 42],
    );
    println!("guest: semihosting: still running after SYS_EXIT_EXTENDED(42)");
}
