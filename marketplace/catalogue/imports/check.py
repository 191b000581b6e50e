"""Checking each row of an import against the rate card, and planning what it would do.

An empty cell keeps the listing's value, ``(clear)`` empties an optional one, anything else is the
new value. The row is checked by the listing services' own rules (``services.listings``:
``check_values``, ``check_areas``, ``publish_refusal``; ``services.prices``: the versioning rule
and when a price may start) against the listing as the import would leave it; the plan it makes
is what ``preview`` shows and ``write`` writes in bulk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.imports.cells import (
    COST_FIELDS,
    LIST_COLUMNS,
    PUBLISH_WORDS,
    TEXT_FIELDS,
    WHOLE_FIELDS,
    cell_date,
    cell_pence,
    choice,
    choices,
    row_cells,
    whole_or_text,
    whole_pence,
)
from marketplace.catalogue.imports.columns import (
    ALTERNATIVE_COLUMNS,
    CLEAR_MARKER,
    CLEARABLE,
    FIELD_COLUMNS,
    KNOWN_COLUMNS,
    REQUIRED,
    ImportRefused,
    RowError,
    column_order,
)
from marketplace.catalogue.imports.context import (
    RateCardContext,
    area_codes,
    current_details,
    neutral_details,
    new_details,
    resolve_lot,
)
from marketplace.catalogue.models import REFERENCE_MAX, Listing, ListingStatus, Sex
from marketplace.catalogue.services.areas import (
    AreaKey,
    area_keys,
    check_areas,
    uncovered_area_keys,
)
from marketplace.catalogue.services.details import ListingDetails, check_price_pence
from marketplace.catalogue.services.listings import check_values, publish_refusal
from marketplace.catalogue.services.prices import PriceChange, price_start_error, put_price_version
from marketplace.core.validation import date_horizon_error


@dataclass(slots=True)
class PlannedVersion:
    """A price version as the import plans it: an existing row (``id``) or a new one (None)."""

    id: int | None
    unit_price_pence: int
    effective_from: date
    effective_to: date | None
    replaced: bool = False  # an existing version whose price this import replaces (same day)

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


@dataclass(slots=True)
class RowPlan:
    """What one row does to its listing (``listing`` None: a new listing)."""

    row: int
    listing: Listing | None
    values: dict[str, Any]
    areas: list[AreaKey]
    versions: list[PlannedVersion]  # the price history after the import
    price_changes: list[PriceChange]
    publish: bool

    @property
    def first_version(self) -> PlannedVersion:
        """A new listing's first price version (today's, or a later one)."""
        return self.versions[0]


def check_rows(
    rows: Sequence[dict[str, str]], ctx: RateCardContext, today: date, first_row: int
) -> list[RowPlan]:
    """The plan of every row, or ``ImportRefused`` naming every bad row and column."""
    plans, problems, seen = [], [], {}
    for offset, row in enumerate(rows):
        plan, row_problems = check_row(first_row + offset, row, ctx, today, seen)
        if plan is not None:
            plans.append(plan)
        problems.extend(row_problems)
    if problems:
        raise ImportRefused(problems)
    return plans


def check_row(
    number: int, row: dict[str, str], ctx: RateCardContext, today: date, seen: dict[str, int]
) -> tuple[RowPlan | None, list[RowError]]:
    """Check one row and say what it would do (see the module's docstring)."""
    cells, cleared, problems = row_cells(number, row)
    if problems or not cells:
        return None, problems  # an empty row (a spreadsheet's gap) is no row
    errors: dict[str, list[str]] = {}  # by column
    _check_cleared(cells, cleared, errors)
    reference, listing, bad_reference = _row_listing(number, cells, ctx, seen, errors)
    lot = _row_lot(cells, listing, bad_reference, ctx, errors)
    details = _row_details(cells, listing, bad_reference, errors)
    field_errors: dict[str, list[str]] = {}  # by the services' field names
    values = check_values(ctx.organisation, details, lot, field_errors)
    areas = _row_areas(cells, details, listing, lot, bad_reference, ctx, errors)
    versions, price_changes = _row_prices(cells, listing, bad_reference, today, errors)
    publish = _row_publish(cells, listing, lot, areas, versions, today, ctx, errors)
    for name, messages in field_errors.items():
        errors.setdefault(FIELD_COLUMNS.get(name, name), []).extend(messages)
    if (
        not errors
        and listing is not None
        and listing.status == ListingStatus.WITHDRAWN
        and (
            changed_values(listing, values)
            or price_changes
            or {(a.region_id, a.pcc_area_id) for a in listing.areas} != set(areas)
        )
    ):
        errors["reference"] = [f"{reference} has been withdrawn, so it can no longer be changed"]
    if errors:
        return None, [
            RowError(number, name, message)
            for name in sorted(errors, key=column_order)
            for message in errors[name]
        ]
    return RowPlan(number, listing, values, areas, versions, price_changes, publish), []


def _check_cleared(cells: dict[str, str], cleared: set[str], errors: dict) -> None:
    """The clear marker empties an optional column; it is refused in the others, which are then
    read as if left empty (so that the mistake is reported once)."""
    for name in sorted(cleared - CLEARABLE, key=KNOWN_COLUMNS.index):
        if name in REQUIRED or name in ALTERNATIVE_COLUMNS.values():
            errors[name] = [
                f"A listing needs its {name}, so {CLEAR_MARKER} is not allowed here. Give a "
                "value, or leave the cell empty to keep the one the listing has"
            ]
        else:
            errors[name] = [
                f"{CLEAR_MARKER} is not allowed in {name}. Leave the cell empty to keep it as it is"
            ]
    for name in cleared:
        if name in CLEARABLE:
            cells[name] = ""
        else:
            del cells[name]


def _row_listing(
    number: int, cells: dict[str, str], ctx: RateCardContext, seen: dict[str, int], errors: dict
) -> tuple[str, Listing | None, bool]:
    """(the reference, the listing it names, whether the reference is wrong)."""
    reference = cells.get("reference", "").upper()
    if "reference" in errors:
        return reference, None, True
    if not reference:
        return reference, None, False
    if reference in seen:
        errors["reference"] = [
            f"{reference} is also on row {seen[reference]}: give each listing once"
        ]
        return reference, None, True
    seen[reference] = number
    # Another provider's listing is not in ctx.listings: it answers as a missing one.
    listing = ctx.listings.get(reference) if len(reference) <= REFERENCE_MAX else None
    if listing is None:
        errors["reference"] = [
            f"There is no listing {reference} on your rate card. Leave the reference "
            "empty to create a new listing"
        ]
        return reference, None, True
    # A withdrawn listing is checked like the others and refused only if the row would change
    # it: a past rate card's download may still list it.
    return reference, listing, False


def _row_lot(
    cells: dict[str, str],
    listing: Listing | None,
    bad_reference: bool,
    ctx: RateCardContext,
    errors: dict,
) -> ArrangementLot | None:
    """The lot: from lot or lot_code (the download gives both), else the listing's own."""
    lot_cells = [(name, cells[name]) for name in ("lot", "lot_code") if cells.get(name)]
    found = []
    for name, text in lot_cells:
        candidate, problem = resolve_lot(text, listing, ctx)
        if problem:
            errors.setdefault(name, []).append(problem)
        else:
            found.append(candidate)
    if found:
        if len({candidate.id for candidate in found}) > 1:
            errors["lot"] = ["lot and lot_code name different lots: give one lot"]
        elif not any(name in errors for name in ("lot", "lot_code")):
            return found[0]
    elif not lot_cells:
        if listing is not None:
            return ctx.lots_by_id.get(listing.lot_id)
        if not bad_reference:
            errors["lot"] = ["Choose the lot this service belongs to"]
    return None


def _row_details(
    cells: dict[str, str], listing: Listing | None, bad_reference: bool, errors: dict
) -> ListingDetails:
    """The details as the import would leave them: the listing's, with the row's cells."""
    if listing is not None:
        details = current_details(listing)
    elif bad_reference:
        details = neutral_details()
    else:
        details = new_details()
    for name in TEXT_FIELDS:
        if name in cells:
            setattr(details, name, cells[name])
    for name in WHOLE_FIELDS:
        if name in cells:
            setattr(details, name, whole_or_text(cells[name]))
    for name in LIST_COLUMNS:
        if name in cells:
            setattr(details, name, list(choices(cells[name], name)))
    if "unit" in cells:
        details.unit = choice(cells["unit"], "unit")
    if "vat_treatment" in cells:
        details.vat_treatment = choice(cells["vat_treatment"], "vat_treatment")
    if "eligibility_sex" in cells:
        details.eligibility_sex = choice(cells["eligibility_sex"], "eligibility_sex") or Sex.ANY
    for field_name, column, label in COST_FIELDS:
        if column in cells:
            setattr(details, field_name, cell_pence(errors, column, cells[column], label,
                                                    required=False))  # fmt: skip
    return details


def _row_areas(
    cells: dict[str, str],
    details: ListingDetails,
    listing: Listing | None,
    lot: ArrangementLot | None,
    bad_reference: bool,
    ctx: RateCardContext,
    errors: dict,
) -> list[AreaKey]:
    """Each area column replaces its kind of area; areas whose membership has lapsed stay (in
    the lot they lapsed in: moving to another lot checks them all)."""
    current = (
        {(a.region_id, a.pcc_area_id) for a in listing.areas} if listing is not None else set()
    )
    region_given, pcc_given = "regions" in cells, "pcc_areas" in cells
    details.region_codes = (
        area_codes(cells["regions"], ctx, upper=True)
        if region_given
        else [ctx.region_codes_by_id[r] for r, _ in current if r is not None]
    )
    details.pcc_area_codes = (
        area_codes(cells["pcc_areas"], ctx, upper=False)
        if pcc_given
        else [ctx.pcc_codes_by_id[p] for _, p in current if p is not None]
    )
    if bad_reference and not region_given and not pcc_given:
        return []
    same_lot = listing is not None and lot is not None and lot.id == listing.lot_id
    if not same_lot:
        current = set()
    lapsed = set(uncovered_area_keys(current, lot.id, ctx.coverage)) if lot is not None else set()
    kept = [ctx.region_codes_by_id[r] for r, p in lapsed if r is not None and region_given]
    kept_pcc = [ctx.pcc_codes_by_id[p] for r, p in lapsed if p is not None and pcc_given]
    details.region_codes = [*details.region_codes, *kept]
    details.pcc_area_codes = [*details.pcc_area_codes, *kept_pcc]
    area_errors: dict[str, list[str]] = {}
    areas = check_areas(
        area_errors, lot, details.region_codes, details.pcc_area_codes, ctx.coverage,
        keep=frozenset(current), region_field="regions", pcc_field="pcc_areas",
    )  # fmt: skip
    if bad_reference:
        # Only what the cells themselves get wrong: there is no listing to check them with.
        if not region_given:
            area_errors.pop("regions", None)
        if not pcc_given:
            area_errors.pop("pcc_areas", None)
    for name, messages in area_errors.items():
        errors.setdefault(name, []).extend(messages)
    return area_keys(areas)


def _row_prices(
    cells: dict[str, str],
    listing: Listing | None,
    bad_reference: bool,
    today: date,
    errors: dict,
) -> tuple[list[PlannedVersion], list[PriceChange]]:
    """unit_price (or the download's unit_price_pence) from price_effective_from, and the
    download's planned price: each a new version by the services' rule, the history kept."""
    versions = (
        [PlannedVersion(p.id, p.unit_price_pence, p.effective_from, p.effective_to)
         for p in sorted(listing.prices, key=lambda p: p.effective_from)]
        if listing is not None else []
    )  # fmt: skip
    wanted = _row_price(cells, versions, listing, bad_reference, today, errors)
    wanted += _row_planned_price(cells, versions, today, errors)
    if len({when for _, when in wanted}) < len(wanted):
        errors["next_price_effective_from"] = [
            "The planned price has the same date as the unit price: give one price for a date"
        ]
        wanted = []
    price_changes = []
    for price, when in sorted(wanted, key=lambda w: w[1]):
        change = _apply_price(versions, price, when)
        if change is not None:
            price_changes.append(change)
    return versions, price_changes


def _row_price(
    cells: dict[str, str],
    versions: list[PlannedVersion],
    listing: Listing | None,
    bad_reference: bool,
    today: date,
    errors: dict,
) -> list[tuple[int, date]]:
    """The row's unit price and the date it takes effect ([] when it only repeats the history)."""
    day = cell_date(cells.get("price_effective_from", ""))
    if day == "bad":
        errors["price_effective_from"] = ["Enter a real date as YYYY-MM-DD or DD/MM/YYYY"]
    elif message := date_horizon_error(day, "The price's date", today=today):
        errors["price_effective_from"] = [message]
        day = "bad"  # checked no further
    price = _given_price(cells, versions, day, today, errors)
    price_problem = any(n in errors for n in ("unit_price", "unit_price_pence"))
    if price is None:
        if listing is None and not bad_reference and not price_problem:
            errors["unit_price"] = ["Enter the unit price"]
        elif (
            isinstance(day, date)
            and listing is not None
            and not price_problem
            and not any(v.effective_from == day for v in versions)
        ):
            errors["price_effective_from"] = [
                "Give the unit price that takes effect on this date, or leave the date empty"
            ]
        return []
    if day == "bad":
        return []
    when = _price_date(day, price, versions, today, errors, "price_effective_from")
    return [(price, when)] if when is not None else []


def _given_price(
    cells: dict[str, str],
    versions: list[PlannedVersion],
    day: date | None | str,
    today: date,
    errors: dict,
) -> int | None:
    """The unit price the row gives, in pounds (unit_price) or pence (unit_price_pence)."""
    pounds_price = None
    if cells.get("unit_price"):
        pounds_price = cell_pence(errors, "unit_price", cells["unit_price"], "the unit price",
                                  required=True)  # fmt: skip
        if pounds_price is not None:
            pounds_price = _check_price(errors, "unit_price", pounds_price)
    pence_price = None
    if cells.get("unit_price_pence"):
        pence_price = whole_pence(errors, "unit_price_pence", cells["unit_price_pence"],
                                  "the unit price")  # fmt: skip
        if pence_price is not None:
            pence_price = _check_price(errors, "unit_price_pence", pence_price)
    if pounds_price is None or pence_price is None or pounds_price == pence_price:
        return pounds_price if pounds_price is not None else pence_price
    # A download gives the price twice: the one that differs from the listing's is the change.
    shown = _shown_price(versions, day, today)
    if pence_price == shown:
        return pounds_price
    if pounds_price == shown:
        return pence_price
    errors["unit_price"] = [
        f"unit_price ({pounds_price / 100:.2f}) and unit_price_pence ({pence_price}) "
        "give different prices: change one of them, or leave unit_price_pence empty"
    ]
    return None


def _row_planned_price(
    cells: dict[str, str], versions: list[PlannedVersion], today: date, errors: dict
) -> list[tuple[int, date]]:
    """The download's planned price (next_unit_price_pence from next_price_effective_from)."""
    next_text = cells.get("next_unit_price_pence", "")
    next_day_text = cells.get("next_price_effective_from", "")
    if not (next_text or next_day_text):
        return []
    next_price = whole_pence(errors, "next_unit_price_pence", next_text, "the planned price")
    if next_price is not None:
        next_price = _check_price(errors, "next_unit_price_pence", next_price)
    next_day = cell_date(next_day_text)
    if next_day == "bad":
        errors["next_price_effective_from"] = ["Enter a real date as YYYY-MM-DD or DD/MM/YYYY"]
    elif message := date_horizon_error(next_day, "The planned price's date", today=today):
        errors["next_price_effective_from"] = [message]
    elif not next_text and "next_unit_price_pence" not in errors:
        errors["next_unit_price_pence"] = ["Give the planned price with its date"]
    elif next_day is None:
        errors["next_price_effective_from"] = ["Give the date of the planned price"]
    elif next_price is not None:
        when = _price_date(next_day, next_price, versions, today, errors,
                           "next_price_effective_from", planned=True)  # fmt: skip
        if when is not None:
            return [(next_price, when)]
    return []


def _apply_price(versions: list[PlannedVersion], price: int, day: date) -> PriceChange | None:
    """A price from ``day`` among ``versions`` by the services' one versioning rule (None when
    that price is already in force on that day: the file only repeats it)."""
    in_force = next((v for v in versions if v.in_force_on(day)), None)
    if in_force is not None and in_force.unit_price_pence == price:
        return None
    change = put_price_version(
        versions, price, day, lambda pence, start, end: PlannedVersion(None, pence, start, end)
    )
    if change.replaced:
        change.version.replaced = True
    return change


def _row_publish(
    cells: dict[str, str],
    listing: Listing | None,
    lot: ArrangementLot | None,
    areas: list[AreaKey],
    versions: list[PlannedVersion],
    today: date,
    ctx: RateCardContext,
    errors: dict,
) -> bool:
    """Whether the row publishes its listing (yes/no, empty: as it is), checked by the rules of
    ``services.listings.publish_listing`` once the row is otherwise good."""
    publish_text = cells.get("publish", "").lower()
    if publish_text and publish_text not in PUBLISH_WORDS:
        errors["publish"] = ["Enter yes or no"]
    publish = PUBLISH_WORDS.get(publish_text, False)
    if not publish or errors:
        return publish
    price_today = any(v.in_force_on(today) for v in versions)
    if listing is None:
        if not price_today:
            errors["publish"] = [
                "A new listing can only be published with a price in force today: leave "
                "the date empty, or publish it later"
            ]
    elif listing.status in (ListingStatus.DRAFT, ListingStatus.PAUSED) and lot is not None:
        uncovered = ctx.area_names(uncovered_area_keys(areas, lot.id, ctx.coverage))
        if refusal := publish_refusal(lot, uncovered, price_today=price_today):
            errors["publish"] = [refusal]
    return publish


def _check_price(errors: dict, column: str, pence: int) -> int | None:
    field_errors: dict[str, list[str]] = {}
    checked = check_price_pence(pence, field_errors)
    if field_errors:
        errors[column] = field_errors["unit_price_pence"]
    return checked


def _shown_price(versions: list[PlannedVersion], day: date | None | str, today: date) -> int | None:
    """The price a download showed: the version starting on its date, else today's."""
    if isinstance(day, date):
        starting = next((v for v in versions if v.effective_from == day), None)
        if starting is not None:
            return starting.unit_price_pence
    in_force = next((v for v in versions if v.in_force_on(today)), None)
    return in_force.unit_price_pence if in_force else None


def _price_date(
    day: date | None,
    price: int,
    versions: list[PlannedVersion],
    today: date,
    errors: dict,
    column: str,
    *,
    planned: bool = False,
) -> date | None:
    """The date a price in the file takes effect, or None when the file only repeats the history.

    A date and price that match a version already kept change nothing (a download gives them);
    the start date of today's price, given with a different price, means today (the person
    changed the price in a download and left its date); any other date is held to the services'
    rule for when a new price may start (``prices.price_start_error``).
    """
    if day is not None and any(
        v.effective_from == day and v.unit_price_pence == price for v in versions
    ):
        return None
    if day is None:
        return today
    in_force = next((v for v in versions if v.in_force_on(today)), None)
    if day < today and not planned and in_force is not None and in_force.effective_from == day:
        return today
    noun = "planned price" if planned else "new price"
    label = "The planned price's date" if planned else "The price's date"
    if message := price_start_error(day, today, label=label, noun=noun):
        errors[column] = [message]
        return None
    return day


def changed_values(listing: Listing, values: dict[str, Any]) -> dict[str, Any]:
    """The column values that differ from the listing's."""
    return {
        name: value for name, value in values.items() if not _same(getattr(listing, name), value)
    }


def _same(old: Any, new: Any) -> bool:
    """Equal, counting text that differs only in its line endings (Windows, spreadsheets) as equal."""
    if isinstance(old, str) and isinstance(new, str):
        return old.replace("\r\n", "\n") == new.replace("\r\n", "\n")
    return old == new
