//! The state of one virtual interrupt.

/// No vCPU (target or list-register owner).
pub(crate) const NONE: u8 = 0xff;

/// Enabled (`ISENABLER`).
pub(crate) const ENABLED: u16 = 1 << 0;
/// Pending latch: an edge seen, or a software `ISPENDR` write. Cleared when the pending
/// state moves into a list register (edge) or when the guest acknowledges it (level).
pub(crate) const LATCH: u16 = 1 << 1;
/// The level of the source's line (level-sensitive interrupts).
pub(crate) const LINE: u16 = 1 << 2;
/// Active.
pub(crate) const ACTIVE: u16 = 1 << 3;
/// Group 1 (else group 0).
pub(crate) const GROUP1: u16 = 1 << 4;
/// Edge-triggered (else level-sensitive).
pub(crate) const EDGE: u16 = 1 << 5;
/// Hardware-backed: `hw` holds the physical ID.
pub(crate) const HW: u16 = 1 << 6;
/// In a list register of vCPU `owner` (SPIs) or of the bank's vCPU (private).
pub(crate) const LISTED: u16 = 1 << 7;
/// While listed on a running vCPU, another vCPU wrote the pending state: the
/// model's pending state wins over the list register's at the next `sync`.
pub(crate) const PENDING_OVERRIDE: u16 = 1 << 8;
/// Same for the active state.
pub(crate) const ACTIVE_OVERRIDE: u16 = 1 << 9;

/// One interrupt: an SPI in the distributor, or an SGI/PPI in a vCPU's bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Irq {
    pub(crate) flags: u16,
    /// Priority, [`crate::PRIORITY_MASK`] bits kept.
    pub(crate) priority: u8,
    /// GICv2 SPIs: `GICD_ITARGETSR` byte (bits of absent vCPUs already cleared).
    pub(crate) targets: u8,
    /// SPIs: the vCPU the interrupt goes to (from `targets` or `route`), or [`NONE`].
    pub(crate) target: u8,
    /// SPIs: the vCPU whose list register holds it when [`LISTED`].
    pub(crate) owner: u8,
    /// Physical interrupt ID when [`HW`].
    pub(crate) hw: u16,
    /// GICv3 SPIs: `GICD_IROUTER` affinity, `Aff2` \[23:16\], `Aff1` \[15:8\], `Aff0` \[7:0\].
    pub(crate) route: u32,
}

impl Irq {
    /// Reset state: disabled, idle, group 0, priority 0, level-sensitive.
    pub(crate) const RESET: Self = Self {
        flags: 0,
        priority: 0,
        targets: 0,
        target: NONE,
        owner: NONE,
        hw: 0,
        route: 0,
    };

    /// A reset SGI: edge-triggered.
    pub(crate) const RESET_SGI: Self = Self {
        flags: EDGE,
        ..Self::RESET
    };

    pub(crate) const fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn set(&mut self, flag: u16, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// Pending: the latch, or (level-sensitive) the line.
    pub(crate) const fn pending(&self) -> bool {
        self.has(LATCH) || (!self.has(EDGE) && self.has(LINE))
    }

    /// Worth a list register at all: pending or active.
    pub(crate) const fn listable(&self) -> bool {
        self.pending() || self.has(ACTIVE)
    }
}
