"""Every provider with its classification in force on a day and when it last confirmed it: the
authority's list page, its CSV and the API are built from ``classification_rows`` (one query),
so their numbers agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from marketplace.accounts.models import (
    PROVIDER_TYPES,
    ClassificationSource,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    StaffBand,
    TurnoverBand,
    VcseBasis,
)
from marketplace.accounts.queries import (
    confirmation_due_on,
    confirmation_overdue_cutoff,
    last_confirmed_column,
)
from marketplace.core.db import db

# The list's filters: one value each, from a query string (``?vcse=yes``) or the API.
YES_NO = ("yes", "no")


@dataclass(frozen=True)
class ClassificationFilters:
    vcse: bool | None = None
    sme: bool | None = None
    unclassified: bool = False  # only providers with no classification in force
    overdue: bool = False  # only providers whose yearly confirmation is due


def parse_filters(args) -> tuple[ClassificationFilters, dict[str, list[str]]]:
    """The filters from a query string, and a message for each value that is not one of the
    choices (that filter is then left out)."""
    errors: dict[str, list[str]] = {}

    def yes_no(name: str, message: str) -> bool | None:
        raw = (args.get(name) or "").strip().lower()
        if raw in ("", "any"):
            return None
        if raw not in YES_NO:
            errors[name] = [message]
            return None
        return raw == "yes"

    vcse = yes_no("vcse", "Choose VCSE, not VCSE or either")
    sme = yes_no("sme", "Choose SME, not SME or either")
    unclassified = yes_no("unclassified", "Choose whether to show only providers not classified")
    overdue = yes_no("overdue", "Choose whether to show only providers whose confirmation is due")
    return (
        ClassificationFilters(vcse, sme, bool(unclassified), bool(overdue)),
        errors,
    )


@dataclass(frozen=True)
class ClassificationRow:
    organisation_id: int
    name: str
    type: OrganisationType
    charity_number: str | None
    companies_house_number: str | None
    vcse_basis: VcseBasis | None
    staff_band: StaffBand | None
    turnover_band: TurnoverBand | None
    vcse: bool | None
    sme: bool | None
    effective_from: date | None
    source: ClassificationSource | None
    last_confirmed_on: date | None
    confirmation_due_on: date | None
    overdue: bool

    @property
    def classified(self) -> bool:
        return self.vcse_basis is not None


def classification_query(filters: ClassificationFilters, on: date) -> sa.Select:
    """Providers (active or not) by name, each with the entry in force on ``on`` (greatest
    ``(effective_from, id)`` not after it, as ``classifications_in_force``) and its last
    registration or confirmation."""
    ranked = (
        sa.select(
            OrganisationClassification.id,
            OrganisationClassification.organisation_id,
            sa.func.row_number()
            .over(
                partition_by=OrganisationClassification.organisation_id,
                order_by=(
                    OrganisationClassification.effective_from.desc(),
                    OrganisationClassification.id.desc(),
                ),
            )
            .label("rank"),
        )
        .where(OrganisationClassification.effective_from <= on)
        .subquery()
    )
    current = aliased(OrganisationClassification)
    last = last_confirmed_column()
    query = (
        sa.select(
            Organisation.id,
            Organisation.name,
            Organisation.type,
            Organisation.charity_number,
            Organisation.companies_house_number,
            current.vcse_basis,
            current.staff_band,
            current.turnover_band,
            current.vcse,
            current.sme,
            current.effective_from,
            current.source,
            last.label("last_confirmed_on"),
        )
        .outerjoin(ranked, sa.and_(ranked.c.organisation_id == Organisation.id, ranked.c.rank == 1))
        .outerjoin(current, current.id == ranked.c.id)
        .where(Organisation.type.in_(sorted(PROVIDER_TYPES)))
        .order_by(Organisation.name, Organisation.id)
    )
    if filters.vcse is not None:
        query = query.where(current.vcse.is_(filters.vcse))
    if filters.sme is not None:
        query = query.where(current.sme.is_(filters.sme))
    if filters.unclassified:
        query = query.where(current.id.is_(None))
    if filters.overdue:
        query = query.where(sa.or_(last.is_(None), last <= confirmation_overdue_cutoff(on)))
    return query


def to_row(raw, on: date) -> ClassificationRow:
    last = raw.last_confirmed_on
    due = confirmation_due_on(last)
    return ClassificationRow(
        organisation_id=raw.id,
        name=raw.name,
        type=raw.type,
        charity_number=raw.charity_number,
        companies_house_number=raw.companies_house_number,
        vcse_basis=raw.vcse_basis,
        staff_band=raw.staff_band,
        turnover_band=raw.turnover_band,
        vcse=raw.vcse,
        sme=raw.sme,
        effective_from=raw.effective_from,
        source=raw.source,
        last_confirmed_on=last,
        confirmation_due_on=due,
        overdue=due is None or due <= on,
    )


def classification_rows(filters: ClassificationFilters, on: date) -> list[ClassificationRow]:
    """Every row of the list (the CSV)."""
    return [to_row(raw, on) for raw in db.session.execute(classification_query(filters, on))]


CSV_HEADER = [
    "Organisation id",
    "Name",
    "Type",
    "Charity number",
    "Companies House number",
    "Legal form",
    "VCSE",
    "Staff",
    "Turnover",
    "SME",
    "In force from",
    "Recorded as",
    "Last confirmed",
    "Confirmation due",
]


def csv_cells(row: ClassificationRow) -> list:
    def yes_no(flag: bool | None) -> str:
        return "" if flag is None else ("Yes" if flag else "No")

    return [
        row.organisation_id,
        row.name,
        row.type.label,
        row.charity_number or "",
        row.companies_house_number or "",
        row.vcse_basis.label if row.vcse_basis else "Not classified",
        yes_no(row.vcse),
        row.staff_band.label if row.staff_band else "",
        row.turnover_band.label if row.turnover_band else "",
        yes_no(row.sme),
        row.effective_from.isoformat() if row.effective_from else "",
        row.source.label if row.source else "",
        row.last_confirmed_on.isoformat() if row.last_confirmed_on else "",
        row.confirmation_due_on.isoformat() if row.confirmation_due_on else "now",
    ]
