//! The SES message tags of a send: enough to trace an SES event (delivery, bounce, complaint,
//! open) back to the send and its workflow, and nothing that is customer data (see
//! [`message_tags`]).

use aws_sdk_sesv2::types::MessageTag;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nudge_core::mail::MailError;
use nudge_core::store::SendRecord;
use sha2::{Digest, Sha256};

/// The tag naming the workflow.
pub const TAG_WORKFLOW: &str = "nudge-workflow";
/// The tag naming the `send_email` step.
pub const TAG_STEP: &str = "nudge-step";
/// The tag holding base64url(SHA-256(customer id)).
pub const TAG_CUSTOMER: &str = "nudge-customer";
/// The tag holding base64url(idempotency key).
pub const TAG_KEY: &str = "nudge-key";
/// The tag holding base64url(SHA-256(idempotency key)), for a key too long for [`TAG_KEY`].
pub const TAG_KEY_SHA256: &str = "nudge-key-sha256";
/// The prefix of a step tag's name.
const STEP_TAG_PREFIX: &str = "tag-";
/// SES's longest tag name or value.
const MAX_LEN: usize = 256;

/// The message tags for `email`: enough to trace an SES event (delivery, bounce, complaint,
/// open) back to the send and its workflow, and nothing that is customer data. A step tag
/// outside SES's alphabet is [`MailError::InvalidTag`], as `build_mime` reports it.
///
/// SES tag names and values allow only `[A-Za-z0-9_-]`, at most 256 characters, and SES passes
/// them on to every event destination (CloudWatch, SNS, Firehose), so they are treated as
/// logged:
/// - [`TAG_WORKFLOW`], [`TAG_STEP`]: the workflow's and the step's ids, as they are (the
///   language already limits them to that alphabet; one longer than 256 characters goes as
///   `sha256-` and the base64url of its SHA-256).
/// - [`TAG_CUSTOMER`]: base64url (no padding) of the SHA-256 of the customer id, never the id
///   itself: a guest's id is `guest:<address>`, and base64url of it would be the address in a
///   thin disguise. The hash is a pseudonym, not a secret: whoever holds the customer id (the
///   store, an operator answering a complaint) finds the customer's events by hashing it, and
///   its 43 characters fit however long the id is.
/// - [`TAG_KEY`]: base64url (no padding) of the idempotency key (`<run id>.<step id>`, ids and
///   a hash, no customer data), so an event decodes straight to the send-log entry it belongs
///   to. A key too long for 256 characters goes as [`TAG_KEY_SHA256`] instead, the base64url of
///   its SHA-256.
/// - each of the step's own `tags` (`[A-Za-z0-9_-]{1,64}`, checked by `validate`) as its own
///   tag named `tag-<tag>` with the value `1`: one name per tag is what an event destination can
///   filter and count on (a CloudWatch dimension is one tag name), which one joined value would
///   not allow, and the `tag-` prefix keeps a step tag from ever clashing with the names above.
pub fn message_tags(email: &SendRecord) -> Result<Vec<MessageTag>, MailError> {
    let mut tags = vec![
        tag(TAG_WORKFLOW, id_value(&email.workflow)),
        tag(TAG_STEP, id_value(&email.step)),
        tag(TAG_CUSTOMER, sha256_b64(&email.customer_id)),
    ];
    let key = URL_SAFE_NO_PAD.encode(email.idempotency_key.as_bytes());
    tags.push(if key.len() <= MAX_LEN {
        tag(TAG_KEY, key)
    } else {
        tag(TAG_KEY_SHA256, sha256_b64(&email.idempotency_key))
    });
    for step_tag in &email.tags {
        if !(1..=64).contains(&step_tag.len()) || !in_alphabet(step_tag) {
            return Err(MailError::InvalidTag {
                tag: step_tag.clone(),
            });
        }
        tags.push(tag(&format!("{STEP_TAG_PREFIX}{step_tag}"), "1".to_owned()));
    }
    Ok(tags)
}

fn tag(name: &str, value: String) -> MessageTag {
    MessageTag::builder()
        .name(name)
        .value(value)
        .build()
        .expect("name and value are both set")
}

/// An id as it is when SES takes it, else `sha256-` and its hash (still traceable by hashing).
fn id_value(id: &str) -> String {
    if !id.is_empty() && id.len() <= MAX_LEN && in_alphabet(id) {
        id.to_owned()
    } else {
        format!("sha256-{}", sha256_b64(id))
    }
}

fn sha256_b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

fn in_alphabet(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn email(customer: &str, key: &str, tags: &[&str]) -> SendRecord {
        SendRecord {
            idempotency_key: key.to_owned(),
            customer_id: customer.to_owned(),
            workflow: "win-back".to_owned(),
            step: "send_1".to_owned(),
            kind: nudge_core::store::SendKind::Email,
            category: "transactional".to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            at: chrono::DateTime::UNIX_EPOCH,
            payload: b"To: ada@example.com\r\n\r\nHi".to_vec(),
        }
    }

    fn pairs(email: &SendRecord) -> Vec<(String, String)> {
        message_tags(email)
            .expect("valid tags")
            .iter()
            .map(|t| (t.name().to_owned(), t.value().to_owned()))
            .collect()
    }

    #[test]
    fn tags_name_the_workflow_step_hashed_customer_encoded_key_and_step_tags() {
        let email = email(
            "guest:ada@example.com",
            "r-0123456789abcdef0123.send_1",
            &["vip"],
        );
        let tags = pairs(&email);
        let customer = URL_SAFE_NO_PAD.encode(Sha256::digest(b"guest:ada@example.com"));
        assert_eq!(
            tags,
            [
                (TAG_WORKFLOW.to_owned(), "win-back".to_owned()),
                (TAG_STEP.to_owned(), "send_1".to_owned()),
                (TAG_CUSTOMER.to_owned(), customer),
                (
                    TAG_KEY.to_owned(),
                    "ci0wMTIzNDU2Nzg5YWJjZGVmMDEyMy5zZW5kXzE".to_owned()
                ),
                ("tag-vip".to_owned(), "1".to_owned()),
            ]
        );
        let key = URL_SAFE_NO_PAD.decode(&tags[3].1).expect("base64url");
        assert_eq!(
            key,
            email.idempotency_key.as_bytes(),
            "the key decodes back"
        );
    }

    #[test]
    fn every_tag_fits_ses_and_carries_no_address_or_name() {
        let long_key = format!("r-1.{}", "s".repeat(300));
        for customer in ["guest:ada@example.com", "Ada Lovelace", &"c".repeat(1000)] {
            let email = email(customer, &long_key, &["a-b_C9", &"x".repeat(64)]);
            for (name, value) in pairs(&email) {
                for text in [&name, &value] {
                    assert!(!text.is_empty() && text.len() <= MAX_LEN, "{name}={value}");
                    assert!(in_alphabet(text), "{name}={value}");
                    let decoded = URL_SAFE_NO_PAD.decode(text).unwrap_or_default();
                    for secret in ["ada@example.com", "Ada", "Lovelace", "guest"] {
                        assert!(!text.contains(secret), "{name}={value} shows {secret}");
                        let decoded = String::from_utf8_lossy(&decoded);
                        assert!(!decoded.contains(secret), "{name}={value} hides {secret}");
                    }
                }
            }
            let names: Vec<_> = pairs(&email).into_iter().map(|(n, _)| n).collect();
            assert!(names.contains(&TAG_KEY_SHA256.to_owned()), "{names:?}");
            assert!(!names.contains(&TAG_KEY.to_owned()), "{names:?}");
        }
    }

    #[test]
    fn an_overlong_id_goes_hashed_and_a_tag_outside_the_alphabet_is_refused() {
        let mut long = email("c-1", "r-1.s", &[]);
        long.step = "s".repeat(300);
        let step = &pairs(&long)[1].1;
        assert!(
            step.starts_with("sha256-") && step.len() <= MAX_LEN,
            "{step}"
        );

        for bad in ["a.b", "", "é", &"x".repeat(65)] {
            let err = message_tags(&email("c-1", "r-1.s", &[bad])).expect_err(bad);
            assert!(matches!(err, MailError::InvalidTag { .. }), "{bad}: {err}");
        }
    }
}
