//! The journal: what happened to one customer, kept beside their state so that `nudge explain`
//! can tell their story and `nudge report` can count, from any store.
//!
//! Each commit of a customer appends the entries of the input it applied (the event received,
//! runs started and ended, emails sent, skipped or deferred with the rule that decided, the
//! conditions read, the waits begun) in the same atomic write as the state, so the journal
//! never says something happened that the state does not hold, or the other way round.
//!
//! Bounded per customer: a store keeps the entries of the customer's last
//! [`JOURNAL_COMMITS`] commits (and, on DynamoDB, none older than [`JOURNAL_TTL_DAYS`]).
//!
//! No more personal data than the state: an entry holds ids, step ids, reasons, times, the
//! rendered subject and the values a condition read (all of which the state or the send log
//! holds). It holds no address: `explain` takes the recipient of an email from its send-log
//! entry, which erasure removes with the rest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::ActionKind;

/// How many of a customer's most recent commits a store keeps the journal entries of.
pub const JOURNAL_COMMITS: u64 = 100;

/// The most JSON one commit's journal may take, as a store keeps it (64 KiB): a DynamoDB item
/// holds at most 400 KB beside the state's in the same transaction. [`encode`] keeps the
/// entries that fit, in order, and records how many it left out ([`Happened::JournalTruncated`]).
pub const MAX_JOURNAL_BYTES: usize = 64 * 1024;

/// On DynamoDB, journal items expire this many days after they were written (TTL), whatever
/// the count: a customer's story covers at most about 13 months.
pub const JOURNAL_TTL_DAYS: i64 = 400;

/// One thing that happened to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When it happened (the engine's `now`; millisecond precision).
    pub at: DateTime<Utc>,
    /// The workflow, for everything but [`Happened::EventReceived`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The run, for everything but [`Happened::EventReceived`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The step, for step-level entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The customer's time zone when it happened (an IANA name, as
    /// [`Action::zone`](crate::engine::Action::zone)): `explain` shows local times in it, as
    /// `simulate` did. `None` for [`Happened::EventReceived`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub what: Happened,
}

/// What a [`JournalEntry`] records. Serialized with an `action` tag named as `simulate`'s rows
/// (`run.started`, `email.sent`, ...); the kinds only the journal has are named in the same
/// style (`event.received`, `condition.checked`, `split.chosen`, `wait.started`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action")]
pub enum Happened {
    /// The input was a store event.
    #[serde(rename = "event.received")]
    EventReceived {
        /// Its canonical type (`order.placed`).
        event_type: String,
        /// Its id (the idempotency key).
        event_id: String,
    },
    /// A run began.
    #[serde(rename = "run.started")]
    RunStarted,
    /// A trigger matched but no run started (`reason` as `simulate` prints it).
    #[serde(rename = "run.refused")]
    RunRefused {
        /// Why (`too_many_runs`).
        reason: String,
    },
    /// A run ended (`reason`: `completed`, `goal`, `step_removed`, ...).
    #[serde(rename = "run.ended")]
    RunEnded {
        /// Why.
        reason: String,
    },
    /// An email was decided and logged for delivery: what became of it is in the send log
    /// under `key`.
    #[serde(rename = "email.sent")]
    EmailSent {
        /// The send log's idempotency key (`<run>.<step>`).
        key: String,
        /// The rendered subject.
        subject: String,
        /// The step's tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// An email was not sent: the sending rule that decided (`no_consent`, `suppressed`,
    /// `frequency_cap`, ...).
    #[serde(rename = "email.skipped")]
    EmailSkipped {
        /// The rule, as `simulate` prints it.
        reason: String,
        /// What the rule read (e.g. `{"accepts_marketing": false}`), when the engine says.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        read: Map<String, Value>,
    },
    /// An email is held for the send window.
    #[serde(rename = "email.deferred")]
    EmailDeferred {
        /// The window's next opening.
        until: DateTime<Utc>,
    },
    /// `update_profile` changed attributes.
    #[serde(rename = "profile.updated")]
    ProfileUpdated {
        /// The attributes after the change.
        changes: Map<String, Value>,
    },
    /// A webhook call was decided and logged (its outcome is in the send log under `key`).
    #[serde(rename = "webhook.called")]
    WebhookCalled {
        /// The send log's idempotency key.
        key: String,
        /// `POST`, `PUT` or `PATCH`.
        method: String,
        /// Where.
        url: String,
    },
    /// An `if` step's condition was evaluated.
    #[serde(rename = "condition.checked")]
    ConditionChecked {
        /// The condition as written.
        condition: String,
        /// What it came to.
        result: bool,
        /// The values it read, by the path it named (`customer.orders_count`).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        read: Map<String, Value>,
    },
    /// An `ab_split` step put the run in a branch.
    #[serde(rename = "split.chosen")]
    SplitChosen {
        /// The branch's name, or `holdout`.
        branch: String,
    },
    /// The commit's entries did not all fit in [`MAX_JOURNAL_BYTES`]: `dropped` were left out
    /// (the largest: a `profile.updated` or `condition.checked` carrying big values), the
    /// others kept in order. Always the commit's last entry.
    #[serde(rename = "journal.truncated")]
    JournalTruncated {
        /// How many entries were left out.
        dropped: u64,
    },
    /// A `wait` or `wait_for` step began: the run sleeps until `until` (a `wait_for`'s
    /// timeout) or the event `event`.
    #[serde(rename = "wait.started")]
    WaitStarted {
        /// When it ends (or times out).
        until: DateTime<Utc>,
        /// A `wait_for`'s event type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
}

impl Happened {
    /// The entry of an engine action (an email's entry keeps its key, subject and tags, never
    /// its address; a skip's `read` is empty: the engine adds what its rule read).
    pub fn of_action(kind: &ActionKind) -> Happened {
        match kind {
            ActionKind::RunStarted => Happened::RunStarted,
            ActionKind::RunRefused { reason } => Happened::RunRefused {
                reason: reason.as_str().to_owned(),
            },
            ActionKind::RunEnded { reason } => Happened::RunEnded {
                reason: reason.as_str().to_owned(),
            },
            ActionKind::EmailSent(email) => Happened::EmailSent {
                key: email.idempotency_key.clone(),
                subject: email.subject.clone(),
                tags: email.tags.clone(),
            },
            ActionKind::EmailSkipped { reason } => Happened::EmailSkipped {
                reason: reason.as_str().to_owned(),
                read: Map::new(),
            },
            ActionKind::EmailDeferred { until } => Happened::EmailDeferred { until: *until },
            ActionKind::ProfileUpdated { changes } => Happened::ProfileUpdated {
                changes: changes.clone(),
            },
            ActionKind::WebhookCalled(call) => Happened::WebhookCalled {
                key: call.idempotency_key.clone(),
                method: call.method.to_owned(),
                url: call.url.clone(),
            },
        }
    }

    /// The action name (the serialized tag): `run.started`, `email.sent`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Happened::EventReceived { .. } => "event.received",
            Happened::RunStarted => "run.started",
            Happened::RunRefused { .. } => "run.refused",
            Happened::RunEnded { .. } => "run.ended",
            Happened::EmailSent { .. } => "email.sent",
            Happened::EmailSkipped { .. } => "email.skipped",
            Happened::EmailDeferred { .. } => "email.deferred",
            Happened::ProfileUpdated { .. } => "profile.updated",
            Happened::WebhookCalled { .. } => "webhook.called",
            Happened::ConditionChecked { .. } => "condition.checked",
            Happened::SplitChosen { .. } => "split.chosen",
            Happened::WaitStarted { .. } => "wait.started",
            Happened::JournalTruncated { .. } => "journal.truncated",
        }
    }
}

/// One commit's entries as a store keeps them: a JSON array of at most [`MAX_JOURNAL_BYTES`]
/// (entries that would pass it are left out, the others kept in order, and a
/// [`Happened::JournalTruncated`] entry at the end says how many were left out). Empty bytes for
/// no entries: a store writes nothing then.
pub fn encode(entries: &[JournalEntry]) -> Vec<u8> {
    if entries.is_empty() {
        return Vec::new();
    }
    // Room for the marker, its brackets and commas.
    const RESERVE: usize = 256;
    let mut out = b"[".to_vec();
    let mut dropped = 0u64;
    let mut last_at = entries[0].at;
    for entry in entries {
        let Ok(json) = serde_json::to_vec(entry) else {
            dropped += 1;
            continue;
        };
        if out.len() + json.len() + 1 + RESERVE > MAX_JOURNAL_BYTES {
            dropped += 1;
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&json);
        last_at = last_at.max(entry.at);
    }
    if dropped > 0 {
        let marker = JournalEntry {
            at: last_at,
            workflow: None,
            run: None,
            step: None,
            zone: None,
            what: Happened::JournalTruncated { dropped },
        };
        if out.len() > 1 {
            out.push(b',');
        }
        // A marker of known fields always serializes.
        out.extend_from_slice(&serde_json::to_vec(&marker).unwrap_or_default());
    }
    out.push(b']');
    out
}

/// The entries [`encode`] made (empty bytes: none).
pub fn decode(bytes: &[u8]) -> Result<Vec<JournalEntry>, serde_json::Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_the_action_tag_named_as_simulate_rows() {
        let at = DateTime::from_timestamp_millis(1_772_532_000_123).unwrap();
        let entries = [
            JournalEntry {
                at,
                workflow: None,
                run: None,
                step: None,
                zone: None,
                what: Happened::EventReceived {
                    event_type: "order.placed".into(),
                    event_id: "e-1".into(),
                },
            },
            JournalEntry {
                at,
                workflow: Some("welcome-series".into()),
                run: Some("r-1".into()),
                step: Some("hello".into()),
                zone: Some("Europe/Istanbul".into()),
                what: Happened::EmailSkipped {
                    reason: "no_consent".into(),
                    read: Map::from_iter([("accepts_marketing".into(), Value::Bool(false))]),
                },
            },
        ];
        for entry in entries {
            let json = serde_json::to_value(&entry).unwrap();
            assert_eq!(json["action"], entry.what.name());
            let back: JournalEntry = serde_json::from_value(json).unwrap();
            assert_eq!(back, entry);
        }
    }

    fn entry(what: Happened) -> JournalEntry {
        JournalEntry {
            at: DateTime::from_timestamp_millis(1_772_532_000_000).unwrap(),
            workflow: Some("w".into()),
            run: Some("r".into()),
            step: Some("s".into()),
            zone: Some("UTC".into()),
            what,
        }
    }

    #[test]
    fn a_commit_that_fits_is_kept_whole_and_none_is_nothing() {
        assert!(encode(&[]).is_empty());
        assert_eq!(decode(&[]).unwrap(), Vec::new());
        let entries = vec![
            entry(Happened::RunStarted),
            entry(Happened::RunEnded {
                reason: "completed".into(),
            }),
        ];
        assert_eq!(decode(&encode(&entries)).unwrap(), entries);
    }

    #[test]
    fn a_huge_commit_keeps_what_fits_in_order_and_says_how_many_it_left_out() {
        let big = Map::from_iter([("notes".into(), Value::String("x".repeat(40_000)))]);
        let entries = vec![
            entry(Happened::RunStarted),
            entry(Happened::ProfileUpdated {
                changes: big.clone(),
            }),
            entry(Happened::ProfileUpdated { changes: big }),
            entry(Happened::RunEnded {
                reason: "completed".into(),
            }),
        ];
        let bytes = encode(&entries);
        assert!(bytes.len() <= MAX_JOURNAL_BYTES, "{}", bytes.len());
        let kept = decode(&bytes).unwrap();
        let names: Vec<_> = kept.iter().map(|e| e.what.name()).collect();
        assert_eq!(
            names,
            [
                "run.started",
                "profile.updated",
                "run.ended",
                "journal.truncated"
            ]
        );
        assert_eq!(
            kept.last().unwrap().what,
            Happened::JournalTruncated { dropped: 1 }
        );
    }
}
