//! `nudge erase --db STORE --customer ID [--format text|json]`: removes everything the store
//! keeps about one customer (a person's request to be forgotten), through
//! [`Store::erase_customer`]: the state and its timer, the send log with its messages (pending
//! sends too: they are never delivered), the journal (`explain`'s story), the links of orders
//! to them and the dead letters naming them. Processed event ids stay, without the customer,
//! so a redelivered old event is still a duplicate; suppressions are kept by an address hash
//! and are not the customer's.
//!
//! Prints what it removed on stdout (text, or one JSON object). Exits 0, also when the store
//! kept nothing about the customer (it says so); 2 when the store cannot be opened or written.
//! A customer whose inputs keep arriving is written again by them: stop them first (on AWS,
//! Shopify's `customers/redact` erases from the deployment itself).

use std::io::Write;

use nudge_core::store::{Erased, Store, StoreError};

use super::db::{self, DbSpec, with_store};
use super::{Format, escape_controls, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store: a file `nudge simulate --db` wrote, or `dynamodb://TABLE`.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: DbSpec,
    /// The customer's id (a guest's is `guest:` and the address in lower case).
    #[arg(long, value_name = "ID")]
    customer: String,
    /// Output format: lines for people, or one JSON object for tools.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs `nudge erase`; the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    let erased = db::runtime()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|rt| {
            rt.block_on(async {
                let (opened, _lock) = db::open_to_write(&args.db)
                    .await
                    .map_err(|e| e.to_string())?;
                with_store!(opened, store => erase(&store, &args.customer).await)
                    .map_err(|e| format!("{}: {e}", args.db))
            })
        });
    match erased {
        Ok(erased) => {
            print(&args.customer, &erased, args.format);
            exit::OK
        }
        Err(message) => {
            eprintln!("error: {}", escape_controls(&message));
            exit::USAGE
        }
    }
}

/// Erases `customer` and makes it durable.
async fn erase<S: Store>(store: &S, customer: &str) -> Result<Erased, StoreError> {
    let erased = store.erase_customer(customer).await?;
    store.flush().await?;
    Ok(erased)
}

/// What `erased` says, as `format` prints it (stdout is the operator's report: it names the
/// customer, whose id may hold an address).
fn render(customer: &str, erased: &Erased, format: Format) -> String {
    match format {
        Format::Json => serde_json::json!({
            "customer": customer,
            "state": erased.state,
            "sends": erased.sends,
            "journal_commits": erased.journal_commits,
            "orders": erased.orders,
            "dead_letters": erased.dead_letters,
        })
        .to_string(),
        Format::Text if *erased == Erased::default() => format!(
            "The store kept nothing about customer `{}`: nothing erased.",
            escape_controls(customer)
        ),
        Format::Text => [
            format!("Erased customer `{}`:", escape_controls(customer)),
            format!(
                "  state and timer: {}",
                if erased.state { "removed" } else { "none" }
            ),
            format!("  sends (with their messages): {}", erased.sends),
            format!("  journal (commits of history): {}", erased.journal_commits),
            format!("  order links: {}", erased.orders),
            format!("  dead letters naming them: {}", erased.dead_letters),
        ]
        .join("\n"),
    }
}

fn print(customer: &str, erased: &Erased, format: Format) {
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        render(customer, erased, format)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_erased_is_said_as_such_and_control_characters_are_escaped() {
        let text = render("c\n1", &Erased::default(), Format::Text);
        assert_eq!(
            text,
            "The store kept nothing about customer `c\\n1`: nothing erased."
        );
        let erased = Erased {
            state: true,
            sends: 2,
            orders: 1,
            journal_commits: 3,
            dead_letters: 4,
        };
        let json: serde_json::Value =
            serde_json::from_str(&render("c-1", &erased, Format::Json)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"customer": "c-1", "state": true, "sends": 2,
                "journal_commits": 3, "orders": 1, "dead_letters": 4})
        );
    }
}
