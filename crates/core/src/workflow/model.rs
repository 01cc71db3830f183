//! The typed workflow model: what a parsed and validated workflow means.
//!
//! Values here are only built by [`crate::workflow::parse`], so holding one means its rules
//! were checked: durations are lengths, times are times, addresses are addresses. Positions are
//! kept where later stages (template rendering, the engine) may still need to point at the file.

use std::path::PathBuf;

use chrono_tz::Tz;

use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::Pos;

/// An email address with an optional display name (`Kahve Dükkanı <hello@shop.example.com>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any.
    pub name: Option<String>,
    /// The bare address.
    pub address: String,
}

impl Mailbox {
    /// `Name <address>` or a bare address, if it is a valid address with a dotted domain and
    /// a name that cannot break the header it goes in.
    pub fn parse(text: &str) -> Option<Mailbox> {
        let text = text.trim();
        let (name, address) = match text.rsplit_once('<') {
            Some((name, rest)) => {
                let address = rest.strip_suffix('>')?;
                let name = name.trim().trim_matches('"').trim();
                (
                    if name.is_empty() {
                        None
                    } else {
                        Some(name.to_owned())
                    },
                    address.trim(),
                )
            }
            None => (None, text),
        };
        if name.as_deref().is_some_and(|n| n.contains(['\r', '\n'])) {
            return None;
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            address,
            email_address::Options::default().without_display_text(),
        )
        .ok()?;
        // A bare host (`root@localhost`) is legal RFC 5322 but never a deliverable store address.
        if !parsed.domain().contains('.') {
            return None;
        }
        Some(Mailbox {
            name,
            address: address.to_owned(),
        })
    }
}

/// Store-wide settings from `settings.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The store's name, URL and postal address.
    pub store: StoreDetails,
    /// Default sender.
    pub from: Mailbox,
    /// Default reply-to address.
    pub reply_to: Option<Mailbox>,
    /// Time zone for customers without a valid one of their own.
    pub timezone: Tz,
    /// Default sending hours for marketing mail, in the customer's local time.
    pub send_window: SendWindow,
    /// Marketing emails per customer per rolling window.
    pub frequency_cap: FrequencyCap,
    /// Page that receives one-click unsubscribes; needed when any workflow is marketing.
    pub unsubscribe_url: Option<url::Url>,
    /// The store's currency (ISO 4217, upper case): `total_spent` adds only order totals in
    /// it. `None` adds every total.
    pub currency: Option<String>,
    /// The store's own customer attributes (`profile:`), which templates may read beside the
    /// canonical and counted ones.
    pub profile: Vec<DeclaredAttribute>,
}

/// A customer attribute the store declares in `settings.yaml` (`profile:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredAttribute {
    /// Its name under `customer` (`loyalty_tier`).
    pub name: String,
    /// What its values are.
    pub kind: AttributeKind,
    /// Where it is declared.
    pub pos: Pos,
}

/// The type of a declared customer attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// Text.
    Text,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A `YYYY-MM-DD` date (a date trigger may use it).
    Date,
    /// A list.
    List,
}

impl AttributeKind {
    /// Every kind, by the name `settings.yaml` writes.
    pub const ALL: [(&'static str, AttributeKind); 5] = [
        ("text", AttributeKind::Text),
        ("number", AttributeKind::Number),
        ("boolean", AttributeKind::Boolean),
        ("date", AttributeKind::Date),
        ("list", AttributeKind::List),
    ];

    /// The name `settings.yaml` writes for it (`text`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("text", |(name, _)| name)
    }
}

/// The store as templates see it (`store.name`, `store.url`, `store.postal_address`). Not
/// `Store`: that is the persistence port ([`crate::store::Store`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreDetails {
    /// Shown in mail and footers.
    pub name: String,
    /// The shop's address on the web.
    pub url: String,
    /// Printed in every marketing email; required when any workflow is marketing.
    pub postal_address: Option<String>,
}

/// Sending hours `[start, end)` in local time; `end` before `start` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    /// First minute mail may go out.
    pub start: LocalTime,
    /// First minute it may not.
    pub end: LocalTime,
}

/// At most `max` marketing emails per customer in any rolling window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// Emails allowed in the window.
    pub max: u32,
    /// The window's length.
    pub per: Duration,
}

/// Marketing mail needs consent and obeys windows and the cap; transactional mail does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Promotional mail: consent, send window, frequency cap, unsubscribe headers.
    Marketing,
    /// Mail the customer needs (shipment updates): only address validity and suppression apply.
    Transactional,
}

impl Category {
    /// Its name as written in workflows and kept in the send log: `marketing` or
    /// `transactional` (the same as its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Transactional => "transactional",
        }
    }
}

/// A minijinja expression (`when`, `if`, `key`) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The expression's text.
    pub source: String,
    /// Where it starts in the workflow file.
    pub pos: Pos,
}

/// A minijinja template string (subjects, preheaders, profile values) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateText {
    /// The template's text.
    pub source: String,
    /// Where it starts in the workflow file.
    pub pos: Pos,
}

/// Events of one type, optionally narrowed by a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// The event's `detail-type`.
    pub event: String,
    /// Where the event type is written (what a problem with the whole entry points at).
    pub pos: Pos,
    /// An extra condition on the event.
    pub when: Option<Expr>,
    /// A goal's or a `wait_for`'s own key: how *its* event gives the run's key, when that
    /// event carries it elsewhere than the trigger (`event.order.checkout_id`). `None`: the
    /// workflow's `key` is used. Always `None` on a trigger.
    pub key: Option<Expr>,
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A store event.
    Event(EventFilter),
    /// A yearly date on the profile.
    Date(DateTrigger),
}

/// Fires every year on the month and day of a profile date, at a local time, shifted by an
/// offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTrigger {
    /// The profile attribute, without the `customer.` prefix (`birthday`).
    pub attribute: String,
    /// Where the attribute is written (the value of `date`).
    pub attribute_pos: Pos,
    /// Local time of day at which it fires.
    pub at: LocalTime,
    /// Shift from that moment (negative: before the date).
    pub offset: Duration,
    /// An extra condition on the customer.
    pub when: Option<Expr>,
}

/// Who may start a new run, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPolicy {
    /// At most one run per customer (and key), ever.
    Once,
    /// No new run while one is active.
    Single,
    /// A new trigger ends the active run (`restarted`) and starts a fresh one.
    Restart,
    /// At most one start per period.
    Every(Duration),
}

/// One workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Slug, equal to the file stem.
    pub id: String,
    /// Human name (the id when not given).
    pub name: String,
    /// Free text for reviewers.
    pub description: Option<String>,
    /// Marketing or transactional.
    pub category: Category,
    /// A disabled workflow starts no run.
    pub enabled: bool,
    /// What starts a run.
    pub trigger: Trigger,
    /// Runs are per customer and this key, evaluated on the trigger event.
    pub key: Option<Expr>,
    /// The entry policy.
    pub entry: EntryPolicy,
    /// Goals: a matching event ends the active run with reason `goal`.
    pub exit_when: Vec<EventFilter>,
    /// Overrides the settings' send window.
    pub send_window: Option<SendWindow>,
    /// The steps, in order.
    pub steps: Vec<StepItem>,
    /// The file it came from, as the user named it.
    pub path: PathBuf,
}

/// One step. Every step but `exit` has an id, unique in its workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's stable id: where a run rests, by name, across edits of the workflow.
    pub id: String,
    /// What it does.
    pub kind: StepKind,
    /// Where it starts in the file.
    pub pos: Pos,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Render and send one email.
    SendEmail(SendEmail),
    /// Pause.
    Wait(Wait),
    /// Pause until a matching event or the timeout.
    WaitFor(WaitFor),
    /// Branch on a condition.
    If(Branching),
    /// Deterministic weighted split.
    AbSplit(Vec<SplitBranch>),
    /// Change the customer's profile.
    UpdateProfile(UpdateProfile),
    /// Call an HTTP endpoint.
    Webhook(Webhook),
}

/// One item of a list of steps (a workflow's `steps`, `then`, `else`, a branch's `steps`).
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "lists are almost all steps, read in place; boxing them would only add indirection"
)]
pub enum StepItem {
    /// A step that does something; it has an id, since a run can rest on it.
    Step(Step),
    /// `- exit`: the run ends here with reason `exited`. It has no id: no run ever rests on
    /// it.
    Exit {
        /// Where it is written.
        pos: Pos,
    },
}

/// `send_email`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendEmail {
    /// Template path under `templates/` (`win-back/miss-you.mjml`).
    pub template: String,
    /// Where the template path was written.
    pub template_pos: Pos,
    /// Subject template.
    pub subject: TemplateText,
    /// Preview text template.
    pub preheader: Option<TemplateText>,
    /// Overrides the settings' sender.
    pub from: Option<Mailbox>,
    /// Overrides the settings' reply-to.
    pub reply_to: Option<Mailbox>,
    /// Tags recorded with the send (SES message tags later).
    pub tags: Vec<String>,
}

/// `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A fixed length.
    For(Duration),
    /// Until the next such local time of the customer.
    Until(LocalTime),
}

/// `wait_for`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitFor {
    /// The awaited events.
    pub filter: EventFilter,
    /// Give up after this long.
    pub timeout: Duration,
}

/// `if` / `then` / `else`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branching {
    /// The condition.
    pub condition: Expr,
    /// Steps when true.
    pub then: Vec<StepItem>,
    /// Steps when false.
    pub otherwise: Vec<StepItem>,
}

/// One branch of an `ab_split`.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitBranch {
    /// Relative weight, 1 to 10000.
    pub weight: u32,
    /// Steps of this branch (empty: a holdout group).
    pub steps: Vec<StepItem>,
}

/// `update_profile`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateProfile {
    /// Attributes to set; string values are templates.
    pub set: Vec<(String, ProfileValue)>,
    /// Tags to add.
    pub add_tags: Vec<String>,
    /// Tags to remove.
    pub remove_tags: Vec<String>,
}

/// A value `update_profile` writes.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileValue {
    /// A template rendered in the run's scope.
    Template(TemplateText),
    /// A literal (number, boolean, null, list or mapping).
    Literal(serde_json::Value),
}

/// `webhook`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where to call (https only).
    pub url: url::Url,
    /// The HTTP method.
    pub method: HttpMethod,
    /// The body; string leaves are templates. `None` sends the default body.
    pub body: Option<serde_json::Value>,
    /// Name of the stored secret used to sign the body.
    pub secret: Option<String>,
}

/// Methods a webhook may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// POST (the default).
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

impl Workflow {
    /// Every step of the workflow (not `exit`), branches included, in document order.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(items: &'a [StepItem], out: &mut Vec<&'a Step>) {
            for item in items {
                let StepItem::Step(step) = item else {
                    continue;
                };
                out.push(step);
                match &step.kind {
                    StepKind::If(b) => {
                        walk(&b.then, out);
                        walk(&b.otherwise, out);
                    }
                    StepKind::AbSplit(branches) => {
                        for b in branches {
                            walk(&b.steps, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_names_are_their_serde_names() {
        for c in [Category::Marketing, Category::Transactional] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn mailboxes_with_and_without_names() {
        let m = Mailbox::parse("Kahve Dükkanı <hello@shop.example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Kahve Dükkanı"));
        assert_eq!(m.address, "hello@shop.example.com");
        assert_eq!(
            Mailbox::parse("support@shop.example.com").unwrap().name,
            None
        );
        assert_eq!(
            Mailbox::parse("\"Shop, Inc\" <a@b.co>")
                .unwrap()
                .name
                .as_deref(),
            Some("Shop, Inc")
        );
        for bad in [
            "",
            "shop",
            "a@b",
            "Name <a@b.co",
            "<>",
            "a b@c.com",
            "Evil\r\nBcc: x <a@b.co>",
        ] {
            assert!(Mailbox::parse(bad).is_none(), "{bad:?} should be rejected");
        }
    }
}
