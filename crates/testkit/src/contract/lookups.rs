//! The store's lookups beside the customers: orders to customers, and suppressed addresses.

use nudge_core::store::{Store, address_key};

use super::helpers::at;

/// An order links to one customer; a later link replaces it; an order never linked has none.
pub async fn orders_link_to_customers<S: Store>(store: &S) {
    const CHECK: &str = "orders_link_to_customers";
    let customer = async |order: &str| {
        store
            .order_customer(order)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: order_customer failed: {e}"))
    };
    let link = async |order: &str, customer: &str| {
        store
            .link_order(order, customer)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: link_order failed: {e}"))
    };
    ensure_eq!(CHECK, customer("1001").await, None, "an order never linked");
    link("1001", "c-1").await;
    link("1002", "c-2").await;
    link("1001", "c-1").await;
    ensure_eq!(
        CHECK,
        customer("1001").await,
        Some("c-1".to_owned()),
        "order 1001"
    );
    ensure_eq!(
        CHECK,
        customer("1002").await,
        Some("c-2".to_owned()),
        "order 1002"
    );
    link("1002", "c-3").await;
    ensure_eq!(
        CHECK,
        customer("1002").await,
        Some("c-3".to_owned()),
        "order 1002 linked again"
    );
}

/// A suppression is found under the address's key whatever the case and the surrounding
/// spaces of the address; the first reason and time are kept; another address is not
/// suppressed.
pub async fn suppressions_keep_the_first<S: Store>(store: &S) {
    const CHECK: &str = "suppressions_keep_the_first";
    let of = async |address: &str| {
        store
            .suppression(&address_key(address))
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: suppression failed: {e}"))
    };
    let suppress = async |address: &str, reason: &str, secs: i64| {
        store
            .suppress(&address_key(address), reason, at(secs))
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: suppress failed: {e}"))
    };
    ensure_eq!(
        CHECK,
        of("ayse@example.com").await,
        None,
        "an address never suppressed"
    );
    suppress("Ayse@Example.com", "bounce", 5).await;
    let first = Some(("bounce".to_owned(), at(5)));
    ensure_eq!(
        CHECK,
        of(" ayse@example.com").await,
        first,
        "the same address, other case"
    );
    suppress("ayse@example.com", "complaint", 9).await;
    ensure_eq!(
        CHECK,
        of("AYSE@EXAMPLE.COM").await,
        first,
        "after a second suppression"
    );
    ensure_eq!(
        CHECK,
        of("mehmet@example.com").await,
        None,
        "another address"
    );
}
