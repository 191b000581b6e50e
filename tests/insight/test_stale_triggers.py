"""The triggers that mark a call-off's spend stale: every one of ``stale.TRIGGERS`` is on the
database, and an ORM write, a Core bulk statement and raw SQL to each source table mark the
call-off stale (so a report never reads a ledger behind what was committed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationClassification
from marketplace.core.db import commit, db
from marketplace.insight import stale
from marketplace.insight.models import SpendStaleCallOff
from marketplace.insight.services import ledger
from marketplace.invoices.models import CreditNote, Invoice
from marketplace.invoices.services import credit_notes
from marketplace.orders.models import CallOff, CallOffFunder
from marketplace.reference.models import ProbationRegion
from tests.insight.ledger_helpers import classify
from tests.insight.test_ledger import bill, co_funded, deliver
from tests.orders.factories import build_orders_world


def installed_triggers() -> set[tuple[str, str]]:
    if db.engine.dialect.name == "postgresql":
        rows = db.session.execute(
            sa.text(
                "SELECT t.tgname, c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        )
    else:
        rows = db.session.execute(
            sa.text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        )
    return {(name, table) for name, table in rows}


def test_every_trigger_of_the_plan_is_on_the_database(app):
    wanted = {(t.name, t.table) for t in stale.TRIGGERS}
    assert wanted <= installed_triggers()
    # One trigger per (table, event): the plan names none twice.
    assert len(wanted) == len(stale.TRIGGERS)


@dataclass
class Billed:
    call_off: CallOff
    funder: CallOffFunder
    invoice: Invoice
    note: CreditNote
    provider: Organisation
    pcc: Organisation


@pytest.fixture
def billed(app) -> Billed:
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = co_funded(world)
    deliver(world, call_off, 3)
    invoice = bill(world, call_off)
    note = credit_notes.raise_credit_note(world.provider_admin, invoice, 100, "Overcharged")
    commit()
    ledger.catch_up()
    assert stale_ids() == set()
    funder = next(f for f in call_off.funders if not f.is_lead)
    return Billed(call_off, funder, invoice, note, world.provider, world.pcc)


def stale_ids() -> set[int]:
    return set(db.session.scalars(sa.select(SpendStaleCallOff.call_off_id)))


def a_region_id(organisation: Organisation) -> int | None:
    if organisation.region_id is not None:
        return None
    return db.session.scalar(sa.select(ProbationRegion.id).limit(1))


SECOND = timedelta(seconds=1)
T = {m: m.__table__ for m in (CallOff, CallOffFunder, Invoice, CreditNote)}
Classifications = OrganisationClassification.__table__


def orm_call_off(b: Billed):
    b.call_off.placed_at = b.call_off.placed_at + SECOND


def core_call_off(b: Billed):
    t = T[CallOff]
    db.session.execute(t.update().where(t.c.id == b.call_off.id).values(placed_at=t.c.placed_at))


def raw_call_off(b: Billed):
    db.session.execute(
        sa.text("UPDATE call_offs SET delivered_units = delivered_units WHERE id = :id"),
        {"id": b.call_off.id},
    )


def orm_funder(b: Billed):
    b.funder.confirmed_at = b.funder.confirmed_at + SECOND


def core_funder(b: Billed):
    t = T[CallOffFunder]
    db.session.execute(t.update().where(t.c.id == b.funder.id).values(share_pence=t.c.share_pence))


def raw_funder(b: Billed):
    db.session.execute(
        sa.text("UPDATE call_off_funders SET basis_points = basis_points WHERE id = :id"),
        {"id": b.funder.id},
    )


def orm_invoice(b: Billed):
    b.invoice.issued_at = b.invoice.issued_at + SECOND


def core_invoice(b: Billed):
    t = T[Invoice]
    db.session.execute(t.update().where(t.c.id == b.invoice.id).values(paid_on=t.c.paid_on))


def raw_invoice(b: Billed):
    db.session.execute(
        sa.text("UPDATE invoices SET gross_pence = gross_pence WHERE id = :id"),
        {"id": b.invoice.id},
    )


def orm_credit_note(b: Billed):
    b.note.created_at = b.note.created_at + SECOND


def core_credit_note(b: Billed):
    t = T[CreditNote]
    db.session.execute(t.update().where(t.c.id == b.note.id).values(gross_pence=t.c.gross_pence))


def raw_credit_note(b: Billed):
    db.session.execute(
        sa.text("UPDATE credit_notes SET created_at = created_at WHERE id = :id"),
        {"id": b.note.id},
    )


def orm_classification(b: Billed):
    classify(b.provider, b.call_off.start_date, vcse=True, sme=True)


def core_classification(b: Billed):
    row = classify(b.provider, b.call_off.start_date, vcse=True, sme=True)
    commit()
    ledger.catch_up()
    assert stale_ids() == set()
    db.session.execute(Classifications.delete().where(Classifications.c.id == row.id))


def raw_classification(b: Billed):
    db.session.execute(
        sa.text(
            "INSERT INTO organisation_classifications (organisation_id, effective_from, "
            "vcse_basis, staff_band, turnover_band, vcse, sme, source, reason, recorded_at) "
            "VALUES (:org, :day, 'cic', 'under_10', 'up_to_2m', :yes, :yes, 'correction', "
            "'raw', :now)"
        ),
        {
            "org": b.provider.id,
            "day": b.call_off.start_date,
            "yes": True,
            "now": b.call_off.placed_at.replace(tzinfo=None),
        },
    )


def orm_organisation(b: Billed):
    b.pcc.region_id = a_region_id(b.pcc)


def core_organisation(b: Billed):
    t = Organisation.__table__
    db.session.execute(t.update().where(t.c.id == b.pcc.id).values(pcc_area_id=t.c.pcc_area_id))


def raw_organisation(b: Billed):
    db.session.execute(
        sa.text("UPDATE organisations SET region_id = region_id WHERE id = :id"), {"id": b.pcc.id}
    )


WRITES = [
    orm_call_off,
    core_call_off,
    raw_call_off,
    orm_funder,
    core_funder,
    raw_funder,
    orm_invoice,
    core_invoice,
    raw_invoice,
    orm_credit_note,
    core_credit_note,
    raw_credit_note,
    orm_classification,
    core_classification,
    raw_classification,
    orm_organisation,
    core_organisation,
    raw_organisation,
]


@pytest.mark.parametrize("write", WRITES, ids=[w.__name__ for w in WRITES])
def test_a_write_to_a_source_table_marks_the_call_off_stale(billed, write):
    write(billed)
    db.session.flush()
    assert stale_ids() == {billed.call_off.id}
    commit()
    assert ledger.catch_up() == 1
    assert stale_ids() == set()
    assert ledger.check_ledger() == []
