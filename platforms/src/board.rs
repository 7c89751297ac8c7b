//! Board descriptions: what the device tree does not say.

/// A board the hypervisor has been brought up on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// QEMU's `virt` machine.
    QemuVirt,
    /// Raspberry Pi 4 Model B (BCM2711, GIC-400).
    RaspberryPi4,
    /// Anything else: only what the device tree says is used.
    Generic,
}

/// Facts about a board that the device tree cannot express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quirks {
    /// Console used when the device tree is missing or unreadable, so the error can still
    /// be printed. Physical address of a PL011.
    pub fallback_uart: Option<u64>,
}

impl Board {
    /// Picks the board from the root node's `compatible` list.
    pub fn from_compatible<'a>(mut compatible: impl Iterator<Item = &'a str>) -> Self {
        compatible
            .find_map(|c| match c {
                "linux,dummy-virt" => Some(Board::QemuVirt),
                "raspberrypi,4-model-b" | "brcm,bcm2711" => Some(Board::RaspberryPi4),
                _ => None,
            })
            .unwrap_or(Board::Generic)
    }

    /// Human-readable board name.
    pub fn name(self) -> &'static str {
        match self {
            Board::QemuVirt => "QEMU virt",
            Board::RaspberryPi4 => "Raspberry Pi 4",
            Board::Generic => "generic (device tree only)",
        }
    }

    /// The board's quirks.
    pub fn quirks(self) -> Quirks {
        match self {
            Board::QemuVirt => Quirks {
                fallback_uart: Some(0x0900_0000),
            },
            Board::RaspberryPi4 => Quirks {
                fallback_uart: Some(0xfe20_1000),
            },
            Board::Generic => Quirks {
                fallback_uart: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_from_compatible() {
        assert_eq!(
            Board::from_compatible(["linux,dummy-virt"].into_iter()),
            Board::QemuVirt
        );
        assert_eq!(
            Board::from_compatible(["raspberrypi,4-model-b", "brcm,bcm2711"].into_iter()),
            Board::RaspberryPi4
        );
        assert_eq!(
            Board::from_compatible(["vendor,unknown"].into_iter()),
            Board::Generic
        );
        assert_eq!(Board::QemuVirt.quirks().fallback_uart, Some(0x0900_0000));
    }
}
