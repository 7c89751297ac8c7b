//! `exits::decode` on any `ESR_EL2`/`FAR_EL2`/`HPFAR_EL2` triple: never panics, and a data
//! abort reports exactly the syndrome's bits.
#![no_main]

use exits::{Exit, Sgi1r, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|regs: (u64, u64, u64)| {
    let (esr, far, hpfar) = regs;
    let exit = decode(esr, far, hpfar);
    let _ = format!("{exit} {}", exit.name());
    if let Exit::DataAbort(d) = exit {
        assert_eq!(d.access.is_some(), esr >> 24 & 1 != 0);
        if let Some(a) = d.access {
            assert_eq!(a.size.bytes(), 1 << (esr >> 22 & 3));
            assert_eq!(u64::from(a.register), esr >> 16 & 0x1f);
            let value = a.load_value(far);
            if !a.sixty_four {
                assert_eq!(value >> 32, 0);
            }
            assert_eq!(a.store_value(far), far & a.size.mask());
        }
        assert_eq!(d.ipa >> 12, hpfar >> 4 & ((1 << 44) - 1));
    }
    if let Exit::SysReg(access) = exit {
        let _ = format!("{access} {:?}", access.encoding().name());
    }
    // The SGI register value a guest writes is guest input too.
    let sgi = Sgi1r::from_value(far);
    let _ = sgi.targets(hpfar, esr);
});
