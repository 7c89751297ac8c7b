//! `xenctl`: the hypervisor's version and features, the domains it shows, and an
//! event-channel ping-pong, through the Linux kernel's Xen devices (`/dev/xen/privcmd`,
//! `/dev/xen/hypercall`, `/dev/xen/evtchn`). Built statically for
//! `aarch64-unknown-linux-musl` and put in the domains' initramfs by `cargo xtask`.

use std::process::ExitCode;

use xenctl::Command;

#[cfg(target_os = "linux")]
mod commands;
#[cfg(target_os = "linux")]
mod sys;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match xenctl::parse(&args) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("xenctl: {why}\n\n{}", xenctl::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenctl: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => {
            print!("{}", xenctl::USAGE);
            Ok(())
        }
        _ => Err("this command needs Linux's /dev/xen devices".into()),
    }
}

#[cfg(target_os = "linux")]
fn run(command: Command) -> Result<(), commands::Failure> {
    match command {
        Command::Help => {
            print!("{}", xenctl::USAGE);
            Ok(())
        }
        Command::Version => commands::version(),
        Command::Domains => commands::domains(),
        Command::Pong { remote, count } => commands::pong(remote, count),
        Command::Ping {
            remote,
            port,
            count,
        } => commands::ping(remote, port, count),
        Command::Peek {
            domid,
            gfn,
            offset,
            len,
        } => commands::peek(domid, gfn, offset, len),
    }
}
