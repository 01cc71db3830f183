//! For tests only: [`InjectedThrottling`], an SDK interceptor that answers a seeded share of
//! DynamoDB and SES requests with the throttling error each service gives, so that the SDK's
//! own retries, the store's and mailer's error mapping and the functions' failure paths run as
//! they would under real throttling, against moto (which never throttles). It also counts, per
//! operation, the SDK's calls, their attempts, what was injected, the services' error answers
//! (a cancelled transaction, a failed condition) and the calls that failed in the end.
//!
//! An injected attempt is one of two kinds:
//! - **before**: the request never reaches the service (the interceptor sends it to a path moto
//!   answers with a 404 and changes nothing on) and the caller sees the throttling error, as
//!   DynamoDB's and SES's real throttling answers are: nothing was done;
//! - **after** (DynamoDB only): the request reaches moto and is applied, and the caller sees
//!   the throttling error instead of moto's answer. DynamoDB never throttles a request it
//!   applied, but an answer lost after the write (a 500, a timeout, a dropped connection) is
//!   real, and this is its harder form: the SDK retries an operation that was done. SES has no
//!   such injection: a `TooManyRequestsException` for an email SES took would be a duplicate
//!   nothing could prevent, while SES's real answers lost after a send are 5xx and timeouts,
//!   which the mailer already treats as "may have been sent".
//!
//! [`one_at_a_time`] makes a client's requests reach the service one at a time: moto's
//! `TransactWriteItems` copies the whole table before it runs and puts the copy back when the
//! transaction fails (a version conflict, a duplicate), undoing whatever other requests wrote
//! meanwhile, which DynamoDB never does; against moto, concurrent invocations must meet at the
//! store one request at a time (they still interleave between requests, so they conflict as
//! they would on DynamoDB).
//!
//! Which attempts are injected is a function of the seed and the attempt's place in the
//! process's sequence of attempts (one counter for every client sharing the injector); under
//! concurrency, which request gets which place depends on the interleaving.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeDeserializationInterceptorContextRef,
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// The path an attempt injected "before" is sent to instead of its own: moto answers it with
/// a 404 and changes nothing.
const DIVERTED_PATH: &str = "/nudge-injected-throttle";

/// What happened to one operation's calls, counted by [`InjectedThrottling`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Calls made (an SDK operation, however many attempts it took).
    pub calls: u64,
    /// Attempts sent (the first included): `attempts - calls` are the SDK's retries.
    pub attempts: u64,
    /// Attempts answered with throttling before reaching the service.
    pub throttled_before: u64,
    /// Attempts the service applied, answered with throttling.
    pub throttled_after: u64,
    /// Error answers of the service itself, by code (`TransactionCanceledException`: a commit
    /// cancelled by a version conflict or a duplicate; `ConditionalCheckFailedException`).
    pub errors: BTreeMap<String, u64>,
    /// Calls that ended in an error after all their attempts (a cancelled commit included).
    pub failed: u64,
}

/// The share of attempts to throttle and how, per service. Shares are in hundredths of a
/// percent (500 is 5%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleShares {
    /// The share of DynamoDB attempts throttled.
    pub dynamodb: u32,
    /// Of the DynamoDB attempts throttled, the share answered after the request was applied.
    pub dynamodb_after: u32,
    /// The share of SES attempts throttled (always before sending).
    pub ses: u32,
}

impl ThrottleShares {
    /// `percent`% of DynamoDB's and SES's attempts throttled, half of DynamoDB's after the
    /// write.
    pub fn percent(percent: u32) -> Self {
        ThrottleShares {
            dynamodb: percent * 100,
            dynamodb_after: 5000,
            ses: percent * 100,
        }
    }
}

/// Where an attempt is throttled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Not at all.
    No,
    /// Instead of reaching the service.
    Before,
    /// After the service applied it.
    After,
}

/// For tests only: throttles a seeded share of DynamoDB and SES attempts (see the module
/// documentation) and counts every call. Clones share the counter and the counts; give it to
/// `Clients::from_env_throttled`.
#[derive(Debug, Clone)]
pub struct InjectedThrottling {
    seed: u64,
    shares: Arc<Mutex<ThrottleShares>>,
    next: Arc<AtomicU64>,
    counts: Arc<Mutex<BTreeMap<String, CallCount>>>,
}

/// The decision for the attempt under way, kept in the attempt's configuration.
#[derive(Debug, Clone, Copy)]
struct Decided(Throttle);

impl Storable for Decided {
    type Storer = StoreReplace<Self>;
}

/// Set by an operation's first attempt.
#[derive(Debug, Clone, Copy)]
struct Called;

impl Storable for Called {
    type Storer = StoreReplace<Self>;
}

/// SplitMix64: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The service an operation belongs to, as far as throttling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    DynamoDb,
    Ses,
    Other,
}

fn service(cfg: &ConfigBag) -> (Service, String) {
    match cfg.load::<Metadata>() {
        Some(m) => {
            let s = m.service().to_ascii_lowercase();
            let service = if s.contains("dynamodb") {
                Service::DynamoDb
            } else if s.contains("ses") {
                Service::Ses
            } else {
                Service::Other
            };
            (service, m.name().to_owned())
        }
        None => (Service::Other, "unknown".to_owned()),
    }
}

impl InjectedThrottling {
    /// An injector on `seed` throttling `shares` of the attempts.
    pub fn new(seed: u64, shares: ThrottleShares) -> Self {
        InjectedThrottling {
            seed,
            shares: Arc::new(Mutex::new(shares)),
            next: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// Changes the shares from the next attempt on (0 stops injecting).
    pub fn set_shares(&self, shares: ThrottleShares) {
        *self.shares.lock().unwrap_or_else(|e| e.into_inner()) = shares;
    }

    /// The counts so far, by operation name, and starts again from zero.
    pub fn take(&self) -> BTreeMap<String, CallCount> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether attempt number `n` of the sequence (from 0) of a service whose share is `share`
    /// (hundredths of a percent), `after` of them after the write, is throttled, and where.
    pub fn decide(seed: u64, n: u64, share: u32, after: u32) -> Throttle {
        let r = mix(seed ^ mix(n));
        if (r % 10_000) as u32 >= share {
            return Throttle::No;
        }
        if ((r >> 32) % 10_000) as u32 >= after {
            Throttle::Before
        } else {
            Throttle::After
        }
    }

    fn count(&self, operation: &str, f: impl FnOnce(&mut CallCount)) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        f(counts.entry(operation.to_owned()).or_default());
    }
}

/// The error answer of a throttled attempt, as each service gives it.
fn throttled_answer(service: Service) -> HttpResponse {
    let (status, code, content_type, body) = match service {
        Service::Ses => (
            429,
            "TooManyRequestsException",
            "application/json",
            r#"{"message":"Too many requests (injected)"}"#.to_owned(),
        ),
        _ => (
            400,
            "ProvisionedThroughputExceededException",
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (injected)"}"#.to_owned(),
        ),
    };
    let status = StatusCode::try_from(status).expect("a valid status");
    let mut response = HttpResponse::new(status, SdkBody::from(body));
    response.headers_mut().insert("x-amzn-errortype", code);
    response.headers_mut().insert("content-type", content_type);
    response
        .headers_mut()
        .insert("x-amzn-requestid", "nudge-injected-throttle");
    response
}

/// The error code of a service's error answer (`x-amzn-errortype`, without its `:` suffix).
fn error_code(response: &HttpResponse) -> Option<String> {
    if response.status().is_success() {
        return None;
    }
    let code = response
        .headers()
        .get("x-amzn-errortype")
        .map(|c| c.split(':').next().unwrap_or(c).to_owned())
        .or_else(|| {
            // `{"__type": "com.amazonaws.dynamodb.v20120810#Code", ...}`
            let body = std::str::from_utf8(response.body().bytes()?).ok()?;
            let rest = &body[body.find("\"__type\"")? + 8..];
            let rest = &rest[rest.find('"')? + 1..];
            let t = &rest[..rest.find('"')?];
            Some(t.rsplit('#').next().unwrap_or(t).to_owned())
        })
        .unwrap_or_else(|| format!("HTTP {}", response.status().as_u16()));
    Some(code)
}

impl Intercept for InjectedThrottling {
    fn name(&self) -> &'static str {
        "nudge::InjectedThrottling"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = service(cfg);
        let shares = *self.shares.lock().unwrap_or_else(|e| e.into_inner());
        let (share, after) = match service {
            Service::DynamoDb => (shares.dynamodb, shares.dynamodb_after),
            Service::Ses => (shares.ses, 0),
            Service::Other => (0, 0),
        };
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let decided = Self::decide(self.seed, n, share, after);
        cfg.interceptor_state().store_put(Decided(decided));
        // The operation's first attempt counts the call.
        let first = cfg.load::<Called>().is_none();
        cfg.interceptor_state().store_put(Called);
        self.count(&operation, |c| {
            c.calls += u64::from(first);
            c.attempts += 1;
            match decided {
                Throttle::No => {}
                Throttle::Before => c.throttled_before += 1,
                Throttle::After => c.throttled_after += 1,
            }
        });
        if decided == Throttle::Before {
            let request = context.request_mut();
            let uri: http::Uri = request.uri().parse()?;
            let scheme = uri.scheme_str().unwrap_or("http");
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or("localhost");
            request.set_uri(format!("{scheme}://{authority}{DIVERTED_PATH}"))?;
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let decided = cfg.load::<Decided>().map_or(Throttle::No, |d| d.0);
        if decided != Throttle::No {
            let (service, _) = service(cfg);
            *context.response_mut() = throttled_answer(service);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Decided>().is_some_and(|d| d.0 != Throttle::No) {
            return Ok(());
        }
        if let Some(code) = error_code(context.response()) {
            let (_, operation) = service(cfg);
            self.count(&operation, |c| *c.errors.entry(code).or_default() += 1);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if matches!(context.output_or_error(), Some(Err(_))) {
            let (_, operation) = service(cfg);
            self.count(&operation, |c| c.failed += 1);
        }
        Ok(())
    }
}

/// `inner`, letting one request through at a time (see the module documentation).
pub fn one_at_a_time(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(OneAtATime {
        inner,
        turn: Arc::new(tokio::sync::Mutex::new(())),
    })
}

/// An HTTP client whose requests wait for their turn.
#[derive(Debug, Clone)]
struct OneAtATime {
    inner: SharedHttpClient,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OneAtATimeConnector {
            inner: self.inner.http_connector(settings, components),
            turn: Arc::clone(&self.turn),
        })
    }
}

#[derive(Debug)]
struct OneAtATimeConnector {
    inner: SharedHttpConnector,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for OneAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let turn = Arc::clone(&self.turn);
        HttpConnectorFuture::new(async move {
            let _turn = turn.lock().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed throttles the same places of the sequence; another seed, others; the
    /// share and the split before/after come out as asked.
    #[test]
    fn decisions_are_a_function_of_the_seed_and_come_in_the_share_asked() {
        let run = |seed: u64| -> Vec<Throttle> {
            (0..20_000)
                .map(|n| InjectedThrottling::decide(seed, n, 2000, 5000))
                .collect()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let before = a.iter().filter(|t| **t == Throttle::Before).count();
        let after = a.iter().filter(|t| **t == Throttle::After).count();
        // 20% of 20,000 is 4,000, half of them each way: within a few standard deviations.
        assert!(
            (3_700..=4_300).contains(&(before + after)),
            "{before} + {after}"
        );
        assert!((1_750..=2_250).contains(&before), "{before}");
        assert!((0..20_000).all(|n| InjectedThrottling::decide(7, n, 0, 5000) == Throttle::No));
        assert!((0..1000).all(|n| InjectedThrottling::decide(7, n, 10_000, 0) == Throttle::Before));
    }

    /// The injected answers carry the codes the services' deserialisers and the store's and
    /// mailer's mappings read as throttling.
    #[test]
    fn the_injected_answers_are_each_services_throttling() {
        let dynamo = throttled_answer(Service::DynamoDb);
        assert_eq!(dynamo.status().as_u16(), 400);
        assert_eq!(
            error_code(&dynamo).as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
        let ses = throttled_answer(Service::Ses);
        assert_eq!(ses.status().as_u16(), 429);
        assert_eq!(
            error_code(&ses).as_deref(),
            Some("TooManyRequestsException")
        );
        // moto names its errors in the body only.
        let status = StatusCode::try_from(400).unwrap();
        let body = r#"{"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"}"#;
        let moto = HttpResponse::new(status, SdkBody::from(body));
        assert_eq!(
            error_code(&moto).as_deref(),
            Some("TransactionCanceledException")
        );
    }
}
