"""A large catalogue for benchmarks (``flask demo load --services N``): generated providers, each
a member of two lots in two regions of the demo arrangement, publishing listings between them.

Core bulk inserts in one transaction (the caller commits): at 100,000 listings the ORM's unit of
work would take minutes. Cached pages still see the change, because the database's triggers move
their topics on (marketplace/core/cache/triggers.py)."""

from __future__ import annotations

import click
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    LotMembership,
    MembershipStatus,
    arrangement_regions,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE
from marketplace.demo.catalogue import insert_listings
from marketplace.reference.models import ProbationRegion, ServiceCategory

SCALE_PROVIDER_PREFIX = "Scale Provider "
SCALE_WORDS = ("Harbour", "Beacon", "Northern", "Oak", "Riverside", "Phoenix", "Bridge", "Haven")


def load_scale_catalogue(services: int, providers: int) -> dict[str, int]:
    """``providers`` generated providers publishing ``services`` listings between them."""
    connection = db.session.connection()
    arrangement = connection.execute(
        sa.select(Arrangement.__table__).where(
            Arrangement.__table__.c.reference == DEMO_ARRANGEMENT_REFERENCE
        )
    ).first()
    if arrangement is None:
        raise click.ClickException("The demo arrangement is missing: run `flask demo load` first.")
    lots, regions = _lots_and_regions(connection, arrangement.id)
    organisation_rows, membership_rows, held = _providers_and_memberships(
        connection, arrangement, lots, regions, providers
    )
    connection.execute(Organisation.__table__.insert(), organisation_rows)
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('organisations', 'id'), "
                "(SELECT max(id) FROM organisations))"
            )
        )
    for i in range(0, len(membership_rows), 10_000):
        connection.execute(LotMembership.__table__.insert(), membership_rows[i : i + 10_000])
    specs = []
    for i in range(services):
        organisation_id, lot, own_regions = held[i % len(held)] if held else (None, None, [])
        chosen = own_regions if i % 3 == 0 else [own_regions[i % len(own_regions)]]
        specs.append(
            (organisation_id, lot.id, lot.code, [r.id for r in chosen], [r.code for r in chosen])
        )
    start = connection.scalar(sa.select(sa.func.count()).select_from(sa.table("listings"))) or 0
    written = insert_listings(connection, specs, start=start)
    return {
        "providers": len(organisation_rows),
        "lot_memberships": len(membership_rows),
        "listings": written,
    }


def _lots_and_regions(connection: sa.Connection, arrangement_id: int) -> tuple[list, list]:
    """The arrangement's lots (id, category code) and regions (id, code), in a stable order."""
    lots = connection.execute(
        sa.select(ArrangementLot.__table__.c.id, ServiceCategory.__table__.c.code)
        .join(
            ServiceCategory.__table__,
            ServiceCategory.__table__.c.id == ArrangementLot.__table__.c.category_id,
        )
        .where(ArrangementLot.__table__.c.arrangement_id == arrangement_id)
        .order_by(ArrangementLot.__table__.c.id)
    ).all()
    regions = connection.execute(
        sa.select(ProbationRegion.__table__.c.id, ProbationRegion.__table__.c.code)
        .join(
            arrangement_regions, arrangement_regions.c.region_id == ProbationRegion.__table__.c.id
        )
        .where(arrangement_regions.c.arrangement_id == arrangement_id)
        .order_by(ProbationRegion.__table__.c.code)
    ).all()
    return lots, regions


def _providers_and_memberships(connection, arrangement, lots, regions, providers: int):
    """The rows of ``providers`` new providers and their memberships, numbered on from any
    generated before, and what each holds: (organisation id, lot, regions)."""
    now = utcnow()
    organisations_t = Organisation.__table__
    first_number = (
        connection.scalar(
            sa.select(sa.func.count()).where(
                organisations_t.c.name.like(f"{SCALE_PROVIDER_PREFIX}%")
            )
        )
        + 1
    )
    first_id = (connection.scalar(sa.select(sa.func.max(organisations_t.c.id))) or 0) + 1
    organisation_rows, membership_rows, held = [], [], []
    for k in range(providers):
        n = first_number + k
        vcse = n % 4 != 0
        organisation_id = first_id + k
        organisation_rows.append(
            {
                "id": organisation_id,
                "name": f"{SCALE_PROVIDER_PREFIX}{n:05d} {SCALE_WORDS[n % len(SCALE_WORDS)]}",
                "type": OrganisationType.PROVIDER_VCSE
                if vcse
                else OrganisationType.PROVIDER_PRIVATE,
                "charity_number": f"{1_200_000 + n}" if vcse else None,
                "companies_house_number": None if vcse else f"SC{n:06d}",
                "region_id": regions[n % len(regions)].id,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        own_lots = [lots[(k + j) % len(lots)] for j in range(min(2, len(lots)))]
        own_regions = [regions[(k * 3 + m) % len(regions)] for m in range(min(2, len(regions)))]
        for lot in own_lots:
            membership_rows.extend(
                {
                    "arrangement_id": arrangement.id,
                    "lot_id": lot.id,
                    "organisation_id": organisation_id,
                    "region_id": region.id,
                    "pcc_area_id": None,
                    "application_id": None,
                    "status": MembershipStatus.ACTIVE,
                    "admitted_on": arrangement.valid_from,
                    "declared_version": arrangement.criteria_version,
                }
                for region in own_regions
            )
            held.append((organisation_id, lot, own_regions))
    return organisation_rows, membership_rows, held
