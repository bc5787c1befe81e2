//! Writing files so that a crash leaves either the old contents or the new, never half.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Write to a temporary file beside `path`, flush it to disk, rename it over `path`, and
/// flush the directory. Several threads or processes may write the same path at once.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}-{:?}.tmp", std::process::id(), std::thread::current().id()));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    // Make the rename itself durable; not every platform can open a directory, so best effort.
    if let Some(dir) = path
        .parent()
        .and_then(|d| std::fs::File::open(if d.as_os_str().is_empty() { Path::new(".") } else { d }).ok())
    {
        let _ = dir.sync_all();
    }
    Ok(())
}
