"""A synthetic ledger-sized world, written with Core bulk inserts: call-offs (a fifth co-funded,
some cancelled, some varied), their funders, about three issued invoices each (most paid) and a
few credit notes. For measuring ``rebuild_all``; run it against a test database with

    MARKETPLACE_TEST_DATABASE_URL=... .venv/bin/python -m pytest -p no:cacheprovider \
        tests/insight/test_rebuild_rate.py -s   # with LEDGER_CALL_OFFS=50000

Nothing here goes through the services: only the columns the ledger reads are realistic.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.core.db import db
from marketplace.core.money import split_by_basis_points
from marketplace.insight.models import SpendStaleCallOff
from marketplace.invoices.models import CreditNote, Invoice
from marketplace.orders.models import Budget, CallOff, CallOffFunder
from marketplace.reference.models import ProbationRegion, ServiceCategory
from tests.accreditation.factories import make_arrangement
from tests.factories import make_organisation
from tests.insight.ledger_helpers import classify

BATCH = 10_000


def load_synthetic(call_offs: int, *, seed: int = 22) -> None:
    rng = random.Random(seed)
    arrangement = make_arrangement()
    categories = list(db.session.scalars(sa.select(ServiceCategory.id)))
    regions = list(db.session.scalars(sa.select(ProbationRegion.id)))
    providers = [
        make_organisation(OrganisationType.PROVIDER_PRIVATE, name=f"Provider {n}")
        for n in range(200)
    ]
    for n, provider in enumerate(providers):
        classify(provider, date(2020, 4, 1), vcse=n % 5 == 0, sme=n % 2 == 0)
        if n % 7 == 0:
            classify(provider, date(2023, 10, 1), vcse=n % 5 == 0, sme=n % 2 == 1, reason="x")
    funders = [
        make_organisation(
            OrganisationType.PROBATION_REGION, name=f"Funder {n}", region_id=regions[n % 12]
        )
        for n in range(20)
    ]
    budgets = {}
    for funder in funders:
        for year in range(2020, 2027):
            budget = Budget(organisation=funder, financial_year=year, allocated_pence=10**12)
            db.session.add(budget)
            budgets[funder.id, year] = budget
    db.session.flush()
    provider_ids = [p.id for p in providers]
    funder_ids = [f.id for f in funders]
    budget_ids = {key: b.id for key, b in budgets.items()}
    sequences = dict.fromkeys(provider_ids, 0)
    notes_sequence = dict.fromkeys(provider_ids, 0)
    next_call_off = (db.session.scalar(sa.select(sa.func.max(CallOff.id))) or 0) + 1
    next_invoice = (db.session.scalar(sa.select(sa.func.max(Invoice.id))) or 0) + 1
    start_day = date(2021, 4, 1)
    for batch_start in range(0, call_offs, BATCH):
        rows, funder_rows, invoice_rows, note_rows = [], [], [], []
        for _ in range(min(BATCH, call_offs - batch_start)):
            pk = next_call_off
            next_call_off += 1
            provider = rng.choice(provider_ids)
            lead = rng.choice(funder_ids)
            placed = start_day + timedelta(days=rng.randrange(0, 5 * 365))
            placed_at = datetime(placed.year, placed.month, placed.day, 11, tzinfo=UTC)
            quantity = rng.randrange(3, 30)
            price = rng.choice((4_500, 7_250, 12_345))
            net = quantity * price
            vat = net // 5
            gross = net + vat
            delivered = rng.randrange(0, quantity + 1)
            cancelled = rng.random() < 0.05
            status = (
                "cancelled"
                if cancelled
                else ("completed" if delivered == quantity else "in_delivery")
            )
            rows.append(
                {
                    "id": pk,
                    "reference": f"SYN-{pk:09d}",
                    "status": status,
                    "version": 1,
                    "listing_id": None,
                    "service_title": "A service",
                    "provider_id": provider,
                    "lead_buyer_id": lead,
                    "arrangement_id": arrangement.id,
                    "category_id": rng.choice(categories),
                    "award_route": "further_competition",
                    "choice_reason": None,
                    "choice_reason_detail": "",
                    "quantity": quantity,
                    "start_date": placed + timedelta(days=14),
                    "end_date": placed + timedelta(days=120),
                    "crn": "",
                    "pdu": "",
                    "po_number": "PO",
                    "notes_for_provider": "",
                    "unit": "session",
                    "unit_price_pence": price,
                    "vat_treatment": "standard",
                    "net_pence": net,
                    "vat_pence": vat,
                    "gross_pence": gross,
                    "delivered_units": delivered,
                    "outcome_max_pence": 0,
                    "placed_at": placed_at,
                    "accepted_at": placed_at + timedelta(days=1),
                    "completed_at": placed_at + timedelta(days=130)
                    if status == "completed"
                    else None,
                    "cancelled_at": placed_at + timedelta(days=60) if cancelled else None,
                    "cancellation_reason": "other" if cancelled else None,
                    "cancellation_detail": "",
                    "missed_sessions_chargeable": False,
                    "created_at": placed_at,
                    "updated_at": placed_at,
                }
            )
            year = placed.year if placed.month >= 4 else placed.year - 1
            pairs = [(lead, 10_000)]
            if rng.random() < 0.2:
                other = rng.choice([f for f in funder_ids if f != lead])
                pairs = [(lead, 6_667), (other, 3_333)]
            shares = split_by_basis_points(gross, [bp for _, bp in pairs])
            for (org, bp), share in zip(pairs, shares, strict=True):
                funder_rows.append(
                    {
                        "call_off_id": pk,
                        "organisation_id": org,
                        "is_lead": org == lead,
                        "basis_points": bp,
                        "share_pence": share,
                        "committed_pence": 0,
                        "budget_id": budget_ids[org, year],
                        "confirmed_at": placed_at,
                        "preauthorised": False,
                    }
                )
            left = delivered
            for month in range(3):
                if not left:
                    break
                units = left if month == 2 else rng.randrange(0, left + 1)
                left -= units
                if not units:
                    continue
                inv_net = units * price
                inv_vat = inv_net // 5
                issued = placed_at + timedelta(days=35 + 30 * month)
                paid = rng.random() < 0.9
                sequences[provider] += 1
                invoice_rows.append(
                    {
                        "id": next_invoice,
                        "provider_id": provider,
                        "lead_buyer_id": lead,
                        "call_off_id": pk,
                        "kind": "monthly",
                        "period_start": placed + timedelta(days=30 * month),
                        "period_end": placed + timedelta(days=30 * month + 29),
                        "status": "paid" if paid else "issued",
                        "sequence": sequences[provider],
                        "number": f"INV-{sequences[provider]:06d}",
                        "po_number": "PO",
                        "call_off_reference": f"SYN-{pk:09d}",
                        "net_pence": inv_net,
                        "vat_pence": inv_vat,
                        "gross_pence": inv_net + inv_vat,
                        "created_at": issued,
                        "issued_at": issued,
                        "paid_at": issued + timedelta(days=20) if paid else None,
                        "paid_on": (issued + timedelta(days=20)).date() if paid else None,
                        "payment_method": "bacs" if paid else None,
                    }
                )
                if rng.random() < 0.03:
                    notes_sequence[provider] += 1
                    note_net = min(inv_net, price)
                    note_rows.append(
                        {
                            "invoice_id": next_invoice,
                            "provider_id": provider,
                            "sequence": notes_sequence[provider],
                            "number": f"CN-{notes_sequence[provider]:06d}",
                            "reason": "Correction",
                            "net_pence": note_net,
                            "vat_pence": note_net // 5,
                            "gross_pence": note_net + note_net // 5,
                            "created_at": issued + timedelta(days=rng.choice((5, 40))),
                        }
                    )
                next_invoice += 1
        db.session.execute(sa.insert(CallOff.__table__), rows)
        db.session.execute(sa.insert(CallOffFunder.__table__), funder_rows)
        if invoice_rows:
            db.session.execute(sa.insert(Invoice.__table__), invoice_rows)
        if note_rows:
            db.session.execute(sa.insert(CreditNote.__table__), note_rows)
    if db.engine.dialect.name == "postgresql":
        for table in ("call_offs", "invoices"):
            db.session.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpendStaleCallOff))
    _ = Organisation  # the funders and providers are organisations
