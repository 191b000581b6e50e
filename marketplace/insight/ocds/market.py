"""Releases of the dynamic market itself (one ocid, ``dynamic_market_ocid()``): the tender that
set it up (a dynamic purchasing system open to other buyers, its lots one per service
category, the authority as procuring entity), an award per admission of a member to a lot
(supplier: the member) and an award update when a member is removed; and the tender update
when it closes.

The dynamic market is the first arrangement that went live; later arrangements (none in the
service today) would need an ocid of their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    LegalRegime,
    LotMembership,
    MembershipStatus,
)
from marketplace.core.clock import LONDON
from marketplace.core.db import db
from marketplace.insight.identifiers import dynamic_market_ocid
from marketplace.insight.ocds.common import (
    Classifications,
    Organisations,
    day_end,
    day_start,
    london_day,
    party,
    reference,
    timestamp,
)
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

SOURCE = 0  # the dynamic market's events sort first among those at the same moment
EV_TENDER, EV_ADMISSION, EV_REMOVAL, EV_CLOSED = 1, 2, 3, 4

# Who may call off from it, in the words of the techniques extension's buyerCategories.
BUYER_CATEGORIES = (
    "Probation service regions, Police and Crime Commissioners, prisons and other public "
    "bodies in England and Wales"
)


@dataclass(frozen=True)
class Event:
    at: datetime
    source: int
    obj: int
    ev: int
    sub: int = 0

    @property
    def key(self) -> tuple:
        return (self.at, self.source, self.obj, self.ev, self.sub)


def the_arrangement() -> Arrangement | None:
    return db.session.scalar(
        sa.select(Arrangement)
        .where(Arrangement.went_live_at.is_not(None))
        .order_by(Arrangement.went_live_at, Arrangement.id)
        .limit(1)
    )


def authority_id() -> int | None:
    return db.session.scalar(
        sa.select(Organisation.id)
        .where(Organisation.type == OrganisationType.AUTHORITY)
        .order_by(Organisation.id)
        .limit(1)
    )


def lot_id(category_code: str) -> str:
    return category_code


def _midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LONDON).astimezone(UTC)


def market_events() -> list[Event]:
    """Every event of the dynamic market (no release is built)."""
    seen: list[Event] = []
    market_releases(keep=lambda event: seen.append(event) and False)
    return seen


def market_releases(keep: Callable[[Event], bool] | None = None) -> list[tuple[Event, dict]]:
    """The releases of the dynamic market with their sort keys, in no particular order: every
    one, or those whose event ``keep`` accepts (a page builds only the releases it shows)."""
    arrangement = the_arrangement()
    if arrangement is None:
        return []
    lots = db.session.execute(
        sa.select(ArrangementLot.id, ServiceCategory.code, ServiceCategory.name)
        .join(ServiceCategory, ServiceCategory.id == ArrangementLot.category_id)
        .where(ArrangementLot.arrangement_id == arrangement.id)
        .order_by(ArrangementLot.id)
    ).all()
    lot_codes = {row_id: code for row_id, code, _ in lots}
    members = db.session.execute(
        sa.select(
            LotMembership.id,
            LotMembership.lot_id,
            LotMembership.organisation_id,
            LotMembership.status,
            LotMembership.admitted_on,
            LotMembership.removed_at,
            sa.func.coalesce(ProbationRegion.name, PccArea.name),
        )
        .outerjoin(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
        .outerjoin(PccArea, PccArea.id == LotMembership.pcc_area_id)
        .where(LotMembership.arrangement_id == arrangement.id)
        .order_by(LotMembership.id)
    ).all()
    authority = authority_id()
    org_ids = {row[2] for row in members} | ({authority} if authority else set())
    organisations = Organisations(org_ids)
    classifications = Classifications(row[2] for row in members)
    ocid = dynamic_market_ocid()

    def base(event: Event, name: str, tag: list[str]) -> dict:
        release = {
            "ocid": ocid,
            "id": f"{ocid}-{name}",
            "date": timestamp(event.at),
            "tag": tag,
            "initiationType": "tender",
            "language": "en",
        }
        return release

    def buyer_parties() -> list[dict]:
        if authority is None:
            return []
        return [party(organisations, authority, ["buyer", "procuringEntity"])]

    def tender(status: str, dps_status: str) -> dict:
        is_dps = arrangement.legal_regime is not LegalRegime.PA2023_OPEN_FRAMEWORK
        techniques: dict = {
            "hasDynamicPurchasingSystem": is_dps,
            "hasFrameworkAgreement": not is_dps,
        }
        if is_dps:
            techniques["dynamicPurchasingSystem"] = {"type": "open", "status": dps_status}
        else:
            techniques["frameworkAgreement"] = {
                "method": "withAndWithoutReopeningCompetition",
                "buyerCategories": BUYER_CATEGORIES,
                "isOpenFrameworkScheme": True,
            }
        result = {
            "id": arrangement.reference,
            "title": arrangement.name,
            "status": status,
            "procurementMethod": "open",
            "procurementMethodDetails": arrangement.legal_regime.label,
            "mainProcurementCategory": "services",
            "tenderPeriod": {
                "startDate": day_start(arrangement.valid_from),
                "endDate": day_end(arrangement.valid_to),
            },
            "contractPeriod": {
                "startDate": day_start(arrangement.valid_from),
                "endDate": day_end(arrangement.valid_to),
            },
            "techniques": techniques,
            "lots": [
                {"id": lot_id(code), "title": name, "status": status} for _, code, name in lots
            ],
        }
        if arrangement.description:
            result["description"] = arrangement.description
        if authority is not None:
            result["procuringEntity"] = reference(organisations, authority)
        return result

    def kept(event: Event) -> bool:
        return keep is None or keep(event)

    releases: list[tuple[Event, dict]] = []
    live = Event(arrangement.went_live_at, SOURCE, 0, EV_TENDER)
    if kept(live):
        release = base(live, "tender", ["tender"])
        release["parties"] = buyer_parties()
        if authority is not None:
            release["buyer"] = reference(organisations, authority)
        release["tender"] = tender("active", "active")
        releases.append((live, release))
    if arrangement.closed_at is not None:
        closed = Event(arrangement.closed_at, SOURCE, 0, EV_CLOSED)
        if kept(closed):
            release = base(closed, "closed", ["tenderUpdate"])
            release["parties"] = buyer_parties()
            release["tender"] = tender("complete", "terminated")
            releases.append((closed, release))

    def admission(row, event: Event, name: str, tag: list[str], status: str) -> dict:
        membership_id, lot, org_id, _, admitted_on, _, area = row
        lot_name = next(name for row_id, _, name in lots if row_id == lot)
        release = base(event, name, tag)
        day = london_day(timestamp(event.at))
        release["parties"] = [
            *buyer_parties(),
            party(organisations, org_id, ["supplier"], classifications=classifications, on=day),
        ]
        release["awards"] = [
            {
                "id": f"admission-{membership_id}",
                "title": f"Admission to the lot {lot_name} in {area}",
                "status": status,
                "date": day_start(admitted_on),
                "suppliers": [reference(organisations, org_id)],
                "relatedLots": [lot_id(lot_codes[lot])],
                "contractPeriod": {"startDate": day_start(admitted_on)},
            }
        ]
        return release

    for row in members:
        membership_id, _, _, status, admitted_on, removed_at, _ = row
        event = Event(_midnight(admitted_on), SOURCE, membership_id, EV_ADMISSION)
        if kept(event):
            releases.append(
                (event, admission(row, event, f"admission-{membership_id}", ["award"], "active"))
            )
        if status is MembershipStatus.REMOVED and removed_at is not None:
            event = Event(removed_at, SOURCE, membership_id, EV_REMOVAL)
            if not kept(event):
                continue
            releases.append(
                (
                    event,
                    admission(row, event, f"removal-{membership_id}", ["awardUpdate"], "cancelled"),
                )
            )
    return releases
