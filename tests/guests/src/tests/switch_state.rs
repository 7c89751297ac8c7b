//! `switch-state` (not in `all`): guest-visible registers beyond the EL1 system registers
//! keep this vCPU's values while it runs, for a hypervisor that switches vCPUs (of this
//! domain or another) on its physical CPU. The boot vCPU writes a pattern derived from
//! `magic=` (or the domain's `name=`), so two domains write different values, into
//! a breakpoint and a watchpoint and the claim tags, the PMU (PMEVTYPER0, PMCCFILTR,
//! PMSELR, a PMINTENSET bit, PMEVCNTR0 with counting off), the APIB pointer-auth key,
//! Q16-Q23 and FPCR, ZCR_EL1, Z5, P5 and FFR (SVE), TPIDR2_EL0, SMCR_EL1 and the ZA
//! array (SME), DISR_EL1 (RAS), the LORegion registers and SCXTNUM_EL0/EL1 where they hold
//! values; what each register keeps is read back once and is the expected value. Then,
//! every 10 ms for `wait-ms` (default 600), everything is read again and compared. With
//! SME, a second phase of half that time does the same in streaming mode (Z7 and P7 at
//! the streaming length, SVCR, ZA).
//!
//! One `PASS`, or a `FAIL` naming the first mismatch, per group; an absent feature gives
//! a `guest: switch-state: no <feature>` line instead. It spins between checks (no WFI:
//! on bare QEMU nothing would wake it), and makes a PSCI_VERSION call before each, so the
//! hypervisor sees an exit every round.

use core::arch::asm;

use crate::exception::capture;
use crate::{Ctx, power, println, time};

/// PSCI_VERSION: a call with no effect.
const PSCI_VERSION: u32 = 0x8400_0000;

/// Reads a system register by name or encoding.
macro_rules! read {
    ($reg:expr) => {{
        let value: u64;
        // SAFETY: reading a register of a feature this guest checked for has no side effect.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// Writes a system register by name or encoding, then synchronises.
macro_rules! write {
    ($reg:expr, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: the registers written here are this guest's own debug, PMU, pointer-auth
        // (a key it does not use), FP/vector and RAS/LOR state, none of which the compiled
        // code relies on (soft-float, no pointer authentication, breakpoints not enabled).
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) value, options(nomem, nostack)) }
    }};
}

fn field(value: u64, shift: u32) -> u64 {
    (value >> shift) & 0xf
}

/// SplitMix64: a well-mixed word from the seed and a position.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a name, for a domain without `magic=`.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The largest vector length in bytes (Z registers, ZA rows).
const MAX_VL: usize = 256;

/// Reads a group of registers and compares them with the plan; `None` when the CPU
/// lacks the feature.
type GroupCheck = fn(&Plan) -> Option<Check>;

/// The first value that differed.
struct Mismatch {
    reg: &'static str,
    /// 64-bit word within the register (0 for plain registers).
    word: usize,
    expected: u64,
    got: u64,
}

type Check = Result<(), Mismatch>;

fn expect(reg: &'static str, word: usize, expected: u64, got: u64) -> Check {
    if expected == got {
        Ok(())
    } else {
        Err(Mismatch {
            reg,
            word,
            expected,
            got,
        })
    }
}

/// Compares `got` with `expected` in 64-bit words (the last one padded with zeros).
fn expect_bytes(reg: &'static str, expected: &[u8], got: &[u8]) -> Check {
    for (word, (e, g)) in expected.chunks(8).zip(got.chunks(8)).enumerate() {
        let to_u64 = |bytes: &[u8]| {
            let mut w = [0u8; 8];
            w[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(w)
        };
        expect(reg, word, to_u64(e), to_u64(g))?;
    }
    Ok(())
}

/// Fills `buf` with the pattern `tag` of this seed.
fn fill(buf: &mut [u8], seed: u64, tag: u64) {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let bytes = mix(seed, (tag << 32) | i as u64).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// FFR takes a monotonic pattern: the first `k` byte elements true, `k` from the seed.
fn ffr_pattern(seed: u64, vl: usize) -> [u8; MAX_VL / 8] {
    let k = 1 + (mix(seed, 19) % vl as u64) as usize;
    let mut ffr = [0u8; MAX_VL / 8];
    for (i, byte) in ffr.iter_mut().enumerate() {
        *byte = if 8 * i + 8 <= k {
            0xff
        } else if 8 * i < k {
            (1u8 << (k - 8 * i)) - 1
        } else {
            0
        };
    }
    ffr
}

/// What was written, as read back.
#[derive(Default)]
struct Plan {
    seed: u64,
    debug: Option<[u64; 5]>,
    pmu: Option<[u64; 6]>,
    pauth: Option<[u64; 2]>,
    fpcr: u64,
    /// ZCR_EL1 and the vector length in bytes.
    sve: Option<(u64, usize)>,
    /// TPIDR2_EL0, SMCR_EL1, and the streaming vector length in bytes.
    sme: Option<(u64, u64, usize)>,
    disr: Option<u64>,
    lor: Option<[u64; 4]>,
    scxtnum: Option<[u64; 2]>,
}

const DEBUG_REGS: [&str; 5] = [
    "DBGBVR0_EL1",
    "DBGBCR0_EL1",
    "DBGWVR0_EL1",
    "DBGWCR0_EL1",
    "claim tags (DBGCLAIMCLR_EL1)",
];
const PMU_REGS: [&str; 6] = [
    "PMEVTYPER0_EL0",
    "PMCCFILTR_EL0",
    "PMSELR_EL0",
    "PMINTENSET_EL1",
    "PMEVCNTR0_EL0",
    "PMCNTENSET_EL0",
];
const LOR_REGS: [&str; 4] = ["LORSA_EL1", "LOREA_EL1", "LORN_EL1", "LORC_EL1"];

fn read_debug() -> [u64; 5] {
    [
        read!("dbgbvr0_el1"),
        read!("dbgbcr0_el1"),
        read!("dbgwvr0_el1"),
        read!("dbgwcr0_el1"),
        read!("dbgclaimclr_el1"),
    ]
}

fn read_pmu() -> [u64; 6] {
    [
        read!("pmevtyper0_el0"),
        read!("pmccfiltr_el0"),
        read!("pmselr_el0"),
        read!("pmintenset_el1"),
        read!("pmevcntr0_el0"),
        read!("pmcntenset_el0"),
    ]
}

fn read_pauth() -> [u64; 2] {
    [read!("s3_0_c2_c1_2"), read!("s3_0_c2_c1_3")] // APIBKeyLo/Hi_EL1
}

fn read_lor() -> [u64; 4] {
    [
        read!("s3_0_c10_c4_0"),
        read!("s3_0_c10_c4_1"),
        read!("s3_0_c10_c4_2"),
        read!("s3_0_c10_c4_3"),
    ]
}

fn read_scxtnum() -> [u64; 2] {
    [read!("s3_3_c13_c0_7"), read!("s3_0_c13_c0_7")]
}

/// Q16-Q23 into `buf` (128 bytes).
fn store_q(buf: &mut [u8; 128]) {
    // SAFETY: STR Q16..Q23, [x9, #16 * i] (encoded: soft-float target) writes exactly the
    // 128 bytes of `buf`; FP is enabled (CPACR_EL1.FPEN).
    unsafe {
        asm!(
            ".irp i, 0,1,2,3,4,5,6,7",
            ".inst 0x3d800000 | (\\i << 10) | (9 << 5) | (16 + \\i)",
            ".endr",
            in("x9") buf.as_mut_ptr(),
            options(nostack)
        )
    };
}

/// Q16-Q23 from `buf`.
fn load_q(buf: &[u8; 128]) {
    // SAFETY: LDR Q16..Q23, [x9, #16 * i] reads the 128 bytes of `buf`; nothing of the
    // compiled code lives in FP registers.
    unsafe {
        asm!(
            ".irp i, 0,1,2,3,4,5,6,7",
            ".inst 0x3dc00000 | (\\i << 10) | (9 << 5) | (16 + \\i)",
            ".endr",
            in("x9") buf.as_ptr(),
            options(nostack, readonly)
        )
    };
}

/// RDVL x9, #1: the current vector length in bytes (the streaming one in streaming mode).
fn rdvl() -> usize {
    let bytes: u64;
    // SAFETY: only writes x9; SVE (or streaming mode) is enabled.
    unsafe { asm!(".inst 0x04bf5029", out("x9") bytes, options(nomem, nostack)) };
    bytes as usize
}

/// RDSVL x9, #1: the streaming vector length in bytes.
fn rdsvl() -> usize {
    let bytes: u64;
    // SAFETY: only writes x9; SME is enabled.
    unsafe { asm!(".inst 0x04bf5829", out("x9") bytes, options(nomem, nostack)) };
    bytes as usize
}

/// Z5 (`z`), P5 and FFR (via P6) from / into buffers, at the current vector length.
/// The buffers hold at least a vector (`z`) or a predicate (`p`, `ffr`).
fn sve_regs(
    z: &mut [u8; MAX_VL],
    p: &mut [u8; MAX_VL / 8],
    ffr: &mut [u8; MAX_VL / 8],
    load: bool,
) {
    if load {
        // SAFETY: LDR Z5, [x9]; LDR P5, [x10]; LDR P6, [x11]; WRFFR P6.B: reads at most a
        // vector / predicate from each buffer; only vector registers are written.
        unsafe {
            asm!(
                ".inst 0x85804125",
                ".inst 0x85800145",
                ".inst 0x85800166",
                ".inst 0x252890c0",
                in("x9") z.as_ptr(),
                in("x10") p.as_ptr(),
                in("x11") ffr.as_ptr(),
                options(nostack, readonly)
            )
        };
    } else {
        // SAFETY: STR Z5, [x9]; STR P5, [x10]; RDFFR P6.B; STR P6, [x11]: writes at most a
        // vector / predicate into each buffer.
        unsafe {
            asm!(
                ".inst 0xe5804125",
                ".inst 0xe5800145",
                ".inst 0x2519f006",
                ".inst 0xe5800166",
                in("x9") z.as_mut_ptr(),
                in("x10") p.as_mut_ptr(),
                in("x11") ffr.as_mut_ptr(),
                options(nostack)
            )
        };
    }
}

/// Z7 and P7 from / into buffers (streaming mode: no FFR).
fn streaming_regs(z: &mut [u8; MAX_VL], p: &mut [u8; MAX_VL / 8], load: bool) {
    if load {
        // SAFETY: LDR Z7, [x9]; LDR P7, [x10].
        unsafe {
            asm!(
                ".inst 0x85804127",
                ".inst 0x85800147",
                in("x9") z.as_ptr(),
                in("x10") p.as_ptr(),
                options(nostack, readonly)
            )
        };
    } else {
        // SAFETY: STR Z7, [x9]; STR P7, [x10].
        unsafe {
            asm!(
                ".inst 0xe5804127",
                ".inst 0xe5800147",
                in("x9") z.as_mut_ptr(),
                in("x10") p.as_mut_ptr(),
                options(nostack)
            )
        };
    }
}

/// ZA row `row` from / into `buf` (LDR/STR ZA[w12, 0], [x11]).
fn za_row(row: usize, buf: &mut [u8; MAX_VL], load: bool) {
    if load {
        // SAFETY: reads one ZA row (the streaming vector length) from `buf`; ZA is on.
        unsafe {
            asm!(".inst 0xe1000160", in("x11") buf.as_ptr(), in("x12") row, options(nostack, readonly))
        };
    } else {
        // SAFETY: writes one ZA row into `buf`; ZA is on.
        unsafe {
            asm!(".inst 0xe1200160", in("x11") buf.as_mut_ptr(), in("x12") row, options(nostack))
        };
    }
}

/// PSTATE.SM/ZA changes: SMSTART ZA, SMSTART SM, SMSTOP (both).
fn smstart_za() {
    // SAFETY: turns ZA on (zeroed); no compiled code uses it.
    unsafe { asm!(".inst 0xd503457f", options(nomem, nostack)) };
}
fn smstart_sm() {
    // SAFETY: enters streaming mode; the compiled code is integer-only, legal there.
    unsafe { asm!(".inst 0xd503437f", options(nomem, nostack)) };
}
fn smstop() {
    // SAFETY: leaves streaming mode and turns ZA off.
    unsafe { asm!(".inst 0xd503467f", options(nomem, nostack)) };
}

pub fn run(ctx: &mut Ctx<'_>) {
    let seed = mix(
        ctx.args.magic.unwrap_or_else(|| hash(ctx.args.name)),
        0x5717c4,
    );
    let ms = ctx.args.wait_ms.unwrap_or(600);
    let pfr0 = read!("id_aa64pfr0_el1");
    let pfr1 = read!("id_aa64pfr1_el1");
    let dfr0 = read!("id_aa64dfr0_el1");
    let isar1 = read!("id_aa64isar1_el1");
    let isar2 = read!("s3_0_c0_c6_2");
    let mmfr1 = read!("id_aa64mmfr1_el1");
    let has_sve = field(pfr0, 32) != 0;
    let has_sme = field(pfr1, 24) != 0;

    // FP/SIMD always; SVE and SME controls where present.
    let mut cpacr = read!("cpacr_el1") | (0b11 << 20);
    if has_sve {
        cpacr |= 0b11 << 16;
    }
    if has_sme {
        cpacr |= 0b11 << 24;
    }
    write!("cpacr_el1", cpacr);

    let mut plan = Plan {
        seed,
        ..Default::default()
    };
    let m = |n: u64| mix(seed, n);

    // Breakpoint 0 and watchpoint 0, not enabled (E = 0): EL1/EL0 (PMC/PAC 0b11), all
    // bytes (BAS), an LBN / BAS from the seed; the claim tags.
    write!("dbgclaimclr_el1", 0xff);
    write!("dbgbvr0_el1", (m(1) & 0x0000_ffff_ffff_fffc) | 4);
    write!("dbgbcr0_el1", 0x1e6 | ((m(2) & 0xf) << 16));
    write!("dbgwvr0_el1", (m(3) & 0x0000_ffff_ffff_fff8) | 8);
    write!("dbgwcr0_el1", 0b11110 | (((m(4) & 0xff) | 1) << 5));
    write!("dbgclaimset_el1", (m(5) & 0xff) | 1);
    plan.debug = Some(read_debug());

    // PMU: counting off; values that must stay.
    let pmu_ver = field(dfr0, 8);
    let counters = if pmu_ver != 0 && pmu_ver != 0xf {
        (read!("pmcr_el0") >> 11) & 0x1f
    } else {
        0
    };
    if counters == 0 {
        println!("guest: switch-state: no PMU (no PMUv3, no event counters, or hidden)");
    } else {
        write!("pmcntenclr_el0", u64::from(u32::MAX));
        write!("pmintenclr_el1", u64::from(u32::MAX));
        let events = [0x08u64, 0x11, 0x03, 0x04];
        // Event, and the P/U/NSK filter bits.
        write!(
            "pmevtyper0_el0",
            events[(m(6) % 4) as usize] | ((m(7) & 0x7) << 29)
        );
        // P/U/NSK/NSU/NSH, at least one.
        write!("pmccfiltr_el0", ((m(8) & 0x1f) | 1) << 27);
        write!("pmselr_el0", m(9) % counters);
        write!("pmintenset_el1", 1 << (m(10) % counters));
        write!("pmevcntr0_el0", (m(11) & 0xffff_ffff) | 1);
        plan.pmu = Some(read_pmu());
    }

    // APIB key (EL1 can read it; this guest never authenticates pointers).
    let has_pauth = [4, 8, 24, 28].iter().any(|&s| field(isar1, s) != 0)
        || field(isar2, 12) != 0
        || field(isar2, 8) != 0;
    if has_pauth {
        write!("s3_0_c2_c1_2", m(12));
        write!("s3_0_c2_c1_3", m(13));
        plan.pauth = Some(read_pauth());
    } else {
        println!("guest: switch-state: no pointer authentication");
    }

    // FP/SIMD: Q16-Q23 and FPCR (rounding mode, FZ, DN: nothing here computes in FP).
    let mut q = [0u8; 128];
    fill(&mut q, seed, 14);
    load_q(&q);
    write!("s3_3_c4_c4_0", ((m(15) & 0xf) | 1) << 22); // FPCR
    plan.fpcr = read!("s3_3_c4_c4_0");

    // SVE: ZCR_EL1.LEN from the seed (at least 256 bits asked), Z5, P5, FFR.
    if has_sve {
        write!("s3_0_c1_c2_0", 1 + m(16) % 15); // ZCR_EL1
        let vl = rdvl().min(MAX_VL);
        plan.sve = Some((read!("s3_0_c1_c2_0"), vl));
        let (mut z, mut p) = ([0u8; MAX_VL], [0u8; MAX_VL / 8]);
        fill(&mut z, seed, 17);
        fill(&mut p, seed, 18);
        let mut ffr = ffr_pattern(seed, vl);
        sve_regs(&mut z, &mut p, &mut ffr, true);
        println!(
            "guest: switch-state: SVE vector length {} bits{}",
            vl * 8,
            if vl <= 16 {
                " (Z5 has no bits beyond Q5)"
            } else {
                ""
            }
        );
    } else {
        println!("guest: switch-state: no SVE");
    }

    // SME: TPIDR2_EL0, SMCR_EL1.LEN (256 or 512 bits asked), ZA on with every row set.
    if has_sme {
        write!("s3_3_c13_c0_5", m(20)); // TPIDR2_EL0
        write!("s3_0_c1_c2_6", if m(21) & 1 == 0 { 1 } else { 3 }); // SMCR_EL1
        let svl = rdsvl().min(MAX_VL);
        plan.sme = Some((read!("s3_3_c13_c0_5"), read!("s3_0_c1_c2_6"), svl));
        smstart_za();
        let mut row = [0u8; MAX_VL];
        for r in 0..svl {
            fill(&mut row[..svl], seed, 0x100 + r as u64);
            za_row(r, &mut row, true);
        }
        println!(
            "guest: switch-state: SME streaming vector length {} bits, ZA on ({svl} rows)",
            svl * 8
        );
    } else {
        println!("guest: switch-state: no SME");
    }

    // DISR_EL1 (RAS): under a hypervisor with HCR_EL2.AMO this is its VDISR_EL2.
    if field(pfr0, 28) != 0 {
        let (_, fault) = capture(|| write!("s3_0_c12_c1_1", (m(22) & 0xff_ffff) | (1 << 24)));
        let (value, read_fault) = capture(|| read!("s3_0_c12_c1_1"));
        if fault.or(read_fault).is_none() && value != 0 {
            plan.disr = Some(value);
        } else {
            println!("guest: switch-state: no DISR_EL1 storage (reads {value:#x} or faults)");
        }
    } else {
        println!("guest: switch-state: no RAS (DISR_EL1)");
    }

    // LORegions, not enabled (LORC.EN = 0, LORSA.Valid = 0).
    if field(mmfr1, 16) != 0 {
        // One access per window: a second fault inside one would be unexpected.
        let (_, fault) = capture(|| write!("s3_0_c10_c4_0", m(23) & 0x000f_ffff_ffff_0000));
        let values = if fault.is_none() {
            write!("s3_0_c10_c4_1", m(24) & 0x000f_ffff_ffff_0000);
            write!("s3_0_c10_c4_2", m(25) & 0xff);
            write!("s3_0_c10_c4_3", (m(26) & 0xff) << 2);
            read_lor()
        } else {
            [0; 4]
        };
        if fault.is_none() && values != [0; 4] {
            plan.lor = Some(values);
        } else {
            println!(
                "guest: switch-state: no LORegion storage (the registers read as zero or fault)"
            );
        }
    } else {
        println!("guest: switch-state: no LORegions");
    }

    // SCXTNUM_EL0/EL1 (CSV2 >= 2).
    if field(pfr0, 56) >= 2 {
        // One access per window: a second fault inside one would be unexpected.
        let (_, fault) = capture(|| write!("s3_3_c13_c0_7", m(27)));
        let fault = fault.or_else(|| capture(|| write!("s3_0_c13_c0_7", m(28))).1);
        let values = if fault.is_none() {
            read_scxtnum()
        } else {
            [0; 2]
        };
        if fault.is_none() {
            plan.scxtnum = Some(values);
        } else {
            println!("guest: switch-state: no SCXTNUM_EL0/EL1 (their accesses fault)");
        }
    } else {
        println!("guest: switch-state: no SCXTNUM_EL0/EL1 (CSV2 < 2)");
    }

    // Everything is written: check it for `ms`, every 10 ms.
    println!("guest: switch-state: seed {seed:#x}; checking every 10 ms for {ms} ms");
    let checks: [(&str, GroupCheck); 9] = [
        ("breakpoint 0, watchpoint 0, claim tags", |plan| {
            plan.debug.map(|e| {
                let got = read_debug();
                (0..5).try_for_each(|i| expect(DEBUG_REGS[i], 0, e[i], got[i]))
            })
        }),
        (
            "PMU event type, filters, selection, interrupt enable, counter",
            |plan| {
                plan.pmu.map(|e| {
                    let got = read_pmu();
                    (0..6).try_for_each(|i| expect(PMU_REGS[i], 0, e[i], got[i]))
                })
            },
        ),
        ("APIBKeyLo/Hi_EL1", |plan| {
            plan.pauth.map(|e| {
                let got = read_pauth();
                expect("APIBKeyLo_EL1", 0, e[0], got[0])
                    .and_then(|()| expect("APIBKeyHi_EL1", 0, e[1], got[1]))
            })
        }),
        ("FP/SIMD Q16-Q23 and FPCR", |plan| {
            let mut expected = [0u8; 128];
            fill(&mut expected, plan.seed, 14);
            let mut got = [0u8; 128];
            store_q(&mut got);
            Some(
                expect_bytes("Q16-Q23", &expected, &got)
                    .and_then(|()| expect("FPCR", 0, plan.fpcr, read!("s3_3_c4_c4_0"))),
            )
        }),
        ("SVE ZCR_EL1, Z5, P5, FFR", |plan| {
            plan.sve.map(|(zcr, vl)| {
                let (mut z, mut p, mut ffr) = ([0u8; MAX_VL], [0u8; MAX_VL / 8], [0u8; MAX_VL / 8]);
                sve_regs(&mut z, &mut p, &mut ffr, false);
                let (mut ez, mut ep) = ([0u8; MAX_VL], [0u8; MAX_VL / 8]);
                fill(&mut ez, plan.seed, 17);
                fill(&mut ep, plan.seed, 18);
                expect("ZCR_EL1", 0, zcr, read!("s3_0_c1_c2_0"))
                    .and_then(|()| expect_bytes("Z5", &ez[..vl], &z[..vl]))
                    .and_then(|()| expect_bytes("P5", &ep[..vl / 8], &p[..vl / 8]))
                    .and_then(|()| {
                        expect_bytes("FFR", &ffr_pattern(plan.seed, vl)[..vl / 8], &ffr[..vl / 8])
                    })
            })
        }),
        ("SME TPIDR2_EL0, SMCR_EL1, SVCR.ZA, ZA", |plan| {
            plan.sme.map(|(tpidr2, smcr, svl)| {
                expect("TPIDR2_EL0", 0, tpidr2, read!("s3_3_c13_c0_5"))
                    .and_then(|()| expect("SMCR_EL1", 0, smcr, read!("s3_0_c1_c2_6")))
                    .and_then(|()| expect("SVCR", 0, 2, read!("s3_3_c4_c2_2")))
                    .and_then(|()| check_za(plan.seed, svl))
            })
        }),
        ("DISR_EL1", |plan| {
            plan.disr
                .map(|e| expect("DISR_EL1", 0, e, read!("s3_0_c12_c1_1")))
        }),
        ("LORSA/LOREA/LORN/LORC_EL1", |plan| {
            plan.lor.map(|e| {
                let got = read_lor();
                (0..4).try_for_each(|i| expect(LOR_REGS[i], 0, e[i], got[i]))
            })
        }),
        ("SCXTNUM_EL0/EL1", |plan| {
            plan.scxtnum.map(|e| {
                let got = read_scxtnum();
                expect("SCXTNUM_EL0", 0, e[0], got[0])
                    .and_then(|()| expect("SCXTNUM_EL1", 0, e[1], got[1]))
            })
        }),
    ];
    let mut present = [false; 9];
    let mut failed: [Option<(u64, Mismatch)>; 9] = Default::default();
    let rounds = check_for(ms, |round| {
        for (i, (_, check)) in checks.iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            match check(&plan) {
                None => {} // feature absent: said above
                Some(Ok(())) => present[i] = true,
                Some(Err(mismatch)) => {
                    present[i] = true;
                    failed[i] = Some((round, mismatch));
                }
            }
        }
    });
    for (i, (what, _)) in checks.iter().enumerate() {
        if present[i] {
            report(ctx, what, ms, rounds, failed[i].take());
        }
    }

    // Streaming mode: the Z/P registers at the streaming length, SVCR.SM, ZA still.
    if let Some((_, _, svl)) = plan.sme {
        let ms = ms / 2;
        smstart_sm();
        let mut z = [0u8; MAX_VL];
        let mut p = [0u8; MAX_VL / 8];
        fill(&mut z, seed, 30);
        fill(&mut p, seed, 31);
        streaming_regs(&mut z, &mut p, true);
        let vl = rdvl().min(MAX_VL);
        let mut failure = None;
        let rounds = check_for(ms, |round| {
            if failure.is_some() {
                return;
            }
            let (mut gz, mut gp) = ([0u8; MAX_VL], [0u8; MAX_VL / 8]);
            streaming_regs(&mut gz, &mut gp, false);
            let result = expect("SVCR", 0, 3, read!("s3_3_c4_c2_2"))
                .and_then(|()| expect("streaming vector length", 0, svl as u64, vl as u64))
                .and_then(|()| expect_bytes("Z7", &z[..vl], &gz[..vl]))
                .and_then(|()| expect_bytes("P7", &p[..vl / 8], &gp[..vl / 8]))
                .and_then(|()| check_za(seed, svl));
            if let Err(m) = result {
                failure = Some((round, m));
            }
        });
        smstop();
        report(
            ctx,
            "SME streaming mode: SVCR.SM, Z7 and P7 at the streaming length, ZA",
            ms,
            rounds,
            failure,
        );
    }

    // Leave nothing that could fire.
    if plan.pmu.is_some() {
        write!("pmintenclr_el1", u64::from(u32::MAX));
    }
}

/// Every ZA row against its pattern.
fn check_za(seed: u64, svl: usize) -> Check {
    let mut expected = [0u8; MAX_VL];
    let mut got = [0u8; MAX_VL];
    for r in 0..svl {
        fill(&mut expected[..svl], seed, 0x100 + r as u64);
        za_row(r, &mut got, false);
        // Words counted over the whole array: row = word / (svl / 8).
        expect_bytes("ZA", &expected[..svl], &got[..svl]).map_err(|m| Mismatch {
            word: r * (svl / 8) + m.word,
            ..m
        })?;
    }
    Ok(())
}

/// Calls `check(round)` at once and then every 10 ms until `ms` have passed, each time
/// after a PSCI_VERSION call; the number of rounds.
fn check_for(ms: u64, mut check: impl FnMut(u64)) -> u64 {
    let end = time::now() + time::ms_to_ticks(ms);
    let mut round = 0;
    loop {
        // An exit to the hypervisor each round (harmless on bare QEMU too): a point where
        // it may switch vCPUs even if it only does so at exits.
        let _ = power::psci(PSCI_VERSION, [0; 3]);
        check(round);
        round += 1;
        if time::now() >= end {
            return round;
        }
        let next = time::now() + time::ms_to_ticks(10);
        while time::now() < next.min(end) {
            core::hint::spin_loop();
        }
    }
}

fn report(ctx: &mut Ctx<'_>, what: &str, ms: u64, rounds: u64, failure: Option<(u64, Mismatch)>) {
    match failure {
        None => ctx.report.pass(format_args!(
            "{what} kept their values over {ms} ms ({rounds} checks)"
        )),
        Some((round, m)) => ctx.report.fail(
            format_args!("{what} keep their values"),
            format_args!(
                "check {round} of {rounds}: {} word {} was {:#x}, now {:#x}",
                m.reg, m.word, m.expected, m.got
            ),
        ),
    }
}
