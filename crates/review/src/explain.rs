//! `nudge explain`: one customer's story from the store, from their journal
//! (`nudge_core::journal`), their send log and their state.
//!
//! The story is a list of timeline rows ([`Row`], the rows `simulate --format json` prints),
//! oldest first: each event received, each run started and ended, each email sent (with what
//! became of it, from the send log), deferred or skipped (a skip whose rule read something is
//! preceded by a `rule.checked` row saying what), each condition checked with the values it
//! read, each split, each wait begun. Then "now": a `state.run` row per active run (its step,
//! what it waits for and until when) and a `state.wake` row for the customer's next timer.
//! Their `at` is the time the caller says is now ([`Request::now`]: the CLI gives the store's
//! clock, the virtual clock `simulate --db` left, else the wall clock). They are named
//! `state.*`, not `run.*`, because `simulate` prints no such rows: every `run.*` and
//! `email.*` row here is one `simulate` printed.
//!
//! Guarantees:
//! - For one customer, the `email.*` and `run.*` rows are the ones `simulate --format json`
//!   printed for them, field for field, as long as the journal kept them (the last
//!   `JOURNAL_COMMITS` commits) and the send log holds the emails (an email the send log no
//!   longer holds, past its retention, is `email.sent` with the reason `not in the send log`
//!   and no recipient). What became of an email is its state in the send log now: an email
//!   `simulate` printed as `email.pending` and a later run delivered is `email.sent` here.
//! - The recipient comes from the send log's message (for a send logged without one, as
//!   `simulate --db` without `--outbox` does, from the profile's address now); nothing here
//!   logs it.
//! - The journal keeps no address (`nudge_core::journal::redact`): a subject that had one
//!   (`Receipt for {{ customer.email }}`) is kept as `Receipt for [address]`. Such a subject is
//!   taken from the send log's message while the send log holds it (the message has the
//!   address anyway; the send log expires with its retention), so it is `simulate`'s;
//!   afterwards, and for a send logged without its message, it is shown as the journal kept
//!   it, with `[address]`, and then differs from what `simulate` printed. Other values the
//!   journal kept with an address taken out (a condition's or rule's reading, a webhook's
//!   URL, a profile change) are shown so.
//! - Local times are in the customer's zone when each thing happened (kept in the journal);
//!   an `event.received` row takes the zone of what followed it at its time, else the
//!   customer's latest (the journal's last, else the profile's, else the zone given); the
//!   "now" rows take the customer's latest.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use nudge_core::diagnostic::suggestion;
use nudge_core::engine::state::{CustomerState, Phase};
use nudge_core::engine::{Tz, customer_ref};
use nudge_core::journal::{ADDRESS_MARK, Happened, JournalEntry};
use nudge_core::mail::recipient_and_subject;
use nudge_core::store::{SendEntry, SendStatus, Store, StoreError};
use nudge_core::timeline::{Row, ts};
use nudge_core::workflow::model::Mailbox;

/// The reason of an email the send log no longer holds.
pub const NOT_IN_SEND_LOG: &str = "not in the send log";

/// Why a story could not be told.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Neither a state nor a journal: the store does not know the customer (named by
    /// [`customer_ref`], which never shows an address).
    #[error("the store knows no customer {0}")]
    UnknownCustomer(String),
    /// `--workflow` names a workflow neither the definitions nor the customer's journal and
    /// state know.
    #[error("no workflow `{workflow}` in the workflows or customer {customer}'s story{suggestion}")]
    UnknownWorkflow {
        /// The id asked for.
        workflow: String,
        /// The customer, by [`customer_ref`].
        customer: String,
        /// `"; did you mean `x`?"` or nothing.
        suggestion: String,
    },
    /// The stored state is not one this code reads.
    #[error("the stored state of customer {customer} is unreadable ({category})")]
    State {
        /// The customer, by [`customer_ref`].
        customer: String,
        /// What kind of JSON error (never the value).
        category: String,
    },
}

/// What to explain.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The customer.
    pub customer: &'a str,
    /// Only this workflow's rows (events are kept when something of the workflow happened
    /// right after them, at their time). It must be one of `defined`, or one the customer's
    /// journal or state names ([`ExplainError::UnknownWorkflow`] otherwise).
    pub workflow: Option<&'a str>,
    /// The ids of the workflows defined (none when the caller has no definitions).
    pub defined: &'a [&'a str],
    /// The zone of rows that name none, for a customer whose journal names none and whose
    /// profile has no valid zone (the command line gives UTC).
    pub zone: Tz,
    /// Now, the `at` of the `state.*` rows (the command line gives the store's clock, else
    /// the wall clock).
    pub now: DateTime<Utc>,
}

/// A customer's story.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// The customer.
    pub customer: String,
    /// What happened, oldest first.
    pub rows: Vec<Row>,
    /// Now: a `state.run` row per active run, then `state.wake` when the customer has a timer.
    pub now: Vec<Row>,
}

/// Tells `request.customer`'s story from `store`.
pub async fn explain<S: Store>(store: &S, request: &Request<'_>) -> Result<Story, ExplainError> {
    let customer = request.customer;
    let state = match store.load(customer).await? {
        Some(record) => Some(
            serde_json::from_slice::<CustomerState>(&record.state).map_err(|e| {
                ExplainError::State {
                    customer: customer_ref(customer).into_owned(),
                    category: format!("{:?}", e.classify()),
                }
            })?,
        ),
        None => None,
    };
    let journal = store.journal(customer).await?;
    if state.is_none() && journal.is_empty() {
        return Err(ExplainError::UnknownCustomer(
            customer_ref(customer).into_owned(),
        ));
    }
    if let Some(workflow) = request.workflow {
        known_workflow(workflow, request, state.as_ref(), &journal)?;
    }
    let sends: HashMap<String, SendEntry> = store
        .sends(customer)
        .await?
        .into_iter()
        .map(|s| (s.record.idempotency_key.clone(), s))
        .collect();
    // The engine's latest reading of the customer's zone (the profile's, else the store's),
    // else the profile's, else the caller's.
    let profile_zone = journal
        .iter()
        .rev()
        .find_map(|e| e.zone.as_deref().and_then(|z| z.parse::<Tz>().ok()))
        .or_else(|| {
            state
                .as_ref()
                .and_then(|s| s.attr_str("timezone"))
                .and_then(|z| z.parse::<Tz>().ok())
        })
        .unwrap_or(request.zone);
    // For sends logged without their message (`simulate --db` without `--outbox`).
    let address = state
        .as_ref()
        .and_then(|s| s.attr_str("email"))
        .and_then(Mailbox::parse)
        .map(|m| m.address);
    let sends = Sends {
        by_key: sends,
        address,
    };
    let rows = history(customer, &journal, &sends, profile_zone, request.workflow);
    let now = state
        .as_ref()
        .map(|s| now_rows(s, &journal, profile_zone, request))
        .unwrap_or_default();
    Ok(Story {
        customer: customer.to_owned(),
        rows,
        now,
    })
}

/// Whether `workflow` is one the definitions, the journal or the state knows; if not, the
/// error, with the closest known id as a suggestion.
fn known_workflow(
    workflow: &str,
    request: &Request<'_>,
    state: Option<&CustomerState>,
    journal: &[JournalEntry],
) -> Result<(), ExplainError> {
    let mut known: Vec<&str> = request.defined.to_vec();
    known.extend(journal.iter().filter_map(|e| e.workflow.as_deref()));
    if let Some(state) = state {
        known.extend(state.runs.iter().map(|r| r.workflow.as_str()));
        known.extend(state.dates.iter().map(|d| d.workflow.as_str()));
    }
    if known.contains(&workflow) {
        return Ok(());
    }
    known.sort_unstable();
    known.dedup();
    Err(ExplainError::UnknownWorkflow {
        workflow: workflow.to_owned(),
        customer: customer_ref(request.customer).into_owned(),
        suggestion: suggestion(workflow, known),
    })
}

/// The customer's send log, by key, and the address their profile holds now.
struct Sends {
    by_key: HashMap<String, SendEntry>,
    address: Option<String>,
}

/// The rows of the journal, filtered to `workflow`.
fn history(
    customer: &str,
    journal: &[JournalEntry],
    sends: &Sends,
    fallback: Tz,
    workflow: Option<&str>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, entry) in journal.iter().enumerate() {
        let keep = match (workflow, &entry.what) {
            (None, _) => true,
            (Some(w), Happened::EventReceived { .. }) => journal[i + 1..]
                .iter()
                .take_while(|e| !matches!(e.what, Happened::EventReceived { .. }))
                .any(|e| e.at == entry.at && e.workflow.as_deref() == Some(w)),
            (Some(_), Happened::JournalTruncated { .. }) => true,
            (Some(w), _) => entry.workflow.as_deref() == Some(w),
        };
        if keep {
            let zone = entry_zone(journal, i, fallback);
            rows.extend(entry_rows(customer, entry, sends, zone));
        }
    }
    rows
}

/// The zone of entry `i`: its own; for one without (an event received), the next entry's of
/// the same time; else `fallback`.
fn entry_zone(journal: &[JournalEntry], i: usize, fallback: Tz) -> Tz {
    let parse = |e: &JournalEntry| e.zone.as_deref().and_then(|z| z.parse::<Tz>().ok());
    parse(&journal[i])
        .or_else(|| {
            journal[i + 1..]
                .iter()
                .take_while(|e| e.at == journal[i].at)
                .find_map(parse)
        })
        .unwrap_or(fallback)
}

/// The rows of one entry: one, or for a skip whose rule read something, the `rule.checked`
/// row and then the skip's.
fn entry_rows(customer: &str, entry: &JournalEntry, sends: &Sends, zone: Tz) -> Vec<Row> {
    let mut row = Row::new(entry.what.name(), entry.at, zone, customer);
    row.run = entry.run.clone();
    row.step = entry.step.clone();
    row.workflow = entry.workflow.clone();
    let mut before = None;
    match &entry.what {
        Happened::EventReceived {
            event_type,
            event_id,
            ..
        } => {
            row.event_type = Some(event_type.clone());
            row.event_id = Some(event_id.clone());
        }
        Happened::RunStarted => {}
        Happened::RunRefused { reason } | Happened::RunEnded { reason } => {
            row.reason = Some(reason.clone());
        }
        Happened::EmailSent { key, subject, tags } => {
            row.subject = Some(subject.clone());
            row.tags = Some(tags.clone());
            delivery(&mut row, sends, key);
        }
        Happened::EmailSkipped { reason, read } => {
            row.reason = Some(reason.clone());
            if !read.is_empty() {
                let mut rule = row.clone();
                rule.action = "rule.checked".to_owned();
                rule.read = Some(read.clone());
                before = Some(rule);
            }
        }
        Happened::EmailDeferred { until } => row.until = Some(ts(*until)),
        Happened::ProfileUpdated { changes } => row.changes = Some(changes.clone()),
        Happened::WebhookCalled { method, url, .. } => {
            row.url = Some(url.clone());
            row.method = Some(method.clone());
        }
        Happened::ConditionChecked {
            condition,
            result,
            read,
        } => {
            row.condition = Some(condition.clone());
            row.result = Some(*result);
            row.read = (!read.is_empty()).then(|| read.clone());
        }
        Happened::SplitChosen { branch } => row.branch = Some(branch.clone()),
        Happened::WaitStarted { until, event } => {
            row.until = Some(ts(*until));
            row.event = event.clone();
        }
        Happened::JournalTruncated { dropped } => row.dropped = Some(*dropped),
    }
    before.into_iter().chain([row]).collect()
}

/// What became of an email, from its send-log entry, as `simulate` names it: `email.sent`
/// (the mailer took it), `email.failed` (refused for good, or its outcome unknown; with the
/// reason) or `email.pending` (not delivered yet; with the reason and when it is tried again).
/// The recipient is the message's; a send logged without its message (`simulate` without an
/// outbox builds none) names the address the profile holds now. A subject the journal kept
/// with an address taken out is the message's too, when there is one.
fn delivery(row: &mut Row, sends: &Sends, key: &str) {
    let Some(send) = sends.by_key.get(key) else {
        row.action = "email.sent".to_owned();
        row.reason = Some(NOT_IN_SEND_LOG.to_owned());
        return;
    };
    let (to, subject) = recipient_and_subject(&send.record.payload);
    // The journal keeps no address: a subject it kept with one taken out is the message's.
    if !subject.is_empty()
        && row
            .subject
            .as_deref()
            .is_some_and(|s| s.contains(ADDRESS_MARK))
    {
        row.subject = Some(subject);
    }
    row.to = if to.is_empty() {
        sends.address.clone()
    } else {
        Some(to)
    };
    match send.status {
        SendStatus::Sent => row.action = "email.sent".to_owned(),
        SendStatus::Failed | SendStatus::Unknown => {
            row.action = "email.failed".to_owned();
            row.reason = send.reason.clone();
        }
        SendStatus::Pending | SendStatus::Sending => {
            row.action = "email.pending".to_owned();
            row.reason = Some(
                send.reason
                    .clone()
                    .unwrap_or_else(|| "not delivered yet".to_owned()),
            );
            row.until = send.retry_at.map(ts);
        }
    }
}

/// The action of a `state.*` row saying where an active run stands.
pub const STATE_RUN: &str = "state.run";

/// The action of the `state.*` row giving the customer's next timer.
pub const STATE_WAKE: &str = "state.wake";

/// Where each active run stands (`state.run`: its step, `reason` the kind of wait
/// (`wait`, `wait_for` with the awaited `event`, or `deferred` for the send window) and
/// `until`), at `request.now`; then `state.wake` with the next timer.
fn now_rows(
    state: &CustomerState,
    journal: &[JournalEntry],
    zone: Tz,
    request: &Request<'_>,
) -> Vec<Row> {
    let workflow = request.workflow;
    let as_of = request.now;
    let mut rows = Vec::new();
    for run in &state.runs {
        if workflow.is_some_and(|w| w != run.workflow) {
            continue;
        }
        let mut row = Row::new(STATE_RUN, as_of, zone, &state.id);
        row.run = Some(run.id.clone());
        row.workflow = Some(run.workflow.clone());
        row.step = Some(run.step.clone());
        row.until = Some(ts(run.phase.until()));
        let kind = match run.phase {
            Phase::Waiting { .. } => "wait",
            Phase::WaitingFor { .. } => {
                row.event = awaited(journal, &run.id);
                "wait_for"
            }
            Phase::Deferred { .. } => "deferred",
        };
        row.reason = Some(kind.to_owned());
        rows.push(row);
    }
    if let Some(wake) = next_wake(state, workflow) {
        let mut row = Row::new(STATE_WAKE, as_of, zone, &state.id);
        row.until = Some(ts(wake));
        rows.push(row);
    }
    rows
}

/// The customer's next timer (of `workflow`'s runs only, when given).
fn next_wake(state: &CustomerState, workflow: Option<&str>) -> Option<DateTime<Utc>> {
    match workflow {
        None => state.next_wake(),
        Some(w) => state
            .runs
            .iter()
            .filter(|r| r.workflow == w)
            .map(|r| r.phase.until())
            .chain(
                state
                    .dates
                    .iter()
                    .filter(|d| d.workflow == w)
                    .map(|d| d.next_fire),
            )
            .min(),
    }
}

/// The event the run's last `wait_for` awaits, as the journal kept it.
fn awaited(journal: &[JournalEntry], run: &str) -> Option<String> {
    journal.iter().rev().find_map(|e| match &e.what {
        Happened::WaitStarted { event, .. } if e.run.as_deref() == Some(run) => event.clone(),
        _ => None,
    })
}

/// The story for people: one line per row (UTC time, local time, what and why), then "Now".
pub fn text(story: &Story) -> String {
    let mut out = format!("Customer {}\n", story.customer);
    if story.rows.is_empty() {
        out.push_str("  (nothing kept in the journal)\n");
    }
    for row in &story.rows {
        out.push_str(&format!(
            "{}  {}  {}\n",
            row.at,
            local_short(&row.local),
            describe(row)
        ));
    }
    out.push_str("Now:\n");
    if story.now.is_empty() {
        out.push_str("  no active run, no timer\n");
    }
    for row in &story.now {
        out.push_str(&format!("  {}\n", describe(row)));
    }
    out
}

/// `2026-03-03T13:00:00+03:00` as `2026-03-03 13:00 +03:00`.
fn local_short(local: &str) -> String {
    match (local.get(..10), local.get(11..16), local.get(19..)) {
        (Some(date), Some(time), Some(offset)) => format!("{date} {time} {offset}"),
        _ => local.to_owned(),
    }
}

/// A row in words.
fn describe(row: &Row) -> String {
    let place = match (&row.workflow, &row.step) {
        (Some(w), Some(s)) => format!("{w}/{s}: "),
        (Some(w), None) => format!("{w}: "),
        _ => String::new(),
    };
    let run = row.run.as_deref().unwrap_or("-");
    let reason = row.reason.as_deref().unwrap_or("-");
    let until = row.until.as_deref().unwrap_or("-");
    let what = match row.action.as_str() {
        "event.received" => format!(
            "event {} received (id {})",
            row.event_type.as_deref().unwrap_or("-"),
            row.event_id.as_deref().unwrap_or("-")
        ),
        "run.started" => format!("run {run} started"),
        "run.ended" => format!("run {run} ended: {reason}"),
        "run.refused" => format!("run {run} not started: {reason}"),
        "email.sent" | "email.failed" | "email.pending" => email_text(row),
        "rule.checked" => format!("the rule {reason} read {}", read_text(row)),
        "email.skipped" => format!("email skipped: {reason}"),
        "email.deferred" => format!("email held for the send window until {until}"),
        "profile.updated" => format!(
            "profile updated: {}",
            serde_json::Value::Object(row.changes.clone().unwrap_or_default())
        ),
        "webhook.called" => format!(
            "webhook {} {}",
            row.method.as_deref().unwrap_or("-"),
            row.url.as_deref().unwrap_or("-")
        ),
        "condition.checked" => format!(
            "condition `{}` was {}{}",
            row.condition.as_deref().unwrap_or("-"),
            row.result.unwrap_or(false),
            if row.read.is_some() {
                format!(" (read {})", read_text(row))
            } else {
                String::new()
            }
        ),
        "split.chosen" => format!("split: branch {}", row.branch.as_deref().unwrap_or("-")),
        "wait.started" => match &row.event {
            Some(event) => format!("waits for {event} until {until}"),
            None => format!("waits until {until}"),
        },
        "journal.truncated" => format!(
            "{} entries of this input were too large to keep",
            row.dropped.unwrap_or(0)
        ),
        STATE_RUN => match (reason, &row.event) {
            ("wait_for", Some(event)) => format!("run {run} waits for {event} until {until}"),
            ("deferred", _) => {
                format!("run {run} holds an email for the send window until {until}")
            }
            _ => format!("run {run} waits until {until}"),
        },
        STATE_WAKE => format!("next wake: {until}"),
        other => other.to_owned(),
    };
    format!("{place}{what}")
}

/// An email row in words: what became of it, to whom, its subject, and why when it did not
/// leave.
fn email_text(row: &Row) -> String {
    let verb = match row.action.as_str() {
        "email.sent" => "email sent",
        "email.failed" => "email failed",
        _ => "email not delivered yet",
    };
    let mut text = format!(
        "{verb} to {} \"{}\"",
        row.to.as_deref().unwrap_or("(unknown)"),
        row.subject.as_deref().unwrap_or("")
    );
    if let Some(reason) = &row.reason {
        text.push_str(&format!(": {reason}"));
    }
    if row.action == "email.pending"
        && let Some(until) = &row.until
    {
        text.push_str(&format!(", tried again from {until}"));
    }
    text
}

/// A row's `read` as `path = value, ...`.
fn read_text(row: &Row) -> String {
    row.read
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::store::{SendKind, SendRecord};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_532_000 + secs, 0).unwrap()
    }

    fn entry(secs: i64, workflow: Option<&str>, what: Happened) -> JournalEntry {
        JournalEntry {
            at: at(secs),
            workflow: workflow.map(str::to_owned),
            run: workflow.map(|w| format!("r-{w}")),
            step: Some("hello".to_owned()),
            zone: workflow.map(|_| "Europe/Istanbul".to_owned()),
            what,
        }
    }

    fn sent(key: &str) -> Happened {
        Happened::EmailSent {
            key: key.to_owned(),
            subject: "Hello".to_owned(),
            tags: vec![],
        }
    }

    fn send(key: &str, status: SendStatus, payload: &[u8]) -> SendEntry {
        SendEntry {
            record: SendRecord {
                idempotency_key: key.to_owned(),
                customer_id: "c-1".to_owned(),
                workflow: "w".to_owned(),
                step: "hello".to_owned(),
                kind: SendKind::Email,
                category: "marketing".to_owned(),
                tags: vec![],
                at: at(0),
                payload: payload.to_vec(),
            },
            status,
            attempts: 1,
            retry_at: (!status.is_final()).then(|| at(600)),
            message_id: None,
            reason: (status != SendStatus::Sent).then(|| "refused".to_owned()),
        }
    }

    fn sends(entries: Vec<SendEntry>) -> Sends {
        Sends {
            by_key: entries
                .into_iter()
                .map(|s| (s.record.idempotency_key.clone(), s))
                .collect(),
            address: Some("now@example.com".to_owned()),
        }
    }

    #[test]
    fn an_email_says_what_became_of_it_from_the_send_log() {
        let mime = b"To: Ayse <ayse@example.com>\r\nSubject: Hello\r\n\r\nbody";
        let log = sends(vec![
            send("k-sent", SendStatus::Sent, mime),
            send("k-failed", SendStatus::Failed, mime),
            send("k-unknown", SendStatus::Unknown, mime),
            send("k-pending", SendStatus::Pending, mime),
            send("k-bare", SendStatus::Sent, b""),
        ]);
        let row = |key: &str| {
            let e = entry(0, Some("w"), sent(key));
            entry_rows("c-1", &e, &log, Tz::UTC).remove(0)
        };
        let r = row("k-sent");
        assert_eq!((r.action.as_str(), r.reason), ("email.sent", None));
        assert_eq!(r.to.as_deref(), Some("ayse@example.com"));
        assert_eq!(r.tags, Some(vec![]));
        for key in ["k-failed", "k-unknown"] {
            let r = row(key);
            assert_eq!(r.action, "email.failed");
            assert_eq!(r.reason.as_deref(), Some("refused"));
        }
        let r = row("k-pending");
        assert_eq!(r.action, "email.pending");
        assert_eq!(r.until, Some(ts(at(600))));
        // Logged without its message: the profile's address now.
        assert_eq!(row("k-bare").to.as_deref(), Some("now@example.com"));
        // A subject kept with its address taken out is the message's; another is the journal's.
        let redacted = |key: &str| {
            let what = Happened::EmailSent {
                key: key.to_owned(),
                subject: format!("Hello {ADDRESS_MARK}"),
                tags: vec![],
            };
            let e = entry(0, Some("w"), what);
            entry_rows("c-1", &e, &log, Tz::UTC).remove(0).subject
        };
        assert_eq!(redacted("k-sent").as_deref(), Some("Hello"));
        assert_eq!(redacted("k-bare").as_deref(), Some("Hello [address]"));
        assert_eq!(redacted("k-gone").as_deref(), Some("Hello [address]"));
        let r = row("k-gone");
        assert_eq!(r.action, "email.sent");
        assert_eq!(r.reason.as_deref(), Some(NOT_IN_SEND_LOG));
        assert_eq!(r.to, None);
    }

    #[test]
    fn a_skip_that_read_something_is_preceded_by_its_reading() {
        let read = serde_json::Map::from_iter([("accepts_marketing".into(), false.into())]);
        let e = entry(
            0,
            Some("w"),
            Happened::EmailSkipped {
                reason: "no_consent".into(),
                read,
            },
        );
        let rows = entry_rows("c-1", &e, &sends(vec![]), Tz::UTC);
        let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["rule.checked", "email.skipped"]);
        assert!(rows[1].read.is_none());
        assert_eq!(
            describe(&rows[0]),
            "w/hello: the rule no_consent read accepts_marketing = false"
        );
        let bare = entry(
            0,
            Some("w"),
            Happened::EmailSkipped {
                reason: "invalid_address".into(),
                read: serde_json::Map::new(),
            },
        );
        assert_eq!(entry_rows("c-1", &bare, &sends(vec![]), Tz::UTC).len(), 1);
    }

    #[test]
    fn a_workflow_filter_must_name_a_workflow_defined_or_in_the_story() {
        let journal = vec![entry(0, Some("win-back"), Happened::RunStarted)];
        let request = |workflow, defined| Request {
            customer: "c-1",
            workflow: Some(workflow),
            defined,
            zone: Tz::UTC,
            now: at(0),
        };
        // In the journal only (a removed workflow), or defined only: known.
        assert!(known_workflow("win-back", &request("win-back", &[]), None, &journal).is_ok());
        let defined = ["welcome-series"];
        let asked = request("welcome-series", &defined);
        assert!(known_workflow("welcome-series", &asked, None, &journal).is_ok());
        let asked = request("welcome-seres", &defined);
        let err = known_workflow("welcome-seres", &asked, None, &journal).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no workflow `welcome-seres` in the workflows or customer c-1's story; \
             did you mean `welcome-series`?"
        );
    }

    #[test]
    fn a_workflow_filter_keeps_its_rows_and_the_events_that_moved_it() {
        let received = |id: &str| Happened::EventReceived {
            event_type: "order.placed".into(),
            event_id: id.into(),
            bounce_type: None,
        };
        let journal = vec![
            entry(0, None, received("e-1")),
            entry(0, Some("a"), Happened::RunStarted),
            entry(60, None, received("e-2")),
            entry(60, Some("b"), Happened::RunStarted),
        ];
        let rows = history("c-1", &journal, &sends(vec![]), Tz::UTC, Some("b"));
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.action.as_str(),
                    r.event_id.as_deref(),
                    r.workflow.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("event.received", Some("e-2"), None),
                ("run.started", None, Some("b"))
            ]
        );
        // An event takes the zone of what followed it.
        assert_eq!(rows[0].local, "2026-03-03T13:01:00+03:00");
        assert_eq!(
            history("c-1", &journal, &sends(vec![]), Tz::UTC, None).len(),
            4
        );
    }
}
