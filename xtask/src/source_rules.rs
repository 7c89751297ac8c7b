//! Rules about the source tree the compiler does not check, kept as unit tests (this
//! module is only built for them): `cargo test` (and so `cargo xtask test` and CI) fails,
//! listing the offenders, when one is broken.
//!
//! - Inline assembly lives in `hyp/src/arch/` (docs/architecture.md): no `asm!`,
//!   `global_asm!`, `naked_asm!` or `core::arch::` path anywhere else in `hyp/src`. Other
//!   code calls the small wrappers there, whose `// SAFETY:` comments say why each
//!   instruction sequence is sound.

use std::fs;
use std::path::{Path, PathBuf};

/// Where inline assembly may be, relative to the `hyp` source root.
const ARCH_DIR: &str = "arch";

/// The workspace's `hyp/src`.
fn hyp_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("hyp")
        .join("src")
}

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` (numbered from 1) whose code, comments left out, uses inline
/// assembly: a macro whose name ends in `asm!` or a `core::arch::` path.
fn assembly_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            code.contains("asm!") || code.contains("core::arch::")
        })
        .map(|(index, line)| (index + 1, line.trim().to_owned()))
        .collect()
}

/// `path:line: text` for every use of inline assembly in `hyp/src` outside `arch/`.
fn assembly_outside_arch(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    assert!(!files.is_empty(), "no Rust files under {}", src.display());
    let arch = src.join(ARCH_DIR);
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&arch)) {
        let text = fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file.strip_prefix(src).unwrap_or(file).display();
        for (line, code) in assembly_lines(&text) {
            offenders.push(format!("hyp/src/{shown}:{line}: {code}"));
        }
    }
    offenders
}

mod tests {
    use super::*;

    #[test]
    fn inline_assembly_only_in_arch() {
        let offenders = assembly_outside_arch(&hyp_src());
        assert!(
            offenders.is_empty(),
            "inline assembly outside hyp/src/arch/ (move it into an arch module, behind a \
             small wrapper with a SAFETY comment; see docs/architecture.md):\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn assembly_lines_are_found() {
        let text = "fn f() {\n\
                    \x20   unsafe { core::arch::asm!(\"isb\") };\n\
                    \x20   // asm! in a comment\n\
                    \x20   /// a doc comment naming `asm!`\n\
                    \x20   aarch64_cpu::asm::barrier::isb(SY);\n\
                    \x20   global_asm!(\"\");\n\
                    \x20   use core::arch::asm;\n\
                    }\n";
        let lines: Vec<usize> = assembly_lines(text).into_iter().map(|(n, _)| n).collect();
        assert_eq!(lines, [2, 6, 7]);
    }

    #[test]
    fn arch_is_where_the_assembly_is() {
        // The rule would hold vacuously if the tree moved: the arch modules must exist
        // and hold assembly.
        let arch = hyp_src().join(ARCH_DIR);
        let mut files = Vec::new();
        rust_files(&arch, &mut files);
        let with_assembly = files
            .iter()
            .filter(|f| !assembly_lines(&fs::read_to_string(f).unwrap()).is_empty())
            .count();
        assert!(
            with_assembly > 0,
            "no inline assembly found in {}",
            arch.display()
        );
    }
}
