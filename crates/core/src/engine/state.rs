//! One customer's state: the unit of consistency (one SQLite row, one DynamoDB item).
//!
//! The engine reads and returns it whole; the store keeps it as an opaque JSON document with a
//! version. Everything cross-run rules need is here: the profile, active runs, entry history
//! (`once`, `every`), recent marketing sends (the frequency cap) and armed date triggers.
//!
//! In the JSON, a time is an integer of unix milliseconds, cheap to write and to read back. A
//! time with a part finer than a millisecond (an event's `time` may have nanoseconds, and the
//! times kept here derive from event times) or a leap second is written as an RFC 3339 string
//! instead, so that no time changes on its way through the store. Either form is read wherever a
//! time goes: states written by earlier versions have RFC 3339 strings only.

use std::fmt;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Everything Nudge knows about one customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerState {
    /// The customer's id in the store.
    pub id: String,
    /// Profile attributes merged from events and `update_profile` steps (shared with the
    /// template scopes that read it; `Arc::make_mut` to change it).
    #[serde(default)]
    pub profile: Arc<Map<String, Value>>,
    /// Set by a recorded unsubscribe (the one-click link or `customer.unsubscribed`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// Set by a hard bounce or a complaint: no mail of any kind goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    /// Active runs; a run leaves this list when it ends.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Starts of `once` and `every` workflows, per workflow and key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryRecord>,
    /// Marketing emails sent within the longest cap window, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "millis::vec")]
    pub recent_sends: Vec<DateTime<Utc>>,
    /// Armed date triggers, one per date-triggered workflow whose attribute the profile has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateArm>,
    /// The last orders counted into the profile's order facts (see `engine::orders`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<super::orders::OrderRecord>,
    /// The latest `now` the runner applied an input of this customer at; a later event is
    /// applied no earlier (see `crate::runner`), so the customer's clock never runs back.
    /// `None` before the first input, and in states written before it was kept.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "millis::option"
    )]
    pub last_applied: Option<DateTime<Utc>>,
}

/// Why a customer receives no mail at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// A hard bounce: the address does not exist.
    HardBounce,
    /// The customer marked mail as spam.
    Complaint,
}

/// One run of a workflow for this customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Stable id, derived from what started the run (so a retried start gets the same id).
    pub id: String,
    /// The workflow's id.
    pub workflow: String,
    /// The run key (`key:` of the workflow, evaluated on the trigger event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When it started.
    #[serde(with = "millis")]
    pub started_at: DateTime<Utc>,
    /// The trigger event's `detail`, kept when a step of the workflow reads `event` (`None`
    /// for date triggers): `event` in templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerDetail>,
    /// The step the run is at, by id (never by position: workflows are edited).
    pub step: String,
    /// What the run is doing at that step.
    pub phase: Phase,
    /// The outcome of the last `wait_for` (`waited.matched`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited: Option<bool>,
    /// Steps whose effect happened (email, webhook, profile update): never repeated, even if
    /// an edit moves them after the run's position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
}

/// A run's trigger event `detail` (`event` in its templates), in memory or as stored.
///
/// Read from the store, it stays JSON text, parsed only when a step of the run renders: an
/// input moves few of a customer's runs, and parsing (then writing back) every run's event on
/// every input made each input cost more the more runs the customer had. Written, either form
/// gives the same JSON object.
#[derive(Debug, Clone)]
pub enum TriggerDetail {
    /// In memory (the run started in this input: shared with the event).
    Parsed(Arc<Map<String, Value>>),
    /// As stored: a JSON object's text, checked to be an object when read.
    Stored(Box<RawValue>),
}

impl TriggerDetail {
    /// The detail as an object. A stored text that no longer parses (it was checked when
    /// read, so only a depth beyond the parser's) gives none: `event` is then undefined.
    pub fn detail(&self) -> Option<Arc<Map<String, Value>>> {
        match self {
            TriggerDetail::Parsed(map) => Some(Arc::clone(map)),
            TriggerDetail::Stored(raw) => serde_json::from_str(raw.get()).ok().map(Arc::new),
        }
    }
}

impl From<Arc<Map<String, Value>>> for TriggerDetail {
    fn from(map: Arc<Map<String, Value>>) -> Self {
        TriggerDetail::Parsed(map)
    }
}

impl PartialEq for TriggerDetail {
    /// Equal when they hold the same object, whatever their forms.
    fn eq(&self, other: &Self) -> bool {
        self.detail() == other.detail()
    }
}

impl Serialize for TriggerDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TriggerDetail::Parsed(map) => map.serialize(serializer),
            TriggerDetail::Stored(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TriggerDetail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        // A raw value is the value's exact text, so an object starts with its brace.
        if !raw.get().starts_with('{') {
            return Err(de::Error::custom(format_args!(
                "a run's trigger must be a JSON object, not `{}`",
                raw.get().chars().take(20).collect::<String>()
            )));
        }
        Ok(TriggerDetail::Stored(raw))
    }
}

/// Where a run stands at its step.
///
/// In the JSON, an object with the variant's name and the time:
/// `{"phase": "waiting", "until": 1772359200000}` (times as the [module](self) says), and for a
/// wait, when it began: `"since": 1772100000000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In a `wait`; on waking, go on to the next step.
    Waiting {
        /// When the wait ends.
        until: DateTime<Utc>,
        /// When the run began to wait: an edited wait ends its new length after it. `None` in
        /// states written before it was kept (such a wait keeps its `until`).
        since: Option<DateTime<Utc>>,
    },
    /// In a `wait_for`; a matching event or the timeout moves on.
    WaitingFor {
        /// The timeout.
        until: DateTime<Utc>,
    },
    /// A marketing email held for the send window; on waking, the step is tried again.
    Deferred {
        /// The window's next opening.
        until: DateTime<Utc>,
    },
}

impl Phase {
    /// When the run must be woken.
    pub fn until(self) -> DateTime<Utc> {
        match self {
            Phase::Waiting { until, .. }
            | Phase::WaitingFor { until }
            | Phase::Deferred { until } => until,
        }
    }
}

/// The `phase` field of a [`Phase`] in the JSON.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PhaseTag {
    Waiting,
    WaitingFor,
    Deferred,
}

/// The fields of a [`Phase`] in the JSON; others are ignored.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum PhaseField {
    Phase,
    Until,
    Since,
    #[serde(other)]
    Other,
}

// By hand rather than `#[serde(tag = "phase")]`: serde reads an internally tagged enum by
// buffering the whole object first (the tag may come last), while the variants here have the
// same fields (`since` is a wait's alone), so they can be read in any order straight from the
// input.
impl Serialize for Phase {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let tag = match self {
            Phase::Waiting { .. } => PhaseTag::Waiting,
            Phase::WaitingFor { .. } => PhaseTag::WaitingFor,
            Phase::Deferred { .. } => PhaseTag::Deferred,
        };
        let since = match self {
            Phase::Waiting { since, .. } => *since,
            _ => None,
        };
        let mut s = serializer.serialize_struct("Phase", 2 + usize::from(since.is_some()))?;
        s.serialize_field("phase", &tag)?;
        s.serialize_field("until", &millis::Ref(&self.until()))?;
        if let Some(since) = &since {
            s.serialize_field("since", &millis::Ref(since))?;
        }
        s.end()
    }
}

impl<'de> Deserialize<'de> for Phase {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PhaseVisitor;

        impl<'de> Visitor<'de> for PhaseVisitor {
            type Value = Phase;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a run's phase: an object with `phase` and `until`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Phase, A::Error> {
                let mut tag = None;
                let mut until = None;
                let mut since = None;
                while let Some(field) = map.next_key()? {
                    match field {
                        PhaseField::Phase if tag.is_some() => {
                            return Err(de::Error::duplicate_field("phase"));
                        }
                        PhaseField::Phase => tag = Some(map.next_value::<PhaseTag>()?),
                        PhaseField::Until if until.is_some() => {
                            return Err(de::Error::duplicate_field("until"));
                        }
                        PhaseField::Until => until = Some(map.next_value::<millis::Owned>()?.0),
                        PhaseField::Since if since.is_some() => {
                            return Err(de::Error::duplicate_field("since"));
                        }
                        PhaseField::Since => since = Some(map.next_value::<millis::Owned>()?.0),
                        PhaseField::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                let tag = tag.ok_or_else(|| de::Error::missing_field("phase"))?;
                let until = until.ok_or_else(|| de::Error::missing_field("until"))?;
                Ok(match tag {
                    PhaseTag::Waiting => Phase::Waiting { until, since },
                    PhaseTag::WaitingFor => Phase::WaitingFor { until },
                    PhaseTag::Deferred => Phase::Deferred { until },
                })
            }
        }

        deserializer.deserialize_map(PhaseVisitor)
    }
}

/// Past starts of a workflow (and key) for `once` and `every`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The workflow's id.
    pub workflow: String,
    /// The run key, if the workflow has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The last start.
    #[serde(with = "millis")]
    pub last_started_at: DateTime<Utc>,
}

/// An armed date trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateArm {
    /// The workflow's id.
    pub workflow: String,
    /// The attribute's value when armed; a change re-arms.
    pub value: String,
    /// The trigger's settings and the customer's zone when armed; a change re-arms.
    pub signature: String,
    /// The next firing.
    #[serde(with = "millis")]
    pub next_fire: DateTime<Utc>,
}

impl CustomerState {
    /// A customer Nudge has not seen before.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// When the engine must next be woken for this customer: the earliest wait, timeout,
    /// deferral or date trigger.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let runs = self.runs.iter().map(|r| r.phase.until());
        let dates = self.dates.iter().map(|d| d.next_fire);
        runs.chain(dates).min()
    }

    /// The profile attribute as text, if it is a string.
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.profile.get(name).and_then(Value::as_str)
    }
}

/// `#[serde(with = "millis")]`: a time as unix milliseconds, or as an RFC 3339 string when
/// milliseconds would lose part of it; either is read back (see the module doc of `state`).
pub(super) mod millis {
    use std::fmt;

    use chrono::{DateTime, FixedOffset, Utc};
    use serde::de::{self, Deserialize, Deserializer, Visitor};
    use serde::ser::{Serialize, Serializer};

    /// Whether `at` is a whole number of milliseconds, so that writing it as milliseconds loses
    /// nothing (a leap second's nanoseconds reach past one second).
    fn whole_millis(at: &DateTime<Utc>) -> bool {
        let nanos = at.timestamp_subsec_nanos();
        nanos.is_multiple_of(1_000_000) && nanos < 1_000_000_000
    }

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        if whole_millis(at) {
            serializer.serialize_i64(at.timestamp_millis())
        } else {
            // chrono's own form, as every time was written before.
            at.serialize(serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer.deserialize_any(TimeVisitor)
    }

    /// A time in a container, to serialize.
    pub struct Ref<'a>(pub &'a DateTime<Utc>);

    impl Serialize for Ref<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(self.0, serializer)
        }
    }

    /// A time in a container, to deserialize.
    #[repr(transparent)]
    pub struct Owned(pub DateTime<Utc>);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize(deserializer).map(Owned)
        }
    }

    struct TimeVisitor;

    impl TimeVisitor {
        fn from_millis<E: de::Error>(
            millis: Option<i64>,
            shown: &dyn fmt::Display,
        ) -> Result<DateTime<Utc>, E> {
            millis
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| {
                    E::custom(format_args!(
                        "time {shown} (unix milliseconds) is out of range"
                    ))
                })
        }
    }

    impl Visitor<'_> for TimeVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a time: integer unix milliseconds or an RFC 3339 string")
        }

        fn visit_i64<E: de::Error>(self, millis: i64) -> Result<DateTime<Utc>, E> {
            Self::from_millis(Some(millis), &millis)
        }

        fn visit_u64<E: de::Error>(self, millis: u64) -> Result<DateTime<Utc>, E> {
            Self::from_millis(i64::try_from(millis).ok(), &millis)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
            // What chrono's own `Deserialize` does, which read every time before.
            text.parse::<DateTime<FixedOffset>>()
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| E::custom(format_args!("time {text:?} is not an RFC 3339 time: {e}")))
        }
    }

    /// `#[serde(with = "millis::option")]`.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        use super::{Owned, Ref};

        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => serializer.serialize_some(&Ref(at)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Ok(Option::<Owned>::deserialize(deserializer)?.map(|t| t.0))
        }
    }

    /// `#[serde(with = "millis::vec")]`.
    pub mod vec {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        use super::{Owned, Ref};

        pub fn serialize<S: Serializer>(
            times: &[DateTime<Utc>],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(times.iter().map(Ref))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<DateTime<Utc>>, D::Error> {
            // `Owned` is transparent: the collect reuses the vector.
            Ok(Vec::<Owned>::deserialize(deserializer)?
                .into_iter()
                .map(|t| t.0)
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A state with every field set, every phase, and times of whole seconds, whole
    /// milliseconds and finer.
    fn sample() -> CustomerState {
        let json = json!({"email": "ayse@example.com", "first_name": "Ayşe", "orders_count": 3});
        let run = |id: &str, started_at, step: &str, phase| Run {
            id: id.to_owned(),
            workflow: "w".to_owned(),
            key: None,
            started_at,
            trigger: None,
            step: step.to_owned(),
            phase,
            waited: None,
            done: Vec::new(),
        };
        CustomerState {
            id: "c-1".to_owned(),
            profile: Arc::new(json.as_object().unwrap().clone()),
            unsubscribed_at: Some(t("2026-03-04T08:00:00.250Z")),
            suppressed: Some(Suppression::HardBounce),
            runs: vec![
                Run {
                    key: Some("o-1".to_owned()),
                    trigger: json!({"order": {"id": "o-1"}})
                        .as_object()
                        .cloned()
                        .map(|m| Arc::new(m).into()),
                    waited: Some(true),
                    done: vec!["hello".to_owned()],
                    ..run(
                        "r-1",
                        t("2026-03-01T10:00:00Z"),
                        "pause",
                        Phase::Waiting {
                            until: t("2026-03-02T10:00:00.123Z"),
                            since: None,
                        },
                    )
                },
                run(
                    "r-2",
                    t("2026-03-01T10:00:00.000001Z"),
                    "ask",
                    Phase::WaitingFor {
                        until: t("2026-03-08T10:00:00Z"),
                    },
                ),
                run(
                    "r-3",
                    t("2026-03-01T11:00:00Z"),
                    "miss-you",
                    Phase::Deferred {
                        until: t("2026-03-02T07:00:00Z"),
                    },
                ),
            ],
            entries: vec![EntryRecord {
                workflow: "w".to_owned(),
                key: Some("o-1".to_owned()),
                last_started_at: t("2026-03-01T10:00:00Z"),
            }],
            recent_sends: vec![t("2026-02-28T09:00:00Z"), t("2026-03-01T10:00:00.5Z")],
            dates: vec![DateArm {
                workflow: "birthday".to_owned(),
                value: "1991-06-14".to_owned(),
                signature: "birthday|09:00|0w|Europe/Istanbul".to_owned(),
                next_fire: t("2026-06-14T06:00:00Z"),
            }],
            orders: Vec::new(),
            last_applied: None,
        }
    }

    /// `sample()` as the versions before times in milliseconds wrote it (RFC 3339 strings,
    /// the phase internally tagged).
    const OLD: &str = r#"{"id":"c-1","profile":{"email":"ayse@example.com","first_name":"Ayşe","orders_count":3},"unsubscribed_at":"2026-03-04T08:00:00.250Z","suppressed":"hard_bounce","runs":[{"id":"r-1","workflow":"w","key":"o-1","started_at":"2026-03-01T10:00:00Z","trigger":{"order":{"id":"o-1"}},"step":"pause","phase":{"phase":"waiting","until":"2026-03-02T10:00:00.123Z"},"waited":true,"done":["hello"]},{"id":"r-2","workflow":"w","started_at":"2026-03-01T10:00:00.000001Z","trigger":null,"step":"ask","phase":{"phase":"waiting_for","until":"2026-03-08T10:00:00Z"}},{"id":"r-3","workflow":"w","started_at":"2026-03-01T11:00:00Z","trigger":null,"step":"miss-you","phase":{"phase":"deferred","until":"2026-03-02T07:00:00Z"}}],"entries":[{"workflow":"w","key":"o-1","last_started_at":"2026-03-01T10:00:00Z"}],"recent_sends":["2026-02-28T09:00:00Z","2026-03-01T10:00:00.500Z"],"dates":[{"workflow":"birthday","value":"1991-06-14","signature":"birthday|09:00|0w|Europe/Istanbul","next_fire":"2026-06-14T06:00:00Z"}]}"#;

    fn err(text: &str) -> String {
        serde_json::from_str::<CustomerState>(text)
            .unwrap_err()
            .to_string()
    }

    /// A one-run state whose phase is `phase` (JSON text).
    fn with_phase(phase: &str) -> String {
        format!(
            r#"{{"id":"c-1","runs":[{{"id":"r-1","workflow":"w","started_at":0,"step":"s","phase":{phase}}}]}}"#
        )
    }

    #[test]
    fn a_state_survives_its_json_form() {
        let state = sample();
        let bytes = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<CustomerState>(&bytes).unwrap(),
            state
        );
        let empty = CustomerState::new("c-2");
        let bytes = serde_json::to_vec(&empty).unwrap();
        assert_eq!(
            serde_json::from_slice::<CustomerState>(&bytes).unwrap(),
            empty
        );
    }

    #[test]
    fn times_are_written_as_milliseconds_unless_finer() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["unsubscribed_at"], json!(1_772_611_200_250_i64));
        assert_eq!(
            v["runs"][0]["phase"],
            json!({"phase": "waiting", "until": 1_772_445_600_123_i64})
        );
        assert_eq!(v["runs"][0]["started_at"], json!(1_772_359_200_000_i64));
        // A microsecond would be lost in milliseconds: that time keeps its RFC 3339 form.
        assert_eq!(
            v["runs"][1]["started_at"],
            json!("2026-03-01T10:00:00.000001Z")
        );
        assert_eq!(
            v["runs"][2]["phase"],
            json!({"phase": "deferred", "until": 1_772_434_800_000_i64})
        );
        assert_eq!(
            v["recent_sends"],
            json!([1_772_269_200_000_i64, 1_772_359_200_500_i64])
        );
        assert_eq!(
            v["entries"][0]["last_started_at"],
            json!(1_772_359_200_000_i64)
        );
        assert_eq!(v["dates"][0]["next_fire"], json!(1_781_416_800_000_i64));
    }

    #[test]
    fn the_last_applied_time_is_kept_in_milliseconds_and_absent_until_set() {
        let state = CustomerState {
            last_applied: Some(t("2026-03-04T08:00:00.250Z")),
            ..CustomerState::new("c-1")
        };
        let v = serde_json::to_value(&state).unwrap();
        assert_eq!(v["last_applied"], json!(1_772_611_200_250_i64));
        assert_eq!(serde_json::from_value::<CustomerState>(v).unwrap(), state);
        // A state written before the field was kept loads without it (and writes none).
        let old: CustomerState = serde_json::from_str(r#"{"id":"c-1"}"#).unwrap();
        assert_eq!(old.last_applied, None);
        assert!(
            serde_json::to_value(&old)
                .unwrap()
                .get("last_applied")
                .is_none()
        );
    }

    #[test]
    fn a_state_in_the_old_format_loads_as_in_the_new() {
        let old: CustomerState = serde_json::from_str(OLD).unwrap();
        assert_eq!(old, sample());
        let new: CustomerState =
            serde_json::from_slice(&serde_json::to_vec(&sample()).unwrap()).unwrap();
        assert_eq!(old, new);
        // Written again, it takes the new form.
        assert_ne!(serde_json::to_string(&old).unwrap(), OLD);
    }

    #[test]
    fn times_finer_than_a_millisecond_survive() {
        for text in [
            "2026-03-01T10:00:00.123456789Z",
            "2026-03-01T10:00:00.000000001Z",
            "1969-12-31T23:59:59.999999Z",
            // A leap second: chrono keeps it as a second's worth of extra nanoseconds.
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
        ] {
            let state = CustomerState {
                recent_sends: vec![t(text)],
                ..CustomerState::new("c-1")
            };
            let bytes = serde_json::to_vec(&state).unwrap();
            let back: CustomerState = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, state, "{text}");
            assert_eq!(
                back.recent_sends[0].timestamp_subsec_nanos(),
                state.recent_sends[0].timestamp_subsec_nanos(),
                "{text}"
            );
        }
        // Before 1970 in whole milliseconds: negative milliseconds.
        let state = CustomerState {
            unsubscribed_at: Some(t("1969-12-31T23:59:59.999Z")),
            ..CustomerState::new("c-1")
        };
        let v = serde_json::to_value(&state).unwrap();
        assert_eq!(v["unsubscribed_at"], json!(-1));
        assert_eq!(serde_json::from_value::<CustomerState>(v).unwrap(), state);
    }

    #[test]
    fn a_wait_keeps_when_it_began_and_a_state_without_it_still_loads() {
        let phase = Phase::Waiting {
            until: t("2026-03-07T07:00:00Z"),
            since: Some(t("2026-03-02T07:00:00.5Z")),
        };
        let v = serde_json::to_value(phase).unwrap();
        assert_eq!(
            v,
            json!({"phase": "waiting", "until": 1_772_866_800_000_i64, "since": 1_772_434_800_500_i64})
        );
        assert_eq!(serde_json::from_value::<Phase>(v).unwrap(), phase);
        // Written before `since` was kept: the wait keeps its end and knows no start.
        let old: CustomerState =
            serde_json::from_str(&with_phase(r#"{"phase":"waiting","until":1772866800000}"#))
                .unwrap();
        assert_eq!(
            old.runs[0].phase,
            Phase::Waiting {
                until: t("2026-03-07T07:00:00Z"),
                since: None
            }
        );
        let e = err(&with_phase(
            r#"{"phase":"waiting","until":0,"since":0,"since":1}"#,
        ));
        assert!(e.starts_with("duplicate field `since`"), "{e}");
    }

    #[test]
    fn a_phase_is_read_whatever_the_order_of_its_fields() {
        let until = t("2026-03-02T10:00:00.123Z");
        for phase in [
            r#"{"phase":"waiting_for","until":1772445600123}"#,
            r#"{"until":1772445600123,"phase":"waiting_for"}"#,
            r#"{"until":"2026-03-02T10:00:00.123Z","phase":"waiting_for"}"#,
            r#"{"until":"2026-03-02T11:00:00.123+01:00","extra":[1],"phase":"waiting_for"}"#,
        ] {
            let state: CustomerState = serde_json::from_str(&with_phase(phase)).unwrap();
            assert_eq!(state.runs[0].phase, Phase::WaitingFor { until }, "{phase}");
            assert_eq!(state.runs[0].started_at, DateTime::UNIX_EPOCH);
        }
    }

    #[test]
    fn a_bad_time_is_a_clear_error() {
        let bad = OLD.replace("2026-03-02T10:00:00.123Z", "next tuesday");
        assert_eq!(
            err(&bad),
            "time \"next tuesday\" is not an RFC 3339 time: input contains invalid characters \
             at line 1 column 341"
        );
        let bad = OLD.replace("\"2026-02-28T09:00:00Z\"", "1e3");
        assert_eq!(
            err(&bad),
            "invalid type: floating point `1000.0`, expected a time: integer unix milliseconds \
             or an RFC 3339 string at line 1 column 808"
        );
        let bad = with_phase(r#"{"phase":"waiting","until":9223372036854775807}"#);
        assert_eq!(
            err(&bad),
            "time 9223372036854775807 (unix milliseconds) is out of range at line 1 column 127"
        );
        let bad = with_phase(r#"{"phase":"waiting","until":18446744073709551615}"#);
        assert!(
            err(&bad).starts_with("time 18446744073709551615 (unix milliseconds) is out of range")
        );
        let bad = with_phase(r#"{"phase":"waiting","until":null}"#);
        assert!(err(&bad).starts_with("invalid type: null, expected a time"));
    }

    #[test]
    fn a_stored_trigger_stays_text_until_read_and_is_written_back_as_it_was() {
        let bytes = serde_json::to_vec(&sample()).unwrap();
        let state: CustomerState = serde_json::from_slice(&bytes).unwrap();
        let Some(TriggerDetail::Stored(raw)) = &state.runs[0].trigger else {
            panic!("{:?}", state.runs[0].trigger);
        };
        assert_eq!(raw.get(), r#"{"order":{"id":"o-1"}}"#);
        let detail = state.runs[0].trigger.as_ref().unwrap().detail().unwrap();
        assert_eq!(
            Value::Object((*detail).clone()),
            json!({"order": {"id": "o-1"}})
        );
        assert_eq!(serde_json::to_vec(&state).unwrap(), bytes);
        assert_eq!(state, sample());
    }

    #[test]
    fn a_trigger_that_is_not_an_object_is_a_clear_error() {
        let bad = with_phase(r#"{"phase":"waiting","until":0},"trigger":[1,2]"#);
        let e = err(&bad);
        assert!(
            e.starts_with("a run's trigger must be a JSON object, not `[1,2]`"),
            "{e}"
        );
        let bad = with_phase(r#"{"phase":"waiting","until":0},"trigger":{"a":"#);
        assert!(err(&bad).starts_with("expected value"), "{}", err(&bad));
    }

    #[test]
    fn a_bad_phase_is_a_clear_error() {
        let e = err(&with_phase(r#"{"phase":"sleeping","until":0}"#));
        assert!(
            e.starts_with(
                "unknown variant `sleeping`, expected one of `waiting`, `waiting_for`, `deferred`"
            ),
            "{e}"
        );
        let e = err(&with_phase(r#"{"phase":"waiting"}"#));
        assert!(e.starts_with("missing field `until`"), "{e}");
        let e = err(&with_phase(r#"{"until":0}"#));
        assert!(e.starts_with("missing field `phase`"), "{e}");
        let e = err(&with_phase(r#"{"phase":"waiting","until":0,"until":1}"#));
        assert!(e.starts_with("duplicate field `until`"), "{e}");
        let e = err(&with_phase(r#""waiting""#));
        assert!(
            e.starts_with("invalid type: string \"waiting\", expected a run's phase"),
            "{e}"
        );
    }
}
