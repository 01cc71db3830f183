//! `nudge dead-letters list|replay --db STORE`: the inputs a store rejected, and applying them
//! again once what made them fail is fixed (the workflows, the events' producer, a bug).
//!
//! `list [--format text|json]` prints every dead letter, oldest first: in text one line each
//! (id, when it was received, where from, event id, customer, reason; not the body), in JSON
//! one object per line with the body too. stdout is the operator's report (like `simulate`'s,
//! it may name customers, whose ids may hold an address); stderr and logs never do.
//!
//! `replay [--id ID ...] [--workflows DIR] [--format text|json]` applies each letter named (all
//! of them without `--id`) again, through the parsing its input needs, with the runner, and
//! prints what each did:
//! - a store event (an events file's line, an EventBridge event, an event the runner refused):
//!   parsed as `simulate` and `ingest` parse one ([`parse_event`]) and applied;
//! - a Shopify delivery kept in the partner-event shape (the EventBridge path, or a webhook
//!   kept "so it can be replayed through ingest"): read and mapped by the functions' own mapping
//!   ([`nudge_core::shopify`]): an order links its order first, a fulfillment is applied for
//!   its order's customer (one whose order is not linked yet stays a dead letter, saying so), a
//!   `customers/redact` erases, a topic Nudge does not use is dropped;
//! - a fulfillment kept after its order's customer was known (source `shopify`, the customer on
//!   the letter): completed with that customer and applied;
//! - a set-aside wake (source `timer`): the customer is woken again at the due time the letter
//!   keeps ([`nudge_core::runner::Runner::wake`]), as the scheduler would have.
//!
//! A letter applied (or found to be a duplicate, or dropped as of no use) is removed. One that
//! is still bad stays: with the same reason it is kept as it was (same id); with another
//! reason it is recorded again with the new reason (a new id, the same body, source, customer
//! and time received) and the old one removed, and the line says the new id. An unknown `--id`
//! is an error naming it, before anything is replayed.
//!
//! Nothing is delivered from here: the runner commits and leaves every send pending, as the
//! scheduler's `fire` does. On `dynamodb://TABLE` the deployed scheduler's sweep delivers them
//! (within its schedule, a minute); on an SQLite store the next `simulate --db` run delivers
//! them (with `--outbox`, into the outbox). Messages are built here, so they must carry the
//! deployment's unsubscribe links: on DynamoDB the command needs `NUDGE_SIGNING_KEY` (the
//! deployment's key) and an unsubscribe URL (settings.yaml's `unsubscribe_url` or
//! `NUDGE_UNSUBSCRIBE_URL`), and refuses to run without them; on SQLite it does as `simulate`
//! does. The runner's clock: on SQLite the virtual clock `simulate --db` left in the store (the
//! wall clock if none), on DynamoDB the wall clock.
//!
//! Exits: 0 when everything named was applied (or there was nothing); 1 when some letter is
//! still bad (kept); 2 when it cannot run (unknown `--id`, a store that cannot be read, workflows
//! with errors, a missing key on DynamoDB, a store failure midway: what was replayed before it
//! stays replayed).

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use nudge_core::engine::{Action, ActionKind, Engine};
use nudge_core::event::{StoreEvent, parse_event};
use nudge_core::links::{KeySource, Signer};
use nudge_core::runner::{Applied, Runner, RunnerError};
use nudge_core::shopify::{self, Mapped, map};
use nudge_core::store::{DeadLetter, Store};
use nudge_core::webhook::NoWebhooks;
use nudge_local::RecordingMailer;

use super::db::{self, DbSpec, OpenedDb, with_store};
use super::{Format, escape_controls, exit};

/// How many dead letters one read asks the store for.
const PAGE: usize = 100;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print every dead letter, oldest first: id, received, source, event id, customer and
    /// reason (JSON adds the body). Exits 0; 2 when the store cannot be read.
    List(ListArgs),
    /// Apply dead letters again (all, or those --id names) and print what each did: an applied
    /// one is removed, one still bad stays. Sends are left pending for the scheduler's sweep
    /// (DynamoDB) or the next `simulate --db` (SQLite). Exits 0 when all applied, 1 when some
    /// are still bad, 2 when it cannot run.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// The store: a file `nudge simulate --db` wrote, or `dynamodb://TABLE`.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: DbSpec,
    /// Output format: a line per letter for people, or JSON lines (with the body) for tools.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The store: a file `nudge simulate --db` wrote, or `dynamodb://TABLE`.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: DbSpec,
    /// Replay only this dead letter (repeatable); all of them without it.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// The workflows folder.
    #[arg(long, value_name = "DIR", default_value = "workflows/")]
    workflows: PathBuf,
    /// Output format: a line per letter for people, or JSON lines for tools.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs `nudge dead-letters`; the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    let result = match &args.command {
        Command::List(args) => list(args),
        Command::Replay(args) => replay(args),
    };
    result.unwrap_or_else(|(code, message)| {
        eprintln!("error: {}", escape_controls(&message));
        code
    })
}

/// A failure that stops the command: its exit code and message.
type Failure = (u8, String);

/// `text` as a failure to run (exit 2).
fn usage(text: impl std::fmt::Display) -> Failure {
    (exit::USAGE, text.to_string())
}

/// Opens `spec` in a new runtime and runs `f` on the store; `write`: the store is locked
/// against another writing command first (`db::open_to_write`).
fn on_store<T>(
    spec: &DbSpec,
    write: bool,
    f: impl AsyncFnOnce(OpenedDb) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let runtime = db::runtime().map_err(|e| usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        if write {
            let (opened, _lock) = db::open_to_write(spec).await.map_err(usage)?;
            f(opened).await
        } else {
            f(db::open(spec).await.map_err(usage)?).await
        }
    })
}

/// `nudge dead-letters list`.
fn list(args: &ListArgs) -> Result<u8, Failure> {
    let letters = on_store(&args.db, false, async |opened| {
        with_store!(opened, store => all_letters(&store).await)
            .map_err(|e| usage(format!("{}: {e}", args.db)))
    })?;
    let mut out = std::io::stdout().lock();
    for letter in &letters {
        let line = match args.format {
            Format::Json => letter_json(letter).to_string(),
            Format::Text => escape_controls(&letter_text(letter)).into_owned(),
        };
        let _ = writeln!(out, "{line}");
    }
    eprintln!(
        "{}",
        super::counted(letters.len(), "dead letter", "dead letters")
    );
    Ok(exit::OK)
}

/// Every dead letter, oldest first, a page at a time.
async fn all_letters<S: Store>(
    store: &S,
) -> Result<Vec<DeadLetter>, nudge_core::store::StoreError> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    loop {
        let after = letters.last().map(|l| l.id.clone());
        let page = store.dead_letters_after(after.as_deref(), PAGE).await?;
        let last = page.len() < PAGE;
        letters.extend(page);
        if last {
            return Ok(letters);
        }
    }
}

/// A letter as one line of text (no body).
fn letter_text(letter: &DeadLetter) -> String {
    format!(
        "{}  {}  {}  event {}  customer {}  {}",
        letter.id,
        time(letter.received_at),
        letter.source,
        letter.event_id.as_deref().unwrap_or("-"),
        letter.customer_id.as_deref().unwrap_or("-"),
        letter.reason,
    )
}

/// A letter as a JSON object, with its body.
fn letter_json(letter: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "id": letter.id,
        "received_at": time(letter.received_at),
        "source": letter.source,
        "event_id": letter.event_id,
        "customer_id": letter.customer_id,
        "reason": letter.reason,
        "body": letter.body,
    })
}

/// `at` in RFC 3339, to the millisecond when it has one.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// What replaying one letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Replayed {
    /// Applied: the event (or wake) took these actions; `pending` sends were left for delivery.
    Applied {
        /// The event id, or `wake` for a set-aside wake.
        input: String,
        /// The actions taken.
        actions: usize,
        /// Emails and webhook calls decided, left pending.
        pending: usize,
    },
    /// The event was processed before (applied since by another path): nothing to do.
    Duplicate,
    /// A Shopify `customers/redact`: these customers were erased.
    Erased(Vec<String>),
    /// A Shopify delivery Nudge does not act on.
    Ignored(String),
    /// Still bad, for this reason.
    StillBad(String),
}

/// `nudge dead-letters replay`.
fn replay(args: &ReplayArgs) -> Result<u8, Failure> {
    let project =
        super::project::load(&args.workflows).map_err(|e| (e.exit_code(), e.to_string()))?;
    let deployed = matches!(args.db, DbSpec::DynamoDb(_));
    let (signer, source) = Signer::from_env().map_err(usage)?;
    if source != KeySource::Environment {
        if deployed {
            return Err(usage(
                "replaying into a deployed table builds messages its scheduler sends: set NUDGE_SIGNING_KEY to the deployment's signing key (its SSM parameter), so that unsubscribe links work",
            ));
        }
        eprintln!(
            "note: NUDGE_SIGNING_KEY is not set: unsubscribe links are signed with the development key"
        );
    }
    let mut project = project;
    if project.settings.unsubscribe_url.is_none() {
        let var = std::env::var("NUDGE_UNSUBSCRIBE_URL").ok();
        if deployed && var.as_deref().is_none_or(str::is_empty) {
            return Err(usage(
                "replaying into a deployed table needs its unsubscribe URL: set unsubscribe_url in settings.yaml or NUDGE_UNSUBSCRIBE_URL (the unsubscribe function's URL)",
            ));
        }
        let (url, note) = super::simulate::simulated_unsubscribe_url(var).map_err(usage)?;
        if let Some(note) = note {
            eprintln!("{note}");
        }
        project.settings.unsubscribe_url = Some(url);
    }
    let engine = Engine::new(&project, &signer);
    let results = on_store(&args.db, true, async |opened| {
        with_store!(opened, store => replay_all(&engine, store, &args.ids).await)
            .map_err(|(code, e)| (code, format!("{}: {e}", args.db)))
    })?;
    let mut out = std::io::stdout().lock();
    let mut still_bad = 0;
    for (letter, replayed, kept) in &results {
        if matches!(replayed, Replayed::StillBad(_)) {
            still_bad += 1;
        }
        let line = match args.format {
            Format::Json => result_json(letter, replayed, kept.as_deref()).to_string(),
            Format::Text => {
                escape_controls(&result_text(letter, replayed, kept.as_deref())).into_owned()
            }
        };
        let _ = writeln!(out, "{line}");
    }
    eprintln!(
        "{} replayed: {} applied, {} still bad{}",
        super::counted(results.len(), "dead letter", "dead letters"),
        results.len() - still_bad,
        still_bad,
        match (results.len() > still_bad, deployed) {
            (false, _) => "",
            (true, true) => "; their sends are left to the scheduler's sweep",
            (true, false) => "; their sends are left for the next `nudge simulate --db` run",
        }
    );
    Ok(if still_bad > 0 {
        exit::PROBLEMS
    } else {
        exit::OK
    })
}

/// One replayed letter: the letter, what replaying did, and the id it is kept under when it
/// is still bad.
type Outcome = (DeadLetter, Replayed, Option<String>);

/// Replays the letters `ids` names (all without ids) with a runner on `store` that leaves sends
/// pending.
async fn replay_all<S: Store>(
    engine: &Engine<'_>,
    store: S,
    ids: &[String],
) -> Result<Vec<Outcome>, Failure> {
    let store_error = |e: nudge_core::store::StoreError| usage(e);
    let letters = if ids.is_empty() {
        all_letters(&store).await.map_err(store_error)?
    } else {
        let mut letters = Vec::new();
        for id in ids {
            match store.dead_letter(id).await.map_err(store_error)? {
                Some(letter) => letters.push(letter),
                None => {
                    return Err(usage(format!(
                        "no dead letter with id `{}` (nudge dead-letters list shows them)",
                        id.escape_debug()
                    )));
                }
            }
        }
        letters
    };
    let now = db::clock(&store).await.map_err(usage)?;
    let runner = Runner::new(engine, store, None::<RecordingMailer>)
        .with_webhooks(NoWebhooks)
        .deliver_later();
    let mut outcomes = Vec::new();
    for letter in letters {
        let replayed = replay_one(&runner, &letter, now)
            .await
            .map_err(|e| usage(format!("replaying dead letter {}: {e}", letter.id)))?;
        let store = runner.store();
        let kept = match &replayed {
            Replayed::StillBad(reason) if *reason == letter.reason => Some(letter.id.clone()),
            Replayed::StillBad(reason) => {
                let again = DeadLetter {
                    reason: reason.clone(),
                    ..letter.clone()
                };
                let id = store
                    .record_dead_letter(&again)
                    .await
                    .map_err(store_error)?;
                store
                    .remove_dead_letter(&letter.id)
                    .await
                    .map_err(store_error)?;
                Some(id)
            }
            _ => {
                // A redact may have removed it already (it named the customer it erased).
                store
                    .remove_dead_letter(&letter.id)
                    .await
                    .map_err(store_error)?;
                None
            }
        };
        outcomes.push((letter, replayed, kept));
    }
    runner.store().flush().await.map_err(store_error)?;
    Ok(outcomes)
}

/// The runner of a replay: no mailer, webhook calls logged, every send left pending.
type ReplayRunner<'e, S> = Runner<'e, S, RecordingMailer, NoWebhooks>;

/// Replays one letter; an error is a failure of the store (the letter is left as it was).
async fn replay_one<S: Store>(
    runner: &ReplayRunner<'_, S>,
    letter: &DeadLetter,
    now: DateTime<Utc>,
) -> Result<Replayed, RunnerError> {
    let body = letter.body.as_str();
    if letter.source == nudge_core::runner::TIMER_DEAD_LETTER_SOURCE {
        return match parse_wake(body) {
            Ok((customer, due)) => {
                let applied = runner.wake(&customer, due, now).await;
                applied_or_bad(applied, "wake".to_owned())
            }
            Err(reason) => Ok(Replayed::StillBad(reason)),
        };
    }
    if let Some(delivery) = shopify::partner_delivery(body) {
        let (headers, payload) = match shopify::partner_parts(&delivery) {
            Ok(parts) => parts,
            Err(reason) => return Ok(Replayed::StillBad(reason)),
        };
        let topic = headers.topic.clone().unwrap_or_default();
        return match map::map(&headers, &payload, letter.received_at) {
            Mapped::Event(event) => apply_shopify_event(runner, &event, now).await,
            Mapped::Fulfillment(f) => {
                let store = runner.store();
                match store.order_customer(&f.order_id).await? {
                    Some(customer) => match map::with_customer(&f.body, &customer) {
                        Ok(event) => apply(runner, &event, now).await,
                        Err(reason) => Ok(Replayed::StillBad(reason)),
                    },
                    None => Ok(Replayed::StillBad(format!(
                        "{topic}: order {} is not linked to a customer yet (its orders/create was not seen)",
                        f.order_id
                    ))),
                }
            }
            Mapped::Redact { customer_ids, .. } => {
                for id in &customer_ids {
                    runner.store().erase_customer(id).await?;
                }
                Ok(Replayed::Erased(customer_ids))
            }
            Mapped::Ignored { reason, .. } => Ok(Replayed::Ignored(reason)),
            Mapped::Invalid { reason, .. } => Ok(Replayed::StillBad(format!("{topic}: {reason}"))),
        };
    }
    let event = match (parse_event(body), &letter.customer_id) {
        (Ok(event), _) => Ok(event),
        // A fulfillment kept with its order's customer: the body has no customer yet.
        (Err(_), Some(customer)) if letter.source == shopify::DEAD_LETTER_SOURCE => {
            map::with_customer(body, customer)
        }
        (Err(e), _) => Err(e.to_string()),
    };
    match event {
        Ok(event) => apply(runner, &event, now).await,
        Err(reason) => Ok(Replayed::StillBad(reason)),
    }
}

/// Applies a Shopify order event as the functions do: the order is linked to its customer
/// first (a fulfillment kept for it is applied when its own letter is replayed).
async fn apply_shopify_event<S: Store>(
    runner: &ReplayRunner<'_, S>,
    event: &StoreEvent,
    now: DateTime<Utc>,
) -> Result<Replayed, RunnerError> {
    if let Some(order) = shopify::order_of(event) {
        runner
            .store()
            .link_order(&order, &event.customer_id)
            .await?;
    }
    apply(runner, event, now).await
}

/// Applies one canonical event.
async fn apply<S: Store>(
    runner: &ReplayRunner<'_, S>,
    event: &StoreEvent,
    now: DateTime<Utc>,
) -> Result<Replayed, RunnerError> {
    applied_or_bad(runner.event(event, now).await, event.id.clone())
}

/// What an application did: a failure of the input's own (the customer's) is still bad; one
/// of the store is the caller's error.
fn applied_or_bad(
    applied: Result<Applied, RunnerError>,
    input: String,
) -> Result<Replayed, RunnerError> {
    match applied {
        Ok(Applied::Done { actions, .. }) => Ok(Replayed::Applied {
            input,
            actions: actions.len(),
            pending: pending_sends(&actions),
        }),
        Ok(Applied::Duplicate { .. }) => Ok(Replayed::Duplicate),
        Err(e) if e.customer().is_some() => Ok(Replayed::StillBad(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The sends (emails and webhook calls) `actions` logged.
fn pending_sends(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::EmailSent(_) | ActionKind::WebhookCalled(_)
            )
        })
        .count()
}

/// The customer and due time a set-aside wake's letter keeps
/// (`{"customer_id": ..., "due": ...}`), or why it cannot be read.
fn parse_wake(body: &str) -> Result<(String, DateTime<Utc>), String> {
    #[derive(serde::Deserialize)]
    struct Wake {
        customer_id: String,
        due: String,
    }
    let wake: Wake = serde_json::from_str(body)
        .map_err(|_| "a timer's dead letter without customer_id and due".to_owned())?;
    let due = DateTime::parse_from_rfc3339(&wake.due)
        .map_err(|_| "a timer's dead letter whose due is not an RFC 3339 time".to_owned())?;
    Ok((wake.customer_id, due.with_timezone(&Utc)))
}

/// What replaying `letter` did, as a line of text.
fn result_text(letter: &DeadLetter, replayed: &Replayed, kept: Option<&str>) -> String {
    let what = match replayed {
        Replayed::Applied {
            input,
            actions,
            pending,
        } => format!(
            "applied {input}: {} ({} left pending for delivery); removed",
            super::counted(*actions, "action", "actions"),
            pending
        ),
        Replayed::Duplicate => "already processed; removed".to_owned(),
        Replayed::Erased(ids) => format!(
            "customers/redact: erased {}; removed",
            super::counted(ids.len(), "customer id", "customer ids")
        ),
        Replayed::Ignored(reason) => format!("ignored ({reason}); removed"),
        Replayed::StillBad(reason) => match kept {
            Some(id) if id == letter.id => format!("still rejected: {reason}; kept"),
            Some(id) => format!("still rejected: {reason}; kept as {id}"),
            None => format!("still rejected: {reason}"),
        },
    };
    format!("{}  {}  {what}", letter.id, letter.source)
}

/// What replaying `letter` did, as a JSON object.
fn result_json(letter: &DeadLetter, replayed: &Replayed, kept: Option<&str>) -> serde_json::Value {
    let mut row = serde_json::json!({
        "id": letter.id,
        "source": letter.source,
        "event_id": letter.event_id,
    });
    let fields = match replayed {
        Replayed::Applied {
            actions, pending, ..
        } => serde_json::json!({"outcome": "applied", "actions": actions, "pending": pending}),
        Replayed::Duplicate => serde_json::json!({"outcome": "duplicate"}),
        Replayed::Erased(ids) => serde_json::json!({"outcome": "erased", "customers": ids.len()}),
        Replayed::Ignored(reason) => serde_json::json!({"outcome": "ignored", "reason": reason}),
        Replayed::StillBad(reason) => {
            serde_json::json!({"outcome": "still_bad", "reason": reason, "kept_as": kept})
        }
    };
    if let (Some(row), serde_json::Value::Object(fields)) = (row.as_object_mut(), fields) {
        row.extend(fields);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_letter_is_read_back_and_a_broken_one_says_why() {
        let (customer, due) =
            parse_wake(r#"{"customer_id":"c-1","due":"2026-03-01T10:00:00Z"}"#).unwrap();
        assert_eq!(customer, "c-1");
        assert_eq!(time(due), "2026-03-01T10:00:00Z");
        assert!(parse_wake("{}").unwrap_err().contains("customer_id"));
        assert!(
            parse_wake(r#"{"customer_id":"c-1","due":"soon"}"#)
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
