//! `shakeshake download`: fetch the official archive over HTTPS with a progress bar, verify
//! its checksum, and unpack it atomically: files land in a hidden folder that is renamed to
//! `cifar-10-batches-bin` only once every file is there and checked, so a crash never leaves
//! half a data set that looks complete.

use super::data::{self, FOLDER};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// The checksum published beside the archive on the CIFAR page.
pub const MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Download and unpack into `dir`/cifar-10-batches-bin unless it is there already.
/// `records_per_file`: what each file must hold (10,000 for the official archive).
pub fn download(dir: &Path, url: &str, md5: &str, records_per_file: usize) -> Result<PathBuf> {
    let target = dir.join(FOLDER);
    if target.is_dir() && data::load(dir, Some(records_per_file)).is_ok() {
        eprintln!("CIFAR-10 is already in {}.", target.display());
        return Ok(target);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let archive = dir.join(".cifar-10-binary.tar.gz.partial");
    fetch(url, &archive, md5)?;

    let staging = dir.join(".cifar-10-batches-bin.partial");
    let _ = std::fs::remove_dir_all(&staging);
    let file = std::fs::File::open(&archive)?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&staging)
        .with_context(|| format!("unpacking {}", archive.display()))?;
    let unpacked = staging.join(FOLDER);
    data::load(&staging, Some(records_per_file))
        .context("the downloaded archive does not hold valid CIFAR-10")?;
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("replacing the incomplete {}", target.display()))?;
    }
    std::fs::rename(&unpacked, &target)
        .with_context(|| format!("moving the data to {}", target.display()))?;
    std::fs::remove_dir_all(&staging)?;
    std::fs::remove_file(&archive)?;
    eprintln!("CIFAR-10 is ready in {}.", target.display());
    Ok(target)
}

/// Stream `url` to `path`, hashing as it goes; a wrong checksum deletes the file.
fn fetch(url: &str, path: &Path, md5: &str) -> Result<()> {
    eprintln!("Downloading {url}");
    let mut response = ureq::get(url).call().with_context(|| {
        format!("downloading {url} failed; check the network, or place cifar-10-binary.tar.gz in the data folder by hand")
    })?;
    let length =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let bar = ProgressBar::new(length.unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut reader = response.body_mut().as_reader();
    let mut out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer).with_context(|| format!("reading from {url}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
        bar.inc(n as u64);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != md5 {
        std::fs::remove_file(path)?;
        bail!(
            "{url} has md5 {got}, expected {md5}: the download is damaged or not the official archive; try again"
        );
    }
    Ok(())
}
