//! The `ses-events` and `unsubscribe` handlers on moto (DynamoDB, SES): suppressions, per-step
//! counts, dead letters, and one-click unsubscribes through the shipped workflows.

mod support;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use chrono::{DateTime, Utc};
use nudge_core::engine::{ActionKind, SkipReason};
use nudge_core::event::parse_event;
use nudge_core::links::Signer;
use nudge_core::runner::Applied;
use nudge_core::store::{FeedbackCount, FeedbackKind, Store, address_key};
use nudge_lambda::App;
use nudge_lambda::ses_events::{self, Outcome};
use nudge_lambda::unsubscribe;
use serde_json::Value;
use serde_json::value::RawValue;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/ses/",
            $name
        ))
    };
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

/// `fixture` with its EventBridge id and its `nudge-step` tag replaced.
/// Another email's event like `fixture`: its own EventBridge id, step and SES message id (SES
/// counts an event by its message, type and time, not by the EventBridge id).
fn variant(fixture: &str, id: &str, step: &str) -> String {
    let mut v: Value = serde_json::from_str(fixture).unwrap();
    v["id"] = id.into();
    v["detail"]["mail"]["tags"]["nudge-step"] = serde_json::json!([step]);
    v["detail"]["mail"]["messageId"] = format!("message-of-{id}").into();
    v.to_string()
}

async fn ses(app: &App, text: &str) -> Outcome {
    ses_events::handle(app, &raw(text), App::now())
        .await
        .expect("the store answers")
}

fn count(counts: &[FeedbackCount], step: &str, kind: FeedbackKind) -> u64 {
    counts
        .iter()
        .filter(|c| c.workflow == "win-back" && c.step == step && c.kind == kind)
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address_and_the_same_event_counts_once() {
    let Some(endpoint) = support::moto("a_hard_bounce_suppresses_the_address") else {
        return;
    };
    let app = support::app(&endpoint, "feedback", None, |_| {}).await;
    let bounce = fixture!("bounce-permanent.json");
    assert_eq!(
        ses(&app, bounce).await,
        Outcome::Counted {
            event_id: "2a3b5c1e-6f7d-4b8a-9c0d-1e2f3a4b5c6d".into(),
            kind: FeedbackKind::Bounced,
            suppressed: 1,
        }
    );
    // The address's hash, however the profile spells it.
    let key = address_key(" Bounce@Simulator.AmazonSES.com");
    assert_eq!(
        app.store.suppression(&key).await.unwrap(),
        Some(("hard_bounce".to_owned(), t("2026-03-05T07:41:02.669Z")))
    );
    // EventBridge delivers again: counted once, suppression unchanged.
    assert!(
        matches!(
            ses(&app, bounce).await,
            Outcome::Duplicate { suppressed: 1, .. }
        ),
        "a redelivery is a duplicate"
    );
    let counts = app.store.feedback_counts().await.unwrap();
    assert_eq!(
        count(&counts, "miss-you", FeedbackKind::Bounced),
        1,
        "{counts:?}"
    );
    assert_eq!(
        app.store.suppression(&key).await.unwrap().map(|s| s.0),
        Some("hard_bounce".to_owned())
    );
}

#[tokio::test]
async fn a_complaint_suppresses_and_a_transient_bounce_does_not() {
    let Some(endpoint) = support::moto("a_complaint_suppresses") else {
        return;
    };
    let app = support::app(&endpoint, "feedback", None, |_| {}).await;
    assert!(matches!(
        ses(&app, fixture!("complaint.json")).await,
        Outcome::Counted {
            kind: FeedbackKind::Complained,
            suppressed: 1,
            ..
        }
    ));
    assert_eq!(
        app.store
            .suppression(&address_key("complaint@simulator.amazonses.com"))
            .await
            .unwrap(),
        Some(("complaint".to_owned(), t("2026-03-05T08:10:00Z")))
    );
    assert!(matches!(
        ses(&app, fixture!("bounce-transient.json")).await,
        Outcome::Ignored { .. }
    ));
    assert_eq!(
        app.store
            .suppression(&address_key("ooto@simulator.amazonses.com"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn deliveries_opens_and_clicks_are_counted_per_step_and_other_mail_is_ignored() {
    let Some(endpoint) = support::moto("deliveries_opens_and_clicks_are_counted") else {
        return;
    };
    let app = support::app(&endpoint, "feedback", None, |_| {}).await;
    for text in [
        fixture!("delivery.json").to_owned(),
        fixture!("open.json").to_owned(),
        fixture!("click.json").to_owned(),
        variant(fixture!("open.json"), "open-2", "miss-you"),
        variant(fixture!("delivery.json"), "delivery-2", "last-call"),
        variant(fixture!("click.json"), "click-2", "last-call"),
    ] {
        assert!(
            matches!(
                ses(&app, &text).await,
                Outcome::Counted { suppressed: 0, .. }
            ),
            "{text}"
        );
    }
    // SES publishing the first open again, under a new EventBridge id: counted once.
    let mut republished: Value = serde_json::from_str(fixture!("open.json")).unwrap();
    republished["id"] = "open-republished".into();
    assert!(
        matches!(
            ses(&app, &republished.to_string()).await,
            Outcome::Duplicate { .. }
        ),
        "a republished SES event is a duplicate"
    );
    for ignored in [fixture!("delivery-other-mail.json"), fixture!("send.json")] {
        assert!(matches!(ses(&app, ignored).await, Outcome::Ignored { .. }));
    }
    let counts = app.store.feedback_counts().await.unwrap();
    let want = [
        ("miss-you", FeedbackKind::Delivered, 1),
        ("miss-you", FeedbackKind::Opened, 2),
        ("miss-you", FeedbackKind::Clicked, 1),
        ("last-call", FeedbackKind::Delivered, 1),
        ("last-call", FeedbackKind::Opened, 0),
        ("last-call", FeedbackKind::Clicked, 1),
    ];
    for (step, kind, n) in want {
        assert_eq!(count(&counts, step, kind), n, "{step} {kind:?}: {counts:?}");
    }
    assert_eq!(
        counts.iter().map(|c| c.count).sum::<u64>(),
        6,
        "nothing else counted (other mail, sends): {counts:?}"
    );
}

#[tokio::test]
async fn a_malformed_event_is_a_dead_letter_without_the_address() {
    let Some(endpoint) = support::moto("a_malformed_event_is_a_dead_letter") else {
        return;
    };
    let app = support::app(&endpoint, "feedback", None, |_| {}).await;
    let mut broken: Value = serde_json::from_str(fixture!("bounce-permanent.json")).unwrap();
    broken["detail"]["bounce"]["bouncedRecipients"] = serde_json::json!("not a list");
    // (Text that is not JSON at all never reaches the handler: the runtime refuses it, and
    // the invocation fails into the on-failure destination.)
    for text in [
        broken.to_string(),
        "{\"id\": 1}".to_owned(),
        "[]".to_owned(),
    ] {
        assert!(
            matches!(ses(&app, &text).await, Outcome::DeadLettered { .. }),
            "{text}"
        );
    }
    let letters = app.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let first = &letters[0];
    assert_eq!(first.source, "ses-events");
    assert_eq!(
        first.event_id.as_deref(),
        Some("2a3b5c1e-6f7d-4b8a-9c0d-1e2f3a4b5c6d")
    );
    assert!(
        first.reason.contains("bouncedRecipients"),
        "{}",
        first.reason
    );
    assert!(!first.body.contains('@'), "{}", first.body);
    assert!(
        first.body.contains("\"eventType\":\"Bounce\""),
        "{}",
        first.body
    );
    assert_eq!(
        app.store
            .suppression(&address_key("bounce@simulator.amazonses.com"))
            .await
            .unwrap(),
        None,
        "a rejected event suppresses nothing"
    );
}

// ---- unsubscribe ----

/// 13:00 in Istanbul: inside the shipped workflows' send window.
const NOW: &str = "2026-03-02T10:00:00Z";

fn url_request(method: &str, query: &str, body: Option<&str>) -> LambdaFunctionUrlRequest {
    serde_json::from_value(serde_json::json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {"http": {"method": method, "path": "/"}, "timeEpoch": 0},
        "body": body,
        "isBase64Encoded": false,
    }))
    .unwrap()
}

/// The query of `customer`'s unsubscribe link under `signer`.
fn link_query(signer: &Signer, customer: &str) -> String {
    let base = url::Url::parse("https://unsubscribe.example.com/").unwrap();
    let link = url::Url::parse(&signer.unsubscribe_url(&base, customer)).unwrap();
    link.query().unwrap().to_owned()
}

fn test_signer() -> Signer {
    Signer::new(support::TEST_SIGNING_KEY)
}

/// Applies a store event for `customer` at [`NOW`] and returns what the runner did.
async fn store_event(app: &App, id: &str, kind: &str, customer: &str) -> Applied {
    store_event_to(app, id, kind, customer, &format!("{customer}@example.com")).await
}

/// [`store_event`] with the customer's address.
async fn store_event_to(app: &App, id: &str, kind: &str, customer: &str, email: &str) -> Applied {
    let text = serde_json::json!({
        "version": "0", "id": id, "detail-type": kind, "source": "store",
        "time": "2026-03-02T09:00:00Z",
        "detail": {"customer": {"id": customer, "email": email,
                   "first_name": "Ayşe", "accepts_marketing": true}},
    })
    .to_string();
    app.runner()
        .event(&parse_event(&text).unwrap(), t(NOW))
        .await
        .expect("applied")
}

fn welcome_outcome(applied: &Applied) -> Option<&ActionKind> {
    let Applied::Done { actions, .. } = applied else {
        panic!("not applied: {applied:?}");
    };
    actions
        .iter()
        .find(|a| {
            a.workflow == "welcome-series"
                && matches!(
                    a.kind,
                    ActionKind::EmailSent(_) | ActionKind::EmailSkipped { .. }
                )
        })
        .map(|a| &a.kind)
}

async fn version(app: &App, customer: &str) -> Option<u64> {
    app.store.load(customer).await.unwrap().map(|r| r.version)
}

#[tokio::test]
async fn get_shows_the_page_and_changes_nothing_post_unsubscribes_once() {
    let Some(endpoint) = support::moto("get_shows_the_page_post_unsubscribes") else {
        return;
    };
    let app = support::app(&endpoint, "unsubscribe", None, |_| {}).await;
    let (ayse, control) = ("c-unsub-1", "c-unsub-2");
    store_event(&app, "u-1", "customer.updated", ayse).await;
    store_event(&app, "u-2", "customer.updated", control).await;
    let before = version(&app, ayse).await;
    let query = link_query(&test_signer(), ayse);

    let page = unsubscribe::handle(&app, &url_request("GET", &query, None), t(NOW)).await;
    assert_eq!(page.status_code, 200);
    let html = page.body.unwrap();
    assert!(html.contains("Unsubscribe from Kahve Dükkanı?"), "{html}");
    assert!(html.contains("<form method=\"post\">"), "{html}");
    assert_eq!(version(&app, ayse).await, before, "a GET writes nothing");

    // The provider's one-click POST.
    let started = std::time::Instant::now();
    let done = unsubscribe::handle(
        &app,
        &url_request("POST", &query, Some("List-Unsubscribe=One-Click")),
        t(NOW),
    )
    .await;
    let took = started.elapsed();
    eprintln!("one-click POST answered in {took:?} (moto)");
    assert_eq!(done.status_code, 200);
    assert!(done.body.unwrap().contains("You are unsubscribed"));
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    let after = version(&app, ayse).await;
    assert_eq!(after, before.map(|v| v + 1), "one commit");

    // Again (a second click, the confirmation form): the same page, nothing written.
    let form = unsubscribe::handle(&app, &url_request("POST", "", Some(&query)), t(NOW)).await;
    assert_eq!(form.status_code, 200);
    assert_eq!(version(&app, ayse).await, after, "already unsubscribed");
    assert_eq!(
        unsubscribe::unsubscribe(&app, ayse, t(NOW)).await.unwrap(),
        unsubscribe::Unsubscribed::Already
    );

    // The next marketing email is skipped as unsubscribed; the control customer's goes.
    let skipped = store_event(&app, "c-1", "customer.created", ayse).await;
    assert_eq!(
        welcome_outcome(&skipped),
        Some(&ActionKind::EmailSkipped {
            reason: SkipReason::Unsubscribed
        })
    );
    let sent = store_event(&app, "c-2", "customer.created", control).await;
    assert!(
        matches!(welcome_outcome(&sent), Some(ActionKind::EmailSent(_))),
        "{sent:?}"
    );
}

#[tokio::test]
async fn forged_and_other_customers_signatures_are_refused_and_unknown_customers_see_success() {
    let Some(endpoint) = support::moto("forged_signatures_are_refused") else {
        return;
    };
    let app = support::app(&endpoint, "unsubscribe", None, |_| {}).await;
    let (ayse, other) = ("c-forge-1", "c-forge-2");
    store_event(&app, "f-1", "customer.updated", ayse).await;
    let before = version(&app, ayse).await;
    let others = link_query(&test_signer(), other);
    let other_sig = others.split("s=").nth(1).unwrap();
    let forged = [
        format!("c={ayse}&s={other_sig}"),
        link_query(&Signer::development(), ayse),
        format!("c={ayse}"),
        String::new(),
    ];
    let mut refused_pages = Vec::new();
    for query in &forged {
        for method in ["GET", "POST"] {
            let r = unsubscribe::handle(&app, &url_request(method, query, None), t(NOW)).await;
            assert_eq!(r.status_code, 400, "{method} {query}");
            refused_pages.push(r.body.unwrap());
        }
    }
    assert!(
        refused_pages.windows(2).all(|w| w[0] == w[1]),
        "every refusal is the same page"
    );
    assert!(!refused_pages[0].contains(ayse));
    assert_eq!(version(&app, ayse).await, before, "nothing written");

    // A validly signed link of a customer the store does not know: success, nothing written.
    let r = unsubscribe::handle(&app, &url_request("POST", &others, None), t(NOW)).await;
    assert_eq!(r.status_code, 200);
    assert_eq!(version(&app, other).await, None);
    let known = unsubscribe::handle(
        &app,
        &url_request("POST", &link_query(&test_signer(), ayse), None),
        t(NOW),
    )
    .await;
    assert_eq!(
        r.body, known.body,
        "unknown and known customers see the same page"
    );

    let put = unsubscribe::handle(&app, &url_request("PUT", &others, None), t(NOW)).await;
    assert_eq!(put.status_code, 405);
}

#[tokio::test]
async fn after_a_hard_bounce_or_a_complaint_the_next_email_to_the_address_is_skipped() {
    let Some(endpoint) = support::moto("after_a_hard_bounce_the_next_email_is_skipped") else {
        return;
    };
    let app = support::app(&endpoint, "feedback", None, |_| {}).await;
    // SES reports on two addresses; the store's profiles spell them in their own case.
    ses(&app, fixture!("bounce-permanent.json")).await;
    ses(&app, fixture!("complaint.json")).await;
    for (customer, address) in [
        ("c-bounced", "Bounce@simulator.amazonses.com"),
        ("c-complained", "complaint@Simulator.amazonses.com"),
    ] {
        let applied = store_event_to(&app, customer, "customer.created", customer, address).await;
        assert_eq!(
            welcome_outcome(&applied),
            Some(&ActionKind::EmailSkipped {
                reason: SkipReason::Suppressed
            }),
            "{customer}"
        );
        assert!(
            app.store.sends(customer).await.unwrap().is_empty(),
            "{customer}"
        );
    }
    // An address SES said nothing about still gets its welcome.
    let applied = store_event(&app, "c-fine", "customer.created", "c-fine").await;
    assert!(matches!(
        welcome_outcome(&applied),
        Some(ActionKind::EmailSent(_))
    ));
}

#[tokio::test]
async fn events_of_another_configuration_set_are_ignored() {
    let Some(endpoint) = support::moto("events_of_another_configuration_set_are_ignored") else {
        return;
    };
    let staging = support::app(&endpoint, "feedback", None, |c| {
        c.configuration_set = Some("nudge-staging".into());
    })
    .await;
    for text in [fixture!("delivery.json"), fixture!("bounce-permanent.json")] {
        assert!(matches!(ses(&staging, text).await, Outcome::Ignored { .. }));
    }
    assert_eq!(staging.store.feedback_counts().await.unwrap(), []);
    assert_eq!(
        staging
            .store
            .suppression(&address_key("bounce@simulator.amazonses.com"))
            .await
            .unwrap(),
        None
    );
    let prod = support::app(&endpoint, "feedback", None, |c| {
        c.configuration_set = Some("nudge-prod".into());
    })
    .await;
    assert!(matches!(
        ses(&prod, fixture!("delivery.json")).await,
        Outcome::Counted { .. }
    ));
}
