//! The sample `customer` and `event` each workflow's emails are rendered with: from the
//! `--data` file, or made up from the `customer.*` and `event.*` paths the templates read.
//!
//! A `--data` file is YAML or JSON, a mapping keyed by workflow id, each entry with a
//! `customer` and/or an `event` object; a `default` entry applies to every workflow without
//! its own. Each part is taken whole from the most specific entry that has it (the workflow's,
//! then `default`), else made up. A given customer without an `email` gets the made-up one (the
//! email needs a recipient), and the page says so.
//!
//! Made-up data holds only what a real profile or trigger event can: a `customer.*` attribute
//! the project knows and an `event.*` field the trigger's type carries. A misspelt path
//! (which `validate` warns of) stays empty, as it would for every customer.
//!
//! Made-up values are plausible for the field's name (`first_name` is "Ayşe", a `total` is
//! 42.5, `items` a list of two products, a `url` a page of the store), never remote images: a
//! preview needs no network.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use nudge_core::event::catalog::{COUNTED_ATTRIBUTES, CUSTOMER_ATTRIBUTES, may_carry};
use nudge_core::workflow::Project;
use nudge_core::workflow::model::{StepKind, Trigger, Workflow};

use super::steps::EmailStep;

/// Where one part of a workflow's sample data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The workflow's own entry of the `--data` file.
    Workflow,
    /// The `default` entry of the `--data` file.
    Default,
    /// Made up from what the templates read.
    MadeUp,
    /// None: a date trigger has no event.
    Absent,
}

impl Source {
    /// How the page says it.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Workflow => "from the data file (this workflow's entry)",
            Source::Default => "from the data file (its default entry)",
            Source::MadeUp => "made up from what the templates read",
            Source::Absent => "none (a date trigger has no event)",
        }
    }
}

/// One workflow's sample data.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The customer's id.
    pub customer_id: String,
    /// `customer` in templates.
    pub customer: Map<String, Value>,
    /// Where `customer` came from.
    pub customer_source: Source,
    /// Whether the recipient address was made up because the given customer had none.
    pub email_made_up: bool,
    /// `event` in templates.
    pub event: Option<Map<String, Value>>,
    /// Where `event` came from.
    pub event_source: Source,
}

/// The parsed `--data` file: per workflow id (and `default`), a customer and/or an event.
#[derive(Debug, Clone, Default)]
pub struct SampleData {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    customer: Option<Map<String, Value>>,
    event: Option<Map<String, Value>>,
}

/// Why a `--data` file cannot be used. Messages name the entry at fault, never its values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Not YAML or JSON.
    #[error("line {line}: {message}")]
    Syntax {
        /// Where the parser stopped.
        line: u32,
        /// What it found wrong.
        message: String,
    },
    /// The file is not a mapping of workflow ids.
    #[error("the data file must be a mapping of workflow ids (or `default`) to entries")]
    NotAMapping,
    /// An entry is not a mapping with `customer` and/or `event` objects.
    #[error(
        "entry `{0}` must be a mapping with a `customer` and/or an `event` object, and nothing else"
    )]
    BadEntry(String),
}

impl SampleData {
    /// Parses a `--data` file's text (YAML, of which JSON is a part).
    ///
    /// # Errors
    ///
    /// Text that does not parse, or entries that are not `{customer: {...}, event: {...}}`.
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let node = nudge_core::workflow::yaml::parse(text).map_err(|e| DataError::Syntax {
            line: e.pos.line,
            message: e.message,
        })?;
        let Value::Object(root) = node.to_json() else {
            return Err(DataError::NotAMapping);
        };
        let mut entries = BTreeMap::new();
        for (id, value) in root {
            let Value::Object(mut fields) = value else {
                return Err(DataError::BadEntry(id));
            };
            let mut take = |name: &str| match fields.remove(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(map)) => Ok(Some(map)),
                Some(_) => Err(()),
            };
            let (Ok(customer), Ok(event)) = (take("customer"), take("event")) else {
                return Err(DataError::BadEntry(id));
            };
            if !fields.is_empty() {
                return Err(DataError::BadEntry(id));
            }
            entries.insert(id, Entry { customer, event });
        }
        Ok(Self { entries })
    }

    /// The sample for `workflow`, whose emails are `emails`.
    pub fn sample_for(
        &self,
        project: &Project,
        workflow: &Workflow,
        emails: &[EmailStep<'_>],
    ) -> Sample {
        let own = self.entries.get(&workflow.id);
        let default = self.entries.get("default");
        let pick = |get: fn(&Entry) -> Option<&Map<String, Value>>| {
            own.and_then(get)
                .map(|m| (m.clone(), Source::Workflow))
                .or_else(|| default.and_then(get).map(|m| (m.clone(), Source::Default)))
        };
        let reads: BTreeSet<String> = paths_read(project, emails)
            .into_iter()
            .filter(|p| carried(project, workflow, p))
            .collect();
        let (mut customer, customer_source) = pick(|e| e.customer.as_ref())
            .unwrap_or_else(|| (made_up(&reads, "customer", base_customer()), Source::MadeUp));
        let mut email_made_up = false;
        if !customer.get("email").is_some_and(Value::is_string) {
            customer.insert("email".to_owned(), Value::from(SAMPLE_EMAIL));
            email_made_up = customer_source != Source::MadeUp;
        }
        let (event, event_source) = match pick(|e| e.event.as_ref()) {
            Some((event, source)) => (Some(event), source),
            None if matches!(workflow.trigger, Trigger::Date(_)) => (None, Source::Absent),
            None => {
                let mut base = Map::new();
                base.insert("customer".to_owned(), Value::Object(customer.clone()));
                let mut event = made_up(&reads, "event", base);
                if let Some(currency) = &project.settings.currency {
                    set_currency(&mut event, currency);
                }
                (Some(event), Source::MadeUp)
            }
        };
        let customer_id = customer
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("c-sample")
            .to_owned();
        Sample {
            customer_id,
            customer,
            customer_source,
            email_made_up,
            event,
            event_source,
        }
    }
}

/// The recipient of made-up data: a reserved domain (RFC 2606), so it can reach no one.
const SAMPLE_EMAIL: &str = "ayse.yilmaz@example.com";

fn base_customer() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".to_owned(), json!("c-sample"));
    m.insert("email".to_owned(), json!(SAMPLE_EMAIL));
    m.insert("first_name".to_owned(), json!("Ayşe"));
    m.insert("last_name".to_owned(), json!("Yılmaz"));
    m.insert("accepts_marketing".to_owned(), json!(true));
    m
}

/// Whether a profile or the trigger event can hold `path`: a customer attribute the project
/// knows (canonical, counted, declared in settings or written by `update_profile`), or an event
/// field the trigger's type carries (any, for a custom type). Paths that `validate` warns of
/// are left empty, as they would be for every customer, rather than made up.
fn carried(project: &Project, workflow: &Workflow, path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("customer.") {
        let attr = rest.split('.').next().unwrap_or(rest);
        let written = project.workflows.iter().flat_map(|w| w.all_steps()).any(|s| {
            matches!(&s.kind, StepKind::UpdateProfile(u) if u.set.iter().any(|(n, _)| n == attr))
        });
        return CUSTOMER_ATTRIBUTES.contains(&attr)
            || COUNTED_ATTRIBUTES.contains(&attr)
            || project.settings.profile.iter().any(|d| d.name == attr)
            || written;
    }
    let Some(rest) = path.strip_prefix("event.") else {
        return false;
    };
    match &workflow.trigger {
        Trigger::Event(f) => may_carry(&f.event, &rest.split('.').collect::<Vec<_>>()),
        Trigger::Date(_) => false,
    }
}

/// The `customer.*` and `event.*` paths the emails' templates (and the templates they
/// include), subjects and preheaders read.
fn paths_read(project: &Project, emails: &[EmailStep<'_>]) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let templates = &project.templates;
    for e in emails {
        let mut pending = vec![e.email.template.clone()];
        let mut seen = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(file) = templates.file(&name) {
                paths.extend(file.reads.iter().map(|r| r.path.clone()));
                pending.extend(file.renders.iter().cloned());
            }
        }
        let texts = std::iter::once(&e.email.subject).chain(e.email.preheader.as_ref());
        for text in texts {
            if let Ok(t) = templates.env().template_from_str(&text.source) {
                paths.extend(
                    t.undeclared_variables(true)
                        .into_iter()
                        .filter(|p| p.starts_with("customer.") || p.starts_with("event.")),
                );
            }
        }
    }
    paths
}

/// Every made-up `currency` field under `map` set to the store's currency.
fn set_currency(map: &mut Map<String, Value>, currency: &str) {
    for (key, value) in map.iter_mut() {
        match value {
            Value::Object(inner) => set_currency(inner, currency),
            Value::String(_) if key == "currency" => *value = Value::from(currency),
            _ => {}
        }
    }
}

/// `base` with a plausible value at every path under `root` (`customer` or `event`) that it
/// does not have yet.
fn made_up(
    paths: &BTreeSet<String>,
    root: &str,
    mut base: Map<String, Value>,
) -> Map<String, Value> {
    let prefix = format!("{root}.");
    for path in paths {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        insert(&mut base, root, &parts);
    }
    base
}

/// Puts a made-up value at `parts` in `map`, making the objects on the way; a value already
/// there stays (an object read deeper stays an object).
fn insert(map: &mut Map<String, Value>, parent: &str, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        if !map.contains_key(*first) {
            map.insert((*first).to_owned(), plausible(parent, first));
        }
        return;
    }
    let entry = map
        .entry((*first).to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(inner) = entry {
        insert(inner, first, rest);
    }
}

/// A plausible value for a field named `name` of the object named `parent` (`order`,
/// `customer`).
pub fn plausible(parent: &str, name: &str) -> Value {
    let n = name.to_ascii_lowercase();
    let has = |w: &str| n.contains(w);
    match n.as_str() {
        "first_name" => return json!("Ayşe"),
        "last_name" => return json!("Yılmaz"),
        "name" | "full_name" => return json!("Ayşe Yılmaz"),
        "email" => return json!(SAMPLE_EMAIL),
        "id" => return json!("1001"),
        "currency" => return json!("EUR"),
        "timezone" => return json!("Europe/Istanbul"),
        "birthday" => return json!("1991-06-14"),
        "carrier" => return json!("DHL"),
        "tracking_number" => return json!("JD014600003828411"),
        "accepts_marketing" => return json!(true),
        "tags" => return json!(["newsletter"]),
        _ => {}
    }
    if has("url") || has("link") {
        let page = n
            .trim_end_matches("url")
            .trim_end_matches("link")
            .trim_end_matches('_')
            .replace('_', "-");
        let parent = parent.to_ascii_lowercase().replace('_', "-");
        return json!(match page.as_str() {
            "" => format!("https://shop.example/{parent}/1001"),
            page => format!("https://shop.example/{parent}/{page}/1001"),
        });
    }
    if has("items") || has("products") || n == "lines" {
        return sample_items();
    }
    if has("total") || has("price") || has("amount") || has("spent") || has("subtotal") {
        return json!(42.5);
    }
    if has("count") || has("quantity") || n == "number" {
        return json!(3);
    }
    if n.ends_with("_at") || has("date") {
        return json!("2026-03-02T10:00:00Z");
    }
    if has("code") {
        return json!("WELCOME10");
    }
    json!(format!("Sample {}", n.replace('_', " ")))
}

fn sample_items() -> Value {
    json!([
        {"sku": "BEAN-HOUSE-500", "title": "House Espresso Blend, 500 g", "quantity": 1,
         "price": 28.0, "url": "https://shop.example/products/house-espresso"},
        {"sku": "BEAN-ETH-250", "title": "Ethiopia Yirgacheffe, 250 g", "quantity": 2,
         "price": 7.25, "url": "https://shop.example/products/ethiopia-yirgacheffe"}
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_plausible_for_their_names() {
        assert_eq!(plausible("customer", "first_name"), json!("Ayşe"));
        assert_eq!(plausible("order", "total"), json!(42.5));
        assert!(plausible("order", "items").is_array());
        assert_eq!(
            plausible("shipment", "tracking_url"),
            json!("https://shop.example/shipment/tracking/1001")
        );
        assert_eq!(
            plausible("checkout", "url"),
            json!("https://shop.example/checkout/1001")
        );
        assert_eq!(plausible("customer", "orders_count"), json!(3));
        assert_eq!(plausible("item", "colour"), json!("Sample colour"));
    }

    #[test]
    fn made_up_data_nests_every_path_read() {
        let paths: BTreeSet<String> = [
            "event.order.id",
            "event.order",
            "event.order.items",
            "customer.first_name",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let event = made_up(&paths, "event", Map::new());
        assert_eq!(event["order"]["id"], json!("1001"));
        assert!(event["order"]["items"].is_array());
        assert!(!event.contains_key("first_name"));
    }

    #[test]
    fn data_files_are_yaml_or_json_of_entries() {
        let data = SampleData::parse(
            "default: {customer: {first_name: Zeynep}}\nwin-back:\n  event: {x: 1}\n",
        )
        .unwrap();
        assert!(data.entries["default"].customer.is_some());
        assert!(data.entries["win-back"].event.is_some());
        assert!(SampleData::parse(r#"{"default": {"customer": {"a": 1}}}"#).is_ok());
        for bad in [
            "[1, 2]",
            "w: 3",
            "w: {customer: 1}",
            "w: {custmer: {}}",
            "w: [",
        ] {
            assert!(SampleData::parse(bad).is_err(), "{bad}");
        }
    }
}
