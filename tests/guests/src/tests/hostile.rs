//! `hostile`: a guest that attacks the hypervisor every way a guest can reach it (see the
//! "Hostile-guest matrix" in `docs/testing.md`). Every attack is one check: the guest gets
//! the answer the architecture and `docs/guest-abi.md` promise (a data abort, an UNDEF,
//! an error code, or the operation completing) and carries on. What the boot case checks
//! besides: a well-behaved domain beside it finishes intact, the hypervisor prints no
//! exception dump and stays under its log rate limit.

use core::arch::asm;
use core::fmt::Display;

use super::probe::{Want, probe_insn, probe_insn_arg, probe_read, probe_write};
use super::{FaultDetail, load_pair32, load32, load64, store32};
use crate::exception::{Fault, capture};
use crate::smccc::{self, CallResult, Conduit, psci};
use crate::{Ctx, mmu, power, println, time};

/// Device regions of the host's device tree on QEMU `virt` (`virtualization=on`; from the
/// trees in `platforms/tests/data`). None is the guest's: every access must abort.
const HOST_DEVICES: &[(&str, u64)] = &[
    ("host flash bank 0", 0x0000_0000),
    ("host flash bank 1", 0x0400_0000),
    ("host GIC distributor", 0x0800_0000),
    ("host GICv2 CPU interface", 0x0801_0000),
    ("host GICv2m MSI frame", 0x0802_0000),
    ("host GICv2 hypervisor interface (GICH)", 0x0803_0000),
    ("host GICv2 virtual CPU interface (GICV)", 0x0804_0000),
    ("host GICv3 ITS", 0x0808_0000),
    ("host GICv3 redistributors", 0x080a_0000),
    ("host PL011 UART", 0x0900_0000),
    ("host PL031 RTC", 0x0901_0000),
    ("host fw-cfg", 0x0902_0000),
    ("host PL061 GPIO", 0x0903_0000),
    ("host virtio-mmio transport 0", 0x0a00_0000),
    ("host virtio-mmio transport 31", 0x0a00_3e00),
    ("host platform bus", 0x0c00_0000),
    ("host PCIe MMIO window", 0x1000_0000),
    ("host PCIe I/O window", 0x3eff_0000),
    ("host PCIe ECAM (high)", 0x40_1000_0000),
];

/// Virtual GiB used for a normal-memory alias of device space (well clear of RAM and of
/// every address above).
const ALIAS_VA: u64 = 300 << 30;

/// PL011 register offsets.
const UARTFR: u64 = 0x18;
const UARTIMSC: u64 = 0x38;
const UART_PERIPH_ID0: u64 = 0xfe0;

/// Operations per storm.
const STORM: usize = 2000;
/// Set/way operations in the hostile run (each one a full walk before the fix: slow).
const SET_WAY_STORM: usize = 50;

/// Arguments for calls "with wild arguments".
const WILD: [u64; 3] = [u64::MAX, 0x8000_0000_dead_beef, 0x5a5a_5a5a_5a5a_5a5a];

struct Attacks<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    count: u32,
}

impl Attacks<'_, '_> {
    /// One attack whose outcome must be `ok`.
    fn check(&mut self, what: impl Display, ok: bool, detail: impl Display) {
        self.count += 1;
        let n = self.count;
        self.ctx
            .report
            .check(ok, format_args!("#{n:02} {what}"), detail);
    }

    /// One attack whose exception (or its absence) must be what `want` accepts.
    fn expect(&mut self, what: impl Display, want: Want, fault: Option<Fault>) {
        self.check(
            format_args!("{what}: {}", want.describe()),
            want.accepts(fault),
            FaultDetail(fault),
        );
    }

    /// One call that must return (no exception) a value `ok` accepts.
    fn call(&mut self, what: impl Display, result: CallResult, ok: impl Fn(i64) -> bool) {
        self.check(what, result.fault.is_none() && ok(result.ret()), result);
    }
}

/// ID_AA64PFR0_EL1 and ID_AA64DFR0_EL1.
pub fn id_regs() -> (u64, u64) {
    let (pfr0, dfr0): (u64, u64);
    // SAFETY: ID registers are readable at EL1 and have no side effect.
    unsafe {
        asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack));
        asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack));
    }
    (pfr0, dfr0)
}

/// ID_AA64DFR0_EL1.PMUVer if a PMUv3 is implemented (not 0, not 0xf).
pub fn pmu_version() -> Option<u64> {
    let version = (id_regs().1 >> 8) & 0xf;
    (version != 0 && version != 0xf).then_some(version)
}

/// ID_AA64PFR0_EL1.RAS.
pub fn ras_version() -> u64 {
    (id_regs().0 >> 28) & 0xf
}

pub fn run(ctx: &mut Ctx<'_>) {
    let mut a = Attacks { ctx, count: 0 };
    memory(&mut a);
    console(&mut a);
    calls(&mut a);
    registers(&mut a);
    storms(&mut a);
    let n = a.count;
    a.ctx.report.pass(format_args!(
        "{n} distinct attacks made; the guest is still running"
    ));
}

/// Accesses outside RAM: every host device region, past the end of RAM, the top of the
/// address space, straddling the end of RAM; cache maintenance and address translation
/// there.
fn memory(a: &mut Attacks<'_, '_>) {
    for &(name, addr) in HOST_DEVICES {
        if a.ctx.platform.is_ram(addr) {
            a.ctx
                .report
                .skip(format_args!("{name} at {addr:#x} is RAM in this guest"));
            continue;
        }
        let (value, load) = load32(addr);
        let store = store32(addr, 0);
        a.check(
            format_args!("load and store of 0 at the {name} ({addr:#x}): both data aborts"),
            Want::AbortAt(addr).accepts(load) && Want::AbortAt(addr).accepts(store),
            format_args!(
                "load: {} (read {value:#x}); store: {}",
                FaultDetail(load),
                FaultDetail(store)
            ),
        );
    }
    let ram_end = a.ctx.platform.ram_end();
    let (_, fault) = load64(ram_end);
    a.expect(
        format_args!("load from the end of RAM ({ram_end:#x})"),
        Want::AbortAt(ram_end),
        fault,
    );
    let top = (1u64 << 39) - 8;
    let (_, fault) = load64(top);
    a.expect(
        format_args!("load from the top of the 39-bit address space ({top:#x})"),
        Want::AbortAt(top),
        fault,
    );
    let straddle = ram_end - 4;
    let (_, fault) = load64(straddle);
    a.expect(
        format_args!("8-byte load straddling the end of RAM ({straddle:#x})"),
        Want::Abort,
        fault,
    );
    let hole = 0x1000_0000;
    let civac = probe_insn_arg!("dc civac, {}", hole);
    let ivac = probe_insn_arg!("dc ivac, {}", hole);
    let ivau = probe_insn_arg!("ic ivau, {}", hole);
    a.check(
        format_args!("DC CIVAC, DC IVAC and IC IVAU on {hole:#x} (no RAM): skipped or aborted"),
        [civac, ivac, ivau]
            .iter()
            .all(|&f| Want::AbortOrNothing.accepts(f)),
        format_args!(
            "{} / {} / {}",
            FaultDetail(civac),
            FaultDetail(ivac),
            FaultDetail(ivau)
        ),
    );
    let at = probe_insn_arg!("at s1e1r, {}", hole);
    let (par, _) = probe_read!("par_el1");
    a.check(
        format_args!("AT S1E1R of {hole:#x}: completes"),
        at.is_none(),
        format_args!("{} (PAR_EL1 {par:#x})", FaultDetail(at)),
    );
}

/// The guest's own devices: instructions without a syndrome on the console, page
/// straddling, unaligned, exclusive and SIMD accesses, the vGIC frames.
fn console(a: &mut Attacks<'_, '_>) {
    let Some(uart) = crate::console::base() else {
        a.ctx
            .report
            .skip("no console UART: console attacks left out");
        return;
    };
    let (_, fault) = load_pair32(uart);
    a.expect("ldp from the console (ISV = 0)", Want::Abort, fault);

    let target = uart + UARTIMSC;
    let fault = capture(|| {
        // SAFETY: a store pair to the console's interrupt mask and (read-only) raw status
        // registers; both are 0 already, and the access is expected to abort.
        unsafe { asm!("stp wzr, wzr, [{a}]", a = in(reg) target, options(nostack)) }
    })
    .1;
    a.expect("stp to the console (ISV = 0)", Want::Abort, fault);

    let (after, fault) = capture(|| {
        let mut addr = target;
        // SAFETY: a post-indexed store of 0 to the interrupt mask register (writeback:
        // ISV = 0); it aborts and leaves `addr` unchanged, or writes what is there.
        unsafe {
            asm!("str wzr, [{a}], #4", a = inout(reg) addr, options(nostack));
        }
        addr
    });
    a.check(
        "post-indexed store to the console (writeback, ISV = 0): data abort, base unchanged",
        Want::Abort.accepts(fault) && after == target,
        format_args!("{} (base now {after:#x})", FaultDetail(fault)),
    );

    let (after, fault) = capture(|| {
        let mut addr = uart;
        // SAFETY: a pre-indexed load of the flag register (writeback, ISV = 0): no side
        // effect; it aborts and leaves `addr` unchanged.
        unsafe {
            asm!("ldr wzr, [{a}, #0x18]!", a = inout(reg) addr, options(nostack));
        }
        addr
    });
    a.check(
        "pre-indexed load from the console (writeback, ISV = 0): data abort, base unchanged",
        Want::Abort.accepts(fault) && after == uart,
        format_args!("{} (base now {after:#x})", FaultDetail(fault)),
    );

    let flags = uart + UARTFR;
    let fault = capture(|| {
        // SAFETY: an exclusive load of the flag register: no side effect; `clrex` drops
        // the monitor whether or not it completed.
        unsafe {
            asm!("ldxr {v:w}, [{a}]", "clrex", a = in(reg) flags, v = out(reg) _, options(nostack))
        }
    })
    .1;
    a.expect(
        "exclusive load from the console",
        Want::AbortOrNothing,
        fault,
    );

    let fault = capture(|| {
        // SAFETY: enables FP/SIMD at EL1 for one 128-bit load from the console into q0
        // (`ldr q0, [x9]`, encoded by hand: this target has no FP registers, so nothing
        // of the compiler's lives in v0), then disables FP/SIMD again.
        unsafe {
            asm!(
                "mrs {c}, cpacr_el1",
                "orr {t}, {c}, #(3 << 20)",
                "msr cpacr_el1, {t}",
                "isb",
                ".inst 0x3dc00120",
                "msr cpacr_el1, {c}",
                "isb",
                c = out(reg) _, t = out(reg) _,
                in("x9") uart,
                options(nostack),
            )
        }
    })
    .1;
    a.expect(
        "128-bit SIMD load from the console (ISV = 0)",
        Want::Abort,
        fault,
    );

    let (_, fault) = load64(uart + 1);
    a.expect("unaligned 64-bit load from the console", Want::Abort, fault);

    // Through a normal-memory alias, stage 1 lets unaligned accesses and DC ZVA through,
    // so they reach the hypervisor's stage 2.
    let console_gib = uart & !((1 << 30) - 1);
    let aliased = mmu::with_normal_alias(ALIAS_VA, console_gib, |alias| {
        let page_end = alias + (uart - console_gib) + 0xffc;
        let (_, straddle) = load64(page_end);
        let zva = probe_insn_arg!("dc zva, {}", alias + (uart - console_gib));
        (straddle, zva)
    });
    match aliased {
        Some((straddle, zva)) => {
            a.expect(
                "8-byte load straddling the console page and the next (normal-memory alias)",
                Want::Abort,
                straddle,
            );
            a.expect(
                "DC ZVA on the console (normal-memory alias)",
                Want::Abort,
                zva,
            );
        }
        None => a
            .ctx
            .report
            .skip("cannot alias the console's GiB: straddling and DC ZVA attacks left out"),
    }

    let (id, fault) = load32(uart + UART_PERIPH_ID0);
    let store = store32(uart + UART_PERIPH_ID0, 0xffff_ffff);
    a.check(
        "load and store of the console's read-only peripheral ID: emulated or aborted",
        Want::AbortOrNothing.accepts(fault) && Want::AbortOrNothing.accepts(store),
        format_args!(
            "load {} ({id:#x}), store {}",
            FaultDetail(fault),
            FaultDetail(store)
        ),
    );

    if let Some(gic) = a.ctx.platform.gic {
        let frames = match gic {
            crate::dt::Gic::V2 { gicd, gicc } => [gicd, gicc],
            crate::dt::Gic::V3 { gicd, gicr, .. } => [gicd, gicr],
        };
        let mut detail = None;
        for frame in frames {
            let (_, fault) = load32(frame);
            if !Want::AbortOrNothing.accepts(fault) {
                detail = Some((frame, fault));
            }
        }
        a.check(
            "loads from every vGIC frame in the device tree: emulated or aborted",
            detail.is_none(),
            format_args!(
                "{:#x?}: {}",
                detail.map(|d| d.0),
                FaultDetail(detail.and_then(|d| d.1))
            ),
        );
    }
}

/// The first fault of a sequence of operations that `want` does not accept.
struct Faults<'f>(&'f [Option<Fault>], Want);

impl Faults<'_> {
    fn ok(&self) -> bool {
        self.0.iter().all(|&f| self.1.accepts(f))
    }
}

impl Display for Faults<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.iter().position(|&fault| !self.1.accepts(fault)) {
            Some(i) => write!(f, "operation {i}: {}", FaultDetail(self.0[i])),
            None => f.write_str("all as expected"),
        }
    }
}

/// The call that went wrong: (target, function, result).
struct Detail(Option<(u64, u32, CallResult)>);

impl Display for Detail {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some((target, function, result)) => {
                write!(f, "{function:#x} (target {target:#x}) {result}")
            }
            None => f.write_str("none"),
        }
    }
}

fn is_error(ret: i64) -> bool {
    ret < 0
}

/// Calls: every owner's function IDs with wild arguments on both conduits, non-zero
/// immediates, PSCI with bad arguments, CPU_ON of MPIDRs that are not this domain's.
fn calls(a: &mut Attacks<'_, '_>) {
    for conduit in [Conduit::Hvc, Conduit::Smc] {
        let mut made = 0;
        let mut bad = None;
        for owner in 0..64u32 {
            for fast64 in [0, 1u32 << 30] {
                for number in [0u32, 1, 2, 3, 0x10, 0x3fff, 0x7fff, 0x8000, 0xff00, 0xffff] {
                    let fid = 0x8000_0000 | fast64 | (owner << 24) | number;
                    if dangerous(fid) {
                        continue;
                    }
                    made += 1;
                    let result = smccc::call(conduit, fid, WILD);
                    if result.fault.is_some() {
                        bad = Some((0, fid, result));
                    }
                }
            }
        }
        a.check(
            format_args!(
                "{made} fast calls over {}: 64 owners, SMC32 and SMC64, wild arguments: all return",
                conduit.name()
            ),
            bad.is_none(),
            Detail(bad),
        );
    }

    let mut bad = None;
    for owner in 0..64u32 {
        let fid = (owner << 24) | 1;
        let result = smccc::call(Conduit::Hvc, fid, WILD);
        if result.fault.is_some() || result.ret() != psci::NOT_SUPPORTED {
            bad = Some((0, fid, result));
        }
    }
    a.check(
        "yielding calls (bit 31 clear) of all 64 owners: NOT_SUPPORTED",
        bad.is_none(),
        Detail(bad),
    );
    let result = smccc::call(Conduit::Hvc, 0x84fe_0000, WILD);
    a.call(
        "PSCI_VERSION with must-be-zero bits 23:17 set: NOT_SUPPORTED",
        result,
        |r| r == psci::NOT_SUPPORTED,
    );

    let with_imm = |imm: u16| -> (u64, Option<Fault>) {
        capture(|| {
            let mut x0 = u64::from(psci::VERSION);
            // SAFETY: an HVC/SMC with a non-zero immediate; the callee may change x0-x17
            // and touches no memory of ours.
            unsafe {
                match imm {
                    1 => {
                        asm!("hvc #1", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _, options(nostack))
                    }
                    0xffff => {
                        asm!("hvc #0xffff", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _, options(nostack))
                    }
                    _ => {
                        asm!("smc #0x1234", inout("x0") x0, out("x1") _, out("x2") _, out("x3") _, options(nostack))
                    }
                }
            }
            x0
        })
    };
    for imm in [1u16, 0xffff, 0x1234] {
        let (x0, fault) = with_imm(imm);
        let insn = if imm == 0x1234 { "SMC" } else { "HVC" };
        a.check(
            format_args!("PSCI_VERSION over {insn} #{imm:#x}: NOT_SUPPORTED"),
            fault.is_none() && x0 as u32 as i32 == -1,
            format_args!("{} (x0 {x0:#x})", FaultDetail(fault)),
        );
    }

    let p = |f: u32, args: [u64; 3]| power::psci(f, args);
    a.call(
        "PSCI_VERSION with wild arguments: 1.1",
        p(psci::VERSION, WILD),
        |r| r == 0x1_0001,
    );
    for f in [psci::FEATURES, psci::FEATURES | (1 << 30)] {
        a.call(
            format_args!("PSCI_FEATURES({f:#x}) of all ones: NOT_SUPPORTED"),
            p(f, WILD),
            |r| r == psci::NOT_SUPPORTED,
        );
    }
    for f in [psci::CPU_SUSPEND, psci::CPU_SUSPEND & !(1 << 30)] {
        a.call(
            format_args!("CPU_SUSPEND ({f:#x}) with reserved power_state bits: INVALID_PARAMETERS"),
            p(f, WILD),
            |r| r == psci::INVALID_PARAMETERS,
        );
    }
    a.call(
        "CPU_SUSPEND to a power-down state with entry all ones: an error",
        p(psci::CPU_SUSPEND, [1 << 16, u64::MAX, 0]),
        is_error,
    );
    a.call(
        "AFFINITY_INFO of an impossible MPIDR at level all ones: INVALID_PARAMETERS",
        p(psci::AFFINITY_INFO, WILD),
        |r| r == psci::INVALID_PARAMETERS,
    );
    for (name, f) in [
        ("MIGRATE", 0xc400_0005),
        ("MIGRATE_INFO_UP_CPU", 0xc400_0007),
        ("NODE_HW_STATE", 0xc400_000d),
        ("PSCI_SET_SUSPEND_MODE", 0x8400_000f),
        ("PSCI_STAT_RESIDENCY", 0xc400_0010),
        ("PSCI_STAT_COUNT", 0xc400_0011),
        (
            "SYSTEM_RESET2 of an undefined architectural type",
            0xc400_0012,
        ),
        ("MEM_PROTECT_CHECK_RANGE", 0xc400_0014),
    ] {
        let args = if f == 0xc400_0012 {
            [0x7fff_ffff, u64::MAX, 0]
        } else {
            WILD
        };
        a.call(
            format_args!("{name} ({f:#x}) with wild arguments: an error"),
            p(f, args),
            is_error,
        );
    }
    a.call(
        "MIGRATE_INFO_TYPE with wild arguments: 2",
        p(psci::MIGRATE_INFO_TYPE, WILD),
        |r| r == 2,
    );

    // CPU_ON / AFFINITY_INFO of MPIDRs that are not this domain's: the next CPUs (other
    // domains' vCPUs run there), other clusters, Aff3, bit 31 and U bit set.
    let own = a.ctx.platform.cpus.len() as u64;
    let entry = crate::smp::secondary_entry_address();
    let mut targets = [0u64; 8];
    for (i, t) in targets.iter_mut().take(4).enumerate() {
        *t = own + i as u64;
    }
    targets[4] = 0x100;
    targets[5] = 0x1_0000;
    targets[6] = 0x1_0000_0000;
    targets[7] = (1 << 31) | (1 << 30) | own;
    let mut bad = None;
    for &target in &targets {
        // SMC32 CPU_ON sees only the low 32 bits of the target.
        let smc32 = (target <= u64::from(u32::MAX)).then_some(psci::CPU_ON & !(1 << 30));
        for f in [Some(psci::CPU_ON), smc32].into_iter().flatten() {
            let result = p(f, [target, entry, 0]);
            if result.fault.is_some() || result.ret() != psci::INVALID_PARAMETERS {
                bad = Some((target, result));
            }
        }
        let info = p(psci::AFFINITY_INFO, [target, 0, 0]);
        if info.fault.is_some() || info.ret() != psci::INVALID_PARAMETERS {
            bad = Some((target, info));
        }
    }
    let bad = Detail(bad.map(|(target, result)| (target, result.function, result)));
    a.check(
        format_args!(
            "CPU_ON (SMC32 and SMC64) and AFFINITY_INFO of 8 MPIDRs not in this domain \
             (other domains' {own:#x}.., other clusters, Aff3, bits 31/30): INVALID_PARAMETERS"
        ),
        bad.0.is_none(),
        bad,
    );
    let me = crate::current_mpidr();
    a.call(
        "CPU_ON of the calling vCPU: ALREADY_ON",
        p(psci::CPU_ON, [me, entry, 0]),
        |r| r == psci::ALREADY_ON,
    );
    if let Some(other) = a.ctx.platform.cpus.iter().find(|&m| m != me) {
        for bad_entry in [!3, 0x1000, 0x4000_0000 + (3 << 30)] {
            a.call(
                format_args!(
                    "CPU_ON({other:#x}) with entry {bad_entry:#x} outside RAM: INVALID_ADDRESS"
                ),
                p(psci::CPU_ON, [other, bad_entry, 0]),
                |r| r == psci::INVALID_ADDRESS,
            );
        }
    }
    a.call(
        "HYP_ABI_VERSION with wild arguments: the version",
        smccc::call(Conduit::Hvc, hyp_abi::HYP_ABI_VERSION, WILD),
        |r| r as u64 == hyp_abi::encoded_version(),
    );
    a.call(
        "HYP_DOMAIN_RESET_COUNT with wild arguments: a count",
        smccc::call(Conduit::Hvc, hyp_abi::HYP_DOMAIN_RESET_COUNT, WILD),
        |r| r >= 0,
    );
}

/// Function IDs the sweep must not make: they stop, suspend or reset the caller.
fn dangerous(fid: u32) -> bool {
    let owner = (fid >> 24) & 0x3f;
    let number = fid & 0xffff;
    match owner {
        // CPU_OFF, CPU_ON (tested on its own), SYSTEM_OFF, SYSTEM_RESET, CPU_FREEZE,
        // CPU_DEFAULT_SUSPEND, SYSTEM_SUSPEND, SYSTEM_RESET2.
        4 => matches!(number, 2 | 3 | 8 | 9 | 0xb | 0xc | 0xe | 0x12),
        // HYP_DOMAIN_EXIT.
        6 => number == (hyp_abi::HYP_DOMAIN_EXIT & 0xffff),
        _ => false,
    }
}

/// System registers and instructions: IMPLEMENTATION DEFINED, EL2 and EL3 registers,
/// timers, debug, PMU, RAS, GIC, semihosting, SError.
fn registers(a: &mut Attacks<'_, '_>) {
    a.expect(
        "read of IMPLEMENTATION DEFINED S3_0_C15_C0_0",
        Want::Undef,
        probe_read!("s3_0_c15_c0_0").1,
    );
    a.expect(
        "write to IMPLEMENTATION DEFINED S3_1_C15_C2_0",
        Want::Undef,
        probe_write!("s3_1_c15_c2_0", u64::MAX),
    );
    a.expect(
        "read of IMPLEMENTATION DEFINED S3_7_C15_C15_7",
        Want::Undef,
        probe_read!("s3_7_c15_c15_7").1,
    );
    a.expect(
        "write to IMPLEMENTATION DEFINED S3_2_C11_C0_0",
        Want::Undef,
        probe_write!("s3_2_c11_c0_0", u64::MAX),
    );
    let (before, _) = probe_read!("actlr_el1");
    let write = probe_write!("actlr_el1", u64::MAX);
    let (after, read) = probe_read!("actlr_el1");
    a.check(
        "write of all ones to ACTLR_EL1: ignored",
        write.is_none() && read.is_none() && after == before,
        format_args!(
            "{} / {}: {before:#x} -> {after:#x}",
            FaultDetail(write),
            FaultDetail(read)
        ),
    );

    a.expect(
        "read of HCR_EL2 from EL1",
        Want::Undef,
        probe_read!("hcr_el2").1,
    );
    a.expect(
        "write of VTTBR_EL2 from EL1",
        Want::Undef,
        probe_write!("vttbr_el2", 0),
    );
    a.expect(
        "write of MDCR_EL2 from EL1",
        Want::Undef,
        probe_write!("mdcr_el2", 0),
    );
    a.expect(
        "write of CNTHCTL_EL2 from EL1",
        Want::Undef,
        probe_write!("cnthctl_el2", u64::MAX),
    );
    a.expect(
        "write of CNTVOFF_EL2 from EL1",
        Want::Undef,
        probe_write!("cntvoff_el2", 1 << 40),
    );
    a.expect(
        "write of VSESR_EL2 from EL1",
        Want::Undef,
        probe_write!("s3_4_c5_c2_3", u64::MAX),
    );
    a.expect(
        "read of SCR_EL3 from EL1",
        Want::Undef,
        probe_read!("scr_el3").1,
    );
    a.expect(
        "TLBI ALLE2 from EL1",
        Want::Undef,
        probe_insn!("tlbi alle2"),
    );

    // Timers.
    let frequency = time::frequency();
    let write = probe_write!("cntfrq_el0", 12_345);
    let after = time::frequency();
    a.check(
        "write to CNTFRQ_EL0: UNDEF or ignored, the frequency unchanged",
        Want::UndefOrNothing.accepts(write) && after == frequency,
        format_args!("{}; {frequency} -> {after}", FaultDetail(write)),
    );
    a.expect(
        "read of the secure physical timer CNTPS_CTL_EL1",
        Want::UndefOrNothing,
        probe_read!("cntps_ctl_el1").1,
    );
    a.expect(
        "write of the EL2 physical timer CNTHP_CTL_EL2",
        Want::Undef,
        probe_write!("cnthp_ctl_el2", 1),
    );
    for (name, which) in [("EL1 physical", 0), ("virtual", 1)] {
        let start = time::now();
        let faults = [
            if which == 0 {
                probe_write!("cntp_cval_el0", 0)
            } else {
                probe_write!("cntv_cval_el0", 0)
            },
            if which == 0 {
                probe_write!("cntp_ctl_el0", 1)
            } else {
                probe_write!("cntv_ctl_el0", 1)
            },
        ];
        // The timer's interrupt is asserted now; keep running with it pending.
        let ran = time::wait_until(5, || false);
        let off = if which == 0 {
            probe_write!("cntp_ctl_el0", 0)
        } else {
            probe_write!("cntv_ctl_el0", 0)
        };
        let elapsed = time::ticks_to_ms(time::now() - start);
        let faults = [faults[0], faults[1], off];
        let faults = Faults(&faults, Want::Nothing);
        a.check(
            format_args!(
                "{name} timer firing at once (CVAL 0, unmasked) for 5 ms: the guest runs on"
            ),
            faults.ok() && !ran && elapsed < 2000,
            format_args!("{faults}, {elapsed} ms"),
        );
    }
    let (kctl, _) = probe_read!("cntkctl_el1");
    let write = probe_write!("cntkctl_el1", u64::MAX);
    let restore = probe_write!("cntkctl_el1", kctl);
    a.check(
        "write of all ones to CNTKCTL_EL1 (EL0 access, event stream): the guest's own",
        write.is_none() && restore.is_none(),
        format_args!("{} / {}", FaultDetail(write), FaultDetail(restore)),
    );

    // Debug.
    let (mdscr, _) = probe_read!("mdscr_el1");
    let write = probe_write!("mdscr_el1", mdscr | (1 << 15) | (1 << 13));
    let restore = probe_write!("mdscr_el1", mdscr);
    a.check(
        "MDSCR_EL1.MDE and KDE set (debug exceptions masked by PSTATE.D): accepted",
        write.is_none() && restore.is_none(),
        format_args!("{} / {}", FaultDetail(write), FaultDetail(restore)),
    );
    let brk = capture(|| {
        // SAFETY: a software breakpoint; the guest's own handler skips it.
        unsafe { asm!("brk #0x1234", options(nostack)) }
    })
    .1;
    a.check(
        "BRK #0x1234: the guest's own breakpoint exception (EC 0x3c)",
        brk.is_some_and(|f| f.ec() == 0x3c && f.esr & 0xffff == 0x1234),
        FaultDetail(brk),
    );
    a.expect(
        "OS double lock OSDLR_EL1.DLK set and cleared",
        Want::UndefOrNothing,
        probe_write!("osdlr_el1", 1).or(probe_write!("osdlr_el1", 0)),
    );
    a.expect(
        "write to DBGPRCR_EL1 (core power-down request)",
        Want::UndefOrNothing,
        probe_write!("dbgprcr_el1", 1),
    );
    a.expect(
        "write to DBGDTRTX_EL0 (debug communications channel)",
        Want::UndefOrNothing,
        probe_write!("dbgdtrtx_el0", 0x41),
    );
    a.expect(
        "read of DBGBCR15_EL1 (maybe beyond the implemented breakpoints)",
        Want::UndefOrNothing,
        probe_read!("dbgbcr15_el1").1,
    );
    a.expect(
        "write to statistical profiling control PMSCR_EL1",
        Want::UndefOrNothing,
        probe_write!("s3_0_c9_c9_0", u64::MAX),
    );
    a.expect(
        "write to trace buffer limit TRBLIMITR_EL1",
        Want::UndefOrNothing,
        probe_write!("s3_0_c9_c11_0", 1),
    );
    a.expect(
        "write to activity monitors control AMCR_EL0",
        Want::UndefOrNothing,
        probe_write!("s3_3_c13_c2_0", u64::MAX),
    );
    a.expect(
        "write to MPAM1_EL1",
        Want::UndefOrNothing,
        probe_write!("s3_0_c10_c5_0", u64::MAX),
    );

    // PMU.
    if pmu_version().is_some() {
        let faults = [
            probe_write!("pmcr_el0", 0b111),
            probe_write!("pmuserenr_el0", 0xf),
            probe_write!("pmselr_el0", 0x1f),
            probe_write!("pmxevtyper_el0", u64::MAX),
            probe_write!("pmccfiltr_el0", 1 << 27),
            probe_write!("pmcntenset_el0", u64::MAX),
            probe_write!("pmswinc_el0", u64::MAX),
            probe_write!("pmcr_el0", 0b110),
            probe_write!("pmcntenclr_el0", u64::MAX),
            probe_write!("pmuserenr_el0", 0),
        ];
        let faults = Faults(&faults, Want::Nothing);
        a.check(
            "PMU: reset, enable every counter, EL2 filter, software increments, EL0 access",
            faults.ok(),
            faults,
        );
        let start = time::now();
        let set = [
            probe_write!("pmintenset_el1", u64::MAX),
            probe_write!("pmovsset_el0", u64::MAX),
        ];
        let waited = time::wait_until(5, || false);
        let faults = [
            set[0],
            set[1],
            probe_write!("pmovsclr_el0", u64::MAX),
            probe_write!("pmintenclr_el1", u64::MAX),
        ];
        let elapsed = time::ticks_to_ms(time::now() - start);
        let faults = Faults(&faults, Want::Nothing);
        a.check(
            "PMU overflow interrupt raised on every counter for 5 ms: the guest runs on",
            faults.ok() && !waited && elapsed < 2000,
            format_args!("{faults}, {elapsed} ms"),
        );
    } else {
        a.ctx.report.skip("no PMUv3: PMU attacks left out");
    }

    // RAS.
    if ras_version() != 0 {
        let faults = [
            probe_write!("s3_0_c5_c3_1", 0xffff),   // ERRSELR_EL1
            probe_write!("s3_0_c5_c4_1", u64::MAX), // ERXCTLR_EL1
            probe_write!("s3_0_c5_c4_2", u64::MAX), // ERXSTATUS_EL1
            probe_write!("s3_0_c5_c4_3", u64::MAX), // ERXADDR_EL1
            probe_write!("s3_0_c5_c5_0", u64::MAX), // ERXMISC0_EL1
            probe_read!("s3_0_c5_c4_0").1,          // ERXFR_EL1
            probe_write!("s3_0_c12_c1_1", 0),       // DISR_EL1
            probe_insn!("hint #16"),                // ESB
        ];
        let faults = Faults(&faults, Want::UndefOrNothing);
        a.check(
            "RAS: select record 0xffff, write all ones to its control/status/address/misc, ESB",
            faults.ok(),
            faults,
        );
    } else {
        a.ctx.report.skip("no RAS extension: RAS attacks left out");
    }

    // SError: unmask it after a store to nothing and barriers; nothing may arrive.
    let _ = store32(0x1000_0000, 1);
    let fault = capture(|| {
        // SAFETY: unmasks SError around barriers and an ESB (a hint without RAS), then
        // masks it again; any SError taken would be an unexpected exception.
        unsafe {
            asm!(
                "msr daifclr, #4",
                "isb",
                "dsb sy",
                "hint #16",
                "isb",
                "msr daifset, #4",
                options(nostack)
            )
        }
    })
    .1;
    let (isr, _) = probe_read!("isr_el1");
    a.check(
        "SError unmasked after a store to nothing, DSB, ESB: none pending or taken",
        fault.is_none() && isr & (1 << 8) == 0,
        format_args!("{} (ISR_EL1 {isr:#x})", FaultDetail(fault)),
    );

    // GIC CPU interface system registers (ICV_* under the hypervisor).
    let gic_sysregs = (id_regs().0 >> 24) & 0xf != 0;
    let want = if gic_sysregs {
        Want::UndefOrNothing
    } else {
        Want::Undef
    };
    let sgi = probe_write!("s3_0_c12_c11_5", (1 << 40) | (15 << 24)); // ICC_SGI1R_EL1
    a.expect(
        "ICC_SGI1R_EL1: SGI 15 broadcast to every other CPU (IRM = 1)",
        want,
        sgi,
    );
    let sgi0 = probe_write!("s3_0_c12_c11_7", (1 << 40) | (15 << 24)); // ICC_SGI0R_EL1
    a.expect("ICC_SGI0R_EL1: group 0 SGI broadcast", want, sgi0);
    let (_, iar) = probe_read!("s3_0_c12_c12_0"); // ICC_IAR1_EL1
    a.expect("ICC_IAR1_EL1 acknowledge with nothing pending", want, iar);

    // Semihosting.
    let (result, fault) = semihosting_call(0x11, 0); // SYS_TIME
    a.check(
        "semihosting SYS_TIME (HLT #0xf000): UNDEF at EL1, never reaches the host",
        Want::Undef.accepts(fault),
        format_args!("{} (x0 {result:#x})", FaultDetail(fault)),
    );
    let fault = capture(|| {
        // SAFETY: a halt instruction; with halting debug off it is UNDEFINED at EL1.
        unsafe { asm!("hlt #0", options(nostack)) }
    })
    .1;
    a.expect("HLT #0", Want::Undef, fault);
}

/// A semihosting call (`HLT #0xf000`, operation in `w0`, parameter block in `x1`):
/// `(x0 afterwards, fault)`.
pub fn semihosting_call(op: u64, param: u64) -> (u64, Option<Fault>) {
    capture(|| {
        let mut x0 = op;
        // SAFETY: a semihosting trap; with semihosting off it is UNDEFINED at EL1 and
        // `capture` skips it. With semihosting on, the host reads the parameter block at
        // `param` (memory of ours the caller owns) and may write x0.
        unsafe { asm!("hlt #0xf000", inout("x0") x0, in("x1") param, options(nostack)) };
        x0
    })
}

/// Runs `op` [`STORM`] times: one attack, all must complete.
fn storm(a: &mut Attacks<'_, '_>, what: &str, op: &mut dyn FnMut() -> Option<Fault>) {
    let start = time::now();
    let mut first = None;
    for _ in 0..STORM {
        if let Some(fault) = op() {
            first.get_or_insert(fault);
        }
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: hostile: {STORM} x {what}: {ms} ms");
    a.check(
        format_args!("{STORM} x {what}: all complete"),
        first.is_none(),
        FaultDetail(first),
    );
}

/// Storms: TLB, instruction and data cache maintenance, set/way, WFI, WFE, SCTLR_EL1
/// writes, ID register reads.
fn storms(a: &mut Attacks<'_, '_>) {
    storm(a, "TLBI VMALLE1IS", &mut || probe_insn!("tlbi vmalle1is"));
    storm(a, "TLBI VAE1IS of all ones", &mut || {
        probe_insn_arg!("tlbi vae1is, {}", u64::MAX)
    });
    storm(a, "TLBI ASIDE1IS of ASID 0xffff", &mut || {
        probe_insn_arg!("tlbi aside1is, {}", 0xffff << 48)
    });
    storm(a, "IC IALLUIS", &mut || probe_insn!("ic ialluis"));
    let (image_start, _) = crate::image_range();
    let mut line = 0;
    storm(a, "DC CIVAC over the image", &mut || {
        line = (line + 64) % (256 << 10);
        probe_insn_arg!("dc civac, {}", image_start + line)
    });
    storm(a, "WFI", &mut || probe_insn!("wfi"));
    storm(a, "SEVL; WFE", &mut || probe_insn!("sevl\nwfe"));
    let (sctlr, _) = probe_read!("sctlr_el1");
    storm(a, "SCTLR_EL1 rewritten with its own value", &mut || {
        probe_write!("sctlr_el1", sctlr)
    });
    storm(
        a,
        "ID_AA64PFR0_EL1/ID_AA64DFR0_EL1/ID_AA64MMFR0_EL1 reads",
        &mut || {
            probe_read!("id_aa64pfr0_el1")
                .1
                .or(probe_read!("id_aa64dfr0_el1").1)
                .or(probe_read!("id_aa64mmfr0_el1").1)
        },
    );

    let start = time::now();
    let mut first = None;
    for _ in 0..SET_WAY_STORM {
        for fault in [
            probe_insn_arg!("dc cisw, {}", 0),
            probe_insn_arg!("dc csw, {}", 0),
            probe_insn_arg!("dc isw, {}", 2),
        ]
        .into_iter()
        .flatten()
        {
            first.get_or_insert(fault);
        }
    }
    let ms = time::ticks_to_ms(time::now() - start);
    println!("guest: hostile: {SET_WAY_STORM} x DC CISW/CSW/ISW on set 0 way 0: {ms} ms");
    a.check(
        format_args!("{SET_WAY_STORM} x DC CISW, DC CSW, DC ISW on set 0 way 0: all complete"),
        first.is_none(),
        FaultDetail(first),
    );
}
