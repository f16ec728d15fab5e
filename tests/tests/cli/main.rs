//! End-to-end tests of the `mrci` terminal client: the real binary against a real host
//! (`mrci host run`), interactively through a pseudo-terminal and scripted through a shell, and file transfers
//! with their progress bar.
#![forbid(unsafe_code)]

mod ca;
mod cluster;
mod interactive;
mod operate;
mod scripted;
mod support;
mod transfer;
