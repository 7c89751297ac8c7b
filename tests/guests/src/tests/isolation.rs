//! `isolation` (two domains): each domain marks its RAM with its own magic, then looks
//! for the other domain's magic anywhere in its RAM. It finds none if the hypervisor
//! zeroed the memory it handed out and keeps the domains apart.

use super::memory::{FreeRam, PAGE, past_end_aborts, read_word, write_word};
use super::{FaultDetail, is_data_abort_at, load64};
use crate::{Ctx, console, mmu, println, time};

pub fn run(ctx: &mut Ctx<'_>) {
    let (Some(magic), Some(peer_magic)) = (ctx.args.magic, ctx.args.peer_magic) else {
        ctx.report.fail(
            "bootargs give magic= and peer-magic=",
            "one of them is missing or not a number",
        );
        return;
    };
    if !ctx.report.check(
        magic != peer_magic && magic != 0 && peer_magic != 0,
        "magic and peer-magic are distinct and non-zero",
        format_args!("magic={magic:#x} peer-magic={peer_magic:#x}"),
    ) {
        return;
    }
    let Some(free) = FreeRam::new(ctx.platform) else {
        ctx.report.fail(
            "RAM holding the image",
            "no /memory bank contains the image",
        );
        return;
    };

    // Fresh RAM: what the hypervisor hands a domain must not hold another domain's data.
    let mut dirty = 0u64;
    let mut first_dirty = None;
    for page in free.pages(free.end) {
        let seen = read_word(page);
        if seen != 0 {
            dirty += 1;
            first_dirty.get_or_insert((page, seen));
        }
    }
    let (dirty_at, dirty_value) = first_dirty.unwrap_or((0, 0));
    ctx.report.check(
        dirty == 0,
        "RAM above the image starts zeroed",
        format_args!("{dirty} pages start non-zero, first at {dirty_at:#x}: {dirty_value:#x}"),
    );

    let mut pages = 0u64;
    for page in free.pages(free.end) {
        write_word(page, magic);
        pages += 1;
    }
    let mut lost = 0u64;
    let mut first_lost = None;
    for page in free.pages(free.end) {
        let seen = read_word(page);
        if seen != magic {
            lost += 1;
            first_lost.get_or_insert((page, seen));
        }
    }
    println!(
        "guest: isolation: marked {pages} pages in {:#x}-{:#x} with {magic:#x}",
        free.start, free.end
    );
    let (lost_at, lost_value) = first_lost.unwrap_or((0, 0));
    ctx.report.check(
        pages > 0 && lost == 0,
        "own magic stays in every page above the image",
        format_args!("{pages} pages, {lost} changed, first at {lost_at:#x}: {lost_value:#x}"),
    );

    // The peer must have marked its RAM before this looks for its magic: with
    // `sync=console`, the harness types `go` once both domains said they are ready.
    if ctx.args.sync_console {
        println!("guest: isolation: RAM marked; waiting for a line \"go\" on the console");
        let go = wait_for_go();
        if !ctx.report.check(
            go,
            "the peer marked its RAM first (go typed on the console)",
            format_args!("no line \"go\" within {GO_TIMEOUT_MS} ms"),
        ) {
            return;
        }
    }

    // Every word of every RAM bank, except the image: its stack holds `peer_magic` itself.
    let (image_start, image_end) = crate::image_range();
    let mut found = 0u64;
    let mut first_found = None;
    let mut words = 0u64;
    for (start, end) in ctx.platform.ram.iter() {
        let mut addr = start;
        while addr < end {
            if addr == image_start {
                addr = image_end;
                continue;
            }
            if read_word(addr) == peer_magic {
                found += 1;
                first_found.get_or_insert(addr);
            }
            words += 1;
            addr += 8;
        }
    }
    println!("guest: isolation: scanned {words} words of RAM for {peer_magic:#x}");
    ctx.report.check(
        found == 0,
        "no word of this domain's RAM holds the peer's magic",
        format_args!(
            "{found} words hold it, first at {:#x}",
            first_found.unwrap_or(0)
        ),
    );

    past_end_aborts(
        ctx,
        free.end,
        "load from the first address past the end of RAM gets a data abort",
    );
    past_end_aborts(
        ctx,
        free.end + PAGE,
        "load from the second page past the end of RAM gets a data abort",
    );

    probe_ipa_space(ctx, peer_magic);
}

/// How long `sync=console` waits for the `go` line.
const GO_TIMEOUT_MS: u64 = 30_000;

/// Waits for a line reading `go` on the console.
fn wait_for_go() -> bool {
    let mut line = [0u8; 8];
    let mut len = 0;
    time::wait_until(GO_TIMEOUT_MS, || {
        while let Some(byte) = console::try_read_byte() {
            if byte == b'\n' || byte == b'\r' {
                if &line[..len] == b"go" {
                    return true;
                }
                len = 0;
            } else if len < line.len() {
                line[len] = byte;
                len += 1;
            }
        }
        false
    })
}

/// Probe spacing. Any mapping of at least this many bytes that is contiguous in the IPA
/// space contains a multiple of it, so it is probed (a 2 MiB block, or 512 pages mapped
/// side by side anywhere, cannot hide between two probes).
const PROBE_STRIDE: u64 = 2 << 20;
/// The IPA size the hypervisor gives guests, unless the CPU's PARange is smaller.
const HYP_IPA_BITS: u32 = 40;
/// Most device-tree regions kept.
const MAX_REGIONS: usize = 32;

/// Loads from every [`PROBE_STRIDE`] of the IPA space that the device tree does not give
/// this domain (RAM, devices), up to the IPA size, and one just past it: each must get a
/// data abort. Whatever else the hypervisor may have mapped (another domain's memory, its
/// own) is found this way; addresses past the identity map are reached through a window.
fn probe_ipa_space(ctx: &mut Ctx<'_>, peer_magic: u64) {
    let mut regions = [(0u64, 0u64); MAX_REGIONS];
    let mut count = 0;
    for node in ctx.platform.fdt.all_nodes() {
        for region in node.reg().into_iter().flatten() {
            if let (Some(size), true) = (region.size, count < MAX_REGIONS) {
                let start = region.starting_address as u64;
                regions[count] = (start, start + size as u64);
                count += 1;
            }
        }
    }
    let regions = &regions[..count];
    let ipa_bits = HYP_IPA_BITS.min(mmu::pa_bits());
    let ipa_end = 1u64 << ipa_bits;
    // One probe past the IPA size too, where the CPU can still form the address.
    let last = if mmu::pa_bits() > ipa_bits {
        ipa_end
    } else {
        ipa_end - PROBE_STRIDE
    };

    let started = time::now();
    let (mut probes, mut missed) = (0u64, 0u64);
    let mut first_missed = None;
    let mut window_gib = None;
    let mut ipa = 0;
    while ipa <= last {
        if !regions.iter().any(|&(s, e)| s <= ipa && ipa < e) {
            let va = if ipa < mmu::WINDOW_VA {
                ipa
            } else {
                let gib = ipa >> 30;
                if window_gib != Some(gib) {
                    mmu::window_to(ipa);
                    window_gib = Some(gib);
                }
                mmu::WINDOW_VA + (ipa & ((1 << 30) - 1))
            };
            let (value, fault) = load64(va);
            probes += 1;
            if !is_data_abort_at(fault, va) {
                missed += 1;
                first_missed.get_or_insert((ipa, value, fault));
            }
        }
        ipa += PROBE_STRIDE;
    }
    if window_gib.is_some() {
        mmu::window_reset();
    }
    println!(
        "guest: isolation: probed {probes} addresses every {} MiB up to {:#x} ({ipa_bits}-bit IPA) in {} ms",
        PROBE_STRIDE >> 20,
        last,
        time::ticks_to_ms(time::now() - started)
    );
    let (at, value, fault) = first_missed.unwrap_or((0, 0, None));
    ctx.report.check(
        probes > 0 && missed == 0,
        "every probe of the IPA space outside the device tree's regions gets a data abort",
        format_args!(
            "{missed} of {probes} did not, the first at IPA {at:#x}: {} (loaded {value:#x}{})",
            FaultDetail(fault),
            if value == peer_magic {
                ": the peer's magic"
            } else {
                ""
            }
        ),
    );
}
