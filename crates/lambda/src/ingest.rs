//! The `ingest` function: store events from an EventBridge bus, and Shopify's own EventBridge
//! deliveries (a partner event source), applied through the runner.
//!
//! Delivery path (docs/ARCHITECTURE.md, "Ingest"): EventBridge invokes the function
//! asynchronously, one event per invocation. Events of one customer may run concurrently and
//! out of order; the store's conditional commit serialises them (a loser reloads and applies
//! again), the processed-id check drops duplicates, and the runner's `now` rule keeps a late
//! event from moving a customer's clock back. Failures:
//! - an input that can never apply (malformed, a missing customer id, a state over the limit)
//!   is kept as a dead letter in the store and the invocation succeeds: a poison event never
//!   blocks or delays another;
//! - a failure of the store itself (throttled, unavailable) fails the invocation: Lambda's
//!   asynchronous retries try it again, and what still fails lands in the on-failure
//!   destination (an SQS dead-letter queue).

use std::cell::RefCell;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nudge_core::engine::{Action, ActionKind};
use nudge_core::event::{StoreEvent, customer_named, parse_event};
use nudge_core::runner::{Applied, RunnerError};
use nudge_core::store::{DeadLetter, Store, StoreError};
use serde_json::value::RawValue;

use crate::app::App;
use crate::shopify;

/// What one input did: the function's answer and its log line. Names no customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Handled {
    /// Applied: this many actions happened, this many sends were delivered (inside
    /// [`bounded`]: logged, to be delivered once the bounded work is done).
    Applied {
        /// The event id.
        event_id: String,
        /// Actions the engine took.
        actions: usize,
        /// Sends delivered after the commit.
        deliveries: usize,
    },
    /// The event id was processed before.
    Duplicate {
        /// The event id.
        event_id: String,
    },
    /// Rejected for good: kept as the dead letter `dead_letter`.
    DeadLettered {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The dead letter's id.
        dead_letter: String,
        /// Why.
        reason: String,
    },
    /// Valid but of no use (a Shopify delivery Nudge does not act on): counted, not kept.
    Ignored {
        /// The event id, when readable.
        event_id: Option<String>,
        /// Why.
        reason: String,
    },
    /// Kept for later (a Shopify fulfillment of an order not seen yet).
    Parked {
        /// The event id.
        event_id: String,
    },
    /// A customer's data was erased (Shopify's `customers/redact`).
    Erased {
        /// The event id.
        event_id: String,
    },
}

/// A failure worth a retry: the store could not be reached or kept refusing. The invocation
/// fails, and Lambda retries it.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runner failed (not because of the input).
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

/// Handles one EventBridge event as delivered (the raw JSON, so that a repeated key or a
/// malformed body is seen as such): a Shopify partner event goes to [`shopify`], any other is a
/// store event in the canonical shape.
pub async fn handle(
    app: &App,
    raw: &RawValue,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let text = raw.get();
    if let Some(delivery) = shopify::partner_delivery(text) {
        return shopify::handle_eventbridge(app, delivery, text, now).await;
    }
    match parse_event(text) {
        Ok(event) => apply(app, &event, now).await,
        Err(e) => {
            let event_id = e.event_id().map(str::to_owned);
            dead_letter(app, "eventbridge", event_id, e.to_string(), text, now).await
        }
    }
}

/// What an input applied inside [`bounded`] left to deliver.
enum Pending {
    /// These sends of this customer, just committed.
    Keys(String, Vec<String>),
    /// Whatever this customer's send log holds pending (a duplicate's).
    Log(String),
}

tokio::task_local! {
    /// Set inside [`bounded`]: the sends its inputs decided, delivered once it is done.
    static DEFERRED: RefCell<Vec<Pending>>;
}

/// Runs `work` (which applies inputs with [`apply`]) within `budget`, delivering what it
/// decided only after it: inside, each input is committed and its sends are left pending;
/// afterwards, whether or not `work` finished in time, every send it committed is delivered,
/// with no time limit but the SDK's own. So a budget (Shopify's 5 seconds, a page's second)
/// bounds the commits and never cuts a send off between its claim and its settle, which the
/// send guarantee would treat as a crash (marketing mail settled `unknown`, transactional
/// mail sent again). A delivery that fails is left pending for the scheduler's sweep. Returns
/// `work`'s output, or `None` when the budget ran out (what it committed stays committed).
pub async fn bounded<T>(
    app: &App,
    budget: Duration,
    now: DateTime<Utc>,
    work: impl Future<Output = T>,
) -> Option<T> {
    let (out, pending) = DEFERRED
        .scope(RefCell::new(Vec::new()), async {
            let out = tokio::time::timeout(budget, work).await.ok();
            (out, DEFERRED.with(RefCell::take))
        })
        .await;
    let runner = app.runner();
    for pending in pending {
        let delivered = match &pending {
            Pending::Keys(customer, keys) => {
                let keys: Vec<(&str, &str)> = keys
                    .iter()
                    .map(|k| (customer.as_str(), k.as_str()))
                    .collect();
                runner.deliver(&keys, now).await
            }
            Pending::Log(customer) => runner.deliver_pending(customer, now).await,
        };
        if let Err(e) = delivered {
            tracing::warn!(error = %e, "delivery left to the scheduler's sweep");
        }
    }
    out
}

/// The idempotency keys of the sends `actions` logged.
fn send_keys(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::EmailSent(email) => Some(email.idempotency_key.clone()),
            ActionKind::WebhookCalled(call) => Some(call.idempotency_key.clone()),
            _ => None,
        })
        .collect()
}

/// Applies one canonical event through the runner: a failure of the input's own is a dead
/// letter; a failure of the store is an error (retried). Its sends are delivered right after
/// its commit, or, inside [`bounded`], once the bounded work is done.
pub async fn apply(
    app: &App,
    event: &StoreEvent,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let deferred = DEFERRED.try_with(|_| ()).is_ok();
    let runner = if deferred {
        app.runner().deliver_later()
    } else {
        app.runner()
    };
    let defer = |pending: Pending| {
        let _ = DEFERRED.try_with(|p| p.borrow_mut().push(pending));
    };
    match runner.event(event, now).await {
        Ok(Applied::Done {
            actions,
            deliveries,
            ..
        }) => {
            let keys = send_keys(&actions);
            let deliveries = if deferred {
                let count = keys.len();
                defer(Pending::Keys(event.customer_id.clone(), keys));
                count
            } else {
                deliveries.len()
            };
            Ok(Handled::Applied {
                event_id: event.id.clone(),
                actions: actions.len(),
                deliveries,
            })
        }
        Ok(Applied::Duplicate { .. }) => {
            if deferred {
                defer(Pending::Log(event.customer_id.clone()));
            }
            Ok(Handled::Duplicate {
                event_id: event.id.clone(),
            })
        }
        Err(e) if e.customer().is_some() => {
            let body = serde_json::json!({
                "id": event.id,
                "detail-type": event.event_type,
                "time": event.time,
                "source": event.source,
                "detail": &*event.detail,
            })
            .to_string();
            dead_letter_naming(
                app,
                "eventbridge",
                Some(event.id.clone()),
                Some(event.customer_id.clone()),
                e.to_string(),
                &body,
                now,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps a rejected input as a dead letter (the store's; `nudge dead-letters` lists them),
/// naming the customer `body` names as a canonical event does, if any
/// ([`customer_named`]).
pub async fn dead_letter(
    app: &App,
    source: &str,
    event_id: Option<String>,
    reason: String,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let customer_id = customer_named(body);
    dead_letter_naming(app, source, event_id, customer_id, reason, body, now).await
}

/// As [`dead_letter`], naming `customer_id` (erasing that customer removes the letter).
pub async fn dead_letter_naming(
    app: &App,
    source: &str,
    event_id: Option<String>,
    customer_id: Option<String>,
    reason: String,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    let letter = DeadLetter {
        id: String::new(),
        event_id: event_id.clone(),
        customer_id,
        source: source.to_owned(),
        reason: reason.clone(),
        body: body.to_owned(),
        received_at: now,
    };
    let dead_letter = app.store.record_dead_letter(&letter).await?;
    tracing::warn!(
        source,
        event_id = event_id.as_deref(),
        dead_letter,
        reason,
        "input rejected"
    );
    Ok(Handled::DeadLettered {
        event_id,
        dead_letter,
        reason,
    })
}

/// The error Lambda records for a failed invocation: the kind and the message (which names no
/// customer data: store and runner errors never quote keys or values).
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = match &e {
            HandlerError::Store(_) => "nudge::StoreError",
            HandlerError::Runner(_) => "nudge::RunnerError",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}
