//! `conduit`: the PSCI conduit the device tree names is the one the domain's configuration
//! asked for (`expect-conduit=hvc|smc` in the bootargs, written by the same configuration).

use crate::Ctx;

pub fn run(ctx: &mut Ctx<'_>) {
    let named = ctx.platform.conduit.name();
    let Some(expected) = ctx.args.expect_conduit else {
        ctx.report.fail(
            "expect-conduit= names the expected PSCI conduit",
            "no expect-conduit= word",
        );
        return;
    };
    ctx.report.check(
        named == expected,
        format_args!("the device tree names {expected} as the PSCI conduit"),
        format_args!("/psci method is {named}"),
    );
}
