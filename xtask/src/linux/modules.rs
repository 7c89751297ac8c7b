//! Kernel modules: which `.ko` files a list of modules needs, and the `modules.dep` /
//! `modules.alias` files `modprobe` reads for them.
//!
//! Debian's kernel package ships no `modules.dep` (its `postinst` runs `depmod`), so this
//! is depmod's job done for a subset: each module's `.modinfo` section says which modules
//! it needs (`depends=a,b`) and which device aliases it serves (`alias=...`). Modules are
//! named by their file name with `-` read as `_` (`modprobe` does the same).
//! Soft dependencies (`softdep=`) are not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection};

/// A module's canonical name: `-` becomes `_`.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The `.ko` files of one `lib/modules/<version>` tree, by canonical module name.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
    /// Module name -> path relative to `root` (with `/` separators).
    by_name: BTreeMap<String, String>,
}

/// What a module's `.modinfo` says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// Modules it needs loaded first (canonical names).
    pub depends: Vec<String>,
    /// Device aliases it serves.
    pub aliases: Vec<String>,
}

impl Tree {
    /// Indexes every `.ko` file under `root` (a `lib/modules/<version>` directory).
    pub fn open(root: &Path) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let Some(stem) = file.strip_suffix(".ko") else {
                    continue;
                };
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                by_name.insert(canonical(stem), rel);
            }
        }
        if by_name.is_empty() {
            bail!("no .ko files under {}", root.display());
        }
        Ok(Self {
            root: root.to_path_buf(),
            by_name,
        })
    }

    /// The directory this tree was read from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A module's path relative to the tree's root.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        self.by_name.get(&canonical(name)).map(String::as_str)
    }

    /// Reads a module's `.modinfo`.
    pub fn modinfo(&self, name: &str) -> Result<ModInfo> {
        let rel = self
            .path_of(name)
            .with_context(|| format!("no module {name:?} in {}", self.root.display()))?;
        let path = self.root.join(rel);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        modinfo_of(&bytes).with_context(|| format!("{}", path.display()))
    }

    /// `wanted` and every module they need, each once, with the `.modinfo` of each:
    /// dependencies after the modules that need them (so loading the list backwards
    /// loads every module after its dependencies).
    pub fn closure(&self, wanted: &[String]) -> Result<Vec<(String, ModInfo)>> {
        let mut infos: BTreeMap<String, ModInfo> = BTreeMap::new();
        let mut todo: Vec<String> = wanted.iter().map(|w| canonical(w)).collect();
        while let Some(name) = todo.pop() {
            if infos.contains_key(&name) {
                continue;
            }
            let info = self.modinfo(&name)?;
            todo.extend(info.depends.iter().cloned());
            infos.insert(name, info);
        }
        // Post-order over dependencies gives load order; the list is its reverse.
        let mut order = Vec::new();
        let mut state: BTreeMap<&str, bool> = BTreeMap::new(); // false: visiting, true: done
        fn visit<'a>(
            name: &'a str,
            infos: &'a BTreeMap<String, ModInfo>,
            state: &mut BTreeMap<&'a str, bool>,
            order: &mut Vec<&'a str>,
        ) -> Result<()> {
            match state.get(name) {
                Some(true) => return Ok(()),
                Some(false) => bail!("modules depend on each other in a cycle through {name}"),
                None => {}
            }
            state.insert(name, false);
            for dep in &infos[name].depends {
                visit(dep, infos, state, order)?;
            }
            state.insert(name, true);
            order.push(name);
            Ok(())
        }
        let roots: Vec<String> = wanted.iter().map(|w| canonical(w)).collect();
        for name in &roots {
            visit(name, &infos, &mut state, &mut order)?;
        }
        Ok(order
            .into_iter()
            .rev()
            .map(|n| (n.to_owned(), infos[n].clone()))
            .collect())
    }

    /// `modules.dep` for `modules` (a [`Tree::closure`]): one line per module,
    /// `path: dep-path dep-path ...`, each module's dependencies listed (transitively)
    /// with the ones to load last first, as `depmod` writes them.
    pub fn modules_dep(&self, modules: &[(String, ModInfo)]) -> Result<String> {
        let infos: BTreeMap<&str, &ModInfo> =
            modules.iter().map(|(n, i)| (n.as_str(), i)).collect();
        let mut out = String::new();
        for (name, _) in modules {
            // This module's own closure, in the same order as the whole list.
            let mut needed = BTreeSet::new();
            let mut todo = vec![name.as_str()];
            while let Some(n) = todo.pop() {
                let info = infos
                    .get(n)
                    .with_context(|| format!("{n} is needed but not in the module list"))?;
                for dep in &info.depends {
                    if needed.insert(dep.as_str()) {
                        todo.push(dep);
                    }
                }
            }
            let deps: Vec<&str> = modules
                .iter()
                .filter(|(n, _)| needed.contains(n.as_str()))
                .map(|(n, _)| self.path_of(n).expect("indexed"))
                .collect();
            out += self.path_of(name).expect("indexed");
            out.push(':');
            for dep in deps {
                out.push(' ');
                out += dep;
            }
            out.push('\n');
        }
        Ok(out)
    }
}

/// `modules.alias` for `modules`: `alias PATTERN module` lines, as `depmod` writes them.
pub fn modules_alias(modules: &[(String, ModInfo)]) -> String {
    let mut out = String::from("# Aliases extracted from modules themselves.\n");
    for (name, info) in modules {
        for alias in &info.aliases {
            out += &format!("alias {alias} {name}\n");
        }
    }
    out
}

/// Parses the `.modinfo` section of a module's ELF file: NUL-separated `key=value`.
pub fn modinfo_of(elf: &[u8]) -> Result<ModInfo> {
    let file = object::File::parse(elf).map_err(|e| anyhow::anyhow!("not an ELF file: {e}"))?;
    let section = file
        .section_by_name(".modinfo")
        .context("no .modinfo section: not a kernel module")?;
    let data = section
        .data()
        .map_err(|e| anyhow::anyhow!("bad .modinfo: {e}"))?;
    let mut info = ModInfo::default();
    for field in data.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let field = String::from_utf8_lossy(field);
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "depends" => info
                .depends
                .extend(value.split(',').filter(|d| !d.is_empty()).map(canonical)),
            "alias" => info.aliases.push(value.to_owned()),
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A relocatable AArch64 ELF file with a `.modinfo` section holding `fields`.
    pub(crate) fn fake_module(fields: &[&str]) -> Vec<u8> {
        use object::write::Object as WObject;
        let mut obj = WObject::new(
            object::BinaryFormat::Elf,
            object::Architecture::Aarch64,
            object::Endianness::Little,
        );
        let id = obj.add_section(
            Vec::new(),
            b".modinfo".to_vec(),
            object::SectionKind::ReadOnlyData,
        );
        let mut data = Vec::new();
        for f in fields {
            data.extend_from_slice(f.as_bytes());
            data.push(0);
        }
        obj.append_section_data(id, &data, 1);
        obj.write().unwrap()
    }

    pub(crate) fn fake_tree(dir: &Path) {
        let files: &[(&str, &[&str])] = &[
            (
                "kernel/drivers/block/virtio_blk.ko",
                &[
                    "alias=virtio:d00000002v*",
                    "depends=virtio,virtio_ring",
                    "license=GPL",
                ],
            ),
            (
                "kernel/drivers/virtio/virtio_mmio.ko",
                &["alias=of:N*T*Cvirtio,mmio", "depends=virtio,virtio_ring"],
            ),
            ("kernel/drivers/virtio/virtio_ring.ko", &["depends=virtio"]),
            ("kernel/drivers/virtio/virtio.ko", &["depends="]),
            ("kernel/fs/other-thing.ko", &["depends="]),
        ];
        for (path, fields) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, fake_module(fields)).unwrap();
        }
    }

    #[test]
    fn resolves_dependencies_and_writes_modules_dep() {
        let dir = crate::linux::deb::tests::temp_dir("modules");
        fake_tree(&dir);
        let tree = Tree::open(&dir).unwrap();
        assert_eq!(tree.by_name.len(), 5);
        assert_eq!(
            tree.path_of("other-thing"),
            Some("kernel/fs/other-thing.ko")
        );
        assert_eq!(tree.path_of("other_thing"), tree.path_of("other-thing"));
        let list = tree
            .closure(&["virtio_blk".into(), "virtio-mmio".into()])
            .unwrap();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        // Every dependency after each module that needs it.
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(names.len(), 4);
        assert!(at("virtio_blk") < at("virtio_ring") && at("virtio_ring") < at("virtio"));
        assert!(at("virtio_mmio") < at("virtio_ring"));
        let dep = tree.modules_dep(&list).unwrap();
        assert!(dep.contains(
            "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko \
             kernel/drivers/virtio/virtio.ko\n"
        ));
        assert!(dep.contains("kernel/drivers/virtio/virtio.ko:\n"));
        assert_eq!(dep.lines().count(), 4);
        let alias = modules_alias(&list);
        assert!(alias.contains("alias virtio:d00000002v* virtio_blk\n"));
        assert!(alias.contains("alias of:N*T*Cvirtio,mmio virtio_mmio\n"));
        let err = format!("{:#}", tree.closure(&["nosuch".into()]).unwrap_err());
        assert!(err.contains("no module \"nosuch\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// On the real Debian package when `cargo xtask linux` has cached it (the Linux boot
    /// cases load these modules from the initramfs on every `cargo xtask test`).
    #[test]
    fn real_package_when_cached() {
        let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/linux");
        let Some(dir) = std::fs::read_dir(cache.join("pkg"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().contains("linux-image-"))
        else {
            eprintln!("no cached kernel package: real-package check not run");
            return;
        };
        let modules = std::fs::read_dir(dir.join("lib/modules"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let tree = Tree::open(&modules).unwrap();
        let list = tree.closure(&["virtio_net".into()]).unwrap();
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["virtio_net", "net_failover", "failover"]);
        let dep = tree.modules_dep(&list).unwrap();
        assert!(dep.starts_with(
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
             kernel/net/core/failover.ko\n"
        ));
        for m in [
            "virtio_mmio",
            "virtio_blk",
            "xen_privcmd",
            "xen_evtchn",
            "xen_gntdev",
        ] {
            assert!(tree.path_of(m).is_some(), "{m}");
        }
        assert!(modules_alias(&list).contains(" virtio_net\n"));
    }

    #[test]
    fn refuses_cycles_and_non_modules() {
        let dir = crate::linux::deb::tests::temp_dir("modules-cycle");
        std::fs::write(dir.join("a.ko"), fake_module(&["depends=b"])).unwrap();
        std::fs::write(dir.join("b.ko"), fake_module(&["depends=a"])).unwrap();
        let tree = Tree::open(&dir).unwrap();
        assert!(format!("{:#}", tree.closure(&["a".into()]).unwrap_err()).contains("cycle"));
        assert!(modinfo_of(b"\x7fELF nonsense").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
