//! Checkpoints: safetensors files a PyTorch user can load. Weights are f32 in PyTorch's
//! layouts under PyTorch-style names (`stem.conv.weight`, `stages.0.1.branch2.bn1.bias`,
//! `fc.weight`, ...); SGD's momentum under `optimizer.momentum.<name>`; the architecture and
//! training position in the header's metadata. Written atomically (temp file, then rename).

use crate::model::{Graph, Mode, ModelConfig, ParamStore};
use crate::ops::cross_entropy::METRICS_LEN;
use crate::shapes::{LossScale, Precision};
use anyhow::{Context, Result, anyhow, bail};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "shakeshake-1";
const MOMENTUM: &str = "optimizer.momentum.";

/// Where training stood when the checkpoint was written: at the end of an epoch, or inside
/// one (a stop or an interval checkpoint), with what the epoch had summed so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    pub seed: u64,
    /// Batches of the next epoch already trained (0 at an epoch's end).
    pub batches: usize,
    /// That epoch's metrics accumulators so far (see `ops::cross_entropy::METRICS_LEN`), so
    /// its row comes out as if it had run through.
    pub metrics: [f32; METRICS_LEN],
}

impl Position {
    /// At the end of `epoch` epochs, after `step` steps.
    pub fn epoch_end(epoch: usize, step: u64, seed: u64) -> Position {
        Position { epoch, step, seed, batches: 0, metrics: [0.0; METRICS_LEN] }
    }
}

pub struct Checkpoint {
    pub config: ModelConfig,
    pub params: ParamStore,
    pub momentum: Vec<Vec<f32>>,
    pub position: Position,
    /// What the run stored activations in, and where its loss scaling stood (a resumed f16
    /// run scales on from there). Checkpoints from before f16 have neither: f32, no scale.
    pub precision: Precision,
    pub loss_scale: LossScale,
}

fn bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// The first tensor of `c` (by checkpoint name) holding NaN or infinity, if any.
pub fn non_finite_tensor(c: &Checkpoint) -> Option<String> {
    let specs = c.params.specs.iter().zip(&c.params.values).zip(&c.momentum);
    specs
        .flat_map(|((spec, values), momentum)| {
            spec.tensors().into_iter().flat_map(move |(name, _, range)| {
                let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
                let momentum_name = format!("{MOMENTUM}{name}");
                [(bad(&values[range.clone()]), name), (bad(&momentum[range]), momentum_name)]
            })
        })
        .find_map(|(bad, name)| bad.then_some(name))
}

/// Checkpoints never hold NaN or infinity: a diverged run has nothing worth resuming or
/// evaluating, and a tensor that says so is refused by name.
fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => bail!(
            "{}: tensor {name} holds a non-finite value ({} at index {i}); the run that wrote it diverged",
            path.display(),
            values[i]
        ),
    }
}

/// Write atomically: a crash leaves the previous checkpoint whole.
pub fn save(path: &Path, c: &Checkpoint) -> Result<()> {
    if let Some(name) = non_finite_tensor(c) {
        bail!("not writing {}: tensor {name} holds a non-finite value", path.display());
    }
    let mut tensors: Vec<(String, TensorView)> = vec![];
    for ((spec, values), momentum) in c.params.specs.iter().zip(&c.params.values).zip(&c.momentum) {
        for (name, shape, range) in spec.tensors() {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes(&values[range.clone()]))?;
            tensors.push((name.clone(), view));
            if spec.trainable() {
                let m = TensorView::new(Dtype::F32, shape, bytes(&momentum[range]))?;
                tensors.push((format!("{MOMENTUM}{name}"), m));
            }
        }
    }
    let cfg = &c.config;
    let meta: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        ("depth", cfg.depth.to_string()),
        ("width", cfg.width.to_string()),
        ("variant", cfg.variant_name()),
        ("epoch", c.position.epoch.to_string()),
        ("step", c.position.step.to_string()),
        ("seed", c.position.seed.to_string()),
        ("batches", c.position.batches.to_string()),
        // Bit patterns: a resumed epoch must sum on from exactly these values.
        ("epoch_metrics", c.position.metrics.map(|v| v.to_bits().to_string()).join(",")),
        ("precision", c.precision.name().to_string()),
        (
            "loss_scale",
            format!("{},{},{}", c.loss_scale.scale.to_bits(), c.loss_scale.clean_steps, c.loss_scale.skipped),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let data = safetensors::serialize(tensors, Some(meta))?;
    crate::files::write_atomically(path, &data)
}

/// Read a checkpoint; if `expect` is given, its architecture must match.
pub fn load(path: &Path, expect: Option<&ModelConfig>) -> Result<Checkpoint> {
    let data = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&data)
        .map_err(|e| anyhow!("{} is not a safetensors checkpoint: {e}", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        bail!(
            "{} was not written by shakeshake (no \"format\": \"{FORMAT}\" in its metadata)",
            path.display()
        );
    }
    let field = |k: &str| -> Result<&String> {
        meta.get(k).ok_or_else(|| anyhow!("{}: metadata has no {k:?}", path.display()))
    };
    let number = |k: &str| -> Result<u64> {
        field(k)?.parse().with_context(|| format!("{}: metadata {k:?} is not a number", path.display()))
    };
    let config =
        ModelConfig::with_variant(number("depth")? as usize, number("width")? as usize, field("variant")?)
            .with_context(|| format!("{}: its metadata describes no valid network", path.display()))?;
    if let Some(want) = expect
        && *want != config
    {
        bail!(
            "{} holds Shake-Shake {} ({}), but this run is Shake-Shake {} ({}): use the same --depth, --width \
             and --variant, or another checkpoint",
            path.display(),
            config.paper_name(),
            config.variant_name(),
            want.paper_name(),
            want.variant_name()
        );
    }
    let st = safetensors::SafeTensors::deserialize(&data)?;
    let specs = Graph::build(config, 1, Mode::Eval).params;
    let mut values = vec![];
    let mut momentum = vec![];
    for spec in &specs {
        let mut v = vec![0.0f32; spec.len()];
        let mut m = vec![0.0f32; spec.len()];
        for (name, shape, range) in spec.tensors() {
            let read = |name: &str, into: &mut [f32]| -> Result<()> {
                let t = st.tensor(name).map_err(|_| anyhow!("{} has no tensor {name}", path.display()))?;
                if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
                    bail!(
                        "{}: {name} is {:?} {:?}, expected F32 {:?}",
                        path.display(),
                        t.dtype(),
                        t.shape(),
                        shape
                    );
                }
                into.copy_from_slice(bytemuck::pod_collect_to_vec::<u8, f32>(t.data()).as_slice());
                check_finite(path, name, into)
            };
            read(&name, &mut v[range.clone()])?;
            if spec.trainable() {
                read(&format!("{MOMENTUM}{name}"), &mut m[range])?;
            }
        }
        values.push(v);
        momentum.push(m);
    }
    let metrics = match meta.get("epoch_metrics") {
        None => [0.0; METRICS_LEN],
        Some(text) => {
            let bits: Vec<u32> =
                text.split(',').map(str::parse).collect::<Result<_, _>>().ok().unwrap_or_default();
            let values: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
            values
                .try_into()
                .map_err(|_| anyhow!("{}: metadata \"epoch_metrics\" is damaged", path.display()))?
        }
    };
    let batches = if meta.contains_key("batches") { number("batches")? as usize } else { 0 };
    let position = Position {
        epoch: number("epoch")? as usize,
        step: number("step")?,
        seed: number("seed")?,
        batches,
        metrics,
    };
    let precision = match meta.get("precision") {
        None => Precision::F32,
        Some(name) => Precision::from_name(name).ok_or_else(|| {
            anyhow!("{}: metadata \"precision\" is {name:?}, not f32 or f16", path.display())
        })?,
    };
    let loss_scale = match meta.get("loss_scale") {
        None => LossScale::NONE,
        Some(text) => parse_loss_scale(text)
            .ok_or_else(|| anyhow!("{}: metadata \"loss_scale\" is damaged", path.display()))?,
    };
    Ok(Checkpoint { config, params: ParamStore { specs, values }, momentum, position, precision, loss_scale })
}

/// "scale bits,clean steps,skipped" (the scale a power of two, at least 1).
fn parse_loss_scale(text: &str) -> Option<LossScale> {
    let mut fields = text.split(',').map(|f| f.parse::<u32>().ok());
    let (scale, clean_steps, skipped) = (f32::from_bits(fields.next()??), fields.next()??, fields.next()??);
    let power_of_two = scale.is_finite() && scale >= 1.0 && (scale.to_bits() & 0x007f_ffff) == 0;
    (fields.next().is_none() && power_of_two).then_some(LossScale { scale, clean_steps, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_architecture() {
        let config = ModelConfig::new(8, 4).unwrap();
        let specs = Graph::build(config, 1, Mode::Eval).params;
        let params = ParamStore::init(&specs, 3);
        let momentum: Vec<Vec<f32>> =
            params.values.iter().map(|v| v.iter().map(|x| x * 0.5).collect()).collect();
        let position = Position {
            epoch: 2,
            step: 40,
            seed: 9,
            batches: 3,
            metrics: [1.5, 7.0, 12.0, f32::MIN_POSITIVE],
        };
        let dir = std::env::temp_dir().join(format!("shakeshake-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let (precision, loss_scale) =
            (Precision::F16, LossScale { scale: 32768.0, clean_steps: 17, skipped: 2 });
        let (params_c, momentum_c) = (params.clone(), momentum.clone());
        let checkpoint =
            Checkpoint { config, params: params_c, momentum: momentum_c, position, precision, loss_scale };
        save(&path, &checkpoint).unwrap();
        let back = load(&path, Some(&config)).unwrap();
        assert_eq!(back.params, params);
        assert_eq!(back.position, position);
        assert_eq!((back.precision, back.loss_scale), (precision, loss_scale));
        for ((spec, m), want) in specs.iter().zip(&back.momentum).zip(&momentum) {
            if spec.trainable() {
                assert_eq!(m, want);
            }
        }
        let other = ModelConfig::new(8, 6).unwrap();
        let err = load(&path, Some(&other)).err().unwrap().to_string();
        assert!(err.contains("8 2x4d") && err.contains("8 2x6d"), "{err}");
        std::fs::write(&path, b"not a checkpoint").unwrap();
        assert!(load(&path, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
