//! Writing files so that a crash leaves either the old contents or the new, never half, and
//! where the program's caches live.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write to a temporary file beside `path`, flush it to disk, rename it over `path`, and
/// flush the directory. Several threads or processes may write the same path at once.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}-{:?}.tmp", std::process::id(), std::thread::current().id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|_| file.sync_all()))
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|_| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        // A full disk must not stay full of our half-written temporary files.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // Make the rename itself durable; not every platform can open a directory, so best effort.
    if let Some(dir) = path
        .parent()
        .and_then(|d| std::fs::File::open(if d.as_os_str().is_empty() { Path::new(".") } else { d }).ok())
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Where what the program measures and compiles on this machine is kept (the kernel choices,
/// the driver's compiled pipelines): `$SHAKESHAKE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/shakeshake`, else `~/.cache/shakeshake`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SHAKESHAKE_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("shakeshake"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("shakeshake-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("target")).unwrap();
        // Renaming a file over a non-empty directory fails after the temporary is written.
        std::fs::write(dir.join("target").join("inside"), b"x").unwrap();
        assert!(write_atomically(&dir.join("target"), b"new").is_err());
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["target"], "only the original directory is left");
        write_atomically(&dir.join("file"), b"one").unwrap();
        write_atomically(&dir.join("file"), b"two").unwrap();
        assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"two");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
