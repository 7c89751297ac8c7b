//! Property tests: `Platform::parse` and `find_device` on damaged device trees.
//!
//! The boot DTB comes from firmware or a boot loader; a damaged one must give a
//! `ParseError`, never a panic. Each case takes a real tree dumped from QEMU (or the
//! Raspberry Pi 4-shaped one), damages it, and parses it. Bounded for CI; the
//! `platform_parse` fuzz target (`fuzz/`) explores further.

use platforms::{ParseError, Platform, find_device};
use proptest::prelude::*;

const TREES: [&[u8]; 4] = [
    include_bytes!("data/qemu-virt-gicv3-4cpu.dtb"),
    include_bytes!("data/qemu-virt-gicv2-1cpu.dtb"),
    include_bytes!("data/qemu-virt-el1.dtb"),
    include_bytes!("data/rpi4-like.dtb"),
];

/// What a successful parse of any tree must satisfy, damaged or not.
/// The tree of test devices for `find_device`, and paths into it.
const DEVICES: &[u8] = include_bytes!("data/devices.dtb");
const DEVICE_PATHS: &[&str] = &[
    "/two@9000000",
    "/extended-mixed@9070000",
    "/soc@20000000/sub@7e080000/inner@200",
    "/soc@20000000/dev@7e001000",
];

fn check_invariants(dtb: &[u8], result: Result<Platform<'_>, ParseError>) {
    let Ok(p) = result else { return };
    assert!(
        !p.memory.is_empty(),
        "a platform without memory was accepted"
    );
    assert!(p.memory.iter().all(|r| r.size != 0));
    assert!(p.reserved.iter().all(|r| r.size != 0));
    assert!(p.dtb_size as usize <= dtb.len());
    if let Some(initrd) = p.initrd {
        assert!(initrd.base.checked_add(initrd.size).is_some());
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Up to eight bytes anywhere replaced by arbitrary values.
    #[test]
    fn flipped_bytes_never_panic(
        tree in 0..TREES.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut dtb = TREES[tree].to_vec();
        for (at, value) in edits {
            let i = at.index(dtb.len());
            dtb[i] = value;
        }
        check_invariants(&dtb, Platform::parse(&dtb));
    }

    /// A structure-block word overwritten with a token or a small number: the damage that
    /// reaches deepest into the tree walker.
    #[test]
    fn overwritten_tokens_never_panic(
        tree in 0..TREES.len(),
        at in any::<prop::sample::Index>(),
        value in prop_oneof![0u32..16, any::<u32>()],
    ) {
        let mut dtb = TREES[tree].to_vec();
        let word = at.index(dtb.len() / 4) * 4;
        dtb[word..word + 4].copy_from_slice(&value.to_be_bytes());
        check_invariants(&dtb, Platform::parse(&dtb));
    }

    /// `find_device` on the damaged tree of test devices: an error or a device whose
    /// regions do not wrap, never a panic.
    #[test]
    fn find_device_on_damaged_trees_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        path in prop::sample::select(DEVICE_PATHS),
    ) {
        let mut dtb = DEVICES.to_vec();
        for (at, value) in edits {
            let i = at.index(dtb.len());
            dtb[i] = value;
        }
        if let Ok(d) = find_device(&dtb, path) {
            prop_assert!(!d.regions.is_empty());
            prop_assert!(d.regions.iter().all(|r| r.size != 0 && r.base.checked_add(r.size - 1).is_some()));
        }
    }

    /// Truncated blobs (with the header's size left as it was, or patched to agree).
    #[test]
    fn truncated_trees_never_panic(
        tree in 0..TREES.len(),
        cut in any::<prop::sample::Index>(),
        patch_size in any::<bool>(),
    ) {
        let mut dtb = TREES[tree].to_vec();
        dtb.truncate(cut.index(dtb.len()));
        if patch_size && dtb.len() >= 8 {
            let len = dtb.len() as u32;
            dtb[4..8].copy_from_slice(&len.to_be_bytes());
        }
        check_invariants(&dtb, Platform::parse(&dtb));
    }

    /// Arbitrary bytes behind a valid header: magic, a matching size, version 17.
    #[test]
    fn random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 32..512)) {
        let mut dtb = Vec::with_capacity(body.len() + 8);
        dtb.extend_from_slice(&0xd00d_feed_u32.to_be_bytes());
        dtb.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
        dtb.extend_from_slice(&body);
        dtb[20..24].copy_from_slice(&17u32.to_be_bytes());
        check_invariants(&dtb, Platform::parse(&dtb));
    }
}

/// The undamaged trees still parse (the check in front of `fdt` refuses none of them).
#[test]
fn undamaged_trees_parse() {
    for dtb in TREES {
        Platform::parse(dtb).unwrap();
    }
}
