//! Signed links: the one-click unsubscribe URL in every marketing email.
//!
//! The link names the customer and carries an HMAC-SHA256 signature, so the unsubscribe
//! endpoint can act on a click (or on a mail provider's RFC 8058 POST) without a login, and
//! nobody can unsubscribe a customer whose link they have not received.
//!
//! The signed message is `"unsubscribe\0" + customer_id`. The prefix separates purposes: a
//! signature made for another kind of link can never pass as an unsubscribe signature. The tag
//! is truncated to its first 16 bytes (128 bits, as RFC 2104 allows: at least half the hash and
//! at least 80 bits), which keeps URLs short while forging one still takes about 2^128 guesses.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable that holds the signing key.
pub const SIGNING_KEY_ENV: &str = "NUDGE_SIGNING_KEY";

/// The development key, used when [`SIGNING_KEY_ENV`] is not set. It is public (it is in this
/// source file), so links signed with it protect nothing: for local runs and tests only.
pub const DEVELOPMENT_KEY: &[u8] = b"nudge-development-signing-key (public, not for production)";

/// The shortest key accepted in [`SIGNING_KEY_ENV`], in bytes: 32, the length of the HMAC's
/// SHA-256 output, below which the key, not the hash, is what an attacker has to guess.
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// Where [`Signer::from_env`] took its key from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// [`SIGNING_KEY_ENV`].
    Environment,
    /// [`DEVELOPMENT_KEY`]: the variable is not set.
    Unset,
    /// [`DEVELOPMENT_KEY`]: the variable is set but empty.
    Empty,
}

/// Why the key in [`SIGNING_KEY_ENV`] is refused. The message names the variable, never its
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    /// Shorter than [`MIN_SIGNING_KEY_BYTES`].
    #[error(
        "{SIGNING_KEY_ENV} is {bytes} bytes long; a signing key needs at least {MIN_SIGNING_KEY_BYTES} bytes (e.g. the output of `openssl rand -base64 32`), or unset it to use the public development key"
    )]
    TooShort {
        /// Its length.
        bytes: usize,
    },
}

/// Bytes of the HMAC tag kept in a link.
const TAG_LEN: usize = 16;

/// Domain separation for unsubscribe signatures.
const UNSUBSCRIBE: &[u8] = b"unsubscribe\0";

/// Signs and verifies links with an HMAC-SHA256 key.
///
/// Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct Signer {
    /// The MAC keyed once; each signature starts from a clone.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `key`. Any length works (HMAC hashes long keys and pads short ones); use
    /// at least 32 random bytes in production.
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::new_from_slice(key).expect("HMAC accepts keys of any length"),
        }
    }

    /// A signer with [`DEVELOPMENT_KEY`], the fixed public key for local runs and tests.
    #[must_use]
    pub fn development() -> Self {
        Self::new(DEVELOPMENT_KEY)
    }

    /// A signer with the key in `NUDGE_SIGNING_KEY` (its bytes as given, e.g. the output of
    /// `openssl rand -base64 32`), or with the development key when it is unset or empty, as
    /// the [`KeySource`] says, so that the caller can say so. A key shorter than
    /// [`MIN_SIGNING_KEY_BYTES`] is refused: a short key can be guessed, and every link signed
    /// with it forged. The key itself is never logged nor put in an error.
    pub fn from_env() -> Result<(Self, KeySource), SigningKeyError> {
        Self::from_key_var(std::env::var_os(SIGNING_KEY_ENV))
    }

    /// [`Signer::from_env`] given the variable's value (tests cannot set the environment
    /// safely while other tests run).
    fn from_key_var(
        value: Option<std::ffi::OsString>,
    ) -> Result<(Self, KeySource), SigningKeyError> {
        match value {
            None => Ok((Self::development(), KeySource::Unset)),
            Some(key) if key.is_empty() => Ok((Self::development(), KeySource::Empty)),
            Some(key) if key.len() < MIN_SIGNING_KEY_BYTES => {
                Err(SigningKeyError::TooShort { bytes: key.len() })
            }
            Some(key) => Ok((Self::new(key.as_encoded_bytes()), KeySource::Environment)),
        }
    }

    /// The one-click unsubscribe URL for `customer_id`: `base` with `c=<customer id>` and
    /// `s=<signature>` added to its query (URL-encoded; a query `base` already has is kept).
    /// The signature is base64url without padding of the first 16 bytes of
    /// `HMAC-SHA256(key, "unsubscribe\0" + customer_id)`.
    #[must_use]
    pub fn unsubscribe_url(&self, base: &url::Url, customer_id: &str) -> String {
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("c", customer_id)
            .append_pair("s", &self.unsubscribe_signature(customer_id));
        url.into()
    }

    /// Whether `sig` is the unsubscribe signature of `customer_id` (the `c` and `s` query
    /// parameters, decoded). The comparison takes the same time wherever the tags differ, so
    /// timing does not reveal a valid signature byte by byte; a signature of any other length
    /// or encoding is rejected outright.
    #[must_use = "a signature that is not checked protects nothing"]
    pub fn verify_unsubscribe(&self, customer_id: &str, sig: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        // Without this, `verify_truncated_left` would accept a 1-byte prefix of the tag.
        if tag.len() != TAG_LEN {
            return false;
        }
        self.unsubscribe_mac(customer_id)
            .verify_truncated_left(&tag)
            .is_ok()
    }

    fn unsubscribe_mac(&self, customer_id: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(UNSUBSCRIBE);
        mac.update(customer_id.as_bytes());
        mac
    }

    fn unsubscribe_signature(&self, customer_id: &str) -> String {
        let tag = self.unsubscribe_mac(customer_id).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2, so that the HMAC is the standard one and not something that merely
    /// round-trips with itself.
    #[test]
    fn signature_is_standard_hmac_sha256_truncated() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );

        let signer = Signer::new(b"Jefe");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"unsubscribe\0c-1001");
        let expected = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16]);
        assert_eq!(signer.unsubscribe_signature("c-1001"), expected);
        assert_eq!(expected.len(), 22);
    }

    #[test]
    fn url_keeps_the_base_and_encodes_the_id() {
        let base = url::Url::parse("https://shop.example.com/unsubscribe?list=news").unwrap();
        let signer = Signer::development();
        let link = signer.unsubscribe_url(&base, "c 1&x=ş");
        assert!(
            link.starts_with(
                "https://shop.example.com/unsubscribe?list=news&c=c+1%26x%3D%C5%9F&s="
            ),
            "{link}"
        );
        let parsed = url::Url::parse(&link).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        assert_eq!(pairs[1], ("c".into(), "c 1&x=ş".into()));
        assert!(signer.verify_unsubscribe(&pairs[1].1, &pairs[2].1));
    }

    #[test]
    fn truncated_or_padded_signatures_are_rejected() {
        let signer = Signer::development();
        let sig = signer.unsubscribe_signature("c-1");
        assert!(signer.verify_unsubscribe("c-1", &sig));
        assert!(!signer.verify_unsubscribe("c-1", &sig[..2]));
        assert!(!signer.verify_unsubscribe("c-1", &sig[..21]));
        assert!(!signer.verify_unsubscribe("c-1", &format!("{sig}==")));
        assert!(!signer.verify_unsubscribe("c-1", ""));
        // Standard base64 (`+`, `/`) is not what the links carry.
        let standard = sig.replace('-', "+").replace('_', "/");
        if standard != sig {
            assert!(!signer.verify_unsubscribe("c-1", &standard));
        }
    }

    /// The signature of `c-1` under [`DEVELOPMENT_KEY`], computed outside Nudge (Python's
    /// `hmac` on the documented key): a key that changed between processes or releases would
    /// break the links of earlier runs, and fails here.
    const DEV_SIGNATURE_C1: &str = "s4j4-TG1tm9jrk7WBa_LIQ";

    #[test]
    fn the_environment_key_is_used_when_set_and_not_empty_else_the_fixed_development_key() {
        assert_eq!(
            Signer::development().unsubscribe_signature("c-1"),
            DEV_SIGNATURE_C1
        );
        let key = "k3y-of-thirty-two-bytes-at-least";
        let (signer, source) = Signer::from_key_var(Some(key.into())).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(
            signer.unsubscribe_signature("c-1"),
            Signer::new(key.as_bytes()).unsubscribe_signature("c-1")
        );
        assert_ne!(signer.unsubscribe_signature("c-1"), DEV_SIGNATURE_C1);
        for (unset, want) in [
            (None, KeySource::Unset),
            (Some("".into()), KeySource::Empty),
        ] {
            let (signer, source) = Signer::from_key_var(unset).unwrap();
            assert_eq!(source, want);
            assert_eq!(signer.unsubscribe_signature("c-1"), DEV_SIGNATURE_C1);
        }
    }

    #[test]
    fn a_key_shorter_than_the_minimum_is_refused_without_showing_it() {
        for key in ["Q", "Qz9Qz9Qz9Qz9Qz9Qz9Qz9Qz9Qz9Qz9Q"] {
            let err = Signer::from_key_var(Some(key.into())).unwrap_err();
            assert_eq!(err, SigningKeyError::TooShort { bytes: key.len() });
            let text = err.to_string();
            assert!(text.starts_with("NUDGE_SIGNING_KEY is "), "{text}");
            assert!(!text.contains(key), "{text}");
        }
    }

    /// A token is bound to its key and its customer: every single-bit change of the tag, every
    /// one-character change of the signature or the customer id, a tag of random bytes, and
    /// the same customer's tag under another stack's key are all refused.
    #[test]
    fn no_edit_of_a_token_and_no_other_key_verifies() {
        let signer = Signer::new(b"this store's key, 32 bytes or more");
        let sig = signer.unsubscribe_signature("c-1001");
        let tag = URL_SAFE_NO_PAD.decode(&sig).unwrap();
        for bit in 0..tag.len() * 8 {
            let mut flipped = tag.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !signer.verify_unsubscribe("c-1001", &URL_SAFE_NO_PAD.encode(&flipped)),
                "bit {bit}"
            );
        }
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (i, original) in sig.char_indices() {
            for c in ALPHABET.chars().filter(|&c| c != original) {
                let mut edited = sig.clone();
                edited.replace_range(i..i + 1, &c.to_string());
                // The last character carries 2 bits of padding: an edit of those decodes to
                // the same tag or is refused as non-canonical; either way not a new tag.
                if URL_SAFE_NO_PAD.decode(&edited).ok().as_deref() == Some(&tag[..]) {
                    continue;
                }
                assert!(!signer.verify_unsubscribe("c-1001", &edited), "{edited}");
            }
        }
        for other in [
            "c-1002",
            "c-100",
            "c-10011",
            "C-1001",
            "c-1001 ",
            "guest:c-1001",
        ] {
            assert!(!signer.verify_unsubscribe(other, &sig), "{other}");
        }
        // Tags of arbitrary bytes (each the hash of a counter).
        for i in 0u32..1000 {
            let bytes = <Sha256 as sha2::Digest>::digest(i.to_le_bytes());
            let forged = URL_SAFE_NO_PAD.encode(&bytes[..TAG_LEN]);
            assert!(!signer.verify_unsubscribe("c-1001", &forged));
        }
        let other_store = Signer::new(b"another stack's key, 32 bytes too");
        assert!(!other_store.verify_unsubscribe("c-1001", &sig));
        assert!(!signer.verify_unsubscribe("c-1001", &other_store.unsubscribe_signature("c-1001")));
        assert!(signer.verify_unsubscribe("c-1001", &sig));
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let debug = format!("{:?}", Signer::new(b"super-secret-key"));
        assert_eq!(debug, "Signer { .. }");
    }
}
