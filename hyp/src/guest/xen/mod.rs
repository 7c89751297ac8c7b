//! Xen's public Arm guest ABI, for the domains configured with `xen = true`
//! (`docs/xen-interface.md`): `HVC #0xEA1` with the call number in `x16`, arguments in
//! `x0..x4` and the result in `x0`; every other register is left as the guest had it.
//!
//! The ABI's numbers and layouts are `xen_abi`'s; event channels and grant tables are
//! `xenif`'s state machines; this module holds each domain's Xen state and answers the
//! calls. Pointer arguments are guest virtual addresses, reached through [`mem`]. Calls
//! reserved to the control domain (the privileged one, Xen's dom0) get `-EPERM` from
//! others; unknown calls and sub-operations `-ENOSYS`.
//!
//! Domain ids: Xen numbers domains from 0, the hypervisor from 1 (`d1` is the first
//! domain configured, dom0 when there is one), so Xen's id is the hypervisor's minus one.

mod console;
mod events;
mod grants;
mod mem;
mod memory;
mod misc;
mod sysctl;
mod vcpu;
mod version;

use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;

use spin::Mutex;
use xen_abi::{DomId, Errno, Hypercall};

use super::console::LineBuffer;
use super::{Action, Domain, Vcpu};
use crate::exception::TrapFrame;
use crate::mm::{PAGE_SIZE, frames};
use stage2::PhysAddr;

pub use console::console_input;
pub use events::Events;

/// Interrupt ID of the event-channel upcall: PPI 15, as Xen uses (`GUEST_EVTCHN_PPI`).
pub const EVTCHN_INTID: u32 = 31;

/// Highest event-channel port a domain may use (the 2-level ABI's limit).
const MAX_PORT: u32 = 4095;

/// Grant-table frames a domain may have (Xen's default `max_grant_frames` is 64).
pub const MAX_GRANT_FRAMES: u32 = 64;

/// HVM parameters a domain has (`HVM_NR_PARAMS` is 39 in Xen 4.17).
const NR_PARAMS: usize = 39;

/// Xen's id of the hypervisor's domain `id` (1-based).
pub const fn domid_of(id: usize) -> DomId {
    (id - 1) as DomId
}

/// One domain's Xen state.
pub struct XenState {
    /// Its Xen domain id.
    pub domid: DomId,
    /// The shared-info page: a zeroed frame of the hypervisor's, in the guest's IPA
    /// space where `XENMEM_add_to_physmap` puts it.
    shared_info: PhysAddr,
    /// Event channels and where their notifications go.
    pub events: Mutex<Events>,
    /// Grant table.
    grants: Mutex<grants::Grants>,
    /// The grants of other domains it maps (Xen's maptrack).
    maptrack: Mutex<grants::MapTrackState>,
    /// Where the Xen pages are in its IPA space (`XENMEM_add_to_physmap`).
    physmap: Mutex<memory::Physmap>,
    /// HVM parameters (`HVMOP_get_param` / `set_param`).
    params: Mutex<[u64; NR_PARAMS]>,
    /// The `CONSOLEIO_write` output, in lines (the control domain's `hvc0`).
    console_out: Mutex<LineBuffer>,
    /// Typed bytes for `CONSOLEIO_read`.
    console_in: Mutex<heapless::Deque<u8, 512>>,
    /// A domU's console ring (not the control domain's: it uses `console_io`).
    pub console_ring: Option<console::Ring>,
    /// `VMASST_TYPE_runstate_update_flag` is on.
    runstate_update_flag: AtomicBool,
    /// Guest regions the Xen pages may be mapped into besides its RAM: the `/hypervisor`
    /// node's `reg` (grant-table region and extended regions).
    regions: Vec<(u64, u64)>,
}

impl XenState {
    /// The Xen state of hypervisor domain `id` with `vcpus` vCPUs, privileged or not,
    /// whose `/hypervisor` node describes `regions`. `None` without memory for it.
    pub fn new(id: usize, vcpus: u32, privileged: bool, regions: Vec<(u64, u64)>) -> Option<Self> {
        let domid = domid_of(id);
        let mut events = Events::new(domid, vcpus, privileged)?;
        let mut params = [0; NR_PARAMS];
        let console_ring = match privileged {
            true => None,
            false => {
                let ring = console::Ring::new(events.alloc_backend_port()?)?;
                params[xen_abi::hvm::param::CONSOLE_PFN as usize] = console::RING_IPA / PAGE_SIZE;
                params[xen_abi::hvm::param::CONSOLE_EVTCHN as usize] = u64::from(ring.port);
                Some(ring)
            }
        };
        let shared_info = zeroed_frame()?;
        Some(XenState {
            domid,
            shared_info,
            events: Mutex::new(events),
            grants: Mutex::new(grants::Grants::new()),
            maptrack: Mutex::new(grants::MapTrackState::new()),
            physmap: Mutex::new(memory::Physmap::default()),
            params: Mutex::new(params),
            console_out: Mutex::new(LineBuffer::default()),
            console_in: Mutex::new(heapless::Deque::new()),
            console_ring,
            runstate_update_flag: AtomicBool::new(false),
            regions,
        })
    }

    /// The shared-info page.
    fn shared(&self) -> &xen_abi::SharedInfo {
        // SAFETY: `shared_info` is a frame this state owns for its whole life (given back
        // only when it is dropped), identity-mapped, zero-initialised (a valid
        // `SharedInfo`: all atomics); the guest changes it concurrently, which atomics
        // allow. `SharedInfo` (1088 bytes) fits the page and needs 8-byte alignment.
        unsafe { &*(self.shared_info.as_u64() as *const xen_abi::SharedInfo) }
    }

    /// Whether host physical `pa` is one of the pages this state gave the guest.
    pub fn owns_page(&self, pa: u64) -> bool {
        let page = pa & !(PAGE_SIZE - 1);
        page == self.shared_info.as_u64()
            || self
                .console_ring
                .as_ref()
                .is_some_and(|r| r.frame.as_u64() == page)
            || self.grants.lock().owns_page(page)
    }

    /// The guest frame grant-table frame `index` is mapped at, if it is.
    pub fn grant_frame_gfn(&self, index: u32) -> Option<u64> {
        self.physmap
            .lock()
            .grant_frame_ipa(index)
            .map(|ipa| ipa / PAGE_SIZE)
    }

    /// The guest frame the shared-info page is mapped at, 0 if it is not.
    pub fn shared_info_gfn(&self) -> u64 {
        self.physmap
            .lock()
            .shared_info_ipa()
            .map_or(0, |ipa| ipa / PAGE_SIZE)
    }

    /// Maps the pages the domain has from the start (its console ring) into its stage 2.
    pub fn map_initial_pages(&self, domain: &Domain) -> Result<(), Errno> {
        if let Some(ring) = &self.console_ring {
            memory::map_page(domain, console::RING_IPA, ring.frame)?;
        }
        Ok(())
    }

    /// Gives back its frames. Called when the domain's resources go, after its stage-2
    /// tables (which map them) are destroyed.
    pub fn release(&self) {
        // Every port closes, as on Xen: the peers' ends go back to unbound, so nothing
        // reaches a later domain with the same id through them.
        let fixes = {
            let mut events = self.events.lock();
            events.kill();
            events.close_all()
        };
        events::fix_peers(fixes);
        self.grants.lock().release();
        // Its stage 2, where other domains' pages were mapped, is gone: let them go.
        self.maptrack.lock().release_all();
        self.physmap.lock().release_foreign();
    }

    /// Prints what is left of the `hvc0` line.
    pub fn flush_console(&self, name: &str) {
        self.console_out.lock().flush_partial(name);
    }
}

impl Drop for XenState {
    fn drop(&mut self) {
        // SAFETY: the frame was allocated for this state alone; it is dropped with its
        // domain, after the domain's stage-2 tables (the only mapping of it for the guest)
        // are gone, and the borrows `shared()` gives end with `&self`. (The console ring
        // frees its own frame.)
        unsafe { frames::free(self.shared_info, 1) };
    }
}

/// A fresh frame of the hypervisor's, zeroed: a page it gives a guest (the shared-info
/// page, a grant frame, a console ring), whose all-zero contents are a valid empty state.
fn zeroed_frame() -> Option<PhysAddr> {
    let frame = frames::alloc(1)?;
    // SAFETY: a fresh frame of the hypervisor's, identity-mapped read-write, reachable by
    // no one else yet.
    unsafe { core::ptr::write_bytes(frame.as_u64() as *mut u8, 0, PAGE_SIZE as usize) };
    Some(frame)
}

/// What a call handler tells the dispatcher.
enum Outcome {
    /// Return this to the guest in `x0`.
    Return(Result<u64, Errno>),
    /// Return 0, then act as the run loop says (yield, block, stop).
    Then(Action),
    /// Leave the registers alone and make the guest issue the same call again once the
    /// run loop has done this (a call that waits: it is re-examined at each wake-up).
    Again(Action),
}

impl From<Result<u64, Errno>> for Outcome {
    fn from(result: Result<u64, Errno>) -> Self {
        Outcome::Return(result)
    }
}

/// A hypercall of `vcpu` (`HVC #0xEA1`): decodes it, answers it in `x0`, says what the
/// run loop does next.
pub fn hypercall(vcpu: &Vcpu, frame: &mut TrapFrame) -> Action {
    let domain = &*vcpu.domain;
    let Some(xen) = &domain.xen else {
        frame.x[0] = Errno::ENOSYS.as_ret();
        return Action::Resume;
    };
    let args = [frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]];
    let call = Hypercall::from_number(frame.x[16]);
    let outcome = match call {
        Some(Hypercall::XenVersion) => version::call(domain, xen, args).into(),
        Some(Hypercall::ConsoleIo) => console::call(domain, xen, args).into(),
        Some(Hypercall::MemoryOp) => memory::call(domain, xen, args).into(),
        Some(Hypercall::GrantTableOp) => grants::call(domain, xen, args).into(),
        Some(Hypercall::EventChannelOp) => events::call(vcpu, xen, args).into(),
        Some(Hypercall::VcpuOp) => vcpu::call(vcpu, xen, args).into(),
        Some(Hypercall::SchedOp) => misc::sched_op(vcpu, args),
        Some(Hypercall::HvmOp) => misc::hvm_op(domain, xen, args).into(),
        Some(Hypercall::VmAssist) => misc::vm_assist(xen, args).into(),
        Some(Hypercall::Sysctl) => sysctl::call(domain, xen, args).into(),
        Some(
            Hypercall::PlatformOp | Hypercall::Multicall | Hypercall::PhysdevOp | Hypercall::Domctl,
        )
        | None => Outcome::Return(Err(Errno::ENOSYS)),
    };
    match outcome {
        Outcome::Return(result) => {
            if let Err(e) = result
                && log::log_enabled!(log::Level::Debug)
                && super::may_report(domain)
            {
                log::debug!(
                    "d{}v{}: Xen hypercall {} ({:#x}, {:#x}, ...): -{e:?}",
                    domain.id,
                    vcpu.index,
                    frame.x[16],
                    args[0],
                    args[1]
                );
            }
            frame.x[0] = match result {
                Ok(value) => value,
                Err(e) => e.as_ret(),
            };
            Action::Resume
        }
        Outcome::Then(action) => {
            frame.x[0] = 0;
            action
        }
        Outcome::Again(action) => {
            // The HVC is issued again when the vCPU next runs, with its arguments intact.
            frame.elr = frame.elr.wrapping_sub(4);
            action
        }
    }
}

/// `-EPERM` unless `domain` is the control domain.
fn privileged(domain: &Domain) -> Result<(), Errno> {
    if domain.spec.privileged {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The domain a call names by Xen id (`DOMID_SELF` is the caller): the caller itself, or
/// (for the control domain only) another Xen-aware domain.
fn target_domain(
    domain: &Domain,
    xen: &XenState,
    id: DomId,
) -> Result<alloc::sync::Arc<Domain>, Errno> {
    let id = xen_abi::domid::resolve(id, xen.domid);
    if id == xen.domid {
        return super::registry::get(domain.id).ok_or(Errno::ESRCH);
    }
    privileged(domain)?;
    super::registry::get(usize::from(id) + 1)
        .filter(|d| d.xen.is_some())
        .ok_or(Errno::ESRCH)
}

/// Xen's system time: nanoseconds of the counter since it started.
fn system_time_ns() -> u64 {
    let ticks = u128::from(crate::arch::counter());
    let freq = u128::from(crate::arch::counter_frequency().max(1));
    (ticks * 1_000_000_000 / freq) as u64
}
