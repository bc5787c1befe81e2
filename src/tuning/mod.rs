//! Which kernel variant runs each shape on this adapter: checked against the CPU reference
//! (`checks`) before it may be chosen, timed safely (`chooser`), and remembered (`cache`).

pub mod cache;
pub mod chooser;
pub mod conv2d;

pub use chooser::VariantChooser;
