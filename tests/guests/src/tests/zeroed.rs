//! `zeroed`: every word of the guest's RAM outside its image, DTB and initrd reads zero
//! when it starts. Meaningful when the host RAM behind it was dirty before the hypervisor
//! handed it out (the `fill_ram` key of a boot case makes QEMU fill it first); run it
//! before any test that writes RAM.

use super::memory::read_word;
use crate::{Ctx, println, time};

/// `/chosen/linux,initrd-start` and `-end`, if both are there.
fn initrd_range(ctx: &Ctx<'_>) -> Option<(u64, u64)> {
    let chosen = ctx.platform.fdt.find_node("/chosen")?;
    let read = |name: &str| {
        let value = chosen.property(name)?.value;
        match value.len() {
            4 => Some(u64::from(u32::from_be_bytes(value.try_into().ok()?))),
            8 => Some(u64::from_be_bytes(value.try_into().ok()?)),
            _ => None,
        }
    };
    Some((read("linux,initrd-start")?, read("linux,initrd-end")?))
}

pub fn run(ctx: &mut Ctx<'_>) {
    let (image_start, image_end) = crate::image_range();
    let word_down = |a: u64| a & !7;
    let word_up = |a: u64| a.next_multiple_of(8);
    let mut holes = [
        (word_down(image_start), word_up(image_end)),
        (word_down(ctx.platform.dtb.0), word_up(ctx.platform.dtb.1)),
        (0, 0),
    ];
    if let Some((start, end)) = initrd_range(ctx) {
        holes[2] = (word_down(start), word_up(end));
    }
    let started = time::now();
    let (mut words, mut dirty) = (0u64, 0u64);
    let mut first_dirty = None;
    for (start, end) in ctx.platform.ram.iter() {
        let mut addr = word_up(start);
        while addr + 8 <= end {
            if let Some(&(_, hole_end)) = holes.iter().find(|&&(s, e)| s <= addr && addr < e) {
                addr = hole_end;
                continue;
            }
            let value = read_word(addr);
            if value != 0 {
                dirty += 1;
                first_dirty.get_or_insert((addr, value));
            }
            words += 1;
            addr += 8;
        }
    }
    println!(
        "guest: zeroed: read {words} words of RAM outside the image, DTB and initrd in {} ms",
        time::ticks_to_ms(time::now() - started)
    );
    let (at, value) = first_dirty.unwrap_or((0, 0));
    ctx.report.check(
        words > 0 && dirty == 0,
        "all RAM outside the image, DTB and initrd starts zeroed",
        format_args!("{dirty} of {words} words are not zero, the first at {at:#x}: {value:#x}"),
    );
}
