//! The pure mapping of one Shopify delivery (topic, headers, payload) to what Nudge does with
//! it: a canonical store event, a fulfillment waiting for its order's customer, an erasure, an
//! ignored delivery or an invalid one. No I/O and no panic on any input.
//!
//! Guarantees:
//! - the event id is `shopify:{shop}:{topic}:{X-Shopify-Event-Id}` (or the webhook id when the
//!   event id is absent), so redeliveries and several subscriptions of one store event count
//!   once; the HTTPS and the EventBridge paths give the same id;
//! - Shopify's integer ids (customers, orders, checkouts) become decimal strings; a customer
//!   without an id is the guest `guest:` + the lower-cased email; neither is ignored;
//! - consent is `email_marketing_consent.state == "subscribed"`, the older `accepts_marketing`
//!   when the newer is absent, and left alone when both are absent (API 2025-01 and later);
//! - prices (Shopify sends decimal strings) become JSON numbers; tags (a comma-separated string)
//!   become an array;
//! - a field of the wrong type is [`Mapped::Invalid`] naming it (e.g. `line_items[2].price`),
//!   never echoing its value (it may be personal data).
//!
//! Limits: only the fields the workflows use are carried over (see `docs/EVENTS.md`); money is
//! read as a binary float (enough for templates and conditions, not for accounting).

use crate::event::{StoreEvent, check_time_range, parse_event};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The headers of a delivery Nudge reads (the same on both paths; none is secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `X-Shopify-Topic`, e.g. `orders/create`.
    pub topic: Option<String>,
    /// `X-Shopify-Shop-Domain`, e.g. `beans.myshopify.com`.
    pub shop: Option<String>,
    /// `X-Shopify-Event-Id`: the store event (shared by its subscriptions and retries).
    pub event_id: Option<String>,
    /// `X-Shopify-Webhook-Id`: the delivery (the fallback of the event id).
    pub webhook_id: Option<String>,
    /// `X-Shopify-API-Version`.
    pub api_version: Option<String>,
    /// `X-Shopify-Triggered-At`: when Shopify saw the change (the fallback of a payload time).
    pub triggered_at: Option<String>,
}

impl Headers {
    /// The headers from `lookup` (a header's value by its canonical name, any case).
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Headers {
            topic: get("X-Shopify-Topic"),
            shop: get("X-Shopify-Shop-Domain"),
            event_id: get("X-Shopify-Event-Id"),
            webhook_id: get("X-Shopify-Webhook-Id"),
            api_version: get("X-Shopify-API-Version"),
            triggered_at: get("X-Shopify-Triggered-At"),
        }
    }

    /// The canonical event id, or why there is none.
    pub fn canonical_id(&self) -> Result<String, String> {
        let topic = self
            .topic
            .as_deref()
            .ok_or("missing header X-Shopify-Topic")?;
        let shop = self
            .shop
            .as_deref()
            .ok_or("missing header X-Shopify-Shop-Domain")?;
        let id = self
            .event_id
            .as_deref()
            .or(self.webhook_id.as_deref())
            .ok_or("missing header X-Shopify-Event-Id (and X-Shopify-Webhook-Id)")?;
        Ok(format!("shopify:{shop}:{topic}:{id}"))
    }
}

/// A fulfillment's event, waiting for the customer of its order.
#[derive(Debug, Clone, PartialEq)]
pub struct Fulfillment {
    /// The order (decimal digits).
    pub order_id: String,
    /// The canonical event id.
    pub event_id: String,
    /// The canonical event without `detail.customer` (JSON text; [`with_customer`] completes
    /// it). Holds no customer data, so it can be kept while the order is unknown.
    pub body: String,
}

/// What one delivery means.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// A canonical event to apply.
    Event(StoreEvent),
    /// A fulfillment: applied for the customer of its order (kept until the order is seen).
    Fulfillment(Fulfillment),
    /// `customers/redact`: erase these customer ids (the customer's and the guest's).
    Redact {
        /// The canonical event id.
        event_id: String,
        /// The ids to erase.
        customer_ids: Vec<String>,
    },
    /// Valid but of no use to Nudge: counted, not kept.
    Ignored {
        /// The canonical event id, when the headers give one.
        event_id: Option<String>,
        /// Why (names no customer data).
        reason: String,
    },
    /// Not a valid delivery of its topic: dead-lettered.
    Invalid {
        /// The canonical event id, when the headers give one.
        event_id: Option<String>,
        /// Why, naming the header or field (never its value).
        reason: String,
    },
}

/// The topics Nudge acts on (the ones to subscribe to).
pub const TOPICS: &[&str] = &[
    "customers/create",
    "customers/update",
    "customers_email_marketing_consent/update",
    "customers/redact",
    "orders/create",
    "orders/cancelled",
    "fulfillments/create",
    "fulfillments/update",
    "checkouts/create",
    "checkouts/update",
];

/// Maps one delivery. `payload` is the body as received; `received` is the fallback time
/// when neither the payload nor `X-Shopify-Triggered-At` says when it happened.
pub fn map(headers: &Headers, payload: &str, received: DateTime<Utc>) -> Mapped {
    let event_id = match headers.canonical_id() {
        Ok(id) => id,
        Err(reason) => {
            return Mapped::Invalid {
                event_id: None,
                reason,
            };
        }
    };
    let topic = headers.topic.as_deref().unwrap_or_default();
    let invalid = |reason: String| Mapped::Invalid {
        event_id: Some(event_id.clone()),
        reason,
    };
    let body = match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return invalid("the payload is not a JSON object".to_owned()),
        Err(e) => return invalid(format!("the payload is not JSON: {e}")),
    };
    let ctx = Ctx {
        event_id: &event_id,
        headers,
        received,
    };
    let result = match topic {
        "customers/create" => ctx.customer(&body, "customer.created", &["created_at"]),
        "customers/update" => ctx.customer(&body, "customer.updated", &["updated_at"]),
        "customers_email_marketing_consent/update" => ctx.consent(&body),
        "orders/create" => ctx.order(&body, "order.placed", &["created_at"]),
        "orders/cancelled" => ctx.order(&body, "order.cancelled", &["cancelled_at", "updated_at"]),
        "fulfillments/create" => ctx.fulfillment(&body, false),
        "fulfillments/update" => ctx.fulfillment(&body, true),
        "checkouts/create" => ctx.checkout(&body, &["created_at", "updated_at"]),
        "checkouts/update" => ctx.checkout(&body, &["updated_at", "created_at"]),
        "customers/redact" => ctx.redact(&body),
        other => Ok(ctx.ignored(format!("topic {other} is not used"))),
    };
    result.unwrap_or_else(invalid)
}

/// Completes a parked fulfillment's event with its order's customer.
pub fn with_customer(fulfillment_body: &str, customer_id: &str) -> Result<StoreEvent, String> {
    let mut event: Map<String, Value> = match serde_json::from_str(fulfillment_body) {
        Ok(Value::Object(event)) => event,
        _ => return Err("the kept fulfillment is not a JSON object".to_owned()),
    };
    match event.get_mut("detail") {
        Some(Value::Object(detail)) => {
            detail.insert("customer".to_owned(), json!({ "id": customer_id }));
        }
        _ => return Err("the kept fulfillment has no detail".to_owned()),
    }
    parse_event(&Value::Object(event).to_string()).map_err(|e| e.to_string())
}

struct Ctx<'a> {
    event_id: &'a str,
    headers: &'a Headers,
    received: DateTime<Utc>,
}

type Field = Result<Option<Value>, String>;

impl Ctx<'_> {
    fn ignored(&self, reason: String) -> Mapped {
        Mapped::Ignored {
            event_id: Some(self.event_id.to_owned()),
            reason,
        }
    }

    /// When it happened: the first of `fields` present, then the trigger time, then receipt.
    fn time(&self, body: &Map<String, Value>, fields: &[&str]) -> Result<String, String> {
        for field in fields {
            match body.get(*field) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => {
                    return valid_time(text).map_err(|e| format!("{field}: {e}"));
                }
                Some(other) => return Err(wrong(field, "an RFC 3339 time", other)),
            }
        }
        if let Some(text) = &self.headers.triggered_at
            && let Ok(t) = valid_time(text)
        {
            return Ok(t);
        }
        Ok(self
            .received
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    fn event(
        &self,
        event_type: &str,
        time: String,
        detail: Map<String, Value>,
    ) -> Result<Mapped, String> {
        let text = event_json(self.event_id, event_type, &time, detail);
        parse_event(&text)
            .map(Mapped::Event)
            .map_err(|e| e.to_string())
    }

    fn customer(
        &self,
        body: &Map<String, Value>,
        event_type: &str,
        times: &[&str],
    ) -> Result<Mapped, String> {
        let Some(customer) = customer_profile(body, "", None)? else {
            return Ok(self.ignored("a customer with neither id nor email".to_owned()));
        };
        let mut detail = Map::new();
        detail.insert("customer".to_owned(), Value::Object(customer));
        self.event(event_type, self.time(body, times)?, detail)
    }

    fn consent(&self, body: &Map<String, Value>) -> Result<Mapped, String> {
        let id = match body.get("customer_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(shopify_id(v).ok_or_else(|| wrong("customer_id", "an integer id", v))?),
        };
        let email = optional_string(body, "email_address")?;
        let customer_id = match (id, &email) {
            (Some(id), _) => id,
            (None, Some(email)) if !email.trim().is_empty() => guest_id(email),
            _ => {
                return Ok(
                    self.ignored("a consent update with neither customer id nor email".to_owned())
                );
            }
        };
        let state = match body.get("email_marketing_consent") {
            Some(Value::Object(consent)) => consent_state(consent, "email_marketing_consent")?,
            None | Some(Value::Null) => None,
            Some(v) => return Err(wrong("email_marketing_consent", "an object", v)),
        };
        let Some(accepts) = state else {
            return Ok(self.ignored("a consent update without a consent state".to_owned()));
        };
        let mut customer = Map::new();
        customer.insert("id".to_owned(), Value::String(customer_id));
        if let Some(email) = email.filter(|e| !e.trim().is_empty()) {
            customer.insert("email".to_owned(), Value::String(email));
        }
        customer.insert("accepts_marketing".to_owned(), Value::Bool(accepts));
        let time = match body.get("email_marketing_consent") {
            Some(Value::Object(consent)) => self.time(consent, &["consent_updated_at"]),
            _ => self.time(body, &[]),
        }
        .map_err(|e| format!("email_marketing_consent.{e}"))?;
        let mut detail = Map::new();
        detail.insert("customer".to_owned(), Value::Object(customer));
        self.event("customer.updated", time, detail)
    }

    fn order(
        &self,
        body: &Map<String, Value>,
        event_type: &str,
        times: &[&str],
    ) -> Result<Mapped, String> {
        let order = order_detail(body)?;
        let fallback_email = match optional_string(body, "email")? {
            Some(e) if !e.trim().is_empty() => Some(e),
            _ => optional_string(body, "contact_email")?.filter(|e| !e.trim().is_empty()),
        };
        let customer = match body.get("customer") {
            Some(Value::Object(c)) => customer_profile(c, "customer.", fallback_email.as_deref())?,
            None | Some(Value::Null) => None,
            Some(v) => return Err(wrong("customer", "an object", v)),
        };
        let customer = match customer {
            Some(c) => c,
            None => match &fallback_email {
                Some(email) => guest_profile(email, body)?,
                None => {
                    return Ok(self.ignored("an order with neither customer nor email".to_owned()));
                }
            },
        };
        let mut detail = Map::new();
        detail.insert("customer".to_owned(), Value::Object(customer));
        detail.insert("order".to_owned(), Value::Object(order));
        self.event(event_type, self.time(body, times)?, detail)
    }

    fn fulfillment(&self, body: &Map<String, Value>, update: bool) -> Result<Mapped, String> {
        let order_id = required_id(body, "order_id")?;
        let status = optional_string(body, "status")?;
        if matches!(status.as_deref(), Some("cancelled" | "error" | "failure")) {
            return Ok(self.ignored(format!(
                "a fulfillment with status {}",
                status_name(status.as_deref())
            )));
        }
        let shipment_status = optional_string(body, "shipment_status")?;
        let (event_type, times): (&str, &[&str]) = if update {
            if shipment_status.as_deref() != Some("delivered") {
                return Ok(self.ignored(format!(
                    "a fulfillment update with shipment_status {}",
                    status_name(shipment_status.as_deref())
                )));
            }
            ("order.delivered", &["updated_at"])
        } else {
            ("order.shipped", &["created_at"])
        };
        let mut order = Map::new();
        order.insert("id".to_owned(), Value::String(order_id.clone()));
        if let Some(items) = items(body, "line_items")? {
            order.insert("items".to_owned(), items);
        }
        let mut shipment = Map::new();
        shipment.insert(
            "carrier".to_owned(),
            nullable_string(body, "tracking_company")?,
        );
        shipment.insert(
            "tracking_number".to_owned(),
            first_of(body, "tracking_number", "tracking_numbers")?,
        );
        shipment.insert(
            "tracking_url".to_owned(),
            first_of(body, "tracking_url", "tracking_urls")?,
        );
        if let Some(s) = shipment_status {
            shipment.insert("status".to_owned(), Value::String(s));
        }
        let mut detail = Map::new();
        detail.insert("order".to_owned(), Value::Object(order));
        detail.insert("shipment".to_owned(), Value::Object(shipment));
        let time = self.time(body, times)?;
        Ok(Mapped::Fulfillment(Fulfillment {
            order_id,
            event_id: self.event_id.to_owned(),
            body: event_json(self.event_id, event_type, &time, detail),
        }))
    }

    fn checkout(&self, body: &Map<String, Value>, times: &[&str]) -> Result<Mapped, String> {
        let id = required_id(body, "id")?;
        let mut checkout = Map::new();
        checkout.insert("id".to_owned(), Value::String(id));
        checkout.insert(
            "url".to_owned(),
            nullable_string(body, "abandoned_checkout_url")?,
        );
        if let Some(total) = money(body, "total_price")? {
            checkout.insert("total".to_owned(), total);
        }
        if let Some(currency) = optional_string(body, "currency")? {
            checkout.insert("currency".to_owned(), Value::String(currency));
        }
        if let Some(items) = items(body, "line_items")? {
            checkout.insert("items".to_owned(), items);
        }
        let email = optional_string(body, "email")?.filter(|e| !e.trim().is_empty());
        let customer = match body.get("customer") {
            Some(Value::Object(c)) => customer_profile(c, "customer.", email.as_deref())?,
            None | Some(Value::Null) => None,
            Some(v) => return Err(wrong("customer", "an object", v)),
        };
        let customer = match (customer, &email) {
            (Some(c), _) => c,
            (None, Some(email)) => guest_profile(email, body)?,
            (None, None) => {
                return Ok(self.ignored("a checkout with neither customer nor email".to_owned()));
            }
        };
        let mut detail = Map::new();
        detail.insert("customer".to_owned(), Value::Object(customer));
        detail.insert("checkout".to_owned(), Value::Object(checkout));
        self.event("checkout.started", self.time(body, times)?, detail)
    }

    fn redact(&self, body: &Map<String, Value>) -> Result<Mapped, String> {
        // Shopify signs the body, not the topic header: a signed body of another topic (an
        // order naming its customer) sent again under `customers/redact` would erase that
        // customer. A redaction's body always lists the orders to redact; no other topic's
        // does, so one without the list is refused.
        match body.get("orders_to_redact") {
            Some(Value::Array(_)) => {}
            None | Some(Value::Null) => {
                return Err(
                    "missing field orders_to_redact (every customers/redact payload has it; a body of another topic is not a redaction)"
                        .to_owned(),
                );
            }
            Some(v) => return Err(wrong("orders_to_redact", "an array", v)),
        }
        let customer = match body.get("customer") {
            Some(Value::Object(c)) => c,
            None | Some(Value::Null) => {
                return Ok(self.ignored("a redaction naming no customer".to_owned()));
            }
            Some(v) => return Err(wrong("customer", "an object", v)),
        };
        let mut customer_ids = Vec::new();
        match customer.get("id") {
            None | Some(Value::Null) => {}
            Some(v) => customer_ids
                .push(shopify_id(v).ok_or_else(|| wrong("customer.id", "an integer id", v))?),
        }
        match customer.get("email") {
            None | Some(Value::Null) => {}
            Some(Value::String(e)) if e.trim().is_empty() => {}
            Some(Value::String(e)) => customer_ids.push(guest_id(e)),
            Some(v) => return Err(wrong("customer.email", "a string", v)),
        }
        if customer_ids.is_empty() {
            return Ok(self.ignored("a redaction with neither customer id nor email".to_owned()));
        }
        Ok(Mapped::Redact {
            event_id: self.event_id.to_owned(),
            customer_ids,
        })
    }
}

/// The canonical EventBridge event as JSON text.
fn event_json(id: &str, event_type: &str, time: &str, detail: Map<String, Value>) -> String {
    json!({
        "version": "0",
        "id": id,
        "detail-type": event_type,
        "source": "shopify",
        "time": time,
        "detail": Value::Object(detail),
    })
    .to_string()
}

/// The customer a delivery of `topic` names, read leniently for the dead letter of one that
/// is invalid (erasing that customer removes the letter): a `customers/...` payload's `id`,
/// another's `customer.id`; else the guest of the customer's or the payload's `email`. `None`
/// when the payload is not a JSON object or names no one.
pub fn customer_named(topic: Option<&str>, payload: &str) -> Option<String> {
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(payload) else {
        return None;
    };
    let customer = if topic.is_some_and(|t| t.starts_with("customers/")) {
        Some(&body)
    } else {
        body.get("customer").and_then(Value::as_object)
    };
    customer
        .and_then(|c| c.get("id"))
        .and_then(shopify_id)
        .or_else(|| {
            customer
                .and_then(|c| c.get("email"))
                .or_else(|| body.get("email"))
                .and_then(Value::as_str)
                .filter(|e| !e.trim().is_empty())
                .map(guest_id)
        })
}

/// The guest customer id of `email`.
pub fn guest_id(email: &str) -> String {
    format!("guest:{}", email.trim().to_lowercase())
}

fn guest_profile(email: &str, body: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut customer = Map::new();
    customer.insert("id".to_owned(), Value::String(guest_id(email)));
    customer.insert("email".to_owned(), Value::String(email.trim().to_owned()));
    match body.get("buyer_accepts_marketing") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            customer.insert("accepts_marketing".to_owned(), Value::Bool(*b));
        }
        Some(v) => return Err(wrong("buyer_accepts_marketing", "true or false", v)),
    }
    Ok(customer)
}

/// The canonical profile of a Shopify customer object (`prefix` names it in errors), or
/// `None` when it has neither id nor email. `fallback_email` is used when it has no email.
fn customer_profile(
    c: &Map<String, Value>,
    prefix: &str,
    fallback_email: Option<&str>,
) -> Result<Option<Map<String, Value>>, String> {
    let field = |name: &str| format!("{prefix}{name}");
    let email = match c.get("email") {
        None => None,
        Some(Value::Null) => Some(Value::Null),
        Some(Value::String(s)) => Some(Value::String(s.clone())),
        Some(v) => return Err(wrong(&field("email"), "a string", v)),
    };
    let id = match c.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(shopify_id(v).ok_or_else(|| wrong(&field("id"), "an integer id", v))?),
    };
    let email = match (email, fallback_email) {
        (Some(Value::String(s)), _) if !s.trim().is_empty() => Some(Value::String(s)),
        (_, Some(f)) => Some(Value::String(f.to_owned())),
        (e, None) => e,
    };
    let id = match (id, &email) {
        (Some(id), _) => id,
        (None, Some(Value::String(e))) if !e.trim().is_empty() => guest_id(e),
        _ => return Ok(None),
    };
    let mut out = Map::new();
    out.insert("id".to_owned(), Value::String(id));
    if let Some(email) = email {
        out.insert("email".to_owned(), email);
    }
    for name in ["first_name", "last_name"] {
        match c.get(name) {
            None => {}
            Some(v @ (Value::Null | Value::String(_))) => {
                out.insert(name.to_owned(), v.clone());
            }
            Some(v) => return Err(wrong(&field(name), "a string", v)),
        }
    }
    let consent = match c.get("email_marketing_consent") {
        Some(Value::Object(consent)) => consent_state(consent, &field("email_marketing_consent"))?,
        None | Some(Value::Null) => None,
        Some(v) => return Err(wrong(&field("email_marketing_consent"), "an object", v)),
    };
    let consent = match (consent, c.get("accepts_marketing")) {
        (Some(b), _) => Some(b),
        (None, None | Some(Value::Null)) => None,
        (None, Some(Value::Bool(b))) => Some(*b),
        (None, Some(v)) => return Err(wrong(&field("accepts_marketing"), "true or false", v)),
    };
    if let Some(b) = consent {
        out.insert("accepts_marketing".to_owned(), Value::Bool(b));
    }
    match c.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            let tags = s
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_owned()))
                .collect();
            out.insert("tags".to_owned(), Value::Array(tags));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            out.insert("tags".to_owned(), Value::Array(a.clone()));
        }
        Some(v) => return Err(wrong(&field("tags"), "a comma-separated string", v)),
    }
    match c.get("orders_count") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let n = count(v).ok_or_else(|| wrong(&field("orders_count"), "a whole number", v))?;
            out.insert("orders_count".to_owned(), Value::from(n));
        }
    }
    Ok(Some(out))
}

/// `subscribed` is true, any other state false; `None` when the state is absent.
fn consent_state(consent: &Map<String, Value>, field: &str) -> Result<Option<bool>, String> {
    match consent.get("state") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.eq_ignore_ascii_case("subscribed"))),
        Some(v) => Err(wrong(&format!("{field}.state"), "a string", v)),
    }
}

fn order_detail(body: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut order = Map::new();
    order.insert("id".to_owned(), Value::String(required_id(body, "id")?));
    if let Some(name) = optional_string(body, "name")? {
        order.insert("name".to_owned(), Value::String(name));
    }
    if let Some(total) = money(body, "total_price")? {
        order.insert("total".to_owned(), total);
    }
    if let Some(currency) = optional_string(body, "currency")? {
        order.insert("currency".to_owned(), Value::String(currency));
    }
    if let Some(items) = items(body, "line_items")? {
        order.insert("items".to_owned(), items);
    }
    match body.get("checkout_id") {
        None | Some(Value::Null) => {}
        Some(v) => {
            let id = shopify_id(v).ok_or_else(|| wrong("checkout_id", "an integer id", v))?;
            order.insert("checkout_id".to_owned(), Value::String(id));
        }
    }
    Ok(order)
}

fn items(body: &Map<String, Value>, field: &str) -> Result<Option<Value>, String> {
    let list = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(v) => return Err(wrong(field, "an array", v)),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::Object(item) = item else {
            return Err(wrong(&at, "an object", item));
        };
        let mut line = Map::new();
        let sku = nullable_string(item, "sku").map_err(|e| format!("{at}.{e}"))?;
        line.insert("sku".to_owned(), sku);
        let title = nullable_string(item, "title").map_err(|e| format!("{at}.{e}"))?;
        line.insert("title".to_owned(), title);
        match item.get("quantity") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = count(v)
                    .ok_or_else(|| wrong(&format!("{at}.quantity"), "a whole number", v))?;
                line.insert("quantity".to_owned(), Value::from(n));
            }
        }
        if let Some(price) = money(item, "price").map_err(|e| format!("{at}.{e}"))? {
            line.insert("price".to_owned(), price);
        }
        for id in ["product_id", "variant_id"] {
            match item.get(id) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    let s = shopify_id(v)
                        .ok_or_else(|| wrong(&format!("{at}.{id}"), "an integer id", v))?;
                    line.insert(id.to_owned(), Value::String(s));
                }
            }
        }
        out.push(Value::Object(line));
    }
    Ok(Some(Value::Array(out)))
}

/// A Shopify id: a non-negative integer (or its digits as a string) as decimal digits.
fn shopify_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s)
            if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

fn required_id(body: &Map<String, Value>, field: &str) -> Result<String, String> {
    match body.get(field) {
        None | Some(Value::Null) => Err(format!("missing field {field}")),
        Some(v) => shopify_id(v).ok_or_else(|| wrong(field, "an integer id", v)),
    }
}

/// A whole number, from a number or its digits.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A price (Shopify sends a decimal string; a number is taken too) as a JSON number.
fn money(body: &Map<String, Value>, field: &str) -> Field {
    let n = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(v) => return Err(wrong(field, "a decimal amount", v)),
    };
    n.filter(|n| n.is_finite())
        .and_then(serde_json::Number::from_f64)
        .map(|n| Some(Value::Number(n)))
        .ok_or_else(|| format!("{field}: expected a decimal amount"))
}

fn optional_string(body: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong(field, "a string", v)),
    }
}

fn nullable_string(body: &Map<String, Value>, field: &str) -> Result<Value, String> {
    Ok(optional_string(body, field)?.map_or(Value::Null, Value::String))
}

/// `single`, or the first of the array `many` (Shopify sends both).
fn first_of(body: &Map<String, Value>, single: &str, many: &str) -> Result<Value, String> {
    if let Some(s) = optional_string(body, single)? {
        return Ok(Value::String(s));
    }
    match body.get(many) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::Array(a)) => match a.first() {
            None | Some(Value::Null) => Ok(Value::Null),
            Some(Value::String(s)) => Ok(Value::String(s.clone())),
            Some(v) => Err(wrong(&format!("{many}[0]"), "a string", v)),
        },
        Some(v) => Err(wrong(many, "an array", v)),
    }
}

fn valid_time(text: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(text)
        .map_err(|_| "expected an RFC 3339 time".to_owned())
        .and_then(|t| check_time_range(t.with_timezone(&Utc)).map_err(|e| e.to_string()))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A status as it may be logged: Shopify's statuses are short snake-case words; anything else
/// is not echoed (it could be anything).
fn status_name(status: Option<&str>) -> &str {
    match status {
        None => "null",
        Some(s)
            if !s.is_empty()
                && s.len() <= 32
                && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            s
        }
        Some(_) => "(not a status name)",
    }
}

/// The error for `field` holding the wrong type (the type is named, never the value).
fn wrong(field: &str, expected: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{field}: expected {expected}, found {found}")
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
