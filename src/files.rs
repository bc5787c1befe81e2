//! Writing files so that a crash leaves either the old contents or the new, never half, and
//! where the program's caches live.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write to a temporary file beside `path`, flush it to disk, rename it over `path`, and
/// flush the directory. Several threads or processes may write the same path at once.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_beside(path, std::process::id());
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

/// The temporary file this thread of process `pid` writes `path` through
/// ("model.1234-ThreadId(1).tmp"): its own, since several may write one path at once.
fn temporary_beside(path: &Path, pid: u32) -> PathBuf {
    path.with_extension(format!("{pid}-{:?}.tmp", std::thread::current().id()))
}

/// Removes what writes into `dir` left when their process was killed mid-write (temporary
/// files of `write_atomically`); returns their names. Only for a directory no other process
/// writes to now (a run directory, under its lock).
pub fn remove_leftover_temporaries(dir: &Path) -> Result<Vec<String>> {
    let leftover = |name: &str| name.ends_with(".tmp") && name.contains("-ThreadId(");
    let mut removed = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if leftover(&name) {
            let path = dir.join(&name);
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(name);
        }
    }
    Ok(removed)
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

    #[test]
    fn only_the_temporaries_of_killed_writes_are_removed() {
        let dir = std::env::temp_dir().join(format!("shakeshake-leftovers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // What a write killed before its rename leaves, beside files that are not ours.
        let killed = temporary_beside(Path::new("checkpoint.safetensors"), 4242);
        for name in [killed.to_str().unwrap(), "notes.tmp", "checkpoint.safetensors"] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let removed = remove_leftover_temporaries(&dir).unwrap();
        assert_eq!(removed, [killed.to_str().unwrap()]);
        let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["checkpoint.safetensors", "notes.tmp"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
