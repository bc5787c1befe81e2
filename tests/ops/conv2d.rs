//! Every convolution kernel variant, in every pass, against `cpu::conv2d` in f64.
//! Tolerance: 1e-4 of the largest reference value (f32 sums of up to a few thousand terms of
//! values in [-1, 1) stay well inside it).

use crate::common::*;
use shakeshake::cpu::{self, gradcheck::test_values};
use shakeshake::layout::{conv_weight_from_gpu, conv_weight_to_gpu};
use shakeshake::ops::conv2d::{Conv2d, ConvPass, ConvVariant};
use shakeshake::shapes::{ChannelWindow, Conv2dShape};

const TOLERANCE: f64 = 1e-4;

/// Edge shapes: batch 1, odd sizes, stride 2, channel counts off the 32-wide blocks, 1x1,
/// the shifted 1x1 of the shortcut, and one big enough to split the weight gradient.
fn shapes() -> Vec<Conv2dShape> {
    vec![
        Conv2dShape::new(1, 3, 7, 5, 4, 3, 1, 1),
        Conv2dShape::new(2, 5, 9, 9, 12, 3, 2, 1),
        Conv2dShape::new(3, 8, 8, 8, 36, 3, 1, 1),
        Conv2dShape::new(2, 6, 5, 7, 6, 3, 1, 1),
        Conv2dShape::new(2, 6, 5, 7, 8, 1, 1, 0),
        Conv2dShape::new(2, 7, 9, 6, 8, 1, 2, 0),
        Conv2dShape::shifted_1x1(2, 7, 9, 6, 8, 2),
        Conv2dShape::new(3, 4, 32, 32, 8, 3, 1, 1),
    ]
}

fn variants_for(pass: ConvPass, shape: &Conv2dShape) -> Vec<ConvVariant> {
    ConvVariant::ALL.into_iter().filter(|v| v.supports(gpu(), pass, shape)).collect()
}

struct Data {
    x: Vec<f64>,
    w_oihw: Vec<f64>,
    dy: Vec<f64>,
}

fn data(s: &Conv2dShape) -> Data {
    Data {
        x: rounded(&test_values(s.input_len(), 1)),
        w_oihw: rounded(&test_values(s.weight_len(), 2)),
        dy: rounded(&test_values(s.output_len(), 3)),
    }
}

fn gpu_weights(s: &Conv2dShape, w: &[f64]) -> wgpu::Buffer {
    upload(gpu(), &conv_weight_to_gpu(w, s.cout, s.cin, s.ksize))
}

#[test]
fn forward_matches_reference() {
    on_every_gpu(|| {
        let gpu = gpu();
        for s in shapes() {
            let d = data(&s);
            let want = cpu::conv2d::forward(&s, &d.x, &d.w_oihw);
            for v in variants_for(ConvPass::Forward, &s) {
                let conv = Conv2d::with_variants(s, [v; 3]);
                let (x, w) = (upload(gpu, &d.x), gpu_weights(&s, &d.w_oihw));
                let y = gpu.storage("y", s.output_len());
                gpu.run(&[&conv.forward(
                    gpu,
                    (&x).into(),
                    (&w).into(),
                    (&y).into(),
                    ChannelWindow::whole(&s),
                )]);
                assert_close(&download(gpu, &y), &want, TOLERANCE, &format!("forward {v:?} {s:?}"));
            }
        }
    });
}

#[test]
fn grad_input_matches_reference_and_accumulates() {
    on_every_gpu(|| {
        let gpu = gpu();
        for s in shapes() {
            let d = data(&s);
            let want = cpu::conv2d::grad_input(&s, &d.dy, &d.w_oihw);
            let before = rounded(&test_values(s.input_len(), 4));
            let want_accumulated: Vec<f64> = want.iter().zip(&before).map(|(a, b)| a + b).collect();
            for v in variants_for(ConvPass::GradInput, &s) {
                let conv = Conv2d::with_variants(s, [v; 3]);
                let (dy, w) = (upload(gpu, &d.dy), gpu_weights(&s, &d.w_oihw));
                let window = ChannelWindow::whole(&s);
                let dx = upload(gpu, &before);
                gpu.run(&[&conv.grad_input(gpu, (&dy).into(), (&w).into(), (&dx).into(), window, false)]);
                assert_close(&download(gpu, &dx), &want, TOLERANCE, &format!("grad_input {v:?} {s:?}"));
                let dx = upload(gpu, &before);
                gpu.run(&[&conv.grad_input(gpu, (&dy).into(), (&w).into(), (&dx).into(), window, true)]);
                assert_close(
                    &download(gpu, &dx),
                    &want_accumulated,
                    TOLERANCE,
                    &format!("accumulate {v:?} {s:?}"),
                );
            }
        }
    });
}

/// The weight gradient of `conv` on the GPU, in PyTorch's layout.
fn gpu_grad_weight(conv: &Conv2d, d: &Data) -> Vec<f32> {
    let (gpu, s) = (gpu(), conv.shape);
    let (x, dy) = (upload(gpu, &d.x), upload(gpu, &d.dy));
    let dw = gpu.storage("dw", s.weight_len());
    let scratch = gpu.storage("scratch", conv.scratch_floats());
    let window = ChannelWindow::whole(&s);
    let dispatches =
        conv.grad_weight(gpu, (&x).into(), (&dy).into(), (&dw).into(), window, Some((&scratch).into()));
    gpu.run(&dispatches.iter().collect::<Vec<_>>());
    conv_weight_from_gpu(&download(gpu, &dw), s.cout, s.cin, s.ksize)
}

#[test]
fn grad_weight_matches_reference() {
    on_every_gpu(|| {
        for s in shapes() {
            let d = data(&s);
            let want = cpu::conv2d::grad_weight(&s, &d.x, &d.dy);
            for v in variants_for(ConvPass::GradWeight, &s) {
                let got = gpu_grad_weight(&Conv2d::with_variants(s, [v; 3]), &d);
                assert_close(&got, &want, TOLERANCE, &format!("grad_weight {v:?} {s:?}"));
            }
        }
    });
}

/// A weight gradient reduced over a whole batch of 128 at 32x32 (131,072 pixels) stays
/// within 1e-4 of the f64 sum.
#[test]
fn grad_weight_over_a_full_batch_stays_accurate() {
    on_every_gpu(|| {
        let s = Conv2dShape::new(128, 2, 32, 32, 4, 3, 1, 1);
        let d = data(&s);
        let want = cpu::conv2d::grad_weight(&s, &d.x, &d.dy);
        for v in variants_for(ConvPass::GradWeight, &s) {
            let conv = Conv2d::with_variants(s, [v; 3]);
            assert!(conv.splits() > 1);
            assert_close(
                &gpu_grad_weight(&conv, &d),
                &want,
                TOLERANCE,
                &format!("full-batch grad_weight {v:?}"),
            );
        }
    });
}

/// The projection shortcut on the GPU (two 1x1 convolutions, the second shifted, written into
/// halves of one buffer, and their gradients read back from those halves) equals the
/// authors' subsample / shift / concat spelled out on the CPU.
#[test]
fn projection_shortcut_matches_subsample_shift_concat() {
    on_every_gpu(|| {
        let gpu = gpu();
        let (n, cin, h, w, cout, stride) = (2, 6, 7, 9, 8, 2);
        let half = cout / 2;
        let path1 = Conv2dShape::new(n, cin, h, w, half, 1, stride, 0);
        let path2 = Conv2dShape::shifted_1x1(n, cin, h, w, half, stride);
        let x = rounded(&test_values(n * cin * h * w, 5));
        let w1 = rounded(&test_values(half * cin, 6));
        let w2 = rounded(&test_values(half * cin, 7));
        let (oh, ow) = (path1.out_h, path1.out_w);
        let sub = |v: &[f64]| cpu::shortcut::subsample(v, n, cin, h, w, stride);
        let plain_1x1 = Conv2dShape::new(n, cin, oh, ow, half, 1, 1, 0);
        let y1 = cpu::conv2d::forward(&plain_1x1, &sub(&x), &w1);
        let y2 = cpu::conv2d::forward(&plain_1x1, &sub(&cpu::shortcut::shift(&x, n, cin, h, w)), &w2);
        let want = cpu::shortcut::concat(&y1, half, &y2, half, n, oh * ow);
        let dy = rounded(&test_values(n * cout * oh * ow, 8));
        // dx of the whole shortcut, through the CPU's explicit pieces.
        let dy1: Vec<f64> =
            (0..n).flat_map(|i| dy[i * cout * oh * ow..][..half * oh * ow].to_vec()).collect();
        let dy2: Vec<f64> =
            (0..n).flat_map(|i| dy[(i * cout + half) * oh * ow..][..half * oh * ow].to_vec()).collect();
        let want_dx: Vec<f64> = cpu::conv2d::grad_input(&path1, &dy1, &w1)
            .iter()
            .zip(cpu::conv2d::grad_input(&path2, &dy2, &w2))
            .map(|(a, b)| a + b)
            .collect();

        for v in ConvVariant::ALL.into_iter().filter(|v| v.supports(gpu, ConvPass::Forward, &path1)) {
            let (c1, c2) = (Conv2d::with_variants(path1, [v; 3]), Conv2d::with_variants(path2, [v; 3]));
            let xb = upload(gpu, &x);
            let (w1b, w2b) = (gpu_weights(&path1, &w1), gpu_weights(&path2, &w2));
            let y = gpu.storage("concat", n * cout * oh * ow);
            let first = ChannelWindow { channels: cout, offset: 0 };
            let second = ChannelWindow { channels: cout, offset: half };
            gpu.run(&[
                &c1.forward(gpu, (&xb).into(), (&w1b).into(), (&y).into(), first),
                &c2.forward(gpu, (&xb).into(), (&w2b).into(), (&y).into(), second),
            ]);
            assert_close(&download(gpu, &y), &want, TOLERANCE, &format!("shortcut forward {v:?}"));

            let dyb = upload(gpu, &dy);
            let dx = gpu.storage("dx", x.len());
            gpu.run(&[
                &c1.grad_input(gpu, (&dyb).into(), (&w1b).into(), (&dx).into(), first, false),
                &c2.grad_input(gpu, (&dyb).into(), (&w2b).into(), (&dx).into(), second, true),
            ]);
            assert_close(&download(gpu, &dx), &want_dx, TOLERANCE, &format!("shortcut grad_input {v:?}"));
        }
    });
}
