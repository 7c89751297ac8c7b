//! `loader::read_manifest` on any bytes: never panics; whatever it accepts is valid and
//! survives a write/read round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::{read_manifest, write_manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(domains) = read_manifest(data) {
        for d in &domains {
            d.validate().expect("accepted domains are valid");
        }
        let again = write_manifest(&domains).expect("accepted list can be written");
        assert_eq!(
            read_manifest(&again).expect("written manifest reads"),
            domains
        );
    }
});
