//! The oracle: the invariants a run must keep whatever faults it met, checked on the store
//! (read without faults) and the wrappers' log. Never a comparison with a fault-free run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::engine::state::CustomerState;
use nudge_core::journal::Happened as Journaled;
use nudge_core::runner::MAX_SEND_ATTEMPTS;
use nudge_core::store::{SendEntry, SendStatus, Store, StoreError, all_due};

use super::plan::Plan;
use super::schedule::{Happened, Record, SendFault};

/// A rule the oracle checks; each [`Violation`] names the one it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// (a) A send delivered more often than its category allows: marketing more than once;
    /// transactional email or a webhook call again after a delivery that was settled sent (a
    /// duplicate needs an ambiguous delivery before it).
    DuplicateSend,
    /// (a) A send settled `unknown` with no fault that explains it (an ambiguous answer, or a
    /// claim whose invocation never settled it).
    UnexplainedUnknown,
    /// (c) A send settled `failed` with no refusal and fewer than the maximum attempts.
    UnexplainedFailure,
    /// (c) A send settled `sent` that never left.
    SentNeverDelivered,
    /// (c) A message that left, met no fault, and was settled other than `sent` by its sender.
    DeliveredNotSettledSent,
    /// (c) A send still pending or being sent after the harness quiesced.
    Unsettled,
    /// (b) A timer due at or before the end that was never fired.
    LostTimer,
    /// (b) A customer whose stored timer is not their state's next wake (a run or date
    /// trigger that would never wake), and not set aside with a dead letter.
    WrongTimer,
    /// (b) A valid input neither processed nor dead-lettered (nor in Lambda's on-failure
    /// queue).
    InputLost,
    /// (b) An event applied more than once (its `event.received` twice in the journal).
    AppliedTwice,
    /// (d) A rejected input with no dead letter.
    NotDeadLettered,
}

/// One broken rule, with what broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What was found (customer ids and keys, never an address).
    pub detail: String,
}

/// Why a message left more than once, or a marketing email was settled unknown: the fault at
/// the ambiguous attempt before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Explained {
    /// The mailer (or receiver) took it and answered ambiguously (SES's 500, a timeout).
    AmbiguousAnswer,
    /// The invocation was abandoned after the message left, before the settle.
    CrashAfterSend,
    /// The settle after the send failed (unavailable, throttled, or a crash before it).
    SettleFailed,
    /// The invocation that claimed it ended (failed, crashed or was killed) before settling
    /// it, whether or not it had sent it.
    AbandonedClaim,
}

/// What the oracle found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Customers with a state.
    pub customers: usize,
    /// Sends in the send logs, by category (`marketing`, `transactional`, `webhook`).
    pub sends: BTreeMap<String, u64>,
    /// Messages that left (emails and webhook calls the receiver took), duplicates included.
    pub delivered: u64,
    /// Deliveries beyond the first of a send, by category and the fault that explains it.
    pub duplicates: BTreeMap<(String, Explained), u64>,
    /// Sends settled `unknown`, by category and explanation.
    pub unknown: BTreeMap<(String, Explained), u64>,
    /// Of those, marketing emails that never left (lost: at most once).
    pub marketing_lost: u64,
    /// Sends settled `failed`.
    pub failed: u64,
    /// Valid inputs checked processed (or dead-lettered).
    pub inputs_checked: usize,
    /// Rejected inputs checked dead-lettered.
    pub rejected_checked: usize,
    /// Dead letters in the store.
    pub dead_letters: usize,
    /// Active runs checked for a future wake.
    pub active_runs: usize,
    /// Timers due at or before the end, never fired (lost steps).
    pub lost_timers: usize,
    /// Everything that broke a rule.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Whether a rule broke.
    pub fn broke(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// Duplicate deliveries in all.
    pub fn duplicate_count(&self) -> u64 {
        self.duplicates.values().sum()
    }

    /// Panics, naming every violation (the first 20) and how to replay the run (`replay`: a
    /// command line), unless every rule held.
    pub fn assert_holds(&self, replay: &str) {
        if self.violations.is_empty() {
            return;
        }
        let mut text = format!(
            "the fault harness found {} violation(s):\n",
            self.violations.len()
        );
        for v in self.violations.iter().take(20) {
            text.push_str(&format!("  {:?}: {}\n", v.rule, v.detail));
        }
        text.push_str(&format!("{self}\nreplay exactly: {replay}"));
        panic!("{text}");
    }

    fn violate(&mut self, rule: Rule, detail: String) {
        self.violations.push(Violation { rule, detail });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "oracle: {} customers, {} active runs, {} valid inputs and {} rejected checked, {} dead letters",
            self.customers,
            self.active_runs,
            self.inputs_checked,
            self.rejected_checked,
            self.dead_letters
        )?;
        let sends: Vec<String> = self.sends.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(
            f,
            "  sends logged: {}; messages delivered: {}; failed: {}",
            sends.join(", "),
            self.delivered,
            self.failed
        )?;
        writeln!(f, "  duplicate deliveries: {}", self.duplicate_count())?;
        for ((category, why), n) in &self.duplicates {
            writeln!(f, "    {category}, {why:?}: {n}")?;
        }
        writeln!(
            f,
            "  settled unknown: {} (marketing never sent: {})",
            self.unknown.values().sum::<u64>(),
            self.marketing_lost
        )?;
        for ((category, why), n) in &self.unknown {
            writeln!(f, "    {category}, {why:?}: {n}")?;
        }
        write!(
            f,
            "  lost timers: {}; violations: {}",
            self.lost_timers,
            self.violations.len()
        )
    }
}

/// One delivery of a send, as the log tells it.
#[derive(Debug, Clone)]
struct Sent {
    invocation: Option<u64>,
    /// Settled sent by the same invocation after it.
    clean: bool,
    /// Why it was not, when it was not.
    why: Option<Explained>,
}

/// What the log says of one send.
#[derive(Debug, Default)]
struct History {
    deliveries: Vec<Sent>,
    /// A delivery came after a delivery that was settled sent.
    after_clean: bool,
    /// Explanations for an `unknown` settle.
    unknown_why: Option<Explained>,
    refused: bool,
    /// A delivery without a fault that its sender settled other than sent.
    missettled: bool,
}

/// Reads the log into each send's history.
fn histories(log: &[Record]) -> HashMap<String, History> {
    let mut h: HashMap<String, History> = HashMap::new();
    // Claims held per (invocation, key), and the last fault per (invocation, key).
    let mut open: HashSet<(Option<u64>, String)> = HashSet::new();
    let mut fault_of: HashMap<(Option<u64>, String), Explained> = HashMap::new();
    let mut clean_seen: HashSet<String> = HashSet::new();
    for r in log {
        let inv = r.invocation;
        match &r.what {
            Happened::Claimed { key, .. } => {
                open.insert((inv, key.clone()));
            }
            Happened::SendFault { fault, key, .. } => {
                let e = h.entry(key.clone()).or_default();
                match fault {
                    SendFault::AmbiguousDelivered | SendFault::AmbiguousNotDelivered => {
                        e.unknown_why.get_or_insert(Explained::AmbiguousAnswer);
                        fault_of.insert((inv, key.clone()), Explained::AmbiguousAnswer);
                    }
                    SendFault::CrashAfterDelivery => {
                        fault_of.insert((inv, key.clone()), Explained::CrashAfterSend);
                    }
                    SendFault::Rejected => e.refused = true,
                    _ => {}
                }
            }
            Happened::StoreFault {
                call: "settle_send",
                key: Some(key),
                fault,
                ..
            } if !matches!(
                fault,
                super::StoreFault::TimedOut | super::StoreFault::CrashAfter
            ) =>
            {
                fault_of
                    .entry((inv, key.clone()))
                    .or_insert(Explained::SettleFailed);
            }
            Happened::Delivered { key, .. } => {
                let e = h.entry(key.clone()).or_default();
                if clean_seen.contains(key) {
                    e.after_clean = true;
                }
                e.deliveries.push(Sent {
                    invocation: inv,
                    clean: false,
                    why: None,
                });
            }
            Happened::Settled { key, status, .. } => {
                open.remove(&(inv, key.clone()));
                let e = h.entry(key.clone()).or_default();
                let why = fault_of.remove(&(inv, key.clone()));
                if let Some(d) = e
                    .deliveries
                    .iter_mut()
                    .rev()
                    .find(|d| d.invocation == inv && !d.clean && d.why.is_none())
                {
                    match (why, *status) {
                        (None, SendStatus::Sent) => {
                            d.clean = true;
                            clean_seen.insert(key.clone());
                        }
                        (Some(why), _) => d.why = Some(why),
                        (None, _) => {
                            d.why = Some(Explained::AbandonedClaim);
                            e.missettled = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // Claims never settled by their invocation: it was abandoned (or failed) in between.
    for (inv, key) in open {
        let e = h.entry(key.clone()).or_default();
        let why = fault_of
            .get(&(inv, key.clone()))
            .copied()
            .unwrap_or(Explained::AbandonedClaim);
        e.unknown_why.get_or_insert(Explained::AbandonedClaim);
        for d in e
            .deliveries
            .iter_mut()
            .filter(|d| d.invocation == inv && !d.clean && d.why.is_none())
        {
            d.why = Some(why);
        }
    }
    h
}

/// Checks every rule on `store` (read directly: pass the store under the wrappers) after a
/// run of `plan` that quiesced at `end`, from the wrappers' `log`. `lambda_dlq` are the
/// inputs (indices into `plan.inputs`) left in Lambda's on-failure queue, which count as
/// kept. A store error while reading is returned: it is not a verdict.
pub async fn check<S: Store>(
    store: &S,
    plan: &Plan,
    log: &[Record],
    lambda_dlq: &[usize],
    end: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let histories = histories(log);
    let customers = all_customers(store).await?;
    report.customers = customers.len();
    let timers: HashMap<String, DateTime<Utc>> =
        all_due(store, end + TimeDelta::days(365 * 20), 500)
            .await?
            .into_iter()
            .map(|(at, c)| (c, at))
            .collect();
    let letters = store.dead_letters(usize::MAX >> 1).await?;
    report.dead_letters = letters.len();
    // Customers set aside: their wake failed with their own error, kept as a `timer` dead
    // letter whose body names them.
    let set_aside: HashSet<String> = letters
        .iter()
        .filter(|l| l.source == "timer")
        .filter_map(|l| {
            let body: serde_json::Value = serde_json::from_str(&l.body).ok()?;
            Some(body.get("customer_id")?.as_str()?.to_owned())
        })
        .collect();
    let mut received: HashMap<String, usize> = HashMap::new();
    for (customer, state) in &customers {
        check_timer(
            &mut report,
            customer,
            state,
            timers.get(customer),
            &set_aside,
            end,
        );
        for entry in store.sends(customer).await? {
            check_send(
                &mut report,
                &entry,
                histories.get(&entry.record.idempotency_key),
            );
        }
        for entry in store.journal(customer).await? {
            if let Journaled::EventReceived { event_id, .. } = entry.what {
                *received.entry(event_id).or_default() += 1;
            }
        }
    }
    for (event_id, n) in &received {
        if *n > 1 {
            report.violate(
                Rule::AppliedTwice,
                format!("event {event_id} applied {n} times"),
            );
        }
    }
    check_inputs(store, &mut report, plan, &letters, lambda_dlq).await?;
    report.delivered = log
        .iter()
        .filter(|r| matches!(r.what, Happened::Delivered { .. }))
        .count() as u64;
    Ok(report)
}

/// Every customer's id and decoded state (a state that does not decode is skipped: the
/// runner dead-letters it).
async fn all_customers<S: Store>(store: &S) -> Result<Vec<(String, CustomerState)>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.customers(cursor.as_deref(), 500).await?;
        for (id, record) in page.customers {
            if let Ok(state) = serde_json::from_slice::<CustomerState>(&record.state) {
                out.push((id, state));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// (b): the customer's stored timer is their state's next wake, in the future.
fn check_timer(
    report: &mut Report,
    customer: &str,
    state: &CustomerState,
    stored: Option<&DateTime<Utc>>,
    set_aside: &HashSet<String>,
    end: DateTime<Utc>,
) {
    report.active_runs += state.runs.len();
    let expected = state.next_wake();
    if let Some(at) = stored
        && *at <= end
    {
        report.lost_timers += 1;
        report.violate(
            Rule::LostTimer,
            format!("customer {customer}: timer due at {at} was never fired (end {end})"),
        );
        return;
    }
    if stored == expected.as_ref() {
        return;
    }
    if stored.is_none() && set_aside.contains(customer) {
        return;
    }
    if expected.is_some_and(|at| at <= end) {
        report.lost_timers += 1;
    }
    report.violate(
        Rule::WrongTimer,
        format!("customer {customer}: stored timer {stored:?}, state's next wake {expected:?}"),
    );
}

/// (a) and (c) for one send.
fn check_send(report: &mut Report, entry: &SendEntry, history: Option<&History>) {
    let record = &entry.record;
    let category = record.category.clone();
    *report.sends.entry(category.clone()).or_default() += 1;
    let key = &record.idempotency_key;
    let empty = History::default();
    let h = history.unwrap_or(&empty);
    let delivered = h.deliveries.len();
    let clean = h.deliveries.iter().filter(|d| d.clean).count();
    let marketing = !record.resend_when_unknown();
    if (marketing && delivered > 1) || clean > 1 || h.after_clean {
        report.violate(
            Rule::DuplicateSend,
            format!(
                "{category} {} {key} of customer {}: delivered {delivered} times ({clean} settled sent)",
                record.kind.as_str(),
                record.customer_id
            ),
        );
    }
    // Every delivery but the last must be explained by its own ambiguous attempt.
    for d in h.deliveries.iter().take(delivered.saturating_sub(1)) {
        let why = d.why.unwrap_or(Explained::AbandonedClaim);
        *report
            .duplicates
            .entry((category.clone(), why))
            .or_default() += 1;
    }
    if h.missettled {
        report.violate(
            Rule::DeliveredNotSettledSent,
            format!(
                "{category} {key} of customer {}: delivered without a fault, settled otherwise",
                record.customer_id
            ),
        );
    }
    match entry.status {
        SendStatus::Pending | SendStatus::Sending => report.violate(
            Rule::Unsettled,
            format!(
                "{category} {key} of customer {} is still {} after quiescence",
                record.customer_id,
                entry.status.as_str()
            ),
        ),
        SendStatus::Sent if delivered == 0 => report.violate(
            Rule::SentNeverDelivered,
            format!(
                "{category} {key} of customer {} settled sent, never delivered",
                record.customer_id
            ),
        ),
        SendStatus::Sent => {}
        SendStatus::Failed => {
            report.failed += 1;
            if !h.refused && entry.attempts < MAX_SEND_ATTEMPTS {
                report.violate(
                    Rule::UnexplainedFailure,
                    format!(
                        "{category} {key} of customer {} failed after {} attempts, never refused",
                        record.customer_id, entry.attempts
                    ),
                );
            }
        }
        SendStatus::Unknown => match h.unknown_why {
            Some(why) => {
                *report.unknown.entry((category.clone(), why)).or_default() += 1;
                if marketing && delivered == 0 {
                    report.marketing_lost += 1;
                }
            }
            None => report.violate(
                Rule::UnexplainedUnknown,
                format!(
                    "{category} {key} of customer {} settled unknown without a fault",
                    record.customer_id
                ),
            ),
        },
    }
}

/// (b) and (d): every valid input processed or dead-lettered, every invalid one
/// dead-lettered (or in Lambda's on-failure queue).
async fn check_inputs<S: Store>(
    store: &S,
    report: &mut Report,
    plan: &Plan,
    letters: &[nudge_core::store::DeadLetter],
    lambda_dlq: &[usize],
) -> Result<(), StoreError> {
    let in_dlq: HashSet<usize> = lambda_dlq.iter().copied().collect();
    let lettered_ids: HashSet<&str> = letters
        .iter()
        .filter_map(|l| l.event_id.as_deref())
        .collect();
    let lettered_bodies: HashSet<&str> = letters.iter().map(|l| l.body.as_str()).collect();
    for (index, input) in plan.inputs.iter().enumerate() {
        if in_dlq.contains(&index) {
            continue;
        }
        let id = input.event_id.as_deref();
        if input.valid {
            report.inputs_checked += 1;
            let id = id.unwrap_or_default();
            if !store.is_processed(id).await? && !lettered_ids.contains(id) {
                report.violate(Rule::InputLost, format!("event {id} was never processed"));
            }
        } else {
            report.rejected_checked += 1;
            let kept = lettered_bodies.contains(input.text.as_str())
                || id.is_some_and(|id| lettered_ids.contains(id));
            if !kept {
                report.violate(
                    Rule::NotDeadLettered,
                    format!("rejected input {index} ({id:?}) has no dead letter"),
                );
            }
        }
    }
    Ok(())
}
