//! Dynamic loss scaling (PyTorch's GradScaler; shaders/loss_scale.wgsl): whether a step's
//! gradients overflowed, and the scale after it.

use crate::shapes::{LossScale, LossScaling};

/// Whether any gradient is an infinity or NaN: the step is then skipped.
pub fn overflows(grads: &[f64]) -> bool {
    grads.iter().any(|g| !g.is_finite())
}

/// The state after a step that did (`overflow`) or did not overflow.
pub fn next(state: LossScale, overflow: bool, s: &LossScaling) -> LossScale {
    if overflow {
        let scale = (state.scale * 0.5).max(1.0);
        return LossScale { scale, clean_steps: 0, skipped: state.skipped + 1 };
    }
    match state.clean_steps + 1 {
        clean if clean >= s.growth_interval => {
            LossScale { scale: state.scale * 2.0, clean_steps: 0, ..state }
        }
        clean => LossScale { clean_steps: clean, ..state },
    }
}
