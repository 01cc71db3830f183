//! The seeded schedule every wrapper draws its faults from, and the log of what they did.

use std::sync::{Arc, Mutex, MutexGuard};

use nudge_core::store::{SendKind, SendStatus};

use super::invocation::current_invocation;

/// A small deterministic PRNG (SplitMix64): the same seed gives the same draws on every
/// platform and release, so a failing seed replays exactly.
#[derive(Debug, Clone)]
pub struct Prng {
    state: u64,
}

impl Prng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Prng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: no modulo bias worth a test's concern, and no loop.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A generator of its own for a sub-stream, drawn from this one (so adding draws to one
    /// part of a run does not move another's).
    pub fn fork(&mut self) -> Prng {
        Prng::new(self.next_u64())
    }
}

/// How often each wrapper injects a fault: the probability, per call, that the call fails in
/// one of the ways its wrapper knows (the kind is then drawn uniformly among them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// Per store call.
    pub store: f64,
    /// Per mailer send.
    pub mailer: f64,
    /// Per webhook call.
    pub webhooks: f64,
}

impl FaultRates {
    /// No faults.
    pub const NONE: FaultRates = FaultRates {
        store: 0.0,
        mailer: 0.0,
        webhooks: 0.0,
    };

    /// The harness's default: 2% of store calls, 10% of sends and of webhook calls. An ingest
    /// makes about ten store calls, so about one delivery in five meets a fault.
    pub const DEFAULT: FaultRates = FaultRates {
        store: 0.02,
        mailer: 0.10,
        webhooks: 0.10,
    };
}

/// What a [`FaultyStore`](super::FaultyStore) did to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreFault {
    /// Not made; the caller got [`StoreError::Unavailable`](nudge_core::store::StoreError).
    Unavailable,
    /// Not made; the caller got [`StoreError::Throttled`](nudge_core::store::StoreError).
    Throttled,
    /// Made (the write applied), and the caller got `Unavailable` all the same: a timeout
    /// after the request reached the store.
    TimedOut,
    /// The invocation was abandoned before the call.
    CrashBefore,
    /// The invocation was abandoned after the call applied, before the caller saw its answer.
    CrashAfter,
}

impl StoreFault {
    /// The faults a read can meet (a timeout or a crash after a read changes nothing more than
    /// the same before it).
    pub(super) const READS: [StoreFault; 3] = [
        StoreFault::Unavailable,
        StoreFault::Throttled,
        StoreFault::CrashBefore,
    ];
    /// The faults a write can meet.
    pub(super) const WRITES: [StoreFault; 5] = [
        StoreFault::Unavailable,
        StoreFault::Throttled,
        StoreFault::TimedOut,
        StoreFault::CrashBefore,
        StoreFault::CrashAfter,
    ];

    /// Whether the invocation was abandoned.
    pub fn is_crash(self) -> bool {
        matches!(self, StoreFault::CrashBefore | StoreFault::CrashAfter)
    }
}

/// What a [`FaultyMailer`](super::FaultyMailer) or [`FaultyWebhooks`](super::FaultyWebhooks)
/// did to a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendFault {
    /// Not delivered; a retryable failure (SES unreachable, a webhook's 503).
    Unavailable,
    /// Not delivered; throttled (SES's rate, a webhook's 429).
    Throttled,
    /// Not delivered; refused for good (SES's rejection, a webhook's 400).
    Rejected,
    /// Delivered, and the caller was told it may not have been (SES's 500 after taking the
    /// message, a webhook that timed out after its receiver took the call).
    AmbiguousDelivered,
    /// Not delivered, and the caller was told it may have been.
    AmbiguousNotDelivered,
    /// The invocation was abandoned before the send.
    CrashBefore,
    /// The invocation was abandoned after the send left, before the caller saw the answer.
    CrashAfterDelivery,
}

impl SendFault {
    /// Every kind, drawn from uniformly.
    pub(super) const ALL: [SendFault; 7] = [
        SendFault::Unavailable,
        SendFault::Throttled,
        SendFault::Rejected,
        SendFault::AmbiguousDelivered,
        SendFault::AmbiguousNotDelivered,
        SendFault::CrashBefore,
        SendFault::CrashAfterDelivery,
    ];

    /// Whether the message left.
    pub fn delivers(self) -> bool {
        matches!(
            self,
            SendFault::AmbiguousDelivered | SendFault::CrashAfterDelivery
        )
    }

    /// Whether the invocation was abandoned.
    pub fn is_crash(self) -> bool {
        matches!(self, SendFault::CrashBefore | SendFault::CrashAfterDelivery)
    }
}

/// One thing a wrapper did or saw, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// A store call met a fault.
    StoreFault {
        /// The [`Store`](nudge_core::store::Store) method.
        call: &'static str,
        /// What was done to it.
        fault: StoreFault,
        /// The customer the call named, if any.
        customer: Option<String>,
        /// The idempotency key the call named, if any.
        key: Option<String>,
    },
    /// A send (an email or a webhook call) met a fault.
    SendFault {
        /// An email or a webhook call.
        kind: SendKind,
        /// What was done to it.
        fault: SendFault,
        /// Its customer.
        customer: String,
        /// Its idempotency key.
        key: String,
    },
    /// A claim of a send succeeded (the inner store's answer was a claim), whatever the
    /// caller then saw.
    Claimed {
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
    },
    /// A settle of a send applied in the inner store, whatever the caller then saw.
    Settled {
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
        /// The status it settled in.
        status: SendStatus,
    },
    /// A message left: the inner mailer (or webhook caller) took it.
    Delivered {
        /// An email or a webhook call.
        kind: SendKind,
        /// The customer.
        customer: String,
        /// The idempotency key.
        key: String,
    },
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// How many draws the schedule had made when this happened (the seed step): with the
    /// seed, where in the run it was.
    pub step: u64,
    /// The invocation it happened in ([`Invocation`](super::Invocation)'s id), if any.
    pub invocation: Option<u64>,
    /// What happened.
    pub what: Happened,
}

/// Counts of the faults injected, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Store calls that failed (unavailable, throttled, timed out after applying).
    pub store_errors: u64,
    /// Sends that failed (unavailable, throttled, refused) or answered ambiguously.
    pub send_errors: u64,
    /// Ambiguous answers ([`SendFault::AmbiguousDelivered`] and
    /// [`SendFault::AmbiguousNotDelivered`]).
    pub ambiguous: u64,
    /// Invocations abandoned by a wrapper (store or send crashes).
    pub crashes: u64,
}

/// The schedule every wrapper of one run shares: one [`Prng`] seeded for the run, the rates,
/// a switch (faults are off while the harness quiesces), and the log.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rng: Prng,
    rates: FaultRates,
    enabled: bool,
    draws: u64,
    log: Vec<Record>,
}

impl Faults {
    /// A schedule drawing from `seed` at `rates`, enabled.
    pub fn new(seed: u64, rates: FaultRates) -> Arc<Self> {
        Arc::new(Faults {
            state: Mutex::new(State {
                rng: Prng::new(seed),
                rates,
                enabled: true,
                draws: 0,
                log: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns faults on or off (the log goes on either way).
    pub fn set_enabled(&self, enabled: bool) {
        self.lock().enabled = enabled;
    }

    /// The log so far, in the order things happened.
    pub fn log(&self) -> Vec<Record> {
        self.lock().log.clone()
    }

    /// How many faults of each family were injected so far.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.lock().log {
            match &r.what {
                Happened::StoreFault { fault, .. } if fault.is_crash() => t.crashes += 1,
                Happened::StoreFault { .. } => t.store_errors += 1,
                Happened::SendFault { fault, .. } => {
                    if fault.is_crash() {
                        t.crashes += 1;
                    } else {
                        t.send_errors += 1;
                    }
                    if matches!(
                        fault,
                        SendFault::AmbiguousDelivered | SendFault::AmbiguousNotDelivered
                    ) {
                        t.ambiguous += 1;
                    }
                }
                _ => {}
            }
        }
        t
    }

    /// Logs `what` in the current invocation.
    pub fn record(&self, what: Happened) {
        let mut s = self.lock();
        let step = s.draws;
        s.log.push(Record {
            step,
            invocation: current_invocation(),
            what,
        });
    }

    /// Draws whether a call fails, and how, among `kinds` at `rate` (picked by `rate_of`).
    /// Crashes are drawn only inside an [`Invocation`](super::Invocation): outside one there
    /// is nothing to abandon.
    pub(super) fn draw<K: Copy>(
        &self,
        rate_of: impl Fn(&FaultRates) -> f64,
        kinds: &[K],
        is_crash: impl Fn(K) -> bool,
    ) -> Option<K> {
        let mut s = self.lock();
        if !s.enabled || kinds.is_empty() {
            return None;
        }
        let rate = rate_of(&s.rates);
        if rate <= 0.0 {
            return None;
        }
        s.draws += 1;
        if !s.rng.chance(rate) {
            return None;
        }
        let kind = kinds[s.rng.below(kinds.len() as u64) as usize];
        if is_crash(kind) && current_invocation().is_none() {
            return None;
        }
        Some(kind)
    }
}
