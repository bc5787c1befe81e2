//! ReLU, the shake-shake mix, global average pooling, the linear layer, cross-entropy, SGD
//! and batch preparation against their CPU references. Lengths are not multiples of the
//! workgroup size. Tolerance 1e-5 of the largest reference value unless stated.

mod common;
use common::*;
use shakeshake::cpu::shake::{BackwardMode, ForwardMode, Level, ShakeKey};
use shakeshake::cpu::{self, gradcheck::test_values, sgd::SgdSettings};
use shakeshake::ops::{self, StepUniform};

const TOLERANCE: f64 = 1e-5;

#[test]
fn relu_forward_and_backward() {
    let gpu = gpu();
    let len = 1000;
    let x = rounded(&test_values(len, 21));
    let dy = rounded(&test_values(len, 22));
    let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
    let (y, dx) = (gpu.storage("y", len), gpu.storage("dx", len));
    gpu.run(&[
        &ops::relu::forward(gpu, len, (&xb).into(), (&y).into()),
        &ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), false),
    ]);
    let want_dx = cpu::relu::backward(&x, &dy);
    assert_close(&download(gpu, &y), &cpu::relu::forward(&x), 0.0, "relu forward");
    assert_close(&download(gpu, &dx), &want_dx, 0.0, "relu backward");
    gpu.run(&[&ops::relu::backward(gpu, len, (&xb).into(), (&dyb).into(), (&dx).into(), true)]);
    let doubled: Vec<f64> = want_dx.iter().map(|v| 2.0 * v).collect();
    assert_close(&download(gpu, &dx), &doubled, 0.0, "relu backward, accumulated");
}

#[test]
fn shake_every_variant_matches_reference() {
    let gpu = gpu();
    let (batch, image_len) = (5, 3 * 7);
    let len = batch * image_len;
    let (a, b, s, dy) = (
        rounded(&test_values(len, 31)),
        rounded(&test_values(len, 32)),
        rounded(&test_values(len, 33)),
        rounded(&test_values(len, 34)),
    );
    let bufs: Vec<wgpu::Buffer> = [&a, &b, &s, &dy].iter().map(|v| upload(gpu, v)).collect();
    let step = StepUniform { step: 17, seed: 42, lr: 0.0, _pad: 0 };
    let step_buffer = gpu.uniform("step", &step);
    for forward in [ForwardMode::Shake, ForwardMode::Even] {
        for backward in [BackwardMode::Shake, BackwardMode::Even, BackwardMode::Keep] {
            for level in [Level::Batch, Level::Image] {
                let op = ops::shake::Shake { batch, image_len, block: 3, forward, backward, level };
                let key = ShakeKey { forward, backward, level, seed: step.seed, step: step.step, block: 3 };
                let (y, da, db) = (gpu.storage("y", len), gpu.storage("da", len), gpu.storage("db", len));
                let ds = gpu.storage("ds", len);
                gpu.run(&[
                    &op.forward(
                        gpu,
                        (&step_buffer).into(),
                        (&bufs[0]).into(),
                        (&bufs[1]).into(),
                        (&bufs[2]).into(),
                        (&y).into(),
                    ),
                    &op.backward(
                        gpu,
                        (&step_buffer).into(),
                        (&bufs[3]).into(),
                        (&da).into(),
                        (&db).into(),
                        (&ds).into(),
                    ),
                ]);
                let what = format!("{forward:?} {backward:?} {level:?}");
                let want_y = cpu::shake::forward(&key, image_len, &a, &b, &s);
                let (want_da, want_db) = cpu::shake::backward(&key, image_len, &dy);
                assert_close(&download(gpu, &y), &want_y, TOLERANCE, &format!("shake forward {what}"));
                assert_close(&download(gpu, &da), &want_da, TOLERANCE, &format!("shake da {what}"));
                assert_close(&download(gpu, &db), &want_db, TOLERANCE, &format!("shake db {what}"));
                assert_close(&download(gpu, &ds), &dy, 0.0, &format!("shake dshortcut {what}"));
            }
        }
    }
}

#[test]
fn shake_coefficients_differ_per_image_and_per_step() {
    let key = |step, level| ShakeKey {
        forward: ForwardMode::Shake,
        backward: BackwardMode::Shake,
        level,
        seed: 1,
        step,
        block: 0,
    };
    assert_ne!(key(0, Level::Image).alpha(0), key(0, Level::Image).alpha(1));
    assert_eq!(key(0, Level::Batch).alpha(0), key(0, Level::Batch).alpha(1));
    assert_ne!(key(0, Level::Batch).alpha(0), key(1, Level::Batch).alpha(0));
    assert_ne!(key(0, Level::Image).alpha(2), key(0, Level::Image).beta(2));
}

#[test]
fn avg_pool_forward_and_backward() {
    let gpu = gpu();
    let (planes, plane) = (2 * 7, 64);
    let x = rounded(&test_values(planes * plane, 41));
    let dy = rounded(&test_values(planes, 42));
    let (xb, dyb) = (upload(gpu, &x), upload(gpu, &dy));
    let (y, dx) = (gpu.storage("y", planes), gpu.storage("dx", planes * plane));
    gpu.run(&[
        &ops::pool::forward(gpu, planes, plane, (&xb).into(), (&y).into()),
        &ops::pool::backward(gpu, planes, plane, (&dyb).into(), (&dx).into()),
    ]);
    assert_close(&download(gpu, &y), &cpu::pool::forward(&x, plane), TOLERANCE, "pool forward");
    assert_close(&download(gpu, &dx), &cpu::pool::backward(&dy, plane), TOLERANCE, "pool backward");
}

#[test]
fn linear_forward_and_backward() {
    let gpu = gpu();
    let fc = ops::linear::Linear { batch: 3, inputs: 13, outputs: 10 };
    let x = rounded(&test_values(fc.batch * fc.inputs, 51));
    let wb = rounded(&test_values(fc.param_len(), 52));
    let dy = rounded(&test_values(fc.batch * fc.outputs, 53));
    let (w, b) = wb.split_at(fc.outputs * fc.inputs);
    let (xb, wbb, dyb) = (upload(gpu, &x), upload(gpu, &wb), upload(gpu, &dy));
    let (y, dx, g) = (
        gpu.storage("y", fc.batch * fc.outputs),
        gpu.storage("dx", x.len()),
        gpu.storage("g", fc.param_len()),
    );
    let mut d = vec![fc.forward(gpu, (&xb).into(), (&wbb).into(), (&y).into())];
    d.extend(fc.backward(gpu, (&xb).into(), (&wbb).into(), (&dyb).into(), (&dx).into(), (&g).into()));
    gpu.run(&d.iter().collect::<Vec<_>>());
    let want_y = cpu::linear::forward(&x, w, b, fc.batch, fc.inputs, fc.outputs);
    let (want_dx, want_dw, want_db) = cpu::linear::backward(&x, w, &dy, fc.batch, fc.inputs, fc.outputs);
    assert_close(&download(gpu, &y), &want_y, TOLERANCE, "linear forward");
    assert_close(&download(gpu, &dx), &want_dx, TOLERANCE, "linear dx");
    let want_g: Vec<f64> = want_dw.iter().chain(&want_db).cloned().collect();
    assert_close(&download(gpu, &g), &want_g, TOLERANCE, "linear dW db");
}

#[test]
fn cross_entropy_loss_count_and_gradient() {
    let gpu = gpu();
    let (batch, classes) = (300, 10); // more images than the workgroup's 256 invocations
    let logits: Vec<f64> =
        rounded(&test_values(batch * classes, 61).iter().map(|v| v * 4.0).collect::<Vec<_>>());
    let labels: Vec<u32> = (0..batch as u32).map(|i| (i * 7) % classes as u32).collect();
    let (lb, labb) = (upload(gpu, &logits), gpu.storage_from("labels", &labels));
    let metrics = gpu.storage("metrics", ops::cross_entropy::METRICS_LEN);
    let dl = gpu.storage("dlogits", logits.len());
    let forward =
        ops::cross_entropy::forward(gpu, batch, classes, (&lb).into(), (&labb).into(), (&metrics).into());
    let backward =
        ops::cross_entropy::backward(gpu, batch, classes, (&lb).into(), (&labb).into(), (&dl).into());
    // Twice: the totals accumulate, the last mean does not.
    gpu.run(&[&forward, &forward, &backward]);
    let (loss, correct) = cpu::cross_entropy::forward(&logits, &labels, classes);
    let n = batch as f64;
    let want = [2.0 * loss * n, 2.0 * correct as f64, 2.0 * n, loss];
    assert_close(&download(gpu, &metrics), &want, 1e-5, "loss metrics");
    assert!(correct > 0 && correct < batch, "the test data should have some right and some wrong");
    let want_dl = cpu::cross_entropy::backward(&logits, &labels, classes);
    assert_close(&download(gpu, &dl), &want_dl, TOLERANCE, "dlogits");
}

#[test]
fn sgd_nesterov_with_weight_decay() {
    let gpu = gpu();
    let len = 777;
    let settings = SgdSettings { momentum: 0.9, weight_decay: 1e-4, nesterov: true };
    let mut w = rounded(&test_values(len, 71));
    let g = rounded(&test_values(len, 72));
    let mut v = rounded(&test_values(len, 73));
    let (wb, gb, vb) = (upload(gpu, &w), upload(gpu, &g), upload(gpu, &v));
    let lr = 0.2f32;
    let step = gpu.uniform("step", &StepUniform { step: 0, seed: 0, lr, _pad: 0 });
    let d = ops::sgd::step(gpu, &settings, len, (&step).into(), (&wb).into(), (&gb).into(), (&vb).into());
    gpu.run(&[&d, &d]);
    for _ in 0..2 {
        cpu::sgd::step(&settings, lr as f64, &mut w, &g, &mut v);
    }
    assert_close(&download(gpu, &wb), &w, TOLERANCE, "sgd weights");
    assert_close(&download(gpu, &vb), &v, TOLERANCE, "sgd velocity");
}

#[test]
fn prepare_batch_normalises_crops_and_flips_like_the_reference() {
    let gpu = gpu();
    let batch = 5;
    let pixels: Vec<u8> =
        (0..batch * 3072).map(|i| (shakeshake::random::pcg_hash(i as u32) % 256) as u8).collect();
    let mean = [125.3, 123.0, 113.9];
    let std = [63.0, 62.1, 66.7];
    let pb = gpu.storage_from("pixels", &pixels);
    let out = gpu.storage("images", pixels.len());
    let step = StepUniform { step: 9, seed: 1234, lr: 0.0, _pad: 0 };
    let sb = gpu.uniform("step", &step);
    for augment in [false, true] {
        let prep = ops::prepare_batch::Prepare { batch, mean, std, augment };
        let d = prep.dispatch(gpu, (&sb).into(), (&pb).into(), (&out).into());
        gpu.run(&[&d]);
        let m64 = mean.map(|v| v as f64);
        let s64 = std.map(|v| v as f64);
        let want = cpu::prepare_batch::prepare(&pixels, m64, s64, augment.then_some((step.seed, step.step)));
        assert_close(&download(gpu, &out), &want, 1e-5, &format!("prepare augment={augment}"));
    }
    // The draws vary across images: not every image gets the same crop and flip.
    let draws: std::collections::HashSet<_> =
        (0..batch).map(|i| cpu::prepare_batch::augmentation(step.seed, step.step, i)).collect();
    assert!(draws.len() > 1);
}
