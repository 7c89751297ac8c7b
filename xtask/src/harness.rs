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
use crate::image;
use crate::matcher::{Matcher, clean_line};
use crate::qemu::{Machine, Qemu};
use crate::shell;

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
/// The process is always killed and reaped before this returns.
pub fn run_case(case: &Case, mut cmd: Command) -> Outcome {
    let start = Instant::now();
    let mut log = Vec::new();
    if let Some(path) = &case.host_file_absent {
        let _ = std::fs::remove_file(path);
    }
    let mut result = watch(case, &mut cmd, start, &mut log);
    if let Some(path) = case.host_file_absent.as_ref().filter(|p| p.exists()) {
        result = result.and(Err(format!(
            "{} exists on the host after the run",
            path.display()
        )));
    }
    Outcome {
        result,
        elapsed: start.elapsed(),
        log,
    }
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
    let deadline = start + case.timeout;
    let mut line_counts = vec![0usize; case.max_lines.len()];
    let verdict = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
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
                let bad = matcher.feed(&line).map(|re| re.as_str().to_owned());
                let too_many = too_many_lines(&case.max_lines, &mut line_counts, &line);
                log.push(line);
                if let Some(bad) = bad {
                    break Err(format!("output matched fail pattern `{bad}`"));
                }
                if let Some(too_many) = too_many {
                    break Err(too_many);
                }
                if matcher.done() && case.exit_code.is_none() {
                    break Ok(());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break Err(timeout_reason(case, &matcher)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break after_output_closed(case, &matcher, &mut child.0, deadline);
            }
        }
    };
    drop(stdin);
    drop(child);
    verdict
}

/// Counts `line` against each `max_lines` pattern; says which limit it went over, if any.
fn too_many_lines(
    limits: &[(regex::Regex, usize)],
    counts: &mut [usize],
    line: &str,
) -> Option<String> {
    for ((re, max), count) in limits.iter().zip(counts.iter_mut()) {
        if re.is_match(line) {
            *count += 1;
            if *count > *max {
                return Some(format!("more than {max} lines matched `{re}`"));
            }
        }
    }
    None
}

fn timeout_reason(case: &Case, matcher: &Matcher) -> String {
    let secs = case.timeout.as_secs();
    match (matcher.waiting_for(), case.exit_code) {
        (Some(re), _) => format!("timed out after {secs}s waiting for `{re}`"),
        (None, Some(code)) => {
            format!("timed out after {secs}s waiting for QEMU to exit with status {code}")
        }
        (None, None) => format!("timed out after {secs}s"),
    }
}

/// QEMU closed its output: wait for it to exit and judge its status.
fn after_output_closed(
    case: &Case,
    matcher: &Matcher,
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
    if let Some(re) = matcher.waiting_for() {
        return Err(format!(
            "QEMU exited ({}) before `{re}` appeared",
            describe(status)
        ));
    }
    match case.exit_code {
        Some(code) if status.code() != Some(code) => Err(format!(
            "QEMU exited ({}), expected exit status {code}",
            describe(status)
        )),
        _ => Ok(()),
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
}

/// Runs `cases` against `image`, `jobs` at a time; prints a line per case and returns
/// `(passed, failed)`.
pub fn run_all(
    cases: &[Case],
    qemu: &Qemu,
    image: &Path,
    dirs: &Dirs,
    jobs: usize,
) -> Result<(usize, usize)> {
    std::fs::create_dir_all(&dirs.logs)
        .with_context(|| format!("cannot create {}", dirs.logs.display()))?;
    std::fs::create_dir_all(&dirs.images)
        .with_context(|| format!("cannot create {}", dirs.images.display()))?;
    let workers = jobs.clamp(1, cases.len().max(1));
    println!("running {} boot case(s), {workers} at a time", cases.len());

    let next = AtomicUsize::new(0);
    let failed_names = Mutex::new(Vec::new());
    let passed = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
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
    Ok((passed.into_inner(), failed.len()))
}

/// Runs one case, prints its verdict, writes its log; returns whether it passed.
fn run_one(case: &Case, qemu: &Qemu, image: &Path, dirs: &Dirs) -> bool {
    let log_path = dirs.logs.join(format!("{}.log", case.name));
    let kernel = match kernel_for(case, image, &dirs.images) {
        Ok(kernel) => kernel,
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
        ..Machine::new(kernel)
    };
    let cmd = qemu.command(&machine);
    let cmdline = shell::display(&cmd);
    println!("$ {cmdline}");
    let outcome = run_case(case, cmd);
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
    fn passes_when_all_expected_lines_appear_and_kills_the_process() {
        let o = sh_case(
            "expect = ['hello', 'done: 4']",
            "printf 'hello\\r\\ndone: 4\\r\\n'; exec sleep 30",
        );
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.log, ["hello", "done: 4"]);
        assert!(o.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn max_lines_bounds_matching_lines() {
        let spec = "expect = ['end']\nmax_lines = [['^noise', 2], ['quiet', 0]]";
        let o = sh_case(spec, "echo noise; echo noise; echo end");
        assert_eq!(o.result, Ok(()));
        let o = sh_case(spec, "echo noise; echo noise; echo noise; echo end");
        assert_eq!(o.result, Err("more than 2 lines matched `^noise`".into()));
        let o = sh_case(spec, "echo quiet; echo end");
        assert_eq!(o.result, Err("more than 0 lines matched `quiet`".into()));
    }

    #[test]
    fn host_file_absent_is_removed_before_and_checked_after() {
        let path = std::env::temp_dir().join(format!("xtask-absent-{}", std::process::id()));
        std::fs::write(&path, "stale").unwrap();
        let spec = format!(
            "expect = ['end']\nhost_file_absent = {:?}",
            path.display().to_string()
        );
        let o = sh_case(
            &spec,
            &format!("test -e {0} && echo stale; echo end", path.display()),
        );
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.log, ["end"]);
        let o = sh_case(&spec, &format!("touch {}; echo end", path.display()));
        assert!(o.result.unwrap_err().contains("exists on the host"));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn fails_on_builtin_and_custom_patterns() {
        let o = sh_case(
            "expect = ['never']",
            "echo 'panicked at src/x.rs:1:1'; exec sleep 30",
        );
        assert!(o.result.unwrap_err().contains("panicked at"));
        let o = sh_case(
            "expect = ['never']\nfail = ['E\\d+']",
            "echo E42 >&2; exec sleep 30",
        );
        assert!(o.result.unwrap_err().contains(r"E\d+"));
    }

    #[test]
    fn times_out_on_silence() {
        let o = sh_case("expect = ['x']\ntimeout_secs = 1", "exec sleep 30");
        assert!(
            o.result
                .unwrap_err()
                .contains("timed out after 1s waiting for `x`")
        );
        assert!(o.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn checks_exit_status() {
        let o = sh_case("expect = ['bye']\nexit_code = 0", "echo bye; exit 0");
        assert_eq!(o.result, Ok(()));
        let o = sh_case("expect = ['bye']\nexit_code = 0", "echo bye; exit 1");
        assert!(o.result.unwrap_err().contains("expected exit status 0"));
        let o = sh_case("expect = ['bye']", "echo hi; exit 0");
        assert!(o.result.unwrap_err().contains("before `bye` appeared"));
        let o = sh_case("exit_code = 3", "printf 'partial line'; exit 3");
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.log, ["partial line"]);
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
