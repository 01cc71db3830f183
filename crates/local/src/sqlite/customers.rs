//! [`Store::customers`](nudge_core::store::Store::customers) on SQLite: every customer's
//! state, a page at a time, in customer id order (the `customers` table's primary key, so a
//! page is one range read of the key's B-tree). Staged writes of an open batch are written out
//! first, so a page shows what the store reported as committed. No schema change.

use rusqlite::params;

use nudge_core::store::{CustomerPage, CustomerRecord, StoreError};

use super::error::store_error;
use super::{Inner, stored_version};

/// What marks a cursor of this store: the tag, then the last customer id of the page.
const CURSOR_TAG: &str = "c1/";

const FIRST: &str =
    "SELECT customer_id, version, state FROM customers ORDER BY customer_id LIMIT ?1";
const AFTER: &str = "SELECT customer_id, version, state FROM customers WHERE customer_id > ?2 \
                     ORDER BY customer_id LIMIT ?1";

impl Inner {
    /// See [`Store::customers`](nudge_core::store::Store::customers).
    pub(super) fn customers(
        &mut self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<CustomerPage, StoreError> {
        let after = cursor
            .map(|c| {
                c.strip_prefix(CURSOR_TAG).ok_or_else(|| {
                    StoreError::InvalidRequest("not a customers cursor of this store".to_owned())
                })
            })
            .transpose()?;
        self.spill()?;
        let limit = limit.max(1);
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(if after.is_some() { AFTER } else { FIRST })
            .map_err(store_error)?;
        let mut rows = match after {
            Some(id) => stmt.query(params![sql_limit, id]),
            None => stmt.query(params![sql_limit]),
        }
        .map_err(store_error)?;
        let mut page = CustomerPage::default();
        while let Some(row) = rows.next().map_err(store_error)? {
            let id: String = row.get(0).map_err(store_error)?;
            let version = stored_version(&id, row.get(1).map_err(store_error)?)?;
            let state = row.get(2).map_err(store_error)?;
            page.customers.push((id, CustomerRecord { version, state }));
        }
        if page.customers.len() == limit {
            page.cursor = page
                .customers
                .last()
                .map(|(id, _)| format!("{CURSOR_TAG}{id}"));
        }
        Ok(page)
    }
}
