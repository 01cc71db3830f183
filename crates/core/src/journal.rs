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
//! entry, which erasure removes with the rest. Every entry passes through [`redact`] when it is
//! built (the engine's, and the runner's `event.received`), which works on the values, wherever
//! they come from: the value of any JSON object's `email` key becomes [`ADDRESS_NOT_KEPT`], and
//! in every string the entry carries from customer data (subjects, webhook URLs, the values a
//! condition or rule read, profile changes, event ids and types, object keys) each email
//! address becomes [`ADDRESS_MARK`] ([`redact_text`] says how one is found: from each `@` or
//! `%40`, over the characters a local part and a domain may hold, so `Bob <bob@example.com>`,
//! `mailto:bob@example.com`, `“bob@example.com”` and `bob%40example.com` are caught). Limits:
//! an address written with spaces or quotes inside its local part (`"bob smith"@example.com`),
//! or otherwise encoded, is not; where it errs it takes more than the address. What the
//! workflow files themselves say (a condition's text, step ids) is kept as written.

use std::borrow::Cow;

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

/// The `bounce_type` of an `email.bounced` event that is a permanent bounce: the engine then
/// suppresses all mail to the customer, and `nudge report` counts it as bounced (as SES's
/// counts hold permanent bounces only).
pub const HARD_BOUNCE: &str = "hard";

/// What the journal keeps of the value of an `email` key (an address: only that there was
/// one).
pub const ADDRESS_NOT_KEPT: &str = "(an address: not kept)";

/// What the journal keeps of an email address inside a text: `Receipt for [address]`.
pub const ADDRESS_MARK: &str = "[address]";

/// `entry` as the journal keeps it: with no address (see the module's documentation).
pub fn redact(mut entry: JournalEntry) -> JournalEntry {
    let text = |s: &mut String| {
        if let Cow::Owned(clean) = redact_text(s) {
            *s = clean;
        }
    };
    match &mut entry.what {
        Happened::EventReceived {
            event_type,
            event_id,
            bounce_type,
        } => {
            text(event_type);
            text(event_id);
            if let Some(b) = bounce_type {
                text(b);
            }
        }
        Happened::EmailSent { subject, .. } => text(subject),
        Happened::WebhookCalled { url, .. } => text(url),
        Happened::EmailSkipped { read, .. } | Happened::ConditionChecked { read, .. } => {
            redact_map(read)
        }
        Happened::ProfileUpdated { changes } => redact_map(changes),
        Happened::RunStarted
        | Happened::RunRefused { .. }
        | Happened::RunEnded { .. }
        | Happened::EmailDeferred { .. }
        | Happened::SplitChosen { .. }
        | Happened::JournalTruncated { .. }
        | Happened::WaitStarted { .. } => {}
    }
    entry
}

/// `text` with every email address in it replaced by [`ADDRESS_MARK`]; borrowed when there is
/// none. Found from each `@` (or `%40`, its URL encoding): the address reaches left over the
/// characters a local part may hold (letters and digits of any script, and RFC 5322's
/// `.!#$%&'*+-/=?^_`{|}~`) and right over a domain's (letters and digits of any script, `-`
/// and `.`, or an `[address literal]`), trailing dots and hyphens left out (a sentence's end).
/// It is an address when both sides are non-empty and the domain has a dot (or is a literal):
/// no stricter check, so that an address the standard would refuse (a local part over 64
/// characters, say) is still not kept. So `“ayse@example.com”`, `ayse@example.com’s`,
/// `mailto:ayse@example.com`, `<patrick.o'brien@example.com>` and `ayse%40example.com` all
/// lose their address, and `@handle` or `user@localhost` stay. Where it errs, it takes too
/// much: a URL's `/`, `?`, `=` and `&` are local-part characters too, so before a plain `@`
/// they are taken with the address (before `%40`, a URL's encoding, they end it).
pub fn redact_text(text: &str) -> Cow<'_, str> {
    if !text.contains('@') && !contains_encoded_at(text) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = String::with_capacity(text.len());
    // Characters before `copied` are in `out` already.
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        let at = at_sign_len(&chars, i);
        if at == 0 {
            i += 1;
            continue;
        }
        // In a URL (`%40`), its delimiters end the local part: `?email=ayse%40example.com`.
        let url = at == 3;
        let mut start = i;
        while start > copied
            && is_local_char(chars[start - 1].1)
            && !(url && "/?=&#".contains(chars[start - 1].1))
        {
            start -= 1;
        }
        // A local part does not start with a dot, and a quote or brace before it quotes it:
        // `'ayse@example.com'`, `{ayse@example.com}` (an apostrophe inside stays: `o'brien`).
        while start < i && ".'`{|".contains(chars[start].1) {
            start += 1;
        }
        let end = domain_end(&chars, i + at);
        if start < i && end > i + at {
            out.push_str(&text[byte(copied)..byte(start)]);
            out.push_str(ADDRESS_MARK);
            copied = end;
            i = end;
        } else {
            i += at;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[byte(copied)..]);
    Cow::Owned(out)
}

/// Whether `text` holds `%40` (in either case).
fn contains_encoded_at(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%40"))
}

/// How many characters the `@` at `i` takes: 1 for `@`, 3 for `%40`, 0 when there is none.
fn at_sign_len(chars: &[(usize, char)], i: usize) -> usize {
    match chars[i].1 {
        '@' => 1,
        '%' if chars.get(i + 1).map(|c| c.1) == Some('4')
            && chars.get(i + 2).map(|c| c.1) == Some('0') =>
        {
            3
        }
        _ => 0,
    }
}

/// A character a local part may hold (RFC 5322's atext and dots, any script's letters and
/// digits as RFC 6531 allows).
fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

/// Where the domain that starts at `from` ends (exclusive), or `from` when there is no
/// domain: an `[address literal]`, or labels of letters, digits and `-` with at least one dot
/// between them (trailing dots and hyphens not included).
fn domain_end(chars: &[(usize, char)], from: usize) -> usize {
    if chars.get(from).map(|c| c.1) == Some('[') {
        return chars[from..]
            .iter()
            .take(64)
            .position(|c| c.1 == ']')
            .map_or(from, |close| from + close + 1);
    }
    let mut end = from;
    while end < chars.len() && (chars[end].1.is_alphanumeric() || matches!(chars[end].1, '-' | '.'))
    {
        end += 1;
    }
    while end > from && matches!(chars[end - 1].1, '.' | '-') {
        end -= 1;
    }
    let has_dot = chars[from..end].iter().any(|c| c.1 == '.');
    let starts_well = chars.get(from).is_some_and(|c| c.1.is_alphanumeric());
    if has_dot && starts_well { end } else { from }
}

/// `value` with no address: an object's `email` key's value (unless `null`) becomes
/// [`ADDRESS_NOT_KEPT`]; strings and object keys go through [`redact_text`].
pub fn redact_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = redact_text(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => redact_map(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// [`redact_value`] of each value of `map`, and of its keys (an `email` key's value, and a
/// dotted path's ending in `.email`, becomes [`ADDRESS_NOT_KEPT`]).
fn redact_map(map: &mut Map<String, Value>) {
    let dirty = map.keys().any(|k| matches!(redact_text(k), Cow::Owned(_)));
    if dirty {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| (redact_text(&k).into_owned(), v))
            .collect();
    }
    for (key, value) in map.iter_mut() {
        let named_email = key.eq_ignore_ascii_case("email")
            || key
                .rsplit('.')
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case("email"));
        if named_email && !value.is_null() {
            *value = Value::String(ADDRESS_NOT_KEPT.to_owned());
        } else {
            redact_value(value);
        }
    }
}

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
        /// An `email.bounced` event's `bounce_type`, as the event gave it (only [`HARD_BOUNCE`]
        /// is a bounce that suppresses, and that `nudge report` counts); `None` for other
        /// events, for a bounce without one, and in entries stored before it was kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bounce_type: Option<String>,
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
///
/// Packed (see `Packed`): an entry leaves out its time, zone, workflow and run when they are
/// the previous entry's, and gives its time as unix milliseconds, so that a commit's entries
/// (which mostly share all four) take about half the bytes of [`JournalEntry`]'s JSON.
pub fn encode(entries: &[JournalEntry]) -> Vec<u8> {
    if entries.is_empty() {
        return Vec::new();
    }
    // Room for the marker, its brackets and commas.
    const RESERVE: usize = 256;
    let mut out = b"[".to_vec();
    let mut dropped = 0u64;
    let mut prev: Option<&JournalEntry> = None;
    for entry in entries {
        let Ok(json) = serde_json::to_vec(&Packed::of(entry, prev)) else {
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
        prev = Some(entry);
    }
    if dropped > 0 {
        let marker = JournalEntry {
            at: prev.map_or(entries[0].at, |p| p.at),
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
        out.extend_from_slice(&serde_json::to_vec(&Packed::of(&marker, prev)).unwrap_or_default());
    }
    out.push(b']');
    out
}

/// The entries [`encode`] made (empty bytes: none).
pub fn decode(bytes: &[u8]) -> Result<Vec<JournalEntry>, serde_json::Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let packed: Vec<Packed> = serde_json::from_slice(bytes)?;
    let mut entries: Vec<JournalEntry> = Vec::with_capacity(packed.len());
    for p in packed {
        let prev = entries.last();
        let at = match p.t {
            Some(ms) => DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| serde::de::Error::custom("a journal time out of range"))?,
            None => prev
                .map(|e| e.at)
                .ok_or_else(|| serde::de::Error::custom("a first journal entry without a time"))?,
        };
        let inherit = |field: Option<Option<String>>, of: fn(&JournalEntry) -> &Option<String>| {
            field.unwrap_or_else(|| prev.and_then(|e| of(e).clone()))
        };
        entries.push(JournalEntry {
            at,
            workflow: inherit(p.workflow, |e| &e.workflow),
            run: inherit(p.run, |e| &e.run),
            step: p.step,
            zone: inherit(p.zone, |e| &e.zone),
            what: p.what,
        });
    }
    Ok(entries)
}

/// An entry as [`encode`] keeps it: `t` (unix milliseconds), `workflow`, `run` and `zone` are
/// left out when they are the previous entry's, and `null` when the entry has none while the
/// previous one had.
#[derive(Serialize, Deserialize)]
struct Packed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    workflow: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    run: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    zone: Option<Option<String>>,
    #[serde(flatten)]
    what: Happened,
}

impl Packed {
    /// `entry` packed against the entry kept before it.
    fn of(entry: &JournalEntry, prev: Option<&JournalEntry>) -> Packed {
        let changed = |field: &Option<String>, of: fn(&JournalEntry) -> &Option<String>| {
            let before = prev.and_then(|p| of(p).as_ref());
            (before != field.as_ref()).then(|| field.clone())
        };
        Packed {
            t: (prev.map(|p| p.at) != Some(entry.at)).then(|| entry.at.timestamp_millis()),
            workflow: changed(&entry.workflow, |e| &e.workflow),
            run: changed(&entry.run, |e| &e.run),
            step: entry.step.clone(),
            zone: changed(&entry.zone, |e| &e.zone),
            what: entry.what.clone(),
        }
    }
}

/// A field that is present: its value, `null` as `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
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
                    bounce_type: None,
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

    #[test]
    fn a_bounce_keeps_its_type_and_entries_stored_before_read_as_none() {
        let bounce = JournalEntry {
            what: Happened::EventReceived {
                event_type: "email.bounced".into(),
                event_id: "e-9".into(),
                bounce_type: Some(HARD_BOUNCE.into()),
            },
            ..entry(Happened::RunStarted)
        };
        let bytes = encode(std::slice::from_ref(&bounce));
        assert!(
            String::from_utf8_lossy(&bytes).contains(r#""bounce_type":"hard""#),
            "{bytes:?}"
        );
        assert_eq!(decode(&bytes).unwrap(), [bounce]);
        // As a store kept it before the field: no bounce type, and nothing written for none.
        let old = br#"[{"t":1772532000000,"action":"event.received","event_type":"email.bounced","event_id":"e-9"}]"#;
        let decoded = decode(old).unwrap();
        assert_eq!(
            decoded[0].what,
            Happened::EventReceived {
                event_type: "email.bounced".into(),
                event_id: "e-9".into(),
                bounce_type: None,
            }
        );
        assert_eq!(encode(&decoded), old.to_vec());
    }

    #[test]
    fn addresses_in_texts_are_marked_wherever_they_stand() {
        let cases = [
            ("Receipt for ayse@example.com", "Receipt for [address]"),
            ("Ayşe <ayse@example.com>, hi", "Ayşe <[address]>, hi"),
            ("mailto:ayse@example.com", "mailto:[address]"),
            (
                "https://hooks.example.com/x?email=ayse%40example.com&id=1",
                "https://hooks.example.com/x?email=[address]&id=1",
            ),
            ("Write to help@shop.example.com.", "Write to [address]."),
            ("('a.b+tag@example.co.uk')", "('[address]')"),
            // Typographic punctuation, markup and invisible characters around it.
            ("“ayse@example.com”", "“[address]”"),
            ("ayse@example.com’s order", "[address]’s order"),
            ("«ayse@example.com»", "«[address]»"),
            ("ayse@example.com—thanks", "[address]—thanks"),
            ("ayse@example.com… or", "[address]… or"),
            ("ayse@example.com。", "[address]。"),
            ("ayse@example.com\u{200b}!", "[address]\u{200b}!"),
            ("*ayse@example.com*", "[address]*"),
            ("ayse@example.com- ok", "[address]- ok"),
            // Local parts the standard allows, whole.
            ("patrick.o'brien@example.com", "[address]"),
            ("ayse.yilmaz=work@example.com", "[address]"),
            ("first/last@example.com", "[address]"),
            ("ayse&co@example.com", "[address]"),
            // Over 64 characters, an address literal, another script, upper case.
            (&format!("{}@example.com x", "a".repeat(80)), "[address] x"),
            ("ayse@[192.0.2.1]", "[address]"),
            ("ayşe@örnek.com.tr", "[address]"),
            ("AYSE@EXAMPLE.COM", "[address]"),
            ("two: a@b.co, c@d.co", "two: [address], [address]"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_text(text), expected, "{text}");
        }
        for kept in [
            "No address here",
            "@handle",
            "a@",
            "50% off @ 9am",
            "%40",
            "user@localhost",
            "a@.com",
        ] {
            assert!(matches!(redact_text(kept), Cow::Borrowed(_)), "{kept}");
        }
    }

    proptest::proptest! {
        /// Whatever stands around an address, it is not kept; and no text makes the
        /// redaction panic (it cuts at character boundaries only).
        #[test]
        fn no_surroundings_keep_an_address(
            before in "[ a-z.'\"<>(\\[{*_=/&%#—“”’…«»。\u{200b}-]{0,6}",
            after in "[ a-z.'\"<>)\\]}*_=/&%#—“”’…«»。\u{200b}-]{0,6}",
            any in "\\PC{0,40}",
        ) {
            let text = format!("{before}ayse.o'brien@example.com{after}");
            let redacted = redact_text(&text);
            proptest::prop_assert!(!redacted.contains("@example.com"), "{text} -> {redacted}");
            proptest::prop_assert!(!redacted.contains("brien@"), "{text} -> {redacted}");
            let _ = redact_text(&any);
            let _ = redact_text(&format!("{any}@{any}.{any}%40{any}"));
        }
    }

    #[test]
    fn an_entry_keeps_no_address_in_what_it_read_rendered_or_changed() {
        let customer = serde_json::json!({
            "email": "ayse@example.com",
            "first_name": "Ayşe",
            "notes": ["ask ayse@example.com"],
            "emails": {"ayse@example.com": true},
        });
        let read = Map::from_iter([
            ("customer".into(), customer),
            (
                "customer.email".into(),
                Value::String("not even valid".into()),
            ),
            ("customer.phone".into(), Value::Null),
        ]);
        let checked = redact(entry(Happened::ConditionChecked {
            condition: "customer | length > 0 or customer.email == 'vip@example.com'".into(),
            result: true,
            read,
        }));
        let Happened::ConditionChecked {
            condition, read, ..
        } = &checked.what
        else {
            panic!("{checked:?}");
        };
        // The workflow's own text is kept as written.
        assert!(condition.contains("vip@example.com"));
        assert_eq!(
            Value::Object(read.clone()),
            serde_json::json!({
                "customer": {
                    "email": ADDRESS_NOT_KEPT,
                    "first_name": "Ayşe",
                    "notes": ["ask [address]"],
                    "emails": {"[address]": true},
                },
                "customer.email": ADDRESS_NOT_KEPT,
                "customer.phone": null,
            })
        );
        let sent = redact(entry(Happened::EmailSent {
            key: "r-1.receipt".into(),
            subject: "Receipt for ayse@example.com".into(),
            tags: vec![],
        }));
        let hook = redact(entry(Happened::WebhookCalled {
            key: "r-1.hook".into(),
            method: "POST".into(),
            url: "https://hooks.example.com/u/ayse@example.com".into(),
        }));
        let updated = redact(entry(Happened::ProfileUpdated {
            changes: Map::from_iter([("email".into(), "ayse@example.com".into())]),
        }));
        let received = redact(JournalEntry {
            what: Happened::EventReceived {
                event_type: "order.placed".into(),
                event_id: "guest:ayse@example.com:1".into(),
                bounce_type: None,
            },
            ..entry(Happened::RunStarted)
        });
        for e in [&checked, &sent, &hook, &updated, &received] {
            let json = serde_json::to_string(e).unwrap();
            assert!(!json.contains("ayse@"), "{json}");
        }
        assert_eq!(
            sent.what,
            Happened::EmailSent {
                key: "r-1.receipt".into(),
                subject: "Receipt for [address]".into(),
                tags: vec![],
            }
        );
        // What has none is unchanged.
        let plain = entry(Happened::RunEnded {
            reason: "goal".into(),
        });
        assert_eq!(redact(plain.clone()), plain);
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

    #[test]
    fn packing_leaves_out_what_the_previous_entry_said_and_decodes_it_back() {
        let event = JournalEntry {
            at: DateTime::from_timestamp_millis(1_772_532_000_000).unwrap(),
            workflow: None,
            run: None,
            step: None,
            zone: None,
            what: Happened::EventReceived {
                event_type: "order.placed".into(),
                event_id: "e-1".into(),
                bounce_type: None,
            },
        };
        let later = JournalEntry {
            at: DateTime::from_timestamp_millis(1_772_532_000_001).unwrap(),
            ..entry(Happened::RunStarted)
        };
        let entries = vec![
            event.clone(),
            entry(Happened::RunStarted),
            entry(Happened::RunEnded {
                reason: "goal".into(),
            }),
            later,
            event,
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).unwrap(), entries);
        let text = String::from_utf8(bytes).unwrap();
        // The third entry repeats nothing of the second; the last clears what the one
        // before it had.
        assert!(
            text.contains(r#"{"step":"s","action":"run.ended","reason":"goal"}"#),
            "{text}"
        );
        assert!(text.contains(r#""workflow":null,"run":null"#), "{text}");
        let plain = serde_json::to_vec(&entries).unwrap();
        assert!(
            text.len() * 10 < plain.len() * 8,
            "{} vs {}",
            text.len(),
            plain.len()
        );
        assert!(
            decode(b"[{\"action\":\"run.started\"}]").is_err(),
            "no time at all"
        );
    }
}
