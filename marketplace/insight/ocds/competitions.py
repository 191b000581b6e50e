"""Releases of further competitions, each its own ocid (``competition_ocid(reference)``):
only competitions that were published (never drafts). Events: ``tender`` (published),
``closed`` (bids counted: ``numberOfTenderers`` and the bid statistics), ``award`` (awarded:
the award, with its standstill period, and the contract, which is the call-off it became),
``cancelled`` and ``noaward``. The estimate is published as a value band (``minValue`` to
``value``), not to the penny. Bid statistics use the measures of the UK extension's
``bidStatistics`` codes (``finalStageBids``, ``smeFinalStageBids``, ``vcseFinalStageBids``)
in ``bids.statistics``, the structure of the bids extension that the UK extension depends on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from marketplace.competitions.models import (
    Bid,
    Competition,
    CompetitionFunder,
    ConsortiumMember,
    ConsortiumRole,
)
from marketplace.core.db import db
from marketplace.insight.identifiers import call_off_ocid, competition_ocid, dynamic_market_ocid
from marketplace.insight.ocds.common import (
    Classifications,
    Organisations,
    day_end,
    day_start,
    london_day,
    merge_parties,
    party,
    reference,
    timestamp,
    value,
)
from marketplace.insight.ocds.market import Event
from marketplace.orders.models import CallOff
from marketplace.reference.models import ServiceCategory

SOURCE = 1
EV_TENDER, EV_CLOSED, EV_AWARD, EV_CANCELLED, EV_NO_AWARD = range(1, 6)
EVENT_NAMES = {
    EV_TENDER: "tender",
    EV_CLOSED: "closed",
    EV_AWARD: "award",
    EV_CANCELLED: "cancelled",
    EV_NO_AWARD: "noaward",
}
EVENT_TAGS = {
    EV_TENDER: ["tender"],
    EV_CLOSED: ["tenderUpdate"],
    EV_AWARD: ["award", "contract"],
    EV_CANCELLED: ["tenderCancellation"],
    EV_NO_AWARD: ["tenderUpdate"],
}
# Value bands (pounds) for the estimate: the direct-award limit, the light-touch threshold.
BANDS = (0, 30_000, 100_000, 250_000, 663_540, 1_000_000, 5_000_000, 1_000_000_000)

PUBLISHED = Competition.published_at.is_not(None)
STATUS_COLUMNS = (
    (EV_TENDER, Competition.published_at),
    (EV_CLOSED, Competition.closed_at),
    (EV_AWARD, Competition.awarded_at),
    (EV_CANCELLED, Competition.cancelled_at),
    (EV_NO_AWARD, Competition.no_award_at),
)


def band(pence: int) -> tuple[int, int]:
    """The band (low, high) in pounds that an estimate falls in."""
    pounds = pence / 100
    for low, high in zip(BANDS, BANDS[1:], strict=False):
        if pounds < high:
            return low, high
    return BANDS[-2], BANDS[-1]


@dataclass
class Batch:
    competitions: list[Competition]
    funders: dict[int, list]
    call_offs: dict[int, object]
    subcontractors: dict[int, list]
    categories: dict[int, tuple[str, str]]
    organisations: Organisations
    classifications: Classifications


def load_batch(competition_ids: Iterable[int]) -> Batch:
    """Competitions with their funders, call-offs, subcontractors and organisations."""
    ids = sorted(set(competition_ids))
    competitions = (
        list(
            db.session.scalars(
                sa.select(Competition)
                .where(Competition.id.in_(ids), PUBLISHED)
                .order_by(Competition.id)
            )
        )
        if ids
        else []
    )
    ids = [c.id for c in competitions]
    funders: dict[int, list] = defaultdict(list)
    subcontractors: dict[int, list] = defaultdict(list)
    call_offs: dict[int, object] = {}
    if ids:
        for row in db.session.execute(
            sa.select(
                CompetitionFunder.competition_id,
                CompetitionFunder.organisation_id,
                CompetitionFunder.basis_points,
            )
            .where(CompetitionFunder.competition_id.in_(ids))
            .order_by(CompetitionFunder.id)
        ):
            funders[row.competition_id].append(row)
        for row in db.session.execute(
            sa.select(Bid.competition_id, ConsortiumMember.organisation_id)
            .join(Bid, Bid.id == ConsortiumMember.bid_id)
            .join(Competition, Competition.winning_bid_id == Bid.id)
            .where(
                Bid.competition_id.in_(ids), ConsortiumMember.role == ConsortiumRole.SUBCONTRACTOR
            )
            .order_by(ConsortiumMember.id)
        ):
            subcontractors[row.competition_id].append(row.organisation_id)
        call_off_ids = [c.call_off_id for c in competitions if c.call_off_id]
        if call_off_ids:
            for row in db.session.execute(
                sa.select(
                    CallOff.id,
                    CallOff.reference,
                    CallOff.provider_id,
                    CallOff.net_pence,
                    CallOff.gross_pence,
                    CallOff.start_date,
                    CallOff.end_date,
                    CallOff.accepted_at,
                    CallOff.sent_at,
                ).where(CallOff.id.in_(call_off_ids))
            ):
                call_offs[row.id] = row
    org_ids = {c.buyer_id for c in competitions}
    org_ids |= {f.organisation_id for items in funders.values() for f in items}
    providers = {row.provider_id for row in call_offs.values()}
    providers |= {o for items in subcontractors.values() for o in items if o}
    categories = dict(
        (row_id, (code, name))
        for row_id, code, name in db.session.execute(
            sa.select(ServiceCategory.id, ServiceCategory.code, ServiceCategory.name)
        )
    )
    return Batch(
        competitions=competitions,
        funders=funders,
        call_offs=call_offs,
        subcontractors=subcontractors,
        categories=categories,
        organisations=Organisations(org_ids | providers),
        classifications=Classifications(providers),
    )


def events(competition: Competition) -> list[Event]:
    result = [
        Event(getattr(competition, column.key), SOURCE, competition.id, ev)
        for ev, column in STATUS_COLUMNS
        if getattr(competition, column.key) is not None
    ]
    result.sort(key=lambda event: event.key)
    return result


def _tender_status(competition: Competition, moment) -> str:
    def by(at):
        return at is not None and at <= moment

    if by(competition.cancelled_at):
        return "cancelled"
    if by(competition.no_award_at):
        return "unsuccessful"
    if by(competition.awarded_at):
        return "complete"
    return "active"


def release(batch: Batch, competition: Competition, event: Event) -> dict:
    """The release of one event of one competition: the competition as it stood then."""
    ocid = competition_ocid(competition.reference)
    moment = event.at
    stamp = timestamp(moment)
    day = london_day(stamp)
    orgs = batch.organisations
    code, category = batch.categories.get(competition.category_id, ("", ""))
    status = _tender_status(competition, moment)
    low, high = band(competition.estimated_value_pence)
    parties = [party(orgs, competition.buyer_id, ["buyer", "procuringEntity"])]
    for funder in batch.funders.get(competition.id, ()):
        share = f"{funder.basis_points / 100:.2f}% of the value"
        parties.append(
            party(orgs, funder.organisation_id, ["funder"], role_details=f"Funder: {share}")
        )
    tender: dict = {
        "id": competition.reference,
        "title": competition.title,
        "status": status,
        "procurementMethod": "selective",
        "procurementMethodDetails": "Further competition among the members of the lot",
        "mainProcurementCategory": "services",
        "competitive": True,
        "minValue": value(low * 100),
        "value": value(high * 100),
        "procuringEntity": reference(orgs, competition.buyer_id),
        "contractPeriod": {
            "startDate": day_start(competition.contract_start),
            "endDate": day_end(competition.contract_end),
        },
        "lots": [{"id": code, "title": category, "status": status}] if code else [],
        "items": [
            {
                "id": "1",
                "description": competition.title or category,
                "quantity": competition.quantity,
                "unit": {"name": competition.unit.label},
                **({"relatedLot": code} if code else {}),
            }
        ],
    }
    tender_period: dict = {"startDate": timestamp(competition.published_at)}
    if competition.bid_deadline is not None:
        tender_period["endDate"] = timestamp(competition.bid_deadline)
    tender["tenderPeriod"] = tender_period
    if competition.clarification_deadline is not None:
        tender["enquiryPeriod"] = {
            "startDate": timestamp(competition.published_at),
            "endDate": timestamp(competition.clarification_deadline),
        }
    result: dict = {
        "ocid": ocid,
        "id": f"{ocid}-{EVENT_NAMES[event.ev]}",
        "date": stamp,
        "tag": EVENT_TAGS[event.ev],
        "initiationType": "tender",
        "language": "en",
        "buyer": reference(orgs, competition.buyer_id),
        "tender": tender,
        "relatedProcesses": [
            {
                "id": "framework",
                "relationship": ["framework"],
                "title": "The dynamic market whose members were invited",
                "scheme": "ocid",
                "identifier": dynamic_market_ocid(),
            }
        ],
    }
    counted = competition.closed_at is not None and competition.closed_at <= moment
    if counted and competition.bids_received is not None:
        tender["numberOfTenderers"] = competition.bids_received
        measures = (
            ("finalStageBids", competition.bids_received),
            ("smeFinalStageBids", competition.bids_from_sme),
            ("vcseFinalStageBids", competition.bids_from_vcse),
        )
        result["bids"] = {
            "statistics": [
                {
                    "id": str(index),
                    "measure": measure,
                    "value": count,
                    "date": timestamp(competition.closed_at),
                    **({"relatedLot": code} if code else {}),
                }
                for index, (measure, count) in enumerate(measures, start=1)
                if count is not None
            ]
        }
    call_off = batch.call_offs.get(competition.call_off_id)
    if competition.awarded_at is not None and competition.awarded_at <= moment and call_off:
        total = value(call_off.net_pence, call_off.gross_pence)
        period = {
            "startDate": day_start(call_off.start_date),
            "endDate": day_end(call_off.end_date),
        }
        subcontractors = batch.subcontractors.get(competition.id, [])
        award: dict = {
            "id": f"{competition.reference}-award",
            "title": competition.title,
            "status": "active",
            "date": timestamp(competition.awarded_at),
            "value": total,
            "suppliers": [reference(orgs, call_off.provider_id)],
            "contractPeriod": period,
            "hasSubcontracting": bool(subcontractors),
            **({"relatedLots": [code]} if code else {}),
        }
        if competition.award_decided_at and competition.standstill_ends_at:
            award["standstillPeriod"] = {
                "startDate": timestamp(competition.award_decided_at),
                "endDate": timestamp(competition.standstill_ends_at),
            }
        result["awards"] = [award]
        result["contracts"] = [
            {
                "id": f"{competition.reference}-contract",
                "awardID": award["id"],
                "title": competition.title,
                "status": "active",
                "period": period,
                "value": total,
            }
        ]
        if call_off.sent_at is not None:  # the call-off is published once sent
            result["relatedProcesses"].append(
                {
                    "id": "call-off",
                    "relationship": ["subContract"],
                    "title": "The call-off that the award became",
                    "scheme": "ocid",
                    "identifier": call_off_ocid(call_off.reference),
                }
            )
        parties.append(
            party(
                orgs,
                call_off.provider_id,
                ["supplier"],
                classifications=batch.classifications,
                on=day,
            )
        )
        for organisation_id in subcontractors:
            if organisation_id:  # a named subcontractor that is not registered stays unnamed
                parties.append(
                    party(
                        orgs,
                        organisation_id,
                        ["subcontractor"],
                        classifications=batch.classifications,
                        on=day,
                    )
                )
    result["parties"] = merge_parties(parties)
    return result


def batch_releases(batch: Batch) -> list[tuple[Event, dict]]:
    result = []
    for competition in batch.competitions:
        for event in events(competition):
            result.append((event, release(batch, competition, event)))
    return result


def event_selects() -> list[sa.Select]:
    return [
        sa.select(
            column.label("at"),
            sa.literal(SOURCE).label("source"),
            Competition.id.label("obj"),
            sa.literal(ev).label("ev"),
            sa.literal(0).label("sub"),
        ).where(column.is_not(None), PUBLISHED)
        for ev, column in STATUS_COLUMNS
    ]
