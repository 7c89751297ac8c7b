//! The boot CPU's path from `entry.S` to a running system.

use core::fmt::Write as _;

use log::{error, info, warn};
use platforms::{
    Board, Console, ConsoleKind, EnableMethod, GicVersion, ParseError, Platform, PsciConduit,
    Region,
};

use crate::cmdline::{Cmdline, SelfTest};
use crate::{arch, console, gic, guest, mm, percpu, print, psci, smp, spectre};

/// Exit status printed when the hypervisor cannot start.
const BOOT_FAILURE_STATUS: u32 = 2;

/// Boot-CPU main path. Runs with the MMU off until `mm::init`.
pub fn primary(dtb: u64, el: u64, load_addr: u64) -> ! {
    let platform = match read_device_tree(dtb) {
        Ok(p) => p,
        Err(e) => device_tree_failure(dtb, el, e),
    };
    let console = choose_console(&platform);
    if let Some(c) = console.uart {
        // SAFETY: the device tree (or, failing it, the board description) names this UART
        // as the console or as one the hypervisor can drive; nothing else in the
        // hypervisor drives it.
        unsafe { console::init(c.kind, c.region.base as usize) };
    }
    let cmdline = Cmdline::parse(platform.bootargs);
    psci::set_conduit(platform.psci.map(|p| p.conduit));

    if el != 2 {
        print!(
            "hyp: entered at EL{el}, but the hypervisor must be started at EL2 \
             (QEMU: -machine virt,virtualization=on). Stopping.\n"
        );
        if el == 1 {
            psci::power_off_machine(BOOT_FAILURE_STATUS);
        }
        // At EL3 the PSCI firmware would be ourselves: nothing can end the run but a halt.
        arch::halt();
    }

    if console.uart.is_none() {
        // Nothing to say it on: stop rather than run silently.
        no_console(&platform);
    }

    let mpidr = arch::current_mpidr();
    let boot_index = platform.cpus.iter().position(|c| c.mpidr == mpidr);
    // SAFETY: first thing at EL2 on the boot CPU, before any other CPU runs.
    unsafe { percpu::set_current(boot_index.unwrap_or(0), mm::ImageLayout::current().end) };
    // SAFETY: once, on the boot CPU, before secondaries start.
    unsafe { console::init_logger(cmdline.log_level) };

    info!(
        "hyp {} starting at EL2, loaded at {load_addr:#x}, command line \"{}\"",
        env!("CARGO_PKG_VERSION"),
        cmdline.as_str()
    );
    if let Some(note) = console.note {
        warn!("{note}");
    }
    for word in cmdline.unknown() {
        warn!("unknown command-line option \"{word}\" ignored");
    }
    if platform.cpus_ignored > 0 {
        warn!(
            "the device tree has {} more CPUs than the {} the hypervisor manages; they stay off",
            platform.cpus_ignored,
            platforms::MAX_CPUS
        );
    }
    if boot_index.is_none() {
        warn!("boot CPU MPIDR {mpidr:#x} is not in the device tree; calling it CPU 0");
    }

    let dtb_region = Region::new(dtb, platform.dtb_size);
    if let Err(e) = mm::init(&platform, dtb_region) {
        panic!("memory setup failed: {e}");
    }
    print_summary(&platform, dtb_region);
    if let Some(gic) = &platform.gic {
        if cmdline.selftest == Some(SelfTest::GicLeftover) {
            info!(
                "self-test: leaving interrupt {} enabled and pending, as firmware might",
                gic::LEFTOVER_INTID
            );
            // SAFETY: `mm::init` mapped every GIC region as device memory; no other CPU
            // runs yet; `quiet` follows.
            unsafe { gic::leave_interrupt_pending(gic) };
        }
        // SAFETY: `mm::init` mapped every GIC region as device memory; no other CPU runs
        // yet and nothing else drives the GIC.
        unsafe { gic::quiet(gic) };
        // SAFETY: as above, and the GIC was just quieted.
        match unsafe { gic::init(gic) } {
            Ok(()) => match (console.uart, console::kind()) {
                (Some(c), Some(ConsoleKind::Pl011)) if console.from_stdout_path => {
                    if let Some(irq) = c.irq
                        && let Err(e) = console::enable_rx_interrupt(irq)
                    {
                        warn!("console input stays polled: {e}");
                    }
                }
                (Some(_), Some(ConsoleKind::MiniUart)) => {
                    info!("console input is polled (the mini UART's interrupt is not used)");
                }
                _ => {}
            },
            Err(e) => error!("GIC driver: {e}; the hypervisor takes no interrupts"),
        }
    }
    let irq_test = match cmdline.selftest {
        Some(SelfTest::Sgi) => Some(gic::selftest::Test::Sgi),
        Some(SelfTest::Timer) => Some(gic::selftest::Test::Timer),
        Some(SelfTest::ConsoleRx) => Some(gic::selftest::Test::ConsoleRx),
        _ => None,
    }
    .filter(|&test| gic::selftest::prepare(test, platform.timer.and_then(|t| t.hyp_phys)));

    let boot_index = boot_index.unwrap_or(0);
    spectre::init_this_cpu();
    info!("CPU {boot_index} (MPIDR {mpidr:#x}) online");
    percpu::set_online();
    let online = smp::start_secondaries(&platform, boot_index);
    spectre::report();
    info!(
        "boot complete: {} of {} CPUs online",
        online.len(),
        platform.cpus.len().max(1)
    );
    if let Some(test) = irq_test {
        gic::selftest::run(test, &online);
    }
    if let Some(test) = cmdline.selftest {
        run_selftest(test);
    }
    // SAFETY: `mm::init` mapped the device tree read-only for good and excluded it from
    // every allocator; nothing writes it after the boot CPU compacted it.
    let host_dtb: &'static [u8] = unsafe {
        core::slice::from_raw_parts(dtb_region.base as *const u8, dtb_region.size as usize)
    };
    let domains = guest::start_domains(&platform, host_dtb, &online);
    if domains > 0 {
        info!("{domains} domain(s) started");
    }
    guest::run_this_cpu()
}

/// The UART the hypervisor writes to, and why.
struct ConsoleChoice {
    uart: Option<Console>,
    /// Whether `uart` is the one `/chosen/stdout-path` names.
    from_stdout_path: bool,
    /// What to warn about once the log works.
    note: Option<heapless::String<200>>,
}

/// The console ([`Platform::console_in_use`]): the UART `/chosen/stdout-path` names if the
/// hypervisor can drive it, else the first UART in the tree it can drive, else the board's
/// default PL011. No domain is given it (`guest::passthrough` reserves the same UART).
fn choose_console(platform: &Platform<'_>) -> ConsoleChoice {
    if let Some(uart) = platform.console {
        return ConsoleChoice {
            uart: Some(uart),
            from_stdout_path: true,
            note: None,
        };
    }
    let uart = platform.console_in_use();
    let mut note = heapless::String::new();
    if let Some(u) = uart {
        let _ = match platform.console_path {
            "" => write!(note, "/chosen/stdout-path names no console"),
            path => write!(
                note,
                "/chosen/stdout-path names {path}, not a UART the hypervisor can drive"
            ),
        };
        let _ = write!(
            note,
            "; writing to the {} at {:#x} instead",
            u.kind.name(),
            u.region.base
        );
    }
    ConsoleChoice {
        uart,
        from_stdout_path: false,
        note: (!note.is_empty()).then_some(note),
    }
}

/// No UART at all to write to: power the machine off when PSCI can (there is nowhere to
/// print the status line), else stop this CPU; never run on silently.
fn no_console(platform: &Platform<'_>) -> ! {
    if platform.psci.is_some() {
        psci::power_off_machine(BOOT_FAILURE_STATUS);
    }
    arch::halt()
}

/// Provokes the fault a boot test asked for.
fn run_selftest(test: SelfTest) {
    match test {
        SelfTest::WriteToCode => {
            let target = primary as *const () as *mut u32;
            info!("self-test: writing to the hypervisor's own code at {target:p}");
            // SAFETY: deliberately unsound if it succeeded: this store must be refused by
            // the MMU (text is mapped read-only), which raises a permission fault that the
            // exception handler dumps before stopping this CPU.
            unsafe { core::ptr::write_volatile(target, 0) };
            log::error!("self-test FAILED: the write to code was not refused");
        }
        SelfTest::Panic => panic!("self-test panic"),
        // Done before the GIC was quieted; the guests show whether it worked.
        SelfTest::GicLeftover => {}
        // Run by `gic::selftest` once every CPU is online.
        SelfTest::Sgi | SelfTest::Timer | SelfTest::ConsoleRx => {}
    }
}

/// Builds a [`Platform`] from the blob at `dtb`.
fn read_device_tree(dtb: u64) -> Result<Platform<'static>, ParseError> {
    if dtb == 0 || !dtb.is_multiple_of(8) {
        return Err(ParseError::NotADeviceTree(
            "x0 holds no (8-byte aligned) address",
        ));
    }
    let mut header = [0u8; 8];
    for (i, byte) in header.iter_mut().enumerate() {
        // SAFETY: the boot protocol says x0 is the physical address of the DTB; with the
        // MMU off every physical address is readable. Only the 8-byte header is read
        // before its size is known.
        *byte = unsafe { core::ptr::read_volatile((dtb as *const u8).add(i)) };
    }
    let size = platforms::dtb_total_size(&header)?;
    // SAFETY: the header's magic checked out and gives the blob's size; the loader keeps
    // the DTB in place in RAM, and `mm::init` excludes it from every allocator, so it is
    // ours to edit now (MMU off, nothing else runs) and lives for the rest of the
    // program. No other reference to it exists yet.
    let blob = unsafe { core::slice::from_raw_parts_mut(dtb as *mut u8, size) };
    // Firmware and QEMU delete nodes with NOP tokens, which the DT reader cannot always
    // skip: compact them away first (the tree stays equivalent).
    platforms::strip_nops(blob);
    Platform::parse(blob)
}

/// No usable device tree: say so on the board's default UART and stop.
fn device_tree_failure(dtb: u64, el: u64, error: ParseError) -> ! {
    if let Some(base) = fallback_uart() {
        // SAFETY: without a device tree the build's fallback console is the best guess;
        // it is documented (docs/boot.md) and chosen at build time.
        unsafe { console::init(ConsoleKind::Pl011, base) };
    }
    print!(
        "hyp: cannot use the device tree at {dtb:#x} ({error}). \
         The loader must pass a DTB address in x0. Stopping.\n"
    );
    if el == 2 {
        // The firmware of a board that enters us at EL2 answers PSCI on SMC.
        psci::set_conduit(Some(PsciConduit::Smc));
        psci::power_off_machine(BOOT_FAILURE_STATUS);
    }
    arch::halt()
}

/// The console used when there is no device tree: `HYP_FALLBACK_UART` at build time (a
/// hexadecimal PL011 address), else QEMU virt's.
fn fallback_uart() -> Option<usize> {
    match option_env!("HYP_FALLBACK_UART") {
        Some(text) => usize::from_str_radix(text.trim_start_matches("0x"), 16).ok(),
        None => Board::QemuVirt.quirks().fallback_uart.map(|a| a as usize),
    }
}

/// The one-screen platform summary.
fn print_summary(platform: &Platform<'_>, dtb: Region) {
    let mut out = Summary::default();
    let _ = writeln!(
        out,
        "platform: {} (model \"{}\"), device tree {dtb:?}",
        platform.board.name(),
        platform.model
    );
    for bank in &platform.memory {
        let _ = writeln!(out, "  memory    {bank:?} ({} MiB)", bank.size >> 20);
    }
    for r in &platform.reserved {
        let _ = writeln!(out, "  reserved  {r:?}");
    }
    match platform.console {
        Some(c) => {
            let _ = writeln!(
                out,
                "  console   {} at {:#x}, irq {}",
                c.kind.name(),
                c.region.base,
                Irq(c.irq)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  console   none usable in /chosen/stdout-path (fallback used)"
            );
        }
    }
    match &platform.gic {
        Some(gic) => {
            let version = match gic.version {
                GicVersion::V2 => "GICv2",
                GicVersion::V3 => "GICv3",
            };
            let _ = write!(
                out,
                "  gic       {version}: GICD {:#x}",
                gic.distributor.base
            );
            for r in &gic.redistributors {
                let _ = write!(out, ", GICR {:#x} ({} KiB)", r.base, r.size >> 10);
            }
            for (name, r) in [
                ("GICC", gic.cpu_interface),
                ("GICH", gic.hyp_interface),
                ("GICV", gic.virtual_cpu_interface),
            ] {
                if let Some(r) = r {
                    let _ = write!(out, ", {name} {:#x}", r.base);
                }
            }
            let _ = writeln!(out, ", maintenance irq {}", Irq(gic.maintenance_irq));
        }
        None => {
            let _ = writeln!(out, "  gic       none found");
        }
    }
    if let Some(t) = platform.timer {
        let _ = writeln!(
            out,
            "  timer     irqs: EL1 phys {}, EL1 virt {}, EL2 phys {}, EL2 virt {}; {} MHz",
            Irq(t.phys),
            Irq(t.virt),
            Irq(t.hyp_phys),
            Irq(t.hyp_virt),
            arch::counter_frequency() / 1_000_000
        );
    }
    match platform.psci {
        Some(p) => {
            let conduit = match p.conduit {
                PsciConduit::Smc => "SMC",
                PsciConduit::Hvc => "HVC",
            };
            match psci::version() {
                Ok((major, minor)) => {
                    let _ = writeln!(
                        out,
                        "  psci      {} via {conduit}, firmware PSCI {major}.{minor}",
                        p.compatible
                    );
                }
                Err(e) => {
                    let _ = writeln!(
                        out,
                        "  psci      {} via {conduit}, version call failed: {e}",
                        p.compatible
                    );
                }
            }
        }
        None => {
            let _ = writeln!(out, "  psci      none");
        }
    }
    let psci_cpus = platform
        .cpus
        .iter()
        .filter(|c| c.enable_method == EnableMethod::Psci)
        .count();
    let spin_cpus = platform
        .cpus
        .iter()
        .filter(|c| matches!(c.enable_method, EnableMethod::SpinTable { .. }))
        .count();
    let _ = writeln!(
        out,
        "  cpus      {} ({psci_cpus} psci, {spin_cpus} spin-table)",
        platform.cpus.len()
    );
    out.flush();
}

/// Collects the summary into one buffer so it prints as one block.
#[derive(Default)]
struct Summary {
    buffer: heapless::String<2048>,
}

impl core::fmt::Write for Summary {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.buffer.push_str(s).is_err() {
            self.flush();
            self.buffer.push_str(s).map_err(|_| core::fmt::Error)?;
        }
        Ok(())
    }
}

impl Summary {
    fn flush(&mut self) {
        info!("{}", self.buffer.trim_end());
        self.buffer.clear();
    }
}

/// Prints an optional interrupt ID as the number or `none`.
struct Irq(Option<u32>);

impl core::fmt::Display for Irq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => write!(f, "none"),
        }
    }
}
