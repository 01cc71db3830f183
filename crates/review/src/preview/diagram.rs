//! A workflow's steps drawn as HTML and CSS: the trigger, then each step as a box, branches
//! of `if` and `ab_split` side by side, goals at the end. No script, no image, no network.

use std::fmt::Write;

use nudge_core::mail::escape_html as esc;
use nudge_core::workflow::model::{
    DateTrigger, EntryPolicy, StepItem, StepKind, Trigger, Wait, Workflow,
};

use super::EmailView;
use super::steps::percent;

/// The trigger in words: `When checkout.started` (with its condition), or the date rule.
pub(super) fn trigger_summary(w: &Workflow) -> String {
    match &w.trigger {
        Trigger::Event(f) => match &f.when {
            Some(when) => format!("When {} and {}", f.event, when.source),
            None => format!("When {}", f.event),
        },
        Trigger::Date(d) => date_summary(d),
    }
}

fn date_summary(d: &DateTrigger) -> String {
    let minutes = d.offset.to_delta().num_minutes();
    let shift = match minutes {
        0 => String::new(),
        m if m < 0 => format!(", {} before", span(-m)),
        m => format!(", {} after", span(m)),
    };
    let when = d
        .when
        .as_ref()
        .map_or_else(String::new, |w| format!(", if {}", w.source));
    format!(
        "Every year on customer.{} at {}{shift}{when}",
        d.attribute, d.at
    )
}

/// A positive number of minutes in the largest unit that divides it: `7d`, `36h`, `45m`.
fn span(minutes: i64) -> String {
    if minutes % 1440 == 0 {
        format!("{}d", minutes / 1440)
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The entry policy in words.
pub(super) fn entry_summary(w: &Workflow) -> String {
    let per = w
        .key
        .as_ref()
        .map_or_else(String::new, |k| format!(" per {}", k.source));
    match w.entry {
        EntryPolicy::Once => format!("once per customer{per}"),
        EntryPolicy::Single => format!("one run at a time{per}"),
        EntryPolicy::Restart => format!("a new trigger restarts the run{per}"),
        EntryPolicy::Every(d) => format!("at most once every {d}{per}"),
    }
}

/// The diagram of `w`, whose emails are `emails` (linked from their boxes, `prefix` before
/// their paths).
pub(super) fn flow(w: &Workflow, emails: &[EmailView], prefix: &str) -> String {
    let mut out = String::from("<div class=\"flow\">");
    let _ = write!(
        out,
        "<div class=\"node trigger\"><span class=\"chip\">Trigger</span>{}</div>",
        esc(&trigger_summary(w))
    );
    steps(&mut out, &w.steps, emails, prefix);
    let goals: Vec<String> = w.exit_when.iter().map(|g| g.event.clone()).collect();
    let _ = if goals.is_empty() {
        write!(
            out,
            "<div class=\"node end\"><span class=\"chip\">End</span>the run ends</div></div>"
        )
    } else {
        write!(
            out,
            "<div class=\"node end\"><span class=\"chip\">End</span>the run ends; the goal {} ends it early</div></div>",
            esc(&goals.join(", "))
        )
    };
    out
}

fn steps(out: &mut String, items: &[StepItem], emails: &[EmailView], prefix: &str) {
    for item in items {
        let step = match item {
            StepItem::Exit { .. } => {
                out.push_str("<div class=\"node exit\"><span class=\"chip\">Exit</span>the run ends here</div>");
                continue;
            }
            StepItem::Step(step) => step,
        };
        let id = esc(&step.id);
        match &step.kind {
            StepKind::SendEmail(e) => {
                let view = emails.iter().find(|v| v.step == step.id);
                let subject = view
                    .and_then(|v| v.result.as_ref().ok())
                    .map_or_else(|| e.subject.source.clone(), |r| r.subject.clone());
                let href = view.map_or_else(String::new, |v| format!("{prefix}{}", v.href));
                let failed = view.is_some_and(|v| v.result.is_err());
                let warned = view.is_some_and(|v| !v.warnings.is_empty());
                let class = if failed {
                    " failed"
                } else if warned {
                    " warned"
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    "<a class=\"node email{class}\" href=\"{}\"><span class=\"chip\">Email</span><span class=\"subj\">{}</span><span class=\"sid\">{id}</span></a>",
                    esc(&href),
                    esc(&subject)
                );
            }
            StepKind::Wait(Wait::For(d)) => simple(out, "wait", "Wait", &format!("{d}"), &id),
            StepKind::Wait(Wait::Until(t)) => {
                simple(out, "wait", "Wait", &format!("until {t} local time"), &id);
            }
            StepKind::WaitFor(f) => simple(
                out,
                "wait",
                "Wait for",
                &format!("{} (up to {})", f.filter.event, f.timeout),
                &id,
            ),
            StepKind::UpdateProfile(u) => {
                let mut what: Vec<String> = u.set.iter().map(|(k, _)| format!("set {k}")).collect();
                what.extend(u.add_tags.iter().map(|t| format!("tag +{t}")));
                what.extend(u.remove_tags.iter().map(|t| format!("tag −{t}")));
                simple(out, "update", "Profile", &what.join(", "), &id);
            }
            StepKind::Webhook(h) => simple(
                out,
                "update",
                "Webhook",
                &format!("{:?} {}", h.method, h.url.host_str().unwrap_or("")).to_uppercase(),
                &id,
            ),
            StepKind::If(b) => {
                let _ = write!(
                    out,
                    "<div class=\"node cond\"><span class=\"chip\">If</span><code>{}</code><span class=\"sid\">{id}</span></div><div class=\"branches\">",
                    esc(&b.condition.source)
                );
                branch(out, "then", &b.then, emails, prefix);
                branch(out, "else", &b.otherwise, emails, prefix);
                out.push_str("</div>");
            }
            StepKind::AbSplit(list) => {
                let total: u32 = list.iter().map(|b| b.weight).sum();
                let _ = write!(
                    out,
                    "<div class=\"node cond\"><span class=\"chip\">A/B split</span>{} branches<span class=\"sid\">{id}</span></div><div class=\"branches\">",
                    list.len()
                );
                for (i, b) in list.iter().enumerate() {
                    let label = format!(
                        "{} · {}{}",
                        char::from(b'A' + u8::try_from(i % 26).unwrap_or(0)),
                        percent(b.weight, total),
                        if b.steps.is_empty() {
                            " · holdout"
                        } else {
                            ""
                        }
                    );
                    branch(out, &label, &b.steps, emails, prefix);
                }
                out.push_str("</div>");
            }
        }
    }
}

fn simple(out: &mut String, class: &str, chip: &str, text: &str, id: &str) {
    let _ = write!(
        out,
        "<div class=\"node {class}\"><span class=\"chip\">{}</span>{}<span class=\"sid\">{id}</span></div>",
        esc(chip),
        esc(text)
    );
}

fn branch(out: &mut String, label: &str, items: &[StepItem], emails: &[EmailView], prefix: &str) {
    let _ = write!(
        out,
        "<div class=\"branch\"><div class=\"blabel\">{}</div>",
        esc(label)
    );
    if items.is_empty() {
        out.push_str("<div class=\"node none\">no steps: the run goes on</div>");
    } else {
        steps(out, items, emails, prefix);
    }
    out.push_str("</div>");
}
