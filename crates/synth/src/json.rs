//! The JSON an event is written as: the EventBridge envelope and the parts of its `detail`.

use serde::Serialize;

/// Kuruş to lira, as the JSON number a shop sends (`1449.9`).
pub(crate) fn money(kurus: u32) -> f64 {
    f64::from(kurus) / 100.0
}

/// An EventBridge event, fields in the order EventBridge writes them.
#[derive(Serialize)]
pub(crate) struct Envelope<'a> {
    pub(crate) version: &'static str,
    pub(crate) id: &'a str,
    #[serde(rename = "detail-type")]
    pub(crate) detail_type: &'static str,
    pub(crate) source: &'static str,
    pub(crate) account: &'static str,
    pub(crate) time: String,
    pub(crate) region: &'static str,
    pub(crate) resources: &'static [&'static str],
    pub(crate) detail: Detail<'a>,
}

/// The event's `detail`: the customer always, the rest as the event type has it.
#[derive(Serialize, Default)]
pub(crate) struct Detail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) customer: Option<CustomerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) order: Option<OrderJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) shipment: Option<ShipmentJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) review: Option<ReviewJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) checkout: Option<CheckoutJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bounce_type: Option<&'static str>,
}

/// The customer as events carry it: the id always, other fields when the event has them.
#[derive(Serialize, Default)]
pub(crate) struct CustomerJson<'a> {
    pub(crate) id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timezone: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) birthday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) accepts_marketing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) orders_count: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tags: Option<&'static [&'static str]>,
}

/// An order: its id always, the rest when it is placed.
#[derive(Serialize)]
pub(crate) struct OrderJson {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) currency: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) items: Option<Vec<ItemJson>>,
}

impl OrderJson {
    /// An order named by its id only, as shipping and review events name it.
    pub(crate) fn id(id: String) -> Self {
        Self {
            id,
            total: None,
            currency: None,
            items: None,
        }
    }
}

/// One line of an order.
#[derive(Serialize)]
pub(crate) struct ItemJson {
    pub(crate) sku: &'static str,
    pub(crate) title: &'static str,
    pub(crate) quantity: u32,
    pub(crate) price: f64,
}

/// A shipment: the carrier and where to track it.
#[derive(Serialize)]
pub(crate) struct ShipmentJson {
    pub(crate) carrier: &'static str,
    pub(crate) tracking_number: String,
    pub(crate) tracking_url: String,
}

/// A product review.
#[derive(Serialize)]
pub(crate) struct ReviewJson {
    pub(crate) sku: &'static str,
    pub(crate) rating: u8,
}

/// An abandoned checkout: its id, its link and its basket's total.
#[derive(Serialize)]
pub(crate) struct CheckoutJson {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) total: f64,
    pub(crate) currency: &'static str,
}
