//! Buffer planning: every tensor of a step lives from the node that first touches it to the
//! node that last does; tensors whose lives do not overlap share a buffer.

use super::graph::{Graph, TensorId};

#[derive(Clone, Debug)]
pub struct BufferPlan {
    /// The buffer each tensor lives in.
    pub buffer_of: Vec<usize>,
    /// Each buffer's size in 4-byte words (its largest tensor; an f16 tensor takes half a
    /// word an element).
    pub buffer_words: Vec<usize>,
}

impl BufferPlan {
    pub fn new(g: &Graph) -> BufferPlan {
        let unused = usize::MAX;
        let mut first = vec![unused; g.tensors.len()];
        let mut last = vec![0; g.tensors.len()];
        for (i, node) in g.nodes.iter().enumerate() {
            for t in node.reads().into_iter().chain(node.writes()) {
                first[t] = first[t].min(i);
                last[t] = last[t].max(i);
            }
        }
        let mut order: Vec<TensorId> =
            (0..g.tensors.len()).map(TensorId).filter(|t| first[*t] != unused).collect();
        order.sort_by_key(|t| first[*t]);

        let mut buffer_of = vec![usize::MAX; g.tensors.len()];
        let mut buffer_words: Vec<usize> = vec![];
        let mut free_after: Vec<usize> = vec![]; // node index after which each buffer is free
        for t in order {
            let need = g.tensor_bytes(t).div_ceil(4);
            // The free buffer that fits with least waste, else the largest free one (grown).
            let free: Vec<usize> = (0..buffer_words.len()).filter(|b| free_after[*b] < first[t]).collect();
            let fitting = free.iter().filter(|b| buffer_words[**b] >= need).min_by_key(|b| buffer_words[**b]);
            let chosen = fitting.or_else(|| free.iter().max_by_key(|b| buffer_words[**b])).copied();
            let b = chosen.unwrap_or_else(|| {
                buffer_words.push(0);
                free_after.push(0);
                buffer_words.len() - 1
            });
            buffer_words[b] = buffer_words[b].max(need);
            free_after[b] = last[t];
            buffer_of[t] = b;
        }
        BufferPlan { buffer_of, buffer_words }
    }

    pub fn total_words(&self) -> usize {
        self.buffer_words.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mode, ModelConfig};

    #[test]
    fn tensors_that_live_together_never_share_a_buffer() {
        let g = Graph::build(ModelConfig::new(14, 8).unwrap(), 3, Mode::Train);
        let plan = BufferPlan::new(&g);
        let live = |t: TensorId| {
            let uses: Vec<usize> = g
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.reads().contains(&t) || n.writes().contains(&t))
                .map(|(i, _)| i)
                .collect();
            (uses[0], *uses.last().unwrap())
        };
        let used: Vec<TensorId> = (0..g.tensors.len())
            .map(TensorId)
            .filter(|t| g.nodes.iter().any(|n| n.writes().contains(t)))
            .collect();
        for &a in &used {
            assert!(plan.buffer_words[plan.buffer_of[a]] * 4 >= g.tensor_bytes(a));
            for &b in &used {
                if a < b && plan.buffer_of[a] == plan.buffer_of[b] {
                    let ((a0, a1), (b0, b1)) = (live(a), live(b));
                    assert!(a1 < b0 || b1 < a0, "{} and {} overlap", g.tensors[a].name, g.tensors[b].name);
                }
            }
        }
        let naive: usize = used.iter().map(|t| g.tensor_len(*t)).sum();
        assert!(plan.total_words() * 2 < naive, "reuse should at least halve memory");
    }
}
