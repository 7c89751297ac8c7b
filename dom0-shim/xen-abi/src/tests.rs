//! Layout and number checks. Every size and offset below is a literal worked out by
//! reading the public headers for arm64 (LP64, 8-byte-aligned guest handles and
//! 64-bit `xen_pfn_t`/`xen_ulong_t`), not computed from the Rust definitions.

extern crate std;

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::Ordering;

use crate::console::XenconsInterface;
use crate::event_channel::*;
use crate::grant_table::*;
use crate::hvm::*;
use crate::linux::*;
use crate::memory::*;
use crate::platform::*;
use crate::sched::*;
use crate::shared::*;
use crate::sysctl::*;
use crate::vcpu::*;
use crate::version::*;
use crate::*;

macro_rules! layout {
    ($t:ty, size $size:literal $(, align $align:literal)? ; $($f:ident @ $off:literal),* $(,)?) => {{
        assert_eq!(size_of::<$t>(), $size, "size of {}", stringify!($t));
        $( assert_eq!(align_of::<$t>(), $align, "align of {}", stringify!($t)); )?
        $( assert_eq!(offset_of!($t, $f), $off, "{}.{}", stringify!($t), stringify!($f)); )*
    }};
}

#[test]
fn xen_h_layouts() {
    layout!(MulticallEntry, size 64; op @ 0, result @ 8, args @ 16);
    layout!(VcpuTimeInfo, size 32, align 8; version @ 0, pad0 @ 4, tsc_timestamp @ 8,
        system_time @ 16, tsc_to_system_mul @ 24, tsc_shift @ 28, flags @ 29, pad1 @ 30);
    layout!(VcpuInfo, size 48, align 8; evtchn_upcall_pending @ 0, evtchn_upcall_mask @ 1,
        pad @ 2, evtchn_pending_sel @ 8, arch @ 16, time @ 16);
    layout!(SharedInfo, size 1088, align 8; vcpu_info @ 0, evtchn_pending @ 48,
        evtchn_mask @ 560, wc_version @ 1072, wc_sec @ 1076, wc_nsec @ 1080,
        wc_sec_hi @ 1084, arch @ 1088);
    assert_eq!(size_of::<ArchVcpuInfo>(), 0);
    assert_eq!(size_of::<ArchSharedInfo>(), 0);
    assert!(size_of::<SharedInfo>() <= PAGE_SIZE);
}

#[test]
fn event_channel_h_layouts() {
    layout!(EvtchnAllocUnbound, size 8; dom @ 0, remote_dom @ 2, port @ 4);
    layout!(EvtchnBindInterdomain, size 12; remote_dom @ 0, remote_port @ 4, local_port @ 8);
    layout!(EvtchnBindVirq, size 12; virq @ 0, vcpu @ 4, port @ 8);
    layout!(EvtchnBindIpi, size 8; vcpu @ 0, port @ 4);
    layout!(EvtchnClose, size 4; port @ 0);
    layout!(EvtchnSend, size 4; port @ 0);
    layout!(EvtchnStatus, size 24, align 4; dom @ 0, port @ 4, status @ 8, vcpu @ 12, u @ 16);
    layout!(EvtchnBindVcpu, size 8; port @ 0, vcpu @ 4);
    layout!(EvtchnUnmask, size 4; port @ 0);
    layout!(EvtchnReset, size 2; dom @ 0);
    layout!(EvtchnInitControl, size 24; control_gfn @ 0, offset @ 8, vcpu @ 12,
        link_bits @ 16, pad @ 17);
    layout!(EvtchnExpandArray, size 8; array_gfn @ 0);
    layout!(EvtchnSetPriority, size 8; port @ 0, priority @ 4);
}

#[test]
fn grant_table_h_layouts() {
    layout!(GrantEntryV1, size 8, align 4; flags_domid @ 0, frame @ 4);
    layout!(GnttabMapGrantRef, size 32, align 8; host_addr @ 0, flags @ 8, ref_ @ 12,
        dom @ 16, status @ 18, handle @ 20, dev_bus_addr @ 24);
    layout!(GnttabUnmapGrantRef, size 24; host_addr @ 0, dev_bus_addr @ 8, handle @ 16,
        status @ 20);
    layout!(GnttabUnmapAndReplace, size 24; host_addr @ 0, new_addr @ 8, handle @ 16,
        status @ 20);
    layout!(GnttabSetupTable, size 24; dom @ 0, nr_frames @ 4, status @ 8, frame_list @ 16);
    layout!(GnttabQuerySize, size 16, align 4; dom @ 0, nr_frames @ 4, max_nr_frames @ 8,
        status @ 12);
    layout!(GnttabCopyPtr, size 16, align 8; u @ 0, domid @ 8, offset @ 10);
    layout!(GnttabCopy, size 40; source @ 0, dest @ 16, len @ 32, flags @ 34, status @ 36);
    layout!(GnttabSetVersion, size 4; version @ 0);
    layout!(GnttabGetVersion, size 8; dom @ 0, pad @ 2, version @ 4);
    layout!(GnttabCacheFlush, size 16; a @ 0, offset @ 8, length @ 10, op @ 12);
    assert_eq!(ENTRIES_PER_FRAME_V1, 512);
}

#[test]
fn other_header_layouts() {
    layout!(XenFeatureInfo, size 8; submap_idx @ 0, submap @ 4);
    layout!(XenAddToPhysmap, size 24; domid @ 0, size @ 2, space @ 4, idx @ 8, gpfn @ 16);
    layout!(XenRemoveFromPhysmap, size 16; domid @ 0, gpfn @ 8);
    layout!(XenAddToPhysmapRange, size 32; domid @ 0, space @ 2, size @ 4,
        foreign_domid @ 6, idxs @ 8, gpfns @ 16, errs @ 24);
    layout!(XenMemoryReservation, size 32; extent_start @ 0, nr_extents @ 8,
        extent_order @ 16, mem_flags @ 20, domid @ 24);
    layout!(XenMemAcquireResource, size 32; domid @ 0, type_ @ 2, id @ 4, nr_frames @ 8,
        pad @ 12, frame @ 16, frame_list @ 24);
    layout!(VcpuRunstateInfo, size 48; state @ 0, state_entry_time @ 8, time @ 16);
    layout!(VcpuRegisterRunstateMemoryArea, size 8; addr @ 0);
    layout!(VcpuRegisterVcpuInfo, size 16; mfn @ 0, offset @ 8, rsvd @ 12);
    layout!(VcpuSetSingleshotTimer, size 16; timeout_abs_ns @ 0, flags @ 8);
    layout!(SchedShutdown, size 4; reason @ 0);
    layout!(SchedPoll, size 24; ports @ 0, nr_ports @ 8, timeout @ 16);
    layout!(SchedRemoteShutdown, size 8; domain_id @ 0, reason @ 4);
    layout!(XenHvmParam, size 16; domid @ 0, pad @ 2, index @ 4, value @ 8);
    layout!(XenconsInterface, size 3088, align 4; in_ @ 0, out @ 1024, in_cons @ 3072,
        in_prod @ 3076, out_cons @ 3080, out_prod @ 3084);
    layout!(XenPlatformOp, size 136; cmd @ 0, interface_version @ 4, u @ 8);
    layout!(XenpfSettime64, size 24; secs @ 0, nsecs @ 8, mbz @ 12, system_time @ 16);
}

#[test]
fn sysctl_h_layouts() {
    // struct xen_sysctl: two u32, then a union of 8-aligned members padded to 128 bytes.
    layout!(XenSysctl, size 136, align 8; cmd @ 0, interface_version @ 4, u @ 8);
    // domid_t first_domain; (2 bytes padding) uint32_t max_domains; a 64-bit handle at
    // 8; uint32_t num_domains at 16; tail padding to the handle's alignment.
    layout!(XenSysctlGetdomaininfolist, size 24, align 8; first_domain @ 0, max_domains @ 4,
        buffer @ 8, num_domains @ 16);
    // arch-arm.h: uint8_t gic_version; uint16_t tee_type (at 2); two uint32_t.
    layout!(XenArchDomainconfig, size 12, align 4; gic_version @ 0, tee_type @ 2,
        nr_spis @ 4, clock_frequency @ 8);
    // domctl.h: domid_t, pad, flags; seven uint64_aligned_t from 8 to 64; three
    // uint32_t; the 16-byte handle at 76; cpupool at 92; gpaddr_bits at 96, pad2[7];
    // arch_config (4-aligned, 12 bytes) at 104; 116 rounded up to 8.
    layout!(XenDomctlGetdomaininfo, size 120, align 8; domain @ 0, pad1 @ 2, flags @ 4,
        tot_pages @ 8, max_pages @ 16, outstanding_pages @ 24, shr_pages @ 32,
        paged_pages @ 40, shared_info_frame @ 48, cpu_time @ 56, nr_online_vcpus @ 64,
        max_vcpu_id @ 68, ssidref @ 72, handle @ 76, cpupool @ 92, gpaddr_bits @ 96,
        pad2 @ 97, arch_config @ 104);
    assert_eq!(XEN_SYSCTL_INTERFACE_VERSION, 0x15);
    assert_eq!(XEN_DOMCTL_INTERFACE_VERSION, 0x15);
    assert_eq!(cmd::GETDOMAININFOLIST, 6);
    assert_eq!(cmd::PHYSINFO, 3);
    assert_eq!(
        [
            dominf::DYING,
            dominf::HVM_GUEST,
            dominf::SHUTDOWN,
            dominf::PAUSED
        ],
        [1, 2, 4, 8]
    );
    assert_eq!(
        [
            dominf::BLOCKED,
            dominf::RUNNING,
            dominf::DEBUGGED,
            dominf::XS_DOMAIN,
            dominf::HAP
        ],
        [0x10, 0x20, 0x40, 0x80, 0x100]
    );
    assert_eq!(dominf::shutdown_code(dominf::SHUTDOWN | (3 << 16)), 3);
    assert_eq!(XEN_INVALID_MAX_VCPU_ID, 0xFFFF_FFFF);
    assert_eq!(Hypercall::Sysctl.raw(), 35);
}

#[test]
fn sysctl_union_round_trip() {
    let list = XenSysctlGetdomaininfolist {
        first_domain: 0x1234,
        max_domains: 34,
        buffer: 0xFFFF_8000_0012_3000,
        num_domains: 0,
    };
    let call = XenSysctl::new(cmd::GETDOMAININFOLIST, &list);
    assert_eq!(call.interface_version, XEN_SYSCTL_INTERFACE_VERSION);
    let bytes = call.to_bytes();
    // In guest memory: cmd, version, then the payload at offset 8 as C lays it out.
    assert_eq!(&bytes[0..4], &6u32.to_le_bytes());
    assert_eq!(&bytes[4..8], &0x15u32.to_le_bytes());
    assert_eq!(&bytes[8..10], &0x1234u16.to_le_bytes());
    assert_eq!(&bytes[10..12], &[0, 0]);
    assert_eq!(&bytes[12..16], &34u32.to_le_bytes());
    assert_eq!(&bytes[16..24], &0xFFFF_8000_0012_3000u64.to_le_bytes());
    assert!(bytes[32..].iter().all(|&b| b == 0));
    let back = XenSysctl::from_bytes(&bytes).unwrap();
    assert_eq!(back.payload::<XenSysctlGetdomaininfolist>(), Some(list));
    // The hypervisor's answer: num_domains written back into the union.
    let mut answered = list;
    answered.num_domains = 2;
    let reply = XenSysctl::new(cmd::GETDOMAININFOLIST, &answered);
    assert_eq!(
        reply
            .payload::<XenSysctlGetdomaininfolist>()
            .unwrap()
            .num_domains,
        2
    );
    // A record at a known offset pattern.
    let info = XenDomctlGetdomaininfo {
        domain: 1,
        flags: dominf::RUNNING | dominf::HVM_GUEST,
        tot_pages: 0x8000,
        nr_online_vcpus: 2,
        max_vcpu_id: 1,
        handle: [0xAB; 16],
        gpaddr_bits: 40,
        arch_config: XenArchDomainconfig {
            gic_version: gic_version::V3,
            nr_spis: 32,
            ..Default::default()
        },
        ..Default::default()
    };
    let b = info.to_bytes();
    assert_eq!(&b[0..2], &1u16.to_le_bytes());
    assert_eq!(&b[4..8], &0x22u32.to_le_bytes());
    assert_eq!(&b[8..16], &0x8000u64.to_le_bytes());
    assert_eq!(&b[64..68], &2u32.to_le_bytes());
    assert_eq!(&b[76..92], &[0xAB; 16]);
    assert_eq!(b[96], 40);
    assert_eq!(b[104], 2);
    assert_eq!(&b[108..112], &32u32.to_le_bytes());
    assert_eq!(XenDomctlGetdomaininfo::from_bytes(&b), Some(info));
}

#[test]
fn linux_uapi_layouts_and_ioctls() {
    layout!(PrivcmdHypercall, size 48; op @ 0, arg @ 8);
    layout!(PrivcmdMmapbatchV2, size 32; num @ 0, dom @ 4, addr @ 8, arr @ 16, err @ 24);
    layout!(PrivcmdMmapResource, size 32; dom @ 0, type_ @ 4, id @ 8, idx @ 12, num @ 16,
        addr @ 24);
    layout!(IoctlEvtchnBindVirq, size 4; virq @ 0);
    layout!(IoctlEvtchnBindInterdomain, size 8; remote_domain @ 0, remote_port @ 4);
    layout!(IoctlEvtchnBindUnboundPort, size 4; remote_domain @ 0);
    layout!(IoctlEvtchnUnbind, size 4; port @ 0);
    layout!(IoctlEvtchnNotify, size 4; port @ 0);
    assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
    assert_eq!(IOCTL_PRIVCMD_MMAPBATCH_V2, 0x0020_5004);
    assert_eq!(IOCTL_PRIVCMD_RESTRICT, 0x0002_5006);
    assert_eq!(IOCTL_PRIVCMD_MMAP_RESOURCE, 0x0020_5007);
    assert_eq!(IOCTL_EVTCHN_BIND_VIRQ, 0x0004_4500);
    assert_eq!(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x0008_4501);
    assert_eq!(IOCTL_EVTCHN_BIND_UNBOUND_PORT, 0x0004_4502);
    assert_eq!(IOCTL_EVTCHN_UNBIND, 0x0004_4503);
    assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
    assert_eq!(IOCTL_EVTCHN_RESET, 0x0000_4505);
}

#[test]
fn hypercall_numbers() {
    assert_eq!(HYPERCALL_IMM, 0xEA1);
    let expect = [
        (7, Hypercall::PlatformOp),
        (12, Hypercall::MemoryOp),
        (13, Hypercall::Multicall),
        (17, Hypercall::XenVersion),
        (18, Hypercall::ConsoleIo),
        (20, Hypercall::GrantTableOp),
        (21, Hypercall::VmAssist),
        (24, Hypercall::VcpuOp),
        (29, Hypercall::SchedOp),
        (32, Hypercall::EventChannelOp),
        (33, Hypercall::PhysdevOp),
        (34, Hypercall::HvmOp),
        (35, Hypercall::Sysctl),
        (36, Hypercall::Domctl),
    ];
    for (nr, call) in expect {
        assert_eq!(Hypercall::from_number(nr), Some(call));
        assert_eq!(call.raw() as u64, nr);
    }
    assert_eq!(Hypercall::ALL.len(), expect.len());
    for nr in [0, 1, 6, 8, 11, 14, 16, 19, 37, 48, 55, 1 << 32] {
        assert_eq!(Hypercall::from_number(nr), None, "{nr}");
    }
}

#[test]
fn sub_op_numbers() {
    assert_eq!(XenVer::GetFeatures.raw(), 6);
    assert_eq!(XenVer::Commandline.raw(), 9);
    assert_eq!(XenVer::BuildId.raw(), 10);
    assert_eq!(XenVer::from_raw(8), Some(XenVer::GuestHandle));
    assert_eq!(XenVer::from_raw(11), None);
    assert_eq!(encode_version(4, 17), 0x4_0011);
    assert_eq!(feat::WRITABLE_PAGE_TABLES, 0);
    assert_eq!(feat::AUTO_TRANSLATED_PHYSMAP, 2);
    assert_eq!(feat::HVM_CALLBACK_VECTOR, 8);
    assert_eq!(feat::DOM0, 11);
    assert_eq!(feat::NOT_DIRECT_MAPPED, 16);
    assert_eq!(feat::DIRECT_MAPPED, 17);

    assert_eq!(XenMem::AddToPhysmap.raw(), 7);
    assert_eq!(XenMem::RemoveFromPhysmap.raw(), 15);
    assert_eq!(XenMem::AddToPhysmapRange.raw(), 23);
    assert_eq!(XenMem::AcquireResource.raw(), 28);
    assert_eq!(XenMem::MemoryMap.raw(), 9);
    assert_eq!(MapSpace::from_raw(0), Some(MapSpace::SharedInfo));
    assert_eq!(MapSpace::GmfnForeign.raw(), 4);
    assert_eq!(MapSpace::DevMmio.raw(), 5);
    assert_eq!(MapSpace::from_raw(6), None);

    assert_eq!(consoleio::WRITE, 0);
    assert_eq!(consoleio::READ, 1);

    let gnt: [(u64, GnttabOp); 13] = [
        (0, GnttabOp::MapGrantRef),
        (1, GnttabOp::UnmapGrantRef),
        (2, GnttabOp::SetupTable),
        (3, GnttabOp::DumpTable),
        (4, GnttabOp::Transfer),
        (5, GnttabOp::Copy),
        (6, GnttabOp::QuerySize),
        (7, GnttabOp::UnmapAndReplace),
        (8, GnttabOp::SetVersion),
        (9, GnttabOp::GetStatusFrames),
        (10, GnttabOp::GetVersion),
        (11, GnttabOp::SwapGrantRef),
        (12, GnttabOp::CacheFlush),
    ];
    for (n, op) in gnt {
        assert_eq!(GnttabOp::from_raw(n), Some(op));
    }
    assert_eq!(gntmap::DEVICE_MAP, 1);
    assert_eq!(gntmap::HOST_MAP, 2);
    assert_eq!(gntmap::READONLY, 4);
    assert_eq!(gntmap::CONTAINS_PTE, 16);
    assert_eq!(gtf::PERMIT_ACCESS, 1);
    assert_eq!(gtf::READONLY, 4);
    assert_eq!(gtf::READING, 8);
    assert_eq!(gtf::WRITING, 16);
    assert_eq!(gtf::SUB_PAGE, 0x100);
    assert_eq!(GntSt::GeneralError.as_i16(), -1);
    assert_eq!(GntSt::BadGntref.as_i16(), -3);
    assert_eq!(GntSt::BadCopyArg.as_i16(), -10);
    assert_eq!(GntSt::NoSpace.as_i16(), -13);
    assert_eq!(GntSt::from_i16(-8), Some(GntSt::PermissionDenied));
    assert_eq!(GntSt::from_i16(-14), None);
    assert_eq!(GntSt::from_i16(0), Some(GntSt::Okay));

    let ev: [(u64, EvtchnOp); 14] = [
        (0, EvtchnOp::BindInterdomain),
        (1, EvtchnOp::BindVirq),
        (2, EvtchnOp::BindPirq),
        (3, EvtchnOp::Close),
        (4, EvtchnOp::Send),
        (5, EvtchnOp::Status),
        (6, EvtchnOp::AllocUnbound),
        (7, EvtchnOp::BindIpi),
        (8, EvtchnOp::BindVcpu),
        (9, EvtchnOp::Unmask),
        (10, EvtchnOp::Reset),
        (11, EvtchnOp::InitControl),
        (12, EvtchnOp::ExpandArray),
        (13, EvtchnOp::SetPriority),
    ];
    for (n, op) in ev {
        assert_eq!(EvtchnOp::from_raw(n), Some(op));
    }
    assert_eq!(EvtchnOp::from_raw(14), None);
    assert_eq!(stat::INTERDOMAIN, 2);
    assert_eq!(stat::IPI, 5);
    assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
    assert_eq!(virq::TIMER, 0);
    assert_eq!(virq::CONSOLE, 2);
    assert_eq!(virq::DOM_EXC, 3);
    assert_eq!(virq::NR_VIRQS, 24);

    assert_eq!(VcpuOp::RegisterRunstateMemoryArea.raw(), 5);
    assert_eq!(VcpuOp::RegisterVcpuInfo.raw(), 10);
    assert_eq!(VcpuOp::from_raw(15), Some(VcpuOp::RegisterVcpuTimePhysArea));
    assert_eq!(SchedOp::Shutdown.raw(), 2);
    assert_eq!(SchedOp::PinOverride.raw(), 7);
    assert_eq!(ShutdownReason::from_raw(3), Some(ShutdownReason::Crash));
    assert_eq!(ShutdownReason::SoftReset.raw(), 5);
    assert_eq!(ShutdownReason::from_raw(6), None);
    assert_eq!(HvmOp::GetParam.raw(), 1);
    assert_eq!(param::STORE_PFN, 1);
    assert_eq!(param::STORE_EVTCHN, 2);
    assert_eq!(param::CONSOLE_PFN, 17);
    assert_eq!(param::CONSOLE_EVTCHN, 18);
    assert_eq!(XENPF_SETTIME64, 62);
}

#[test]
fn domids() {
    assert_eq!(domid::SELF, 0x7FF0);
    assert_eq!(domid::FIRST_RESERVED, 0x7FF0);
    assert_eq!(domid::IO, 0x7FF1);
    assert_eq!(domid::XEN, 0x7FF2);
    assert_eq!(domid::INVALID, 0x7FF4);
    assert_eq!(domid::IDLE, 0x7FFF);
    assert!(domid::is_ordinary(0));
    assert!(!domid::is_ordinary(domid::SELF));
    assert_eq!(domid::resolve(domid::SELF, 3), 3);
    assert_eq!(domid::resolve(5, 3), 5);
}

#[test]
fn errnos() {
    let expect = [
        (Errno::EPERM, 1),
        (Errno::ENOENT, 2),
        (Errno::ESRCH, 3),
        (Errno::EINTR, 4),
        (Errno::EIO, 5),
        (Errno::E2BIG, 7),
        (Errno::EBADF, 9),
        (Errno::EAGAIN, 11),
        (Errno::ENOMEM, 12),
        (Errno::EACCES, 13),
        (Errno::EFAULT, 14),
        (Errno::EBUSY, 16),
        (Errno::EEXIST, 17),
        (Errno::EINVAL, 22),
        (Errno::ENOSPC, 28),
        (Errno::ENOSYS, 38),
        (Errno::EOPNOTSUPP, 95),
    ];
    for (e, v) in expect {
        assert_eq!(e.raw(), v);
        assert_eq!(e.as_i64(), -(v as i64));
        assert_eq!(e.as_ret(), (-(v as i64)) as u64);
        assert_eq!(Errno::from_ret(e.as_ret()), Some(e));
    }
    assert_eq!(Errno::ENOSYS.as_ret(), 0xFFFF_FFFF_FFFF_FFDA);
    assert_eq!(Errno::from_ret(0), None);
    assert_eq!(Errno::from_ret(5), None);
}

#[test]
fn byte_round_trips() {
    let m = GnttabMapGrantRef {
        host_addr: 0x1122_3344_5566_7788,
        flags: gntmap::HOST_MAP | gntmap::READONLY,
        ref_: 0xAABB_CCDD,
        dom: 7,
        status: GntSt::BadHandle.as_i16(),
        handle: 0x0102_0304,
        dev_bus_addr: 0xFFEE_DDCC_BBAA_9988,
    };
    let b = m.to_bytes();
    assert_eq!(b.len(), 32);
    assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[8..12], &6u32.to_le_bytes());
    assert_eq!(&b[12..16], &0xAABB_CCDDu32.to_le_bytes());
    assert_eq!(&b[16..18], &7u16.to_le_bytes());
    assert_eq!(&b[18..20], &(-4i16).to_le_bytes());
    assert_eq!(GnttabMapGrantRef::from_bytes(&b), Some(m));
    assert_eq!(GnttabMapGrantRef::from_bytes(&b[..31]), None);
    let mut long = [0u8; 33];
    long[..32].copy_from_slice(&b);
    assert_eq!(GnttabMapGrantRef::from_bytes(&long), None);

    // Padding is written as zero and ignored on reading.
    let a = EvtchnBindInterdomain {
        remote_dom: 0x7FF0,
        remote_port: 9,
        local_port: 10,
    };
    let mut b = a.to_bytes();
    assert_eq!(&b[2..4], &[0, 0]);
    b[2] = 0xFF;
    b[3] = 0xFF;
    assert_eq!(EvtchnBindInterdomain::from_bytes(&b), Some(a));

    // Nested structures and unions.
    let c = GnttabCopy {
        source: GnttabCopyPtr {
            u: 0x10,
            domid: 1,
            offset: 2,
        },
        dest: GnttabCopyPtr {
            u: 0xDEAD_BEEF_0000_0042,
            domid: domid::SELF,
            offset: 4000,
        },
        len: 96,
        flags: gntcopy::SOURCE_GREF,
        status: 0,
    };
    let b = c.to_bytes();
    assert_eq!(&b[16..24], &0xDEAD_BEEF_0000_0042u64.to_le_bytes());
    assert_eq!(&b[24..26], &0x7FF0u16.to_le_bytes());
    assert_eq!(&b[32..34], &96u16.to_le_bytes());
    let back = GnttabCopy::from_bytes(&b).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.source.gref(), 0x10);
    assert_eq!(back.dest.gmfn(), 0xDEAD_BEEF_0000_0042);
    assert_eq!(back.dest.gref(), 0x42);

    let mut s = EvtchnStatus {
        dom: domid::SELF,
        port: 5,
        ..Default::default()
    };
    s.status = stat::INTERDOMAIN;
    s.set_interdomain(3, 77);
    let b = s.to_bytes();
    assert_eq!(&b[16..18], &3u16.to_le_bytes());
    assert_eq!(&b[20..24], &77u32.to_le_bytes());
    let back = EvtchnStatus::from_bytes(&b).unwrap();
    assert_eq!((back.remote_dom(), back.remote_port()), (3, 77));
    s.set_unbound(9);
    assert_eq!(s.remote_dom(), 9);
    s.set_irq(2);
    assert_eq!(s.irq(), 2);

    let h = PrivcmdHypercall {
        op: 17,
        arg: [6, 0x1000, 0, 0, 5],
    };
    let b = h.to_bytes();
    assert_eq!(&b[8..16], &6u64.to_le_bytes());
    assert_eq!(&b[40..48], &5u64.to_le_bytes());
    assert_eq!(PrivcmdHypercall::from_bytes(&b), Some(h));

    let mut p = XenPlatformOp {
        cmd: XENPF_SETTIME64,
        interface_version: XENPF_INTERFACE_VERSION,
        ..Default::default()
    };
    p.u[0] = 1_700_000_000;
    p.u[1] = 500;
    p.u[2] = 42;
    let t = XenPlatformOp::from_bytes(&p.to_bytes())
        .unwrap()
        .settime64();
    assert_eq!(
        (t.secs, t.nsecs, t.mbz, t.system_time),
        (1_700_000_000, 500, 0, 42)
    );

    // Every plain structure survives a round trip of a non-trivial pattern.
    fn pattern<T: Wire + PartialEq + core::fmt::Debug>() {
        let bytes: std::vec::Vec<u8> = (0..T::SIZE)
            .map(|i| (i as u8).wrapping_mul(37) | 1)
            .collect();
        let v = T::decode(&bytes).unwrap();
        let mut out = std::vec![0u8; T::SIZE];
        v.encode(&mut out).unwrap();
        assert_eq!(T::decode(&out).unwrap(), v);
        assert!(T::decode(&bytes[..T::SIZE - 1]).is_none());
        assert!(v.encode(&mut std::vec![0u8; T::SIZE + 1]).is_none());
    }
    pattern::<MulticallEntry>();
    pattern::<XenFeatureInfo>();
    pattern::<EvtchnAllocUnbound>();
    pattern::<EvtchnStatus>();
    pattern::<EvtchnInitControl>();
    pattern::<GnttabSetupTable>();
    pattern::<GnttabQuerySize>();
    pattern::<GnttabUnmapGrantRef>();
    pattern::<GnttabCacheFlush>();
    pattern::<XenAddToPhysmap>();
    pattern::<XenAddToPhysmapRange>();
    pattern::<XenRemoveFromPhysmap>();
    pattern::<XenMemAcquireResource>();
    pattern::<VcpuRunstateInfo>();
    pattern::<VcpuRegisterVcpuInfo>();
    pattern::<SchedPoll>();
    pattern::<XenHvmParam>();
    pattern::<PrivcmdMmapbatchV2>();
    pattern::<XenSysctl>();
    pattern::<XenSysctlGetdomaininfolist>();
    pattern::<XenArchDomainconfig>();
    pattern::<XenDomctlGetdomaininfo>();
}

#[test]
fn shared_memory_types() {
    let s = SharedInfo::new();
    assert_eq!(s.evtchn_pending[63].load(Ordering::Relaxed), 0);
    s.vcpu_info[0]
        .evtchn_upcall_pending
        .store(1, Ordering::Relaxed);
    assert_eq!(
        s.vcpu_info[0].evtchn_upcall_pending.load(Ordering::Relaxed),
        1
    );

    let e = GrantEntryV1::new();
    e.grant(gtf::PERMIT_ACCESS | gtf::READONLY, 0x1234, 0xABCDE);
    assert_eq!(e.flags(), gtf::PERMIT_ACCESS | gtf::READONLY);
    assert_eq!(e.domid(), 0x1234);
    assert_eq!(e.frame(), 0xABCDE);
    // flags is the low half of the first word: offset 0 in memory, domid at offset 2.
    let w = e.flags_domid.load(Ordering::Relaxed).to_le_bytes();
    assert_eq!(
        u16::from_le_bytes([w[0], w[1]]),
        gtf::PERMIT_ACCESS | gtf::READONLY
    );
    assert_eq!(u16::from_le_bytes([w[2], w[3]]), 0x1234);
    assert_eq!(GrantEntryV1::unpack(GrantEntryV1::pack(7, 9)), (7, 9));

    let c = XenconsInterface::new();
    assert_eq!(c.out_prod.load(Ordering::Relaxed), 0);
}
