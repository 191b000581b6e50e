"""The import template: the header, then each of the provider's listings as the import reads
it (so that the file re-imports as no changes), and a second sheet with each column's rule."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue import rate_cards
from marketplace.catalogue.imports.columns import (
    CLEAR_MARKER,
    COLUMN_NAMES,
    COLUMNS,
    DOWNLOAD_COLUMNS,
    READING_RULES,
)
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.catalogue.rate_cards import safe_cell, write_workbook
from marketplace.catalogue.services.areas import load_coverage, uncovered_area_keys
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db


def template_rows(organisation: Organisation | None = None) -> list[list[Any]]:
    """The template: the header, then each of the provider's listings that is not withdrawn,
    every column as the import reads it, so that the file re-imports as no changes.

    The price is the one in force today (or the first planned, for a listing whose first price
    is still to come) with its start date. Areas are those the rate card shows: where the
    provider's membership of the lot is active (the import keeps the others as they are).
    """
    rows: list[list[Any]] = [list(COLUMN_NAMES)]
    if organisation is None:
        return rows
    listings = db.session.scalars(
        sa.select(Listing)
        .where(
            Listing.organisation_id == organisation.id,
            Listing.status != ListingStatus.WITHDRAWN,
        )
        .options(
            joinedload(Listing.lot).joinedload(ArrangementLot.category),
            selectinload(Listing.areas),
            selectinload(Listing.prices),
        )
        .order_by(Listing.title, Listing.id)
    ).unique()
    coverage = load_coverage(organisation.id)
    region_codes = {r.id: code for code, r in coverage.regions.items()}
    pcc_codes = {p.id: code for code, p in coverage.pcc_areas.items()}
    today = london_date(utcnow())
    for listing in listings:
        # The areas the rate card shows: those where the membership of the lot is active.
        keys = {(a.region_id, a.pcc_area_id) for a in listing.areas}
        shown = keys - set(uncovered_area_keys(keys, listing.lot_id, coverage))
        record = _record(
            listing,
            today,
            regions=sorted(region_codes[r] for r, _ in shown if r is not None),
            pcc_areas=sorted(pcc_codes[p] for _, p in shown if p is not None),
        )
        rows.append([safe_cell(record[name]) for name in COLUMN_NAMES])
    return rows


def _record(
    listing: Listing, today: date, *, regions: list[str], pcc_areas: list[str]
) -> dict[str, Any]:
    """One listing's row of the template, each column as the import reads it."""
    price = listing.price_on(today) or next(
        (p for p in listing.prices if p.effective_from > today), None
    )
    return {
        "reference": listing.reference,
        "title": listing.title,
        "summary": listing.summary,
        "description": listing.description,
        "outcomes": listing.outcomes,
        "lot": listing.lot.category.code,
        "regions": "; ".join(regions),
        "pcc_areas": "; ".join(pcc_areas),
        "settings": "; ".join(s.value for s in listing.settings),
        "formats": "; ".join(f.value for f in listing.formats),
        "eligibility_sex": listing.eligibility_sex.value,
        "min_age": listing.min_age,
        "max_age": listing.max_age,
        "risk_levels": "; ".join(r.value for r in listing.risk_levels),
        "complexities": "; ".join(c.value for c in listing.complexities),
        "lead_time_days": listing.lead_time_days,
        "unit": listing.unit.value,
        "vat_treatment": listing.vat_treatment.value,
        "min_units": listing.min_units,
        "max_units": listing.max_units,
        "monthly_capacity": listing.monthly_capacity,
        "unit_price": rate_cards.pounds(price.unit_price_pence) if price else "",
        "price_effective_from": price.effective_from.isoformat() if price else "",
        "cost_staff": rate_cards.pounds(listing.cost_staff_pence),
        "cost_overheads": rate_cards.pounds(listing.cost_overheads_pence),
        "cost_other": rate_cards.pounds(listing.cost_other_pence),
        "social_value": listing.social_value,
        "contact_name": listing.contact_name,
        "contact_email": listing.contact_email,
        "contact_phone": listing.contact_phone,
        "publish": "yes" if listing.status == ListingStatus.PUBLISHED else "no",
    }


def template_csv(organisation: Organisation | None = None) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        ["" if cell is None else cell for cell in row] for row in template_rows(organisation)
    )
    return buffer.getvalue()


def rules_rows() -> list[list[str]]:
    """The template's second sheet: how a file is read, then what each column needs."""
    return [
        ["column", "required for a new listing", f"{CLEAR_MARKER} allowed", "rule", "example"],
        *(
            [c.name, "yes" if c.required else "no", "yes" if c.clearable else "no", c.rule,
             c.example]
            for c in COLUMNS
        ),
        [],
        ["How the file is read"],
        *([line] for line in READING_RULES),
        [],
        ["Columns of the rate card download, also read"],
        *([c.name, "no", "no", c.rule, ""] for c in DOWNLOAD_COLUMNS),
    ]  # fmt: skip


def template_xlsx(organisation: Organisation | None = None) -> bytes:
    return write_workbook([("Rate card", template_rows(organisation)),
                           ("Column rules", rules_rows())])  # fmt: skip
