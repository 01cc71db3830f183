//! The marketer's tools: what a pull request that edits `workflows/` shows its reviewers.
//!
//! - [`graph`]: each workflow as a Mermaid or Graphviz diagram (`nudge graph`);
//! - [`preview`]: the static site of every email (`nudge preview`);
//! - [`plan`]: what merging an edit changes, in the definitions and for the runs in flight
//!   (`nudge plan`);
//! - [`explain`]: one customer's story from the store's journal (`nudge explain`);
//! - [`report`]: per workflow step, what was sent, skipped, delivered, opened, ... (`nudge
//!   report`).
//!
//! Everything here is a function of the project (workflows, templates, settings) and, for the
//! last three, of a [`Store`](nudge_core::store::Store): this crate links no SQLite, command
//! line, AWS SDK or async runtime, so the same code reads the embedded store and the deployed
//! DynamoDB table.

#![warn(missing_docs)]

pub mod explain;
pub mod graph;
pub mod plan;
pub mod preview;
pub mod report;
