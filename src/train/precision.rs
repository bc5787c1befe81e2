//! What a run stores activations in (`--precision`), on all its devices alike, and where its
//! loss scaling starts: a new f16 run at PyTorch's initial scale, a resumed one where its
//! checkpoint left off.

use super::ranks::Ranks;
use super::run_dir::Start;
use crate::gpu::{Gpu, PrecisionChoice};
use crate::shapes::{LossScale, LossScaling, Precision};
use anyhow::{Result, bail};

/// The precision `choice` gives every device of the run (this process's `gpus`, and under
/// MPI every rank's), and why. f16 asked of a device without it is an error on every rank;
/// auto takes f16 only where every device would: devices that computed in different
/// precisions would round differently, and their weights would part.
pub fn of_run(
    gpus: &[Gpu],
    ranks: Option<&dyn Ranks>,
    choice: PrecisionChoice,
) -> Result<(Precision, String)> {
    let each: Vec<Result<(Precision, &str)>> = gpus.iter().map(|gpu| gpu.precision(choice)).collect();
    let local_f16 = each.iter().filter(|r| matches!(r, Ok((Precision::F16, _)))).count();
    let local_failed = each.iter().filter(|r| r.is_err()).count();
    // Every rank reaches the sum, one whose device failed too: the others would wait for it.
    let mut counts = [local_f16, gpus.len(), local_failed].map(|n| n as f32);
    if let Some(ranks) = ranks {
        ranks.sum(&mut counts);
    }
    let [f16, devices, failed] = counts.map(|n| n as usize);
    let mut each = each.into_iter();
    let first = each.next().expect("a run has a device")?;
    if let Some(own) = each.find_map(Result::err) {
        return Err(own);
    }
    if failed > 0 {
        bail!(
            "{failed} of the run's {devices} devices (in other processes) have no f16 in shaders: use --precision f32"
        );
    }
    Ok(match f16 {
        n if n == devices || n == 0 => (first.0, first.1.to_string()),
        n => (Precision::F32, format!("auto: {} of the run's {devices} devices would take f32", devices - n)),
    })
}

/// Test hook: `SHAKESHAKE_INITIAL_LOSS_SCALE=<power of two>` starts a new f16 run's loss
/// scaling there instead of at PyTorch's 2^16: a scale so large that the first steps
/// overflow shows them skipped and the scale lowered.
fn initial_scale() -> Result<Option<f32>> {
    let Ok(text) = std::env::var("SHAKESHAKE_INITIAL_LOSS_SCALE") else { return Ok(None) };
    match text.parse::<f32>() {
        Ok(scale) if scale >= 1.0 && scale.is_finite() && (scale.to_bits() & 0x007f_ffff) == 0 => {
            Ok(Some(scale))
        }
        _ => bail!("SHAKESHAKE_INITIAL_LOSS_SCALE must be a power of two of at least 1, not {text:?}"),
    }
}

/// Where loss scaling starts for a run that begins (`start`) in `precision`: a resumed run's
/// checkpoint state where it was written in the same precision; else a new start in
/// `precision` (none in f32), the steps skipped so far carried on. A run resumed in another
/// precision says so.
pub fn starting_loss_scale(precision: Precision, start: &Start) -> Result<LossScale> {
    let resumed = match start {
        Start::Resume { checkpoint, .. } => Some((checkpoint.precision, checkpoint.loss_scale)),
        Start::New => None,
    };
    if let Some((was, _)) = resumed.filter(|(was, _)| *was != precision) {
        eprintln!(
            "Note: this run stored its activations in {} and continues in {}: it goes on, but not as it \
             would have.",
            was.name(),
            precision.name()
        );
    }
    Ok(match resumed {
        Some((was, state)) if was == precision => state,
        _ => {
            let initial = initial_scale()?.unwrap_or(LossScaling::PYTORCH.initial);
            let start = LossScale::start(precision, &LossScaling { initial, ..LossScaling::PYTORCH });
            LossScale { skipped: resumed.map_or(0, |(_, state)| state.skipped), ..start }
        }
    })
}
