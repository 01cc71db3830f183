//! A commit as one `TransactWriteItems`: the customer's state item on its version, the
//! processed event on its absence, each new send-log entry on its absence, then the journal's
//! put and delete (`super::journal`); with a
//! `ClientRequestToken` derived from the commit.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem};
use chrono::{DateTime, Utc};
use nudge_core::store::{Commit, CommitOutcome, SendRecord, StoreError, validate_commit};
use sha2::{Digest, Sha256};

use super::error::{Cancelled, Layout, classify_cancellation, map_sdk_error};
use super::item::{Item, b, check_item_size, check_transaction, n, s};
use super::journal::journal_items;
use super::keys::{
    GPK, GSK, PK, SK, STATE_SK, TTL, check_customer_id, customer_pk, event_pk, timer_keys,
};
use super::sends::send_item;
use super::{DynamoDbStore, PROCESSED_EVENT_TTL, codec};

/// The sort key of a processed event's item.
pub(super) const EVENT_SK: &str = "EVENT";
/// How many times a commit is sent again without send keys found already logged, before it
/// is reported as a conflict (a concurrent writer keeps logging them).
const SEND_AGAIN: usize = 3;

impl DynamoDbStore {
    /// See `Store::commit`.
    pub(super) async fn commit_inner(
        &self,
        commit: Commit<'_>,
    ) -> Result<CommitOutcome, StoreError> {
        validate_commit(&commit)?;
        check_customer_id(commit.customer_id)?;
        if commit.expected_version == u64::MAX {
            // No customer reaches that version (it has no successor): a conflict, unless the
            // event is a duplicate, which wins.
            return Ok(match commit.event_id {
                Some(id) if self.is_processed_inner(id).await? => CommitOutcome::AlreadyProcessed,
                _ => CommitOutcome::Conflict,
            });
        }
        let mut sends = unique_by_key(commit.sends);
        // Rounded to the hour, so that a caller's own retry of the same commit within the
        // token's 10 minutes sends the same items (most of the time: see the docs).
        let now = hour_of(Utc::now());
        for _ in 0..SEND_AGAIN {
            let (items, layout) = transaction(&self.table, &commit, &sends, now)?;
            let token = request_token(&commit, &sends);
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .client_request_token(token)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => {
                    return Ok(CommitOutcome::Committed {
                        version: commit.expected_version + 1,
                    });
                }
                Err(err) => err,
            };
            match cancellation(&err, layout) {
                Some(Cancelled::AlreadyProcessed) => return Ok(CommitOutcome::AlreadyProcessed),
                Some(Cancelled::Conflict) => return Ok(CommitOutcome::Conflict),
                Some(Cancelled::Error(e)) => return Err(e),
                Some(Cancelled::SendsLogged(logged)) => {
                    let mut i = 0;
                    sends.retain(|_| {
                        i += 1;
                        !logged.contains(&(i - 1))
                    });
                }
                None => return Err(map_sdk_error("TransactWriteItems", err)),
            }
        }
        Ok(CommitOutcome::Conflict)
    }
}

/// The reasons of a cancelled transaction, classified; `None` for another error.
fn cancellation(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
    layout: Layout,
) -> Option<Cancelled> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => {
            let reasons: Vec<(Option<&str>, Option<&str>)> = e
                .cancellation_reasons()
                .iter()
                .map(|r| (r.code(), r.message()))
                .collect();
            Some(classify_cancellation(&reasons, layout))
        }
        _ => None,
    }
}

/// The sends of `sends` whose key was not seen before among them (the first wins: a
/// transaction cannot touch one item twice).
fn unique_by_key(sends: &[SendRecord]) -> Vec<&SendRecord> {
    let mut seen = std::collections::HashSet::new();
    sends
        .iter()
        .filter(|s| seen.insert(s.idempotency_key.as_str()))
        .collect()
}

/// `at` cut to the hour.
fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp() - at.timestamp().rem_euclid(3600)
}

/// The transaction's items and where each kind stands, refused (`TooLarge`) before any request
/// if an item or the whole is over DynamoDB's limits.
fn transaction(
    table: &str,
    commit: &Commit<'_>,
    sends: &[&SendRecord],
    now: i64,
) -> Result<(Vec<TransactWriteItem>, Layout), StoreError> {
    let count = 1 + usize::from(commit.event_id.is_some()) + sends.len();
    check_transaction(count, 0)?;
    let mut items = Vec::with_capacity(count);
    let mut bytes = 0;
    let customer = customer_item(commit)?;
    bytes += check_item_size(&customer, "the customer's state item")?;
    let condition = if commit.expected_version == 0 {
        put(table, customer, "attribute_not_exists(pk)", None)
    } else {
        put(table, customer, "#v = :v", Some(commit.expected_version))
    };
    items.push(condition);
    let event = commit.event_id.map(|_| items.len());
    if let Some(id) = commit.event_id {
        let item: Item = [
            (PK.to_owned(), s(event_pk(id))),
            (SK.to_owned(), s(EVENT_SK)),
            (
                TTL.to_owned(),
                n(now + PROCESSED_EVENT_TTL.as_secs() as i64),
            ),
        ]
        .into();
        bytes += check_item_size(&item, "the processed event item")?;
        items.push(put(table, item, "attribute_not_exists(pk)", None));
    }
    let first_send = items.len();
    for send in sends {
        let item = send_item(send, now)?;
        bytes += check_item_size(&item, "a send-log entry")?;
        items.push(put(table, item, "attribute_not_exists(pk)", None));
    }
    // Last and unconditional: no cancellation reason points at them (`super::journal`).
    let (journal, journal_bytes) = journal_items(table, commit, now, items.len(), bytes)?;
    items.extend(journal);
    bytes += journal_bytes;
    check_transaction(items.len(), bytes)?;
    Ok((items, Layout { event, first_send }))
}

/// The customer's state item: version, state and the timer's index keys when it has one.
fn customer_item(commit: &Commit<'_>) -> Result<Item, StoreError> {
    let mut item: Item = [
        (PK.to_owned(), s(customer_pk(commit.customer_id))),
        (SK.to_owned(), s(STATE_SK)),
        ("v".to_owned(), n(commit.expected_version + 1)),
        ("st".to_owned(), b(codec::encode(commit.state))),
    ]
    .into();
    if let Some(wake) = commit.next_wake {
        let (gpk, gsk) = timer_keys(commit.customer_id, wake)?;
        item.insert(GPK.to_owned(), s(gpk));
        item.insert(GSK.to_owned(), s(gsk));
    }
    Ok(item)
}

/// A conditional put of `item`; `version` is the value of `:v` when the condition names it.
fn put(table: &str, item: Item, condition: &str, version: Option<u64>) -> TransactWriteItem {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    if let Some(v) = version {
        put = put
            .expression_attribute_names("#v", "v")
            .expression_attribute_values(":v", n(v));
    }
    TransactWriteItem::builder()
        .put(put.build().expect("table, item and condition are set"))
        .build()
}

/// The idempotency token of a commit: the first 32 hex digits of SHA-256 over the customer,
/// the expected version, the state, the timer, the event and the send keys written (each
/// length-prefixed), so that the SDK's retry of a commit that went through is recognised by
/// DynamoDB as the same request, while two different commits never share one.
pub(super) fn request_token(commit: &Commit<'_>, sends: &[&SendRecord]) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(commit.customer_id.as_bytes());
    field(&commit.expected_version.to_be_bytes());
    field(commit.state);
    field(
        &commit
            .next_wake
            .map_or(i64::MIN, |t| t.timestamp_millis())
            .to_be_bytes(),
    );
    field(commit.event_id.unwrap_or("\u{0}none").as_bytes());
    for send in sends {
        field(send.idempotency_key.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use nudge_core::store::SendKind;

    fn send(key: &str) -> SendRecord {
        SendRecord {
            idempotency_key: key.to_owned(),
            customer_id: "c".to_owned(),
            workflow: "w".to_owned(),
            step: "s".to_owned(),
            kind: SendKind::Email,
            category: "marketing".to_owned(),
            tags: vec![],
            at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            payload: vec![],
        }
    }

    #[test]
    fn a_commit_is_the_state_then_the_event_then_each_new_key_once() {
        let sends = [send("k-1"), send("k-2"), send("k-1")];
        let commit = Commit {
            customer_id: "c",
            expected_version: 3,
            state: b"{}",
            next_wake: None,
            event_id: Some("e"),
            sends: &sends,
            journal: &[],
        };
        let unique = unique_by_key(&sends);
        assert_eq!(unique.len(), 2);
        let now = hour_of(Utc.with_ymd_and_hms(2026, 3, 1, 10, 59, 59).unwrap());
        assert_eq!(
            now,
            Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0)
                .unwrap()
                .timestamp()
        );
        let (items, layout) = transaction("t", &commit, &unique, now).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!((layout.event, layout.first_send), (Some(1), 2));
        let put = |i: usize| items[i].put().expect("a put");
        assert_eq!(put(0).condition_expression(), Some("#v = :v"));
        assert_eq!(put(0).item()["v"], n(4));
        assert!(!put(0).item().contains_key(GPK), "no timer, no index key");
        let ttl = put(1).item()[TTL].as_n().unwrap().parse::<i64>().unwrap();
        assert_eq!(ttl - now, 35 * 24 * 3600);
        assert_eq!(put(2).item()[SK], s("S#k-1"));
        assert_eq!(put(3).item()[SK], s("S#k-2"));
        assert!(items.iter().all(|i| i.put().unwrap().table_name() == "t"));
    }

    #[test]
    fn a_first_commit_puts_on_absence_and_tokens_depend_on_every_part() {
        let base = Commit {
            customer_id: "c",
            expected_version: 0,
            state: b"{}",
            next_wake: None,
            event_id: None,
            sends: &[],
            journal: &[],
        };
        let (items, layout) = transaction("t", &base, &[], 0).unwrap();
        assert_eq!(
            items[0].put().unwrap().condition_expression(),
            Some("attribute_not_exists(pk)")
        );
        assert_eq!((layout.event, layout.first_send), (None, 1));
        let token = request_token(&base, &[]);
        assert_eq!(token.len(), 32);
        assert_eq!(token, request_token(&base, &[]));
        let one = send("k");
        let variants = [
            Commit {
                customer_id: "d",
                ..base
            },
            Commit {
                expected_version: 1,
                ..base
            },
            Commit {
                state: b"{ }",
                ..base
            },
            Commit {
                next_wake: Some(one.at),
                ..base
            },
            Commit {
                event_id: Some("e"),
                ..base
            },
        ];
        for other in variants {
            assert_ne!(request_token(&other, &[]), token, "{other:?}");
        }
        assert_ne!(request_token(&base, &[&one]), token);
    }

    /// `len` bytes that DEFLATE cannot shrink (so stored as they are, one format byte more).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// The bytes `transaction` counts for `items` (all puts).
    fn put_bytes(items: &[TransactWriteItem]) -> usize {
        items
            .iter()
            .filter_map(|i| i.put())
            .map(|p| super::super::item::item_size(p.item()))
            .sum()
    }

    #[test]
    fn a_commit_that_fits_without_its_journal_goes_without_it() {
        use nudge_core::journal::{Happened, JOURNAL_COMMITS, JournalEntry};
        let entries = [JournalEntry {
            at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            workflow: Some("w".into()),
            run: Some("r".into()),
            step: None,
            zone: None,
            what: Happened::RunStarted,
        }];
        // Eleven sends of 340,000 bytes and a state making up the rest: just under 4 MB.
        let sends: Vec<SendRecord> = (0..11u64)
            .map(|i| SendRecord {
                payload: noise(340_000, i + 7),
                ..send(&format!("k-{i}"))
            })
            .collect();
        let unique = unique_by_key(&sends);
        let first = noise(200_000, 3);
        let base = Commit {
            customer_id: "c",
            expected_version: JOURNAL_COMMITS,
            state: &first,
            next_wake: None,
            event_id: Some("e"),
            sends: &sends,
            journal: &[],
        };
        let (items, _) = transaction("t", &base, &unique, 0).unwrap();
        let short = 4_000_000 - 40 - put_bytes(&items);
        let state = [first.clone(), noise(short, 5)].concat();
        let with_journal = Commit {
            state: &state,
            journal: &entries,
            ..base
        };
        let (items, layout) = transaction("t", &with_journal, &unique, 0).unwrap();
        assert_eq!(put_bytes(&items), 4_000_000 - 40, "the commit fits alone");
        assert_eq!(items.len(), 1 + 1 + 11, "no journal put, no journal delete");
        assert_eq!((layout.event, layout.first_send), (Some(1), 2));
        // With room for it, the same commit keeps its journal.
        let room = Commit {
            state: &state[..state.len() - 1_000],
            ..with_journal
        };
        let (items, _) = transaction("t", &room, &unique, 0).unwrap();
        assert_eq!(items.len(), 1 + 1 + 11 + 2);
    }
}
