//! Host-test doubles: table memory in a `BTreeMap` of boxed tables and a TLB that records
//! what it is asked, both appending to one shared event log so tests can check ordering.

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::vec::Vec;

use crate::address::PhysAddr;
use crate::memory::{TableAddr, TableMemory, TlbMaintenance};
use crate::{ENTRIES_PER_TABLE, PAGE_SIZE};

/// Something the engine did to the memory or the TLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Alloc {
        base: u64,
        count: usize,
    },
    Free {
        base: u64,
        count: usize,
    },
    Write {
        table: u64,
        index: usize,
        value: u64,
    },
    Invalidate {
        start: u64,
        size: u64,
        last_level_only: bool,
    },
    InvalidateAll,
    Publish,
}

/// The shared event log.
pub type Log = Rc<RefCell<Vec<Event>>>;

type Table = [u64; ENTRIES_PER_TABLE];

/// Table memory over the heap, with "physical" addresses handed out from `BASE` upwards.
pub struct VecTableMemory {
    tables: BTreeMap<u64, Box<Table>>,
    free_list: Vec<u64>,
    next: u64,
    limit: Option<usize>,
    log: Log,
}

impl VecTableMemory {
    /// Where the fake physical addresses of tables start.
    pub const BASE: u64 = 0x40_0000_0000;

    pub fn new(log: &Log) -> Self {
        Self {
            tables: BTreeMap::new(),
            free_list: Vec::new(),
            next: Self::BASE,
            limit: None,
            log: Rc::clone(log),
        }
    }

    /// Number of tables currently allocated.
    pub fn live(&self) -> usize {
        self.tables.len()
    }

    /// Caps the number of live tables (allocations beyond fail).
    pub fn set_limit(&mut self, limit: Option<usize>) {
        self.limit = limit;
    }

    /// A copy of every live table, for byte-for-byte comparisons.
    pub fn snapshot(&self) -> BTreeMap<u64, Table> {
        self.tables
            .iter()
            .map(|(&base, table)| (base, **table))
            .collect()
    }

    fn record(&self, event: Event) {
        self.log.borrow_mut().push(event);
    }

    fn has_room(&self, count: usize) -> bool {
        self.limit
            .is_none_or(|limit| self.tables.len() + count <= limit)
    }

    fn table(&self, table: TableAddr, index: usize) -> &Table {
        assert!(
            index < ENTRIES_PER_TABLE,
            "entry index {index} out of range"
        );
        self.tables
            .get(&table.addr().as_u64())
            .unwrap_or_else(|| panic!("access to unallocated table {table:?}"))
    }
}

// SAFETY: the "addresses" are keys into `tables`, not memory: each key handed out maps to
// a fresh zeroed boxed table that only this value's `write_entry` changes, until freed.
// Every method is safe Rust and checks the key (panicking on one it does not hold), so
// any `TableAddr` is sound; no root is ever given to hardware, and this is the only
// implementation in the test binary.
#[allow(unsafe_code)]
unsafe impl TableMemory for VecTableMemory {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        if !self.has_room(1) {
            return None;
        }
        let base = self.free_list.pop().unwrap_or_else(|| {
            let base = self.next;
            self.next += PAGE_SIZE;
            base
        });
        self.tables.insert(base, Box::new([0; ENTRIES_PER_TABLE]));
        self.record(Event::Alloc { base, count: 1 });
        Some(PhysAddr::new(base))
    }

    fn alloc_contiguous_tables(&mut self, count: usize) -> Option<PhysAddr> {
        assert!(
            count.is_power_of_two() && (2..=16).contains(&count),
            "bad count {count}"
        );
        if !self.has_room(count) {
            return None;
        }
        let bytes = count as u64 * PAGE_SIZE;
        let base = self.next.next_multiple_of(bytes);
        self.next = base + bytes;
        for i in 0..count as u64 {
            self.tables
                .insert(base + i * PAGE_SIZE, Box::new([0; ENTRIES_PER_TABLE]));
        }
        self.record(Event::Alloc { base, count });
        Some(PhysAddr::new(base))
    }

    fn free_table(&mut self, table: TableAddr) {
        let base = table.addr().as_u64();
        assert!(
            self.tables.remove(&base).is_some(),
            "free of unallocated table {table:?}"
        );
        self.free_list.push(base);
        self.record(Event::Free { base, count: 1 });
    }

    fn free_contiguous_tables(&mut self, base: TableAddr, count: usize) {
        let base = base.addr();
        for i in 0..count as u64 {
            let table = base.as_u64() + i * PAGE_SIZE;
            assert!(
                self.tables.remove(&table).is_some(),
                "free of unallocated table {table:#x}"
            );
        }
        self.record(Event::Free {
            base: base.as_u64(),
            count,
        });
    }

    fn read_entry(&self, table: TableAddr, index: usize) -> u64 {
        self.table(table, index)[index]
    }

    fn write_entry(&mut self, table: TableAddr, index: usize, value: u64) {
        self.table(table, index);
        if let Some(entries) = self.tables.get_mut(&table.addr().as_u64()) {
            entries[index] = value;
        }
        self.record(Event::Write {
            table: table.addr().as_u64(),
            index,
            value,
        });
    }
}

/// A TLB that records the maintenance it is asked for.
pub struct RecordingTlb {
    log: Log,
}

impl RecordingTlb {
    pub fn new(log: &Log) -> Self {
        Self {
            log: Rc::clone(log),
        }
    }
}

impl TlbMaintenance for RecordingTlb {
    fn invalidate_range(&mut self, start: u64, size: u64, last_level_only: bool) {
        assert!(start.is_multiple_of(PAGE_SIZE) && size.is_multiple_of(PAGE_SIZE) && size > 0);
        self.log.borrow_mut().push(Event::Invalidate {
            start,
            size,
            last_level_only,
        });
    }

    fn invalidate_all(&mut self) {
        self.log.borrow_mut().push(Event::InvalidateAll);
    }

    fn publish(&mut self) {
        self.log.borrow_mut().push(Event::Publish);
    }
}

/// A fresh log, memory and TLB.
pub fn harness() -> (Log, VecTableMemory, RecordingTlb) {
    let log = Log::default();
    let mem = VecTableMemory::new(&log);
    let tlb = RecordingTlb::new(&log);
    (log, mem, tlb)
}

/// Whether the invalidations in `events` cover every page of `[start, start + size)`.
pub fn invalidation_covers(events: &[Event], start: u64, size: u64) -> bool {
    if events.contains(&Event::InvalidateAll) {
        return true;
    }
    let mut ranges: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|event| match *event {
            Event::Invalidate { start, size, .. } => Some((start, start + size)),
            _ => None,
        })
        .collect();
    ranges.sort_unstable();
    let mut covered_to = start;
    for (lo, hi) in ranges {
        if lo <= covered_to && hi > covered_to {
            covered_to = hi;
        }
    }
    covered_to >= start + size
}
