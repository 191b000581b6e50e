"""Catalogue search: full text, filters, facets, sorting and pages over the visible listings.

One module, two backends, the same results for the same data:

- SQLite (the embedded default): an FTS5 virtual table ``listing_search`` keyed by ``rowid`` =
  listing id, ranked with ``bm25``;
- PostgreSQL: a ``document`` tsvector column of ``listing_search_rows`` (see below) with a GIN
  index, ranked with ``ts_rank``.

Both index text that the app has already folded into plain terms (lower case, no accents, letters
and digits only, plurals reduced: see ``terms``), and queries are the same terms, each quoted: so a
word matches the same listings on both databases, and no input can reach either query language.

``listing_search_areas`` holds, for each listing that buyers may see, the areas it is offered in
that an active membership of its lot covers (a region membership covers the region and every PCC
area in it; a PCC-area membership covers that area). ``listing_search_rows`` holds one narrow row
per such listing with what filters, counts and sorting read: its lot, flags, eligibility, sort
keys, the price in force with its dates and, on PostgreSQL, its covered regions' ids (GIN) and its
text. A listing has index rows only while it is published and has at least one covered area: so
"visible" is the existence of those rows. On PostgreSQL a search with text, a lot and a region
intersects three indexes before it reads a row.

The index is kept up to date in the transaction that changes the data: a session hook notes the
listings whose searchable text, status, lot, organisation name, areas or memberships changed at
each flush, and rewrites their rows before the flush ends. Writers that bypass the ORM (bulk loads
with SQLAlchemy Core) must call ``reindex_listings`` or ``reindex_all`` themselves. Cached search
pages need nothing more: the database's triggers move the search topic on for every write to
the data or to the index (``marketplace.core.cache.triggers``).

The price shown, filtered and sorted is the one in force today; availability in a month is the
monthly capacity less the units committed in that month.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, joinedload, selectinload

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accounts.queries import Page
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
)
from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    FORMAT_COLUMNS,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    CapacityCommitment,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
    RiskLevel,
    Sex,
)
from marketplace.catalogue.stemmer import stem
from marketplace.core.cache.page_cache import Topic, kept, watch
from marketplace.core.clock import london_date as london_today
from marketplace.core.db import db, parse_id
from marketplace.core.store import insert_many
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

PER_PAGE = 20
MAX_QUERY_CHARS = 200  # longer search text is cut here before it is split into terms
MAX_TERMS = 12
MAX_TERM_CHARS = 60  # longer "words" are not words; neither side indexes them
MAX_COMPARE = 4
SEARCH_TABLE = "listing_search"
AREAS_TABLE = "listing_search_areas"
ROWS_TABLE = "listing_search_rows"
SORT_KEY_MAX = 120
MAX_PAGE = 100_000
# bm25 weights per FTS5 column (title, summary, body, provider, places); PostgreSQL weighs the
# same parts A, B, C, B and D. A place name matches, but a word in the text ranks first.
BM25_WEIGHTS = (10.0, 4.0, 1.0, 4.0, 0.5)
_REINDEX_CHUNK = 500
# The page cache topic of search results (see marketplace/core/cache/page_cache.py): moved on by any change
# to what a search shows, so that a cached results page is never served after such a change.
SEARCH_TOPIC = "catalogue-search"


def is_search_object(name: str | None) -> bool:
    """Whether a table belongs to the search index (written by hand, not in the models)."""
    return bool(name) and (name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_"))


# ---------------------------------------------------------------------------------------------
# Terms

# A run of letters and digits no longer than MAX_TERM_CHARS (longer runs are not words).
_WORD = re.compile(rf"(?<![a-z0-9])[a-z0-9]{{1,{MAX_TERM_CHARS}}}(?![a-z0-9])")
# Words too common to tell services apart: left out of a search (and said so on the page). "and"
# is what a search does anyway and "or" joins the words either side of it (see ``parse_text``);
# neither is ever matched as a word.
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
    }
)


@functools.lru_cache(maxsize=200_000)  # a catalogue's vocabulary: each word is stemmed once
def _stem(word: str) -> str:
    """A word's stem (Porter2), the same on both sides of the search and on both databases."""
    return stem(word)


def _fold(text: str) -> str:
    """Lower case without accents."""
    folded = text.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    return folded


def terms(text: str | None) -> list[str]:
    """Text as plain search terms: folded to lower case without accents, letters and digits,
    each reduced to its stem."""
    if not text:
        return []
    return list(map(_stem, _WORD.findall(_fold(text))))


@dataclass(frozen=True)
class TextQuery:
    """What search text asks for: every group must match, and a group matches when any of its
    words does ("housing women or men": housing, and women or men).

    Each word is kept as typed (folded) for the page, with its stem for the index.
    """

    groups: tuple[tuple[tuple[str, str], ...], ...] = ()  # ((stem, word as typed), ...)
    ignored: tuple[str, ...] = ()  # common words left out, as typed

    @property
    def terms(self) -> list[str]:
        """The distinct stems, in order."""
        return list(dict.fromkeys(term for group in self.groups for term, _ in group))

    def fts5(self) -> str:
        """The FTS5 query: each stem quoted (stems are [a-z0-9]+), so no input is syntax."""
        return " AND ".join(
            f'"{group[0][0]}"'
            if len(group) == 1
            else "(" + " OR ".join(f'"{term}"' for term, _ in group) + ")"
            for group in self.groups
        )

    def tsquery(self) -> str:
        """The PostgreSQL tsquery text (for ``to_tsquery('simple', …)``): the same logic."""
        return " & ".join(
            group[0][0] if len(group) == 1 else "(" + " | ".join(term for term, _ in group) + ")"
            for group in self.groups
        )


def parse_text(text: str | None) -> TextQuery:
    """Search text as groups of words: all groups must match (AND is the default, and the word
    "and" only separates), "or" between two words makes them one group that either matches, and
    common words are left out. At most MAX_TERMS words; the text is cut to MAX_QUERY_CHARS."""
    groups: list[list[tuple[str, str]]] = []
    ignored: list[str] = []
    joining = False  # the last word seen was "or" after a word
    count = 0
    for word in _WORD.findall(_fold((text or "")[:MAX_QUERY_CHARS])):
        if word == "or":
            joining = bool(groups)
            continue
        if word == "and":
            joining = False
            continue
        if word in STOP_WORDS:
            if word not in ignored:
                ignored.append(word)
            continue
        term = _stem(word)
        if not joining:
            groups.append([])
        if all(term != known for known, _ in groups[-1]):
            groups[-1].append((term, word))
        joining = False
        count += 1
        if count >= MAX_TERMS:
            break
    distinct: dict[frozenset[str], tuple[tuple[str, str], ...]] = {}
    for group in groups:  # "housing housing": one group
        distinct.setdefault(frozenset(term for term, _ in group), tuple(group))
    return TextQuery(tuple(distinct.values()), tuple(ignored))


def query_terms(text: str | None) -> list[str]:
    """The distinct stems a search for this text looks for, in order."""
    return parse_text(text).terms


# ---------------------------------------------------------------------------------------------
# Search parameters


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


# ---------------------------------------------------------------------------------------------
# The statements

_listings = Listing.__table__
_organisations = Organisation.__table__
_lots = ArrangementLot.__table__
_prices = ListingPrice.__table__
_commitments = CapacityCommitment.__table__
_areas = sa.table(
    AREAS_TABLE, sa.column("listing_id"), sa.column("region_id"), sa.column("pcc_area_id")
)
_fts = sa.table(SEARCH_TABLE, sa.column("rowid"))  # SQLite
FLAG_COLUMNS = [
    *SETTING_COLUMNS.values(),
    *FORMAT_COLUMNS.values(),
    *RISK_COLUMNS.values(),
    *COMPLEXITY_COLUMNS.values(),
]
# One narrow row per visible listing with what the filters, counts and sorting read, so that a
# search never reads the (wide) listings table but for the page it shows.
_rows = sa.table(
    ROWS_TABLE,
    sa.column("listing_id"),
    sa.column("category_id"),
    sa.column("organisation_id"),
    sa.column("provider_type"),
    sa.column("provider_key"),
    sa.column("title_key"),
    *(sa.column(name, sa.Boolean) for name in FLAG_COLUMNS),
    sa.column("eligibility_sex"),
    sa.column("min_age"),
    sa.column("max_age"),
    sa.column("monthly_capacity"),
    # The price in force from price_from until the day before price_to (None: open-ended), as
    # it stood when the row was written; on a day outside those dates a search reads the prices.
    sa.column("price_pence"),
    sa.column("price_from", sa.Date()),
    sa.column("price_to", sa.Date()),
    sa.column("region_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("wide_region_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("pcc_area_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("document", postgresql.TSVECTOR()),  # PostgreSQL only
)


class _CrossJoin(sa.sql.selectable.Join):
    """An inner join that SQLite must run in the order written (``CROSS JOIN … ON``)."""

    inherit_cache = True


@compiles(_CrossJoin, "sqlite")
def _compile_cross_join(element, compiler, **kw):
    kw["asfrom"] = True
    return (
        f"{compiler.process(element.left, **kw)} CROSS JOIN "
        f"{compiler.process(element.right, **kw)} ON {compiler.process(element.onclause, **kw)}"
    )


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _shape_and_values(
    params: SearchParams, reference: Reference, today: date, dialect: str
) -> tuple[tuple, dict[str, Any], bool]:
    """What decides the statements' shape (hashable), the values bound into them, and whether an
    unknown code means nothing can match."""
    query = params.query
    shape: list = [dialect, bool(query.groups), params.effective_sort.value]
    values: dict[str, Any] = {"today": today}
    impossible = False
    if query.groups:
        values["words"] = query.tsquery() if dialect == "postgresql" else query.fts5()
    if params.lot:
        category_id = reference.category_id(params.lot)
        impossible |= category_id is None
        values["category_id"] = category_id or 0
        shape.append("lot")
    if params.region:
        region_id = reference.region_id(params.region)
        impossible |= region_id is None
        values["region_id"] = region_id or 0
        shape.append("region")
    if params.pcc_area:
        pcc = reference.pcc_area(params.pcc_area)
        impossible |= pcc is None
        values["pcc_area_id"], values["pcc_region_id"] = (pcc[0], pcc[3]) if pcc else (0, 0)
        shape.append("pcc_area")
    if params.settings:
        shape.append(("setting", tuple(sorted(SETTING_COLUMNS[s] for s in params.settings))))
    if params.formats:
        shape.append(("format", tuple(sorted(FORMAT_COLUMNS[f] for f in params.formats))))
    if params.sex is not None and params.sex != Sex.ANY:
        values["sexes"] = [Sex.ANY.value, params.sex.value]
        shape.append("sex")
    if params.age is not None:
        values["age"] = params.age
        shape.append("age")
    if params.risk is not None:
        shape.append(("risk", RISK_COLUMNS[params.risk]))
    if params.complexity is not None:
        shape.append(("complexity", COMPLEXITY_COLUMNS[params.complexity]))
    if params.provider_types:
        values["provider_types"] = [t.organisation_type.value for t in params.provider_types]
        shape.append("provider_types")
    if params.max_price_pence is not None:
        values["max_price"] = params.max_price_pence
        shape.append("max_price")
    if params.month is not None:
        values["month"] = params.month
        values["min_available"] = params.min_available
        shape.append("month")
    return tuple(shape), values, impossible


def _bound(name: str, type_: Any = None) -> sa.BindParameter:
    return sa.bindparam(name, type_=type_ or sa.Integer())


@dataclass
class _Plan:
    """The FROM, WHERE and relevance of the search statements for one shape; values are bound."""

    shape: tuple
    conditions: list = field(default_factory=list)
    from_: Any = None
    rank: Any = None

    @property
    def dialect(self) -> str:
        return self.shape[0]

    @property
    def sort(self) -> SortOrder:
        return SortOrder(self.shape[2])

    def has(self, name: str) -> bool:
        return name in self.shape

    def chosen(self, name: str) -> Any:
        return next(
            (item[1] for item in self.shape if isinstance(item, tuple) and item[0] == name), None
        )

    def text_source(self):
        """The text index joined to the narrow rows, and the relevance (larger is better)."""
        words = _bound("words", sa.String())
        if self.dialect == "postgresql":
            tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), words)
            self.conditions.append(_rows.c.document.op("@@")(tsquery))
            return _rows, sa.func.ts_rank(_rows.c.document, tsquery)
        # CROSS JOIN: SQLite then always reads the text index first and looks the rows up,
        # rather than walking the rows and probing the index for each.
        source = _CrossJoin(_fts, _rows, _rows.c.listing_id == _fts.c.rowid)
        self.conditions.append(sa.literal_column(SEARCH_TABLE).op("MATCH")(words))
        # bm25 is smaller for better matches; negated so that larger is better everywhere.
        return source, -sa.func.bm25(sa.literal_column(SEARCH_TABLE), *BM25_WEIGHTS)

    def price(self):
        """The unit price in force on the search date: the row's own while it is in force (the
        usual case, no lookup), else read from the price versions."""
        today = _bound("today", sa.Date())
        in_force = (
            sa.select(_prices.c.unit_price_pence)
            .where(
                _prices.c.listing_id == _rows.c.listing_id,
                _prices.c.effective_from <= today,
                sa.or_(_prices.c.effective_to.is_(None), _prices.c.effective_to > today),
            )
            .correlate(_rows)
            .scalar_subquery()
        )
        current = sa.and_(
            _rows.c.price_from <= today,
            sa.or_(_rows.c.price_to.is_(None), _rows.c.price_to > today),
        )
        return sa.case((current, _rows.c.price_pence), else_=in_force)


def _plan(shape: tuple) -> _Plan:
    plan = _Plan(shape)
    if shape[1]:
        plan.from_, plan.rank = plan.text_source()
    else:
        plan.from_ = _rows
    listing_id = _rows.c.listing_id
    conditions = plan.conditions
    if plan.has("lot"):
        conditions.append(_rows.c.category_id == _bound("category_id"))
    if plan.has("region") and plan.dialect == "postgresql":
        region = postgresql.array([_bound("region_id")], type_=sa.Integer())
        conditions.append(_rows.c.region_ids.op("@>")(region))
    elif plan.has("region"):
        conditions.append(
            sa.exists()
            .where(_areas.c.listing_id == listing_id, _areas.c.region_id == _bound("region_id"))
            .correlate(_rows)
        )
    if plan.has("pcc_area"):
        conditions.append(
            sa.exists()
            .where(
                _areas.c.listing_id == listing_id,
                sa.or_(
                    _areas.c.pcc_area_id == _bound("pcc_area_id"),
                    sa.and_(
                        _areas.c.region_id == _bound("pcc_region_id"),
                        _areas.c.pcc_area_id.is_(None),
                    ),
                ),
            )
            .correlate(_rows)
        )
    for name in ("setting", "format"):
        columns = plan.chosen(name)
        if columns:
            conditions.append(sa.or_(*(_rows.c[column] for column in columns)))
    if plan.has("sex"):
        conditions.append(
            _rows.c.eligibility_sex.in_(sa.bindparam("sexes", expanding=True, type_=sa.String()))
        )
    if plan.has("age"):
        conditions.append(sa.or_(_rows.c.min_age.is_(None), _rows.c.min_age <= _bound("age")))
        conditions.append(sa.or_(_rows.c.max_age.is_(None), _rows.c.max_age >= _bound("age")))
    for name in ("risk", "complexity"):
        column = plan.chosen(name)
        if column:
            conditions.append(_rows.c[column])
    if plan.has("provider_types"):
        conditions.append(
            _rows.c.provider_type.in_(
                sa.bindparam("provider_types", expanding=True, type_=sa.String())
            )
        )
    if plan.has("max_price"):
        conditions.append(plan.price() <= _bound("max_price"))
    if plan.has("month"):
        committed = (
            sa.select(sa.func.coalesce(sa.func.sum(_commitments.c.units), 0))
            .where(
                _commitments.c.listing_id == listing_id,
                _commitments.c.month == _bound("month", sa.Date()),
            )
            .correlate(_rows)
            .scalar_subquery()
        )
        conditions.append(_rows.c.monthly_capacity - committed >= _bound("min_available"))
    return plan


def sort_key(text: str) -> str:
    """The case-insensitive key names are sorted by, the same on both databases."""
    return unicodedata.normalize("NFKD", text.casefold())[:SORT_KEY_MAX]


def _byte_order(column, dialect: str):
    return column.collate("C") if dialect == "postgresql" else column


def _order_by(plan: _Plan, columns) -> list:
    """ORDER BY for a selectable with price, rank (with words), provider_key, title_key, id."""
    price = columns.price
    price_up = price.asc().nulls_last()
    provider = _byte_order(columns.provider_key, plan.dialect)
    tie_break = [_byte_order(columns.title_key, plan.dialect), columns.id]
    sort = plan.sort
    if sort == SortOrder.RELEVANCE and plan.rank is not None:
        return [columns.rank.desc(), price_up, provider, *tie_break]
    if sort == SortOrder.PRICE_DESC:
        return [price.desc().nulls_last(), provider, *tie_break]
    if sort == SortOrder.PROVIDER:
        return [provider, price_up, *tie_break]
    return [price_up, provider, *tie_break]


FLAG_FACETS: dict[str, dict[str, str]] = {
    "setting": {s.value: c for s, c in SETTING_COLUMNS.items()},
    "format": {f.value: c for f, c in FORMAT_COLUMNS.items()},
    "risk": {r.value: c for r, c in RISK_COLUMNS.items()},
    "complexity": {c.value: col for c, col in COMPLEXITY_COLUMNS.items()},
}
# What each per-lot sum counts, in order: every flag, each sex, each provider type.
_SUM_NAMES: list[tuple[str, str]] = [
    *((facet, value) for facet, values in FLAG_FACETS.items() for value in values),
    ("sex", Sex.FEMALE.value),
    ("sex", Sex.MALE.value),
    *(("provider_type", t.value) for t in ProviderType),
]


def _by_area(matched, nothing: list, no_price, dialect: str) -> list[sa.Select]:
    """Per region, how many matches it covers; per covered area, how many matches have it:
    what the region and PCC area counts read.

    A match covered in a whole region has one area row for it (kind "wide", key the region);
    one covered in PCC areas of a region it is not covered in as a whole has a row per area
    (kind "pcc", key the area): the index never holds both for one region (see ``_cover``).
    On PostgreSQL the same are arrays in the match's row (see ``_area_arrays``).
    """
    area = _areas
    # The matches first, each probing the areas' (listing, region, PCC area) index, which holds
    # all that is read: never a scan of every covered area (SQLite otherwise prefers one once
    # the tables have statistics).
    by_matches = _CrossJoin(matched, area, area.c.listing_id == matched.c.id)
    if dialect == "postgresql":
        # Each match's covered areas are in its row: unnested in memory, no lookups.
        selects = []
        for kind, column in (
            ("region", matched.c.region_ids),
            ("wide", matched.c.wide_region_ids),
            ("pcc", matched.c.pcc_area_ids),
        ):
            covered = sa.select(sa.func.unnest(column).label("area_id")).subquery()
            selects.append(
                sa.select(
                    sa.literal(kind), covered.c.area_id, sa.func.count(), *nothing, no_price
                ).group_by(covered.c.area_id)
            )
        return selects
    else:
        by_region = (
            sa.select(
                sa.literal("region"),
                area.c.region_id,
                sa.func.count(sa.distinct(matched.c.id)),
                *nothing,
                no_price,
            )
            .select_from(by_matches)
            .group_by(area.c.region_id)
        )
    wide = area.c.pcc_area_id.is_(None)
    by_area = (
        sa.select(
            sa.case((wide, "wide"), else_="pcc"),
            sa.func.coalesce(area.c.pcc_area_id, area.c.region_id),
            sa.func.count(),
            *nothing,
            no_price,
        )
        .select_from(by_matches)
        .group_by(area.c.region_id, area.c.pcc_area_id)
    )
    return [by_region, by_area]


@functools.lru_cache(maxsize=512)
def _statement(shape: tuple) -> sa.CompoundSelect:
    """The one statement of a search of this shape (built once, then only its values change).

    The matches are read once (a materialised CTE with today's price and the sort keys); per
    lot the statement counts them and how many have each flag, sex and provider type; per
    covered area how many it covers (see ``_by_area``); and it numbers the ids of the page
    asked for (the last page if that is past the end).
    """
    plan = _plan(shape)
    rank = plan.rank
    matched = (
        sa.select(
            _rows.c.listing_id.label("id"),
            _rows.c.category_id,
            _rows.c.provider_type,
            _rows.c.eligibility_sex,
            *(_rows.c[name] for name in FLAG_COLUMNS),
            _rows.c.provider_key,
            _rows.c.title_key,
            plan.price().label("price"),
            *(
                [_rows.c.region_ids, _rows.c.wide_region_ids, _rows.c.pcc_area_ids]
                if plan.dialect == "postgresql"
                else []
            ),
            *([rank.label("rank")] if rank is not None else []),
        )
        .select_from(plan.from_)
        .where(*plan.conditions)
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    sums: list = []
    for facet, value in _SUM_NAMES:
        if facet == "sex":
            condition = matched.c.eligibility_sex.in_([Sex.ANY.value, value])
        elif facet == "provider_type":
            condition = matched.c.provider_type == ProviderType(value).organisation_type.value
        else:
            condition = matched.c[FLAG_FACETS[facet][value]]
        sums.append(sa.func.sum(sa.case((condition, 1), else_=0)))
    nothing = [sa.null() for _ in sums]
    no_price = sa.cast(sa.null(), sa.BigInteger)
    by_lot = sa.select(
        sa.literal("lot").label("kind"),
        matched.c.category_id.label("key"),
        sa.func.count().label("n"),
        *(total.label(f"s{i}") for i, total in enumerate(sums)),
        no_price.label("price"),
    ).group_by(matched.c.category_id)
    by_area = _by_area(matched, nothing, no_price, plan.dialect)
    total = sa.select(sa.func.count()).select_from(matched).scalar_subquery()
    wanted, per_page = _bound("wanted"), _bound("per_page")
    offset = sa.case(
        (total > wanted, wanted),
        else_=sa.case((total > 0, ((total - 1) // per_page) * per_page), else_=0),
    )
    page_rows = (
        sa.select(
            matched.c.id,
            matched.c.price,
            matched.c.provider_key,
            matched.c.title_key,
            *([matched.c.rank] if rank is not None else []),
        )
        .order_by(*_order_by(plan, matched.c))
        .limit(per_page)
        .offset(offset)
        .subquery("page_rows")
    )
    # Numbered after the LIMIT, so that the page keeps its order through the UNION.
    numbered = sa.select(
        sa.literal("hit"),
        page_rows.c.id,
        sa.func.row_number().over(order_by=_order_by(plan, page_rows.c)),
        *nothing,
        page_rows.c.price,
    )
    return sa.union_all(by_lot, *by_area, numbered)


def _run(
    shape: tuple, values: dict[str, Any], reference: Reference, page: int, per_page: int
) -> tuple[int, dict[str, dict[str, int]], list]:
    """The total, the counts per filter value and the page's (listing id, price), in order."""
    codes = {
        "lot": {pk: code for pk, code, _ in reference.categories},
        "region": {pk: code for pk, code, _ in reference.regions},
    }
    facets = _empty_facets()
    totals = [0] * len(_SUM_NAMES)
    count = 0
    hits: list[tuple[int, int, int | None]] = []
    in_area: dict[str, dict[int, int]] = {"wide": {}, "pcc": {}}
    values = {**values, "wanted": (page - 1) * per_page, "per_page": per_page}
    for kind, key, n, *counts, price in db.session.execute(_statement(shape), values):
        if kind == "hit":
            hits.append((int(n), key, price))
            continue
        if kind in in_area:
            in_area[kind][key] = int(n)
            continue
        if kind == "lot":
            count += int(n)
            totals = [a + int(b or 0) for a, b in zip(totals, counts, strict=True)]
        code = codes[kind].get(key)
        if code is not None:
            facets[kind][code] = int(n)
    for (facet, value), n in zip(_SUM_NAMES, totals, strict=True):
        facets[facet][value] = n
    # A PCC area counts the matches covered in its whole region and those covered in it alone,
    # as the PCC area filter finds them.
    wide, own = in_area["wide"], in_area["pcc"]
    for pk, code, _, region_id in reference.pcc_areas:
        total = wide.get(region_id, 0) + own.get(pk, 0)
        if total:
            facets["pcc_area"][code] = total
    return count, facets, [(key, price) for _, key, price in sorted(hits)]


def _empty_facets() -> dict[str, dict[str, int]]:
    facets: dict[str, dict[str, int]] = {"lot": {}, "region": {}, "pcc_area": {}}
    for facet, value in _SUM_NAMES:
        facets.setdefault(facet, {})[value] = 0
    return facets


def _load(rows: list[tuple[int, int | None]]) -> list:
    """The page's listings with their organisations and lots, in the given order."""
    if not rows:
        return []
    statement = (
        sa.select(Listing)
        .where(Listing.id.in_([pk for pk, _ in rows]))
        .options(
            joinedload(Listing.organisation),
            joinedload(Listing.lot).joinedload(ArrangementLot.category),
        )
    )
    listings = {listing.id: listing for listing in db.session.scalars(statement)}
    return [Hit(listings[pk], price) for pk, price in rows if pk in listings]


@dataclass
class Hit:
    """A listing in the results, with the price in force today."""

    listing: Listing
    unit_price_pence: int | None


@dataclass
class SearchResult:
    params: SearchParams
    page: Page[Hit]
    facets: dict[str, dict[str, int]]
    reference: Reference

    @property
    def total(self) -> int:
        return self.page.total


def search(
    params: SearchParams,
    *,
    today: date | None = None,
    url_for_page: Callable[[int], str] | None = None,
    reference: Reference | None = None,
) -> SearchResult:
    """One page of visible listings that match, with counts per filter value.

    Three statements whatever the number of results: reference data (unless given), the counts
    with the page's ids, and the page's listings. A page past the end shows the last page.
    """
    today = today or london_today()
    reference = reference or load_reference()
    shape, values, impossible = _shape_and_values(params, reference, today, _dialect())
    per_page = params.per_page
    requested = max(1, min(params.page, MAX_PAGE))
    if impossible:
        total, facets, rows = 0, _empty_facets(), []
    else:
        total, facets, rows = _run(shape, values, reference, requested, per_page)
    pages = max(1, -(-total // per_page))
    page_number = min(requested, pages)
    hits = _load(rows)
    return SearchResult(
        params,
        Page(
            items=hits, page=page_number, per_page=per_page, total=total, url_for_page=url_for_page
        ),
        facets,
        reference,
    )


# ---------------------------------------------------------------------------------------------
# Listing pages and comparison


def _visible() -> sa.Select:
    """Listings buyers may see: published, with an area an active membership covers."""
    return sa.select(Listing).where(
        Listing.status == ListingStatus.PUBLISHED,
        sa.exists().where(_areas.c.listing_id == Listing.id),
    )


def _visible_query() -> sa.Select:
    return _visible().options(
        joinedload(Listing.organisation),
        joinedload(Listing.lot).joinedload(ArrangementLot.category),
        joinedload(Listing.lot).joinedload(ArrangementLot.arrangement),
        selectinload(Listing.prices),
        selectinload(Listing.areas).joinedload(ListingArea.region),
        selectinload(Listing.areas).joinedload(ListingArea.pcc_area),
    )


def visible_listing(listing_id: Any) -> Listing | None:
    """A listing that buyers and the public may see, with what its page shows; else None."""
    pk = parse_id(listing_id)
    if pk is None:
        return None
    return db.session.scalar(_visible_query().where(Listing.id == pk))


@functools.cache
def _buyable_statement() -> sa.Select:
    # Built once: building a statement costs more than running SQLAlchemy's cached compile of it.
    # One statement: a listing has a handful of prices, and a second query to fetch them would
    # cost more than the few repeated columns of a join.
    return (
        _visible()
        .where(Listing.id == sa.bindparam("listing_id"))
        .options(
            joinedload(Listing.organisation),
            joinedload(Listing.lot).joinedload(ArrangementLot.arrangement),
            joinedload(Listing.prices),
        )
    )


def buyable_listing(listing_id: Any) -> Listing | None:
    """A visible listing with what buying it reads (its provider, lot, arrangement and prices),
    without the areas and names its page shows; else None.

    Each worker keeps what it loaded (``page_cache.kept``) under the generations of every topic
    that watches that data: the catalogue (the listing, its prices, its areas, its provider's
    lot memberships), the register (the lot and the arrangement) and the principals (the
    provider organisation). A committed change to any of it is seen by the next request.
    """
    pk = parse_id(listing_id)
    if pk is None:
        return None
    return kept(
        ("buyable-listing", pk),
        [SEARCH_TOPIC, Topic.REGISTER, Topic.PRINCIPALS],
        lambda session: session.scalars(_buyable_statement(), {"listing_id": pk}).unique().first(),
    )


def visible_listings(listing_ids: Iterable[int]) -> dict[int, Listing]:
    """The visible ones among ``listing_ids``, by id."""
    ids = [pk for pk in listing_ids if pk is not None]
    if not ids:
        return {}
    return {
        listing.id: listing
        for listing in db.session.scalars(_visible_query().where(Listing.id.in_(ids))).unique()
    }


def covered_areas(listing_ids: Iterable[int]) -> dict[int, set[tuple[int, int | None]]]:
    """Per listing, the (region id, PCC area id or None) of its areas an active membership covers."""
    ids = list(listing_ids)
    covered: dict[int, set[tuple[int, int | None]]] = {pk: set() for pk in ids}
    if ids:
        statement = sa.select(_areas.c.listing_id, _areas.c.region_id, _areas.c.pcc_area_id).where(
            _areas.c.listing_id.in_(ids)
        )
        for listing_id, region_id, pcc_area_id in db.session.execute(statement):
            covered[listing_id].add((region_id, pcc_area_id))
    return covered


# ---------------------------------------------------------------------------------------------
# Keeping the index up to date

_LISTING_FIELDS = frozenset(
    {
        *FLAG_COLUMNS,
        "eligibility_sex",
        "min_age",
        "max_age",
        "monthly_capacity",
        "title",
        "summary",
        "description",
        "outcomes",
        "status",
        "organisation_id",
        "lot_id",
        "organisation",
        "lot",
    }
)
_MEMBERSHIP_FIELDS = frozenset(
    {
        "status",
        "region_id",
        "pcc_area_id",
        "organisation_id",
        "lot_id",
        "region",
        "pcc_area",
        "organisation",
        "lot",
    }
)


def _document(row, places: str = "") -> dict[str, Any]:
    return {
        "id": row.id,
        "title": " ".join(terms(row.title)),
        "summary": " ".join(terms(row.summary)),
        "body": " ".join(terms(f"{row.description or ''}\n{row.outcomes or ''}")),
        "provider": " ".join(terms(row.provider)),
        "places": places,
    }


def _cover(cover: set[tuple[int, int | None]]) -> set[tuple[int, int | None]]:
    """A listing's covered areas without the PCC areas of a region it is covered in as a whole
    (the region covers them): so each covered place is one row, which the counts per PCC area
    rely on."""
    return {(r, p) for r, p in cover if p is None or (r, None) not in cover}


def _area_arrays(cover: set[tuple[int, int | None]]) -> dict[str, list[int]]:
    """PostgreSQL: the covered areas in the row itself, for the region filter and the counts
    per region and PCC area to read without a lookup."""
    return {
        "region_ids": sorted({r for r, _ in cover}),
        "wide_region_ids": sorted(r for r, p in cover if p is None),
        "pcc_area_ids": sorted(p for _, p in cover if p is not None),
    }


def _place_names(connection: sa.Connection) -> tuple[dict[int, str], dict[int, str], dict]:
    """Region names, PCC area names and each region's PCC area ids, in one statement."""
    region, pcc = ProbationRegion.__table__, PccArea.__table__
    regions: dict[int, str] = {}
    pcc_names: dict[int, str] = {}
    in_region: dict[int, list[int]] = {}
    for pcc_id, pcc_name, region_id, region_name in connection.execute(
        sa.select(pcc.c.id, pcc.c.name, region.c.id, region.c.name).select_from(
            region.outerjoin(pcc, pcc.c.region_id == region.c.id)
        )
    ):
        regions[region_id] = region_name
        if pcc_id is not None:
            pcc_names[pcc_id] = pcc_name
            in_region.setdefault(region_id, []).append(pcc_id)
    return regions, pcc_names, in_region


# "London (Metropolitan Police)": the police force is not a place a buyer searches for.
_ASIDE = re.compile(r"\([^)]*\)")


def _places(cover: set[tuple[int, int | None]], names: tuple[dict, dict, dict]) -> str:
    """The terms of the names of the places a listing is covered in, each once: the regions,
    and the PCC areas in them (a whole region covers each of its PCC areas), as the region and
    PCC area filters find it ("housing Manchester" finds housing in Greater Manchester)."""
    regions, pcc_names, in_region = names
    places: list[str] = []
    for region_id, pcc_area_id in cover:
        places.append(regions.get(region_id, ""))
        pcc_ids = in_region.get(region_id, []) if pcc_area_id is None else [pcc_area_id]
        places.extend(pcc_names.get(pk, "") for pk in pcc_ids)
    found = terms(_ASIDE.sub(" ", " ".join(places)))
    return " ".join(sorted(set(found)))


# Plain text values, so the driver takes them as they are (no per-row parameter building).
_INSERT_FTS = (
    "INSERT INTO listing_search (rowid, title, summary, body, provider, places) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# PostgreSQL: the row's text as a tsvector, from the same folded parts, weighted A, B, C, B, D.
_DOCUMENT = sa.text(
    "setweight(to_tsvector('simple'::regconfig, CAST(:title AS text)), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:summary AS text)), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:body AS text)), 'C') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:provider AS text)), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:places AS text)), 'D')"
)


def _delete_rows(connection: sa.Connection, ids: list[int] | None) -> None:
    sqlite = connection.dialect.name == "sqlite"  # the text is in the FTS5 table, not the rows
    if ids is None:
        if sqlite:
            connection.execute(sa.text("DELETE FROM listing_search"))
        connection.execute(sa.text("DELETE FROM listing_search_areas"))
        connection.execute(sa.text("DELETE FROM listing_search_rows"))
        return
    expanding = sa.bindparam("ids", expanding=True)
    if sqlite:
        statement = sa.text("DELETE FROM listing_search WHERE rowid IN :ids")
        connection.execute(statement.bindparams(expanding), {"ids": ids})
    connection.execute(
        sa.text("DELETE FROM listing_search_areas WHERE listing_id IN :ids").bindparams(expanding),
        {"ids": ids},
    )
    connection.execute(
        sa.text("DELETE FROM listing_search_rows WHERE listing_id IN :ids").bindparams(expanding),
        {"ids": ids},
    )


def _write_rows(connection: sa.Connection, ids: list[int], today: date | None = None) -> int:
    """Index the visible listings among ``ids`` (whose old rows are gone), with the prices in
    force ``today`` (London's by default); how many."""
    rows = connection.execute(
        sa.select(
            _listings.c.id,
            _listings.c.organisation_id,
            _listings.c.lot_id,
            _listings.c.title,
            _listings.c.summary,
            _listings.c.description,
            _listings.c.outcomes,
            _listings.c.eligibility_sex,
            _listings.c.min_age,
            _listings.c.max_age,
            _listings.c.monthly_capacity,
            *(_listings.c[name] for name in FLAG_COLUMNS),
            _lots.c.category_id,
            _organisations.c.name.label("provider"),
            _organisations.c.type.label("provider_type"),
        )
        .join(_organisations, _organisations.c.id == _listings.c.organisation_id)
        .join(_lots, _lots.c.id == _listings.c.lot_id)
        .where(_listings.c.id.in_(ids), _listings.c.status == ListingStatus.PUBLISHED.value)
    ).all()
    if not rows:
        return 0
    listing_areas = ListingArea.__table__
    pcc = PccArea.__table__
    areas: dict[int, list[tuple[int | None, int | None, int | None]]] = {}
    for listing_id, region_id, pcc_area_id, pcc_region_id in connection.execute(
        sa.select(
            listing_areas.c.listing_id,
            listing_areas.c.region_id,
            listing_areas.c.pcc_area_id,
            pcc.c.region_id,
        )
        .outerjoin(pcc, pcc.c.id == listing_areas.c.pcc_area_id)
        .where(listing_areas.c.listing_id.in_([row.id for row in rows]))
    ):
        areas.setdefault(listing_id, []).append((region_id, pcc_area_id, pcc_region_id))
    memberships = LotMembership.__table__
    regions_held: dict[tuple[int, int], set[int]] = {}
    pcc_areas_held: dict[tuple[int, int], set[int]] = {}
    for organisation_id, lot_id, region_id, pcc_area_id in connection.execute(
        sa.select(
            memberships.c.organisation_id,
            memberships.c.lot_id,
            memberships.c.region_id,
            memberships.c.pcc_area_id,
        ).where(
            memberships.c.status == MembershipStatus.ACTIVE.value,
            memberships.c.organisation_id.in_({row.organisation_id for row in rows}),
            memberships.c.lot_id.in_({row.lot_id for row in rows}),
        )
    ):
        key = (organisation_id, lot_id)
        if region_id is not None:
            regions_held.setdefault(key, set()).add(region_id)
        if pcc_area_id is not None:
            pcc_areas_held.setdefault(key, set()).add(pcc_area_id)
    today = today or london_today()
    prices: dict[int, tuple[int, date, date | None]] = {
        listing_id: (price, effective_from, effective_to)
        for listing_id, price, effective_from, effective_to in connection.execute(
            sa.select(
                _prices.c.listing_id,
                _prices.c.unit_price_pence,
                _prices.c.effective_from,
                _prices.c.effective_to,
            ).where(
                _prices.c.listing_id.in_([row.id for row in rows]),
                _prices.c.effective_from <= today,
                sa.or_(_prices.c.effective_to.is_(None), _prices.c.effective_to > today),
            )
        )
    }
    on_postgresql = connection.dialect.name == "postgresql"
    names = _place_names(connection)
    documents, covered, search_rows = [], [], []
    for row in rows:
        key = (row.organisation_id, row.lot_id)
        held_regions = regions_held.get(key, set())
        held_pcc_areas = pcc_areas_held.get(key, set())
        cover: set[tuple[int, int | None]] = set()
        for region_id, pcc_area_id, pcc_region_id in areas.get(row.id, []):
            if region_id is not None and region_id in held_regions:
                cover.add((region_id, None))
            elif pcc_area_id is not None and (
                pcc_area_id in held_pcc_areas or pcc_region_id in held_regions
            ):
                cover.add((pcc_region_id, pcc_area_id))
        cover = _cover(cover)
        if cover:
            documents.append(_document(row, _places(cover, names)))
            search_rows.append(
                {
                    "listing_id": row.id,
                    "category_id": row.category_id,
                    "organisation_id": row.organisation_id,
                    "provider_type": row.provider_type,
                    "provider_key": sort_key(row.provider),
                    "title_key": sort_key(row.title),
                    **{name: bool(getattr(row, name)) for name in FLAG_COLUMNS},
                    "eligibility_sex": row.eligibility_sex,
                    "min_age": row.min_age,
                    "max_age": row.max_age,
                    "monthly_capacity": row.monthly_capacity,
                    **dict(
                        zip(
                            ("price_pence", "price_from", "price_to"),
                            prices.get(row.id, (None, None, None)),
                            strict=True,
                        )
                    ),
                    **(_area_arrays(cover) if on_postgresql else {}),
                }
            )
            covered.extend(
                {"listing_id": row.id, "region_id": r, "pcc_area_id": p}
                for r, p in sorted(cover, key=lambda c: (c[0], c[1] or 0))
            )
    if documents:
        insert_many(connection, _areas, covered)
        if on_postgresql:  # PostgreSQL: the text goes into the row itself
            for search_row, document in zip(search_rows, documents, strict=True):
                search_row.update(title=document["title"], summary=document["summary"])
                search_row.update(body=document["body"], provider=document["provider"])
                search_row.update(places=document["places"])
            connection.execute(_rows.insert().values(document=_DOCUMENT), search_rows)
        else:
            connection.exec_driver_sql(
                _INSERT_FTS,
                [
                    (d["id"], d["title"], d["summary"], d["body"], d["provider"], d["places"])
                    for d in documents
                ],
            )
            insert_many(connection, _rows, search_rows)
    return len(documents)


def reindex_listings(
    connection: sa.Connection,
    listing_ids: Iterable[int] = (),
    *,
    organisation_ids: Iterable[int] = (),
    organisation_lots: Iterable[tuple[int, int]] = (),
    today: date | None = None,
) -> int:
    """Rewrite the index rows of these listings, of these organisations' listings and of the
    listings of these (organisation, lot) pairs, with the prices in force ``today`` (London's
    by default); return how many are visible."""
    ids = {pk for pk in listing_ids if pk is not None}
    organisation_ids = [pk for pk in organisation_ids if pk is not None]
    if organisation_ids:
        ids.update(
            connection.scalars(
                sa.select(_listings.c.id).where(_listings.c.organisation_id.in_(organisation_ids))
            )
        )
    pairs = sorted({pair for pair in organisation_lots if None not in pair})
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        ids.update(
            connection.scalars(
                sa.select(_listings.c.id).where(
                    sa.or_(
                        *(
                            sa.and_(_listings.c.organisation_id == org, _listings.c.lot_id == lot)
                            for org, lot in chunk
                        )
                    )
                )
            )
        )
    ordered = sorted(ids)
    visible = 0
    for start in range(0, len(ordered), _REINDEX_CHUNK):
        chunk = ordered[start : start + _REINDEX_CHUNK]
        _delete_rows(connection, chunk)
        visible += _write_rows(connection, chunk, today)
    return visible


def reindex_all(connection: sa.Connection | None = None) -> int:
    """Rebuild the whole index from the listings; return how many listings are visible."""
    connection = connection or db.session.connection()
    _delete_rows(connection, None)
    ids = list(
        connection.scalars(
            sa.select(_listings.c.id)
            .where(_listings.c.status == ListingStatus.PUBLISHED.value)
            .order_by(_listings.c.id)
        )
    )
    visible = 0
    for start in range(0, len(ids), _REINDEX_CHUNK):
        visible += _write_rows(connection, ids[start : start + _REINDEX_CHUNK])
    analyze(connection)
    return visible


def refresh_prices(connection: sa.Connection | None = None, today: date | None = None) -> int:
    """Rewrite the rows whose stored price is not the one in force ``today`` (a new price has
    taken effect since they were written); return how many. Searches are right without this,
    only slower for those listings, so it runs daily (`flask catalogue refresh-prices`)."""
    connection = connection or db.session.connection()
    today = today or london_today()
    lapsed = list(
        connection.scalars(
            sa.select(_rows.c.listing_id)
            .where(
                sa.or_(
                    _rows.c.price_from.is_(None),
                    _rows.c.price_from > today,
                    _rows.c.price_to <= today,
                )
            )
            .order_by(_rows.c.listing_id)
        )
    )
    if lapsed:
        reindex_listings(connection, lapsed, today=today)
    return len(lapsed)


# What a bulk load fills: the planners need fresh statistics on these to choose the indexes.
_ANALYZED_TABLES = (ROWS_TABLE, AREAS_TABLE, "listing_prices", "listings")


def analyze(connection: sa.Connection) -> None:
    """Refresh the planner's statistics of the search tables and what a search joins them to.

    Right after a bulk load nothing has analysed them yet (autovacuum comes later, SQLite never),
    and the planner then guesses a few rows where there are thousands. Bulk loaders get this from
    ``reindex_all``; it runs in the caller's transaction on both databases.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ANALYZE {', '.join(_ANALYZED_TABLES)}"))
    else:
        for table in _ANALYZED_TABLES:  # the FTS5 table keeps its own statistics
            connection.execute(sa.text(f"ANALYZE {table}"))


for _model in (Listing, ListingArea, ListingPrice, CapacityCommitment):
    watch(_model, SEARCH_TOPIC)  # type: ignore[arg-type]
watch(LotMembership, SEARCH_TOPIC, attributes=_MEMBERSHIP_FIELDS)  # type: ignore[arg-type]
watch(Organisation, SEARCH_TOPIC, attributes={"name", "type"})  # type: ignore[arg-type]
# What a search shows comes from the index, so writing it moves the topic on too: a reindex, a
# bulk load's, or refresh_prices' rewrite of a row whose new price has taken effect. (The FTS5
# table cannot have triggers; its rows are written with these.)
watch(ROWS_TABLE, SEARCH_TOPIC)
watch(AREAS_TABLE, SEARCH_TOPIC)

_PENDING = "catalogue_search_pending"


def _changed(obj: Any, names: frozenset[str]) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(name in attrs and attrs[name].history.has_changes() for name in names)


def _id_of(obj: Any, fk: str, relationship: str) -> int | None:
    value = getattr(obj, fk, None)
    if value is None:
        related = getattr(obj, relationship, None)
        value = getattr(related, "id", None)
    return value


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, flush_context: Any) -> None:
    # after_flush still sees what was new, dirty and deleted, with each attribute's history.
    listing_ids: set[int] = set()
    organisation_ids: set[int] = set()
    organisation_lots: set[tuple[int, int]] = set()
    dirty = session.dirty
    for obj in (*session.new, *session.deleted, *dirty):
        is_dirty = obj in dirty
        if isinstance(obj, Listing):
            if not is_dirty or _changed(obj, _LISTING_FIELDS):
                listing_ids.add(obj.id)
        elif isinstance(obj, ListingPrice):  # the row carries the price in force
            listing_ids.add(_id_of(obj, "listing_id", "listing"))
        elif isinstance(obj, ListingArea):
            listing_ids.add(_id_of(obj, "listing_id", "listing"))
            if is_dirty:
                old = sa.inspect(obj).attrs.listing_id.history.deleted
                listing_ids.update(pk for pk in old if pk is not None)
        elif isinstance(obj, Organisation):
            if is_dirty and _changed(obj, frozenset({"name", "type"})):
                organisation_ids.add(obj.id)
        elif isinstance(obj, LotMembership) and (not is_dirty or _changed(obj, _MEMBERSHIP_FIELDS)):
            organisation_lots.add(
                (_id_of(obj, "organisation_id", "organisation"), _id_of(obj, "lot_id", "lot"))
            )
    listing_ids.discard(None)
    if listing_ids or organisation_ids or organisation_lots:
        pending = session.info.setdefault(_PENDING, (set(), set(), set()))
        pending[0].update(listing_ids)
        pending[1].update(organisation_ids)
        pending[2].update(organisation_lots)


@event.listens_for(Session, "after_flush_postexec")
def _reindex_changes(session: Session, flush_context: Any) -> None:
    # In the flush's own transaction: the index never disagrees with committed data.
    pending = session.info.pop(_PENDING, None)
    if pending:
        listing_ids, organisation_ids, organisation_lots = pending
        reindex_listings(
            session.connection(),
            listing_ids,
            organisation_ids=organisation_ids,
            organisation_lots=organisation_lots,
        )


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
