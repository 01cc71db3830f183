//! Reading and writing item attributes, and the size guard.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use nudge_core::store::StoreError;

/// An item as the SDK holds it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The largest item this store writes, by DynamoDB's own measure (attribute names plus
/// values): 350,000 bytes, well below the 400 KB (409,600 bytes) DynamoDB refuses, so that an
/// estimate a little short never meets the service's limit. The runner's states are at most
/// 300 KiB before compression, so every state the runner writes fits.
pub const MAX_ITEM_BYTES: usize = 350_000;
/// The most items one `TransactWriteItems` may hold (DynamoDB's limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// The largest transaction this store sends: DynamoDB refuses over 4 MB in all.
pub(super) const MAX_TRANSACTION_BYTES: usize = 4_000_000;

/// A string attribute.
pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(super) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A binary attribute.
pub(super) fn b(value: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

/// The string attribute `name` of `item`.
pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(missing(name, "a string")),
    }
}

/// The string attribute `name` of `item`, if it has one.
pub(super) fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The number attribute `name` of `item`.
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is not a valid number"))),
        _ => Err(missing(name, "a number")),
    }
}

/// The number attribute `name` of `item`, if it has one.
pub(super) fn opt_n<T: std::str::FromStr>(
    item: &Item,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_n(item, name).map(Some),
    }
}

/// The binary attribute `name` of `item`.
pub(super) fn get_b<'a>(item: &'a Item, name: &str) -> Result<&'a [u8], StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => Ok(v.as_ref()),
        _ => Err(missing(name, "binary")),
    }
}

fn missing(name: &str, kind: &str) -> StoreError {
    StoreError::Corrupt(format!("an item has no {kind} attribute `{name}`"))
}

/// The size DynamoDB counts for `item`: each attribute's name plus its value (strings and
/// binaries by their bytes, numbers at most 21 bytes, lists and maps 3 bytes plus their
/// elements, a byte per element).
pub(super) fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) => v.len(),
        AttributeValue::N(v) => v.len().div_ceil(2) + 1,
        AttributeValue::B(v) => v.as_ref().len(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        _ => 1,
    }
}

/// Refuses `item` (named `what`) if it is over [`MAX_ITEM_BYTES`]; returns its size.
pub(super) fn check_item_size(item: &Item, what: &str) -> Result<usize, StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            message: format!("{what} would be {size} bytes, over the store's {MAX_ITEM_BYTES}"),
            source: None,
        });
    }
    Ok(size)
}

/// Refuses a transaction of `items` items and `bytes` bytes over DynamoDB's limits.
pub(super) fn check_transaction(items: usize, bytes: usize) -> Result<(), StoreError> {
    if items > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::TooLarge {
            message: format!(
                "a commit of {items} items, over DynamoDB's {MAX_TRANSACTION_ITEMS} a transaction \
                 (the customer, the event and the sends)"
            ),
            source: None,
        });
    }
    if bytes > MAX_TRANSACTION_BYTES {
        return Err(StoreError::TooLarge {
            message: format!("a commit of {bytes} bytes, over {MAX_TRANSACTION_BYTES}"),
            source: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_names_and_values() {
        let item: Item = [
            ("pk".to_owned(), s("C#a")),
            ("v".to_owned(), n(12)),
            ("st".to_owned(), b(vec![0; 10])),
        ]
        .into();
        assert_eq!(item_size(&item), 2 + 3 + 1 + 2 + 2 + 10);
    }

    #[test]
    fn an_item_over_the_guard_is_too_large() {
        let item: Item = [("st".to_owned(), b(vec![0; MAX_ITEM_BYTES]))].into();
        assert!(matches!(
            check_item_size(&item, "x"),
            Err(StoreError::TooLarge { .. })
        ));
        let item: Item = [("st".to_owned(), b(vec![0; MAX_ITEM_BYTES - 2]))].into();
        assert_eq!(check_item_size(&item, "x").unwrap(), MAX_ITEM_BYTES);
        assert!(check_transaction(100, 10).is_ok());
        assert!(matches!(
            check_transaction(101, 10),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            check_transaction(2, 4_000_001),
            Err(StoreError::TooLarge { .. })
        ));
    }

    #[test]
    fn readers_tell_missing_and_wrong_attributes() {
        let item: Item = [("a".to_owned(), s("x")), ("n".to_owned(), n(3))].into();
        assert_eq!(get_s(&item, "a").unwrap(), "x");
        assert_eq!(get_n::<u64>(&item, "n").unwrap(), 3);
        assert!(matches!(
            get_n::<u64>(&item, "a"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(get_b(&item, "a"), Err(StoreError::Corrupt(_))));
        assert_eq!(opt_n::<u64>(&item, "zz").unwrap(), None);
    }
}
