//! The CPU reference executor: runs a graph's nodes in f64 with the `cpu` operations. Tests
//! hold the GPU step to it, and it to finite differences.

use super::graph::{Graph, Mode, Node, TensorId};
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

fn execute(
    g: &Graph,
    params: &[Vec<f64>],
    batch: &Batch,
    norm: &Normalization,
    stop_at_loss: bool,
) -> CpuStep {
    let mut p: Vec<Vec<f64>> = params.to_vec();
    let mut grads: Vec<Vec<f64>> = params.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut t: Vec<Vec<f64>> = g.tensors.iter().map(|info| vec![0.0; info.len()]).collect();
    let (forward, backward) = g.shake_modes();
    let key = |block| ShakeKey {
        forward,
        backward,
        level: g.config.level,
        seed: batch.seed,
        step: batch.step,
        block,
    };
    let image_len = |x: TensorId| g.tensor_len(x) / g.batch;
    let n = g.batch;
    let (mut loss, mut correct) = (0.0, 0);
    for node in &g.nodes {
        match *node {
            Node::Prepare { out } => {
                let augment = g.augment.then_some((batch.seed, batch.step));
                t[out] = cpu::prepare_batch::prepare(batch.pixels, norm.mean64(), norm.std64(), augment);
            }
            Node::Conv { shape, window, x, weight, out } => {
                let y = cpu::conv2d::forward(&shape, &t[x], &p[weight]);
                write_window(&mut t[out], &y, n, window, shape.cout);
            }
            Node::BatchNorm { shape, x, affine, running, out, .. } => {
                let c = shape.channels;
                let (gamma, beta) = p[affine].split_at(c);
                if g.mode == Mode::Train {
                    let (rm, rv) = p[running].split_at(c);
                    let (y, rm, rv) = cpu::batch_norm::forward_train(&shape, &t[x], gamma, beta, rm, rv);
                    t[out] = y;
                    p[running] = [rm, rv].concat();
                } else {
                    let (rm, rv) = p[running].split_at(c);
                    t[out] = cpu::batch_norm::normalize(&shape, &t[x], rm, rv, gamma, beta);
                }
            }
            Node::Relu { x, out } => t[out] = cpu::relu::forward(&t[x]),
            Node::Shake { block, a, b, shortcut, out } => {
                t[out] = cpu::shake::forward(&key(block), image_len(a), &t[a], &t[b], &t[shortcut]);
            }
            Node::Pool { x, out } => t[out] = cpu::pool::forward(&t[x], image_len(x) / g.tensors[x].dims[1]),
            Node::Linear { linear: l, x, param, out } => {
                let (w, b) = p[param].split_at(l.outputs * l.inputs);
                t[out] = cpu::linear::forward(&t[x], w, b, l.batch, l.inputs, l.outputs);
            }
            Node::Loss { logits } => {
                (loss, correct) =
                    cpu::cross_entropy::forward(&t[logits], batch.labels, g.tensors[logits].dims[1]);
                if stop_at_loss {
                    break;
                }
            }
            Node::LossGrad { logits, dlogits } => {
                t[dlogits] =
                    cpu::cross_entropy::backward(&t[logits], batch.labels, g.tensors[logits].dims[1]);
            }
            Node::LinearGrad { linear: l, x, param, dy, dx } => {
                let w = &p[param][..l.outputs * l.inputs];
                let (dxv, dw, db) = cpu::linear::backward(&t[x], w, &t[dy], l.batch, l.inputs, l.outputs);
                t[dx] = dxv;
                grads[param] = [dw, db].concat();
            }
            Node::PoolGrad { dy, dx } => {
                t[dx] = cpu::pool::backward(&t[dy], image_len(dx) / g.tensors[dx].dims[1])
            }
            Node::ShakeGrad { block, dy, da, db, dshortcut } => {
                let (a, b) = cpu::shake::backward(&key(block), image_len(dy), &t[dy]);
                t[da] = a;
                t[db] = b;
                t[dshortcut] = t[dy].clone();
            }
            Node::ReluGrad { x, dy, dx, accumulate } => {
                let v = cpu::relu::backward(&t[x], &t[dy]);
                add_into(&mut t[dx], v, accumulate);
            }
            Node::BatchNormGrad { shape, x, affine, dy, dx, .. } => {
                let (gamma, beta) = p[affine].split_at(shape.channels);
                let (dxv, dgamma, dbeta) = cpu::batch_norm::backward(&shape, &t[x], gamma, beta, &t[dy]);
                t[dx] = dxv;
                grads[affine] = [dgamma, dbeta].concat();
            }
            Node::ConvGradWeight { shape, window, x, dy, weight } => {
                let dyw = window_of(&t[dy], n, window, shape.cout);
                grads[weight] = cpu::conv2d::grad_weight(&shape, &t[x], &dyw);
            }
            Node::ConvGradInput { shape, window, dy, weight, dx, accumulate } => {
                let dyw = window_of(&t[dy], n, window, shape.cout);
                let v = cpu::conv2d::grad_input(&shape, &dyw, &p[weight]);
                add_into(&mut t[dx], v, accumulate);
            }
        }
    }
    CpuStep { loss, correct, logits: t[g.logits].clone(), grads, params_after: p }
}
