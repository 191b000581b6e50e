"""Issue 22, acceptance 1 at the service level: the roll-ups of the hand-checked scenario
(``scenario.py``) equal its hand-worked figures to the penny, through catch-up and through a
rebuild alike; the provider reclassified mid-year is counted by the classification in force
when each payment was made."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.insight.models import Measure, SpendMonth, SpendProviderYear
from marketplace.insight.services import ledger
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from tests.insight.scenario import BRIGHT, FIGURES, build_scenario


def half(month) -> int:
    return 1 if 4 <= month.month <= 9 else 2


def percent(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP))


@pytest.fixture(params=["catch_up", "rebuild"])
def scenario(app, request):
    built = build_scenario()
    if request.param == "catch_up":
        assert ledger.catch_up() >= 5
    else:
        ledger.rebuild_all()
        commit()
    db.session.expire_all()
    assert ledger.check_ledger() == []
    return built


def test_the_roll_ups_equal_the_hand_worked_figures(scenario):
    names = {org.id: name for name, org in scenario.funders.items()}
    providers = {org.id: name for name, org in scenario.providers.items()}
    codes = {
        "category": dict(
            db.session.execute(sa.select(ServiceCategory.id, ServiceCategory.code)).all()
        ),
        "region": dict(
            db.session.execute(sa.select(ProbationRegion.id, ProbationRegion.code)).all()
        ),
        "pcc": dict(db.session.execute(sa.select(PccArea.id, PccArea.code)).all()),
    }
    by_measure: dict[str, dict] = {m.value: defaultdict(int) for m in Measure}
    by_category, by_region, by_pcc = defaultdict(int), defaultdict(int), defaultdict(int)
    vcse, sme, total = defaultdict(int), defaultdict(int), defaultdict(int)
    for row in db.session.scalars(sa.select(SpendMonth)):
        key = (names[row.funder_id], row.financial_year, half(row.month))
        by_measure[row.measure.value][key] += row.amount_pence
        if row.measure == Measure.PAID:
            year = row.financial_year
            total[year] += row.amount_pence
            vcse[year] += row.amount_pence if row.provider_vcse else 0
            sme[year] += row.amount_pence if row.provider_sme else 0
            by_category[year, codes["category"][row.category_id]] += row.amount_pence
            by_region[year, codes["region"][row.region_id]] += row.amount_pence
            if row.pcc_area_id is not None:
                by_pcc[year, codes["pcc"][row.pcc_area_id]] += row.amount_pence

    def nonzero(sums):
        return {k: v for k, v in sums.items() if v}

    assert nonzero(by_measure["committed"]) == FIGURES.committed
    assert nonzero(by_measure["invoiced"]) == FIGURES.invoiced
    assert nonzero(by_measure["paid"]) == FIGURES.paid
    assert nonzero(by_category) == FIGURES.paid_by_category
    assert nonzero(by_region) == FIGURES.paid_by_region
    assert nonzero(by_pcc) == FIGURES.paid_by_pcc_area
    assert dict(total) == FIGURES.paid_total
    assert dict(vcse) == FIGURES.vcse_paid
    assert dict(sme) == FIGURES.sme_paid
    for year in (2025, 2026):
        assert percent(vcse[year], total[year]) == FIGURES.vcse_share_percent[year]
        assert percent(sme[year], total[year]) == FIGURES.sme_share_percent[year]
    both = sum(total.values())
    assert percent(sum(vcse.values()), both) == FIGURES.vcse_share_percent["2025-2026"]
    assert percent(sum(sme.values()), both) == FIGURES.sme_share_percent["2025-2026"]

    # Providers paid, from the provider-year roll-up (each provider once a year, whichever
    # funders paid it; a provider reclassified in the year is SME if it was paid as one).
    paid = defaultdict(int)
    flags: dict[tuple[int, str], set] = defaultdict(set)
    for row in db.session.scalars(sa.select(SpendProviderYear)):
        paid[row.financial_year, providers[row.provider_id]] += row.paid_pence
        flags[row.financial_year, providers[row.provider_id]].add(
            (row.provider_vcse, row.provider_sme)
        )
    assert dict(paid) == FIGURES.paid_by_provider
    for year in (2025, 2026):
        named = [n for (y, n) in paid if y == year]
        assert len(named) == FIGURES.providers_paid[year]
        assert (
            sum(any(v for v, _ in flags[year, n]) for n in named)
            == (FIGURES.vcse_providers_paid[year])
        )
        assert (
            sum(any(s for _, s in flags[year, n]) for n in named)
            == (FIGURES.sme_providers_paid[year])
        )
    # Bright Futures: paid 60,000 as a large company (August) and 60,000 as an SME (November).
    assert flags[2025, BRIGHT] == {(False, False), (False, True)}
    bright = {
        (row.provider_sme, row.paid_pence)
        for row in db.session.scalars(
            sa.select(SpendProviderYear).where(
                SpendProviderYear.provider_id == scenario.providers[BRIGHT].id,
                SpendProviderYear.financial_year == 2025,
            )
        )
    }
    assert bright == {(False, 60_000), (True, 60_000)}


def test_the_scenario_went_through_the_services_it_names(scenario):
    from marketplace.core.audit import AuditEvent
    from marketplace.invoices.models import Invoice, InvoiceStatus
    from marketplace.orders.models import CallOff, CallOffStatus

    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {
        "call_off.placed",
        "call_off.funding_confirmed",
        "call_off.approved",
        "call_off.accepted",
        "call_off.variation_agreed",
        "classification.corrected",
        "call_off.cancelled",
        "invoice.paid",
    } <= actions
    statuses = {key: db.session.get(CallOff, c.id).status for key, c in scenario.call_offs.items()}
    assert statuses["C4"] == CallOffStatus.CANCELLED
    assert db.session.get(CallOff, scenario.call_offs["C5"].id).gross_pence == 108_000
    assert set(db.session.scalars(sa.select(Invoice.status))) == {InvoiceStatus.PAID}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 7
