"""The preview of an import: every change it makes to an existing listing, column by column in
the file's own words (listing, column, old → new), and every new listing, before anything is
written. The confirmation writes only what its preview showed (``ImportResult.fingerprint``)."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from marketplace.catalogue.imports.check import RowPlan, changed_values
from marketplace.catalogue.imports.columns import Change, ImportResult, NewListing
from marketplace.catalogue.imports.context import RateCardContext
from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    FORMAT_COLUMNS,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    Listing,
    ListingStatus,
)
from marketplace.catalogue.services.areas import AreaKey
from marketplace.core.filters import govuk_date, pounds

# What each column holds, to say what an import changes in the file's own words.
COLUMN_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "summary": ("summary",),
    "description": ("description",),
    "outcomes": ("outcomes",),
    "lot": ("lot_id",),
    "settings": tuple(SETTING_COLUMNS.values()),
    "formats": tuple(FORMAT_COLUMNS.values()),
    "eligibility_sex": ("eligibility_sex",),
    "min_age": ("min_age",),
    "max_age": ("max_age",),
    "risk_levels": tuple(RISK_COLUMNS.values()),
    "complexities": tuple(COMPLEXITY_COLUMNS.values()),
    "lead_time_days": ("lead_time_days",),
    "unit": ("unit",),
    "vat_treatment": ("vat_treatment",),
    "min_units": ("min_units",),
    "max_units": ("max_units",),
    "monthly_capacity": ("monthly_capacity",),
    "cost_staff": ("cost_staff_pence",),
    "cost_overheads": ("cost_overheads_pence",),
    "cost_other": ("cost_other_pence",),
    "social_value": ("social_value",),
    "contact_name": ("contact_name",),
    "contact_email": ("contact_email",),
    "contact_phone": ("contact_phone",),
}
FLAG_COLUMNS = {
    "settings": SETTING_COLUMNS,
    "formats": FORMAT_COLUMNS,
    "risk_levels": RISK_COLUMNS,
    "complexities": COMPLEXITY_COLUMNS,
}
EMPTY = "(empty)"
SHOWN_TEXT_MAX = 300  # a long description is shortened on the preview; the audit keeps it all


@functools.lru_cache(maxsize=1024)
def _shown_date(day: date) -> str:
    return govuk_date(day)  # most rows of a file share a few dates


def _shown(column: str, values: dict[str, Any], ctx: RateCardContext) -> str:
    """A column's value as the preview, confirmation and email show it."""
    if column in FLAG_COLUMNS:
        chosen = [member.value for member, name in FLAG_COLUMNS[column].items() if values[name]]
        return "; ".join(chosen) or EMPTY
    (name,) = COLUMN_FIELDS[column]
    value = values[name]
    if value is None or value == "":
        return EMPTY
    if column == "lot":
        lot = ctx.lots_by_id.get(value)
        return f"{lot.category.name} ({lot.category.code})" if lot else str(value)
    if name.endswith("_pence"):
        return pounds(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str) and len(value) > SHOWN_TEXT_MAX:
        return value[: SHOWN_TEXT_MAX - 1].rstrip() + "…"
    return str(value)


def _area_list(
    keys: Iterable[tuple[int | None, int | None]], ctx: RateCardContext
) -> tuple[str, str]:
    regions = sorted(ctx.region_codes_by_id[r] for r, _ in keys if r is not None)
    pcc = sorted(ctx.pcc_codes_by_id[p] for _, p in keys if p is not None)
    return "; ".join(regions) or EMPTY, "; ".join(pcc) or EMPTY


def _changes(
    plan: RowPlan,
    changed: dict[str, Any],
    current_areas: Iterable[tuple[int | None, int | None]],
    publish: bool,
    ctx: RateCardContext,
) -> list[Change]:
    """Every change a plan makes to its listing, column by column, in the template's order."""
    listing = plan.listing
    assert listing is not None
    found: list[Change] = []

    def add(column: str, old: str, new: str) -> None:
        found.append(Change(plan.row, listing.reference, listing.title, column, old, new))

    if changed:
        old_values = {name: getattr(listing, name) for names in COLUMN_FIELDS.values()
                      for name in names}  # fmt: skip
        new_values = {**old_values, **changed}
        for column, names in COLUMN_FIELDS.items():
            if any(name in changed for name in names):
                add(column, _shown(column, old_values, ctx), _shown(column, new_values, ctx))
    old_regions, old_pcc = _area_list(current_areas, ctx)
    new_regions, new_pcc = _area_list(plan.areas, ctx)
    if old_regions != new_regions:
        add("regions", old_regions, new_regions)
    if old_pcc != new_pcc:
        add("pcc_areas", old_pcc, new_pcc)
    for change in plan.price_changes:
        add(
            "unit_price",
            pounds(change.old) if change.old is not None else "(no price then)",
            f"{pounds(change.new)} from {_shown_date(change.effective_from)}",
        )
    if publish:
        add("publish", listing.status.label, ListingStatus.PUBLISHED.label)
    return found


@dataclass(slots=True)
class ListingUpdate:
    """What a row does to an existing listing that is not withdrawn."""

    plan: RowPlan
    changed: dict[str, Any]  # the column values that change
    current_areas: dict[AreaKey, int]  # the listing's areas now → their rows' ids
    publish: bool  # a draft or paused listing is published
    changes: list[Change] = field(default_factory=list)

    @property
    def listing(self) -> Listing:
        assert self.plan.listing is not None
        return self.plan.listing

    @property
    def areas_changed(self) -> bool:
        return set(self.current_areas) != set(self.plan.areas)


def preview(plans: list[RowPlan], ctx: RateCardContext) -> tuple[ImportResult, list[ListingUpdate]]:
    """What the plans would do: the result the pages show, and each existing listing's update."""
    result = ImportResult()
    new_plans = [p for p in plans if p.listing is None]
    result.created = len(new_plans)
    result.published = sum(1 for p in new_plans if p.publish)
    for plan in new_plans:
        first = plan.first_version
        lot = ctx.lots_by_id[plan.values["lot_id"]]
        result.new_listings.append(
            NewListing(
                plan.row,
                plan.values["title"],
                f"{lot.category.name} ({lot.category.code})",
                f"{pounds(first.unit_price_pence)} from {_shown_date(first.effective_from)}",
                ListingStatus.PUBLISHED.label if plan.publish else ListingStatus.DRAFT.label,
            )
        )
    updates = []
    for plan in plans:
        listing = plan.listing
        if listing is None:
            continue
        if listing.status == ListingStatus.WITHDRAWN:
            result.unchanged += 1  # check_row let it through because nothing changes
            continue
        update = ListingUpdate(
            plan,
            changed_values(listing, plan.values),
            {(a.region_id, a.pcc_area_id): a.id for a in listing.areas},
            plan.publish and listing.status in (ListingStatus.DRAFT, ListingStatus.PAUSED),
        )
        update.changes = _changes(plan, update.changed, update.current_areas, update.publish, ctx)
        updates.append(update)
        result.published += update.publish
        result.changes.extend(update.changes)
        if update.changes:
            result.updated += 1
        else:
            result.unchanged += 1
        result.prices_changed += len(plan.price_changes)
        result.listing_ids.append(listing.id)
    return result, updates
