//! The book's Rust samples. The book includes each from this crate (`{{#include}}`
//! with anchors), and `cargo test` compiles and runs them, so the guide
//! cannot drift from the code.

#![deny(missing_docs)]

pub mod money;
pub mod pricing;
pub mod quickstart;
