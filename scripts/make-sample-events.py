#!/usr/bin/env python3
"""Writes events/sample.jsonl: four months (2026-01-05 to 2026-04-30) of Kahve Dükkanı, the small
Istanbul coffee store of workflows/settings.yaml, as EventBridge events, one JSON object a line.

Usage: scripts/make-sample-events.py [OUTPUT]    (default: events/sample.jsonl)

Deterministic (fixed seeds, Python 3 standard library only): running it again gives the same
bytes. The file drives `nudge simulate --events events/sample.jsonl` and tests.

Customers c-1001 to c-1024 are a cast written by hand so that every branch of the shipped
workflows happens (see CAST below and the comment on each); c-1025 to c-1050 are ordinary
customers drawn at random. Times are written in the store's local time (Istanbul, UTC+3 all
year) and stored in UTC. Every address is under example.com, example.org or example.net.
"""

import copy
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20260105
ISTANBUL = timezone(timedelta(hours=3))
START = datetime(2026, 1, 5, 0, 0, tzinfo=ISTANBUL)
END = datetime(2026, 4, 30, 23, 0, tzinfo=ISTANBUL)  # nothing is written after this
ACCOUNT = "123456789012"
REGION = "eu-central-1"
FREE_SHIPPING_FROM = 75000  # kuruş
SHIPPING = 7990

# SKU: (title, price in kuruş)
CATALOGUE = {
    "BEAN-ETH-250": ("Ethiopia Yirgacheffe, 250 g", 52000),
    "BEAN-COL-250": ("Colombia Huila, 250 g", 48000),
    "BEAN-KEN-250": ("Kenya Nyeri AA, 250 g", 59000),
    "BEAN-BRA-1K": ("Brazil Cerrado, 1 kg", 145000),
    "BEAN-HOUSE-500": ("House Espresso Blend, 500 g", 76000),
    "BEAN-DECAF-250": ("Decaf Colombia, 250 g", 49500),
    "KHV-TURK-250": ("Türk Kahvesi, 250 g", 26000),
    "MUG-CER-300": ("Ceramic Mug, 300 ml", 35000),
    "MUG-ENAMEL": ("Enamel Camp Mug", 29000),
    "DRP-V60-02": ("V60 Dripper 02", 89000),
    "FLT-V60-100": ("V60 Paper Filters, 100 pcs", 18000),
    "FLT-CHEMEX-100": ("Chemex Filters, 100 pcs", 42000),
    "GRN-HAND-1": ("Hand Grinder", 285000),
    "GRN-ELEC-1": ("Electric Burr Grinder", 690000),
    "SAMPLE-3X30": ("Tasting Sample, 3 x 30 g", 0),
}
# How often the random customers pick each product.
POPULAR = (
    ["BEAN-ETH-250"] * 6 + ["BEAN-COL-250"] * 6 + ["BEAN-HOUSE-500"] * 5 + ["KHV-TURK-250"] * 4
    + ["BEAN-KEN-250"] * 3 + ["BEAN-BRA-1K"] * 2 + ["BEAN-DECAF-250"] * 2 + ["FLT-V60-100"] * 3
    + ["FLT-CHEMEX-100", "MUG-CER-300", "MUG-ENAMEL", "DRP-V60-02", "GRN-HAND-1", "GRN-ELEC-1"]
)
CARRIERS = {
    "yurtici": "Yurtiçi Kargo",
    "aras": "Aras Kargo",
    "mng": "MNG Kargo",
    "dhl": "DHL",
    "ups": "UPS",
}

rng = random.Random(SEED)
id_rng = random.Random(SEED + 1)  # event ids only, so that changing the cast moves no id
events = []


def local(text):
    """`2026-01-05 10:12` (or with seconds) in Istanbul time."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=ISTANBUL)


def jitter(t):
    """A few random seconds, so that times look recorded rather than written by hand."""
    return t + timedelta(seconds=rng.randrange(60))


class Customer:
    def __init__(self, n, first, last, email, tz="Europe/Istanbul", birthday=None,
                 accepts=True, orders_count=0, tags=None, **custom):
        self.id = f"c-{n}"
        self.first, self.last, self.email = first, last, email
        self.tz, self.birthday, self.accepts = tz, birthday, accepts
        self.orders_count = orders_count
        self.tags = tags if tags is not None else (["newsletter"] if accepts else [])
        self.custom = custom

    def profile(self):
        p = {"id": self.id, "email": self.email, "first_name": self.first, "last_name": self.last}
        if self.tz is not None:
            p["timezone"] = self.tz
        if self.birthday is not None:
            p["birthday"] = self.birthday
        p.update(accepts_marketing=self.accepts, orders_count=self.orders_count,
                 tags=list(self.tags))
        p.update(self.custom)
        return p

    def ref(self, **extra):
        return {"id": self.id, "email": self.email, **extra}


def emit(t, kind, customer, **detail):
    event = {
        "version": "0",
        "id": str(uuid.UUID(int=id_rng.getrandbits(128), version=4)),
        "detail-type": kind,
        "source": "store",
        "account": ACCOUNT,
        "time": t,  # a datetime until written
        "region": REGION,
        "resources": [],
        "detail": {"customer": customer, **detail},
    }
    events.append(event)
    return event


def money(kurus):
    return round(kurus / 100, 2)


# Orders get their shop numbers (o-1001, ...) in time order once everything is generated.
_orders = {}


def created(c, t):
    emit(t, "customer.created", c.profile())


def cart(lines):
    """The items, subtotal and shipping (in kuruş) of (sku, quantity) lines."""
    items = [{"sku": sku, "title": CATALOGUE[sku][0], "quantity": q,
              "price": money(CATALOGUE[sku][1])} for sku, q in lines]
    subtotal = sum(CATALOGUE[sku][1] * q for sku, q in lines)
    shipping = 0 if subtotal >= FREE_SHIPPING_FROM or subtotal == 0 else SHIPPING
    return items, subtotal, shipping


def checkout(c, t, checkout_id, *lines):
    """A checkout of (sku, quantity) lines that is not paid (yet): see `link_paid_checkouts`."""
    items, subtotal, shipping = cart(lines)
    emit(t, "checkout.started", c.ref(), checkout={
        "id": checkout_id, "url": f"https://shop.example.com/checkouts/{checkout_id}",
        "items": items, "total": money(subtotal + shipping), "currency": "TRY"})


def order(c, t, *lines, full_profile=False):
    """Places an order of (sku, quantity) lines; returns its key. Items are free to sample."""
    key = f"tmp-{len(_orders)}"
    c.orders_count += 1
    items, subtotal, shipping = cart(lines)
    customer = c.profile() if full_profile else c.ref(
        first_name=c.first, accepts_marketing=c.accepts, orders_count=c.orders_count)
    emit(t, "order.placed", customer, order={
        "id": key, "subtotal": money(subtotal), "shipping": money(shipping),
        "total": money(subtotal + shipping), "currency": "TRY", "items": items})
    _orders[key] = {"first_sku": lines[0][0], "shipment": None, "items": items}
    return key


def shipped(c, key, t, carrier=None):
    if carrier is None:
        carrier = rng.choice(["yurtici", "aras", "mng"])
    number = "".join(rng.choice("0123456789") for _ in range(12))
    shipment = {"carrier": CARRIERS[carrier], "tracking_number": number,
                "tracking_url": f"https://tracking.example.com/{carrier}/{number}"}
    _orders[key]["shipment"] = shipment
    # The store sends what is in the parcel, as the shipment templates read it ("In the box").
    emit(t, "order.shipped", c.ref(first_name=c.first),
         order={"id": key, "items": _orders[key]["items"]}, shipment=shipment)


def delivered(c, key, t):
    s = _orders[key]["shipment"]
    # The store sends what was delivered, as the review request's template reads it.
    return emit(t, "order.delivered", c.ref(first_name=c.first),
                order={"id": key, "items": _orders[key]["items"]},
                shipment={"carrier": s["carrier"], "tracking_number": s["tracking_number"]})


def fulfil(c, key, t, ship_days=1, deliver_days=2, carrier=None):
    """Ships an order `ship_days` after `t` and delivers it `deliver_days` later, in working
    hours. Returns the delivery time."""
    ship_at = jitter(t.replace(hour=14, minute=rng.randrange(60)) + timedelta(days=ship_days))
    shipped(c, key, ship_at, carrier)
    deliver_at = jitter(ship_at.replace(hour=rng.randrange(10, 18), minute=rng.randrange(60))
                        + timedelta(days=deliver_days))
    delivered(c, key, deliver_at)
    return deliver_at


def review(c, key, t, rating, sku=None):
    emit(t, "review.submitted", c.ref(), order={"id": key},
         review={"sku": sku or _orders[key]["first_sku"], "rating": rating})


def updated(c, t, **changes):
    for field, value in changes.items():
        if field in ("timezone", "birthday", "accepts_marketing", "tags", "last_name"):
            attr = {"timezone": "tz", "accepts_marketing": "accepts", "last_name": "last"}
            setattr(c, attr.get(field, field), value)
    emit(t, "customer.updated", c.ref(**changes))


# ---------------------------------------------------------------------------------------------
# CAST: one or more workflow branches each. "welcome" etc. name the workflows; dates are local.

def cast():
    # VIP win-back: three orders in ten days, then silence. win-back restarts on each order
    # (goal + new run); miss-you on 15 Apr, vip-last-call on 29 Apr (orders_count 3).
    # welcome: exits (goal) on the first order the next day. review-request: order 1 is
    # reviewed after the ask and before the reminder (goal).
    ayse = Customer(1001, "Ayşe", "Yılmaz", "ayse.yilmaz@example.com", birthday="1991-06-14")
    created(ayse, local("2026-01-05 10:12:31"))
    o1 = order(ayse, local("2026-01-06 09:40:12"), ("BEAN-ETH-250", 1), ("FLT-V60-100", 1),
               ("DRP-V60-02", 1))
    fulfil(ayse, o1, local("2026-01-06 09:40"), 1, 2)
    review(ayse, o1, local("2026-01-14 19:20:44"), 5)
    o2 = order(ayse, local("2026-01-10 20:05:09"), ("BEAN-COL-250", 2))
    fulfil(ayse, o2, local("2026-01-10 20:05"), 2, 1)
    o3 = order(ayse, local("2026-01-15 08:30:27"), ("BEAN-HOUSE-500", 1), ("MUG-CER-300", 1))
    fulfil(ayse, o3, local("2026-01-15 08:30"), 1, 3)

    # Lapsed one-off buyer: win-back miss-you on 8 Apr, last-call (else branch) on 22 Apr.
    # No time zone of his own (the store's applies). Signs up at 21:40, after the send window:
    # the welcome email is deferred to 09:00. review-request: ask and reminder, no review.
    mehmet = Customer(1002, "Mehmet", "Kaya", "mehmet.kaya@example.org", tz=None,
                      birthday="1984-09-02")
    created(mehmet, local("2026-01-07 21:40:05"))
    o = order(mehmet, local("2026-01-08 12:10:51"), ("BEAN-BRA-1K", 1), ("FLT-V60-100", 1))
    fulfil(mehmet, o, local("2026-01-08 12:10"), 1, 3, "aras")

    # welcome: the whole series, then the first-order A/B email on day 5 (no order yet).
    # Orders three weeks later; reviews after the review reminder (the run had completed).
    elif_ = Customer(1003, "Elif", "Demir", "elif.demir@example.com")
    created(elif_, local("2026-01-12 11:00:18"))
    o = order(elif_, local("2026-02-03 18:30:40"), ("KHV-TURK-250", 2), ("MUG-ENAMEL", 1))
    d = fulfil(elif_, o, local("2026-02-03 18:30"), 1, 2)
    review(elif_, o, d + timedelta(days=10, hours=3), 4)

    # birthday-reward on 29 February: 2026 has none, so it fires on 28 Feb at 09:00 local.
    zeynep = Customer(1004, "Zeynep", "Arslan", "zeynep.arslan@example.net",
                      birthday="1992-02-29")
    created(zeynep, local("2026-01-20 15:45:02"))
    o = order(zeynep, local("2026-01-27 13:05:33"), ("BEAN-KEN-250", 1), ("BEAN-ETH-250", 1))
    fulfil(zeynep, o, local("2026-01-27 13:05"), 1, 2)

    # Berlin: welcome exits on an order placed in the sign-up session; DHL shipments; the
    # second delivery is the line that arrives out of order (see below); birthday-reward on
    # 21 Mar at 09:00 Berlin time.
    jonas = Customer(1005, "Jonas", "Becker", "jonas.becker@example.net", tz="Europe/Berlin",
                     birthday="1988-03-21")
    created(jonas, local("2026-01-14 19:30:10"))
    o = order(jonas, local("2026-01-14 19:42:57"), ("BEAN-HOUSE-500", 2))
    fulfil(jonas, o, local("2026-01-14 19:42"), 2, 5, "dhl")
    o = order(jonas, local("2026-03-02 21:15:03"), ("GRN-HAND-1", 1), ("BEAN-KEN-250", 1))
    shipped(jonas, o, local("2026-03-03 15:02:44"), "dhl")
    late = delivered(jonas, o, local("2026-03-07 13:20:19"))
    late["_out_of_order"] = True

    # New York: welcome in her morning; birthday-reward on 10 Apr at 09:00 New York time.
    emily = Customer(1006, "Emily", "Carter", "emily.carter@example.com",
                     tz="America/New_York", birthday="1990-04-10")
    created(emily, local("2026-02-02 17:05:46"))
    o = order(emily, local("2026-02-09 18:22:15"), ("BEAN-ETH-250", 1), ("MUG-CER-300", 2))
    fulfil(emily, o, local("2026-02-09 18:22"), 1, 6, "ups")

    # An invalid time zone ("UTC+03:00" is not an IANA name): the store's zone applies, so
    # birthday-reward fires on 5 Mar at 09:00 Istanbul time.
    can = Customer(1007, "Can", "Öztürk", "can.ozturk@example.org", tz="UTC+03:00",
                   birthday="1985-03-05")
    created(can, local("2026-01-22 09:48:36"))
    o = order(can, local("2026-02-12 11:11:11"), ("BEAN-COL-250", 1), ("FLT-CHEMEX-100", 1))
    fulfil(can, o, local("2026-02-12 11:11"), 1, 2)

    # No marketing consent: welcome, review-request and win-back emails are skipped
    # (no_consent); shipment updates (transactional) are sent.
    deniz = Customer(1008, "Deniz", "Şahin", "deniz.sahin@example.com", accepts=False)
    created(deniz, local("2026-01-09 14:03:27"))
    o = order(deniz, local("2026-01-16 10:47:19"), ("BEAN-DECAF-250", 2))
    fulfil(deniz, o, local("2026-01-16 10:47"), 1, 2)

    # Unsubscribes (one-click link) after the welcome series; a later order still gets its
    # shipment updates, but review-request and win-back are skipped (unsubscribed).
    burak = Customer(1009, "Burak", "Çelik", "burak.celik@example.net")
    created(burak, local("2026-01-26 12:30:55"))
    emit(local("2026-02-04 08:15:21"), "customer.unsubscribed", burak.ref())
    o = order(burak, local("2026-02-20 16:40:08"), ("BEAN-HOUSE-500", 1))
    fulfil(burak, o, local("2026-02-20 16:40"), 1, 2)

    # Hard bounce minutes after the welcome email: suppressed, so nothing more is sent, not
    # even the shipment updates of her order.
    selin = Customer(1010, "Selin", "Aydın", "selin.aydin@example.org")
    created(selin, local("2026-02-05 14:00:12"))
    emit(local("2026-02-05 14:03:40"), "email.bounced", selin.ref(), bounce_type="hard")
    o = order(selin, local("2026-02-18 20:12:34"), ("BEAN-ETH-250", 1), ("BEAN-COL-250", 1))
    fulfil(selin, o, local("2026-02-18 20:12"), 1, 3)

    # shipment-updates timed-out branch: shipped 11 Feb, no delivery scan within 14 days, so
    # still-on-its-way on 25 Feb; the delivery is reported on 1 Mar, which starts
    # review-request (ask 4 Mar, reminder 9 Mar).
    murat = Customer(1011, "Murat", "Koç", "murat.koc@example.com", birthday="1979-11-30")
    created(murat, local("2026-02-08 10:20:42"))
    o = order(murat, local("2026-02-10 12:00:26"), ("GRN-ELEC-1", 1))
    shipped(murat, o, local("2026-02-11 15:00:09"), "mng")
    delivered(murat, o, local("2026-03-01 11:04:50"))

    # review-request goal before the ask: reviewed the day after delivery.
    hakan = Customer(1012, "Hakan", "Yıldız", "hakan.yildiz@example.net")
    created(hakan, local("2026-02-16 18:55:14"))
    o = order(hakan, local("2026-02-16 19:03:45"), ("BEAN-KEN-250", 2), ("FLT-V60-100", 2))
    d = fulfil(hakan, o, local("2026-02-16 19:03"), 1, 2)
    review(hakan, o, d + timedelta(hours=26), 5)

    # Moves from Berlin to Istanbul and adds a birthday in a profile update on 10 Mar: the date
    # trigger is armed then and birthday-reward fires on 18 Apr at 09:00 Istanbul time.
    lena = Customer(1013, "Lena", "Fischer", "lena.fischer@example.org", tz="Europe/Berlin")
    created(lena, local("2026-02-11 20:10:31"))
    updated(lena, local("2026-03-10 12:44:03"), timezone="Europe/Istanbul",
            birthday="1993-04-18")
    o = order(lena, local("2026-03-12 09:36:22"), ("BEAN-ETH-250", 1), ("DRP-V60-02", 1))
    fulfil(lena, o, local("2026-03-12 09:36"), 1, 1)

    # Signs up without consent (welcome skipped), opts in at checkout two weeks later
    # (customer.updated), so win-back applies: miss-you 25 Apr.
    ali = Customer(1014, "Ali", "Doğan", "ali.dogan@example.com", accepts=False)
    created(ali, local("2026-01-09 16:20:08"))
    updated(ali, local("2026-01-25 11:58:40"), accepts_marketing=True, tags=["newsletter"])
    o = order(ali, local("2026-01-25 12:02:13"), ("BEAN-COL-250", 1), ("MUG-CER-300", 1))
    fulfil(ali, o, local("2026-01-25 12:02"), 1, 2)

    # A free sample (total 0): win-back's `when: event.order.total >= 20` is false, no run;
    # welcome exits on it all the same. The first paid order on 24 Feb starts win-back.
    sofia = Customer(1015, "Sofia", "Rossi", "sofia.rossi@example.net")
    created(sofia, local("2026-01-19 10:05:37"))
    o = order(sofia, local("2026-01-19 10:09:02"), ("SAMPLE-3X30", 1))
    fulfil(sofia, o, local("2026-01-19 10:09"), 1, 2)
    o = order(sofia, local("2026-02-24 17:30:45"), ("BEAN-ETH-250", 2))
    fulfil(sofia, o, local("2026-02-24 17:30"), 1, 2)

    # A regular from before Nudge (no customer.created in the file): the order carries the
    # whole profile, orders_count 6. Silence afterwards: win-back miss-you 8 Apr, then
    # vip-last-call 22 Apr.
    oguz = Customer(1016, "Oğuz", "Kaya", "oguz.kaya@example.com", birthday="1979-07-30",
                    orders_count=5, tags=["newsletter", "wholesale"])
    o = order(oguz, local("2026-01-08 11:25:37"), ("BEAN-BRA-1K", 2), ("FLT-V60-100", 2),
              full_profile=True)
    fulfil(oguz, o, local("2026-01-08 11:25"), 1, 1)

    # Monthly regular: every order ends the waiting win-back run (goal) and starts a new one,
    # so no win-back email in the period. The February order.placed is delivered twice (same
    # id, see below).
    irem = Customer(1017, "İrem", "Şahin", "irem.sahin@example.com", birthday="1996-08-08")
    created(irem, local("2026-01-06 08:55:20"))
    for day, lines in [("2026-01-06 09:02", [("BEAN-HOUSE-500", 1)]),
                       ("2026-02-05 09:15", [("BEAN-HOUSE-500", 1), ("KHV-TURK-250", 1)]),
                       ("2026-03-07 10:01", [("BEAN-HOUSE-500", 2)]),
                       ("2026-04-06 09:30", [("BEAN-HOUSE-500", 1), ("BEAN-DECAF-250", 1)])]:
        o = order(irem, jitter(local(day)), *lines)
        fulfil(irem, o, local(day), 1, 1)
        if day.startswith("2026-02"):
            _duplicate_of.append(o)

    # Two orders shipped the same day: shipment-updates runs per order (key), two of each email.
    # A custom attribute on the profile (favourite_brew).
    emre = Customer(1018, "Emre", "Çelik", "emre.celik@example.org", favourite_brew="aeropress")
    created(emre, local("2026-03-02 09:12:44"))
    a = order(emre, local("2026-03-03 10:00:31"), ("BEAN-ETH-250", 1), ("GRN-HAND-1", 1))
    b = order(emre, local("2026-03-03 21:34:08"), ("FLT-V60-100", 1), ("MUG-ENAMEL", 1))
    shipped(emre, a, local("2026-03-04 14:02:15"), "yurtici")
    shipped(emre, b, local("2026-03-04 14:05:51"), "yurtici")
    delivered(emre, a, local("2026-03-06 11:40:27"))
    delivered(emre, b, local("2026-03-06 11:40:29"))

    # birthday-reward on 25 Jan; on 10 Feb she corrects her birthday to 2 Mar, which re-arms
    # the trigger, but `entry: {every: 365d}` allows no second reward within a year.
    ebru = Customer(1019, "Ebru", "Arslan", "ebru.arslan@example.net", birthday="1990-01-25")
    created(ebru, local("2026-01-05 18:40:09"))
    updated(ebru, local("2026-02-10 21:15:32"), birthday="1990-03-02")
    o = order(ebru, local("2026-03-18 14:20:17"), ("BEAN-COL-250", 1))
    fulfil(ebru, o, local("2026-03-18 14:20"), 1, 2)

    # Signs up after this year's birthday (15 Jan): the date trigger waits for next year's
    # (15 Jan 2027, reached because simulate runs on for a year after the last event).
    daniel = Customer(1020, "Daniel", "Becker", "daniel.becker@example.com",
                      tz="Europe/Berlin", birthday="1987-01-15")
    created(daniel, local("2026-02-01 20:30:00"))

    # Abandoned checkout late in the evening: the first reminder waits for the send window,
    # then she pays that checkout (order.checkout_id), which ends the run before the 10% email.
    sule = Customer(1021, "Şule", "Koç", "sule.koc@example.com", birthday="1995-12-03")
    created(sule, local("2026-03-13 22:10:13"))
    checkout(sule, local("2026-03-14 21:47:38"), "chk-5521",
             ("BEAN-HOUSE-500", 1), ("MUG-CER-300", 1))
    o = order(sule, local("2026-03-15 10:05:26"), ("BEAN-HOUSE-500", 1), ("MUG-CER-300", 1))
    fulfil(sule, o, local("2026-03-15 10:05"), 1, 2)

    # An order cancelled an hour later: never shipped, so no shipment-updates run; its
    # win-back run started with the order and carries on (a cancellation is no goal).
    gokhan = Customer(1022, "Gökhan", "Yılmaz", "gokhan.yilmaz@example.org")
    created(gokhan, local("2026-03-20 12:00:48"))
    o = order(gokhan, local("2026-03-20 12:14:22"), ("GRN-ELEC-1", 1))
    emit(local("2026-03-20 13:20:05"), "order.cancelled", gokhan.ref(), order={"id": o},
         reason="customer")

    # An account created by a checkout: the order comes first and customer.created carries
    # orders_count 1, so welcome sends welcome and our-story but not the first-order offer
    # (the `if` is false).
    ebru2 = Customer(1023, "Ebru", "Kaya", "ebru.kaya@example.com")
    o = order(ebru2, local("2026-04-02 11:30:00"), ("BEAN-ETH-250", 1))
    created(ebru2, local("2026-04-02 11:30:04"))
    fulfil(ebru2, o, local("2026-04-02 11:30"), 1, 2)

    # Profile update that clears a field (null) and replaces the tags whole.
    sofia2 = Customer(1024, "Sofia", "Demir", "sofia.demir@example.net", birthday="1999-05-20")
    created(sofia2, local("2026-02-22 13:13:13"))
    updated(sofia2, local("2026-03-28 10:10:10"), last_name=None,
            tags=["newsletter", "decaf-lover"])


_duplicate_of = []

# ---------------------------------------------------------------------------------------------
# Ordinary customers, drawn at random.

FIRST = [("Ahmet", "ahmet"), ("Fatma", "fatma"), ("Mustafa", "mustafa"), ("Emine", "emine"),
         ("Cem", "cem"), ("Esra", "esra"), ("Kerem", "kerem"), ("Buse", "buse"),
         ("Tolga", "tolga"), ("Gizem", "gizem"), ("Serkan", "serkan"), ("Melis", "melis"),
         ("Anna", "anna"), ("Max", "max"), ("Olivia", "olivia"), ("Ece", "ece")]
LAST = [("Aksoy", "aksoy"), ("Kurt", "kurt"), ("Özdemir", "ozdemir"), ("Polat", "polat"),
        ("Erdem", "erdem"), ("Güneş", "gunes"), ("Tekin", "tekin"), ("Bulut", "bulut"),
        ("Schmidt", "schmidt"), ("Miller", "miller")]


def random_time(day_from, day_to):
    """A random shopping moment (08:00 to 23:59 local) between two day offsets from START."""
    day = START + timedelta(days=rng.randrange(day_from, day_to))
    return day.replace(hour=rng.randrange(8, 24), minute=rng.randrange(60),
                       second=rng.randrange(60))


def ordinary():
    for n in range(1025, 1051):
        (first, fs), (last, ls) = rng.choice(FIRST), rng.choice(LAST)
        email = f"{fs}.{ls}{n - 1000}@example.{rng.choice(['com', 'com', 'org', 'net'])}"
        tz = rng.choices(["Europe/Istanbul", None, "Europe/Berlin", "America/New_York"],
                         [80, 10, 5, 5])[0]
        birthday = None
        if rng.random() < 0.6:
            birthday = (datetime(1965, 1, 1) + timedelta(days=rng.randrange(40 * 365))).strftime(
                "%Y-%m-%d")
        c = Customer(n, first, last, email, tz=tz, birthday=birthday,
                     accepts=rng.random() < 0.85)
        signup = random_time(0, 105)
        created(c, signup)
        count = rng.choices([0, 1, 2, 3, 4], [25, 35, 20, 12, 8])[0]
        t = signup + (timedelta(minutes=rng.randrange(3, 40)) if rng.random() < 0.3
                      else timedelta(days=rng.randrange(1, 21), hours=rng.randrange(-6, 6)))
        for _ in range(count):
            if t >= END:
                break
            lines = [(sku, 2 if sku.startswith("BEAN") and rng.random() < 0.2 else 1)
                     for sku in dict.fromkeys(rng.choices(POPULAR, k=rng.choice([1, 1, 2, 3])))]
            o = order(c, t, *lines)
            carrier = {"Europe/Berlin": "dhl", "America/New_York": "ups"}.get(tz)
            if rng.random() < 0.95:
                d = fulfil(c, o, t, rng.choice([1, 1, 2]), rng.randrange(1, 5), carrier)
                if rng.random() < 0.35:
                    review(c, o, d + timedelta(days=rng.randrange(2, 10), hours=rng.randrange(8)),
                           rng.choice([5, 5, 5, 4, 4, 3, 2]),
                           sku=rng.choice([line[0] for line in lines]))
            else:  # lost in transit: shipped, never reported delivered
                shipped(c, o, jitter(t.replace(hour=15) + timedelta(days=1)), carrier)
            t = random_time((t - START).days + 10, (t - START).days + 45)
        if rng.random() < 0.15:  # an abandoned checkout (paid if an order follows in a day)
            # The draws in the order the sample was first written with, so nothing else moves.
            when = random_time((signup - START).days, (signup - START).days + 20)
            checkout_id = f"chk-{rng.randrange(5000, 6000)}"
            checkout(c, when, checkout_id, (rng.choice(POPULAR), 1))
        if rng.random() < 0.2:  # a profile edit: a birthday given later, or a new interest
            when = random_time((signup - START).days + 1, (signup - START).days + 30)
            if c.birthday is None:
                updated(c, when, birthday=f"{rng.randrange(1970, 2004)}-"
                                          f"{rng.randrange(1, 13):02}-{rng.randrange(1, 29):02}")
            else:
                updated(c, when, tags=c.tags + ["decaf-lover"])


def link_paid_checkouts(kept):
    """A checkout followed within a day by an order of the same customer was paid by it: the
    order names it (`checkout_id`, as Shopify's orders do) and the cart is what was ordered."""
    for i, e in enumerate(kept):
        if e["detail-type"] != "checkout.started":
            continue
        who = e["detail"]["customer"]["id"]
        paid = next((o for o in kept[i + 1:]
                     if o["time"] - e["time"] <= timedelta(days=1)
                     and o["detail-type"] == "order.placed"
                     and o["detail"]["customer"]["id"] == who), None)
        if paid is None:
            continue
        o = paid["detail"]["order"]
        o["checkout_id"] = e["detail"]["checkout"]["id"]
        e["detail"]["checkout"]["items"] = o["items"]
        e["detail"]["checkout"]["total"] = o["total"]


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "events/sample.jsonl"
    cast()
    ordinary()

    # Nothing after the period; then time order (ties keep the order written above).
    kept = [e for e in events if e["time"] <= END]
    kept.sort(key=lambda e: e["time"])

    # Shop order numbers in time order.
    numbers = {}
    for e in kept:
        if e["detail-type"] == "order.placed":
            numbers[e["detail"]["order"]["id"]] = f"o-{1001 + len(numbers)}"
    for e in kept:
        if "order" in e["detail"]:
            e["detail"]["order"]["id"] = numbers[e["detail"]["order"]["id"]]
    link_paid_checkouts(kept)

    # At-least-once delivery: one order.placed arrives twice, the copy right after the original.
    (dup_key,) = _duplicate_of
    i = next(i for i, e in enumerate(kept) if e["detail-type"] == "order.placed"
             and e["detail"]["order"]["id"] == numbers[dup_key])
    kept.insert(i + 1, copy.deepcopy(kept[i]))

    # A late carrier feed: one delivery reaches the file after three later events.
    i = next(i for i, e in enumerate(kept) if e.pop("_out_of_order", False))
    kept.insert(i + 3, kept.pop(i))

    lines = []
    for e in kept:
        e["time"] = e["time"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(json.dumps(e, ensure_ascii=False))

    # What the file promises.
    times = [e["time"] for e in kept]
    assert sum(b < a for a, b in zip(times, times[1:])) == 1, "one line out of order"
    ids = [e["id"] for e in kept]
    assert len(ids) - len(set(ids)) == 1, "one duplicate delivery"
    for e in kept:
        email = e["detail"]["customer"].get("email")
        assert email is None or email.rsplit("@", 1)[1] in (
            "example.com", "example.org", "example.net"), email
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {}
    for e in kept:
        counts[e["detail-type"]] = counts.get(e["detail-type"], 0) + 1
    print(f"{out}: {len(lines)} events, "
          f"{len({e['detail']['customer']['id'] for e in kept})} customers", file=sys.stderr)
    for kind, n in sorted(counts.items()):
        print(f"  {kind:24} {n}", file=sys.stderr)


if __name__ == "__main__":
    main()
