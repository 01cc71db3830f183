//! The small lookup items: an order's customer (`O#<order id>`, with a reverse item
//! `O#<order id>` in the customer's partition, so that erasing the customer finds their
//! orders) and a suppressed address (`X#<address key>`, the SHA-256 of the normalised address:
//! no address in clear).

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use nudge_core::store::{StoreError, from_millis, to_millis};

use super::DynamoDbStore;
use super::aside::{ORDER_SK, order_link_sk};
use super::error::map_sdk_error;
use super::item::{Item, check_item_size, get_n, get_s, n, s};
use super::keys::{PK, SK, customer_pk, order_pk, suppression_pk};

/// The sort key of a suppression's item.
const SUPPRESSION_SK: &str = "SUPPRESS";

impl DynamoDbStore {
    /// See `Store::link_order`: two unconditional puts, the customer's reverse item first
    /// (`erase_customer` finds the order from it; a reverse item left by a link that failed
    /// half-way, or replaced since, finds an order that is not the customer's, which the
    /// erasure's condition leaves alone), then the order's item (a later link replaces it).
    pub(super) async fn link_order_inner(
        &self,
        order_id: &str,
        customer_id: &str,
    ) -> Result<(), StoreError> {
        let reverse: Item = [
            (PK.to_owned(), s(customer_pk(customer_id))),
            (SK.to_owned(), s(order_link_sk(order_id)?)),
        ]
        .into();
        check_item_size(&reverse, "the customer's order item")?;
        self.put(reverse).await?;
        let item: Item = [
            (PK.to_owned(), s(order_pk(order_id))),
            (SK.to_owned(), s(ORDER_SK)),
            ("cust".to_owned(), s(customer_id)),
        ]
        .into();
        check_item_size(&item, "the order item")?;
        self.put(item).await
    }

    /// See `Store::order_customer`: one strongly consistent read.
    pub(super) async fn order_customer_inner(
        &self,
        order_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let item = self.get(order_pk(order_id), ORDER_SK, "cust").await?;
        item.map(|i| get_s(&i, "cust").map(str::to_owned))
            .transpose()
    }

    /// See `Store::suppress`: one update that sets each attribute only if it is not there, so
    /// the first suppression is kept without a condition that could fail.
    pub(super) async fn suppress_inner(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(suppression_pk(address_key)))
            .key(SK, s(SUPPRESSION_SK))
            .update_expression("SET why = if_not_exists(why, :why), #at = if_not_exists(#at, :at)")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":at", n(to_millis(at)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("UpdateItem", e))?;
        Ok(())
    }

    /// See `Store::suppression`: one strongly consistent read.
    pub(super) async fn suppression_inner(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let Some(item) = self
            .get_named(
                suppression_pk(address_key),
                SUPPRESSION_SK,
                "why, #at",
                ("#at", "at"),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            get_s(&item, "why")?.to_owned(),
            from_millis(get_n(&item, "at")?)?,
        )))
    }
}
