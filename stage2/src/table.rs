//! The translation-table engine.
//!
//! [`PageTable`] holds only the root address and the geometry; the tables live in a
//! [`TableMemory`] passed to every call, and TLB maintenance goes through a
//! [`TlbMaintenance`] passed to every call that changes a live entry.
//!
//! # How each operation proceeds
//!
//! - **map**: check the arguments, then walk the range read-only and refuse it if anything
//!   in it is mapped (nothing written yet). Then fill it with the largest leaves input and
//!   output alignment allow (1 GiB blocks at level 1, 2 MiB blocks at level 2, 4 KiB pages
//!   at level 3), allocating tables on the way, and `publish`. Only invalid slots are
//!   written, so no invalidation is needed. If table memory runs out, everything written so
//!   far is removed again (with invalidation) and the tables allocated are freed.
//! - **unmap**/**protect**: check the arguments, then refuse the range if any of it is not
//!   mapped. Then split the blocks that straddle the two ends of the range (break-before-
//!   make: the block becomes invalid, is invalidated, then becomes a table of equivalent
//!   smaller leaves), so that every leaf touched lies wholly inside the range. Splitting is
//!   the only step that allocates; if it fails, every address still translates as before.
//!   Then clear or rewrite the leaves and invalidate what changed.
//! - Unmap frees every table it empties: the parent entry is cleared, the range it covered
//!   invalidated (walk caches included), and only then is the table memory returned.
//! - Protect rewrites permission-only changes in place; a change of memory type goes
//!   through break-before-make per leaf.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Range;

use crate::address::{InputAddress, PhysAddr};
use crate::attributes::{AttributeError, Attributes};
use crate::config::Geometry;
use crate::format::{
    DESC_ADDRESS_MASK, DESC_TABLE_OR_PAGE, DESC_VALID, Format, LEAF_ATTRIBUTE_MASK,
};
use crate::memory::{TableAddr, TableMemory, TlbMaintenance};
use crate::{ENTRIES_PER_TABLE, LAST_LEVEL, PAGE_SIZE, level_shift, level_size};

/// Why a table operation was refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapError {
    /// The size is zero.
    ZeroSize,
    /// The input address, output address or size is not a multiple of 4 KiB.
    Misaligned,
    /// The input range does not fit in the input address space.
    InputOutOfRange,
    /// The output range does not fit in the output (physical) address space.
    OutputOutOfRange,
    /// Part of the range is already mapped (map); the tables are unchanged.
    AlreadyMapped,
    /// Part of the range is not mapped (unmap, protect); the tables are unchanged.
    NotMapped,
    /// Table memory ran out. Every address translates as before the call (a block may have
    /// been split into an equivalent table).
    OutOfMemory,
    /// The format refuses the attributes.
    Attributes(AttributeError),
}

impl From<AttributeError> for MapError {
    fn from(error: AttributeError) -> Self {
        Self::Attributes(error)
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("zero-sized range"),
            Self::Misaligned => f.write_str("address or size not 4 KiB aligned"),
            Self::InputOutOfRange => f.write_str("input range outside the address space"),
            Self::OutputOutOfRange => f.write_str("output range outside the physical space"),
            Self::AlreadyMapped => f.write_str("range overlaps an existing mapping"),
            Self::NotMapped => f.write_str("range is not entirely mapped"),
            Self::OutOfMemory => f.write_str("out of translation-table memory"),
            Self::Attributes(error) => write!(f, "invalid attributes: {error}"),
        }
    }
}

/// One leaf (block or page descriptor) found by [`PageTable::lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf<A> {
    /// Translation level of the descriptor: 1 (1 GiB block), 2 (2 MiB block) or 3 (page).
    pub level: u8,
    /// The raw descriptor.
    pub descriptor: u64,
    /// First input address the leaf maps.
    pub input: A,
    /// Output address of `input`.
    pub output: PhysAddr,
    /// Bytes the leaf maps.
    pub size: u64,
    /// The leaf's attributes.
    pub attributes: Attributes,
}

/// A translation table tree in format `F`.
///
/// The value holds the root's address and the geometry; the tables themselves are in the
/// [`TableMemory`] given to each call, which must be the same memory every time. Dropping
/// a `PageTable` does not free its tables: call [`destroy`](Self::destroy).
pub struct PageTable<F: Format> {
    root: PhysAddr,
    geometry: Geometry,
    format: PhantomData<F>,
}

impl<F: Format> fmt::Debug for PageTable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTable")
            .field("root", &self.root)
            .field("geometry", &self.geometry)
            .finish()
    }
}

/// What a table entry holds.
#[derive(Clone, Copy)]
enum Entry {
    Invalid,
    Table(PhysAddr),
    Leaf(u64),
}

fn decode(level: u8, raw: u64) -> Entry {
    let table_or_page = raw & DESC_TABLE_OR_PAGE != 0;
    if raw & DESC_VALID == 0 {
        Entry::Invalid
    } else if level == LAST_LEVEL {
        // At level 3, 0b01 is reserved and faults like an invalid entry.
        if table_or_page {
            Entry::Leaf(raw)
        } else {
            Entry::Invalid
        }
    } else if table_or_page {
        Entry::Table(PhysAddr::new(raw & DESC_ADDRESS_MASK))
    } else if level == 0 {
        // No level-0 blocks with the 4 KiB granule and 48-bit output addresses.
        Entry::Invalid
    } else {
        Entry::Leaf(raw)
    }
}

fn table_descriptor(table: PhysAddr) -> u64 {
    (table.as_u64() & DESC_ADDRESS_MASK) | DESC_TABLE_OR_PAGE | DESC_VALID
}

fn leaf_descriptor(level: u8, output: u64, attribute_bits: u64) -> u64 {
    let kind = if level == LAST_LEVEL {
        DESC_TABLE_OR_PAGE
    } else {
        0
    };
    (output & DESC_ADDRESS_MASK) | (attribute_bits & LEAF_ATTRIBUTE_MASK) | kind | DESC_VALID
}

/// A table being walked: where it is, its level, and which inputs it covers.
#[derive(Clone, Copy)]
struct Node {
    base: PhysAddr,
    level: u8,
    /// Input address mapped by entry 0.
    first: u64,
    /// Entries in use (more than 512 only for a concatenated root).
    entries: usize,
}

impl Node {
    fn span(&self) -> u64 {
        level_size(self.level)
    }

    /// The 4 KiB table holding entry `index` and the index within it.
    fn slot(&self, index: usize) -> (PhysAddr, usize) {
        let table = (index / ENTRIES_PER_TABLE) as u64 * PAGE_SIZE;
        (
            PhysAddr::new(self.base.as_u64() + table),
            index % ENTRIES_PER_TABLE,
        )
    }

    fn read<M: TableMemory + ?Sized>(&self, mem: &M, index: usize) -> u64 {
        let (table, slot) = self.slot(index);
        mem.read_entry(TableAddr::new(table), slot)
    }

    fn write<M: TableMemory + ?Sized>(&self, mem: &mut M, index: usize, value: u64) {
        let (table, slot) = self.slot(index);
        mem.write_entry(TableAddr::new(table), slot, value);
    }

    fn entry(&self, mem: &(impl TableMemory + ?Sized), index: usize) -> Entry {
        decode(self.level, self.read(mem, index))
    }

    fn index_of(&self, address: u64) -> usize {
        ((address - self.first) >> level_shift(self.level)) as usize
    }

    fn entry_start(&self, index: usize) -> u64 {
        self.first + ((index as u64) << level_shift(self.level))
    }

    /// Entries overlapping `[start, end)`, which lies within this node (`start < end`).
    fn indices(&self, start: u64, end: u64) -> Range<usize> {
        self.index_of(start)..self.index_of(end - 1) + 1
    }

    /// For entry `index`: its input range and the part of `[start, end)` inside it.
    fn clip(&self, index: usize, start: u64, end: u64) -> Clip {
        let entry_start = self.entry_start(index);
        let entry_end = entry_start + self.span();
        Clip {
            entry_start,
            entry_end,
            start: start.max(entry_start),
            end: end.min(entry_end),
        }
    }

    fn child(&self, table: PhysAddr, index: usize) -> Node {
        Node {
            base: table,
            level: self.level + 1,
            first: self.entry_start(index),
            entries: ENTRIES_PER_TABLE,
        }
    }
}

struct Clip {
    entry_start: u64,
    entry_end: u64,
    start: u64,
    end: u64,
}

impl Clip {
    fn whole(&self) -> bool {
        self.start == self.entry_start && self.end == self.entry_end
    }
}

/// The smallest input range covering every leaf changed so far (for one invalidation).
#[derive(Clone, Copy, Default)]
struct Hull(Option<(u64, u64)>);

impl Hull {
    fn add(&mut self, start: u64, end: u64) {
        self.0 = Some(match self.0 {
            Some((lo, hi)) => (lo.min(start), hi.max(end)),
            None => (start, end),
        });
    }

    fn merge(&mut self, other: Hull) {
        if let Some((start, end)) = other.0 {
            self.add(start, end);
        }
    }

    /// Invalidates the leaf entries of the hull, if any changed.
    fn invalidate<T: TlbMaintenance + ?Sized>(self, tlb: &mut T) {
        if let Some((start, end)) = self.0 {
            tlb.invalidate_range(start, end - start, true);
        }
    }
}

/// What [`PageTable::find`] looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Find {
    /// Any mapped address.
    Mapped,
    /// Any unmapped address.
    Hole,
}

/// The arguments of one map call, checked.
struct MapJob {
    start: u64,
    output: u64,
    attribute_bits: u64,
}

impl<F: Format> PageTable<F> {
    /// An empty table tree for `config`: allocates the root (concatenated tables when the
    /// configuration needs them).
    ///
    /// # Errors
    ///
    /// [`MapError::OutOfMemory`] if the root cannot be allocated.
    pub fn new<M: TableMemory + ?Sized>(mem: &mut M, config: F::Config) -> Result<Self, MapError> {
        let geometry = F::geometry(&config);
        let root = match geometry.root_tables() {
            1 => mem.alloc_table(),
            count => mem.alloc_contiguous_tables(count),
        }
        .ok_or(MapError::OutOfMemory)?;
        Ok(Self {
            root,
            geometry,
            format: PhantomData,
        })
    }

    /// Physical address of the root table (the first of the concatenated root tables),
    /// for `VTTBR_EL2.BADDR` or `TTBR0_EL2`.
    #[must_use]
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The geometry the tables were built for.
    #[must_use]
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Maps input `[input, input + size)` to output `[output, output + size)` with `attrs`,
    /// using 1 GiB and 2 MiB blocks wherever both addresses are aligned to them and the
    /// range covers them, 4 KiB pages elsewhere.
    ///
    /// # Errors
    ///
    /// [`MapError::ZeroSize`], [`MapError::Misaligned`], [`MapError::InputOutOfRange`],
    /// [`MapError::OutputOutOfRange`], [`MapError::Attributes`] for bad arguments;
    /// [`MapError::AlreadyMapped`] if any of the range is mapped; in all these cases
    /// nothing was written. [`MapError::OutOfMemory`] if a table could not be allocated;
    /// then the range is unmapped again and its new tables freed.
    pub fn map<M, T>(
        &mut self,
        input: F::Input,
        output: PhysAddr,
        size: u64,
        attrs: Attributes,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let start = input.to_u64();
        let end = self.input_end(start, size)?;
        self.check_output(output, size)?;
        let attribute_bits = F::encode_attributes(attrs)?;
        let root = self.root_node();
        if Self::find(mem, root, start, end, Find::Mapped) {
            return Err(MapError::AlreadyMapped);
        }
        let job = MapJob {
            start,
            output: output.as_u64(),
            attribute_bits,
        };
        match Self::map_in(mem, root, start, end, &job) {
            Ok(()) => {
                tlb.publish();
                Ok(())
            }
            Err(error) => {
                // Everything in the range is ours: it was all unmapped before.
                let hull = Self::clear_in(mem, tlb, root, start, end);
                hull.invalidate(tlb);
                Err(error)
            }
        }
    }

    /// Unmaps input `[input, input + size)`, splitting blocks that extend beyond either
    /// end, freeing every table left empty, and invalidating the TLBs for what changed.
    ///
    /// # Errors
    ///
    /// [`MapError::ZeroSize`], [`MapError::Misaligned`], [`MapError::InputOutOfRange`] for
    /// bad arguments; [`MapError::NotMapped`] if any page of the range is not mapped
    /// (nothing is unmapped then); [`MapError::OutOfMemory`] if a block could not be split
    /// (nothing is unmapped then either).
    pub fn unmap<M, T>(
        &mut self,
        input: F::Input,
        size: u64,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let start = input.to_u64();
        let end = self.input_end(start, size)?;
        let root = self.root_node();
        if Self::find(mem, root, start, end, Find::Hole) {
            return Err(MapError::NotMapped);
        }
        self.split_at(mem, tlb, start)?;
        self.split_at(mem, tlb, end)?;
        let hull = Self::clear_in(mem, tlb, root, start, end);
        hull.invalidate(tlb);
        Ok(())
    }

    /// Changes the attributes of the mapped input range `[input, input + size)` to
    /// `attrs`, keeping output addresses, splitting blocks that extend beyond either end.
    ///
    /// # Errors
    ///
    /// [`MapError::ZeroSize`], [`MapError::Misaligned`], [`MapError::InputOutOfRange`],
    /// [`MapError::Attributes`] for bad arguments; [`MapError::NotMapped`] if any page of
    /// the range is not mapped (nothing changes then); [`MapError::OutOfMemory`] if a
    /// block could not be split (no attribute changes then).
    pub fn protect<M, T>(
        &mut self,
        input: F::Input,
        size: u64,
        attrs: Attributes,
        mem: &mut M,
        tlb: &mut T,
    ) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let start = input.to_u64();
        let end = self.input_end(start, size)?;
        let attribute_bits = F::encode_attributes(attrs)?;
        let root = self.root_node();
        if Self::find(mem, root, start, end, Find::Hole) {
            return Err(MapError::NotMapped);
        }
        self.split_at(mem, tlb, start)?;
        self.split_at(mem, tlb, end)?;
        let hull = Self::protect_in(mem, tlb, root, start, end, attribute_bits);
        hull.invalidate(tlb);
        Ok(())
    }

    /// The output address and attributes of input address `input` (any byte address), or
    /// `None` if it is not mapped or outside the input space.
    pub fn translate<M: TableMemory + ?Sized>(
        &self,
        input: F::Input,
        mem: &M,
    ) -> Option<(PhysAddr, Attributes)> {
        let leaf = self.lookup(input, mem)?;
        let offset = input.to_u64() - leaf.input.to_u64();
        Some((leaf.output.offset(offset), leaf.attributes))
    }

    /// The leaf descriptor mapping input address `input`, with its level and extent, or
    /// `None` if it is not mapped or outside the input space.
    pub fn lookup<M: TableMemory + ?Sized>(
        &self,
        input: F::Input,
        mem: &M,
    ) -> Option<Leaf<F::Input>> {
        let address = input.to_u64();
        if address >= self.geometry.input_limit() {
            return None;
        }
        let mut node = self.root_node();
        loop {
            let index = node.index_of(address);
            match node.entry(mem, index) {
                Entry::Invalid => return None,
                Entry::Table(table) => node = node.child(table, index),
                Entry::Leaf(raw) => {
                    return Some(Leaf {
                        level: node.level,
                        descriptor: raw,
                        input: F::Input::from_u64(node.entry_start(index)),
                        output: PhysAddr::new(raw & DESC_ADDRESS_MASK),
                        size: node.span(),
                        attributes: F::decode_attributes(raw),
                    });
                }
            }
        }
    }

    /// Number of 4 KiB tables in the tree, the root tables included.
    pub fn table_count<M: TableMemory + ?Sized>(&self, mem: &M) -> usize {
        self.geometry.root_tables() + Self::count_below(mem, self.root_node())
    }

    /// Frees every table, the root included, after invalidating the whole translation
    /// context. The tables must no longer be in use by any CPU (for stage 2: no CPU runs
    /// the guest, and `VTTBR_EL2` no longer points at this root except, if the
    /// [`TlbMaintenance`] implementation needs it, while `invalidate_all` runs).
    pub fn destroy<M, T>(self, mem: &mut M, tlb: &mut T)
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        tlb.invalidate_all();
        Self::free_below(mem, self.root_node());
        match self.geometry.root_tables() {
            1 => mem.free_table(TableAddr::new(self.root)),
            count => mem.free_contiguous_tables(TableAddr::new(self.root), count),
        }
    }

    fn root_node(&self) -> Node {
        Node {
            base: self.root,
            level: self.geometry.start_level(),
            first: 0,
            entries: self.geometry.root_entries(),
        }
    }

    /// Checks an input range; returns its end.
    fn input_end(&self, start: u64, size: u64) -> Result<u64, MapError> {
        if size == 0 {
            return Err(MapError::ZeroSize);
        }
        if !start.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        match start.checked_add(size) {
            Some(end) if end <= self.geometry.input_limit() => Ok(end),
            _ => Err(MapError::InputOutOfRange),
        }
    }

    fn check_output(&self, output: PhysAddr, size: u64) -> Result<(), MapError> {
        if !output.is_aligned(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        match output.as_u64().checked_add(size) {
            Some(end) if end <= self.geometry.output_limit() => Ok(()),
            _ => Err(MapError::OutputOutOfRange),
        }
    }

    /// Whether `[start, end)` (within `node`) holds any mapped address (`Find::Mapped`)
    /// or any unmapped address (`Find::Hole`).
    fn find<M: TableMemory + ?Sized>(
        mem: &M,
        node: Node,
        start: u64,
        end: u64,
        what: Find,
    ) -> bool {
        node.indices(start, end)
            .any(|index| match node.entry(mem, index) {
                Entry::Invalid => what == Find::Hole,
                Entry::Leaf(_) => what == Find::Mapped,
                Entry::Table(table) => {
                    let clip = node.clip(index, start, end);
                    Self::find(mem, node.child(table, index), clip.start, clip.end, what)
                }
            })
    }

    /// Maps `[start, end)` (within `node`, all unmapped).
    fn map_in<M: TableMemory + ?Sized>(
        mem: &mut M,
        node: Node,
        start: u64,
        end: u64,
        job: &MapJob,
    ) -> Result<(), MapError> {
        for index in node.indices(start, end) {
            let clip = node.clip(index, start, end);
            let output = job.output + (clip.start - job.start);
            match node.entry(mem, index) {
                Entry::Invalid
                    if node.level >= 1 && clip.whole() && output.is_multiple_of(node.span()) =>
                {
                    node.write(
                        mem,
                        index,
                        leaf_descriptor(node.level, output, job.attribute_bits),
                    );
                }
                Entry::Invalid => {
                    if node.level == LAST_LEVEL {
                        // A level-3 entry is one page and the range is page aligned, so
                        // the arm above always takes it.
                        return Err(MapError::Misaligned);
                    }
                    let table = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                    node.write(mem, index, table_descriptor(table));
                    Self::map_in(mem, node.child(table, index), clip.start, clip.end, job)?;
                }
                Entry::Table(table) => {
                    Self::map_in(mem, node.child(table, index), clip.start, clip.end, job)?;
                }
                // `find` saw no leaf in the range before anything was written.
                Entry::Leaf(_) => return Err(MapError::AlreadyMapped),
            }
        }
        Ok(())
    }

    /// Makes `address` a boundary between leaves: splits, level by level, the block that
    /// contains it without starting at it.
    fn split_at<M, T>(&self, mem: &mut M, tlb: &mut T, address: u64) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        if address >= self.geometry.input_limit() {
            return Ok(());
        }
        let mut node = self.root_node();
        loop {
            let index = node.index_of(address);
            match node.entry(mem, index) {
                Entry::Invalid => return Ok(()),
                Entry::Table(table) => node = node.child(table, index),
                Entry::Leaf(raw) => {
                    if node.level == LAST_LEVEL || address == node.entry_start(index) {
                        return Ok(());
                    }
                    let table = Self::split_block(mem, tlb, node, index, raw)?;
                    node = node.child(table, index);
                }
            }
        }
    }

    /// Replaces block `raw` at `index` of `node` by a table of 512 next-level leaves with
    /// the same attributes and output addresses, by break-before-make.
    fn split_block<M, T>(
        mem: &mut M,
        tlb: &mut T,
        node: Node,
        index: usize,
        raw: u64,
    ) -> Result<PhysAddr, MapError>
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let table = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
        let child_level = node.level + 1;
        let child_span = level_size(child_level);
        let output = raw & DESC_ADDRESS_MASK;
        for slot in 0..ENTRIES_PER_TABLE {
            let descriptor = leaf_descriptor(
                child_level,
                output + slot as u64 * child_span,
                raw & LEAF_ATTRIBUTE_MASK,
            );
            mem.write_entry(TableAddr::new(table), slot, descriptor);
        }
        // Break: the block becomes invalid and leaves every TLB.
        node.write(mem, index, 0);
        tlb.invalidate_range(node.entry_start(index), node.span(), false);
        // Make: the equivalent table takes its place.
        node.write(mem, index, table_descriptor(table));
        tlb.publish();
        Ok(table)
    }

    /// Unmaps every leaf in `[start, end)` (within `node`; no leaf extends beyond the
    /// range) and frees emptied tables. Returns the leaves still to be invalidated.
    fn clear_in<M, T>(mem: &mut M, tlb: &mut T, node: Node, start: u64, end: u64) -> Hull
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let mut hull = Hull::default();
        for index in node.indices(start, end) {
            let clip = node.clip(index, start, end);
            match node.entry(mem, index) {
                Entry::Invalid => {}
                Entry::Leaf(_) => {
                    debug_assert!(clip.whole(), "unmap reached a block it did not split");
                    if clip.whole() {
                        node.write(mem, index, 0);
                        hull.add(clip.entry_start, clip.entry_end);
                    }
                }
                Entry::Table(table) => {
                    let child = node.child(table, index);
                    if clip.whole() {
                        // The whole subtree goes: detach it, invalidate, then free it.
                        node.write(mem, index, 0);
                        tlb.invalidate_range(clip.entry_start, node.span(), false);
                        Self::free_below(mem, child);
                        mem.free_table(TableAddr::new(table));
                    } else {
                        let inner = Self::clear_in(mem, tlb, child, clip.start, clip.end);
                        if Self::is_empty(mem, child) {
                            node.write(mem, index, 0);
                            tlb.invalidate_range(clip.entry_start, node.span(), false);
                            mem.free_table(TableAddr::new(table));
                        } else {
                            hull.merge(inner);
                        }
                    }
                }
            }
        }
        hull
    }

    /// Rewrites the attributes of every leaf in `[start, end)` (within `node`; no leaf
    /// extends beyond the range). Returns the leaves still to be invalidated.
    fn protect_in<M, T>(
        mem: &mut M,
        tlb: &mut T,
        node: Node,
        start: u64,
        end: u64,
        attribute_bits: u64,
    ) -> Hull
    where
        M: TableMemory + ?Sized,
        T: TlbMaintenance + ?Sized,
    {
        let mut hull = Hull::default();
        for index in node.indices(start, end) {
            let clip = node.clip(index, start, end);
            match node.entry(mem, index) {
                Entry::Invalid => {}
                Entry::Table(table) => {
                    let child = node.child(table, index);
                    hull.merge(Self::protect_in(
                        mem,
                        tlb,
                        child,
                        clip.start,
                        clip.end,
                        attribute_bits,
                    ));
                }
                Entry::Leaf(raw) => {
                    debug_assert!(clip.whole(), "protect reached a block it did not split");
                    let new = (raw & !LEAF_ATTRIBUTE_MASK) | attribute_bits;
                    if !clip.whole() || new == raw {
                        continue;
                    }
                    if (raw ^ new) & F::MEMORY_TYPE_MASK != 0 {
                        // A memory type change needs break-before-make.
                        node.write(mem, index, 0);
                        tlb.invalidate_range(clip.entry_start, node.span(), true);
                    }
                    node.write(mem, index, new);
                    hull.add(clip.entry_start, clip.entry_end);
                }
            }
        }
        hull
    }

    fn is_empty<M: TableMemory + ?Sized>(mem: &M, node: Node) -> bool {
        (0..node.entries).all(|index| node.read(mem, index) & DESC_VALID == 0)
    }

    /// Frees every table below `node` (not `node` itself), without writing entries.
    fn free_below<M: TableMemory + ?Sized>(mem: &mut M, node: Node) {
        if node.level == LAST_LEVEL {
            return;
        }
        for index in 0..node.entries {
            if let Entry::Table(table) = node.entry(mem, index) {
                Self::free_below(mem, node.child(table, index));
                mem.free_table(TableAddr::new(table));
            }
        }
    }

    fn count_below<M: TableMemory + ?Sized>(mem: &M, node: Node) -> usize {
        if node.level == LAST_LEVEL {
            return 0;
        }
        (0..node.entries)
            .map(|index| match node.entry(mem, index) {
                Entry::Table(table) => 1 + Self::count_below(mem, node.child(table, index)),
                Entry::Invalid | Entry::Leaf(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests;
