//! The engine core on its own: no store, no mailer, no runtime. State and input in, state and
//! actions out.

use chrono::{DateTime, Utc};
use nudge_core::engine::state::{CustomerState, Phase};
use nudge_core::engine::{ActionKind, Engine, Input};
use nudge_core::event::parse_event;
use nudge_core::links::Signer;
use serde_json::json;

use crate::scenarios::{Scenario, customer, ev};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const WF: &str = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: hello
    send_email: { template: t.mjml, subject: "Hello {{ customer.first_name }}" }
  - id: pause
    wait: 3d
  - id: again
    send_email: { template: t.mjml, subject: "Again" }
"#;

fn with_engine(f: impl FnOnce(&Engine<'_>)) {
    let s = Scenario::new(&[("wf", WF)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    f(&engine);
}

fn created(at: &str) -> nudge_core::event::StoreEvent {
    parse_event(&ev("e1", "customer.created", at, "c1", customer("Ayşe")).to_string()).unwrap()
}

#[test]
fn the_engine_is_a_pure_function_of_state_input_and_now() {
    with_engine(|engine| {
        let event = created("2026-03-02T07:00:00Z");
        let now = t("2026-03-02T07:00:00Z");
        let a = engine.handle(CustomerState::new("c1"), Input::Event(&event), now);
        let b = engine.handle(CustomerState::new("c1"), Input::Event(&event), now);
        assert_eq!(a.state, b.state);
        assert_eq!(a.actions, b.actions);
        let names: Vec<&str> = a.actions.iter().map(|x| x.kind.name()).collect();
        assert_eq!(names, ["run.started", "email.sent"]);
        // The run waits at `pause`, and the customer's timer says when to wake it.
        assert_eq!(a.state.runs.len(), 1);
        assert_eq!(a.state.runs[0].step, "pause");
        assert_eq!(
            a.state.runs[0].phase,
            Phase::Waiting {
                until: t("2026-03-05T07:00:00Z"),
                since: Some(now),
            }
        );
        assert_eq!(a.state.next_wake(), Some(t("2026-03-05T07:00:00Z")));
        let ActionKind::EmailSent(email) = &a.actions[1].kind else {
            panic!()
        };
        assert_eq!(email.subject, "Hello Ayşe");
        assert_eq!(email.to.address, "aye@example.com");
        assert_eq!(
            email.idempotency_key,
            format!("{}.hello", a.state.runs[0].id)
        );
        assert!(
            email
                .unsubscribe_url
                .as_deref()
                .unwrap()
                .starts_with("https://shop.example.com/unsubscribe?")
        );
        assert!(
            !email.append_footer,
            "the template renders the address and the link itself"
        );
    });
}

#[test]
fn an_early_or_repeated_wake_does_nothing() {
    with_engine(|engine| {
        let event = created("2026-03-02T07:00:00Z");
        let first = engine.handle(
            CustomerState::new("c1"),
            Input::Event(&event),
            t("2026-03-02T07:00:00Z"),
        );
        let early = engine.handle(first.state.clone(), Input::Wake, t("2026-03-04T07:00:00Z"));
        assert!(early.actions.is_empty());
        assert_eq!(early.state.runs, first.state.runs);
        assert_eq!(early.state.next_wake(), first.state.next_wake());
        let due = engine.handle(first.state.clone(), Input::Wake, t("2026-03-05T07:00:00Z"));
        let names: Vec<&str> = due.actions.iter().map(|x| x.kind.name()).collect();
        assert_eq!(names, ["email.sent", "run.ended"]);
        assert!(due.state.runs.is_empty());
        assert_eq!(due.state.next_wake(), None);
        // The same wake again, on the new state: the run is gone, nothing happens.
        let again = engine.handle(due.state.clone(), Input::Wake, t("2026-03-05T07:00:00Z"));
        assert!(again.actions.is_empty());
    });
}

#[test]
fn state_survives_its_json_form() {
    with_engine(|engine| {
        let event = created("2026-03-02T07:00:00Z");
        let out = engine.handle(
            CustomerState::new("c1"),
            Input::Event(&event),
            t("2026-03-02T07:00:00Z"),
        );
        let bytes = serde_json::to_vec(&out.state).unwrap();
        let back: CustomerState = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, out.state);
        assert_eq!(back.profile.get("first_name"), Some(&json!("Ayşe")));
    });
}

#[test]
fn two_runners_on_one_store_see_each_others_commits() {
    use nudge_core::engine::SkipReason;
    use nudge_core::runner::{Applied, Runner};
    use nudge_local::outbox::OutboxMailer;
    use nudge_local::sqlite::SqliteStore;

    let s = Scenario::new(&[("wf", WF)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    // Two runners on one store, as two concurrent invocations would be.
    let a = Runner::new(
        &engine,
        SqliteStore::open(&s.db()).unwrap(),
        None::<OutboxMailer>,
    );
    let b = Runner::new(
        &engine,
        SqliteStore::open(&s.db()).unwrap(),
        None::<OutboxMailer>,
    );
    let unsubscribed = parse_event(
        &ev(
            "u1",
            "customer.unsubscribed",
            "2026-03-03T07:00:00Z",
            "c1",
            json!(null),
        )
        .to_string(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        // A creates the customer.
        assert!(matches!(
            a.event(&created("2026-03-02T07:00:00Z"), t("2026-03-02T07:00:00Z"))
                .await
                .unwrap(),
            Applied::Done { .. }
        ));
        // B records an unsubscribe.
        assert!(matches!(
            b.event(&unsubscribed, t("2026-03-03T07:00:00Z"))
                .await
                .unwrap(),
            Applied::Done { .. }
        ));
        // A wakes the customer and sees B's unsubscribe: the second email is skipped.
        let due = t("2026-03-05T07:00:00Z");
        let Applied::Done { actions, .. } = a.wake("c1", due, due).await.unwrap() else {
            panic!("not applied")
        };
        let kinds: Vec<&ActionKind> = actions.iter().map(|x| &x.kind).collect();
        assert!(
            matches!(
                kinds[0],
                ActionKind::EmailSkipped {
                    reason: SkipReason::Unsubscribed
                }
            ),
            "{:?}",
            actions.iter().map(|x| x.kind.name()).collect::<Vec<_>>()
        );
        // The same event id through the other runner is a duplicate.
        assert!(matches!(
            a.event(&unsubscribed, t("2026-03-05T08:00:00Z"))
                .await
                .unwrap(),
            Applied::Duplicate { .. }
        ));
    });
}

/// A stored state the runner cannot read (not UTF-8, or not a state) is an error naming it,
/// and the event is not applied: the customer is left as stored and the id stays unprocessed.
#[test]
fn an_unreadable_stored_state_is_an_error_and_changes_nothing() {
    use nudge_core::runner::{Runner, RunnerError};
    use nudge_core::store::{Commit, CommitOutcome, Store};
    use nudge_local::SqliteStore;
    use nudge_local::outbox::OutboxMailer;

    with_engine(|engine| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (id, bytes) in [
            ("c1", &b"{\"id\":\"c1\xff\"}"[..]),
            ("c2", &b"{\"id\":3}"[..]),
            // A guest's id holds an address: the message shows the hash logs show.
            ("guest:ayse@example.com", &b"{\"id\":3}"[..]),
            // A value of the state in the wrong place: the message never quotes it.
            ("c3", &b"{\"id\":\"c3\",\"runs\":\"ayse@example.com\"}"[..]),
        ] {
            let store = SqliteStore::in_memory().unwrap();
            let commit = Commit {
                customer_id: id,
                expected_version: 0,
                state: bytes,
                next_wake: None,
                event_id: None,
                sends: &[],
                journal: &[],
            };
            let outcome = rt.block_on(store.commit(commit)).unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
            let runner: Runner<'_, _, OutboxMailer> = Runner::new(engine, store, None);
            let line = ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                id,
                customer("Ayşe"),
            );
            let event = parse_event(&line.to_string()).unwrap();
            let err = rt.block_on(runner.event(&event, event.time)).unwrap_err();
            assert!(matches!(err, RunnerError::State { .. }), "{id}: {err}");
            assert_eq!(err.customer(), Some(id));
            let text = err.to_string();
            let shown = nudge_core::engine::customer_ref(id);
            assert!(
                text.starts_with(&format!("stored state of customer {shown} is unreadable: ")),
                "{text}"
            );
            assert!(!text.contains('@'), "{text}");
            let stored = rt.block_on(runner.store().load(id)).unwrap().unwrap();
            assert_eq!((stored.version, stored.state.as_slice()), (1, bytes));
            assert!(!rt.block_on(runner.store().is_processed("e1")).unwrap());
        }
    });
}

/// An input whose new state would be over `MAX_STATE_BYTES` is refused, naming the customer,
/// and changes nothing; the customer's earlier state and later inputs are unaffected.
#[test]
fn a_state_over_the_size_limit_is_refused_and_changes_nothing() {
    use nudge_core::runner::{Applied, MAX_STATE_BYTES, Runner, RunnerError};
    use nudge_core::store::Store;
    use nudge_local::SqliteStore;
    use nudge_local::outbox::OutboxMailer;

    with_engine(|engine| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = SqliteStore::in_memory().unwrap();
        let runner: Runner<'_, _, OutboxMailer> = Runner::new(engine, store, None);
        // Each under an event's size limit; the two together over the state's.
        let big = "x".repeat(MAX_STATE_BYTES / 2 + 1);
        let update = |id: &str, field: &str| {
            let line = ev(
                id,
                "customer.updated",
                "2026-03-02T07:00:00Z",
                "c1",
                json!({"customer": {field: big}}),
            );
            parse_event(&line.to_string()).unwrap()
        };
        let first = update("e1", "note_a");
        let applied = rt.block_on(runner.event(&first, first.time)).unwrap();
        assert!(matches!(applied, Applied::Done { .. }));
        let before = rt.block_on(runner.store().load("c1")).unwrap().unwrap();
        let second = update("e2", "note_b");
        let err = rt.block_on(runner.event(&second, second.time)).unwrap_err();
        assert!(matches!(err, RunnerError::StateTooLarge { .. }), "{err}");
        assert_eq!(err.customer(), Some("c1"));
        let text = err.to_string();
        assert!(
            text.starts_with("the new state of customer c1 would take "),
            "{text}"
        );
        let after = rt.block_on(runner.store().load("c1")).unwrap().unwrap();
        assert_eq!(
            (after.version, &after.state),
            (before.version, &before.state)
        );
        assert!(!rt.block_on(runner.store().is_processed("e2")).unwrap());
        // A small input still goes through.
        let small = parse_event(
            &ev(
                "e3",
                "customer.updated",
                "2026-03-02T07:01:00Z",
                "c1",
                customer("A"),
            )
            .to_string(),
        )
        .unwrap();
        let applied = rt.block_on(runner.event(&small, small.time)).unwrap();
        assert!(matches!(applied, Applied::Done { .. }));
    });
}

/// A keyed `every` workflow keeps a start per key only while its period holds the key back:
/// the entry history does not grow with every key a customer ever had.
#[test]
fn every_starts_are_forgotten_once_their_period_has_passed() {
    const DAILY: &str = r#"
category: transactional
trigger: { event: order.placed }
key: "event.order.id"
entry: { every: 1d }
steps:
  - id: thanks
    send_email: { template: t.mjml, subject: "Thanks" }
"#;
    let s = Scenario::new(&[("daily", DAILY)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    let placed = |id: &str, order: &str, at: &str| {
        let mut detail = customer("A");
        detail["order"] = json!({"id": order});
        parse_event(&ev(id, "order.placed", at, "c1", detail).to_string()).unwrap()
    };
    let mut state = CustomerState::new("c1");
    for (id, order, at) in [
        ("e1", "o-1", "2026-03-02T07:00:00Z"),
        ("e2", "o-2", "2026-03-02T08:00:00Z"),
        // The same order within the day is held back by its entry.
        ("e3", "o-1", "2026-03-02T09:00:00Z"),
    ] {
        state = engine
            .handle(state, Input::Event(&placed(id, order, at)), t(at))
            .state;
    }
    let keys = |s: &CustomerState| -> Vec<String> {
        s.entries.iter().filter_map(|e| e.key.clone()).collect()
    };
    assert_eq!(keys(&state), ["o-1", "o-2"]);
    // A day after the first start (an event trigger's `every` is a length of time), o-1's
    // entry no longer holds anything back: it is gone.
    let at = "2026-03-03T07:30:00Z";
    let out = engine.handle(state, Input::Event(&placed("e4", "o-3", at)), t(at));
    assert_eq!(keys(&out.state), ["o-2", "o-3"]);
    // And o-1 may start again, as it could before.
    let at = "2026-03-03T07:40:00Z";
    let out = engine.handle(out.state, Input::Event(&placed("e5", "o-1", at)), t(at));
    let names: Vec<&str> = out.actions.iter().map(|a| a.kind.name()).collect();
    assert_eq!(names, ["run.started", "email.sent", "run.ended"]);
    assert_eq!(keys(&out.state), ["o-2", "o-3", "o-1"]);
}

/// Sending rule 2 holds for an address the store lists as suppressed (a hard bounce or a
/// complaint SES reported, which names an address, not a customer): the engine decides again
/// with the customer suppressed, nothing is logged to send, and the suppression is kept in the
/// state, so later inputs need no look-up. Another address is written to as before.
#[test]
fn an_address_the_store_lists_as_suppressed_is_not_written_to() {
    use nudge_core::engine::SkipReason;
    use nudge_core::runner::{Applied, Runner};
    use nudge_core::store::{SUPPRESSED_COMPLAINT, Store, address_key};
    use nudge_local::outbox::OutboxMailer;
    use nudge_local::sqlite::SqliteStore;

    let s = Scenario::new(&[("wf", WF)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    let runner = Runner::new(
        &engine,
        SqliteStore::open(&s.db()).unwrap(),
        None::<OutboxMailer>,
    );
    let other = parse_event(
        &ev(
            "e2",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c2",
            customer("Mehmet"),
        )
        .to_string(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        // Listed in another case than the profile's: one address.
        runner
            .store()
            .suppress(
                &address_key(" AYE@Example.com"),
                SUPPRESSED_COMPLAINT,
                t("2026-03-01T00:00:00Z"),
            )
            .await
            .unwrap();
        let Applied::Done { actions, .. } = runner
            .event(&created("2026-03-02T07:00:00Z"), t("2026-03-02T07:00:00Z"))
            .await
            .unwrap()
        else {
            panic!("applied");
        };
        assert!(
            actions.iter().any(|a| matches!(
                a.kind,
                ActionKind::EmailSkipped {
                    reason: SkipReason::Suppressed
                }
            )),
            "{actions:?}"
        );
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::EmailSent(_)))
        );
        assert!(runner.store().sends("c1").await.unwrap().is_empty());
        let record = runner.store().load("c1").await.unwrap().unwrap();
        let state: CustomerState = serde_json::from_slice(&record.state).unwrap();
        assert_eq!(
            state.suppressed,
            Some(nudge_core::engine::state::Suppression::Complaint)
        );

        let Applied::Done { actions, .. } = runner
            .event(&other, t("2026-03-02T07:00:00Z"))
            .await
            .unwrap()
        else {
            panic!("applied");
        };
        assert!(
            actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::EmailSent(_)))
        );
        assert_eq!(runner.store().sends("c2").await.unwrap().len(), 1);
    });
}
