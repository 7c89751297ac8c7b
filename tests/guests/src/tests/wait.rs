//! `wait`: keeps the domain alive for `wait-ms=N` milliseconds (default 1000), so that a
//! case can watch what other domains do meanwhile.

use crate::{Ctx, time};

pub fn run(ctx: &mut Ctx<'_>) {
    let ms = ctx.args.wait_ms.unwrap_or(1000);
    let start = time::now();
    time::wait_until(ms, || false);
    let waited = time::ticks_to_ms(time::now() - start);
    ctx.report.check(
        waited >= ms,
        format_args!("waited {ms} ms"),
        format_args!("only {waited} ms passed"),
    );
}
