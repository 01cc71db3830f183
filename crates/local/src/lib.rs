//! Nudge on one machine: the embedded adapters of `nudge-core`'s ports and the virtual-clock
//! simulation behind `nudge simulate`.
//!
//! - [`SqliteStore`]: the `Store` in an embedded SQLite file;
//! - [`OutboxMailer`]: the `Mailer` that writes each email as an `.eml` file, and
//!   [`RecordingMailer`], which records emails as sent and writes nothing;
//! - [`simulate`]: store events through the workflows under a virtual clock.

#![warn(missing_docs)]

pub mod mime;
pub mod outbox;
pub mod record;
pub mod simulate;
pub mod sqlite;

pub use outbox::OutboxError;
pub use outbox::OutboxMailer;
pub use record::{LocalMailer, RecordingMailer};
pub use sqlite::{Durability, OpenError, SqliteOptions, SqliteStore};
