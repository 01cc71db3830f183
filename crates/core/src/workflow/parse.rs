//! From a positioned YAML tree to the typed model, reporting every problem on the way.
//!
//! Parsing never stops at the first problem: each function returns what it could make of its
//! node (`Option<T>`, `None` when the node is unusable) and files a diagnostic for everything
//! else, so that one run of `nudge validate` shows a marketer all their mistakes.

use std::collections::HashMap;

use chrono_tz::Tz;

use crate::diagnostic::{Sink, suggestion};
use crate::workflow::model::*;
use crate::workflow::template::{SCOPE, ScalarChecker, ScalarKind};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::{Node, NodeValue, Pos};

/// Event types the store sends (`shared/spec/events-and-cli.md`).
pub const CANONICAL_EVENTS: &[&str] = &[
    "customer.created",
    "customer.updated",
    "order.placed",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "checkout.started",
    "review.submitted",
    "customer.unsubscribed",
    "email.bounced",
    "email.complained",
];

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

/// Profile attributes whose type Nudge knows and that are not dates.
pub const NON_DATE_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "timezone",
    "accepts_marketing",
    "orders_count",
    "tags",
    "unsubscribed",
    "suppressed",
];

/// Attributes a workflow may not write: identity and consent come from the customer.
pub const PROTECTED_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "accepts_marketing",
    "unsubscribed",
    "suppressed",
];

const WORKFLOW_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "category",
    "enabled",
    "trigger",
    "key",
    "entry",
    "exit_when",
    "send_window",
    "steps",
];

const SETTINGS_KEYS: &[&str] = &[
    "store",
    "from",
    "reply_to",
    "timezone",
    "send_window",
    "frequency_cap",
    "unsubscribe_url",
];

/// A mapping node being read: looks keys up and reports unknown ones.
struct Map<'n> {
    entries: &'n [(Node, Node)],
}

impl<'n> Map<'n> {
    /// `node` as a mapping, or an error naming `what` was expected.
    fn of(sink: &mut Sink, node: &'n Node, what: &str) -> Option<Self> {
        match &node.value {
            NodeValue::Map(entries) => Some(Self { entries }),
            other => {
                sink.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", other.kind()),
                );
                None
            }
        }
    }

    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    fn key_node(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// The value under `key`, or an error at the mapping (`at`) that it is missing. When a
    /// misspelt key is there instead, its own error ("did you mean") says it all.
    fn required(&self, sink: &mut Sink, key: &str, at: Pos, what: &str) -> Option<&'n Node> {
        self.required_hint(sink, key, at, what, "")
    }

    /// [`Map::required`] with a hint appended to the message.
    fn required_hint(
        &self,
        sink: &mut Sink,
        key: &str,
        at: Pos,
        what: &str,
        hint: &str,
    ) -> Option<&'n Node> {
        let found = self.get(key);
        let misspelt = || {
            self.entries.iter().any(|(k, _)| {
                k.as_str()
                    .is_some_and(|k| crate::diagnostic::did_you_mean(k, [key]).is_some())
            })
        };
        if found.is_none() && !misspelt() {
            sink.error(at, format!("{what} is missing `{key}`{hint}"));
        }
        found
    }

    /// Reports every key not in `allowed`, at the key, with the nearest allowed name.
    fn deny_unknown(&self, sink: &mut Sink, allowed: &[&str], what: &str) {
        for (key, _) in self.entries {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => sink.error(
                    key.pos,
                    format!(
                        "unknown key `{k}` in {what}{}",
                        suggestion(k, allowed.iter().copied())
                    ),
                ),
                None => sink.error(key.pos, format!("keys in {what} must be names")),
            }
        }
    }
}

fn string(sink: &mut Sink, node: &Node, what: &str) -> Option<String> {
    match &node.value {
        NodeValue::Str(s) => Some(s.clone()),
        other => {
            sink.error(
                node.pos,
                format!("{what} must be text, found {}", other.kind()),
            );
            None
        }
    }
}

fn non_empty_string(sink: &mut Sink, node: &Node, what: &str) -> Option<String> {
    let s = string(sink, node, what)?;
    if s.trim().is_empty() {
        sink.error(node.pos, format!("{what} must not be empty"));
        return None;
    }
    Some(s)
}

fn boolean(sink: &mut Sink, node: &Node, what: &str) -> Option<bool> {
    match &node.value {
        NodeValue::Bool(b) => Some(*b),
        other => {
            sink.error(
                node.pos,
                format!("{what} must be true or false, found {}", other.kind()),
            );
            None
        }
    }
}

fn list<'n>(sink: &mut Sink, node: &'n Node, what: &str) -> Option<&'n [Node]> {
    match &node.value {
        NodeValue::Seq(items) => Some(items),
        other => {
            sink.error(
                node.pos,
                format!("{what} must be a list, found {}", other.kind()),
            );
            None
        }
    }
}

fn duration(sink: &mut Sink, node: &Node, what: &str, signed: bool) -> Option<Duration> {
    let Some(text) = node.as_scalar_text() else {
        sink.error(
            node.pos,
            format!(
                "{what} must be a duration such as 3d, found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    let parsed = if signed {
        Duration::parse_signed(&text)
    } else {
        Duration::parse(&text)
    };
    match parsed {
        Ok(d) => Some(d),
        Err(e) => {
            sink.error(node.pos, format!("bad {what}: {e}"));
            None
        }
    }
}

/// A duration that must be longer than zero.
fn positive_duration(sink: &mut Sink, node: &Node, what: &str) -> Option<Duration> {
    let d = duration(sink, node, what, false)?;
    if d.is_zero() {
        sink.error(node.pos, format!("{what} must be longer than zero"));
        return None;
    }
    Some(d)
}

fn time(sink: &mut Sink, node: &Node, what: &str) -> Option<LocalTime> {
    let Some(text) = node.as_scalar_text() else {
        sink.error(
            node.pos,
            format!(
                "{what} must be a time such as \"09:00\", found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    match LocalTime::parse(&text) {
        Ok(t) => Some(t),
        Err(e) => {
            sink.error(node.pos, format!("bad {what}: {e}"));
            None
        }
    }
}

fn timezone(sink: &mut Sink, node: &Node) -> Option<Tz> {
    let text = non_empty_string(sink, node, "`timezone`")?;
    match text.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
            sink.error(
                node.pos,
                format!("unknown time zone `{text}`{}", suggestion(&text, names)),
            );
            None
        }
    }
}

/// Checks expressions and templates written in a workflow against the names in its scope.
pub struct Scalars<'a> {
    checker: &'a ScalarChecker<'a>,
    scope: Vec<&'static str>,
}

impl<'a> Scalars<'a> {
    /// Checks with `checker`; a date-triggered workflow has no `event` in scope.
    pub fn new(checker: &'a ScalarChecker<'a>, date_triggered: bool) -> Self {
        let scope = SCOPE
            .iter()
            .copied()
            .filter(|n| !(date_triggered && *n == "event"))
            .collect();
        Self { checker, scope }
    }

    fn check(&self, sink: &mut Sink, source: &str, pos: Pos, kind: ScalarKind) {
        self.checker.check(sink, source, pos, kind, &self.scope);
    }
}

fn expr(sink: &mut Sink, sc: &Scalars, node: &Node, what: &str) -> Option<Expr> {
    let source = match &node.value {
        NodeValue::Str(s) => s.clone(),
        // `if: true` or `when: 1` are legal expressions; keep their text.
        NodeValue::Bool(_) | NodeValue::Int(_) | NodeValue::Float(_) => node.as_scalar_text()?,
        other => {
            sink.error(
                node.pos,
                format!("{what} must be an expression, found {}", other.kind()),
            );
            return None;
        }
    };
    if source.trim().is_empty() {
        sink.error(node.pos, format!("{what} must not be empty"));
        return None;
    }
    sc.check(sink, &source, node.pos, ScalarKind::Expression);
    Some(Expr {
        source,
        pos: node.pos,
    })
}

fn template_text(sink: &mut Sink, sc: &Scalars, node: &Node, what: &str) -> Option<TemplateText> {
    let source = non_empty_string(sink, node, what)?;
    sc.check(sink, &source, node.pos, ScalarKind::Template);
    Some(TemplateText {
        source,
        pos: node.pos,
    })
}

/// Checks every string inside a webhook body as a template.
fn body_templates(sink: &mut Sink, sc: &Scalars, node: &Node) {
    match &node.value {
        NodeValue::Str(s) => sc.check(sink, s, node.pos, ScalarKind::Template),
        NodeValue::Seq(items) => items.iter().for_each(|i| body_templates(sink, sc, i)),
        NodeValue::Map(entries) => entries
            .iter()
            .for_each(|(_, v)| body_templates(sink, sc, v)),
        _ => {}
    }
}

/// Parses `Name <address>` or a bare address.
pub fn mailbox(sink: &mut Sink, node: &Node, what: &str) -> Option<Mailbox> {
    let text = non_empty_string(sink, node, what)?;
    match Mailbox::parse(&text) {
        Some(m) => Some(m),
        None => {
            sink.error(
                node.pos,
                format!("{what} `{text}` is not an email address; write `Name <name@example.com>` or `name@example.com`"),
            );
            None
        }
    }
}

fn https_url(sink: &mut Sink, node: &Node, what: &str) -> Option<url::Url> {
    let text = non_empty_string(sink, node, what)?;
    match url::Url::parse(text.trim()) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
        Ok(u) => {
            sink.error(
                node.pos,
                format!(
                    "{what} must be an https:// address, found `{}://`",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            sink.error(node.pos, format!("{what} `{text}` is not a URL: {e}"));
            None
        }
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn is_step_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_attribute_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn send_window(sink: &mut Sink, node: &Node, what: &str) -> Option<SendWindow> {
    let map = Map::of(sink, node, what)?;
    map.deny_unknown(sink, &["start", "end"], what);
    let start = map
        .required(sink, "start", node.pos, what)
        .and_then(|n| time(sink, n, "window start"));
    let end = map
        .required(sink, "end", node.pos, what)
        .and_then(|n| time(sink, n, "window end"));
    let (start, end) = (start?, end?);
    if start == end {
        sink.error(
            node.pos,
            format!("{what} starts and ends at {start}: it would never open"),
        );
        return None;
    }
    Some(SendWindow { start, end })
}

/// Parses `settings.yaml`. `has_marketing` says whether any workflow is marketing, which makes
/// the postal address and unsubscribe page required.
pub fn settings(sink: &mut Sink, root: &Node, has_marketing: bool) -> Option<Settings> {
    let map = Map::of(sink, root, "settings.yaml")?;
    map.deny_unknown(sink, SETTINGS_KEYS, "settings.yaml");
    let top = root.pos;

    let store = map.required(sink, "store", top, "settings.yaml").and_then(|node| {
        let m = Map::of(sink, node, "`store`")?;
        m.deny_unknown(sink, &["name", "url", "postal_address"], "`store`");
        let name = m.required(sink, "name", node.pos, "`store`").and_then(|n| non_empty_string(sink, n, "`store.name`"));
        let url = m.required(sink, "url", node.pos, "`store`").and_then(|n| https_url(sink, n, "`store.url`"));
        let postal = match m.get("postal_address") {
            Some(n) => Some(non_empty_string(sink, n, "`store.postal_address`")?),
            None if has_marketing => {
                sink.error(node.pos, "`store` is missing `postal_address`: marketing email must carry the store's postal address");
                None
            }
            None => None,
        };
        Some(StoreDetails { name: name?, url: url?.as_str().trim_end_matches('/').to_owned(), postal_address: postal })
    });
    let from = map
        .required(sink, "from", top, "settings.yaml")
        .and_then(|n| mailbox(sink, n, "`from`"));
    let reply_to = map.get("reply_to").map(|n| mailbox(sink, n, "`reply_to`"));
    let tz = map
        .required(sink, "timezone", top, "settings.yaml")
        .and_then(|n| timezone(sink, n));
    let window = match map.get("send_window") {
        Some(n) => send_window(sink, n, "`send_window`"),
        None => Some(SendWindow {
            start: LocalTime::from_hm(9, 0).expect("valid"),
            end: LocalTime::from_hm(21, 0).expect("valid"),
        }),
    };
    let cap = match map.get("frequency_cap") {
        Some(node) => (|| {
            let m = Map::of(sink, node, "`frequency_cap`")?;
            m.deny_unknown(sink, &["max", "per"], "`frequency_cap`");
            let max = m
                .required(sink, "max", node.pos, "`frequency_cap`")
                .and_then(|n| match n.value {
                    NodeValue::Int(i) if (1..=1000).contains(&i) => Some(i as u32),
                    _ => {
                        sink.error(
                            n.pos,
                            "`frequency_cap.max` must be a whole number from 1 to 1000",
                        );
                        None
                    }
                });
            let per = m
                .required(sink, "per", node.pos, "`frequency_cap`")
                .and_then(|n| positive_duration(sink, n, "`frequency_cap.per`"));
            Some(FrequencyCap {
                max: max?,
                per: per?,
            })
        })(),
        None => Some(FrequencyCap {
            max: 1,
            per: Duration::from_minutes(16 * 60),
        }),
    };
    let unsubscribe = match map.get("unsubscribe_url") {
        Some(n) => Some(https_url(sink, n, "`unsubscribe_url`")?),
        None if has_marketing => {
            sink.error(top, "settings.yaml is missing `unsubscribe_url`: marketing email must offer one-click unsubscribe");
            None
        }
        None => None,
    };
    Some(Settings {
        store: store?,
        from: from?,
        reply_to: match reply_to {
            Some(r) => Some(r?),
            None => None,
        },
        timezone: tz?,
        send_window: window?,
        frequency_cap: cap?,
        unsubscribe_url: unsubscribe,
    })
}

/// Reads one workflow file. `stem` is the file name without its extension.
pub fn workflow(
    sink: &mut Sink,
    checker: &ScalarChecker,
    root: &Node,
    stem: &str,
) -> Option<Workflow> {
    let map = Map::of(sink, root, "a workflow file")?;
    let date_triggered = map.get("trigger").and_then(|t| t.get("date")).is_some();
    let scalars = Scalars::new(checker, date_triggered);
    let sc = &scalars;
    map.deny_unknown(sink, WORKFLOW_KEYS, "workflow");
    let top = root.pos;

    let id = map.required(sink, "id", top, "workflow").and_then(|n| {
        let id = non_empty_string(sink, n, "`id`")?;
        if !is_slug(&id) {
            sink.error(
                n.pos,
                format!("id `{id}` must be a slug: lowercase letters, digits and single dashes"),
            );
        } else if id != stem {
            sink.error(
                n.pos,
                format!("id `{id}` must equal the file name `{stem}`"),
            );
        }
        Some(id)
    });
    let name = map
        .get("name")
        .and_then(|n| non_empty_string(sink, n, "`name`"));
    let description = map
        .get("description")
        .and_then(|n| string(sink, n, "`description`"));
    let category = map
        .required_hint(
            sink,
            "category",
            top,
            "workflow",
            ": marketing or transactional",
        )
        .and_then(|n| match n.as_str() {
            Some("marketing") => Some(Category::Marketing),
            Some("transactional") => Some(Category::Transactional),
            _ => {
                let text = n.as_scalar_text().unwrap_or_default();
                sink.error(
                    n.pos,
                    format!(
                        "category must be `marketing` or `transactional`, found `{text}`{}",
                        suggestion(&text, ["marketing", "transactional"])
                    ),
                );
                None
            }
        });
    let enabled = map
        .get("enabled")
        .map_or(Some(true), |n| boolean(sink, n, "`enabled`"));
    let trigger = map
        .required(sink, "trigger", top, "workflow")
        .and_then(|n| trigger(sink, sc, n));
    let key = map.get("key").and_then(|n| expr(sink, sc, n, "`key`"));
    if let (true, Some(k)) = (date_triggered, &key) {
        sink.error(
            k.pos,
            "`key` needs an event trigger: a date trigger has no event to take it from",
        );
    }
    let entry = map
        .get("entry")
        .map_or(Some(EntryPolicy::Single), |n| entry(sink, n));
    let exit_when = match map.get("exit_when") {
        Some(n) => list(sink, n, "`exit_when`").map(|items| {
            items
                .iter()
                .filter_map(|i| event_filter(sink, sc, i, "a goal in `exit_when`"))
                .collect()
        }),
        None => Some(Vec::new()),
    };
    let window = map
        .get("send_window")
        .and_then(|n| send_window(sink, n, "`send_window`"));
    if let (Some(Category::Transactional), Some(key)) = (category, map.key_node("send_window")) {
        sink.warn(
            key.pos,
            "`send_window` is ignored for transactional workflows: they send at any hour",
        );
    }

    let mut ids = HashMap::new();
    let steps = map.required(sink, "steps", top, "workflow").and_then(|n| {
        let items = list(sink, n, "`steps`")?;
        if items.is_empty() {
            sink.error(
                n.pos,
                "`steps` is empty: a workflow needs at least one step",
            );
        }
        Some(steps(sink, sc, items, &mut ids))
    });

    Some(Workflow {
        name: name.unwrap_or_else(|| id.clone().unwrap_or_default()),
        id: id?,
        description,
        category: category?,
        enabled: enabled?,
        trigger: trigger?,
        key,
        entry: entry?,
        exit_when: exit_when?,
        send_window: window,
        steps: steps?,
        path: sink.path().to_path_buf(),
    })
}

fn trigger(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Trigger> {
    let map = Map::of(sink, node, "`trigger`")?;
    match (map.get("event"), map.get("date")) {
        (Some(_), Some(_)) => {
            let key = map.key_node("date").expect("present");
            sink.error(key.pos, "a trigger is either `event` or `date`, not both");
            None
        }
        (Some(_), None) => event_filter(sink, sc, node, "`trigger`").map(Trigger::Event),
        (None, Some(date)) => {
            map.deny_unknown(sink, &["date", "at", "offset", "when"], "date `trigger`");
            let attribute = string(sink, date, "`date`").and_then(|text| {
                let attr = text.strip_prefix("customer.");
                match attr {
                    Some(a) if is_attribute_name(a) => {
                        if NON_DATE_ATTRIBUTES.contains(&a) {
                            sink.error(
                                date.pos,
                                format!("`customer.{a}` is not a date; a date trigger needs a date attribute such as `customer.birthday`"),
                            );
                            return None;
                        }
                        Some(a.to_owned())
                    }
                    _ => {
                        sink.error(
                            date.pos,
                            format!("`{text}` is not a profile attribute; write `customer.<attribute>`, e.g. `customer.birthday`"),
                        );
                        None
                    }
                }
            });
            let at = map
                .get("at")
                .map_or(LocalTime::from_hm(9, 0), |n| time(sink, n, "`at`"));
            let offset = map
                .get("offset")
                .map_or(Some(Duration::from_minutes(0)), |n| {
                    let d = duration(sink, n, "`offset`", true)?;
                    if d.minutes().abs() > 366 * 24 * 60 {
                        sink.error(n.pos, "`offset` must be within a year of the date");
                        return None;
                    }
                    Some(d)
                });
            let when = map.get("when").and_then(|n| expr(sink, sc, n, "`when`"));
            Some(Trigger::Date(DateTrigger {
                attribute: attribute?,
                at: at?,
                offset: offset?,
                when,
            }))
        }
        (None, None) => {
            map.deny_unknown(
                sink,
                &["event", "date", "when", "at", "offset"],
                "`trigger`",
            );
            sink.error(
                node.pos,
                "`trigger` needs `event: <type>` or `date: customer.<attribute>`",
            );
            None
        }
    }
}

/// `{event, when?}`: a trigger, a goal or the event a `wait_for` awaits.
fn event_filter(sink: &mut Sink, sc: &Scalars, node: &Node, what: &str) -> Option<EventFilter> {
    let map = Map::of(sink, node, what)?;
    map.deny_unknown(sink, &["event", "when"], what);
    let event = map.required(sink, "event", node.pos, what).and_then(|n| {
        let ty = non_empty_string(sink, n, "`event`")?;
        if !CANONICAL_EVENTS.contains(&ty.as_str())
            && let Some(near) = crate::diagnostic::did_you_mean(&ty, CANONICAL_EVENTS.iter().copied()) {
                sink.warn(
                    n.pos,
                    format!("`{ty}` is not a store event type; did you mean `{near}`? (custom types are allowed)"),
                );
            }
        Some(ty)
    });
    let when = map.get("when").and_then(|n| expr(sink, sc, n, "`when`"));
    Some(EventFilter {
        event: event?,
        when,
    })
}

fn entry(sink: &mut Sink, node: &Node) -> Option<EntryPolicy> {
    const NAMES: [&str; 3] = ["once", "single", "restart"];
    match &node.value {
        NodeValue::Str(s) => match s.as_str() {
            "once" => Some(EntryPolicy::Once),
            "single" => Some(EntryPolicy::Single),
            "restart" => Some(EntryPolicy::Restart),
            other => {
                sink.error(
                    node.pos,
                    format!(
                        "unknown entry policy `{other}`{}; write once, single, restart or {{every: 365d}}",
                        suggestion(other, NAMES)
                    ),
                );
                None
            }
        },
        NodeValue::Map(_) => {
            let map = Map::of(sink, node, "`entry`")?;
            map.deny_unknown(sink, &["every"], "`entry`");
            let every = map.required(sink, "every", node.pos, "`entry`")?;
            positive_duration(sink, every, "`every`").map(EntryPolicy::Every)
        }
        other => {
            sink.error(
                node.pos,
                format!(
                    "`entry` must be once, single, restart or {{every: 365d}}, found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// Reads a list of steps; `ids` collects step ids across the whole file.
fn steps(
    sink: &mut Sink,
    sc: &Scalars,
    items: &[Node],
    ids: &mut HashMap<String, Pos>,
) -> Vec<StepItem> {
    let mut out = Vec::new();
    let mut exited = false;
    for item in items {
        if exited {
            sink.warn(item.pos, "this step can never run: it comes after `exit`");
            exited = false; // warn once per list
        }
        if let Some(step) = step(sink, sc, item, ids) {
            exited = matches!(step, StepItem::Exit { .. });
            out.push(step);
        }
    }
    out
}

fn branch_steps(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    what: &str,
    ids: &mut HashMap<String, Pos>,
) -> Option<Vec<StepItem>> {
    let items = list(sink, node, what)?;
    Some(steps(sink, sc, items, ids))
}

fn step(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    ids: &mut HashMap<String, Pos>,
) -> Option<StepItem> {
    let entries = match &node.value {
        NodeValue::Str(s) if s == "exit" => return Some(StepItem::Exit { pos: node.pos }),
        NodeValue::Str(s) if STEP_KINDS.contains(&s.as_str()) => {
            sink.error(
                node.pos,
                format!(
                    "step `{s}` needs an `id` and its settings, e.g. `- id: my-step` and `{s}: ...`"
                ),
            );
            return None;
        }
        NodeValue::Str(s) => {
            let all = STEP_KINDS.iter().copied().chain(["exit"]);
            sink.error(
                node.pos,
                format!("unknown step `{s}`{}", suggestion(s, all)),
            );
            return None;
        }
        NodeValue::Map(entries) => entries,
        other => {
            sink.error(
                node.pos,
                format!("a step must be a mapping or `exit`, found {}", other.kind()),
            );
            return None;
        }
    };
    let map = Map { entries };

    // Which kinds are present, and which keys are unknown.
    let mut kinds: Vec<&Node> = Vec::new();
    let mut unknown: Vec<&Node> = Vec::new();
    for (key, _) in entries {
        match key.as_str() {
            Some(k) if STEP_KINDS.contains(&k) => kinds.push(key),
            Some("id" | "then" | "else") => {}
            Some("exit") => sink.error(
                key.pos,
                "write `- exit` on its own line: it takes no id or settings",
            ),
            _ => unknown.push(key),
        }
    }
    let kind_name = kinds.first().and_then(|k| k.as_str());
    for key in &unknown {
        let Some(k) = key.as_str() else {
            sink.error(key.pos, "keys in a step must be names");
            continue;
        };
        match kind_name {
            // Without a known kind, an unknown key is most likely a misspelt kind.
            None => {
                let all = STEP_KINDS.iter().copied().chain(["id"]);
                sink.error(key.pos, format!("unknown step `{k}`{}", suggestion(k, all)));
            }
            Some(kind) => {
                let mut allowed = vec!["id", kind];
                if kind == "if" {
                    allowed.extend(["then", "else"]);
                }
                let all_kinds = STEP_KINDS.iter().copied();
                let hint = crate::diagnostic::did_you_mean(k, allowed.iter().copied())
                    .or_else(|| crate::diagnostic::did_you_mean(k, all_kinds))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                sink.error(key.pos, format!("unknown key `{k}` in `{kind}` step{hint}"));
            }
        }
    }
    if let Some(extra) = kinds.get(1) {
        sink.error(
            extra.pos,
            format!(
                "a step does one thing, but this one has both `{}` and `{}`; split it into two steps",
                kind_name.unwrap_or_default(),
                extra.as_str().unwrap_or_default()
            ),
        );
    }
    if kind_name != Some("if") {
        for word in ["then", "else"] {
            if let Some(k) = map.key_node(word) {
                sink.error(k.pos, format!("`{word}` belongs to an `if` step"));
            }
        }
    }

    let id = match map.get("id") {
        Some(n) => string(sink, n, "step `id`").and_then(|id| {
            if !is_step_id(&id) {
                sink.error(
                    n.pos,
                    format!("step id `{id}` may hold only letters, digits, `-` and `_`"),
                );
                return None;
            }
            if let Some(first) = ids.get(&id) {
                sink.error(
                    n.pos,
                    format!(
                        "duplicate step id `{id}`; it is already used at line {}",
                        first.line
                    ),
                );
            } else {
                ids.insert(id.clone(), n.pos);
            }
            Some(id)
        }),
        None => {
            if kind_name.is_some() {
                sink.error(
                    node.pos,
                    format!(
                        "this `{}` step has no `id`; every step but `exit` needs a stable id",
                        kind_name.unwrap_or_default()
                    ),
                );
            }
            None
        }
    };

    let Some(kind_name) = kind_name else {
        if unknown.is_empty() && map.get("exit").is_none() {
            sink.error(
                node.pos,
                format!(
                    "this step does nothing; give it one of: {}",
                    STEP_KINDS.join(", ")
                ),
            );
        }
        return None;
    };
    let body = map.get(kind_name).expect("kind key present");
    let kind = match kind_name {
        "send_email" => send_email(sink, sc, body).map(StepKind::SendEmail),
        "wait" => wait(sink, body).map(StepKind::Wait),
        "wait_for" => wait_for(sink, sc, body).map(StepKind::WaitFor),
        "if" => {
            let condition = expr(sink, sc, body, "`if`");
            let then = match map.get("then") {
                Some(n) => branch_steps(sink, sc, n, "`then`", ids),
                None => {
                    sink.error(node.pos, "this `if` step has no `then`");
                    None
                }
            };
            let otherwise = match map.get("else") {
                Some(n) => branch_steps(sink, sc, n, "`else`", ids),
                None => Some(Vec::new()),
            };
            (|| {
                Some(StepKind::If(Branching {
                    condition: condition?,
                    then: then?,
                    otherwise: otherwise?,
                }))
            })()
        }
        "ab_split" => ab_split(sink, sc, body, ids).map(StepKind::AbSplit),
        "update_profile" => update_profile(sink, sc, body).map(StepKind::UpdateProfile),
        "webhook" => webhook(sink, sc, body).map(StepKind::Webhook),
        _ => unreachable!("kind names come from STEP_KINDS"),
    };
    Some(StepItem::Step(Step {
        id: id?,
        kind: kind?,
        pos: node.pos,
    }))
}

fn send_email(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<SendEmail> {
    const KEYS: &[&str] = &[
        "template",
        "subject",
        "preheader",
        "from",
        "reply_to",
        "tags",
    ];
    let map = Map::of(sink, node, "`send_email`")?;
    map.deny_unknown(sink, KEYS, "`send_email`");
    let template = map
        .required(sink, "template", node.pos, "`send_email`")
        .and_then(|n| {
            let path = non_empty_string(sink, n, "`template`")?;
            if !(path.ends_with(".mjml") || path.ends_with(".html")) {
                sink.error(
                    n.pos,
                    format!("template `{path}` must end in .mjml or .html"),
                );
                return None;
            }
            if path.starts_with('/') || path.split('/').any(|part| part == "..") {
                sink.error(
                    n.pos,
                    format!("template `{path}` must be a path inside templates/"),
                );
                return None;
            }
            Some((path, n.pos))
        });
    let subject = map
        .required(sink, "subject", node.pos, "`send_email`")
        .and_then(|n| template_text(sink, sc, n, "`subject`"));
    let preheader = map
        .get("preheader")
        .and_then(|n| template_text(sink, sc, n, "`preheader`"));
    let from = map.get("from").map(|n| mailbox(sink, n, "`from`"));
    let reply_to = map.get("reply_to").map(|n| mailbox(sink, n, "`reply_to`"));
    let tags = match map.get("tags") {
        Some(n) => tag_list(sink, n, "`tags`"),
        None => Some(Vec::new()),
    };
    let (template, template_pos) = template?;
    Some(SendEmail {
        template,
        template_pos,
        subject: subject?,
        preheader,
        from: from.map_or(Some(None), |f| f.map(Some))?,
        reply_to: reply_to.map_or(Some(None), |f| f.map(Some))?,
        tags: tags?,
    })
}

fn tag_list(sink: &mut Sink, node: &Node, what: &str) -> Option<Vec<String>> {
    let items = list(sink, node, what)?;
    let mut ok = true;
    let mut tags = Vec::new();
    for item in items {
        match non_empty_string(sink, item, "a tag") {
            Some(t) => tags.push(t),
            None => ok = false,
        }
    }
    ok.then_some(tags)
}

const YEAR_MINUTES: i64 = 365 * 24 * 60;

fn wait(sink: &mut Sink, node: &Node) -> Option<Wait> {
    if let NodeValue::Map(_) = node.value {
        let map = Map::of(sink, node, "`wait`")?;
        map.deny_unknown(sink, &["until"], "`wait`");
        let until = map.required(sink, "until", node.pos, "`wait`")?;
        return time(sink, until, "`until`").map(Wait::Until);
    }
    let d = positive_duration(sink, node, "`wait`")?;
    if d.minutes() > YEAR_MINUTES {
        sink.warn(
            node.pos,
            format!("`wait: {d}` is longer than a year; is that intended?"),
        );
    }
    Some(Wait::For(d))
}

fn wait_for(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<WaitFor> {
    let map = Map::of(sink, node, "`wait_for`")?;
    map.deny_unknown(sink, &["event", "when", "timeout"], "`wait_for`");
    let event = map.required(sink, "event", node.pos, "`wait_for`").and_then(|n| {
        let ty = non_empty_string(sink, n, "`event`")?;
        if !CANONICAL_EVENTS.contains(&ty.as_str())
            && let Some(near) = crate::diagnostic::did_you_mean(&ty, CANONICAL_EVENTS.iter().copied()) {
                sink.warn(n.pos, format!("`{ty}` is not a store event type; did you mean `{near}`? (custom types are allowed)"));
            }
        Some(ty)
    });
    let when = map.get("when").and_then(|n| expr(sink, sc, n, "`when`"));
    let timeout = map
        .required_hint(
            sink,
            "timeout",
            node.pos,
            "`wait_for`",
            ": how long to wait before going on",
        )
        .and_then(|n| {
            let d = positive_duration(sink, n, "`timeout`")?;
            if d.minutes() > YEAR_MINUTES {
                sink.warn(
                    n.pos,
                    format!("`timeout: {d}` is longer than a year; is that intended?"),
                );
            }
            Some(d)
        });
    Some(WaitFor {
        filter: EventFilter {
            event: event?,
            when,
        },
        timeout: timeout?,
    })
}

fn ab_split(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    ids: &mut HashMap<String, Pos>,
) -> Option<Vec<SplitBranch>> {
    let items = list(sink, node, "`ab_split`")?;
    if items.len() < 2 {
        sink.error(
            node.pos,
            "`ab_split` needs at least two branches (a branch with `steps: []` is a holdout group)",
        );
    }
    let mut ok = items.len() >= 2;
    let mut branches = Vec::new();
    for item in items {
        let branch = (|| {
            let map = Map::of(sink, item, "an `ab_split` branch")?;
            map.deny_unknown(sink, &["weight", "steps"], "an `ab_split` branch");
            let weight = map
                .required(sink, "weight", item.pos, "this `ab_split` branch")
                .and_then(|n| match n.value {
                    NodeValue::Int(w) if (1..=10_000).contains(&w) => Some(w as u32),
                    _ => {
                        let shown = n
                            .as_scalar_text()
                            .unwrap_or_else(|| n.value.kind().to_owned());
                        sink.error(
                            n.pos,
                            format!(
                                "`weight` must be a whole number from 1 to 10000, found `{shown}`"
                            ),
                        );
                        None
                    }
                });
            let steps = map
                .required_hint(
                    sink,
                    "steps",
                    item.pos,
                    "this `ab_split` branch",
                    " (`steps: []` makes a holdout group)",
                )
                .and_then(|n| branch_steps(sink, sc, n, "`steps`", ids));
            Some(SplitBranch {
                weight: weight?,
                steps: steps?,
            })
        })();
        match branch {
            Some(b) => branches.push(b),
            None => ok = false,
        }
    }
    ok.then_some(branches)
}

fn update_profile(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<UpdateProfile> {
    let map = Map::of(sink, node, "`update_profile`")?;
    map.deny_unknown(
        sink,
        &["set", "add_tags", "remove_tags"],
        "`update_profile`",
    );
    let mut ok = true;
    let mut set = Vec::new();
    if let Some(n) = map.get("set") {
        match Map::of(sink, n, "`set`") {
            Some(m) => {
                for (key, value) in m.entries {
                    let Some(name) = key.as_str() else {
                        sink.error(key.pos, "attribute names must be text");
                        ok = false;
                        continue;
                    };
                    if PROTECTED_ATTRIBUTES.contains(&name) {
                        sink.error(key.pos, format!("`{name}` cannot be set by a workflow: identity and consent come from the customer"));
                        ok = false;
                    } else if name == "tags" {
                        sink.error(
                            key.pos,
                            "change tags with `add_tags` and `remove_tags`, not `set`",
                        );
                        ok = false;
                    } else if !is_attribute_name(name) {
                        sink.error(
                            key.pos,
                            format!(
                                "attribute `{name}` may hold only lowercase letters, digits and `_`"
                            ),
                        );
                        ok = false;
                    } else {
                        let v = match &value.value {
                            NodeValue::Str(s) => {
                                sc.check(sink, s, value.pos, ScalarKind::Template);
                                ProfileValue::Template(TemplateText {
                                    source: s.clone(),
                                    pos: value.pos,
                                })
                            }
                            _ => ProfileValue::Literal(value.to_json()),
                        };
                        set.push((name.to_owned(), v));
                    }
                }
            }
            None => ok = false,
        }
    }
    let add_tags = map
        .get("add_tags")
        .map_or(Some(Vec::new()), |n| tag_list(sink, n, "`add_tags`"));
    let remove_tags = map
        .get("remove_tags")
        .map_or(Some(Vec::new()), |n| tag_list(sink, n, "`remove_tags`"));
    let (add_tags, remove_tags) = (add_tags?, remove_tags?);
    if ok && set.is_empty() && add_tags.is_empty() && remove_tags.is_empty() {
        sink.error(
            node.pos,
            "`update_profile` changes nothing; give it `set`, `add_tags` or `remove_tags`",
        );
        return None;
    }
    ok.then_some(UpdateProfile {
        set,
        add_tags,
        remove_tags,
    })
}

fn webhook(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Webhook> {
    let map = Map::of(sink, node, "`webhook`")?;
    map.deny_unknown(sink, &["url", "method", "body", "secret"], "`webhook`");
    let url = map
        .required(sink, "url", node.pos, "`webhook`")
        .and_then(|n| https_url(sink, n, "webhook `url`"));
    let method = map.get("method").map_or(Some(HttpMethod::Post), |n| {
        let text = n.as_scalar_text().unwrap_or_default();
        match text.to_ascii_uppercase().as_str() {
            "POST" => Some(HttpMethod::Post),
            "PUT" => Some(HttpMethod::Put),
            "PATCH" => Some(HttpMethod::Patch),
            _ => {
                sink.error(
                    n.pos,
                    format!("webhook `method` must be POST, PUT or PATCH, found `{text}`"),
                );
                None
            }
        }
    });
    let body = map.get("body").map(|n| {
        body_templates(sink, sc, n);
        n.to_json()
    });
    let secret = match map.get("secret") {
        Some(n) => (|| {
            let name = non_empty_string(sink, n, "webhook `secret`")?;
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'));
            if !valid {
                sink.error(n.pos, format!("webhook `secret` names a stored secret (letters, digits, `-`, `_`, `/`), not the secret itself; found `{}`", redact(&name)));
                return None;
            }
            Some(Some(name))
        })(),
        None => Some(None),
    };
    Some(Webhook {
        url: url?,
        method: method?,
        body,
        secret: secret?,
    })
}

/// Shows only the first characters of a value that may be a secret pasted by mistake.
fn redact(text: &str) -> String {
    let head: String = text.chars().take(3).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_ids() {
        assert!(is_slug("win-back"));
        assert!(is_slug("a1"));
        for bad in ["", "Win-back", "win--back", "-x", "x-", "win_back"] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert!(is_step_id("wait-90"));
        assert!(is_step_id("vip_last_call"));
        assert!(!is_step_id("-x"));
        assert!(!is_step_id("a b"));
    }
}
