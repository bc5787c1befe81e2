// provides: LossScaleState
// Where dynamic loss scaling stands (loss_scale.wgsl), in one small buffer that the loss
// (which multiplies its gradient by `scale`), SGD (which divides by it, and skips a step
// that overflowed) and the scaler's own kernels bind. Runs without f16 activations keep
// scale 1 and never overflow, so the loss and SGD compute there exactly what they would
// without it. Mirrored by src/ops/loss_scale.rs's LossScaleState.
struct LossScaleState {
    scale: f32,
    // Steps since the scale last changed that did not overflow.
    clean_steps: u32,
    // Steps skipped for an overflow, over the whole run.
    skipped: u32,
    // Set by find_overflow when this step's gradients hold an infinity or NaN; cleared by
    // update at the step's end.
    overflow: atomic<u32>,
}
