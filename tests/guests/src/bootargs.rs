//! The guest's command line (`/chosen/bootargs`): space-separated `key=value` words.

/// Most `test=` words kept.
pub const MAX_TESTS: usize = 16;

/// What the bootargs ask for.
pub struct BootArgs<'a> {
    /// `name=...`: printed in the start line. Default "guest".
    pub name: &'a str,
    /// `test=NAME` words, in order (`all` is expanded by the runner).
    pub tests: [&'a str; MAX_TESTS],
    /// Number of `test=` words kept in `tests`.
    pub test_count: usize,
    /// `exit=status`: power off through `HYP_DOMAIN_EXIT(min(fail, 255))`.
    pub exit_status: bool,
    /// `magic=0x...`: this domain's magic for the `isolation` test.
    pub magic: Option<u64>,
    /// `peer-magic=0x...`: the other domain's magic for the `isolation` test.
    pub peer_magic: Option<u64>,
    /// `peek=0x...`: the address the `peek` test reads (another domain's memory).
    pub peek: Option<u64>,
    /// `echo=TEXT`: the line the `echo` test expects to be typed on its console.
    pub echo: Option<&'a str>,
    /// `expect-conduit=hvc|smc`: the PSCI conduit the `conduit` test expects the DT to name.
    pub expect_conduit: Option<&'a str>,
    /// `sync=console`: `isolation` waits for a line `go` on its console after marking its
    /// RAM, before it looks for the peer's magic (the harness types it once both are ready).
    pub sync_console: bool,
    /// `wait-ms=N`: how long the `wait` test waits.
    pub wait_ms: Option<u64>,
    /// `skip=CHECK` words (e.g. `skip=uart-irq`): checks a test leaves out, with a SKIP line.
    pub skips: [&'a str; 4],
    /// Number of entries in `skips`.
    pub skip_count: usize,
    /// `flood-ms=N`: how long the `sgi-flood` and `irq-masked-spin` tests run.
    pub flood_ms: Option<u64>,
    /// `switch-peers=N`: how many other vCPUs run `bench-switch` on this vCPU's physical
    /// CPU, taking turns with it (0, the default: it runs alone).
    pub switch_peers: u64,
    /// Words that were not understood (the first few), reported once.
    pub unknown: [&'a str; 4],
    /// Number of entries in `unknown`.
    pub unknown_count: usize,
}

/// Reads `0x`-prefixed hexadecimal or decimal; `_` separators are allowed.
pub fn parse_u64(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
        any = true;
    }
    any.then_some(value)
}

impl<'a> BootArgs<'a> {
    /// Splits `line` into the options above.
    pub fn parse(line: &'a str) -> Self {
        let mut args = Self {
            name: "guest",
            tests: [""; MAX_TESTS],
            test_count: 0,
            exit_status: false,
            magic: None,
            peer_magic: None,
            peek: None,
            echo: None,
            expect_conduit: None,
            sync_console: false,
            wait_ms: None,
            skips: [""; 4],
            skip_count: 0,
            flood_ms: None,
            switch_peers: 0,
            unknown: [""; 4],
            unknown_count: 0,
        };
        for word in line.split_ascii_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            match key {
                "test" if args.test_count < MAX_TESTS => {
                    args.tests[args.test_count] = value;
                    args.test_count += 1;
                }
                "name" if !value.is_empty() => args.name = value,
                "exit" => args.exit_status = value == "status",
                "magic" => args.magic = parse_u64(value),
                "peer-magic" => args.peer_magic = parse_u64(value),
                "peek" => args.peek = parse_u64(value),
                "echo" => args.echo = Some(value),
                "expect-conduit" => args.expect_conduit = Some(value),
                "sync" if value == "console" => args.sync_console = true,
                "wait-ms" => args.wait_ms = parse_u64(value),
                "flood-ms" => args.flood_ms = parse_u64(value),
                "switch-peers" => args.switch_peers = parse_u64(value).unwrap_or(0),
                "skip" if args.skip_count < args.skips.len() => {
                    args.skips[args.skip_count] = value;
                    args.skip_count += 1;
                }
                _ => {
                    if args.unknown_count < args.unknown.len() {
                        args.unknown[args.unknown_count] = word;
                        args.unknown_count += 1;
                    }
                }
            }
        }
        args
    }

    /// Whether a `skip=check` word names `check`.
    pub fn skips(&self, check: &str) -> bool {
        self.skips[..self.skip_count].contains(&check)
    }

    /// The `test=` words, in order.
    pub fn tests(&self) -> &[&'a str] {
        &self.tests[..self.test_count]
    }
}
