//! SGD with momentum, optional Nesterov, weight decay (PyTorch's update).

use crate::shapes::SgdSettings;

/// Updates weights and velocity in place.
pub fn step(s: &SgdSettings, lr: f64, weights: &mut [f64], grads: &[f64], velocity: &mut [f64]) {
    for i in 0..weights.len() {
        let g = grads[i] + s.weight_decay * weights[i];
        velocity[i] = s.momentum * velocity[i] + g;
        let update = if s.nesterov { g + s.momentum * velocity[i] } else { velocity[i] };
        weights[i] -= lr * update;
    }
}
