//! Test support for Nudge: [`contract`], the suite every `Store` implementation must pass.

#![warn(missing_docs)]

pub mod contract;
