//! The boot-test case file (`tests/boot/cases.toml`) and its expansion into single cases.
//!
//! `gic`, `cpus` and `cpu` take one value or an array. Arrays are matrix axes: a spec expands
//! into one case per combination (gic, then cpus, then cpu), named
//! `<name>-gicv<gic>-<cpus>cpu-<cpu>` with only the array-valued axes in the name.
//! `{gic}`, `{cpus}` and `{cpu}` in `expect`/`fail` patterns become the case's values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use regex::Regex;
use serde::Deserialize;

use crate::matcher::BUILTIN_FAIL;
use crate::qemu::parse_size;

/// One value, or an array of them forming a matrix axis.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Axis<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> Axis<T> {
    fn values(&self) -> Vec<T> {
        match self {
            Axis::One(v) => vec![v.clone()],
            Axis::Many(v) => v.clone(),
        }
    }

    fn is_matrix(&self) -> bool {
        matches!(self, Axis::Many(_))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default, rename = "case")]
    cases: Vec<Spec>,
}

/// A `[[case]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default = "default_gic")]
    gic: Axis<u8>,
    #[serde(default = "default_cpus")]
    cpus: Axis<u32>,
    #[serde(default = "default_cpu")]
    cpu: Axis<String>,
    #[serde(default = "default_mem")]
    mem: String,
    #[serde(default)]
    append: String,
    #[serde(default = "default_true")]
    virtualization: bool,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    expect_any_order: Vec<String>,
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    exit_code: Option<i32>,
    image_text_offset: Option<u64>,
    #[serde(default = "default_true")]
    builtin_fail: bool,
    domains: Option<String>,
    input: Option<String>,
    #[serde(default)]
    input_after: Vec<String>,
    guest: Option<String>,
    raspi4b_dts: Option<String>,
    #[serde(default)]
    guest_cmdline: String,
    #[serde(default = "default_guest_vcpus")]
    guest_vcpus: u32,
    #[serde(default = "default_guest_mem")]
    guest_mem: String,
    /// `[['regex', N], ...]`: each regex may match at most N lines over the whole run.
    #[serde(default)]
    max_lines: Vec<(String, usize)>,
    /// A host file that must not exist after the run (removed before it starts).
    host_file_absent: Option<String>,
}

fn default_guest_vcpus() -> u32 {
    1
}
fn default_guest_mem() -> String {
    "256M".into()
}

fn default_gic() -> Axis<u8> {
    Axis::One(3)
}
fn default_cpus() -> Axis<u32> {
    Axis::One(4)
}
fn default_cpu() -> Axis<String> {
    Axis::One("max".into())
}
fn default_mem() -> String {
    "1G".into()
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> u64 {
    30
}

/// One boot case: one QEMU run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique name; also the log file's name.
    pub name: String,
    /// GIC version, 2 or 3.
    pub gic: u8,
    /// Number of CPUs.
    pub cpus: u32,
    /// QEMU CPU model.
    pub cpu: String,
    /// RAM size in bytes.
    pub mem: u64,
    /// Extra hypervisor command line.
    pub append: String,
    /// Whether QEMU enters the image at EL2.
    pub virtualization: bool,
    /// Patterns that must appear in this order.
    pub expect: Vec<Regex>,
    /// Patterns that must each appear on a line of their own, in any order.
    pub expect_any_order: Vec<Regex>,
    /// Patterns that fail the case at once, built-in ones included.
    pub fail: Vec<Regex>,
    /// How long the case may run.
    pub timeout: Duration,
    /// If set, QEMU must exit with this status (after all `expect` patterns were seen).
    pub exit_code: Option<i32>,
    /// If set, boot a copy of the image whose header asks for this `text_offset`.
    pub image_text_offset: Option<u64>,
    /// Domain configuration (TOML, relative to the workspace root) to boot as guests.
    pub domains: Option<PathBuf>,
    /// The boot archive built from `domains`, filled in before the case runs.
    pub initrd: Option<PathBuf>,
    /// Text typed on QEMU's console once every `input_after` regex has matched a line.
    pub input: Option<(Vec<Regex>, String)>,
    /// One guest given as `cargo xtask run --guest` would give it.
    pub guest: Option<crate::domains::DomainConfig>,
    /// Boot QEMU's `raspi4b` with this device-tree source instead of `virt`.
    pub raspi4b_dts: Option<PathBuf>,
    /// The compiled `raspi4b_dts`, filled in before the case runs.
    pub raspi4b_dtb: Option<PathBuf>,
    /// Patterns that may each match at most so many output lines.
    pub max_lines: Vec<(Regex, usize)>,
    /// A host file that must not exist after the run (removed before it starts).
    pub host_file_absent: Option<PathBuf>,
}

/// Reads and expands a case file.
pub fn load(path: &Path) -> Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses a case file and expands its matrices.
pub fn parse(text: &str) -> Result<Vec<Case>> {
    let file: CaseFile = toml::from_str(text)?;
    let mut cases: Vec<Case> = Vec::new();
    for spec in &file.cases {
        for case in expand(spec).with_context(|| format!("case {:?}", spec.name))? {
            ensure!(
                cases.iter().all(|c| c.name != case.name),
                "two cases are named {:?}",
                case.name
            );
            cases.push(case);
        }
    }
    Ok(cases)
}

fn expand(spec: &Spec) -> Result<Vec<Case>> {
    ensure!(
        !spec.name.is_empty()
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "name must be non-empty and use only letters, digits, '-', '_' and '.'"
    );
    let (gics, cpu_counts, models) = (spec.gic.values(), spec.cpus.values(), spec.cpu.values());
    ensure!(
        !gics.is_empty() && !cpu_counts.is_empty() && !models.is_empty(),
        "gic, cpus and cpu need at least one value each"
    );
    ensure!(
        gics.iter().all(|g| matches!(g, 2 | 3)),
        "gic must be 2 or 3"
    );
    ensure!(
        cpu_counts.iter().all(|&n| n >= 1),
        "cpus must be at least 1"
    );
    ensure!(
        models.iter().all(|m| !m.is_empty()),
        "cpu must not be empty"
    );
    ensure!(spec.timeout_secs > 0, "timeout_secs must be positive");
    ensure!(
        !spec.expect.is_empty() || spec.exit_code.is_some(),
        "give `expect` patterns or an `exit_code`, or the case proves nothing"
    );
    let mem = parse_size(&spec.mem)?;

    let mut cases = Vec::new();
    for &gic in &gics {
        for &cpus in &cpu_counts {
            for cpu in &models {
                let mut name = spec.name.clone();
                if spec.gic.is_matrix() {
                    name += &format!("-gicv{gic}");
                }
                if spec.cpus.is_matrix() {
                    name += &format!("-{cpus}cpu");
                }
                if spec.cpu.is_matrix() {
                    name += &format!("-{cpu}");
                }
                let compile = |pattern: &str| -> Result<Regex> {
                    let pattern = substitute(pattern, gic, cpus, cpu);
                    Regex::new(&pattern).with_context(|| format!("bad pattern {pattern:?}"))
                };
                let expect = spec
                    .expect
                    .iter()
                    .map(|p| compile(p))
                    .collect::<Result<_>>()?;
                let expect_any_order = spec
                    .expect_any_order
                    .iter()
                    .map(|p| compile(p))
                    .collect::<Result<_>>()?;
                let builtin: &[&str] = if spec.builtin_fail { BUILTIN_FAIL } else { &[] };
                let fail = builtin
                    .iter()
                    .map(|p| regex::escape(p))
                    .chain(spec.fail.iter().cloned())
                    .map(|p| compile(&p))
                    .collect::<Result<_>>()?;
                cases.push(Case {
                    name,
                    gic,
                    cpus,
                    cpu: cpu.clone(),
                    mem,
                    append: spec.append.clone(),
                    virtualization: spec.virtualization,
                    expect,
                    expect_any_order,
                    fail,
                    timeout: Duration::from_secs(spec.timeout_secs),
                    exit_code: spec.exit_code,
                    image_text_offset: spec.image_text_offset,
                    domains: spec.domains.as_ref().map(PathBuf::from),
                    initrd: None,
                    raspi4b_dts: spec.raspi4b_dts.as_ref().map(PathBuf::from),
                    raspi4b_dtb: None,
                    max_lines: spec
                        .max_lines
                        .iter()
                        .map(|(p, n)| Ok((compile(p)?, *n)))
                        .collect::<Result<_>>()?,
                    host_file_absent: spec.host_file_absent.as_ref().map(PathBuf::from),
                    guest: match &spec.guest {
                        Some(kernel) => Some(crate::domains::single_guest(
                            kernel.clone(),
                            None,
                            spec.guest_cmdline.clone(),
                            spec.guest_vcpus,
                            parse_size(&spec.guest_mem)?,
                        )),
                        None => None,
                    },
                    input: match (spec.input_after.is_empty(), &spec.input) {
                        (false, Some(text)) => Some((
                            spec.input_after
                                .iter()
                                .map(|p| compile(p))
                                .collect::<Result<_>>()?,
                            text.clone(),
                        )),
                        (true, None) => None,
                        _ => anyhow::bail!("case {}: input and input_after go together", spec.name),
                    },
                });
            }
        }
    }
    Ok(cases)
}

/// Replaces `{gic}`, `{cpus}` and `{cpu}` in a pattern with the case's values.
fn substitute(pattern: &str, gic: u8, cpus: u32, cpu: &str) -> String {
    pattern
        .replace("{gic}", &gic.to_string())
        .replace("{cpus}", &cpus.to_string())
        .replace("{cpu}", &regex::escape(cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cases: &[Case]) -> Vec<&str> {
        cases.iter().map(|c| c.name.as_str()).collect()
    }

    fn strs(res: &[Regex]) -> Vec<&str> {
        res.iter().map(Regex::as_str).collect()
    }

    #[test]
    fn defaults() {
        let cases = parse("[[case]]\nname = \"plain\"\nexpect = [\"hi\"]\n").unwrap();
        let c = &cases[0];
        assert_eq!(
            (c.name.as_str(), c.gic, c.cpus, c.cpu.as_str()),
            ("plain", 3, 4, "max")
        );
        assert_eq!(c.mem, 1 << 30);
        assert!(c.virtualization);
        assert_eq!(c.append, "");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!((c.exit_code, c.image_text_offset), (None, None));
        assert_eq!(strs(&c.fail), ["panicked at", "EXCEPTION"]);
    }

    #[test]
    fn expands_matrix() {
        let text = r#"
            [[case]]
            name = "boot"
            gic = [2, 3]
            cpus = [1, 4]
            cpu = ["max", "cortex-a72", "cortex-a53"]
            mem = "512M"
            expect = ["GICv{gic}", 'boot complete: {cpus} of {cpus} CPUs', "cpu={cpu}"]
            fail = ['\[ERROR\]']

            [[case]]
            name = "moved"
            gic = 2
            cpus = [2]
            image_text_offset = 0x0320_0000
            exit_code = 0
            timeout_secs = 5
        "#;
        let cases = parse(text).unwrap();
        assert_eq!(cases.len(), 13);
        assert_eq!(
            names(&cases[..4]),
            [
                "boot-gicv2-1cpu-max",
                "boot-gicv2-1cpu-cortex-a72",
                "boot-gicv2-1cpu-cortex-a53",
                "boot-gicv2-4cpu-max"
            ]
        );
        let c = cases
            .iter()
            .find(|c| c.name == "boot-gicv3-4cpu-cortex-a72")
            .unwrap();
        assert_eq!(
            (c.gic, c.cpus, c.cpu.as_str(), c.mem),
            (3, 4, "cortex-a72", 512 << 20)
        );
        assert_eq!(
            strs(&c.expect),
            ["GICv3", "boot complete: 4 of 4 CPUs", r"cpu=cortex\-a72"]
        );
        assert_eq!(strs(&c.fail), ["panicked at", "EXCEPTION", r"\[ERROR\]"]);
        let moved = cases.last().unwrap();
        assert_eq!(moved.name, "moved-2cpu");
        assert_eq!((moved.gic, moved.cpus, moved.exit_code), (2, 2, Some(0)));
        assert_eq!(moved.image_text_offset, Some(0x0320_0000));
        assert_eq!(moved.timeout, Duration::from_secs(5));
    }

    #[test]
    fn rejects_bad_files() {
        let bad = [
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nbogus = 1\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ngic = 4\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ncpus = []\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ncpus = 0\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nmem = \"lots\"\n",
            "[[case]]\nname = \"a\"\nexpect = [\"(unclosed\"]\n",
            "[[case]]\nname = \"a b\"\nexpect = [\"x\"]\n",
            "[[case]]\nname = \"a\"\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\ntimeout_secs = 0\n",
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\n[[case]]\nname = \"a\"\nexpect = [\"y\"]\n",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "accepted:\n{text}");
        }
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn builtin_fail_patterns_can_be_turned_off() {
        let cases = parse(
            "[[case]]\nname = \"a\"\nexpect = [\"x\"]\nfail = [\"y\"]\nbuiltin_fail = false\n",
        )
        .unwrap();
        assert_eq!(strs(&cases[0].fail), ["y"]);
    }

    #[test]
    fn project_case_file_is_valid() {
        let cases = parse(include_str!("../../tests/boot/cases.toml")).unwrap();
        assert_eq!(
            cases.iter().filter(|c| c.name.starts_with("boot-")).count(),
            12
        );
        assert!(
            cases
                .iter()
                .filter(|c| c.domains.is_some())
                .all(|c| Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(c.domains.as_ref().unwrap())
                    .exists()),
            "every domains file named by a case exists"
        );
        let wx = cases.iter().find(|c| c.name == "selftest-wx").unwrap();
        assert!(strs(&wx.fail).iter().all(|p| *p != "EXCEPTION"));
        assert!(cases.iter().any(|c| !c.virtualization));
        assert!(
            cases
                .iter()
                .any(|c| c.image_text_offset == Some(0x0320_0000))
        );
        let v2 = cases
            .iter()
            .filter(|c| c.gic == 2 && c.name.starts_with("boot-"))
            .count();
        assert_eq!(v2, 6);
    }
}
