//! Xen's guest ABI (`HVC #0xEA1`, `docs/xen-interface.md`), for domains with `xen = true`:
//!
//! - `xen`: a well-behaved unprivileged domU with two vCPUs: the `/hypervisor` node,
//!   `xen_version`, the shared-info page and grant frames (`XENMEM_add_to_physmap`),
//!   `vcpu_info` registration, event channels (loopback, masking and `EVTCHNOP_unmask`,
//!   IPIs to the other vCPU, ports of the second bitmap word, close) with the upcall PPI
//!   taken through the GIC, grant-table sizing, grant mapping, unmapping and copying
//!   through a self-grant and ballooning ([`grant`]), HVM parameters, `sched_op`, and
//!   every register but `x0` (and the number in `x16`) coming back unchanged.
//! - `xen-hostile` ([`hostile`]): the same calls with wild pointers, sizes and ids, and a
//!   storm of bad calls.
//! - `xen-absent`: a domain *without* `xen = true`: no `/hypervisor` node, and `HVC #0xEA1`
//!   is an SMCCC call with a non-zero immediate (`NOT_SUPPORTED`, nothing else changes).
//!
//! One `PASS`/`FAIL` line per check. The structures are `xen_abi`'s: `#[repr(C)]` with
//! the arm64 layout, so the hypervisor reads and writes them in place.

pub mod grant;
mod hostile;

pub use hostile::run as run_hostile;

use core::arch::asm;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xen_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
    EvtchnClose, EvtchnOp, EvtchnSend, EvtchnStatus, EvtchnUnmask, stat,
};
use xen_abi::grant_table::{GnttabGetVersion, GnttabOp, GnttabQuerySize, GnttabSetVersion};
use xen_abi::hvm::{HvmOp, XenHvmParam, param};
use xen_abi::memory::{MapSpace, XenAddToPhysmap, XenMem};
use xen_abi::sched::{SchedOp, SchedPoll};
use xen_abi::vcpu::{
    RUNSTATE_UPDATE, VcpuOp, VcpuRegisterRunstateMemoryArea, VcpuRegisterVcpuInfo,
    VcpuRunstateInfo, runstate,
};
use xen_abi::version::{XenFeatureInfo, XenVer, feat};
use xen_abi::{DomId, Errno, Hypercall, SharedInfo, VcpuInfo, domid, virq, vmassist};

use crate::dt::{Gic, MAX_CPUS};
use crate::exception::{Fault, capture};
use crate::gic::{self, Ack};
use crate::smccc::psci::{CPU_OFF, CPU_ON, SUCCESS};
use crate::{Ctx, irq, power, smp, time};

/// The upcall PPI's interrupt ID (PPI 15).
pub const EVTCHN_INTID: u32 = xen_abi::arch::GUEST_EVTCHN_PPI;
/// The grant-table region of a domU (`/hypervisor` `reg`).
pub const GNTTAB_BASE: u64 = xen_abi::arch::GUEST_GNTTAB_BASE;
/// An IPA with neither RAM, a device nor a Xen region behind it.
pub const HOLE: u64 = 0x1000_0000;
/// How long an interrupt that is due may take.
const DUE_MS: u64 = 500;
/// How long "no interrupt" is watched for.
const QUIET_MS: u64 = 20;
/// Extra ports allocated to reach the second bitmap word.
const MANY_PORTS: usize = 70;

/// What a hypercall gave back: `x0`, or the exception the `HVC` raised instead.
#[derive(Clone, Copy, Debug)]
pub struct Ret {
    pub x0: u64,
    pub fault: Option<Fault>,
}

impl Ret {
    /// Whether it returned `want` (a value, or `-errno`).
    pub fn is(&self, want: Result<u64, Errno>) -> bool {
        self.fault.is_none()
            && match want {
                Ok(value) => self.x0 == value,
                Err(e) => self.x0 == e.as_ret(),
            }
    }

    pub fn ok(&self) -> bool {
        self.is(Ok(0))
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.fault, Errno::from_ret(self.x0)) {
            (Some(fault), _) => write!(f, "no return: {fault}"),
            (None, Some(e)) => write!(f, "returned -{} ({e:?})", e as u32),
            (None, None) => write!(f, "returned {:#x}", self.x0),
        }
    }
}

/// How an expected result prints.
pub struct Want(pub Result<u64, Errno>);

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "{v}"),
            Err(e) => write!(f, "-{} ({e:?})", e as u32),
        }
    }
}

/// `HVC #0xEA1` with the number `nr` in `x16` and `args` in `x0..x4`. The argument
/// registers and `x16` are declared clobbered (the ABI lets a call change those it uses);
/// every other register is promised unchanged, which [`check_preserved`] checks.
pub fn hypercall(nr: u64, args: [u64; 5]) -> Ret {
    let (x0, fault) = capture(|| {
        let mut x0 = args[0];
        // SAFETY: a Xen hypercall: the hypervisor reads and writes only the guest memory
        // the pointer arguments name (buffers of ours that the caller passed, or
        // addresses where no Rust object lives), and changes at most x0-x4 and x16,
        // all declared. An exception instead (there should be none) is skipped by
        // `capture`.
        unsafe {
            asm!(
                "hvc #0xea1",
                inout("x0") x0,
                inout("x1") args[1] => _,
                inout("x2") args[2] => _,
                inout("x3") args[3] => _,
                inout("x4") args[4] => _,
                inout("x16") nr => _,
                options(nostack),
            )
        };
        x0
    });
    Ret { x0, fault }
}

/// `nr(cmd, arg)` with `arg` pointing at `value`, which the hypervisor may update.
pub fn call_with<T>(nr: Hypercall, cmd: u64, value: &mut T) -> Ret {
    hypercall(
        u64::from(nr.raw()),
        [cmd, core::ptr::from_mut(value) as u64, 0, 0, 0],
    )
}

pub fn evtchn<T>(op: EvtchnOp, value: &mut T) -> Ret {
    call_with(Hypercall::EventChannelOp, u64::from(op.raw()), value)
}

pub fn version(cmd: XenVer, arg: u64) -> Ret {
    hypercall(
        u64::from(Hypercall::XenVersion.raw()),
        [u64::from(cmd.raw()), arg, 0, 0, 0],
    )
}

pub fn grant_op<T>(op: GnttabOp, value: &mut T, count: u64) -> Ret {
    hypercall(
        u64::from(Hypercall::GrantTableOp.raw()),
        [
            u64::from(op.raw()),
            core::ptr::from_mut(value) as u64,
            count,
            0,
            0,
        ],
    )
}

pub fn vcpu_op<T>(op: VcpuOp, vcpu: u64, value: &mut T) -> Ret {
    hypercall(
        u64::from(Hypercall::VcpuOp.raw()),
        [
            u64::from(op.raw()),
            vcpu,
            core::ptr::from_mut(value) as u64,
            0,
            0,
        ],
    )
}

pub fn add_to_physmap(space: MapSpace, idx: u64, gpfn: u64) -> Ret {
    let mut req = XenAddToPhysmap {
        domid: domid::SELF,
        size: 0,
        space: space.raw(),
        idx,
        gpfn,
    };
    call_with(
        Hypercall::MemoryOp,
        u64::from(XenMem::AddToPhysmap.raw()),
        &mut req,
    )
}

pub fn alloc_unbound(dom: DomId, remote: DomId) -> (Ret, u32) {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom: remote,
        port: 0,
    };
    let ret = evtchn(EvtchnOp::AllocUnbound, &mut a);
    (ret, a.port)
}

pub fn bind_interdomain(remote: DomId, remote_port: u32) -> (Ret, u32) {
    let mut b = EvtchnBindInterdomain {
        remote_dom: remote,
        remote_port,
        local_port: 0,
    };
    let ret = evtchn(EvtchnOp::BindInterdomain, &mut b);
    (ret, b.local_port)
}

pub fn bind_ipi(vcpu: u32) -> (Ret, u32) {
    let mut b = EvtchnBindIpi { vcpu, port: 0 };
    let ret = evtchn(EvtchnOp::BindIpi, &mut b);
    (ret, b.port)
}

pub fn bind_virq(virq: u32, vcpu: u32) -> (Ret, u32) {
    let mut b = EvtchnBindVirq {
        virq,
        vcpu,
        port: 0,
    };
    let ret = evtchn(EvtchnOp::BindVirq, &mut b);
    (ret, b.port)
}

pub fn send(port: u32) -> Ret {
    evtchn(EvtchnOp::Send, &mut EvtchnSend { port })
}

pub fn close(port: u32) -> Ret {
    evtchn(EvtchnOp::Close, &mut EvtchnClose { port })
}

pub fn unmask(port: u32) -> Ret {
    evtchn(EvtchnOp::Unmask, &mut EvtchnUnmask { port })
}

pub fn bind_vcpu(port: u32, vcpu: u32) -> Ret {
    evtchn(EvtchnOp::BindVcpu, &mut EvtchnBindVcpu { port, vcpu })
}

pub fn status(dom: DomId, port: u32) -> (Ret, EvtchnStatus) {
    let mut s = EvtchnStatus {
        dom,
        port,
        ..Default::default()
    };
    let ret = evtchn(EvtchnOp::Status, &mut s);
    (ret, s)
}

pub fn hvm_param(op: HvmOp, dom: DomId, index: u32, value: u64) -> (Ret, u64) {
    let mut p = XenHvmParam {
        domid: dom,
        pad: 0,
        index,
        value,
    };
    let ret = call_with(Hypercall::HvmOp, u64::from(op.raw()), &mut p);
    (ret, p.value)
}

pub fn sched_op(op: SchedOp, arg: u64) -> Ret {
    hypercall(
        u64::from(Hypercall::SchedOp.raw()),
        [u64::from(op.raw()), arg, 0, 0, 0],
    )
}

/// A page-aligned page of the image, which the hypervisor may map something over.
#[repr(C, align(4096))]
pub struct Page(UnsafeCell<[u8; 4096]>);

// SAFETY: the pages are only ever reached through raw pointers and atomics (the
// hypervisor and other vCPUs change them concurrently); no reference to their bytes is
// kept.
unsafe impl Sync for Page {}

impl Page {
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; 4096]))
    }

    pub fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    /// Fills the page with `byte` (volatile: the hypervisor reads it behind the
    /// compiler's back).
    pub fn fill(&self, byte: u8) {
        for i in 0..4096 {
            // SAFETY: in bounds of the page, which no Rust reference covers.
            unsafe { core::ptr::write_volatile((self.addr() + i) as *mut u8, byte) };
        }
    }

    /// Fills `len` bytes at `offset` with `byte`.
    pub fn fill_range(&self, offset: u64, len: u64, byte: u8) {
        for i in offset..offset + len {
            // SAFETY: the callers stay within the page, which no Rust reference covers.
            unsafe { core::ptr::write_volatile((self.addr() + i) as *mut u8, byte) };
        }
    }

    /// Whether the `len` bytes at `offset` all hold `byte`.
    pub fn holds(&self, offset: u64, len: u64, byte: u8) -> bool {
        (offset..offset + len).all(|i| {
            // SAFETY: the callers stay within the page; a volatile read of its bytes.
            unsafe { core::ptr::read_volatile((self.addr() + i) as *const u8) == byte }
        })
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// The RAM page the shared-info page is mapped over.
static SHARED_PAGE: Page = Page::new();
/// The `vcpu_info`s: vCPU 0's at offset 0, vCPU 1's at [`VCPU1_OFFSET`]; a refused second
/// registration aims at [`SECOND_OFFSET`].
static VCPU_INFO_PAGE: Page = Page::new();
const VCPU1_OFFSET: u64 = 64;
const SECOND_OFFSET: u64 = 1024;
/// A runstate area.
static RUNSTATE_PAGE: Page = Page::new();

fn shared() -> &'static SharedInfo {
    // SAFETY: a page-aligned 4 KiB page of ours (a `SharedInfo` is 1088 bytes, 8-aligned)
    // that no Rust reference covers; every field of `SharedInfo` is an atomic, valid for
    // any bytes, and the hypervisor's concurrent updates are atomic too.
    unsafe { &*(SHARED_PAGE.addr() as *const SharedInfo) }
}

fn vcpu_info(cpu: usize) -> &'static VcpuInfo {
    let offset = if cpu == 0 { 0 } else { VCPU1_OFFSET };
    // SAFETY: as for `shared`: 48 bytes, 8-aligned, inside our page, all atomics.
    unsafe { &*((VCPU_INFO_PAGE.addr() + offset) as *const VcpuInfo) }
}

fn word_bit(port: u32) -> (usize, u64) {
    ((port / 64) as usize, 1 << (port % 64))
}

fn is_pending(port: u32) -> bool {
    let (w, b) = word_bit(port);
    shared().evtchn_pending[w].load(Ordering::SeqCst) & b != 0
}

fn is_masked(port: u32) -> bool {
    let (w, b) = word_bit(port);
    shared().evtchn_mask[w].load(Ordering::SeqCst) & b != 0
}

fn set_mask(port: u32, masked: bool) {
    let (w, b) = word_bit(port);
    if masked {
        shared().evtchn_mask[w].fetch_or(b, Ordering::SeqCst);
    } else {
        shared().evtchn_mask[w].fetch_and(!b, Ordering::SeqCst);
    }
}

fn sel(cpu: usize) -> u64 {
    vcpu_info(cpu).evtchn_pending_sel.load(Ordering::SeqCst)
}

fn upcall_pending(cpu: usize) -> u8 {
    vcpu_info(cpu).evtchn_upcall_pending.load(Ordering::SeqCst)
}

/// Upcalls taken, and other interrupts, per vCPU index.
static UPCALLS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static OTHER_IRQS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Set once each vCPU registered its `vcpu_info` (the handler clears the upcall flag
/// there only then).
static REGISTERED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// The IRQ handler: counts the upcall and clears `evtchn_upcall_pending`, as Linux does
/// (the selector and pending bits are left for the test to look at).
fn upcall_handler(_gic: Gic, ack: Ack) {
    let me = gic::cpu_index();
    if ack.intid == EVTCHN_INTID {
        if REGISTERED[me].load(Ordering::SeqCst) {
            vcpu_info(me)
                .evtchn_upcall_pending
                .store(0, Ordering::SeqCst);
        }
        UPCALLS[me].fetch_add(1, Ordering::SeqCst);
    } else {
        OTHER_IRQS[me].fetch_add(1, Ordering::SeqCst);
    }
}

fn upcalls(cpu: usize) -> u64 {
    UPCALLS[cpu].load(Ordering::SeqCst)
}

/// Lets vCPU 0 take interrupts until it took an upcall more than `before` (or for
/// [`QUIET_MS`] when `quiet`); the count afterwards.
fn let_in(before: u64, quiet: bool) -> u64 {
    irq::unmask();
    if quiet {
        let start = time::now();
        time::wait_until(QUIET_MS, || {
            time::now() - start >= time::ms_to_ticks(QUIET_MS)
        });
    } else {
        time::wait_until(DUE_MS, || upcalls(0) > before);
    }
    irq::mask();
    upcalls(0)
}

/// Clears every pending bit, both selectors and upcall flags, and the PPI's pending state
/// on this vCPU: the next event starts from nothing.
fn clear_events(gic: Gic) {
    for word in &shared().evtchn_pending {
        word.store(0, Ordering::SeqCst);
    }
    for cpu in 0..2 {
        vcpu_info(cpu).evtchn_pending_sel.store(0, Ordering::SeqCst);
        vcpu_info(cpu)
            .evtchn_upcall_pending
            .store(0, Ordering::SeqCst);
    }
    gic::clear_pending(gic, EVTCHN_INTID);
}

/// The registers seen after an `HVC #0xEA1` made with `x0`, `x1`, `x16` as given and
/// every other general-purpose register (x2-x15, x17-x30) holding [`pattern`]: `regs[n]`
/// is `xn` afterwards.
fn call_preserving(x0: u64, x1: u64, x16: u64) -> ([u64; 31], Option<Fault>) {
    macro_rules! fill {
        ($($n:literal)*) => {
            concat!($(
                "movz x", $n, ", #", $n, "\n",
                "movk x", $n, ", #", $n, ", lsl #32\n",
                "movk x", $n, ", #0x5a5a, lsl #16\n",
                "movk x", $n, ", #0xa5a5, lsl #48\n",
            )*)
        };
    }
    let mut regs = [0u64; 31];
    regs[0] = x0;
    regs[1] = x1;
    regs[16] = x16;
    let ptr = regs.as_mut_ptr();
    let fault = capture(|| {
        // SAFETY: x18, x19 (reserved to the compiler), x29 and x30 are saved on the stack
        // and restored; every other register the sequence changes is declared clobbered.
        // The buffer `ptr` points at is `regs` (31 words), written only by the stores
        // below; the hypercalls made through this are ones whose buffers (if any) the
        // caller owns. The stack stays 16-byte aligned.
        unsafe {
            asm!(
                "stp x29, x30, [sp, #-16]!",
                "stp x18, x19, [sp, #-16]!",
                "str x0, [sp, #-16]!",
                fill!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 17 18 19 20 21 22 23 24 25 26 27 28 29 30),
                "ldr x16, [x0, #128]",
                "ldr x1, [x0, #8]",
                "ldr x0, [x0]",
                "hvc #0xea1",
                "str x1, [sp, #-16]!",
                "ldr x1, [sp, #16]",
                "str x0, [x1]",
                "stp x2, x3, [x1, #16]",
                "stp x4, x5, [x1, #32]",
                "stp x6, x7, [x1, #48]",
                "stp x8, x9, [x1, #64]",
                "stp x10, x11, [x1, #80]",
                "stp x12, x13, [x1, #96]",
                "stp x14, x15, [x1, #112]",
                "stp x16, x17, [x1, #128]",
                "stp x18, x19, [x1, #144]",
                "stp x20, x21, [x1, #160]",
                "stp x22, x23, [x1, #176]",
                "stp x24, x25, [x1, #192]",
                "stp x26, x27, [x1, #208]",
                "stp x28, x29, [x1, #224]",
                "str x30, [x1, #240]",
                "ldr x2, [sp], #16",
                "str x2, [x1, #8]",
                "add sp, sp, #16",
                "ldp x18, x19, [sp], #16",
                "ldp x29, x30, [sp], #16",
                inout("x0") ptr => _,
                out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _, out("x20") _, out("x21") _, out("x22") _,
                out("x23") _, out("x24") _, out("x25") _, out("x26") _, out("x27") _,
                out("x28") _,
            )
        }
    })
    .1;
    (regs, fault)
}

/// What `call_preserving` puts in `xn` before the call.
fn pattern(n: u64) -> u64 {
    0xa5a5_0000_5a5a_0000 | (n << 32) | n
}

/// One call through [`call_preserving`]: it returns `want` and every register but x0 and
/// x16 comes back as it went in.
fn check_preserved(
    ctx: &mut Ctx<'_>,
    what: &str,
    (x0, x1, x16): (u64, u64, u64),
    want: Result<u64, Errno>,
) {
    let (regs, fault) = call_preserving(x0, x1, x16);
    let ret = Ret { x0: regs[0], fault };
    let changed = (1..31u64).find(|&n| {
        let expected = if n == 1 { x1 } else { pattern(n) };
        n != 16 && regs[n as usize] != expected
    });
    ctx.report.check(
        ret.is(want) && changed.is_none(),
        format_args!(
            "{what}: returns {}, x1-x15 and x17-x30 unchanged",
            Want(want)
        ),
        format_args!(
            "{ret}; first changed register: {}",
            match changed {
                Some(n) => ChangedReg(n, regs[n as usize]),
                None => ChangedReg(99, 0),
            }
        ),
    );
}

struct ChangedReg(u64, u64);

impl fmt::Display for ChangedReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 99 {
            f.write_str("none")
        } else {
            write!(f, "x{} = {:#x}", self.0, self.1)
        }
    }
}

/// `SCHEDOP_poll` and the console ring: refusals; a port already pending or a timeout
/// already past ends the poll at once; then the vCPU polls its console port (masked, so
/// no upcall: only the poll can notice) until the case types a byte, which the hypervisor
/// (the console's backend) puts in the input ring and signals on that port.
fn poll_and_console(x: &mut Xen<'_, '_>) {
    let poll = |ports: &[u32], nr: u32, timeout: u64| {
        let mut p = SchedPoll {
            ports: ports.as_ptr() as u64,
            nr_ports: nr,
            timeout,
        };
        sched_op(SchedOp::Poll, core::ptr::from_mut(&mut p) as u64)
    };
    let (_, port) = alloc_unbound(domid::SELF, domid::SELF);
    x.expect(
        "SCHEDOP_poll of 129 ports",
        poll(&[port], 129, 1),
        Err(Errno::EINVAL),
    );
    x.expect(
        "SCHEDOP_poll of port 4096",
        poll(&[4096], 1, 1),
        Err(Errno::EINVAL),
    );
    x.expect(
        "SCHEDOP_poll with its port array at a wild address",
        sched_op(SchedOp::Poll, 0xffff_ffff_ffff_f000),
        Err(Errno::EFAULT),
    );
    x.expect(
        "SCHEDOP_poll of an idle port with a timeout already past returns",
        poll(&[port], 1, 1),
        Ok(0),
    );
    // A loopback channel: a send on its other end makes `port` pending (masked: no upcall).
    set_mask(port, true);
    let (_, other) = bind_interdomain(domid::SELF, port);
    let _ = send(other);
    x.expect(
        "SCHEDOP_poll of a pending (masked) port, no timeout, returns at once",
        poll(&[port], 1, 0),
        Ok(0),
    );
    let (_, ring_port) = hvm_param(HvmOp::GetParam, domid::SELF, param::CONSOLE_EVTCHN, 0);
    let (_, ring_pfn) = hvm_param(HvmOp::GetParam, domid::SELF, param::CONSOLE_PFN, 0);
    let ring_port = ring_port as u32;
    x.check(
        ring_pfn == 0x39000 && ring_port != 0,
        "the console ring is at gfn 0x39000 with a port of its own",
        format_args!("gfn {ring_pfn:#x}, port {ring_port}"),
    );
    set_mask(ring_port, true);
    shared().evtchn_pending[(ring_port / 64) as usize]
        .fetch_and(!(1 << (ring_port % 64)), Ordering::SeqCst);
    crate::println!("guest: xen: polling the console port {ring_port} for typed input");
    let ret = poll(&[ring_port], 1, 0);
    let got = grant::with_region(|r| {
        let ring = r.at(ring_pfn << 12);
        // xencons_interface: in[1024] at 0, in_cons at 3072, in_prod at 3076.
        let cons = super::load32(ring + 3072).0;
        let prod = super::load32(ring + 3076).0;
        let at = u64::from(cons % 1024);
        let byte = if prod != cons {
            (super::load32(ring + (at & !3)).0 >> (8 * (at & 3))) as u8
        } else {
            0
        };
        let _ = super::store32(ring + 3072, prod);
        (prod.wrapping_sub(cons), byte)
    });
    x.check(
        ret.is(Ok(0)) && got.is_some_and(|(n, byte)| n >= 1 && byte == b'x'),
        "SCHEDOP_poll of the console port returned once the typed 'x' was in the input ring",
        format_args!("{ret}, ring {got:?}"),
    );
    set_mask(ring_port, false);
    set_mask(port, false);
    let _ = close(other);
    let _ = close(port);
}

/// `test=xen-crash`: reports a crash with `SCHEDOP_shutdown(SHUTDOWN_crash)`, which must
/// not return (the hypervisor powers the domain off with exit status 1).
pub fn run_crash(ctx: &mut Ctx<'_>) {
    crate::println!("guest: xen-crash: SCHEDOP_shutdown(crash)");
    let mut s = xen_abi::sched::SchedShutdown {
        reason: xen_abi::sched::ShutdownReason::Crash.raw(),
    };
    let ret = sched_op(SchedOp::Shutdown, core::ptr::from_mut(&mut s) as u64);
    ctx.report.check(
        false,
        "SCHEDOP_shutdown(crash) does not return",
        format_args!("it returned {ret}"),
    );
}

/// `test=xen-absent`: in a domain without `xen = true`.
pub fn run_absent(ctx: &mut Ctx<'_>) {
    let node = ctx.platform.fdt.find_node("/hypervisor");
    ctx.report.check(
        node.is_none(),
        "a domain without xen = true has no /hypervisor node",
        "there is one",
    );
    let mut p = XenHvmParam {
        domid: domid::SELF,
        pad: 0,
        index: param::CALLBACK_IRQ,
        value: 0x1234_5678,
    };
    let (regs, fault) = call_preserving(
        u64::from(HvmOp::GetParam.raw()),
        core::ptr::from_mut(&mut p) as u64,
        u64::from(Hypercall::HvmOp.raw()),
    );
    let changed = (1..31u64).find(|&n| {
        n != 1 && n != 16 && regs[n as usize] != pattern(n)
            || n == 1 && regs[1] != core::ptr::from_mut(&mut p) as u64
    });
    ctx.report.check(
        fault.is_none() && regs[0] == u64::MAX && changed.is_none() && p.value == 0x1234_5678,
        "HVC #0xEA1 (hvm_op get_param) without xen = true: SMCCC NOT_SUPPORTED (-1) in x0, \
         every other register and the buffer unchanged",
        format_args!(
            "x0 {:#x}, fault {:?}, changed {changed:?}, value {:#x}",
            regs[0], fault, p.value
        ),
    );
    for nr in [17u64, 99, u64::MAX] {
        let ret = hypercall(nr, [0; 5]);
        ctx.report.check(
            ret.fault.is_none() && ret.x0 == u64::MAX,
            format_args!("HVC #0xEA1 with x16 = {nr:#x} without xen = true: NOT_SUPPORTED"),
            ret,
        );
    }
}

struct Xen<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    gic: Gic,
    /// This domain's Xen id (learnt from an unbound port's status).
    domid: DomId,
}

impl Xen<'_, '_> {
    fn check(&mut self, ok: bool, what: impl fmt::Display, detail: impl fmt::Display) -> bool {
        self.ctx.report.check(ok, what, detail)
    }

    /// A call that must return `want`.
    fn expect(&mut self, what: impl fmt::Display, ret: Ret, want: Result<u64, Errno>) -> bool {
        self.ctx
            .report
            .check(ret.is(want), format_args!("{what}: {}", Want(want)), ret)
    }
}

/// `test=xen`.
pub fn run(ctx: &mut Ctx<'_>) {
    let Some(gic) = super::irq_timer::setup_gic(ctx) else {
        return;
    };
    irq::mask();
    let mut x = Xen {
        ctx,
        gic,
        domid: domid::SELF,
    };
    device_tree(&mut x);
    xen_version(&mut x);
    physmap(&mut x);
    irq::install(gic, upcall_handler);
    gic::configure(gic, EVTCHN_INTID, 0x80);
    vcpu_info_registration(&mut x);
    events(&mut x);
    other_vcpu(&mut x);
    many_ports(&mut x);
    closing(&mut x);
    grants(&mut x);
    grant::run(&mut x);
    hvm_and_sched(&mut x);
    poll_and_console(&mut x);
    registers(&mut x);
    gic::disable(gic, EVTCHN_INTID);
    irq::uninstall();
    let other = OTHER_IRQS[0].load(Ordering::SeqCst) + OTHER_IRQS[1].load(Ordering::SeqCst);
    x.check(
        other == 0,
        "no interrupt other than the upcall PPI was taken",
        format_args!("{other} others"),
    );
}

fn device_tree(x: &mut Xen<'_, '_>) {
    let Some(node) = x.ctx.platform.fdt.find_node("/hypervisor") else {
        // The node comes with the loader's Xen support (the xen-dt branch); the
        // hypercalls do not need it: the layout is Xen's fixed domU one.
        x.ctx
            .report
            .skip("no /hypervisor node in the device tree: its checks are left out");
        return;
    };
    let compatible = node.compatible().map(|c| c.first());
    x.check(
        compatible == Some("xen,xen-4.17"),
        "/hypervisor is compatible with \"xen,xen-4.17\" first",
        format_args!("{compatible:?}"),
    );
    let reg = node
        .reg()
        .and_then(|mut r| r.next())
        .map(|r| (r.starting_address as u64, r.size.unwrap_or(0) as u64));
    x.check(
        reg == Some((GNTTAB_BASE, xen_abi::arch::GUEST_GNTTAB_SIZE)),
        "/hypervisor reg[0] is the grant region 0x38000000 (16 MiB)",
        format_args!("{reg:x?}"),
    );
    let cells = node.property("interrupts").map(|p| p.value);
    let word = |i: usize| {
        cells
            .and_then(|c| c.get(i * 4..i * 4 + 4))
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    x.check(
        word(0) == Some(1) && word(1) == Some(EVTCHN_INTID - 16),
        "/hypervisor interrupts: PPI 15 (interrupt ID 31)",
        format_args!("{:?} {:?}", word(0), word(1)),
    );
}

fn xen_version(x: &mut Xen<'_, '_>) {
    let ret = version(XenVer::Version, 0);
    x.expect(
        "XENVER_version is 4.17 (0x40011)",
        ret,
        Ok(xen_abi::version::encode_version(4, 17)),
    );
    let mut extra = [0xffu8; xen_abi::version::EXTRAVERSION_LEN];
    let ret = version(XenVer::Extraversion, extra.as_mut_ptr() as u64);
    let len = extra.iter().position(|&b| b == 0);
    let text = len.and_then(|n| core::str::from_utf8(&extra[..n]).ok());
    x.check(
        ret.ok() && text.is_some_and(|t| t.starts_with('.')),
        "XENVER_extraversion: a NUL-terminated string starting with '.'",
        format_args!("{ret}, {text:?}"),
    );
    let mut caps = [0xffu8; xen_abi::version::CAPABILITIES_LEN];
    let ret = version(XenVer::Capabilities, caps.as_mut_ptr() as u64);
    x.check(
        ret.ok() && caps.starts_with(b"xen-3.0-aarch64") && caps[1023] == 0,
        "XENVER_capabilities names xen-3.0-aarch64",
        ret,
    );
    let mut fi = XenFeatureInfo {
        submap_idx: 0,
        submap: 0xdead_beef,
    };
    let ret = version(XenVer::GetFeatures, core::ptr::from_mut(&mut fi) as u64);
    let must = (1 << feat::AUTO_TRANSLATED_PHYSMAP)
        | (1 << feat::WRITABLE_PAGE_TABLES)
        | (1 << feat::NOT_DIRECT_MAPPED);
    let must_not = (1 << feat::DOM0) | (1 << feat::DIRECT_MAPPED);
    x.check(
        ret.ok() && fi.submap & must == must && fi.submap & must_not == 0,
        "XENVER_get_features submap 0: auto_translated_physmap, writable_page_tables, \
         not_direct_mapped; not dom0, not direct_mapped",
        format_args!("{ret}, submap {:#x}", fi.submap),
    );
    let mut fi = XenFeatureInfo {
        submap_idx: 1,
        submap: 0xdead_beef,
    };
    let ret = version(XenVer::GetFeatures, core::ptr::from_mut(&mut fi) as u64);
    x.check(
        ret.ok() && fi.submap == 0,
        "XENVER_get_features submap 1 is 0",
        format_args!("{ret}, submap {:#x}", fi.submap),
    );
    x.expect("XENVER_pagesize", version(XenVer::Pagesize, 0), Ok(4096));
    x.expect(
        "XENVER_commandline (not provided)",
        version(XenVer::Commandline, 0),
        Err(Errno::ENOSYS),
    );
}

fn physmap(x: &mut Xen<'_, '_>) {
    SHARED_PAGE.fill(0xff);
    let gpfn = SHARED_PAGE.addr() >> 12;
    let ret = add_to_physmap(MapSpace::SharedInfo, 0, gpfn);
    x.expect(
        format_args!(
            "XENMEM_add_to_physmap(shared_info) at a page of RAM ({:#x})",
            SHARED_PAGE.addr()
        ),
        ret,
        Ok(0),
    );
    let s = shared();
    let pending = s
        .evtchn_pending
        .iter()
        .any(|w| w.load(Ordering::SeqCst) != 0);
    let masked = s.evtchn_mask.iter().any(|w| w.load(Ordering::SeqCst) != 0);
    let legacy = s.vcpu_info[0].evtchn_upcall_pending.load(Ordering::SeqCst);
    x.check(
        ret.ok() && !pending && !masked && legacy == 0,
        "that page now reads as the shared-info page: no port pending or masked (it held 0xff)",
        format_args!("pending {pending}, masked {masked}, upcall {legacy}"),
    );
    x.expect(
        "XENMEM_add_to_physmap(shared_info) at 0x10000000 (no RAM, no Xen region)",
        add_to_physmap(MapSpace::SharedInfo, 0, HOLE >> 12),
        Err(Errno::EINVAL),
    );
    x.expect(
        "XENMEM_add_to_physmap(shared_info) with idx 1",
        add_to_physmap(MapSpace::SharedInfo, 1, gpfn),
        Err(Errno::EINVAL),
    );
    let gicd = match x.gic {
        Gic::V2 { gicd, .. } | Gic::V3 { gicd, .. } => gicd,
    };
    x.expect(
        format_args!("XENMEM_add_to_physmap(shared_info) over the GIC distributor ({gicd:#x})"),
        add_to_physmap(MapSpace::SharedInfo, 0, gicd >> 12),
        Err(Errno::EINVAL),
    );
    let ret = add_to_physmap(MapSpace::GrantTable, 0, GNTTAB_BASE >> 12);
    x.expect(
        "XENMEM_add_to_physmap(grant_table, idx 0) at 0x38000000",
        ret,
        Ok(0),
    );
    if ret.ok() {
        let (words, fault) = (0..4).fold((0u32, None), |(acc, f), i| {
            let (v, fault) = super::load32(GNTTAB_BASE + i * 4);
            (acc | v, f.or(fault))
        });
        x.check(
            fault.is_none() && words == 0,
            "grant frame 0 is readable at 0x38000000 and its entries are invalid (zero)",
            format_args!("{words:#x}, {}", super::FaultDetail(fault)),
        );
    }
    x.expect(
        "XENMEM_add_to_physmap(grant_table, idx 64) (the maximum is 64 frames)",
        add_to_physmap(MapSpace::GrantTable, 64, (GNTTAB_BASE >> 12) + 64),
        Err(Errno::EINVAL),
    );
}

pub fn register_vcpu_info(vcpu: u64, mfn: u64, offset: u32) -> Ret {
    let mut req = VcpuRegisterVcpuInfo {
        mfn,
        offset,
        rsvd: 0,
    };
    vcpu_op(VcpuOp::RegisterVcpuInfo, vcpu, &mut req)
}

fn vcpu_info_registration(x: &mut Xen<'_, '_>) {
    VCPU_INFO_PAGE.fill(0);
    let mfn = VCPU_INFO_PAGE.addr() >> 12;
    let before = upcalls(0);
    let ret = register_vcpu_info(0, mfn, 0);
    x.expect(
        "VCPUOP_register_vcpu_info for vCPU 0 in its RAM",
        ret,
        Ok(0),
    );
    REGISTERED[0].store(ret.ok(), Ordering::SeqCst);
    x.check(
        upcall_pending(0) == 1 && sel(0) == u64::MAX,
        "the registration sets evtchn_upcall_pending and every selector bit (look for events)",
        format_args!("upcall {}, selector {:#x}", upcall_pending(0), sel(0)),
    );
    let pending = gic::is_pending(x.gic, EVTCHN_INTID);
    let after = let_in(before, false);
    x.check(
        pending && after == before + 1,
        "... and raises the upcall PPI (31), taken through the GIC",
        format_args!("pending {pending}, upcalls {before} -> {after}"),
    );
    clear_events(x.gic);

    VCPU_INFO_PAGE.fill_range(SECOND_OFFSET, 64, 0x5a);
    let ret = register_vcpu_info(0, mfn, SECOND_OFFSET as u32);
    let untouched = VCPU_INFO_PAGE.holds(SECOND_OFFSET, 64, 0x5a);
    x.check(
        ret.is(Err(Errno::EINVAL)) && untouched,
        "VCPUOP_register_vcpu_info for vCPU 0 a second time: -22 (EINVAL), the second \
         area left as it was",
        format_args!("{ret}, area untouched: {untouched}"),
    );
    x.expect(
        "VCPUOP_register_vcpu_info at offset 4090 (crosses the page)",
        register_vcpu_info(1, mfn, 4090),
        Err(Errno::EINVAL),
    );
    x.expect(
        "VCPUOP_register_vcpu_info at offset 4 (misaligned)",
        register_vcpu_info(1, mfn, 4),
        Err(Errno::EINVAL),
    );
    x.expect(
        "VCPUOP_register_vcpu_info outside RAM (0x10000000)",
        register_vcpu_info(1, HOLE >> 12, 0),
        Err(Errno::EINVAL),
    );
    x.expect(
        "VCPUOP_register_vcpu_info for vCPU 99",
        register_vcpu_info(99, mfn, 512),
        Err(Errno::ENOENT),
    );
    // A quiet moment: nothing of the above raised another upcall.
    let before = upcalls(0);
    let after = let_in(before, true);
    x.check(
        after == before,
        "the refused registrations raise no upcall",
        format_args!("upcalls {before} -> {after}"),
    );
    clear_events(x.gic);
}

/// After an event for `port` on vCPU 0 with IRQs masked: pending bit, selector bit,
/// upcall flag and PPI pending, then the upcall taken once IRQs are unmasked.
fn expect_delivery(x: &mut Xen<'_, '_>, what: &str, port: u32, before: u64) {
    let (word, _) = word_bit(port);
    let (pending, selector, flag) = (is_pending(port), sel(0), upcall_pending(0));
    let ppi = gic::is_pending(x.gic, EVTCHN_INTID);
    x.check(
        pending && selector == 1 << word && flag == 1 && ppi,
        format_args!(
            "{what}: port {port} pending (word {word}), selector bit {word}, \
             evtchn_upcall_pending, PPI 31 pending"
        ),
        format_args!("pending {pending}, selector {selector:#x}, upcall {flag}, PPI {ppi}"),
    );
    let after = let_in(before, false);
    x.check(
        after == before + 1,
        format_args!("{what}: the upcall is taken on vCPU 0"),
        format_args!("upcalls {before} -> {after}"),
    );
    clear_events(x.gic);
}

/// Loopback ports `a` (allocated) and `b` (bound to it), kept for the later steps.
static LOOP: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

fn events(x: &mut Xen<'_, '_>) {
    clear_events(x.gic);
    let (ret, a) = alloc_unbound(domid::SELF, domid::SELF);
    x.check(
        ret.ok() && a >= 1,
        "EVTCHNOP_alloc_unbound(DOMID_SELF, remote DOMID_SELF) gives a port",
        format_args!("{ret}, port {a}"),
    );
    let (ret, s) = status(domid::SELF, a);
    let me = s.remote_dom();
    x.domid = me;
    x.check(
        ret.ok() && s.status == stat::UNBOUND && domid::is_ordinary(me) && s.vcpu == 0,
        format_args!("EVTCHNOP_status of port {a}: unbound, for this domain, vCPU 0"),
        format_args!("{ret}, status {}, dom {me:#x}, vCPU {}", s.status, s.vcpu),
    );
    crate::println!("guest: xen: this domain is Xen domain {me}");

    let before = upcalls(0);
    let (ret, b) = bind_interdomain(domid::SELF, a);
    x.check(
        ret.ok() && b != a && b >= 1,
        format_args!("EVTCHNOP_bind_interdomain(DOMID_SELF, port {a}): loopback"),
        format_args!("{ret}, port {b}"),
    );
    expect_delivery(
        x,
        "the bind (marks the new port pending, as Xen does)",
        b,
        before,
    );
    LOOP[0].store(a.into(), Ordering::SeqCst);
    LOOP[1].store(b.into(), Ordering::SeqCst);

    for (port, peer) in [(a, b), (b, a)] {
        let (ret, s) = status(domid::SELF, port);
        x.check(
            ret.ok()
                && s.status == stat::INTERDOMAIN
                && s.remote_dom() == x.domid
                && s.remote_port() == peer,
            format_args!("EVTCHNOP_status of port {port}: interdomain to port {peer}"),
            format_args!(
                "{ret}, status {}, dom {:#x}, port {}",
                s.status,
                s.remote_dom(),
                s.remote_port()
            ),
        );
    }

    let before = upcalls(0);
    let ret = send(a);
    x.expect(format_args!("EVTCHNOP_send on port {a}"), ret, Ok(0));
    expect_delivery(x, "send on a", b, before);
    let before = upcalls(0);
    x.expect(format_args!("EVTCHNOP_send on port {b}"), send(b), Ok(0));
    expect_delivery(x, "send on b", a, before);

    // Masked: the pending bit only, until EVTCHNOP_unmask.
    set_mask(b, true);
    let before = upcalls(0);
    let ret = send(a);
    let (pending, selector, flag) = (is_pending(b), sel(0), upcall_pending(0));
    let ppi = gic::is_pending(x.gic, EVTCHN_INTID);
    let after = let_in(before, true);
    x.check(
        ret.ok() && pending && selector == 0 && flag == 0 && !ppi && after == before,
        format_args!("send to masked port {b}: pending bit set, no selector, no upcall"),
        format_args!(
            "{ret}, pending {pending}, selector {selector:#x}, upcall {flag}, PPI {ppi}, \
             upcalls {before} -> {after}"
        ),
    );
    let ret = unmask(b);
    x.check(
        ret.ok() && !is_masked(b),
        format_args!("EVTCHNOP_unmask of port {b} clears its mask bit"),
        format_args!("{ret}, masked {}", is_masked(b)),
    );
    expect_delivery(x, "the unmask of a pending port (re-raised)", b, before);
    let before = upcalls(0);
    set_mask(b, true);
    let ret = unmask(b);
    let after = let_in(before, true);
    x.check(
        ret.ok() && !is_masked(b) && after == before && sel(0) == 0,
        format_args!("EVTCHNOP_unmask of port {b} with nothing pending: no upcall"),
        format_args!("{ret}, upcalls {before} -> {after}, selector {:#x}", sel(0)),
    );
}

static SECONDARY_READY: AtomicBool = AtomicBool::new(false);
static SECONDARY_STOP: AtomicBool = AtomicBool::new(false);
static SECONDARY_DONE: AtomicBool = AtomicBool::new(false);
static SECONDARY_RET: AtomicU64 = AtomicU64::new(0);

fn secondary() -> ! {
    let me = gic::cpu_index();
    let ret = match irq::gic() {
        Some(gic) if gic::init_cpu(gic).is_ok() => {
            gic::configure(gic, EVTCHN_INTID, 0x80);
            let ret =
                register_vcpu_info(me as u64, VCPU_INFO_PAGE.addr() >> 12, VCPU1_OFFSET as u32);
            REGISTERED[me].store(ret.ok(), Ordering::SeqCst);
            irq::unmask();
            Some((gic, ret.x0))
        }
        _ => None,
    };
    SECONDARY_RET.store(ret.map_or(u64::MAX - 1, |r| r.1), Ordering::SeqCst);
    SECONDARY_READY.store(true, Ordering::SeqCst);
    while !SECONDARY_STOP.load(Ordering::SeqCst) {
        aarch64_cpu::asm::wfi();
    }
    irq::mask();
    if let Some((gic, _)) = ret {
        gic::disable(gic, EVTCHN_INTID);
    }
    SECONDARY_DONE.store(true, Ordering::SeqCst);
    power::psci(CPU_OFF, [0; 3]);
    power::park()
}

fn other_vcpu(x: &mut Xen<'_, '_>) {
    // A port of vCPU 1 while it has no vcpu_info: unmask still clears the mask bit.
    let (ret, k) = bind_ipi(1);
    x.check(
        ret.ok(),
        "EVTCHNOP_bind_ipi to vCPU 1 (not started, no vcpu_info)",
        format_args!("{ret}, port {k}"),
    );
    set_mask(k, true);
    let sent = send(k);
    let pending = is_pending(k);
    let ret = unmask(k);
    x.check(
        sent.ok() && pending && ret.ok() && !is_masked(k),
        format_args!(
            "send on IPI port {k} of a vCPU without vcpu_info marks it pending; \
             EVTCHNOP_unmask clears its mask bit"
        ),
        format_args!(
            "send {sent}, pending {pending}, unmask {ret}, masked {}",
            is_masked(k)
        ),
    );
    let ret = close(k);
    x.check(
        ret.ok() && !is_pending(k),
        format_args!("EVTCHNOP_close of port {k} clears its pending bit"),
        format_args!("{ret}, pending {}", is_pending(k)),
    );
    clear_events(x.gic);

    let platform = x.ctx.platform;
    let Some(mpidr) = platform.cpus.get(1) else {
        x.ctx
            .report
            .skip("one vCPU only: the vCPU 1 event checks are left out");
        return;
    };
    smp::set_task(Some(secondary));
    let on = power::psci(CPU_ON, [mpidr, smp::secondary_entry_address(), 0]);
    let ready = on.fault.is_none()
        && on.ret() == SUCCESS
        && time::wait_until(2000, || SECONDARY_READY.load(Ordering::SeqCst));
    let reg = SECONDARY_RET.load(Ordering::SeqCst);
    let took = time::wait_until(DUE_MS, || upcalls(1) >= 1);
    x.check(
        ready && reg == 0 && took,
        "vCPU 1 started, registered its own vcpu_info and took the upcall that raises",
        format_args!(
            "CPU_ON {on}, ready {ready}, register {reg:#x}, upcalls {}",
            upcalls(1)
        ),
    );
    if !ready {
        return;
    }
    time::wait_until(QUIET_MS, || false);
    clear_events(x.gic);

    let (ret, i) = bind_ipi(1);
    let (sret, s) = status(domid::SELF, i);
    x.check(
        ret.ok() && sret.ok() && s.status == stat::IPI && s.vcpu == 1,
        format_args!("EVTCHNOP_bind_ipi to vCPU 1: port {i}, status IPI on vCPU 1"),
        format_args!("{ret}, status {sret}: {} vCPU {}", s.status, s.vcpu),
    );
    let (before0, before1) = (upcalls(0), upcalls(1));
    let ret = send(i);
    let took = time::wait_until(DUE_MS, || upcalls(1) > before1);
    let (word, _) = word_bit(i);
    x.check(
        ret.ok() && took && is_pending(i) && sel(1) & (1 << word) != 0 && sel(0) == 0,
        format_args!("send on IPI port {i}: delivered on vCPU 1 (its selector, its upcall)"),
        format_args!(
            "{ret}, taken {took}, pending {}, selectors {:#x}/{:#x}",
            is_pending(i),
            sel(0),
            sel(1)
        ),
    );
    let after0 = let_in(before0, true);
    x.check(
        after0 == before0,
        "... and not on vCPU 0",
        format_args!("vCPU 0 upcalls {before0} -> {after0}"),
    );
    clear_events(x.gic);

    let (a, b) = (
        LOOP[0].load(Ordering::SeqCst) as u32,
        LOOP[1].load(Ordering::SeqCst) as u32,
    );
    let ret = bind_vcpu(b, 1);
    let (_, s) = status(domid::SELF, b);
    x.check(
        ret.ok() && s.vcpu == 1,
        format_args!("EVTCHNOP_bind_vcpu of port {b} to vCPU 1"),
        format_args!("{ret}, status vCPU {}", s.vcpu),
    );
    let (before0, before1) = (upcalls(0), upcalls(1));
    let ret = send(a);
    let took = time::wait_until(DUE_MS, || upcalls(1) > before1);
    let after0 = let_in(before0, true);
    x.check(
        ret.ok() && took && after0 == before0 && is_pending(b),
        format_args!("send on port {a}: delivered to port {b} on vCPU 1 now"),
        format_args!("{ret}, vCPU 1 took it {took}, vCPU 0 {before0} -> {after0}"),
    );
    x.expect(
        format_args!("EVTCHNOP_bind_vcpu of port {b} back to vCPU 0"),
        bind_vcpu(b, 0),
        Ok(0),
    );
    x.expect(
        format_args!("EVTCHNOP_bind_vcpu of IPI port {i} (IPIs stay where they are bound)"),
        bind_vcpu(i, 0),
        Err(Errno::EINVAL),
    );
    x.expect(format_args!("EVTCHNOP_close of port {i}"), close(i), Ok(0));
    clear_events(x.gic);

    SECONDARY_STOP.store(true, Ordering::SeqCst);
    let done = time::wait_until(2000, || SECONDARY_DONE.load(Ordering::SeqCst));
    smp::set_task(None);
    x.check(done, "vCPU 1 stopped", "it did not say so");

    let (ret, j) = bind_ipi(0);
    let before = upcalls(0);
    let sent = send(j);
    x.check(
        ret.ok() && sent.ok(),
        format_args!("EVTCHNOP_bind_ipi to vCPU 0 (port {j}) and send"),
        format_args!("{ret}, {sent}"),
    );
    expect_delivery(x, "IPI to itself", j, before);
    x.expect(format_args!("EVTCHNOP_close of port {j}"), close(j), Ok(0));
}

fn many_ports(x: &mut Xen<'_, '_>) {
    let mut ports = [0u32; MANY_PORTS];
    let mut bad = None;
    for slot in ports.iter_mut() {
        let (ret, port) = alloc_unbound(domid::SELF, domid::SELF);
        if !ret.ok() {
            bad.get_or_insert(ret);
        }
        *slot = port;
    }
    let high = ports.iter().copied().find(|&p| p >= 64);
    x.check(
        bad.is_none() && high.is_some(),
        format_args!("{MANY_PORTS} more unbound ports: some are 64 and above"),
        format_args!("{bad:?}, highest {:?}", ports.iter().max()),
    );
    let Some(c) = high else { return };
    let (ret, d) = bind_interdomain(domid::SELF, c);
    // The bind marks `d` pending: take that one first.
    let before = upcalls(0);
    x.check(
        ret.ok() && d >= 64,
        format_args!("bind_interdomain to port {c}: port {d}, in word 1"),
        format_args!("{ret}, port {d}"),
    );
    let _ = let_in(before, false);
    clear_events(x.gic);
    let before = upcalls(0);
    x.expect(format_args!("EVTCHNOP_send on port {c}"), send(c), Ok(0));
    expect_delivery(x, "send into the second word", d, before);
    let mut bad = None;
    for &port in ports.iter().chain([d].iter()) {
        let ret = close(port);
        if !ret.ok() {
            bad.get_or_insert((port, ret));
        }
    }
    x.check(
        bad.is_none(),
        format_args!("EVTCHNOP_close of those {} ports", MANY_PORTS + 1),
        format_args!("{bad:?}"),
    );
    let (ret, s) = status(domid::SELF, c);
    x.check(
        ret.ok() && s.status == stat::CLOSED,
        format_args!("EVTCHNOP_status of port {c}: closed"),
        format_args!("{ret}, status {}", s.status),
    );
}

fn closing(x: &mut Xen<'_, '_>) {
    let (a, b) = (
        LOOP[0].load(Ordering::SeqCst) as u32,
        LOOP[1].load(Ordering::SeqCst) as u32,
    );
    x.expect(format_args!("EVTCHNOP_close of port {a}"), close(a), Ok(0));
    x.expect(
        format_args!("EVTCHNOP_send on closed port {a}"),
        send(a),
        Err(Errno::EINVAL),
    );
    let (ret, s) = status(domid::SELF, a);
    x.check(
        ret.ok() && s.status == stat::CLOSED,
        format_args!("EVTCHNOP_status of port {a}: closed"),
        format_args!("{ret}, status {}", s.status),
    );
    let (ret, s) = status(domid::SELF, b);
    x.check(
        ret.ok() && s.status == stat::UNBOUND && s.remote_dom() == x.domid,
        format_args!("EVTCHNOP_status of its peer {b}: unbound again"),
        format_args!("{ret}, status {}, dom {:#x}", s.status, s.remote_dom()),
    );
    let before = upcalls(0);
    let ret = send(b);
    let after = let_in(before, true);
    x.check(
        ret.ok() && after == before && !is_pending(a),
        format_args!("EVTCHNOP_send on the now unbound port {b}: 0, nothing delivered"),
        format_args!("{ret}, upcalls {before} -> {after}"),
    );
    x.expect(format_args!("EVTCHNOP_close of port {b}"), close(b), Ok(0));
    x.expect(
        format_args!("EVTCHNOP_close of port {b} again"),
        close(b),
        Err(Errno::EINVAL),
    );

    let (ret, v) = bind_virq(virq::TIMER, 0);
    x.check(
        ret.ok(),
        "EVTCHNOP_bind_virq(VIRQ_TIMER, vCPU 0)",
        format_args!("{ret}, port {v}"),
    );
    let (again, _) = bind_virq(virq::TIMER, 0);
    x.expect(
        "EVTCHNOP_bind_virq(VIRQ_TIMER, vCPU 0) again",
        again,
        Err(Errno::EEXIST),
    );
    let (sret, s) = status(domid::SELF, v);
    x.check(
        sret.ok() && s.status == stat::VIRQ && s.irq() == virq::TIMER,
        format_args!("EVTCHNOP_status of port {v}: VIRQ_TIMER"),
        format_args!("{sret}, status {} irq {}", s.status, s.irq()),
    );
    x.expect(
        format_args!("EVTCHNOP_send on VIRQ port {v}"),
        send(v),
        Err(Errno::EINVAL),
    );
    x.expect(format_args!("EVTCHNOP_close of port {v}"), close(v), Ok(0));
    clear_events(x.gic);
}

fn grants(x: &mut Xen<'_, '_>) {
    let mut q = GnttabQuerySize {
        dom: domid::SELF,
        nr_frames: 99,
        max_nr_frames: 99,
        status: 99,
    };
    let ret = grant_op(GnttabOp::QuerySize, &mut q, 1);
    x.check(
        ret.ok() && q.max_nr_frames == 64 && q.nr_frames == 1 && q.status == 0,
        "GNTTABOP_query_size: 1 frame (mapped above), at most 64",
        format_args!(
            "{ret}, {} of {}, status {}",
            q.nr_frames, q.max_nr_frames, q.status
        ),
    );
    let mut v = GnttabSetVersion { version: 1 };
    x.expect(
        "GNTTABOP_set_version(1)",
        grant_op(GnttabOp::SetVersion, &mut v, 1),
        Ok(0),
    );
    let mut v = GnttabSetVersion { version: 2 };
    let ret = grant_op(GnttabOp::SetVersion, &mut v, 1);
    x.check(
        ret.is(Err(Errno::ENOSYS)) && v.version == 1,
        "GNTTABOP_set_version(2): -38 (ENOSYS), version 1 stays",
        format_args!("{ret}, version {}", v.version),
    );
    let mut g = GnttabGetVersion {
        dom: domid::SELF,
        pad: 0,
        version: 0,
    };
    let ret = grant_op(GnttabOp::GetVersion, &mut g, 1);
    x.check(
        ret.ok() && g.version == 1,
        "GNTTABOP_get_version: 1",
        format_args!("{ret}, version {}", g.version),
    );
}

fn hvm_and_sched(x: &mut Xen<'_, '_>) {
    let (ret, value) = hvm_param(HvmOp::GetParam, domid::SELF, param::STORE_PFN, 99);
    x.check(
        ret.ok() && value == 0,
        "HVMOP_get_param(STORE_PFN) is 0 (no xenstore)",
        format_args!("{ret}, {value:#x}"),
    );
    let callback = (param::CALLBACK_TYPE_PPI << 56) | u64::from(EVTCHN_INTID);
    let (ret, _) = hvm_param(HvmOp::SetParam, domid::SELF, param::CALLBACK_IRQ, callback);
    let (got, value) = hvm_param(HvmOp::GetParam, domid::SELF, param::CALLBACK_IRQ, 0);
    x.check(
        ret.ok() && got.ok() && value == callback,
        "HVMOP_set_param(CALLBACK_IRQ) on itself, read back",
        format_args!("{ret}, {got}, {value:#x}"),
    );
    let (ret, _) = hvm_param(HvmOp::SetParam, domid::SELF, param::STORE_PFN, 0x1234);
    x.expect(
        "HVMOP_set_param(STORE_PFN) by a domU",
        ret,
        Err(Errno::EPERM),
    );
    let (_, value) = hvm_param(HvmOp::GetParam, domid::SELF, param::STORE_PFN, 99);
    x.check(
        value == 0,
        "... and STORE_PFN stays 0",
        format_args!("{value:#x}"),
    );
    x.expect("SCHEDOP_yield", sched_op(SchedOp::Yield, 0), Ok(0));

    let on = hypercall(
        u64::from(Hypercall::VmAssist.raw()),
        [
            u64::from(vmassist::CMD_ENABLE),
            u64::from(vmassist::TYPE_RUNSTATE_UPDATE_FLAG),
            0,
            0,
            0,
        ],
    );
    x.expect("vm_assist(enable, runstate_update_flag)", on, Ok(0));
    RUNSTATE_PAGE.fill(0xff);
    let mut area = VcpuRegisterRunstateMemoryArea {
        addr: RUNSTATE_PAGE.addr(),
    };
    let ret = vcpu_op(VcpuOp::RegisterRunstateMemoryArea, 0, &mut area);
    // SAFETY: the page is ours and 8-aligned; the hypervisor wrote it during the call,
    // which is over.
    let info = unsafe { core::ptr::read_volatile(RUNSTATE_PAGE.addr() as *const VcpuRunstateInfo) };
    x.check(
        ret.ok()
            && info.state == runstate::RUNNING
            && info.state_entry_time & RUNSTATE_UPDATE == 0
            && info.state_entry_time != 0,
        "VCPUOP_register_runstate_memory_area: running, update flag clear afterwards",
        format_args!(
            "{ret}, state {}, entry {:#x}",
            info.state, info.state_entry_time
        ),
    );
}

fn registers(x: &mut Xen<'_, '_>) {
    let nr = |h: Hypercall| u64::from(h.raw());
    check_preserved(
        x.ctx,
        "xen_version(XENVER_version) with every register set",
        (0, pattern(1), nr(Hypercall::XenVersion)),
        Ok(xen_abi::version::encode_version(4, 17)),
    );
    let mut fi = XenFeatureInfo::default();
    check_preserved(
        x.ctx,
        "xen_version(XENVER_get_features) (writes its buffer)",
        (
            u64::from(XenVer::GetFeatures.raw()),
            core::ptr::from_mut(&mut fi) as u64,
            nr(Hypercall::XenVersion),
        ),
        Ok(0),
    );
    check_preserved(
        x.ctx,
        "hypercall 99 (unknown)",
        (0, pattern(1), 99),
        Err(Errno::ENOSYS),
    );
    check_preserved(
        x.ctx,
        "EVTCHNOP_send with a null pointer",
        (
            u64::from(EvtchnOp::Send.raw()),
            0,
            nr(Hypercall::EventChannelOp),
        ),
        Err(Errno::EFAULT),
    );
    check_preserved(
        x.ctx,
        "SCHEDOP_yield (the vCPU is switched out and back)",
        (
            u64::from(SchedOp::Yield.raw()),
            pattern(1),
            nr(Hypercall::SchedOp),
        ),
        Ok(0),
    );
}
