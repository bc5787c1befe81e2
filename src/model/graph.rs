//! The network declared once as a graph of operations on shaped tensors, and the backward
//! pass derived from it. Both executors (`cpu_exec`, the reference; `gpu_step`, the training
//! step) run this same list of nodes.

use super::config::{ModelConfig, STEM_CHANNELS};
use super::params::{ParamKind, ParamSpec};
use crate::shapes::{
    BackwardMode, BatchShare, BnShape, CLASSES, ChannelWindow, Conv2dShape, ForwardMode, LinearShape,
    Precision,
};
use std::collections::{HashMap, HashSet};

/// A tensor of the step, by position in `Graph::tensors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub usize);

/// A parameter binding, by position in `Graph::params` (and in every `ParamStore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub usize);

/// A batch-norm layer's saved statistics (mean and 1/std of the batch, for its backward),
/// by position in `Graph::bn_channels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SavedStatsId(pub usize);

/// Tables of the step are plain vectors indexed by these ids, so an id of one kind cannot
/// be used where another is meant, while `values[id]` still reads naturally.
macro_rules! index_by {
    ($id:ty) => {
        impl<T> std::ops::Index<$id> for Vec<T> {
            type Output = T;
            fn index(&self, id: $id) -> &T {
                &self[id.0]
            }
        }
        impl<T> std::ops::IndexMut<$id> for Vec<T> {
            fn index_mut(&mut self, id: $id) -> &mut T {
                &mut self[id.0]
            }
        }
    };
}
index_by!(TensorId);
index_by!(ParamId);
index_by!(SavedStatsId);

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

/// One operation of the step: the network's forward operations, then (when training) the
/// gradient operations `derive_backward` made from them. Two enums, so that the rule for
/// each forward operation's gradient is an exhaustive match: a new operation without one
/// does not compile.
#[derive(Clone, Debug)]
pub enum Node {
    Forward(ForwardOp),
    Backward(BackwardOp),
}

#[derive(Clone, Debug)]
pub enum ForwardOp {
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
        saved: SavedStatsId,
        out: TensorId,
        output: BnOutput,
    },
    Relu {
        x: TensorId,
        out: TensorId,
    },
    /// out = shortcut + alpha a + (1 - alpha) b, where a and b are the branches' outputs.
    Shake {
        block: u32,
        branches: [BranchEnd; 2],
        shortcut: TensorId,
        out: TensorId,
    },
    Pool {
        x: TensorId,
        out: TensorId,
    },
    Linear {
        shape: LinearShape,
        x: TensorId,
        param: ParamId,
        out: TensorId,
    },
    /// Mean cross-entropy and correct count into the metrics buffer.
    Loss {
        logits: TensorId,
    },
}

/// Who applies a batch norm's normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnOutput {
    /// The norm's own pass, which writes `out`.
    Stored,
    /// The shake mix, as it reads the norm's input (`BranchEnd`): the norm's pass computes
    /// only statistics and `out` is never stored, a pass over memory fewer. It still names
    /// the value whose gradient the mix's backward writes.
    InShake,
}

/// A batch norm's tensors and parameters; for a shake branch's last norm (its output
/// `InShake`), what the mix applies: it reads `x`, the norm's input, and its backward writes
/// the gradient of `out`.
#[derive(Clone, Copy, Debug)]
pub struct BranchEnd {
    pub x: TensorId,
    pub affine: ParamId,
    pub saved: SavedStatsId,
    pub out: TensorId,
}

/// Gradient operations. Parameter gradients are written whole; a tensor gradient is
/// written by the first operation that produces it and added to (`accumulate`) by later ones.
#[derive(Clone, Debug)]
pub enum BackwardOp {
    Loss {
        logits: TensorId,
        dlogits: TensorId,
    },
    Linear {
        shape: LinearShape,
        x: TensorId,
        param: ParamId,
        dy: TensorId,
        dx: TensorId,
    },
    Pool {
        dy: TensorId,
        dx: TensorId,
    },
    Shake {
        block: u32,
        dy: TensorId,
        da: TensorId,
        db: TensorId,
        dshortcut: TensorId,
    },
    Relu {
        x: TensorId,
        dy: TensorId,
        dx: TensorId,
        accumulate: bool,
    },
    BatchNorm {
        shape: BnShape,
        x: TensorId,
        affine: ParamId,
        saved: SavedStatsId,
        dy: TensorId,
        dx: TensorId,
    },
    ConvWeight {
        shape: Conv2dShape,
        window: ChannelWindow,
        x: TensorId,
        dy: TensorId,
        weight: ParamId,
    },
    ConvInput {
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
        use BackwardOp as B;
        use ForwardOp as F;
        let accumulated = |dx: TensorId, accumulate: bool| accumulate.then_some(dx);
        match *self {
            Node::Forward(F::Prepare { .. }) => vec![],
            Node::Forward(
                F::Conv { x, .. }
                | F::BatchNorm { x, .. }
                | F::Relu { x, .. }
                | F::Pool { x, .. }
                | F::Linear { x, .. },
            ) => vec![x],
            Node::Forward(F::Shake { branches: [a, b], shortcut, .. }) => vec![a.x, b.x, shortcut],
            Node::Forward(F::Loss { logits }) | Node::Backward(B::Loss { logits, .. }) => vec![logits],
            Node::Backward(
                B::Linear { x, dy, .. } | B::BatchNorm { x, dy, .. } | B::ConvWeight { x, dy, .. },
            ) => {
                vec![x, dy]
            }
            Node::Backward(B::Pool { dy, .. } | B::Shake { dy, .. }) => vec![dy],
            Node::Backward(B::Relu { x, dy, dx, accumulate }) => {
                [Some(x), Some(dy), accumulated(dx, accumulate)].into_iter().flatten().collect()
            }
            Node::Backward(B::ConvInput { dy, dx, accumulate, .. }) => {
                [Some(dy), accumulated(dx, accumulate)].into_iter().flatten().collect()
            }
        }
    }

    /// Tensors this node writes.
    pub fn writes(&self) -> Vec<TensorId> {
        use BackwardOp as B;
        use ForwardOp as F;
        match *self {
            Node::Forward(F::BatchNorm { out, output, .. }) => match output {
                BnOutput::Stored => vec![out],
                BnOutput::InShake => vec![],
            },
            Node::Forward(
                F::Prepare { out }
                | F::Conv { out, .. }
                | F::Relu { out, .. }
                | F::Shake { out, .. }
                | F::Pool { out, .. }
                | F::Linear { out, .. },
            ) => vec![out],
            Node::Forward(F::Loss { .. }) | Node::Backward(B::ConvWeight { .. }) => vec![],
            Node::Backward(B::Loss { dlogits, .. }) => vec![dlogits],
            Node::Backward(
                B::Linear { dx, .. }
                | B::Pool { dx, .. }
                | B::Relu { dx, .. }
                | B::BatchNorm { dx, .. }
                | B::ConvInput { dx, .. },
            ) => vec![dx],
            Node::Backward(B::Shake { da, db, dshortcut, .. }) => vec![da, db, dshortcut],
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
    /// Batch-norm layers (each saves 2C statistics a ghost batch for its backward).
    pub bn_channels: Vec<usize>,
    /// Images a batch norm's ghost batch (`BnShape::ghost`): the batch unless a training run
    /// asks for fewer (`with_ghost_batches`).
    pub bn_ghost: usize,
    /// Where this batch sits in the step's whole batch: the whole of it, unless this graph
    /// is one device's share (`as_share`).
    pub share: BatchShare,
    /// What activations and their gradients are stored in (`in_precision`; see `stored_in`).
    pub precision: Precision,
    pub images: TensorId,
    pub logits: TensorId,
}

impl Graph {
    /// The distinct convolution shapes of the forward pass, in order.
    pub fn conv_shapes(&self) -> Vec<Conv2dShape> {
        let mut shapes: Vec<Conv2dShape> = vec![];
        for node in &self.nodes {
            if let Node::Forward(ForwardOp::Conv { shape, .. }) = node
                && !shapes.contains(shape)
            {
                shapes.push(*shape);
            }
        }
        shapes
    }

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
                bn_ghost: batch,
                share: BatchShare::whole(batch),
                precision: Precision::F32,
                images: TensorId(0),
                logits: TensorId(0),
            },
        };
        d.network();
        let mut g = d.g;
        if mode == Mode::Train {
            derive_backward(&mut g);
        }
        g
    }

    /// Training batch norms over ghost batches of `images` images (at most the batch), as
    /// several GPUs that each normalise their share of the batch would; `None` keeps the
    /// whole batch. Evaluation normalises with the running statistics: no ghost batches.
    pub fn with_ghost_batches(mut self, images: Option<usize>) -> Graph {
        let Some(images) = images.filter(|_| self.mode == Mode::Train) else { return self };
        for node in &mut self.nodes {
            match node {
                Node::Forward(ForwardOp::BatchNorm { shape, .. })
                | Node::Backward(BackwardOp::BatchNorm { shape, .. }) => {
                    *shape = shape.with_ghost_batches(images);
                    self.bn_ghost = shape.ghost;
                }
                _ => {}
            }
        }
        self
    }

    /// Activations and their gradients stored in `precision`: every convolution and batch
    /// norm runs its kernels for it (their shapes say so), and each tensor is `stored_in` it
    /// but for the head's.
    pub fn in_precision(mut self, precision: Precision) -> Graph {
        self.precision = precision;
        for node in &mut self.nodes {
            match node {
                Node::Forward(ForwardOp::Conv { shape, .. })
                | Node::Backward(BackwardOp::ConvWeight { shape, .. })
                | Node::Backward(BackwardOp::ConvInput { shape, .. }) => {
                    *shape = shape.in_precision(precision)
                }
                Node::Forward(ForwardOp::BatchNorm { shape, .. })
                | Node::Backward(BackwardOp::BatchNorm { shape, .. }) => {
                    *shape = shape.in_precision(precision)
                }
                _ => {}
            }
        }
        self
    }

    /// What tensor `t` is stored in: the graph's precision, but f32 for the head's pooled
    /// features and logits (H = W = 1) and their gradients, which the pooling writes and
    /// reads in f32 for the linear layer and the loss, kernels without activations.
    pub fn stored_in(&self, t: TensorId) -> Precision {
        let [_, _, h, w] = self.tensors[t].dims;
        if h * w == 1 { Precision::F32 } else { self.precision }
    }

    /// The bytes tensor `t` takes.
    pub fn tensor_bytes(&self, t: TensorId) -> usize {
        self.tensor_len(t) * self.stored_in(t).bytes()
    }

    /// This graph as one device's share of a step's whole batch: its images start at
    /// `share.first_image` of it (see `BatchShare`).
    pub fn as_share(mut self, share: BatchShare) -> Graph {
        assert!(share.first_image + self.batch <= share.whole_batch, "a share lies inside its batch");
        self.share = share;
        self
    }

    /// Ghost batches a batch norm of this graph normalises separately.
    pub fn bn_ghosts(&self) -> usize {
        self.batch.div_ceil(self.bn_ghost)
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
        TensorId(self.g.tensors.len() - 1)
    }

    fn param(&mut self, prefix: &str, kind: ParamKind) -> ParamId {
        self.g.params.push(ParamSpec { prefix: prefix.to_string(), kind });
        ParamId(self.g.params.len() - 1)
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
        self.g.nodes.push(Node::Forward(ForwardOp::Conv { shape, window, x, weight, out }));
    }

    fn batch_norm(&mut self, prefix: &str, x: TensorId, relu: bool) -> TensorId {
        self.batch_norm_to(prefix, x, relu, BnOutput::Stored).out
    }

    /// A branch's last batch norm, applied by the shake mix.
    fn branch_end(&mut self, prefix: &str, x: TensorId) -> BranchEnd {
        self.batch_norm_to(prefix, x, false, BnOutput::InShake)
    }

    fn batch_norm_to(&mut self, prefix: &str, x: TensorId, relu: bool, output: BnOutput) -> BranchEnd {
        let [n, c, h, w] = self.dims(x);
        let affine = self.param(prefix, ParamKind::BnAffine { channels: c });
        let running = self.param(prefix, ParamKind::BnRunning { channels: c });
        let out = self.tensor(format!("{prefix}{}", if relu { ".relu" } else { "" }), [n, c, h, w]);
        let saved = SavedStatsId(self.g.bn_channels.len());
        self.g.bn_channels.push(c);
        let shape = BnShape::new(n, c, h * w, relu);
        self.g.nodes.push(Node::Forward(ForwardOp::BatchNorm {
            shape,
            x,
            affine,
            running,
            saved,
            out,
            output,
        }));
        BranchEnd { x, affine, saved, out }
    }

    fn relu(&mut self, name: String, x: TensorId) -> TensorId {
        let out = self.tensor(name, self.dims(x));
        self.g.nodes.push(Node::Forward(ForwardOp::Relu { x, out }));
        out
    }

    fn network(&mut self) {
        let c = self.g.config;
        let n = self.g.batch;
        let images = self.tensor("images".into(), [n, 3, 32, 32]);
        self.g.images = images;
        self.g.nodes.push(Node::Forward(ForwardOp::Prepare { out: images }));
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
        self.g.nodes.push(Node::Forward(ForwardOp::Pool { x: r, out: pooled }));
        let shape = LinearShape { batch: n, inputs: features, outputs: CLASSES };
        let param = self.param("fc", ParamKind::Linear { inputs: features, outputs: CLASSES });
        let logits = self.tensor("fc".into(), [n, CLASSES, 1, 1]);
        self.g.nodes.push(Node::Forward(ForwardOp::Linear { shape, x: pooled, param, out: logits }));
        self.g.logits = logits;
        // Evaluation reads the logits back instead (accuracy per class needs them anyway).
        if self.g.mode == Mode::Train {
            self.g.nodes.push(Node::Forward(ForwardOp::Loss { logits }));
        }
    }

    /// Two branches ReLU-conv-BN-ReLU-conv-BN mixed by shake, plus the shortcut.
    fn block(&mut self, prefix: &str, x: TensorId, cout: usize, stride: usize, index: u32) -> TensorId {
        let [n, cin, h, w] = self.dims(x);
        let r = self.relu(format!("{prefix}.relu"), x);
        let branches = [1, 2].map(|i| {
            let p = format!("{prefix}.branch{i}");
            let c1 = self.conv(&format!("{p}.conv1"), r, cout, 3, stride);
            let b1 = self.batch_norm(&format!("{p}.bn1"), c1, true);
            let c2 = self.conv(&format!("{p}.conv2"), b1, cout, 3, 1);
            self.branch_end(&format!("{p}.bn2"), c2)
        });
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
        let out = self.tensor(format!("{prefix}.out"), self.dims(branches[0].out));
        self.g.nodes.push(Node::Forward(ForwardOp::Shake { block: index, branches, shortcut, out }));
        out
    }
}

/// Walk the forward nodes backwards, emitting each one's gradient nodes. A tensor read by
/// several nodes gets the sum of their gradients: the first writes, later ones accumulate.
fn derive_backward(g: &mut Graph) {
    let forward: Vec<ForwardOp> = g
        .nodes
        .iter()
        .map(|node| match node {
            Node::Forward(op) => op.clone(),
            Node::Backward(_) => unreachable!("derive_backward runs once, on the forward pass"),
        })
        .collect();
    let mut gradients = Gradients { grad: HashMap::new(), written: HashSet::new() };
    for op in forward.iter().rev() {
        let back = gradients.of(g, op);
        g.nodes.extend(back.into_iter().map(Node::Backward));
    }
}

/// The gradient tensor of each forward tensor, and which of them are written so far.
struct Gradients {
    grad: HashMap<TensorId, TensorId>,
    written: HashSet<TensorId>,
}

impl Gradients {
    /// The gradient of `t`, declared on first use.
    fn of_tensor(&mut self, g: &mut Graph, t: TensorId) -> TensorId {
        *self.grad.entry(t).or_insert_with(|| {
            let info = TensorInfo { name: format!("d {}", g.tensors[t].name), dims: g.tensors[t].dims };
            g.tensors.push(info);
            TensorId(g.tensors.len() - 1)
        })
    }

    /// Whether a write of gradient `dt` must add to an earlier one; marks it written.
    fn accumulates(&mut self, dt: TensorId) -> bool {
        !self.written.insert(dt)
    }

    /// For operations whose kernels only overwrite: the network must not read their input twice.
    fn first_write(&mut self, node: &str, dt: TensorId) {
        assert!(
            !self.accumulates(dt),
            "{node} cannot accumulate a gradient; the network reads its input twice"
        );
    }

    /// The gradient operations of one forward operation.
    fn of(&mut self, g: &mut Graph, op: &ForwardOp) -> Vec<BackwardOp> {
        match *op {
            ForwardOp::Prepare { .. } => vec![],
            ForwardOp::Loss { logits } => {
                let dlogits = self.of_tensor(g, logits);
                self.first_write("loss", dlogits);
                vec![BackwardOp::Loss { logits, dlogits }]
            }
            ForwardOp::Linear { shape, x, param, out } => {
                let (dy, dx) = (self.of_tensor(g, out), self.of_tensor(g, x));
                self.first_write("linear", dx);
                vec![BackwardOp::Linear { shape, x, param, dy, dx }]
            }
            ForwardOp::Pool { x, out } => {
                let (dy, dx) = (self.of_tensor(g, out), self.of_tensor(g, x));
                self.first_write("pool", dx);
                vec![BackwardOp::Pool { dy, dx }]
            }
            ForwardOp::Shake { block, branches: [a, b], shortcut, out } => {
                let dy = self.of_tensor(g, out);
                let (da, db) = (self.of_tensor(g, a.out), self.of_tensor(g, b.out));
                let dshortcut = self.of_tensor(g, shortcut);
                for dt in [da, db, dshortcut] {
                    self.first_write("shake", dt);
                }
                vec![BackwardOp::Shake { block, dy, da, db, dshortcut }]
            }
            ForwardOp::Relu { x, out } => {
                let (dy, dx) = (self.of_tensor(g, out), self.of_tensor(g, x));
                vec![BackwardOp::Relu { x, dy, dx, accumulate: self.accumulates(dx) }]
            }
            ForwardOp::BatchNorm { shape, x, affine, saved, out, .. } => {
                let (dy, dx) = (self.of_tensor(g, out), self.of_tensor(g, x));
                self.first_write("batch norm", dx);
                vec![BackwardOp::BatchNorm { shape, x, affine, saved, dy, dx }]
            }
            ForwardOp::Conv { shape, window, x, weight, out } => {
                let dy = self.of_tensor(g, out);
                let mut back = vec![BackwardOp::ConvWeight { shape, window, x, dy, weight }];
                // The images need no gradient.
                if x != g.images {
                    let dx = self.of_tensor(g, x);
                    let accumulate = self.accumulates(dx);
                    back.push(BackwardOp::ConvInput { shape, window, dy, weight, dx, accumulate });
                }
                back
            }
        }
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
        let convs = g.nodes.iter().filter(|n| matches!(n, Node::Forward(ForwardOp::Conv { .. }))).count();
        let weight_grads =
            g.nodes.iter().filter(|n| matches!(n, Node::Backward(BackwardOp::ConvWeight { .. }))).count();
        assert_eq!(convs, weight_grads);
    }

    /// The mix applies its branches' last norms: those norms store nothing, and no node
    /// touches their outputs (only the outputs' gradients), so no buffer holds them.
    #[test]
    fn the_mix_applies_the_branch_ends_norms_and_their_outputs_are_never_stored() {
        let g = Graph::build(ModelConfig::new(8, 8).unwrap(), 2, Mode::Train);
        let ends: Vec<BranchEnd> = g
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Forward(ForwardOp::Shake { branches, .. }) => Some(*branches),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(ends.len(), 2 * 3, "three blocks, two branches each");
        for end in &ends {
            let touched =
                g.nodes.iter().any(|n| n.reads().contains(&end.out) || n.writes().contains(&end.out));
            assert!(!touched, "{} is stored", g.tensors[end.out].name);
        }
        let in_shake =
            |n: &&Node| matches!(n, Node::Forward(ForwardOp::BatchNorm { output: BnOutput::InShake, .. }));
        assert_eq!(g.nodes.iter().filter(in_shake).count(), ends.len());
    }
}
