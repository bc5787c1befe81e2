// provides: CIN, COUT, H, OH, OW, W
// The tiled (GPU) convolution kernels' shape, fixed per pipeline by override constants, so
// that decoding a GEMM row or column into (image, row, column) divides by constants: a
// multiply and a shift, where a division by a uniform value costs tens of instructions on a
// GPU. The register (CPU) kernels read the shape from `p` instead: there a pipeline per
// shape would multiply the pipelines llvmpipe compiles (0.2-1 s each) for no gain, since
// they decode once an invocation, not per load. The batch is not among them (kernels read
// p.batch, only to bound the rows): one pipeline serves a shape's every batch, the few
// images its candidates are checked on, the 16 they are timed on, the training batch and
// the smaller last batch of an epoch.
override CIN: u32 = 1u;   // defaults only for validating the module alone
override H: u32 = 1u;
override W: u32 = 1u;
override COUT: u32 = 1u;
override OH: u32 = 1u;
override OW: u32 = 1u;
