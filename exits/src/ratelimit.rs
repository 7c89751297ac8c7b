//! A per-domain budget for the console lines a guest can cause.
//!
//! Every message whose cause a guest controls (a fault, a reset, a stopped vCPU) asks the
//! domain's [`ReportBudget`] first. A token bucket allows a burst, then a steady trickle;
//! what is held back is counted and said once printing resumes, so a guest cannot flood
//! the console (on a real UART each line holds the console for milliseconds) but the
//! operator still learns how much happened.

/// Lines a domain may cause in a burst.
pub const BURST: u32 = 16;
/// Seconds per line once the burst is spent.
pub const SECONDS_PER_LINE: u64 = 5;

/// What to do with one guest-caused line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; `suppressed` lines were held back since the last one printed.
    Print {
        /// Lines dropped before this one.
        suppressed: u32,
    },
    /// Drop it. `first` is true for the first line dropped after one printed, so the
    /// caller can say once that further lines are being held back.
    Suppress {
        /// Whether this is the first line dropped in a row.
        first: bool,
    },
}

/// A token bucket measured in counter ticks.
#[derive(Clone, Copy, Debug)]
pub struct ReportBudget {
    tokens: u32,
    /// Counter value at which the next token is due (0: not yet started).
    next_refill: u64,
    suppressed: u32,
}

impl Default for ReportBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl ReportBudget {
    /// A full budget.
    pub const fn new() -> Self {
        ReportBudget {
            tokens: BURST,
            next_refill: 0,
            suppressed: 0,
        }
    }

    /// Decides about one line at counter value `now`, the counter running at
    /// `frequency` Hz.
    pub fn take(&mut self, now: u64, frequency: u64) -> Verdict {
        let period = frequency.max(1).saturating_mul(SECONDS_PER_LINE);
        if self.next_refill == 0 {
            self.next_refill = now.saturating_add(period);
        }
        if now >= self.next_refill {
            let due = (now - self.next_refill) / period + 1;
            self.tokens = (u64::from(self.tokens) + due).min(u64::from(BURST)) as u32;
            self.next_refill = self.next_refill.saturating_add(due.saturating_mul(period));
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            let suppressed = core::mem::take(&mut self.suppressed);
            Verdict::Print { suppressed }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            Verdict::Suppress {
                first: self.suppressed == 1,
            }
        }
    }

    /// Lines held back since the last one printed.
    pub fn suppressed(&self) -> u32 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1000;

    #[test]
    fn a_burst_then_silence_then_a_trickle() {
        let mut budget = ReportBudget::new();
        for _ in 0..BURST {
            assert_eq!(budget.take(5, HZ), Verdict::Print { suppressed: 0 });
        }
        assert_eq!(budget.take(5, HZ), Verdict::Suppress { first: true });
        for _ in 0..1000 {
            assert_eq!(budget.take(6, HZ), Verdict::Suppress { first: false });
        }
        assert_eq!(budget.suppressed(), 1001);
        // One token per SECONDS_PER_LINE: the next line says how many were dropped.
        let later = 5 + SECONDS_PER_LINE * HZ;
        assert_eq!(budget.take(later, HZ), Verdict::Print { suppressed: 1001 });
        assert_eq!(budget.take(later, HZ), Verdict::Suppress { first: true });
    }

    #[test]
    fn a_flood_over_a_long_time_prints_a_bounded_number_of_lines() {
        let mut budget = ReportBudget::new();
        let mut printed = 0;
        // 100 lines a second for 60 seconds.
        for step in 0..6000u64 {
            if let Verdict::Print { .. } = budget.take(1 + step * HZ / 100, HZ) {
                printed += 1;
            }
        }
        let bound = BURST as u64 + 60 / SECONDS_PER_LINE + 1;
        assert!(
            printed as u64 <= bound,
            "{printed} lines printed, bound {bound}"
        );
        assert!(
            printed as u64 >= 60 / SECONDS_PER_LINE,
            "the trickle must go on"
        );
    }

    #[test]
    fn the_budget_refills_to_the_burst_and_no_more() {
        let mut budget = ReportBudget::new();
        for _ in 0..BURST {
            budget.take(1, HZ);
        }
        let much_later = 1 + 1_000_000 * HZ;
        for _ in 0..BURST {
            assert!(matches!(budget.take(much_later, HZ), Verdict::Print { .. }));
        }
        assert_eq!(
            budget.take(much_later, HZ),
            Verdict::Suppress { first: true }
        );
    }

    #[test]
    fn a_zero_frequency_or_a_counter_at_its_end_does_not_panic() {
        let mut budget = ReportBudget::new();
        for now in [0, 1, u64::MAX - 1, u64::MAX] {
            budget.take(now, 0);
            budget.take(now, u64::MAX);
        }
    }
}
