"""Releases of call-offs, each its own ocid (``call_off_ocid(reference)``), loaded in batches
with a few set-based queries (never one query per release): the bulk file streams a million.

A call-off is published once it is awarded (sent to the provider); a draft, or one cancelled
before it was sent, never is. Each event is a release that states the whole call-off as it
stood then: ``award`` (sent), ``accepted``, ``declined``, ``expired``, ``completed``,
``cancelled`` and ``payment-<invoice id>`` for each paid invoice (an implementation
transaction from the lead buyer, who pays, to the provider). Only organisations appear: the
call-off's CRN, PDU, PO number and notes are never read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from marketplace.catalogue.models import Unit
from marketplace.competitions.models import Competition
from marketplace.core.clock import LONDON
from marketplace.core.db import db
from marketplace.insight.identifiers import call_off_ocid, competition_ocid, dynamic_market_ocid
from marketplace.insight.ocds.common import (
    Classifications,
    Organisations,
    amount,
    day_end,
    day_start,
    timestamp,
    value,
)
from marketplace.insight.ocds.market import Event
from marketplace.invoices.models import Invoice
from marketplace.orders.models import AwardRoute, CallOff, CallOffFunder, ChoiceReason
from marketplace.reference.models import ServiceCategory

SOURCE = 2
EV_AWARD, EV_ACCEPTED, EV_DECLINED, EV_EXPIRED, EV_COMPLETED, EV_CANCELLED, EV_PAYMENT = range(1, 8)
EVENT_NAMES = {
    EV_AWARD: "award",
    EV_ACCEPTED: "accepted",
    EV_DECLINED: "declined",
    EV_EXPIRED: "expired",
    EV_COMPLETED: "completed",
    EV_CANCELLED: "cancelled",
}
EVENT_TAGS = {
    EV_AWARD: ["award", "contract"],
    EV_PAYMENT: ["implementation"],
}
STATUS_TAG = ["awardUpdate", "contractUpdate"]

# The columns a release reads: nothing personal (no crn, pdu, po_number, notes, people).
COLUMNS = (
    CallOff.id,
    CallOff.reference,
    CallOff.service_title,
    CallOff.provider_id,
    CallOff.lead_buyer_id,
    CallOff.award_route,
    CallOff.choice_reason,
    CallOff.quantity,
    CallOff.start_date,
    CallOff.end_date,
    CallOff.unit,
    CallOff.unit_price_pence,
    CallOff.net_pence,
    CallOff.gross_pence,
    CallOff.sent_at,
    CallOff.accepted_at,
    CallOff.declined_at,
    CallOff.expired_at,
    CallOff.completed_at,
    CallOff.cancelled_at,
    CallOff.competition_id,
    CallOff.category_id,
)
# Published: awarded, i.e. sent to the provider.
PUBLISHED = CallOff.sent_at.is_not(None)
STATUS_COLUMNS = (
    (EV_AWARD, CallOff.sent_at),
    (EV_ACCEPTED, CallOff.accepted_at),
    (EV_DECLINED, CallOff.declined_at),
    (EV_EXPIRED, CallOff.expired_at),
    (EV_COMPLETED, CallOff.completed_at),
    (EV_CANCELLED, CallOff.cancelled_at),
)


@dataclass
class Batch:
    """What a batch of call-offs' releases need, loaded set-based."""

    rows: Sequence
    funders: dict[int, list]
    payments: dict[int, list]
    competitions: dict[int, str]
    organisations: Organisations
    classifications: Classifications
    categories: dict[int, tuple[str, str]]
    # Read from the app's configuration once a batch, not once a release.
    ocid_base: str = ""
    competition_base: str = ""
    framework: dict | None = None


def categories() -> dict[int, tuple[str, str]]:
    rows = db.session.execute(
        sa.select(ServiceCategory.id, ServiceCategory.code, ServiceCategory.name)
    )
    return {row_id: (code, name) for row_id, code, name in rows}


def load_batch(call_off_ids: Iterable[int] | None = None, rows: Sequence | None = None) -> Batch:
    """Load every call-off of ``call_off_ids`` (or ``rows``, a keyset batch in id order) with its
    funders, paid invoices, competition reference, organisations and classifications: six
    queries whatever the batch's size."""
    rows_given = rows is not None
    if rows is None:
        ids = sorted(set(call_off_ids or ()))
        rows = (
            db.session.execute(
                sa.select(*COLUMNS).where(CallOff.id.in_(ids), PUBLISHED).order_by(CallOff.id)
            ).all()
            if ids
            else []
        )
    ids = [row.id for row in rows]
    if rows_given:
        # A keyset batch of the bulk file: its ids are a range, and a range predicate keeps
        # the statement the same whatever the batch (an IN list of a thousand parameters is
        # a new statement for the driver to convert each time).
        funder_filter = CallOffFunder.call_off_id.between(ids[0], ids[-1]) if ids else sa.false()
        invoice_filter = Invoice.call_off_id.between(ids[0], ids[-1]) if ids else sa.false()
    else:
        funder_filter = CallOffFunder.call_off_id.in_(ids)
        invoice_filter = Invoice.call_off_id.in_(ids)
    funders: dict[int, list] = defaultdict(list)
    payments: dict[int, list] = defaultdict(list)
    competitions: dict[int, str] = {}
    if ids:
        for row in db.session.execute(
            sa.select(
                CallOffFunder.call_off_id,
                CallOffFunder.organisation_id,
                CallOffFunder.is_lead,
                CallOffFunder.basis_points,
                CallOffFunder.share_pence,
            )
            .where(funder_filter)
            .order_by(CallOffFunder.call_off_id, CallOffFunder.id)
        ):
            funders[row.call_off_id].append(row)
        for row in db.session.execute(
            sa.select(
                Invoice.id,
                Invoice.call_off_id,
                Invoice.lead_buyer_id,
                Invoice.provider_id,
                Invoice.gross_pence,
                Invoice.paid_at,
            )
            .where(invoice_filter, Invoice.paid_at.is_not(None))
            .order_by(Invoice.call_off_id, Invoice.paid_at, Invoice.id)
        ):
            payments[row.call_off_id].append(row)
        competition_ids = {row.competition_id for row in rows if row.competition_id}
        if competition_ids:
            competitions = dict(
                db.session.execute(
                    sa.select(Competition.id, Competition.reference).where(
                        Competition.id.in_(competition_ids)
                    )
                ).all()
            )
    org_ids = {row.provider_id for row in rows} | {row.lead_buyer_id for row in rows}
    org_ids |= {f.organisation_id for items in funders.values() for f in items}
    return Batch(
        rows=rows,
        funders=funders,
        payments=payments,
        competitions=competitions,
        organisations=Organisations(org_ids),
        classifications=Classifications(row.provider_id for row in rows),
        categories=categories(),
        ocid_base=call_off_ocid(""),
        competition_base=competition_ocid(""),
        framework=_framework(),
    )


def events(row, payments: list) -> list[Event]:
    """The events of one published call-off, in order."""
    result = [Event(at, SOURCE, row.id, ev) for ev, at in _status_times(row) if at is not None]
    result += [Event(p.paid_at, SOURCE, row.id, EV_PAYMENT, p.id) for p in payments]
    result.sort(key=lambda event: event.key)
    return result


def _status_times(row) -> list[tuple[int, datetime | None]]:
    cancelled = row.cancelled_at if row.sent_at is not None else None
    return [
        (EV_AWARD, row.sent_at),
        (EV_ACCEPTED, row.accepted_at),
        (EV_DECLINED, row.declined_at),
        (EV_EXPIRED, row.expired_at),
        (EV_COMPLETED, row.completed_at),
        (EV_CANCELLED, cancelled),
    ]


def _by(at: datetime | None, moment: datetime) -> bool:
    return at is not None and at <= moment


def _statuses(row, moment: datetime) -> tuple[str, str]:
    """(award status, contract status) as they stood at ``moment``."""
    accepted = _by(row.accepted_at, moment)
    if accepted:
        ended = _by(row.completed_at, moment) or _by(row.cancelled_at, moment)
        return "active", "terminated" if ended else "active"
    if _by(row.declined_at, moment) or _by(row.expired_at, moment):
        return "unsuccessful", "cancelled"
    if _by(row.cancelled_at, moment):
        return "cancelled", "cancelled"
    return "pending", "pending"


def releases_of(batch: Batch, row) -> list[tuple[Event, dict]]:
    """Every release of one call-off, each the whole call-off as it stood at its event. The
    parts that do not change between events (items, tender, funders, related processes) are
    built once and shared between the call-off's releases (never mutated after)."""
    payments = batch.payments.get(row.id, ())
    happened = events(row, payments)
    if not happened:
        return []
    ocid = batch.ocid_base + row.reference  # call_off_ocid(row.reference)
    orgs = batch.organisations
    buyer_ref = orgs.reference(row.lead_buyer_id)
    supplier_ref = orgs.reference(row.provider_id)
    funder_parties = []
    lead_share = None
    for funder in batch.funders.get(row.id, ()):
        share = f"Funder: {funder.basis_points / 100:.2f}% of the value (£{funder.share_pence / 100:,.2f})"
        if funder.organisation_id == row.lead_buyer_id:
            lead_share = share
        else:
            funder_parties.append(orgs.party(funder.organisation_id, ["funder"], share))
    buyer_party = orgs.party(
        row.lead_buyer_id, ["buyer", "funder"] if lead_share else ["buyer"], lead_share
    )
    buyer_payer = orgs.party(
        row.lead_buyer_id,
        ["buyer", "funder", "payer"] if lead_share else ["buyer", "payer"],
        lead_share,
    )
    code, category = batch.categories.get(row.category_id, ("", ""))
    direct = row.award_route is AwardRoute.DIRECT_RATE_CARD
    total = value(row.net_pence, row.gross_pence)
    period = {"startDate": day_start(row.start_date), "endDate": day_end(row.end_date)}
    item = {
        "id": "1",
        "description": row.service_title,
        "quantity": row.quantity,
        "unit": {"name": UNITS[row.unit], "value": value(row.unit_price_pence)},
    }
    if code:
        item["additionalClassifications"] = [
            {"scheme": "x_service_category", "id": code, "description": category}
        ]
    items = [item]
    tender = {
        "id": row.reference,
        "title": row.service_title,
        "status": "complete",
        "procurementMethod": "limited" if direct else "selective",
        "procurementMethodDetails": DIRECT_DETAILS if direct else COMPETITION_DETAILS,
        "mainProcurementCategory": "services",
        "competitive": not direct,
    }
    if direct and row.choice_reason is not None:
        tender["procurementMethodRationale"] = CHOICE_REASONS[row.choice_reason]
    related = [batch.framework]
    reference_code = batch.competitions.get(row.competition_id)
    if reference_code:
        related.append(
            {
                "id": "competition",
                "relationship": ["planning"],
                "title": "The further competition that chose the supplier",
                "scheme": "ocid",
                "identifier": batch.competition_base + reference_code,
            }
        )
    award_id = f"{row.reference}-award"
    contract_id = f"{row.reference}-contract"
    award_date = timestamp(row.sent_at)
    signed = timestamp(row.accepted_at) if row.accepted_at is not None else None
    transactions = [
        {
            "id": f"invoice-{p.id}",
            "date": timestamp(p.paid_at),
            "value": {"amount": amount(p.gross_pence), "currency": "GBP"},
            "payer": orgs.reference(p.lead_buyer_id),
            "payee": orgs.reference(p.provider_id),
        }
        for p in payments
    ]
    result = []
    for event in happened:
        moment = event.at
        stamp = timestamp(moment)
        award_status, contract_status = _statuses(row, moment)
        paid = sum(1 for p in payments if p.paid_at <= moment)
        supplier = orgs.party(
            row.provider_id,
            ["payee", "supplier"] if paid else ["supplier"],
            None,
            batch.classifications.on(row.provider_id, moment.astimezone(LONDON).date()),
        )
        contract: dict = {
            "id": contract_id,
            "awardID": award_id,
            "title": row.service_title,
            "status": contract_status,
            "period": period,
            "value": total,
            "items": items,
        }
        if signed is not None and row.accepted_at <= moment:
            contract["dateSigned"] = signed
        if paid:
            contract["implementation"] = {"transactions": transactions[:paid]}
        name = f"payment-{event.sub}" if event.ev == EV_PAYMENT else EVENT_NAMES[event.ev]
        release = {
            "ocid": ocid,
            "id": f"{ocid}-{name}",
            "date": stamp,
            "tag": EVENT_TAGS.get(event.ev, STATUS_TAG),
            "initiationType": "tender",
            "language": "en",
            "parties": [buyer_payer if paid else buyer_party, *funder_parties, supplier],
            "buyer": buyer_ref,
            "tender": tender,
            "awards": [
                {
                    "id": award_id,
                    "title": row.service_title,
                    "status": award_status,
                    "date": award_date,
                    "value": total,
                    "suppliers": [supplier_ref],
                    "contractPeriod": period,
                }
            ],
            "contracts": [contract],
            "relatedProcesses": related,
        }
        result.append((event, release))
    return result


CHOICE_REASONS = {reason: reason.label for reason in ChoiceReason}
UNITS = {unit: unit.label for unit in Unit}
DIRECT_DETAILS = "Direct award from the rate card of the dynamic market"
COMPETITION_DETAILS = "Further competition among the members of the lot"


def _framework() -> dict:
    return {
        "id": "framework",
        "relationship": ["framework"],
        "title": "The dynamic market this call-off is made under",
        "scheme": "ocid",
        "identifier": dynamic_market_ocid(),
    }


def batch_releases(batch: Batch) -> list[tuple[Event, dict]]:
    """Every release of every call-off of the batch."""
    result = []
    for row in batch.rows:
        result += releases_of(batch, row)
    return result


def event_selects() -> list[sa.Select]:
    """The feed's index of call-off events (at, source, obj, ev, sub), one select per kind."""
    selects = [
        sa.select(
            column.label("at"),
            sa.literal(SOURCE).label("source"),
            CallOff.id.label("obj"),
            sa.literal(ev).label("ev"),
            sa.literal(0).label("sub"),
        ).where(column.is_not(None), PUBLISHED)
        for ev, column in STATUS_COLUMNS
    ]
    selects.append(
        sa.select(
            Invoice.paid_at.label("at"),
            sa.literal(SOURCE).label("source"),
            Invoice.call_off_id.label("obj"),
            sa.literal(EV_PAYMENT).label("ev"),
            Invoice.id.label("sub"),
        )
        .join(CallOff, CallOff.id == Invoice.call_off_id)
        .where(Invoice.paid_at.is_not(None), PUBLISHED)
    )
    return selects
