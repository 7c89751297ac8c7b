//! The domains that exist, created and destroyed at run time.
//!
//! A domain is created from a [`DomainSpec`] and the images it boots ([`create`]): its RAM,
//! stage-2 tables and VMID are allocated, its vCPUs placed on CPUs (the least-loaded CPU of
//! its `cpus`) and put in those CPUs' run queues. The registry holds one `Arc` of it, its
//! vCPUs hold others (and their run queues hold the vCPUs).
//!
//! A domain powered off or reset leaves `Running`: its vCPUs stop, each on its own CPU, and
//! leave their run queues (`sched`). When the last one has left, that CPU **retires** the
//! domain ([`retire`]): its RAM, stage-2 tables and VMID go back to the allocators at once
//! (so a successor can use them), the registry drops it, and the vCPUs' references go with
//! it. A reset domain is then created anew from the same configuration, keeping its number
//! and name and counting the reset; a domain powered off is gone.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use loader::{DomainSpec, GicVersion};
use log::{error, info, warn};
use spin::Mutex;
use stage2::{Stage2Config, Vmid, VmidAllocator};

use super::domain::{BuildError, Domain, DomainState, Images};
use super::{Vcpu, sched};
use crate::percpu::MAX_CPUS;

/// What every domain is built with, fixed when the first one is.
#[derive(Clone)]
pub struct Host {
    /// The guests' GIC version (the host's).
    pub gic: GicVersion,
    /// Stage-2 configuration (IPA size, VMID width).
    pub s2_config: Stage2Config,
    /// The CPUs that are online.
    pub online: Vec<usize>,
    /// The host's device tree (domains' `devices` are looked up in it).
    pub dtb: &'static [u8],
    /// What of the host no domain may have.
    pub reserved: super::passthrough::Reserved,
    /// What a privileged domain (dom0) is built with; `None` when the host's console or
    /// GIC cannot be described to it.
    pub dom0: Option<Dom0Host>,
}

/// The host's layout as dom0 sees it (its device tree is derived from the host's).
#[derive(Clone)]
pub struct Dom0Host {
    /// Its emulated console at the host console's address and interrupt, its vGIC at the
    /// host GIC's addresses; the RAM base is set per build (1:1).
    pub layout: super::domain::Layout,
    /// The host console's node, which becomes dom0's (emulated) console.
    pub console_path: &'static str,
}

static HOST: spin::Once<Host> = spin::Once::new();
/// Every domain not yet retired, in creation order.
static DOMAINS: Mutex<Vec<Arc<Domain>>> = Mutex::new(Vec::new());
/// VMIDs in use.
static VMIDS: Mutex<Option<VmidAllocator>> = Mutex::new(None);

/// Records what domains are built with; once, before the first [`create`].
pub fn init(host: Host) {
    let width = host.s2_config.vmid_width();
    HOST.call_once(|| host);
    *VMIDS.lock() = Some(VmidAllocator::new(width));
}

/// Every domain not yet retired, in creation order.
pub fn all() -> Vec<Arc<Domain>> {
    DOMAINS.lock().clone()
}

/// The domain numbered `id`, if it exists.
pub fn get(id: usize) -> Option<Arc<Domain>> {
    DOMAINS.lock().iter().find(|d| d.id == id).cloned()
}

/// Why a domain was not created.
pub enum CreateError {
    /// Said already (the domain's CPUs are all offline, ...).
    Refused,
    /// No VMID is free.
    NoVmid,
    /// Building it failed.
    Build(BuildError),
}

impl core::fmt::Display for CreateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CreateError::Refused => write!(f, "refused"),
            CreateError::NoVmid => write!(f, "no VMID left"),
            CreateError::Build(e) => write!(f, "{e}"),
        }
    }
}

/// What a domain rebuilt after a reset keeps of its predecessor.
#[derive(Clone, Copy, Default)]
pub struct Carried {
    /// Resets so far (`HYP_DOMAIN_RESET_COUNT`).
    pub resets: u32,
    /// Its budget of guest-caused console lines: a guest resetting in a loop must not
    /// get a fresh one each time.
    pub reports: Option<exits::ratelimit::ReportBudget>,
}

/// Creates domain `id` from `spec` and `images`, with its vCPUs in their CPUs' run
/// queues, Off, keeping what `carried` holds. Nothing starts until its boot vCPU is given
/// a start ([`boot`]).
pub fn create(
    id: usize,
    spec: DomainSpec,
    images: Images,
    carried: Carried,
) -> Result<Arc<Domain>, CreateError> {
    let host = HOST
        .get()
        .expect("registry::init runs before any domain is created");
    let vcpus = spec.vcpus as usize;
    if host.gic == GicVersion::V2 && spec.vcpus > host.gic.max_vcpus() {
        error!(
            "d{id} ({}): {vcpus} vCPUs, but a GICv2 guest has at most {}; not started",
            spec.name,
            host.gic.max_vcpus()
        );
        return Err(CreateError::Refused);
    }
    let allowed = allowed_cpus(id, &spec, &host.online).ok_or(CreateError::Refused)?;
    let devices = if spec.privileged {
        // With a console, what its emulated block covers is answered for (the Pi's aux
        // clock gate); without, those nodes are the hypervisor's and are withheld.
        let emulated: &[(u64, u64)] = match &host.dom0 {
            Some(dom0) if spec.console => &[(dom0.layout.console.0, dom0.layout.console.1)],
            _ => &[],
        };
        // The host's devices are listed once, at dom0's first build: a dom0 rebuilt again
        // and again (reset on a board without PSCI) must not repeat the list each time.
        super::passthrough::all_for_dom0(
            id,
            &spec.name,
            host.dtb,
            &host.reserved,
            emulated,
            carried.resets == 0,
        )
    } else {
        let given =
            super::passthrough::resolve(id, &spec.name, &spec.devices, host.dtb, &host.reserved)
                .ok_or(CreateError::Refused)?;
        super::passthrough::Dom0Devices {
            given,
            withheld: Vec::new(),
        }
    };
    let vmid = alloc_vmid().ok_or(CreateError::NoVmid)?;
    let homes = place_vcpus(vcpus, &allowed);
    let built = Domain::build(id, spec, images, host, vmid, homes, devices);
    let domain = match built {
        Ok(d) => Arc::new(d),
        Err(e) => {
            free_vmid(vmid);
            return Err(CreateError::Build(e));
        }
    };
    domain.resets.store(carried.resets, Ordering::Release);
    if let Some(budget) = carried.reports {
        *domain.reports.lock() = budget;
    }
    let vcpu_list: Vec<Arc<Vcpu>> = domain
        .vcpu_homes
        .iter()
        .enumerate()
        .map(|(index, &home)| Arc::new(Vcpu::new(domain.clone(), index, home)))
        .collect();
    *domain.vcpus.write() = vcpu_list.clone();
    if !super::passthrough::attach(&domain) {
        // Dropping it gives back its memory; the VMID goes back here.
        domain.vcpus.write().clear();
        drop(vcpu_list);
        free_vmid(domain.vmid);
        return Err(CreateError::Refused);
    }
    domain.queued.store(vcpu_list.len(), Ordering::Release);
    DOMAINS.lock().push(domain.clone());
    for vcpu in vcpu_list {
        sched::enqueue(vcpu);
    }
    Ok(domain)
}

/// Gives `domain`'s boot vCPU its start (the kernel entry, the DTB address in `x0`).
pub fn boot(domain: &Domain) {
    domain
        .psci
        .lock()
        .boot(domain.placement.entry, domain.placement.dtb.start);
    if let Some(vcpu) = domain.vcpus.read().first() {
        vcpu.kick();
    }
}

/// The last vCPU of `domain` (no longer `Running`: reset or powered off) left its run
/// queue: its resources go back now, the registry forgets it, and a reset domain is
/// created anew and booted.
pub fn retire(domain: Arc<Domain>) {
    let restart = domain.state() == DomainState::Resetting;
    super::passthrough::detach(&domain);
    domain.release_resources();
    free_vmid(domain.vmid);
    // The vCPUs hold the domain and the domain its vCPUs: break the cycle.
    domain.vcpus.write().clear();
    DOMAINS.lock().retain(|d| !Arc::ptr_eq(d, &domain));
    if !restart {
        return;
    }
    let id = domain.id;
    let spec = domain.spec.clone();
    let images = domain.images();
    let carried = Carried {
        resets: domain.resets.load(Ordering::Acquire) + 1,
        reports: Some(*domain.reports.lock()),
    };
    drop(domain);
    match create(id, spec, images, carried) {
        Ok(successor) => {
            if super::may_report(&successor) {
                info!(
                    "d{id} ({}): rebuilt after its reset: {} MiB at {:#x}, VMID {}",
                    successor.name,
                    successor.spec.memory >> 20,
                    successor.ram_pa.as_u64(),
                    successor.vmid.as_u16()
                );
            }
            boot(&successor);
        }
        Err(e) => {
            warn!("d{id}: cannot be rebuilt after its reset ({e}); it stays off");
            super::domain_gone(1);
        }
    }
}

fn alloc_vmid() -> Option<Vmid> {
    VMIDS.lock().as_mut()?.alloc()
}

fn free_vmid(vmid: Vmid) {
    if let Some(vmids) = VMIDS.lock().as_mut() {
        let _ = vmids.free(vmid);
    }
}

/// The online CPUs domain `id` may run on: those of its `cpus` list that are online (all
/// online CPUs without a list), or `None`, said why, when there is none.
fn allowed_cpus(id: usize, spec: &DomainSpec, online: &[usize]) -> Option<Vec<usize>> {
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
/// vCPUs in its run queue (counting those placed here), the lowest number on a tie.
fn place_vcpus(vcpus: usize, allowed: &[usize]) -> Vec<usize> {
    let mut load = [0usize; MAX_CPUS];
    for &cpu in allowed {
        load[cpu] = sched::queue_len(cpu);
    }
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
