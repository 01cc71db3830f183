//! The definition changes between two validated projects, positions ignored.
//!
//! Steps are matched by id (what a run rests on), wherever they are in the file. A step is
//! `step_moved` when it is in another list (another branch, or in or out of a branch) or out
//! of order among the steps both versions keep in its list (the steps outside the longest
//! common order of those lists move); a step that only lost or gained a neighbour has not
//! moved.

use std::collections::{BTreeMap, BTreeSet};

use nudge_core::workflow::Project;
use nudge_core::workflow::model::{
    EntryPolicy, EventFilter, Expr, Mailbox, ProfileValue, SendEmail, SendWindow, Settings, Step,
    StepItem, StepKind, TemplateText, Trigger, Wait, Workflow,
};

use super::{ChangeKind, Row, SETTINGS};

/// Every definition change from `base` to `head`: `settings.yaml` first, then by workflow id.
/// `changed_templates` names the template files (as steps name them) whose text changed
/// (see [`super::changed_templates`]).
pub fn diff(base: &Project, head: &Project, changed_templates: &BTreeSet<String>) -> Vec<Row> {
    let mut rows = Vec::new();
    let settings = settings_changes(&base.settings, &head.settings);
    if !settings.is_empty() {
        rows.push(Row::new(
            SETTINGS,
            ChangeKind::SettingsChanged,
            None,
            settings.join("; "),
        ));
    }
    let by_id = |p: &'_ Project| -> BTreeMap<String, usize> {
        p.workflows
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect()
    };
    let (base_ids, head_ids) = (by_id(base), by_id(head));
    let ids: BTreeSet<&String> = base_ids.keys().chain(head_ids.keys()).collect();
    for id in ids {
        match (base_ids.get(id), head_ids.get(id)) {
            (Some(&b), None) => rows.push(Row::new(
                id,
                ChangeKind::WorkflowRemoved,
                None,
                format!(
                    "{} ({} steps)",
                    base.workflows[b].name,
                    step_count(&base.workflows[b])
                ),
            )),
            (None, Some(&h)) => rows.push(Row::new(
                id,
                ChangeKind::WorkflowAdded,
                None,
                added_detail(&head.workflows[h]),
            )),
            (Some(&b), Some(&h)) => workflow_changes(
                &base.workflows[b],
                &head.workflows[h],
                changed_templates,
                &mut rows,
            ),
            (None, None) => {}
        }
    }
    rows
}

fn step_count(w: &Workflow) -> usize {
    w.all_steps().len()
}

fn added_detail(w: &Workflow) -> String {
    let state = if w.enabled { "enabled" } else { "disabled" };
    format!(
        "{} ({state}, {}, {} steps)",
        w.name,
        trigger_text(&w.trigger),
        step_count(w)
    )
}

/// The changes of one workflow both versions have.
fn workflow_changes(
    b: &Workflow,
    h: &Workflow,
    changed_templates: &BTreeSet<String>,
    rows: &mut Vec<Row>,
) {
    let id = h.id.as_str();
    let mut push = |change, detail: String| rows.push(Row::new(id, change, None, detail));
    if b.enabled != h.enabled {
        if h.enabled {
            push(ChangeKind::WorkflowEnabled, "enabled: true".to_owned());
        } else {
            push(ChangeKind::WorkflowDisabled, "enabled: false".to_owned());
        }
    }
    let (bt, ht) = (trigger_text(&b.trigger), trigger_text(&h.trigger));
    if bt != ht {
        push(ChangeKind::TriggerChanged, format!("{bt} → {ht}"));
    }
    let (be, he) = (entry_text(b.entry), entry_text(h.entry));
    if be != he {
        push(ChangeKind::EntryChanged, format!("{be} → {he}"));
    }
    let (bg, hg) = (goals_text(&b.exit_when), goals_text(&h.exit_when));
    if bg != hg {
        push(ChangeKind::GoalChanged, format!("{bg} → {hg}"));
    }
    let own = workflow_settings_changes(b, h);
    if !own.is_empty() {
        push(ChangeKind::SettingsChanged, own.join("; "));
    }
    step_changes(b, h, changed_templates, rows);
}

/// `before → after` when they differ.
fn changed<T: PartialEq + std::fmt::Display>(what: &str, before: T, after: T) -> Option<String> {
    (before != after).then(|| format!("{what} {before} → {after}"))
}

/// `text` in double quotes, quotes and control characters escaped.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn opt<T>(value: Option<T>, f: impl Fn(T) -> String, none: &str) -> String {
    value.map_or_else(|| none.to_owned(), f)
}

fn mailbox_text(m: &Mailbox) -> String {
    match &m.name {
        Some(name) => format!("{name} <{}>", m.address),
        None => m.address.clone(),
    }
}

fn window_text(w: &SendWindow) -> String {
    format!("{}–{}", w.start, w.end)
}

fn expr_text(e: &Expr) -> String {
    format!("`{}`", e.source)
}

/// What changed in `settings.yaml`.
fn settings_changes(b: &Settings, h: &Settings) -> Vec<String> {
    let store = |s: &Settings| {
        format!(
            "{} {} {}",
            quoted(&s.store.name),
            s.store.url,
            opt(
                s.store.postal_address.as_deref(),
                quoted,
                "(no postal address)"
            )
        )
    };
    let profile = |s: &Settings| {
        s.profile
            .iter()
            .map(|a| format!("{}: {}", a.name, a.kind.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    [
        changed("store", store(b), store(h)),
        changed("from", mailbox_text(&b.from), mailbox_text(&h.from)),
        changed(
            "reply_to",
            opt(b.reply_to.as_ref(), mailbox_text, "none"),
            opt(h.reply_to.as_ref(), mailbox_text, "none"),
        ),
        changed("timezone", b.timezone.name(), h.timezone.name()),
        changed(
            "send_window",
            window_text(&b.send_window),
            window_text(&h.send_window),
        ),
        changed(
            "frequency_cap",
            format!("{} per {}", b.frequency_cap.max, b.frequency_cap.per),
            format!("{} per {}", h.frequency_cap.max, h.frequency_cap.per),
        ),
        changed(
            "unsubscribe_url",
            opt(b.unsubscribe_url.as_ref(), ToString::to_string, "none"),
            opt(h.unsubscribe_url.as_ref(), ToString::to_string, "none"),
        ),
        changed(
            "currency",
            opt(b.currency.as_deref(), str::to_owned, "any"),
            opt(h.currency.as_deref(), str::to_owned, "any"),
        ),
        changed("profile", profile(b), profile(h)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What changed in a workflow's own settings (not its trigger, entry, goals or steps).
fn workflow_settings_changes(b: &Workflow, h: &Workflow) -> Vec<String> {
    [
        changed("name", quoted(&b.name), quoted(&h.name)),
        changed(
            "description",
            opt(b.description.as_deref(), quoted, "none"),
            opt(h.description.as_deref(), quoted, "none"),
        ),
        changed("category", b.category.as_str(), h.category.as_str()),
        changed(
            "key",
            opt(b.key.as_ref(), expr_text, "none"),
            opt(h.key.as_ref(), expr_text, "none"),
        ),
        changed(
            "send_window",
            opt(b.send_window.as_ref(), window_text, "the settings'"),
            opt(h.send_window.as_ref(), window_text, "the settings'"),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn filter_text(f: &EventFilter) -> String {
    let mut text = f.event.clone();
    if let Some(when) = &f.when {
        text.push_str(&format!(" when {}", expr_text(when)));
    }
    if let Some(key) = &f.key {
        text.push_str(&format!(" key {}", expr_text(key)));
    }
    text
}

fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Event(f) => format!("event {}", filter_text(f)),
        Trigger::Date(d) => {
            let mut text = format!(
                "date customer.{} at {} offset {}",
                d.attribute, d.at, d.offset
            );
            if let Some(when) = &d.when {
                text.push_str(&format!(" when {}", expr_text(when)));
            }
            text
        }
    }
}

fn entry_text(e: EntryPolicy) -> String {
    match e {
        EntryPolicy::Once => "once".to_owned(),
        EntryPolicy::Single => "single".to_owned(),
        EntryPolicy::Restart => "restart".to_owned(),
        EntryPolicy::Every(d) => format!("every {d}"),
    }
}

fn goals_text(goals: &[EventFilter]) -> String {
    if goals.is_empty() {
        return "no goal".to_owned();
    }
    goals.iter().map(filter_text).collect::<Vec<_>>().join(", ")
}

/// Where a step is: the step whose branch holds it (`None`: the workflow's steps) and which
/// branch (`then` 0, `else` 1, a split's in order).
type Place = (Option<String>, usize);

/// Every step of `w` by id, with its place and its index in the document.
fn places(w: &Workflow) -> BTreeMap<&str, (&Step, Place, usize)> {
    fn walk<'a>(
        items: &'a [StepItem],
        place: Place,
        out: &mut BTreeMap<&'a str, (&'a Step, Place, usize)>,
    ) {
        for item in items {
            let StepItem::Step(step) = item else { continue };
            let index = out.len();
            out.insert(step.id.as_str(), (step, place.clone(), index));
            let parent = Some(step.id.clone());
            match &step.kind {
                StepKind::If(b) => {
                    walk(&b.then, (parent.clone(), 0), out);
                    walk(&b.otherwise, (parent, 1), out);
                }
                StepKind::AbSplit(branches) => {
                    for (i, br) in branches.iter().enumerate() {
                        walk(&br.steps, (parent.clone(), i), out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&w.steps, (None, 0), &mut out);
    out
}

/// The step changes of a workflow: removed steps (in the old order), then added, changed and
/// moved steps in the new order.
fn step_changes(
    b: &Workflow,
    h: &Workflow,
    changed_templates: &BTreeSet<String>,
    rows: &mut Vec<Row>,
) {
    let (bp, hp) = (places(b), places(h));
    let id = h.id.as_str();
    let mut removed: Vec<_> = bp.iter().filter(|(s, _)| !hp.contains_key(*s)).collect();
    removed.sort_by_key(|(_, (_, _, index))| *index);
    for (step, (old, _, _)) in removed {
        rows.push(Row::new(
            id,
            ChangeKind::StepRemoved,
            Some(step),
            summary(old),
        ));
    }
    let moved = moved_steps(&bp, &hp);
    let mut in_head: Vec<_> = hp.iter().collect();
    in_head.sort_by_key(|(_, (_, _, index))| *index);
    for (step, (new, _, _)) in in_head {
        let Some((old, _, _)) = bp.get(step) else {
            rows.push(Row::new(
                id,
                ChangeKind::StepAdded,
                Some(step),
                summary(new),
            ));
            continue;
        };
        let aspects: Vec<String> = step_aspects(old, new, changed_templates)
            .into_iter()
            .map(|(text, _)| text)
            .collect();
        if !aspects.is_empty() {
            rows.push(Row::new(
                id,
                ChangeKind::StepChanged,
                Some(step),
                aspects.join("; "),
            ));
        }
        if moved.contains(step) {
            rows.push(Row::new(
                id,
                ChangeKind::StepMoved,
                Some(step),
                move_detail(&bp[step].1, &hp[step].1),
            ));
        }
    }
}

fn place_text(place: &Place) -> String {
    match place {
        (None, _) => "the workflow's steps".to_owned(),
        (Some(parent), branch) => format!("branch {} of `{parent}`", branch + 1),
    }
}

fn move_detail(old: &Place, new: &Place) -> String {
    if old == new {
        format!("reordered within {}", place_text(new))
    } else {
        format!("from {} to {}", place_text(old), place_text(new))
    }
}

/// The steps both versions have that are in another list, or out of order in their list.
fn moved_steps<'a>(
    bp: &BTreeMap<&'a str, (&Step, Place, usize)>,
    hp: &BTreeMap<&'a str, (&Step, Place, usize)>,
) -> BTreeSet<&'a str> {
    let mut moved = BTreeSet::new();
    // The common steps of each list, in each version's order.
    /// A list's common steps by document index, in the old and the new version.
    type Orders<'s> = (Vec<(usize, &'s str)>, Vec<(usize, &'s str)>);
    let mut lists: BTreeMap<Place, Orders<'a>> = BTreeMap::new();
    for (id, (_, place, index)) in bp {
        match hp.get(id) {
            Some((_, new_place, _)) if new_place != place => {
                moved.insert(*id);
            }
            Some(_) => lists.entry(place.clone()).or_default().0.push((*index, id)),
            None => {}
        }
    }
    for (id, (_, place, index)) in hp {
        if bp.get(id).is_some_and(|(_, p, _)| p == place) {
            lists.entry(place.clone()).or_default().1.push((*index, id));
        }
    }
    for (_, (mut old, mut new)) in lists {
        old.sort_unstable();
        new.sort_unstable();
        let old: Vec<&str> = old.into_iter().map(|(_, id)| id).collect();
        let new: Vec<&str> = new.into_iter().map(|(_, id)| id).collect();
        let kept = longest_common_order(&old, &new);
        moved.extend(new.into_iter().filter(|id| !kept.contains(id)));
    }
    moved
}

/// The steps of the longest subsequence common to `a` and `b` (which hold the same ids).
fn longest_common_order<'a>(a: &[&'a str], b: &[&'a str]) -> BTreeSet<&'a str> {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut kept) = (0, 0, BTreeSet::new());
    while i < n && j < m {
        if a[i] == b[j] {
            kept.insert(a[i]);
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    kept
}

/// The kind of a step, as written.
pub(super) fn kind_name(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::SendEmail(_) => "send_email",
        StepKind::Wait(_) => "wait",
        StepKind::WaitFor(_) => "wait_for",
        StepKind::If(_) => "if",
        StepKind::AbSplit(_) => "ab_split",
        StepKind::UpdateProfile(_) => "update_profile",
        StepKind::Webhook(_) => "webhook",
    }
}

fn wait_text(w: &Wait) -> String {
    match w {
        Wait::For(d) => d.to_string(),
        Wait::Until(t) => format!("until {t}"),
    }
}

fn weights_text(kind: &StepKind) -> String {
    match kind {
        StepKind::AbSplit(branches) => branches
            .iter()
            .map(|b| b.weight.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        _ => String::new(),
    }
}

/// A step in a few words: its kind and what it does.
fn summary(step: &Step) -> String {
    let what = match &step.kind {
        StepKind::SendEmail(e) => format!("{} {}", e.template, quoted(&e.subject.source)),
        StepKind::Wait(w) => wait_text(w),
        StepKind::WaitFor(wf) => format!("{} for {}", filter_text(&wf.filter), wf.timeout),
        StepKind::If(b) => expr_text(&b.condition),
        StepKind::AbSplit(_) => weights_text(&step.kind),
        StepKind::UpdateProfile(_) => "profile".to_owned(),
        StepKind::Webhook(hook) => format!("{:?} {}", hook.method, hook.url),
    };
    format!("{} {what}", kind_name(&step.kind))
}

fn template_text(t: Option<&TemplateText>) -> String {
    opt(t, |t| quoted(&t.source), "none")
}

/// What changed in a step both versions have (its own fields: the steps of its branches are
/// compared on their own), each with what it is about.
fn step_aspects(b: &Step, h: &Step, changed_templates: &BTreeSet<String>) -> Vec<(String, Effect)> {
    let other = |texts: Vec<String>| texts.into_iter().map(|t| (t, Effect::Other)).collect();
    match (&b.kind, &h.kind) {
        (StepKind::SendEmail(be), StepKind::SendEmail(he)) => {
            email_aspects(be, he, changed_templates)
        }
        (StepKind::Wait(bw), StepKind::Wait(hw)) => changed("wait", wait_text(bw), wait_text(hw))
            .into_iter()
            .map(|t| (t, Effect::Wait))
            .collect(),
        (StepKind::WaitFor(bw), StepKind::WaitFor(hw)) => other(
            [
                changed("wait_for", filter_text(&bw.filter), filter_text(&hw.filter)),
                changed("timeout", bw.timeout, hw.timeout),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        (StepKind::If(bb), StepKind::If(hb)) => other(
            changed(
                "condition",
                expr_text(&bb.condition),
                expr_text(&hb.condition),
            )
            .into_iter()
            .collect(),
        ),
        (StepKind::AbSplit(_), StepKind::AbSplit(_)) => other(
            changed("weights", weights_text(&b.kind), weights_text(&h.kind))
                .into_iter()
                .collect(),
        ),
        (StepKind::UpdateProfile(bu), StepKind::UpdateProfile(hu)) => {
            let text = |u: &nudge_core::workflow::model::UpdateProfile| {
                let set: Vec<String> = u
                    .set
                    .iter()
                    .map(|(k, v)| match v {
                        ProfileValue::Template(t) => format!("{k}={}", quoted(&t.source)),
                        ProfileValue::Literal(l) => format!("{k}={l}"),
                    })
                    .collect();
                format!(
                    "set [{}] add_tags [{}] remove_tags [{}]",
                    set.join(", "),
                    u.add_tags.join(", "),
                    u.remove_tags.join(", ")
                )
            };
            other(
                changed("update_profile", text(bu), text(hu))
                    .into_iter()
                    .collect(),
            )
        }
        (StepKind::Webhook(bh), StepKind::Webhook(hh)) => {
            let text = |w: &nudge_core::workflow::model::Webhook| {
                format!(
                    "{:?} {} body {} secret {}",
                    w.method,
                    w.url,
                    opt(w.body.as_ref(), ToString::to_string, "default"),
                    opt(w.secret.as_deref(), str::to_owned, "none")
                )
            };
            other(changed("webhook", text(bh), text(hh)).into_iter().collect())
        }
        // Another kind: whatever the run finds there now is new.
        _ => {
            let effect = match h.kind {
                StepKind::SendEmail(_) => Effect::Mail,
                _ => Effect::Other,
            };
            vec![(format!("kind {} → {}", summary(b), summary(h)), effect)]
        }
    }
}

/// What changed in an email step (tags change no mail a customer sees).
fn email_aspects(
    b: &SendEmail,
    h: &SendEmail,
    changed_templates: &BTreeSet<String>,
) -> Vec<(String, Effect)> {
    let template = if b.template != h.template {
        Some(format!("template {} → {}", b.template, h.template))
    } else if changed_templates.contains(&h.template) {
        Some(format!("template {} (file edited)", h.template))
    } else {
        None
    };
    [
        template,
        changed(
            "subject",
            quoted(&b.subject.source),
            quoted(&h.subject.source),
        ),
        changed(
            "preheader",
            template_text(b.preheader.as_ref()),
            template_text(h.preheader.as_ref()),
        ),
        changed(
            "from",
            opt(b.from.as_ref(), mailbox_text, "the settings'"),
            opt(h.from.as_ref(), mailbox_text, "the settings'"),
        ),
        changed(
            "reply_to",
            opt(b.reply_to.as_ref(), mailbox_text, "the settings'"),
            opt(h.reply_to.as_ref(), mailbox_text, "the settings'"),
        ),
    ]
    .into_iter()
    .flatten()
    .map(|t| (t, Effect::Mail))
    .chain(changed("tags", b.tags.join(","), h.tags.join(",")).map(|t| (t, Effect::Other)))
    .collect()
}

/// What a step change is about, for the runs in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// The mail it sends (template, its file, subject, preheader, sender, reply-to).
    Mail,
    /// A `wait`'s length or time of day.
    Wait,
    /// Anything else.
    Other,
}

/// What changed in step `id` of workflow `h` since `b`: `None` when the step is not in both or
/// did not change.
pub(super) fn step_effects(
    b: &Workflow,
    h: &Workflow,
    id: &str,
    changed_templates: &BTreeSet<String>,
) -> Option<Vec<Effect>> {
    fn find<'w>(w: &'w Workflow, id: &str) -> Option<&'w Step> {
        w.all_steps().into_iter().find(|s| s.id == id)
    }
    let (old, new) = (find(b, id)?, find(h, id)?);
    let effects: Vec<Effect> = step_aspects(old, new, changed_templates)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    (!effects.is_empty()).then_some(effects)
}
