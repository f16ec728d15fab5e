//! Placeholder crate root.
#![forbid(unsafe_code)]
