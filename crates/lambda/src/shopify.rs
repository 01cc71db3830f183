//! Shopify deliveries (being written: the placeholder routes nothing).

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::ingest::{Handled, HandlerError};

/// A Shopify EventBridge delivery (the partner event source), if `text` is one.
pub fn partner_delivery(_text: &str) -> Option<()> {
    None
}

/// Handles a Shopify EventBridge delivery.
pub async fn handle_eventbridge(
    _app: &App,
    _delivery: (),
    _text: &str,
    _now: DateTime<Utc>,
) -> Result<Handled, HandlerError> {
    unreachable!("no delivery is routed here yet")
}
