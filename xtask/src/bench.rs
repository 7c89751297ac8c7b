//! `cargo xtask bench`: what a guest exit costs.
//!
//! Boots the test guest's `bench` test as the only domain under QEMU with
//! `-icount shift=0`, where the virtual counter advances one tick per instruction
//! executed, so the figures are instruction counts per operation (guest and hypervisor)
//! and repeat exactly from run to run. Figures are printed, never judged. The same guest
//! then runs straight on QEMU at EL1 (no hypervisor), for the overhead column; the table
//! also goes to `target/xtask/bench.json`.

use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};

use anyhow::{Context, Result, bail};

use crate::qemu::{Machine, Qemu};
use crate::{build, domains, exit_line, shell};

/// vCPUs of the bench domain and CPUs of the machine (the virtual IPI row needs two).
const CPUS: u32 = 2;

/// Runs the benchmark under the hypervisor and on bare QEMU, prints both figures and
/// writes them to `target/xtask/bench.json`.
pub fn run(cpu: &str, gic: u8, invoked_from: &Path) -> Result<ExitCode> {
    let qemu = Qemu::find(invoked_from)?;
    let hyp = build::build(false)?;
    let guest = build::build_test_guest(false)?;
    let domain = domains::single_guest(
        domains::TEST_GUEST.into(),
        None,
        "name=bench test=bench exit=status".into(),
        CPUS,
        32 << 20,
    );
    let archive = domains::package(
        std::slice::from_ref(&domain),
        Some(&guest.bin),
        &build::xtask_dir().join("bench.cpio"),
    )?;
    let machine = Machine {
        gic,
        cpus: CPUS,
        cpu: cpu.to_owned(),
        initrd: Some(archive),
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::new(hyp.bin)
    };
    let (output, figures) = run_qemu(&qemu, &machine)?;
    if figures.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        bail!("the guest printed no `bench:` lines");
    }

    // The same guest straight on QEMU at EL1: no hypervisor call (nothing at EL2 takes
    // it), no WFI (nothing would wake it).
    let bare_machine = Machine {
        gic,
        cpus: CPUS,
        cpu: cpu.to_owned(),
        virtualization: false,
        append: "name=bench test=bench skip=hvc skip=wfi".into(),
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::new(guest.bin.clone())
    };
    let (bare_output, bare) = run_qemu(&qemu, &bare_machine)?;
    if bare.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&bare_output.stdout));
        eprintln!("xtask: the bare-QEMU run printed no `bench:` lines");
    }

    // Ratios against the cheapest exit, the hypervisor call (the second figure).
    let unit = figures.get(1).map_or(1, |(_, n)| *n).max(1);
    let rows: Vec<Row> = figures
        .iter()
        .map(|(what, n)| Row {
            what: what.clone(),
            hyp: *n,
            bare: bare.iter().find(|(w, _)| w == what).map(|(_, b)| *b),
        })
        .collect();
    println!();
    println!("guest exits on QEMU virt, -cpu {cpu}, GICv{gic}, -smp {CPUS}, -icount shift=0");
    println!("(instructions executed per operation, guest and hypervisor, loop included;");
    println!(" bare: the same guest on QEMU at EL1 without the hypervisor)");
    println!();
    println!(
        "{:<46} {:>10} {:>10} {:>10} {:>12}",
        "operation", "hypervisor", "bare", "overhead", "x hyp call"
    );
    let dash = || "-".to_owned();
    for row in &rows {
        println!(
            "{:<46} {:>10} {:>10} {:>10} {:>12.2}",
            row.what,
            row.hyp,
            row.bare.map_or_else(dash, |b| b.to_string()),
            row.overhead().map_or_else(dash, |o| o.to_string()),
            row.hyp as f64 / unit as f64
        );
    }
    let json_path = build::xtask_dir().join("bench.json");
    std::fs::write(&json_path, to_json(cpu, gic, &rows))
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!();
    println!("written to {}", json_path.display());
    // The guest's status comes on the hypervisor's exit line (QEMU itself exits 0).
    let mut scanner = exit_line::Scanner::default();
    scanner.feed(&output.stdout);
    let (code, note) = exit_line::run_exit_code(output.status, scanner.finish());
    if let Some(note) = note {
        eprintln!("xtask: {note}");
    } else if code != 0 {
        eprintln!("xtask: the benchmark guest exited with status {code}");
    }
    Ok(ExitCode::from(code))
}

/// Runs QEMU to the end; its output and the figures the guest printed.
fn run_qemu(qemu: &Qemu, machine: &Machine) -> Result<(Output, Vec<(String, u64)>)> {
    let mut cmd: Command = qemu.command(machine);
    cmd.stdin(Stdio::null());
    println!("$ {}", shell::display(&cmd));
    let output = cmd.output().context("cannot run QEMU")?;
    let figures = parse(&String::from_utf8_lossy(&output.stdout));
    Ok((output, figures))
}

/// One operation's figures.
struct Row {
    what: String,
    hyp: u64,
    bare: Option<u64>,
}

impl Row {
    /// Instructions the hypervisor adds (may be negative: a trap can save a wait).
    fn overhead(&self) -> Option<i64> {
        self.bare.map(|b| self.hyp as i64 - b as i64)
    }
}

/// The table as JSON: the machine, then one object per row (`bare` and `overhead` are
/// `null` where the operation has no meaning without the hypervisor).
fn to_json(cpu: &str, gic: u8, rows: &[Row]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "operation": row.what,
                "hypervisor": row.hyp,
                "bare": row.bare,
                "overhead": row.overhead(),
            })
        })
        .collect();
    let table = serde_json::json!({
        "machine": "virt",
        "cpu": cpu,
        "gic": gic,
        "cpus": CPUS,
        "unit": "instructions per operation (-icount shift=0)",
        "rows": rows,
    });
    let mut text = serde_json::to_string_pretty(&table).unwrap_or_default();
    text.push('\n');
    text
}

/// The `(operation, figure)` pairs of the guest's `bench: OP: N ns/op over M` lines.
fn parse(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.split("bench: ").nth(1)?;
            let (what, figure) = rest.rsplit_once(": ")?;
            let ticks = figure.split_whitespace().next()?.parse().ok()?;
            Some((what.to_owned(), ticks))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_figures() {
        let text = "(bench) bench: no exit (mrs tpidr_el1): 3 ns/op over 2000\r\n\
                    noise\n(bench) bench: PSCI_VERSION: 812 ns/op over 2000\n";
        assert_eq!(
            parse(text),
            [
                ("no exit (mrs tpidr_el1)".to_owned(), 3),
                ("PSCI_VERSION".to_owned(), 812)
            ]
        );
    }

    #[test]
    fn json_rows() {
        let rows = [
            Row {
                what: "a \"b\"".into(),
                hyp: 10,
                bare: Some(12),
            },
            Row {
                what: "c".into(),
                hyp: 5,
                bare: None,
            },
        ];
        let json: serde_json::Value = serde_json::from_str(&to_json("max", 3, &rows)).unwrap();
        assert_eq!(json["cpu"], "max");
        assert_eq!(json["gic"], 3);
        assert_eq!(json["rows"][0]["operation"], "a \"b\"");
        assert_eq!(json["rows"][0]["hypervisor"], 10);
        assert_eq!(json["rows"][0]["bare"], 12);
        assert_eq!(json["rows"][0]["overhead"], -2);
        assert!(json["rows"][1]["bare"].is_null());
        assert!(json["rows"][1]["overhead"].is_null());
    }
}
