//! `nudge report`: per workflow and step, what the workflows did — runs started, refused and
//! ended (by reason), emails sent, deferred and skipped (by reason), what became of the mail
//! (delivered, opened, clicked, bounced, complained, unsubscribed), goals reached and the
//! conversion rate.
//!
//! Where the numbers come from:
//! - **The journal** ([`nudge_core::journal`]) of every customer: `run.started`,
//!   `run.refused`, `run.ended` (a `goal` ending is a goal reached), `email.sent`,
//!   `email.deferred`, `email.skipped`, and the feedback events the runner applied
//!   (`event.received` of type `email.delivered`, `email.opened`, `email.clicked`,
//!   `email.bounced`, `email.complained`, `customer.unsubscribed`: in `simulate`, the
//!   events file's; on AWS, the one-click unsubscribe and any such event a store sends).
//!   A bounce counts only when hard (`bounce_type: hard`, kept in the entry): the bounces the
//!   engine suppresses for, as SES's count holds permanent bounces only. Soft bounces are not
//!   counted (a transient failure says little about a step; the send is retried); a bounce
//!   journaled before the entry kept its type is not counted either.
//!   A feedback event names no email, so it is counted for the customer's most recent
//!   `email.sent` before it in the journal (last touch); one with no email before it in the
//!   journal is counted apart, as unattributed.
//! - **The store's feedback counts** ([`Store::feedback_counts`]): what the `ses-events`
//!   function counts from SES's events (delivered, opened, clicked, permanent bounces,
//!   complaints), per step, by SES's message tags. SES's events never pass through the
//!   runner, and the runner's events are never counted there, so each feedback event is in
//!   exactly one of the two sources and the report adds them up: nothing is counted twice.
//!
//! Guarantees and limits:
//! - It reads the store and writes nothing.
//! - A commit whose journal passed the store's bound kept its smallest entries and a
//!   `journal.truncated` marker: what it left out is not counted, and the report says how
//!   many entries that was.
//! - It covers the journal's window: a store keeps each customer's last
//!   [`JOURNAL_COMMITS`](nudge_core::journal::JOURNAL_COMMITS) commits (on DynamoDB, none
//!   older than [`JOURNAL_TTL_DAYS`](nudge_core::journal::JOURNAL_TTL_DAYS) days), so
//!   a busy customer's oldest activity is no longer counted. The report says so.
//! - `since`: journal entries before it are not counted (they still serve to attribute a
//!   later feedback event to its email). The store's feedback counts carry no dates: they
//!   are all-time whatever `since` says, and the report says so when it has any.
//! - Counts are of events, not of people: every open and every click counts, so an open rate
//!   can pass 100%. Rates are `None` when their denominator is 0.
//! - With the workflow definitions, every workflow and every `send_email` step appears in
//!   definition order, with zeros where nothing happened; what the store names but the
//!   definitions do not (a removed workflow or step) follows, marked as not defined.

mod render;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use nudge_core::journal::{HARD_BOUNCE, Happened, JournalEntry};
use nudge_core::store::{FeedbackCount, FeedbackKind, Store, StoreError};
use nudge_core::workflow::Project;
use nudge_core::workflow::model::{StepKind, Workflow};

pub use render::{json_rows, markdown, notes, text};

/// The event types whose `event.received` entries count as mail feedback, and what each counts
/// as.
pub const FEEDBACK_EVENT_TYPES: [(&str, FeedbackKind); 6] = [
    ("email.delivered", FeedbackKind::Delivered),
    ("email.opened", FeedbackKind::Opened),
    ("email.clicked", FeedbackKind::Clicked),
    ("email.bounced", FeedbackKind::Bounced),
    ("email.complained", FeedbackKind::Complained),
    ("customer.unsubscribed", FeedbackKind::Unsubscribed),
];

/// The run-end reason of a run that reached its goal (`exit_when`).
pub const GOAL_REASON: &str = "goal";

/// The step a step-level entry without a step is counted under (never written by the runner;
/// counted rather than dropped).
pub const UNKNOWN_STEP: &str = "(no step)";

/// What feedback kind an event of `event_type` counts as, if any. An `email.bounced` event
/// counts as [`FeedbackKind::Bounced`] only with `bounce_type` [`HARD_BOUNCE`] (the bounces the
/// engine suppresses for, as SES's count holds permanent bounces only); a soft bounce, or one
/// without a type, is not counted.
pub fn feedback_kind_of(event_type: &str, bounce_type: Option<&str>) -> Option<FeedbackKind> {
    let kind = FEEDBACK_EVENT_TYPES
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, kind)| *kind)?;
    (kind != FeedbackKind::Bounced || bounce_type == Some(HARD_BOUNCE)).then_some(kind)
}

/// How many feedback events of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackTally {
    counts: [u64; FeedbackKind::ALL.len()],
}

impl FeedbackTally {
    /// The count of `kind`.
    pub fn get(&self, kind: FeedbackKind) -> u64 {
        self.counts[Self::index(kind)]
    }

    /// Adds `n` to the count of `kind`.
    pub fn add(&mut self, kind: FeedbackKind, n: u64) {
        let slot = &mut self.counts[Self::index(kind)];
        *slot = slot.saturating_add(n);
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &FeedbackTally) {
        for kind in FeedbackKind::ALL {
            self.add(kind, other.get(kind));
        }
    }

    /// Whether every count is 0.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    fn index(kind: FeedbackKind) -> usize {
        FeedbackKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default()
    }
}

/// `numerator / denominator`, or `None` when the denominator is 0.
pub fn rate(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// The counts of one `send_email` step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The step id.
    pub step: String,
    /// Whether the workflow definitions given have this step (always `false` without them).
    pub defined: bool,
    /// Emails sent (decided and logged for delivery).
    pub sent: u64,
    /// Times an email was held for the send window (it is sent or skipped later).
    pub deferred: u64,
    /// Emails not sent, by the sending rule that decided (`no_consent`, `frequency_cap`, ...).
    pub skipped: BTreeMap<String, u64>,
    /// Delivered, opened, clicked, bounced, complained, unsubscribed: the journal's feedback
    /// events attributed to this step plus the store's feedback counts for it.
    pub feedback: FeedbackTally,
}

impl StepReport {
    fn new(step: &str, defined: bool) -> Self {
        StepReport {
            step: step.to_owned(),
            defined,
            ..StepReport::default()
        }
    }

    /// Every skip, whatever the reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Opened / delivered.
    pub fn open_rate(&self) -> Option<f64> {
        rate(
            self.feedback.get(FeedbackKind::Opened),
            self.feedback.get(FeedbackKind::Delivered),
        )
    }

    /// Clicked / delivered.
    pub fn click_rate(&self) -> Option<f64> {
        rate(
            self.feedback.get(FeedbackKind::Clicked),
            self.feedback.get(FeedbackKind::Delivered),
        )
    }

    /// Bounced / sent.
    pub fn bounce_rate(&self) -> Option<f64> {
        rate(self.feedback.get(FeedbackKind::Bounced), self.sent)
    }

    /// Complained / delivered.
    pub fn complaint_rate(&self) -> Option<f64> {
        rate(
            self.feedback.get(FeedbackKind::Complained),
            self.feedback.get(FeedbackKind::Delivered),
        )
    }

    /// Unsubscribed / delivered.
    pub fn unsubscribe_rate(&self) -> Option<f64> {
        rate(
            self.feedback.get(FeedbackKind::Unsubscribed),
            self.feedback.get(FeedbackKind::Delivered),
        )
    }

    fn add_all(&mut self, other: &StepReport) {
        self.sent += other.sent;
        self.deferred += other.deferred;
        for (reason, n) in &other.skipped {
            *self.skipped.entry(reason.clone()).or_default() += n;
        }
        self.feedback.add_all(&other.feedback);
    }
}

/// The counts of one workflow: its runs, and its `send_email` steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowReport {
    /// The workflow id.
    pub workflow: String,
    /// Its name, from the definitions.
    pub name: Option<String>,
    /// Whether the workflow definitions given have this workflow.
    pub defined: bool,
    /// Whether its definition has goals (`exit_when`); `None` when it has no definition.
    pub has_goal: Option<bool>,
    /// Runs started.
    pub runs_started: u64,
    /// Triggers that matched but started no run, by reason.
    pub runs_refused: BTreeMap<String, u64>,
    /// Runs ended, by reason (`completed`, `goal`, `exited`, `step_removed`, ...).
    pub runs_ended: BTreeMap<String, u64>,
    /// The `send_email` steps: defined ones in definition order, then the others by id.
    pub steps: Vec<StepReport>,
}

impl WorkflowReport {
    /// Runs that ended with their goal reached.
    pub fn goals(&self) -> u64 {
        self.runs_ended.get(GOAL_REASON).copied().unwrap_or(0)
    }

    /// Goals / runs started; `None` when no run started, or the definition has no goal.
    pub fn conversion_rate(&self) -> Option<f64> {
        if self.has_goal == Some(false) {
            return None;
        }
        rate(self.goals(), self.runs_started)
    }

    /// The sum of its steps' counts (step id empty).
    pub fn totals(&self) -> StepReport {
        let mut total = StepReport::new("", self.defined);
        for step in &self.steps {
            total.add_all(step);
        }
        total
    }
}

/// What the journal read held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalWindow {
    /// Entries read (before `since` included).
    pub entries: u64,
    /// Distinct customers they belong to.
    pub customers: u64,
    /// The oldest entry's time.
    pub first: Option<DateTime<Utc>>,
    /// The newest entry's time.
    pub last: Option<DateTime<Utc>>,
    /// Commits whose journal was too big to keep whole ([`Happened::JournalTruncated`]).
    pub truncated_commits: u64,
    /// The entries those commits left out (the largest first: conditions' and profile
    /// updates' values), which the report could not count.
    pub dropped_entries: u64,
}

/// A whole report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Only journal entries at or after this time were counted.
    pub since: Option<DateTime<Utc>>,
    /// Every workflow: defined ones by id, then the others by id.
    pub workflows: Vec<WorkflowReport>,
    /// Feedback events in the journal with no email sent to their customer before them in the
    /// journal: counted here, in no step.
    pub unattributed: FeedbackTally,
    /// Whether the store had feedback counts (from SES): those carry no dates.
    pub store_feedback: bool,
    /// Whether workflow definitions were given (then `defined` says something).
    pub definitions: bool,
    /// What the journal read held.
    pub journal: JournalWindow,
}

impl Report {
    /// Whether some feedback columns hold all-time counts although `since` is set.
    pub fn feedback_is_all_time(&self) -> bool {
        self.since.is_some() && self.store_feedback
    }
}

/// One email sent, as attribution needs it.
#[derive(Debug, Clone, Copy)]
struct Touch {
    at: DateTime<Utc>,
    seq: u64,
    step: usize,
}

/// One feedback event received.
#[derive(Debug, Clone, Copy)]
struct Reaction {
    at: DateTime<Utc>,
    seq: u64,
    kind: FeedbackKind,
}

/// A customer's emails and feedback events, for last-touch attribution.
#[derive(Debug, Default)]
struct Trail {
    touches: Vec<Touch>,
    reactions: Vec<Reaction>,
}

/// Run counts of one workflow.
#[derive(Debug, Default)]
struct Runs {
    started: u64,
    refused: BTreeMap<String, u64>,
    ended: BTreeMap<String, u64>,
}

/// Counts journal entries, one at a time ([`Tally::add`]), into a [`Report`]
/// ([`Tally::finish`]). Customers and commits may come in any order ([`Store::journal_page`]'s
/// own), but the entries of one commit together and in order: attribution orders a customer's
/// entries by time, and entries at the same time by the order they were added in.
#[derive(Debug, Default)]
pub struct Tally {
    since: Option<DateTime<Utc>>,
    seq: u64,
    /// `(workflow, step)` of every step seen, by index.
    step_keys: Vec<(String, String)>,
    step_index: HashMap<(String, String), usize>,
    steps: Vec<StepReport>,
    runs: HashMap<String, Runs>,
    trails: HashMap<String, Trail>,
    window: JournalWindow,
}

impl Tally {
    /// A tally counting the entries at or after `since` (all when `None`).
    pub fn new(since: Option<DateTime<Utc>>) -> Self {
        Tally {
            since,
            ..Tally::default()
        }
    }

    /// Counts one entry of `customer`'s journal.
    pub fn add(&mut self, customer: &str, entry: &JournalEntry) {
        self.seq += 1;
        self.note_window(customer, entry.at);
        let counted = self.since.is_none_or(|since| entry.at >= since);
        match (&entry.what, entry.workflow.as_deref()) {
            (Happened::JournalTruncated { dropped }, _) => {
                self.window.truncated_commits += 1;
                self.window.dropped_entries = self.window.dropped_entries.saturating_add(*dropped);
            }
            (
                Happened::EventReceived {
                    event_type,
                    bounce_type,
                    ..
                },
                _,
            ) => {
                if let Some(kind) = feedback_kind_of(event_type, bounce_type.as_deref()) {
                    let reaction = Reaction {
                        at: entry.at,
                        seq: self.seq,
                        kind,
                    };
                    self.trail(customer).reactions.push(reaction);
                }
            }
            (Happened::EmailSent { .. }, Some(workflow)) => {
                let step = self.step(workflow, entry.step.as_deref());
                let touch = Touch {
                    at: entry.at,
                    seq: self.seq,
                    step,
                };
                self.trail(customer).touches.push(touch);
                if counted {
                    self.steps[step].sent += 1;
                }
            }
            _ if !counted => {}
            (what, Some(workflow)) => self.count(workflow, entry.step.as_deref(), what),
            (_, None) => {}
        }
    }

    /// Counts a run or email entry of `workflow` (not `email.sent`, which attribution needs
    /// before `since` too).
    fn count(&mut self, workflow: &str, step: Option<&str>, what: &Happened) {
        match what {
            Happened::RunStarted => self.runs(workflow).started += 1,
            Happened::RunRefused { reason } => {
                *self
                    .runs(workflow)
                    .refused
                    .entry(reason.clone())
                    .or_default() += 1;
            }
            Happened::RunEnded { reason } => {
                *self.runs(workflow).ended.entry(reason.clone()).or_default() += 1;
            }
            Happened::EmailSkipped { reason, .. } => {
                let step = self.step(workflow, step);
                *self.steps[step].skipped.entry(reason.clone()).or_default() += 1;
            }
            Happened::EmailDeferred { .. } => {
                let step = self.step(workflow, step);
                self.steps[step].deferred += 1;
            }
            _ => {}
        }
    }

    fn note_window(&mut self, customer: &str, at: DateTime<Utc>) {
        self.window.entries += 1;
        if !self.trails.contains_key(customer) {
            self.trails.insert(customer.to_owned(), Trail::default());
            self.window.customers += 1;
        }
        self.window.first = Some(self.window.first.map_or(at, |t| t.min(at)));
        self.window.last = Some(self.window.last.map_or(at, |t| t.max(at)));
    }

    fn trail(&mut self, customer: &str) -> &mut Trail {
        self.trails.entry(customer.to_owned()).or_default()
    }

    fn runs(&mut self, workflow: &str) -> &mut Runs {
        self.runs.entry(workflow.to_owned()).or_default()
    }

    /// The index of the step `(workflow, step)`, added when new.
    fn step(&mut self, workflow: &str, step: Option<&str>) -> usize {
        let key = (workflow.to_owned(), step.unwrap_or(UNKNOWN_STEP).to_owned());
        if let Some(&index) = self.step_index.get(&key) {
            return index;
        }
        let index = self.steps.len();
        self.steps.push(StepReport::new(&key.1, false));
        self.step_keys.push(key.clone());
        self.step_index.insert(key, index);
        index
    }

    /// The report: the journal's counts, its feedback events attributed to their emails, the
    /// store's `feedback` counts added, laid out along the `project`'s workflows when given.
    pub fn finish(mut self, feedback: &[FeedbackCount], project: Option<&Project>) -> Report {
        let unattributed = self.attribute();
        for count in feedback {
            let step = self.step(&count.workflow, Some(&count.step));
            self.steps[step].feedback.add(count.kind, count.count);
        }
        let since = self.since;
        let journal = std::mem::take(&mut self.window);
        Report {
            since,
            workflows: self.lay_out(project),
            unattributed,
            store_feedback: feedback.iter().any(|c| c.count > 0),
            definitions: project.is_some(),
            journal,
        }
    }

    /// Counts each feedback event (at or after `since`) for its customer's most recent email
    /// before it; returns those with none.
    fn attribute(&mut self) -> FeedbackTally {
        let mut unattributed = FeedbackTally::default();
        let since = self.since;
        for trail in self.trails.values_mut() {
            trail.touches.sort_by_key(|t| (t.at, t.seq));
            for reaction in &trail.reactions {
                if since.is_some_and(|since| reaction.at < since) {
                    continue;
                }
                let before = trail
                    .touches
                    .partition_point(|t| (t.at, t.seq) < (reaction.at, reaction.seq));
                match before.checked_sub(1).map(|i| trail.touches[i].step) {
                    Some(step) => self.steps[step].feedback.add(reaction.kind, 1),
                    None => unattributed.add(reaction.kind, 1),
                }
            }
        }
        unattributed
    }

    /// The workflows and their steps, in the project's order when given.
    fn lay_out(mut self, project: Option<&Project>) -> Vec<WorkflowReport> {
        let mut by_workflow: BTreeMap<String, Vec<StepReport>> = BTreeMap::new();
        for ((workflow, _), step) in self.step_keys.into_iter().zip(self.steps) {
            by_workflow.entry(workflow).or_default().push(step);
        }
        let mut out = Vec::new();
        for workflow in project.map(|p| p.workflows.as_slice()).unwrap_or_default() {
            let mut seen = by_workflow.remove(&workflow.id).unwrap_or_default();
            let mut steps = Vec::new();
            for step in workflow.all_steps() {
                if !matches!(step.kind, StepKind::SendEmail(_)) {
                    continue;
                }
                let mut report = match seen.iter().position(|s| s.step == step.id) {
                    Some(i) => seen.remove(i),
                    None => StepReport::new(&step.id, true),
                };
                report.defined = true;
                steps.push(report);
            }
            seen.sort_by(|a, b| a.step.cmp(&b.step));
            steps.extend(seen);
            let runs = self.runs.remove(&workflow.id).unwrap_or_default();
            out.push(workflow_report(&workflow.id, Some(workflow), runs, steps));
        }
        let mut others: BTreeMap<String, (Runs, Vec<StepReport>)> = BTreeMap::new();
        for (workflow, runs) in self.runs {
            others.entry(workflow).or_default().0 = runs;
        }
        for (workflow, steps) in by_workflow {
            others.entry(workflow).or_default().1 = steps;
        }
        for (workflow, (runs, mut steps)) in others {
            steps.sort_by(|a, b| a.step.cmp(&b.step));
            out.push(workflow_report(&workflow, None, runs, steps));
        }
        out
    }
}

/// A workflow's report, with what its `definition` (when given) says.
fn workflow_report(
    id: &str,
    definition: Option<&Workflow>,
    runs: Runs,
    steps: Vec<StepReport>,
) -> WorkflowReport {
    WorkflowReport {
        workflow: id.to_owned(),
        name: definition.map(|w| w.name.clone()),
        defined: definition.is_some(),
        has_goal: definition.map(|w| !w.exit_when.is_empty()),
        runs_started: runs.started,
        runs_refused: runs.refused,
        runs_ended: runs.ended,
        steps,
    }
}

/// The commits whose journal entries a report reads per store call.
pub const PAGE_SIZE: usize = 1000;

/// Reads `store`'s whole journal and its feedback counts into a [`Report`] (see the module
/// docs): entries before `since` are read too, to attribute later feedback to its email.
pub async fn report<S: Store>(
    store: &S,
    project: Option<&Project>,
    since: Option<DateTime<Utc>>,
) -> Result<Report, StoreError> {
    read(store, project, since, PAGE_SIZE).await
}

/// [`report`], reading `page` commits per store call.
async fn read<S: Store>(
    store: &S,
    project: Option<&Project>,
    since: Option<DateTime<Utc>>,
    page: usize,
) -> Result<Report, StoreError> {
    let mut tally = Tally::new(since);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.journal_page(None, cursor.as_deref(), page).await?;
        for (customer, entry) in &page.entries {
            tally.add(customer, entry);
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let feedback = store.feedback_counts().await?;
    Ok(tally.finish(&feedback, project))
}

#[cfg(test)]
mod tests;
