//! The hypervisor's own command line, from `/chosen/bootargs`.
//!
//! Options (space separated, unknown ones are reported and ignored):
//! - `loglvl=LEVEL`: `none`, `error`, `warn`, `info` (default), `debug`, `trace`, `all`.
//! - `selftest=gic-leftover`: before the GIC is quieted at boot, leave an interrupt enabled
//!   and pending on CPU 0 as careless firmware might, so a boot test can check that the
//!   quieting stops it from storming the CPU once a guest runs there.
//! - `selftest=sgi` / `selftest=timer`: once every CPU is online, check the hypervisor's
//!   own interrupts: an SGI from the boot CPU to every CPU, or each CPU's EL2 timer
//!   (`gic::selftest`); `selftest=console-rx`: wait for typed bytes to arrive through
//!   the console UART's receive interrupt.
//! - `selftest=wx` / `selftest=panic`: after boot, provoke a fault on purpose (a write to
//!   the hypervisor's own code, or a panic) so the boot tests can check that the MMU
//!   refuses it and that the exception dump and panic paths work.
//!
//! There is deliberately no option to exit through Arm semihosting: QEMU serves semihosting
//! to every exception level, so any guest could use it to reach the host. The exit status
//! is printed instead (see `psci::power_off_machine`).

use log::LevelFilter;

/// Faults the boot tests ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Store to the hypervisor's own text: must be a permission fault.
    WriteToCode,
    /// Panic: must print the location and exit with status 1.
    Panic,
    /// An interrupt left enabled and pending by "firmware": must be quieted at boot.
    GicLeftover,
    /// An SGI from the boot CPU to every CPU: each must take it.
    Sgi,
    /// Each CPU's EL2 physical timer: each must take its interrupt.
    Timer,
    /// Console input must arrive through the UART's receive interrupt.
    ConsoleRx,
}

/// Parsed options.
#[derive(Clone, Copy, Debug)]
pub struct Cmdline<'a> {
    /// Log level.
    pub log_level: LevelFilter,
    /// A fault to provoke after boot.
    pub selftest: Option<SelfTest>,
    raw: &'a str,
}

impl<'a> Cmdline<'a> {
    /// Parses `text`.
    pub fn parse(text: &'a str) -> Self {
        let mut cmdline = Cmdline {
            log_level: LevelFilter::Info,
            selftest: None,
            raw: text,
        };
        for (key, value) in options(text) {
            match (key, value) {
                ("loglvl", Some(level)) => {
                    if let Some(level) = parse_level(level) {
                        cmdline.log_level = level;
                    }
                }
                ("selftest", Some("wx")) => cmdline.selftest = Some(SelfTest::WriteToCode),
                ("selftest", Some("panic")) => cmdline.selftest = Some(SelfTest::Panic),
                ("selftest", Some("gic-leftover")) => {
                    cmdline.selftest = Some(SelfTest::GicLeftover);
                }
                ("selftest", Some("sgi")) => cmdline.selftest = Some(SelfTest::Sgi),
                ("selftest", Some("timer")) => cmdline.selftest = Some(SelfTest::Timer),
                ("selftest", Some("console-rx")) => cmdline.selftest = Some(SelfTest::ConsoleRx),
                _ => {}
            }
        }
        cmdline
    }

    /// Options that were not understood, for a warning at boot.
    pub fn unknown(&self) -> impl Iterator<Item = &'a str> {
        self.raw
            .split_ascii_whitespace()
            .filter(|word| match word.split_once('=') {
                Some(("loglvl", level)) => parse_level(level).is_none(),
                Some(("selftest", value)) => !matches!(
                    value,
                    "wx" | "panic" | "gic-leftover" | "sgi" | "timer" | "console-rx"
                ),
                _ => true,
            })
    }

    /// The text as given.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

/// `key=value` words as (key, Some(value)); bare words as (word, None).
fn options(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    text.split_ascii_whitespace()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (word, None),
        })
}

fn parse_level(text: &str) -> Option<LevelFilter> {
    Some(match text {
        "none" | "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" | "all" => LevelFilter::Trace,
        _ => return None,
    })
}
