//! The runner's `now` on a real store: an event is applied at the later of its own time and
//! the customer's last applied time, capped at the runner's clock; a timer at its due time
//! (or the customer's last applied time, if later).

use chrono::{DateTime, Utc};
use nudge_core::engine::Engine;
use nudge_core::engine::state::{CustomerState, Phase};
use nudge_core::event::{StoreEvent, parse_event};
use nudge_core::links::Signer;
use nudge_core::runner::{Applied, Runner};
use nudge_core::store::Store;
use nudge_local::SqliteStore;
use nudge_local::outbox::OutboxMailer;

use crate::scenarios::{Scenario, customer, ev};

/// `welcome` waits 3 days after `customer.created`; `nudge` waits 2 days after
/// `customer.updated`.
const WELCOME: &str = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: hello
    send_email: { template: t.mjml, subject: "Hello" }
  - id: pause
    wait: 3d
  - id: again
    send_email: { template: t.mjml, subject: "Again" }
"#;
const NUDGE: &str = r#"
category: transactional
trigger: { event: customer.updated }
steps:
  - id: pause
    wait: 2d
  - id: note
    send_email: { template: t.mjml, subject: "Note" }
"#;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(id: &str, ty: &str, at: &str) -> StoreEvent {
    parse_event(&ev(id, ty, at, "c1", customer("Ayşe")).to_string()).unwrap()
}

/// Runs `f` with a runner on an in-memory store and a current-thread runtime.
fn with_runner(f: impl AsyncFnOnce(&Runner<'_, SqliteStore, OutboxMailer>)) {
    let s = Scenario::new(&[("welcome", WELCOME), ("nudge", NUDGE)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    let runner = Runner::new(&engine, SqliteStore::in_memory().unwrap(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(f(&runner));
}

fn applied_at(applied: &Applied) -> DateTime<Utc> {
    match applied {
        Applied::Done { at, .. } => *at,
        Applied::Duplicate { .. } => panic!("a duplicate"),
    }
}

async fn state(runner: &Runner<'_, SqliteStore, OutboxMailer>) -> CustomerState {
    let record = runner.store().load("c1").await.unwrap().unwrap();
    serde_json::from_slice(&record.state).unwrap()
}

/// The `until` of the wait of workflow `workflow`.
fn wait_until(state: &CustomerState, workflow: &str) -> DateTime<Utc> {
    let run = state.runs.iter().find(|r| r.workflow == workflow).unwrap();
    match run.phase {
        Phase::Waiting { until, .. } => until,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_is_applied_at_its_own_time_when_the_clock_is_later() {
    with_runner(async |runner| {
        let created = event("e1", "customer.created", "2026-03-05T07:00:00Z");
        let applied = runner
            .event(&created, t("2026-03-20T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(applied_at(&applied), t("2026-03-05T07:00:00Z"));
        let state = state(runner).await;
        assert_eq!(state.last_applied, Some(t("2026-03-05T07:00:00Z")));
        assert_eq!(wait_until(&state, "welcome"), t("2026-03-08T07:00:00Z"));
    });
}

#[test]
fn a_late_event_does_not_move_the_customers_clock_back() {
    with_runner(async |runner| {
        let clock = t("2026-03-20T00:00:00Z");
        let created = event("e1", "customer.created", "2026-03-05T07:00:00Z");
        runner.event(&created, clock).await.unwrap();
        // Four days older than the customer's last input: applied at that input's time, so
        // the wait it starts ends 2 days after it, not 2 days after the event's own time
        // (which would be before the customer's last input).
        let late = event("e2", "customer.updated", "2026-03-01T07:00:00Z");
        let applied = runner.event(&late, clock).await.unwrap();
        assert_eq!(applied_at(&applied), t("2026-03-05T07:00:00Z"));
        let state = state(runner).await;
        assert_eq!(wait_until(&state, "nudge"), t("2026-03-07T07:00:00Z"));
        assert_eq!(state.last_applied, Some(t("2026-03-05T07:00:00Z")));
    });
}

#[test]
fn an_event_from_the_future_is_applied_at_the_clock() {
    with_runner(async |runner| {
        let clock = t("2026-03-05T07:00:00Z");
        let early = event("e1", "customer.created", "2026-03-09T07:00:00Z");
        let applied = runner.event(&early, clock).await.unwrap();
        assert_eq!(applied_at(&applied), clock);
        let state = state(runner).await;
        assert_eq!(wait_until(&state, "welcome"), t("2026-03-08T07:00:00Z"));
        assert_eq!(state.last_applied, Some(clock));
    });
}

#[test]
fn a_timer_fires_at_its_due_time_and_never_before_the_last_input() {
    with_runner(async |runner| {
        let clock = t("2026-03-20T00:00:00Z");
        let created = event("e1", "customer.created", "2026-03-05T07:00:00Z");
        runner.event(&created, clock).await.unwrap();
        // Due at 03-08 07:00: fired then, whatever the clock.
        let due = t("2026-03-08T07:00:00Z");
        let fired = runner.wake("c1", due, clock).await.unwrap();
        assert_eq!(applied_at(&fired), due);
        assert_eq!(state(runner).await.last_applied, Some(due));
        // A wake for a time before the customer's last input (a timer that edited workflows
        // made earlier) is applied at the last input's time.
        let stale = runner
            .wake("c1", t("2026-03-06T00:00:00Z"), clock)
            .await
            .unwrap();
        assert_eq!(applied_at(&stale), due);
        assert_eq!(state(runner).await.last_applied, Some(due));
    });
}

#[test]
fn a_clock_behind_the_last_input_caps_the_event_but_keeps_the_last_applied_time() {
    with_runner(async |runner| {
        let created = event("e1", "customer.created", "2026-03-05T07:00:00Z");
        runner
            .event(&created, t("2026-03-05T07:00:00Z"))
            .await
            .unwrap();
        // Another invocation whose clock is behind (skew): the cap wins for the event, and the
        // state still remembers the later time.
        let update = event("e2", "customer.updated", "2026-03-05T06:00:00Z");
        let applied = runner
            .event(&update, t("2026-03-05T06:30:00Z"))
            .await
            .unwrap();
        assert_eq!(applied_at(&applied), t("2026-03-05T06:30:00Z"));
        assert_eq!(
            state(runner).await.last_applied,
            Some(t("2026-03-05T07:00:00Z"))
        );
    });
}
