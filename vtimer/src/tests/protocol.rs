//! Whole scenarios: a model of the CPU's virtual timer hardware and of the virtual GIC's
//! level-sensitive INTID 27, a hypervisor following the crate's protocol, and guests with
//! different interrupt handlers. The tests check that the guest gets each expiry once,
//! that the physical interrupt never storms, and what the guest's saved state says.

use std::vec::Vec;

use crate::{Ctl, HwTimer, Masking, PARKED_CTL, Residence, VcpuTimers, VirtualOffset};

const ON: u64 = Ctl::ENABLE;
const PERIOD: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Guest {
    /// Linux's arch timer: read CTL, if ISTATUS set IMASK, then set_next_event writes
    /// CVAL and CTL = ENABLE.
    Linux,
    /// Re-arms by CVAL += PERIOD and never writes CTL.
    CvalOnly,
    /// Handles one expiry and then disables the timer.
    OneShotThenOff,
}

struct World {
    now: u64,
    offset: VirtualOffset,
    // The CPU's CNTV_CTL_EL0 (ENABLE | IMASK) and CNTV_CVAL_EL0.
    hw_ctl: u64,
    hw_cval: u64,
    running: bool,
    vcpu: VcpuTimers,
    /// The vGIC's line level for INTID 27, and whether the interrupt is active in the
    /// guest (acknowledged, not yet deactivated).
    level: bool,
    active: bool,
    /// With `Masking::Gic`: the physical PPI 27 is disabled at the GIC.
    gic_masked: bool,
    guest: Guest,
    /// Virtual counts at which the guest's handler ran.
    handled: Vec<u64>,
    /// Physical PPI 27 interrupts taken at EL2.
    phys_irqs: u32,
    /// Physical PPI 27 interrupts that found the guest's line low (stale).
    stale_irqs: u32,
}

impl World {
    fn new(masking: Masking, guest: Guest, created_at: u64) -> Self {
        World {
            now: created_at,
            offset: VirtualOffset::starting_now(created_at),
            hw_ctl: PARKED_CTL,
            hw_cval: 0,
            running: false,
            vcpu: VcpuTimers::new(masking),
            level: false,
            active: false,
            gic_masked: false,
            guest,
            handled: Vec::new(),
            phys_irqs: 0,
            stale_irqs: 0,
        }
    }

    fn vcount(&self) -> u64 {
        self.offset.virtual_count(self.now)
    }

    fn hw_met(&self) -> bool {
        self.vcount() >= self.hw_cval
    }

    fn hw(&self) -> HwTimer {
        HwTimer {
            ctl: Ctl::from_bits(self.hw_ctl).read_value(self.hw_met()),
            cval: self.hw_cval,
        }
    }

    fn hw_line(&self) -> bool {
        self.running && Ctl::from_bits(self.hw_ctl).output(self.hw_met())
    }

    /// Step 1: entry.
    fn enter(&mut self) {
        let e = self.vcpu.virt.load(self.vcount());
        self.hw_cval = e.hw.cval;
        self.hw_ctl = e.hw.ctl;
        self.level = e.level;
        self.running = true;
    }

    /// Step 3: an exit that deschedules.
    fn deschedule(&mut self) {
        self.vcpu.virt.save(self.hw());
        self.hw_ctl = PARKED_CTL;
        self.running = false;
    }

    /// An ordinary exit and re-entry (e.g. a trapped access elsewhere).
    fn bounce(&mut self) {
        self.vcpu.virt.save(self.hw());
        self.enter();
    }

    fn guest_program(&mut self, delta: u64) {
        self.hw_cval = self.vcount() + delta;
        self.hw_ctl = ON;
    }

    /// The guest takes the virtual interrupt and runs its handler, then deactivates.
    fn guest_takes_irq(&mut self) {
        self.active = true;
        let vnow = self.vcount();
        let ctl = self.hw().ctl;
        match self.guest {
            Guest::Linux => {
                if ctl & Ctl::ISTATUS != 0 {
                    self.hw_ctl = (ctl | Ctl::IMASK) & Ctl::WRITABLE;
                    self.handled.push(vnow);
                    // set_next_event: CVAL, then CTL with ENABLE set and IMASK clear.
                    self.hw_cval = vnow + PERIOD;
                    self.hw_ctl = ON;
                }
            }
            Guest::CvalOnly => {
                if ctl & Ctl::ISTATUS != 0 {
                    self.handled.push(vnow);
                    self.hw_cval = self.hw_cval.wrapping_add(PERIOD);
                }
            }
            Guest::OneShotThenOff => {
                if ctl & Ctl::ISTATUS != 0 {
                    self.handled.push(vnow);
                    self.hw_ctl = 0;
                }
            }
        }
        // Deactivation; the list register asked for an EOI maintenance interrupt
        // (step 4): save, then load.
        self.active = false;
        self.gic_masked = false;
        self.bounce();
    }

    /// One counter tick of a running vCPU.
    fn tick(&mut self) {
        if self.hw_line() && !self.gic_masked {
            // Step 2.
            self.phys_irqs += 1;
            let r = self.vcpu.virt.on_physical_irq(self.hw(), self.vcount());
            if let Some(ctl) = r.write_ctl {
                self.hw_ctl = ctl;
            }
            if !r.level {
                self.stale_irqs += 1;
            }
            self.level = r.level;
            match self.vcpu.virt.masking() {
                Masking::Imask => assert!(
                    !self.hw_line() || !r.level,
                    "the physical line must drop once the level is injected"
                ),
                Masking::Gic => self.gic_masked = r.level,
            }
        }
        if self.running && self.level && !self.active {
            self.guest_takes_irq();
        }
        self.now += 1;
    }

    fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick();
        }
    }
}

fn periodic(masking: Masking, guest: Guest) -> World {
    let mut w = World::new(masking, guest, 1_000_000);
    w.vcpu.reset();
    w.enter();
    w.guest_program(PERIOD);
    w.run(1_000);
    w
}

#[test]
fn linux_guest_gets_every_expiry_once() {
    for masking in [Masking::Imask, Masking::Gic] {
        let w = periodic(masking, Guest::Linux);
        assert_eq!(
            w.handled,
            [100, 200, 300, 400, 500, 600, 700, 800, 900],
            "{masking:?}"
        );
        assert_eq!(
            w.phys_irqs, 9,
            "{masking:?}: one physical interrupt per expiry"
        );
        assert_eq!(w.stale_irqs, 0);
        assert!(!w.vcpu.virt.hyp_masked());
        assert_eq!(w.hw_ctl, ON, "the guest's control is in the hardware");
    }
}

#[test]
fn cval_only_guest_is_not_left_masked() {
    for masking in [Masking::Imask, Masking::Gic] {
        let w = periodic(masking, Guest::CvalOnly);
        assert_eq!(
            w.handled,
            [100, 200, 300, 400, 500, 600, 700, 800, 900],
            "{masking:?}"
        );
        assert_eq!(w.phys_irqs, 9);
        // The hypervisor's IMASK came off at the EOI maintenance: hardware = guest's.
        assert_eq!(w.hw_ctl, ON, "{masking:?}");
        assert_eq!(w.vcpu.virt.guest().ctl(), Ctl::new(true, false));
    }
}

#[test]
fn one_shot_guest_gets_one_interrupt() {
    for masking in [Masking::Imask, Masking::Gic] {
        let w = periodic(masking, Guest::OneShotThenOff);
        assert_eq!(w.handled, [100], "{masking:?}");
        assert_eq!(w.phys_irqs, 1);
        assert_eq!(w.hw_ctl, 0);
        assert!(!w.level);
    }
}

#[test]
fn saved_state_never_shows_the_hypervisor_mask() {
    let mut w = World::new(Masking::Imask, Guest::Linux, 0);
    w.enter();
    w.guest_program(50);
    w.run(50);
    // The physical interrupt is due on this tick; take it but let the guest not run yet
    // (it has interrupts masked): the hypervisor's mask is on.
    let r = w.vcpu.virt.on_physical_irq(w.hw(), w.vcount());
    w.hw_ctl = r.write_ctl.unwrap();
    assert!(r.level);
    assert_eq!(
        w.hw_ctl,
        ON | Ctl::IMASK,
        "the running guest would read IMASK = 1"
    );
    w.deschedule();
    assert_eq!(w.vcpu.virt.guest().ctl(), Ctl::new(true, false));
    assert_eq!(w.vcpu.virt.guest().read_ctl(w.vcount()), ON | Ctl::ISTATUS);
    assert_eq!(w.hw_ctl, PARKED_CTL);
}

#[test]
fn descheduled_vcpu_is_woken_by_the_el2_deadline() {
    let mut w = World::new(Masking::Imask, Guest::Linux, 5_000);
    w.enter();
    w.guest_program(300);
    w.run(10);
    // The guest executes WFI: the vCPU blocks.
    w.deschedule();
    assert!(!w.vcpu.lines(w.now, w.offset).any());
    let deadline = w
        .vcpu
        .el2_deadline(w.now, w.offset, Residence::Saved)
        .expect("an armed virtual timer needs a wake-up");
    assert_eq!(deadline, 5_000 + 300);
    // While it runs, the hardware signals the virtual timer: no EL2 deadline needed.
    assert_eq!(
        w.vcpu.el2_deadline(w.now, w.offset, Residence::Running),
        None
    );

    // Nothing fires while parked, even past the deadline's tick minus one.
    w.now = deadline - 1;
    assert!(!w.hw_line());
    assert!(!w.vcpu.lines(w.now, w.offset).virt);
    // The EL2 timer fires at the deadline: the line is high, the vCPU wakes.
    w.now = deadline;
    assert!(w.vcpu.lines(w.now, w.offset).virt);
    w.enter();
    assert!(w.level);
    assert!(
        w.vcpu.virt.hyp_masked(),
        "entered masked: no immediate physical interrupt"
    );
    assert!(!w.hw_line());
    w.run(1);
    assert_eq!(w.handled, [300]);
    assert_eq!(w.phys_irqs, 0);
    // Ticks run at virtual 301..=399: the next expiry is not yet due.
    w.run(99);
    assert_eq!(w.handled, [300]);
    w.run(1);
    assert_eq!(w.handled, [300, 400]);
}

#[test]
fn exits_in_between_do_not_disturb_the_timer() {
    let mut w = World::new(Masking::Imask, Guest::CvalOnly, 0);
    w.enter();
    w.guest_program(PERIOD);
    for _ in 0..1_000 {
        w.tick();
        if w.now.is_multiple_of(7) {
            w.bounce();
        }
        if w.now.is_multiple_of(13) {
            w.deschedule();
            // Descheduled for 3 ticks: nothing is lost, the deadline covers it.
            for _ in 0..3 {
                if w.vcpu.lines(w.now, w.offset).virt {
                    break;
                }
                w.now += 1;
            }
            w.enter();
        }
    }
    // Each expiry handled once, never early, and at most the 3 descheduled ticks late.
    assert!(w.handled.len() >= 9, "{:?}", w.handled);
    for (i, &at) in w.handled.iter().enumerate() {
        let due = (i as u64 + 1) * PERIOD;
        assert!(at >= due && at <= due + 3, "expiry {i} handled at {at}");
    }
}

#[test]
fn guest_reprogramming_while_pending_withdraws_the_level() {
    let mut w = World::new(Masking::Imask, Guest::Linux, 0);
    w.enter();
    w.guest_program(10);
    w.now += 10;
    let r = w.vcpu.virt.on_physical_irq(w.hw(), w.vcount());
    w.hw_ctl = r.write_ctl.unwrap();
    assert!(r.level);
    // Before taking the interrupt, the guest (IRQs masked) moves its timer to the future
    // with a CVAL write only; the next exit resamples the level and withdraws it.
    w.hw_cval = w.vcount() + 1_000;
    w.vcpu.virt.save(w.hw());
    assert!(!w.vcpu.virt.level(w.vcount()));
    w.enter();
    assert!(!w.level);
    assert_eq!(
        w.hw_ctl, ON,
        "mask off: the hardware signals the new deadline itself"
    );
}

#[test]
fn wrapping_virtual_counter_under_the_protocol() {
    // A restored domain whose virtual counter is 40 ticks from wrapping.
    let mut w = World::new(Masking::Imask, Guest::OneShotThenOff, 1_000);
    w.offset = VirtualOffset::with_virtual_count(1_000, u64::MAX - 39);
    w.enter();
    // A comparator "after the wrap" is below the count: the unsigned compare says the
    // condition is met now, as the hardware's would.
    w.hw_cval = 20;
    w.hw_ctl = ON;
    w.run(1);
    assert_eq!(w.handled, [u64::MAX - 39]);
    // The guest waits for the wrap, then programs 20 again: it fires exactly at 20.
    w.run(45);
    assert_eq!(w.vcount(), 6);
    w.hw_cval = 20;
    w.hw_ctl = ON;
    w.deschedule();
    assert_eq!(
        w.vcpu.el2_deadline(w.now, w.offset, Residence::Saved),
        Some(w.now + 14)
    );
    w.enter();
    // Ticks at virtual 6..=19: nothing; at 20: the interrupt.
    w.run(14);
    assert_eq!(w.handled.len(), 1);
    w.run(1);
    assert_eq!(w.handled, [u64::MAX - 39, 20]);
}
