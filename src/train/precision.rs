//! What a run stores activations in (`--precision`), on all its devices alike, and where its
//! loss scaling starts: a new f16 run at PyTorch's initial scale, a resumed one where its
//! checkpoint left off.

use super::ranks::Ranks;
use crate::gpu::{Gpu, PrecisionChoice};
use crate::shapes::{LossScale, LossScaling, Precision};
use anyhow::Result;

/// The precision `choice` gives every device of the run (this process's `gpus`, and under
/// MPI every rank's), and why. f16 asked of a device without it is an error; auto takes f16
/// only where every device would: devices that computed in different precisions would
/// round differently, and their weights would part.
pub fn of_run(
    gpus: &[Gpu],
    ranks: Option<&dyn Ranks>,
    choice: PrecisionChoice,
) -> Result<(Precision, String)> {
    let each: Vec<(Precision, &str)> = gpus.iter().map(|gpu| gpu.precision(choice)).collect::<Result<_>>()?;
    let local_f16 = each.iter().filter(|(p, _)| *p == Precision::F16).count();
    let (f16_devices, devices) = match ranks {
        Some(ranks) => {
            let mut counts = [local_f16 as f32, gpus.len() as f32];
            ranks.sum(&mut counts);
            (counts[0] as usize, counts[1] as usize)
        }
        None => (local_f16, gpus.len()),
    };
    Ok(match (f16_devices, each.first()) {
        (n, Some(&(precision, why))) if n == devices || n == 0 => (precision, why.to_string()),
        (n, _) => (
            Precision::F32,
            format!("auto: {} of the run's {devices} devices have no f16 in shaders", devices - n),
        ),
    })
}

/// Test hook: `SHAKESHAKE_INITIAL_LOSS_SCALE=<power of two>` starts a new f16 run's loss
/// scaling there instead of at PyTorch's 2^16: a scale so large that the first steps
/// overflow shows them skipped and the scale lowered.
fn initial_scale() -> Option<f32> {
    std::env::var("SHAKESHAKE_INITIAL_LOSS_SCALE").ok()?.parse().ok()
}

/// Where loss scaling starts: a checkpoint's state where it was written in the same
/// precision, else a new run's start in `precision` (none in f32).
pub fn starting_loss_scale(precision: Precision, resumed: Option<(Precision, LossScale)>) -> LossScale {
    match resumed {
        Some((was, state)) if was == precision => state,
        _ => {
            let scaling = LossScaling {
                initial: initial_scale().unwrap_or(LossScaling::PYTORCH.initial),
                ..LossScaling::PYTORCH
            };
            LossScale::start(precision, &scaling)
        }
    }
}
