"""The statements a search runs: the fast path behind ``matches``.

A search's *shape* (the dialect, whether it has text, its sort order, which filters it uses) picks
one statement, built once per shape and cached (``_statement``); only the values bound into it
change from one search to the next. That one statement returns the total, the counts per filter
value and the ids of the page asked for (``matches``); ``queries.search`` then loads the page's
listings. Invariant: the counts and the page agree with the filters as ``params`` states them, on
both databases. Measured by ``make bench`` (search p95, ``benchmarks/search_latency.py``, and the
search page).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles

from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    FORMAT_COLUMNS,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    CapacityCommitment,
    ListingPrice,
    Sex,
)
from marketplace.catalogue.search.params import ProviderType, Reference, SearchParams, SortOrder
from marketplace.catalogue.search.schema import (
    FLAG_COLUMNS,
    SEARCH_TABLE,
    search_areas,
    search_rows,
    search_text,
)
from marketplace.core.db import db

# bm25 weights per FTS5 column (title, summary, body, provider, places); PostgreSQL weighs the
# same parts A, B, C, B and D. A place name matches, but a word in the text ranks first.
BM25_WEIGHTS = (10.0, 4.0, 1.0, 4.0, 0.5)

_prices = ListingPrice.__table__
_commitments = CapacityCommitment.__table__


def matches(
    params: SearchParams, reference: Reference, today: date, dialect: str, page: int
) -> tuple[int, dict[str, dict[str, int]], list[tuple[int, int | None]]]:
    """The total, the counts per filter value and the (listing id, price in force ``today``)
    of page ``page`` (the last page if that is past the end), in order, in one statement."""
    shape, values, impossible = _shape_and_values(params, reference, today, dialect)
    if impossible:
        return 0, empty_facets(), []
    return _run(shape, values, reference, page, params.per_page)


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
            self.conditions.append(search_rows.c.document.op("@@")(tsquery))
            return search_rows, sa.func.ts_rank(search_rows.c.document, tsquery)
        # CROSS JOIN: SQLite then always reads the text index first and looks the rows up,
        # rather than walking the rows and probing the index for each.
        source = _CrossJoin(
            search_text, search_rows, search_rows.c.listing_id == search_text.c.rowid
        )
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
                _prices.c.listing_id == search_rows.c.listing_id,
                _prices.c.effective_from <= today,
                sa.or_(_prices.c.effective_to.is_(None), _prices.c.effective_to > today),
            )
            .correlate(search_rows)
            .scalar_subquery()
        )
        current = sa.and_(
            search_rows.c.price_from <= today,
            sa.or_(search_rows.c.price_to.is_(None), search_rows.c.price_to > today),
        )
        return sa.case((current, search_rows.c.price_pence), else_=in_force)


def _plan(shape: tuple) -> _Plan:
    """The FROM, WHERE and relevance of a search of this shape, its values left to bind."""
    plan = _Plan(shape)
    if shape[1]:
        plan.from_, plan.rank = plan.text_source()
    else:
        plan.from_ = search_rows
    listing_id = search_rows.c.listing_id
    conditions = plan.conditions
    if plan.has("lot"):
        conditions.append(search_rows.c.category_id == _bound("category_id"))
    conditions.extend(_area_conditions(plan))
    for name in ("setting", "format"):
        columns = plan.chosen(name)
        if columns:
            conditions.append(sa.or_(*(search_rows.c[column] for column in columns)))
    if plan.has("sex"):
        conditions.append(
            search_rows.c.eligibility_sex.in_(
                sa.bindparam("sexes", expanding=True, type_=sa.String())
            )
        )
    if plan.has("age"):
        conditions.append(
            sa.or_(search_rows.c.min_age.is_(None), search_rows.c.min_age <= _bound("age"))
        )
        conditions.append(
            sa.or_(search_rows.c.max_age.is_(None), search_rows.c.max_age >= _bound("age"))
        )
    for name in ("risk", "complexity"):
        column = plan.chosen(name)
        if column:
            conditions.append(search_rows.c[column])
    if plan.has("provider_types"):
        conditions.append(
            search_rows.c.provider_type.in_(
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
            .correlate(search_rows)
            .scalar_subquery()
        )
        conditions.append(search_rows.c.monthly_capacity - committed >= _bound("min_available"))
    return plan


def _area_conditions(plan: _Plan) -> list:
    """The region and PCC area filters: a listing covered in the region (or, for a PCC area, in
    that area or in its whole region)."""
    listing_id = search_rows.c.listing_id
    conditions = []
    if plan.has("region") and plan.dialect == "postgresql":
        region = postgresql.array([_bound("region_id")], type_=sa.Integer())
        conditions.append(search_rows.c.region_ids.op("@>")(region))
    elif plan.has("region"):
        conditions.append(
            sa.exists()
            .where(
                search_areas.c.listing_id == listing_id,
                search_areas.c.region_id == _bound("region_id"),
            )
            .correlate(search_rows)
        )
    if plan.has("pcc_area"):
        conditions.append(
            sa.exists()
            .where(
                search_areas.c.listing_id == listing_id,
                sa.or_(
                    search_areas.c.pcc_area_id == _bound("pcc_area_id"),
                    sa.and_(
                        search_areas.c.region_id == _bound("pcc_region_id"),
                        search_areas.c.pcc_area_id.is_(None),
                    ),
                ),
            )
            .correlate(search_rows)
        )
    return conditions


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
    area = search_areas
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
    matched = _matched(plan)
    sums = _facet_sums(matched)
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
    return sa.union_all(by_lot, *by_area, _numbered_page(plan, matched, nothing))


def _matched(plan: _Plan) -> sa.CTE:
    """The matches, read once: what the counts, the sorting and the page need of each."""
    rank = plan.rank
    return (
        sa.select(
            search_rows.c.listing_id.label("id"),
            search_rows.c.category_id,
            search_rows.c.provider_type,
            search_rows.c.eligibility_sex,
            *(search_rows.c[name] for name in FLAG_COLUMNS),
            search_rows.c.provider_key,
            search_rows.c.title_key,
            plan.price().label("price"),
            *(
                [
                    search_rows.c.region_ids,
                    search_rows.c.wide_region_ids,
                    search_rows.c.pcc_area_ids,
                ]
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


def _facet_sums(matched: sa.CTE) -> list:
    """Per ``_SUM_NAMES`` entry, how many of the matches have that flag, sex or provider type."""
    sums: list = []
    for facet, value in _SUM_NAMES:
        if facet == "sex":
            condition = matched.c.eligibility_sex.in_([Sex.ANY.value, value])
        elif facet == "provider_type":
            condition = matched.c.provider_type == ProviderType(value).organisation_type.value
        else:
            condition = matched.c[FLAG_FACETS[facet][value]]
        sums.append(sa.func.sum(sa.case((condition, 1), else_=0)))
    return sums


def _numbered_page(plan: _Plan, matched: sa.CTE, nothing: list) -> sa.Select:
    """The ids and prices of the page asked for (the last page if that is past the end), each
    with its place on the page."""
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
            *([matched.c.rank] if plan.rank is not None else []),
        )
        .order_by(*_order_by(plan, matched.c))
        .limit(per_page)
        .offset(offset)
        .subquery("page_rows")
    )
    # Numbered after the LIMIT, so that the page keeps its order through the UNION.
    return sa.select(
        sa.literal("hit"),
        page_rows.c.id,
        sa.func.row_number().over(order_by=_order_by(plan, page_rows.c)),
        *nothing,
        page_rows.c.price,
    )


def _run(
    shape: tuple, values: dict[str, Any], reference: Reference, page: int, per_page: int
) -> tuple[int, dict[str, dict[str, int]], list]:
    """The total, the counts per filter value and the page's (listing id, price), in order."""
    codes = {
        "lot": {pk: code for pk, code, _ in reference.categories},
        "region": {pk: code for pk, code, _ in reference.regions},
    }
    facets = empty_facets()
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


def empty_facets() -> dict[str, dict[str, int]]:
    facets: dict[str, dict[str, int]] = {"lot": {}, "region": {}, "pcc_area": {}}
    for facet, value in _SUM_NAMES:
        facets.setdefault(facet, {})[value] = 0
    return facets
