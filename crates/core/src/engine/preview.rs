//! [`Engine::preview_email`]: one `send_email` step rendered for sample data, by the code that
//! renders a real send (`nudge preview`).
//!
//! The email is the one the engine's `send_email` would decide for a run of the workflow that
//! started with the sample trigger event, for a customer with the sample profile: the same
//! scope (`customer`, `event`, `store`, `run`, `links`), the same compiled templates, the same
//! sender, reply-to, footer and signed unsubscribe link. The sending rules (consent, send
//! window, frequency cap, suppression) are not applied: a preview shows the email, not whether
//! this customer would get it now. Nothing is recorded and no state changes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::send::Part;
use super::state::{CustomerState, Phase, Run, TriggerDetail};
use super::{Cx, Email, Engine};
use crate::workflow::model::{Mailbox, StepKind};

/// The sample data one email is rendered with.
#[derive(Debug, Clone)]
pub struct EmailSample {
    /// The customer's id (the unsubscribe link is signed for it).
    pub customer_id: String,
    /// The profile (`customer` in templates); its `email` is the recipient, `first_name` and
    /// `last_name` the recipient's name.
    pub profile: Map<String, Value>,
    /// The trigger event's detail (`event` in templates); none for a date trigger.
    pub event: Option<Map<String, Value>>,
    /// The run's id (`run.id`; with the step id, the idempotency key and `Message-ID`).
    pub run_id: String,
    /// When the run started and the email is decided (`run.started_at`, the `Date` header).
    pub now: DateTime<Utc>,
}

/// Why [`Engine::preview_email`] gave no email. Messages name parts and templates, never the
/// sample's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreviewError {
    /// The project has no workflow of that id.
    #[error("no workflow `{0}`")]
    UnknownWorkflow(String),
    /// The workflow has no `send_email` step of that id.
    #[error("workflow `{workflow}` has no send_email step `{step}`")]
    NotAnEmailStep {
        /// The workflow.
        workflow: String,
        /// The step id asked for.
        step: String,
    },
    /// The profile's `email` is missing or not a plain address: the engine would skip the
    /// email (`invalid_address`).
    #[error("the customer's email is missing or not a valid address")]
    InvalidAddress,
    /// A part failed to render: the engine would skip the email (`render_error`).
    #[error("the {place} failed to render: {reason}")]
    Render {
        /// `subject`, `preheader`, or the template file the error is in.
        place: String,
        /// The error as the operator's log says it (kind and line).
        reason: String,
    },
}

impl Engine<'_> {
    /// The email the `send_email` step `step` of workflow `workflow` sends for `sample`, exactly
    /// as the engine composes it (and so, through `mail::build_mime`, the bytes the outbox
    /// writes), without the sending rules.
    ///
    /// # Errors
    ///
    /// An unknown workflow or step, a recipient address the engine would refuse, or a part
    /// that fails to render ([`PreviewError`]).
    pub fn preview_email(
        &self,
        workflow: &str,
        step: &str,
        sample: &EmailSample,
    ) -> Result<Email, PreviewError> {
        let program = self
            .programs
            .get(workflow)
            .ok_or_else(|| PreviewError::UnknownWorkflow(workflow.to_owned()))?;
        let not_email = || PreviewError::NotAnEmailStep {
            workflow: workflow.to_owned(),
            step: step.to_owned(),
        };
        let node = program.get(step).ok_or_else(not_email)?;
        let StepKind::SendEmail(email) = &node.step.kind else {
            return Err(not_email());
        };
        let w = program.workflow;
        let mut state = CustomerState::new(sample.customer_id.clone());
        state.profile = Arc::new(sample.profile.clone());
        let cx = Cx {
            engine: self,
            state,
            now: sample.now,
            actions: Vec::new(),
            warnings: Vec::new(),
            journal: Vec::new(),
            unsubscribe: std::cell::OnceCell::new(),
        };
        let address = cx
            .state
            .attr_str("email")
            .and_then(Mailbox::parse)
            .filter(|m| m.name.is_none())
            .ok_or(PreviewError::InvalidAddress)?;
        let run = Run {
            id: sample.run_id.clone(),
            workflow: w.id.clone(),
            key: None,
            started_at: sample.now,
            trigger: sample
                .event
                .as_ref()
                .map(|e| TriggerDetail::Parsed(Arc::new(e.clone()))),
            step: step.to_owned(),
            phase: Phase::Deferred { until: sample.now },
            waited: None,
            done: Vec::new(),
        };
        let rendered = cx.render_email(&run, email).map_err(|(part, e)| {
            let place = match part {
                Part::Subject => "subject",
                Part::Preheader => "preheader",
                Part::Body => e.name().unwrap_or(&email.template),
            };
            PreviewError::Render {
                place: place.to_owned(),
                reason: crate::workflow::template::render_failure(&e),
            }
        })?;
        Ok(cx.compose(&run, w, step, email, address, rendered))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{ActionKind, Input};
    use crate::links::Signer;
    use crate::workflow::Project;

    fn shipped() -> Project {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        crate::workflow::load(&dir).unwrap().project.unwrap()
    }

    const SHIPPED: &str = r#"{"version": "0", "id": "e-1", "detail-type": "order.shipped", "source": "store", "time": "2026-01-07T11:52:06Z", "detail": {"customer": {"id": "c-1", "email": "irem@example.com", "first_name": "İrem"}, "order": {"id": "o-1001", "items": [{"sku": "B", "title": "Beans", "quantity": 1}]}, "shipment": {"carrier": "Kargo", "tracking_url": "https://t.example.com/1"}}}"#;

    #[test]
    fn the_preview_is_the_email_the_engine_sends_for_the_same_data() {
        let project = shipped();
        let signer = Signer::development();
        let engine = Engine::new(&project, &signer);
        let event = crate::event::parse_event(SHIPPED).unwrap();
        let outcome = engine.handle(CustomerState::new("c-1"), Input::Event(&event), event.time);
        let (run, sent) = outcome
            .actions
            .iter()
            .find_map(|a| match &a.kind {
                ActionKind::EmailSent(email) => Some((a.run.clone(), email)),
                _ => None,
            })
            .unwrap();
        let sample = EmailSample {
            customer_id: "c-1".to_owned(),
            profile: (*outcome.state.profile).clone(),
            event: Some((*event.detail).clone()),
            run_id: run,
            now: event.time,
        };
        let preview = engine
            .preview_email("shipment-updates", "on-its-way", &sample)
            .unwrap();
        assert_eq!(&preview, &**sent);
        assert!(preview.subject.contains("o-1001"), "{}", preview.subject);
    }

    #[test]
    fn the_preview_names_what_it_cannot_render() {
        let project = shipped();
        let signer = Signer::development();
        let engine = Engine::new(&project, &signer);
        let mut sample = EmailSample {
            customer_id: "c-1".to_owned(),
            profile: Map::new(),
            event: None,
            run_id: "r-1".to_owned(),
            now: Utc::now(),
        };
        let err = |e: &EmailSample, w: &str, s: &str| engine.preview_email(w, s, e).unwrap_err();
        assert_eq!(
            err(&sample, "nope", "x"),
            PreviewError::UnknownWorkflow("nope".to_owned())
        );
        assert!(matches!(
            err(&sample, "shipment-updates", "wait-for-delivery"),
            PreviewError::NotAnEmailStep { .. }
        ));
        assert_eq!(
            err(&sample, "shipment-updates", "on-its-way"),
            PreviewError::InvalidAddress
        );
        sample
            .profile
            .insert("email".to_owned(), Value::from("a@example.com"));
        let ok = engine
            .preview_email("shipment-updates", "on-its-way", &sample)
            .unwrap();
        assert_eq!(ok.to.address, "a@example.com");
        assert_eq!(ok.idempotency_key, "r-1.on-its-way");
    }
}
