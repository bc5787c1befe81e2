// provides: StepUniform
// What changes every training step, written by the CPU as one small uniform per step.
struct StepUniform {
    step: u32,
    seed: u32,
    lr: f32,
    _pad: u32,
}
