//! A deterministic, seeded fault harness for the send guarantee and the store's idempotency,
//! on any [`Store`](nudge_core::store::Store), [`Mailer`](nudge_core::mail::Mailer) and
//! [`WebhookCaller`](nudge_core::webhook::WebhookCaller) (docs/RELIABILITY.md, "Faults,
//! duplicates and crashes: the harness").
//!
//! The pieces, each usable alone:
//!
//! - [`Faults`]: one seeded schedule (a small PRNG, [`Prng`], seeded per run: no wall clock,
//!   no thread rng) that every wrapper draws its faults from, and the log ([`Record`]) of what
//!   each wrapper did: which draw, which invocation, which call, which customer and
//!   idempotency key. The oracle explains every duplicate and every `unknown` send from it.
//! - The wrappers: [`FaultyStore`] (a call fails unavailable or throttled, times out after it
//!   applied, or "crashes": the invocation is abandoned before or after the call), and
//!   [`FaultyMailer`] / [`FaultyWebhooks`] (fail retryably, are throttled or refused, answer
//!   ambiguously after or without delivering, crash before or after delivering). They yield
//!   to the executor around every call, so concurrent invocations interleave there. A
//!   [`FaultyStore`] can also be built broken ([`Breakage`]), to prove the oracle catches
//!   what each breakage does.
//! - [`Invocation`]: wraps one invocation's future (an ingest of one event, one scheduler
//!   shard's tick); a wrapper's crash ends it with [`Crashed`], dropping the future where it
//!   stood, as a killed Lambda sandbox would.
//! - [`plan`]: the inputs (a synthetic store's events from `nudge-synth`, with invalid ones
//!   among them) and their deliveries: each delivered one to three times, reordered within
//!   minutes, duplicates sometimes concurrent.
//! - [`Executor`]: a single-threaded executor that polls its tasks in an order drawn from the
//!   seed, so concurrent invocations interleave deterministically (no tokio needed).
//! - [`drive`]: the driver for a store whose calls complete when polled (SQLite): it mirrors
//!   the Lambda handlers (ingest: one event per invocation, a store failure fails it and
//!   Lambda retries it twice, then to the on-failure queue; the scheduler: ticks that fire
//!   due shards with a runner leaving sends pending and sweep them, overlapping and dying
//!   midway), then quiesces with faults off.
//! - [`check`]: the oracle, invariants only (never a comparison with a fault-free run), and
//!   its [`Report`].
//!
//! Everything is a function of the seed: a failing run names the seed and the command that
//! replays it exactly ([`Report::assert_holds`]).

mod driver;
mod executor;
mod invocation;
mod mailer;
mod oracle;
mod plan;
mod schedule;
mod store;

pub use driver::{DriveOptions, Driven, Figures, drive};
pub use executor::{Ended, Executor, block_on};
pub use invocation::{Crashed, Invocation, YieldNow, current_invocation, yield_now};
pub use mailer::{FaultyMailer, FaultyWebhooks};
pub use oracle::{Explained, Report, Rule, Violation, check};
pub use plan::{Delivery, Input, Plan, PlanOptions, plan};
pub use schedule::{FaultRates, Faults, Happened, Prng, Record, SendFault, StoreFault, Tally};
pub use store::{Breakage, FaultyStore};
