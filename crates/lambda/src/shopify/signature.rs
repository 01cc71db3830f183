//! `X-Shopify-Hmac-Sha256`: the base64 HMAC-SHA256 of the raw body with the app's secret.
//!
//! Guarantees: the comparison is constant-time (`Mac::verify_slice`); during a rotation the
//! current and the previous secret are both tried; no secret, an empty secret, a missing or
//! undecodable header never verifies. Limit: the signature covers the body only (Shopify signs
//! nothing else), so the headers are trusted as sent with a correctly signed body.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Shopify-Hmac-Sha256` value of `body` under `secret` (what Shopify sends).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // An HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Whether `header` is the signature of `body` under one of `secrets` (empty ones skipped).
pub fn verify<'s>(
    secrets: impl IntoIterator<Item = &'s [u8]>,
    body: &[u8],
    header: Option<&str>,
) -> bool {
    let Some(expected) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    let mut ok = false;
    for secret in secrets {
        if secret.is_empty() {
            continue;
        }
        let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
            continue;
        };
        mac.update(body);
        // Every secret is tried, so the time taken does not say which one matched.
        ok |= mac.verify_slice(&expected).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_signature_verifies() {
        // Computed independently: printf 'hello' | openssl dgst -sha256 -hmac key -binary | base64
        let sig = sign(b"key", b"hello");
        assert_eq!(sig, "kwezuRXvtRcf8U2MtV+8x5jGwO8UVtZt7RpqpyOli3s=");
        assert!(verify([&b"key"[..]], b"hello", Some(&sig)));
    }

    #[test]
    fn the_previous_secret_verifies_during_a_rotation() {
        let sig = sign(b"old", b"body");
        assert!(verify([&b"new"[..], &b"old"[..]], b"body", Some(&sig)));
        assert!(!verify([&b"new"[..]], b"body", Some(&sig)));
    }

    #[test]
    fn a_wrong_missing_or_garbled_signature_or_no_secret_fails() {
        let sig = sign(b"key", b"body");
        assert!(!verify([&b"key"[..]], b"body!", Some(&sig)));
        assert!(!verify([&b"key"[..]], b"body", None));
        assert!(!verify([&b"key"[..]], b"body", Some("not base64 !!")));
        assert!(!verify([&b"key"[..]], b"body", Some("")));
        assert!(!verify(std::iter::empty::<&[u8]>(), b"body", Some(&sig)));
        // An empty secret is never used, even when the signature was made with it.
        let empty = sign(b"", b"body");
        assert!(!verify([&b""[..]], b"body", Some(&empty)));
        // A truncated signature is not a prefix match.
        assert!(!verify([&b"key"[..]], b"body", Some(&sig[..20])));
    }
}
