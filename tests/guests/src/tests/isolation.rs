//! `isolation` (two domains): each domain marks its RAM with its own magic, then looks
//! for the other domain's magic anywhere in its RAM. It finds none if the hypervisor
//! zeroed the memory it handed out and keeps the domains apart.

use super::memory::{FreeRam, PAGE, past_end_aborts, read_word, write_word};
use crate::{Ctx, println};

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
}
