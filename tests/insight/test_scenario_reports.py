"""Issue 22, acceptance 1 through the reports: the hand-checked scenario (``scenario.py``) built
through the services, then every figure on /insight/spend (each grouping, by year, half-year
and month), its CSV and XLSX and /api/v1/insight/spend, and on /insight/vcse-share (and its
API), read back by parsing what a person or a machine gets, equals the hand-worked values to
the penny, for the authority and for each commissioner and the PCC.

The expected values come from ``EVENTS`` below: each spend event of the scenario worked by hand
(its docstring), with the provider's classification in force on the day. The events are first
checked against ``FIGURES`` (the scenario's own hand-worked totals), so the two hand workings
anchor each other; the reports are then compared with the events, never only with each other.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.core.clock import frozen_at
from marketplace.core.db import db
from marketplace.insight import exports
from marketplace.insight.models import Measure, SpendEntry
from marketplace.insight.services import ledger
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from tests.insight.scenario import (
    BRIGHT,
    CARILLION,
    FIGURES,
    HARBOUR,
    NE,
    PCC,
    WALES,
    build_scenario,
)
from tests.insight.test_spend import bearer, money, read_csv, read_xlsx, table

TODAY = datetime(2026, 12, 15, 12, tzinfo=UTC)  # after the scenario's last event
V, S, OTHER = "vcse", "sme", "other"  # provider type: VCSE, SME (not VCSE), other

# (measure, day, funder, category, provider, provider type on the day, pence): the scenario's
# docstring, event by event. Bright Futures is large until its correction (SME from 1 October
# 2025); Harbour is VCSE (and SME) throughout, Carillion large throughout.
EVENTS = [
    ("committed", date(2025, 5, 6), NE, "ACC", HARBOUR, V, 80_004),
    ("committed", date(2025, 5, 6), PCC, "ACC", HARBOUR, V, 39_996),
    ("invoiced", date(2025, 7, 3), NE, "ACC", HARBOUR, V, 80_004),
    ("invoiced", date(2025, 7, 3), PCC, "ACC", HARBOUR, V, 39_996),
    ("paid", date(2025, 7, 20), NE, "ACC", HARBOUR, V, 80_004),
    ("paid", date(2025, 7, 20), PCC, "ACC", HARBOUR, V, 39_996),
    ("committed", date(2025, 6, 2), NE, "ETE", BRIGHT, OTHER, 120_000),
    ("invoiced", date(2025, 8, 4), NE, "ETE", BRIGHT, OTHER, 60_000),
    ("paid", date(2025, 8, 26), NE, "ETE", BRIGHT, OTHER, 60_000),
    ("invoiced", date(2025, 11, 3), NE, "ETE", BRIGHT, S, 60_000),
    ("paid", date(2025, 11, 25), NE, "ETE", BRIGHT, S, 60_000),
    ("committed", date(2025, 9, 1), WALES, "ACC", CARILLION, OTHER, 288_000),
    ("invoiced", date(2026, 2, 3), WALES, "ACC", CARILLION, OTHER, 144_000),
    ("paid", date(2026, 2, 24), WALES, "ACC", CARILLION, OTHER, 144_000),
    ("invoiced", date(2026, 5, 5), WALES, "ACC", CARILLION, OTHER, 144_000),
    ("invoiced", date(2026, 5, 12), WALES, "ACC", CARILLION, OTHER, -12_000),
    ("paid", date(2026, 5, 28), WALES, "ACC", CARILLION, OTHER, 132_000),
    ("committed", date(2026, 6, 1), WALES, "ETE", HARBOUR, V, 120_000),
    ("invoiced", date(2026, 7, 2), WALES, "ETE", HARBOUR, V, 48_000),
    ("paid", date(2026, 7, 21), WALES, "ETE", HARBOUR, V, 48_000),
    ("committed", date(2026, 8, 3), WALES, "ETE", HARBOUR, V, -72_000),
    ("committed", date(2026, 9, 1), NE, "ACC", BRIGHT, S, 72_000),
    ("committed", date(2026, 10, 5), NE, "ACC", BRIGHT, S, 36_000),
    ("invoiced", date(2026, 11, 3), NE, "ACC", BRIGHT, S, 108_000),
    ("paid", date(2026, 11, 24), NE, "ACC", BRIGHT, S, 108_000),
    ("invoiced", date(2026, 12, 1), NE, "ACC", BRIGHT, S, -6_000),
    ("paid", date(2026, 12, 1), NE, "ACC", BRIGHT, S, -6_000),
]
MEASURES = ("committed", "invoiced", "paid")
REGION_OF = {NE: "A", PCC: "A", WALES: "D"}
MONTHS = [
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
]


def fy(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def half_of(day: date) -> int:
    return 1 if 4 <= day.month <= 9 else 2


def year_label(year: int) -> str:
    return f"{year}-{(year + 1) % 100:02d}"


def period_label(day: date, interval: str) -> str:
    year = fy(day)
    if interval == "year":
        return year_label(year)
    if interval == "half":
        if half_of(day) == 1:
            return f"April to September {year}"
        return f"October {year} to March {year + 1}"
    return f"{MONTHS[day.month - 1]} {day.year}"


def percent_1dp(part: int, whole: int) -> str:
    """As the pages show a share: one decimal place, halves up."""
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def test_the_events_add_up_to_the_scenarios_hand_worked_figures():
    """The two hand workings agree (a slip in either fails here, not in a report test)."""
    sums = {m: defaultdict(int) for m in MEASURES}
    by_category, by_region, by_provider = defaultdict(int), defaultdict(int), defaultdict(int)
    vcse, sme = defaultdict(int), defaultdict(int)
    for measure, day, funder, code, provider, kind, pence in EVENTS:
        sums[measure][funder, fy(day), half_of(day)] += pence
        if measure == "paid":
            by_category[fy(day), code] += pence
            by_region[fy(day), REGION_OF[funder]] += pence
            by_provider[fy(day), provider] += pence
            vcse[fy(day)] += pence if kind == V else 0
            # Harbour is small as well as VCSE.
            sme[fy(day)] += pence if kind in (V, S) else 0
    for measure in MEASURES:
        assert {k: v for k, v in sums[measure].items() if v} == getattr(FIGURES, measure)
    assert dict(by_category) == FIGURES.paid_by_category
    assert dict(by_region) == FIGURES.paid_by_region
    assert dict(by_provider) == FIGURES.paid_by_provider
    assert dict(vcse) == FIGURES.vcse_paid and dict(sme) == FIGURES.sme_paid


@pytest.fixture
def scenario(app):
    built = build_scenario()
    # The pages catch the ledger up themselves; nothing is inserted by hand.
    built.admin = built.people["authority admin"]
    built.authority = db.session.scalar(
        sa.select(Organisation).where(Organisation.type == OrganisationType.AUTHORITY)
    )
    with frozen_at(TODAY):
        yield built


def _names():
    return {
        "region": dict(
            db.session.execute(sa.select(ProbationRegion.code, ProbationRegion.name)).all()
        ),
        "category": dict(
            db.session.execute(sa.select(ServiceCategory.code, ServiceCategory.name)).all()
        ),
        "durham": db.session.scalar(sa.select(PccArea.name).where(PccArea.code == "durham")),
    }


def group_label(grouping: str, funder: str, code: str, kind: str, names: dict) -> str:
    if grouping == "funder":
        return funder
    if grouping == "region":
        return names["region"][REGION_OF[funder]]
    if grouping == "category":
        return names["category"][code]
    if grouping == "pcc_area":
        return names["durham"] if funder == PCC else "No PCC area"
    return {V: "VCSE", S: "SME (not VCSE)", OTHER: "Other"}[kind]


def expected(funders, grouping, interval, names):
    """(by group, by period, by (period, group), total), each value [committed, invoiced,
    paid] in pence, zero lines left out."""
    by_group, by_period, lines = defaultdict(_zero), defaultdict(_zero), defaultdict(_zero)
    total = _zero()
    for measure, day, funder, code, _provider, kind, pence in EVENTS:
        if funder not in funders:
            continue
        i = MEASURES.index(measure)
        group = group_label(grouping, funder, code, kind, names)
        period = period_label(day, interval)
        by_group[group][i] += pence
        by_period[period][i] += pence
        lines[period, group][i] += pence
        total[i] += pence

    def nonzero(d):
        return {k: v for k, v in d.items() if any(v)}

    return nonzero(by_group), nonzero(by_period), nonzero(lines), total


def _zero():
    return [0, 0, 0]


def _nonzero(d):
    return {k: v for k, v in d.items() if any(v)}


VIEWERS = {
    "authority": (NE, PCC, WALES),
    NE: (NE,),
    WALES: (WALES,),
    PCC: (PCC,),
}


def _sign_in(scenario, web, viewer):
    if viewer == "authority":
        return scenario.admin, scenario.authority
    return scenario.people[f"{viewer} buyer"], scenario.funders[viewer]


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_spend_page_csv_xlsx_and_api_equal_the_hand_worked_figures(scenario, web, client, viewer):
    user, organisation = _sign_in(scenario, web, viewer)
    web.as_user(user, organisation)
    headers = bearer(user, organisation)
    names = _names()
    groupings = ["region", "pcc_area", "category", "provider_type"]
    if viewer == "authority":
        groupings.append("funder")
    for grouping in groupings:
        for interval in ("year", "half", "month"):
            query = f"by={grouping}&interval={interval}"
            by_group, by_period, lines, total = expected(VIEWERS[viewer], grouping, interval, names)
            context = f"{viewer}: {query}"

            response = client.get(f"/insight/spend?{query}")
            assert response.status_code == 200, context
            html = response.get_data(as_text=True)
            rows = table(html, f"spend-by-{grouping.replace('_', '-')}-table")
            assert rows[-1] == ["Total", *(_pounds(v) for v in total)], context
            page_groups = {row[0]: [money(c) for c in row[1:]] for row in rows[1:-1]}
            assert _nonzero(page_groups) == by_group, context
            rows = table(html, "spend-by-period")
            assert rows[-1][1:] == [_pounds(v) for v in total], context
            page_periods = {row[0]: [money(c) for c in row[1:]] for row in rows[1:-1]}
            assert _nonzero(page_periods) == by_period, context

            csv_rows = read_csv(client.get(f"/insight/spend?{query}&format=csv").data)
            assert csv_rows[-1][5:] == [str(v) for v in total], context
            csv_lines = {(r[0], r[1]): [int(v) for v in r[5:8]] for r in csv_rows[1:-1]}
            assert _nonzero(csv_lines) == lines, context
            for r in csv_rows[1:]:
                assert [money(v) for v in r[2:5]] == [int(v) for v in r[5:8]], context

            sheet = read_xlsx(client.get(f"/insight/spend?{query}&format=xlsx").data)
            assert [int(v) for v in sheet[-1][5:8]] == total, context
            xlsx_lines = {(r[0], r[1]): [int(v) for v in r[5:8]] for r in sheet[1:-1]}
            assert _nonzero(xlsx_lines) == lines, context

            body = client.get(f"/api/v1/insight/spend?{query}", headers=headers).get_json()
            assert [body["total"][m] for m in MEASURES] == total, context

            def api(items, key, body=body):
                return _nonzero({key(i): [i["measures"][m] for m in MEASURES] for i in body[items]})

            assert api("by_group", lambda i: i["label"]) == by_group, context
            assert api("by_period", lambda i: i["label"]) == by_period, context
            assert api("lines", lambda i: (i["period_label"], i["label"])) == lines, context


def _pounds(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100:,}.{abs(pence) % 100:02d}"


def _shares(funders):
    """Paid (vcse, sme, total) and providers paid (vcse, sme, total) per financial year."""
    paid = {y: [0, 0, 0] for y in (2025, 2026)}
    providers: dict[int, dict[str, set]] = {y: defaultdict(set) for y in (2025, 2026)}
    for measure, day, funder, _code, provider, kind, pence in EVENTS:
        if measure != "paid" or funder not in funders:
            continue
        year = fy(day)
        paid[year][0] += pence if kind == V else 0
        paid[year][1] += pence if kind in (V, S) else 0
        paid[year][2] += pence
        providers[year]["total"].add(provider)
        if kind == V:
            providers[year]["vcse"].add(provider)
        if kind in (V, S):
            providers[year]["sme"].add(provider)
    counts = {y: [len(providers[y][k]) for k in ("vcse", "sme", "total")] for y in paid}
    both = {k: set().union(*(providers[y][k] for y in paid)) for k in ("vcse", "sme", "total")}
    counts["period"] = [len(both[k]) for k in ("vcse", "sme", "total")]
    paid["period"] = [sum(paid[y][i] for y in (2025, 2026)) for i in range(3)]
    return paid, counts


def _share_text(part: int, whole: int) -> str:
    return f"{percent_1dp(part, whole)}%" if whole else "No spend"


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_vcse_share_page_and_api_equal_the_hand_worked_figures(scenario, web, client, viewer):
    user, organisation = _sign_in(scenario, web, viewer)
    web.as_user(user, organisation)
    paid, counts = _shares(VIEWERS[viewer])
    if viewer == "authority":
        # The scenario's own figures, as the docstring worked them.
        for year in (2025, 2026):
            assert paid[year] == [
                FIGURES.vcse_paid[year],
                FIGURES.sme_paid[year],
                FIGURES.paid_total[year],
            ]
            assert counts[year] == [
                FIGURES.vcse_providers_paid[year],
                FIGURES.sme_providers_paid[year],
                FIGURES.providers_paid[year],
            ]
    labels = {2025: "2025-26", 2026: "2026-27", "period": "2025-26 and 2026-27"}

    html = client.get("/insight/vcse-share").get_data(as_text=True)
    want = []
    for key, label in labels.items():
        v, s, t = paid[key]
        want.append(
            [label, _pounds(v), _pounds(s), _pounds(t), _share_text(v, t), _share_text(s, t)]
        )
    got = [row for row in table(html, "vcse-paid")[1:] if row[0] in labels.values()]
    if viewer in (PCC,):
        # Nothing paid in 2026-27: the page says so rather than 0%.
        got = [r for r in got if r[0] != "2026-27"]
        want = [r for r in want if r[0] != "2026-27"]
    assert got == want, viewer
    if viewer == "authority":
        assert [r[4] for r in want] == ["31.3%", "17.0%", "25.2%"]  # 31.25, 17.02, 25.23
        assert [r[5] for r in want] == ["46.9%", "53.2%", "49.5%"]  # 46.875, 53.19, 49.55
    providers = {row[0]: row[1:4] for row in table(html, "vcse-providers")[1:]}
    for key, label in labels.items():
        assert providers[label] == [str(n) for n in counts[key]], (viewer, label)

    body = client.get("/api/v1/insight/vcse-share", headers=bearer(user, organisation)).get_json()
    api_paid = {
        line["label"]: [line["vcse"], line["sme"], line["total"]] for line in body["paid_years"]
    }
    assert api_paid["2025-26"] == paid[2025] and api_paid["2026-27"] == paid[2026], viewer
    period = body["paid_period"]
    assert [period["vcse"], period["sme"], period["total"]] == paid["period"]
    assert period["vcse_share"]["numerator"] == paid["period"][0]
    assert period["vcse_share"]["denominator"] == paid["period"][2]
    assert period["vcse_share"]["percent"] == percent_1dp(paid["period"][0], paid["period"][2])
    api_providers = {
        line["label"]: [line["vcse"], line["sme"], line["total"]]
        for line in [*body["providers_years"], body["providers_period"]]
    }
    for key, label in labels.items():
        assert api_providers[label] == counts[key], (viewer, label)


def test_the_pccs_monthly_spend_over_500_agrees_with_the_ledger(scenario, web, client):
    """Each month's export for the PCC holds exactly the ledger's paid entries for the PCC that
    are over £500. The scenario's PCC has one payment, its 33.33% of C1 (£399.96, July 2025):
    in the ledger, and not over £500, so every month's export is empty."""
    ledger.catch_up()
    pcc = scenario.funders[PCC]
    entries = [
        (entry.occurred_on, entry.amount_pence)
        for entry in db.session.scalars(
            sa.select(SpendEntry).where(
                SpendEntry.funder_id == pcc.id, SpendEntry.measure == Measure.PAID
            )
        )
    ]
    assert entries == [(date(2025, 7, 20), FIGURES.total("paid", funder=PCC))]
    export = exports.EXPORTS["pcc-spend"]
    month = date(2025, 4, 1)
    while month <= date(2026, 11, 1):
        records = export.records(pcc, export.parse(f"{month:%Y-%m}", TODAY.date()))
        over_500 = sorted(
            pence
            for day, pence in entries
            if (day.year, day.month) == (month.year, month.month) and abs(pence) > 50_000
        )
        assert sorted(r["amount_pence"] for r in records) == over_500, month
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    # The download the PCC's people use says the same for the month of that payment.
    web.as_user(scenario.people[f"{PCC} buyer"], pcc)
    response = client.get("/insight/transparency/pcc-spend?period=2025-07&format=csv")
    assert response.status_code == 200
    assert response.data.decode("utf-8-sig").splitlines() == [
        'Date paid,Transaction number,Supplier name,"Amount (£, including VAT)",'
        "Summary of the purpose of the expenditure,Value for money reason"
    ]
