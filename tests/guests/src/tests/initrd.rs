//! `initrd`: the initrd the configuration named is where `/chosen` says, inside RAM, with
//! the expected contents (tests/boot/domains/initrd.txt starts with [`EXPECTED`]).

use crate::Ctx;

/// The first bytes of the test initrd.
const EXPECTED: &[u8] = b"rust-hyp test initrd\n";

pub fn run(ctx: &mut Ctx<'_>) {
    let chosen = ctx.platform.fdt.find_node("/chosen");
    let read = |name: &str| {
        chosen
            .and_then(|c| c.property(name))
            .and_then(|p| match p.value.len() {
                4 => Some(u64::from(u32::from_be_bytes(p.value.try_into().ok()?))),
                8 => Some(u64::from_be_bytes(p.value.try_into().ok()?)),
                _ => None,
            })
    };
    let (Some(start), Some(end)) = (read("linux,initrd-start"), read("linux,initrd-end")) else {
        ctx.report.fail(
            "/chosen has linux,initrd-start and linux,initrd-end",
            "missing or malformed",
        );
        return;
    };
    ctx.report
        .pass("/chosen has linux,initrd-start and linux,initrd-end");
    let inside = end > start && ctx.platform.is_ram(start) && ctx.platform.is_ram(end - 1);
    if !ctx.report.check(
        inside,
        "the initrd lies in RAM",
        format_args!("{start:#x}..{end:#x}"),
    ) {
        return;
    }
    let len = ((end - start) as usize).min(EXPECTED.len());
    // SAFETY: the range is inside RAM (checked above), which the guest maps as normal memory.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
    ctx.report.check(
        bytes == EXPECTED,
        "the initrd holds the configured file",
        format_args!(
            "starts with {:?}",
            core::str::from_utf8(bytes).unwrap_or("<binary>")
        ),
    );
}
