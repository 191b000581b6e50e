"""What every row of an import is checked against, loaded once per import: the provider's lots
and memberships (an ``AreaCoverage`` for the listing rules), the reference areas by code and by
name, and its listings by reference with their areas and prices. Nothing here queries per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.imports.cells import AREA_SEPARATORS
from marketplace.catalogue.models import (
    MAX_UNITS,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    Unit,
)
from marketplace.catalogue.services.areas import AreaCoverage, AreaKey, area_keys, load_coverage
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.listings import check_listing
from marketplace.core.db import db
from marketplace.core.money import VatTreatment


@dataclass
class RateCardContext:
    """What every row is checked against, loaded once."""

    organisation: Organisation
    coverage: AreaCoverage  # every area, and the memberships of every lot
    lots_by_code: dict[str, list[ArrangementLot]]  # lots with an active membership
    lots_by_id: dict[int, ArrangementLot]
    lot_codes_by_name: dict[str, str]  # a category's name, casefolded → its code
    listings: dict[str, Listing]
    region_codes_by_name: dict[str, str] = field(default_factory=dict)
    pcc_codes_by_name: dict[str, str] = field(default_factory=dict)
    region_codes_by_id: dict[int, str] = field(default_factory=dict)
    pcc_codes_by_id: dict[int, str] = field(default_factory=dict)
    # A rate card repeats the same area cells: each is read once per import.
    area_cells: dict[tuple[str, bool], list[str]] = field(default_factory=dict)

    def area_code_lists(self, keys: Iterable[AreaKey]) -> tuple[list[str], list[str]]:
        """(region codes, PCC area codes) of area keys, each sorted."""
        regions = sorted(self.region_codes_by_id[r] for r, _ in keys if r is not None)
        pcc = sorted(self.pcc_codes_by_id[p] for _, p in keys if p is not None)
        return regions, pcc

    def area_names(self, keys: Iterable[AreaKey]) -> list[str]:
        """The names of areas, sorted."""
        regions, pcc = self.area_code_lists(keys)
        return sorted(
            [self.coverage.regions[c].name for c in regions]
            + [self.coverage.pcc_areas[c].name for c in pcc]
        )


def load_context(organisation: Organisation, references: Iterable[str]) -> RateCardContext:
    """The context of an import whose rows name ``references`` (listings are loaded only then)."""
    coverage = load_coverage(organisation.id)
    references = sorted(set(references))
    existing = (
        list(
            db.session.scalars(
                sa.select(Listing)
                .where(Listing.organisation_id == organisation.id)
                .options(selectinload(Listing.areas), selectinload(Listing.prices))
            )
        )
        if references
        else []
    )
    active_lots = set(coverage.covered_regions) | set(coverage.covered_pcc)
    lot_ids = active_lots | {listing.lot_id for listing in existing}
    lots = (
        list(
            db.session.scalars(
                sa.select(ArrangementLot)
                .where(ArrangementLot.id.in_(lot_ids))
                .options(selectinload(ArrangementLot.category))
            )
        )
        if lot_ids
        else []
    )
    lots_by_code: dict[str, list[ArrangementLot]] = defaultdict(list)
    for lot in lots:
        if lot.id in active_lots:
            lots_by_code[lot.category.code.upper()].append(lot)
    regions, pcc_areas = coverage.regions, coverage.pcc_areas
    return RateCardContext(
        organisation=organisation,
        coverage=coverage,
        lots_by_code=lots_by_code,
        lots_by_id={lot.id: lot for lot in lots},
        lot_codes_by_name={lot.category.name.casefold(): lot.category.code.upper() for lot in lots},
        listings={listing.reference: listing for listing in existing},
        region_codes_by_name={r.name.casefold(): code for code, r in regions.items()},
        pcc_codes_by_name={p.name.casefold(): code for code, p in pcc_areas.items()},
        region_codes_by_id={r.id: code for code, r in regions.items()},
        pcc_codes_by_id={p.id: code for code, p in pcc_areas.items()},
    )


def check_details(
    details: ListingDetails, lot: ArrangementLot | None, ctx: RateCardContext, errors: dict
) -> tuple[dict, list[AreaKey]]:
    """The listing services' rules (``services.listings.check_listing``) against the context
    instead of a query per row: the column values and the area keys; adds to ``errors``."""
    values, areas = check_listing(ctx.organisation, details, lot, ctx.coverage, errors)
    return values, area_keys(areas)


def area_codes(text: str, ctx: RateCardContext, *, upper: bool) -> list[str]:
    """Area codes from a cell of codes or names separated by semicolons, commas or lines:
    region codes and names when ``upper``, else PCC area codes and names."""
    key = (text, upper)
    if key not in ctx.area_cells:
        if upper:
            codes, names = ctx.coverage.regions, ctx.region_codes_by_name
        else:
            codes, names = ctx.coverage.pcc_areas, ctx.pcc_codes_by_name
        ctx.area_cells[key] = _read_areas(text, codes, names, upper)
    return list(ctx.area_cells[key])


def _read_areas(text: str, codes: dict, names: dict[str, str], upper: bool) -> list[str]:
    """A name with a comma in it ("Kent, Surrey and Sussex") is found before the cell is split at
    commas. What is neither a code nor a name is kept as it is, for the unknown-area message."""

    def find(part: str) -> str | None:
        code = part.upper() if upper else part.lower()
        if code in codes:
            return code
        if not upper and code.replace("_", "-") in codes:
            return code.replace("_", "-")
        return names.get(part.casefold())

    found = []
    for part in (p.strip() for p in AREA_SEPARATORS.split(text)):
        if not part:
            continue
        code = find(part)
        if code is not None:
            found.append(code)
            continue
        for piece in (p.strip() for p in part.split(",")):
            if piece:
                found.append(find(piece) or piece)
    return found


def resolve_lot(
    text: str, listing: Listing | None, ctx: RateCardContext
) -> tuple[ArrangementLot | None, str | None]:
    """The lot a cell names by code or name (the listing's own lot even if its membership has
    lapsed), or why not."""
    code = ctx.lot_codes_by_name.get(text.casefold(), text.upper())
    if listing is not None:
        current = ctx.lots_by_id.get(listing.lot_id)
        if current is not None and current.category.code.upper() == code:
            return current, None
    lots = ctx.lots_by_code.get(code, [])
    if not lots:
        return None, f"You are not an active member of a lot with the code {text}"
    if len(lots) > 1:
        return None, (
            f"You are a member of {code} in more than one arrangement: create this listing "
            "on the website"
        )
    return lots[0], None


def current_details(listing: Listing) -> ListingDetails:
    """What the listing says now, as the services take it (areas are handled apart)."""
    return ListingDetails.of(listing, areas=False)


def new_details() -> ListingDetails:
    """A new listing before its cells: what is required is missing, the rest is empty."""
    return ListingDetails(
        title="", summary="", lot_id=None, unit="", vat_treatment="", max_units=None,
        monthly_capacity=None, lead_time_days=None, min_units=None,  # type: ignore[arg-type]
    )  # fmt: skip


def neutral_details() -> ListingDetails:
    """Valid stand-ins, so that a row whose reference is wrong is checked for its own cells only."""
    return ListingDetails(
        title="-", summary="-", lot_id=None, unit=Unit.SESSION, vat_treatment=VatTreatment.EXEMPT,
        max_units=MAX_UNITS, monthly_capacity=0, settings=[DeliverySetting.COMMUNITY],
        formats=[DeliveryFormat.ONE_TO_ONE], complexities=[Complexity.LOW], lead_time_days=0,
        min_units=1,
    )  # fmt: skip
