//! Every CPU reference's backward against central finite differences (f64, step 1e-6,
//! tolerance 1e-6 of the largest gradient). The shaders are held to these references, so
//! this is what makes the GPU gradients true gradients.

use shakeshake::cpu::gradcheck::{dot, numeric_gradient, relative_error, test_values};
use shakeshake::cpu::shake::ShakeKey;
use shakeshake::cpu::{self};
use shakeshake::shapes::{BackwardMode, BnShape, Conv2dShape, ForwardMode, Level};

const EPS: f64 = 1e-6;

#[track_caller]
fn assert_grad(analytic: &[f64], numeric: &[f64], what: &str) {
    let err = relative_error(analytic, numeric, 1e-3);
    assert!(err < 1e-6, "{what}: relative error {err:.3e} against finite differences");
}

#[test]
fn conv2d_gradients() {
    let shapes = [
        Conv2dShape::new(2, 3, 5, 4, 4, 3, 1, 1),
        Conv2dShape::new(1, 2, 7, 7, 3, 3, 2, 1),
        Conv2dShape::new(2, 3, 5, 5, 2, 1, 2, 0),
        Conv2dShape::shifted_1x1(2, 3, 5, 6, 2, 2),
    ];
    for s in shapes {
        let x = test_values(s.input_len(), 1);
        let w = test_values(s.weight_len(), 2);
        let r = test_values(s.output_len(), 3);
        let dx = cpu::conv2d::grad_input(&s, &r, &w);
        let dw = cpu::conv2d::grad_weight(&s, &x, &r);
        let nx = numeric_gradient(|x| dot(&cpu::conv2d::forward(&s, x, &w), &r), &x, EPS);
        let nw = numeric_gradient(|w| dot(&cpu::conv2d::forward(&s, &x, w), &r), &w, EPS);
        assert_grad(&dx, &nx, &format!("conv dx {s:?}"));
        assert_grad(&dw, &nw, &format!("conv dw {s:?}"));
    }
}

/// Over the whole batch, and over ghost batches of 2 images (the last of 1).
#[test]
fn batch_norm_gradients() {
    for (relu, ghost) in [(false, 3), (true, 3), (false, 2), (true, 2)] {
        let s = BnShape::new(3, 2, 5, relu).with_ghost_batches(ghost);
        let x = test_values(s.len(), 4);
        let gamma = vec![1.3, 0.7];
        let beta = vec![0.1, -0.2];
        let r = test_values(s.len(), 5);
        let rm = vec![0.0; 2];
        let rv = vec![1.0; 2];
        let out = |x: &[f64], g: &[f64], b: &[f64]| cpu::batch_norm::forward_train(&s, x, g, b, &rm, &rv).0;
        let (dx, dgamma, dbeta) = cpu::batch_norm::backward(&s, &x, &gamma, &beta, &r);
        assert_grad(
            &dx,
            &numeric_gradient(|x| dot(&out(x, &gamma, &beta), &r), &x, EPS),
            &format!("bn dx {s:?}"),
        );
        assert_grad(&dgamma, &numeric_gradient(|g| dot(&out(&x, g, &beta), &r), &gamma, EPS), "bn dgamma");
        assert_grad(&dbeta, &numeric_gradient(|b| dot(&out(&x, &gamma, b), &r), &beta, EPS), "bn dbeta");
    }
}

#[test]
fn shake_keep_is_the_true_gradient() {
    // With beta = alpha the mix's backward is its derivative; Shake and Even are deliberate
    // departures from it, checked against the reference formula in the GPU tests.
    let key = ShakeKey {
        forward: ForwardMode::Shake,
        backward: BackwardMode::Keep,
        level: Level::Image,
        seed: 3,
        step: 5,
        block: 1,
        first_image: 0,
    };
    let (n, image_len) = (3, 4);
    let a = test_values(n * image_len, 6);
    let b = test_values(n * image_len, 7);
    let s = test_values(n * image_len, 8);
    let r = test_values(n * image_len, 9);
    let (da, db) = cpu::shake::backward(&key, image_len, &r);
    assert_grad(
        &da,
        &numeric_gradient(|a| dot(&cpu::shake::forward(&key, image_len, a, &b, &s), &r), &a, EPS),
        "shake da",
    );
    assert_grad(
        &db,
        &numeric_gradient(|b| dot(&cpu::shake::forward(&key, image_len, &a, b, &s), &r), &b, EPS),
        "shake db",
    );
    let ds = numeric_gradient(|s| dot(&cpu::shake::forward(&key, image_len, &a, &b, s), &r), &s, EPS);
    assert_grad(&r, &ds, "shake dshortcut");
}

#[test]
fn relu_pool_linear_and_loss_gradients() {
    let x = test_values(20, 10);
    let r = test_values(20, 11);
    let relu_num = numeric_gradient(|x| dot(&cpu::relu::forward(x), &r), &x, EPS);
    assert_grad(&cpu::relu::backward(&x, &r), &relu_num, "relu");

    let rp = test_values(5, 12);
    let pool_num = numeric_gradient(|x| dot(&cpu::pool::forward(x, 4), &rp), &x, EPS);
    assert_grad(&cpu::pool::backward(&rp, 4), &pool_num, "pool");

    let (batch, inputs, outputs) = (2, 5, 3);
    let xi = test_values(batch * inputs, 13);
    let w = test_values(outputs * inputs, 14);
    let b = test_values(outputs, 15);
    let ry = test_values(batch * outputs, 16);
    let (dx, dw, db) = cpu::linear::backward(&xi, &w, &ry, batch, inputs, outputs);
    let f =
        |x: &[f64], w: &[f64], b: &[f64]| dot(&cpu::linear::forward(x, w, b, batch, inputs, outputs), &ry);
    assert_grad(&dx, &numeric_gradient(|x| f(x, &w, &b), &xi, EPS), "linear dx");
    assert_grad(&dw, &numeric_gradient(|w| f(&xi, w, &b), &w, EPS), "linear dw");
    assert_grad(&db, &numeric_gradient(|b| f(&xi, &w, b), &b, EPS), "linear db");

    let logits = test_values(3 * 4, 17).iter().map(|v| v * 3.0).collect::<Vec<_>>();
    let labels = [2u32, 0, 3];
    let num = numeric_gradient(|l| cpu::cross_entropy::forward(l, &labels, 4).0, &logits, EPS);
    assert_grad(&cpu::cross_entropy::backward(&logits, &labels, 4, 3), &num, "cross entropy");
    // As a share of a batch of 5: the gradient of the mean over 5 images.
    let num = numeric_gradient(|l| cpu::cross_entropy::forward(l, &labels, 4).0 * 3.0 / 5.0, &logits, EPS);
    assert_grad(&cpu::cross_entropy::backward(&logits, &labels, 4, 5), &num, "cross entropy, a share");
}
