//! Shopify deliveries, both ways they come, mapped to the same canonical events:
//! - HTTPS webhooks through a function URL ([`webhook::handle_webhook`]): the signature
//!   (`X-Shopify-Hmac-Sha256`, [`signature`]) is checked first with the secrets kept in SSM;
//! - Amazon EventBridge deliveries from a partner event source ([`partner_delivery`],
//!   [`handle_eventbridge`], called by [`crate::ingest`]): no signature, EventBridge vouches.
//!
//! What a delivery does ([`map`] is the pure part):
//! - a canonical event is applied through the runner ([`crate::ingest::apply`]); an
//!   `orders/create` (or `orders/cancelled`) first links the order to its customer, then
//!   applies every fulfillment of that order kept so far, oldest first;
//! - a fulfillment names its order, not its customer: with the order linked it is applied for
//!   that customer; otherwise it is parked for 7 days ([`PARK_FOR`]) and applied when the order
//!   arrives (after parking, the link is read again, so an order linked meanwhile is not missed:
//!   the order side links before it reads the parked ones, and a fulfillment applied by both
//!   sides counts once by its event id);
//! - `customers/redact` erases the customer's id and, when an email is given, the guest
//!   `guest:<email>` ([`nudge_core::store::Store::erase_customer`]);
//! - a valid delivery of no use (another topic, a guest without email, a fulfillment update
//!   that is not a delivery) is [`Handled::Ignored`]: logged as `shopify delivery ignored`
//!   (count them with a metric filter on that message), never kept;
//! - an invalid one (not JSON, a field of the wrong type, a header missing) is a dead letter.
//!
//! Every input is idempotent by its event id (`shopify:{shop}:{topic}:{event id}`): a retried or
//! twice-subscribed delivery has the effect of one. Logs name topics, event ids and reasons,
//! never a customer id, address or name.
//!
//! Limits:
//! - a fulfillment and its order arriving at the same instant rely on the store reading its own
//!   writes (the link, the parked item) once they are acknowledged; if neither side saw the
//!   other, the fulfillment would wait in vain and be dropped after 7 days;
//! - fulfillments are matched to orders by Shopify's order id only (one shop per deployment:
//!   two shops with the same order id would share a link);
//! - `shop/redact` and `customers/data_request` are answered 200 and ignored: erasing a whole
//!   shop is a matter of deleting the stack, and a data request is answered from the store by
//!   the operator;
//! - a delivery stopped at its time budget (see [`webhook`]) after the commit but during an SES
//!   send leaves that send to the scheduler's sweep, which may send it a second time if SES had
//!   in fact taken it.

pub mod signature;
pub mod webhook;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::event::StoreEvent;
use nudge_core::store::{Parked, Store};

use crate::app::App;
use crate::ingest::{self, Handled, HandlerError};
// The pure part, shared with the command line's `dead-letters replay`, lives in the core.
pub use nudge_core::shopify::{
    DEAD_LETTER_SOURCE, Headers, Mapped, PARTNER_SOURCE_PREFIX, PartnerDelivery, map, order_of,
    partner_delivery, partner_parts,
};
pub use webhook::{Secrets, handle_webhook};

/// How long a fulfillment of an order not seen yet is kept.
pub const PARK_FOR: TimeDelta = TimeDelta::days(7);

/// Handles a Shopify EventBridge delivery (no signature: EventBridge vouches for it). A
/// delivery that cannot be read is a dead letter (its text as received).
pub async fn handle_eventbridge(
    app: &App,
    delivery: PartnerDelivery,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    match partner_parts(&delivery) {
        Ok((headers, body)) => handle(app, &headers, &body, text, now).await,
        Err(reason) => ingest::dead_letter(app, DEAD_LETTER_SOURCE, None, reason, text, now).await,
    }
}

/// Handles one delivery whose origin is trusted: maps it and does what it says.
/// `dead_letter_body` is what is kept if it is invalid.
pub async fn handle(
    app: &App,
    headers: &Headers,
    body: &str,
    dead_letter_body: &str,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let topic = headers.topic.as_deref().unwrap_or_default();
    let handled = match map::map(headers, body, now) {
        Mapped::Event(event) => event_with_order(app, &event, now).await?,
        Mapped::Fulfillment(f) => fulfillment(app, f, now).await?,
        Mapped::Redact {
            event_id,
            customer_ids,
        } => {
            for id in &customer_ids {
                let erased = app.store.erase_customer(id).await?;
                tracing::info!(
                    event_id,
                    state = erased.state,
                    sends = erased.sends,
                    orders = erased.orders,
                    journal_commits = erased.journal_commits,
                    dead_letters = erased.dead_letters,
                    "customer erased (customers/redact)"
                );
            }
            Handled::Erased { event_id }
        }
        Mapped::Ignored { event_id, reason } => {
            tracing::info!(
                topic,
                event_id = event_id.as_deref(),
                reason,
                "shopify delivery ignored"
            );
            Handled::Ignored { event_id, reason }
        }
        Mapped::Invalid { event_id, reason } => {
            ingest::dead_letter_naming(
                app,
                DEAD_LETTER_SOURCE,
                event_id,
                map::customer_named(headers.topic.as_deref(), body),
                format!("{topic}: {reason}"),
                dead_letter_body,
                now,
            )
            .await?
        }
    };
    Ok(handled)
}

/// Applies an event; an order's event first links the order to its customer and is followed
/// by the fulfillments kept for that order.
async fn event_with_order(
    app: &App,
    event: &StoreEvent,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let Some(order_id) = order_of(event) else {
        return ingest::apply(app, event, now).await;
    };
    app.store.link_order(&order_id, &event.customer_id).await?;
    let handled = ingest::apply(app, event, now).await?;
    let applied = apply_parked(app, &order_id, &event.customer_id, now).await?;
    if applied > 0 {
        tracing::info!(
            event_id = event.id,
            fulfillments = applied,
            "parked fulfillments applied"
        );
    }
    Ok(handled)
}

/// Applies every fulfillment parked for `order_id` for `customer_id`, oldest first, and
/// unparks each once applied (or dead-lettered). Returns how many there were.
async fn apply_parked(
    app: &App,
    order_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, HandlerError> {
    let parked = app.store.parked(order_id, now).await?;
    let mut events: Vec<(Parked, Result<StoreEvent, String>)> = parked
        .into_iter()
        .map(|p| {
            let event = map::with_customer(&p.body, customer_id);
            (p, event)
        })
        .collect();
    // Shipped before delivered: by the time each happened, then by id.
    events.sort_by(|(a, ea), (b, eb)| {
        let time = |e: &Result<StoreEvent, String>| e.as_ref().ok().map(|e| e.time);
        time(ea)
            .cmp(&time(eb))
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    let count = events.len();
    for (parked, event) in events {
        apply_fulfillment(app, &parked.event_id, customer_id, event, &parked.body, now).await?;
        app.store.unpark(order_id, &parked.event_id).await?;
    }
    Ok(count)
}

async fn apply_fulfillment(
    app: &App,
    event_id: &str,
    customer_id: &str,
    event: Result<StoreEvent, String>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    match event {
        Ok(event) => ingest::apply(app, &event, now).await,
        Err(reason) => {
            ingest::dead_letter_naming(
                app,
                DEAD_LETTER_SOURCE,
                Some(event_id.to_owned()),
                Some(customer_id.to_owned()),
                reason,
                body,
                now,
            )
            .await
        }
    }
}

/// A fulfillment: applied for its order's customer, or parked until the order is seen.
async fn fulfillment(
    app: &App,
    f: map::Fulfillment,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    if let Some(customer) = app.store.order_customer(&f.order_id).await? {
        let event = map::with_customer(&f.body, &customer);
        return apply_fulfillment(app, &f.event_id, &customer, event, &f.body, now).await;
    }
    app.store
        .park(&Parked {
            order_id: f.order_id.clone(),
            event_id: f.event_id.clone(),
            body: f.body.clone(),
            expires_at: now + PARK_FOR,
        })
        .await?;
    // The order may have been linked while this was parked (its handler links, then reads
    // what is parked): read the link again so the fulfillment is not left behind.
    if let Some(customer) = app.store.order_customer(&f.order_id).await? {
        let event = map::with_customer(&f.body, &customer);
        let handled = apply_fulfillment(app, &f.event_id, &customer, event, &f.body, now).await?;
        app.store.unpark(&f.order_id, &f.event_id).await?;
        return Ok(handled);
    }
    tracing::info!(
        event_id = f.event_id,
        "fulfillment parked until its order is seen"
    );
    Ok(Handled::Parked {
        event_id: f.event_id,
    })
}
