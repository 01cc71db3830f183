#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's
fixtures: the shipped workflows/, the broken workflows of tests/cases/validate/ (laid over
its _base/, as the validation tests do), the lines of events/sample.jsonl, and the Shopify
and SES events of tests/fixtures/shopify/ and tests/fixtures/ses/.

Run from anywhere: fuzz/seeds.py. It replaces the seed folders, except the files named
`regression-*` (inputs that once crashed a target, kept by hand); review the diff."""

import base64
import hashlib
import hmac
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
CASES = ROOT / "tests" / "cases" / "validate"


def files_under(folder, prefix=""):
    """{relative name: bytes} of every file under folder."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[prefix + p.relative_to(folder).as_posix()] = p.read_bytes()
    return out


def project(files):
    """A load_project input: each file under a `==> NAME <==` header."""
    parts = []
    for name, body in files.items():
        if not body.endswith(b"\n"):
            body += b"\n"
        parts.append(b"==> " + name.encode() + b" <==\n" + body)
    return b"".join(parts)


def write(target, seeds):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("regression-"):
            old.unlink()
    for seed in seeds:
        name = hashlib.sha1(seed).hexdigest()[:16]
        (folder / name).write_bytes(seed)
    print(f"{target}: {len(set(seeds))} seeds")


def load_project_seeds():
    seeds = []
    shipped = ROOT / "workflows"
    settings = (shipped / "settings.yaml").read_bytes()
    for wf in sorted(shipped.glob("*.yaml")):
        if wf.name == "settings.yaml":
            continue
        files = {"settings.yaml": settings, wf.name: wf.read_bytes()}
        files.update(files_under(shipped / "templates" / wf.stem, f"templates/{wf.stem}/"))
        seeds.append(project(files))
    base = files_under(CASES / "_base")
    for case in sorted(CASES.iterdir()):
        if case.name.startswith("_") or case.suffix == ".expected":
            continue
        files = dict(base)
        if case.is_dir():
            files.update(files_under(case))
        else:
            files[case.name] = case.read_bytes()
        seeds.append(project(files))
    seeds += [project(files) for files in issue11_projects(settings)]
    return seeds


# Projects that reach the checks of language v1.1: `profile:` and `currency:` in the settings,
# templates reading customer and event paths (sent by a workflow, so that their event paths are
# checked against its trigger), filters, tests and calls, goal and wait keys, YAML 1.2 plain
# scalars, tabs and `: ` inside values, non-ASCII text.
ISSUE11_SETTINGS = b"""profile:
  - { name: loyalty_tier, type: text }
  - { name: pet_birthday, type: date }
  - name: uye_no  # \xc3\xbcye numaras\xc4\xb1
    type: number
"""

ISSUE11_WORKFLOW = """id: cart
name: yes
description: 1.10
category: marketing
trigger: { event: checkout.started, when: "event.checkout.total | default(0) is not none" }
key: "event.checkout.id"
exit_when:
  - { event: order.placed, key: "event.order.checkout_id" }
  - event: customer.updated
    when: customer.loyalty_tier == 'gold' and customer.loyalty_tire is defined
steps:
  - id: w
    wait_for: { event: order.placed, key: "event.order.checkout_id | string", timeout: 2d }
  - id: s
    send_email:
      template: cart/hi.mjml
      subject: "Sepetin {{ customer.first_name | uper }} \u015fimdi {{ event.checkout.totl }}"
      tags: [cart, spring-2026]
  - id: u
    update_profile: { set: { last_cart: "{{ event.checkout.id }}" } }
""".encode()

ISSUE11_TEMPLATE = """<mjml><mj-body><mj-section><mj-column><mj-text>
Merhaba {{ customer.frist_name | default('dostum') }}, {{ customer.pet_birthday }}
{% filter upper %}{{ event.checkout.itemz | length }}{% endfilter %}
{% raw %}{{ customer.nope | money }}{% endraw %}{# {{ event.x }} #}
{% if customer.tags is not empty and event.checkout.total is evn %}{{ rnage(3) }}{% endif %}
{% for i in event.checkout.items %}{{ i.sku }} {{ loop.index }}{% endfor %}
{{ customer.last_cart }} {{ links.unsubscribe }} {{ store.postal_address }}
</mj-text></mj-column></mj-section></mj-body></mjml>
""".encode()


def issue11_projects(settings):
    """The v1.1 projects: one that loads, and its settings and workflow broken in ways the
    hints explain (a tab in the indentation, `: ` in a value, a lone CR ending lines)."""
    good = {
        "settings.yaml": settings + ISSUE11_SETTINGS,
        "cart.yaml": ISSUE11_WORKFLOW,
        "templates/cart/hi.mjml": ISSUE11_TEMPLATE,
    }
    tab = dict(good, **{"cart.yaml": ISSUE11_WORKFLOW.replace(b"  - id: u", b"\t- id: u")})
    colon = dict(good, **{"cart.yaml": ISSUE11_WORKFLOW.replace(b"name: yes", b"name: Sepet: 10% \xc3\xbcye")})
    cr = dict(good, **{"settings.yaml": (settings + ISSUE11_SETTINGS).replace(b"\n", b"\r")})
    return [good, tab, colon, cr]


def template_texts():
    """Every template, and every expression and template scalar of the workflows."""
    texts = []
    for folder in [ROOT / "workflows", CASES]:
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            if p.suffix in (".mjml", ".html"):
                texts.append(p.read_bytes())
            elif p.suffix == ".yaml":
                for line in p.read_text().splitlines():
                    key, sep, value = line.strip().lstrip("- ").partition(": ")
                    if sep and key in ("if", "when", "key", "subject", "preheader", "body"):
                        texts.append(value.strip().strip("\"'").encode())
    # Regressions: what the fuzzers found (a name after a multi-byte character; a broken
    # Outlook conditional comment).
    texts += [b"\xc3\xa9 {{ custmer }}", b"<!--[if--><mjml"]
    return texts


def event_lines():
    lines = (ROOT / "events" / "sample.jsonl").read_bytes().splitlines()
    return lines


def events_file_seeds(lines):
    """A few small events files: a customer's lines together, and some broken lines."""
    by_customer = {}
    for line in lines:
        cid = json.loads(line)["detail"]["customer"]["id"]
        by_customer.setdefault(cid, []).append(line)
    seeds = [b"\n".join(ls[:6]) + b"\n" for _, ls in sorted(by_customer.items())[:12]]
    seeds.append(b"\xef\xbb\xbf" + lines[0] + b"\r\n" + b"{not json\r\n" + lines[1] + b"\r\n")
    seeds.append(lines[0] + b"\n\xff\xfe bad bytes\n" + lines[2] + b"\n" + lines[0] + b"\n")
    # Regression: a rejected line far in the future set simulate's default end.
    seeds.append(lines[0] + b'\n{"id": "x", "time": "4385-01-01T00:00:00Z"}\n')
    return seeds


# Each Shopify payload fixture with the topic it is a delivery of.
SHOPIFY_TOPICS = {
    "customers-create.json": ["customers/create"],
    "customers-update-2025-01.json": ["customers/update"],
    "customers-email-marketing-consent-update.json": ["customers_email_marketing_consent/update"],
    "orders-create.json": ["orders/create"],
    "orders-create-guest.json": ["orders/create"],
    "orders-cancelled.json": ["orders/cancelled"],
    "fulfillments-create.json": ["fulfillments/create"],
    "fulfillments-update-delivered.json": ["fulfillments/update"],
    "fulfillments-update-in-transit.json": ["fulfillments/update"],
    "checkouts-create.json": ["checkouts/create", "checkouts/update"],
    "customers-redact.json": ["customers/redact"],
}


def shopify_delivery(topic, payload, event_id="e-1"):
    """An EventBridge partner delivery of `payload` (a JSON value, or text) under `topic`."""
    metadata = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "nudge-beans.myshopify.com",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": "w-1",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Triggered-At": "2026-03-02T07:00:00Z",
    }
    return json.dumps({
        "version": "0", "id": "eb-1", "detail-type": topic,
        "source": "aws.partner/shopify.com/123456/nudge-beans", "time": "2026-03-02T07:00:01Z",
        "detail": {"metadata": metadata, "payload": payload},
    }).encode()


def shopify_seed(delivery, secret=b"nudge-test-shopify-secret"):
    """A `shopify` input: the delivery, the secret and the delivery's signature under it."""
    signature = base64.b64encode(hmac.new(secret, delivery, hashlib.sha256).digest())
    return delivery + b"\xff" + secret + b"\xff" + signature


def shopify_seeds():
    folder = ROOT / "tests" / "fixtures" / "shopify"
    seeds = [shopify_seed((folder / "eventbridge-orders-create.json").read_bytes().strip())]
    for name, topics in sorted(SHOPIFY_TOPICS.items()):
        payload = json.loads((folder / name).read_text())
        seeds += [shopify_seed(shopify_delivery(topic, payload)) for topic in topics]
    # A body that was not JSON (kept as a string), a JSON string, a wrong signature, no secret.
    seeds.append(shopify_seed(shopify_delivery("orders/create", "{not json")))
    seeds.append(shopify_seed(shopify_delivery("orders/create", '"x"')))
    seeds.append(shopify_delivery("customers/create", {"id": 1}) + b"\xffk\xffAAAA")
    seeds.append(shopify_delivery("app/uninstalled", {}) + b"\xff\xff")
    return seeds


def ses_seeds():
    folder = ROOT / "tests" / "fixtures" / "ses"
    seeds = [p.read_bytes() for p in sorted(folder.glob("*.json"))]
    bounce = json.loads((folder / "bounce-permanent.json").read_text())
    # A bounce without recipients, and one naming "Name <address>" twice.
    bounce["detail"]["bounce"]["bouncedRecipients"] = []
    seeds.append(json.dumps(bounce).encode())
    bounce["detail"]["bounce"]["bouncedRecipients"] = [
        {"emailAddress": "Ayşe <bounce@simulator.amazonses.com>"},
        {"emailAddress": "bounce@simulator.amazonses.com"},
    ]
    seeds.append(json.dumps(bounce).encode())
    return seeds + [b"", b"{}", b"[]", b'{"id": "x", "source": "aws.ses"}']


def main():
    write("load_project", load_project_seeds())
    write("check_template", template_texts())
    lines = event_lines()
    write("parse_event", lines[:40] + [b"", b"{}", b"[]", b'{"id": 1}'])
    write("events_file", events_file_seeds(lines))
    write("shopify", shopify_seeds())
    write("ses_events", ses_seeds())


if __name__ == "__main__":
    main()
