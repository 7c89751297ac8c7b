//! A structural check of the boot DTB before `fdt` 0.1 reads it.
//!
//! `fdt` 0.1.5 trusts the blob: it panics on a property value or name offset outside its
//! block, a memory-reservation offset past the end, a node or property name without its
//! NUL, a non-UTF-8 name, a property after a child node, NOP tokens (except where it
//! happens to skip them: [`strip_nops`] removes them first), unbalanced nodes, nesting of 64 or more, and `#address-cells` or
//! `#size-cells` values shorter than a cell. A damaged DTB must give the hypervisor a
//! [`ParseError`] it can report, not a panic before the console is up, so this walk accepts
//! only token streams `fdt` reads safely. It validates; `fdt` still does the reading.

use super::ParseError;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// The version-17 header: ten big-endian words.
const HEADER_LEN: usize = 40;
/// `fdt` keeps a 64-entry stack of parents; stay well inside it.
const MAX_NESTING: usize = 32;

fn err(why: &'static str) -> ParseError {
    ParseError::NotADeviceTree(why)
}

fn word(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `[offset, offset + size)` of `blob`, if it lies inside.
fn sub(blob: &[u8], offset: u32, size: u32) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    blob.get(start..end)
}

/// The UTF-8 string starting at `at` and ending at the next NUL of `bytes`.
fn name_at(bytes: &[u8], at: usize) -> Option<&str> {
    let rest = bytes.get(at..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

fn round_up4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Removes every `FDT_NOP` token from `blob`'s structure block, in place, and shrinks
/// the header's `size_dt_struct` to match; returns how many were removed.
///
/// NOP tokens are valid (firmware and QEMU's `raspi4b` use them to delete nodes and
/// properties), but `fdt` 0.1.5 reads them only in some positions and panics in others,
/// so the boot tree is compacted before [`check`] and `fdt` see it. Tokens stay 4-byte
/// aligned and property names live in the strings block, so nothing else moves. A blob
/// whose token stream cannot be walked is left unchanged (and [`check`] refuses it).
pub fn strip_nops(blob: &mut [u8]) -> usize {
    let header = |blob: &[u8], i: usize| word(blob, i * 4).unwrap_or(0);
    if blob.len() < HEADER_LEN || header(blob, 0) != FDT_MAGIC {
        return 0;
    }
    let (Ok(start), Ok(size)) = (
        usize::try_from(header(blob, 2)),
        usize::try_from(header(blob, 9)),
    ) else {
        return 0;
    };
    let Some(end) = start.checked_add(size).filter(|&end| end <= blob.len()) else {
        return 0;
    };
    if start % 4 != 0 {
        return 0;
    }
    // First pass: find the token boundaries without changing anything.
    let structs = &blob[start..end];
    let mut at = 0usize;
    let mut nops = 0usize;
    loop {
        let Some(token) = word(structs, at) else {
            return 0;
        };
        let next = match token {
            FDT_BEGIN_NODE => {
                let Some(len) = structs
                    .get(at + 4..)
                    .and_then(|r| r.iter().position(|&b| b == 0))
                else {
                    return 0;
                };
                round_up4(at + 4 + len + 1)
            }
            FDT_PROP => word(structs, at + 4)
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| (at + 12).checked_add(len))
                .and_then(round_up4),
            FDT_NOP => {
                nops += 1;
                Some(at + 4)
            }
            FDT_END_NODE => Some(at + 4),
            FDT_END => break,
            _ => return 0,
        };
        match next.filter(|&n| n <= structs.len()) {
            Some(n) => at = n,
            None => return 0,
        }
    }
    if nops == 0 {
        return 0;
    }
    // Second pass: move every other token down over the NOPs.
    let structs = &mut blob[start..end];
    let (mut read, mut write) = (0usize, 0usize);
    loop {
        let token = word(structs, read).unwrap_or(FDT_END);
        let len = match token {
            FDT_BEGIN_NODE => {
                let name = structs[read + 4..]
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(0);
                round_up4(read + 4 + name + 1).unwrap_or(read + 4) - read
            }
            FDT_PROP => {
                let value = word(structs, read + 4).unwrap_or(0) as usize;
                round_up4(read + 12 + value).unwrap_or(read + 4) - read
            }
            _ => 4,
        };
        if token != FDT_NOP {
            structs.copy_within(read..read + len, write);
            write += len;
        }
        read += len;
        if token == FDT_END {
            break;
        }
    }
    let new_size = (size - nops * 4) as u32;
    blob[36..40].copy_from_slice(&new_size.to_be_bytes());
    nops
}

/// Checks that `blob` (exactly `totalsize` bytes) is a device tree `fdt` 0.1.5 reads
/// without panicking.
pub(super) fn check(blob: &[u8]) -> Result<(), ParseError> {
    if blob.len() < HEADER_LEN {
        return Err(err("truncated header"));
    }
    let header = |i: usize| word(blob, i * 4).unwrap_or(0);
    if header(0) != FDT_MAGIC {
        return Err(err("bad magic"));
    }
    if usize::try_from(header(1)).ok() != Some(blob.len()) {
        return Err(err("total size disagrees with the blob"));
    }
    if header(5) < 17 {
        return Err(err("device-tree version below 17"));
    }
    let rsvmap = usize::try_from(header(4)).map_err(|_| err("bad reservation map offset"))?;
    if rsvmap > blob.len() {
        return Err(err("reservation map out of bounds"));
    }
    if header(2) % 4 != 0 {
        return Err(err("structure block not 4-byte aligned"));
    }
    let structs = sub(blob, header(2), header(9)).ok_or(err("structure block out of bounds"))?;
    let strings = sub(blob, header(3), header(8)).ok_or(err("strings block out of bounds"))?;

    let mut at = 0usize;
    let mut depth = 0usize;
    let mut seen_root = false;
    // `fdt` reads a node's properties only before its first child.
    let mut props_allowed = false;
    loop {
        let token = word(structs, at).ok_or(err("structure block ends without FDT_END"))?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err(err("more than one root node"));
                }
                let name = name_at(structs, at).ok_or(err("bad node name"))?;
                at = round_up4(at + name.len() + 1).ok_or(err("bad node name"))?;
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(err("nodes nested too deeply"));
                }
                seen_root = true;
                props_allowed = true;
            }
            FDT_PROP => {
                if depth == 0 || !props_allowed {
                    return Err(err("property outside a node or after a child node"));
                }
                let len = word(structs, at).ok_or(err("truncated property"))?;
                let name_offset = word(structs, at + 4).ok_or(err("truncated property"))?;
                let len = usize::try_from(len).map_err(|_| err("bad property length"))?;
                let value_start = at + 8;
                let value_end = value_start
                    .checked_add(len)
                    .filter(|&end| end <= structs.len())
                    .ok_or(err("property value runs past the structure block"))?;
                let name = usize::try_from(name_offset)
                    .ok()
                    .and_then(|offset| name_at(strings, offset))
                    .ok_or(err("bad property name"))?;
                if matches!(name, "#address-cells" | "#size-cells") && len != 4 {
                    return Err(ParseError::Malformed("#address-cells or #size-cells"));
                }
                at = round_up4(value_end).ok_or(err("bad property length"))?;
            }
            FDT_END_NODE => {
                if depth == 0 {
                    return Err(err("unbalanced end of node"));
                }
                depth -= 1;
                props_allowed = false;
            }
            FDT_END if depth == 0 && seen_root => return Ok(()),
            FDT_END => return Err(err("FDT_END inside a node or before the root")),
            FDT_NOP => return Err(err("NOP tokens are not supported")),
            _ => return Err(err("unknown structure token")),
        }
    }
}
