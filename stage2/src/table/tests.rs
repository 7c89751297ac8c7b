//! Host tests of the engine over [`VecTableMemory`] and [`RecordingTlb`].

use std::vec;
use std::vec::Vec;

use super::*;
use crate::address::{IntermPhysAddr, VirtAddr};
use crate::attributes::{MemoryKind, Perms};
use crate::config::{El2Stage1Config, Stage2Config};
use crate::format::{El2Stage1, Stage2};
use crate::testing::{Event, Log, RecordingTlb, VecTableMemory, harness, invalidation_covers};
use crate::{BLOCK_1G, BLOCK_2M};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn ipa(value: u64) -> IntermPhysAddr {
    IntermPhysAddr::new(value)
}

fn pa(value: u64) -> PhysAddr {
    PhysAddr::new(value)
}

fn va(value: u64) -> VirtAddr {
    VirtAddr::new(value)
}

/// A stage-2 table with an IPA space of `ipa_bits` on a 48-bit-PA CPU.
fn stage2(ipa_bits: u8) -> (Log, VecTableMemory, RecordingTlb, PageTable<Stage2>) {
    let (log, mut mem, tlb) = harness();
    let config = Stage2Config::from_parange(5, ipa_bits).unwrap();
    let table = PageTable::<Stage2>::new(&mut mem, config).unwrap();
    log.borrow_mut().clear();
    (log, mem, tlb, table)
}

fn el2() -> (Log, VecTableMemory, RecordingTlb, PageTable<El2Stage1>) {
    let (log, mut mem, tlb) = harness();
    let config = El2Stage1Config::from_parange(5).unwrap();
    let table = PageTable::<El2Stage1>::new(&mut mem, config).unwrap();
    log.borrow_mut().clear();
    (log, mem, tlb, table)
}

fn events_since(log: &Log, mark: usize) -> Vec<Event> {
    log.borrow()[mark..].to_vec()
}

fn mark(log: &Log) -> usize {
    log.borrow().len()
}

fn writes(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Event::Write { .. }))
        .count()
}

/// Checks that every table below the root holds at least one valid entry.
fn assert_no_empty_tables<F: Format>(table: &PageTable<F>, mem: &VecTableMemory) {
    fn walk(mem: &VecTableMemory, node: Node, is_root: bool) {
        let mut valid = 0;
        for index in 0..node.entries {
            match node.entry(mem, index) {
                Entry::Invalid => {}
                Entry::Leaf(_) => valid += 1,
                Entry::Table(table) => {
                    valid += 1;
                    walk(mem, node.child(table, index), false);
                }
            }
        }
        assert!(is_root || valid > 0, "empty table left at {:?}", node.base);
    }
    walk(mem, table.root_node(), true);
}

/// Checks `translate` over a range at a few byte offsets per page (or per sample).
fn assert_maps<F: Format>(
    table: &PageTable<F>,
    mem: &VecTableMemory,
    input: u64,
    output: u64,
    size: u64,
    attrs: Attributes,
) {
    let step = if size / PAGE_SIZE > 4096 {
        size / 4096
    } else {
        PAGE_SIZE
    };
    let mut offset = 0;
    while offset < size {
        for byte in [0, 1, 0x7ff, PAGE_SIZE - 1] {
            let at = offset + byte;
            assert_eq!(
                table.translate(F::Input::from_u64(input + at), mem),
                Some((pa(output + at), attrs)),
                "input {:#x}",
                input + at
            );
        }
        offset += step;
    }
    let last = input + size - 1;
    assert_eq!(
        table.translate(F::Input::from_u64(last), mem),
        Some((pa(output + size - 1), attrs))
    );
}

fn assert_unmapped<F: Format>(table: &PageTable<F>, mem: &VecTableMemory, input: u64, size: u64) {
    let step = (size / 1024).max(PAGE_SIZE);
    let mut offset = 0;
    while offset < size {
        assert_eq!(
            table.translate(F::Input::from_u64(input + offset), mem),
            None,
            "{:#x}",
            input + offset
        );
        offset += step;
    }
    assert_eq!(
        table.translate(F::Input::from_u64(input + size - 1), mem),
        None
    );
}

#[test]
fn argument_errors_change_nothing() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let rw = Attributes::NORMAL_RW;
    let top = 1 << 40;
    let cases = [
        (0x1000, 0x2000, 0, rw, MapError::ZeroSize),
        (0x1001, 0x2000, 0x1000, rw, MapError::Misaligned),
        (0x1000, 0x2001, 0x1000, rw, MapError::Misaligned),
        (0x1000, 0x2000, 0x1001, rw, MapError::Misaligned),
        (0x1000, 0x2000, 0x800, rw, MapError::Misaligned),
        (top, 0x2000, 0x1000, rw, MapError::InputOutOfRange),
        (top - 0x1000, 0x2000, 0x2000, rw, MapError::InputOutOfRange),
        (!0xfff, 0x2000, 0x1000, rw, MapError::InputOutOfRange),
        (0x1000, 0x2000, !0xfff, rw, MapError::InputOutOfRange),
        (
            0x1000,
            (1 << 48) - 0x1000,
            0x2000,
            rw,
            MapError::OutputOutOfRange,
        ),
        (0x1000, !0xfff, 0x1000, rw, MapError::OutputOutOfRange),
        (
            0x1000,
            0x2000,
            0x1000,
            Attributes::device(Perms::RWX),
            MapError::Attributes(AttributeError::ExecutableDevice),
        ),
        (
            0x1000,
            0x2000,
            0x1000,
            Attributes::normal(Perms::new(false, false, false)),
            MapError::Attributes(AttributeError::NoAccess),
        ),
    ];
    for (input, output, size, attrs, error) in cases {
        assert_eq!(
            table.map(ipa(input), pa(output), size, attrs, &mut mem, &mut tlb),
            Err(error),
            "map {input:#x} -> {output:#x} size {size:#x}"
        );
    }
    for (input, size, error) in [
        (0x1000, 0, MapError::ZeroSize),
        (0x1800, 0x1000, MapError::Misaligned),
        (0x1000, 0x10, MapError::Misaligned),
        (top - 0x1000, 0x2000, MapError::InputOutOfRange),
        (!0xfff, 0x1000, MapError::InputOutOfRange),
    ] {
        assert_eq!(
            table.unmap(ipa(input), size, &mut mem, &mut tlb),
            Err(error)
        );
        assert_eq!(
            table.protect(ipa(input), size, rw, &mut mem, &mut tlb),
            Err(error)
        );
    }
    table
        .map(ipa(0x1000), pa(0x2000), 0x1000, rw, &mut mem, &mut tlb)
        .unwrap();
    let before = mem.snapshot();
    let at = mark(&log);
    assert_eq!(
        table.protect(
            ipa(0x1000),
            0x1000,
            Attributes::device(Perms::RX),
            &mut mem,
            &mut tlb
        ),
        Err(MapError::Attributes(AttributeError::ExecutableDevice))
    );
    assert_eq!(mem.snapshot(), before);
    assert!(events_since(&log, at).is_empty());
    // Before the valid map above, nothing at all had happened.
    assert!(
        log.borrow()[..at]
            .iter()
            .all(|event| !matches!(event, Event::Invalidate { .. } | Event::Free { .. }))
    );
}

#[test]
fn two_mib_blocks_when_aligned() {
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RWX;
    table
        .map(
            ipa(0x4020_0000),
            pa(0x8_0060_0000),
            4 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    for (input, output) in [(0x4020_0000, 0x8_0060_0000), (0x4040_0000, 0x8_0080_0000)] {
        let leaf = table.lookup(ipa(input), &mem).unwrap();
        assert_eq!(leaf.level, 2);
        assert_eq!(leaf.size, BLOCK_2M);
        assert_eq!(leaf.input, ipa(input));
        assert_eq!(leaf.output, pa(output));
        let bits = Stage2::encode_attributes(attrs).unwrap();
        assert_eq!(leaf.descriptor, output | bits | 0b01);
    }
    // Root (two concatenated tables for 40 bits) plus one level-2 table.
    assert_eq!(table.table_count(&mem), 3);
    assert_eq!(mem.live(), 3);
    assert_maps(&table, &mem, 0x4020_0000, 0x8_0060_0000, 4 * MIB, attrs);
}

#[test]
fn one_gib_blocks_when_aligned() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RW;
    // 512 GiB up: the second of the two concatenated root tables.
    table
        .map(
            ipa(0x80_0000_0000),
            pa(0xc0_0000_0000),
            2 * BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    for i in 0..2 {
        let leaf = table
            .lookup(ipa(0x80_0000_0000 + i * BLOCK_1G), &mem)
            .unwrap();
        assert_eq!(leaf.level, 1);
        assert_eq!(leaf.size, BLOCK_1G);
        assert_eq!(leaf.output, pa(0xc0_0000_0000 + i * BLOCK_1G));
        assert_eq!(leaf.descriptor & 0b11, 0b01);
    }
    assert_eq!(table.table_count(&mem), 2, "no table below the root");
    let root = table.root().as_u64();
    let events = log.borrow().clone();
    assert_eq!(
        events,
        vec![
            Event::Write {
                table: root + PAGE_SIZE,
                index: 0,
                value: 0xc0_0000_0000 | Stage2::encode_attributes(attrs).unwrap() | 0b01,
            },
            Event::Write {
                table: root + PAGE_SIZE,
                index: 1,
                value: 0xc0_4000_0000 | Stage2::encode_attributes(attrs).unwrap() | 0b01,
            },
            Event::Publish,
        ]
    );
    assert_maps(
        &table,
        &mem,
        0x80_0000_0000,
        0xc0_0000_0000,
        2 * BLOCK_1G,
        attrs,
    );

    // With a level-0 root (48-bit IPA) the 1 GiB block sits below one level-0 table.
    let (_log, mut mem, mut tlb, mut table) = stage2(48);
    table
        .map(
            ipa(0x1_4000_0000),
            pa(0x4000_0000),
            BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(table.lookup(ipa(0x1_4000_0000), &mem).unwrap().level, 1);
    assert_eq!(table.table_count(&mem), 2);
}

#[test]
fn pages_when_not_block_aligned() {
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RWX;
    // Input not 2 MiB aligned: pages only, across two level-3 tables.
    table
        .map(
            ipa(0x4000_1000),
            pa(0x9000_1000),
            2 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    for page in 0..512 {
        let leaf = table
            .lookup(ipa(0x4000_1000 + page * PAGE_SIZE), &mem)
            .unwrap();
        assert_eq!(leaf.level, 3);
        assert_eq!(leaf.descriptor & 0b11, 0b11);
    }
    assert_eq!(table.table_count(&mem), 2 + 1 + 2);
    // Input 2 MiB aligned, output only 4 KiB aligned: pages again.
    table
        .map(
            ipa(0x4040_0000),
            pa(0x9040_3000),
            2 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(table.lookup(ipa(0x4040_0000), &mem).unwrap().level, 3);
    // Input 1 GiB aligned, output only 2 MiB aligned: 2 MiB blocks.
    table
        .map(
            ipa(0x1_0000_0000),
            pa(0x2_0020_0000),
            BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    for block in 0..512 {
        let leaf = table
            .lookup(ipa(0x1_0000_0000 + block * BLOCK_2M), &mem)
            .unwrap();
        assert_eq!((leaf.level, leaf.size), (2, BLOCK_2M));
    }
    assert_maps(&table, &mem, 0x4000_1000, 0x9000_1000, 2 * MIB, attrs);
    assert_maps(&table, &mem, 0x4040_0000, 0x9040_3000, 2 * MIB, attrs);
    assert_maps(&table, &mem, 0x1_0000_0000, 0x2_0020_0000, BLOCK_1G, attrs);
}

/// The level of the leaf mapping each 4 KiB page of a range, run-length encoded.
fn level_runs(
    table: &PageTable<Stage2>,
    mem: &VecTableMemory,
    start: u64,
    size: u64,
) -> Vec<(u8, u64)> {
    let mut runs: Vec<(u8, u64)> = Vec::new();
    let mut at = start;
    while at < start + size {
        let leaf = table.lookup(ipa(at), mem).unwrap();
        let bytes = (leaf.input.as_u64() + leaf.size).min(start + size) - at;
        match runs.last_mut() {
            Some((level, run)) if *level == leaf.level => *run += bytes,
            _ => runs.push((leaf.level, bytes)),
        }
        at += bytes;
    }
    runs
}

#[test]
fn partly_block_aligned_mappings() {
    let attrs = Attributes::NORMAL_RW;
    // 3 MiB at 1.5 MiB: 512 KiB of pages, a 2 MiB block, 512 KiB of pages.
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    table
        .map(
            ipa(0x4018_0000),
            pa(0x8018_0000),
            3 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        level_runs(&table, &mem, 0x4018_0000, 3 * MIB),
        vec![(3, 512 * KIB), (2, 2 * MIB), (3, 512 * KIB)]
    );
    assert_maps(&table, &mem, 0x4018_0000, 0x8018_0000, 3 * MIB, attrs);
    // Root (2) + level-2 table + two level-3 tables.
    assert_eq!(table.table_count(&mem), 5);

    // 3 MiB at 1 MiB: 1 MiB of pages, then a block.
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    table
        .map(
            ipa(0x10_0000),
            pa(0x4010_0000),
            3 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        level_runs(&table, &mem, 0x10_0000, 3 * MIB),
        vec![(3, MIB), (2, 2 * MIB)]
    );
    // 4 MiB at 1 MiB: pages, block, pages.
    table
        .map(
            ipa(0x1_0010_0000),
            pa(0x4410_0000),
            4 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        level_runs(&table, &mem, 0x1_0010_0000, 4 * MIB),
        vec![(3, MIB), (2, 2 * MIB), (3, MIB)]
    );
    // 2 GiB + 4 MiB at 1 GiB - 2 MiB: 2 MiB block, 1 GiB blocks, 2 MiB blocks.
    table
        .map(
            ipa(0x3fe0_0000 + 0x40_0000_0000),
            pa(0x3fe0_0000),
            2 * BLOCK_1G + 4 * MIB,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        level_runs(
            &table,
            &mem,
            0x3fe0_0000 + 0x40_0000_0000,
            2 * BLOCK_1G + 4 * MIB
        ),
        vec![(2, 2 * MIB), (1, 2 * BLOCK_1G), (2, 2 * MIB)]
    );
}

#[test]
fn overlap_is_refused_and_changes_nothing() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RW;
    let mut map = |input, output, size| {
        table
            .map(ipa(input), pa(output), size, attrs, &mut mem, &mut tlb)
            .unwrap();
    };
    map(0x4000_0000, 0x1000_0000, 64 * KIB); // pages
    map(0x4020_0000, 0x1020_0000, BLOCK_2M); // 2 MiB block
    map(0x8000_0000, 0x8000_0000, BLOCK_1G); // 1 GiB block
    let before = mem.snapshot();
    let live = mem.live();
    let at = mark(&log);
    let overlapping = [
        (0x4000_0000, 0x1000),   // the first page exactly
        (0x3fff_f000, 0x2000),   // ends in the first page
        (0x4000_f000, 0x1000),   // the last page
        (0x4000_e000, 0x4000),   // runs past the pages into a hole
        (0x4020_0000, BLOCK_2M), // the block exactly
        (0x4030_0000, 0x1000),   // inside the block
        (0x4010_0000, 2 * MIB),  // from a hole into the block
        (0x9000_0000, 0x1000),   // inside the 1 GiB block
        (0x4000_0000, BLOCK_1G), // a 1 GiB range over a table
        (0, 4 * BLOCK_1G),       // everything
        (0xbfff_f000, 0x2000),   // the 1 GiB block's last page and beyond
        (0x7fe0_0000, 4 * MIB),  // a hole's last 2 MiB and the big block
    ];
    for (input, size) in overlapping {
        assert_eq!(
            table.map(
                ipa(input),
                pa(0x20_0000_0000),
                size,
                Attributes::DEVICE_RW,
                &mut mem,
                &mut tlb
            ),
            Err(MapError::AlreadyMapped),
            "{input:#x} + {size:#x}"
        );
    }
    assert_eq!(mem.snapshot(), before, "tables changed");
    assert_eq!(mem.live(), live);
    assert!(events_since(&log, at).is_empty());
    // Neighbours that touch without overlapping are fine.
    table
        .map(
            ipa(0x3fff_f000),
            pa(0x5000),
            0x1000,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    table
        .map(
            ipa(0x4001_0000),
            pa(0x6000),
            0x1000,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    table
        .map(
            ipa(0xc000_0000),
            pa(0x7000),
            0x1000,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_maps(&table, &mem, 0x4000_0000, 0x1000_0000, 64 * KIB, attrs);
    assert_maps(&table, &mem, 0x8000_0000, 0x8000_0000, BLOCK_1G, attrs);
}

#[test]
fn unmapping_a_page_of_a_block_splits_it_and_keeps_the_rest() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RWX;
    table
        .map(
            ipa(0x4020_0000),
            pa(0x8_0060_0000),
            BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(table.table_count(&mem), 3);
    let at = mark(&log);
    table
        .unmap(ipa(0x4030_0000), PAGE_SIZE, &mut mem, &mut tlb)
        .unwrap();
    assert_eq!(table.table_count(&mem), 4, "one level-3 table added");
    assert_eq!(table.translate(ipa(0x4030_0000), &mem), None);
    assert_eq!(table.translate(ipa(0x4030_0fff), &mem), None);
    assert_maps(&table, &mem, 0x4020_0000, 0x8_0060_0000, MIB, attrs);
    assert_maps(
        &table,
        &mem,
        0x4030_1000,
        0x8_0070_1000,
        MIB - PAGE_SIZE,
        attrs,
    );
    assert_eq!(table.lookup(ipa(0x4030_1000), &mem).unwrap().level, 3);
    let events = events_since(&log, at);
    assert!(invalidation_covers(&events, 0x4030_0000, PAGE_SIZE));
    assert_no_empty_tables(&table, &mem);
}

#[test]
fn split_follows_break_before_make() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RW;
    let bits = Stage2::encode_attributes(attrs).unwrap();
    table
        .map(
            ipa(0x4000_0000),
            pa(0x1_0000_0000),
            BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    log.borrow_mut().clear();
    table
        .unmap(ipa(0x4000_1000), PAGE_SIZE, &mut mem, &mut tlb)
        .unwrap();
    let events = log.borrow().clone();
    let root = table.root().as_u64();
    let Event::Alloc { base: l2, count: 1 } = events[0] else {
        panic!("first event {:?}", events[0]);
    };
    let Event::Alloc { base: l3, count: 1 } = events[517] else {
        panic!("event 517 {:?}", events[517]);
    };
    let mut expected = vec![Event::Alloc { base: l2, count: 1 }];
    // The level-2 table is filled before it becomes reachable...
    expected.extend((0..512).map(|i| Event::Write {
        table: l2,
        index: i,
        value: (0x1_0000_0000 + i as u64 * BLOCK_2M) | bits | 0b01,
    }));
    expected.extend([
        // ...then break, invalidate, make.
        Event::Write {
            table: root,
            index: 1,
            value: 0,
        },
        Event::Invalidate {
            start: 0x4000_0000,
            size: BLOCK_1G,
            last_level_only: false,
        },
        Event::Write {
            table: root,
            index: 1,
            value: l2 | 0b11,
        },
        Event::Publish,
        Event::Alloc { base: l3, count: 1 },
    ]);
    // The same for the 2 MiB block holding the page.
    expected.extend((0..512).map(|i| Event::Write {
        table: l3,
        index: i,
        value: (0x1_0000_0000 + i as u64 * PAGE_SIZE) | bits | 0b11,
    }));
    expected.extend([
        Event::Write {
            table: l2,
            index: 0,
            value: 0,
        },
        Event::Invalidate {
            start: 0x4000_0000,
            size: BLOCK_2M,
            last_level_only: false,
        },
        Event::Write {
            table: l2,
            index: 0,
            value: l3 | 0b11,
        },
        Event::Publish,
        // The unmap proper, and its invalidation.
        Event::Write {
            table: l3,
            index: 1,
            value: 0,
        },
        Event::Invalidate {
            start: 0x4000_1000,
            size: PAGE_SIZE,
            last_level_only: true,
        },
    ]);
    assert_eq!(events, expected);
}

#[test]
fn unmap_leaves_nothing_stale_and_frees_tables() {
    let (log, mut mem, mut tlb, mut table) = stage2(48);
    let initial = mem.snapshot();
    assert_eq!(mem.live(), 1);
    let attrs = Attributes::NORMAL_RWX;
    let ranges = [
        (0x4000_1000, 0x9000_1000, 4 * MIB), // pages over three level-3 tables
        (0x4060_0000, 0x9060_0000, 6 * MIB), // 2 MiB blocks
        (0x1_0000_0000, 0x2_4000_0000, BLOCK_1G), // a 1 GiB block
        (0x80_0000_0000, 0x3000, 0x2000),    // pages under another level-0 entry
        (0xffff_ffe0_0000, 0x1000_0000, BLOCK_2M), // the last 2 MiB
    ];
    for (input, output, size) in ranges {
        table
            .map(ipa(input), pa(output), size, attrs, &mut mem, &mut tlb)
            .unwrap();
    }
    assert!(mem.live() > 1);
    for (input, output, size) in ranges {
        assert_maps(&table, &mem, input, output, size, attrs);
    }
    // Unmap in pieces that do not line up with the leaves.
    let pieces = [
        (0x4000_1000, 0x3000),
        (0x4000_4000, 4 * MIB - 0x3000),
        (0x4060_0000, BLOCK_2M + PAGE_SIZE),
        (0x4080_1000, 4 * MIB - PAGE_SIZE),
        (0x1_0000_0000, BLOCK_1G),
        (0x80_0000_1000, 0x1000),
        (0x80_0000_0000, 0x1000),
        (0xffff_ffe0_0000, BLOCK_2M),
    ];
    for (input, size) in pieces {
        let at = mark(&log);
        table.unmap(ipa(input), size, &mut mem, &mut tlb).unwrap();
        assert_unmapped(&table, &mem, input, size);
        let events = events_since(&log, at);
        assert!(
            invalidation_covers(&events, input, size),
            "{input:#x} + {size:#x}: {events:?}"
        );
        // Every freed table was detached and invalidated before it was freed.
        for (i, event) in events.iter().enumerate() {
            if let Event::Free { .. } = event {
                assert!(matches!(
                    events[i - 1],
                    Event::Invalidate {
                        last_level_only: false,
                        ..
                    } | Event::Free { .. }
                ));
            }
        }
        assert_no_empty_tables(&table, &mem);
    }
    for (input, _, size) in ranges {
        assert_unmapped(&table, &mem, input, size);
    }
    assert_eq!(mem.live(), 1, "every table below the root freed");
    assert_eq!(table.table_count(&mem), 1);
    assert_eq!(mem.snapshot(), initial, "the root is all invalid again");
}

#[test]
fn unmap_of_unmapped_ranges_is_refused() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    assert_eq!(
        table.unmap(ipa(0x4000_0000), PAGE_SIZE, &mut mem, &mut tlb),
        Err(MapError::NotMapped)
    );
    let attrs = Attributes::NORMAL_RW;
    table
        .map(
            ipa(0x4000_0000),
            pa(0x1000),
            0x2000,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    table
        .map(
            ipa(0x4020_0000),
            pa(0x20_0000),
            BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let before = mem.snapshot();
    let at = mark(&log);
    for (input, size) in [
        (0x4000_0000, 0x3000),  // runs past the mapping
        (0x3fff_f000, 0x2000),  // starts before it
        (0x4000_2000, 0x1000),  // just after it
        (0x401f_f000, 0x2000),  // a hole's last page, then the block's first
        (0x4030_0000, 2 * MIB), // half the block and beyond (no split happens)
        (0, 1 << 40),           // everything
    ] {
        assert_eq!(
            table.unmap(ipa(input), size, &mut mem, &mut tlb),
            Err(MapError::NotMapped),
            "{input:#x} + {size:#x}"
        );
        assert_eq!(
            table.protect(ipa(input), size, Attributes::NORMAL_R, &mut mem, &mut tlb),
            Err(MapError::NotMapped),
        );
    }
    assert_eq!(mem.snapshot(), before);
    assert!(events_since(&log, at).is_empty());
    // Unmapping twice: the second is refused.
    table
        .unmap(ipa(0x4000_0000), 0x2000, &mut mem, &mut tlb)
        .unwrap();
    assert_eq!(
        table.unmap(ipa(0x4000_0000), 0x2000, &mut mem, &mut tlb),
        Err(MapError::NotMapped)
    );
}

#[test]
fn protect_splits_and_changes_only_the_range() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let rwx = Attributes::NORMAL_RWX;
    table
        .map(
            ipa(0x4020_0000),
            pa(0x8_0060_0000),
            BLOCK_2M,
            rwx,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let at = mark(&log);
    let read_only = Attributes::NORMAL_R;
    table
        .protect(
            ipa(0x4030_0000),
            2 * PAGE_SIZE,
            read_only,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_maps(&table, &mem, 0x4020_0000, 0x8_0060_0000, MIB, rwx);
    assert_maps(
        &table,
        &mem,
        0x4030_0000,
        0x8_0070_0000,
        2 * PAGE_SIZE,
        read_only,
    );
    assert_maps(
        &table,
        &mem,
        0x4030_2000,
        0x8_0070_2000,
        MIB - 2 * PAGE_SIZE,
        rwx,
    );
    let events = events_since(&log, at);
    assert!(invalidation_covers(&events, 0x4030_0000, 2 * PAGE_SIZE));
    // A permission change is made in place: the only invalid write is the split's break.
    let zero_writes: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, Event::Write { value: 0, .. }))
        .collect();
    assert_eq!(zero_writes.len(), 1);
    assert_eq!(
        events.last(),
        Some(&Event::Invalidate {
            start: 0x4030_0000,
            size: 2 * PAGE_SIZE,
            last_level_only: true
        })
    );

    // A whole 1 GiB block changes in place, without a split.
    table
        .map(
            ipa(0x80_0000_0000),
            pa(0x40_0000_0000),
            BLOCK_1G,
            rwx,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let tables = mem.live();
    let at = mark(&log);
    table
        .protect(ipa(0x80_0000_0000), BLOCK_1G, read_only, &mut mem, &mut tlb)
        .unwrap();
    assert_eq!(mem.live(), tables);
    assert_eq!(writes(&events_since(&log, at)), 1);
    assert_maps(
        &table,
        &mem,
        0x80_0000_0000,
        0x40_0000_0000,
        BLOCK_1G,
        read_only,
    );
    // Protecting to the same attributes writes nothing and invalidates nothing.
    let at = mark(&log);
    table
        .protect(ipa(0x80_0000_0000), BLOCK_1G, read_only, &mut mem, &mut tlb)
        .unwrap();
    assert!(events_since(&log, at).is_empty());
}

#[test]
fn protect_to_another_memory_type_breaks_before_making() {
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    table
        .map(
            ipa(0x1000_0000),
            pa(0x2000_0000),
            4 * PAGE_SIZE,
            Attributes::NORMAL_RW,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let leaf = table.lookup(ipa(0x1000_2000), &mem).unwrap();
    let l3 = match events_since(&log, 0).iter().find_map(|event| match event {
        Event::Write { table, value, .. } if *value == leaf.descriptor => Some(*table),
        _ => None,
    }) {
        Some(l3) => l3,
        None => panic!("no write of the leaf"),
    };
    let at = mark(&log);
    table
        .protect(
            ipa(0x1000_2000),
            PAGE_SIZE,
            Attributes::DEVICE_RW,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let device = 0x2000_2000 | Stage2::encode_attributes(Attributes::DEVICE_RW).unwrap() | 0b11;
    assert_eq!(
        events_since(&log, at),
        vec![
            Event::Write {
                table: l3,
                index: 2,
                value: 0
            },
            Event::Invalidate {
                start: 0x1000_2000,
                size: PAGE_SIZE,
                last_level_only: true
            },
            Event::Write {
                table: l3,
                index: 2,
                value: device
            },
            Event::Invalidate {
                start: 0x1000_2000,
                size: PAGE_SIZE,
                last_level_only: true
            },
        ]
    );
    assert_eq!(
        table.translate(ipa(0x1000_2abc), &mem),
        Some((pa(0x2000_2abc), Attributes::DEVICE_RW))
    );
    assert_eq!(
        table.translate(ipa(0x1000_3abc), &mem),
        Some((pa(0x2000_3abc), Attributes::NORMAL_RW))
    );
}

#[test]
fn last_addresses_of_the_input_space() {
    let attrs = Attributes::NORMAL_RW;
    let top = 1u64 << 40;
    // The top page.
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let root_tables = mem.live();
    table
        .map(
            ipa(top - PAGE_SIZE),
            pa(0x1234_5000),
            PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        table.translate(ipa(top - 1), &mem),
        Some((pa(0x1234_5fff), attrs))
    );
    assert_eq!(table.translate(ipa(top), &mem), None);
    assert_eq!(table.translate(ipa(u64::MAX), &mem), None);
    assert_eq!(
        table.map(
            ipa(top - PAGE_SIZE),
            pa(0),
            2 * PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::InputOutOfRange)
    );
    assert_eq!(
        table.map(ipa(top), pa(0), PAGE_SIZE, attrs, &mut mem, &mut tlb),
        Err(MapError::InputOutOfRange)
    );
    table
        .unmap(ipa(top - PAGE_SIZE), PAGE_SIZE, &mut mem, &mut tlb)
        .unwrap();
    assert_eq!(mem.live(), root_tables);
    // The top 2 MiB block, then the top 1 GiB block.
    table
        .map(
            ipa(top - BLOCK_2M),
            pa((1 << 48) - BLOCK_2M),
            BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let leaf = table.lookup(ipa(top - 1), &mem).unwrap();
    assert_eq!((leaf.level, leaf.output), (2, pa((1 << 48) - BLOCK_2M)));
    assert_eq!(
        table.translate(ipa(top - 1), &mem),
        Some((pa((1 << 48) - 1), attrs))
    );
    table
        .unmap(ipa(top - BLOCK_2M), BLOCK_2M, &mut mem, &mut tlb)
        .unwrap();
    table
        .map(
            ipa(top - BLOCK_1G),
            pa(0x40_0000_0000),
            BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(table.lookup(ipa(top - 1), &mem).unwrap().level, 1);
    assert_eq!(
        table.map(
            ipa(top - BLOCK_1G),
            pa(0),
            BLOCK_1G + BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::InputOutOfRange)
    );
    // Output at the top of the physical space; one byte further is refused.
    assert_eq!(
        table.map(
            ipa(0),
            pa((1 << 48) - PAGE_SIZE),
            2 * PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::OutputOutOfRange)
    );

    // A 32-bit IPA space: level-2 root of four concatenated tables; the last 2 MiB is
    // entry 511 of the fourth.
    let (log, mut mem, mut tlb) = harness();
    let config = Stage2Config::from_parange(0, 32).unwrap();
    let mut table = PageTable::<Stage2>::new(&mut mem, config).unwrap();
    assert_eq!(table.root().as_u64() % (4 * PAGE_SIZE), 0);
    table
        .map(
            ipa(0xffe0_0000),
            pa(0xffe0_0000),
            BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert!(log.borrow().contains(&Event::Write {
        table: table.root().as_u64() + 3 * PAGE_SIZE,
        index: 511,
        value: 0xffe0_0000 | Stage2::encode_attributes(attrs).unwrap() | 0b01,
    }));
    assert_eq!(
        table.translate(ipa(0xffff_ffff), &mem),
        Some((pa(0xffff_ffff), attrs))
    );
    assert_eq!(
        table.map(
            ipa(0xffff_f000),
            pa(0),
            PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(
        table.map(
            ipa(0x1_0000_0000),
            pa(0),
            PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::InputOutOfRange)
    );
    // 32-bit physical space: the output limit follows.
    assert_eq!(
        table.map(
            ipa(0),
            pa(0xffff_f000),
            2 * PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::OutputOutOfRange)
    );

    // The EL2 stage 1: the top page of the 48-bit VA space.
    let (_log, mut mem, mut tlb, mut table) = el2();
    table
        .map(
            va(0xffff_ffff_f000),
            pa(0x4000_0000),
            PAGE_SIZE,
            Attributes::NORMAL_RW,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    assert_eq!(
        table.translate(va(0xffff_ffff_ffff), &mem),
        Some((pa(0x4000_0fff), Attributes::NORMAL_RW))
    );
    assert_eq!(table.table_count(&mem), 4);
    assert_eq!(
        table.map(
            va(0xffff_ffff_f000),
            pa(0),
            2 * PAGE_SIZE,
            Attributes::NORMAL_RW,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::InputOutOfRange)
    );
}

#[test]
fn translate_exact_byte_addresses() {
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RWX;
    table
        .map(
            ipa(0x5000),
            pa(0x7_0000_9000),
            PAGE_SIZE,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    table
        .map(
            ipa(0x4020_0000),
            pa(0x8_0060_0000),
            BLOCK_2M,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    table
        .map(
            ipa(0xc0_0000_0000),
            pa(0x1_4000_0000),
            BLOCK_1G,
            Attributes::DEVICE_RW,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    let expectations = [
        (0x4fff, None),
        (0x5000, Some(0x7_0000_9000)),
        (0x5001, Some(0x7_0000_9001)),
        (0x5abc, Some(0x7_0000_9abc)),
        (0x5fff, Some(0x7_0000_9fff)),
        (0x6000, None),
        (0x401f_ffff, None),
        (0x4020_0000, Some(0x8_0060_0000)),
        (0x4023_4567, Some(0x8_0063_4567)),
        (0x403f_ffff, Some(0x8_007f_ffff)),
        (0x4040_0000, None),
        (0xc0_0000_0000, Some(0x1_4000_0000)),
        (0xc0_1234_5678, Some(0x1_5234_5678)),
        (0xc0_3fff_ffff, Some(0x1_7fff_ffff)),
        (0xc0_4000_0000, None),
    ];
    for (input, output) in expectations {
        assert_eq!(
            table.translate(ipa(input), &mem).map(|(pa, _)| pa),
            output.map(pa),
            "{input:#x}"
        );
    }
    assert_eq!(
        table.translate(ipa(0xc0_1234_5678), &mem).unwrap().1,
        Attributes::DEVICE_RW
    );
}

#[test]
fn out_of_memory_during_map_rolls_back() {
    let attrs = Attributes::NORMAL_RW;
    // 3 MiB from 2 GiB - 512 KiB: pages in a new level-3 table under the existing level-2
    // table, then a new level-2 table holding a 2 MiB block and a new level-3 table.
    let (start, output, size) = (0x7ff8_0000, 0x8ff8_0000, 3 * MIB);
    for extra in 0..=3 {
        let (log, mut mem, mut tlb, mut table) = stage2(40);
        // An existing mapping shares the first level-2 table.
        table
            .map(
                ipa(0x4000_0000),
                pa(0x1000),
                PAGE_SIZE,
                attrs,
                &mut mem,
                &mut tlb,
            )
            .unwrap();
        let before = mem.snapshot();
        let live = mem.live();
        mem.set_limit(Some(live + extra));
        let at = mark(&log);
        let result = table.map(ipa(start), pa(output), size, attrs, &mut mem, &mut tlb);
        if extra < 3 {
            assert_eq!(result, Err(MapError::OutOfMemory), "{extra} tables");
            assert_eq!(mem.snapshot(), before, "{extra} tables");
            assert_eq!(mem.live(), live);
            assert_unmapped(&table, &mem, start, size);
            // Whatever was written was invalidated again: with one table, the pages below
            // 2 GiB; with two, also the 2 MiB block above.
            let events = events_since(&log, at);
            let written = [0, 0x8000_0000 - start, 0x8020_0000 - start][extra];
            assert_eq!(writes(&events) == 0, written == 0);
            if written > 0 {
                assert!(invalidation_covers(&events, start, written), "{events:?}");
            }
        } else {
            result.unwrap();
            assert_eq!(
                level_runs(&table, &mem, start, size),
                vec![(3, 512 * KIB), (2, 2 * MIB), (3, 512 * KIB)]
            );
            assert_maps(&table, &mem, start, output, size, attrs);
        }
        assert_eq!(
            table.translate(ipa(0x4000_0000), &mem),
            Some((pa(0x1000), attrs))
        );
        assert_no_empty_tables(&table, &mem);
    }
    // No memory at all for a new tree.
    let (_log, mut mem, _tlb) = harness();
    mem.set_limit(Some(1));
    let config = Stage2Config::from_parange(2, 40).unwrap();
    assert!(matches!(
        PageTable::<Stage2>::new(&mut mem, config),
        Err(MapError::OutOfMemory)
    ));
    assert_eq!(mem.live(), 0);
}

#[test]
fn out_of_memory_during_split_keeps_translations() {
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RW;
    table
        .map(
            ipa(0x4000_0000),
            pa(0x1_0000_0000),
            BLOCK_1G,
            attrs,
            &mut mem,
            &mut tlb,
        )
        .unwrap();
    // Room for the level-2 table only, not the level-3 one.
    mem.set_limit(Some(mem.live() + 1));
    assert_eq!(
        table.unmap(ipa(0x4010_0000), PAGE_SIZE, &mut mem, &mut tlb),
        Err(MapError::OutOfMemory)
    );
    assert_maps(&table, &mem, 0x4000_0000, 0x1_0000_0000, BLOCK_1G, attrs);
    assert_eq!(
        table.protect(
            ipa(0x4010_0000),
            PAGE_SIZE,
            Attributes::NORMAL_R,
            &mut mem,
            &mut tlb
        ),
        Err(MapError::OutOfMemory)
    );
    assert_maps(&table, &mem, 0x4000_0000, 0x1_0000_0000, BLOCK_1G, attrs);
    mem.set_limit(None);
    table
        .unmap(ipa(0x4010_0000), PAGE_SIZE, &mut mem, &mut tlb)
        .unwrap();
    assert_eq!(table.translate(ipa(0x4010_0000), &mem), None);
    assert_maps(&table, &mem, 0x4010_1000, 0x1_0010_1000, 0x10_0000, attrs);
}

#[test]
fn destroy_invalidates_then_frees_everything() {
    let (log, mut mem, mut tlb, mut table) = stage2(42);
    assert_eq!(mem.live(), 8);
    assert_eq!(table.root().as_u64() % (8 * PAGE_SIZE), 0);
    let attrs = Attributes::NORMAL_RWX;
    for (input, size) in [
        (0x4000_1000, 8 * MIB),
        (0x100_4000_0000, BLOCK_1G),
        (0x3ff_ffff_f000, PAGE_SIZE),
    ] {
        table
            .map(
                ipa(input),
                pa(input & 0xff_ffff_ffff),
                size,
                attrs,
                &mut mem,
                &mut tlb,
            )
            .unwrap();
    }
    assert!(mem.live() > 8);
    let at = mark(&log);
    table.destroy(&mut mem, &mut tlb);
    assert_eq!(mem.live(), 0);
    let events = events_since(&log, at);
    assert_eq!(events[0], Event::InvalidateAll);
    assert_eq!(writes(&events), 0);
    assert!(
        events[1..]
            .iter()
            .all(|event| matches!(event, Event::Free { .. }))
    );
}

#[test]
fn el2_identity_map_descriptors() {
    let (_log, mut mem, mut tlb, mut table) = el2();
    // UART page: Device RW; code: Normal RX; data: Normal RW; a 2 MiB block of RW data.
    let plan = [
        (0x0900_0000, PAGE_SIZE, Attributes::DEVICE_RW),
        (0x4008_0000, 64 * KIB, Attributes::NORMAL_RX),
        (0x4009_0000, 64 * KIB, Attributes::NORMAL_R),
        (0x400a_0000, 64 * KIB, Attributes::NORMAL_RW),
        (0x4020_0000, BLOCK_2M, Attributes::NORMAL_RW),
    ];
    for (address, size, attrs) in plan {
        table
            .map(
                va(address),
                va(address).identity_phys(),
                size,
                attrs,
                &mut mem,
                &mut tlb,
            )
            .unwrap();
    }
    let descriptor = |address| table.lookup(va(address), &mem).unwrap().descriptor;
    // Device-nGnRE (AttrIndx 0), AP[1] RES1, AF, XN, page.
    assert_eq!(
        descriptor(0x0900_0000),
        0x0900_0000 | 0x400 | 0x40 | (1 << 54) | 0b11
    );
    // Normal (AttrIndx 1), inner shareable, read-only, executable.
    assert_eq!(
        descriptor(0x4008_0000),
        0x4008_0000 | 0x4 | 0x300 | 0x400 | 0xc0 | 0b11
    );
    // Normal, read-only, execute-never.
    assert_eq!(
        descriptor(0x4009_0000),
        0x4009_0000 | 0x4 | 0x300 | 0x400 | 0xc0 | (1 << 54) | 0b11
    );
    // Normal, read-write, execute-never.
    assert_eq!(
        descriptor(0x400a_0000),
        0x400a_0000 | 0x4 | 0x300 | 0x400 | 0x40 | (1 << 54) | 0b11
    );
    // 2 MiB block.
    assert_eq!(
        descriptor(0x4020_0000),
        0x4020_0000 | 0x4 | 0x300 | 0x400 | 0x40 | (1 << 54) | 0b01
    );
    for (address, size, attrs) in plan {
        assert_maps(&table, &mem, address, address, size, attrs);
    }
    // What stage 1 cannot express is refused.
    assert_eq!(
        table.map(
            va(0x5000_0000),
            pa(0x5000_0000),
            PAGE_SIZE,
            Attributes::normal(Perms::new(false, true, false)),
            &mut mem,
            &mut tlb
        ),
        Err(MapError::Attributes(AttributeError::NotReadable))
    );
    assert_eq!(
        table.protect(
            va(0x0900_0000),
            PAGE_SIZE,
            Attributes::device(Perms::RX),
            &mut mem,
            &mut tlb
        ),
        Err(MapError::Attributes(AttributeError::ExecutableDevice))
    );
    // Four levels: the level-0 root, one level-1 table, level-2 tables for the first and
    // second GiB, level-3 tables for the UART page and for the 192 KiB of image pages.
    assert_eq!(table.table_count(&mem), 6);
    assert_eq!(table.geometry().start_level(), 0);
    assert_eq!(table.lookup(va(0x4008_0000), &mem).unwrap().level, 3);
    assert_eq!(
        table.lookup(va(0x4020_0000), &mem).unwrap().attributes.kind,
        MemoryKind::Normal
    );
}

#[test]
fn unmapped_tables_are_reused() {
    let (_log, mut mem, mut tlb, mut table) = stage2(40);
    let attrs = Attributes::NORMAL_RW;
    for round in 0..4 {
        table
            .map(
                ipa(0x4000_0000),
                pa(0x1000_0000 + round * PAGE_SIZE),
                64 * KIB,
                attrs,
                &mut mem,
                &mut tlb,
            )
            .unwrap();
        assert_eq!(mem.live(), 4);
        assert_maps(
            &table,
            &mem,
            0x4000_0000,
            0x1000_0000 + round * PAGE_SIZE,
            64 * KIB,
            attrs,
        );
        table
            .unmap(ipa(0x4000_0000), 64 * KIB, &mut mem, &mut tlb)
            .unwrap();
        assert_eq!(mem.live(), 2);
    }
}

/// A minimal xorshift generator: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The reference model: disjoint mapped ranges `(start, end, output, attrs)`.
#[derive(Default)]
struct Model(Vec<(u64, u64, u64, Attributes)>);

impl Model {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.0.iter().any(|&(s, e, _, _)| s < end && start < e)
    }

    fn covers(&self, start: u64, end: u64) -> bool {
        let mut parts: Vec<_> = self
            .0
            .iter()
            .filter(|&&(s, e, _, _)| s < end && start < e)
            .map(|&(s, e, _, _)| (s, e))
            .collect();
        parts.sort_unstable();
        let mut at = start;
        for (s, e) in parts {
            if s > at {
                return false;
            }
            at = at.max(e);
        }
        at >= end
    }

    /// Cuts every range at `start` and `end`, then applies `change` to the pieces inside.
    fn edit(&mut self, start: u64, end: u64, change: Option<Attributes>) {
        let mut next = Vec::new();
        for &(s, e, out, attrs) in &self.0 {
            if e <= start || end <= s {
                next.push((s, e, out, attrs));
                continue;
            }
            if s < start {
                next.push((s, start, out, attrs));
            }
            if let Some(new) = change {
                let lo = s.max(start);
                next.push((lo, e.min(end), out + (lo - s), new));
            }
            if end < e {
                next.push((end, e, out + (end - s), attrs));
            }
        }
        self.0 = next;
    }

    fn translate(&self, address: u64) -> Option<(PhysAddr, Attributes)> {
        self.0
            .iter()
            .find(|&&(s, e, _, _)| s <= address && address < e)
            .map(|&(s, _, out, attrs)| (pa(out + (address - s)), attrs))
    }
}

#[test]
fn randomized_operations_agree_with_a_model() {
    const SPACE: u64 = 8 * BLOCK_1G;
    let choices = [
        Attributes::NORMAL_RWX,
        Attributes::NORMAL_RW,
        Attributes::NORMAL_R,
        Attributes::DEVICE_RW,
        Attributes::device(Perms::R),
    ];
    let (log, mut mem, mut tlb, mut table) = stage2(40);
    let mut model = Model::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut successes = [0u32; 3];
    for step in 0..3000 {
        let (align, units) = match rng.below(20) {
            0..=9 => (PAGE_SIZE, 1 + rng.below(700)),
            10..=16 => (BLOCK_2M, 1 + rng.below(6)),
            _ => (BLOCK_1G, 1 + rng.below(2)),
        };
        let mut size = align * units;
        // Mostly aligned to `align`, sometimes only to pages, so blocks get split.
        let mut start = if rng.below(4) == 0 {
            rng.below((SPACE - size) / PAGE_SIZE) * PAGE_SIZE
        } else {
            rng.below((SPACE - size) / align + 1) * align
        };
        let op = rng.below(4);
        // Unmap and protect mostly aim inside an existing mapping.
        if op >= 2 && !model.0.is_empty() && rng.below(3) != 0 {
            let (s, e, _, _) = model.0[rng.below(model.0.len() as u64) as usize];
            let pages = (e - s) / PAGE_SIZE;
            let first = rng.below(pages);
            start = s + first * PAGE_SIZE;
            size = (1 + rng.below(pages - first)) * PAGE_SIZE;
        }
        let end = start + size;
        let attrs = choices[rng.below(choices.len() as u64) as usize];
        let at = mark(&log);
        let result = match op {
            0 | 1 => {
                let out_align = if rng.below(3) == 0 { PAGE_SIZE } else { align };
                let output = rng.below((1 << 39) / out_align) * out_align;
                let result = table.map(ipa(start), pa(output), size, attrs, &mut mem, &mut tlb);
                if model.overlaps(start, end) {
                    assert_eq!(result, Err(MapError::AlreadyMapped), "step {step}");
                } else {
                    result.unwrap();
                    model.0.push((start, end, output, attrs));
                }
                result
            }
            2 => {
                let result = table.unmap(ipa(start), size, &mut mem, &mut tlb);
                if model.covers(start, end) {
                    result.unwrap();
                    model.edit(start, end, None);
                    assert!(invalidation_covers(&events_since(&log, at), start, size));
                } else {
                    assert_eq!(result, Err(MapError::NotMapped), "step {step}");
                }
                result
            }
            _ => {
                let result = table.protect(ipa(start), size, attrs, &mut mem, &mut tlb);
                if model.covers(start, end) {
                    result.unwrap();
                    model.edit(start, end, Some(attrs));
                } else {
                    assert_eq!(result, Err(MapError::NotMapped), "step {step}");
                }
                result
            }
        };
        if result.is_ok() {
            successes[(op as usize).saturating_sub(1).min(2)] += 1;
        } else {
            assert_eq!(
                writes(&events_since(&log, at)),
                0,
                "failed op wrote, step {step}"
            );
        }
        // Spot checks around the operation and at random.
        let mut probes = vec![start, end - 1, start + size / 2, end.min(SPACE - 1)];
        probes.extend((0..8).map(|_| rng.below(SPACE)));
        for probe in probes {
            assert_eq!(
                table.translate(ipa(probe), &mem),
                model.translate(probe),
                "step {step}: {probe:#x}"
            );
        }
        if step % 200 == 0 {
            assert_no_empty_tables(&table, &mem);
            for &(s, e, out, attrs) in &model.0 {
                assert_eq!(table.translate(ipa(s), &mem), Some((pa(out), attrs)));
                assert_eq!(
                    table.translate(ipa(e - 1), &mem),
                    Some((pa(out + (e - 1 - s)), attrs))
                );
            }
        }
    }
    assert!(
        successes.iter().all(|&n| n > 50),
        "too few successes: {successes:?}"
    );
    // Unmap what is left; every table below the root goes.
    for (s, e, _, _) in core::mem::take(&mut model.0) {
        table.unmap(ipa(s), e - s, &mut mem, &mut tlb).unwrap();
    }
    assert_eq!(mem.live(), 2);
    assert_eq!(table.table_count(&mem), 2);
}
