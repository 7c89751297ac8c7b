//! `platforms::Platform::parse` on any bytes (seeded with QEMU's device trees): never
//! panics; an accepted tree has memory, and carving usable memory out of it works.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platforms::{Platform, usable_memory};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Platform::parse(data) {
        assert!(!p.memory.is_empty());
        assert!(p.dtb_size as usize <= data.len());
        let (free, _) = usable_memory(&p.memory, &p.reserved);
        for r in &free {
            assert!(r.size != 0 && r.base % 4096 == 0 && r.size % 4096 == 0);
        }
    }
});
