//! Running host commands and printing them so they can be pasted into a shell.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus};

use anyhow::{Context, Result, bail};

/// Quotes one word for a POSIX shell; words made only of safe characters stay as they are.
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The command line of `cmd` as a shell would need it typed (program and arguments only).
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w: &OsStr| quote(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints `$ <command>`, runs it with inherited stdio and returns its exit status.
pub fn run(cmd: &mut Command) -> Result<ExitStatus> {
    let line = display(cmd);
    println!("$ {line}");
    cmd.status()
        .with_context(|| format!("cannot start `{line}`"))
}

/// Like [`run`], but a non-zero exit status is an error.
pub fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = run(cmd)?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(cmd));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("virt,virtualization=on"), "virt,virtualization=on");
        assert_eq!(quote("target/xtask/hyp.bin"), "target/xtask/hyp.bin");
        assert_eq!(quote(""), "''");
        assert_eq!(
            quote("selftest=wx loglvl=debug"),
            "'selftest=wx loglvl=debug'"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn displays_command() {
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(["-append", "loglvl=debug a=b", "-s"]);
        assert_eq!(
            display(&cmd),
            "qemu-system-aarch64 -append 'loglvl=debug a=b' -s"
        );
    }
}
