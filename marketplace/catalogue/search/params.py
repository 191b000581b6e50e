"""What a buyer asks a search for, and the reference data (lots, regions, PCC areas) the filters
name, read in one statement."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType
from marketplace.accreditation.models import Arrangement, ArrangementLot, ArrangementStatus
from marketplace.catalogue.models import (
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    RiskLevel,
    Sex,
)
from marketplace.catalogue.search.terms import TextQuery, parse_text
from marketplace.core.db import db
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

PER_PAGE = 20


class SortOrder(enum.StrEnum):
    RELEVANCE = "relevance"
    PRICE = "price"
    PRICE_DESC = "price-desc"
    PROVIDER = "provider"

    @property
    def label(self) -> str:
        return {
            "relevance": "Relevance",
            "price": "Unit price (lowest first)",
            "price-desc": "Unit price (highest first)",
            "provider": "Provider name",
        }[self.value]


class ProviderType(enum.StrEnum):
    VCSE = "vcse"
    PRIVATE = "private"
    PUBLIC = "public"

    @property
    def organisation_type(self) -> OrganisationType:
        return OrganisationType(f"provider_{self.value}")

    @property
    def label(self) -> str:
        return self.organisation_type.label


@dataclass(frozen=True)
class SearchParams:
    """What a buyer asked for. Codes are reference codes; unknown ones match nothing."""

    text: str = ""
    lot: str | None = None  # service category code
    region: str | None = None
    pcc_area: str | None = None
    settings: tuple[DeliverySetting, ...] = ()  # any of
    formats: tuple[DeliveryFormat, ...] = ()  # any of
    sex: Sex | None = None  # the person's sex: listings for anyone or for that sex
    age: int | None = None
    risk: RiskLevel | None = None
    complexity: Complexity | None = None
    provider_types: tuple[ProviderType, ...] = ()  # any of
    max_price_pence: int | None = None
    month: date | None = None  # first of a month: needs availability in it
    min_available: int = 1
    sort: SortOrder | None = None  # None: relevance with text, else price
    page: int = 1
    per_page: int = PER_PAGE

    @functools.cached_property
    def query(self) -> TextQuery:
        """The search text as groups of words (see ``parse_text``)."""
        return parse_text(self.text)

    @property
    def terms(self) -> list[str]:
        return self.query.terms

    @property
    def effective_sort(self) -> SortOrder:
        if self.sort is None or (self.sort == SortOrder.RELEVANCE and not self.terms):
            return SortOrder.RELEVANCE if self.terms else SortOrder.PRICE
        return self.sort

    @property
    def has_filters(self) -> bool:
        return any(
            (
                self.lot,
                self.region,
                self.pcc_area,
                self.settings,
                self.formats,
                self.sex,
                self.age is not None,
                self.risk,
                self.complexity,
                self.provider_types,
                self.max_price_pence is not None,
                self.month,
            )
        )


# ---------------------------------------------------------------------------------------------
# Reference data, in one statement


@dataclass
class Reference:
    categories: list[tuple[int, str, str]]  # id, code, name
    regions: list[tuple[int, str, str]]
    pcc_areas: list[tuple[int, str, str, int]]  # id, code, name, region id
    # The categories that are lots of a live arrangement: what a buyer may filter by.
    lot_category_ids: set[int] = field(default_factory=set)

    @property
    def lots(self) -> list[tuple[int, str, str]]:
        """The categories that are lots of a live arrangement, by name."""
        return [row for row in self.categories if row[0] in self.lot_category_ids]

    def category_id(self, code: str | None) -> int | None:
        code = (code or "").strip().upper()
        return next((i for i, c, _ in self.categories if c.upper() == code), None)

    def region_id(self, code: str | None) -> int | None:
        code = (code or "").strip().upper()
        return next((i for i, c, _ in self.regions if c.upper() == code), None)

    def pcc_area(self, code: str | None) -> tuple[int, str, str, int] | None:
        code = (code or "").strip().upper()
        return next((p for p in self.pcc_areas if p[1].upper() == code), None)


def load_reference() -> Reference:
    """Categories, regions, PCC areas and live lots' categories, by name, in one statement."""
    category = ServiceCategory.__table__
    region = ProbationRegion.__table__
    pcc = PccArea.__table__
    lot, arrangement = ArrangementLot.__table__, Arrangement.__table__
    no_text = sa.cast(sa.null(), sa.String)
    statement = sa.union_all(
        sa.select(
            sa.literal("c").label("kind"),
            category.c.id,
            category.c.code,
            category.c.name,
            sa.literal(0).label("parent"),
        ),
        sa.select(sa.literal("r"), region.c.id, region.c.code, region.c.name, sa.literal(0)),
        sa.select(sa.literal("p"), pcc.c.id, pcc.c.code, pcc.c.name, pcc.c.region_id),
        sa.select(sa.literal("l"), lot.c.category_id, no_text, no_text, sa.literal(0))
        .join(arrangement, arrangement.c.id == lot.c.arrangement_id)
        .where(arrangement.c.status == ArrangementStatus.LIVE.value),
    )
    reference = Reference([], [], [])
    for kind, pk, code, name, parent in db.session.execute(statement):
        if kind == "c":
            reference.categories.append((pk, code, name))
        elif kind == "l":
            reference.lot_category_ids.add(pk)
        elif kind == "r":
            reference.regions.append((pk, code, name))
        else:
            reference.pcc_areas.append((pk, code, name, parent))
    for rows in (reference.categories, reference.regions, reference.pcc_areas):
        rows.sort(key=lambda row: (row[2], row[0]))
    return reference
