//! The hypervisor's exit-status line.
//!
//! QEMU runs without semihosting (a guest at EL1 could otherwise open host files and pick
//! QEMU's exit status with `HLT #0xf000`), so PSCI `SYSTEM_OFF` always ends QEMU with
//! status 0. The status travels on the console instead: the hypervisor's last output before
//! it powers the machine off is a line of its own,
//!
//! ```text
//! hyp: power off, exit status N
//! ```
//!
//! with `N` in decimal (the last domain's status, 1 after a hypervisor panic, 2 when the
//! hypervisor cannot boot). Only a line that is exactly this, from its first column, counts;
//! a guest cannot forge it because every guest line starts with `(name) `. Two such lines
//! with different statuses are a failure, never a choice: if an unlocked hypervisor write
//! (panic, exception dump) ever split a guest's line, the guest's text could land at the
//! start of a line, and neither the first nor the last status could be trusted.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

/// The exit line without its number.
pub const PREFIX: &str = "hyp: power off, exit status ";

/// The status of an exit line (`\r` and the line ending already removed), or `None` if
/// `line` is not exactly one.
pub fn parse(line: &str) -> Option<u32> {
    let digits = line.strip_prefix(PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Longest line kept whole while scanning; longer ones cannot be exit lines.
const MAX_LINE: usize = 256;

/// What the exit lines of a run say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    /// No exit line.
    #[default]
    None,
    /// One status (on one or more lines).
    Status(u32),
    /// Lines with different statuses: the first two.
    Conflict(u32, u32),
}

impl Seen {
    /// Adds one exit line's status.
    pub fn add(&mut self, status: u32) {
        *self = match *self {
            Seen::None => Seen::Status(status),
            Seen::Status(s) if s != status => Seen::Conflict(s, status),
            other => other,
        };
    }
}

/// Finds exit lines in console output that arrives in arbitrary chunks.
#[derive(Debug, Default)]
pub struct Scanner {
    line: Vec<u8>,
    too_long: bool,
    seen: Seen,
}

impl Scanner {
    /// Takes the next chunk of output.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            match byte {
                b'\n' => self.end_line(),
                b'\r' => {}
                _ if self.line.len() < MAX_LINE => self.line.push(byte),
                _ => self.too_long = true,
            }
        }
    }

    fn end_line(&mut self) {
        if !self.too_long
            && let Some(status) = std::str::from_utf8(&self.line).ok().and_then(parse)
        {
            self.seen.add(status);
        }
        self.line.clear();
        self.too_long = false;
    }

    /// Ends the output (a last line without a line ending counts) and returns what the
    /// exit lines said.
    pub fn finish(mut self) -> Seen {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.seen
    }
}

/// Runs `cmd` with its standard output copied to ours as it comes (standard input and
/// error inherited) and returns QEMU's own exit status and the hypervisor's exit line.
pub fn run_and_scan(cmd: &mut Command) -> Result<(ExitStatus, Seen)> {
    let line = crate::shell::display(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut out = child.stdout.take().context("no pipe from QEMU")?;
    let mut scanner = Scanner::default();
    let mut buf = [0u8; 4096];
    let stdout = std::io::stdout();
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).context("cannot read QEMU's output");
            }
        };
        scanner.feed(&buf[..n]);
        let mut lock = stdout.lock();
        // Our own terminal going away must not stop QEMU from being waited for.
        let _ = lock.write_all(&buf[..n]).and_then(|()| lock.flush());
    }
    let status = child.wait().context("cannot wait for QEMU")?;
    Ok((status, scanner.finish()))
}

/// The exit code for `cargo xtask run --exit-with-guest`: the hypervisor's status if QEMU
/// exited normally after printing it, else 1; with a note saying why when it is not the
/// hypervisor's status.
pub fn run_exit_code(qemu: ExitStatus, seen: Seen) -> (u8, Option<String>) {
    let line = match seen {
        Seen::Conflict(a, b) => {
            return (
                1,
                Some(format!(
                    "the hypervisor's exit line appeared with statuses {a} and {b}; exiting with 1"
                )),
            );
        }
        Seen::Status(n) => Some(n),
        Seen::None => None,
    };
    match (qemu.success(), line) {
        (true, Some(n)) => match u8::try_from(n) {
            Ok(code) => (code, None),
            Err(_) => (
                255,
                Some(format!(
                    "the hypervisor's exit status {n} does not fit a process exit code; \
                     exiting with 255"
                )),
            ),
        },
        (true, None) => (
            1,
            Some(format!(
                "QEMU ended without the hypervisor's `{PREFIX}N` line; exiting with 1"
            )),
        ),
        (false, line) => (
            1,
            Some(format!(
                "QEMU itself failed ({qemu}){}; exiting with 1",
                line.map_or(String::new(), |n| format!(
                    " after the hypervisor's exit status {n}"
                ))
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_lines_only() {
        assert_eq!(parse("hyp: power off, exit status 0"), Some(0));
        assert_eq!(parse("hyp: power off, exit status 42"), Some(42));
        assert_eq!(
            parse("hyp: power off, exit status 4294967295"),
            Some(u32::MAX)
        );
        for bad in [
            "hyp: power off, exit status ",
            "hyp: power off, exit status -1",
            "hyp: power off, exit status +1",
            "hyp: power off, exit status 1 ",
            "hyp: power off, exit status 1x",
            "hyp: power off, exit status 0x10",
            "hyp: power off, exit status 4294967296",
            " hyp: power off, exit status 0",
            "(guest) hyp: power off, exit status 0",
            "[INFO ] cpu0: hyp: power off, exit status 0",
            "hyp: power off, exit status  3",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scans_chunks_and_keeps_the_last_status() {
        let mut s = Scanner::default();
        s.feed(b"[INFO ] cpu0: hello\r\nhyp: power off, ex");
        s.feed(b"it status 3\r");
        s.feed(b"\n(g) hyp: power off, exit status 9\n");
        s.feed(b"hyp: power off, exit status 3\n");
        assert_eq!(s.finish(), Seen::Status(3));
        let mut s = Scanner::default();
        s.feed(b"x\nhyp: power off, exit status 7");
        assert_eq!(
            s.finish(),
            Seen::Status(7),
            "a last line without a newline counts"
        );
        let mut s = Scanner::default();
        s.feed(b"hyp: power off, exit status 1\nhyp: power off, exit status 0\n");
        assert_eq!(s.finish(), Seen::Conflict(1, 0));
        let mut s = Scanner::default();
        s.feed(b"(guest) ");
        s.feed(b"hyp: power off, exit status 0\n");
        assert_eq!(
            s.finish(),
            Seen::None,
            "a guest line cannot carry the status"
        );
        let mut long = vec![b'x'; 1000];
        long.extend_from_slice(b"\rhyp: power off, exit status 5\n");
        let mut s = Scanner::default();
        s.feed(&long);
        assert_eq!(s.finish(), Seen::None);
        assert_eq!(Scanner::default().finish(), Seen::None);
    }

    #[cfg(unix)]
    #[test]
    fn run_exit_codes() {
        use std::os::unix::process::ExitStatusExt;
        let ok = ExitStatus::from_raw(0);
        let failed = ExitStatus::from_raw(3 << 8);
        assert_eq!(run_exit_code(ok, Seen::Status(7)), (7, None));
        assert_eq!(run_exit_code(ok, Seen::Status(0)), (0, None));
        assert_eq!(run_exit_code(ok, Seen::None).0, 1);
        assert_eq!(run_exit_code(ok, Seen::Status(256)).0, 255);
        assert_eq!(run_exit_code(ok, Seen::Conflict(1, 0)).0, 1);
        let (code, note) = run_exit_code(failed, Seen::Status(0));
        assert_eq!(code, 1);
        assert!(note.unwrap().contains("QEMU itself failed"));
    }

    #[cfg(unix)]
    #[test]
    fn runs_and_scans_a_program() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo '(g) hyp: power off, exit status 9'; printf 'hyp: power off, exit status 4\\r\\n'",
        ]);
        let (status, line) = run_and_scan(&mut cmd).unwrap();
        assert!(status.success());
        assert_eq!(line, Seen::Status(4));
    }
}
