//! The journal on DynamoDB (see `nudge_core::journal`): one item per commit that journaled
//! something, in the customer's partition, sort key `J#<version, 20 digits>`, holding the
//! commit's entries ([`nudge_core::journal::encode`], at most 64 KiB of JSON, stored through
//! `codec`: deflated when that pays) in `j`, and a `ttl` [`JOURNAL_TTL_DAYS`] after it was
//! written (the commit's hour, as every TTL of a commit).
//!
//! Both journal writes ride in the commit's `TransactWriteItems`, unconditionally and after
//! the send-log entries: the put of the commit's item and the delete of the item of version
//! `version - JOURNAL_COMMITS`. So a commit that is not applied writes no journal, and a
//! customer's partition holds at most [`JOURNAL_COMMITS`] journal items. When the
//! transaction has no room for them (a commit of 99 or 100 items: 98 emails decided by one
//! input; or one whose other items leave less than the journal item's bytes under the 4 MB a
//! transaction may carry; or a journal item over the store's item limit, which
//! `journal::encode`'s 64 KiB bound makes unreachable today), the commit goes without its
//! journal rather than fail; an item its delete would have removed is then left to its TTL.
//!
//! Both reads give the same entries: those of the customer's last [`JOURNAL_COMMITS`]
//! versions (so not an item left behind as above), and only of items whose `ttl` is after the
//! wall clock of the adapter (a filter expression: DynamoDB removes expired items only within
//! days, and the `Store` reads take no `now`). [`DynamoDbStore::journal`] reads the
//! customer's version first; `journal_page` reads customers' state items in its scan (see
//! `journal_page_inner` for the cost).

use aws_sdk_dynamodb::types::{Delete, Put, ReturnConsumedCapacity, TransactWriteItem};
use chrono::Utc;
use nudge_core::journal::{self, JOURNAL_COMMITS, JOURNAL_TTL_DAYS, JournalEntry};
use nudge_core::store::{Commit, JournalPage, StoreError};

use super::error::map_sdk_error;
use super::item::{
    Item, MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, b, get_b, get_n, get_s,
    item_size, n, s,
};
use super::keys::{
    PK, SK, STATE_SK, TTL, check_customer_id, customer_of, customer_pk, decode_scan_cursor,
    encode_scan_cursor,
};
use super::{DynamoDbStore, codec};

/// The prefix of a journal item's sort key.
pub(super) const JOURNAL_SK_PREFIX: &str = "J#";
/// The attribute holding a journal item's entries.
const ENTRIES: &str = "j";
/// The prefix that marks journal cursors made by this store.
const CURSOR_TAG: &str = "j1";

/// The sort key of the journal item of `version`: fixed width, so that sort order is version
/// order.
fn journal_sk(version: u64) -> String {
    format!("{JOURNAL_SK_PREFIX}{version:020}")
}

/// The version a journal sort key names.
fn version_of(sk: &str) -> Option<u64> {
    sk.strip_prefix(JOURNAL_SK_PREFIX)?.parse().ok()
}

/// The journal writes of `commit` for a transaction that already has `taken` items of
/// `taken_bytes` bytes: the put of its item (when it journals anything) and the delete of the
/// item `JOURNAL_COMMITS` versions back (when there is one), with the put's bytes. None when
/// they would not fit in the transaction (its item count or its bytes) or the put is over the
/// item limit.
pub(super) fn journal_items(
    table: &str,
    commit: &Commit<'_>,
    now: i64,
    taken: usize,
    taken_bytes: usize,
) -> Result<(Vec<TransactWriteItem>, usize), StoreError> {
    let version = commit.expected_version + 1;
    let entries = journal::encode(commit.journal);
    let mut items = Vec::new();
    let mut bytes = 0;
    let pk = customer_pk(commit.customer_id);
    if !commit.journal.is_empty() {
        // From when it is written (the commit's hour, as every TTL of a commit), not from the
        // entries' own times: `simulate`'s virtual clock, or an event replayed from long ago,
        // must not make a fresh item expire at once.
        let ttl = now + JOURNAL_TTL_DAYS * 24 * 3600;
        let item: Item = [
            (PK.to_owned(), s(pk.clone())),
            (SK.to_owned(), s(journal_sk(version))),
            (ENTRIES.to_owned(), b(codec::encode(&entries))),
            (TTL.to_owned(), n(ttl)),
        ]
        .into();
        bytes += item_size(&item);
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Failed {
                message: format!("a journal put could not be built: {e}"),
                source: None,
            })?;
        items.push(TransactWriteItem::builder().put(put).build());
    }
    if let Some(old) = version.checked_sub(JOURNAL_COMMITS).filter(|v| *v > 0) {
        let delete = Delete::builder()
            .table_name(table)
            .key(PK, s(pk))
            .key(SK, s(journal_sk(old)))
            .build()
            .map_err(|e| StoreError::Failed {
                message: format!("a journal delete could not be built: {e}"),
                source: None,
            })?;
        items.push(TransactWriteItem::builder().delete(delete).build());
    }
    if taken + items.len() > MAX_TRANSACTION_ITEMS
        || bytes > MAX_ITEM_BYTES
        || taken_bytes + bytes > MAX_TRANSACTION_BYTES
    {
        return Ok((Vec::new(), 0));
    }
    Ok((items, bytes))
}

impl DynamoDbStore {
    /// See `Store::journal`: the customer's version (a `GetItem`) and their live journal items
    /// (a consistent `Query` of `J#`, filtered to a `ttl` after the wall clock), keeping the
    /// versions of the last [`JOURNAL_COMMITS`].
    pub(super) async fn journal_inner(
        &self,
        customer_id: &str,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        check_customer_id(customer_id)?;
        let pk = customer_pk(customer_id);
        let Some(current) = self.version_of_customer(pk.clone()).await? else {
            return Ok(Vec::new());
        };
        let oldest = current.saturating_sub(JOURNAL_COMMITS);
        let now = Utc::now().timestamp();
        let items = self
            .partition_live(pk, Some(JOURNAL_SK_PREFIX), Some("sk, j"), Some(now))
            .await?;
        let mut entries = Vec::new();
        for item in items {
            let version = item_version(&item)?;
            if version > oldest && version <= current {
                entries.extend(decoded(&item, version)?);
            }
        }
        Ok(entries)
    }

    /// The version of the customer of partition `pk` (a consistent `GetItem` of its state
    /// item), None when it has none.
    async fn version_of_customer(&self, pk: String) -> Result<Option<u64>, StoreError> {
        match self.get(pk, STATE_SK, "v").await? {
            Some(state) => Ok(Some(get_n(&state, "v")?)),
            None => Ok(None),
        }
    }

    /// See `Store::journal_page`: a `Scan` of `limit` items filtered to live journal items
    /// (`ttl` after the wall clock) and customers' state items, in the table's own order; the
    /// cursor is the last evaluated key. A page may hold no entry and still have a cursor.
    ///
    /// It keeps what [`DynamoDbStore::journal`] keeps: the items of a customer's last
    /// [`JOURNAL_COMMITS`] versions. A scan returns a partition's items together, in sort-key
    /// order, and `STATE` sorts after `J#`: a customer's journal items are held until their
    /// state item's version arrives, then those [`JOURNAL_COMMITS`] or more versions back are
    /// dropped. Items of a customer with no state item (being erased) are dropped. When the page
    /// ends between a customer's journal items and their state item, the version is read with
    /// one consistent `GetItem`: at most one per page, the only cost over the scan (whose read
    /// units count every item it reads, returned or not).
    pub(super) async fn journal_page_inner(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JournalPage, StoreError> {
        let start = cursor.map(decode_cursor).transpose()?;
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :state OR (begins_with(sk, :j) AND #ttl > :now)")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":state", s(STATE_SK))
            .expression_attribute_values(":j", s(JOURNAL_SK_PREFIX))
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .projection_expression("pk, sk, j, v")
            .limit(limit)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("Scan", e))?;
        let mut page = JournalPage::default();
        let mut held = Held::default();
        for item in output.items.unwrap_or_default() {
            let Ok(customer) = customer_of(get_s(&item, PK)?) else {
                continue;
            };
            if held.customer.as_deref() != Some(customer) {
                // A partition that ended without its state item: a customer being erased.
                held = Held {
                    customer: Some(customer.to_owned()),
                    items: Vec::new(),
                };
            }
            if get_s(&item, SK)? == STATE_SK {
                held.release(get_n(&item, "v")?, since, &mut page)?;
            } else {
                held.items.push(item);
            }
        }
        // Items still held: the page ended before this customer's state item (or they have
        // none, being erased: then the `GetItem` finds none either).
        if let Some(customer) = held.customer.clone().filter(|_| !held.items.is_empty())
            && let Some(version) = self.version_of_customer(customer_pk(&customer)).await?
        {
            held.release(version, since, &mut page)?;
        }
        page.cursor = output
            .last_evaluated_key
            .map(|key| encode_cursor(&key))
            .transpose()?;
        Ok(page)
    }
}

/// The journal items of one customer read by a scan, waiting for the customer's version.
#[derive(Default)]
struct Held {
    customer: Option<String>,
    items: Vec<Item>,
}

impl Held {
    /// Moves the held items of the last [`JOURNAL_COMMITS`] versions before `current`
    /// (the customer's version) into `page`, their entries at or after `since`.
    fn release(
        &mut self,
        current: u64,
        since: Option<chrono::DateTime<chrono::Utc>>,
        page: &mut JournalPage,
    ) -> Result<(), StoreError> {
        let oldest = current.saturating_sub(JOURNAL_COMMITS);
        let customer = self.customer.clone().unwrap_or_default();
        for item in std::mem::take(&mut self.items) {
            let version = item_version(&item)?;
            // No upper bound: an eventually consistent scan may see a journal item before the
            // state item of its commit.
            if version <= oldest {
                continue;
            }
            for entry in decoded(&item, version)? {
                if since.is_none_or(|s| entry.at >= s) {
                    page.entries.push((customer.clone(), entry));
                }
            }
        }
        Ok(())
    }
}

/// The version a journal item's sort key names.
fn item_version(item: &Item) -> Result<u64, StoreError> {
    version_of(get_s(item, SK)?)
        .ok_or_else(|| StoreError::Corrupt("a journal sort key is not a version".into()))
}

/// A journal item's entries.
fn decoded(item: &Item, version: u64) -> Result<Vec<JournalEntry>, StoreError> {
    let bytes = codec::decode(get_b(item, ENTRIES)?)?;
    journal::decode(&bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "the journal item of version {version} is unreadable ({:?})",
            e.classify()
        ))
    })
}

/// A scan's last evaluated key as a journal cursor.
fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    encode_scan_cursor(CURSOR_TAG, key)
}

/// The scan's start key a journal cursor names, or `InvalidRequest` when this store did not
/// make it.
fn decode_cursor(text: &str) -> Result<Item, StoreError> {
    decode_scan_cursor(CURSOR_TAG, text, "journal")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use nudge_core::journal::Happened;

    fn commit<'a>(expected: u64, journal: &'a [JournalEntry]) -> Commit<'a> {
        Commit {
            customer_id: "c-1",
            expected_version: expected,
            state: b"{}",
            next_wake: None,
            event_id: None,
            sends: &[],
            journal,
        }
    }

    /// The commit's hour in the tests (unix seconds).
    const NOW: i64 = 1_772_532_000;

    fn entry() -> JournalEntry {
        JournalEntry {
            at: DateTime::<Utc>::from_timestamp(1_772_532_000, 0).unwrap(),
            workflow: Some("w".into()),
            run: Some("r".into()),
            step: None,
            zone: Some("UTC".into()),
            what: Happened::RunStarted,
        }
    }

    #[test]
    fn a_commit_puts_its_item_and_deletes_the_one_journal_commits_back() {
        let entries = [entry()];
        let (items, bytes) = journal_items("t", &commit(0, &entries), NOW, 1, 0).unwrap();
        assert_eq!(items.len(), 1, "version 1 has nothing to delete");
        assert!(bytes > 0);
        let put = items[0].put().unwrap();
        assert_eq!(put.item()["sk"], s("J#00000000000000000001"));
        assert_eq!(put.item()["ttl"], n(NOW + 400 * 24 * 3600));
        assert!(put.condition_expression().is_none());
        let (items, _) = journal_items("t", &commit(JOURNAL_COMMITS, &entries), NOW, 1, 0).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].delete().unwrap().key()["sk"],
            s("J#00000000000000000001")
        );
        // Nothing journaled: no put, but the old item still goes.
        let (items, _) = journal_items("t", &commit(JOURNAL_COMMITS + 4, &[]), NOW, 1, 0).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].delete().unwrap().key()["sk"],
            s("J#00000000000000000005")
        );
    }

    #[test]
    fn a_full_transaction_goes_without_its_journal() {
        let entries = [entry()];
        let c = commit(JOURNAL_COMMITS, &entries);
        let (items, _) = journal_items("t", &c, NOW, MAX_TRANSACTION_ITEMS - 2, 0).unwrap();
        assert_eq!(items.len(), 2);
        let (items, bytes) = journal_items("t", &c, NOW, MAX_TRANSACTION_ITEMS - 1, 0).unwrap();
        assert!(items.is_empty() && bytes == 0);
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let key: Item = [(PK.to_owned(), s("C#c-1")), (SK.to_owned(), s("J#1"))].into();
        let text = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&text).unwrap(), key);
        for bad in ["", "d1.00.00", "j1.zz.00", "j1.00", "j1.00.00.00"] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }
}
