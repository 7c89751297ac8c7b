//! The Linux side: `/dev/xen/privcmd` (hypercalls), `/dev/xen/hypercall` (buffers the
//! hypervisor may touch) and `/dev/xen/evtchn` (event channels). Every `unsafe` block of
//! `xenctl` is here.

use std::ffi::CStr;
use std::fmt;
use std::time::Duration;

use xen_abi::linux::{
    IOCTL_EVTCHN_BIND_INTERDOMAIN, IOCTL_EVTCHN_BIND_UNBOUND_PORT, IOCTL_EVTCHN_NOTIFY,
    IOCTL_PRIVCMD_HYPERCALL, IOCTL_PRIVCMD_MMAPBATCH_V2, IoctlEvtchnBindInterdomain,
    IoctlEvtchnBindUnboundPort, IoctlEvtchnNotify, PrivcmdHypercall, PrivcmdMmapbatchV2,
};
use xen_abi::{DomId, EvtchnPort};
use xenctl::errno_name;

/// A failed system call: what was tried, and the errno it gave.
#[derive(Debug)]
pub struct SysError {
    /// The call, e.g. `ioctl IOCTL_EVTCHN_NOTIFY on /dev/xen/evtchn`.
    pub what: String,
    /// The positive errno.
    pub errno: i32,
}

impl SysError {
    fn last(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.errno).to_string();
        // Without std's " (os error N)": the name says it.
        let text = text.split(" (os error").next().unwrap_or_default();
        write!(f, "{}: {} ({text})", self.what, errno_name(self.errno))
    }
}

impl std::error::Error for SysError {}

/// An open file descriptor, closed on drop.
#[derive(Debug)]
struct Fd {
    fd: libc::c_int,
    path: &'static str,
}

impl Fd {
    fn open(path: &'static CStr) -> Result<Self, SysError> {
        let shown = path.to_str().unwrap_or("?");
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(SysError::last(format!("open {shown}")));
        }
        Ok(Self { fd, path: shown })
    }

    /// `ioctl(fd, request, arg)`; returns the (non-negative) result.
    ///
    /// # Safety
    ///
    /// `arg` must point to the structure `request` expects, valid for the kernel to read
    /// and write for the whole call, and any pointer inside it must be valid likewise.
    unsafe fn ioctl<T>(&self, request: u32, name: &str, arg: *mut T) -> Result<u32, SysError> {
        // SAFETY: the caller vouches for `arg`; the fd is open.
        let r = unsafe { libc::ioctl(self.fd, request as _, arg) };
        if r < 0 {
            return Err(SysError::last(format!("ioctl {name} on {}", self.path)));
        }
        Ok(r as u32)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// `/dev/xen/privcmd`: hypercalls passed through the kernel.
#[derive(Debug)]
pub struct Privcmd {
    fd: Fd,
}

/// Where the dom0 kernel's privcmd driver appears (`xen-privcmd` module).
const PRIVCMD: &CStr = c"/dev/xen/privcmd";
/// privcmd's hypercall-buffer device (`xen/hypercall`, same module).
const HYPERCALL_BUF: &CStr = c"/dev/xen/hypercall";
/// The event-channel device (`xen-evtchn` module).
const EVTCHN: &CStr = c"/dev/xen/evtchn";

impl Privcmd {
    /// Opens the device.
    pub fn open() -> Result<Self, SysError> {
        Ok(Self {
            fd: Fd::open(PRIVCMD)?,
        })
    }

    /// Makes hypercall `op` with `args` (`IOCTL_PRIVCMD_HYPERCALL`); returns its
    /// non-negative result. A negative result comes back as the errno. `name` names the
    /// call in errors. Pointer arguments must point into a [`HypercallBuffer`].
    pub fn hypercall(&self, op: u32, args: [u64; 5], name: &str) -> Result<u32, SysError> {
        let mut call = PrivcmdHypercall {
            op: op.into(),
            arg: args,
        };
        // SAFETY: `call` is the `struct privcmd_hypercall` the ioctl takes (same layout,
        // checked in xen-abi), alive for the call; the pointers inside `args` are the
        // caller's, into resident hypercall buffers.
        unsafe {
            self.fd.ioctl(
                IOCTL_PRIVCMD_HYPERCALL,
                "IOCTL_PRIVCMD_HYPERCALL",
                &mut call,
            )
        }
        .map_err(|e| SysError {
            what: format!("{name} (through {})", e.what),
            errno: e.errno,
        })
    }
}

/// The page size of Xen's ABI (and of Debian's arm64 kernel).
const PAGE: usize = 4096;

/// One page of another domain's memory, mapped read-only into this process through
/// privcmd (`IOCTL_PRIVCMD_MMAPBATCH_V2`, which the kernel carries out with
/// `XENMEM_add_to_physmap_range` of `XENMAPSPACE_gmfn_foreign`); unmapped on drop.
#[derive(Debug)]
pub struct ForeignPage {
    addr: *mut libc::c_void,
    // Keeps the privcmd descriptor the mapping belongs to open.
    _privcmd: Privcmd,
}

impl ForeignPage {
    /// Maps guest frame `gfn` of domain `domid`.
    pub fn map(domid: u16, gfn: u64) -> Result<Self, SysError> {
        let privcmd = Privcmd::open()?;
        // SAFETY: a new shared read-only mapping of one page of the privcmd device; no
        // Rust reference to it exists until the kernel has filled it in.
        let addr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                PAGE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                privcmd.fd.fd,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(SysError::last("mmap of /dev/xen/privcmd"));
        }
        let page = Self {
            addr,
            _privcmd: privcmd,
        };
        let mut frames = [gfn];
        let mut errs = [0i32; 1];
        let mut batch = PrivcmdMmapbatchV2 {
            num: 1,
            dom: domid,
            addr: addr as u64,
            arr: frames.as_mut_ptr() as u64,
            err: errs.as_mut_ptr() as u64,
        };
        // SAFETY: `batch` is the `struct privcmd_mmapbatch_v2` the ioctl takes (layout
        // checked in xen-abi); `arr` and `err` point to one element each, alive for the
        // call; `addr` is the start of the privcmd mapping made above.
        unsafe {
            page._privcmd.fd.ioctl(
                IOCTL_PRIVCMD_MMAPBATCH_V2,
                "IOCTL_PRIVCMD_MMAPBATCH_V2",
                &mut batch,
            )
        }?;
        if errs[0] != 0 {
            return Err(SysError {
                what: format!("mapping frame {gfn:#x} of domain {domid}"),
                errno: -errs[0],
            });
        }
        Ok(page)
    }

    /// A copy of `len` bytes from `offset` (within the page).
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        let len = len.min(PAGE.saturating_sub(offset));
        let mut out = vec![0u8; len];
        for (i, byte) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i` is inside the one mapped page (clamped above), which
            // the kernel filled in before `map` returned; the other domain may change it
            // meanwhile, so each byte is read volatile and no reference is made.
            *byte = unsafe { core::ptr::read_volatile((self.addr as *const u8).add(offset + i)) };
        }
        out
    }
}

impl Drop for ForeignPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once, with no reference left.
        unsafe { libc::munmap(self.addr, PAGE) };
    }
}

/// Memory the hypervisor reads and writes during a hypercall. The hypervisor walks this
/// domain's page tables at the user address given, so the pages must stay present and in
/// place: taken from `/dev/xen/hypercall` (pages the kernel allocated for the purpose and
/// maps with `VM_IO`: never swapped, never migrated) when the device exists, else
/// anonymous memory locked with `mlock` (resident, though the kernel may still migrate
/// it; what tools did before the device existed).
#[derive(Debug)]
pub struct HypercallBuffer {
    ptr: *mut u8,
    len: usize,
    /// Keeps the device open while mapped (closing it would not unmap, but the
    /// mapping belongs with it).
    _device: Option<Fd>,
    /// How the pages were obtained, for messages.
    pub source: &'static str,
}

impl HypercallBuffer {
    /// `pages` zeroed pages.
    pub fn new(pages: usize) -> Result<Self, SysError> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = pages.max(1) * page;
        if let Ok(device) = Fd::open(HYPERCALL_BUF) {
            // SAFETY: a new shared mapping of the device at an address the kernel picks;
            // nothing else refers to it.
            let ptr = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    device.fd,
                    0,
                )
            };
            if ptr != libc::MAP_FAILED {
                return Ok(Self {
                    ptr: ptr.cast(),
                    len,
                    _device: Some(device),
                    source: "/dev/xen/hypercall",
                });
            }
        }
        // SAFETY: a new private anonymous mapping at an address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(SysError::last("mmap of a hypercall buffer"));
        }
        let buffer = Self {
            ptr: ptr.cast(),
            len,
            _device: None,
            source: "mlock",
        };
        // SAFETY: the range is the mapping just made.
        if unsafe { libc::mlock(ptr, len) } != 0 {
            return Err(SysError::last("mlock of a hypercall buffer"));
        }
        Ok(buffer)
    }

    /// The user virtual address of byte `offset`, as a hypercall argument.
    pub fn addr(&self, offset: usize) -> u64 {
        assert!(offset <= self.len, "offset beyond the buffer");
        self.ptr.wrapping_add(offset) as u64
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `data` in at `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset.checked_add(data.len()).expect("no overflow");
        assert!(end <= self.len, "write beyond the buffer");
        // SAFETY: `offset..end` lies inside the mapping (checked above), which is ours
        // and writable; `data` cannot overlap it (it is not handed out as a slice).
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) };
    }

    /// Copies `len` bytes out from `offset` (after the hypervisor wrote them).
    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        let end = offset.checked_add(len).expect("no overflow");
        assert!(end <= self.len, "read beyond the buffer");
        let mut out = vec![0u8; len];
        // SAFETY: `offset..end` lies inside the mapping (checked above), readable; read
        // through the raw pointer each time, so what the hypervisor wrote during an
        // ioctl (the address escaped to the kernel) is what is copied.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), len) };
        out
    }
}

impl Drop for HypercallBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, made in `new`, unmapped once; nothing refers to it
        // any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `/dev/xen/evtchn`: event channels bound to this process.
#[derive(Debug)]
pub struct Evtchn {
    fd: Fd,
}

impl Evtchn {
    /// Opens the device.
    pub fn open() -> Result<Self, SysError> {
        Ok(Self {
            fd: Fd::open(EVTCHN)?,
        })
    }

    /// `IOCTL_EVTCHN_BIND_UNBOUND_PORT`: a new port that `remote` may bind.
    pub fn bind_unbound_port(&self, remote: DomId) -> Result<EvtchnPort, SysError> {
        let mut arg = IoctlEvtchnBindUnboundPort {
            remote_domain: remote.into(),
        };
        // SAFETY: the argument structure of this ioctl, alive for the call.
        unsafe {
            self.fd.ioctl(
                IOCTL_EVTCHN_BIND_UNBOUND_PORT,
                "IOCTL_EVTCHN_BIND_UNBOUND_PORT",
                &mut arg,
            )
        }
    }

    /// `IOCTL_EVTCHN_BIND_INTERDOMAIN`: binds `remote`'s unbound `port`; returns the local
    /// port.
    pub fn bind_interdomain(
        &self,
        remote: DomId,
        port: EvtchnPort,
    ) -> Result<EvtchnPort, SysError> {
        let mut arg = IoctlEvtchnBindInterdomain {
            remote_domain: remote.into(),
            remote_port: port,
        };
        // SAFETY: the argument structure of this ioctl, alive for the call.
        unsafe {
            self.fd.ioctl(
                IOCTL_EVTCHN_BIND_INTERDOMAIN,
                "IOCTL_EVTCHN_BIND_INTERDOMAIN",
                &mut arg,
            )
        }
    }

    /// `IOCTL_EVTCHN_NOTIFY`: signals the other end of `port`.
    pub fn notify(&self, port: EvtchnPort) -> Result<(), SysError> {
        let mut arg = IoctlEvtchnNotify { port };
        // SAFETY: the argument structure of this ioctl, alive for the call.
        unsafe {
            self.fd
                .ioctl(IOCTL_EVTCHN_NOTIFY, "IOCTL_EVTCHN_NOTIFY", &mut arg)
        }
        .map(|_| ())
    }

    /// Waits up to `timeout` (`None`: for ever) for pending ports and reads them: each
    /// arrives once and stays masked (the driver disables it) until [`Self::unmask`].
    /// An empty list means the time ran out.
    pub fn pending(&self, timeout: Option<Duration>) -> Result<Vec<EvtchnPort>, SysError> {
        let ms = timeout.map_or(-1, |t| {
            libc::c_int::try_from(t.as_millis()).unwrap_or(libc::c_int::MAX)
        });
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, alive for the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = SysError::last(format!("poll on {}", self.fd.path));
                if e.errno == libc::EINTR {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Ok(Vec::new());
            }
            let mut buf = [0u8; 256];
            // SAFETY: `buf` is writable for its whole length during the call.
            let n = unsafe { libc::read(self.fd.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = SysError::last(format!("read of {}", self.fd.path));
                if e.errno == libc::EINTR || e.errno == libc::EAGAIN {
                    continue;
                }
                return Err(e);
            }
            return Ok(xenctl::ports_in(&buf[..n as usize]));
        }
    }

    /// Re-enables delivery of `port` after [`Self::pending`] returned it (`write()` of
    /// the port number).
    pub fn unmask(&self, port: EvtchnPort) -> Result<(), SysError> {
        let bytes = port.to_ne_bytes();
        // SAFETY: `bytes` is readable for its length during the call.
        let n = unsafe { libc::write(self.fd.fd, bytes.as_ptr().cast(), bytes.len()) };
        let what = || format!("write (unmask port {port}) to {}", self.fd.path);
        match usize::try_from(n) {
            Ok(4) => Ok(()),
            Ok(_) => Err(SysError {
                what: what(),
                errno: libc::EIO,
            }),
            Err(_) => Err(SysError::last(what())),
        }
    }
}
