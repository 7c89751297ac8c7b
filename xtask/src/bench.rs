//! `cargo xtask bench`: what a guest exit costs.
//!
//! Boots the test guest's `bench` test as the only domain under QEMU with
//! `-icount shift=0`, where the virtual counter advances one tick per instruction
//! executed, so the figures are instruction counts per operation (guest and hypervisor)
//! and repeat exactly from run to run. Figures are printed, never judged. The same guest
//! then runs straight on QEMU at EL1 (no hypervisor), for the overhead column; the table
//! also goes to `target/xtask/bench.json`.
//!
//! The domain switch row comes from a run of its own: two single-vCPU domains, both
//! `cpus = [1]`, spinning in the test guest's `bench-switch` loop while the hypervisor's
//! time slices switch between them (docs/performance.md).
//!
//! The Xen interface rows come from a run of their own too: the same single domain, but
//! Xen-aware (`xen = true`), running `bench-xen` (a Xen hypercall, an event-channel send
//! to its upcall handler, a grant map + unmap). They have no bare figure: there is no Xen
//! interface without the hypervisor.

use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};

use anyhow::{Context, Result, bail};

use crate::qemu::{Machine, Qemu};
use crate::{build, domains, exit_line, shell};

/// vCPUs of the bench domain and CPUs of the machine (the virtual IPI row needs two).
const CPUS: u32 = 2;
/// The domain switch row, as the guest's `bench-switch` test prints it.
const SWITCH_ROW: &str = "domain switch (time slice, 2 domains, 1 CPU)";
/// The physical CPU both domains of the switch row run on (`cpus = [1]`).
const SWITCH_CPU: u32 = 1;
/// How the rows were measured (`setup` in the JSON).
const SETUP: &str = "1 domain, 2 vCPUs on 2 CPUs";
const SWITCH_SETUP: &str = "2 domains of 1 vCPU, both on CPU 1";
const XEN_SETUP: &str = "1 Xen-aware domain, 2 vCPUs on 2 CPUs";

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

    // The domain switch: two single-vCPU domains spinning on one CPU, switched by the
    // time slices. Each prints (its gap - its own run) / 2; a gap holds the other's run,
    // so the mean of the two, (gap_a + gap_b - run_a - run_b) / 4, is the switch without
    // assuming the runs equal (they are, within a tick).
    let switch_archive = domains::package(
        &switch_domains(),
        Some(&guest.bin),
        &build::xtask_dir().join("bench-switch.cpio"),
    )?;
    let switch_machine = Machine {
        initrd: Some(switch_archive),
        ..machine.clone()
    };
    let (switch_output, switch_figures) = run_qemu(&qemu, &switch_machine)?;
    let switch = mean_of_two(&switch_figures, SWITCH_ROW);
    if switch.is_none() {
        eprintln!("{}", String::from_utf8_lossy(&switch_output.stdout));
        eprintln!("xtask: the domain switch run did not print `bench: {SWITCH_ROW}` twice");
    }

    // The Xen interface rows: the bench domain Xen-aware, in a run of its own so that the
    // rows above keep measuring a plain domain.
    let xen_archive = domains::package(
        std::slice::from_ref(&xen_domain()),
        Some(&guest.bin),
        &build::xtask_dir().join("bench-xen.cpio"),
    )?;
    let xen_machine = Machine {
        initrd: Some(xen_archive),
        ..machine.clone()
    };
    let (xen_output, xen_figures) = run_qemu(&qemu, &xen_machine)?;
    if xen_figures.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&xen_output.stdout));
        eprintln!("xtask: the Xen interface run printed no `bench:` lines");
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
    let (bare_output, mut bare) = run_qemu(&qemu, &bare_machine)?;
    if bare.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&bare_output.stdout));
        eprintln!("xtask: the bare-QEMU run printed no `bench:` lines");
    }
    // `bench-switch` alone, nothing switching it out: one pass of its loop. A run of its
    // own, so the figures above keep their phase against the counter.
    let bare_switch_machine = Machine {
        append: "name=bench test=bench-switch".into(),
        ..bare_machine
    };
    let (bare_switch_output, bare_switch) = run_qemu(&qemu, &bare_switch_machine)?;
    if !bare_switch.iter().any(|(what, _)| what == SWITCH_ROW) {
        eprintln!("{}", String::from_utf8_lossy(&bare_switch_output.stdout));
        eprintln!("xtask: the bare-QEMU run of bench-switch printed no `bench:` line");
    }
    bare.extend(bare_switch);

    // Ratios against the cheapest exit, the hypervisor call (the second figure).
    let unit = figures.get(1).map_or(1, |(_, n)| *n).max(1);
    let bare_of = |what: &str| bare.iter().find(|(w, _)| w == what).map(|(_, b)| *b);
    let mut rows: Vec<Row> = figures
        .iter()
        .map(|(what, n)| Row {
            what: what.clone(),
            setup: SETUP,
            hyp: *n,
            bare: bare_of(what),
        })
        .collect();
    rows.extend(switch.map(|n| Row {
        what: SWITCH_ROW.into(),
        setup: SWITCH_SETUP,
        hyp: n,
        bare: bare_of(SWITCH_ROW),
    }));
    rows.extend(xen_figures.iter().map(|(what, n)| Row {
        what: what.clone(),
        setup: XEN_SETUP,
        hyp: *n,
        bare: None,
    }));
    println!();
    println!("guest exits on QEMU virt, -cpu {cpu}, GICv{gic}, -smp {CPUS}, -icount shift=0");
    println!("(instructions executed per operation, guest and hypervisor, loop included;");
    println!(" bare: the same guest on QEMU at EL1 without the hypervisor;");
    println!(" domain switch: {SWITCH_SETUP}, per switch; bare: one pass of its loop;");
    println!(" Xen rows: {XEN_SETUP}, no bare figure)");
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
    // The guests' status comes on the hypervisor's exit line (QEMU itself exits 0).
    let code = guest_status("benchmark", &output);
    let switch_code = guest_status("domain switch", &switch_output);
    let xen_code = guest_status("Xen interface", &xen_output);
    let first_failure = [code, switch_code, xen_code].into_iter().find(|&c| c != 0);
    Ok(ExitCode::from(first_failure.unwrap_or(0)))
}

/// The domain of the Xen interface rows: the bench domain, Xen-aware.
fn xen_domain() -> domains::DomainConfig {
    domains::DomainConfig {
        xen: true,
        ..domains::single_guest(
            domains::TEST_GUEST.into(),
            None,
            "name=bench test=bench-xen exit=status".into(),
            CPUS,
            32 << 20,
        )
    }
}

/// The two domains of the switch row: one vCPU each, both on CPU [`SWITCH_CPU`].
fn switch_domains() -> Vec<domains::DomainConfig> {
    ["switch-a", "switch-b"]
        .into_iter()
        .map(|name| domains::DomainConfig {
            name: name.into(),
            cpus: vec![SWITCH_CPU],
            ..domains::single_guest(
                domains::TEST_GUEST.into(),
                None,
                format!("name={name} test=bench-switch switch-peers=1 exit=status"),
                1,
                32 << 20,
            )
        })
        .collect()
}

/// The mean of the two figures named `what` (one from each domain of the switch row).
fn mean_of_two(figures: &[(String, u64)], what: &str) -> Option<u64> {
    let found: Vec<u64> = figures
        .iter()
        .filter(|(w, _)| w == what)
        .map(|(_, n)| *n)
        .collect();
    match found[..] {
        [a, b] => Some((a + b) / 2),
        _ => None,
    }
}

/// The status the guests of a run exited with (from the hypervisor's exit line), said
/// when it is not 0.
fn guest_status(what: &str, output: &Output) -> u8 {
    let mut scanner = exit_line::Scanner::default();
    scanner.feed(&output.stdout);
    let (code, note) = exit_line::run_exit_code(output.status, scanner.finish());
    if let Some(note) = note {
        eprintln!("xtask: {what} run: {note}");
    } else if code != 0 {
        eprintln!("xtask: the {what} guest exited with status {code}");
    }
    code
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
    /// Domains and CPUs of the run it comes from.
    setup: &'static str,
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
                "setup": row.setup,
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
    fn switch_figure_is_the_mean_of_both_domains() {
        let figures = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            pairs.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect()
        };
        let two = figures(&[(SWITCH_ROW, 1000), ("other", 5), (SWITCH_ROW, 1011)]);
        assert_eq!(mean_of_two(&two, SWITCH_ROW), Some(1005));
        assert_eq!(mean_of_two(&two[..2], SWITCH_ROW), None);
        let three = figures(&[(SWITCH_ROW, 1), (SWITCH_ROW, 2), (SWITCH_ROW, 3)]);
        assert_eq!(mean_of_two(&three, SWITCH_ROW), None);
    }

    #[test]
    fn xen_rows_run_in_a_xen_aware_domain() {
        let domain = xen_domain();
        assert!(domain.xen);
        assert!(!domain.privileged);
        assert!(domain.cmdline.contains("test=bench-xen"));
        assert_eq!(domain.vcpus, CPUS);
    }

    #[test]
    fn json_rows() {
        let rows = [
            Row {
                what: "a \"b\"".into(),
                setup: SETUP,
                hyp: 10,
                bare: Some(12),
            },
            Row {
                what: SWITCH_ROW.into(),
                setup: SWITCH_SETUP,
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
        assert_eq!(json["rows"][0]["setup"], SETUP);
        assert_eq!(json["rows"][1]["operation"], SWITCH_ROW);
        assert_eq!(json["rows"][1]["setup"], SWITCH_SETUP);
        assert!(json["rows"][1]["bare"].is_null());
        assert!(json["rows"][1]["overhead"].is_null());
    }
}
