//! `send_email` and the sending rules, in the contract's order: a valid address, no
//! suppression, then for marketing mail no unsubscribe, consent, the send window (which defers)
//! and the frequency cap; then rendering, and the [`Email`] the runner delivers.
//!
//! Also what feeds the rules: mail feedback events (unsubscribes, hard bounces, complaints) and
//! the record of recent marketing sends.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::drive::{Flow, done};
use super::state::{Phase, Run, Suppression};
use super::time;
use super::{ActionKind, Cx, Email, SkipReason};
use crate::event::StoreEvent;
use crate::journal::Happened;
use crate::workflow::model::{Category, Mailbox, SendEmail, Workflow};

/// Why an email does not leave now.
enum Held {
    /// Not at all: a sending rule stopped it.
    Skipped(SkipReason),
    /// Not before the send window opens again.
    Deferred(DateTime<Utc>),
}

/// The part of an email being rendered: a warning names it.
#[derive(Clone, Copy)]
enum Part {
    /// The step's `subject`.
    Subject,
    /// The step's `preheader`.
    Preheader,
    /// The template file.
    Body,
}

/// An email's rendered parts.
struct Rendered {
    subject: String,
    preheader: Option<String>,
    html: String,
}

impl<'p> Cx<'_, 'p> {
    /// A `send_email` step: the sending rules, then rendering, then the email (once per run).
    pub(super) fn send_email(
        &mut self,
        run: &mut Run,
        w: &'p Workflow,
        step: &str,
        email: &'p SendEmail,
    ) -> Flow<'p> {
        if done(run, step) {
            return Flow::Continue;
        }
        let address = match self.sending_rules(w) {
            Ok(address) => address,
            Err(Held::Skipped(reason)) => {
                let read = self.rule_read(reason);
                return self.skip(run, step, reason, read);
            }
            Err(Held::Deferred(until)) => {
                self.push(run, Some(step), ActionKind::EmailDeferred { until });
                return Flow::Block(Phase::Deferred { until });
            }
        };
        let rendered = match self.render_email(run, email) {
            Ok(rendered) => rendered,
            Err((part, e)) => {
                let template = match part {
                    Part::Subject => "subject",
                    Part::Preheader => "preheader",
                    // The file the error is in: the step's template, or one it includes.
                    Part::Body => e.name().unwrap_or(&email.template),
                };
                let template = template.to_owned();
                self.warn_render(run, step, &template, "email", &e);
                return self.skip(run, step, SkipReason::RenderError, Map::new());
            }
        };
        let out = self.compose(run, w, step, email, address, rendered);
        if w.category == Category::Marketing {
            self.state.recent_sends.push(self.now);
        }
        run.done.push(step.to_owned());
        self.push(run, Some(step), ActionKind::EmailSent(Box::new(out)));
        Flow::Continue
    }

    /// Records a skip, with what its rule read in the journal entry.
    fn skip(
        &mut self,
        run: &Run,
        step: &str,
        reason: SkipReason,
        read: Map<String, Value>,
    ) -> Flow<'p> {
        self.push(run, Some(step), ActionKind::EmailSkipped { reason });
        if let Some(Happened::EmailSkipped { read: kept, .. }) =
            self.journal.last_mut().map(|e| &mut e.what)
        {
            *kept = read;
        }
        Flow::Continue
    }

    /// What the sending rule that gave `reason` read, for the journal: consent the
    /// profile's `accepts_marketing`, a suppression its kind, an unsubscribe its time, the
    /// frequency cap the count of recent sends and the cap. Never the address (an invalid
    /// one reads nothing here).
    fn rule_read(&self, reason: SkipReason) -> Map<String, Value> {
        let mut read = Map::new();
        match reason {
            SkipReason::NoConsent => {
                let consent = self.state.profile.get("accepts_marketing").cloned();
                read.insert("accepts_marketing".into(), consent.unwrap_or(Value::Null));
            }
            SkipReason::Suppressed => {
                if let Some(s) = self.state.suppressed {
                    let kind = serde_json::to_value(s).unwrap_or(Value::Null);
                    read.insert("suppressed".into(), kind);
                }
            }
            SkipReason::Unsubscribed => {
                if let Some(at) = self.state.unsubscribed_at {
                    read.insert("unsubscribed_at".into(), Value::String(at.to_rfc3339()));
                }
            }
            SkipReason::FrequencyCap => {
                let cap = self.settings().frequency_cap;
                read.insert("sent".into(), self.recent_sends().into());
                read.insert("cap".into(), cap.max.into());
                read.insert("per".into(), cap.per.to_string().into());
            }
            SkipReason::InvalidAddress | SkipReason::RenderError => {}
        }
        read
    }

    /// The rules every email obeys, then those of marketing mail; gives the recipient's
    /// address. (A name in the profile's `email` makes it invalid: names come from
    /// `first_name` and `last_name`.)
    fn sending_rules(&self, w: &Workflow) -> Result<Mailbox, Held> {
        let address = self
            .state
            .attr_str("email")
            .and_then(Mailbox::parse)
            .filter(|m| m.name.is_none())
            .ok_or(Held::Skipped(SkipReason::InvalidAddress))?;
        if self.state.suppressed.is_some() {
            return Err(Held::Skipped(SkipReason::Suppressed));
        }
        if w.category == Category::Marketing {
            self.marketing_rules(w)?;
        }
        Ok(address)
    }

    /// A recorded unsubscribe is checked before consent, so an unsubscribed customer is
    /// reported as such even if the store still says `accepts_marketing: true`.
    fn marketing_rules(&self, w: &Workflow) -> Result<(), Held> {
        if self.state.unsubscribed_at.is_some() {
            return Err(Held::Skipped(SkipReason::Unsubscribed));
        }
        if self.state.profile.get("accepts_marketing") != Some(&Value::Bool(true)) {
            return Err(Held::Skipped(SkipReason::NoConsent));
        }
        let window = w.send_window.unwrap_or(self.settings().send_window);
        let tz = self.zone();
        if !time::in_window(self.now, tz, window) {
            return Err(Held::Deferred(time::next_opening(self.now, tz, window)));
        }
        if self.over_frequency_cap() {
            return Err(Held::Skipped(SkipReason::FrequencyCap));
        }
        Ok(())
    }

    /// Whether the customer already had as many marketing emails as the cap allows in its
    /// period.
    fn over_frequency_cap(&self) -> bool {
        self.recent_sends() >= self.settings().frequency_cap.max as usize
    }

    /// The marketing emails the frequency cap counts now (those of its period).
    fn recent_sends(&self) -> usize {
        let since = self.now - self.settings().frequency_cap.per.to_delta();
        self.state
            .recent_sends
            .iter()
            .filter(|t| **t > since && **t <= self.now)
            .count()
    }

    /// Subject, preheader and body, rendered in the run's scope; or the part that failed.
    fn render_email(
        &self,
        run: &Run,
        email: &SendEmail,
    ) -> Result<Rendered, (Part, minijinja::Error)> {
        let scope = self.run_scope(run);
        let subject = self
            .engine
            .render(&email.subject.source, &scope)
            .map_err(|e| (Part::Subject, e))?;
        let preheader = email
            .preheader
            .as_ref()
            .map(|p| self.engine.render(&p.source, &scope))
            .transpose()
            .map_err(|e| (Part::Preheader, e))?;
        let html = self
            .engine
            .project
            .templates
            .render(&email.template, &scope)
            .map_err(|e| (Part::Body, e))?;
        Ok(Rendered {
            subject,
            preheader,
            html,
        })
    }

    /// The email as the runner delivers it: the settings' sender and reply-to unless the step
    /// has its own, and for marketing mail the unsubscribe link, the postal address and, when
    /// the template does not render both itself, the footer that does.
    fn compose(
        &self,
        run: &Run,
        w: &Workflow,
        step: &str,
        email: &SendEmail,
        address: Mailbox,
        rendered: Rendered,
    ) -> Email {
        let settings = self.settings();
        let marketing = w.category == Category::Marketing;
        let template = self.engine.project.templates.file(&email.template);
        let renders_both = template.is_some_and(|t| t.has_unsubscribe_link && t.has_postal_address);
        Email {
            idempotency_key: format!("{}.{step}", run.id),
            customer_id: self.state.id.clone(),
            workflow: w.id.clone(),
            step: step.to_owned(),
            category: w.category,
            to: Mailbox {
                name: self.recipient_name(),
                address: address.address,
            },
            from: email.from.clone().unwrap_or_else(|| settings.from.clone()),
            reply_to: email.reply_to.clone().or_else(|| settings.reply_to.clone()),
            subject: rendered.subject.trim().to_owned(),
            preheader: rendered
                .preheader
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
            html: rendered.html,
            date: self.now,
            tags: email.tags.clone(),
            unsubscribe_url: if marketing {
                self.unsubscribe_link().map(|link| link.to_string())
            } else {
                None
            },
            postal_address: if marketing {
                settings.store.postal_address.clone()
            } else {
                None
            },
            store_name: settings.store.name.clone(),
            append_footer: marketing && !renders_both,
        }
    }

    /// `first_name last_name`, from the parts that are not blank; none if both are.
    fn recipient_name(&self) -> Option<String> {
        let name = [
            self.state.attr_str("first_name"),
            self.state.attr_str("last_name"),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        (!name.is_empty()).then_some(name)
    }

    /// Mail feedback: unsubscribes and suppressions.
    pub(super) fn apply_feedback(&mut self, event: &StoreEvent) {
        match event.event_type.as_str() {
            "customer.unsubscribed" => {
                self.state.unsubscribed_at.get_or_insert(event.time);
            }
            "email.bounced"
                if event.detail.get("bounce_type").and_then(Value::as_str) == Some("hard") =>
            {
                self.state.suppressed = Some(Suppression::HardBounce);
            }
            "email.complained" => self.state.suppressed = Some(Suppression::Complaint),
            _ => {}
        }
    }

    /// Keeps only the sends the frequency cap can still count.
    pub(super) fn prune_sends(&mut self) {
        let since = self.now - self.settings().frequency_cap.per.to_delta();
        self.state.recent_sends.retain(|t| *t > since);
    }
}
