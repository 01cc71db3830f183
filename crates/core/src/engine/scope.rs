//! What templates and conditions see, built on demand.
//!
//! A scope is made for every condition, key, subject and email body the engine evaluates, many
//! per input, while a template reads a few fields of it. So a scope is a minijinja object over
//! the engine's own data (shared, not copied) that converts a value only when a template reads
//! it: making one costs an allocation, whatever the size of the profile or the trigger.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::Value as V;
use minijinja::value::{Enumerator, Object, ObjectExt};
use serde_json::{Map, Value};

/// A JSON object as templates see it (`customer`, `event`, and the objects in them): a map
/// whose fields are converted when read, to the same values `minijinja::value::Serde` would
/// give. A nested object is the same kind of view (the shared root and the path to it), so
/// `event.order.id` converts one string, not the order.
#[derive(Debug)]
pub(super) struct JsonMap {
    root: Arc<Map<String, Value>>,
    path: Vec<String>,
}

impl JsonMap {
    /// The object as a template value.
    pub(super) fn value(map: &Arc<Map<String, Value>>) -> V {
        V::from_object(JsonMap {
            root: Arc::clone(map),
            path: Vec::new(),
        })
    }

    /// The object this view is of.
    fn map(&self) -> Option<&Map<String, Value>> {
        let mut map = &*self.root;
        for key in &self.path {
            map = map.get(key)?.as_object()?;
        }
        Some(map)
    }
}

impl Object for JsonMap {
    fn get_value(self: &Arc<Self>, key: &V) -> Option<V> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<V> {
        Some(match self.map()?.get(key)? {
            Value::Object(_) => {
                let mut path = Vec::with_capacity(self.path.len() + 1);
                path.extend(self.path.iter().cloned());
                path.push(key.to_owned());
                V::from_object(JsonMap {
                    root: Arc::clone(&self.root),
                    path,
                })
            }
            other => json(other),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| {
            Box::new(
                this.map()
                    .into_iter()
                    .flat_map(Map::keys)
                    .map(|k| V::from(k.as_str())),
            )
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.map().map_or(0, Map::len))
    }
}

/// A JSON value as a template value.
pub(super) fn json(value: &Value) -> V {
    V::from(minijinja::value::Serde(value))
}

/// The names a template sees: `customer`, `event` (the trigger's or the new event's detail),
/// `store`, `run`, `links` and, after a `wait_for`, `waited`.
#[derive(Debug)]
pub(super) struct Scope {
    /// The profile.
    pub(super) customer: Arc<Map<String, Value>>,
    /// The event's detail; `None` is `none` (a date trigger, or a trigger not kept).
    pub(super) event: Option<Arc<Map<String, Value>>>,
    /// `store` of the settings, converted once per engine.
    pub(super) store: V,
    /// The run's id and start (`run.id` and `run.started_at` are empty strings without one).
    pub(super) run: Option<(String, DateTime<Utc>)>,
    /// The customer's signed unsubscribe link, when the settings give a base URL.
    pub(super) unsubscribe: Option<Arc<str>>,
    /// The outcome of the run's last `wait_for`.
    pub(super) waited: Option<bool>,
}

impl Scope {
    const NAMES: &'static [&'static str] = &["customer", "event", "links", "run", "store"];
    const NAMES_WAITED: &'static [&'static str] =
        &["customer", "event", "links", "run", "store", "waited"];
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &V) -> Option<V> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<V> {
        Some(match key {
            "customer" => JsonMap::value(&self.customer),
            "event" => self.event.as_ref().map_or(V::from(()), JsonMap::value),
            "store" => self.store.clone(),
            "run" => {
                let (id, started_at) = match &self.run {
                    Some((id, at)) => (
                        id.as_str(),
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                    None => ("", String::new()),
                };
                V::from_pairs([("id", V::from(id)), ("started_at", V::from(started_at))])
            }
            "links" => V::from_pairs(
                self.unsubscribe
                    .iter()
                    .map(|link| ("unsubscribe", V::from(&**link))),
            ),
            "waited" => V::from_pairs([("matched", V::from(self.waited?))]),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(if self.waited.is_some() {
            Self::NAMES_WAITED
        } else {
            Self::NAMES
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Arc<Map<String, Value>> {
        let v = serde_json::json!({
            "first_name": "Ayşe", "orders_count": 3, "tags": ["vip", "newsletter"],
            "address": {"city": "İzmir", "geo": {"lat": 38.4}},
            "orders": [{"id": "o-1", "items": [{"sku": "MUG"}]}], "accepts_marketing": true,
            "gone": null
        });
        Arc::new(v.as_object().unwrap().clone())
    }

    fn scope(waited: Option<bool>) -> V {
        V::from_object(Scope {
            customer: profile(),
            event: None,
            store: V::from(minijinja::value::Serde(serde_json::json!({"name": "Shop"}))),
            run: Some((
                "r-1".to_owned(),
                "2026-03-01T10:00:00.250Z".parse().unwrap(),
            )),
            unsubscribe: Some(Arc::from("https://x.test/u?t=1")),
            waited,
        })
    }

    fn render(source: &str, scope: &V) -> String {
        let env = minijinja::Environment::new();
        env.render_str(source, scope).unwrap()
    }

    #[test]
    fn fields_read_as_the_serialized_profile_would() {
        let eager = V::from(minijinja::value::Serde(&*profile()));
        let lazy = JsonMap::value(&profile());
        for source in [
            "{{ c.first_name }}|{{ c.orders_count + 1 }}|{{ c.tags | join(',') }}",
            "{{ c.address.city }}|{{ c.accepts_marketing }}|{{ c.gone is none }}",
            "{{ c.missing is defined }}|{{ c | length }}|{{ c | dictsort }}",
            "{% for k, v in c | items %}{{ k }}={{ v }};{% endfor %}",
            "{{ 'vip' in c.tags }}|{{ 'first_name' in c }}|{{ c }}",
            "{{ c.address.geo.lat }}|{{ c.address | length }}|{{ c.address }}|{{ c.address.nope }}",
            "{% for o in c.orders %}{{ o.id }}:{{ o['items'][0].sku }}{% endfor %}|{{ c.address | dictsort }}",
        ] {
            let with = |c: &V| render(source, &V::from_pairs([("c", c.clone())]));
            assert_eq!(with(&lazy), with(&eager), "{source}");
        }
    }

    #[test]
    fn the_scope_names_run_links_and_waited() {
        let s = scope(Some(true));
        assert_eq!(
            render(
                "{{ run.id }} {{ run.started_at }} {{ links.unsubscribe }} {{ waited.matched }} {{ store.name }} {{ event is none }}",
                &s
            ),
            "r-1 2026-03-01T10:00:00Z https://x.test/u?t=1 True Shop True"
        );
        assert_eq!(render("{{ waited is defined }}", &scope(None)), "False");
        assert_eq!(
            render(
                "{% for k in s %}{{ k }} {% endfor %}",
                &V::from_pairs([("s", scope(None))])
            ),
            "customer event links run store "
        );
    }
}
