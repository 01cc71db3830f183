//! Known-good documents the schemas must accept and known-bad ones they must reject where the
//! mistake is: the schema is neither stricter nor looser than the language.

use jsonschema::Validator;

use super::explain::problems;
use super::{parse_yaml, settings_validator, workflow_validator};

/// Settings as a store would write them.
pub(super) const GOOD_SETTINGS: &str = r#"# yaml-language-server: $schema=../schema/settings.schema.json
store: { name: "Kahve Dükkanı", url: "https://shop.example.com", postal_address: "Moda Cd. 1, İstanbul" }
from: "Kahve Dükkanı <hello@shop.example.com>"
reply_to: "support@shop.example.com"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 1, per: 16h }
unsubscribe_url: "https://shop.example.com/unsubscribe"
"#;

/// The example of the contract, as a marketer would write it.
pub(super) const GOOD_WIN_BACK: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: win-back
name: Win-back
category: marketing
enabled: true
trigger:
  event: order.placed
  when: "event.order.total >= 20"
key: "event.order.id"
entry: restart
exit_when:
  - event: order.placed
send_window: { start: "09:00", end: "20:00" }
steps:
  - wait: 90d
    id: wait-90
  - id: miss-you
    send_email:
      template: win-back/miss-you.mjml
      subject: "We miss you, {{ customer.first_name | default('friend') }}"
      preheader: "Here is 15% off your next order"
  - wait: 14d
    id: wait-14
  - id: regular
    if: "customer.orders_count >= 3"
    then:
      - id: vip-last-call
        send_email: { template: win-back/vip.mjml, subject: "A thank-you for a regular" }
    else:
      - id: last-call
        send_email: { template: win-back/last-call.mjml, subject: "Last chance" }
"#;

/// A date trigger and every other step kind.
const GOOD_BIRTHDAY: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: birthday-reward
description: A gift a few days before the birthday.
category: marketing
trigger: { date: customer.birthday, at: "09:00", offset: -3d, when: "customer.orders_count >= 1" }
entry: { every: 365d }
steps:
  - id: tag
    update_profile:
      set: { last_birthday_code: "BDAY-{{ customer.id }}", vip: true, points: 100 }
      add_tags: [birthday]
      remove_tags: [lapsed]
  - id: notify-crm
    webhook:
      url: https://crm.example.com/hooks/nudge
      method: PUT
      secret: crm/webhook_key
      body: { customer: "{{ customer.id }}", event: birthday, items: [1, 2] }
  - id: split
    ab_split:
      - weight: 45
        steps:
          - id: gift-a
            send_email:
              template: birthday-reward/a.html
              subject: "Happy birthday!"
              from: hello@shop.example.com
              reply_to: "Support <support@shop.example.com>"
              tags: [birthday, variant-a]
      - weight: 45
        steps:
          - id: gift_b
            send_email: { template: birthday-reward/b.mjml, subject: "A gift for you" }
      - weight: 10
        steps: []
  - id: morning
    wait: { until: "08:30" }
  - id: always
    if: true
    then: [exit]
  - exit
"#;

/// A transactional, keyed workflow that waits for an event.
const GOOD_SHIPMENT: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: shipment-updates
category: transactional
trigger: { event: order.shipped }
key: event.order.id
entry: once
steps:
  - id: shipped
    send_email: { template: shipment-updates/shipped.mjml, subject: "Your order is on its way" }
  - id: delivered
    wait_for: { event: order.delivered, when: "event.order.id != ''", key: event.order.id, timeout: 2w }
  - id: check
    if: waited.matched
    then:
      - exit
    else:
      - id: late
        webhook: { url: "https://chat.example.com/late?order={{ event.order.id }}" }
"#;

/// The good workflows with the file names they are written under.
pub(super) const GOOD_WORKFLOWS: &[(&str, &str)] = &[
    ("win-back.yaml", GOOD_WIN_BACK),
    ("birthday-reward.yaml", GOOD_BIRTHDAY),
    ("shipment-updates.yml", GOOD_SHIPMENT),
];

/// Known-bad documents: what is wrong, the document, and where (JSON pointer) and by which
/// keyword the schema must reject it.
const BAD_WORKFLOWS: &[(&str, &str, &str, &str)] = &[
    (
        "misspelled step kind",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    sned_email: { template: x/hi.mjml, subject: Hi }\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "duration in words",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: pause\n    wait: 3 days\n",
        "/steps/0/wait",
        "pattern",
    ),
    (
        "time with am/pm",
        "id: x\ncategory: marketing\ntrigger: { date: customer.birthday, at: 9am }\nsteps:\n  - exit\n",
        "/trigger/at",
        "pattern",
    ),
    (
        "unknown category",
        "id: x\ncategory: promo\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/category",
        "enum",
    ),
    (
        "plain-http webhook",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: crm\n    webhook: { url: \"http://crm.example.com/hook\" }\n",
        "/steps/0/webhook/url",
        "pattern",
    ),
    (
        "webhook GET",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: crm\n    webhook: { url: \"https://crm.example.com/hook\", method: GET }\n",
        "/steps/0/webhook/method",
        "enum",
    ),
    (
        "zero wait",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: pause\n    wait: 0d\n",
        "/steps/0/wait",
        "pattern",
    ),
    (
        "bad duration inside a branch",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: check\n    if: customer.vip\n    then:\n      - id: pause\n        wait: 2 weeks\n",
        "/steps/0/then/0/wait",
        "pattern",
    ),
    (
        "24:00 is not a time",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsend_window: { start: \"09:00\", end: \"24:00\" }\nsteps:\n  - exit\n",
        "/send_window/end",
        "pattern",
    ),
    (
        "offset in words",
        "id: x\ncategory: marketing\ntrigger: { date: customer.birthday, offset: -3 days }\nsteps:\n  - exit\n",
        "/trigger/offset",
        "pattern",
    ),
    (
        "unknown entry policy",
        "id: x\ncategory: marketing\nentry: always\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/entry",
        "enum",
    ),
    (
        "both trigger forms",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created, date: customer.birthday }\nsteps:\n  - exit\n",
        "/trigger",
        "oneOf",
    ),
    (
        "missing category",
        "id: x\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "",
        "required",
    ),
    (
        "id is not a slug",
        "id: Win_Back\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/id",
        "pattern",
    ),
    (
        "no steps",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps: []\n",
        "/steps",
        "minItems",
    ),
    (
        "step without id",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - wait: 3d\n",
        "/steps/0",
        "required",
    ),
    (
        "step with two kinds",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: both\n    wait: 3d\n    send_email: { template: x/hi.mjml, subject: Hi }\n",
        "/steps/0",
        "oneOf",
    ),
    (
        "exit written as a mapping",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - exit: true\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "then on a step that is not an if",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.mjml, subject: Hi }\n    then: [exit]\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "a key on the trigger (the workflow's key is the trigger's)",
        "id: x\ncategory: marketing\ntrigger: { event: checkout.started, key: event.checkout.id }\nsteps:\n  - exit\n",
        "/trigger",
        "additionalProperties",
    ),
    (
        "wait_for without timeout",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: w\n    wait_for: { event: order.placed }\n",
        "/steps/0/wait_for",
        "required",
    ),
    (
        "template that is not mjml or html",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.txt, subject: Hi }\n",
        "/steps/0/send_email/template",
        "pattern",
    ),
    (
        "ab_split with one branch",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: s\n    ab_split:\n      - { weight: 1, steps: [exit] }\n",
        "/steps/0/ab_split",
        "minItems",
    ),
    (
        "ab_split weight 0",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: s\n    ab_split:\n      - { weight: 0, steps: [] }\n      - { weight: 1, steps: [] }\n",
        "/steps/0/ab_split/0/weight",
        "minimum",
    ),
    (
        "update_profile sets the email",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { email: a@b.c } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "update_profile sets tags",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { tags: [vip] } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "attribute name with capitals",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { VIP: true } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "update_profile that changes nothing",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: {}\n",
        "/steps/0/update_profile",
        "minProperties",
    ),
    (
        "date trigger on an attribute that is not a date",
        "id: x\ncategory: marketing\ntrigger: { date: customer.email }\nsteps:\n  - exit\n",
        "/trigger/date",
        "not",
    ),
    (
        "date trigger on something that is not a customer attribute",
        "id: x\ncategory: marketing\ntrigger: { date: birthday }\nsteps:\n  - exit\n",
        "/trigger/date",
        "pattern",
    ),
    (
        "template outside templates/",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: ../secrets/hi.html, subject: Hi }\n",
        "/steps/0/send_email/template",
        "pattern",
    ),
    (
        "blank subject",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.html, subject: \"  \" }\n",
        "/steps/0/send_email/subject",
        "pattern",
    ),
    (
        "step id starting with a hyphen",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: -pause\n    wait: 1d\n",
        "/steps/0/id",
        "pattern",
    ),
    (
        "step id with a space",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: say hi\n    wait: 1d\n",
        "/steps/0/id",
        "pattern",
    ),
];

/// Known-bad settings, as [`BAD_WORKFLOWS`].
const BAD_SETTINGS: &[(&str, &str, &str, &str)] = &[
    (
        "misspelled key",
        "store: { name: S, url: \"https://s.example\" }\nform: a@s.example\nfrom: a@s.example\ntimezone: UTC\n",
        "",
        "additionalProperties",
    ),
    (
        "missing timezone",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\n",
        "",
        "required",
    ),
    (
        "plain-http unsubscribe page",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nunsubscribe_url: \"http://s.example/unsubscribe\"\n",
        "/unsubscribe_url",
        "pattern",
    ),
    (
        "frequency cap of zero",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nfrequency_cap: { max: 0, per: 16h }\n",
        "/frequency_cap/max",
        "minimum",
    ),
    (
        "frequency cap over 1000",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nfrequency_cap: { max: 5000, per: 1d }\n",
        "/frequency_cap/max",
        "maximum",
    ),
    (
        "send window with am/pm",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nsend_window: { start: 9am, end: \"21:00\" }\n",
        "/send_window/start",
        "pattern",
    ),
    (
        "from without an address",
        "store: { name: S, url: \"https://s.example\" }\nfrom: Kahve Dükkanı\ntimezone: UTC\n",
        "/from",
        "pattern",
    ),
];

#[test]
fn known_good_documents_are_accepted() {
    let mut failures = Vec::new();
    for (name, text) in GOOD_WORKFLOWS
        .iter()
        .chain([&("settings.yaml", GOOD_SETTINGS)])
    {
        let doc = parse_yaml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let validator = if *name == "settings.yaml" {
            settings_validator()
        } else {
            workflow_validator()
        };
        for problem in problems(validator, &doc) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "good documents rejected:\n  {}",
        failures.join("\n  ")
    );
}

/// Fails unless `validator` rejects each case where it says, by the keyword it says.
fn assert_rejected(validator: &Validator, cases: &[(&str, &str, &str, &str)]) {
    let mut failures = Vec::new();
    for (what, text, path, keyword) in cases {
        let doc = parse_yaml(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
        let found = problems(validator, &doc);
        if found.is_empty() {
            failures.push(format!("{what}: accepted"));
        } else if !found
            .iter()
            .any(|p| p.path == *path && p.keyword == *keyword)
        {
            let found: Vec<String> = found.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{what}: expected `{keyword}` at {path:?}, got:\n      {}",
                found.join("\n      ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "known-bad documents:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn known_bad_workflows_are_rejected_where_the_mistake_is() {
    assert_rejected(workflow_validator(), BAD_WORKFLOWS);
}

#[test]
fn known_bad_settings_are_rejected_where_the_mistake_is() {
    assert_rejected(settings_validator(), BAD_SETTINGS);
}
