//! `cargo xtask bench`: what a guest exit costs.
//!
//! Boots the test guest's `bench` test as the only domain under QEMU with
//! `-icount shift=0`, where the virtual counter advances one tick per instruction
//! executed, so the figures are instruction counts per operation (guest and hypervisor)
//! and repeat exactly from run to run. Figures are printed, never judged.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use crate::qemu::{Machine, Qemu};
use crate::{build, domains, exit_line, shell};

/// Runs the benchmark and prints its figures.
pub fn run(cpu: &str, gic: u8, invoked_from: &Path) -> Result<ExitCode> {
    let qemu = Qemu::find(invoked_from)?;
    let hyp = build::build(false)?;
    let guest = build::build_test_guest(false)?;
    let domain = domains::single_guest(
        domains::TEST_GUEST.into(),
        None,
        "name=bench test=bench exit=status".into(),
        1,
        32 << 20,
    );
    let archive = domains::package(
        std::slice::from_ref(&domain),
        Some(&guest.bin),
        &build::xtask_dir().join("bench.cpio"),
    )?;
    let machine = Machine {
        gic,
        cpus: 1,
        cpu: cpu.to_owned(),
        initrd: Some(archive),
        extra: vec!["-icount".into(), "shift=0".into()],
        ..Machine::new(hyp.bin)
    };
    let mut cmd: Command = qemu.command(&machine);
    cmd.stdin(Stdio::null());
    println!("$ {}", shell::display(&cmd));
    let output = cmd.output().context("cannot run QEMU")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let figures = parse(&text);
    if figures.is_empty() {
        eprintln!("{text}");
        bail!("the guest printed no `bench:` lines");
    }
    // Ratios against the cheapest exit, the hypervisor call (the second figure).
    let unit = figures.get(1).map_or(1, |(_, n)| *n).max(1);
    println!();
    println!("guest exits on QEMU virt, -cpu {cpu}, GICv{gic}, -icount shift=0");
    println!("(instructions executed per operation, guest and hypervisor, loop included)");
    println!();
    println!(
        "{:<40} {:>10} {:>12}",
        "operation", "instr/op", "x hyp call"
    );
    for (what, n) in &figures {
        println!("{what:<40} {n:>10} {:>12.2}", *n as f64 / unit as f64);
    }
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
}
