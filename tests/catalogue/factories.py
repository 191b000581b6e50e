"""Catalogue test data builders. They flush (so ids exist) and never commit.

``make_listing`` writes rows directly (no service rules), for tests of queries, search and pages;
tests of the rules go through ``marketplace.catalogue.services``.
"""

from __future__ import annotations

import itertools
from datetime import date

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import (
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
    Unit,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.money import VatTreatment
from tests.accreditation.factories import pcc_area, region

_sequence = itertools.count(1)


def make_listing(
    lot: ArrangementLot,
    organisation: Organisation,
    *,
    status: ListingStatus = ListingStatus.PUBLISHED,
    price_pence: int = 5_000,
    price_from: date | None = None,
    region_codes: tuple[str, ...] = ("A",),
    pcc_area_codes: tuple[str, ...] = (),
    **fields,
) -> Listing:
    """A listing with one price (from ``price_from``, default 2026-01-01) and its areas."""
    n = next(_sequence)
    now = utcnow()
    defaults = {
        # Never "SL-" and six digits, the service's reference for a key (``listing_reference``):
        # the browser tests make listings with this factory and on the pages in one database.
        "reference": f"SL-T{n:05d}",
        "title": f"Service {n}",
        "summary": f"Summary of service {n}",
        "description": "",
        "outcomes": "",
        "setting_community": True,
        "format_one_to_one": True,
        "complexity_low": True,
        "complexity_medium": True,
        "risk_low": True,
        "risk_medium": True,
        "unit": Unit.SESSION,
        "vat_treatment": VatTreatment.EXEMPT,
        "min_units": 1,
        "max_units": 20,
        "monthly_capacity": 100,
        "lead_time_days": 5,
        "contact_name": "Referrals team",
        "contact_email": f"referrals{n}@example.org",
    }
    defaults.update(fields)
    listing = Listing(
        organisation=organisation,
        lot=lot,
        status=status,
        published_at=now if status != ListingStatus.DRAFT else None,
        withdrawn_at=now if status == ListingStatus.WITHDRAWN else None,
        confirmed_at=defaults.pop("confirmed_at", now),
        **defaults,
    )
    for code in region_codes:
        listing.areas.append(ListingArea(region=region(code)))
    for code in pcc_area_codes:
        listing.areas.append(ListingArea(pcc_area=pcc_area(code)))
    listing.prices.append(
        ListingPrice(
            unit_price_pence=price_pence,
            effective_from=price_from or date(2026, 1, 1),
            created_at=now,
        )
    )
    db.session.add(listing)
    db.session.flush()
    return listing
