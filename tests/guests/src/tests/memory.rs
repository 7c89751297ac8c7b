//! `memory`: the guest's RAM above its image holds what is written to it, and the first
//! address past the end of RAM aborts.

use core::ptr;

use super::{FaultDetail, is_data_abort_at, load64};
use crate::dt::Platform;
use crate::{Ctx, println};

pub(super) const PAGE: u64 = 4096;
/// Most RAM the test writes.
const MAX_TESTED: u64 = 64 << 20;

/// The RAM this guest may overwrite: from the end of its image to the end of the RAM bank
/// holding it, minus the pages of the DTB (the tests still borrow strings from it).
pub(super) struct FreeRam {
    pub start: u64,
    pub end: u64,
    dtb: (u64, u64),
}

impl FreeRam {
    pub fn new(platform: &Platform<'_>) -> Option<Self> {
        let (image_start, image_end) = crate::image_range();
        let (_, bank_end) = platform.ram_bank_of(image_start)?;
        let dtb = (
            platform.dtb.0 & !(PAGE - 1),
            platform.dtb.1.next_multiple_of(PAGE),
        );
        Some(Self {
            start: image_end.next_multiple_of(PAGE),
            end: bank_end,
            dtb,
        })
    }

    /// The pages from `start` up to `end`, DTB pages left out.
    pub fn pages(&self, end: u64) -> impl Iterator<Item = u64> + '_ {
        (self.start..end.min(self.end))
            .step_by(PAGE as usize)
            .filter(|&page| page < self.dtb.0 || page >= self.dtb.1)
    }
}

pub(super) fn write_word(addr: u64, value: u64) {
    // SAFETY: `addr` is an aligned word of RAM outside the image and the DTB (`FreeRam`),
    // which no Rust object occupies; the MMU maps it as normal memory.
    unsafe { ptr::write_volatile(addr as *mut u64, value) }
}

pub(super) fn read_word(addr: u64) -> u64 {
    // SAFETY: `addr` is an aligned word of RAM from the DT, mapped as normal memory.
    unsafe { ptr::read_volatile(addr as *const u64) }
}

fn pattern(addr: u64) -> u64 {
    addr.rotate_left(17) ^ 0x5a5a_a5a5_0f0f_f0f0
}

pub fn run(ctx: &mut Ctx<'_>) {
    let Some(free) = FreeRam::new(ctx.platform) else {
        ctx.report.fail(
            "RAM holding the image",
            "no /memory bank contains the image",
        );
        return;
    };
    let end = free.start.saturating_add(MAX_TESTED).min(free.end);
    let last = PAGE - 8;

    let mut pages = 0u64;
    for page in free.pages(end) {
        write_word(page, pattern(page));
        write_word(page + last, pattern(page + last));
        pages += 1;
    }
    let mut bad = 0u64;
    let mut first_bad = None;
    for page in free.pages(end) {
        for addr in [page, page + last] {
            let seen = read_word(addr);
            if seen != pattern(addr) {
                bad += 1;
                first_bad.get_or_insert((addr, seen));
            }
        }
        // Leave the RAM zeroed, as it was, for tests that look for stale data.
        write_word(page, 0);
        write_word(page + last, 0);
    }
    println!(
        "guest: memory: wrote the first and last word of {pages} pages in {:#x}-{end:#x}",
        free.start
    );
    let (bad_addr, bad_value) = first_bad.unwrap_or((0, 0));
    ctx.report.check(
        pages > 0 && bad == 0,
        "a pattern written over RAM above the image reads back",
        format_args!(
            "{pages} pages, {bad} words wrong, first at {bad_addr:#x}: {bad_value:#x} instead of {:#x}",
            pattern(bad_addr)
        ),
    );

    past_end_aborts(
        ctx,
        free.end,
        "load from the first address past the end of RAM gets a data abort",
    );
}

/// Checks that a load from `addr` (just past RAM) gets a data abort at `addr`.
pub(super) fn past_end_aborts(ctx: &mut Ctx<'_>, addr: u64, what: &str) {
    let (value, fault) = load64(addr);
    ctx.report.check(
        is_data_abort_at(fault, addr),
        what,
        format_args!(
            "{} (load from {addr:#x} returned {value:#x})",
            FaultDetail(fault)
        ),
    );
}
