//! A structural check of a flattened device tree before `fdt` 0.1 reads it.
//!
//! `fdt` 0.1.5 panics on several malformed inputs (a property value running past the
//! structure block, a name offset outside the strings block, a property after a child node,
//! NOP tokens between properties, nesting deeper than 64). The manifest comes from a boot
//! archive, so a damaged file must give an error, not a hypervisor panic: this walk accepts
//! exactly the token streams `fdt` handles. It is a validator only; `fdt` does the reading.

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_LEN: usize = 40;
/// Deeper than any manifest needs, well within `fdt`'s 64.
const MAX_DEPTH: usize = 16;

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// A NUL-terminated UTF-8 string starting at `at` in `block`; returns its length without NUL.
fn c_string(block: &[u8], at: usize) -> Option<usize> {
    let rest = block.get(at..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()?;
    Some(len)
}

fn block(dtb: &[u8], offset: u32, size: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    dtb.get(start..end)
}

/// Checks that `dtb` is a device tree `fdt` 0.1.5 can read without panicking; the error says
/// what is wrong.
pub(crate) fn check(dtb: &[u8]) -> Result<(), &'static str> {
    check_nested(dtb, MAX_DEPTH)
}

/// [`check`] with another limit on nesting (at most `fdt`'s 64), for trees deeper than a
/// manifest such as the host's.
pub(crate) fn check_nested(dtb: &[u8], max_depth: usize) -> Result<(), &'static str> {
    if dtb.len() < HEADER_LEN {
        return Err("shorter than a device-tree header");
    }
    let field = |i: usize| be32(dtb, i * 4).unwrap_or(0);
    if field(0) != FDT_MAGIC {
        return Err("bad device-tree magic");
    }
    let total = usize::try_from(field(1)).map_err(|_| "bad total size")?;
    if total > dtb.len() || total < HEADER_LEN {
        return Err("total size disagrees with the data");
    }
    let dtb = &dtb[..total];
    if field(5) < 17 {
        return Err("device-tree version below 17");
    }
    if field(2) % 4 != 0 {
        return Err("structure block not 4-byte aligned");
    }
    let structs = block(dtb, field(2), field(9)).ok_or("structure block out of bounds")?;
    let strings = block(dtb, field(3), field(8)).ok_or("strings block out of bounds")?;

    let mut at = 0usize;
    let mut depth = 0usize;
    let mut seen_root = false;
    // Properties are only read before a node's first child.
    let mut props_allowed = false;
    loop {
        let token = be32(structs, at).ok_or("structure block ends without FDT_END")?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err("more than one root node");
                }
                let len = c_string(structs, at).ok_or("bad node name")?;
                at = align4(at + len + 1).ok_or("bad node name")?;
                depth += 1;
                if depth > max_depth {
                    return Err("nodes nested too deeply");
                }
                seen_root = true;
                props_allowed = true;
            }
            FDT_PROP => {
                if depth == 0 || !props_allowed {
                    return Err("property outside a node or after a child node");
                }
                let len = be32(structs, at).ok_or("truncated property")?;
                let name_offset = be32(structs, at + 4).ok_or("truncated property")?;
                let len = usize::try_from(len).map_err(|_| "bad property length")?;
                let value_end = (at + 8).checked_add(len).ok_or("bad property length")?;
                if value_end > structs.len() {
                    return Err("property value runs past the structure block");
                }
                let name_offset =
                    usize::try_from(name_offset).map_err(|_| "bad property name offset")?;
                c_string(strings, name_offset).ok_or("bad property name")?;
                at = align4(value_end).ok_or("bad property length")?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err("unbalanced end of node");
                }
                depth -= 1;
                props_allowed = false;
            }
            FDT_END if depth == 0 && seen_root => return Ok(()),
            FDT_END => return Err("FDT_END inside a node or before the root"),
            FDT_NOP => return Err("NOP tokens are not supported"),
            _ => return Err("unknown structure token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use vm_fdt::FdtWriter;

    fn sample() -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("a", 1).unwrap();
        let child = w.begin_node("child@0").unwrap();
        w.property_string("s", "text").unwrap();
        w.end_node(child).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    fn set32(dtb: &mut [u8], at: usize, v: u32) {
        dtb[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    #[test]
    fn accepts_what_vm_fdt_writes() {
        assert_eq!(check(&sample()), Ok(()));
    }

    #[test]
    fn header_damage() {
        let good = sample();
        assert!(check(&good[..20]).is_err());
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert!(check(&bad).is_err());
        assert!(check(&good[..good.len() - 1]).is_err());
        let mut bad = good.clone();
        set32(&mut bad, 36, 0xffff_0000); // size_dt_struct
        assert!(check(&bad).is_err());
        let mut bad = good.clone();
        set32(&mut bad, 32, 0xffff_0000); // size_dt_strings
        assert!(check(&bad).is_err());
    }

    #[test]
    fn structure_damage_never_panics_and_is_caught() {
        let good = sample();
        let off_struct = be32(&good, 8).unwrap() as usize;
        let size_struct = be32(&good, 36).unwrap() as usize;
        // Every single-byte corruption of the structure block either still checks out or
        // is refused; when it checks out, fdt must be able to walk it.
        for i in off_struct..off_struct + size_struct {
            for v in [0u8, 1, 2, 3, 4, 9, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                if check(&bad).is_ok() {
                    let fdt = fdt::Fdt::new(&bad).unwrap();
                    for node in fdt.all_nodes() {
                        for p in node.properties() {
                            let _ = p.as_str();
                        }
                        let _ = node.children().count();
                    }
                    let _ = fdt.find_node("/child");
                }
            }
        }
    }
}
