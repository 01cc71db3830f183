//! Counted order facts: `orders_count`, `total_spent`, `first_order_at` and `last_order_at`,
//! kept on the profile from the `order.placed` and `order.cancelled` events Nudge sees, so that
//! "more than one previous order" works for a store that sends no counters (Shopify's customer
//! payloads carry none from API version 2025-01).
//!
//! The rules:
//! - An order is counted once, by `detail.order.id` (a string, or a whole number read as its
//!   digits); an order without an id is not counted. The state remembers the last
//!   [`MAX_ORDER_RECORDS`] orders it counted or saw cancelled: a repeat of one of them, under
//!   any event id, counts nothing, and its cancellation takes it back out. An order older than
//!   those cannot be recognised again (a cancellation of it changes nothing).
//! - Counting adds to the profile's *current* value: a value the store sent earlier is the
//!   base (the store said 5 orders, Nudge sees one more: 6). Within one event the order is
//!   counted first; then the event's own `customer` fields are merged, so a value the store
//!   sends in the same event replaces the counted one.
//! - `total_spent` adds `detail.order.total` (a number, or a numeric string as Shopify writes
//!   money) when the order's `currency` is the store's (`settings.yaml` `currency:`, compared
//!   without case) or either is not given. Money is added in ten-thousandths, so that sums of
//!   decimal prices do not drift (59.90 + 29.95 is 89.85, not 89.85000000000001). A
//!   `total_spent` the store sent that cannot be added to exactly (not an amount, negative,
//!   beyond [`MAX_TOTAL`]) is left as it is rather than reset to this order's total.
//! - `first_order_at` and `last_order_at` are the event times (RFC 3339 UTC) of the earliest
//!   and latest orders counted. A cancellation that takes out the order they name moves them to
//!   the earliest/latest order still remembered, or removes them when none is left.
//! - A cancellation of an order not seen yet is remembered, so that the order, arriving late,
//!   is not counted.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::Cx;
use super::state::millis;
use crate::event::StoreEvent;

/// How many orders a customer's state remembers for counting (repeats and cancellations).
/// A hundred orders is years of a loyal customer's orders; each costs about 60 bytes of state.
pub const MAX_ORDER_RECORDS: usize = 100;

/// Money is added in units of 1/10,000 of the currency (enough for every ISO 4217 currency's
/// minor unit).
const MONEY_SCALE: f64 = 10_000.0;

/// The largest amount of one order counted, in the currency: far above any order.
const MAX_AMOUNT: f64 = 1e11;

/// The largest `total_spent` Nudge adds to, in the currency: below 2^53 ten-thousandths, so
/// that the sum stays exact in the `f64` the profile holds. A sum stops there; a larger value
/// the store sent is left as it is.
pub const MAX_TOTAL: f64 = 9e11;

/// An order the customer's state remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order's id.
    pub id: String,
    /// When it was placed (the event's time).
    #[serde(with = "millis")]
    pub at: DateTime<Utc>,
    /// What it added to `total_spent`, in ten-thousandths; absent when it added nothing
    /// (another currency, no total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent: Option<i64>,
    /// It was cancelled (or its cancellation came first): it counts for nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

impl Cx<'_, '_> {
    /// Counts the order of an `order.placed`, or takes out that of an `order.cancelled`.
    /// Called before the event's `customer` fields are merged (see the module doc).
    pub(super) fn count_order(&mut self, event: &StoreEvent) {
        let placed = match event.event_type.as_str() {
            "order.placed" => true,
            "order.cancelled" => false,
            _ => return,
        };
        let Some(order) = event.detail.get("order").and_then(Value::as_object) else {
            return;
        };
        let Some(id) = order_id(order) else {
            return;
        };
        let known = self.state.orders.iter().position(|o| o.id == id);
        match (placed, known) {
            (true, None) => {
                let spent = self.spent_on(order);
                self.remember(OrderRecord {
                    id,
                    at: event.time,
                    spent,
                    cancelled: false,
                });
                self.add_order(event.time, spent);
            }
            (false, None) => self.remember(OrderRecord {
                id,
                at: event.time,
                spent: None,
                cancelled: true,
            }),
            (false, Some(i)) if !self.state.orders[i].cancelled => {
                self.state.orders[i].cancelled = true;
                let record = self.state.orders[i].clone();
                self.take_out(&record);
            }
            // A repeat of a counted order, or of a cancelled one: nothing to count.
            _ => {}
        }
    }

    /// What the order adds to `total_spent`: its total when its currency is the store's.
    fn spent_on(&self, order: &Map<String, Value>) -> Option<i64> {
        let currency = order.get("currency").and_then(Value::as_str);
        let same = match (&self.settings().currency, currency) {
            (Some(store), Some(c)) => store.eq_ignore_ascii_case(c.trim()),
            _ => true,
        };
        same.then(|| order.get("total").and_then(money))?
    }

    /// Keeps `record`, forgetting the oldest beyond [`MAX_ORDER_RECORDS`].
    fn remember(&mut self, record: OrderRecord) {
        let orders = &mut self.state.orders;
        orders.push(record);
        if orders.len() > MAX_ORDER_RECORDS {
            let extra = orders.len() - MAX_ORDER_RECORDS;
            orders.drain(..extra);
        }
    }

    /// One more order, placed `at`, adding `spent`.
    fn add_order(&mut self, at: DateTime<Utc>, spent: Option<i64>) {
        let profile = Arc::make_mut(&mut self.state.profile);
        // Saturating: a store may send any number, however large.
        let count = count_of(profile.get("orders_count")).saturating_add(1);
        profile.insert("orders_count".to_owned(), Value::from(count));
        if let Some(base) = total_of(profile.get("total_spent")) {
            let total = (base + spent.unwrap_or(0)).min(units(MAX_TOTAL));
            profile.insert("total_spent".to_owned(), money_value(total));
        }
        let first = time_of(profile.get("first_order_at")).map_or(at, |t| t.min(at));
        let last = time_of(profile.get("last_order_at")).map_or(at, |t| t.max(at));
        profile.insert("first_order_at".to_owned(), time_value(first));
        profile.insert("last_order_at".to_owned(), time_value(last));
    }

    /// Takes a cancelled order back out of the facts.
    fn take_out(&mut self, record: &OrderRecord) {
        let remaining: Vec<DateTime<Utc>> = self
            .state
            .orders
            .iter()
            .filter(|o| !o.cancelled)
            .map(|o| o.at)
            .collect();
        let profile = Arc::make_mut(&mut self.state.profile);
        let count = count_of(profile.get("orders_count")).saturating_sub(1);
        profile.insert("orders_count".to_owned(), Value::from(count));
        if let (Some(spent), Some(base)) = (record.spent, total_of(profile.get("total_spent"))) {
            profile.insert("total_spent".to_owned(), money_value((base - spent).max(0)));
        }
        for (name, pick) in [
            ("first_order_at", Iterator::min as fn(_) -> _),
            ("last_order_at", Iterator::max as fn(_) -> _),
        ] {
            if time_of(profile.get(name)) != Some(record.at) {
                continue;
            }
            match pick(remaining.iter().copied()) {
                Some(t) => profile.insert(name.to_owned(), time_value(t)),
                None => profile.remove(name),
            };
        }
    }
}

/// `order.id` as text: a string, or a whole number's digits.
fn order_id(order: &Map<String, Value>) -> Option<String> {
    match order.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// An order's amount (a number or a numeric string) in ten-thousandths; none when it is not
/// one, or negative, or beyond [`MAX_AMOUNT`].
fn money(v: &Value) -> Option<i64> {
    amount_up_to(v, MAX_AMOUNT)
}

/// An amount in ten-thousandths when it is one in `0..=max`.
fn amount_up_to(v: &Value, max: f64) -> Option<i64> {
    let amount = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (amount.is_finite() && (0.0..=max).contains(&amount)).then(|| units(amount))
}

/// `amount` in ten-thousandths.
fn units(amount: f64) -> i64 {
    (amount * MONEY_SCALE).round() as i64
}

/// The profile's current `total_spent` in ten-thousandths, to add to: 0 when absent; `None`
/// when it is something Nudge cannot add to exactly (not an amount, negative, or beyond
/// [`MAX_TOTAL`]), which is then left as the store sent it rather than reset.
fn total_of(v: Option<&Value>) -> Option<i64> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(v) => amount_up_to(v, MAX_TOTAL),
    }
}

/// Ten-thousandths as the amount the profile holds.
fn money_value(units: i64) -> Value {
    let amount = units as f64 / MONEY_SCALE;
    Number::from_f64(amount).map_or(Value::from(0), Value::Number)
}

/// The profile's current `orders_count` (0 when absent or not a count).
fn count_of(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn time_value(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_added_in_ten_thousandths() {
        assert_eq!(money(&json!(59.90)), Some(599_000));
        assert_eq!(money(&json!("29.95")), Some(299_500));
        assert_eq!(money_value(599_000 + 299_500), json!(89.85));
        assert_eq!(money(&json!(-1)), None);
        assert_eq!(money(&json!("abc")), None);
        assert_eq!(money(&json!(1e300)), None);
        assert_eq!(money(&json!(null)), None);
    }

    #[test]
    fn a_total_nudge_cannot_add_to_is_left_alone() {
        assert_eq!(total_of(None), Some(0));
        assert_eq!(total_of(Some(&json!(null))), Some(0));
        assert_eq!(total_of(Some(&json!(2e11))), Some(2_000_000_000_000_000));
        assert_eq!(total_of(Some(&json!(1e12))), None);
        assert_eq!(total_of(Some(&json!(-5))), None);
        assert_eq!(total_of(Some(&json!("1,234.50"))), None);
    }

    #[test]
    fn counts_read_what_stores_send() {
        assert_eq!(count_of(Some(&json!(3))), 3);
        assert_eq!(count_of(Some(&json!(3.0))), 3);
        assert_eq!(count_of(Some(&json!("4"))), 4);
        assert_eq!(count_of(Some(&json!(-2))), 0);
        assert_eq!(count_of(None), 0);
    }

    #[test]
    fn order_ids_are_text() {
        let id = |v: Value| order_id(v.as_object().unwrap());
        assert_eq!(id(json!({"id": "o-1"})), Some("o-1".into()));
        assert_eq!(id(json!({"id": 450789469})), Some("450789469".into()));
        assert_eq!(id(json!({"id": " "})), None);
        assert_eq!(id(json!({"id": 1.5})), None);
        assert_eq!(id(json!({})), None);
    }
}
