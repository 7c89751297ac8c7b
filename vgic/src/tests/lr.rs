use crate::{Lr, LrKind, LrState};

fn sw(vintid: u32, state: LrState, priority: u8, group1: bool, eoi: bool, source: u8) -> Lr {
    Lr {
        vintid,
        state,
        priority,
        group1,
        kind: LrKind::Software {
            eoi_maintenance: eoi,
            source,
        },
    }
}

#[test]
fn v2_software_encoding_matches_the_bit_layout() {
    // VirtualID 27, priority 0xa0 (>> 3 = 0x14 at [27:23]), pending [29:28] = 1, Grp1,
    // EOI [19].
    let lr = sw(27, LrState::Pending, 0xa0, true, true, 0);
    assert_eq!(lr.encode_v2(), 0x5a08_001b);
    assert_eq!(Lr::decode_v2(0x5a08_001b), lr);
}

#[test]
fn v2_sgi_source_goes_in_cpuid() {
    let lr = sw(3, LrState::Active, 0, false, false, 5);
    assert_eq!(lr.encode_v2(), 0x2000_1403);
    assert_eq!(Lr::decode_v2(0x2000_1403), lr);
}

#[test]
fn v2_hardware_encoding() {
    let lr = Lr {
        vintid: 40,
        state: LrState::Active,
        priority: 0,
        group1: false,
        kind: LrKind::Hardware { pintid: 72 },
    };
    assert_eq!(lr.encode_v2(), 0xa001_2028);
    assert_eq!(Lr::decode_v2(0xa001_2028), lr);
}

#[test]
fn v2_keeps_the_top_five_priority_bits() {
    let lr = sw(33, LrState::Pending, 0xff, false, false, 0);
    assert_eq!(Lr::decode_v2(lr.encode_v2()).priority, 0xf8);
    assert_eq!(lr.encode_v2() >> 32, 0, "GICH_LR is 32 bits");
}

#[test]
fn v3_software_encoding_matches_the_bit_layout() {
    let lr = sw(27, LrState::Pending, 0xa0, true, true, 0);
    assert_eq!(lr.encode_v3(), 0x50a0_0200_0000_001b);
    assert_eq!(Lr::decode_v3(0x50a0_0200_0000_001b), lr);
}

#[test]
fn v3_hardware_encoding() {
    let lr = Lr {
        vintid: 40,
        state: LrState::Active,
        priority: 0x80,
        group1: true,
        kind: LrKind::Hardware { pintid: 72 },
    };
    assert_eq!(lr.encode_v3(), 0xb080_0048_0000_0028);
    assert_eq!(Lr::decode_v3(0xb080_0048_0000_0028), lr);
}

#[test]
fn v3_drops_a_v2_source() {
    let lr = sw(1, LrState::Pending, 0x10, true, false, 3);
    let back = Lr::decode_v3(lr.encode_v3());
    assert_eq!(
        back.kind,
        LrKind::Software {
            eoi_maintenance: false,
            source: 0
        }
    );
}

#[test]
fn states_round_trip_in_both_encodings() {
    for state in [
        LrState::Invalid,
        LrState::Pending,
        LrState::Active,
        LrState::PendingActive,
    ] {
        assert_eq!(
            LrState::from_flags(state.is_pending(), state.is_active()),
            state
        );
        for vintid in [0, 15, 16, 31, 32, 500, 1019] {
            for priority in [0u8, 0x08, 0x78, 0xf8] {
                for group1 in [false, true] {
                    let lr = sw(vintid, state, priority, group1, vintid % 2 == 0, 0);
                    assert_eq!(Lr::decode_v2(lr.encode_v2()), lr);
                    assert_eq!(Lr::decode_v3(lr.encode_v3()), lr);
                    let hw = Lr {
                        kind: LrKind::Hardware {
                            pintid: (vintid as u16).max(16),
                        },
                        ..lr
                    };
                    assert_eq!(Lr::decode_v2(hw.encode_v2()), hw);
                    assert_eq!(Lr::decode_v3(hw.encode_v3()), hw);
                }
            }
        }
    }
}

#[test]
fn zero_is_the_empty_register() {
    assert_eq!(Lr::decode_v2(0).state, LrState::Invalid);
    assert_eq!(Lr::decode_v3(0).state, LrState::Invalid);
    assert_eq!(Lr::INVALID.encode_v2(), 0);
    assert_eq!(Lr::INVALID.encode_v3(), 0);
}
