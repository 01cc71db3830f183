//! Nudge: marketing-automation workflows for online stores, as code the store owns.
//!
//! Marketers write YAML workflows under `workflows/`; [`workflow`] reads and checks them and
//! [`diagnostic`] reports problems as `path:line:col: error: message`. The `nudge` command line
//! ([`cli`]) is a thin layer over this library.

pub mod cli;
pub mod diagnostic;
pub mod workflow;
