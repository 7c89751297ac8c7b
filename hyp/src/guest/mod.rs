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
mod scrub;
mod switch_state;
mod sysreg;
mod timers;
mod trap;
mod vcpuif;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

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

/// A vCPU as its physical CPU holds it.
pub struct Vcpu {
    /// Its domain.
    pub domain: &'static Domain,
    /// Index within the domain.
    pub index: usize,
    /// Whether it is running (or being handled) on its physical CPU.
    running: AtomicBool,
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
    /// Its list registers hold interrupts (on this CPU).
    lrs_live: AtomicBool,
    /// Saved state, touched only by the physical CPU the vCPU is pinned to.
    saved: UnsafeCell<SavedState>,
}

/// Guest state kept while a vCPU is not loaded on its CPU.
struct SavedState {
    frame: TrapFrame,
    el1: El1State,
    fp: FpState,
}

// SAFETY: `saved` is only accessed by the one physical CPU the vCPU is pinned to (see
// `saved_mut`); the other fields are atomics or locks.
unsafe impl Sync for Vcpu {}

impl Vcpu {
    /// The saved state.
    ///
    /// # Safety
    /// Only on the physical CPU this vCPU is pinned to, with no other reference live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn saved_mut(&self) -> &mut SavedState {
        // SAFETY: the caller is the only CPU that touches `saved`.
        unsafe { &mut *self.saved.get() }
    }

    /// Makes the vCPU's physical CPU look at it again: wakes it if it waits for work (a
    /// start was recorded in the domain's `PsciDomain`) or makes the running guest exit
    /// (an interrupt became pending for it), with the GIC driver's kick SGI.
    pub fn kick(&self) {
        kick_pcpu(self.domain.vcpu_pcpu[self.index]);
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
    let count = domain.vcpu_pcpu.len().min(64);
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
            kick_pcpu(domain.vcpu_pcpu[index]);
        }
    }
}

/// What the run loop does after an exit was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the guest again.
    Resume,
    /// Stop the vCPU (CPU_OFF, its domain powered off or reset): save its state and wait
    /// for the next start request.
    Stop,
}

/// The vCPU pinned to each physical CPU, if any.
static PINNED: [AtomicPtr<Vcpu>; MAX_CPUS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];

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

/// The vCPU pinned to this CPU.
fn pinned_here() -> Option<&'static Vcpu> {
    let vcpu = PINNED[percpu::current_index()].load(Ordering::Acquire);
    // SAFETY: pinned vCPUs are leaked boxes, never freed.
    unsafe { vcpu.as_ref() }
}

/// The vCPU `index` of `domain`.
pub fn vcpu_of(domain: &Domain, index: usize) -> Option<&'static Vcpu> {
    let pcpu = *domain.vcpu_pcpu.get(index)?;
    // SAFETY: as in `pinned_here`.
    unsafe { PINNED[pcpu].load(Ordering::Acquire).as_ref() }
}

/// Builds the domains the boot archive describes and starts each one's first vCPU.
/// Returns how many were started.
pub fn start_domains(platform: &Platform<'static>, online: &[usize]) -> usize {
    let online_cpus = online.len();
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
    let mut next_pcpu = 0;
    let mut started = 0;
    for (n, spec) in specs.into_iter().enumerate() {
        let id = n + 1;
        let vcpus = spec.vcpus as usize;
        if next_pcpu + vcpus > online_cpus {
            error!(
                "d{id} ({}): asks for {vcpus} vCPUs but only {} of {online_cpus} physical CPUs \
                 are free (vCPUs are pinned one per CPU); not started",
                spec.name,
                online_cpus - next_pcpu
            );
            continue;
        }
        if gic == loader::GicVersion::V2 && spec.vcpus > gic.max_vcpus() {
            error!(
                "d{id} ({}): {vcpus} vCPUs, but a GICv2 guest has at most {}; not started",
                spec.name,
                gic.max_vcpus()
            );
            continue;
        }
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
        let pcpus: Vec<usize> = online[next_pcpu..next_pcpu + vcpus].to_vec();
        let name = spec.name.clone();
        let built = images.and_then(|images| {
            Domain::build(id, spec, images, gic, s2_config, vmid, pcpus.clone())
        });
        let domain: &'static Domain = match built {
            Ok(d) => Box::leak(Box::new(d)),
            Err(e) => {
                error!("d{id} ({name}): cannot build: {e}");
                let _ = vmids.free(vmid);
                continue;
            }
        };
        for (index, &pcpu) in pcpus.iter().enumerate() {
            let vcpu = Box::leak(Box::new(Vcpu {
                domain,
                index,
                running: AtomicBool::new(false),
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
                }),
            }));
            PINNED[pcpu].store(vcpu, Ordering::Release);
        }
        next_pcpu += vcpus;
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

/// VMID width the CPU supports (ID_AA64MMFR1_EL1.VMIDBits).
fn vmid_width() -> VmidWidth {
    use aarch64_cpu::registers::{ID_AA64MMFR1_EL1, Readable};
    VmidWidth::from_vmidbits_field(((ID_AA64MMFR1_EL1.get() >> 4) & 0xf) as u8)
        .unwrap_or(VmidWidth::Bits8)
}

/// This CPU's loop: wait for the pinned vCPU to be started, then run it until it stops.
pub fn run_this_cpu() -> ! {
    loop {
        if let Some(vcpu) = pinned_here() {
            // Claim the start under the PSCI lock, and only while the domain runs: a reset
            // or power-off leaves Running first and then cancels pending starts under the
            // same lock, so a vCPU is either seen `running` by it or does not start.
            let mut psci = vcpu.domain.psci.lock();
            let start = if vcpu.domain.state() == DomainState::Running {
                psci.take_start(vcpu.index)
            } else {
                None
            };
            if let Some((entry, x0)) = start {
                vcpu.running.store(true, Ordering::Release);
                drop(psci);
                run_vcpu(vcpu, entry, x0);
                vcpu.running.store(false, Ordering::Release);
                continue;
            }
        }
        if crate::gic::ready_here() {
            // Sleeps until an interrupt (a kick, the EL2 timer, the console) and handles it.
            crate::gic::wait_for_interrupt();
        } else {
            aarch64_cpu::asm::wfe();
        }
    }
}

/// Starts `vcpu` in the architectural reset state at `entry` with `x0`, runs it until an
/// exit stops it, and saves its state.
fn run_vcpu(vcpu: &'static Vcpu, entry: u64, x0: u64) {
    // SAFETY: we are the CPU this vCPU is pinned to, and it is not running elsewhere;
    // nothing else takes a reference to its saved state while this one lives.
    let saved = unsafe { vcpu.saved_mut() };
    saved.frame = TrapFrame::zeroed();
    saved.frame.x[0] = x0;
    saved.frame.elr = entry;
    saved.frame.spsr = regs::SPSR_EL1H_MASKED;
    saved.el1 = El1State::reset();
    saved.fp = FpState::default();
    // Set/way trapping starts off; the OS lock is set, as after a cold reset.
    vcpu.tvm.store(false, Ordering::Relaxed);
    vcpu.os_lock.store(true, Ordering::Relaxed);
    let domain = vcpu.domain;
    // SAFETY: no guest runs on this CPU; the domain's stage 2 matches its VTCR; the
    // EL1 state is this vCPU's.
    unsafe {
        regs::load(
            domain.vttbr,
            domain.vtcr,
            exits::mpidr_of(vcpu.index) | (1 << 31),
            domain.cntvoff.load(Ordering::Acquire),
        );
        saved.el1.restore();
        // After `regs::load`, which enables SVE/SME at EL2 where present.
        scrub::clear_guest_state();
        vcpuif::reset(vcpu);
    }
    timers::reset(vcpu);
    timers::enable_here();
    saved.fp.restore();
    loop {
        vcpuif::before_entry(vcpu);
        // SAFETY: the frame is this vCPU's (16-byte aligned, `TrapFrame`), and this CPU's
        // EL2 controls, EL1 state and FP registers were loaded for it above.
        let kind = unsafe { guest_run(&mut saved.frame) };
        vcpuif::after_exit(vcpu);
        timers::after_exit(vcpu);
        match trap::handle(vcpu, &mut saved.frame, kind) {
            Action::Resume => {}
            Action::Stop => break,
        }
    }
    saved.el1.save();
    saved.fp.save();
    // Nothing of a stopped vCPU may fire on this CPU.
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
            (0..domain.vcpu_pcpu.len())
                .filter(|&i| i != caller.index)
                .filter_map(|i| vcpu_of(domain, i))
                .all(|v| !v.running.load(Ordering::Acquire))
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
