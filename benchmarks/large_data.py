"""A large data set on a live arrangement, for `make bench` and the query-count tests.

``load(app, applications=5000, memberships=20000)`` adds, in one transaction with SQLAlchemy Core
bulk inserts:

- generated provider organisations ("Load Provider 00001" …), each holding up to ten lot × region
  memberships of the arrangement, so the memberships are spread over many organisations, every
  lot and every region, and never break the unique current-membership index;
- applications by those organisations, mostly submitted or under assessment with deadlines
  spread around today (some overdue), the rest decided, draft or withdrawn, each covering one or
  two lots and one or two regions; every row meets the CHECK constraints.

The arrangement is the demo's (``flask demo load``) if there is one, else the first live one.
It may be called more than once: names and references continue where the last call stopped.
Rows are built directly, without audit events or notifications: this is load, not history. The
cached pages' generations are moved on, as the ORM would on a flush.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import cycle
from typing import Any

import sqlalchemy as sa
from flask import Flask

MEMBERSHIPS_PER_ORGANISATION = 10
ORGANISATION_PREFIX = "Load Provider "
APPLICATION_PREFIX = "LOAD-APP-"
# Words to vary the organisation names, so the register's ordering by name has work to do.
NAME_WORDS = ("Harbour", "Beacon", "Northern", "Oak", "Riverside", "Phoenix", "Bridge", "Haven")


def _arrangement(connection: sa.Connection, arrangement_id: int | None) -> Any:
    from marketplace.accreditation.models import Arrangement, ArrangementStatus
    from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE

    table = Arrangement.__table__
    if arrangement_id is not None:
        row = connection.execute(sa.select(table).where(table.c.id == arrangement_id)).first()
    else:
        row = (
            connection.execute(
                sa.select(table).where(table.c.reference == DEMO_ARRANGEMENT_REFERENCE)
            ).first()
            or connection.execute(
                sa.select(table)
                .where(table.c.status == ArrangementStatus.LIVE)
                .order_by(table.c.id)
                .limit(1)
            ).first()
        )
    if row is None:
        raise RuntimeError(
            "There is no live arrangement to load data into (run `flask demo load`)."
        )
    return row


def _count_like(connection: sa.Connection, column: sa.Column, prefix: str) -> int:
    return connection.scalar(sa.select(sa.func.count()).where(column.like(f"{prefix}%")))


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def load(
    app: Flask,
    applications: int = 5000,
    memberships: int = 20000,
    *,
    arrangement_id: int | None = None,
    today: date | None = None,
) -> dict[str, int]:
    """Add ``applications`` applications and ``memberships`` lot memberships; return the counts."""
    from marketplace.accounts.models import Organisation, OrganisationType
    from marketplace.accreditation.models import (
        Application,
        ApplicationArea,
        ApplicationLot,
        ApplicationStatus,
        ArrangementLot,
        LotDecision,
        LotMembership,
        MembershipStatus,
        SuspensionCause,
        arrangement_regions,
    )
    from marketplace.core.db import db

    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC)
    organisations_t = Organisation.__table__
    applications_t = Application.__table__
    with app.app_context(), db.engine.begin() as connection:
        arrangement = _arrangement(connection, arrangement_id)
        lot_ids = connection.scalars(
            sa.select(ArrangementLot.__table__.c.id)
            .where(ArrangementLot.__table__.c.arrangement_id == arrangement.id)
            .order_by(ArrangementLot.__table__.c.id)
        ).all()
        region_ids = connection.scalars(
            sa.select(arrangement_regions.c.region_id)
            .where(arrangement_regions.c.arrangement_id == arrangement.id)
            .order_by(arrangement_regions.c.region_id)
        ).all()
        if not lot_ids or not region_ids:
            raise RuntimeError(f"Arrangement {arrangement.reference} has no lots or no regions.")
        pairs = [(lot, region) for lot in lot_ids for region in region_ids]
        per_organisation = min(MEMBERSHIPS_PER_ORGANISATION, len(pairs))

        # Organisations: enough to hold the memberships, and at least one per five applications.
        wanted = max(-(-memberships // per_organisation), -(-applications // 5), 1)
        first = _count_like(connection, organisations_t.c.name, ORGANISATION_PREFIX) + 1
        organisation_rows = []
        for n in range(first, first + wanted):
            vcse = n % 3 != 0
            organisation_rows.append(
                {
                    "name": f"{ORGANISATION_PREFIX}{n:05d} {NAME_WORDS[n % len(NAME_WORDS)]}",
                    "type": (
                        OrganisationType.PROVIDER_VCSE
                        if vcse
                        else OrganisationType.PROVIDER_PRIVATE
                    ),
                    "charity_number": f"{1_100_000 + n}" if vcse else None,
                    "companies_house_number": None if vcse else f"LD{n:06d}",
                    "region_id": region_ids[n % len(region_ids)],
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        organisation_ids = connection.scalars(
            organisations_t.insert().returning(organisations_t.c.id, sort_by_parameter_order=True),
            organisation_rows,
        ).all()

        # Memberships: organisation k holds ``per_organisation`` distinct lot × region pairs,
        # starting at a different pair for each organisation so every pair is used.
        start = arrangement.valid_from
        span = max((today - start).days, 1)
        membership_rows = []
        for i in range(memberships):
            k, j = divmod(i, per_organisation)
            lot_id, region_id = pairs[(k * 7 + j) % len(pairs)]
            suspended = i % 50 == 49
            membership_rows.append(
                {
                    "arrangement_id": arrangement.id,
                    "lot_id": lot_id,
                    "organisation_id": organisation_ids[k],
                    "region_id": region_id,
                    "pcc_area_id": None,
                    "application_id": None,
                    "status": (
                        MembershipStatus.SUSPENDED if suspended else MembershipStatus.ACTIVE
                    ),
                    "admitted_on": start + timedelta(days=(i * 13) % span),
                    "suspended_at": now if suspended else None,
                    "suspension_cause": SuspensionCause.AUTHORITY if suspended else None,
                    "suspension_reason": "Generated load data" if suspended else None,
                    "declared_version": arrangement.criteria_version,
                }
            )
        if membership_rows:
            connection.execute(LotMembership.__table__.insert(), membership_rows)

        # Applications: 8 in 10 in the queue (deadlines from 10 days ago to 14 days ahead),
        # then admitted, rejected, draft and withdrawn ones.
        first = _count_like(connection, applications_t.c.reference, APPLICATION_PREFIX) + 1
        statuses = cycle(
            [ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT] * 4
            + [ApplicationStatus.ADMITTED, ApplicationStatus.REJECTED]
            + [ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT] * 4
            + [ApplicationStatus.DRAFT, ApplicationStatus.WITHDRAWN]
        )
        application_rows = []
        for i in range(applications):
            status = next(statuses)
            due = today + timedelta(days=(i * 5) % 25 - 10)
            submitted = _at(due - timedelta(days=14), 9 + i % 8)
            row = {
                "reference": f"{APPLICATION_PREFIX}{first + i:07d}",
                "arrangement_id": arrangement.id,
                "organisation_id": organisation_ids[i % len(organisation_ids)],
                "status": status,
                "criteria_version": arrangement.criteria_version,
                "partners": "",
                "amends_id": None,
                "created_by_id": None,
                "declared_at": None,
                "submitted_at": None,
                "submitted_by_id": None,
                "decision_due_on": None,
                "extended_at": None,
                "extended_by_id": None,
                "extension_reason": None,
                "assessment_started_at": None,
                "decided_at": None,
                "withdrawn_at": None,
                "withdrawn_by_id": None,
                "created_at": submitted - timedelta(days=3),
                "updated_at": now,
            }
            if status not in (ApplicationStatus.DRAFT, ApplicationStatus.WITHDRAWN):
                row.update(declared_at=submitted, submitted_at=submitted, decision_due_on=due)
            if status in (
                ApplicationStatus.UNDER_ASSESSMENT,
                ApplicationStatus.ADMITTED,
                ApplicationStatus.REJECTED,
            ):
                row["assessment_started_at"] = submitted + timedelta(days=1)
            if status in (ApplicationStatus.ADMITTED, ApplicationStatus.REJECTED):
                row["decided_at"] = submitted + timedelta(days=5)
            if status == ApplicationStatus.WITHDRAWN:
                row["withdrawn_at"] = submitted
            application_rows.append(row)
        application_ids = connection.scalars(
            applications_t.insert().returning(applications_t.c.id, sort_by_parameter_order=True),
            application_rows,
        ).all()

        lot_rows, area_rows = [], []
        for i, (application_id, row) in enumerate(
            zip(application_ids, application_rows, strict=True)
        ):
            status = row["status"]
            chosen_lots = [lot_ids[i % len(lot_ids)]]
            if i % 3 == 0 and len(lot_ids) > 1:
                chosen_lots.append(lot_ids[(i + 1) % len(lot_ids)])
            for lot_id in chosen_lots:
                decision = {
                    ApplicationStatus.ADMITTED: LotDecision.ADMITTED,
                    ApplicationStatus.REJECTED: LotDecision.REJECTED,
                }.get(status, LotDecision.PENDING)
                lot_rows.append(
                    {
                        "application_id": application_id,
                        "lot_id": lot_id,
                        "decision": decision,
                        "feedback": (
                            "Your evidence of insurance has expired."
                            if decision == LotDecision.REJECTED
                            else ""
                        ),
                        "decided_at": row["decided_at"],
                        "decided_by_id": None,
                    }
                )
            chosen_regions = {region_ids[i % len(region_ids)]}
            if i % 2 == 0:
                chosen_regions.add(region_ids[(i + 3) % len(region_ids)])
            area_rows.extend(
                {"application_id": application_id, "region_id": region, "pcc_area_id": None}
                for region in sorted(chosen_regions)
            )
        if lot_rows:
            connection.execute(ApplicationLot.__table__.insert(), lot_rows)
        if area_rows:
            connection.execute(ApplicationArea.__table__.insert(), area_rows)

    return {
        "organisations": len(organisation_ids),
        "memberships": len(membership_rows),
        "applications": len(application_ids),
        "application_lots": len(lot_rows),
        "application_areas": len(area_rows),
    }


def main() -> None:
    """`python benchmarks/large_data.py [applications] [memberships]` against the configured DB."""
    import sys

    from marketplace import create_app

    numbers = [int(arg) for arg in sys.argv[1:3]]
    counts = load(create_app(), *numbers)
    print(", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in counts.items()))


if __name__ == "__main__":
    main()
