//! Carving usable memory out of the RAM banks.

use heapless::Vec;

use crate::Region;

/// Most free ranges [`usable_memory`] returns.
pub const MAX_FREE_RANGES: usize = 64;

/// Page size the result is aligned to.
const PAGE: u64 = 4096;

/// The parts of `banks` not covered by any of `holes`, each shrunk inward to whole 4 KiB
/// pages and sorted by address. Ranges that end up empty are dropped; if there are more
/// than [`MAX_FREE_RANGES`] pieces, the smallest are dropped (and counted in the second
/// return value) rather than failing.
pub fn usable_memory(banks: &[Region], holes: &[Region]) -> (Vec<Region, MAX_FREE_RANGES>, usize) {
    let mut free: Vec<Region, MAX_FREE_RANGES> = Vec::new();
    let mut dropped = 0;
    let mut push = |free: &mut Vec<Region, MAX_FREE_RANGES>, r: Region| {
        let base = r.base.next_multiple_of(PAGE);
        let end = r.end() & !(PAGE - 1);
        if end <= base {
            return;
        }
        let region = Region::new(base, end - base);
        if let Err(region) = free.push(region) {
            // Full: replace the smallest if this one is larger.
            let (index, smallest) = free
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.size)
                .map(|(i, r)| (i, *r))
                .expect("full vector is not empty");
            dropped += 1;
            if smallest.size < region.size {
                free[index] = region;
            }
        }
    };
    for bank in banks {
        // Walk the bank from low to high, stepping over each hole that intersects it.
        let mut cursor = bank.base;
        loop {
            let next_hole = holes
                .iter()
                .filter(|h| h.size != 0 && h.end() > cursor && h.base < bank.end())
                .min_by_key(|h| h.base);
            match next_hole {
                Some(hole) => {
                    if hole.base > cursor {
                        push(&mut free, Region::new(cursor, hole.base - cursor));
                    }
                    cursor = cursor.max(hole.end());
                    if cursor >= bank.end() {
                        break;
                    }
                }
                None => {
                    push(&mut free, Region::new(cursor, bank.end() - cursor));
                    break;
                }
            }
        }
    }
    free.sort_unstable_by_key(|r| r.base);
    (free, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_cut_out_and_edges_page_aligned() {
        let banks = [Region::new(0x4000_0000, 0x4000_0000)];
        let holes = [
            Region::new(0x4020_0000, 0x10_0800), // image, odd size
            Region::new(0x4800_0000, 0x1000),    // DTB
            Region::new(0x3000_0000, 0x1000),    // outside the bank
        ];
        let (free, dropped) = usable_memory(&banks, &holes);
        assert_eq!(dropped, 0);
        assert_eq!(
            free.as_slice(),
            &[
                Region::new(0x4000_0000, 0x20_0000),
                Region::new(0x4030_1000, 0x4800_0000 - 0x4030_1000),
                Region::new(0x4800_1000, 0x8000_0000 - 0x4800_1000),
            ]
        );
    }

    #[test]
    fn overlapping_and_covering_holes() {
        let banks = [Region::new(0x1000, 0x10000), Region::new(0x10_0000, 0x1000)];
        let holes = [
            Region::new(0x2000, 0x3000),
            Region::new(0x4000, 0x2000), // overlaps the previous one
            Region::new(0x0, 0x10_1000), // covers both banks
        ];
        let (free, _) = usable_memory(&banks, &holes[..2]);
        assert_eq!(
            free.as_slice(),
            &[
                Region::new(0x1000, 0x1000),
                Region::new(0x6000, 0xb000),
                Region::new(0x10_0000, 0x1000)
            ]
        );
        let (free, _) = usable_memory(&banks, &holes);
        assert!(free.is_empty());
    }

    #[test]
    fn too_many_pieces_keeps_the_largest() {
        let banks = [Region::new(0, 0x1000 * 410)];
        let holes: std::vec::Vec<Region> = (0..200)
            .map(|i| Region::new(i * 0x2000 + 0x1000, 0x1000))
            .collect();
        let (free, dropped) = usable_memory(&banks, &holes);
        assert_eq!(free.len(), MAX_FREE_RANGES);
        assert!(dropped > 0);
        // The last piece (above every hole) is the largest and must survive.
        assert_eq!(free.last().unwrap().end(), 0x1000 * 410);
    }
}
