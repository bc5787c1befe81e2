// fills: element
// provides: Act
// The element type activations and their gradients are stored in: f32, the default. Every
// kernel that reads or writes them widens what it loads to f32 (`f32(v)`, free here) and
// narrows what it stores (`Act(v)`), so one source serves both precisions; element_f16.wgsl
// is the other. A module that joins this file has an f16 twin (src/gpu/shaders.rs).
alias Act = f32;
