//! Running guests: domains built from the boot archive, one vCPU pinned to each physical
//! CPU, the exit handler, and the domain life cycle (power off, reset).
//!
//! Each physical CPU runs one loop, [`run_this_cpu`]: it waits until the vCPU pinned to it
//! has a start pending (the domain's boot, or a PSCI `CPU_ON`; the one record of a vCPU's
//! power state is its domain's `PsciDomain`), loads that vCPU, and runs it
//! with `guest_run` (guest.S), which returns at every exception the guest takes. The exit
//! handler (`trap::handle`) works on the vCPU's own saved frame and returns an [`Action`];
//! the loop applies it in one place: enter the guest again, or stop the vCPU (save its
//! state and wait for the next start request). Nothing abandons a stack or fails to return.

mod bus;
mod console;
mod domain;
mod el1;
mod inject;
mod passthrough;
mod registry;
mod regs;
mod s2tables;
mod sched;
mod scrub;
mod switch_state;
mod sysreg;
mod timers;
mod trap;
mod vcpuif;
mod xen;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use log::{error, info, warn};
use platforms::{GicVersion as HostGic, Platform};
use spin::Mutex;
use stage2::{Stage2Config, VmidWidth};

use domain::{BuildError, Images};
pub use domain::{Domain, DomainState};
use el1::{El1State, FpState};

use crate::exception::TrapFrame;
use crate::percpu;
use crate::{arch, psci};

/// A vCPU: its scheduling state, the pieces of it other CPUs may look at, and its saved
/// guest context.
pub struct Vcpu {
    /// Its domain.
    pub domain: Arc<Domain>,
    /// Index within the domain.
    pub index: usize,
    /// Home CPU and run state (`sched`).
    sched: sched::Sched,
    /// Whether its virtual-memory controls trap (HCR_EL2.TVM), for set/way emulation.
    tvm: AtomicBool,
    /// Its emulated OS lock (OSLAR_EL1/OSLSR_EL1).
    os_lock: AtomicBool,
    /// Its EL1 timers as the guest sees them (`timers`).
    timers: Mutex<timers::Timers>,
    /// Bit per timer (`timers::Which`): masked by the hypervisor while its interrupt is due.
    timer_masked: AtomicU8,
    /// Something may have become pending for it in the vGIC since its list registers were
    /// last filled (set before it is kicked; `vcpuif` looks at the vGIC only then, or
    /// while list registers are in use, which keeps other exits cheap).
    vgic_hint: AtomicBool,
    /// Its list registers hold interrupts (on its home CPU).
    lrs_live: AtomicBool,
    /// Saved state, touched only by its home CPU (`saved_mut`).
    saved: UnsafeCell<SavedState>,
}

/// Guest state kept while a vCPU is not loaded on its CPU.
struct SavedState {
    frame: TrapFrame,
    el1: El1State,
    fp: FpState,
    /// Its virtual CPU interface's controls and active priorities.
    cpuif: vcpuif::SavedInterface,
    /// The rest of its guest-visible CPU state (keys, PMU, debug, SVE/SME, ...), saved
    /// only when it leaves a CPU with its context kept.
    extra: switch_state::ExtraState,
}

// SAFETY: the only field that is not itself `Sync` is `saved`, reached only through
// `saved_mut`, which panics anywhere but on the vCPU's home CPU. `sched.home` is fixed
// when the vCPU is made, before it is shared; the vCPU is only ever in that CPU's run
// queue (`sched::enqueue`), and only that CPU's run loop (`run_this_cpu` -> `run`, never
// re-entered: EL2 interrupt handlers do not run vCPUs) takes it out to load it. So one
// CPU, one call at a time, ever touches `saved`. Dropping the vCPU needs the last `Arc`,
// which `run` holds while it uses `saved`. The other fields are immutable, atomics or
// locks.
unsafe impl Sync for Vcpu {}

impl Vcpu {
    /// The saved state.
    ///
    /// # Panics
    /// Anywhere but on the vCPU's home CPU.
    ///
    /// # Safety
    /// No other reference to the saved state may be live: only `run`, which loads the
    /// vCPU, takes it, for as long as the vCPU is loaded.
    #[allow(clippy::mut_from_ref)]
    unsafe fn saved_mut(&self) -> &mut SavedState {
        assert_eq!(
            percpu::current_index(),
            self.sched.home,
            "a vCPU's saved state is only for its home CPU"
        );
        // SAFETY: this is the home CPU (checked), the only one that touches `saved`, and
        // the caller holds no other reference to it.
        unsafe { &mut *self.saved.get() }
    }

    /// Makes the vCPU's home CPU look at it again: something was recorded for it (a
    /// start in the domain's `PsciDomain`, an interrupt in the vGIC). If it is not the
    /// vCPU running there, the scheduler is asked to look at its queue; the GIC driver's
    /// kick SGI makes that CPU's guest exit or its idle wait return.
    pub fn kick(&self) {
        let home = self.sched.home;
        if !sched::is_current(self) {
            sched::request(home);
        }
        kick_pcpu(home);
    }
}

/// Wakes physical CPU `pcpu` (its guest exits, or its idle wait returns).
fn kick_pcpu(pcpu: usize) {
    if pcpu == percpu::current_index() {
        return;
    }
    if crate::gic::kick(pcpu).is_err() {
        // No GIC driver on that CPU: it waits in WFE.
        arch::send_event();
    }
}

/// Every vCPU of `domain`.
fn all_vcpus(domain: &Domain) -> vgic::VcpuSet {
    let count = domain.vcpu_homes.len().min(64);
    vgic::VcpuSet::from_bits(if count == 64 {
        u64::MAX
    } else {
        (1 << count) - 1
    })
}

/// Kicks the vCPUs of `domain` in `set` (the vGIC made interrupts pending for them).
pub fn kick_vcpus(domain: &Domain, set: vgic::VcpuSet) {
    let vcpus = domain.vcpus.read();
    for index in set.iter() {
        if let Some(vcpu) = vcpus.get(index) {
            vcpu.vgic_hint.store(true, Ordering::Release);
            vcpu.kick();
        }
    }
}

/// What the run loop does after an exit was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the guest again.
    Resume,
    /// Give the CPU to another vCPU of its queue if one can run (WFE); else resume.
    Yield,
    /// Wait for an interrupt (WFI on a shared CPU, nothing pending): save the vCPU and
    /// run another until one is pending for it, a timer of its is due, or a slice passed.
    Block,
    /// Stop the vCPU (CPU_OFF, its domain powered off or reset): drop its context and
    /// wait for the next start request.
    Stop,
}

/// Number of the domain console input goes to (0: the first there is).
static INPUT_FOCUS: AtomicUsize = AtomicUsize::new(0);
/// Held while bytes are moved from the console to a domain.
static ROUTING: Mutex<()> = Mutex::new(());
/// Consecutive Ctrl-a bytes typed so far.
static CTRL_A_RUN: AtomicUsize = AtomicUsize::new(0);
/// Ctrl-a, typed three times in a row, moves console input to the next domain.
const CTRL_A: u8 = 0x01;

/// Domains not yet powered off for good (a domain being reset still counts).
static LIVE_DOMAINS: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` on the vCPU loaded on this CPU, if any (from an interrupt handler).
fn with_current<R>(f: impl FnOnce(&Vcpu) -> R) -> Option<R> {
    sched::with_current(percpu::current_index(), f)
}

/// A domain will not run again: when it was the last, the machine powers off with
/// `status`.
fn domain_gone(status: u32) {
    if LIVE_DOMAINS.fetch_sub(1, Ordering::AcqRel) == 1 {
        info!("every domain is off: powering the machine off with status {status}");
        psci::power_off_machine(status);
    }
}

/// Builds the domains the boot archive describes and starts each one's first vCPU.
/// Returns how many were started.
pub fn start_domains(platform: &Platform<'static>, dtb: &'static [u8], online: &[usize]) -> usize {
    let Some(region) = platform.initrd else {
        info!("no boot archive (initrd): no domains to start");
        return 0;
    };
    // SAFETY: the boot archive region comes from /chosen, was excluded from every
    // allocator and is mapped read-only at its identity address for good.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(region.base as *const u8, region.size as usize) };
    let archive = match loader::BootArchive::open(bytes) {
        Ok(a) => a,
        Err(e) => {
            error!("boot archive at {region:?} unusable: {e}");
            return 0;
        }
    };
    let specs = match archive.manifest() {
        Ok(s) => s,
        Err(e) => {
            error!("boot configuration unusable: {e}");
            return 0;
        }
    };
    let gic = match platform.gic.as_ref().map(|g| g.version) {
        Some(HostGic::V2) => loader::GicVersion::V2,
        _ => loader::GicVersion::V3,
    };
    vcpuif::set_host(platform.gic.as_ref());
    vcpuif::init_maintenance();
    timers::init(platform.timer.and_then(|t| t.hyp_phys));
    let s2_config = match Stage2Config::from_parange(arch::parange(), 40) {
        Ok(c) => c.with_vmid_width(vmid_width()),
        Err(e) => {
            error!("cannot configure stage 2: {e}");
            return 0;
        }
    };
    registry::init(registry::Host {
        gic,
        s2_config,
        online: online.to_vec(),
        dtb,
        reserved: passthrough::Reserved::from_platform(platform),
        dom0: dom0_host(platform),
    });
    let mut created = Vec::new();
    for (n, spec) in specs.into_iter().enumerate() {
        let id = n + 1;
        let name = spec.name.clone();
        let images = match (archive.file(&spec.kernel), spec.initrd.as_deref()) {
            (Some(kernel), None) => Ok(Images {
                kernel,
                initrd: None,
            }),
            (Some(kernel), Some(name)) => archive
                .file(name)
                .map(|initrd| Images {
                    kernel,
                    initrd: Some(initrd),
                })
                .ok_or_else(|| BuildError::MissingFile(name.into())),
            (None, _) => Err(BuildError::MissingFile(spec.kernel.clone())),
        };
        let result = match images {
            Ok(images) => registry::create(id, spec, images, registry::Carried::default()),
            Err(e) => Err(registry::CreateError::Build(e)),
        };
        let domain = match result {
            Ok(domain) => domain,
            Err(registry::CreateError::Refused) => continue,
            Err(e) => {
                error!("d{id} ({name}): cannot build: {e}");
                continue;
            }
        };
        info!(
            "d{id} ({}): {} MiB at {:#x}, {} vCPU(s) on CPU(s) {:?}, kernel entry {:#x}, DTB {:#x}{}",
            domain.name,
            domain.spec.memory >> 20,
            domain.ram_pa.as_u64(),
            domain.vcpu_homes.len(),
            domain.vcpu_homes,
            domain.placement.entry,
            domain.placement.dtb.start,
            if domain.placement.initrd.is_some() {
                ", initrd"
            } else {
                ""
            }
        );
        LIVE_DOMAINS.fetch_add(1, Ordering::AcqRel);
        created.push(domain);
    }
    // Input typed on the console reaches the focused domain as it arrives, not only when
    // the guest next touches its UART.
    crate::console::on_input(route_console_input);
    if let Some(first) = created.iter().find(|d| d.console.is_some()) {
        INPUT_FOCUS.store(first.id, Ordering::Release);
        info!(
            "console input goes to d{} ({}); type Ctrl-a three times to switch \
             (under QEMU -nographic, Ctrl-a is typed as Ctrl-a Ctrl-a)",
            first.id, first.name
        );
    }
    // Start every domain's boot vCPU only once all are built.
    for domain in &created {
        registry::boot(domain);
    }
    created.len()
}

/// How dom0 sees the host: its console at the host console's address and interrupt, its
/// vGIC at the host GIC's addresses (its RAM base is chosen when it is built). `None` if
/// the host has no console or GIC the hypervisor drives.
fn dom0_host(platform: &Platform<'static>) -> Option<registry::Dom0Host> {
    let console = platform.console.as_ref()?;
    let irq = console.irq?;
    let gic = platform.gic.as_ref()?;
    let gicr = gic.redistributors.first().map_or(0, |r| r.base);
    let gicc = gic.cpu_interface.map_or(0, |r| r.base);
    // A mini UART is emulated with the auxiliary block around it (its clock gate is
    // there), which starts `UART_OFFSET` bytes before the UART's own registers.
    // Only the block's own registers and the UART's are emulated (the auxiliary SPI
    // masters after them are not: their nodes are withheld, as the hypervisor's page).
    let (console_base, console_size, console_model) = match console.kind {
        platforms::ConsoleKind::Pl011 => (
            console.region.base,
            console.region.size,
            domain::ConsoleModel::Pl011,
        ),
        platforms::ConsoleKind::MiniUart => (
            console
                .region
                .base
                .checked_sub(vdevices::mini_uart::UART_OFFSET)?,
            vdevices::mini_uart::reg::END,
            domain::ConsoleModel::MiniUart,
        ),
    };
    Some(registry::Dom0Host {
        layout: domain::Layout {
            ram_base: 0,
            console: (console_base, console_size, irq),
            console_model,
            gicd: gic.distributor.base,
            gicr,
            gicc,
            spis: vgic::MAX_SPIS,
            // Chosen from the host's free address space when dom0 is built.
            xen_regions: Vec::new(),
        },
        console_path: platform.console_path,
    })
}

impl Vcpu {
    /// vCPU `index` of `domain`, living on CPU `home`, Off.
    fn new(domain: Arc<Domain>, index: usize, home: usize) -> Self {
        Vcpu {
            domain,
            index,
            sched: sched::Sched::new(home),
            tvm: AtomicBool::new(false),
            os_lock: AtomicBool::new(true),
            timers: Mutex::new(timers::reset_state()),
            timer_masked: AtomicU8::new(0),
            vgic_hint: AtomicBool::new(false),
            lrs_live: AtomicBool::new(false),
            saved: UnsafeCell::new(SavedState {
                frame: TrapFrame::zeroed(),
                el1: El1State::reset(),
                fp: FpState::default(),
                cpuif: vcpuif::SavedInterface::default(),
                extra: switch_state::ExtraState::reset(),
            }),
        }
    }
}

/// VMID width the CPU supports (ID_AA64MMFR1_EL1.VMIDBits).
fn vmid_width() -> VmidWidth {
    use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, Readable};
    VmidWidth::from_vmidbits_field(((ID_AA64MMFR1_EL1.get() >> 4) & 0xf) as u8)
        .unwrap_or(VmidWidth::Bits8)
}

/// This CPU's loop: run what the scheduler picks from this CPU's queue, or wait for an
/// interrupt when nothing can run.
pub fn run_this_cpu() -> ! {
    let cpu = percpu::current_index();
    let mut next = None;
    loop {
        match next.take().or_else(|| sched::pick(cpu, discard_context)) {
            Some(chosen) => next = run(cpu, chosen),
            // Something changed while picking (a domain retired and rebuilt here): again.
            None if sched::requested(cpu) => {}
            None => {
                sched::rearm(cpu);
                if crate::gic::ready_here() {
                    // Sleeps until an interrupt (a kick, the EL2 timer, the console) and
                    // handles it.
                    crate::gic::wait_for_interrupt();
                } else {
                    aarch64_cpu::asm::wfe();
                }
            }
        }
    }
}

/// Loads the chosen vCPU on this CPU and runs it until it leaves the CPU (it yields, is
/// preempted, blocks or stops). Returns what the scheduler chose to run instead, if it
/// already chose.
fn run(cpu: usize, chosen: sched::Next) -> Option<sched::Next> {
    // Held while the vCPU is loaded here.
    let vcpu_ref = chosen.vcpu().clone();
    let vcpu = &*vcpu_ref;
    // SAFETY: `run` is this CPU's only user of a saved state and is not re-entered, so no
    // other reference to it is live here (`saved_mut` checks this is its home CPU).
    let saved = unsafe { vcpu.saved_mut() };
    match chosen {
        sched::Next::Start { entry, x0, .. } => start_context(cpu, vcpu, saved, entry, x0),
        sched::Next::Resume(_) => resume_context(cpu, vcpu, saved),
    }
    sched::running(cpu, vcpu);
    loop {
        vcpuif::before_entry(vcpu);
        // SAFETY: the frame is this vCPU's (16-byte aligned, `TrapFrame`), and this CPU's
        // EL2 controls, EL1 state and FP registers were loaded for it above.
        let kind = unsafe { guest_run(&mut saved.frame) };
        vcpuif::after_exit(vcpu);
        timers::after_exit(vcpu);
        let mut action = trap::handle(vcpu, &mut saved.frame, kind);
        if action == Action::Resume && sched::requested(cpu) && sched::should_preempt(cpu, vcpu) {
            action = Action::Yield;
        }
        match action {
            Action::Resume => {}
            Action::Yield => match sched::pick(cpu, discard_context) {
                Some(next) => {
                    save_context(vcpu, saved);
                    sched::leave(cpu, vcpu, sched::RunState::Ready, 0);
                    return Some(next);
                }
                // Nothing else can run: a new slice.
                None => sched::running(cpu, vcpu),
            },
            Action::Block => {
                save_context(vcpu, saved);
                let wake_at = timers::saved_deadline(vcpu, &saved.el1)
                    .map_or(sched::block_limit(arch::counter()), |t| {
                        t.min(sched::block_limit(arch::counter()))
                    });
                sched::leave(cpu, vcpu, sched::RunState::Blocked, wake_at);
                return None;
            }
            Action::Stop => {
                stop_context(vcpu);
                sched::leave(cpu, vcpu, sched::RunState::Off, 0);
                return None;
            }
        }
    }
}

/// Loads the EL2 controls of `vcpu`'s domain, and drops this CPU's stage-1 TLB entries of
/// the domain if another of its vCPUs ran here last.
///
/// # Safety
/// No guest runs on this CPU; `vcpu` is about to run here.
unsafe fn load_domain(cpu: usize, vcpu: &Vcpu) {
    let domain = &vcpu.domain;
    // SAFETY: per the caller; the domain's stage 2 matches its VTCR.
    unsafe {
        regs::load(
            domain.vttbr,
            domain.vtcr,
            exits::mpidr_of(vcpu.index) | (1 << 31),
            domain.cntvoff.load(Ordering::Acquire),
            vcpu.tvm.load(Ordering::Relaxed),
            sched::shared(cpu),
        );
    }
    let previous = domain.last_ran[cpu].swap(vcpu.index + 1, Ordering::AcqRel);
    if previous != vcpu.index + 1 {
        // SAFETY: no guest runs here and VTTBR_EL2 holds this domain's VMID (above).
        unsafe { crate::arch::tlb::flush_guest_local() };
    }
}

/// Gives `vcpu` a fresh context on this CPU: the architectural reset state at `entry`
/// with `x0`, every other piece of guest-visible CPU state cleared.
fn start_context(cpu: usize, vcpu: &Vcpu, saved: &mut SavedState, entry: u64, x0: u64) {
    saved.frame = TrapFrame::zeroed();
    saved.frame.x[0] = x0;
    saved.frame.elr = entry;
    saved.frame.spsr = regs::SPSR_EL1H_MASKED;
    saved.el1 = El1State::reset();
    saved.fp = FpState::default();
    saved.cpuif = vcpuif::SavedInterface::default();
    // Set/way trapping starts off; the OS lock is set, as after a cold reset.
    vcpu.tvm.store(false, Ordering::Relaxed);
    vcpu.os_lock.store(true, Ordering::Relaxed);
    // SAFETY: no guest runs on this CPU; the EL1 state is this vCPU's.
    unsafe {
        load_domain(cpu, vcpu);
        saved.el1.restore();
        // After `regs::load`, which enables SVE/SME at EL2 where present.
        scrub::clear_guest_state();
        vcpuif::reset(vcpu);
    }
    timers::reset(vcpu);
    timers::enable_here();
    saved.fp.restore();
}

/// Loads `vcpu`'s saved context on this CPU.
fn resume_context(cpu: usize, vcpu: &Vcpu, saved: &mut SavedState) {
    // SAFETY: no guest runs on this CPU; the saved state is this vCPU's; `regs::load`
    // (in `load_domain`) enabled SVE and SME at EL2 before `extra` is restored, and the
    // FP/SIMD registers go first because the full SVE registers contain them.
    unsafe {
        load_domain(cpu, vcpu);
        saved.el1.restore();
        saved.fp.restore();
        saved.extra.restore();
        vcpuif::load(vcpu, &saved.cpuif);
    }
    timers::load(vcpu);
}

/// Saves the context of `vcpu`, which leaves this CPU with its context kept.
fn save_context(vcpu: &Vcpu, saved: &mut SavedState) {
    saved.el1.save();
    // FP/SIMD first: saving `extra` leaves streaming mode, which zeroes them.
    saved.fp.save();
    // SAFETY: the vCPU just ran on this CPU and no guest runs now; CPTR_EL2 still allows
    // SVE and SME (`regs::load` when it was loaded).
    unsafe { saved.extra.save() };
    vcpuif::unload(vcpu, &mut saved.cpuif);
    timers::unload(vcpu);
}

/// `vcpu` stops on this CPU (CPU_OFF, its domain off or reset): nothing of it may stay in
/// the hardware.
fn stop_context(vcpu: &Vcpu) {
    let mut unused = vcpuif::SavedInterface::default();
    vcpuif::unload(vcpu, &mut unused);
    timers::reset(vcpu);
}

/// Drops the saved context of `vcpu` (Ready or Blocked, of a domain reset or powered off
/// since it started), on its home CPU with no guest loaded.
fn discard_context(vcpu: &Vcpu) {
    // Its list registers were emptied when it left the CPU; its timers back to reset.
    timers::reset(vcpu);
}

unsafe extern "C" {
    /// Runs the guest whose registers are in `frame` until it takes an exception to EL2;
    /// returns the vector kind (8..=15), with the guest's registers saved in `frame`.
    fn guest_run(frame: *mut TrapFrame) -> u64;
}

/// Powers `domain` off with `status`: its RAM is unmapped and its vCPUs kicked, so each
/// stops at its next exit and leaves its run queue; the last one to leave retires the
/// domain (`registry::retire`). When it was the last live domain, the machine powers off
/// with that status.
fn power_off(domain: &Domain, status: u32, why: &str) {
    let from_running = domain.transition(DomainState::Running, DomainState::Off);
    if !from_running && !domain.transition(DomainState::Resetting, DomainState::Off) {
        return; // already off
    }
    domain.exit_status.store(status, Ordering::Release);
    domain.psci.lock().cancel_starts();
    domain.flush_console();
    domain.unmap_ram();
    kick_vcpus(domain, all_vcpus(domain));
    info!(
        "d{} ({}): {why}; powered off with status {status}",
        domain.id, domain.name
    );
    if domain.spec.privileged {
        // dom0 owns the machine's devices: when it goes, the machine goes.
        info!("dom0 is off: powering the machine off with status {status}");
        psci::power_off_machine(status);
    }
    domain_gone(status);
}

/// Resets `domain` (PSCI `SYSTEM_RESET`): like a power-off, but once its last vCPU has
/// left its run queue the domain is built anew from its configuration (new memory,
/// zeroed, images loaded again; the same number and name) and booted
/// (`registry::retire`). The calling vCPU stops. dom0's reset is the machine's (PSCI
/// `SYSTEM_RESET`), or dom0's alone where the firmware cannot reset the machine.
fn reset(domain: &Domain) {
    if domain.spec.privileged && domain.state() == DomainState::Running {
        // dom0 owns the machine's devices: its reboot is the machine's.
        if may_report(domain) {
            info!("dom0 asked for a reboot: resetting the machine");
        }
        domain.flush_console();
        psci::reset_machine();
        // No firmware to reset the machine with: rebuild dom0 alone (a dom0 rebooting in a
        // loop is rate-limited like any guest-caused line).
        if may_report(domain) {
            warn!("the firmware cannot reset the machine: rebuilding dom0 only");
        }
    }
    if domain.transition(DomainState::Running, DomainState::Resetting) {
        domain.flush_console();
        if may_report(domain) {
            info!("d{} ({}): system reset", domain.id, domain.name);
        }
        domain.psci.lock().cancel_starts();
        domain.unmap_ram();
        kick_vcpus(domain, all_vcpus(domain));
    }
}

/// Moves bytes typed on the hypervisor's console to the domain in focus; three Ctrl-a in
/// a row move the focus to the next domain. Polled from the console emulation, so input
/// reaches a guest when it looks at its UART.
pub fn route_console_input() {
    // One CPU routes at a time, so bytes keep their order and a focus switch cannot
    // overtake a byte read before it.
    let Some(_routing) = ROUTING.try_lock() else {
        return;
    };
    let mut target = None;
    while let Some(byte) = crate::console::try_read_byte() {
        if byte == CTRL_A {
            if CTRL_A_RUN.fetch_add(1, Ordering::AcqRel) + 1 == 3 {
                CTRL_A_RUN.store(0, Ordering::Release);
                switch_input_focus();
                target = None;
            }
            continue;
        }
        // Fewer than three Ctrl-a were meant for the guest.
        let held = CTRL_A_RUN.swap(0, Ordering::AcqRel);
        if target.is_none() {
            target = focused_domain();
        }
        let Some(domain) = &target else {
            continue;
        };
        // A domain without a console, or not running, drops its input; bytes its receive
        // FIFO has no room for wait in the console's input queue.
        if let (Some(console), DomainState::Running) = (&domain.console, domain.state()) {
            let mut console = console.lock();
            for b in core::iter::repeat_n(CTRL_A, held).chain(core::iter::once(byte)) {
                // A Xen-aware control domain reads its console through console_io.
                if !xen::console_input(domain, b) {
                    console.deliver(b);
                }
            }
            // Its receive interrupt may now be asserted.
            bus::update_console_irq(domain, console);
        }
    }
}

/// The domain console input goes to.
fn focused_domain() -> Option<Arc<Domain>> {
    registry::get(INPUT_FOCUS.load(Ordering::Acquire))
}

/// Moves console input to the next domain (by number, wrapping) that is not powered off
/// and has a console (or says none has).
fn switch_input_focus() {
    let current = INPUT_FOCUS.load(Ordering::Acquire);
    let candidates: Vec<Arc<Domain>> = registry::all()
        .into_iter()
        .filter(|d| d.state() != DomainState::Off && d.console.is_some())
        .collect();
    let next = candidates
        .iter()
        .find(|d| d.id > current)
        .or_else(|| candidates.first());
    match next {
        Some(d) => {
            INPUT_FOCUS.store(d.id, Ordering::Release);
            info!("console input now goes to d{} ({})", d.id, d.name);
        }
        None => info!("console input: no running domain has a console"),
    }
}

/// Whether `domain` may cause one more console line. Every message whose cause a guest
/// controls asks here first: a burst, then a trickle (`exits::ratelimit`), so a guest
/// cannot flood the console and stall every other domain's output with it.
fn may_report(domain: &Domain) -> bool {
    use exits::ratelimit::Verdict;
    let verdict = domain
        .reports
        .lock()
        .take(arch::counter(), arch::counter_frequency());
    match verdict {
        Verdict::Print { suppressed: 0 } => true,
        Verdict::Print { suppressed } => {
            warn!(
                "d{}: {suppressed} more guest-caused messages were not shown (rate limit)",
                domain.id
            );
            true
        }
        Verdict::Suppress { first: true } => {
            warn!(
                "d{}: further guest-caused messages are held back (rate limit)",
                domain.id
            );
            false
        }
        Verdict::Suppress { first: false } => false,
    }
}
