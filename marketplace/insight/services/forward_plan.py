"""A commissioner's forward plan: planned further competitions and significant call-offs by lot
(service category), area, value band and quarter of a financial year, published so that
providers see what is coming and can apply to the lot in time.

Rules:
- only buyers and approvers of a commissioning organisation plan, for that organisation; another
  organisation's entry is not found;
- the area is a probation region or a PCC area the organisation may buy for: its own PCC area
  for a PCC, its region or a PCC area in it for an organisation with a region, else any region
  (or PCC area in one) a live arrangement covers;
- the quarter (1: April to June ... 4: January to March) must not have ended when an entry is
  added, changed or published, and lies at most ``YEARS_AHEAD`` financial years ahead;
- a draft may be changed; draft -> published -> withdrawn (``PLAN_TRANSITIONS``), each move once
  however many requests ask (the row is locked first: ``marketplace.core.state``). Publishing
  emails the administrators of every provider with an active membership of the lot in the area;
  withdrawing a published entry emails them again, with the reason (kept in the audit event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
    arrangement_regions,
)
from marketplace.accreditation.services.applications import provider_admins
from marketplace.core import audit
from marketplace.core.clock import financial_year, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.insight.models import (
    PLAN_TRANSITIONS,
    PlannedProcurement,
    PlannedRoute,
    PlanStatus,
    ValueBand,
)
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

PLANNER_ROLES = frozenset({Role.BUYER, Role.APPROVER})
YEARS_AHEAD = 3
TITLE_MAX = 200
DESCRIPTION_MAX = 4000
REASON_MAX = 1000
FIELDS = [
    "title",
    "description",
    "category_id",
    "region_id",
    "pcc_area_id",
    "route",
    "value_band",
    "financial_year",
    "quarter",
    "status",
]
QUARTER_MONTHS = {1: "April to June", 2: "July to September", 3: "October to December"}


def quarter_label(year: int, quarter: int) -> str:
    """ "Q2 2026-27 (July to September 2026)"."""
    months = QUARTER_MONTHS.get(quarter, "January to March")
    calendar_year = year + 1 if quarter == 4 else year
    return f"Q{quarter} {year}-{str(year + 1)[-2:]} ({months} {calendar_year})"


def quarter_end(year: int, quarter: int) -> date:
    """The last day of quarter ``quarter`` of financial year ``year``."""
    return {
        1: date(year, 6, 30),
        2: date(year, 9, 30),
        3: date(year, 12, 31),
        4: date(year + 1, 3, 31),
    }[quarter]


def current_quarter(today: date) -> tuple[int, int]:
    """(financial year, quarter) of ``today``."""
    return financial_year(today), {4: 1, 5: 1, 6: 1, 7: 2, 8: 2, 9: 2, 10: 3, 11: 3, 12: 3}.get(
        today.month, 4
    )


# ---------------------------------------------------------------------------------------------
# Who may plan, and where


def can_plan(user: User | None, organisation: Organisation | None) -> bool:
    """A buyer or approver of an (active) commissioning organisation."""
    return bool(
        user is not None
        and user.is_authenticated
        and organisation is not None
        and organisation.active
        and organisation.type.is_commissioner
        and user.roles_in(organisation) & PLANNER_ROLES
    )


def owned_plan(
    user: User, organisation: Organisation | None, plan_id: object
) -> PlannedProcurement:
    """An entry of the organisation's own plan, for one of its planners; else NotFound."""
    plan = db.session.get(PlannedProcurement, plan_id) if isinstance(plan_id, int) else None
    if (
        plan is None
        or organisation is None
        or plan.organisation_id != organisation.id
        or not can_plan(user, organisation)
    ):
        raise NotFound("No planned procurement of yours has that id")
    return plan


def _covered_region_ids() -> set[int]:
    return set(
        db.session.scalars(
            sa.select(arrangement_regions.c.region_id)
            .join(Arrangement, Arrangement.id == arrangement_regions.c.arrangement_id)
            .where(Arrangement.status == ArrangementStatus.LIVE)
        )
    )


def plannable_areas(
    organisation: Organisation,
) -> tuple[list[ProbationRegion], list[PccArea]]:
    """The regions and PCC areas the organisation may buy for (see the module)."""
    if organisation.type is OrganisationType.PCC and organisation.pcc_area_id is not None:
        pcc = db.session.get(PccArea, organisation.pcc_area_id)
        return [], [pcc] if pcc is not None else []
    region_ids = (
        {organisation.region_id} if organisation.region_id is not None else _covered_region_ids()
    )
    regions = list(
        db.session.scalars(
            sa.select(ProbationRegion)
            .where(ProbationRegion.id.in_(region_ids or [0]))
            .order_by(ProbationRegion.name)
        )
    )
    pccs = list(
        db.session.scalars(
            sa.select(PccArea)
            .where(PccArea.region_id.in_(region_ids or [0]))
            .order_by(PccArea.name)
        )
    )
    return regions, pccs


def plannable_categories() -> list[ServiceCategory]:
    """The service categories that are lots of a live arrangement."""
    return list(
        db.session.scalars(
            sa.select(ServiceCategory)
            .where(
                ServiceCategory.id.in_(
                    sa.select(ArrangementLot.category_id)
                    .join(Arrangement, Arrangement.id == ArrangementLot.arrangement_id)
                    .where(Arrangement.status == ArrangementStatus.LIVE)
                )
            )
            .order_by(ServiceCategory.name)
        )
    )


# ---------------------------------------------------------------------------------------------
# Adding and changing drafts


@dataclass
class PlanDetails:
    """What a planner types: ``area`` is "region:<id>" or "pcc:<id>"; numbers may come as text
    from a form (anything unreadable is refused by ``check_details``)."""

    title: str = ""
    description: str = ""
    category_id: object = None
    area: str = ""
    route: object = None
    value_band: object = None
    financial_year: object = None
    quarter: object = None


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def _enum(kind, value):
    try:
        return kind(value.value if isinstance(value, kind) else str(value or ""))
    except ValueError:
        return None


def check_details(
    organisation: Organisation, details: PlanDetails, today: date
) -> tuple[dict, dict[str, list[str]]]:
    """The columns the details give, and the errors by field (empty when they may be saved)."""
    errors: dict[str, list[str]] = {}
    values: dict = {}
    title = (details.title or "").strip()
    if not title:
        errors["title"] = ["Enter a title"]
    elif len(title) > TITLE_MAX:
        errors["title"] = [f"The title must be {TITLE_MAX} characters or fewer"]
    values["title"] = title
    description = (details.description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = [f"The description must be {DESCRIPTION_MAX} characters or fewer"]
    values["description"] = description

    category_id = _whole(details.category_id)
    if category_id is None or category_id not in {c.id for c in plannable_categories()}:
        errors["category_id"] = ["Choose a lot from the list"]
    values["category_id"] = category_id

    regions, pccs = plannable_areas(organisation)
    kind, _, raw = (details.area or "").partition(":")
    area_id = _whole(raw)
    values["region_id"] = values["pcc_area_id"] = None
    if kind == "region" and area_id in {r.id for r in regions}:
        values["region_id"] = area_id
    elif kind == "pcc" and area_id in {p.id for p in pccs}:
        values["pcc_area_id"] = area_id
    else:
        errors["area"] = ["Choose an area your organisation buys for, from the list"]

    route = _enum(PlannedRoute, details.route)
    if route is None:
        errors["route"] = ["Choose a further competition or a call-off from the rate card"]
    values["route"] = route
    band = _enum(ValueBand, details.value_band)
    if band is None:
        errors["value_band"] = ["Choose a value band from the list"]
    values["value_band"] = band

    year, quarter = _whole(details.financial_year), _whole(details.quarter)
    this_year = financial_year(today)
    if year is None or not this_year <= year <= this_year + YEARS_AHEAD:
        errors["financial_year"] = [
            f"Choose a financial year from {this_year}-{str(this_year + 1)[-2:]} to "
            f"{this_year + YEARS_AHEAD}-{str(this_year + YEARS_AHEAD + 1)[-2:]}"
        ]
    elif quarter not in (1, 2, 3, 4):
        errors["quarter"] = ["Choose a quarter from 1 to 4"]
    elif quarter_end(year, quarter) < today:
        errors["quarter"] = [
            f"{quarter_label(year, quarter)} has already ended: choose a quarter that has not"
        ]
    values["financial_year"], values["quarter"] = year, quarter
    return values, errors


def add_plan(
    actor: User, organisation: Organisation, details: PlanDetails, *, today: date | None = None
) -> PlannedProcurement:
    """Add a draft entry to the organisation's forward plan."""
    if not can_plan(actor, organisation):
        raise NotFound("Not found")
    values, errors = check_details(organisation, details, today or london_date())
    if errors:
        raise BusinessRuleViolation(errors)
    plan = PlannedProcurement(
        organisation_id=organisation.id, created_by_id=actor.id, status=PlanStatus.DRAFT, **values
    )
    db.session.add(plan)
    db.session.flush()
    audit.record(actor, "planned_procurement.added", plan, after=audit.snapshot(plan, FIELDS))
    return plan


def edit_plan(
    actor: User, plan: PlannedProcurement, details: PlanDetails, *, today: date | None = None
) -> PlannedProcurement:
    """Change a draft entry (a published one is withdrawn and added again instead)."""
    lock(plan)
    if plan.status is not PlanStatus.DRAFT:
        raise BusinessRuleViolation(
            {"status": [f"This entry is {plan.status.value}: only a draft can be changed"]}
        )
    values, errors = check_details(plan.organisation, details, today or london_date())
    if errors:
        raise BusinessRuleViolation(errors)
    before = audit.snapshot(plan, FIELDS)
    for name, value in values.items():
        setattr(plan, name, value)
    db.session.flush()
    audit.record(
        actor,
        "planned_procurement.changed",
        plan,
        before=before,
        after=audit.snapshot(plan, FIELDS),
    )
    return plan


# ---------------------------------------------------------------------------------------------
# Publishing and withdrawing


def providers_to_tell(plan: PlannedProcurement) -> list[Organisation]:
    """Providers with an active membership of the plan's lot (in a live arrangement) in its
    area: a region reaches members of the region and of its PCC areas; a PCC area reaches its
    own members and those of its whole region."""
    if plan.region_id is not None:
        in_area = sa.or_(
            LotMembership.region_id == plan.region_id,
            LotMembership.pcc_area_id.in_(
                sa.select(PccArea.id).where(PccArea.region_id == plan.region_id)
            ),
        )
    else:
        in_area = sa.or_(
            LotMembership.pcc_area_id == plan.pcc_area_id,
            LotMembership.region_id.in_(
                sa.select(PccArea.region_id).where(PccArea.id == plan.pcc_area_id)
            ),
        )
    return list(
        db.session.scalars(
            sa.select(Organisation)
            .where(
                Organisation.active.is_(True),
                Organisation.id.in_(
                    sa.select(LotMembership.organisation_id)
                    .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
                    .join(Arrangement, Arrangement.id == LotMembership.arrangement_id)
                    .where(
                        LotMembership.status == MembershipStatus.ACTIVE,
                        Arrangement.status == ArrangementStatus.LIVE,
                        ArrangementLot.category_id == plan.category_id,
                        in_area,
                    )
                ),
            )
            .order_by(Organisation.id)
        )
    )


def _tell_providers(plan: PlannedProcurement, template: str, reason: str = "") -> int:
    sent = 0
    for organisation in providers_to_tell(plan):
        for user in provider_admins(organisation):
            queue_email(
                user.email,
                template,
                user=user,
                organisation=organisation,
                plan=plan,
                when=quarter_label(plan.financial_year, plan.quarter),
                reason=reason,
            )
            sent += 1
    return sent


def publish_plan(
    actor: User, plan: PlannedProcurement, *, today: date | None = None
) -> PlannedProcurement:
    """Publish a draft: anyone may see it, and the lot's members in its area are told. Locked
    first, so two clicks publish once and send one set of emails (the second click is a
    ``TransitionConflict``)."""
    check_transition(plan, PlanStatus.PUBLISHED, PLAN_TRANSITIONS, noun="planned procurement")
    today = today or london_date()
    if quarter_end(plan.financial_year, plan.quarter) < today:
        raise BusinessRuleViolation(
            {
                "quarter": [
                    f"{quarter_label(plan.financial_year, plan.quarter)} has already ended: "
                    "change the quarter before you publish"
                ]
            }
        )
    before = audit.snapshot(plan, FIELDS)
    transition(plan, PlanStatus.PUBLISHED, PLAN_TRANSITIONS, noun="planned procurement")
    plan.published_at = utcnow()
    db.session.flush()
    told = _tell_providers(plan, "forward_plan_published")
    audit.record(
        actor,
        "planned_procurement.published",
        plan,
        before=before,
        after={**audit.snapshot(plan, FIELDS), "emails": told},
    )
    return plan


def withdraw_plan(actor: User, plan: PlannedProcurement, reason: str) -> PlannedProcurement:
    """Withdraw a draft or published entry, with a reason; if it was published, the providers
    told of it are told it is withdrawn. Once, however many clicks."""
    reason = (reason or "").strip()
    check_transition(plan, PlanStatus.WITHDRAWN, PLAN_TRANSITIONS, noun="planned procurement")
    if not reason:
        raise BusinessRuleViolation({"reason": ["Say why you are withdrawing it"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX} characters or fewer"]}
        )
    before = audit.snapshot(plan, FIELDS)
    was = transition(plan, PlanStatus.WITHDRAWN, PLAN_TRANSITIONS, noun="planned procurement")
    plan.withdrawn_at = utcnow()
    db.session.flush()
    told = (
        _tell_providers(plan, "forward_plan_withdrawn", reason)
        if was is PlanStatus.PUBLISHED
        else 0
    )
    audit.record(
        actor,
        "planned_procurement.withdrawn",
        plan,
        before=before,
        after={**audit.snapshot(plan, FIELDS), "reason": reason, "emails": told},
    )
    return plan
