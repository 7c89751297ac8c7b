//! `loader::BootArchive::open`, `file()` and `manifest()` on any bytes: never panics, and
//! every file it lists lies inside the input and is found again by name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::BootArchive;

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = BootArchive::open(data) else {
        return;
    };
    let range = data.as_ptr_range();
    for (name, contents) in archive.files() {
        assert!(range.start <= contents.as_ptr() && contents.as_ptr_range().end <= range.end);
        assert_eq!(archive.file(name), Some(contents));
    }
    if let Ok(domains) = archive.manifest() {
        for d in &domains {
            assert!(archive.file(&d.kernel).is_some());
            if let Some(initrd) = &d.initrd {
                assert!(archive.file(initrd).is_some());
            }
        }
    }
});
