//! The mrci program.
#![forbid(unsafe_code)]

fn main() {}
