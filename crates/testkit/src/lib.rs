//! Test support for Nudge: [`contract`], the suite every `Store` implementation must pass.

pub mod contract;
