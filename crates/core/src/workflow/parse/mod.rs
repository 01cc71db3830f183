//! From a positioned YAML tree to the typed model, reporting every problem on the way.
//!
//! Parsing never stops at the first problem: each function returns what it could make of its
//! node (`Option<T>`, `None` when the node is unusable) and files a diagnostic for everything
//! else, so that one run of `nudge validate` shows a marketer all their mistakes.
//!
//! - `settings`: `settings.yaml`.
//! - `workflow`: one workflow file (id, category, key, entry policy, goals, send window);
//!   `trigger`: its trigger and the event filters triggers, goals and `wait_for` share;
//!   `key`: the run key against the events it is read from.
//! - `step`: lists of steps and one step (kind, id, body), with one module per step kind.
//! - Shared readers: `map` (a mapping's keys), `values` (text, durations, times, addresses,
//!   URLs, send windows, tags), `scalars` (expressions and templates in scalars), `names`
//!   (what ids and attribute names may look like).

mod key;
mod map;
mod names;
mod scalars;
mod settings;
mod step;
mod trigger;
mod values;
mod workflow;

pub use scalars::Scalars;
pub use settings::settings;
pub use values::mailbox;
pub use workflow::workflow;

/// Step kinds, as written.
pub const STEP_KINDS: &[&str] = &[
    "send_email",
    "wait",
    "wait_for",
    "if",
    "ab_split",
    "update_profile",
    "webhook",
];

/// Attributes a workflow may not write: identity and consent come from the customer.
pub const PROTECTED_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "accepts_marketing",
    "unsubscribed",
    "suppressed",
];
