//! [`FaultInjector`]: an SDK interceptor that makes the requests of the clients it is added to
//! ([`Clients::with_interceptor`](crate::Clients::with_interceptor)) fail as AWS can make them
//! fail, on a seeded schedule: for the fault harness that runs the real Lambda handlers against
//! an emulator (moto), where the store and the mailer are the concrete `DynamoDbStore` and
//! `SesMailer` and cannot be wrapped. Not used by the functions themselves.
//!
//! Each attempt (an SDK retry is an attempt of its own) draws one [`Fault`] or none, once the
//! injector is [armed](FaultInjector::arm):
//! - [`Fault::Refused`]: the connection is refused (the request goes to a closed port): the
//!   service certainly did nothing, the SDK sees a connection error;
//! - [`Fault::Throttled`]: the service answers that it throttled the request, and did nothing
//!   (the request is turned into a harmless one before it leaves: DynamoDB's `ListTables`, an
//!   SES path that names nothing);
//! - [`Fault::AnswerLost`]: the request reaches the service and is done, and the caller gets a
//!   500 or a broken answer instead of the real one (the write happened, the caller does not
//!   know);
//! - [`Fault::CrashBefore`] and [`Fault::CrashAfter`]: the process "dies" before the request
//!   leaves, or after the service did it and before its answer is read. The injector is then
//!   [crashed](FaultInjector::is_crashed): every later request of its clients is refused and
//!   every answer still on its way is lost, until [`FaultInjector::restart`]; the caller races
//!   its invocation against [`FaultInjector::crash`] and drops the invocation when it trips,
//!   as Lambda abandons a sandbox that died.
//!
//! The schedule is a pure function of the seed and the order of the attempts: the same seed
//! and the same sequence of requests give the same faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// A fault injected into one request attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The connection was refused: nothing reached the service.
    Refused,
    /// The service throttled the request and did nothing.
    Throttled,
    /// The service did the request; its answer was replaced by an error.
    AnswerLost,
    /// The process died before the request left.
    CrashBefore,
    /// The process died after the service did the request, before its answer was read.
    CrashAfter,
}

impl Fault {
    /// Every fault, in the order of the rates.
    pub const ALL: [Fault; 5] = [
        Fault::Refused,
        Fault::Throttled,
        Fault::AnswerLost,
        Fault::CrashBefore,
        Fault::CrashAfter,
    ];

    /// Whether the service did the request (its effect is there) although the caller got an
    /// error or nothing.
    pub fn reached_the_service(self) -> bool {
        matches!(self, Fault::AnswerLost | Fault::CrashAfter)
    }
}

/// The chance of each fault per request attempt, in parts per million; what is left is no
/// fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultRates {
    /// [`Fault::Refused`].
    pub refused: u32,
    /// [`Fault::Throttled`].
    pub throttled: u32,
    /// [`Fault::AnswerLost`].
    pub answer_lost: u32,
    /// [`Fault::CrashBefore`].
    pub crash_before: u32,
    /// [`Fault::CrashAfter`].
    pub crash_after: u32,
}

impl FaultRates {
    fn of(&self, fault: Fault) -> u32 {
        match fault {
            Fault::Refused => self.refused,
            Fault::Throttled => self.throttled,
            Fault::AnswerLost => self.answer_lost,
            Fault::CrashBefore => self.crash_before,
            Fault::CrashAfter => self.crash_after,
        }
    }
}

/// What the injector saw a request do, for an oracle that must know what reached the
/// services whatever the callers saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A `SendEmail` attempt of the message with this `Message-ID` (without angle brackets;
    /// Nudge derives it from the send's idempotency key; empty when the body could not be
    /// read), the fault injected into it, and whether SES took it: `Some(true)` when it
    /// answered with success (whatever answer the caller then got), `Some(false)` when it
    /// refused or the request never reached it, `None` when the request left and no answer
    /// was read (the process died while it was in flight, or the connection broke): only
    /// SES can then tell.
    Mail {
        /// The message's `Message-ID`.
        message_id: String,
        /// The fault, if any.
        fault: Option<Fault>,
        /// Whether SES took the message, when known.
        delivered: Option<bool>,
    },
    /// A claim of a send (an `UpdateItem` of its send-log item that marks it `sending`) that
    /// left: `applied` is `Some(true)` when DynamoDB applied it (whatever the caller then
    /// saw), `Some(false)` when it did not, `None` when no answer was read (the process died
    /// while it was in flight: it may have applied).
    Claimed {
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
        /// Whether it applied, when known.
        applied: Option<bool>,
    },
    /// A settle of a send applied in DynamoDB, whatever the caller then saw.
    Settled {
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
        /// The status it settled in (`sent`, `pending`, `failed`, `unknown`).
        status: String,
    },
    /// A settle of a send never reached DynamoDB (refused, throttled, or the process died
    /// before it).
    SettleFault {
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
        /// The fault.
        fault: Fault,
    },
}

/// One observation, with the order it was seen in and the invocation it belongs to
/// ([`FaultInjector::begin_invocation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The order it was seen in, across every injector of the process.
    pub seq: u64,
    /// The invocation's id.
    pub invocation: u64,
    /// What was seen.
    pub what: Observed,
}

/// The faults injected so far, per service operation (`DynamoDB.TransactWriteItems`,
/// `SESv2.SendEmail`, ...), and the attempts seen while armed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Request attempts seen while armed (faulted or not).
    pub attempts: u64,
    /// Faults injected, by operation and fault.
    pub injected: BTreeMap<(String, Fault), u64>,
    /// Attempts refused or answered with an error because the injector had crashed.
    pub after_crash: u64,
}

impl FaultCounts {
    /// Faults of kind `fault`, all operations.
    pub fn of(&self, fault: Fault) -> u64 {
        self.injected
            .iter()
            .filter(|((_, f), _)| *f == fault)
            .map(|(_, n)| n)
            .sum()
    }

    /// Faults of kind `fault` injected into operation `operation` (`Service.Operation`).
    pub fn of_operation(&self, operation: &str, fault: Fault) -> u64 {
        self.injected
            .get(&(operation.to_owned(), fault))
            .copied()
            .unwrap_or(0)
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &FaultCounts) {
        self.attempts += other.attempts;
        self.after_crash += other.after_crash;
        for (key, n) in &other.injected {
            *self.injected.entry(key.clone()).or_default() += n;
        }
    }
}

#[derive(Debug)]
struct State {
    rng: fastrand::Rng,
    rates: FaultRates,
    armed: bool,
    counts: FaultCounts,
    /// What the requests did (armed or not).
    log: Vec<Observation>,
    /// The invocation under way.
    invocation: u64,
}

/// Injects the faults of a seeded schedule into the requests of the clients it is added to
/// (see the module documentation). Clones share the schedule, the counts and the crash.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    state: Arc<Mutex<State>>,
    crashed: Arc<tokio::sync::watch::Sender<bool>>,
}

/// What was decided for an attempt before it left, read again when its answer comes.
#[derive(Debug, Clone)]
struct Planned(Option<Fault>, Option<SendUpdate>, Option<usize>);

/// A claim or a settle of a send-log item, read from an `UpdateItem` request.
#[derive(Debug, Clone)]
struct SendUpdate {
    customer: String,
    key: String,
    /// `None` for a claim; the status set for a settle.
    settles_to: Option<String>,
}

/// The JSON string value that follows `marker` in `body` (one without escapes).
fn string_after<'a>(body: &'a str, marker: &str) -> Option<&'a str> {
    let value = body.split_once(marker)?.1.split_once('"')?.0;
    (!value.contains('\\')).then_some(value)
}

/// The send-log update an `UpdateItem` body makes, if it is one: its key is
/// `{"pk":{"S":"C#<customer>"},"sk":{"S":"S#<key>"}}`; a claim sets `pst` first, a settle sets
/// the status to `:to`.
fn send_update(body: &[u8]) -> Option<SendUpdate> {
    let body = std::str::from_utf8(body).ok()?;
    let customer = string_after(body, r#""pk":{"S":"C#"#)?.to_owned();
    let key = string_after(body, r#""sk":{"S":"S#"#)?.to_owned();
    let expression = string_after(body, r#""UpdateExpression":""#)?;
    let settles_to = if expression.starts_with("SET pst = ") {
        None
    } else {
        Some(string_after(body, r#"":to":{"S":""#)?.to_owned())
    };
    Some(SendUpdate {
        customer,
        key,
        settles_to,
    })
}

impl Storable for Planned {
    type Storer = StoreReplace<Self>;
}

/// Where a refused request is sent: a port nothing listens on.
const CLOSED_PORT: &str = "http://127.0.0.1:1/";

impl FaultInjector {
    /// An injector drawing from `seed` at `rates`, disarmed (no fault until [`FaultInjector::arm`]).
    pub fn new(seed: u64, rates: FaultRates) -> Self {
        FaultInjector {
            state: Arc::new(Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                rates,
                armed: false,
                counts: FaultCounts::default(),
                log: Vec::new(),
                invocation: 0,
            })),
            crashed: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Starts (`true`) or stops injecting faults. A crash stays until [`FaultInjector::restart`].
    pub fn arm(&self, armed: bool) {
        self.lock().armed = armed;
    }

    /// The faults injected so far.
    pub fn counts(&self) -> FaultCounts {
        self.lock().counts.clone()
    }

    /// What the requests did so far.
    pub fn observations(&self) -> Vec<Observation> {
        self.lock().log.clone()
    }

    /// Invocation `id` starts on the clients: what they do from now on is its.
    pub fn begin_invocation(&self, id: u64) {
        self.lock().invocation = id;
    }

    /// Whether a crash fault tripped and the process has not been restarted.
    pub fn is_crashed(&self) -> bool {
        *self.crashed.borrow()
    }

    /// Completes once a crash fault trips (at once when one has and no restart came since).
    pub async fn crash(&self) {
        let mut watch = self.crashed.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail while it is awaited.
        let _ = watch.wait_for(|crashed| *crashed).await;
    }

    /// The process started again after a crash: requests go out again.
    pub fn restart(&self) {
        self.crashed.send_replace(false);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws the fault of one attempt of `operation` (none when disarmed).
    fn draw(&self, operation: &str) -> Option<Fault> {
        let mut state = self.lock();
        if !state.armed {
            return None;
        }
        state.counts.attempts += 1;
        let roll = state.rng.u32(0..1_000_000);
        let mut bound = 0u32;
        let fault = Fault::ALL.into_iter().find(|f| {
            bound = bound.saturating_add(state.rates.of(*f));
            roll < bound
        })?;
        *state
            .counts
            .injected
            .entry((operation.to_owned(), fault))
            .or_default() += 1;
        Some(fault)
    }

    fn count_after_crash(&self) {
        self.lock().counts.after_crash += 1;
    }

    /// Trips the crash.
    fn trip(&self) {
        self.crashed.send_replace(true);
    }

    /// Logs `what`, returning its place in the log.
    fn observe(&self, what: Observed) -> usize {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut state = self.lock();
        let invocation = state.invocation;
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        state.log.push(Observation {
            seq,
            invocation,
            what,
        });
        state.log.len() - 1
    }
}

/// A plain-HTTP client (for an emulator on `http://`) that lets one request of the process
/// be in flight at a time, whichever client makes it.
///
/// moto's server is threaded and its DynamoDB is not safe under it: a `TransactWriteItems`
/// that is cancelled (a failed condition) puts back a copy of the whole table taken before it
/// began, undoing every write other requests made meanwhile (moto 5's
/// `transact_write_items`). DynamoDB serialises conflicting writes per item; one request at a
/// time is what gives moto that. Invocations still interleave between their requests.
pub fn one_request_at_a_time() -> SharedHttpClient {
    SharedHttpClient::new(OneAtATime {
        inner: aws_smithy_http_client::Builder::new().build_http(),
        lock: Arc::new(tokio::sync::Mutex::new(())),
    })
}

#[derive(Debug, Clone)]
struct OneAtATime {
    inner: SharedHttpClient,
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// The connector of [`OneAtATime`].
#[derive(Debug)]
struct OneAtATimeConnector {
    inner: SharedHttpConnector,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OneAtATimeConnector {
            inner: self.inner.http_connector(settings, components),
            lock: Arc::clone(&self.lock),
        })
    }
}

impl HttpConnector for OneAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let lock = Arc::clone(&self.lock);
        HttpConnectorFuture::new(async move {
            // Waited for by the caller: a caller dropped before its turn (a crash) never sends.
            let one = lock.lock_owned().await;
            // Sent from a task of its own: a caller dropped mid-request does not free the lock
            // while moto still works on the request; it is held until the answer's head came
            // (moto writes an answer once it is done).
            let call = tokio::spawn(async move {
                let _one = one;
                inner.call(request).await
            });
            call.await.map_err(|e| {
                aws_smithy_runtime_api::client::result::ConnectorError::other(e.into(), None)
            })?
        })
    }
}

/// `Service.Operation` of a request.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(
        || "unknown".to_owned(),
        |m| format!("{}.{}", m.service(), m.name()),
    )
}

fn is_dynamodb(operation: &str) -> bool {
    operation.starts_with("DynamoDB.")
}

/// The `Message-ID` of the raw message in an SES v2 `SendEmail` request body
/// (`{"Content":{"Raw":{"Data":"<base64>"}},...}`).
fn message_id_of(body: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let body = std::str::from_utf8(body).ok()?;
    let data = body.split_once(r#""Data":""#)?.1.split_once('"')?.0;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let raw = String::from_utf8_lossy(&raw);
    header_message_id(&raw)
}

/// The `Message-ID` header's value in a raw message, without angle brackets.
pub fn header_message_id(raw: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id").then(|| {
            value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// An error answer of the service of `operation`: throttling, or a 500.
fn error_answer(operation: &str, throttled: bool) -> HttpResponse {
    let (status, code, content_type) = match (is_dynamodb(operation), throttled) {
        (true, true) => (400, "ThrottlingException", "application/x-amz-json-1.0"),
        (true, false) => (500, "InternalServerError", "application/x-amz-json-1.0"),
        (false, true) => (429, "TooManyRequestsException", "application/json"),
        (false, false) => (500, "InternalFailure", "application/json"),
    };
    let body = if is_dynamodb(operation) {
        format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected by the fault harness"}}"#
        )
    } else {
        r#"{"message":"injected by the fault harness"}"#.to_owned()
    };
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("the statuses above are valid"),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", content_type);
    response.headers_mut().insert("x-amzn-errortype", code);
    response
}

impl Intercept for FaultInjector {
    fn name(&self) -> &'static str {
        "nudge::FaultInjector"
    }

    /// Draws the attempt's fault; refuses, throttles or crashes before it leaves.
    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = operation(cfg);
        let fault = if self.is_crashed() {
            self.count_after_crash();
            Some(Fault::CrashBefore)
        } else {
            self.draw(&operation)
        };
        let body = context.request().body().bytes();
        let (update, mail) = match operation.as_str() {
            "SESv2.SendEmail" => {
                let message_id = body.and_then(message_id_of).unwrap_or_default();
                let never_left = matches!(
                    fault,
                    Some(Fault::Refused | Fault::Throttled | Fault::CrashBefore)
                );
                let at = self.observe(Observed::Mail {
                    message_id,
                    fault,
                    delivered: never_left.then_some(false),
                });
                (None, Some(at))
            }
            "DynamoDB.UpdateItem" => {
                let update = body.and_then(send_update);
                let claim = match &update {
                    Some(u)
                        if u.settles_to.is_none()
                            && !fault.is_some_and(|f| {
                                !f.reached_the_service() && f != Fault::AnswerLost
                            }) =>
                    {
                        Some(self.observe(Observed::Claimed {
                            customer: u.customer.clone(),
                            key: u.key.clone(),
                            applied: None,
                        }))
                    }
                    _ => None,
                };
                (update, claim)
            }
            _ => (None, None),
        };
        if let (Some(u), Some(f @ (Fault::Refused | Fault::Throttled | Fault::CrashBefore))) =
            (&update, fault)
            && u.settles_to.is_some()
        {
            let _ = self.observe(Observed::SettleFault {
                customer: u.customer.clone(),
                key: u.key.clone(),
                fault: f,
            });
        }
        let request = context.request_mut();
        match fault {
            Some(Fault::Refused) => request.set_uri(CLOSED_PORT)?,
            Some(Fault::CrashBefore) => {
                self.trip();
                request.set_uri(CLOSED_PORT)?;
            }
            Some(Fault::Throttled) if is_dynamodb(&operation) => {
                // A harmless request in its place: the service does nothing.
                request
                    .headers_mut()
                    .insert("x-amz-target", "DynamoDB_20120810.ListTables");
                request.headers_mut().insert("content-length", "2");
                *request.body_mut() = SdkBody::from("{}");
            }
            Some(Fault::Throttled) => {
                // A path that names nothing: the service does nothing.
                request.headers_mut().insert("content-length", "0");
                *request.body_mut() = SdkBody::empty();
                let uri = request.uri().to_owned();
                let base = uri.find("/v2/").map_or(uri.as_str(), |i| &uri[..i]);
                request.set_uri(format!("{base}/v2/email/nudge-fault-harness"))?;
            }
            _ => {}
        }
        cfg.interceptor_state()
            .store_put(Planned(fault, update, mail));
        Ok(())
    }

    /// Replaces the answer of a throttled, lost or crashed attempt.
    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = operation(cfg);
        let (planned, update, mail) = cfg
            .load::<Planned>()
            .map_or((None, None, None), |p| (p.0, p.1.clone(), p.2));
        // Whether SES took the message, or DynamoDB applied the claim (the answer, before any
        // fault replaces it).
        if let Some(at) = mail
            && !matches!(planned, Some(Fault::Throttled))
        {
            let success = context.response().status().is_success();
            match self.lock().log.get_mut(at).map(|o| &mut o.what) {
                Some(Observed::Mail { delivered, .. }) => *delivered = Some(success),
                Some(Observed::Claimed { applied, .. }) => *applied = Some(success),
                _ => {}
            }
        }
        // A send update the service applied (its answer, before any fault replaces it).
        if let Some(u) = update
            && let Some(status) = u.settles_to
            && context.response().status().is_success()
            && !matches!(planned, Some(Fault::Throttled))
        {
            let _ = self.observe(Observed::Settled {
                customer: u.customer,
                key: u.key,
                status,
            });
        }
        let fault = match planned {
            None | Some(Fault::AnswerLost | Fault::CrashAfter) if self.is_crashed() => {
                // An answer that arrives after the process died is never read.
                if planned.is_none() {
                    self.count_after_crash();
                }
                Fault::CrashAfter
            }
            None | Some(Fault::Refused | Fault::CrashBefore) => return Ok(()),
            Some(f) => f,
        };
        match fault {
            Fault::Throttled => *context.response_mut() = error_answer(&operation, true),
            Fault::CrashAfter => {
                self.trip();
                *context.response_mut() = error_answer(&operation, false);
            }
            _ => {
                // Half the lost answers are a 500, half a connection cut mid-answer.
                let cut = self.lock().rng.bool();
                if cut {
                    return Err("the connection broke before the answer was read (injected)".into());
                }
                *context.response_mut() = error_answer(&operation, false);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_seeds_and_follows_the_rates() {
        let rates = FaultRates {
            refused: 100_000,
            throttled: 100_000,
            answer_lost: 100_000,
            crash_before: 0,
            crash_after: 200_000,
        };
        let draws = |seed| {
            let injector = FaultInjector::new(seed, rates);
            assert_eq!(injector.draw("DynamoDB.GetItem"), None, "disarmed");
            injector.arm(true);
            let faults: Vec<_> = (0..10_000)
                .map(|_| injector.draw("DynamoDB.GetItem"))
                .collect();
            (faults, injector.counts())
        };
        let (a, counts) = draws(7);
        assert_eq!(a, draws(7).0, "the same seed, the same faults");
        assert_ne!(a, draws(8).0, "another seed, other faults");
        assert_eq!(counts.attempts, 10_000);
        assert_eq!(counts.of(Fault::CrashBefore), 0);
        for (fault, share) in [
            (Fault::Refused, 0.1),
            (Fault::Throttled, 0.1),
            (Fault::AnswerLost, 0.1),
            (Fault::CrashAfter, 0.2),
        ] {
            let n = counts.of_operation("DynamoDB.GetItem", fault) as f64;
            assert!((n / 10_000.0 - share).abs() < 0.02, "{fault:?}: {n}");
        }
        let none = a.iter().filter(|f| f.is_none()).count() as f64;
        assert!((none / 10_000.0 - 0.5).abs() < 0.02, "{none}");
    }

    #[tokio::test]
    async fn a_crash_holds_until_the_restart() {
        let injector = FaultInjector::new(1, FaultRates::default());
        assert!(!injector.is_crashed());
        injector.crashed.send_replace(true);
        assert!(injector.is_crashed());
        // Tripped before the wait began: the wait ends at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), injector.crash())
            .await
            .expect("the crash is seen");
        injector.restart();
        assert!(!injector.is_crashed());
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), injector.crash()).await;
        assert!(waited.is_err(), "no crash after the restart");
    }
}
