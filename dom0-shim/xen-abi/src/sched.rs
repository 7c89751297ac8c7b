//! `sched_op` (`sched.h`): `SCHEDOP_*` sub-ops, shutdown reasons, arguments.

use crate::DomId;

abi_enum! {
    /// `sched_op` sub-op (first argument).
    pub enum SchedOp: u32 {
        /// Give up the CPU.
        Yield = 0,
        /// Block until an event is pending.
        Block = 1,
        /// [`SchedShutdown`]: stop the domain.
        Shutdown = 2,
        /// [`SchedPoll`]: block until one of some ports is pending.
        Poll = 3,
        /// [`SchedRemoteShutdown`]: stop another domain.
        RemoteShutdown = 4,
        /// Record a shutdown code without shutting down.
        ShutdownCode = 5,
        /// Watchdog.
        Watchdog = 6,
        /// Pin override.
        PinOverride = 7,
    }
}

abi_enum! {
    /// Shutdown reasons (`SHUTDOWN_*`).
    pub enum ShutdownReason: u32 {
        /// Normal exit.
        Poweroff = 0,
        /// Restart.
        Reboot = 1,
        /// Suspend.
        Suspend = 2,
        /// Crashed.
        Crash = 3,
        /// Watchdog expired.
        Watchdog = 4,
        /// Soft reset.
        SoftReset = 5,
    }
}

wire_struct! {
    /// `struct sched_shutdown`.
    pub struct SchedShutdown {
        /// [`ShutdownReason`].
        pub reason: u32,
    }
}

wire_struct! {
    /// `struct sched_poll` (the ports array is behind the handle).
    pub struct SchedPoll {
        /// Guest handle: `evtchn_port_t ports[nr_ports]`.
        pub ports: u64,
        /// Number of ports.
        pub nr_ports: u32,
        /// Absolute timeout (system time, ns), 0 for none.
        pub timeout: u64,
    }
}

wire_struct! {
    /// `struct sched_remote_shutdown`.
    pub struct SchedRemoteShutdown {
        /// Domain to stop.
        pub domain_id: DomId,
        /// [`ShutdownReason`].
        pub reason: u32,
    }
}
