//! Run keys across a workflow: a goal's or a `wait_for`'s own `key` needs the workflow's, and
//! the event a key is read from must be able to carry what it reads.
//!
//! A keyed run only hears events that give its key. A goal whose event cannot carry the key
//! would never match, and nothing would say so: an abandoned-checkout series keyed by
//! `event.checkout.id` with a goal `order.placed` (which carries `order.checkout_id`) keeps
//! sending reminders to customers who paid. So for canonical event types, what a key reads
//! (`event.<path>`) is checked against the event catalog; custom types are not checked.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use crate::diagnostic::{Sink, code_list};
use crate::event::catalog;
use crate::workflow::model::{EventFilter, Expr, StepItem, StepKind, Trigger};
use crate::workflow::template::limits;

/// Compiles key expressions only to see what they read; rendering never goes through it.
static ENV: LazyLock<minijinja::Environment<'static>> = LazyLock::new(minijinja::Environment::new);

/// An `exit_when` or `wait_for` entry, with what a message calls it.
struct Entry<'a> {
    filter: &'a EventFilter,
    noun: &'static str,
}

/// Checks the keys of a workflow: its `key` against its trigger's event type, and every goal
/// and `wait_for` (their own key, else the workflow's) against theirs.
pub(super) fn check_keys(
    sink: &mut Sink,
    trigger: Option<&Trigger>,
    key: Option<&Expr>,
    goals: &[EventFilter],
    steps: &[StepItem],
) {
    if let (Some(Trigger::Event(t)), Some(k)) = (trigger, key) {
        check_trigger_key(sink, &t.event, k);
    }
    let mut entries: Vec<Entry> = goals
        .iter()
        .map(|filter| Entry {
            filter,
            noun: "goal",
        })
        .collect();
    waits(steps, &mut entries);
    // What the workflow's key reads, found once: a file of thousands of goals would otherwise
    // compile the same key thousands of times.
    let workflow_key = key.map(|k| (k, event_paths(&k.source)));
    for entry in entries {
        check_entry(sink, workflow_key.as_ref(), &entry);
    }
}

/// The trigger's own event type must be able to carry the workflow's key, or no run starts.
fn check_trigger_key(sink: &mut Sink, event_type: &str, key: &Expr) {
    let Some(path) = uncarried(event_type, &event_paths(&key.source)) else {
        return;
    };
    let hint = hint(event_type, &path);
    sink.error(
        key.pos,
        format!(
            "`{event_type}` carries no `{path}`, so this key never gives a value and no run would start; write a key the trigger's event carries ({hint})"
        ),
    );
}

/// One goal or wait: its own key needs the workflow's; the key it uses (its own, else the
/// workflow's) must be one its event type can carry.
/// `workflow_key` comes with the paths it reads.
fn check_entry(sink: &mut Sink, workflow_key: Option<&(&Expr, BTreeSet<String>)>, entry: &Entry) {
    let f = entry.filter;
    let noun = entry.noun;
    if let (Some(own), None) = (&f.key, workflow_key) {
        sink.error(
            own.pos,
            format!(
                "this {noun} has its own `key`, but the workflow has none to match it with; add `key:` to the workflow (read from its trigger event), or remove this one"
            ),
        );
        return;
    }
    let own_paths = f.key.as_ref().map(|own| event_paths(&own.source));
    let Some(paths) = own_paths.as_ref().or(workflow_key.map(|(_, p)| p)) else {
        return;
    };
    let Some(path) = uncarried(&f.event, paths) else {
        return;
    };
    let ty = &f.event;
    let hint = hint(ty, &path);
    let message = if f.key.is_some() {
        format!("`{ty}` carries no `{path}`; write a key it carries ({hint})")
    } else {
        format!(
            "`{ty}` carries no `{path}` (the workflow's key), so this {noun} would never match; give this {noun} its own key ({hint})"
        )
    };
    sink.error(f.key.as_ref().map_or(f.pos, |k| k.pos), message);
}

/// The `wait_for` entries of `items`, branches included.
fn waits<'a>(items: &'a [StepItem], out: &mut Vec<Entry<'a>>) {
    for item in items {
        let StepItem::Step(step) = item else {
            continue;
        };
        match &step.kind {
            StepKind::WaitFor(wf) => out.push(Entry {
                filter: &wf.filter,
                noun: "`wait_for`",
            }),
            StepKind::If(b) => {
                waits(&b.then, out);
                waits(&b.otherwise, out);
            }
            StepKind::AbSplit(branches) => branches.iter().for_each(|b| waits(&b.steps, out)),
            _ => {}
        }
    }
}

/// The paths under `event` that the expression `source` reads (`checkout.id` for
/// `event.checkout.id | string`); none when it does not compile (reported elsewhere).
pub(super) fn event_paths(source: &str) -> BTreeSet<String> {
    // minijinja parses by recursion: a key past the bounds (reported by the parse already)
    // would overflow the stack here.
    if limits::check_expression(source).is_err() {
        return BTreeSet::new();
    }
    let Ok(e) = ENV.compile_expression(source) else {
        return BTreeSet::new();
    };
    e.undeclared_variables(true)
        .into_iter()
        .filter_map(|v| v.strip_prefix("event.").map(str::to_owned))
        .collect()
}

/// A path of `paths` (what a key reads, [`event_paths`]) that events of `event_type` cannot
/// carry, when they can carry none of them (a key reading `event.a or event.b` needs one).
fn uncarried(event_type: &str, paths: &BTreeSet<String>) -> Option<String> {
    let carries = |p: &String| catalog::may_carry(event_type, &p.split('.').collect::<Vec<_>>());
    if paths.iter().any(carries) {
        return None;
    }
    paths.iter().next().cloned()
}

/// The field of `event_type` that most likely holds what `path` names elsewhere: the same
/// name with its dots as underscores, at the end of the other (`checkout.id` and
/// `order.checkout_id`). Only fields that hold a value (not a mapping) are offered.
fn suggest(event_type: &str, path: &str) -> Option<&'static str> {
    let flat = |p: &str| p.replace('.', "_");
    let wanted = flat(path);
    let ends = |long: &str, short: &str| {
        long == short
            || long
                .strip_suffix(short)
                .is_some_and(|rest| rest.ends_with('_'))
    };
    leaf_fields(event_type).into_iter().find(|f| {
        let have = flat(f);
        ends(&have, &wanted) || ends(&wanted, &have)
    })
}

/// What to write instead of a key reading `path`, for a message: the field of `event_type`
/// that most likely holds the same thing, else what that event type carries.
fn hint(event_type: &str, path: &str) -> String {
    match suggest(event_type, path) {
        Some(field) => format!("e.g. `key: \"event.{field}\"`"),
        None => carried_fields(event_type),
    }
}

/// `it carries `a.b`, `a.c``: what events of `event_type` carry, for a message.
fn carried_fields(event_type: &str) -> String {
    let fields = leaf_fields(event_type);
    if fields.is_empty() {
        return "it carries only `customer` fields".to_owned();
    }
    format!("it carries {}", code_list(fields))
}

/// The fields of a canonical event type that hold a value rather than other fields.
fn leaf_fields(event_type: &str) -> Vec<&'static str> {
    let Some(ty) = catalog::event_type(event_type) else {
        return Vec::new();
    };
    ty.fields
        .iter()
        .copied()
        .filter(|f| {
            !ty.fields
                .iter()
                .any(|g| g.strip_prefix(*f).is_some_and(|r| r.starts_with('.')))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::yaml::Pos;

    #[test]
    fn paths_read_under_event() {
        let paths = |s| event_paths(s).into_iter().collect::<Vec<_>>();
        assert_eq!(paths("event.checkout.id"), ["checkout.id"]);
        assert_eq!(
            paths("event.order.checkout_id | string ~ customer.id"),
            ["order.checkout_id"]
        );
        assert!(paths("customer.id").is_empty());
        assert!(paths("event.(").is_empty());
    }

    /// Found by reading (issue 11 fuzzing): a key past the operator bound was reported by the
    /// parse, then compiled here anyway, and minijinja's recursive parser overflowed the
    /// stack (the command's 8 MiB main thread aborted).
    #[test]
    fn a_key_past_the_bounds_is_not_compiled() {
        let long = format!("event.order.id{}", " ~ event.order.id".repeat(50_000));
        let paths = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || event_paths(&long))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(paths.is_empty(), "{paths:?}");
    }

    /// Found while fuzzing issue 11: every goal compiled the workflow's key again to see what
    /// it reads (2,300 goals and a 95-term key: 1.4 s to validate). It is compiled once; the
    /// answers stay the same.
    #[test]
    fn the_workflow_key_is_read_once_for_all_goals() {
        let key = Expr {
            source: format!("event.checkout.id{}", " ~ event.checkout.id".repeat(95)),
            pos: Pos::new(4, 6),
        };
        let goal = |i: u32, event: &str| EventFilter {
            event: event.to_owned(),
            pos: Pos::new(i, 5),
            when: None,
            key: None,
        };
        let mut goals: Vec<EventFilter> =
            (10..5_010).map(|i| goal(i, "checkout.started")).collect();
        goals.push(goal(6_000, "order.placed"));
        let mut diags = Vec::new();
        let mut sink = Sink::new(std::path::Path::new("w.yaml"), &mut diags);
        check_keys(&mut sink, None, Some(&key), &goals, &[]);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].pos, Pos::new(6_000, 5));
        assert!(
            diags[0]
                .message
                .contains("`order.placed` carries no `checkout.id`"),
            "{}",
            diags[0]
        );
    }

    #[test]
    fn a_key_is_uncarried_only_when_no_path_it_reads_is_carried() {
        assert_eq!(
            uncarried("order.placed", &event_paths("event.checkout.id")).as_deref(),
            Some("checkout.id")
        );
        assert_eq!(
            uncarried("order.placed", &event_paths("event.order.checkout_id")),
            None
        );
        assert_eq!(
            uncarried(
                "order.placed",
                &event_paths("event.checkout.id or event.order.checkout_id")
            ),
            None
        );
        // Custom types are not checked; keys not read from the event are not either.
        assert_eq!(
            uncarried("my.checkout_paid", &event_paths("event.checkout.id")),
            None
        );
        assert_eq!(uncarried("order.placed", &event_paths("customer.id")), None);
    }

    #[test]
    fn the_suggestion_is_the_same_name_elsewhere() {
        assert_eq!(
            suggest("order.placed", "checkout.id"),
            Some("order.checkout_id")
        );
        assert_eq!(
            suggest("checkout.started", "order.checkout_id"),
            Some("checkout.id")
        );
        assert_eq!(suggest("checkout.started", "order.id"), None);
        // `order.id` is not offered for `id`-like names of other things.
        assert_eq!(suggest("order.placed", "review.id"), None);
    }
}
