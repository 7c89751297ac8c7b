//! `vcpu_op` (`vcpu.h`): `VCPUOP_*` sub-ops and arguments. The call is
//! `vcpu_op(cmd, vcpuid, arg)`.

abi_enum! {
    /// `vcpu_op` sub-op (first argument).
    pub enum VcpuOp: u32 {
        /// Set the initial context of a vCPU.
        Initialise = 0,
        /// Start a vCPU.
        Up = 1,
        /// Stop a vCPU.
        Down = 2,
        /// Returns 1 if the vCPU is up.
        IsUp = 3,
        /// Fills a [`VcpuRunstateInfo`].
        GetRunstateInfo = 4,
        /// [`VcpuRegisterRunstateMemoryArea`].
        RegisterRunstateMemoryArea = 5,
        /// Periodic timer (x86).
        SetPeriodicTimer = 6,
        /// Stop the periodic timer.
        StopPeriodicTimer = 7,
        /// [`VcpuSetSingleshotTimer`].
        SetSingleshotTimer = 8,
        /// Stop the single-shot timer.
        StopSingleshotTimer = 9,
        /// [`VcpuRegisterVcpuInfo`].
        RegisterVcpuInfo = 10,
        /// Send an NMI (x86).
        SendNmi = 11,
        /// Physical id of the vCPU's CPU.
        GetPhysid = 12,
        /// Register a `vcpu_time_info` area by virtual address.
        RegisterVcpuTimeMemoryArea = 13,
        /// Register the runstate area by physical address.
        RegisterRunstatePhysArea = 14,
        /// Register a `vcpu_time_info` area by physical address.
        RegisterVcpuTimePhysArea = 15,
    }
}

/// Runstate values (`RUNSTATE_*`).
pub mod runstate {
    /// Running on a physical CPU.
    pub const RUNNING: i32 = 0;
    /// Runnable, waiting for a CPU.
    pub const RUNNABLE: i32 = 1;
    /// Blocked.
    pub const BLOCKED: i32 = 2;
    /// Offline.
    pub const OFFLINE: i32 = 3;
}

/// Set in `state_entry_time` while the hypervisor updates a runstate area (when the guest
/// enabled `VMASST_TYPE_runstate_update_flag`).
pub const RUNSTATE_UPDATE: u64 = 1 << 63;

wire_struct! {
    /// `struct vcpu_runstate_info`.
    pub struct VcpuRunstateInfo {
        /// A [`runstate`] value.
        pub state: i32,
        /// System time at which `state` was entered.
        pub state_entry_time: u64,
        /// Time spent in each runstate, nanoseconds.
        pub time: [u64; 4],
    }
}

wire_struct! {
    /// `struct vcpu_register_runstate_memory_area`: the union `addr` (a guest virtual
    /// address here).
    pub struct VcpuRegisterRunstateMemoryArea {
        /// Where to keep a [`VcpuRunstateInfo`] up to date.
        pub addr: u64,
    }
}

wire_struct! {
    /// `struct vcpu_register_vcpu_info`.
    pub struct VcpuRegisterVcpuInfo {
        /// Guest frame holding the `vcpu_info`.
        pub mfn: u64,
        /// Offset in that frame.
        pub offset: u32,
        /// Unused.
        pub rsvd: u32,
    }
}

wire_struct! {
    /// `struct vcpu_set_singleshot_timer`.
    pub struct VcpuSetSingleshotTimer {
        /// Absolute system time, nanoseconds.
        pub timeout_abs_ns: u64,
        /// `VCPU_SSHOTTMR_*` flags.
        pub flags: u32,
    }
}
