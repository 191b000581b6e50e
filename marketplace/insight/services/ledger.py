"""The spend ledger (``insight.models``): deriving a call-off's entries from its source rows,
bringing stale call-offs up to date before any report reads the ledger, and deriving it all again.

**What a call-off's entries are** (``entries_for``; every amount is pence, VAT included, and
every day is the London date of the moment it names):

- *Committed* mirrors the funders' budgets, so that a commissioner's ledger agrees with its
  budgets page (there, committed + spent is what its call-offs hold of its money):
  - on the day the call-off was placed, each funder's share as placed: the funder row's
    ``share_pence`` less what agreed variations added to it since. A funder that declined its
    share commits nothing (its budget was given back when it declined); a draft commits nothing.
  - on the day each agreed variation was decided, what it moved each funder's share by: the
    new value's split less the old value's, both split by the funders' basis points in funder
    order, exactly as ``orders.services.variations`` moves ``share_pence`` and the budgets.
  - on the day a call-off is withdrawn (declined, expired or cancelled), minus what it gave back
    to each budget: the funder's share less its part of the value of the units delivered
    (``orders.services.budgets.spend_delivered``/``release_budgets``: delivered value is spent,
    the rest released).
- *Invoiced*: each issued invoice's gross on its issue day, and each of its credit notes'
  gross negative on the day it was raised, each split among the funders exactly as the recharge
  statements split it (``invoices.services.recharging.split_among``: net and VAT each by largest
  remainder, lead first). A draft invoice is not spend.
- *Paid*: a paid invoice on ``paid_on``, less the credit notes raised before it was paid (the
  buyer paid what was left); a credit note raised after the invoice was paid is a refund
  (by card through Stripe, else owed back), negative on the day it was raised. Split as invoiced.

Every entry carries the provider's classification in force on its day (the row with the
greatest ``(effective_from, id)`` not after it, as ``accounts.queries.classifications_in_force``
reads it; none: neither VCSE nor SME), the funder organisation's region and PCC area, the
call-off's category and the financial year of its day. Parts of nothing are not entries.

**Keeping it current.** Triggers (``insight.stale``) mark a call-off stale on any write to its
source rows. ``catch_up()`` replaces each stale call-off's entries and moves the roll-ups by the
difference. It commits in **a session of its own** (its own connection and transaction), not the
request's: a reader calls it at the start of a GET request, before writing anything, and the
request's own unit of work (one commit, or none for a GET) is untouched. Because it commits
separately, a caller must not hold uncommitted writes to the source tables when it calls it
(on SQLite that caller would hold the write lock catch-up waits for; anywhere, its changes are
not yet visible and stay stale until the next catch-up). Exactly once under concurrent callers:
the whole catch-up holds one lock (PostgreSQL: a transaction-level advisory lock; SQLite: the
database's write lock), and removes the stale rows *before* reading the sources, so a write
committed while it runs leaves a new stale row for the next catch-up rather than being lost.
When nothing is stale it costs one small query on the caller's session.

``rebuild_all()`` derives everything again in chunks of call-offs (each chunk's funders,
variations, invoices, credit notes and classifications read in one query each, entries inserted
in bulk) and builds the roll-ups with one ``INSERT … SELECT … GROUP BY`` each. It runs in the
caller's session (the caller commits). ``check_ledger()`` is the invariant check.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organisation, OrganisationClassification
from marketplace.core.clock import financial_year, london_date
from marketplace.core.db import db
from marketplace.core.money import BASIS_POINTS_WHOLE, split_by_basis_points
from marketplace.insight.models import (
    Measure,
    SpendEntry,
    SpendHalfYear,
    SpendMonth,
    SpendProviderYear,
    SpendStaleCallOff,
    SpendYear,
)
from marketplace.invoices.models import CreditNote, Invoice, InvoiceStatus
from marketplace.invoices.services.recharging import split_among
from marketplace.orders.models import (
    CallOff,
    CallOffFunder,
    CallOffStatus,
    Variation,
    VariationStatus,
)
from marketplace.orders.services.call_offs import call_off_value

CHUNK = 5_000
LOCK_NAME = "insight.spend-ledger"
WITHDRAWN = {
    CallOffStatus.DECLINED: "declined_at",
    CallOffStatus.EXPIRED: "expired_at",
    CallOffStatus.CANCELLED: "cancelled_at",
}

# The columns of an entry that say what it is (all but its id), in the order ``Entry`` has them.
ENTRY_COLUMNS = (
    "call_off_id",
    "measure",
    "occurred_on",
    "financial_year",
    "funder_id",
    "provider_id",
    "category_id",
    "region_id",
    "pcc_area_id",
    "provider_vcse",
    "provider_sme",
    "source",
    "source_id",
    "amount_pence",
)


class Entry(NamedTuple):
    """One spend entry as derived (a tuple: millions are made by a rebuild)."""

    call_off_id: int
    measure: str
    occurred_on: date
    financial_year: int
    funder_id: int
    provider_id: int
    category_id: int
    region_id: int | None
    pcc_area_id: int | None
    provider_vcse: bool
    provider_sme: bool
    source: str
    source_id: int
    amount_pence: int

    def as_row(self) -> dict:
        return self._asdict()


@dataclass(frozen=True)
class _Funder:
    """What ``split_among`` and the committed rule read of a funder (``CallOffFunder``'s names)."""

    id: int
    organisation_id: int
    is_lead: bool
    basis_points: int
    share_pence: int
    declined: bool
    region_id: int | None
    pcc_area_id: int | None


@dataclass
class Sources:
    """A chunk of call-offs' source rows, read in one query per table."""

    call_offs: dict[int, sa.Row]
    funders: dict[int, list[_Funder]]
    variations: dict[int, list[sa.Row]]
    invoices: dict[int, list[sa.Row]]
    credit_notes: dict[int, list[sa.Row]]  # by invoice id
    # Each provider's classifications as ((effective_from, id), vcse, sme), in that order.
    classifications: dict[int, list[tuple[tuple[date, int], bool, bool]]]


def load_sources(session: Session, call_off_ids: Sequence[int]) -> Sources:
    ids = list(call_off_ids)
    call_offs = {
        row.id: row
        for row in session.execute(
            sa.select(
                CallOff.id,
                CallOff.status,
                CallOff.provider_id,
                CallOff.category_id,
                CallOff.gross_pence,
                CallOff.unit_price_pence,
                CallOff.vat_treatment,
                CallOff.delivered_units,
                CallOff.placed_at,
                CallOff.declined_at,
                CallOff.expired_at,
                CallOff.cancelled_at,
            ).where(CallOff.id.in_(ids))
        )
    }
    funders: dict[int, list[_Funder]] = defaultdict(list)
    for row in session.execute(
        sa.select(
            CallOffFunder.call_off_id,
            CallOffFunder.id,
            CallOffFunder.organisation_id,
            CallOffFunder.is_lead,
            CallOffFunder.basis_points,
            CallOffFunder.share_pence,
            CallOffFunder.declined_at,
            Organisation.region_id,
            Organisation.pcc_area_id,
        )
        .join(Organisation, Organisation.id == CallOffFunder.organisation_id)
        .where(CallOffFunder.call_off_id.in_(ids))
        .order_by(CallOffFunder.call_off_id, CallOffFunder.id)
    ):
        funders[row.call_off_id].append(
            _Funder(
                row.id,
                row.organisation_id,
                row.is_lead,
                row.basis_points,
                row.share_pence,
                row.declined_at is not None,
                row.region_id,
                row.pcc_area_id,
            )
        )
    variations: dict[int, list[sa.Row]] = defaultdict(list)
    for row in session.execute(
        sa.select(
            Variation.call_off_id,
            Variation.id,
            Variation.before,
            Variation.after,
            Variation.decided_at,
        )
        .where(Variation.call_off_id.in_(ids), Variation.status == VariationStatus.AGREED)
        .order_by(Variation.call_off_id, Variation.id)
    ):
        variations[row.call_off_id].append(row)
    invoices: dict[int, list[sa.Row]] = defaultdict(list)
    for row in session.execute(
        sa.select(
            Invoice.call_off_id,
            Invoice.id,
            Invoice.status,
            Invoice.net_pence,
            Invoice.vat_pence,
            Invoice.issued_at,
            Invoice.paid_at,
            Invoice.paid_on,
        )
        .where(
            Invoice.call_off_id.in_(ids),
            Invoice.status != InvoiceStatus.DRAFT,
            Invoice.issued_at.is_not(None),
        )
        .order_by(Invoice.call_off_id, Invoice.id)
    ):
        invoices[row.call_off_id].append(row)
    credit_notes: dict[int, list[sa.Row]] = defaultdict(list)
    for row in session.execute(
        sa.select(
            CreditNote.invoice_id,
            CreditNote.id,
            CreditNote.net_pence,
            CreditNote.vat_pence,
            CreditNote.created_at,
        )
        .join(Invoice, Invoice.id == CreditNote.invoice_id)
        .where(Invoice.call_off_id.in_(ids))
        .order_by(CreditNote.invoice_id, CreditNote.id)
    ):
        credit_notes[row.invoice_id].append(row)
    providers = {row.provider_id for row in call_offs.values()}
    classifications: dict[int, list] = defaultdict(list)
    if providers:
        for row in session.execute(
            sa.select(
                OrganisationClassification.organisation_id,
                OrganisationClassification.id,
                OrganisationClassification.effective_from,
                OrganisationClassification.vcse,
                OrganisationClassification.sme,
            ).where(OrganisationClassification.organisation_id.in_(sorted(providers)))
        ):
            classifications[row.organisation_id].append(
                ((row.effective_from, row.id), row.vcse, row.sme)
            )
        for rows in classifications.values():
            rows.sort()
    return Sources(call_offs, funders, variations, invoices, credit_notes, classifications)


def _in_force(rows: list, day: date) -> tuple[bool, bool]:
    """The (VCSE, SME) flags of the row with the greatest (effective_from, id) not after
    ``day`` (the rule of ``classifications_in_force``); neither if there is none."""
    at = bisect.bisect_right(rows, ((day, float("inf")),))
    if at == 0:
        return False, False
    _, vcse, sme = rows[at - 1]
    return vcse, sme


def _derive(sources: Sources, call_off_id: int) -> list[Entry]:
    call_off = sources.call_offs.get(call_off_id)
    if call_off is None or call_off.status == CallOffStatus.DRAFT:
        return []
    funders = sources.funders.get(call_off_id, [])
    if not funders:
        return []
    classification = sources.classifications.get(call_off.provider_id, [])
    entries: list[Entry] = []

    def add(measure: Measure, at: date | datetime, source: str, source_id: int, parts) -> None:
        day = at if type(at) is date else london_date(at)
        vcse, sme = _in_force(classification, day)
        for funder, amount in parts:
            if amount:
                entries.append(
                    Entry(
                        call_off_id,
                        measure.value,
                        day,
                        financial_year(day),
                        funder.organisation_id,
                        call_off.provider_id,
                        call_off.category_id,
                        funder.region_id,
                        funder.pcc_area_id,
                        vcse,
                        sme,
                        source,
                        source_id,
                        amount,
                    )
                )

    # Committed: as the budgets hold it (see the module's docstring).
    points = [f.basis_points for f in funders]
    if sum(points) != BASIS_POINTS_WHOLE:
        # Never through the services (shares are re-split whole); a hand edit that left them
        # so counts the funders' own shares as placed, rather than failing every reader.
        committing = [f for f in funders if not f.declined]
        add(
            Measure.COMMITTED,
            call_off.placed_at,
            "call_off",
            call_off_id,
            [(f, f.share_pence) for f in committing],
        )
        return entries
    committing = [f for f in funders if not f.declined]
    moved: dict[int, int] = defaultdict(int)
    variation_parts = []
    for variation in sources.variations.get(call_off_id, []):
        before = split_by_basis_points(int(variation.before["gross_pence"]), points)
        after = split_by_basis_points(int(variation.after["gross_pence"]), points)
        parts = [(f, new - old) for f, old, new in zip(funders, before, after, strict=True)]
        for funder, delta in parts:
            moved[funder.id] += delta
        variation_parts.append((variation, parts))
    add(
        Measure.COMMITTED,
        call_off.placed_at,
        "call_off",
        call_off_id,
        [(f, f.share_pence - moved[f.id]) for f in committing],
    )
    for variation, parts in variation_parts:
        if variation.decided_at is not None:
            add(
                Measure.COMMITTED,
                variation.decided_at,
                "variation",
                variation.id,
                [(f, d) for f, d in parts if not f.declined],
            )
    withdrawn_at = (
        getattr(call_off, WITHDRAWN[call_off.status], None)
        if (call_off.status in WITHDRAWN)
        else None
    )
    if withdrawn_at is not None:
        *_, delivered = call_off_value(
            call_off.unit_price_pence, call_off.delivered_units, call_off.vat_treatment
        )
        spent = split_by_basis_points(min(delivered, call_off.gross_pence), points)
        add(
            Measure.COMMITTED,
            withdrawn_at,
            "withdrawal",
            call_off_id,
            [
                (f, -(f.share_pence - s))
                for f, s in zip(funders, spent, strict=True)
                if not f.declined
            ],
        )

    # Invoiced and paid: split as the recharge statements split them.
    def split(net: int, vat: int) -> list[tuple[_Funder, int]]:
        if len(funders) == 1:  # the whole to the one funder, as split_among gives it
            return [(funders[0], net + vat)]
        by_org = {f.organisation_id: f for f in funders}
        return [(by_org[p.organisation_id], p.gross_pence) for p in split_among(funders, net, vat)]

    for invoice in sources.invoices.get(call_off_id, []):
        notes = sources.credit_notes.get(invoice.id, [])
        add(
            Measure.INVOICED,
            invoice.issued_at,
            "invoice",
            invoice.id,
            split(invoice.net_pence, invoice.vat_pence),
        )
        for note in notes:
            add(
                Measure.INVOICED,
                note.created_at,
                "credit_note",
                note.id,
                split(-note.net_pence, -note.vat_pence),
            )
        if invoice.status != InvoiceStatus.PAID or invoice.paid_on is None:
            continue
        paid_at = invoice.paid_at
        before = [n for n in notes if paid_at is None or n.created_at < paid_at]
        after = [n for n in notes if n not in before]
        add(
            Measure.PAID,
            invoice.paid_on,
            "invoice",
            invoice.id,
            split(
                invoice.net_pence - sum(n.net_pence for n in before),
                invoice.vat_pence - sum(n.vat_pence for n in before),
            ),
        )
        for note in after:
            add(
                Measure.PAID,
                note.created_at,
                "credit_note",
                note.id,
                split(-note.net_pence, -note.vat_pence),
            )
    return entries


def entries_for(call_off: CallOff | int, *, session: Session | None = None) -> list[Entry]:
    """The spend entries the call-off's source rows make now (see the module's docstring)."""
    call_off_id = call_off if isinstance(call_off, int) else call_off.id
    sources = load_sources(session or db.session, [call_off_id])
    return _derive(sources, call_off_id)


def derive(session: Session, call_off_ids: Sequence[int]) -> Iterator[Entry]:
    """The entries of many call-offs, their sources read a chunk at a time."""
    ids = sorted(call_off_ids)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        sources = load_sources(session, chunk)
        for call_off_id in chunk:
            yield from _derive(sources, call_off_id)


# ---------------------------------------------------------------------------------------------
# The roll-ups.


def _month_key(entry: Entry) -> tuple:
    return (
        entry.occurred_on.replace(day=1),
        entry.financial_year,
        entry.measure,
        entry.funder_id,
        entry.category_id,
        entry.region_id,
        entry.pcc_area_id,
        entry.provider_vcse,
        entry.provider_sme,
    )


_MONTH_FIELDS = (
    "month",
    "financial_year",
    "measure",
    "funder_id",
    "category_id",
    "region_id",
    "pcc_area_id",
    "provider_vcse",
    "provider_sme",
)
_YEAR_FIELDS = ("financial_year", "funder_id", "provider_id", "provider_vcse", "provider_sme")
# The yearly roll-up's key: the monthly one without the month.
_SPEND_YEAR_FIELDS = _MONTH_FIELDS[1:]
_HALF_FIELDS = ("financial_year", "half", "measure", "funder_id", "provider_vcse", "provider_sme")


def _spend_year_key(entry: Entry) -> tuple:
    return _month_key(entry)[1:]


def _half(month: int) -> int:
    """The half of the financial year a month (1 to 12) falls in: 1 April to September."""
    return 1 if 4 <= month <= 9 else 2


def _half_key(entry: Entry) -> tuple:
    return (
        entry.financial_year,
        _half(entry.occurred_on.month),
        entry.measure,
        entry.funder_id,
        entry.provider_vcse,
        entry.provider_sme,
    )


# The roll-ups coarser than the month, each the sum of the entries with its key (and so of the
# monthly rows): (model, key fields, an entry's key). Each key has the financial year and funder.
_COARSE = (
    (SpendYear, _SPEND_YEAR_FIELDS, _spend_year_key),
    (SpendHalfYear, _HALF_FIELDS, _half_key),
)


def _year_key(entry: Entry) -> tuple:
    return (
        entry.financial_year,
        entry.funder_id,
        entry.provider_id,
        entry.provider_vcse,
        entry.provider_sme,
    )


def _row_key(row, fields: Sequence[str]) -> tuple:
    values = []
    for name in fields:
        value = getattr(row, name)
        values.append(value.value if isinstance(value, Measure) else value)
    return tuple(values)


def _move_rollups(session: Session, removed: Iterable[Entry], added: Iterable[Entry]) -> None:
    """Move the roll-ups (monthly, yearly, half-yearly, provider-year) by the entries removed
    and added: a row whose count reaches nothing is deleted; one that did not exist is inserted.
    Each roll-up row stays the sum of its entries."""
    months: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    coarse: list[dict[tuple, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in _COARSE]
    years: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for sign, entries in ((-1, removed), (1, added)):
        for entry in entries:
            keyed = [(months, _month_key(entry))]
            keyed += [
                (sums, key_of(entry)) for sums, (_, _, key_of) in zip(coarse, _COARSE, strict=True)
            ]
            for sums, key in keyed:
                delta = sums[key]
                delta[0] += sign * entry.amount_pence
                delta[1] += sign
            if entry.measure == Measure.PAID.value:
                delta = years[_year_key(entry)]
                delta[0] += sign * entry.amount_pence
                delta[1] += sign
    months = {k: v for k, v in months.items() if v != [0, 0]}
    coarse = [{k: v for k, v in sums.items() if v != [0, 0]} for sums in coarse]
    years = {k: v for k, v in years.items() if v != [0, 0]}
    if months:
        funders = sorted({k[3] for k in months})
        first_days = sorted({k[0] for k in months})
        existing = {
            _row_key(row, _MONTH_FIELDS): row
            for row in session.scalars(
                sa.select(SpendMonth).where(
                    SpendMonth.funder_id.in_(funders), SpendMonth.month.in_(first_days)
                )
            )
        }
        _apply(session, SpendMonth, _MONTH_FIELDS, "amount_pence", months, existing)
    for sums, (model, fields, _) in zip(coarse, _COARSE, strict=True):
        if not sums:
            continue
        funder_at, year_at = fields.index("funder_id"), fields.index("financial_year")
        funders = sorted({k[funder_at] for k in sums})
        financial_years = sorted({k[year_at] for k in sums})
        existing = {
            _row_key(row, fields): row
            for row in session.scalars(
                sa.select(model).where(
                    model.funder_id.in_(funders), model.financial_year.in_(financial_years)
                )
            )
        }
        _apply(session, model, fields, "amount_pence", sums, existing)
    if years:
        funders = sorted({k[1] for k in years})
        providers = sorted({k[2] for k in years})
        existing = {
            _row_key(row, _YEAR_FIELDS): row
            for row in session.scalars(
                sa.select(SpendProviderYear).where(
                    SpendProviderYear.funder_id.in_(funders),
                    SpendProviderYear.provider_id.in_(providers),
                )
            )
        }
        _apply(session, SpendProviderYear, _YEAR_FIELDS, "paid_pence", years, existing)


def _apply(session, model, fields, amount_field, deltas, existing) -> None:
    for key, (amount, count) in deltas.items():
        row = existing.get(key)
        if row is None:
            row = model(**dict(zip(fields, key, strict=True)), entries=0)
            setattr(row, amount_field, 0)
            session.add(row)
        setattr(row, amount_field, getattr(row, amount_field) + amount)
        row.entries += count
        if row.entries == 0:
            # No entries left: the sum of nothing is nothing, so no row.
            if row in session.new:
                session.expunge(row)
            else:
                session.delete(row)
    session.flush()


def _stored(session: Session, call_off_ids: Sequence[int]) -> list[Entry]:
    table = SpendEntry.__table__
    rows = session.execute(
        sa.select(*(table.c[name] for name in ENTRY_COLUMNS)).where(
            table.c.call_off_id.in_(call_off_ids)
        )
    )
    return [Entry(*row) for row in rows]


def _lock(session: Session) -> None:
    """One catch-up or rebuild at a time, until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(
                    sa.func.hashtextextended(sa.literal(LOCK_NAME, sa.Text), 0)
                )
            )
        )
    else:  # one writer at a time: take the database's write lock now
        session.execute(sa.text("UPDATE cache_generations SET generation = generation WHERE 0"))


# ---------------------------------------------------------------------------------------------
# Catch-up, rebuild and the invariant check.


def _anything_stale() -> bool:
    return db.session.execute(sa.select(SpendStaleCallOff.call_off_id).limit(1)).first() is not None


def catch_up() -> int:
    """Bring every stale call-off up to date, entries and roll-ups, in a session of its own that
    commits (see the module's docstring); the number of call-offs brought up to date."""
    if not _anything_stale():
        return 0
    with Session(bind=db.engine, expire_on_commit=False) as session:
        try:
            _lock(session)
            done = _catch_up(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return done


def _catch_up(session: Session) -> int:
    stale = SpendStaleCallOff.__table__
    # Taken off first, under the lock: a write committed after this leaves its own stale row.
    ids = sorted(row[0] for row in session.execute(sa.select(stale.c.call_off_id)).all())
    done = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        session.execute(stale.delete().where(stale.c.call_off_id.in_(chunk)))
        old = _stored(session, chunk)
        new = list(derive(session, chunk))
        entries = SpendEntry.__table__
        session.execute(entries.delete().where(entries.c.call_off_id.in_(chunk)))
        if new:
            session.execute(sa.insert(entries), [e.as_row() for e in new])
        _move_rollups(session, old, new)
        done += len(chunk)
    return done


def rebuild_all(session: Session | None = None) -> int:
    """Derive the whole ledger again in the caller's session (the caller commits): every
    call-off's entries, then the roll-ups summed from them. The number of call-offs."""
    session = session or db.session
    session.flush()
    _lock(session)
    for model in (
        SpendStaleCallOff,
        SpendMonth,
        SpendYear,
        SpendHalfYear,
        SpendProviderYear,
        SpendEntry,
    ):
        session.execute(sa.delete(model.__table__))
    foreign_keys = _drop_foreign_keys(session)
    total = 0
    last = 0
    while True:
        chunk = list(
            session.scalars(
                sa.select(CallOff.id).where(CallOff.id > last).order_by(CallOff.id).limit(CHUNK)
            )
        )
        if not chunk:
            break
        last = chunk[-1]
        total += len(chunk)
        # Derived before the COPY starts: the derivation reads on the same connection.
        _bulk_insert(session, list(derive(session, chunk)))
    _add_foreign_keys(session, foreign_keys)
    _sum_rollups(session)
    return total


def _drop_foreign_keys(session: Session) -> list[tuple[str, str]]:
    """PostgreSQL: the entries' foreign keys, dropped for the bulk load and added back after it
    (the documented way to populate a table: one validating join per key instead of a check per
    row, several times faster for millions of entries). DDL is transactional there, so a rebuild
    that fails puts them back with everything else; the table is locked against other writers
    meanwhile, as the rebuild replaces all of it anyway. SQLite: nothing to do."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    keys = [
        (name, definition)
        for name, definition in session.execute(
            sa.text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'spend_entries'::regclass AND contype = 'f' ORDER BY conname"
            )
        )
    ]
    # A transaction with deferred trigger events pending (the demo load's cache triggers) may not
    # alter the tables they touch: then the keys stay, and each row is checked as it goes in.
    savepoint = session.begin_nested()
    try:
        for name, _ in keys:
            session.execute(sa.text(f'ALTER TABLE spend_entries DROP CONSTRAINT "{name}"'))
    except sa.exc.OperationalError:
        savepoint.rollback()
        return []
    savepoint.commit()
    return keys


def _add_foreign_keys(session: Session, keys: list[tuple[str, str]]) -> None:
    for name, definition in keys:
        session.execute(sa.text(f'ALTER TABLE spend_entries ADD CONSTRAINT "{name}" {definition}'))


def _bulk_insert(session: Session, entries: Iterable[Entry]) -> None:
    """Insert many entries past the ORM: PostgreSQL's COPY, SQLite's executemany."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    columns = ", ".join(ENTRY_COLUMNS)
    if connection.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY spend_entries ({columns}) FROM STDIN") as copy,
        ):
            for entry in entries:
                copy.write_row(entry)
        return
    marks = ", ".join("?" * len(ENTRY_COLUMNS))
    # Only the constant column names are written into the statement; the values are bound.
    insert = f"INSERT INTO spend_entries ({columns}) VALUES ({marks})"  # noqa: S608
    cursor = raw.cursor()
    try:
        cursor.executemany(
            insert,
            (
                (
                    *entry[:2],
                    entry.occurred_on.isoformat(),
                    *entry[3:9],
                    int(entry[9]),
                    int(entry[10]),
                    *entry[11:],
                )
                for entry in entries
            ),
        )
    finally:
        cursor.close()


def _first_of_month(session: Session, column):
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.date_trunc("month", column), sa.Date)
    return sa.func.date(column, "start of month")


def _sum_rollups(session: Session) -> None:
    e = SpendEntry.__table__
    month = _first_of_month(session, e.c.occurred_on)
    keys = [e.c.financial_year, e.c.measure, e.c.funder_id, e.c.category_id, e.c.region_id]
    keys += [e.c.pcc_area_id, e.c.provider_vcse, e.c.provider_sme]
    session.execute(
        sa.insert(SpendMonth.__table__).from_select(
            ["month", *(c.name for c in keys), "amount_pence", "entries"],
            sa.select(month, *keys, sa.func.sum(e.c.amount_pence), sa.func.count()).group_by(
                month, *keys
            ),
        )
    )
    # The coarser roll-ups from the monthly one just summed: each row the sum of its entries.
    m = SpendMonth.__table__
    spend_year_keys = [m.c[name] for name in _SPEND_YEAR_FIELDS]
    session.execute(
        sa.insert(SpendYear.__table__).from_select(
            [*_SPEND_YEAR_FIELDS, "amount_pence", "entries"],
            sa.select(
                *spend_year_keys, sa.func.sum(m.c.amount_pence), sa.func.sum(m.c.entries)
            ).group_by(*spend_year_keys),
        )
    )
    half = sa.case((sa.extract("month", m.c.month).between(4, 9), 1), else_=2)
    half_keys = [m.c[name] if name != "half" else half for name in _HALF_FIELDS]
    session.execute(
        sa.insert(SpendHalfYear.__table__).from_select(
            [*_HALF_FIELDS, "amount_pence", "entries"],
            sa.select(*half_keys, sa.func.sum(m.c.amount_pence), sa.func.sum(m.c.entries)).group_by(
                *half_keys
            ),
        )
    )
    year_keys = [e.c.financial_year, e.c.funder_id, e.c.provider_id]
    year_keys += [e.c.provider_vcse, e.c.provider_sme]
    session.execute(
        sa.insert(SpendProviderYear.__table__).from_select(
            [*(c.name for c in year_keys), "paid_pence", "entries"],
            sa.select(*year_keys, sa.func.sum(e.c.amount_pence), sa.func.count())
            .where(e.c.measure == Measure.PAID.value)
            .group_by(*year_keys),
        )
    )


def check_ledger(session: Session | None = None) -> list[str]:
    """The invariant, as problems found (none: it holds): every call-off that is not stale has
    exactly the entries a fresh derivation makes, and every roll-up row is the sum of the
    entries with its key (and every key of the entries has its row)."""
    session = session or db.session
    problems: list[str] = []
    stale = set(session.scalars(sa.select(SpendStaleCallOff.call_off_id)))
    ids = [i for i in session.scalars(sa.select(CallOff.id).order_by(CallOff.id)) if i not in stale]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        fresh = sorted(derive(session, chunk), key=_sort_key)
        stored = sorted(_stored(session, chunk), key=_sort_key)
        if fresh != stored:
            by_call_off_fresh: dict[int, list] = defaultdict(list)
            by_call_off_stored: dict[int, list] = defaultdict(list)
            for entry in fresh:
                by_call_off_fresh[entry.call_off_id].append(entry)
            for entry in stored:
                by_call_off_stored[entry.call_off_id].append(entry)
            for call_off_id in sorted(set(by_call_off_fresh) | set(by_call_off_stored)):
                if by_call_off_fresh[call_off_id] != by_call_off_stored[call_off_id]:
                    problems.append(
                        f"call-off {call_off_id}: {len(by_call_off_stored[call_off_id])} "
                        f"entries stored, {len(by_call_off_fresh[call_off_id])} derived, "
                        "and they differ"
                    )
    every = _stored_all(session)
    months: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    coarse: list[dict[tuple, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in _COARSE]
    years: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for entry in every:
        months[_month_key(entry)][0] += entry.amount_pence
        months[_month_key(entry)][1] += 1
        for sums, (_, _, key_of) in zip(coarse, _COARSE, strict=True):
            sums[key_of(entry)][0] += entry.amount_pence
            sums[key_of(entry)][1] += 1
        if entry.measure == Measure.PAID.value:
            years[_year_key(entry)][0] += entry.amount_pence
            years[_year_key(entry)][1] += 1
    for model, fields, amount, sums in (
        (SpendMonth, _MONTH_FIELDS, "amount_pence", months),
        *(
            (model, fields, "amount_pence", sums)
            for sums, (model, fields, _) in zip(coarse, _COARSE, strict=True)
        ),
        (SpendProviderYear, _YEAR_FIELDS, "paid_pence", years),
    ):
        rows = {
            _row_key(row, fields): [getattr(row, amount), row.entries]
            for row in session.scalars(sa.select(model))
        }
        for key in sorted(set(rows) | set(sums), key=repr):
            if rows.get(key) != sums.get(key):
                problems.append(
                    f"{model.__tablename__} {key}: stored {rows.get(key)}, "
                    f"entries sum to {sums.get(key)}"
                )
    return problems


def _sort_key(entry: Entry) -> tuple:
    # Region and PCC area may be None: order None before any id.
    return tuple(
        (v is None, v if v is not None else 0)
        for v in (
            entry.call_off_id,
            entry.measure,
            entry.occurred_on,
            entry.source,
            entry.source_id,
            entry.funder_id,
            entry.amount_pence,
            entry.region_id,
            entry.pcc_area_id,
            entry.provider_vcse,
            entry.provider_sme,
            entry.category_id,
            entry.provider_id,
        )
    )


def _stored_all(session: Session) -> list[Entry]:
    table = SpendEntry.__table__
    return [
        Entry(*row)
        for row in session.execute(sa.select(*(table.c[name] for name in ENTRY_COLUMNS)))
    ]
