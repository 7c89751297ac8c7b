//! The physical GIC belongs to the hypervisor: GICv2 (`v2`) and GICv3 (`v3`) drivers at EL2
//! behind one interface, a fixed table of interrupt handlers, and the functions the rest
//! of the hypervisor calls to take its own interrupts.
//!
//! # What EL2 owns, and how interrupts reach it
//!
//! - Boot: [`quiet`] puts the GIC in a known quiet state; [`init`] then configures the
//!   distributor (every SPI group 1, priority [`priority::NORMAL`], level-triggered, routed
//!   to the boot CPU, disabled) and the boot CPU's redistributor (GICv3) and CPU interface;
//!   every other CPU runs [`init_this_cpu`] when it comes online.
//! - The CPU interface runs with EOImode = 1: writing EOIR only drops the running
//!   priority, and the interrupt stays active until DIR deactivates it. A handler that
//!   forwards its interrupt to a guest (later: a list register with the HW bit) returns
//!   [`Completion::Forwarded`] and the guest's own EOI deactivates it; every other
//!   interrupt is deactivated as soon as its handler returns.
//! - Physical IRQs always target EL2 (HCR_EL2.IMO = 1, set at boot and kept in every
//!   vCPU's HCR_EL2). EL2 itself runs with PSTATE.I masked and never nests interrupts; it
//!   takes them at three points, never while it holds a lock:
//!   1. a guest exit of kind IRQ (`exception.rs` calls [`handle_pending_irqs`]);
//!   2. [`wait_for_interrupt`]: WFI with IRQs still masked (WFI wakes on a pending
//!      interrupt regardless), then [`handle_pending_irqs`] polls the acknowledge register;
//!   3. the current-EL IRQ vector, for code that unmasks IRQs at EL2 around a WFI
//!      (`arch::wait_for_interrupt_unmasked`), which calls [`handle_irq_exception`].
//!
//! # Priorities
//!
//! The running priority never matters at EL2 (no nesting), so there are two levels only:
//! [`priority::HIGH`] for SGIs and the EL2 timer, [`priority::NORMAL`] for devices; the
//! priority mask is [`priority::MASK`]. The values use the top bits only, so they mean the
//! same with 16 or 32 implemented levels and from the Non-secure view of a GICv2 with the
//! Security Extensions (which halves the range).
//!
//! # Lock order
//!
//! `CONFIG` (interrupt configuration) is taken alone; the handler table's per-entry locks
//! are only ever taken one at a time.

pub mod gich;
mod mmio;
mod quiet;
pub mod selftest;
mod v2;
mod v3;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use log::warn;
use platforms::{Gic, GicVersion};
use spin::{Mutex, Once, RwLock};

use crate::percpu::{self, MAX_CPUS};
pub use quiet::{LEFTOVER_INTID, leave_interrupt_pending, quiet, quiet_this_cpu};

/// One past the highest interrupt ID the driver handles (SGIs 0-15, PPIs 16-31, SPIs
/// 32-1019; 1020-1023 are special; LPIs are not used).
pub const MAX_INTID: u32 = 1020;

/// Handled per call to [`handle_pending_irqs`] at most, so a storm cannot hold a CPU
/// forever: what is left is taken at the next opportunity.
const MAX_PER_CALL: usize = 64;

/// Interrupt priorities the hypervisor uses (lower value = more urgent).
pub mod priority {
    /// SGIs (kicks between CPUs) and the EL2 timer.
    pub const HIGH: u8 = 0x80;
    /// Devices (the console UART).
    pub const NORMAL: u8 = 0xa0;
    /// The CPU interface's priority mask: anything more urgent than this is signalled.
    pub const MASK: u8 = 0xf0;
}

/// The SGIs the hypervisor uses between physical CPUs.
pub mod sgi {
    /// Wakes a CPU sleeping in [`super::wait_for_interrupt`]; the handler does nothing.
    pub const KICK: u32 = 0;
    /// `selftest=sgi`: the receiver reports.
    pub const SELFTEST: u32 = 14;
    /// `selftest=timer`: the receiver arms its EL2 timer.
    pub const SELFTEST_TIMER: u32 = 15;
}

/// How an interrupt is signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Asserted while the device wants attention (the default for SPIs and PPIs).
    Level,
    /// One interrupt per edge. SGIs are always edge-triggered.
    Edge,
}

/// What a handler did with its interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Handled: the interrupt is deactivated as soon as the handler returns.
    Done,
    /// Left active (forwarded to a guest, or to be finished later): whoever takes it over
    /// calls [`deactivate`] with its [`Ack`], or the guest's EOI does (HW list register).
    Forwarded,
}

/// An interrupt handler: called on the CPU that took the interrupt, with IRQs masked,
/// after the priority drop. `ack` identifies it for a later [`deactivate`].
pub type Handler = fn(ack: Ack) -> Completion;

/// An acknowledged interrupt, as read from the acknowledge register (on GICv2 an SGI's
/// value also names the sending CPU interface; EOI and deactivation need it whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    raw: u32,
    version: GicVersion,
}

impl Ack {
    /// The interrupt ID.
    pub fn intid(&self) -> u32 {
        match self.version {
            GicVersion::V2 => self.raw & 0x3ff,
            GicVersion::V3 => self.raw & 0xff_ffff,
        }
    }

    /// GICv2: the CPU interface number that sent this SGI (0 for anything else, and
    /// always on GICv3, which does not say).
    #[allow(dead_code, reason = "for the vGIC and diagnostics")]
    pub fn source_cpu_interface(&self) -> u32 {
        match self.version {
            GicVersion::V2 if self.intid() < 16 => (self.raw >> 10) & 7,
            _ => 0,
        }
    }
}

/// Why a GIC request could not be carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// [`init`] has not run (or failed), or this CPU's interface is not set up.
    NotReady,
    /// The interrupt ID is out of range, or of the wrong kind for the request.
    BadIntid(u32),
    /// The CPU index has not initialised its GIC interface (offline or unknown).
    CpuOffline(usize),
    /// GICv3: no redistributor carries this CPU's affinity.
    NoRedistributor(u64),
    /// GICv3: ICC_SRE_EL2.SRE does not stick (no system-register interface).
    NoSystemRegisters,
    /// GICv3: an SGI target with Aff0 >= 16 on a CPU interface without range selectors;
    /// GICv2: a CPU beyond the eight CPU interfaces.
    Unreachable(usize),
    /// GICv2: no CPU interface (GICC) in the device tree.
    NoCpuInterface,
    /// A handler is already registered for this interrupt.
    AlreadyRegistered(u32),
}

impl fmt::Display for GicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GicError::NotReady => write!(f, "the GIC driver is not initialised on this CPU"),
            GicError::BadIntid(id) => write!(f, "interrupt ID {id} is not valid here"),
            GicError::CpuOffline(cpu) => write!(f, "CPU {cpu} has no initialised GIC interface"),
            GicError::NoRedistributor(mpidr) => {
                write!(f, "no GICv3 redistributor for MPIDR {mpidr:#x}")
            }
            GicError::NoSystemRegisters => {
                write!(f, "the GICv3 system-register interface cannot be enabled")
            }
            GicError::Unreachable(cpu) => write!(f, "CPU {cpu} cannot be targeted"),
            GicError::NoCpuInterface => write!(f, "the GICv2 has no CPU interface (GICC)"),
            GicError::AlreadyRegistered(id) => {
                write!(f, "interrupt {id} already has a handler")
            }
        }
    }
}

/// The driver of the GIC version the device tree describes.
enum Driver {
    V2(v2::GicV2),
    V3(v3::GicV3),
}

/// Calls the same method on whichever driver is in use.
macro_rules! dispatch {
    ($driver:expr, $d:ident => $call:expr) => {
        match $driver {
            Driver::V2($d) => $call,
            Driver::V3($d) => $call,
        }
    };
}

static DRIVER: Once<Driver> = Once::new();

/// Per CPU (the hypervisor's index): whether its GIC interface is initialised, and its
/// MPIDR affinity (for routing and SGIs).
static CPU_READY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static CPU_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Interrupts handled per CPU, and how many of them came through the EL2 IRQ vector.
static HANDLED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static VIA_VECTOR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The maintenance interrupt from the device tree (for the vGIC to register).
static MAINTENANCE: Once<Option<u32>> = Once::new();

/// Serialises read-modify-write configuration of shared registers (ICFGR).
static CONFIG: Mutex<()> = Mutex::new(());

/// Handler per interrupt ID. Written at registration, read on the IRQ path (a reader
/// never waits for long: registration only stores a function pointer).
static HANDLERS: [RwLock<Option<Handler>>; MAX_INTID as usize] =
    [const { RwLock::new(None) }; MAX_INTID as usize];

fn driver() -> Result<&'static Driver, GicError> {
    DRIVER.get().ok_or(GicError::NotReady)
}

/// Whether this CPU's GIC interface is initialised (its acknowledge register usable).
pub fn ready_here() -> bool {
    DRIVER.get().is_some() && CPU_READY[percpu::current_index()].load(Ordering::Acquire)
}

/// The MPIDR affinity of CPU `cpu`, once its interface is initialised.
fn cpu_mpidr(cpu: usize) -> Result<u64, GicError> {
    if cpu < MAX_CPUS && CPU_READY[cpu].load(Ordering::Acquire) {
        Ok(CPU_MPIDR[cpu].load(Ordering::Acquire))
    } else {
        Err(GicError::CpuOffline(cpu))
    }
}

/// Configures the GIC from the device tree on the boot CPU: the distributor (every SPI
/// group 1, [`priority::NORMAL`], level, routed to this CPU, disabled; then enabled), this
/// CPU's redistributor and CPU interface, and the [`sgi::KICK`] handler. Physical IRQs
/// are routed to EL2 (HCR_EL2.IMO/FMO).
///
/// # Safety
/// Every region of `gic` must be mapped as device memory in the EL2 map, [`quiet`] must
/// have run, and no other CPU may run yet.
pub unsafe fn init(gic: &Gic) -> Result<(), GicError> {
    let boot_mpidr = crate::arch::current_mpidr();
    MAINTENANCE.call_once(|| gic.maintenance_irq);
    let driver = match gic.version {
        GicVersion::V2 => {
            let gicc = gic.cpu_interface.ok_or(GicError::NoCpuInterface)?;
            // SAFETY: the caller maps the distributor and CPU interface and quieted them.
            Driver::V2(unsafe { v2::GicV2::new(gic.distributor.base, gicc.base) })
        }
        // SAFETY: the caller maps the distributor and every redistributor region.
        GicVersion::V3 => Driver::V3(unsafe { v3::GicV3::new(gic) }),
    };
    // SAFETY: as guaranteed by the caller; this is the boot CPU.
    unsafe { dispatch!(&driver, d => d.init_distributor(boot_mpidr)) }?;
    DRIVER.call_once(|| driver);
    register_handler(sgi::KICK, |_| Completion::Done)?;
    // SAFETY: the distributor is set up; this is the boot CPU's own interface.
    unsafe { init_this_cpu() }
}

/// Initialises this CPU's side of the GIC: its GICv3 redistributor (woken up) or GICv2
/// banked registers, its CPU interface (priority mask, EOImode = 1, group 1 enabled), and
/// enables on it every SGI that has a handler. Called by [`init`] for the boot CPU and by
/// each secondary CPU when it comes online.
///
/// # Safety
/// [`init`] must have run on the boot CPU (its mappings stay valid); call once per CPU,
/// after [`quiet_this_cpu`], with IRQs masked.
pub unsafe fn init_this_cpu() -> Result<(), GicError> {
    let driver = driver()?;
    let cpu = percpu::current_index();
    let mpidr = crate::arch::current_mpidr();
    crate::arch::route_interrupts_to_el2();
    // SAFETY: guaranteed by the caller.
    unsafe { dispatch!(driver, d => d.init_this_cpu(cpu, mpidr)) }?;
    CPU_MPIDR[cpu].store(mpidr, Ordering::Release);
    CPU_READY[cpu].store(true, Ordering::Release);
    for sgi in 0..16 {
        if HANDLERS[sgi as usize].read().is_some() {
            configure(sgi, priority::HIGH, Trigger::Edge)?;
            enable(sgi)?;
        }
    }
    Ok(())
}

/// Checks that `intid` is an SGI, PPI or SPI this GIC has. SGIs and PPIs also need this
/// CPU's interface, since their registers are banked per CPU.
fn check_intid(driver: &Driver, intid: u32) -> Result<(), GicError> {
    let lines = dispatch!(driver, d => d.lines());
    if intid >= lines.min(MAX_INTID) {
        return Err(GicError::BadIntid(intid));
    }
    if intid < 32 && !CPU_READY[percpu::current_index()].load(Ordering::Acquire) {
        return Err(GicError::NotReady);
    }
    Ok(())
}

/// Sets `intid`'s priority and trigger. For SGIs and PPIs this acts on the calling CPU's
/// banked copy; SGIs ignore the trigger (always edge). Change a trigger only while the
/// interrupt is disabled.
pub fn configure(intid: u32, priority: u8, trigger: Trigger) -> Result<(), GicError> {
    let driver = driver()?;
    check_intid(driver, intid)?;
    let _config = CONFIG.lock();
    dispatch!(driver, d => {
        d.set_priority(intid, priority);
        if intid >= 16 {
            d.set_trigger(intid, trigger);
        }
    });
    Ok(())
}

/// Enables `intid` (an SGI or PPI on the calling CPU only).
pub fn enable(intid: u32) -> Result<(), GicError> {
    let driver = driver()?;
    check_intid(driver, intid)?;
    dispatch!(driver, d => d.set_enabled(intid, true));
    Ok(())
}

/// Disables `intid` (an SGI or PPI on the calling CPU only). On return the distributor
/// (or redistributor) has taken the change.
pub fn disable(intid: u32) -> Result<(), GicError> {
    let driver = driver()?;
    check_intid(driver, intid)?;
    dispatch!(driver, d => d.set_enabled(intid, false));
    Ok(())
}

/// Routes the SPI `intid` to CPU `cpu` (the hypervisor's index; it must have run
/// [`init_this_cpu`]).
pub fn route_spi(intid: u32, cpu: usize) -> Result<(), GicError> {
    let driver = driver()?;
    if intid < 32 {
        return Err(GicError::BadIntid(intid));
    }
    check_intid(driver, intid)?;
    let mpidr = cpu_mpidr(cpu)?;
    dispatch!(driver, d => d.route_spi(intid, cpu, mpidr))
}

/// Sends SGI `sgi` (0..=15) to CPU `cpu` (the hypervisor's index; it may be this CPU).
/// Memory written before the call is visible to the receiver's handler.
pub fn send_sgi(sgi: u32, cpu: usize) -> Result<(), GicError> {
    let driver = driver()?;
    if sgi >= 16 {
        return Err(GicError::BadIntid(sgi));
    }
    if !ready_here() {
        return Err(GicError::NotReady);
    }
    let mpidr = cpu_mpidr(cpu)?;
    dispatch!(driver, d => d.send_sgi(sgi, cpu, mpidr))
}

/// Wakes CPU `cpu` if it sleeps in [`wait_for_interrupt`] ([`sgi::KICK`]).
pub fn kick(cpu: usize) -> Result<(), GicError> {
    send_sgi(sgi::KICK, cpu)
}

/// Acknowledges the highest-priority pending interrupt of this CPU, if there is one.
/// Callers other than [`handle_pending_irqs`] must finish it with [`priority_drop`] and
/// (unless forwarded) [`deactivate`].
#[allow(
    dead_code,
    reason = "interrupt API for forwarding device interrupts to guests (HW-backed virtual interrupts), not yet called"
)]
pub fn acknowledge() -> Option<Ack> {
    if !ready_here() {
        return None;
    }
    dispatch!(DRIVER.get()?, d => d.acknowledge())
}

/// Drops the running priority of `ack` (EOIR): this CPU can take other interrupts again.
/// With EOImode = 1 the interrupt itself stays active until [`deactivate`].
#[allow(
    dead_code,
    reason = "interrupt API for forwarding device interrupts to guests (HW-backed virtual interrupts), not yet called"
)]
pub fn priority_drop(ack: Ack) {
    if let Some(driver) = DRIVER.get() {
        dispatch!(driver, d => d.priority_drop(ack));
    }
}

/// Deactivates `ack` (DIR): it can be signalled again. May run on another CPU than the one
/// that acknowledged it only for SPIs.
#[allow(
    dead_code,
    reason = "interrupt API for forwarding device interrupts to guests (HW-backed virtual interrupts), not yet called"
)]
pub fn deactivate(ack: Ack) {
    if let Some(driver) = DRIVER.get() {
        dispatch!(driver, d => d.deactivate(ack));
    }
}

/// Deactivates SPI `intid`, acknowledged earlier on some CPU and left active
/// ([`Completion::Forwarded`]): a guest finished it in a way its list register did not
/// carry to the hardware (an EOI counted in `EOIcount`).
pub fn deactivate_spi(intid: u32) {
    let Some(driver) = DRIVER.get() else {
        return;
    };
    if !(32..MAX_INTID).contains(&intid) {
        return;
    }
    let version = match driver {
        Driver::V2(_) => GicVersion::V2,
        Driver::V3(_) => GicVersion::V3,
    };
    dispatch!(driver, d => d.deactivate(Ack { raw: intid, version }));
}

/// Clears SPI `intid`'s pending and active states in the distributor (the domain it was
/// forwarded to is gone; whatever it left is dropped).
pub fn clear_spi(intid: u32) -> Result<(), GicError> {
    let driver = driver()?;
    if intid < 32 {
        return Err(GicError::BadIntid(intid));
    }
    check_intid(driver, intid)?;
    let gicd = dispatch!(driver, d => d.distributor());
    // SAFETY: the driver's distributor is mapped for good, and `intid` is one of its SPIs
    // (checked above).
    unsafe { mmio::clear_spi_state(gicd, intid) };
    Ok(())
}

/// Removes `intid`'s handler (it must be disabled first).
pub fn unregister_handler(intid: u32) {
    if let Some(slot) = HANDLERS.get(intid as usize) {
        *slot.write() = None;
    }
}

/// Registers `handler` for `intid` (an SGI, PPI or SPI; one handler per interrupt, shared
/// by every CPU for SGIs and PPIs). It does not enable the interrupt, with one exception:
/// SGIs with a handler are enabled on every CPU that initialises its interface afterwards,
/// and on the calling CPU now. The maintenance interrupt ([`maintenance_intid`]) is
/// registered like any other PPI.
pub fn register_handler(intid: u32, handler: Handler) -> Result<(), GicError> {
    if intid >= MAX_INTID {
        return Err(GicError::BadIntid(intid));
    }
    {
        let mut slot = HANDLERS[intid as usize].write();
        if slot.is_some() {
            return Err(GicError::AlreadyRegistered(intid));
        }
        *slot = Some(handler);
    }
    if intid < 16 && ready_here() {
        configure(intid, priority::HIGH, Trigger::Edge)?;
        enable(intid)?;
    }
    Ok(())
}

/// The GIC maintenance interrupt's ID from the device tree (a PPI, 25 on QEMU and the
/// Raspberry Pi 4), for the vGIC to register a handler and enable it on each CPU.
pub fn maintenance_intid() -> Option<u32> {
    MAINTENANCE.get().copied().flatten()
}

/// Takes every interrupt pending for this CPU (up to a bound), calling each one's handler:
/// acknowledge, priority drop, handler, deactivation unless the handler forwarded it. An
/// interrupt without a handler is disabled (on this CPU, for an SGI or PPI) and reported.
/// Returns how many were taken. Call with IRQs masked and no lock held; does nothing on a
/// CPU whose interface is not initialised.
///
/// The guest exit path calls it for exits of kind IRQ (and FIQ); the idle path through
/// [`wait_for_interrupt`].
pub fn handle_pending_irqs() -> usize {
    if !ready_here() {
        return 0;
    }
    let Some(driver) = DRIVER.get() else {
        return 0;
    };
    let mut taken = 0;
    while taken < MAX_PER_CALL {
        let Some(ack) = dispatch!(driver, d => d.acknowledge()) else {
            break;
        };
        dispatch!(driver, d => d.priority_drop(ack));
        let intid = ack.intid();
        let handler = HANDLERS.get(intid as usize).and_then(|slot| *slot.read());
        let completion = match handler {
            Some(handler) => handler(ack),
            None => {
                dispatch!(driver, d => d.set_enabled(intid, false));
                warn!("interrupt {intid} has no handler: disabled");
                Completion::Done
            }
        };
        if completion == Completion::Done {
            dispatch!(driver, d => d.deactivate(ack));
        }
        taken += 1;
    }
    HANDLED[percpu::current_index()].fetch_add(taken as u64, Ordering::Relaxed);
    taken
}

/// Sleeps until an interrupt is pending for this CPU, then handles every pending one
/// ([`handle_pending_irqs`]); returns how many were handled (0 after a spurious wake-up).
/// This is the idle primitive: a CPU waiting for work loops on it and re-checks its work
/// after each return; it is woken by [`kick`] from another CPU, its EL2 timer, or any
/// interrupt routed to it. Call with IRQs masked and no lock held.
pub fn wait_for_interrupt() -> usize {
    crate::arch::wait_for_interrupt_masked();
    handle_pending_irqs()
}

/// The current-EL IRQ vector's handler (code at EL2 that unmasked IRQs).
pub fn handle_irq_exception() {
    VIA_VECTOR[percpu::current_index()].fetch_add(1, Ordering::Relaxed);
    handle_pending_irqs();
}

/// Interrupts this CPU has handled, and how many of those calls came through the EL2
/// IRQ vector.
pub fn statistics() -> (u64, u64) {
    let cpu = percpu::current_index();
    (
        HANDLED[cpu].load(Ordering::Relaxed),
        VIA_VECTOR[cpu].load(Ordering::Relaxed),
    )
}
