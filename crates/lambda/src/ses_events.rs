//! The `ses-events` function: what SES reports about the mail Nudge sent, through EventBridge.
//!
//! The configuration set's event destination publishes every email event to the account's
//! default bus (`source` `aws.ses`, `detail-type` such as `Email Bounced`, `Email Complaint
//! Received`, `Email Delivered`, `Email Opened`, `Email Clicked`); a rule hands them to this
//! function, one event per invocation. `detail` is SES's event record: `eventType`
//! (`Bounce`, `Complaint`, `Delivery`, `Open`, `Click`, `Send`, ...), `mail` (with `tags`, a map
//! from tag name to a list of values) and one object for the event type.
//!
//! What it does, and guarantees:
//! - **Suppression.** A permanent bounce (`bounceType` `Permanent`) and a complaint suppress
//!   each address they name: `Store::suppress(address_key(address), "hard_bounce" |
//!   "complaint", at)`. The store keeps only the address's hash; the address is never logged,
//!   never put in an error, and a dead letter's body has it replaced by its hash (see
//!   [`redact`]). A transient or undetermined bounce suppresses nothing and counts nothing.
//! - **Counting.** Delivered, opened, clicked, bounced (permanent only) and complained are
//!   counted per workflow step (`nudge-workflow`, `nudge-step` tags) with
//!   `Store::record_feedback`, keyed by `ses:` and the SES event's own identity (a hash of its
//!   message id, type, record time and feedback id or link; the EventBridge id when the
//!   message id is missing): SES's event destinations and EventBridge both deliver at least
//!   once, and a republished SES event has a new EventBridge id, yet counts once. Every open
//!   and every click event counts (they are events, not distinct readers).
//! - **Order.** The suppression is written before the count, so a retry after a failure in
//!   between suppresses again (harmless: the first suppression is kept) and then counts.
//! - **Other mail.** An event of an email without Nudge's `nudge-workflow` and `nudge-step`
//!   tags (other mail of the account), or sent with a configuration set other than the
//!   deployment's `NUDGE_CONFIGURATION_SET` (another stack of the account), is ignored, and so are the event types Nudge does not
//!   count (`Send`, `Reject`, `DeliveryDelay`, `Rendering Failure`, `Subscription`, transient
//!   bounces).
//! - **Malformed input** (not JSON, not an SES event, a field of the wrong type, a bounce
//!   without recipients) is kept as a dead letter in the store (`ingest::dead_letter`) and
//!   the invocation succeeds; nothing here panics on any input. A store failure fails the
//!   invocation, which Lambda retries.
//!
//! The runner reads the suppressions back when it decides an email to an address (sending
//! rule 2): the next email to a suppressed address, of any category, is skipped as
//! `suppressed`.
//!
//! Limits: a body that is not JSON at all never reaches the handler (the Lambda runtime
//! refuses it and the invocation fails into the on-failure destination). Counts are per
//! event, not per reader: a mail client that fetches images twice opens twice.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use nudge_core::store::{Feedback, FeedbackKind, Store, address_key};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::ingest::{self, Handled, HandlerError};

/// The `source` of SES's events on EventBridge.
pub const SOURCE: &str = "aws.ses";
/// The dead letters' `source` for this function's inputs.
pub const DEAD_LETTER_SOURCE: &str = "ses-events";
/// The prefix of a feedback id: `ses:` and the SES event's identity ([`SesEvent::identity`]),
/// else the EventBridge event id.
pub const FEEDBACK_ID_PREFIX: &str = "ses:";
/// The message tag naming the workflow (as `nudge_aws::ses::tags` sets it).
pub const TAG_WORKFLOW: &str = "nudge-workflow";
/// The message tag naming the step.
pub const TAG_STEP: &str = "nudge-step";
/// The tag SES adds with the configuration set the email was sent with.
pub const TAG_CONFIGURATION_SET: &str = "ses:configuration-set";

/// The suppression reason of a permanent bounce (the runner reads it back).
pub const REASON_HARD_BOUNCE: &str = nudge_core::store::SUPPRESSED_HARD_BOUNCE;
/// The suppression reason of a complaint (the runner reads it back).
pub const REASON_COMPLAINT: &str = nudge_core::store::SUPPRESSED_COMPLAINT;

/// Why an input is not a usable SES event. Names fields and types, never a value (an address
/// may be anywhere in the event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    NotJson(String),
    /// A required field is missing or of the wrong type.
    #[error("`{field}` is missing or not {expected}")]
    Field {
        /// The field's path.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `source` is not `aws.ses`: the rule sent this function something else.
    #[error("`source` is not `aws.ses`")]
    NotSes,
    /// A bounce or complaint without a recipient to suppress.
    #[error("`{0}` names no recipient")]
    NoRecipient(&'static str),
}

/// What an SES event is about, as far as Nudge cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesKind {
    /// A bounce; `permanent` for `bounceType: Permanent`.
    Bounce {
        /// Whether the bounce is permanent (a hard bounce).
        permanent: bool,
    },
    /// A complaint.
    Complaint,
    /// Delivered to the receiving server.
    Delivery,
    /// Opened.
    Open,
    /// A link was clicked.
    Click,
    /// Any other `eventType` (`Send`, `Reject`, `DeliveryDelay`, ...): not counted.
    Other(String),
}

/// One SES event, parsed. Its `Debug` output leaves out the recipients' addresses.
#[derive(Clone, PartialEq, Eq)]
pub struct SesEvent {
    /// The EventBridge event id.
    pub id: String,
    /// What identifies the SES event itself whatever EventBridge event carries it (a hash of
    /// its message id, type, record time and feedback id or link), when the message id is
    /// known: what it is counted once by.
    pub identity: Option<String>,
    /// What happened.
    pub kind: SesKind,
    /// When it happened: the event record's own timestamp, else the envelope's `time`.
    pub at: DateTime<Utc>,
    /// The `nudge-workflow` and `nudge-step` tags, when the email carries both.
    pub step: Option<(String, String)>,
    /// The `ses:configuration-set` tag, when present.
    pub configuration_set: Option<String>,
    /// The bounced or complaining recipients' addresses (empty for other kinds).
    pub recipients: Vec<String>,
}

impl std::fmt::Debug for SesEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesEvent")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("at", &self.at)
            .field("step", &self.step)
            .field("configuration_set", &self.configuration_set)
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

impl SesEvent {
    /// The feedback kind it counts as, if it counts.
    pub fn feedback_kind(&self) -> Option<FeedbackKind> {
        match self.kind {
            SesKind::Bounce { permanent: true } => Some(FeedbackKind::Bounced),
            SesKind::Bounce { permanent: false } | SesKind::Other(_) => None,
            SesKind::Complaint => Some(FeedbackKind::Complained),
            SesKind::Delivery => Some(FeedbackKind::Delivered),
            SesKind::Open => Some(FeedbackKind::Opened),
            SesKind::Click => Some(FeedbackKind::Clicked),
        }
    }

    /// The suppression reason it gives its recipients, if any.
    pub fn suppression(&self) -> Option<&'static str> {
        match self.kind {
            SesKind::Bounce { permanent: true } => Some(REASON_HARD_BOUNCE),
            SesKind::Complaint => Some(REASON_COMPLAINT),
            _ => None,
        }
    }
}

/// The event id of `text`, when it is a JSON object with a string `id` (for dead letters).
fn readable_id(value: &Value) -> Option<String> {
    value.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// Parses one EventBridge event carrying an SES event record.
pub fn parse(text: &str) -> Result<SesEvent, ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message names a position and a category, never the input.
        ParseError::NotJson(e.to_string())
    })?;
    parse_value(&value)
}

fn field<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &'static str,
    expected: &'static str,
) -> Result<&'v Value, ParseError> {
    map.get(name).ok_or(ParseError::Field {
        field: path,
        expected,
    })
}

fn object<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &'static str,
) -> Result<&'v Map<String, Value>, ParseError> {
    field(map, name, path, "an object")?
        .as_object()
        .ok_or(ParseError::Field {
            field: path,
            expected: "an object",
        })
}

fn string<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &'static str,
) -> Result<&'v str, ParseError> {
    field(map, name, path, "a string")?
        .as_str()
        .ok_or(ParseError::Field {
            field: path,
            expected: "a string",
        })
}

fn time(text: &str, path: &'static str) -> Result<DateTime<Utc>, ParseError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ParseError::Field {
            field: path,
            expected: "an RFC 3339 time",
        })
}

/// [`parse`] on an already parsed value.
pub fn parse_value(value: &Value) -> Result<SesEvent, ParseError> {
    let envelope = value
        .as_object()
        .ok_or_else(|| ParseError::NotJson("the event is not an object".into()))?;
    let id = string(envelope, "id", "id")?;
    if id.is_empty() {
        return Err(ParseError::Field {
            field: "id",
            expected: "a non-empty string",
        });
    }
    if string(envelope, "source", "source")? != SOURCE {
        return Err(ParseError::NotSes);
    }
    let envelope_time = time(string(envelope, "time", "time")?, "time")?;
    let detail = object(envelope, "detail", "detail")?;
    let event_type = string(detail, "eventType", "detail.eventType")?;
    let mail = object(detail, "mail", "detail.mail")?;
    let step = tag(mail, TAG_WORKFLOW)?.zip(tag(mail, TAG_STEP)?);
    let configuration_set = tag(mail, TAG_CONFIGURATION_SET)?;

    let (kind, record, recipients) = match event_type {
        "Bounce" => {
            let bounce = object(detail, "bounce", "detail.bounce")?;
            let bounce_type = string(bounce, "bounceType", "detail.bounce.bounceType")?;
            let permanent = bounce_type == "Permanent";
            let recipients = recipients(
                bounce,
                "bouncedRecipients",
                "detail.bounce.bouncedRecipients",
                "detail.bounce.bouncedRecipients[].emailAddress",
            )?;
            (SesKind::Bounce { permanent }, Some(bounce), recipients)
        }
        "Complaint" => {
            let complaint = object(detail, "complaint", "detail.complaint")?;
            let recipients = recipients(
                complaint,
                "complainedRecipients",
                "detail.complaint.complainedRecipients",
                "detail.complaint.complainedRecipients[].emailAddress",
            )?;
            (SesKind::Complaint, Some(complaint), recipients)
        }
        "Delivery" => (
            SesKind::Delivery,
            Some(object(detail, "delivery", "detail.delivery")?),
            Vec::new(),
        ),
        "Open" => (
            SesKind::Open,
            Some(object(detail, "open", "detail.open")?),
            Vec::new(),
        ),
        "Click" => (
            SesKind::Click,
            Some(object(detail, "click", "detail.click")?),
            Vec::new(),
        ),
        other => (SesKind::Other(other.to_owned()), None, Vec::new()),
    };
    let at = match record.and_then(|r| r.get("timestamp")) {
        None => envelope_time,
        Some(Value::String(t)) => time(t, "detail.<event>.timestamp")?,
        Some(_) => {
            return Err(ParseError::Field {
                field: "detail.<event>.timestamp",
                expected: "a string",
            });
        }
    };
    // What SES itself would publish again (its event destinations deliver at least once,
    // each time under a new EventBridge id): the message, the event's type and its record's
    // own time (and, for a bounce or a complaint, its feedback id; for a click, the link),
    // hashed, since the link may carry anything.
    let identity = mail
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(|message| {
            let mut hash = Sha256::new();
            for part in [
                message,
                event_type,
                record
                    .and_then(|r| r.get("timestamp"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                record
                    .and_then(|r| r.get("feedbackId").or_else(|| r.get("link")))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ] {
                hash.update(part.as_bytes());
                hash.update([0]);
            }
            URL_SAFE_NO_PAD.encode(hash.finalize())
        });
    Ok(SesEvent {
        id: id.to_owned(),
        identity,
        kind,
        at,
        step,
        configuration_set,
        recipients,
    })
}

/// The first value of the tag `name` of `mail`: `None` when absent, an error when `tags` is
/// not a map of lists of strings.
fn tag(mail: &Map<String, Value>, name: &str) -> Result<Option<String>, ParseError> {
    let bad = ParseError::Field {
        field: "detail.mail.tags",
        expected: "an object of lists of strings",
    };
    let tags = match mail.get("tags") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(tags)) => tags,
        Some(_) => return Err(bad),
    };
    match tags.get(name) {
        None => Ok(None),
        Some(Value::Array(values)) => match values.as_slice() {
            [] => Ok(None),
            [Value::String(v), ..] if !v.is_empty() => Ok(Some(v.clone())),
            _ => Err(bad),
        },
        Some(_) => Err(bad),
    }
}

/// The addresses of `record[list][].emailAddress`: at least one.
fn recipients(
    record: &Map<String, Value>,
    list: &str,
    path: &'static str,
    address_path: &'static str,
) -> Result<Vec<String>, ParseError> {
    let items = field(record, list, path, "a list")?
        .as_array()
        .ok_or(ParseError::Field {
            field: path,
            expected: "a list",
        })?;
    let mut addresses = Vec::with_capacity(items.len());
    for item in items {
        let address = item
            .get("emailAddress")
            .and_then(Value::as_str)
            .map(bare_address)
            .filter(|a| !a.is_empty())
            .ok_or(ParseError::Field {
                field: address_path,
                expected: "a non-empty string",
            })?;
        addresses.push(address.to_owned());
    }
    if addresses.is_empty() {
        return Err(ParseError::NoRecipient(path));
    }
    Ok(addresses)
}

/// The address inside `Name <address>`, or the text itself, trimmed.
fn bare_address(text: &str) -> &str {
    let text = text.trim();
    match (text.rfind('<'), text.ends_with('>')) {
        (Some(start), true) => text[start + 1..text.len() - 1].trim(),
        _ => text,
    }
}

/// What one SES event did: the function's answer and its log line. Names no address and no
/// customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Counted for its step (and its recipients suppressed, for a hard bounce or complaint).
    Counted {
        /// The EventBridge event id.
        event_id: String,
        /// What was counted.
        kind: FeedbackKind,
        /// Addresses suppressed (0 for deliveries, opens and clicks).
        suppressed: usize,
    },
    /// Counted before (a redelivery): nothing counted again (suppressions are written again,
    /// which changes nothing).
    Duplicate {
        /// The EventBridge event id.
        event_id: String,
        /// Addresses whose suppression was written again.
        suppressed: usize,
    },
    /// Not Nudge's mail, or an event type Nudge does not count.
    Ignored {
        /// The EventBridge event id.
        event_id: String,
        /// Why.
        reason: String,
    },
    /// Malformed: kept as the dead letter `dead_letter`.
    DeadLettered {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The dead letter's id.
        dead_letter: String,
        /// Why.
        reason: String,
    },
}

/// Handles one EventBridge event as delivered. `now` is when it was received (the dead
/// letters' time).
pub async fn handle(
    app: &App,
    raw: &RawValue,
    now: DateTime<Utc>,
) -> Result<Outcome, HandlerError> {
    let text = raw.get();
    let event = match parse(text) {
        Ok(event) => event,
        Err(e) => return reject(app, text, e, now).await,
    };
    if let Some(reason) = foreign(app.config.configuration_set.as_deref(), &event) {
        return Ok(Outcome::Ignored {
            event_id: event.id,
            reason,
        });
    }
    let outcome = apply(&app.store, &event).await?;
    tracing::info!(outcome = ?outcome, "ses event handled");
    Ok(outcome)
}

/// Keeps a malformed input as a dead letter, its addresses replaced by their hashes.
async fn reject(
    app: &App,
    text: &str,
    error: ParseError,
    now: DateTime<Utc>,
) -> Result<Outcome, HandlerError> {
    let (event_id, body) = match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            let id = readable_id(&value);
            redact(&mut value);
            (id, value.to_string())
        }
        Err(_) => (None, text.to_owned()),
    };
    let handled = ingest::dead_letter(
        app,
        DEAD_LETTER_SOURCE,
        event_id.clone(),
        error.to_string(),
        &body,
        now,
    )
    .await?;
    Ok(match handled {
        Handled::DeadLettered {
            event_id,
            dead_letter,
            reason,
        } => Outcome::DeadLettered {
            event_id,
            dead_letter,
            reason,
        },
        // `ingest::dead_letter` answers nothing else; said as it is rather than a panic.
        other => Outcome::Ignored {
            event_id: event_id.unwrap_or_default(),
            reason: format!("unexpected dead-letter outcome {other:?}"),
        },
    })
}

/// Why `event` belongs to another deployment, if it does: it names a configuration set and it
/// is not this deployment's `configuration_set` (two stacks of one account, e.g. staging and
/// production, share the default bus). Without a configuration set of its own, or an event
/// without the tag, nothing is foreign.
pub fn foreign(configuration_set: Option<&str>, event: &SesEvent) -> Option<String> {
    match (configuration_set, event.configuration_set.as_deref()) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            Some("sent with another configuration set".to_owned())
        }
        _ => None,
    }
}

/// Suppresses and counts one parsed event on `store`.
pub async fn apply<S: Store>(store: &S, event: &SesEvent) -> Result<Outcome, HandlerError> {
    let Some((workflow, step)) = &event.step else {
        return Ok(Outcome::Ignored {
            event_id: event.id.clone(),
            reason: "not Nudge's mail (no nudge-workflow and nudge-step tags)".into(),
        });
    };
    let Some(kind) = event.feedback_kind() else {
        let reason = match &event.kind {
            SesKind::Bounce { .. } => "a bounce that is not permanent".to_owned(),
            SesKind::Other(t) => format!("event type `{}` is not counted", printable(t)),
            _ => "not counted".to_owned(),
        };
        return Ok(Outcome::Ignored {
            event_id: event.id.clone(),
            reason,
        });
    };
    let mut suppressed = 0;
    if let Some(reason) = event.suppression() {
        for address in &event.recipients {
            store
                .suppress(&address_key(address), reason, event.at)
                .await?;
            suppressed += 1;
        }
    }
    let feedback_id = format!(
        "{FEEDBACK_ID_PREFIX}{}",
        event.identity.as_deref().unwrap_or(&event.id)
    );
    let counted = store
        .record_feedback(&Feedback {
            event_id: &feedback_id,
            workflow,
            step,
            kind,
            at: event.at,
        })
        .await?;
    Ok(if counted {
        Outcome::Counted {
            event_id: event.id.clone(),
            kind,
            suppressed,
        }
    } else {
        Outcome::Duplicate {
            event_id: event.id.clone(),
            suppressed,
        }
    })
}

/// An event type as it may be logged: SES's names only, anything else cut short.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '_')
        .take(40)
        .collect()
}

/// Replaces every string in `value` that holds an `@` (an address, a `From:` or `To:` header,
/// a diagnostic quoting the address) with `redacted:` and the [`address_key`] of its bare
/// address: a dead letter keeps no address in clear, and an operator who has the address can
/// still find its letters by hashing it.
pub fn redact(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('@') => {
            *s = format!("redacted:{}", address_key(bare_address(s)));
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::Object(map) => map.values_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/fixtures/ses/",
                $name
            ))
        };
    }

    /// SES may publish one event twice, each time under a new EventBridge id: it is counted
    /// by its own identity, which another click of the same message does not share.
    #[test]
    fn a_republished_ses_event_has_the_same_identity_under_a_new_eventbridge_id() {
        let first: Value = serde_json::from_str(fixture!("click.json")).unwrap();
        let mut again = first.clone();
        again["id"] = Value::String("another-eventbridge-id".into());
        let (a, b) = (parse_value(&first).unwrap(), parse_value(&again).unwrap());
        assert_ne!(a.id, b.id);
        assert!(a.identity.is_some());
        assert_eq!(a.identity, b.identity);
        let mut other_link = first.clone();
        other_link["detail"]["click"]["link"] =
            Value::String("https://shop.example.com/other".into());
        assert_ne!(parse_value(&other_link).unwrap().identity, a.identity);
        let mut no_message = first;
        no_message["detail"]["mail"]
            .as_object_mut()
            .unwrap()
            .remove("messageId");
        assert_eq!(parse_value(&no_message).unwrap().identity, None);
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn nudge_step() -> Option<(String, String)> {
        Some(("win-back".to_owned(), "miss-you".to_owned()))
    }

    #[test]
    fn a_hard_bounce_names_its_recipient_and_counts_as_bounced() {
        let e = parse(fixture!("bounce-permanent.json")).unwrap();
        assert_eq!(e.id, "2a3b5c1e-6f7d-4b8a-9c0d-1e2f3a4b5c6d");
        assert_eq!(e.kind, SesKind::Bounce { permanent: true });
        assert_eq!(e.at, at("2026-03-05T07:41:02.669Z"));
        assert_eq!(e.step, nudge_step());
        assert_eq!(e.recipients, ["bounce@simulator.amazonses.com"]);
        assert_eq!(e.feedback_kind(), Some(FeedbackKind::Bounced));
        assert_eq!(e.suppression(), Some(REASON_HARD_BOUNCE));
    }

    #[test]
    fn a_transient_bounce_neither_counts_nor_suppresses() {
        let e = parse(fixture!("bounce-transient.json")).unwrap();
        assert_eq!(e.kind, SesKind::Bounce { permanent: false });
        assert_eq!(e.feedback_kind(), None);
        assert_eq!(e.suppression(), None);
    }

    #[test]
    fn a_complaint_suppresses_and_counts() {
        let e = parse(fixture!("complaint.json")).unwrap();
        assert_eq!(e.kind, SesKind::Complaint);
        assert_eq!(e.recipients, ["complaint@simulator.amazonses.com"]);
        assert_eq!(e.feedback_kind(), Some(FeedbackKind::Complained));
        assert_eq!(e.suppression(), Some(REASON_COMPLAINT));
        assert_eq!(e.at, at("2026-03-05T08:10:00.000Z"));
    }

    #[test]
    fn deliveries_opens_and_clicks_count_without_suppressing() {
        for (file, kind, feedback) in [
            (
                fixture!("delivery.json"),
                SesKind::Delivery,
                FeedbackKind::Delivered,
            ),
            (fixture!("open.json"), SesKind::Open, FeedbackKind::Opened),
            (
                fixture!("click.json"),
                SesKind::Click,
                FeedbackKind::Clicked,
            ),
        ] {
            let e = parse(file).unwrap();
            assert_eq!(e.kind, kind);
            assert_eq!(e.feedback_kind(), Some(feedback));
            assert_eq!(e.suppression(), None);
            assert!(e.recipients.is_empty());
            assert_eq!(e.step, nudge_step());
        }
    }

    #[test]
    fn mail_without_nudge_tags_has_no_step_and_a_send_is_not_counted() {
        let e = parse(fixture!("delivery-other-mail.json")).unwrap();
        assert_eq!(e.step, None);
        let e = parse(fixture!("send.json")).unwrap();
        assert_eq!(e.kind, SesKind::Other("Send".into()));
        assert_eq!(e.feedback_kind(), None);
    }

    #[test]
    fn malformed_events_are_errors_that_name_fields_never_values() {
        let bounce: Value = serde_json::from_str(fixture!("bounce-permanent.json")).unwrap();
        let with = |path: &[&str], new: Value| {
            let mut v = bounce.clone();
            let mut at = &mut v;
            for key in &path[..path.len() - 1] {
                at = at.get_mut(*key).unwrap();
            }
            at.as_object_mut()
                .unwrap()
                .insert(path[path.len() - 1].to_owned(), new);
            v.to_string()
        };
        let cases = [
            ("[1]".to_owned(), "not a JSON object"),
            ("{".to_owned(), "not a JSON object"),
            (
                with(&["source"], "store".into()),
                "`source` is not `aws.ses`",
            ),
            (with(&["id"], 7.into()), "`id` is missing"),
            (with(&["time"], "yesterday".into()), "`time`"),
            (with(&["detail"], "x".into()), "`detail`"),
            (with(&["detail", "eventType"], Value::Null), "eventType"),
            (
                with(
                    &["detail", "mail", "tags"],
                    serde_json::json!({"nudge-workflow": "w"}),
                ),
                "detail.mail.tags",
            ),
            (
                with(
                    &["detail", "bounce", "bouncedRecipients"],
                    serde_json::json!([]),
                ),
                "names no recipient",
            ),
            (
                with(
                    &["detail", "bounce", "bouncedRecipients"],
                    serde_json::json!([{"emailAddress": 5}]),
                ),
                "emailAddress",
            ),
            (
                with(&["detail", "bounce", "timestamp"], 5.into()),
                "timestamp",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text).expect_err(want).to_string();
            assert!(err.contains(want), "{err} should say {want}");
            assert!(!err.contains("simulator"), "{err} shows the address");
        }
    }

    #[test]
    fn events_of_another_configuration_set_are_foreign() {
        let e = parse(fixture!("delivery.json")).unwrap();
        assert_eq!(e.configuration_set.as_deref(), Some("nudge-prod"));
        assert_eq!(foreign(Some("nudge-prod"), &e), None);
        assert_eq!(foreign(None, &e), None);
        assert!(foreign(Some("nudge-staging"), &e).is_some());
        let mut untagged = e.clone();
        untagged.configuration_set = None;
        assert_eq!(foreign(Some("nudge-staging"), &untagged), None);
    }

    #[test]
    fn a_name_and_angle_brackets_leave_the_bare_address() {
        assert_eq!(
            bare_address(" Ayşe <Ayse@Example.com> "),
            "Ayse@Example.com"
        );
        assert_eq!(bare_address("ayse@example.com"), "ayse@example.com");
        assert_eq!(bare_address("<>"), "");
    }

    #[test]
    fn redaction_replaces_every_address_by_its_hash() {
        let mut v: Value = serde_json::from_str(fixture!("bounce-permanent.json")).unwrap();
        redact(&mut v);
        let text = v.to_string();
        assert!(!text.contains("simulator.amazonses.com"), "{text}");
        assert!(!text.contains('@'), "{text}");
        let key = address_key("bounce@simulator.amazonses.com");
        assert!(text.contains(&format!("redacted:{key}")), "{text}");
        // What is not an address stays.
        assert!(text.contains("\"eventType\":\"Bounce\""), "{text}");
    }

    #[test]
    fn debug_shows_no_address() {
        let e = parse(fixture!("complaint.json")).unwrap();
        let debug = format!("{e:?}");
        assert!(!debug.contains('@'), "{debug}");
        assert!(debug.contains("recipients: 1"), "{debug}");
    }

    #[test]
    fn only_ses_event_names_reach_the_log() {
        assert_eq!(printable("Rendering Failure"), "Rendering Failure");
        assert_eq!(printable("x@y.z<script>"), "xyzscript");
    }
}
