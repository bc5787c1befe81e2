//! The command line end to end on a tiny data set the test writes: train, eval, predict,
//! adapters, download (from a local HTTP server), and clear errors for bad data or a batch
//! too large for the device that leave nothing behind.

use crate::common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

fn shakeshake(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shakeshake")).args(args).output().expect("running shakeshake")
}

const TINY: [&str; 14] = [
    "--depth",
    "8",
    "--width",
    "8",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--train-subset",
    "40",
    "--records-per-file",
    "20",
    "--lr",
    "0.05",
];

fn train_args<'a>(data: &'a str, run: &'a str) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", data, "--run-dir", run];
    args.extend(TINY);
    args
}

#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    let t = text(out);
    assert!(!out.status.success(), "should have failed:\n{t}");
    for n in needles {
        assert!(t.contains(n), "the error should mention {n:?}:\n{t}");
    }
}

#[test]
fn bad_data_is_a_clear_error_and_nothing_is_written() {
    let dir = temp_dir("bad-data");
    let run = dir.join("run");
    let (d, r) = (dir.to_str().unwrap(), run.to_str().unwrap());
    let folder = dir.join("cifar-10-batches-bin");

    let empty = shakeshake(&train_args(d, r));
    assert_fails_with(&empty, &["no CIFAR-10 data", "download"]);

    tiny_cifar(&dir, 20);
    let file = folder.join("data_batch_3.bin");
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, &good[..good.len() - 100]).unwrap();
    assert_fails_with(&shakeshake(&train_args(d, r)), &["data_batch_3.bin", "truncated", "record 19"]);

    let mut bad_label = good.clone();
    bad_label[5 * 3073] = 10;
    std::fs::write(&file, &bad_label).unwrap();
    assert_fails_with(&shakeshake(&train_args(d, r)), &["data_batch_3.bin", "record 5", "label 10"]);

    std::fs::write(&file, &good).unwrap();
    std::fs::remove_file(folder.join("test_batch.bin")).unwrap();
    assert_fails_with(&shakeshake(&train_args(d, r)), &["test_batch.bin", "download"]);

    tiny_cifar(&dir, 20);
    // The tiny runs batch 16 images; ask for far more than any device binding holds.
    let too_big: Vec<&str> =
        train_args(d, r).into_iter().map(|a| if a == "16" { "100000" } else { a }).collect();
    assert_fails_with(&shakeshake(&too_big), &["at batch 100000", "maxStorageBufferBindingSize", "or less"]);
    assert!(!run.exists(), "a failed start must not create the run directory");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_eval_predict_and_adapters() {
    let dir = temp_dir("cli");
    tiny_cifar(&dir, 20);
    let run = dir.join("run");
    let (d, r) = (dir.to_str().unwrap(), run.to_str().unwrap());
    let out = shakeshake(&train_args(d, r));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("epoch    1/1"), "{}", text(&out));
    for f in ["options.json", "metrics.csv", "curves.png", "checkpoint.safetensors", "model.safetensors"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");

    // A second start in the same directory refuses and leaves the run alone.
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    assert_fails_with(&shakeshake(&train_args(d, r)), &["--resume"]);
    assert_eq!(before, std::fs::read(run.join("checkpoint.safetensors")).unwrap());

    let model = run.join("model.safetensors");
    let m = model.to_str().unwrap();
    let out = shakeshake(&["eval", "--checkpoint", m, "--data", d, "--records-per-file", "20", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["images"], 20);
    let accuracy = json["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert_eq!(json["per_class"].as_object().unwrap().len(), 10);
    assert!(json["per_class"]["airplane"].is_number());

    let (a, b) = (dir.join("a.png"), dir.join("b.jpg"));
    image::RgbImage::from_fn(50, 40, |x, y| image::Rgb([x as u8 * 5, y as u8 * 6, 90])).save(&a).unwrap();
    image::RgbImage::from_fn(32, 32, |x, _| image::Rgb([200, x as u8, 20])).save(&b).unwrap();
    let out = shakeshake(&["predict", "--checkpoint", m, a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.lines().all(|l| l.matches('%').count() == 3), "top 3 with probabilities:\n{stdout}");

    let out = shakeshake(&["adapters"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("0: "), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An f16 run whose loss scale starts far too high (2^30: the gradients overflow f16)
/// skips its first steps, halving the scale each time, then trains: metrics.csv and the
/// epoch's line say how many were skipped and where the scale came down to; the weights
/// stay finite, and eval runs the model with f16 activations too.
#[test]
fn an_overflowing_loss_scale_skips_steps_and_comes_down() {
    let dir = temp_dir("overflow");
    tiny_cifar(&dir, 20);
    let run = dir.join("run");
    let (d, r) = (dir.to_str().unwrap(), run.to_str().unwrap());
    let mut args = train_args(d, r);
    // Four epochs of 3 steps (40 images in batches of 16).
    let epochs = args.iter().position(|a| *a == "--epochs").unwrap() + 1;
    args[epochs] = "4";
    args.extend(["--precision", "f16"]);
    let out = Command::new(env!("CARGO_BIN_EXE_shakeshake"))
        .args(&args)
        .env("SHAKESHAKE_INITIAL_LOSS_SCALE", (1u64 << 30).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("in f16 (asked for (--precision f16)), loss scale 1073741824"),
        "{}",
        text(&out)
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    let (scale, skipped): (f64, u64) = (last[8].parse().unwrap(), last[9].parse().unwrap());
    assert!(skipped > 0 && scale == (1u64 << 30) as f64 / (1u64 << skipped) as f64, "{csv}");
    assert!(text(&out).contains(&format!("loss scale {scale} ({skipped} steps skipped)")), "{}", text(&out));
    assert!(skipped < 12, "the scale should come down within the run's 12 steps: {csv}");
    let model = run.join("model.safetensors");
    let eval = ["eval", "--checkpoint", model.to_str().unwrap(), "--data", d, "--records-per-file", "20"];
    let out = shakeshake(&[&eval[..], &["--precision", "f16", "--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Serves `body` to every request on a loopback port, for a bounded number of requests.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut request = vec![0u8; 4096];
            let _ = stream.read(&mut request);
            let header =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(header.as_bytes()).and_then(|_| stream.write_all(&body));
        }
    });
    url
}

fn archive_of(dir: &Path) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(vec![], flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", dir.join("cifar-10-batches-bin")).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn download_verifies_and_unpacks_atomically() {
    let source = temp_dir("download-source");
    tiny_cifar(&source, 20);
    let archive = archive_of(&source);
    let md5: String = {
        use md5::Digest;
        md5::Md5::digest(&archive).iter().map(|b| format!("{b:02x}")).collect()
    };
    let url = serve(archive, 2);
    let target = temp_dir("download-target");
    let t = target.to_str().unwrap();

    let wrong = shakeshake(&[
        "download",
        "--data",
        t,
        "--url",
        &url,
        "--md5",
        &"0".repeat(32),
        "--records-per-file",
        "20",
    ]);
    assert_fails_with(&wrong, &["md5", "expected"]);
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "a failed download leaves nothing");

    let out =
        shakeshake(&["download", "--data", t, "--url", &url, "--md5", &md5, "--records-per-file", "20"]);
    assert!(out.status.success(), "{}", text(&out));
    let names: Vec<String> =
        std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["cifar-10-batches-bin"], "only the data set, no partial files");
    let (train, test) = shakeshake::train::data::load(&target, Some(20)).unwrap();
    assert_eq!((train.len(), test.len()), (100, 20));
    for d in [source, target] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn reads_the_official_archive_directly() {
    let source = temp_dir("archive-source");
    tiny_cifar(&source, 20);
    let dir = temp_dir("archive");
    std::fs::write(dir.join("cifar-10-binary.tar.gz"), archive_of(&source)).unwrap();
    let (train, test) = shakeshake::train::data::load(&dir, Some(20)).unwrap();
    let (train_folder, _) = shakeshake::train::data::load(&source, Some(20)).unwrap();
    assert_eq!((train.len(), test.len()), (100, 20));
    assert_eq!(train.pixels, train_folder.pixels);
    assert_eq!(train.labels, train_folder.labels);

    // A repacked archive holding a file twice is refused rather than read as more data.
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(vec![], flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", source.join("cifar-10-batches-bin")).unwrap();
    tar.append_path_with_name(source.join("cifar-10-batches-bin/data_batch_1.bin"), "copy/data_batch_1.bin")
        .unwrap();
    std::fs::write(dir.join("cifar-10-binary.tar.gz"), tar.into_inner().unwrap().finish().unwrap()).unwrap();
    let err = shakeshake::train::data::load(&dir, Some(20)).unwrap_err().to_string();
    assert!(err.contains("data_batch_1.bin twice"), "{err}");
    for d in [source, dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A loopback server that accepts connections and never answers, or (`headers_only`) stops
/// after the headers; it holds each connection open until the test ends.
fn silent_server(headers_only: bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = vec![];
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut request = vec![0u8; 4096];
            let _ = stream.read(&mut request);
            if headers_only {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial");
            }
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    url
}

#[test]
fn download_gives_up_on_a_silent_server_and_leaves_nothing() {
    let target = temp_dir("download-stall");
    let t = target.to_str().unwrap();
    for headers_only in [false, true] {
        let url = silent_server(headers_only);
        let started = std::time::Instant::now();
        let out = shakeshake(&["download", "--data", t, "--url", &url, "--stall-seconds", "1"]);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(started.elapsed().as_secs() < 20, "it should give up after about a second");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "no partial files are left:\n{}",
            text(&out)
        );
    }
    std::fs::remove_dir_all(&target).unwrap();
}

#[test]
fn download_keeps_a_damaged_folder_and_refuses_links_in_the_archive() {
    let source = temp_dir("download-keep-source");
    tiny_cifar(&source, 20);
    let archive = archive_of(&source);
    let md5_of = |bytes: &[u8]| -> String {
        use md5::Digest;
        md5::Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    };
    let target = temp_dir("download-keep");
    let t = target.to_str().unwrap();
    // A damaged data folder holding a file of the user's.
    let folder = target.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("data_batch_1.bin"), b"cut").unwrap();
    std::fs::write(folder.join("my-notes.txt"), b"mine").unwrap();
    let url = serve(archive.clone(), 1);
    let md5 = md5_of(&archive);
    let out =
        shakeshake(&["download", "--data", t, "--url", &url, "--md5", &md5, "--records-per-file", "20"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("damaged"), "the user is told:\n{}", text(&out));
    let aside: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().contains("damaged"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(aside[0].join("my-notes.txt")).unwrap(), b"mine", "the user's file survives");
    shakeshake::train::data::load(&target, Some(20)).unwrap();

    // An archive with a symbolic link to an absolute path is refused and leaves nothing.
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(vec![], flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", source.join("cifar-10-batches-bin")).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    tar.append_link(&mut header, "cifar-10-batches-bin/escape", "/etc").unwrap();
    let linked = tar.into_inner().unwrap().finish().unwrap();
    let elsewhere = temp_dir("download-link");
    let e = elsewhere.to_str().unwrap();
    let url = serve(linked.clone(), 1);
    let md5 = md5_of(&linked);
    let out =
        shakeshake(&["download", "--data", e, "--url", &url, "--md5", &md5, "--records-per-file", "20"]);
    assert!(!out.status.success() && text(&out).contains("Symlink"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing is left behind");
    for d in [source, target, elsewhere] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn runs_within_webgpus_default_limits_when_asked() {
    let run = |mode: &str| {
        Command::new(env!("CARGO_BIN_EXE_shakeshake"))
            .args(["bench", "train", "--depth", "8", "--width", "8", "--batch-size", "2", "--steps", "1"])
            .env("SHAKESHAKE_LIMITS", mode)
            .output()
            .unwrap()
    };
    let strict = run("webgpu-default");
    assert!(strict.status.success(), "{}", text(&strict));
    assert!(text(&strict).contains("WebGPU's default limits"), "{}", text(&strict));
    assert_fails_with(&run("everything"), &["SHAKESHAKE_LIMITS", "webgpu-default"]);
}

/// `shader` prints a module as the driver gets it (WGSL that naga parses, each file marked),
/// lists the modules without one, and names them for one it does not know.
#[test]
fn shader_prints_a_joined_module_that_naga_parses() {
    let out = shakeshake(&["shader", "conv2d_forward_tiled"]);
    assert!(out.status.success(), "{}", text(&out));
    let wgsl = String::from_utf8(out.stdout).unwrap();
    for file in ["// ---- conv2d_params.wgsl", "// ---- gemm_tiled.wgsl"] {
        assert!(wgsl.contains(file), "{file} missing:\n{wgsl}");
    }
    let module =
        naga::front::wgsl::parse_str(&wgsl).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&wgsl)));
    assert!(module.entry_points.iter().any(|e| e.name == "main"));

    let listing = shakeshake(&["shader"]);
    assert!(text(&listing).contains("conv2d_forward_tiled") && text(&listing).contains("sgd.wgsl"));
    assert_fails_with(
        &shakeshake(&["shader", "conv2d_sideways"]),
        &["no shader module", "conv2d_forward_tiled"],
    );
}

/// `kernels` creates every pipeline a network's training and evaluation could use, naming
/// each, and runs nothing; a variant whose pipelines the driver will not compile is listed
/// with the compiler's message, and the command fails.
#[test]
fn kernels_creates_every_pipeline_and_lists_those_that_do_not_compile() {
    let args = ["kernels", "--depth", "8", "--width", "8", "--batch-size", "16", "--all-variants"];
    let out = shakeshake(&args);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pipelines = stdout.lines().filter(|l| l.starts_with("pipeline ")).count();
    // Every family of convolutions, the other ops of a training step, and evaluation's.
    for kernel in [
        "conv2d_forward_tiled::main",
        "winograd4_transforms::transform_input",
        "sgd::main",
        "::eval_statistics",
    ] {
        assert!(stdout.contains(kernel), "{kernel}:\n{stdout}");
    }
    assert!(text(&out).contains(&format!("{pipelines} pipelines for 8 2x8d at batch 16")), "{}", text(&out));

    let broken = Command::new(env!("CARGO_BIN_EXE_shakeshake"))
        .args(args)
        .env("SHAKESHAKE_UNCOMPILABLE_VARIANT", "tiled")
        .output()
        .unwrap();
    assert_fails_with(
        &broken,
        &["did not compile", "FAILED: the driver could not compile kernel conv2d_forward_tiled"],
    );
    assert!(!text(&broken).contains("FAILED: the driver could not compile kernel conv2d_forward_direct"));
}

/// On Vulkan the driver's compiled pipelines are kept in the cache folder, checksummed; a
/// damaged file is not handed to the driver, and the next run replaces it with a whole one.
#[test]
fn compiled_pipelines_are_kept_on_disk_and_a_damaged_file_is_replaced() {
    if gpu().info.backend != wgpu::Backend::Vulkan {
        return; // wgpu 30 keeps pipeline caches on Vulkan only.
    }
    let cache = temp_dir("pipeline-cache");
    let args = ["kernels", "--depth", "8", "--width", "8", "--batch-size", "16"];
    let kept_file = || {
        let mut files = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path());
        files.find(|f| f.extension() == Some("bin".as_ref())).expect("a pipeline cache file")
    };
    let intact = |file: &[u8]| {
        use md5::Digest;
        file.len() > 16 && md5::Md5::digest(&file[16..]).as_slice() == &file[..16]
    };
    assert_ok(&crate::common::shakeshake(&cache, &args));
    let first = std::fs::read(kept_file()).unwrap();
    assert!(intact(&first), "an MD5 of the data, then the data");
    let flip_a_bit = |f: &mut Vec<u8>| *f.last_mut().unwrap() ^= 1;
    let cut_short = |f: &mut Vec<u8>| f.truncate(20);
    for damage in [flip_a_bit, cut_short] {
        let mut damaged = first.clone();
        damage(&mut damaged);
        std::fs::write(kept_file(), &damaged).unwrap();
        assert!(!intact(&damaged));
        assert_ok(&crate::common::shakeshake(&cache, &args));
        assert!(intact(&std::fs::read(kept_file()).unwrap()), "the damaged file was replaced");
    }
    std::fs::remove_dir_all(&cache).unwrap();
}

/// The device memory `train` prints before allocating is within 10 % of what wgpu then
/// allocates (8 2x16d at batch 128: a full and a last batch of training, and evaluation).
/// Out of memory, the error names what the run needs and a batch, and that batch trains.
#[test]
fn the_memory_estimate_matches_wgpu_and_out_of_memory_names_a_batch_that_fits() {
    let dir = temp_dir("memory");
    tiny_cifar(&dir, 60);
    let cache = dir.join("cache");
    let train = |run: &str, batch: &str, memory_mb: Option<&str>| {
        let (data, run) = (dir.to_str().unwrap().to_string(), dir.join(run).to_str().unwrap().to_string());
        let args = ["train", "--data", &data, "--run-dir", &run, "--records-per-file", "60", "--epochs", "1"];
        let mut command = command(&cache, &args);
        command.args(["--depth", "8", "--width", "16", "--batch-size", batch]);
        if let Some(mb) = memory_mb {
            command.env("SHAKESHAKE_DEVICE_MEMORY_MB", mb);
        }
        command.output().unwrap()
    };
    // The number after `prefix` on its line.
    let number_after = |out: &Output, prefix: &str| -> f64 {
        let t = text(out);
        let rest = t.split(prefix).nth(1).unwrap_or_else(|| panic!("no {prefix:?} in:\n{t}"));
        rest.split(|c: char| !c.is_ascii_digit() && c != '.').next().unwrap().parse().unwrap()
    };

    let out = train("fits", "128", None);
    assert!(out.status.success(), "{}", text(&out));
    let (estimate, allocated) =
        (number_after(&out, "Device memory: "), number_after(&out, "wgpu allocated "));
    assert!(
        (estimate - allocated).abs() <= 0.1 * allocated,
        "estimate {estimate} MB, allocated {allocated} MB"
    );

    let short = train("short", "128", Some("60"));
    assert_fails_with(
        &short,
        &["ran out of memory allocating this run, which needs about", "use --batch-size"],
    );
    let batch = number_after(&short, "use --batch-size ").to_string();
    assert!(batch.parse::<usize>().unwrap() < 128, "{batch}");
    let smaller = train("smaller", &batch, Some("60"));
    assert!(smaller.status.success(), "batch {batch}:\n{}", text(&smaller));
    std::fs::remove_dir_all(&dir).unwrap();
}
