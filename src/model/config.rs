//! Which Shake-Shake: depth, width and the shake variant.

use crate::shapes::{BackwardMode, ForwardMode, Level};
use anyhow::{Result, bail};

/// The stem's output channels, as in the authors' code.
pub const STEM_CHANNELS: usize = 16;

/// Far past the paper's 26 and the deepest CIFAR ResNets (1202); a bound, so that a mistyped
/// flag or a hostile checkpoint is refused before anything is built for it.
pub const MAX_DEPTH: usize = 1202;
/// Far past the paper's widest (112): 4k = 4096 channels in the last stage.
pub const MAX_WIDTH: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    pub depth: usize,
    pub width: usize,
    pub forward: ForwardMode,
    pub backward: BackwardMode,
    pub level: Level,
}

impl ModelConfig {
    /// Shake-Shake-Image, the paper's best CIFAR-10 variant.
    pub fn new(depth: usize, width: usize) -> Result<Self> {
        Self::with_variant(depth, width, "shake-shake-image")
    }

    pub fn with_variant(depth: usize, width: usize, variant: &str) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) || depth > MAX_DEPTH {
            bail!(
                "--depth must be 6n + 2 with n >= 1 (8, 14, 20, 26, ...) and at most {MAX_DEPTH}, not {depth}"
            );
        }
        if width == 0 || !width.is_multiple_of(2) || width > MAX_WIDTH {
            bail!(
                "--width must be even (the projection shortcut splits channels in two) and at most {MAX_WIDTH}, \
                 not {width}"
            );
        }
        let (forward, backward, level) = parse_variant(variant)?;
        Ok(ModelConfig { depth, width, forward, backward, level })
    }

    /// Residual blocks a stage.
    pub fn blocks_per_stage(&self) -> usize {
        (self.depth - 2) / 6
    }

    /// Output channels of each stage: k, 2k, 4k.
    pub fn stage_widths(&self) -> [usize; 3] {
        [self.width, 2 * self.width, 4 * self.width]
    }

    /// The variant's name as the command line takes it, e.g. "shake-shake-image".
    pub fn variant_name(&self) -> String {
        let f = match self.forward {
            ForwardMode::Shake => "shake",
            ForwardMode::Even => "even",
        };
        let b = match self.backward {
            BackwardMode::Shake => "shake",
            BackwardMode::Even => "even",
            BackwardMode::Keep => "keep",
        };
        let l = match self.level {
            Level::Batch => "batch",
            Level::Image => "image",
        };
        format!("{f}-{b}-{l}")
    }

    /// "26 2x32d": the paper's name.
    pub fn paper_name(&self) -> String {
        format!("{} 2x{}d", self.depth, self.width)
    }
}

/// "forward-backward-level", e.g. shake-shake-image, shake-keep-batch, even-even-batch.
pub fn parse_variant(s: &str) -> Result<(ForwardMode, BackwardMode, Level)> {
    let parts: Vec<&str> = s.split('-').collect();
    let help = "variants are FORWARD-BACKWARD-LEVEL with FORWARD shake|even, BACKWARD shake|even|keep, \
                LEVEL batch|image (e.g. shake-shake-image, shake-keep-batch, even-even-batch)";
    let [f, b, l] = parts.as_slice() else { bail!("unknown variant {s:?}: {help}") };
    let forward = match *f {
        "shake" => ForwardMode::Shake,
        "even" => ForwardMode::Even,
        _ => bail!("unknown forward mode {f:?}: {help}"),
    };
    let backward = match *b {
        "shake" => BackwardMode::Shake,
        "even" => BackwardMode::Even,
        "keep" => BackwardMode::Keep,
        _ => bail!("unknown backward mode {b:?}: {help}"),
    };
    let level = match *l {
        "batch" => Level::Batch,
        "image" => Level::Image,
        _ => bail!("unknown level {l:?}: {help}"),
    };
    Ok((forward, backward, level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_round_trip_and_bad_ones_are_explained() {
        for v in ["shake-shake-image", "shake-keep-batch", "even-even-batch", "shake-even-image"] {
            assert_eq!(ModelConfig::with_variant(26, 32, v).unwrap().variant_name(), v);
        }
        let err = ModelConfig::with_variant(26, 32, "shake").unwrap_err().to_string();
        assert!(err.contains("FORWARD-BACKWARD-LEVEL"), "{err}");
        assert!(ModelConfig::new(25, 32).unwrap_err().to_string().contains("6n + 2"));
        assert!(ModelConfig::new(26, 33).is_err());
    }
}
