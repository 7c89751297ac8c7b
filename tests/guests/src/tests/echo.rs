//! `echo`: a line typed on the hypervisor's console reaches this guest's UART when it has
//! the input focus. Expects the `echo=TEXT` bootargs word; waits up to 10 s for a line.

use crate::{Ctx, console, println, time};

/// How long to wait for the line.
const TIMEOUT_MS: u64 = 10_000;

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(expected) = ctx.args.echo else {
        ctx.report
            .fail("echo= names the expected line", "no echo= word");
        return;
    };
    println!("guest: echo: waiting for a line on the console");
    let mut line = Line::new();
    let complete = time::wait_until(TIMEOUT_MS, || {
        while let Some(byte) = console::try_read_byte() {
            if byte == b'\n' || byte == b'\r' {
                return !line.is_empty();
            }
            line.push(byte);
        }
        false
    });
    let got = line.as_str();
    ctx.report.check(
        complete && got == expected,
        "the line typed on the console arrives",
        format_args!("got {got:?} (complete: {complete})"),
    );
}

/// A short line of input.
struct Line {
    bytes: [u8; 64],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            bytes: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if self.len < self.bytes.len() {
            self.bytes[self.len] = byte;
            self.len += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("<not UTF-8>")
    }
}
