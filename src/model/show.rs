//! The step as text (`impl Display for Graph`, `shakeshake graph`): every node in order,
//! what it reads and what it writes, with each tensor's shape and the buffer the plan put it
//! in. The first thing to read when a layer misbehaves.

use super::graph::{BackwardOp, BnOutput, ForwardOp, Graph, Node, ParamId, TensorId};
use super::plan::BufferPlan;
use std::fmt;

impl Graph {
    /// One line a node: index, operation, written tensors (shape, buffer), read tensors.
    pub fn node_lines(&self) -> Vec<String> {
        let plan = BufferPlan::new(self);
        let tensor = |t: TensorId| {
            let [n, c, h, w] = self.tensors[t].dims;
            format!("{} [{n}x{c}x{h}x{w}] @b{}", self.tensors[t].name, plan.buffer_of[t])
        };
        let names = |ts: Vec<TensorId>| {
            let names: Vec<&str> = ts.iter().map(|t| self.tensors[*t].name.as_str()).collect();
            if names.is_empty() { "-".to_string() } else { names.join(", ") }
        };
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let writes: Vec<String> = node.writes().into_iter().map(tensor).collect();
                let writes = if writes.is_empty() { self.param_written(node) } else { writes.join(", ") };
                format!("{i:>4}  {:<42} {writes}  <- {}", self.operation(node), names(node.reads()))
            })
            .collect()
    }

    /// What a node that writes no tensor writes: a parameter's gradient, a norm's
    /// statistics, or the metrics.
    fn param_written(&self, node: &Node) -> String {
        let param = |p: ParamId| format!("grad {}", self.params[p].prefix);
        match node {
            Node::Backward(BackwardOp::ConvWeight { weight, .. }) => param(*weight),
            Node::Forward(ForwardOp::BatchNorm { affine, .. }) => {
                format!("statistics {}", self.params[*affine].prefix)
            }
            _ => "metrics".to_string(),
        }
    }

    /// "conv2d forward 3x3 16->32 s2", "batch_norm+relu forward", ...
    fn operation(&self, node: &Node) -> String {
        let accumulating = |a: bool| if a { " (+=)" } else { "" };
        let bn = |relu: bool| if relu { "batch_norm+relu" } else { "batch_norm" };
        match node {
            Node::Forward(op) => match op {
                ForwardOp::Prepare { .. } => "prepare_batch".into(),
                ForwardOp::Conv { shape, .. } => format!("conv2d forward {}", shape.name()),
                ForwardOp::BatchNorm { output: BnOutput::InShake, .. } => {
                    "batch_norm statistics (shake applies it)".into()
                }
                ForwardOp::BatchNorm { shape, .. } => format!("{} forward", bn(shape.relu)),
                ForwardOp::Relu { .. } => "relu forward".into(),
                ForwardOp::Shake { block, .. } => format!("shake forward (block {block})"),
                ForwardOp::Pool { .. } => "avg_pool forward".into(),
                ForwardOp::Linear { .. } => "linear forward".into(),
                ForwardOp::Loss { .. } => "cross_entropy forward".into(),
            },
            Node::Backward(op) => match op {
                BackwardOp::Loss { .. } => "cross_entropy backward".into(),
                BackwardOp::Linear { .. } => "linear backward".into(),
                BackwardOp::Pool { .. } => "avg_pool backward".into(),
                BackwardOp::Shake { block, .. } => format!("shake backward (block {block})"),
                BackwardOp::Relu { accumulate, .. } => format!("relu backward{}", accumulating(*accumulate)),
                BackwardOp::BatchNorm { shape, .. } => format!("{} backward", bn(shape.relu)),
                BackwardOp::ConvWeight { shape, .. } => format!("conv2d grad_weight {}", shape.name()),
                BackwardOp::ConvInput { shape, accumulate, .. } => {
                    format!("conv2d grad_input {}{}", shape.name(), accumulating(*accumulate))
                }
            },
        }
    }

    /// The first line of the listing: network, mode, batch, and the buffers planned.
    pub fn summary(&self) -> String {
        let plan = BufferPlan::new(self);
        format!(
            "Shake-Shake {} ({}), {:?} step, batch {}: {} nodes, {} tensors in {} buffers ({:.1} MiB)",
            self.config.paper_name(),
            self.config.variant_name(),
            self.mode,
            self.batch,
            self.nodes.len(),
            self.tensors.len(),
            plan.buffer_words.len(),
            plan.total_words() as f64 * 4.0 / (1 << 20) as f64
        )
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())?;
        for line in self.node_lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Graph, Mode, ModelConfig};

    #[test]
    fn the_listing_names_every_node_with_shapes_and_buffers() {
        let g = Graph::build(ModelConfig::new(8, 16).unwrap(), 128, Mode::Train);
        let text = g.to_string();
        assert_eq!(text.lines().count(), g.nodes.len() + 1);
        assert!(text.contains("conv2d forward 3x3 3->16 @32"), "{text}");
        assert!(text.contains("stem.conv [128x16x32x32] @b"), "{text}");
        assert!(text.contains("conv2d grad_weight 1x1 16->16 s2 shifted @32"), "{text}");
        assert!(text.contains("(+=)"), "accumulating gradients are marked:\n{text}");
        assert!(text.contains("statistics stages.0.0.branch2.bn2"), "{text}");
    }
}
