//! A pass cut between images, so that no dispatch runs longer than the device's budget
//! (`Gpu::dispatch_budget_ms`; Windows resets a GPU whose work takes 2 s). Each piece is the
//! same convolution on fewer images, bound to the images' ranges of its tensors: it runs the
//! whole pass's pipelines (their workgroup sizes are planned for the whole batch) and writes
//! exactly what the whole pass would for those images, so a cut pass computes the same, bit
//! for bit (`checks::conv2d::cut_by_images`).

use super::{Conv2d, ConvPass};
use crate::gpu::{CompileError, Dispatch, Gpu, Slice};
use crate::shapes::ChannelWindow;

/// How a pass is cut between images so that no dispatch runs too long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Pieces {
    pub(super) images: usize,
    pub(super) ms_per_image: f64,
}

impl Conv2d {
    /// The same convolution with `pass` dispatched in pieces of about `images` images (as
    /// `image_step` allows), each expected to take `ms_per_image` an image. The pieces run
    /// the whole pass's pipelines and each writes what the whole pass would have written
    /// for its images, so the result is the same, bit for bit.
    pub fn split_by_images(mut self, pass: ConvPass, images: usize, ms_per_image: f64) -> Conv2d {
        self.pieces[pass as usize] = Pieces { images: images.max(1), ms_per_image };
        self
    }

    /// Where `pass` may be cut between images: the fewest images whose every binding starts
    /// `align`-float aligned (`4 align` bytes: an f16 image is half the bytes) after them
    /// and, for a weight gradient, that cover whole splits
    /// (so each piece writes exactly the partial sums the whole pass would, and the one
    /// reduction adds them in the same order); or why it may not be cut.
    pub fn image_step(
        &self,
        pass: ConvPass,
        window: ChannelWindow,
        align: usize,
    ) -> Result<usize, &'static str> {
        let s = &self.shape;
        let plane = s.out_h * s.out_w;
        let aligned =
            |images: usize, floats_per_image: usize| (images * floats_per_image).is_multiple_of(align);
        let bytes_aligned = |images: usize, elements: usize| {
            (images * elements * s.precision.bytes()).is_multiple_of(4 * align)
        };
        let images_aligned =
            |k: usize| bytes_aligned(k, s.cin * s.h * s.w) && bytes_aligned(k, window.channels * plane);
        let whole_splits = |k: usize| {
            let pixels = k * plane;
            pixels.is_multiple_of(self.pixels_per_split())
                && aligned(pixels / self.pixels_per_split(), s.weight_len())
        };
        let sums_splits = match pass {
            ConvPass::GradWeight if self.variant(pass).winograd_tile().is_some() => {
                return Err("Winograd's weight gradient sums its tiles in splits of its own");
            }
            ConvPass::GradWeight if self.splits() == 1 => {
                return Err("its weight gradient is a single sum over every pixel");
            }
            ConvPass::GradWeight => true,
            ConvPass::Forward | ConvPass::GradInput => false,
        };
        let fits = |k: usize| images_aligned(k) && (!sums_splits || whole_splits(k));
        (1..s.batch).find(|&k| fits(k)).ok_or("no smaller number of images keeps every binding aligned")
    }

    /// The pieces `pass` runs in: (first image, the convolution of its images); one piece,
    /// the whole convolution, unless `split_by_images` asked for more and `image_step`
    /// allows it.
    pub(super) fn pieces(&self, gpu: &Gpu, pass: ConvPass, window: ChannelWindow) -> Vec<(usize, Conv2d)> {
        let (want, batch) = (self.pieces[pass as usize].images, self.shape.batch);
        let align = crate::gpu::buffers::binding_alignment_floats(&gpu.limits);
        let per_piece = match self.image_step(pass, window, align) {
            Ok(step) if want < batch => want.next_multiple_of(step),
            _ => batch,
        };
        if per_piece >= batch {
            return vec![(0, self.clone())];
        }
        let whole = |images| Pieces { images, ms_per_image: self.pieces[pass as usize].ms_per_image };
        (0..batch)
            .step_by(per_piece)
            .map(|first| {
                let images = per_piece.min(batch - first);
                let shape = self.shape.with_batch(images);
                (first, Conv2d { shape, pieces: [whole(images); 3], ..self.clone() })
            })
            .collect()
    }

    /// Runs `make` on each piece of a forward or input-gradient pass with the images' ranges
    /// of the tensor it reads and the one it writes; each piece's first dispatch is expected
    /// to take the piece's measured time.
    pub(super) fn in_pieces<'a>(
        &self,
        gpu: &Gpu,
        pass: ConvPass,
        window: ChannelWindow,
        (read, written): (Slice<'a>, Slice<'a>),
        mut make: impl FnMut(&Conv2d, Slice<'a>, Slice<'a>) -> Result<Vec<Dispatch>, CompileError>,
    ) -> Result<Vec<Dispatch>, CompileError> {
        let pieces = self.pieces(gpu, pass, window);
        let s = &self.shape;
        let bytes = s.precision.bytes();
        let (input_bytes, output_bytes) =
            (bytes * s.cin * s.h * s.w, bytes * window.channels * s.out_h * s.out_w);
        // The input gradient reads dy (shaped as the output) and writes dx (as the input).
        let (read_bytes, written_bytes) = match pass {
            ConvPass::Forward => (input_bytes, output_bytes),
            ConvPass::GradInput => (output_bytes, input_bytes),
            ConvPass::GradWeight => unreachable!("the weight gradient's pieces add into one output"),
        };
        let mut all = vec![];
        for (first, piece) in &pieces {
            let images = piece.shape.batch;
            let range = |slice, bytes| images_of(slice, *first, images, bytes, pieces.len());
            let mut dispatches = make(piece, range(read, read_bytes), range(written, written_bytes))?;
            dispatches[0].estimated_ms = piece.estimated_ms(pass);
            all.extend(dispatches);
        }
        Ok(all)
    }

    /// Milliseconds `pass` was measured to take at this batch (0: not measured).
    pub(super) fn estimated_ms(&self, pass: ConvPass) -> f64 {
        self.shape.batch as f64 * self.pieces[pass as usize].ms_per_image
    }
}

/// The range of `slice` (a tensor of `bytes` bytes an image) that holds `images` images
/// from `first`; all of it where the pass is one piece (so a whole pass binds what it did).
pub(super) fn images_of(
    slice: Slice<'_>,
    first: usize,
    images: usize,
    bytes: usize,
    pieces: usize,
) -> Slice<'_> {
    match pieces {
        1 => slice,
        _ => slice.bytes((first * bytes) as u64, (images * bytes) as u64),
    }
}
