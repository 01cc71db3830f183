//! Filters, tests and functions a template names that the environment does not have.
//!
//! An unknown filter or test is not a compile error in minijinja: the template compiles and
//! every render fails (`UnknownFilter`), so each email using it would be skipped as a
//! `render_error`. Whether a name is known is asked of the real [`Environment`] (a tiny
//! expression using it is evaluated), never of a list kept here, so the answer follows
//! minijinja's version and whatever Nudge registers.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, ErrorKind};

use super::scan::{Call, CallKind};
use crate::diagnostic::{code_list, suggestion};

/// Names that are not globals but that minijinja gives templates in places (`loop` in a
/// `for`, `caller` in a `call` block, ...): never reported as undefined.
const SPECIAL_NAMES: &[&str] = &["loop", "self", "super", "caller", "varargs", "kwargs"];

/// Whether `name` is a global of `env` (a function such as `range`) or one of the names
/// minijinja provides in some blocks.
pub fn is_builtin_name(env: &Environment<'static>, name: &str) -> bool {
    SPECIAL_NAMES.contains(&name) || env.globals().any(|(g, _)| g == name)
}

/// Whether `env` has the filter (`kind` Filter) or test (`kind` Test) `name`. A name that
/// cannot even be probed (not an identifier) counts as known: nothing is reported on a guess.
pub fn is_known(env: &Environment<'static>, kind: CallKind, name: &str) -> bool {
    if kind == CallKind::Function {
        return is_builtin_name(env, name);
    }
    if !is_identifier(name) {
        return is_known_by_expression(env, kind, name);
    }
    // A plain name is looked up directly (the environment's own table, through its public
    // API): a probe compiled as an expression costs a parse, and the did-you-mean below asks
    // about thousands of names.
    let mut state = env.empty_state();
    let none = [minijinja::Value::from(())];
    let unknown = match kind {
        CallKind::Filter => state.apply_filter(name, &none).err(),
        _ => state.perform_test(name, &none).err(),
    };
    !unknown.is_some_and(|e| matches!(e.kind(), ErrorKind::UnknownFilter | ErrorKind::UnknownTest))
}

/// Whether `name` is an identifier as minijinja reads one (ASCII: it is built without its
/// `unicode` feature): a letter or `_`, then letters, digits and `_`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// [`is_known`] for a name that is not a plain identifier (`a.b`): a tiny expression using it
/// is evaluated, and one that does not compile counts as known.
fn is_known_by_expression(env: &Environment<'static>, kind: CallKind, name: &str) -> bool {
    let (probe, unknown) = match kind {
        CallKind::Filter => (format!("none | {name}"), ErrorKind::UnknownFilter),
        _ => (format!("none is {name}"), ErrorKind::UnknownTest),
    };
    match env.compile_expression(&probe) {
        Ok(expr) => !matches!(expr.eval(()), Err(e) if e.kind() == unknown),
        Err(_) => true,
    }
}

/// Every use of an unknown filter or test in `calls`, as the byte offset of its name and the
/// message for it. Each distinct name is looked at once, however often it is used; a
/// did-you-mean is searched for while `suggestions` (a budget shared by the caller across a
/// whole file) lasts, and each search takes one from it.
pub fn unknown_filters_and_tests(
    env: &Environment<'static>,
    calls: &[Call],
    suggestions: &Cell<usize>,
) -> Vec<(usize, String)> {
    // `None`: known. One verdict per name: a name used thousands of times (a 64 KB file of
    // `{{ x | uper }}`) must not search for its near names thousands of times.
    let mut verdicts: BTreeMap<(bool, &str), Option<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for call in calls {
        if call.kind == CallKind::Function {
            continue;
        }
        let key = (call.kind == CallKind::Filter, call.name.as_str());
        let verdict = verdicts.entry(key).or_insert_with(|| {
            if is_known(env, call.kind, &call.name) {
                return None;
            }
            // Looking for near names costs a few hundred probes: enough for a marketer's
            // typos, bounded for a file full of made-up names.
            let left = suggestions.get();
            Some(if left > 0 && call.name.len() <= MAX_SUGGESTED_LEN {
                suggestions.set(left - 1);
                unknown_message(env, call.kind, &call.name)
            } else {
                unknown_message_without_suggestion(call.kind, &call.name)
            })
        });
        if let Some(message) = verdict {
            out.push((call.offset, message.clone()));
        }
    }
    out
}

/// How many distinct unknown names of one file get a did-you-mean, and up to what length
/// (longer than any filter or test name plus one letter, it cannot be one edit away).
pub const MAX_SUGGESTED: usize = 16;
const MAX_SUGGESTED_LEN: usize = 24;

fn unknown_message_without_suggestion(kind: CallKind, name: &str) -> String {
    let (head, why) = unknown_parts(kind, name);
    if why.is_empty() {
        head
    } else {
        format!("{head} {why}")
    }
}

/// What an unknown name's message says before a did-you-mean (`unknown filter `x``) and
/// after it (why it matters), so that the did-you-mean follows the name as in every other
/// message.
fn unknown_parts(kind: CallKind, name: &str) -> (String, &'static str) {
    match kind {
        CallKind::Filter => (
            format!("unknown filter `{name}`"),
            "(every render using it would fail: templates have minijinja's built-in filters only)",
        ),
        CallKind::Function => (format!("unknown function `{name}`"), ""),
        CallKind::Test => (
            format!("unknown test `{name}`"),
            "(every render using it would fail: templates have minijinja's built-in tests only: `is defined`, `is none`, ...)",
        ),
    }
}

/// The message for an unknown filter, test or function, with the nearest known name.
pub fn unknown_message(env: &Environment<'static>, kind: CallKind, name: &str) -> String {
    match kind {
        CallKind::Filter | CallKind::Test => {
            let (head, why) = unknown_parts(kind, name);
            let near = near_names(env, kind, name);
            format!(
                "{head}{} {why}",
                suggestion(name, near.iter().map(String::as_str))
            )
        }
        CallKind::Function => {
            let mut globals: Vec<&str> = env.globals().map(|(g, _)| g).collect();
            globals.sort_unstable();
            format!(
                "unknown function `{name}`{} (functions: {}, and macros the template defines or imports)",
                suggestion(name, globals.iter().copied()),
                code_list(&globals)
            )
        }
    }
}

/// The filters or tests `env` has among the names one edit away from `name` (a letter
/// missing, extra, swapped or wrong): the likely typos, found by asking the environment.
fn near_names(env: &Environment<'static>, kind: CallKind, name: &str) -> Vec<String> {
    const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz_0123456789";
    let chars: Vec<char> = name.chars().collect();
    let mut candidates = BTreeSet::new();
    let word = |v: &[char]| v.iter().collect::<String>();
    for i in 0..=chars.len() {
        for a in ALPHABET.chars() {
            let mut v = chars.clone();
            v.insert(i, a);
            candidates.insert(word(&v));
            if i < chars.len() {
                v.remove(i + 1);
                v[i] = a;
                candidates.insert(word(&v));
            }
        }
        if i < chars.len() {
            let mut v = chars.clone();
            v.remove(i);
            candidates.insert(word(&v));
        }
        if i + 1 < chars.len() {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            candidates.insert(word(&v));
        }
    }
    candidates
        .into_iter()
        // Only a plain identifier can be a filter or test name worth suggesting.
        .filter(|c| c != name && is_identifier(c))
        .filter(|c| is_known(env, kind, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::template::{environment, scan};

    #[test]
    fn the_environment_decides_what_is_known() {
        let env = environment();
        assert!(is_known(&env, CallKind::Filter, "upper"));
        assert!(is_known(&env, CallKind::Filter, "default"));
        // A filter that needs arguments is still known.
        assert!(is_known(&env, CallKind::Filter, "replace"));
        assert!(!is_known(&env, CallKind::Filter, "money"));
        assert!(is_known(&env, CallKind::Test, "defined"));
        assert!(is_known(&env, CallKind::Test, "even"));
        assert!(!is_known(&env, CallKind::Test, "evn"));
        assert!(is_known(&env, CallKind::Function, "range"));
        assert!(is_known(&env, CallKind::Function, "loop"));
        assert!(!is_known(&env, CallKind::Function, "now"));
    }

    #[test]
    fn unknown_names_are_reported_at_each_use_with_the_nearest_known_one() {
        let env = environment();
        let src = "{{ a | uper }}{{ b | upper | money }}{% if c is evn %}{% endif %}{{ d | uper }}";
        let found = unknown_filters_and_tests(&env, &scan::template_calls(src), &budget());
        let at: Vec<usize> = found.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            at,
            vec![
                src.find("uper").unwrap(),
                src.find("money").unwrap(),
                src.find("evn").unwrap(),
                src.rfind("uper").unwrap()
            ]
        );
        let (filter, money, test) = (&found[0].1, &found[1].1, &found[2].1);
        assert!(
            filter.starts_with("unknown filter `uper`; did you mean `upper`? (every render"),
            "{filter}"
        );
        assert!(
            money.starts_with("unknown filter `money` (every render"),
            "{money}"
        );
        assert!(!money.contains("did you mean"), "{money}");
        assert!(
            test.starts_with("unknown test `evn`; did you mean `even`? (every render"),
            "{test}"
        );
    }

    #[test]
    fn near_names_are_looked_for_only_up_to_a_bound() {
        let env = environment();
        let mut src: String = (0..MAX_SUGGESTED)
            .map(|i| format!("{{{{ x | made_up_{i} }}}}"))
            .collect();
        src.push_str("{{ x | uper }}");
        let found = unknown_filters_and_tests(&env, &scan::template_calls(&src), &budget());
        assert_eq!(found.len(), MAX_SUGGESTED + 1);
        let last = &found[MAX_SUGGESTED].1;
        assert!(
            last.starts_with("unknown filter `uper` (every render"),
            "{last}"
        );
        assert!(!last.contains("did you mean"), "{last}");
    }

    fn budget() -> Cell<usize> {
        Cell::new(MAX_SUGGESTED)
    }

    /// Found while fuzzing issue 11: the did-you-mean of an unknown name was searched for at
    /// every use (a 64 KB template of `{{ x | uper }}` took seconds), and the bound of 16
    /// searches held per template or scalar, so a file of many subjects each with 16 made-up
    /// filters searched thousands of times. Now each name is judged once and the budget is
    /// shared by the file.
    #[test]
    fn near_names_are_searched_once_per_name_and_within_a_shared_budget() {
        let env = environment();
        let src = "{{ x | uper }}".repeat(2_000);
        let suggestions = budget();
        let found = unknown_filters_and_tests(&env, &scan::template_calls(&src), &suggestions);
        assert_eq!(found.len(), 2_000);
        assert!(
            found
                .iter()
                .all(|(_, m)| m.contains("`uper`; did you mean `upper`?"))
        );
        assert_eq!(
            suggestions.get(),
            MAX_SUGGESTED - 1,
            "one search for one name"
        );
        // A second scalar of the same file draws on what is left.
        let other: String = (0..MAX_SUGGESTED)
            .map(|i| format!("{{{{ x | made_up_{i} }}}}"))
            .collect();
        let found = unknown_filters_and_tests(&env, &scan::template_calls(&other), &suggestions);
        assert_eq!(suggestions.get(), 0);
        assert!(
            found
                .last()
                .is_some_and(|(_, m)| !m.contains("did you mean"))
        );
    }

    /// A name too long to be one edit from any filter or test is not searched for.
    #[test]
    fn long_names_are_not_searched_for() {
        let env = environment();
        let suggestions = budget();
        let long = format!("{{{{ x | {} }}}}", "a".repeat(MAX_SUGGESTED_LEN + 1));
        let found = unknown_filters_and_tests(&env, &scan::template_calls(&long), &suggestions);
        assert_eq!(found.len(), 1);
        assert_eq!(suggestions.get(), MAX_SUGGESTED);
    }

    /// The direct lookup of plain names agrees with evaluating a probe expression.
    #[test]
    fn plain_names_are_looked_up_as_an_expression_would_find_them() {
        let env = environment();
        for kind in [CallKind::Filter, CallKind::Test] {
            for name in [
                "upper", "default", "replace", "money", "defined", "even", "evn", "none", "true",
                "_x", "is", "e",
            ] {
                assert_eq!(
                    is_known(&env, kind, name),
                    is_known_by_expression(&env, kind, name),
                    "{kind:?} {name}"
                );
            }
        }
    }

    #[test]
    fn unknown_functions_name_the_globals() {
        let env = environment();
        let message = unknown_message(&env, CallKind::Function, "rnage");
        assert!(
            message.starts_with("unknown function `rnage`; did you mean `range`? (functions: "),
            "{message}"
        );
        assert!(
            message.contains("`range`") && message.contains("`dict`"),
            "{message}"
        );
    }
}
