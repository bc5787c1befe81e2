//! The CPU reference executor: runs a graph's nodes in f64 with the `cpu` operations. Tests
//! hold the GPU step to it, and it to finite differences.

use super::graph::{BackwardOp, ForwardOp, Graph, Mode, Node, TensorId};
use super::params::ParamStore;
use crate::cpu::{self, shake::ShakeKey};
use crate::shapes::{ChannelWindow, Normalization};

/// One batch and the step it is drawn at (augmentation and shake coefficients depend on it).
pub struct Batch<'a> {
    pub pixels: &'a [u8],
    pub labels: &'a [u32],
    pub seed: u32,
    pub step: u32,
}

/// What a step computes.
pub struct CpuStep {
    pub loss: f64,
    pub correct: usize,
    pub logits: Vec<f64>,
    /// Gradient of each parameter binding (host layout), zero for running statistics.
    pub grads: Vec<Vec<f64>>,
    /// Running statistics after the step's update (the same layout as the params).
    pub params_after: Vec<Vec<f64>>,
}

/// Copy channels [offset, offset + c) of every image of `full` (channels `channels`).
fn window_of(full: &[f64], n: usize, window: ChannelWindow, c: usize) -> Vec<f64> {
    let plane = full.len() / (n * window.channels);
    (0..n).flat_map(|i| full[(i * window.channels + window.offset) * plane..][..c * plane].to_vec()).collect()
}

fn write_window(full: &mut [f64], part: &[f64], n: usize, window: ChannelWindow, c: usize) {
    let plane = full.len() / (n * window.channels);
    for i in 0..n {
        full[(i * window.channels + window.offset) * plane..][..c * plane]
            .copy_from_slice(&part[i * c * plane..][..c * plane]);
    }
}

fn add_into(dst: &mut Vec<f64>, src: Vec<f64>, accumulate: bool) {
    if accumulate {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    } else {
        *dst = src;
    }
}

/// A store's values in f64.
pub fn params_f64(store: &ParamStore) -> Vec<Vec<f64>> {
    store.values.iter().map(|v| v.iter().map(|x| *x as f64).collect()).collect()
}

/// The mean loss of the forward pass alone (for finite differences).
pub fn loss(g: &Graph, params: &[Vec<f64>], batch: &Batch, norm: &Normalization) -> f64 {
    execute(g, params, batch, norm, true).loss
}

/// Run every node of `g` (forward only in eval mode).
pub fn run(g: &Graph, params: &[Vec<f64>], batch: &Batch, norm: &Normalization) -> CpuStep {
    execute(g, params, batch, norm, false)
}

/// What a CPU step reads but never changes.
#[derive(Clone, Copy)]
struct Context<'a> {
    g: &'a Graph,
    batch: &'a Batch<'a>,
    norm: &'a Normalization,
}

/// The state of one CPU step: tensors, parameters (running statistics change), gradients.
struct State<'a> {
    c: Context<'a>,
    t: Vec<Vec<f64>>,
    p: Vec<Vec<f64>>,
    grads: Vec<Vec<f64>>,
    loss: f64,
    correct: usize,
}

fn execute(
    g: &Graph,
    params: &[Vec<f64>],
    batch: &Batch,
    norm: &Normalization,
    stop_at_loss: bool,
) -> CpuStep {
    let mut s = State {
        c: Context { g, batch, norm },
        t: g.tensors.iter().map(|info| vec![0.0; info.len()]).collect(),
        p: params.to_vec(),
        grads: params.iter().map(|v| vec![0.0; v.len()]).collect(),
        loss: 0.0,
        correct: 0,
    };
    for node in &g.nodes {
        match node {
            Node::Forward(op) => s.forward(op),
            Node::Backward(op) => s.backward(op),
        }
        if stop_at_loss && matches!(node, Node::Forward(ForwardOp::Loss { .. })) {
            break;
        }
    }
    CpuStep {
        loss: s.loss,
        correct: s.correct,
        logits: s.t[g.logits].clone(),
        grads: s.grads,
        params_after: s.p,
    }
}

impl Context<'_> {
    fn key(&self, block: u32) -> ShakeKey {
        let (forward, backward) = self.g.shake_modes();
        let (seed, step) = (self.batch.seed, self.batch.step);
        let (level, first_image) = (self.g.config.level, self.g.share.first_image);
        ShakeKey { forward, backward, level, seed, step, block, first_image }
    }

    fn image_len(&self, x: TensorId) -> usize {
        self.g.tensor_len(x) / self.g.batch
    }

    fn plane(&self, x: TensorId) -> usize {
        self.image_len(x) / self.g.tensors[x].dims[1]
    }
}

impl State<'_> {
    fn forward(&mut self, op: &ForwardOp) {
        let (c, g, n) = (self.c, self.c.g, self.c.g.batch);
        let (t, p) = (&mut self.t, &mut self.p);
        match *op {
            ForwardOp::Prepare { out } => {
                let (seed, step, first_image) = (c.batch.seed, c.batch.step, g.share.first_image);
                let augment = g.augment.then_some(cpu::prepare_batch::Draws { seed, step, first_image });
                let (mean, std) = (c.norm.mean64(), c.norm.std64());
                t[out] = cpu::prepare_batch::prepare(c.batch.pixels, mean, std, augment);
            }
            ForwardOp::Conv { shape, window, x, weight, out } => {
                let y = cpu::conv2d::forward(&shape, &t[x], &p[weight]);
                write_window(&mut t[out], &y, n, window, shape.cout);
            }
            ForwardOp::BatchNorm { shape, x, affine, running, out, .. } => {
                let (gamma, beta) = p[affine].split_at(shape.channels);
                let (rm, rv) = p[running].split_at(shape.channels);
                if g.mode == Mode::Train {
                    let (y, rm, rv) = cpu::batch_norm::forward_train(&shape, &t[x], gamma, beta, rm, rv);
                    t[out] = y;
                    p[running] = [rm, rv].concat();
                } else {
                    t[out] = cpu::batch_norm::normalize(&shape, &t[x], rm, rv, gamma, beta);
                }
            }
            ForwardOp::Relu { x, out } => t[out] = cpu::relu::forward(&t[x]),
            // The reference stores every batch norm's output, also those the GPU's mix applies.
            ForwardOp::Shake { block, branches: [a, b], shortcut, out } => {
                let (a, b) = (&t[a.out], &t[b.out]);
                t[out] = cpu::shake::forward(&c.key(block), c.image_len(shortcut), a, b, &t[shortcut]);
            }
            ForwardOp::Pool { x, out } => {
                t[out] = cpu::pool::forward(&t[x], c.plane(x));
            }
            ForwardOp::Linear { shape: l, x, param, out } => {
                let (w, b) = p[param].split_at(l.outputs * l.inputs);
                t[out] = cpu::linear::forward(&t[x], w, b, l.batch, l.inputs, l.outputs);
            }
            ForwardOp::Loss { logits } => {
                let classes = g.tensors[logits].dims[1];
                (self.loss, self.correct) = cpu::cross_entropy::forward(&t[logits], c.batch.labels, classes);
            }
        }
    }

    fn backward(&mut self, op: &BackwardOp) {
        let (c, n) = (self.c, self.c.g.batch);
        let (t, p, grads) = (&mut self.t, &self.p, &mut self.grads);
        match *op {
            BackwardOp::Loss { logits, dlogits } => {
                let classes = c.g.tensors[logits].dims[1];
                let mean_over = c.g.share.whole_batch;
                t[dlogits] = cpu::cross_entropy::backward(&t[logits], c.batch.labels, classes, mean_over);
            }
            BackwardOp::Linear { shape: l, x, param, dy, dx } => {
                let w = &p[param][..l.outputs * l.inputs];
                let (dxv, dw, db) = cpu::linear::backward(&t[x], w, &t[dy], l.batch, l.inputs, l.outputs);
                t[dx] = dxv;
                grads[param] = [dw, db].concat();
            }
            BackwardOp::Pool { dy, dx } => {
                t[dx] = cpu::pool::backward(&t[dy], c.plane(dx));
            }
            BackwardOp::Shake { block, dy, da, db, dshortcut } => {
                let (a, b) = cpu::shake::backward(&c.key(block), c.image_len(dy), &t[dy]);
                t[da] = a;
                t[db] = b;
                t[dshortcut] = t[dy].clone();
            }
            BackwardOp::Relu { x, dy, dx, accumulate } => {
                let v = cpu::relu::backward(&t[x], &t[dy]);
                add_into(&mut t[dx], v, accumulate);
            }
            BackwardOp::BatchNorm { shape, x, affine, dy, dx, .. } => {
                let (gamma, beta) = p[affine].split_at(shape.channels);
                let (dxv, dgamma, dbeta) = cpu::batch_norm::backward(&shape, &t[x], gamma, beta, &t[dy]);
                t[dx] = dxv;
                grads[affine] = [dgamma, dbeta].concat();
            }
            BackwardOp::ConvWeight { shape, window, x, dy, weight } => {
                let dyw = window_of(&t[dy], n, window, shape.cout);
                grads[weight] = cpu::conv2d::grad_weight(&shape, &t[x], &dyw);
            }
            BackwardOp::ConvInput { shape, window, dy, weight, dx, accumulate } => {
                let dyw = window_of(&t[dy], n, window, shape.cout);
                let v = cpu::conv2d::grad_input(&shape, &dyw, &p[weight]);
                add_into(&mut t[dx], v, accumulate);
            }
        }
    }
}
