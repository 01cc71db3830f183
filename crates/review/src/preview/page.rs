//! The site's pages: the index, one page per email, and the diagnostics page. Every text from
//! the workflows or the sample data goes through `esc`; the email's HTML goes only into its
//! sandboxed frame.

use std::fmt::Write;

use nudge_core::diagnostic::Diagnostic;
use nudge_core::mail::{Category, escape_html as esc};
use nudge_core::workflow::Project;

use super::diagram;
use super::{EmailView, Options, WorkflowView};

/// The site's style sheet, inline in every page (no network).
const CSS: &str = r#"
:root{--ink:#1c2333;--muted:#5f6b7e;--line:#e3e7ef;--bg:#f4f6fa;--card:#fff;--mk:#6d28d9;--mk-bg:#f1eafe;--tx:#0f766e;--tx-bg:#dcf5f0;--warn:#9a5b00;--warn-bg:#fff4d6;--err:#b42318;--err-bg:#fde8e6;--accent:#2f5bea}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:13px}
header.top{background:linear-gradient(120deg,#1c2333,#2b3a67);color:#fff;padding:28px max(32px,calc((100% - 1176px) / 2)) 24px}
header.top h1{margin:0 0 4px;font-size:26px;font-weight:700;letter-spacing:-.01em}
header.top p{margin:0;color:#c9d2ea}
header.top a{color:#c9d2ea}
.stats{display:flex;gap:12px;margin-top:18px;flex-wrap:wrap}
.stat{background:rgba(255,255,255,.1);border-radius:10px;padding:8px 14px;min-width:110px}
.stat b{display:block;font-size:22px;line-height:1.2}
.toc{display:flex;flex-wrap:wrap;gap:8px;margin-top:16px}
.toc a{display:inline-flex;align-items:center;gap:6px;color:#fff;background:rgba(255,255,255,.08);border:1px solid rgba(255,255,255,.15);border-radius:999px;padding:3px 12px;font-size:13px}
.toc a:hover{background:rgba(255,255,255,.18);text-decoration:none}
.dot{width:8px;height:8px;border-radius:50%;display:inline-block}.dot.marketing{background:#b794f6}.dot.transactional{background:#4fd1c5}
.stat span{font-size:12px;color:#c9d2ea;text-transform:uppercase;letter-spacing:.06em}
main{max-width:1240px;margin:0 auto;padding:28px 32px 60px}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;box-shadow:0 1px 2px rgba(20,30,60,.04),0 4px 16px rgba(20,30,60,.05);padding:22px 24px;margin:0 0 24px}
.card h2{margin:0;font-size:20px}
.card h3{margin:18px 0 8px;font-size:13px;text-transform:uppercase;letter-spacing:.07em;color:var(--muted)}
.wf-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.wf-id{color:var(--muted);font-size:13px}
.desc{color:var(--muted);margin:6px 0 10px;max-width:80ch}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600;letter-spacing:.02em}
.badge.marketing{background:var(--mk-bg);color:var(--mk)}
.badge.transactional{background:var(--tx-bg);color:var(--tx)}
.badge.off{background:#eceef2;color:var(--muted)}
.badge.warn{background:var(--warn-bg);color:var(--warn)}
.badge.err{background:var(--err-bg);color:var(--err)}
.facts{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:14px;color:var(--muted);margin:4px 0 0}
.facts b{color:var(--ink);font-weight:600}
.cols{display:grid;grid-template-columns:minmax(340px,6fr) 5fr;gap:24px;align-items:start}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.flow{display:flex;flex-direction:column;align-items:stretch;gap:14px;font-size:13px}
.node{position:relative;display:block;background:#f8f9fc;border:1px solid var(--line);border-radius:10px;padding:8px 12px;color:var(--ink)}
.flow>.node+.node::before,.flow>.branches+.node::before,.branch>.node+.node::before,.branch>.branches+.node::before,.node+.branches::before{content:"";position:absolute;left:50%;top:-15px;height:14px;border-left:2px solid #c9cfdb}
.node .chip{display:inline-block;font-size:10px;font-weight:700;text-transform:uppercase;letter-spacing:.07em;border-radius:5px;padding:1px 6px;margin-right:8px;background:#e6e9f1;color:var(--muted)}
.node .sid{display:block;font-size:11px;color:var(--muted);margin-top:2px}
.node.trigger{background:#eef2ff;border-color:#c7d2fe}.node.trigger .chip{background:#c7d2fe;color:#3730a3}
.node.end{background:#ecfdf3;border-color:#b7ebcd}.node.end .chip{background:#b7ebcd;color:#05603a}
.node.exit .chip{background:#fde2e1;color:#b42318}
.node.email{background:#fff;border-color:#c9cfdb;box-shadow:0 1px 3px rgba(20,30,60,.06)}
.node.email .chip{background:var(--accent);color:#fff}
.node.email .subj{font-weight:600}
a.node.email:hover{border-color:var(--accent);text-decoration:none}
.node.email.warned{border-color:#f2c46d}.node.email.failed{border-color:#f3a59e}
.node.cond{background:#fff8ec;border-color:#f6d8a8}.node.cond .chip{background:#f6d8a8;color:#7a4a00}
.node.none{color:var(--muted);font-style:italic;background:transparent;border-style:dashed}
.branches{position:relative;display:flex;gap:10px;border-top:2px solid #c9cfdb;padding-top:10px}
.branch{flex:1;display:flex;flex-direction:column;gap:14px;min-width:0}
.blabel{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.06em;color:#7a4a00;text-align:center}
.emails{display:grid;gap:12px}
.email-card{display:block;border:1px solid var(--line);border-radius:12px;padding:14px 16px;color:var(--ink);background:#fff;transition:border-color .15s,box-shadow .15s}
a.email-card.marketing{border-left:4px solid var(--mk)}a.email-card.transactional{border-left:4px solid var(--tx)}
a.email-card:hover{border-color:var(--accent);box-shadow:0 4px 14px rgba(47,91,234,.12);text-decoration:none}
.email-card .subject{font-weight:650;font-size:16px}
.email-card .pre{color:var(--muted);font-size:14px;margin-top:2px}
.email-card .meta{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:12px;color:var(--muted);margin-top:8px}
.path{display:inline-block;background:#fff8ec;color:#7a4a00;border-radius:6px;padding:0 6px}
.warnings{list-style:none;margin:10px 0 0;padding:0}
.warnings li{background:var(--warn-bg);color:var(--warn);border-radius:8px;padding:6px 10px;margin-top:6px;font-size:13px}
.warnings li.error{background:var(--err-bg);color:var(--err)}
.warnings code{font-size:12px}
.sample{font-size:13px;color:var(--muted);margin-top:14px}
.sample summary{cursor:pointer}
pre.block{background:#0f1524;color:#e6e9f1;border-radius:10px;padding:14px 16px;overflow:auto;white-space:pre-wrap;word-break:break-word;margin:6px 0 0}
table.meta{border-collapse:collapse;width:100%;font-size:14px}
table.meta th{width:120px;text-align:left;color:var(--muted);font-weight:600;padding:6px 12px 6px 0;vertical-align:top}
table.meta.headers th{width:190px;white-space:nowrap}
table.meta td{padding:6px 0;border-bottom:1px solid var(--line);word-break:break-word}
.frames{display:flex;gap:28px;align-items:flex-start;flex-wrap:wrap}
.frame{display:flex;flex-direction:column;gap:8px}
.frame .label{font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.07em;color:var(--muted)}
.frame iframe{border:1px solid var(--line);border-radius:10px;background:#fff;height:900px;display:block}
.frame.desktop iframe{width:680px;max-width:calc(100vw - 80px)}
/* 375px inside the 10px border */
.frame.phone iframe{width:395px;border:10px solid #1c2333;border-radius:30px}
.crumbs{font-size:14px;margin-bottom:10px}.crumbs a{color:#c9d2ea}
.note{font-size:13px;color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 30px}
"#;

/// Sizes each email frame to its content once loaded (same origin: the site's own files).
const SCRIPT: &str = r#"
document.querySelectorAll("iframe[data-fit]").forEach(function(f){
  function fit(){try{var d=f.contentDocument;if(d&&d.body){f.style.height=Math.max(200,d.documentElement.scrollHeight)+"px";}}catch(e){}}
  f.addEventListener("load",fit);fit();
});
"#;

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(title)
    )
}

fn category(c: Category) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", c.as_str())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `index.html`.
pub(super) fn index(
    project: &Project,
    views: &[WorkflowView<'_>],
    general: &[&Diagnostic],
    options: &Options,
) -> String {
    let store = &project.settings.store.name;
    let emails: usize = views.iter().map(|v| v.emails.len()).sum();
    let warnings: usize = general.len()
        + views
            .iter()
            .map(|v| v.warnings.len() + v.emails.iter().map(|e| e.warnings.len()).sum::<usize>())
            .sum::<usize>();
    let marketing = views
        .iter()
        .filter(|v| v.workflow.category == Category::Marketing)
        .count();
    let mut out = head(&format!("{store}: email preview"));
    let _ = write!(
        out,
        "<header class=\"top\"><h1>{} · email preview</h1><p>Every email of every workflow, rendered as it would be sent.</p><div class=\"stats\">\
         <div class=\"stat\"><b>{}</b><span>workflows</span></div><div class=\"stat\"><b>{emails}</b><span>emails</span></div>\
         <div class=\"stat\"><b>{marketing}</b><span>marketing</span></div><div class=\"stat\"><b>{}</b><span>transactional</span></div>\
         <div class=\"stat\"><b>{warnings}</b><span>warnings</span></div></div>",
        esc(store),
        views.len(),
        views.len() - marketing
    );
    out.push_str("<nav class=\"toc\">");
    for v in views {
        let _ = write!(
            out,
            "<a href=\"#{}\"><span class=\"dot {}\"></span>{}</a>",
            esc(&v.workflow.id),
            v.workflow.category.as_str(),
            esc(&v.workflow.name)
        );
    }
    out.push_str("</nav></header><main>");
    if !general.is_empty() {
        out.push_str("<section class=\"card\"><h2>Warnings</h2>");
        warning_list(&mut out, general.iter().copied());
        out.push_str("</section>");
    }
    for view in views {
        workflow_card(&mut out, view);
    }
    let _ = write!(
        out,
        "</main><footer>Rendered {} · {} · nudge preview</footer></body></html>",
        esc(&options.now.format("%Y-%m-%d %H:%M UTC").to_string()),
        esc(options.data_file.as_deref().map_or(
            "sample data made up where not given",
            |_| "sample data from the data file where given"
        ))
    );
    out
}

fn workflow_card(out: &mut String, view: &WorkflowView<'_>) {
    let w = view.workflow;
    let _ = write!(
        out,
        "<section class=\"card\" id=\"{}\"><div class=\"wf-head\"><h2>{}</h2>{}{}<span class=\"wf-id\">{}</span></div>",
        esc(&w.id),
        esc(&w.name),
        category(w.category),
        if w.enabled {
            ""
        } else {
            "<span class=\"badge off\">disabled</span>"
        },
        esc(&w.id)
    );
    if let Some(d) = &w.description {
        let _ = write!(out, "<p class=\"desc\">{}</p>", esc(d));
    }
    let _ = write!(
        out,
        "<div class=\"facts\"><span><b>Trigger</b> {}</span><span><b>Entry</b> {}</span><span><b>Emails</b> {}</span></div>",
        esc(&diagram::trigger_summary(w)),
        esc(&diagram::entry_summary(w)),
        view.emails.len()
    );
    if !view.warnings.is_empty() {
        warning_list(out, view.warnings.iter());
    }
    out.push_str("<div class=\"cols\"><div><h3>Flow</h3>");
    out.push_str(&diagram::flow(w, &view.emails, ""));
    out.push_str("</div><div><h3>Emails</h3><div class=\"emails\">");
    for email in &view.emails {
        email_card(out, email, w.category);
    }
    if view.emails.is_empty() {
        out.push_str("<p class=\"note\">This workflow sends no email.</p>");
    }
    out.push_str("</div>");
    sample_details(out, view);
    out.push_str("</div></div></section>");
}

fn email_card(out: &mut String, email: &EmailView, category: Category) {
    let _ = write!(
        out,
        "<a class=\"email-card {}\" href=\"{}\">",
        category.as_str(),
        esc(&email.href)
    );
    match &email.result {
        Ok(r) => {
            let _ = write!(out, "<div class=\"subject\">{}</div>", esc(&r.subject));
            if let Some(p) = &r.preheader {
                let _ = write!(out, "<div class=\"pre\">{}</div>", esc(p));
            }
        }
        Err(e) => {
            let _ = write!(
                out,
                "<div class=\"subject\">{}</div><ul class=\"warnings\"><li class=\"error\">Not sent for this data: {}</li></ul>",
                esc(&email.subject_source),
                esc(&e.to_string())
            );
        }
    }
    let _ = write!(
        out,
        "<div class=\"meta\"><span>step <b>{}</b></span><span>{}</span>",
        esc(&email.step),
        esc(&email.template)
    );
    if !email.path.is_empty() {
        let _ = write!(
            out,
            "<span class=\"path\">{}</span>",
            esc(&email.path.join(" › "))
        );
    }
    if !email.warnings.is_empty() {
        let _ = write!(
            out,
            "<span class=\"badge warn\">{}</span>",
            plural(email.warnings.len(), "warning", "warnings")
        );
    }
    out.push_str("</div></a>");
}

fn sample_details(out: &mut String, view: &WorkflowView<'_>) {
    let s = &view.sample;
    let _ = write!(
        out,
        "<details class=\"sample\"><summary>Sample data: customer {}; event {}{}</summary>",
        esc(s.customer_source.describe()),
        esc(s.event_source.describe()),
        if s.email_made_up {
            "; the address is made up (the data gives none)"
        } else {
            ""
        }
    );
    let json = serde_json::json!({"customer": s.customer, "event": s.event});
    let _ = write!(
        out,
        "<pre class=\"block\">{}</pre></details>",
        esc(&serde_json::to_string_pretty(&json).unwrap_or_default())
    );
}

fn warning_list<'a>(out: &mut String, diags: impl Iterator<Item = &'a Diagnostic>) {
    out.push_str("<ul class=\"warnings\">");
    for d in diags {
        let _ = write!(
            out,
            "<li class=\"{}\"><code>{}:{}:{}</code> {}</li>",
            d.severity.as_str(),
            esc(&d.path.display().to_string()),
            d.pos.line,
            d.pos.col,
            esc(&d.message)
        );
    }
    out.push_str("</ul>");
}

/// One email's page (`emails/<workflow>/<step>.html`: links go up two folders).
pub(super) fn email(
    project: &Project,
    view: &WorkflowView<'_>,
    email: &EmailView,
    options: &Options,
) -> String {
    let w = view.workflow;
    let title = email
        .result
        .as_ref()
        .map_or_else(|_| email.subject_source.clone(), |r| r.subject.clone());
    let mut out = head(&format!("{title} · {}", w.name));
    let _ = write!(
        out,
        "<header class=\"top\"><div class=\"crumbs\"><a href=\"../../index.html\">{}</a> › <a href=\"../../index.html#{}\">{}</a> › {}</div><h1>{}</h1><p>{} {}</p></header><main>",
        esc(&project.settings.store.name),
        esc(&w.id),
        esc(&w.name),
        esc(&email.step),
        esc(&title),
        category(w.category),
        if email.path.is_empty() {
            String::new()
        } else {
            format!(
                "<span class=\"path\">{}</span>",
                esc(&email.path.join(" › "))
            )
        }
    );
    if !email.warnings.is_empty() {
        out.push_str("<section class=\"card\"><h2>Warnings</h2>");
        warning_list(&mut out, email.warnings.iter());
        out.push_str("</section>");
    }
    match &email.result {
        Ok(r) => rendered_sections(&mut out, view, email, r),
        Err(e) => {
            let _ = write!(
                out,
                "<section class=\"card\"><h2>Not sent for this sample</h2><ul class=\"warnings\"><li class=\"error\">{}</li></ul><p class=\"note\">The engine would skip this email for the sample data below. Give other data with <code>--data</code>.</p></section>",
                esc(&e.to_string())
            );
        }
    }
    out.push_str("<section class=\"card\">");
    sample_details(&mut out, view);
    let _ = write!(
        out,
        "</section></main><footer>Rendered {} · nudge preview</footer><script>{SCRIPT}</script></body></html>",
        esc(&options.now.format("%Y-%m-%d %H:%M UTC").to_string())
    );
    out
}

fn rendered_sections(
    out: &mut String,
    view: &WorkflowView<'_>,
    email: &EmailView,
    r: &super::Rendered,
) {
    let file = |ext: &str| {
        let base = email.href.rsplit('/').next().unwrap_or_default();
        base.trim_end_matches(".html").to_owned() + ext
    };
    out.push_str("<section class=\"card\"><table class=\"meta\">");
    let mut row = |k: &str, v: &str| {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    };
    row("From", &r.from);
    row("To", &r.to);
    if let Some(reply) = &r.reply_to {
        row("Reply-To", reply);
    }
    row("Subject", &r.subject);
    row("Preheader", r.preheader.as_deref().unwrap_or("(none)"));
    row("Template", &email.template);
    row("Sample data", view.sample.customer_source.describe());
    out.push_str("</table></section>");
    let body = esc(&file(".body.html"));
    let _ = write!(
        out,
        "<section class=\"card\"><h2>HTML</h2><div class=\"frames\">\
         <div class=\"frame desktop\"><span class=\"label\">Desktop · 680px</span><iframe data-fit title=\"desktop\" sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\" src=\"{body}\"></iframe></div>\
         <div class=\"frame phone\"><span class=\"label\">Phone · 375px</span><iframe data-fit title=\"phone\" sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\" src=\"{body}\"></iframe></div>\
         </div></section>"
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Text part</h2><pre class=\"block\">{}</pre></section>",
        esc(&r.text)
    );
    out.push_str(
        "<section class=\"card\"><h2>Headers</h2><p class=\"note\">As the outbox writes them",
    );
    if r.category == Category::Marketing {
        out.push_str(
            " (List-Unsubscribe and List-Unsubscribe-Post: one-click unsubscribe, RFC 8058)",
        );
    }
    let _ = write!(
        out,
        ". <a href=\"{}\">Download the .eml</a></p><table class=\"meta headers\">",
        esc(&file(".eml"))
    );
    for (k, v) in &r.headers {
        let _ = write!(
            out,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(k),
            esc(v)
        );
    }
    out.push_str("</table></section>");
}

/// The page shown while the workflows have errors.
pub(super) fn diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = head("nudge preview: the workflows have errors");
    out.push_str("<header class=\"top\"><h1>The workflows have errors</h1><p>Fix them and save: this page rebuilds by itself on the next reload.</p></header><main><section class=\"card\">");
    warning_list(&mut out, diags.iter());
    out.push_str("</section></main></body></html>");
    out
}
