//! `exit`: `HYP_DOMAIN_EXIT(7)` at once, for the harness to check the exit status.

use crate::{Ctx, power};

pub fn run(ctx: &mut Ctx<'_>) {
    let result = power::hyp_domain_exit(7);
    ctx.report
        .fail("HYP_DOMAIN_EXIT(7) stops the guest", result);
}
