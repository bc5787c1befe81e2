//! CIFAR-10 in the official binary layout (`cifar-10-batches-bin/`), read from a folder or
//! straight from the official `cifar-10-binary.tar.gz`, and checked record by record before
//! any training starts.

use crate::shapes::IMAGE_BYTES;
use anyhow::{Context, Result, anyhow, bail};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
pub const FOLDER: &str = "cifar-10-batches-bin";
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// Records in each official file.
pub const RECORDS_PER_FILE: usize = 10_000;

/// Images (3072 bytes each: red plane, green, blue) and their labels.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }
    /// The first `n` images.
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.pixels.truncate(n * IMAGE_BYTES);
    }
}

/// Check one file's bytes and append its records. `expected` records, if given.
fn parse_records(name: &str, bytes: &[u8], expected: Option<usize>, into: &mut Dataset) -> Result<()> {
    let fix = "re-download it with `shakeshake download`, or fetch cifar-10-binary.tar.gz from \
               https://www.cs.toronto.edu/~kriz/cifar.html and unpack it into assets/";
    if bytes.is_empty() {
        bail!("{name} is empty; {fix}");
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        bail!(
            "{name} is {} bytes, not a whole number of {RECORD_BYTES}-byte records (record {} is cut short): \
             the file is truncated or not CIFAR-10's binary version; {fix}",
            bytes.len(),
            bytes.len() / RECORD_BYTES
        );
    }
    let records = bytes.len() / RECORD_BYTES;
    if let Some(want) = expected
        && records != want
    {
        bail!("{name} holds {records} records, not the {want} of the official file; {fix}");
    }
    for (i, record) in bytes.chunks(RECORD_BYTES).enumerate() {
        if record[0] > 9 {
            bail!(
                "{name}, record {i} (byte {}): label {} is not a class 0-9; the file is corrupt or not \
                 CIFAR-10 (CIFAR-100's binary files have two label bytes); {fix}",
                i * RECORD_BYTES,
                record[0]
            );
        }
        into.labels.push(record[0]);
        into.pixels.extend_from_slice(&record[1..]);
    }
    Ok(())
}

/// Where the data is: the folder of .bin files, or the archive.
enum Source {
    Folder(PathBuf),
    Archive(PathBuf),
}

fn locate(dir: &Path) -> Result<Source> {
    for candidate in [dir.join(FOLDER), dir.to_path_buf()] {
        if candidate.join(TEST_FILE).is_file() || candidate.join(TRAIN_FILES[0]).is_file() {
            return Ok(Source::Folder(candidate));
        }
    }
    let archive = dir.join(ARCHIVE);
    if archive.is_file() {
        return Ok(Source::Archive(archive));
    }
    Err(anyhow!(
        "no CIFAR-10 data in {}: expected {}/{FOLDER}/ with data_batch_1.bin ... test_batch.bin, or {}/{ARCHIVE}. \
         Run `shakeshake download` (or `train --download`) to fetch it.",
        dir.display(),
        dir.display(),
        dir.display()
    ))
}

/// The training and test sets, every file checked. `records_per_file`: the count each file
/// must hold (the official 10,000; tests use smaller files).
pub fn load(dir: &Path, records_per_file: Option<usize>) -> Result<(Dataset, Dataset)> {
    let all: Vec<&str> = TRAIN_FILES.iter().chain([&TEST_FILE]).copied().collect();
    let mut files = read_files(dir, &all)?;
    // An archive lists its files in any order; the data set's order is the official one.
    let rank = |name: &str| all.iter().position(|f| name.ends_with(f));
    files.sort_by_key(|(name, _)| rank(name));
    let (mut train, mut test) = (Dataset::default(), Dataset::default());
    for (name, bytes) in &files {
        let into = if name.ends_with(TEST_FILE) { &mut test } else { &mut train };
        parse_records(name, bytes, records_per_file, into)?;
    }
    Ok((train, test))
}

/// The test set alone (what `eval` reads): the training files need not be there.
pub fn load_test(dir: &Path, records_per_file: Option<usize>) -> Result<Dataset> {
    let mut test = Dataset::default();
    for (name, bytes) in read_files(dir, &[TEST_FILE])? {
        parse_records(&name, &bytes, records_per_file, &mut test)?;
    }
    Ok(test)
}

/// The bytes of each `wanted` file, from the folder or the archive in `dir`, named for errors.
fn read_files(dir: &Path, wanted: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<(String, Vec<u8>)> = vec![];
    match locate(dir)? {
        Source::Folder(folder) => {
            for name in wanted {
                let path = folder.join(name);
                let bytes = std::fs::read(&path).with_context(|| {
                    format!(
                        "reading {} (the data set is incomplete; run `shakeshake download`)",
                        path.display()
                    )
                })?;
                files.push((path.display().to_string(), bytes));
            }
        }
        Source::Archive(archive) => {
            let file =
                std::fs::File::open(&archive).with_context(|| format!("opening {}", archive.display()))?;
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let entries = tar
                .entries()
                .with_context(|| format!("{} is not a gzipped tar archive", archive.display()))?;
            for entry in entries {
                let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
                let path = entry.path()?.to_path_buf();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
                if wanted.contains(&name.as_str()) {
                    if files.iter().any(|(n, _)| n.ends_with(&format!(":{name}"))) {
                        bail!(
                            "{} holds {name} twice: it is not the official cifar-10-binary.tar.gz",
                            archive.display()
                        );
                    }
                    let mut bytes = vec![];
                    entry
                        .read_to_end(&mut bytes)
                        .with_context(|| format!("reading {name} in {}", archive.display()))?;
                    files.push((format!("{}:{name}", archive.display()), bytes));
                }
            }
            for name in wanted {
                if !files.iter().any(|(n, _)| n.ends_with(name)) {
                    bail!(
                        "{} has no {name}: it is not the official cifar-10-binary.tar.gz",
                        archive.display()
                    );
                }
            }
        }
    }
    Ok(files)
}

/// Write `data` as one file of CIFAR records (used by tests and tools that make small sets).
pub fn write_records(path: &Path, data: &Dataset) -> Result<()> {
    let mut bytes = Vec::with_capacity(data.len() * RECORD_BYTES);
    for i in 0..data.len() {
        bytes.push(data.labels[i]);
        bytes.extend_from_slice(data.image(i));
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| std::iter::once((i % 10) as u8).chain(std::iter::repeat_n(i as u8, IMAGE_BYTES)))
            .collect()
    }

    #[test]
    fn truncated_and_mislabelled_files_are_named_with_the_record() {
        let mut d = Dataset::default();
        let mut bytes = records(3);
        bytes.pop();
        let err = parse_records("x.bin", &bytes, None, &mut d).unwrap_err().to_string();
        assert!(err.contains("x.bin") && err.contains("record 2") && err.contains("download"), "{err}");

        let mut bytes = records(3);
        bytes[RECORD_BYTES] = 10;
        let err = parse_records("y.bin", &bytes, None, &mut d).unwrap_err().to_string();
        assert!(err.contains("record 1") && err.contains("label 10"), "{err}");

        let err = parse_records("z.bin", &records(3), Some(10_000), &mut d).unwrap_err().to_string();
        assert!(err.contains("3 records"), "{err}");
        assert!(parse_records("e.bin", &[], None, &mut d).unwrap_err().to_string().contains("empty"));
    }
}
