//! Nudge: marketing-automation workflows for online stores, as code the store owns.
//!
//! Marketers write YAML workflows under `workflows/`; [`workflow`] reads and checks them and
//! [`diagnostic`] reports problems as `path:line:col: error: message`. Store events
//! ([`event`]) drive the pure [`engine`], whose decisions the [`runner`] carries out through a
//! [`store::Store`] and a [`mail::Mailer`]. The `nudge` command line ([`cli`]) and the Lambda
//! functions are thin layers over this library.

pub mod cli;
pub mod diagnostic;
pub mod engine;
pub mod event;
pub mod links;
pub mod mail;
pub mod runner;
pub mod simulate;
pub mod store;
pub mod synth;
pub mod workflow;
