//! `progress`: the well-behaved domain beside a hostile one. For [`ROUNDS`] rounds of
//! [`ROUND_MS`] each it fills a buffer with a round-dependent pattern, reads it back and
//! makes an SMCCC call, and prints one fixed-text line per round, so the boot case can see
//! that it kept running and that its output arrived whole.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::{Ctx, power, smccc, time};

const ROUNDS: u64 = 30;
const ROUND_MS: u64 = 100;
const WORDS: usize = 4096;

/// The buffer the pattern goes through (atomics: plain memory the compiler must not
/// optimise away).
static BUFFER: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

pub fn run(ctx: &mut Ctx<'_>) {
    let conduit = power::conduit();
    let start = time::now();
    let mut slowest = 0;
    for round in 1..=ROUNDS {
        let round_start = time::now();
        let seed = round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for (i, word) in BUFFER.iter().enumerate() {
            word.store(seed ^ i as u64, Ordering::Relaxed);
        }
        let bad = BUFFER
            .iter()
            .enumerate()
            .filter(|(i, word)| word.load(Ordering::Relaxed) != seed ^ *i as u64)
            .count();
        let version = smccc::call(conduit, smccc::SMCCC_VERSION, [0; 3]);
        ctx.report.check(
            bad == 0 && version.fault.is_none() && version.ret() >= 0x1_0001,
            format_args!(
                "round {round:02} of {ROUNDS}: memory pattern intact, SMCCC answered; \
                 the quick brown fox jumps over the lazy dog 0123456789"
            ),
            format_args!("{bad} words wrong, SMCCC_VERSION {version}"),
        );
        time::wait_until(ROUND_MS, || {
            time::ticks_to_ms(time::now() - round_start) >= ROUND_MS
        });
        slowest = slowest.max(time::ticks_to_ms(time::now() - round_start));
    }
    crate::println!(
        "guest: progress: {ROUNDS} rounds in {} ms, slowest {slowest} ms",
        time::ticks_to_ms(time::now() - start)
    );
}
