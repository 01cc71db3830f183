//! Nudge's core: marketing-automation workflows for online stores, as code the store owns.
//!
//! Marketers write YAML workflows under `workflows/`; [`workflow`] reads and checks them and
//! [`diagnostic`] reports problems as `path:line:col: error: message`. Store events
//! ([`event`]) drive the pure [`engine`], whose decisions the [`runner`] carries out through a
//! [`store::Store`] and a [`mail::Mailer`].
//!
//! This crate links no database, command-line or AWS crate and starts no async runtime: the
//! adapters (`nudge-local` for SQLite and the outbox, the AWS crate for DynamoDB and SES) and
//! the shells around them (the `nudge` command line, the Lambda functions) depend on it, never
//! the other way round.

#![warn(missing_docs)]

pub mod diagnostic;
pub mod engine;
pub mod event;
pub mod journal;
pub mod links;
pub mod mail;
pub mod runner;
pub mod shopify;
pub mod store;
pub mod timeline;
pub mod webhook;
pub mod workflow;
