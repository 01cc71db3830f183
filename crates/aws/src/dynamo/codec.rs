//! How the state (and a send's payload) is kept in a Binary attribute: one format byte, then
//! the bytes. `0x00`: the bytes as they are (a state read in the console is its JSON after one
//! byte); `0x01`: raw DEFLATE (RFC 1951, `flate2` on the pure-Rust `miniz_oxide`).
//!
//! Compression is used when it pays: on values of at least [`COMPRESS_FROM`] bytes, and only if
//! it saves at least an eighth. DynamoDB bills writes per started KB and reads per started
//! 4 KB, and a customer's state is JSON with repeated keys (workflow and step ids), which
//! DEFLATE shrinks several times; a small state (a customer no workflow touched) costs one
//! write unit either way, so it stays readable.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use nudge_core::store::StoreError;

/// The format byte of a value stored as it is.
const PLAIN: u8 = 0x00;
/// The format byte of a raw DEFLATE stream.
const DEFLATE: u8 = 0x01;
/// Values shorter than this are stored as they are: under a write unit (1 KB) compression
/// cannot lower the bill.
pub(super) const COMPRESS_FROM: usize = 1024;
/// The most a stored value may expand to when read back: the runner's state limit is 300 KiB
/// and a payload's is below 400 KB; 4 MiB bounds what a damaged or hostile item can make us
/// allocate.
const MAX_DECODED: u64 = 4 * 1024 * 1024;

/// `value` as stored: a format byte and the value, compressed when that pays.
pub(super) fn encode(value: &[u8]) -> Vec<u8> {
    if value.len() >= COMPRESS_FROM {
        let mut out = DeflateEncoder::new(vec![DEFLATE], Compression::default());
        // Writing into a Vec cannot fail.
        out.write_all(value).expect("write to a Vec");
        let packed = out.finish().expect("finish into a Vec");
        if packed.len() <= value.len() - value.len() / 8 {
            return packed;
        }
    }
    let mut plain = Vec::with_capacity(value.len() + 1);
    plain.push(PLAIN);
    plain.extend_from_slice(value);
    plain
}

/// The value `stored` holds (see [`encode`]).
pub(super) fn decode(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    match stored.split_first() {
        Some((&PLAIN, rest)) => Ok(rest.to_vec()),
        Some((&DEFLATE, rest)) => {
            let mut out = Vec::new();
            DeflateDecoder::new(rest)
                .take(MAX_DECODED + 1)
                .read_to_end(&mut out)
                .map_err(|e| StoreError::Corrupt(format!("a compressed value is damaged: {e}")))?;
            if out.len() as u64 > MAX_DECODED {
                return Err(StoreError::Corrupt(format!(
                    "a compressed value expands past {MAX_DECODED} bytes"
                )));
            }
            Ok(out)
        }
        Some((other, _)) => Err(StoreError::Corrupt(format!(
            "unknown value format byte {other:#04x}"
        ))),
        None => Err(StoreError::Corrupt("an empty stored value".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_plain_and_readable() {
        let state = br#"{"runs":[]}"#;
        let stored = encode(state);
        assert_eq!(stored[0], PLAIN);
        assert_eq!(&stored[1..], state);
        assert_eq!(decode(&stored).unwrap(), state);
        assert_eq!(decode(&encode(b"")).unwrap(), b"");
    }

    #[test]
    fn repetitive_values_are_compressed_and_round_trip() {
        let state = r#"{"workflow":"welcome-series","step":"hello"},"#.repeat(100);
        let stored = encode(state.as_bytes());
        assert_eq!(stored[0], DEFLATE);
        assert!(stored.len() * 5 < state.len(), "{}", stored.len());
        assert_eq!(decode(&stored).unwrap(), state.as_bytes());
    }

    #[test]
    fn incompressible_values_stay_plain() {
        let mut rng = fastrand::Rng::with_seed(7);
        let noise: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
        let stored = encode(&noise);
        assert_eq!(stored[0], PLAIN);
        assert_eq!(decode(&stored).unwrap(), noise);
    }

    #[test]
    fn damaged_values_are_corrupt_not_a_panic() {
        for bad in [&[][..], &[0x07, 1, 2][..], &[DEFLATE, 0xff, 0xff, 0xff][..]] {
            assert!(
                matches!(decode(bad), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
