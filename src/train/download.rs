//! `shakeshake download`: fetch the official archive over HTTPS with a progress bar, verify
//! its checksum, and unpack it atomically: files land in a hidden folder that is renamed to
//! `cifar-10-batches-bin` only once every file is there and checked, so a crash never leaves
//! half a data set that looks complete. A server that stops answering is given up on, a
//! failed download leaves no partial files, a damaged data folder is moved aside rather than
//! deleted, and the archive may hold only plain files and folders.

use super::data::{self, FOLDER};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// The checksum published beside the archive on the CIFAR page.
pub const MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// How long the server may stay silent (connecting, answering, or mid-body) before the
/// download is given up.
pub const STALL_SECONDS: u64 = 60;

/// Where to fetch from and how to check it.
pub struct Source<'a> {
    pub url: &'a str,
    pub md5: &'a str,
    /// Silence, in seconds, after which the server is taken to have stalled.
    pub stall_seconds: u64,
}

impl Source<'static> {
    /// The official archive.
    pub const OFFICIAL: Source<'static> = Source { url: URL, md5: MD5, stall_seconds: STALL_SECONDS };
}

/// Files that exist only while a download is under way, removed however it ends.
struct Partial(Vec<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        }
    }
}

/// Download and unpack into `dir`/cifar-10-batches-bin unless it is there already.
/// `records_per_file`: what each file must hold (10,000 for the official archive).
pub fn download(dir: &Path, source: &Source, records_per_file: usize) -> Result<PathBuf> {
    let target = dir.join(FOLDER);
    if target.is_dir() && data::load(dir, Some(records_per_file)).is_ok() {
        eprintln!("CIFAR-10 is already in {}.", target.display());
        return Ok(target);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let archive = dir.join(".cifar-10-binary.tar.gz.partial");
    let staging = dir.join(".cifar-10-batches-bin.partial");
    let _partial = Partial(vec![archive.clone(), staging.clone()]);
    fetch(source, &archive)?;

    let _ = std::fs::remove_dir_all(&staging);
    unpack(&archive, &staging)?;
    data::load(&staging, Some(records_per_file))
        .context("the downloaded archive does not hold valid CIFAR-10")?;
    if target.exists() {
        let aside = dir.join(format!("{FOLDER}.damaged-{}", std::process::id()));
        std::fs::rename(&target, &aside)
            .with_context(|| format!("moving the damaged {} aside", target.display()))?;
        eprintln!(
            "{} was incomplete or damaged; it is kept as {} (delete it once you have what you need from it).",
            target.display(),
            aside.display()
        );
    }
    std::fs::rename(staging.join(FOLDER), &target)
        .with_context(|| format!("moving the data to {}", target.display()))?;
    eprintln!("CIFAR-10 is ready in {}.", target.display());
    Ok(target)
}

/// Unpack the archive's plain files and folders into `into`; any other member (a link that
/// could point outside, a device) makes the archive unofficial.
fn unpack(archive: &Path, into: &Path) -> Result<()> {
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().with_context(|| format!("reading {}", archive.display()))? {
        let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
        let kind = entry.header().entry_type();
        let name = entry.path()?.display().to_string();
        if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "the archive's member {name} is a {kind:?}, not a file or folder: it is not the official archive"
            );
        }
        // unpack_in refuses members whose path leaves `into`.
        if !entry.unpack_in(into).with_context(|| format!("unpacking {name}"))? {
            bail!(
                "the archive's member {name} points outside the data folder: it is not the official archive"
            );
        }
    }
    Ok(())
}

/// Stream the source to `path`, hashing as it goes; a stall or a wrong checksum is an error.
fn fetch(source: &Source, path: &Path) -> Result<()> {
    let url = source.url;
    eprintln!("Downloading {url}");
    let stall = Duration::from_secs(source.stall_seconds);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(stall))
        .timeout_recv_response(Some(stall))
        .build()
        .into();
    let response = agent.get(url).call().with_context(|| {
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
    // The body is read on its own thread so that silence can be timed: ureq's body timeout
    // bounds the whole transfer, which for a slow but live link must not end.
    let (chunks, received) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(16);
    std::thread::spawn(move || {
        let mut reader = response.into_body().into_reader();
        loop {
            let mut buffer = vec![0u8; 1 << 16];
            let read = reader.read(&mut buffer).map(|n| {
                buffer.truncate(n);
                buffer
            });
            let done = !matches!(&read, Ok(b) if !b.is_empty());
            if chunks.send(read).is_err() || done {
                return;
            }
        }
    });
    let mut out = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut hasher = Md5::new();
    loop {
        let chunk = match received.recv_timeout(stall) {
            Ok(chunk) => chunk.with_context(|| format!("reading from {url}"))?,
            Err(_) => bail!(
                "{url} sent nothing for {} s after {} bytes: the server stalled; try again later",
                stall.as_secs(),
                bar.position()
            ),
        };
        if chunk.is_empty() {
            break;
        }
        hasher.update(&chunk);
        out.write_all(&chunk).with_context(|| format!("writing {}", path.display()))?;
        bar.inc(chunk.len() as u64);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != source.md5 {
        bail!(
            "{url} has md5 {got}, expected {}: the download is damaged or not the official archive; try again",
            source.md5
        );
    }
    Ok(())
}
