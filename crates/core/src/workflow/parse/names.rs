//! What names written in a workflow may look like: workflow ids, step ids, profile attributes.

/// A workflow id: lowercase letters and digits in dash-separated parts (`win-back`).
pub(super) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// A step id: letters, digits, `-` and `_`, starting with a letter or digit.
pub(super) fn is_step_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A profile attribute: lowercase letters, digits and `_`, not starting with a digit.
pub(super) fn is_attribute_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_ids() {
        assert!(is_slug("win-back"));
        assert!(is_slug("a1"));
        for bad in ["", "Win-back", "win--back", "-x", "x-", "win_back"] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert!(is_step_id("wait-90"));
        assert!(is_step_id("vip_last_call"));
        assert!(!is_step_id("-x"));
        assert!(!is_step_id("a b"));
    }
}
