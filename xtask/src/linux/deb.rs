//! Unpacking Debian binary packages (`.deb`) without `dpkg-deb`.
//!
//! A `.deb` is an `ar` archive: `debian-binary` (the format version, `2.0`),
//! `control.tar.*` and `data.tar.*`. Debian 12 compresses both with xz; gzip, zstd and
//! uncompressed members exist elsewhere. This module reads `data.tar.xz`, `.gz` or plain
//! `.tar` and refuses the rest by name.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path};

use anyhow::{Context, Result, bail, ensure};

/// Extracts the `data.tar.*` member of the package `deb` into `dest` (created if needed).
/// Entries that would land outside `dest` are refused.
pub fn extract_data(deb: &Path, dest: &Path) -> Result<()> {
    let file = File::open(deb).with_context(|| format!("cannot open {}", deb.display()))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    let mut version_seen = false;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.with_context(|| format!("{}: bad ar archive", deb.display()))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        match name.as_str() {
            "debian-binary" => {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                ensure!(
                    text.trim_end().starts_with("2."),
                    "{}: unsupported package format {:?}",
                    deb.display(),
                    text.trim_end()
                );
                version_seen = true;
            }
            n if n.starts_with("data.tar") => {
                ensure!(
                    version_seen,
                    "{}: not a Debian package (no debian-binary first)",
                    deb.display()
                );
                let reader = decompressor(n, entry)
                    .with_context(|| format!("{}: member {n}", deb.display()))?;
                return unpack_tar(reader, dest)
                    .with_context(|| format!("cannot unpack {} ({n})", deb.display()));
            }
            _ => {}
        }
    }
    bail!("{}: no data.tar member", deb.display())
}

/// A reader that decompresses a `data.tar.*` member by its name.
fn decompressor<'a, R: Read + 'a>(name: &str, member: R) -> Result<Box<dyn Read + 'a>> {
    Ok(match name {
        "data.tar" => Box::new(member),
        "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new(member)),
        "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(member)),
        other => bail!("{other}: compression not supported (xz, gz or none)"),
    })
}

/// Unpacks a tar stream into `dest`, refusing absolute paths and `..`.
fn unpack_tar(reader: impl Read, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.set_overwrite(true);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        ensure!(
            path.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "refusing entry {} (outside the destination)",
            path.display()
        );
        // `unpack_in` also refuses paths through symbolic links that leave `dest`.
        entry
            .unpack_in(dest)
            .with_context(|| format!("cannot unpack {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A `.deb` with `data.tar.<ext>` holding `files` (path, contents).
    pub(crate) fn make_deb(files: &[(&str, &[u8])], ext: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, path, *data).unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let data = match ext {
            "xz" => {
                let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
                enc.write_all(&tar).unwrap();
                enc.finish().unwrap()
            }
            "gz" => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&tar).unwrap();
                enc.finish().unwrap()
            }
            _ => tar,
        };
        let member = if ext.is_empty() {
            "data.tar".to_owned()
        } else {
            format!("data.tar.{ext}")
        };
        let mut ar = ar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", Vec::new()),
            (member.as_str(), data),
        ] {
            let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            ar.append(&header, bytes.as_slice()).unwrap();
        }
        ar.into_inner().unwrap()
    }

    pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn extracts_each_compression() {
        let dir = temp_dir("deb");
        for ext in ["xz", "gz", ""] {
            let deb = dir.join(format!("p{ext}.deb"));
            std::fs::write(
                &deb,
                make_deb(&[("./boot/vmlinuz-x", b"kernel"), ("./bin/bb", b"bb")], ext),
            )
            .unwrap();
            let out = dir.join(format!("out{ext}"));
            extract_data(&deb, &out).unwrap();
            assert_eq!(
                std::fs::read(out.join("boot/vmlinuz-x")).unwrap(),
                b"kernel"
            );
            assert_eq!(std::fs::read(out.join("bin/bb")).unwrap(), b"bb");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_bad_packages() {
        let dir = temp_dir("deb-bad");
        let deb = dir.join("zst.deb");
        let mut bytes = make_deb(&[("a", b"x")], "");
        // Rename the member to data.tar.zst (same length as "data.tar" + 4).
        let at = bytes.windows(8).rposition(|w| w == b"data.tar").unwrap();
        bytes[at..at + 12].copy_from_slice(b"data.tar.zst");
        std::fs::write(&deb, &bytes).unwrap();
        let err = format!("{:#}", extract_data(&deb, &dir.join("o")).unwrap_err());
        assert!(err.contains("not supported"), "{err}");
        std::fs::write(&deb, b"!<arch>\n").unwrap();
        assert!(extract_data(&deb, &dir.join("o")).is_err());
        std::fs::write(&deb, b"not an archive").unwrap();
        assert!(extract_data(&deb, &dir.join("o")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
