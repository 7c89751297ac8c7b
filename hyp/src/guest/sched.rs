//! The scheduler: which vCPU each physical CPU runs.
//!
//! Every vCPU has a **home** CPU, chosen when its domain is built (the least-loaded CPU the
//! domain may use) and never changed, and sits in that CPU's run queue. Only the home CPU
//! changes a vCPU's [`RunState`] or touches its saved state; other CPUs only record
//! events (an interrupt made pending in the vGIC, a PSCI start) and ask the home CPU to
//! look again ([`request`], with a kick SGI when the home CPU is another one).
//!
//! The policy is round robin over the vCPUs of a queue that can run:
//! - a **Ready** vCPU (preempted, or it yielded with WFE) can always run;
//! - a **Blocked** vCPU (WFI with nothing pending while its CPU is shared) can run once an
//!   interrupt is pending for it in the vGIC, once one of its timers is due (its saved
//!   `CNTV`/`CNTP` registers say when), or once a time slice has passed (WFI may end for
//!   no reason; a guest polling a flag with WFI still progresses);
//! - an **Off** vCPU can run when its domain's PSCI state holds a start for it.
//!
//! A running vCPU keeps its CPU for a time slice ([`SLICE_PER_SECOND`]) when something
//! else could run there, measured with the hypervisor's EL2 physical timer: its interrupt
//! makes the guest exit whatever the guest masks, so a vCPU spinning with interrupts
//! masked is still preempted. A request from a kick (an interrupt for a vCPU of the queue
//! that is not running) preempts the running vCPU too, but never before it has run
//! [`MIN_RUN_PER_SECOND`], so a domain flooding another vCPU of the same CPU with SGIs
//! cannot take the CPU away from everyone else in tiny slices. A vCPU alone on its CPU
//! runs without any time slice, and its WFI sleeps in place (`timers::sleep_until`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;

use super::{DomainState, Vcpu};
use crate::arch;
use crate::percpu::MAX_CPUS;

/// A time slice is a second divided by this: 4 ms.
pub const SLICE_PER_SECOND: u64 = 250;
/// A running vCPU is not preempted by a kick before it has run a second divided by this
/// (0.5 ms) of its slice.
pub const MIN_RUN_PER_SECOND: u64 = 2000;

/// Where a vCPU is, as far as scheduling goes. Changed only by its home CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Not started (or stopped): it has no guest context.
    Off = 0,
    /// Has a context and can run; waits for its CPU.
    Ready = 1,
    /// Loaded on its home CPU.
    Running = 2,
    /// Has a context, waits in WFI for an interrupt, a timer or the end of a slice.
    Blocked = 3,
}

impl RunState {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => RunState::Ready,
            2 => RunState::Running,
            3 => RunState::Blocked,
            _ => RunState::Off,
        }
    }
}

/// A vCPU's scheduling fields (part of `Vcpu`).
pub struct Sched {
    /// The CPU whose queue holds it; fixed.
    pub home: usize,
    state: AtomicU8,
    /// While Blocked: the physical count at which it can run anyway.
    wake_at: AtomicU64,
}

impl Sched {
    /// A vCPU that lives on CPU `home`, Off.
    pub const fn new(home: usize) -> Self {
        Sched {
            home,
            state: AtomicU8::new(RunState::Off as u8),
            wake_at: AtomicU64::new(0),
        }
    }

    /// Its state now (from any CPU; only the home CPU's view is exact).
    pub fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Release);
    }
}

/// One CPU's run queue: the vCPUs whose home it is, and where round robin goes on.
struct Queue {
    vcpus: Vec<Arc<Vcpu>>,
    cursor: usize,
}

static QUEUES: [Mutex<Queue>; MAX_CPUS] = [const {
    Mutex::new(Queue {
        vcpus: Vec::new(),
        cursor: 0,
    })
}; MAX_CPUS];
/// Length of each queue, readable without its lock.
static QUEUE_LEN: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// The vCPU loaded on each CPU, if any.
static CURRENT: [AtomicPtr<Vcpu>; MAX_CPUS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];
/// Set when the CPU should look at its queue again at the next exit.
static RESCHED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// When the running vCPU's slice began.
static SLICE_START: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Puts `vcpu` in its home CPU's queue (when its domain is created).
pub fn enqueue(vcpu: Arc<Vcpu>) {
    let home = vcpu.sched.home;
    let mut queue = QUEUES[home].lock();
    queue.vcpus.push(vcpu);
    QUEUE_LEN[home].store(queue.vcpus.len(), Ordering::Release);
}

/// How many vCPUs live on CPU `cpu`.
pub fn queue_len(cpu: usize) -> usize {
    QUEUE_LEN[cpu].load(Ordering::Acquire)
}

/// Whether CPU `cpu` is home to more than one vCPU.
pub fn shared(cpu: usize) -> bool {
    queue_len(cpu) > 1
}

/// Runs `f` on the vCPU loaded on CPU `cpu`, which must be the calling CPU (an interrupt
/// handler asking which vCPU it interrupted).
pub fn with_current<R>(cpu: usize, f: impl FnOnce(&Vcpu) -> R) -> Option<R> {
    let vcpu = CURRENT[cpu].load(Ordering::Acquire);
    // SAFETY: CURRENT[cpu] is set by this CPU's run loop while it holds an `Arc` of the
    // vCPU, and cleared (`leave`) before that `Arc` is dropped; the caller runs on CPU
    // `cpu`, so the loop is suspended in between and the vCPU lives.
    unsafe { vcpu.as_ref() }.map(f)
}

/// Whether `vcpu` is the one loaded on its home CPU.
pub fn is_current(vcpu: &Vcpu) -> bool {
    ptr::eq(CURRENT[vcpu.sched.home].load(Ordering::Acquire), vcpu)
}

/// Asks CPU `cpu` to look at its queue again at its next exit (the caller kicks it if it
/// is another CPU).
pub fn request(cpu: usize) {
    RESCHED[cpu].store(true, Ordering::Release);
}

/// Whether CPU `cpu` was asked to look at its queue again. The run loop's per-exit check.
#[inline]
pub fn requested(cpu: usize) -> bool {
    RESCHED[cpu].load(Ordering::Relaxed)
}

/// The EL2 timer fired on this CPU: a slice ended or a blocked vCPU may run.
pub fn on_el2_timer(cpu: usize) {
    if shared(cpu) {
        request(cpu);
    }
}

/// What the CPU runs next.
pub enum Next {
    /// A vCPU with no context, from its reset state at `entry` with `x0`.
    Start {
        /// The vCPU.
        vcpu: Arc<Vcpu>,
        /// Entry point (IPA).
        entry: u64,
        /// Its `x0`.
        x0: u64,
    },
    /// A vCPU with a saved context.
    Resume(Arc<Vcpu>),
}

impl Next {
    /// The vCPU.
    pub fn vcpu(&self) -> &Arc<Vcpu> {
        match self {
            Next::Start { vcpu, .. } | Next::Resume(vcpu) => vcpu,
        }
    }
}

/// Chooses what CPU `cpu` runs next, round robin from after the last choice, or `None`
/// when nothing of its queue can run. A Ready or Blocked vCPU whose domain left
/// `Running` (powered off or reset) has its context dropped (`discard`) and counts as
/// Off; an Off vCPU of such a domain leaves the queue, and when it was its domain's last
/// queued vCPU the domain is retired (`registry::retire`).
pub fn pick(cpu: usize, discard: impl Fn(&Vcpu)) -> Option<Next> {
    RESCHED[cpu].store(false, Ordering::Relaxed);
    let now = arch::counter();
    let mut retired = Vec::new();
    let mut queue = QUEUES[cpu].lock();
    let mut chosen = None;
    let mut index = queue.cursor;
    let mut looked = 0;
    while looked < queue.vcpus.len() && chosen.is_none() {
        let len = queue.vcpus.len();
        index %= len;
        let vcpu = queue.vcpus[index].clone();
        looked += 1;
        let state = vcpu.sched.state();
        if matches!(state, RunState::Ready | RunState::Blocked) && stale(&vcpu) {
            discard(&vcpu);
            vcpu.sched.set(RunState::Off);
        }
        chosen = match vcpu.sched.state() {
            RunState::Running => None,
            RunState::Ready => Some(Next::Resume(vcpu.clone())),
            RunState::Blocked => {
                let wake = now >= vcpu.sched.wake_at.load(Ordering::Relaxed)
                    || vcpu.domain.vgic.lock().has_pending(vcpu.index);
                wake.then(|| Next::Resume(vcpu.clone()))
            }
            RunState::Off if stale(&vcpu) => {
                // Its domain will not start it again: out of the queue.
                queue.vcpus.remove(index);
                QUEUE_LEN[cpu].store(queue.vcpus.len(), Ordering::Release);
                if vcpu.domain.queued.fetch_sub(1, Ordering::AcqRel) == 1 {
                    retired.push(vcpu.domain.clone());
                }
                continue;
            }
            RunState::Off => take_start(&vcpu),
        };
        if chosen.is_some() {
            queue.cursor = index + 1;
        }
        index += 1;
    }
    drop(queue);
    // Outside the queue's lock: retiring frees memory and may build a successor.
    for domain in retired {
        super::registry::retire(domain);
    }
    chosen
}

/// Whether `vcpu`'s domain left `Running` (powered off or being reset): its context, if
/// any, is dropped, and it will not start again.
fn stale(vcpu: &Vcpu) -> bool {
    vcpu.domain.state() != DomainState::Running
}

/// Claims a pending start of `vcpu`, under the PSCI lock and only while its domain runs:
/// a reset or power-off leaves Running first and then cancels pending starts under the
/// same lock, so a vCPU either is seen by it or does not start.
fn take_start(vcpu: &Arc<Vcpu>) -> Option<Next> {
    let mut psci = vcpu.domain.psci.lock();
    if vcpu.domain.state() != DomainState::Running {
        return None;
    }
    let (entry, x0) = psci.take_start(vcpu.index)?;
    Some(Next::Start {
        vcpu: vcpu.clone(),
        entry,
        x0,
    })
}

/// Whether `vcpu` (Off) has a start waiting in its domain's PSCI state.
fn start_pending(vcpu: &Vcpu) -> bool {
    vcpu.domain.psci.lock().state(vcpu.index) == Some(exits::PowerState::OnPending)
}

/// `vcpu` is now loaded on CPU `cpu`: its slice starts, and the EL2 timer is set for the
/// end of the slice or the first blocked vCPU's wake-up.
pub fn running(cpu: usize, vcpu: &Vcpu) {
    vcpu.sched.set(RunState::Running);
    CURRENT[cpu].store(ptr::from_ref(vcpu).cast_mut(), Ordering::Release);
    SLICE_START[cpu].store(arch::counter(), Ordering::Relaxed);
    rearm(cpu);
}

/// `vcpu` leaves CPU `cpu` in `state` (Ready, Blocked or Off). A Blocked vCPU can run
/// again at `wake_at` at the latest.
pub fn leave(cpu: usize, vcpu: &Vcpu, state: RunState, wake_at: u64) {
    debug_assert!(state != RunState::Running);
    vcpu.sched.wake_at.store(wake_at, Ordering::Relaxed);
    vcpu.sched.set(state);
    CURRENT[cpu].store(ptr::null_mut(), Ordering::Release);
}

/// The end of a blocked vCPU's wait if nothing wakes it earlier: one slice from `now`.
pub fn block_limit(now: u64) -> u64 {
    now + arch::counter_frequency() / SLICE_PER_SECOND
}

/// Sets this CPU's EL2 timer for its next event: the loaded vCPU's emulated physical
/// timer, the end of the running vCPU's slice if another vCPU can run, the earliest
/// wake-up of a Blocked one; stops it when there is none. Called on this CPU only.
pub fn rearm(cpu: usize) {
    let earliest = |a: Option<u64>, b: u64| Some(a.map_or(b, |a| a.min(b)));
    // The loaded vCPU's emulated physical timer.
    let mut next: Option<u64> = with_current(cpu, super::timers::physical_deadline).flatten();
    let running = !CURRENT[cpu].load(Ordering::Relaxed).is_null();
    // Alone and loaded: only its physical timer. (Not loaded, the one vCPU of the queue
    // may be Blocked, waiting for its wake-up: scan.)
    if !shared(cpu) && running {
        match next {
            Some(deadline) => arch::arm_el2_timer(deadline),
            None => arch::stop_el2_timer(),
        }
        return;
    }
    let slice_end =
        SLICE_START[cpu].load(Ordering::Relaxed) + arch::counter_frequency() / SLICE_PER_SECOND;
    for vcpu in QUEUES[cpu].lock().vcpus.iter() {
        match vcpu.sched.state() {
            RunState::Ready if running => next = earliest(next, slice_end),
            // Not running: a Ready vCPU would have been picked; look again at once.
            RunState::Ready => next = earliest(next, arch::counter()),
            RunState::Blocked => next = earliest(next, vcpu.sched.wake_at.load(Ordering::Relaxed)),
            // Off with a start waiting (a domain's boot, a CPU_ON): as good as Ready.
            RunState::Off if start_pending(vcpu) => {
                next = earliest(next, if running { slice_end } else { arch::counter() });
            }
            RunState::Off | RunState::Running => {}
        }
    }
    match next {
        Some(deadline) => arch::arm_el2_timer(deadline),
        None => arch::stop_el2_timer(),
    }
}

/// A request was seen at an exit of `vcpu` on CPU `cpu`: whether it should give the CPU
/// up now. Not before it has run its minimum; then a timer brings the question back.
pub fn should_preempt(cpu: usize, _vcpu: &Vcpu) -> bool {
    RESCHED[cpu].store(false, Ordering::Relaxed);
    let min_run_end =
        SLICE_START[cpu].load(Ordering::Relaxed) + arch::counter_frequency() / MIN_RUN_PER_SECOND;
    if arch::counter() < min_run_end {
        arch::arm_el2_timer(min_run_end);
        return false;
    }
    true
}
