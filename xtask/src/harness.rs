//! The boot-test harness: each case in a fresh QEMU, watched line by line with a timeout.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cases::Case;
use crate::matcher::{Line, Matcher, Pattern, clean_line};
use crate::qemu::{Machine, Qemu};
use crate::shell;
use crate::{exit_line, fill, image, linux};

/// Output lines shown when a case fails.
const TAIL_LINES: usize = 40;

/// Kills and reaps the child process when dropped, whatever path leaves the case.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What became of one case.
#[derive(Debug)]
pub struct Outcome {
    /// `Err` holds why the case failed.
    pub result: Result<(), String>,
    /// Wall time from start to verdict.
    pub elapsed: Duration,
    /// Every output line, `\r` removed.
    pub log: Vec<String>,
}

/// Runs `cmd` (stdin null, stdout and stderr merged) and judges its output against `case`.
/// The process is always killed and reaped before this returns. With `host_file_absent`,
/// that path is deleted first and must not exist afterwards.
pub fn run_case(case: &Case, mut cmd: Command) -> Outcome {
    let start = Instant::now();
    let mut log = Vec::new();
    let result = match &case.host_file_absent {
        Some(path) => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "cannot delete {} before the case: {e}",
                path.display()
            )),
        },
        None => Ok(()),
    };
    let mut result = result.and_then(|()| watch(case, &mut cmd, start, &mut log));
    if let Some(path) = &case.host_file_absent
        && std::fs::symlink_metadata(path).is_ok()
    {
        let found = format!(
            "{} exists on the host after the case: the machine reached the host's files",
            path.display()
        );
        result = match result {
            Ok(()) => Err(found),
            Err(reason) => Err(format!("{reason}; and {found}")),
        };
    }
    Outcome {
        result,
        elapsed: start.elapsed(),
        log,
    }
}

/// Where a case is in its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the expected lines.
    Expecting,
    /// All seen, no `exit_code`: watching until the settle window ends.
    Settling { until: Instant },
    /// All seen, `exit_code` set: watching until QEMU exits.
    AwaitingExit,
}

fn watch(
    case: &Case,
    cmd: &mut Command,
    start: Instant,
    log: &mut Vec<String>,
) -> Result<(), String> {
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot clone a pipe: {e}"))?;
    let stdin = if case.input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(stdin).stdout(writer).stderr(writer2);
    let spawned = cmd.spawn();
    // Close our copies of the pipe's write end, so the reader sees EOF when the child exits.
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let child = spawned
        .map_err(|e| format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()))?;
    let mut child = KillOnDrop(child);

    let (tx, rx) = mpsc::channel();
    // Not joined: it ends at EOF, or at its next line once `rx` is gone; a grandchild still
    // holding the pipe must not hold up the harness.
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(clean_line(&buf)).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut pending_input = case.input.clone().map(|(after, text)| {
        (
            Matcher::new(Vec::new(), Vec::new()).with_unordered(after),
            text,
        )
    });
    let mut stdin = child.0.stdin.take();
    let mut matcher = Matcher::new(case.expect.clone(), case.fail.clone())
        .with_unordered(case.expect_any_order.clone());
    let mut exit_status = exit_line::Seen::None;
    let deadline = start + case.timeout;
    // A direct Linux boot has no hypervisor to prefix its lines or print an exit line:
    // each line counts as the `linux` domain's, and QEMU must end by itself.
    let direct = case.linux.as_ref().is_some_and(|l| l.direct);
    let next_phase = |matcher: &Matcher| match (matcher.done(), case.exit_code) {
        (false, _) => Phase::Expecting,
        (true, Some(_)) => Phase::AwaitingExit,
        (true, None) if direct || case.machine_reset => Phase::AwaitingExit,
        (true, None) => Phase::Settling {
            until: Instant::now() + case.settle,
        },
    };
    let mut phase = next_phase(&matcher);
    let mut line_counts = vec![0usize; case.max_lines.len()];
    let verdict = loop {
        let wait_until = match phase {
            Phase::Settling { until } => until,
            Phase::Expecting | Phase::AwaitingExit => deadline,
        };
        match rx.recv_timeout(wait_until.saturating_duration_since(Instant::now())) {
            Ok(raw) => {
                let line = if direct {
                    format!("({}) {raw}", crate::linux::DOMAIN)
                } else {
                    raw.clone()
                };
                if let Some((after, _)) = pending_input.as_mut() {
                    after.feed(&line);
                }
                if pending_input
                    .as_ref()
                    .is_some_and(|(after, _)| after.done())
                {
                    let (_, text) = pending_input.take().expect("checked");
                    if let Some(pipe) = stdin.as_mut() {
                        use std::io::Write;
                        if let Err(e) = pipe.write_all(text.as_bytes()).and_then(|()| pipe.flush())
                        {
                            break Err(format!("cannot type on QEMU's console: {e}"));
                        }
                    }
                }
                if let Some(status) = exit_line::parse(&line) {
                    exit_status.add(status);
                    if let exit_line::Seen::Conflict(a, b) = exit_status {
                        log.push(raw);
                        break Err(format!(
                            "the hypervisor's exit line appeared with statuses {a} and {b}"
                        ));
                    }
                }
                let bad = matcher.feed(&line).map(|p| p.as_str().to_owned());
                let too_many = count_limited(&case.max_lines, &mut line_counts, &line);
                log.push(raw);
                if let Some((pattern, max)) = too_many {
                    break Err(format!("more than {max} lines matched `{pattern}`"));
                }
                if let Some(bad) = bad {
                    let when = match phase {
                        Phase::Settling { .. } => " after the last expected line",
                        _ => "",
                    };
                    break Err(format!("output matched fail pattern `{bad}`{when}"));
                }
                if phase == Phase::Expecting {
                    phase = next_phase(&matcher);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => match phase {
                Phase::Settling { .. } => break Ok(()),
                _ => break Err(timeout_reason(case, &matcher)),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let wait_until = deadline.max(wait_until);
                break after_output_closed(
                    case,
                    &matcher,
                    phase,
                    exit_status,
                    &mut child.0,
                    wait_until,
                );
            }
        }
    };
    drop(stdin);
    drop(child);
    verdict
}

/// Counts `line` against each `max_lines` pattern; returns the first limit it exceeds.
fn count_limited<'a>(
    limits: &'a [(Pattern, usize)],
    counts: &mut [usize],
    line: &str,
) -> Option<(&'a str, usize)> {
    let line = Line::classify(line);
    for ((pattern, max), count) in limits.iter().zip(counts.iter_mut()) {
        if pattern.matches(line) {
            *count += 1;
            if *count > *max {
                return Some((pattern.as_str(), *max));
            }
        }
    }
    None
}

fn timeout_reason(case: &Case, matcher: &Matcher) -> String {
    let secs = case.timeout.as_secs();
    match (matcher.waiting_for(), case.exit_code) {
        (Some(p), _) => format!("timed out after {secs}s waiting for `{p}`"),
        (None, Some(code)) => format!(
            "timed out after {secs}s waiting for QEMU to exit after `{}{code}`",
            exit_line::PREFIX
        ),
        (None, None) if case.machine_reset => {
            format!("timed out after {secs}s waiting for QEMU to exit after the machine reset")
        }
        (None, None) if case.linux.as_ref().is_some_and(|l| l.direct) => {
            format!("timed out after {secs}s waiting for QEMU to exit (the script's `poweroff -f`)")
        }
        (None, None) => format!("timed out after {secs}s"),
    }
}

/// QEMU closed its output: wait for it to exit and judge its status and the hypervisor's
/// exit line.
fn after_output_closed(
    case: &Case,
    matcher: &Matcher,
    phase: Phase,
    exit_status: exit_line::Seen,
    child: &mut Child,
    deadline: Instant,
) -> Result<(), String> {
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => return Err(timeout_reason(case, matcher)),
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for QEMU: {e}")),
        }
    };
    let exit_status = match exit_status {
        exit_line::Seen::Status(n) => Some(n),
        // A conflict ends the case as soon as it is seen.
        exit_line::Seen::None | exit_line::Seen::Conflict(..) => None,
    };
    let hyp = match exit_status {
        Some(n) => format!("hypervisor exit status {n}"),
        None => "no hypervisor exit line".to_owned(),
    };
    match phase {
        Phase::Expecting => {
            let missing = matcher
                .waiting_for()
                .map_or_else(String::new, |p| format!(" before `{p}` appeared"));
            Err(format!(
                "QEMU exited ({}; {hyp}){missing}",
                describe(status)
            ))
        }
        Phase::Settling { .. } => Err(format!(
            "QEMU exited ({}; {hyp}) within {:.1}s of the last expected line; a case without \
             exit_code must keep running (give it exit_code if the machine should power off)",
            describe(status),
            case.settle.as_secs_f64()
        )),
        Phase::AwaitingExit if case.machine_reset => match (status.success(), exit_status) {
            (true, None) => Ok(()),
            (true, Some(n)) => Err(format!(
                "the machine powered off (`{}{n}`) instead of resetting",
                exit_line::PREFIX
            )),
            (false, _) => Err(format!(
                "QEMU failed ({}) after the machine reset; with -no-reboot it exits 0",
                describe(status)
            )),
        },
        Phase::AwaitingExit if case.exit_code.is_none() => {
            // A direct Linux boot: powered off by its script.
            if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "QEMU failed ({}) after the last expected line; the script's \
                     `poweroff -f` ends it with status 0",
                    describe(status)
                ))
            }
        }
        Phase::AwaitingExit => {
            let code = case.exit_code.expect("awaiting an exit status");
            if !status.success() {
                return Err(format!(
                    "QEMU itself failed ({}; {hyp}): it must exit 0, the status travels on \
                     the `{}N` line",
                    describe(status),
                    exit_line::PREFIX
                ));
            }
            match exit_status {
                None => Err(format!(
                    "QEMU exited (status 0) without the hypervisor's `{}N` line, expected \
                     exit status {code}",
                    exit_line::PREFIX
                )),
                Some(n) if n != code => Err(format!("hypervisor exit status {n}, expected {code}")),
                Some(_) => Ok(()),
            }
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("status {code}"),
        None => status.to_string(),
    }
}

/// Where the harness writes its files.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// One `<case>.log` per case.
    pub logs: PathBuf,
    /// Patched images for cases with `image_text_offset`.
    pub images: PathBuf,
    /// Files for `fill_ram`, shared between cases and runs.
    pub fills: PathBuf,
}

/// Runs `cases` against `image`, `jobs` at a time; prints a line per case and returns
/// `(passed, failed, skipped)`. Cases with `skip` set are not run.
pub fn run_all(
    cases: &[Case],
    qemu: &Qemu,
    image: &Path,
    dirs: &Dirs,
    jobs: usize,
) -> Result<(usize, usize, usize)> {
    std::fs::create_dir_all(&dirs.logs)
        .with_context(|| format!("cannot create {}", dirs.logs.display()))?;
    std::fs::create_dir_all(&dirs.images)
        .with_context(|| format!("cannot create {}", dirs.images.display()))?;
    let (skipped, cases): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|c| c.skip.is_some());
    for case in &skipped {
        println!(
            "SKIP {} ({})",
            case.name,
            case.skip.as_deref().unwrap_or_default()
        );
    }
    let workers = jobs.clamp(1, cases.len().max(1));
    println!("running {} boot case(s), {workers} at a time", cases.len());

    let next = AtomicUsize::new(0);
    let failed_names = Mutex::new(Vec::new());
    let passed = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let ok = catch_unwind(AssertUnwindSafe(|| run_one(case, qemu, image, dirs)))
                        .unwrap_or_else(|_| {
                            println!("FAIL {} (the harness panicked)", case.name);
                            false
                        });
                    if ok {
                        passed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed_names
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(case.name.clone());
                    }
                }
            });
        }
    });
    let mut failed = failed_names.into_inner().unwrap_or_else(|e| e.into_inner());
    if !failed.is_empty() {
        failed.sort();
        println!("failed: {}", failed.join(" "));
    }
    Ok((passed.into_inner(), failed.len(), skipped.len()))
}

/// Runs one case, prints its verdict, writes its log; returns whether it passed.
fn run_one(case: &Case, qemu: &Qemu, image: &Path, dirs: &Dirs) -> bool {
    let log_path = dirs.logs.join(format!("{}.log", case.name));
    let image = case.direct_kernel.as_deref().unwrap_or(image);
    let prepared = kernel_for(case, image, &dirs.images)
        .and_then(|kernel| Ok((fill_loaders(case, &kernel, &dirs.fills)?, kernel)));
    let (loaders, kernel) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            println!("FAIL {} ({e:#})", case.name);
            return false;
        }
    };
    let machine = Machine {
        gic: case.gic,
        cpus: case.cpus,
        mem: case.mem,
        cpu: case.cpu.clone(),
        virtualization: case.virtualization,
        append: case.append.clone(),
        initrd: case.initrd.clone(),
        raspi4b_dtb: case.raspi4b_dtb.clone(),
        serial: case.serial,
        loaders,
        disk: case.disk.clone(),
        ..Machine::new(kernel)
    };
    let cmd = qemu.command(&machine);
    let cmdline = shell::display(&cmd);
    println!("$ {cmdline}");
    let mut outcome = run_case(case, cmd);
    // A disk case's image is read back once QEMU is gone.
    if let Some(disk) = &case.disk
        && outcome.result.is_ok()
    {
        match linux::disk::check(disk) {
            Ok(found) => outcome
                .log
                .push(format!("xtask: disk {}: {found}", disk.display())),
            Err(e) => outcome.result = Err(format!("disk {}: {e:#}", disk.display())),
        }
    }
    let secs = outcome.elapsed.as_secs_f64();

    let mut text = format!("$ {cmdline}\n");
    for line in &outcome.log {
        text += line;
        text.push('\n');
    }
    let _ = match &outcome.result {
        Ok(()) => writeln!(text, "--- PASS ({secs:.1}s)"),
        Err(reason) => writeln!(text, "--- FAIL ({secs:.1}s): {reason}"),
    };
    let log_note = match std::fs::write(&log_path, text) {
        Ok(()) => format!("full log: {}", log_path.display()),
        Err(e) => format!("cannot write {}: {e}", log_path.display()),
    };

    match &outcome.result {
        Ok(()) => println!("PASS {} ({secs:.1}s)", case.name),
        Err(reason) => {
            let mut report = format!("FAIL {} ({secs:.1}s): {reason}\n", case.name);
            let tail = &outcome.log[outcome.log.len().saturating_sub(TAIL_LINES)..];
            let _ = writeln!(
                report,
                "    --- last {} line(s) of output; {log_note}",
                tail.len()
            );
            for line in tail {
                let _ = writeln!(report, "    | {line}");
            }
            print!("{report}");
        }
    }
    outcome.result.is_ok()
}

/// The `-device loader` files and addresses for a case's `fill_ram`, after checking that
/// QEMU's own files (the image `kernel`, the case's initrd, the device tree) stay clear.
fn fill_loaders(case: &Case, kernel: &Path, fills_dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    if case.fill_ram.is_empty() {
        return Ok(Vec::new());
    }
    let bytes =
        std::fs::read(kernel).with_context(|| format!("cannot read {}", kernel.display()))?;
    let header = image::parse_header(&bytes)?;
    let initrd_len = match &case.initrd {
        Some(p) => Some(
            std::fs::metadata(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .len(),
        ),
        None => None,
    };
    let occupied = fill::virt_occupied(case.mem, &header, bytes.len() as u64, initrd_len);
    fill::check(&case.fill_ram, case.mem, &occupied)?;
    case.fill_ram
        .iter()
        .map(|f| Ok((fill::file(fills_dir, f.size, f.byte)?, f.addr)))
        .collect()
}

/// The image a case boots: `image` itself, or a copy with its `text_offset` patched.
fn kernel_for(case: &Case, image: &Path, images_dir: &Path) -> Result<PathBuf> {
    let Some(offset) = case.image_text_offset else {
        return Ok(image.to_owned());
    };
    let bytes = std::fs::read(image).with_context(|| format!("cannot read {}", image.display()))?;
    let patched = image::with_text_offset(&bytes, offset)?;
    let path = images_dir.join(format!("{}.bin", case.name));
    std::fs::write(&path, patched).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "{}: header text_offset patched to {offset:#x}",
        path.display()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases;

    /// A case whose "QEMU" is `sh -c script`.
    fn sh_case(spec: &str, script: &str) -> Outcome {
        let case = cases::parse(&format!("[[case]]\nname = \"t\"\n{spec}\n"))
            .unwrap()
            .remove(0);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        run_case(&case, cmd)
    }

    #[test]
    fn machine_reset_cases_want_qemu_to_end_without_an_exit_line() {
        let spec = "expect = ['hyp: machine reset']\nmachine_reset = true\ntimeout_secs = 5";
        assert_eq!(
            sh_case(spec, "echo 'hyp: machine reset'; exit 0").result,
            Ok(())
        );
        assert_eq!(
            sh_case(
                spec,
                "echo 'hyp: machine reset'; echo 'hyp: power off, exit status 0'"
            )
            .result,
            Err(
                "the machine powered off (`hyp: power off, exit status 0`) instead of resetting"
                    .into()
            )
        );
        assert!(
            sh_case(spec, "echo 'hyp: machine reset'; exit 3")
                .result
                .unwrap_err()
                .starts_with("QEMU failed")
        );
        assert!(
            sh_case(spec, "echo 'hyp: machine reset'; exec sleep 30")
                .result
                .unwrap_err()
                .contains("waiting for QEMU to exit after the machine reset")
        );
        assert!(
            cases::parse(
                "[[case]]\nname = \"t\"\nexpect = ['x']\nmachine_reset = true\nexit_code = 0\n"
            )
            .is_err()
        );
    }

    #[test]
    fn max_lines_bounds_the_lines_a_pattern_may_match() {
        let spec =
            "expect = ['end']\nsettle_secs = 0.1\nmax_lines = [['noise', 2], ['(g) quiet', 0]]";
        let o = sh_case(
            spec,
            "echo noise; echo noise; echo '(g) noise'; echo end; exec sleep 30",
        );
        assert_eq!(
            o.result,
            Ok(()),
            "guest lines do not count for hypervisor patterns"
        );
        let o = sh_case(spec, "echo noise; echo noise; echo noise; echo end");
        assert_eq!(o.result, Err("more than 2 lines matched `noise`".into()));
        let o = sh_case(spec, "echo '(g) quiet'; echo end");
        assert_eq!(
            o.result,
            Err("more than 0 lines matched `(g) quiet`".into())
        );
    }

    #[test]
    fn passes_after_the_settle_window_and_kills_the_process() {
        let o = sh_case(
            "expect = ['hello', 'done: 4']\nsettle_secs = 0.5",
            "printf 'hello\\r\\ndone: 4\\r\\n'; exec sleep 30",
        );
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.log, ["hello", "done: 4"]);
        assert!(
            o.elapsed >= Duration::from_millis(500),
            "watched the settle window"
        );
        assert!(o.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn a_panic_in_the_settle_window_fails() {
        let o = sh_case(
            "expect = ['boot complete']\nsettle_secs = 5",
            "echo 'boot complete'; sleep 0.2; \
             echo '[ERROR] cpu0: hypervisor panicked at hyp/src/boot.rs:1:1: x'; exec sleep 30",
        );
        let err = o.result.unwrap_err();
        assert!(
            err.contains("`.*panicked` after the last expected line"),
            "{err}"
        );
        assert!(o.elapsed < Duration::from_secs(4), "failed at once");
    }

    #[test]
    fn qemu_exiting_in_the_settle_window_fails() {
        let o = sh_case(
            "expect = ['boot complete']\nsettle_secs = 5",
            "echo 'boot complete'; echo 'hyp: power off, exit status 0'; exit 0",
        );
        let err = o.result.unwrap_err();
        assert!(err.contains("QEMU exited (status 0; hypervisor exit status 0) within 5.0s"));
    }

    #[test]
    fn guests_cannot_meet_hypervisor_expectations() {
        let o = sh_case(
            "expect = ['{info}boot complete']\ntimeout_secs = 1",
            "echo '(evil) [INFO ] cpu0: boot complete'; echo '(evil) boot complete'; \
             echo 'x [INFO ] cpu0: boot complete'; exec sleep 30",
        );
        let err = o.result.unwrap_err();
        assert!(err.contains("timed out after 1s waiting for `"), "{err}");
        // Nor fail a case through a hypervisor fail pattern.
        let o = sh_case(
            "expect = ['ok']\nfail = ['\\[ERROR\\]']\nsettle_secs = 0.2",
            "echo '(g) [ERROR] cpu0: fake'; echo '(g) panicked at x'; echo ok; exec sleep 30",
        );
        assert_eq!(o.result, Ok(()));
    }

    #[test]
    fn domain_fail_patterns() {
        let o = sh_case(
            "expect = ['(good) done']\nfail = ['(toomany)']\nsettle_secs = 1",
            "echo '(good) done'; sleep 0.1; echo '(toomany) '; exec sleep 30",
        );
        assert!(o.result.unwrap_err().contains("`(toomany)`"));
    }

    #[test]
    fn checks_the_hypervisor_exit_status() {
        let exit = |n: u32| format!("echo 'hyp: power off, exit status {n}'");
        let o = sh_case(
            "expect = ['bye']\nexit_code = 0",
            &format!("echo bye; {}; exit 0", exit(0)),
        );
        assert_eq!(o.result, Ok(()));
        let o = sh_case(
            "exit_code = 7",
            &format!("{}; printf 'partial line'; exit 0", exit(7)),
        );
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.log, ["hyp: power off, exit status 7", "partial line"]);
        let o = sh_case(
            "expect = ['bye']\nexit_code = 0",
            &format!("echo bye; {}; exit 0", exit(1)),
        );
        assert_eq!(
            o.result.unwrap_err(),
            "hypervisor exit status 1, expected 0"
        );
        // QEMU's own status is not the hypervisor's.
        let o = sh_case("expect = ['bye']\nexit_code = 3", "echo bye; exit 3");
        assert!(
            o.result
                .unwrap_err()
                .contains("QEMU itself failed (status 3; no hypervisor exit line)")
        );
        let o = sh_case("exit_code = 0", &format!("{}; exit 1", exit(0)));
        assert!(o.result.unwrap_err().contains("QEMU itself failed"));
        let o = sh_case("exit_code = 0", "echo bye; exit 0");
        assert!(o.result.unwrap_err().contains("without the hypervisor's"));
        // A guest cannot forge the line.
        let o = sh_case(
            "exit_code = 0",
            "echo '(g) hyp: power off, exit status 0'; exit 0",
        );
        assert!(o.result.unwrap_err().contains("without the hypervisor's"));
        let o = sh_case(
            "exit_code = 42",
            &format!(
                "{}; echo '(g) hyp: power off, exit status 42'; exit 0",
                exit(0)
            ),
        );
        assert_eq!(
            o.result.unwrap_err(),
            "hypervisor exit status 0, expected 42"
        );
        // Two different statuses: neither is trusted.
        let o = sh_case(
            "exit_code = 0",
            &format!("{}; {}; exit 0", exit(1), exit(0)),
        );
        assert_eq!(
            o.result.unwrap_err(),
            "the hypervisor's exit line appeared with statuses 1 and 0"
        );
        // Expectations still come first.
        let o = sh_case("expect = ['bye']", "echo hi; exit 0");
        assert!(o.result.unwrap_err().contains("before `bye` appeared"));
        let o = sh_case(
            "expect = ['bye']\nexit_code = 0\ntimeout_secs = 1",
            "echo bye; exec sleep 30",
        );
        assert!(o.result.unwrap_err().contains("waiting for QEMU to exit"));
    }

    #[test]
    fn host_file_absent() {
        let path = std::env::temp_dir().join(format!("xtask-probe-{}", std::process::id()));
        std::fs::write(&path, "left over").unwrap();
        let spec = format!(
            "exit_code = 0\nhost_file_absent = {:?}",
            path.to_str().unwrap()
        );
        let ok = "echo 'hyp: power off, exit status 0'; exit 0";
        let o = sh_case(&spec, ok);
        assert_eq!(o.result, Ok(()), "deleted before the case");
        assert!(!path.exists());
        let script = format!("echo made > {}; {ok}", path.display());
        let o = sh_case(&spec, &script);
        let err = o.result.unwrap_err();
        assert!(err.contains("exists on the host after the case"), "{err}");
        let o = sh_case(&spec.replace("exit_code = 0", "exit_code = 5"), &script);
        let err = o.result.unwrap_err();
        assert!(err.contains("expected 5; and "), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn direct_linux_lines_are_the_linux_domains_and_qemu_must_power_off() {
        let spec = "linux = { script = 't.sh', direct = true }\n\
                    expect = ['(linux) nproc: 2', '(linux) PASS timer']\n\
                    fail = ['(linux) FAIL']\ntimeout_secs = 5";
        let o = sh_case(spec, "echo 'nproc: 2'; echo 'PASS timer'; exit 0");
        assert_eq!(o.result, Ok(()));
        assert_eq!(
            o.log,
            ["nproc: 2", "PASS timer"],
            "the log keeps the raw lines"
        );
        // Hypervisor patterns cannot match a direct boot's lines.
        let o = sh_case(
            "linux = { script = 't.sh', direct = true }\nexpect = ['nproc']\ntimeout_secs = 1",
            "echo nproc; exit 0",
        );
        assert!(o.result.unwrap_err().contains("before `nproc` appeared"));
        let o = sh_case(spec, "echo 'nproc: 2'; echo 'FAIL timer'; exit 0");
        assert!(o.result.unwrap_err().contains("`(linux) FAIL`"));
        let o = sh_case(spec, "echo 'Kernel panic - not syncing: x'; exec sleep 30");
        assert!(o.result.unwrap_err().contains("Kernel panic"));
        // Everything seen, but QEMU does not power off, or fails.
        let o = sh_case(spec, "echo 'nproc: 2'; echo 'PASS timer'; exec sleep 30");
        assert!(o.result.unwrap_err().contains("waiting for QEMU to exit"));
        let o = sh_case(spec, "echo 'nproc: 2'; echo 'PASS timer'; exit 1");
        assert!(o.result.unwrap_err().contains("QEMU failed (status 1)"));
    }

    #[test]
    fn skipped_cases_are_counted_not_run() {
        let cases =
            cases::parse("[[case]]\nname = \"s\"\nexpect = ['x']\nskip = 'waits for the vGIC'\n")
                .unwrap();
        let dir = crate::linux::deb::tests::temp_dir("skip");
        let dirs = Dirs {
            logs: dir.join("logs"),
            images: dir.join("images"),
            fills: dir.join("fills"),
        };
        let qemu = Qemu::find(Path::new("/")).ok();
        if let Some(qemu) = qemu {
            let counts = run_all(&cases, &qemu, Path::new("/nonexistent"), &dirs, 2).unwrap();
            assert_eq!(counts, (0, 0, 1));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_a_missing_program() {
        let case = cases::parse("[[case]]\nname = \"t\"\nexpect = ['x']\n")
            .unwrap()
            .remove(0);
        let o = run_case(&case, Command::new("/nonexistent/qemu"));
        assert!(
            o.result
                .unwrap_err()
                .contains("cannot start /nonexistent/qemu")
        );
    }
}
