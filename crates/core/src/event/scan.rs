//! The event id of a line that is too large or not valid JSON, read from its bytes.

use super::MAX_EVENT_BYTES;

/// How much of a line is scanned for an event id when the line is too large or not valid JSON.
/// EventBridge writes the id near the start, but producers that sort keys (serde_json's default
/// map does) put it after `detail`, so the scan goes well past the limit; it only looks at
/// bytes, which costs little next to reading the line.
pub(super) const ID_SCAN_BYTES: usize = 4 * MAX_EVENT_BYTES;

/// Reads the top-level `"id"` string from text that may not be valid JSON (truncated, say), so
/// that even a broken event can be named in the error and found in the dead letter. Looks only
/// at the start of the line and only at keys of the outermost object.
pub(super) fn scan_id(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let end = bytes.len().min(ID_SCAN_BYTES);
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth = 1usize;
    let mut expect_key = true;
    while i < end {
        match bytes[i] {
            b'"' => {
                let close = string_end(bytes, i)?;
                if depth == 1 && expect_key {
                    expect_key = false;
                    let colon = skip_ws(bytes, close);
                    if bytes.get(colon) == Some(&b':') && &bytes[i + 1..close - 1] == b"id" {
                        let start = skip_ws(bytes, colon + 1);
                        if bytes.get(start) != Some(&b'"') {
                            return None;
                        }
                        let stop = string_end(bytes, start)?;
                        // Decodes escapes; the slice is a complete JSON string.
                        return serde_json::from_str::<String>(text.get(start..stop)?)
                            .ok()
                            .filter(|id| !id.trim().is_empty());
                    }
                }
                i = close;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1).filter(|d| *d > 0)?,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the closing quote of the JSON string that opens at `open`.
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index of the first byte at or after `i` that is not ASCII white space.
fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}
