//! The network declared once as a graph of operations on shaped tensors, and the backward
//! pass derived from it. Both executors (`cpu_exec`, the reference; `gpu_exec`, the training
//! step) run this same list of nodes.

use super::config::{CLASSES, ModelConfig, STEM_CHANNELS};
use super::params::{ParamKind, ParamSpec};
use crate::cpu::batch_norm::BnShape;
use crate::cpu::shake::{BackwardMode, ForwardMode};
use crate::layout::Conv2dShape;
use crate::ops::conv2d::ChannelWindow;
use crate::ops::linear::Linear;
use std::collections::{HashMap, HashSet};

pub type TensorId = usize;
pub type ParamId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics, random shake coefficients, augmentation, backward and SGD.
    Train,
    /// Running statistics, alpha = 0.5, no augmentation, forward only.
    Eval,
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// N, C, H, W (features are C with H = W = 1).
    pub dims: [usize; 4],
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One operation of the training (or evaluation) step, forward or backward.
#[derive(Clone, Debug)]
pub enum Node {
    /// CIFAR bytes (and labels) of the batch to normalised images.
    Prepare {
        out: TensorId,
    },
    Conv {
        shape: Conv2dShape,
        window: ChannelWindow,
        x: TensorId,
        weight: ParamId,
        out: TensorId,
    },
    BatchNorm {
        shape: BnShape,
        x: TensorId,
        affine: ParamId,
        running: ParamId,
        saved: usize,
        out: TensorId,
    },
    Relu {
        x: TensorId,
        out: TensorId,
    },
    /// out = shortcut + alpha a + (1 - alpha) b.
    Shake {
        block: u32,
        a: TensorId,
        b: TensorId,
        shortcut: TensorId,
        out: TensorId,
    },
    Pool {
        x: TensorId,
        out: TensorId,
    },
    Linear {
        linear: Linear,
        x: TensorId,
        param: ParamId,
        out: TensorId,
    },
    /// Mean cross-entropy and correct count into the metrics buffer.
    Loss {
        logits: TensorId,
    },

    LossGrad {
        logits: TensorId,
        dlogits: TensorId,
    },
    LinearGrad {
        linear: Linear,
        x: TensorId,
        param: ParamId,
        dy: TensorId,
        dx: TensorId,
    },
    PoolGrad {
        dy: TensorId,
        dx: TensorId,
    },
    ShakeGrad {
        block: u32,
        dy: TensorId,
        da: TensorId,
        db: TensorId,
        dshortcut: TensorId,
    },
    ReluGrad {
        x: TensorId,
        dy: TensorId,
        dx: TensorId,
        accumulate: bool,
    },
    BatchNormGrad {
        shape: BnShape,
        x: TensorId,
        affine: ParamId,
        saved: usize,
        dy: TensorId,
        dx: TensorId,
    },
    ConvGradWeight {
        shape: Conv2dShape,
        window: ChannelWindow,
        x: TensorId,
        dy: TensorId,
        weight: ParamId,
    },
    ConvGradInput {
        shape: Conv2dShape,
        window: ChannelWindow,
        dy: TensorId,
        weight: ParamId,
        dx: TensorId,
        accumulate: bool,
    },
}

impl Node {
    /// Tensors this node reads (for buffer planning); an accumulating write reads too.
    pub fn reads(&self) -> Vec<TensorId> {
        use Node::*;
        match *self {
            Prepare { .. } => vec![],
            Conv { x, .. } | BatchNorm { x, .. } | Relu { x, .. } | Pool { x, .. } | Linear { x, .. } => {
                vec![x]
            }
            Shake { a, b, shortcut, .. } => vec![a, b, shortcut],
            Loss { logits } | LossGrad { logits, .. } => vec![logits],
            LinearGrad { x, dy, .. } | BatchNormGrad { x, dy, .. } | ConvGradWeight { x, dy, .. } => {
                vec![x, dy]
            }
            PoolGrad { dy, .. } | ShakeGrad { dy, .. } => vec![dy],
            ReluGrad { x, dy, dx, accumulate } => {
                if accumulate {
                    vec![x, dy, dx]
                } else {
                    vec![x, dy]
                }
            }
            ConvGradInput { dy, dx, accumulate, .. } => {
                if accumulate {
                    vec![dy, dx]
                } else {
                    vec![dy]
                }
            }
        }
    }

    /// Tensors this node writes.
    pub fn writes(&self) -> Vec<TensorId> {
        use Node::*;
        match *self {
            Prepare { out }
            | Conv { out, .. }
            | BatchNorm { out, .. }
            | Relu { out, .. }
            | Shake { out, .. }
            | Pool { out, .. }
            | Linear { out, .. } => vec![out],
            Loss { .. } | ConvGradWeight { .. } => vec![],
            LossGrad { dlogits, .. } => vec![dlogits],
            LinearGrad { dx, .. }
            | PoolGrad { dx, .. }
            | ReluGrad { dx, .. }
            | BatchNormGrad { dx, .. }
            | ConvGradInput { dx, .. } => vec![dx],
            ShakeGrad { da, db, dshortcut, .. } => vec![da, db, dshortcut],
        }
    }
}

/// The whole step: tensors, parameters, and nodes (forward, then backward when training).
#[derive(Clone, Debug)]
pub struct Graph {
    pub config: ModelConfig,
    pub mode: Mode,
    pub batch: usize,
    /// Random crops and flips of the batch (training, unless turned off).
    pub augment: bool,
    pub tensors: Vec<TensorInfo>,
    pub params: Vec<ParamSpec>,
    pub nodes: Vec<Node>,
    /// Batch-norm layers (each saves 2C statistics for its backward).
    pub bn_channels: Vec<usize>,
    pub images: TensorId,
    pub logits: TensorId,
}

impl Graph {
    /// Declare Shake-Shake as the authors' Lua code defines it; in training mode derive the
    /// backward pass too.
    pub fn build(config: ModelConfig, batch: usize, mode: Mode) -> Graph {
        let mut d = Declare {
            g: Graph {
                config,
                mode,
                batch,
                augment: mode == Mode::Train,
                tensors: vec![],
                params: vec![],
                nodes: vec![],
                bn_channels: vec![],
                images: 0,
                logits: 0,
            },
        };
        d.network();
        let mut g = d.g;
        if mode == Mode::Train {
            derive_backward(&mut g);
        }
        g
    }

    /// The shake coefficients' modes in this graph (evaluation always mixes evenly).
    pub fn shake_modes(&self) -> (ForwardMode, BackwardMode) {
        match self.mode {
            Mode::Train => (self.config.forward, self.config.backward),
            Mode::Eval => (ForwardMode::Even, BackwardMode::Even),
        }
    }

    pub fn tensor_len(&self, t: TensorId) -> usize {
        self.tensors[t].len()
    }
}

struct Declare {
    g: Graph,
}

impl Declare {
    fn tensor(&mut self, name: String, dims: [usize; 4]) -> TensorId {
        self.g.tensors.push(TensorInfo { name, dims });
        self.g.tensors.len() - 1
    }

    fn param(&mut self, prefix: &str, kind: ParamKind) -> ParamId {
        self.g.params.push(ParamSpec { prefix: prefix.to_string(), kind });
        self.g.params.len() - 1
    }

    fn dims(&self, t: TensorId) -> [usize; 4] {
        self.g.tensors[t].dims
    }

    /// A convolution writing all of a new tensor.
    fn conv(&mut self, prefix: &str, x: TensorId, cout: usize, ksize: usize, stride: usize) -> TensorId {
        let [n, cin, h, w] = self.dims(x);
        let shape = Conv2dShape::new(n, cin, h, w, cout, ksize, stride, ksize / 2);
        let out = self.tensor(prefix.to_string(), [n, cout, shape.out_h, shape.out_w]);
        self.conv_into(prefix, x, shape, out, ChannelWindow::whole(&shape));
        out
    }

    fn conv_into(
        &mut self,
        prefix: &str,
        x: TensorId,
        shape: Conv2dShape,
        out: TensorId,
        window: ChannelWindow,
    ) {
        let kind = ParamKind::Conv { cout: shape.cout, cin: shape.cin, ksize: shape.ksize };
        let weight = self.param(prefix, kind);
        self.g.nodes.push(Node::Conv { shape, window, x, weight, out });
    }

    fn batch_norm(&mut self, prefix: &str, x: TensorId, relu: bool) -> TensorId {
        let [n, c, h, w] = self.dims(x);
        let affine = self.param(prefix, ParamKind::BnAffine { channels: c });
        let running = self.param(prefix, ParamKind::BnRunning { channels: c });
        let out = self.tensor(format!("{prefix}{}", if relu { ".relu" } else { "" }), [n, c, h, w]);
        let saved = self.g.bn_channels.len();
        self.g.bn_channels.push(c);
        let shape = BnShape::new(n, c, h * w, relu);
        self.g.nodes.push(Node::BatchNorm { shape, x, affine, running, saved, out });
        out
    }

    fn relu(&mut self, name: String, x: TensorId) -> TensorId {
        let out = self.tensor(name, self.dims(x));
        self.g.nodes.push(Node::Relu { x, out });
        out
    }

    fn network(&mut self) {
        let c = self.g.config;
        let n = self.g.batch;
        let images = self.tensor("images".into(), [n, 3, 32, 32]);
        self.g.images = images;
        self.g.nodes.push(Node::Prepare { out: images });
        let stem = self.conv("stem.conv", images, STEM_CHANNELS, 3, 1);
        let mut x = self.batch_norm("stem.bn", stem, false);
        let mut block = 0;
        for (s, width) in c.stage_widths().into_iter().enumerate() {
            for b in 0..c.blocks_per_stage() {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                x = self.block(&format!("stages.{s}.{b}"), x, width, stride, block);
                block += 1;
            }
        }
        let r = self.relu("head.relu".into(), x);
        let [_, features, _, _] = self.dims(r);
        let pooled = self.tensor("head.pool".into(), [n, features, 1, 1]);
        self.g.nodes.push(Node::Pool { x: r, out: pooled });
        let linear = Linear { batch: n, inputs: features, outputs: CLASSES };
        let param = self.param("fc", ParamKind::Linear { inputs: features, outputs: CLASSES });
        let logits = self.tensor("fc".into(), [n, CLASSES, 1, 1]);
        self.g.nodes.push(Node::Linear { linear, x: pooled, param, out: logits });
        self.g.logits = logits;
        // Evaluation reads the logits back instead (accuracy per class needs them anyway).
        if self.g.mode == Mode::Train {
            self.g.nodes.push(Node::Loss { logits });
        }
    }

    /// Two branches ReLU-conv-BN-ReLU-conv-BN mixed by shake, plus the shortcut.
    fn block(&mut self, prefix: &str, x: TensorId, cout: usize, stride: usize, index: u32) -> TensorId {
        let [n, cin, h, w] = self.dims(x);
        let r = self.relu(format!("{prefix}.relu"), x);
        let mut branches = [0; 2];
        for (i, out) in branches.iter_mut().enumerate() {
            let p = format!("{prefix}.branch{}", i + 1);
            let c1 = self.conv(&format!("{p}.conv1"), r, cout, 3, stride);
            let b1 = self.batch_norm(&format!("{p}.bn1"), c1, true);
            let c2 = self.conv(&format!("{p}.conv2"), b1, cout, 3, 1);
            *out = self.batch_norm(&format!("{p}.bn2"), c2, false);
        }
        let shortcut = if cin == cout && stride == 1 {
            x
        } else {
            // Projection: ReLU, then two half-width 1x1 convolutions, the second on the input
            // shifted one pixel right and down, concatenated (path 1 first), then BN.
            let half = cout / 2;
            let path1 = Conv2dShape::new(n, cin, h, w, half, 1, stride, 0);
            let path2 = Conv2dShape::shifted_1x1(n, cin, h, w, half, stride);
            let cat = self.tensor(format!("{prefix}.shortcut.concat"), [n, cout, path1.out_h, path1.out_w]);
            self.conv_into(
                &format!("{prefix}.shortcut.conv1"),
                r,
                path1,
                cat,
                ChannelWindow { channels: cout, offset: 0 },
            );
            let second = ChannelWindow { channels: cout, offset: half };
            self.conv_into(&format!("{prefix}.shortcut.conv2"), r, path2, cat, second);
            self.batch_norm(&format!("{prefix}.shortcut.bn"), cat, false)
        };
        let out = self.tensor(format!("{prefix}.out"), self.dims(branches[0]));
        self.g.nodes.push(Node::Shake { block: index, a: branches[0], b: branches[1], shortcut, out });
        out
    }
}

/// Walk the forward nodes backwards, emitting each one's gradient nodes. A tensor read by
/// several nodes gets the sum of their gradients: the first writes, later ones accumulate.
fn derive_backward(g: &mut Graph) {
    let forward: Vec<Node> = g.nodes.clone();
    let mut grad: HashMap<TensorId, TensorId> = HashMap::new();
    let mut written: HashSet<TensorId> = HashSet::new();
    let mut grad_of = |g: &mut Graph, t: TensorId| -> TensorId {
        *grad.entry(t).or_insert_with(|| {
            let info = TensorInfo { name: format!("d {}", g.tensors[t].name), dims: g.tensors[t].dims };
            g.tensors.push(info);
            g.tensors.len() - 1
        })
    };
    // Marks a gradient written and says whether it already was (then the node accumulates).
    let mut first_write = |t: TensorId| written.insert(t);
    let no_accumulation = |node: &str, fresh: bool| {
        assert!(fresh, "{node} cannot accumulate a gradient; the network reads its input twice")
    };
    for node in forward.iter().rev() {
        let back: Vec<Node> = match *node {
            Node::Prepare { .. } => vec![],
            Node::Loss { logits } => {
                let dlogits = grad_of(g, logits);
                no_accumulation("loss", first_write(dlogits));
                vec![Node::LossGrad { logits, dlogits }]
            }
            Node::Linear { linear, x, param, out } => {
                let (dy, dx) = (grad_of(g, out), grad_of(g, x));
                no_accumulation("linear", first_write(dx));
                vec![Node::LinearGrad { linear, x, param, dy, dx }]
            }
            Node::Pool { x, out } => {
                let (dy, dx) = (grad_of(g, out), grad_of(g, x));
                no_accumulation("pool", first_write(dx));
                vec![Node::PoolGrad { dy, dx }]
            }
            Node::Shake { block, a, b, shortcut, out } => {
                let dy = grad_of(g, out);
                let (da, db, ds) = (grad_of(g, a), grad_of(g, b), grad_of(g, shortcut));
                for t in [da, db, ds] {
                    no_accumulation("shake", first_write(t));
                }
                vec![Node::ShakeGrad { block, dy, da, db, dshortcut: ds }]
            }
            Node::Relu { x, out } => {
                let (dy, dx) = (grad_of(g, out), grad_of(g, x));
                vec![Node::ReluGrad { x, dy, dx, accumulate: !first_write(dx) }]
            }
            Node::BatchNorm { shape, x, affine, saved, out, .. } => {
                let (dy, dx) = (grad_of(g, out), grad_of(g, x));
                no_accumulation("batch norm", first_write(dx));
                vec![Node::BatchNormGrad { shape, x, affine, saved, dy, dx }]
            }
            Node::Conv { shape, window, x, weight, out } => {
                let dy = grad_of(g, out);
                let mut back = vec![Node::ConvGradWeight { shape, window, x, dy, weight }];
                if x != g.images {
                    let dx = grad_of(g, x);
                    back.push(Node::ConvGradInput {
                        shape,
                        window,
                        dy,
                        weight,
                        dx,
                        accumulate: !first_write(dx),
                    });
                }
                back
            }
            _ => unreachable!("the forward pass holds only forward nodes"),
        };
        g.nodes.extend(back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shake_shake_26_2x32d_has_the_papers_parameter_count() {
        let g = Graph::build(ModelConfig::new(26, 32).unwrap(), 2, Mode::Eval);
        let trainable: usize = g.params.iter().filter(|p| p.trainable()).map(|p| p.len()).sum();
        // The paper reports 2.9M parameters for 26 2x32d.
        assert!((2_850_000..2_950_000).contains(&trainable), "{trainable}");
        assert!(g.params.iter().any(|p| p.prefix == "stages.1.0.shortcut.conv2"));
        assert!(g.params.iter().any(|p| p.prefix == "stages.0.0.shortcut.bn"), "stage 1 projects 16 -> 32");
        assert!(!g.params.iter().any(|p| p.prefix == "stages.0.1.shortcut.bn"));
    }

    #[test]
    fn every_tensor_gradient_is_written_before_it_is_read() {
        let g = Graph::build(ModelConfig::new(14, 8).unwrap(), 2, Mode::Train);
        let mut written: HashSet<TensorId> = HashSet::new();
        for node in &g.nodes {
            for t in node.reads() {
                assert!(
                    written.contains(&t),
                    "{node:?} reads {} before anything wrote it",
                    g.tensors[t].name
                );
            }
            written.extend(node.writes());
        }
        let convs = g.nodes.iter().filter(|n| matches!(n, Node::Conv { .. })).count();
        let weight_grads = g.nodes.iter().filter(|n| matches!(n, Node::ConvGradWeight { .. })).count();
        assert_eq!(convs, weight_grads);
    }
}
