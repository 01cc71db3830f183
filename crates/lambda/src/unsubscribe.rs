//! The `unsubscribe` function: RFC 8058 one-click unsubscribe behind a function URL, and the
//! confirmation page a person sees when they follow the link.
//!
//! Every marketing email carries `List-Unsubscribe: <URL?c=<customer id>&s=<signature>>` and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (the signature is
//! `nudge_core::links::Signer`'s). Then:
//! - `POST` (a mail provider's one-click request, body `List-Unsubscribe=One-Click`, or the
//!   confirmation page's button) with a valid `c` and `s` (from the query string, else from a
//!   form body) records a canonical `customer.unsubscribed` event for that customer through
//!   the runner (`ingest::apply`), as a store's own `customer.unsubscribed` would: from then
//!   on their marketing email is skipped as `unsubscribed`; transactional mail still goes.
//! - `GET` (and `HEAD`) shows a confirmation page in the store's name with a button that
//!   POSTs. A GET never unsubscribes: link scanners and previews fetch GETs.
//! - A missing, malformed or forged signature (or one for another customer) gets the same
//!   400 page, which says only that the link does not work.
//! - A customer the store does not know (erased, or never seen) gets the same success page as
//!   everyone else, and nothing is written: the page never reveals whether someone is a
//!   customer.
//!
//! Guarantees and limits:
//! - **Idempotent.** A customer already unsubscribed is not written again, and the event id is
//!   one per customer, `unsubscribe:<base64url SHA-256 of the customer id>` ([`event_id`]), so
//!   racing POSTs apply once (the later ones are duplicates) and a workflow triggered by
//!   `customer.unsubscribed` starts once. An unsubscribe stands for good: the engine keeps the
//!   first one, and the store's consent never undoes it. The id holds a hash, never the
//!   customer id.
//! - **Quick.** A GET reads nothing; a POST reads and commits one customer, bounded by
//!   [`POST_BUDGET`]: past it the answer is a 503 page asking to try again (the commit, if it
//!   happened, stands; a retry then finds the customer unsubscribed). The budget bounds the
//!   commit only: what the input decided is delivered after it (`ingest::bounded`), never cut
//!   off mid-send.
//! - **Nothing leaks.** The customer id and the signature are never logged; pages are
//!   HTML-escaped, carry no external asset, and are sent with `Cache-Control: no-store`,
//!   `Referrer-Policy: no-referrer` (the URL is a capability) and a content security policy
//!   that allows nothing but their inline style and the form posting to the same origin.
//! - The link names no workflow step, so an unsubscribe is not counted per step.

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use nudge_core::event::parse_event;
use nudge_core::mail::escape_html;
use nudge_core::store::Store;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::http;
use crate::ingest::{self, Handled, HandlerError};

/// The longest a POST waits for the store before answering 503: the page must come back
/// within a second.
pub const POST_BUDGET: Duration = Duration::from_millis(900);

/// The longest customer id a link may carry (bytes); longer is refused as malformed.
pub const MAX_CUSTOMER_ID_BYTES: usize = 1024;

/// The largest form body read (bytes); a larger body is refused.
pub const MAX_BODY_BYTES: usize = 4096;

/// The `source` of the `customer.unsubscribed` events this function records.
pub const EVENT_SOURCE: &str = "nudge.unsubscribe";

/// The customer and signature of a link. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// `c`: the customer id.
    pub customer_id: String,
    /// `s`: the signature.
    pub signature: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").finish_non_exhaustive()
    }
}

/// Why a request carries no usable token (logged; the page says none of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    /// `c` or `s` is missing or empty.
    #[error("the link lacks `c` or `s`")]
    Missing,
    /// `c` or `s` is given twice.
    #[error("the link repeats `c` or `s`")]
    Repeated,
    /// The customer id is longer than [`MAX_CUSTOMER_ID_BYTES`], or the body than
    /// [`MAX_BODY_BYTES`], or the body is not what it claims.
    #[error("the request is too large or malformed")]
    Malformed,
    /// The signature is not the customer's.
    #[error("the signature does not match")]
    Forged,
}

/// The `c` and `s` of `pairs`, each at most once.
fn pairs_token<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<(Option<String>, Option<String>), BadToken> {
    let (mut c, mut s) = (None, None);
    for (name, value) in pairs {
        let slot = match &*name {
            "c" => &mut c,
            "s" => &mut s,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(BadToken::Repeated);
        }
    }
    Ok((c, s))
}

/// The token of `request`: `c` and `s` from the query string, else (for a form POST) from
/// the body; checked against `signer`, or `previous` (the key being rotated out: links sent
/// before a rotation keep working while it is kept).
pub fn token(
    request: &LambdaFunctionUrlRequest,
    signer: &nudge_core::links::Signer,
    previous: Option<&nudge_core::links::Signer>,
) -> Result<Token, BadToken> {
    let (mut c, mut s) = match request.raw_query_string.as_deref() {
        Some(raw) => pairs_token(url::form_urlencoded::parse(raw.as_bytes()))?,
        None => (
            request.query_string_parameters.get("c").cloned(),
            request.query_string_parameters.get("s").cloned(),
        ),
    };
    if (c.is_none() || s.is_none()) && request.body.as_deref().is_some_and(|b| !b.is_empty()) {
        let body = http::body(request).map_err(|_| BadToken::Malformed)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(BadToken::Malformed);
        }
        let (bc, bs) = pairs_token(url::form_urlencoded::parse(&body))?;
        c = c.or(bc);
        s = s.or(bs);
    }
    let (Some(customer_id), Some(signature)) = (c, s) else {
        return Err(BadToken::Missing);
    };
    if customer_id.is_empty() || signature.is_empty() {
        return Err(BadToken::Missing);
    }
    if customer_id.len() > MAX_CUSTOMER_ID_BYTES {
        return Err(BadToken::Malformed);
    }
    let signed = signer.verify_unsubscribe(&customer_id, &signature)
        || previous.is_some_and(|p| p.verify_unsubscribe(&customer_id, &signature));
    if !signed {
        return Err(BadToken::Forged);
    }
    Ok(Token {
        customer_id,
        signature,
    })
}

/// What a POST did (logged; names no customer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsubscribed {
    /// The unsubscribe was recorded now.
    Recorded,
    /// The customer was unsubscribed already: nothing written.
    Already,
    /// The same unsubscribe was recorded by a concurrent request.
    Duplicate,
    /// The store does not know the customer: nothing written.
    UnknownCustomer,
    /// The customer's state could not take the event: kept as a dead letter.
    DeadLettered {
        /// The dead letter's id.
        dead_letter: String,
    },
}

/// The event id of the unsubscribe of `customer_id`: one per customer, so that concurrent
/// POSTs (a mail provider's one-click and the customer's own click) apply once, and a
/// workflow triggered by `customer.unsubscribed` starts once. An unsubscribe stands for good
/// (the engine keeps the first `unsubscribed_at`; the store's consent cannot undo it), so a
/// second one has nothing to record. The id holds a hash, not the customer id.
pub fn event_id(customer_id: &str) -> String {
    let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(customer_id.as_bytes()));
    format!("unsubscribe:{hash}")
}

/// Records that `customer_id` unsubscribed, at `now` (see the module documentation).
pub async fn unsubscribe(
    app: &App,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<Unsubscribed, HandlerError> {
    let Some(record) = app.store.load(customer_id).await? else {
        return Ok(Unsubscribed::UnknownCustomer);
    };
    let already = serde_json::from_slice::<serde_json::Value>(&record.state)
        .ok()
        .and_then(|state| state.get("unsubscribed_at").cloned())
        .is_some_and(|at| !at.is_null());
    if already {
        return Ok(Unsubscribed::Already);
    }
    let text = serde_json::json!({
        "version": "0",
        "id": event_id(customer_id),
        "detail-type": "customer.unsubscribed",
        "source": EVENT_SOURCE,
        "time": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "detail": {"customer": {"id": customer_id}},
    })
    .to_string();
    let event = match parse_event(&text) {
        Ok(event) => event,
        Err(e) => {
            // Only an id the canonical parser refuses gets here (the signature was valid).
            let handled =
                ingest::dead_letter(app, EVENT_SOURCE, None, e.to_string(), &text, now).await?;
            return Ok(dead_lettered(handled));
        }
    };
    Ok(match ingest::apply(app, &event, now).await? {
        Handled::Applied { .. } => Unsubscribed::Recorded,
        Handled::Duplicate { .. } => Unsubscribed::Duplicate,
        other => dead_lettered(other),
    })
}

fn dead_lettered(handled: Handled) -> Unsubscribed {
    match handled {
        Handled::DeadLettered { dead_letter, .. } => Unsubscribed::DeadLettered { dead_letter },
        // `apply` answers nothing else; said as a dead letter without id rather than a panic.
        _ => Unsubscribed::DeadLettered {
            dead_letter: String::new(),
        },
    }
}

/// Answers one function URL request at `now`. Never fails: every outcome is a page.
pub async fn handle(
    app: &App,
    request: &LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let store = app.engine.project().settings.store.name.as_str();
    let method = request
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("")
        .to_ascii_uppercase();
    let post = match method.as_str() {
        "GET" | "HEAD" => false,
        "POST" => true,
        _ => {
            let mut r = page(405, &Page::Method.html(store));
            if let Ok(allow) = ::http::HeaderValue::from_str("GET, HEAD, POST") {
                r.headers.insert(::http::header::ALLOW, allow);
            }
            return r;
        }
    };
    let token = match token(request, app.signer, app.previous_signer) {
        Ok(token) => token,
        Err(e) => {
            tracing::info!(reason = %e, post, "unsubscribe link refused");
            return page(400, &Page::Invalid.html(store));
        }
    };
    if !post {
        return page(200, &Page::Confirm(&token).html(store));
    }
    // The commit is bounded; what it decided is delivered after (never cut off).
    let done = ingest::bounded(
        app,
        POST_BUDGET,
        now,
        unsubscribe(app, &token.customer_id, now),
    );
    match done.await.ok_or(()) {
        Ok(Ok(Unsubscribed::DeadLettered { dead_letter })) => {
            tracing::warn!(dead_letter, "unsubscribe could not be applied");
            page(500, &Page::Failed.html(store))
        }
        Ok(Ok(outcome)) => {
            tracing::info!(outcome = ?outcome, "unsubscribe");
            page(200, &Page::Done.html(store))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "unsubscribe failed");
            page(503, &Page::Failed.html(store))
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = POST_BUDGET.as_millis() as u64,
                "unsubscribe timed out"
            );
            page(503, &Page::Failed.html(store))
        }
    }
}

/// A page of this function.
#[derive(Debug, Clone, Copy)]
pub enum Page<'t> {
    /// The GET page: asks to confirm with a button that POSTs the token.
    Confirm(&'t Token),
    /// Unsubscribed (or nothing to do).
    Done,
    /// The link does not work.
    Invalid,
    /// The store failed: try again later.
    Failed,
    /// A method other than GET, HEAD or POST.
    Method,
}

impl Page<'_> {
    /// The page's HTML, in the name of the store `store` (escaped here).
    pub fn html(&self, store: &str) -> String {
        let store = escape_html(store);
        let (title, body) = match self {
            Page::Confirm(token) => (
                "Unsubscribe".to_owned(),
                format!(
                    "<h1>Unsubscribe from {store}?</h1>\n\
                     <p>You will get no more marketing email from {store}. Messages about your orders, such as shipping updates, still reach you.</p>\n\
                     <form method=\"post\">\n\
                     <input type=\"hidden\" name=\"c\" value=\"{c}\">\n\
                     <input type=\"hidden\" name=\"s\" value=\"{s}\">\n\
                     <button type=\"submit\">Unsubscribe</button>\n\
                     </form>",
                    c = escape_html(&token.customer_id),
                    s = escape_html(&token.signature),
                ),
            ),
            Page::Done => (
                "Unsubscribed".to_owned(),
                format!(
                    "<h1>You are unsubscribed</h1>\n\
                     <p>{store} will send you no more marketing email. Messages about your orders, such as shipping updates, still reach you.</p>"
                ),
            ),
            Page::Invalid => (
                "Link not valid".to_owned(),
                "<h1>This link does not work</h1>\n\
                 <p>The unsubscribe link is incomplete or was changed. Please use the link in the latest email you received, or reply to that email.</p>"
                    .to_owned(),
            ),
            Page::Failed => (
                "Please try again".to_owned(),
                "<h1>Please try again</h1>\n\
                 <p>We could not record your request just now. Please try again in a few minutes.</p>"
                    .to_owned(),
            ),
            Page::Method => (
                "Not supported".to_owned(),
                "<h1>Not supported</h1>\n<p>Open the link from your email instead.</p>".to_owned(),
            ),
        };
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"robots\" content=\"noindex\">\n\
             <title>{title} · {store}</title>\n<style>{STYLE}</style>\n</head>\n\
             <body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
        )
    }
}

/// The pages' only style: readable text, a large button with a visible focus ring.
const STYLE: &str = "body{font:1.0625rem/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;color:#1a1a1a;background:#fff}main{max-width:32rem;margin:0 auto}h1{font-size:1.5rem}button{font:inherit;padding:.75rem 1.5rem;border:0;border-radius:.375rem;background:#1a1a1a;color:#fff;cursor:pointer}button:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}";

/// An HTML response of `status` with this function's headers.
fn page(status: i64, html: &str) -> LambdaFunctionUrlResponse {
    let mut response = http::response(status, "text/html; charset=utf-8", html);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-robots-tag", "noindex"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        response.headers.insert(
            ::http::HeaderName::from_static(name),
            ::http::HeaderValue::from_static(value),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::links::Signer;

    const KEY: &[u8] = b"unit-test-signing-key-of-32-bytes-at-least";

    fn request(method: &str, query: Option<&str>, body: Option<&str>) -> LambdaFunctionUrlRequest {
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

    fn query_for(signer: &Signer, customer: &str) -> String {
        let base = url::Url::parse("https://u.example.com/").unwrap();
        let link = url::Url::parse(&signer.unsubscribe_url(&base, customer)).unwrap();
        link.query().unwrap().to_owned()
    }

    #[test]
    fn a_signed_link_gives_its_customer_in_the_query_or_the_form() {
        let signer = Signer::new(KEY);
        let q = query_for(&signer, "c 1&x=ş");
        let t = token(&request("GET", Some(&q), None), &signer, None).unwrap();
        assert_eq!(t.customer_id, "c 1&x=ş");
        // The confirmation form's POST carries them in the body too; a provider's one-click
        // POST only in the query.
        let t = token(&request("POST", None, Some(&q)), &signer, None).unwrap();
        assert_eq!(t.customer_id, "c 1&x=ş");
        let t = token(
            &request("POST", Some(&q), Some("List-Unsubscribe=One-Click")),
            &signer,
            None,
        )
        .unwrap();
        assert_eq!(t.customer_id, "c 1&x=ş");
    }

    #[test]
    fn missing_repeated_forged_and_other_customers_signatures_are_refused() {
        let signer = Signer::new(KEY);
        let q1 = query_for(&signer, "c-1");
        let sig1 = q1.split("s=").nth(1).unwrap().to_owned();
        let cases = [
            (String::new(), BadToken::Missing),
            ("c=c-1".to_owned(), BadToken::Missing),
            (format!("s={sig1}"), BadToken::Missing),
            (format!("c=&s={sig1}"), BadToken::Missing),
            (format!("c=c-2&s={sig1}"), BadToken::Forged),
            (format!("{q1}&c=c-2"), BadToken::Repeated),
            (
                "c=c-1&s=AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                BadToken::Forged,
            ),
            (query_for(&Signer::development(), "c-1"), BadToken::Forged),
            (
                format!("c={}&s={sig1}", "x".repeat(MAX_CUSTOMER_ID_BYTES + 1)),
                BadToken::Malformed,
            ),
        ];
        for (q, want) in cases {
            assert_eq!(
                token(&request("GET", Some(&q), None), &signer, None),
                Err(want),
                "{q}"
            );
        }
        let big = format!("{q1}&pad={}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(
            token(&request("POST", None, Some(&big)), &signer, None),
            Err(BadToken::Malformed)
        );
    }

    #[test]
    fn pages_escape_the_store_name_and_the_token() {
        let token = Token {
            customer_id: "c\"><script>alert(1)</script>".into(),
            signature: "s'&".into(),
        };
        let html = Page::Confirm(&token).html("Ayşe & <Co> \"Kahve\"");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("Ayşe &amp; &lt;Co&gt; &quot;Kahve&quot;"),
            "{html}"
        );
        assert!(
            html.contains("value=\"c&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""),
            "{html}"
        );
        assert!(html.contains("value=\"s&#39;&amp;\""), "{html}");
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn pages_are_small_self_contained_and_reveal_nothing() {
        let token = Token {
            customer_id: "c-1".into(),
            signature: "sig".into(),
        };
        for p in [
            Page::Confirm(&token),
            Page::Done,
            Page::Invalid,
            Page::Failed,
            Page::Method,
        ] {
            let html = p.html("Kahve Dükkanı");
            assert!(html.len() < 3000, "{} bytes", html.len());
            for external in ["src=", "href=", "http://", "https://", "@import", "url("] {
                assert!(!html.contains(external), "{external} in {html}");
            }
        }
        let invalid = Page::Invalid.html("Shop");
        assert!(!invalid.contains("c-1") && !invalid.contains("customer"));
    }

    #[test]
    fn responses_forbid_caching_referrers_and_foreign_resources() {
        let r = page(200, "<p>x</p>");
        assert_eq!(r.status_code, 200);
        assert_eq!(r.headers["cache-control"], "no-store");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
    }

    #[test]
    fn event_ids_are_one_per_customer_and_hash_it() {
        let a = event_id("guest:ayse@example.com");
        assert!(a.starts_with("unsubscribe:"), "{a}");
        assert!(!a.contains("ayse"), "{a}");
        assert_eq!(a, event_id("guest:ayse@example.com"));
        assert_ne!(a, event_id("c-2"));
    }

    #[test]
    fn a_link_signed_with_the_previous_key_works_while_that_key_is_kept() {
        let (old, new) = (
            Signer::new(b"old key, 32 bytes or more, really"),
            Signer::new(KEY),
        );
        let q = query_for(&old, "c-1001");
        let get = request("GET", Some(&q), None);
        assert!(matches!(token(&get, &new, None), Err(BadToken::Forged)));
        assert_eq!(token(&get, &new, Some(&old)).unwrap().customer_id, "c-1001");
        let other = query_for(&Signer::new(b"a third key, not kept anywhere!!"), "c-1001");
        let get = request("GET", Some(&other), None);
        assert!(matches!(
            token(&get, &new, Some(&old)),
            Err(BadToken::Forged)
        ));
    }

    #[test]
    fn debug_of_a_token_shows_nothing() {
        let t = Token {
            customer_id: "c-1001".into(),
            signature: "sig".into(),
        };
        assert_eq!(format!("{t:?}"), "Token { .. }");
    }
}
