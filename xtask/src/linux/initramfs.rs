//! A busybox initramfs: a gzip-compressed cpio `newc` archive, as the kernel unpacks it.
//!
//! It holds a static busybox at `/bin/busybox` (its applet links are made by `/init` with
//! `busybox --install -s`: the applet list comes from the arm64 binary, which the host
//! cannot run), `/dev/console` (the kernel opens it for `/init` before any devtmpfs
//! exists), empty mount points, an `/init` script, optionally a test script that `/init`
//! runs before powering off, and optionally kernel modules with their `modules.dep`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::modules::{self, Tree};

/// Where `/init` finds the test script.
pub const TEST_SCRIPT: &str = "test/run.sh";
/// Modules `/init` loads with `modprobe`, one name a line.
pub const MODULE_LIST: &str = "etc/modules";

/// The `/init` script: mount the pseudo file systems, make the applet links, load the
/// modules of `/etc/modules`, (with the Xen tools) mount xenfs, then run the test script
/// and power off, or start a shell. [`INIT_HEAD`], then [`INIT_XENFS`] if wanted, then
/// [`INIT_TAIL`].
const INIT_HEAD: &str = r#"#!/bin/busybox sh
# /init of an initramfs made by `cargo xtask` (xtask/src/linux/initramfs.rs).
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin HOME=/root
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
if [ -s /etc/modules ]; then
    while read -r m; do
        modprobe "$m" || echo "init: modprobe $m failed"
    done < /etc/modules
fi
"#;

/// The part of `/init` an initramfs with the Xen tools adds: xenfs at `/proc/xen` (the
/// module makes that mount point itself, when the kernel runs under Xen).
const INIT_XENFS: &str = r#"if [ -d /sys/module/xenfs ] && [ -d /proc/xen ]; then
    mount -t xenfs xenfs /proc/xen || echo "init: mount xenfs failed"
fi
"#;

const INIT_TAIL: &str = r#"if [ -f /test/run.sh ]; then
    echo "init: running the test script"
    sh /test/run.sh
    echo "init: test script exit status $?"
    poweroff -f
    sleep 10
    echo "init: poweroff -f failed"
fi
echo "init: busybox shell on the console; 'poweroff -f' powers the machine off"
exec setsid cttyhack sh -l
"#;

/// The `/init` script, with the xenfs mount or without.
pub fn init_script(xenfs: bool) -> String {
    let mut text = String::from(INIT_HEAD);
    if xenfs {
        text += INIT_XENFS;
    }
    text + INIT_TAIL
}

/// What goes into an initramfs besides the fixed layout.
#[derive(Debug, Default)]
pub struct Spec<'a> {
    /// A static arm64 busybox.
    pub busybox: Vec<u8>,
    /// A shell script `/init` runs (then it powers off); none: an interactive shell.
    pub script: Option<String>,
    /// Modules to include and load at boot, with the tree they come from and the kernel
    /// release (`uname -r`, the directory name under `/lib/modules`).
    pub modules: Option<(&'a Tree, &'a str, Vec<String>)>,
    /// More programs, mode 0755: path in the archive (no leading `/`, e.g.
    /// `bin/xenctl`) and contents.
    pub executables: Vec<(String, Vec<u8>)>,
    /// Mount xenfs at `/proc/xen` in `/init` (with the Xen modules loaded).
    pub xenfs: bool,
}

/// One archive member: path, mode (type and permissions), contents, and for a device
/// node its major and minor numbers.
type Entry = (String, u32, Vec<u8>, Option<(u32, u32)>);

/// The entries of a cpio archive, written in order (directories before what they hold).
#[derive(Debug, Default)]
struct Archive {
    entries: Vec<Entry>,
    dirs: BTreeSet<String>,
}

impl Archive {
    fn dir(&mut self, path: &str) {
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_owned());
        self.entries
            .push((path.to_owned(), 0o040_755, Vec::new(), None));
    }

    fn parent_of(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
    }

    fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) {
        self.parent_of(path);
        self.entries
            .push((path.to_owned(), 0o100_000 | perm, data, None));
    }

    fn symlink(&mut self, path: &str, target: &str) {
        self.parent_of(path);
        self.entries
            .push((path.to_owned(), 0o120_777, target.as_bytes().to_vec(), None));
    }

    fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.parent_of(path);
        self.entries.push((
            path.to_owned(),
            0o020_000 | perm,
            Vec::new(),
            Some((major, minor)),
        ));
    }

    fn write(&self, out: impl Write) -> Result<()> {
        let mut out = out;
        for (ino, (path, mode, data, rdev)) in (1u32..).zip(&self.entries) {
            let mut builder = cpio::newc::Builder::new(path)
                .ino(ino)
                .mode(*mode)
                .nlink(if mode & 0o170_000 == 0o040_000 { 2 } else { 1 });
            if let Some((major, minor)) = rdev {
                builder = builder.rdev_major(*major).rdev_minor(*minor);
            }
            let len = u32::try_from(data.len()).context("file too large for cpio")?;
            let mut writer = builder.write(&mut out, len);
            writer.write_all(data)?;
            writer.finish()?;
        }
        cpio::newc::trailer(&mut out)?;
        Ok(())
    }
}

/// Builds the initramfs for `spec` and writes it, gzip-compressed, to `out`.
pub fn build(spec: &Spec<'_>, out: &Path) -> Result<()> {
    ensure!(!spec.busybox.is_empty(), "no busybox for the initramfs");
    let mut a = Archive::default();
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "etc", "root", "mnt",
        "run",
    ] {
        a.dir(dir);
    }
    a.char_dev("dev/console", 0o600, 5, 1);
    a.char_dev("dev/null", 0o666, 1, 3);
    a.file("bin/busybox", 0o755, spec.busybox.clone());
    a.symlink("bin/sh", "busybox");
    a.file("init", 0o755, init_script(spec.xenfs).into_bytes());
    a.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
    );
    a.file("etc/group", 0o644, b"root:x:0:\n".to_vec());
    if let Some(script) = &spec.script {
        a.file(TEST_SCRIPT, 0o755, script.as_bytes().to_vec());
    }
    for (path, data) in &spec.executables {
        ensure!(
            !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != ".."),
            "bad executable path {path:?} for the initramfs"
        );
        ensure!(
            !a.entries.iter().any(|e| e.0 == *path),
            "{path} is already in the initramfs"
        );
        a.file(path, 0o755, data.clone());
    }
    if let Some((tree, release, wanted)) = &spec.modules {
        ensure!(
            !release.is_empty() && !release.contains('/'),
            "bad kernel release {release:?}"
        );
        let list = tree.closure(wanted)?;
        let base = format!("lib/modules/{release}");
        for (name, _) in &list {
            let rel = tree.path_of(name).expect("in the closure");
            let path = tree.root().join(rel);
            let data =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            a.file(&format!("{base}/{rel}"), 0o644, data);
        }
        a.file(
            &format!("{base}/modules.dep"),
            0o644,
            tree.modules_dep(&list)?.into_bytes(),
        );
        a.file(
            &format!("{base}/modules.alias"),
            0o644,
            modules::modules_alias(&list).into_bytes(),
        );
        let mut load = String::new();
        for name in wanted {
            load += &modules::canonical(name);
            load.push('\n');
        }
        a.file(MODULE_LIST, 0o644, load.into_bytes());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
    a.write(&mut gz)?;
    gz.finish()?
        .flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// Mode, contents, (rdev major, minor).
    type Member = (u32, Vec<u8>, (u32, u32));

    /// Reads a gzip'd newc archive back, by path.
    fn read_back(path: &Path) -> BTreeMap<String, Member> {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let mut rest = bytes.as_slice();
        let mut out = BTreeMap::new();
        loop {
            let mut entry = cpio::NewcReader::new(rest).unwrap();
            if entry.entry().is_trailer() {
                break;
            }
            let e = entry.entry();
            let key = e.name().to_owned();
            let val = (e.mode(), (e.rdev_major(), e.rdev_minor()));
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(key, (val.0, data, val.1));
            rest = entry.finish().unwrap();
        }
        out
    }

    #[test]
    fn layout_script_and_modules() {
        let dir = crate::linux::deb::tests::temp_dir("initramfs");
        let mods = dir.join("6.1.0-test");
        crate::linux::modules::tests::fake_tree(&mods);
        let tree = Tree::open(&mods).unwrap();
        let out = dir.join("initramfs.cpio.gz");
        let spec = Spec {
            busybox: b"\x7fELF busybox".to_vec(),
            script: Some("echo hello\n".into()),
            modules: Some((&tree, "6.1.0-test", vec!["virtio-blk".into()])),
            ..Spec::default()
        };
        build(&spec, &out).unwrap();
        let files = read_back(&out);
        assert_eq!(files["init"].0, 0o100_755);
        assert!(String::from_utf8_lossy(&files["init"].1).starts_with("#!/bin/busybox sh\n"));
        assert_eq!(files["bin/busybox"].1, b"\x7fELF busybox");
        assert_eq!(files["bin/sh"], (0o120_777, b"busybox".to_vec(), (0, 0)));
        assert_eq!(files["dev/console"].0, 0o020_600);
        assert_eq!(files["dev/console"].2, (5, 1));
        for d in [
            "proc",
            "sys",
            "dev",
            "tmp",
            "lib/modules/6.1.0-test/kernel/drivers",
        ] {
            assert_eq!(files[d].0, 0o040_755, "{d}");
        }
        assert_eq!(files[TEST_SCRIPT].1, b"echo hello\n");
        assert_eq!(files[MODULE_LIST].1, b"virtio_blk\n");
        let base = "lib/modules/6.1.0-test";
        assert!(files.contains_key(&format!("{base}/kernel/drivers/virtio/virtio.ko")));
        assert!(!files.contains_key(&format!("{base}/kernel/drivers/virtio/virtio_mmio.ko")));
        let dep = String::from_utf8(files[&format!("{base}/modules.dep")].1.clone()).unwrap();
        assert_eq!(dep.lines().count(), 3, "{dep}");
        // Every directory comes before what it holds (the kernel needs the parent first).
        let order: Vec<String> = {
            let mut a = Archive::default();
            a.file("x/y/z", 0o644, Vec::new());
            a.entries.iter().map(|e| e.0.clone()).collect()
        };
        assert_eq!(order, ["x", "x/y", "x/y/z"]);
        // Without a script or modules: no test script, no module list.
        let bare = dir.join("bare.cpio.gz");
        build(
            &Spec {
                busybox: b"bb".to_vec(),
                ..Spec::default()
            },
            &bare,
        )
        .unwrap();
        let files = read_back(&bare);
        assert!(!files.contains_key(TEST_SCRIPT) && !files.contains_key(MODULE_LIST));
        assert!(!files.contains_key("bin/xenctl"));
        let init = String::from_utf8(files["init"].1.clone()).unwrap();
        assert!(!init.contains("xenfs"), "no Xen tools, no xenfs:\n{init}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn extra_executables_and_xenfs() {
        let dir = crate::linux::deb::tests::temp_dir("initramfs-xen");
        let out = dir.join("xen.cpio.gz");
        let spec = Spec {
            busybox: b"bb".to_vec(),
            executables: vec![("bin/xenctl".into(), b"\x7fELF xenctl".to_vec())],
            xenfs: true,
            ..Spec::default()
        };
        build(&spec, &out).unwrap();
        let files = read_back(&out);
        assert_eq!(
            files["bin/xenctl"],
            (0o100_755, b"\x7fELF xenctl".to_vec(), (0, 0))
        );
        let init = String::from_utf8(files["init"].1.clone()).unwrap();
        let mount = "mount -t xenfs xenfs /proc/xen";
        assert!(init.contains(mount), "{init}");
        // After the modules are loaded, before the test script runs.
        let at = |needle: &str| init.find(needle).unwrap();
        assert!(at("done < /etc/modules") < at(mount));
        assert!(at(mount) < at("if [ -f /test/run.sh ]"));
        assert_eq!(init_script(false), init.replace(INIT_XENFS, ""));
        for bad in ["/bin/x", "bin/../x", "", "bin//x", "bin/busybox", "init"] {
            let spec = Spec {
                busybox: b"bb".to_vec(),
                executables: vec![(bad.into(), b"x".to_vec())],
                ..Spec::default()
            };
            assert!(
                build(&spec, &dir.join("bad.gz")).is_err(),
                "{bad:?} accepted"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
