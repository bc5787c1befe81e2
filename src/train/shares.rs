//! How each batch is split among a run's devices (`--shares`; see `replicas`).

use std::ops::Range;

/// How each batch is split among devices: in proportion to these weights (`--shares 3,1`:
/// three quarters of every batch on the first device), consecutive images, device 0 first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shares(pub Vec<usize>);

impl Shares {
    /// Equal shares among `devices`.
    pub fn equal(devices: usize) -> Shares {
        Shares(vec![1; devices])
    }

    pub fn devices(&self) -> usize {
        self.0.len()
    }

    /// The images of a batch of `n` each device takes, device 0 first: `n` times its weight
    /// over the total, rounded down, and the images left over one each to the devices whose
    /// shares lost the most to rounding (the first of equals first).
    pub fn split(&self, n: usize) -> Vec<Range<usize>> {
        let total: usize = self.0.iter().sum();
        let mut sizes: Vec<usize> = self.0.iter().map(|w| n * w / total).collect();
        let mut by_remainder: Vec<usize> = (0..sizes.len()).collect();
        by_remainder.sort_by_key(|&d| std::cmp::Reverse(n * self.0[d] % total));
        for &d in by_remainder.iter().take(n - sizes.iter().sum::<usize>()) {
            sizes[d] += 1;
        }
        let mut start = 0;
        sizes
            .into_iter()
            .map(|size| {
                start += size;
                start - size..start
            })
            .collect()
    }

    /// An error unless every device gets at least one image of every batch the run has
    /// (`batch`, and `rest`, the epoch's last when it is smaller).
    pub fn check(&self, batch: usize, rest: Option<usize>) -> anyhow::Result<()> {
        for n in std::iter::once(batch).chain(rest) {
            if let Some(d) = self.split(n).iter().position(Range::is_empty) {
                anyhow::bail!(
                    "a batch of {n} images gives device {d} none of them with --shares {}: every device needs \
                     at least one image of every batch (the epoch's last batch is the images left over). Use \
                     fewer devices, more even --shares, or a --batch-size or --train-subset that leaves more \
                     images in the last batch",
                    self.describe()
                );
            }
        }
        Ok(())
    }

    /// "1:1", "3:1".
    pub fn describe(&self) -> String {
        self.0.iter().map(usize::to_string).collect::<Vec<_>>().join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::Shares;

    #[test]
    fn shares_split_a_batch_in_proportion_in_order() {
        assert_eq!(Shares::equal(2).split(128), vec![0..64, 64..128]);
        assert_eq!(Shares::equal(2).split(15), vec![0..8, 8..15]);
        assert_eq!(Shares(vec![3, 1]).split(128), vec![0..96, 96..128]);
        assert_eq!(Shares(vec![1, 1, 1]).split(10), vec![0..4, 4..7, 7..10]);
        // 5 x 2/5 = 2, 5 x 3/5 = 3: exact. 7 x (2, 3) / 5 = 2.8, 4.2: the first takes the spare one.
        assert_eq!(Shares(vec![2, 3]).split(7), vec![0..3, 3..7]);
        for n in 1..40 {
            let split = Shares(vec![5, 2, 3]).split(n);
            assert_eq!(split.last().unwrap().end, n);
            assert!(split.windows(2).all(|w| w[0].end == w[1].start));
        }
    }

    #[test]
    fn a_device_without_images_is_refused() {
        assert!(Shares::equal(2).check(128, Some(16)).is_ok());
        let err = Shares::equal(2).check(128, Some(1)).unwrap_err().to_string();
        assert!(err.contains("a batch of 1 images gives device 1 none"), "{err}");
        assert!(Shares(vec![1, 9]).check(3, None).is_err());
    }
}
