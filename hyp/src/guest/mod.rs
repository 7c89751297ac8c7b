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
mod regs;
mod s2tables;
mod sched;
mod scrub;
mod sysreg;
mod timers;
mod trap;
mod vcpuif;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};

use log::{error, info, warn};
use platforms::{GicVersion as HostGic, Platform};
use spin::Mutex;
use stage2::{Stage2Config, VmidAllocator, VmidWidth};

use domain::{BuildError, Images};
pub use domain::{Domain, DomainState};
use el1::{El1State, FpState};

use crate::exception::TrapFrame;
use crate::percpu::{self, MAX_CPUS};
use crate::{arch, psci};

/// A vCPU: its scheduling state, the pieces of it other CPUs may look at, and its saved
/// guest context.
pub struct Vcpu {
    /// Its domain.
    pub domain: &'static Domain,
    /// Index within the domain.
    pub index: usize,
    /// Home CPU and run state (`sched`).
    sched: sched::Sched,
    /// The domain's `epoch` when it last started: a context from an earlier life of the
    /// domain (before a reset) is dropped instead of resumed.
    started_epoch: AtomicU32,
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
}

// SAFETY: `saved` is only accessed by the vCPU's home CPU, which never changes (see
// `saved_mut` and `sched`); the other fields are atomics or locks.
unsafe impl Sync for Vcpu {}

impl Vcpu {
    /// The saved state.
    ///
    /// # Safety
    /// Only on the vCPU's home CPU, with no other reference to it live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn saved_mut(&self) -> &mut SavedState {
        // SAFETY: the caller is the only CPU that touches `saved`.
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
        // SAFETY: SEV only wakes CPUs waiting in WFE.
        unsafe { core::arch::asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
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
    for index in set.iter() {
        if let Some(vcpu) = vcpu_of(domain, index) {
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

/// Every domain, in configuration order, fixed once they are all built.
static DOMAINS: spin::Once<Vec<&'static Domain>> = spin::Once::new();

/// Index in `DOMAINS` of the domain console input goes to.
static INPUT_FOCUS: AtomicUsize = AtomicUsize::new(0);
/// Held while bytes are moved from the console to a domain.
static ROUTING: Mutex<()> = Mutex::new(());
/// Consecutive Ctrl-a bytes typed so far.
static CTRL_A_RUN: AtomicUsize = AtomicUsize::new(0);
/// Ctrl-a, typed three times in a row, moves console input to the next domain.
const CTRL_A: u8 = 0x01;

/// Domains not yet powered off.
static LIVE_DOMAINS: AtomicUsize = AtomicUsize::new(0);

/// The vCPU loaded on this CPU, if any.
fn current_here() -> Option<&'static Vcpu> {
    sched::current(percpu::current_index())
}

/// The vCPU `index` of `domain`.
pub fn vcpu_of(domain: &Domain, index: usize) -> Option<&'static Vcpu> {
    domain.vcpus.get()?.get(index).copied()
}

/// Builds the domains the boot archive describes and starts each one's first vCPU.
/// Returns how many were started.
pub fn start_domains(platform: &Platform<'static>, online: &[usize]) -> usize {
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
    let mut vmids = VmidAllocator::new(vmid_width());
    let mut built_domains = Vec::new();
    // vCPUs placed on each CPU so far (the least-loaded allowed CPU takes the next one).
    let mut load = [0usize; MAX_CPUS];
    let mut started = 0;
    for (n, spec) in specs.into_iter().enumerate() {
        let id = n + 1;
        let vcpus = spec.vcpus as usize;
        if gic == loader::GicVersion::V2 && spec.vcpus > gic.max_vcpus() {
            error!(
                "d{id} ({}): {vcpus} vCPUs, but a GICv2 guest has at most {}; not started",
                spec.name,
                gic.max_vcpus()
            );
            continue;
        }
        let Some(allowed) = allowed_cpus(id, &spec, online) else {
            continue;
        };
        let Some(vmid) = vmids.alloc() else {
            error!("d{id} ({}): no VMID left; not started", spec.name);
            continue;
        };
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
        let homes = place_vcpus(vcpus, &allowed, &mut load);
        let name = spec.name.clone();
        let built = images.and_then(|images| {
            Domain::build(id, spec, images, gic, s2_config, vmid, homes.clone())
        });
        let domain: &'static Domain = match built {
            Ok(d) => Box::leak(Box::new(d)),
            Err(e) => {
                error!("d{id} ({name}): cannot build: {e}");
                let _ = vmids.free(vmid);
                for &home in &homes {
                    load[home] -= 1;
                }
                continue;
            }
        };
        let vcpu_list: Vec<&'static Vcpu> = homes
            .iter()
            .enumerate()
            .map(|(index, &home)| &*Box::leak(Box::new(Vcpu::new(domain, index, home))))
            .collect();
        for &vcpu in &vcpu_list {
            sched::enqueue(vcpu);
        }
        let pcpus = &homes;
        domain.vcpus.call_once(|| vcpu_list);
        info!(
            "d{id} ({}): {} MiB at {:#x}, {} vCPU(s) on CPU(s) {:?}, kernel entry {:#x}, DTB {:#x}{}",
            domain.name,
            domain.spec.memory >> 20,
            domain.ram_pa.as_u64(),
            vcpus,
            pcpus,
            domain.placement.entry,
            domain.placement.dtb.start,
            if domain.placement.initrd.is_some() {
                ", initrd"
            } else {
                ""
            }
        );
        built_domains.push(domain);
        LIVE_DOMAINS.fetch_add(1, Ordering::AcqRel);
        started += 1;
    }
    let domains = DOMAINS.call_once(|| built_domains);
    // Input typed on the console reaches the focused domain as it arrives, not only when
    // the guest next touches its UART.
    crate::console::on_input(route_console_input);
    if let Some(first) = domains.first() {
        info!(
            "console input goes to d{} ({}); type Ctrl-a three times to switch \
             (under QEMU -nographic, Ctrl-a is typed as Ctrl-a Ctrl-a)",
            first.id, first.name
        );
    }
    // Start every domain's boot vCPU only once all are built.
    for domain in domains {
        domain
            .psci
            .lock()
            .boot(domain.placement.entry, domain.placement.dtb.start);
        if let Some(vcpu) = vcpu_of(domain, 0) {
            vcpu.kick();
        }
    }
    started
}

impl Vcpu {
    /// vCPU `index` of `domain`, living on CPU `home`, Off.
    fn new(domain: &'static Domain, index: usize, home: usize) -> Self {
        Vcpu {
            domain,
            index,
            sched: sched::Sched::new(home),
            started_epoch: AtomicU32::new(0),
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
            }),
        }
    }
}

/// The online CPUs domain `id` may run on: those of its `cpus` list that are online (all
/// online CPUs without a list), or `None`, said why, when there is none.
fn allowed_cpus(id: usize, spec: &loader::DomainSpec, online: &[usize]) -> Option<Vec<usize>> {
    if spec.cpus.is_empty() {
        return Some(online.to_vec());
    }
    let mut allowed = Vec::new();
    for &cpu in &spec.cpus {
        if online.contains(&(cpu as usize)) {
            allowed.push(cpu as usize);
        } else {
            warn!(
                "d{id} ({}): CPU {cpu} of its cpus list is not online; skipped",
                spec.name
            );
        }
    }
    if allowed.is_empty() {
        error!(
            "d{id} ({}): none of the CPUs it may run on ({:?}) is online; not started",
            spec.name, spec.cpus
        );
        return None;
    }
    Some(allowed)
}

/// Chooses a home CPU for each of `vcpus` vCPUs among `allowed`: the one with the fewest
/// vCPUs so far (`load`), the lowest number on a tie.
fn place_vcpus(vcpus: usize, allowed: &[usize], load: &mut [usize; MAX_CPUS]) -> Vec<usize> {
    (0..vcpus)
        .map(|_| {
            let home = allowed
                .iter()
                .copied()
                .min_by_key(|&cpu| (load[cpu], cpu))
                .expect("at least one allowed CPU");
            load[home] += 1;
            home
        })
        .collect()
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
    let vcpu = chosen.vcpu();
    // SAFETY: this is the vCPU's home CPU, the only one that touches its saved state, and
    // no other reference to it is live here.
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
    let domain = vcpu.domain;
    // SAFETY: per the caller; the domain's stage 2 matches its VTCR.
    unsafe {
        regs::load(
            domain.vttbr,
            domain.vtcr,
            exits::mpidr_of(vcpu.index) | (1 << 31),
            domain.cntvoff.load(Ordering::Acquire),
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
fn start_context(cpu: usize, vcpu: &'static Vcpu, saved: &mut SavedState, entry: u64, x0: u64) {
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
fn resume_context(cpu: usize, vcpu: &'static Vcpu, saved: &mut SavedState) {
    // SAFETY: no guest runs on this CPU; the saved state is this vCPU's.
    unsafe {
        load_domain(cpu, vcpu);
        regs::set_tvm(vcpu.tvm.load(Ordering::Relaxed));
        saved.el1.restore();
        vcpuif::load(vcpu, &saved.cpuif);
    }
    timers::load(vcpu);
    saved.fp.restore();
}

/// Saves the context of `vcpu`, which leaves this CPU with its context kept.
fn save_context(vcpu: &'static Vcpu, saved: &mut SavedState) {
    saved.el1.save();
    saved.fp.save();
    vcpuif::unload(vcpu, &mut saved.cpuif);
    timers::unload(vcpu);
}

/// `vcpu` stops on this CPU (CPU_OFF, its domain off or reset): nothing of it may stay in
/// the hardware.
fn stop_context(vcpu: &'static Vcpu) {
    let mut unused = vcpuif::SavedInterface::default();
    vcpuif::unload(vcpu, &mut unused);
    timers::reset(vcpu);
}

/// Drops the saved context of `vcpu` (Ready or Blocked, of a domain reset or powered off
/// since it started), on its home CPU with no guest loaded.
fn discard_context(vcpu: &'static Vcpu) {
    // Its list registers were emptied when it left the CPU; its timers back to reset.
    timers::reset(vcpu);
}

unsafe extern "C" {
    /// Runs the guest whose registers are in `frame` until it takes an exception to EL2;
    /// returns the vector kind (8..=15), with the guest's registers saved in `frame`.
    fn guest_run(frame: *mut TrapFrame) -> u64;
}

/// Wakes every CPU waiting in WFE (a vCPU of a domain whose memory was just unmapped
/// then faults at once instead of sleeping on).
fn wake_all() {
    // SAFETY: a barrier and SEV only order memory and wake waiting CPUs.
    unsafe { core::arch::asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

/// Powers `domain` off with `status`: its RAM is unmapped so its other vCPUs fault and
/// park; when it was the last live domain, the machine powers off with that status.
fn power_off(domain: &'static Domain, status: u32, why: &str) {
    let from_running = domain.transition(DomainState::Running, DomainState::Off);
    if !from_running && !domain.transition(DomainState::Resetting, DomainState::Off) {
        return; // already off
    }
    domain.exit_status.store(status, Ordering::Release);
    domain.psci.lock().cancel_starts();
    domain.flush_console();
    domain.unmap_ram();
    // vCPUs waiting in WFI look at their domain again and stop.
    kick_vcpus(domain, all_vcpus(domain));
    info!(
        "d{} ({}): {why}; powered off with status {status}",
        domain.id, domain.name
    );
    if LIVE_DOMAINS.fetch_sub(1, Ordering::AcqRel) == 1 {
        info!("every domain is off: powering the machine off with status {status}");
        psci::power_off_machine(status);
    }
}

/// Resets `domain` (PSCI `SYSTEM_RESET`): waits for every other vCPU to stop, reloads its
/// images and starts vCPU 0 again. Called on the vCPU `caller`, which the run loop stops
/// afterwards.
fn reset(domain: &'static Domain, caller: &'static Vcpu) {
    if domain.transition(DomainState::Running, DomainState::Resetting) {
        // Contexts of this life that are saved but not running are dropped, not resumed.
        domain.epoch.fetch_add(1, Ordering::AcqRel);
        domain.flush_console();
        if may_report(domain) {
            info!("d{} ({}): system reset", domain.id, domain.name);
        }
        domain.unmap_ram();
        domain.psci.lock().cancel_starts();
        kick_vcpus(domain, all_vcpus(domain));
        wake_all();
        // Every other vCPU faults on its next access and parks; wait for that.
        let deadline = arch::counter() + arch::counter_frequency();
        let others_parked = || {
            (0..domain.vcpu_homes.len())
                .filter(|&i| i != caller.index)
                .filter_map(|i| vcpu_of(domain, i))
                .all(|v| v.sched.state() != sched::RunState::Running)
        };
        while !others_parked() {
            if arch::counter() > deadline {
                warn!("d{}: vCPUs did not stop for the reset", domain.id);
                power_off(domain, 1, "reset failed");
                return;
            }
            core::hint::spin_loop();
        }
        match domain.reload() {
            Ok(()) if domain.transition(DomainState::Resetting, DomainState::Running) => {
                domain
                    .psci
                    .lock()
                    .boot(domain.placement.entry, domain.placement.dtb.start);
                if let Some(boot) = vcpu_of(domain, 0) {
                    boot.kick();
                }
            }
            Ok(()) => {}
            Err(e) => {
                warn!("d{}: reset failed: {e}", domain.id);
                power_off(domain, 1, "reset failed");
            }
        }
    }
}

/// Moves bytes typed on the hypervisor's console to the domain in focus; three Ctrl-a in
/// a row move the focus to the next domain. Polled from the console emulation, so input
/// reaches a guest when it looks at its UART.
pub fn route_console_input() {
    let Some(domains) = DOMAINS.get().filter(|d| !d.is_empty()) else {
        return;
    };
    // One CPU routes at a time, so bytes keep their order and a focus switch cannot
    // overtake a byte read before it.
    let Some(_routing) = ROUTING.try_lock() else {
        return;
    };
    while let Some(byte) = crate::console::try_read_byte() {
        if byte == CTRL_A {
            if CTRL_A_RUN.fetch_add(1, Ordering::AcqRel) + 1 == 3 {
                CTRL_A_RUN.store(0, Ordering::Release);
                switch_input_focus(domains);
            }
            continue;
        }
        // Fewer than three Ctrl-a were meant for the guest.
        let held = CTRL_A_RUN.swap(0, Ordering::AcqRel);
        let target = domains[INPUT_FOCUS.load(Ordering::Acquire) % domains.len()];
        // A domain without a console, or powered off, drops its input; a full receive
        // FIFO drops the byte, as a real UART overruns.
        if let (Some(console), DomainState::Running) = (&target.console, target.state()) {
            let mut console = console.lock();
            for b in core::iter::repeat_n(CTRL_A, held).chain(core::iter::once(byte)) {
                console.uart.push_input(b);
            }
            // Its receive interrupt may now be asserted.
            bus::update_console_irq(target, console);
        }
    }
}

/// Moves console input to the next domain that is still running (or says none is).
fn switch_input_focus(domains: &[&'static Domain]) {
    let current = INPUT_FOCUS.load(Ordering::Acquire);
    for step in 1..=domains.len() {
        let next = (current + step) % domains.len();
        let d = domains[next];
        if d.state() != DomainState::Off && d.console.is_some() {
            INPUT_FOCUS.store(next, Ordering::Release);
            info!("console input now goes to d{} ({})", d.id, d.name);
            return;
        }
    }
    info!("console input: no running domain has a console");
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
