// fills: element
// provides: Act
// Activations and their gradients stored as f16: half the bytes of element_f32.wgsl, for
// devices that grant wgpu's SHADER_F16. Arithmetic stays f32 (products, sums, statistics):
// only loads widen and stores narrow. Joined first, since `enable` precedes declarations.
enable f16;
alias Act = f16;
