"""Reads for the spend and VCSE-share reports: one function per report, returning plain
dataclasses that the page, the CSV, the XLSX and the API all render, so their numbers are the
same numbers.

Spend is read from the ledger's roll-ups, never from the source tables: co-funded spend is
already split per funder there, exactly. Each read takes the coarsest roll-up that has what it
shows (``SpendYear`` by financial year, ``SpendHalfYear`` for the VCSE share of paid spend,
``SpendMonth`` by half-year or month, ``SpendProviderYear`` for providers paid): each is the sum
of the same entries, kept by the same catch-up, so the figures are the same whichever is read.
Every report first brings the ledger up to date (``services.ledger.catch_up``), once a request.

Scope: the authority sees every funder; a commissioning organisation sees only the spend it
funds (its own share of co-funded call-offs); anyone else sees nothing (``report_scope`` is
None and the pages answer 404).

A bounded number of statements whatever the size of the ledger: the ledger's catch-up, one
aggregate per table read, and one statement for the names of what the rows are grouped by.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from marketplace.accounts.models import COMMISSIONER_TYPES, Organisation
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.competitions.models import Bid, Competition, CompetitionFunder
from marketplace.core.clock import financial_year, financial_year_label, london_date
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import decimal_pounds
from marketplace.insight.models import (
    Measure,
    SpendHalfYear,
    SpendMonth,
    SpendProviderYear,
    SpendYear,
)
from marketplace.insight.services import ledger
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# ASCII digits only (int() would read other scripts' digits), matched whole (fullmatch: "$"
# would let a trailing newline through).
PERIOD_CODE = re.compile(r"([0-9]{4})(?:-(H[12]|[0-9]{2}))?")
# Financial years shown when there is no spend yet: this many before the current one.
YEARS_SHOWN = 4
# Longest id or code a filter may carry (anything longer is refused before any lookup).
FILTER_MAX = 20


class Grouping(enum.StrEnum):
    REGION = "region"
    PCC_AREA = "pcc_area"
    CATEGORY = "category"
    FUNDER = "funder"
    PROVIDER_TYPE = "provider_type"

    @property
    def label(self) -> str:
        return {
            "region": "Probation region",
            "pcc_area": "PCC area",
            "category": "Category",
            "funder": "Commissioner",
            "provider_type": "Provider type",
        }[self.value]


class Interval(enum.StrEnum):
    YEAR = "year"
    HALF = "half"
    MONTH = "month"

    @property
    def label(self) -> str:
        return {"year": "Financial year", "half": "Half-year", "month": "Month"}[self.value]


class ProviderType(enum.StrEnum):
    """Exclusive kinds of provider, so that spend by provider type sums to the total."""

    VCSE = "vcse"
    SME = "sme"  # SME and not VCSE
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"vcse": "VCSE", "sme": "SME (not VCSE)", "other": "Other"}[self.value]

    @classmethod
    def of(cls, vcse: bool, sme: bool) -> ProviderType:
        return cls.VCSE if vcse else cls.SME if sme else cls.OTHER


# ---------------------------------------------------------------------------------------------
# Periods


@dataclass(frozen=True)
class Period:
    """A financial year (``2026``: 2026-27), a half-year (``2026-H1``: April to September,
    ``2026-H2``: October to March) or a month (``2026-05``). ``end`` is exclusive."""

    code: str
    label: str
    start: date
    end: date

    @property
    def financial_year(self) -> int:
        return financial_year(self.start)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def year_period(year: int) -> Period:
    return Period(str(year), financial_year_label(year), date(year, 4, 1), date(year + 1, 4, 1))


def half_period(year: int, half: int) -> Period:
    start = date(year, 4, 1) if half == 1 else date(year, 10, 1)
    label = f"April to September {year}" if half == 1 else f"October {year} to March {year + 1}"
    return Period(f"{year}-H{half}", label, start, _add_months(start, 6))


def month_period(month: date) -> Period:
    return Period(
        f"{month.year}-{month.month:02d}",
        f"{MONTH_NAMES[month.month - 1]} {month.year}",
        month,
        _add_months(month, 1),
    )


def period_of(month: date, interval: Interval) -> Period:
    """The period of ``interval`` that the month (its first day) falls in."""
    year = financial_year(month)
    if interval is Interval.YEAR:
        return year_period(year)
    if interval is Interval.HALF:
        return half_period(year, 1 if 4 <= month.month <= 9 else 2)
    return month_period(month)


def parse_period(text: str, today: date) -> Period:
    """A period code (see ``Period``); refused when malformed or not yet started."""
    match = PERIOD_CODE.fullmatch(text)
    if not match:
        raise BusinessRuleViolation({"period": ["Choose a period from the list"]})
    year, part = int(match[1]), match[2]
    if not 2000 <= year <= 2999:
        raise BusinessRuleViolation({"period": ["Choose a period from the list"]})
    if part is None:
        period = year_period(year)
    elif part.startswith("H"):
        period = half_period(year, int(part[1]))
    else:
        if not 1 <= int(part) <= 12:
            raise BusinessRuleViolation({"period": ["Choose a period from the list"]})
        period = month_period(date(year, int(part), 1))
    if period.start > today:
        raise BusinessRuleViolation(
            {"period": [f"{period.label} has not started yet: choose a period that has"]}
        )
    return period


def period_pattern(today: date) -> str:
    """A regular expression of every period code that has started by ``today``: written into
    the API's documentation so a client knows what it may send (the check itself is
    ``parse_period``, which moves on with the calendar)."""
    current = financial_year(today)
    years = "|".join(str(y) for y in range(2000, current + 1))
    halves = [f"({'|'.join(str(y) for y in range(2000, current))})-H[12]", f"{current}-H1"]
    if half_period(current, 2).start <= today:
        halves.append(f"{current}-H2")
    earlier = "|".join(str(y) for y in range(2000, today.year))
    months = [
        f"({earlier})-(0[1-9]|1[0-2])",
        f"{today.year}-({'|'.join(f'{m:02d}' for m in range(1, today.month + 1))})",
    ]
    return f"^({years}|{'|'.join(halves)}|{'|'.join(months)})$"


def period_choices(today: date, first_year: int | None = None) -> list[Period]:
    """The periods a person may pick: each financial year from the first with spend (or a few
    years back) to this one, newest first, each followed by its half-years that have started."""
    current = financial_year(today)
    first = min(first_year or current, current - YEARS_SHOWN)
    choices = []
    for year in range(current, first - 1, -1):
        choices.append(year_period(year))
        choices.extend(
            half for half in (half_period(year, 1), half_period(year, 2)) if half.start <= today
        )
    return choices


# ---------------------------------------------------------------------------------------------
# Scope and filters


@dataclass(frozen=True)
class Scope:
    """Whose spend a reader sees: ``funder_id`` None for every funder (the authority)."""

    organisation_id: int
    funder_id: int | None

    @property
    def national(self) -> bool:
        return self.funder_id is None


def report_scope(organisation: Organisation | None) -> Scope | None:
    """The authority sees every funder, a commissioner only its own funding; anyone else
    nothing (None)."""
    if organisation is None:
        return None
    if organisation.is_authority:
        return Scope(organisation.id, None)
    if organisation.type in COMMISSIONER_TYPES:
        return Scope(organisation.id, organisation.id)
    return None


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class SpendFilters:
    """What a report is filtered and grouped by, checked (``parse_filters``)."""

    scope: Scope
    period: Period | None = None
    region: Option | None = None
    category: Option | None = None
    # The authority may narrow to one commissioner; a commissioner is always its own.
    funder: Option | None = None
    grouping: Grouping = Grouping.REGION
    interval: Interval = Interval.YEAR

    @property
    def funder_id(self) -> int | None:
        if self.scope.funder_id is not None:
            return self.scope.funder_id
        return int(self.funder.value) if self.funder else None

    def args(self) -> dict[str, str]:
        """The filters as query arguments (for links to the downloads)."""
        values = {
            "period": self.period.code if self.period else "",
            "region": self.region.value if self.region else "",
            "category": self.category.value if self.category else "",
            "funder": self.funder.value if self.funder and self.scope.national else "",
            "by": self.grouping.value,
            "interval": self.interval.value,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class FilterChoices:
    regions: list[Option]
    categories: list[Option]
    funders: list[Option]  # empty for a commissioner: it sees only its own
    periods: list[Period]


def filter_choices(scope: Scope, today: date) -> FilterChoices:
    """The options of the filter form (small reads of reference data and commissioners, and
    the first year of spend: so the ledger is brought up to date first)."""
    ledger.catch_up()
    regions = [
        Option(code, name)
        for code, name in db.session.execute(
            sa.select(ProbationRegion.code, ProbationRegion.name).order_by(ProbationRegion.code)
        )
    ]
    categories = [
        Option(code, name)
        for code, name in db.session.execute(
            sa.select(ServiceCategory.code, ServiceCategory.name).order_by(ServiceCategory.name)
        )
    ]
    funders = (
        [
            Option(str(id_), name)
            for id_, name in db.session.execute(
                sa.select(Organisation.id, Organisation.name)
                .where(Organisation.type.in_(COMMISSIONER_TYPES))
                .order_by(Organisation.name, Organisation.id)
            )
        ]
        if scope.national
        else []
    )
    first = db.session.scalar(sa.select(sa.func.min(SpendMonth.financial_year)))
    return FilterChoices(regions, categories, funders, period_choices(today, first))


def _choose(
    raw: str, options: Iterable[Option], field_name: str, message: str, errors: dict
) -> Option | None:
    if not raw:
        return None
    for option in options:
        if option.value == raw:
            return option
    errors[field_name] = [message]
    return None


def parse_filters(
    args: Mapping[str, str],
    scope: Scope,
    today: date | None = None,
    *,
    periods_only: bool = False,
) -> SpendFilters:
    """The filters from a query string (page or API), checked against what exists and what
    this reader may see; ``BusinessRuleViolation`` naming each bad field otherwise.

    A commissioner naming another organisation as the funder is refused like an organisation
    that does not exist ("Choose a commissioner from the list"): its only choice is itself, and
    the message says nothing of whether the other exists. ``periods_only``: the VCSE-share
    report, which takes only the commissioner (it reports every year)."""
    today = today or london_date()
    raw = {k: str(args.get(k) or "") for k in ("period", "region", "category", "funder")}
    raw["by"] = str(args.get("by") or Grouping.REGION.value)
    raw["interval"] = str(args.get("interval") or Interval.YEAR.value)
    errors: dict[str, list[str]] = {}
    for name, value in raw.items():
        if len(value) > FILTER_MAX:
            errors[name] = ["Choose from the list"]
            raw[name] = ""
    period = None
    if raw["period"] and not periods_only:
        try:
            period = parse_period(raw["period"], today)
        except BusinessRuleViolation as error:
            errors.update(error.errors)
    region = category = None
    if not periods_only:
        if raw["region"]:
            region = _lookup(ProbationRegion, raw["region"])
            if region is None:
                errors["region"] = ["Choose a probation region from the list"]
        if raw["category"]:
            category = _lookup(ServiceCategory, raw["category"])
            if category is None:
                errors["category"] = ["Choose a category from the list"]
    funder = None
    if raw["funder"]:
        funder = visible_funder(raw["funder"], scope)
        if funder is None:
            errors["funder"] = ["Choose a commissioner from the list"]
    try:
        grouping = Grouping(raw["by"])
    except ValueError:
        grouping = Grouping.REGION
        errors["by"] = ["Choose what to group spend by"]
    try:
        interval = Interval(raw["interval"])
    except ValueError:
        interval = Interval.YEAR
        errors["interval"] = ["Choose years, half-years or months"]
    if grouping is Grouping.FUNDER and not scope.national:
        grouping = Grouping.REGION  # a commissioner is the only funder it sees
    if errors:
        raise BusinessRuleViolation(errors)
    return SpendFilters(scope, period, region, category, funder, grouping, interval)


def _lookup(model, code: str) -> Option | None:
    row = db.session.execute(sa.select(model.code, model.name).where(model.code == code)).first()
    return Option(row[0], row[1]) if row else None


def visible_funder(raw: str, scope: Scope) -> Option | None:
    """The commissioner with id ``raw`` if this reader may name it (the authority any, a
    commissioner only itself); None otherwise, whether or not it exists."""
    if not raw.isdigit() or len(raw) > FILTER_MAX:
        return None
    if not scope.national and int(raw) != scope.funder_id:
        return None
    row = db.session.execute(
        sa.select(Organisation.id, Organisation.name).where(
            Organisation.id == int(raw), Organisation.type.in_(COMMISSIONER_TYPES)
        )
    ).first()
    return Option(str(row[0]), row[1]) if row else None


# ---------------------------------------------------------------------------------------------
# Spend


@dataclass
class Measures:
    """Committed, invoiced and paid, in pence (VAT included)."""

    committed: int = 0
    invoiced: int = 0
    paid: int = 0

    def add(self, measure: Measure, pence: int) -> None:
        setattr(self, measure.value, getattr(self, measure.value) + pence)

    def plus(self, other: Measures) -> None:
        self.committed += other.committed
        self.invoiced += other.invoiced
        self.paid += other.paid

    @property
    def empty(self) -> bool:
        return not (self.committed or self.invoiced or self.paid)

    def as_dict(self) -> dict[str, int]:
        return {"committed": self.committed, "invoiced": self.invoiced, "paid": self.paid}


@dataclass
class SpendLine:
    """The three measures for one key (a group, a period, or a period and a group)."""

    key: str
    label: str
    measures: Measures = field(default_factory=Measures)
    period: Period | None = None


@dataclass
class SpendReport:
    filters: SpendFilters
    by_group: list[SpendLine]
    by_period: list[SpendLine]
    # One line per period and group with any spend, periods in order then groups by label.
    lines: list[SpendLine]
    total: Measures

    @property
    def empty(self) -> bool:
        return not self.lines


def _where(filters: SpendFilters, table=SpendMonth) -> list:
    conditions = []
    if filters.funder_id is not None:
        conditions.append(table.funder_id == filters.funder_id)
    if table is SpendMonth or table is SpendYear:
        if filters.period is not None:
            if table is SpendYear:  # only ever for a whole financial year (``_spend_table``)
                conditions.append(SpendYear.financial_year == filters.period.financial_year)
            else:
                conditions.append(SpendMonth.month >= filters.period.start)
                conditions.append(SpendMonth.month < filters.period.end)
        if filters.region is not None:
            conditions.append(
                table.region_id
                == sa.select(ProbationRegion.id)
                .where(ProbationRegion.code == filters.region.value)
                .scalar_subquery()
            )
        if filters.category is not None:
            conditions.append(
                table.category_id
                == sa.select(ServiceCategory.id)
                .where(ServiceCategory.code == filters.category.value)
                .scalar_subquery()
            )
    return conditions


GROUP_COLUMNS = {
    Grouping.REGION: ("region_id",),
    Grouping.PCC_AREA: ("pcc_area_id",),
    Grouping.CATEGORY: ("category_id",),
    Grouping.FUNDER: ("funder_id",),
    Grouping.PROVIDER_TYPE: ("provider_vcse", "provider_sme"),
}


def _spend_table(filters: SpendFilters):
    """By financial year over whole years, the yearly roll-up (the monthly rows summed by the
    ledger, a fraction of their number); by half-year or month, or within a half or a month,
    the monthly one."""
    whole_years = filters.period is None or filters.period == year_period(
        filters.period.financial_year
    )
    return SpendYear if filters.interval is Interval.YEAR and whole_years else SpendMonth


NAME_SOURCES = {
    Grouping.REGION: (ProbationRegion, "No probation region"),
    Grouping.PCC_AREA: (PccArea, "No PCC area"),
    Grouping.CATEGORY: (ServiceCategory, "No category"),
    Grouping.FUNDER: (Organisation, "No commissioner"),
}


def _group_names(grouping: Grouping, ids: set) -> dict:
    """Each group key's name (one statement; none for provider types)."""
    if grouping is Grouping.PROVIDER_TYPE:
        return {t.value: t.label for t in ProviderType}
    model, missing = NAME_SOURCES[grouping]
    names: dict = {None: missing}
    real = {i for i in ids if i is not None}
    if real:
        names.update(
            db.session.execute(sa.select(model.id, model.name).where(model.id.in_(real))).all()
        )
    return names


def spend_report(filters: SpendFilters, *, caught_up: bool = False) -> SpendReport:
    """Committed, invoiced and paid by period and group, with totals, for the filters.
    ``caught_up``: the caller has brought the ledger up to date in this request already
    (``filter_choices`` does), with nothing written since."""
    if not caught_up:
        ledger.catch_up()
    table = _spend_table(filters)
    group_columns = [getattr(table, name) for name in GROUP_COLUMNS[filters.grouping]]
    # By year, the roll-up's financial year is enough; by half-year or month, the month.
    time_column = table.financial_year if filters.interval is Interval.YEAR else table.month
    rows = db.session.execute(
        sa.select(
            time_column,
            *group_columns,
            table.measure,
            sa.func.sum(table.amount_pence),
        )
        .where(*_where(filters, table))
        .group_by(time_column, *group_columns, table.measure)
    ).all()

    def group_key(values) -> object:
        if filters.grouping is Grouping.PROVIDER_TYPE:
            return ProviderType.of(bool(values[0]), bool(values[1])).value
        return values[0]

    cells: dict[tuple[str, object], SpendLine] = {}
    periods: dict[str, Period] = {}
    for row in rows:
        when, *group_values, measure, amount = row
        period = (
            year_period(int(when))
            if filters.interval is Interval.YEAR
            else period_of(when, filters.interval)
        )
        periods[period.code] = period
        key = group_key(group_values)
        line = cells.setdefault((period.code, key), SpendLine(str(key), "", period=period))
        line.measures.add(Measure(measure), int(amount or 0))
    names = _group_names(filters.grouping, {key for _, key in cells})
    for (_, key), line in cells.items():
        line.key = "" if key is None else str(key)
        line.label = names.get(key, "Unknown")

    def group_order(line: SpendLine):
        if filters.grouping is Grouping.PROVIDER_TYPE:
            return (list(ProviderType).index(ProviderType(line.key)), "")
        return (line.key == "", line.label.lower())

    lines = sorted(
        (line for line in cells.values() if not line.measures.empty),
        key=lambda line: (line.period.start, *group_order(line)),
    )
    by_group: dict[str, SpendLine] = {}
    by_period: dict[str, SpendLine] = {}
    total = Measures()
    for line in lines:
        by_group.setdefault(line.key, SpendLine(line.key, line.label)).measures.plus(line.measures)
        by_period.setdefault(
            line.period.code, SpendLine(line.period.code, line.period.label, period=line.period)
        ).measures.plus(line.measures)
        total.plus(line.measures)
    return SpendReport(
        filters=filters,
        by_group=sorted(by_group.values(), key=group_order),
        by_period=sorted(by_period.values(), key=lambda line: line.period.start),
        lines=lines,
        total=total,
    )


# ---------------------------------------------------------------------------------------------
# The VCSE share


@dataclass(frozen=True)
class Share:
    """``part`` of ``whole``, exact; None as a percentage when the whole is nothing."""

    part: int
    whole: int

    @property
    def fraction(self) -> Fraction | None:
        return Fraction(self.part, self.whole) if self.whole else None

    @property
    def percent(self) -> Fraction | None:
        return None if self.whole == 0 else Fraction(100 * self.part, self.whole)

    @property
    def percent_text(self) -> str | None:
        """The percentage to one decimal place, halves rounded up ("12.5"); None for nothing."""
        return None if self.percent is None else format_percent(self.percent)


def format_percent(value: Fraction) -> str:
    tenths = Fraction(value) * 10
    negative = tenths < 0
    whole = int(abs(tenths) + Fraction(1, 2))
    text = f"{whole // 10}.{whole % 10}"
    return f"-{text}" if negative and whole else text


@dataclass
class ShareLine:
    """For one period: the total and the VCSE and SME parts (pence, providers or bids)."""

    code: str
    label: str
    total: int = 0
    vcse: int = 0
    sme: int = 0

    @property
    def vcse_share(self) -> Share:
        return Share(self.vcse, self.total)

    @property
    def sme_share(self) -> Share:
        return Share(self.sme, self.total)

    def meets(self, aim_percent: int) -> bool | None:
        percent = self.vcse_share.percent
        return None if percent is None else percent >= aim_percent


@dataclass
class BidLine:
    code: str
    label: str
    received: ShareLine
    won: ShareLine


@dataclass
class VcseShareReport:
    filters: SpendFilters
    aim_percent: int
    period_start_year: int
    period_label: str
    # Paid spend per financial year, for the two-year period, and per half-year (the trend).
    paid_years: list[ShareLine]
    paid_period: ShareLine
    paid_halves: list[ShareLine]
    # Providers paid (net of refunds) per financial year and for the two-year period.
    providers_years: list[ShareLine]
    providers_period: ShareLine
    # Bids received (by the year bids closed) and competitions won (by the year awarded).
    bids_years: list[BidLine]
    bids_period: BidLine

    @property
    def empty(self) -> bool:
        return (
            not any(line.total for line in self.paid_years)
            and not any(line.total for line in self.providers_years)
            and not any(b.received.total or b.won.total for b in self.bids_years)
        )


def two_year_label(start_year: int) -> str:
    return f"{financial_year_label(start_year)} and {financial_year_label(start_year + 1)}"


def vcse_share_report(
    filters: SpendFilters,
    aim_percent: int,
    period_start_year: int,
    today: date | None = None,
    *,
    caught_up: bool = False,
) -> VcseShareReport:
    """The VCSE and SME shares of paid spend, of providers paid and of further-competition bids
    received and won, per financial year, for the two-year period from ``period_start_year``,
    and (paid spend) per half-year.

    A provider reclassified within a year is counted once among that year's providers paid,
    and as VCSE (or SME) if any of that year's payments to it, net of refunds, was made while
    it was classified so: the ledger keeps a provider-year's paid spend apart by the
    classification in force on each payment day. ``caught_up`` as for ``spend_report``."""
    if not caught_up:
        ledger.catch_up()
    today = today or london_date()
    current = financial_year(today)
    funder_id = filters.funder_id

    # Paid spend by half-year and classification, from the ledger's half-year roll-up (the
    # report's finest period; years and the two-year period are sums of halves): one statement.
    # Only the funder narrows it (the filters are ``periods_only``).
    half_rows = db.session.execute(
        sa.select(
            SpendHalfYear.financial_year,
            SpendHalfYear.half,
            SpendHalfYear.provider_vcse,
            SpendHalfYear.provider_sme,
            sa.func.sum(SpendHalfYear.amount_pence),
        )
        .where(SpendHalfYear.measure == Measure.PAID, *_where(filters, SpendHalfYear))
        .group_by(
            SpendHalfYear.financial_year,
            SpendHalfYear.half,
            SpendHalfYear.provider_vcse,
            SpendHalfYear.provider_sme,
        )
    ).all()
    first_year = min([int(row[0]) for row in half_rows] + [period_start_year, current])
    years = list(range(first_year, max(current, period_start_year + 1) + 1))
    period_years = (period_start_year, period_start_year + 1)

    paid_years = {y: ShareLine(str(y), financial_year_label(y)) for y in years}
    paid_halves: dict[str, ShareLine] = {}
    for year in years:
        for half in (1, 2):
            period = half_period(year, half)
            if period.start <= today:
                paid_halves[period.code] = ShareLine(period.code, period.label)
    paid_period = ShareLine(f"{period_start_year}-P2", two_year_label(period_start_year))
    for year, half, vcse, sme, amount in half_rows:
        amount, year = int(amount or 0), int(year)
        targets = [paid_years.get(year), paid_halves.get(half_period(year, int(half)).code)]
        if year in period_years:
            targets.append(paid_period)
        for line in targets:
            if line is None:
                continue
            line.total += amount
            line.vcse += amount if vcse else 0
            line.sme += amount if sme else 0

    providers_years, providers_period = _providers_paid(funder_id, years, period_years)
    bids_years, bids_period = _bids(funder_id, years, period_years, period_start_year)
    return VcseShareReport(
        filters=filters,
        aim_percent=aim_percent,
        period_start_year=period_start_year,
        period_label=two_year_label(period_start_year),
        paid_years=list(paid_years.values()),
        paid_period=paid_period,
        paid_halves=list(paid_halves.values()),
        providers_years=providers_years,
        providers_period=providers_period,
        bids_years=bids_years,
        bids_period=bids_period,
    )


def _provider_counts(per_provider) -> sa.Select:
    """Providers paid (net paid above nothing), and of them those paid while VCSE or SME."""
    paid = per_provider.c.paid > 0
    return sa.select(
        sa.func.sum(sa.case((paid, 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(paid, per_provider.c.vcse_paid > 0), 1), else_=0)),
        sa.func.sum(sa.case((sa.and_(paid, per_provider.c.sme_paid > 0), 1), else_=0)),
    )


def _providers_paid(
    funder_id: int | None, years: list[int], period_years: tuple[int, int]
) -> tuple[list[ShareLine], ShareLine]:
    """One statement: each provider's paid spend per financial year, summed once, then counted
    per year and for the two-year period (a provider paid in both years is one provider of the
    period: its two years' sums added, as paid spend adds up exactly)."""
    where = [SpendProviderYear.funder_id == funder_id] if funder_id is not None else []
    per_year = (
        sa.select(
            SpendProviderYear.financial_year.label("year"),
            SpendProviderYear.provider_id.label("provider_id"),
            sa.func.sum(SpendProviderYear.paid_pence).label("paid"),
            sa.func.sum(
                sa.case((SpendProviderYear.provider_vcse, SpendProviderYear.paid_pence), else_=0)
            ).label("vcse_paid"),
            sa.func.sum(
                sa.case((SpendProviderYear.provider_sme, SpendProviderYear.paid_pence), else_=0)
            ).label("sme_paid"),
        )
        .where(*where)
        .group_by(SpendProviderYear.financial_year, SpendProviderYear.provider_id)
        .cte("provider_years")
    )
    per_provider = (
        sa.select(
            sa.func.sum(per_year.c.paid).label("paid"),
            sa.func.sum(per_year.c.vcse_paid).label("vcse_paid"),
            sa.func.sum(per_year.c.sme_paid).label("sme_paid"),
        )
        .where(per_year.c.year.in_(period_years))
        .group_by(per_year.c.provider_id)
        .subquery()
    )
    # The period's row has no year (NULL): one row whatever there is, as an aggregate is.
    counted = sa.union_all(
        _provider_counts(per_year).add_columns(per_year.c.year).group_by(per_year.c.year),
        _provider_counts(per_provider).add_columns(sa.null().label("year")),
    )
    lines = {y: ShareLine(str(y), financial_year_label(y)) for y in years}
    period = ShareLine(f"{period_years[0]}-P2", two_year_label(period_years[0]))
    for total, vcse, sme, year in db.session.execute(counted):
        line = period if year is None else lines.get(int(year))
        if line is not None:
            line.total, line.vcse, line.sme = int(total or 0), int(vcse or 0), int(sme or 0)
    return list(lines.values()), period


def _bids(
    funder_id: int | None, years: list[int], period_years: tuple[int, int], start_year: int
) -> tuple[list[BidLine], BidLine]:
    """Bids received in further competitions (counted when bids close, by the year they
    closed) and competitions won (by the year awarded, by the winning bidder's declared
    sector and size): one statement. A commissioner sees the competitions it leads or funds."""
    winner = aliased(Bid)
    query = (
        sa.select(
            Competition.closed_at,
            Competition.bids_received,
            Competition.bids_from_vcse,
            Competition.bids_from_sme,
            Competition.awarded_at,
            winner.bidder_is_vcse,
            winner.bidder_is_sme,
        )
        .outerjoin(winner, winner.id == Competition.winning_bid_id)
        .where(Competition.bids_received.is_not(None))
    )
    if funder_id is not None:
        query = query.where(
            sa.or_(
                Competition.buyer_id == funder_id,
                sa.exists().where(
                    CompetitionFunder.competition_id == Competition.id,
                    CompetitionFunder.organisation_id == funder_id,
                ),
            )
        )
    lines = {
        y: BidLine(
            str(y),
            financial_year_label(y),
            ShareLine(str(y), financial_year_label(y)),
            ShareLine(str(y), financial_year_label(y)),
        )
        for y in years
    }
    label = two_year_label(start_year)
    period = BidLine(f"{start_year}-P2", label, ShareLine(label, label), ShareLine(label, label))
    for closed_at, received, vcse, sme, awarded_at, won_vcse, won_sme in db.session.execute(query):
        if closed_at is not None:
            year = financial_year(london_date(closed_at))
            targets = [lines.get(year)] + ([period] if year in period_years else [])
            for line in targets:
                if line is not None:
                    line.received.total += received or 0
                    line.received.vcse += vcse or 0
                    line.received.sme += sme or 0
        if awarded_at is not None:
            year = financial_year(london_date(awarded_at))
            targets = [lines.get(year)] + ([period] if year in period_years else [])
            for line in targets:
                if line is not None:
                    line.won.total += 1
                    line.won.vcse += 1 if won_vcse else 0
                    line.won.sme += 1 if won_sme else 0
    return list(lines.values()), period


# ---------------------------------------------------------------------------------------------
# The tables the downloads are made of (CSV and XLSX alike)


def spend_rows(report: SpendReport) -> list[list]:
    """The header and a row per period and group, then the total (pence in the last three
    columns, pounds before: a machine can check one against the other)."""
    filters = report.filters
    header = [
        filters.interval.label,
        filters.grouping.label,
        "Committed (£)",
        "Invoiced (£)",
        "Paid (£)",
        "Committed (pence)",
        "Invoiced (pence)",
        "Paid (pence)",
    ]
    rows: list[list] = [header]
    for line in report.lines:
        rows.append([line.period.label, safe_cell(line.label), *_money(line.measures)])
    rows.append(["Total", "", *_money(report.total)])
    return rows


def _money(measures: Measures) -> list:
    values = (measures.committed, measures.invoiced, measures.paid)
    return [*(decimal_pounds(v) for v in values), *values]


def vcse_rows(report: VcseShareReport) -> list[list]:
    """The header and a row per figure and period: what, period, VCSE, SME, total, the VCSE
    and SME shares in per cent (one decimal) or "no spend", and the aim."""
    header = [
        "Figure",
        "Period",
        "VCSE",
        "SME",
        "Total",
        "VCSE share (%)",
        "SME share (%)",
        "Aim for the VCSE share (%)",
    ]
    rows: list[list] = [header]
    aim = str(report.aim_percent)

    def add(figure: str, line: ShareLine, empty: str) -> None:
        rows.append(
            [
                figure,
                line.label,
                line.vcse,
                line.sme,
                line.total,
                line.vcse_share.percent_text or empty,
                line.sme_share.percent_text or empty,
                aim,
            ]
        )

    for line in [*report.paid_years, report.paid_period]:
        add("Paid spend (pence)", line, "no spend")
    for line in report.paid_halves:
        add("Paid spend by half-year (pence)", line, "no spend")
    for line in [*report.providers_years, report.providers_period]:
        add("Providers paid", line, "no providers paid")
    for bids in [*report.bids_years, report.bids_period]:
        add("Bids received", _labelled(bids.received, bids.label), "no bids")
    for bids in [*report.bids_years, report.bids_period]:
        add("Competitions won", _labelled(bids.won, bids.label), "no awards")
    return rows


def _labelled(line: ShareLine, label: str) -> ShareLine:
    return ShareLine(line.code, label, line.total, line.vcse, line.sme)
