"""Read-only loaders for the accounts pages: teams, organisations, API tokens, audit log."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import (
    ApiToken,
    ClassificationSource,
    Invitation,
    Membership,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    Role,
    User,
)
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.cache import Topic, kept
from marketplace.core.clock import LONDON, utcnow
from marketplace.core.db import db, parse_id

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of results, with what the ``pagination`` macro needs."""

    items: list[T]
    page: int
    per_page: int
    total: int
    url_for_page: Callable[[int], str] | None = field(default=None, repr=False)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_url(self) -> str | None:
        return self.url_for_page(self.page - 1) if self.has_prev and self.url_for_page else None

    @property
    def next_url(self) -> str | None:
        return self.url_for_page(self.page + 1) if self.has_next and self.url_for_page else None


def page_number(raw: Any) -> int:
    """A page number from a query string: anything that is not a positive integer is page 1."""
    text = str(raw or "").strip()
    if not text.isdigit() or len(text) > 6:
        return 1
    return max(1, int(text))


def paginate(
    query: sa.Select,
    page: int,
    per_page: int,
    *,
    url_for_page: Callable[[int], str] | None = None,
    scalars: bool = True,
    total: int | None = None,
) -> Page:
    """Run ``query`` for one page; a page past the end shows the last page.

    ``total`` saves the count query where the caller can count more cheaply than ``query`` can.
    """
    if total is None:
        total = (
            db.session.scalar(
                sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
            )
            or 0
        )
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    limited = query.limit(per_page).offset((page - 1) * per_page)
    items = list(db.session.scalars(limited)) if scalars else list(db.session.execute(limited))
    return Page(items=items, page=page, per_page=per_page, total=total, url_for_page=url_for_page)


# ---------------------------------------------------------------------------------------------
# Teams


@dataclass
class TeamMember:
    user: User
    roles: list[Role]
    # A buyer's spend limit and an approver's approval limit (None: the default / no limit).
    spend_limit_pence: int | None = None
    approval_limit_pence: int | None = None


# Built once (emails go out on most writes): building a statement costs more than running
# SQLAlchemy's cached compile of it.
_PEOPLE_WITH_ROLES = (
    sa.select(User)
    .where(
        User.id.in_(
            sa.select(Membership.user_id).where(
                Membership.organisation_id == sa.bindparam("organisation_id"),
                Membership.role.in_(sa.bindparam("roles", expanding=True)),
            )
        ),
        User.active.is_(True),
    )
    .order_by(User.id)
)


def people_with_roles(organisation_id: int, roles: Iterable[Role]) -> list[User]:
    """The organisation's active people holding any of ``roles`` (to email them).

    Most writes email someone: each worker keeps the answer until a person, membership or
    organisation changes (``Topic.PRINCIPALS``)."""
    wanted = sorted(set(roles))
    values = {"organisation_id": organisation_id, "roles": wanted}
    return kept(
        ("people-with-roles", organisation_id, *wanted),
        [Topic.PRINCIPALS],
        lambda session: list(session.scalars(_PEOPLE_WITH_ROLES, values)),
    )


def approvers_and_limits(organisation_id: int) -> list[tuple[User, int | None]]:
    """The organisation's active approvers, each with their approval limit (None: no limit),
    read in the caller's transaction (money is never read from a worker's copy)."""
    return [
        (user, limit)
        for user, limit in db.session.execute(
            sa.select(User, Membership.approval_limit_pence)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organisation_id == organisation_id,
                Membership.role == Role.APPROVER,
                User.active.is_(True),
            )
            .order_by(User.name, User.id)
        )
    ]


def get_organisation(organisation_id: Any) -> Organisation | None:
    pk = parse_id(organisation_id)
    return None if pk is None else db.session.get(Organisation, pk)


def get_member(organisation: Organisation, user_id: int) -> User | None:
    """The user if they hold a role in ``organisation``, else None."""
    return db.session.scalar(
        sa.select(User)
        .where(
            User.id == user_id,
            User.id.in_(
                sa.select(Membership.user_id).where(Membership.organisation_id == organisation.id)
            ),
        )
        .options(selectinload(User.memberships).selectinload(Membership.organisation))
    )


def team_members(
    organisation: Organisation,
    page: int = 1,
    per_page: int = 25,
    *,
    url_for_page: Callable[[int], str] | None = None,
) -> Page[TeamMember]:
    """The people in an organisation, by name, each with their roles there."""
    query = (
        sa.select(User)
        .where(
            User.id.in_(
                sa.select(Membership.user_id).where(Membership.organisation_id == organisation.id)
            )
        )
        .order_by(sa.func.lower(User.name), User.id)
    )
    result = paginate(query, page, per_page, url_for_page=url_for_page)
    roles: dict[int, list[Role]] = {}
    limits: dict[tuple[int, Role], int | None] = {}
    if result.items:
        for user_id, role, spend, approval in db.session.execute(
            sa.select(
                Membership.user_id,
                Membership.role,
                Membership.spend_limit_pence,
                Membership.approval_limit_pence,
            ).where(
                Membership.organisation_id == organisation.id,
                Membership.user_id.in_([u.id for u in result.items]),
            )
        ):
            roles.setdefault(user_id, []).append(role)
            limits[user_id, role] = spend if role == Role.BUYER else approval
    order = list(Role)
    result.items = [
        TeamMember(
            user=u,
            roles=sorted(roles.get(u.id, []), key=order.index),
            spend_limit_pence=limits.get((u.id, Role.BUYER)),
            approval_limit_pence=limits.get((u.id, Role.APPROVER)),
        )
        for u in result.items
    ]
    return result


def team_members_by_id(organisation: Organisation, user_ids: list[int] | None) -> list[dict]:
    """The organisation's people (``user_ids``: only these) with their roles and limits, for
    the API."""
    where = [Membership.organisation_id == organisation.id]
    if user_ids is not None:
        where.append(Membership.user_id.in_(user_ids))
    people: dict[int, dict] = {}
    order = list(Role)
    for user, membership in db.session.execute(
        sa.select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(*where)
        .order_by(sa.func.lower(User.name), User.id)
    ):
        person = people.setdefault(
            user.id,
            {"user_id": user.id, "name": user.name, "email": user.email, "roles": []},
        )
        person["roles"] = sorted([*person["roles"], membership.role], key=order.index)
        if membership.role == Role.BUYER:
            person["spend_limit_pence"] = membership.spend_limit_pence
        elif membership.role == Role.APPROVER:
            person["approval_limit_pence"] = membership.approval_limit_pence
    return list(people.values())


def pending_invitations(organisation: Organisation) -> list[Invitation]:
    """Invitations not yet accepted, withdrawn or expired, newest first."""
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.organisation_id == organisation.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .options(selectinload(Invitation.invited_by))
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def get_invitation(invitation_id: int) -> Invitation | None:
    return db.session.get(Invitation, invitation_id)


# ---------------------------------------------------------------------------------------------
# Organisations


@dataclass
class OrganisationRow:
    organisation: Organisation
    people: int


def organisations(
    *,
    type: OrganisationType | None = None,
    active: bool | None = None,
    name: str | None = None,
    page: int = 1,
    per_page: int = 25,
    url_for_page: Callable[[int], str] | None = None,
) -> Page[OrganisationRow]:
    """Organisations matching the filters, by name, with how many people each has."""
    people = (
        sa.select(sa.func.count(sa.distinct(Membership.user_id)))
        .where(Membership.organisation_id == Organisation.id)
        .correlate(Organisation)
        .scalar_subquery()
    )
    query = sa.select(Organisation, people.label("people")).order_by(
        sa.func.lower(Organisation.name), Organisation.id
    )
    if type is not None:
        query = query.where(Organisation.type == type)
    if active is not None:
        query = query.where(Organisation.active.is_(active))
    if name:
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(sa.func.lower(Organisation.name).like(f"%{escaped}%", escape="\\"))
    result = paginate(query, page, per_page, url_for_page=url_for_page, scalars=False)
    result.items = [OrganisationRow(organisation=row[0], people=row[1]) for row in result.items]
    return result


def organisation_counts() -> dict[str, int]:
    """How many organisations there are, active and inactive."""
    rows = dict(
        db.session.execute(
            sa.select(Organisation.active, sa.func.count(Organisation.id)).group_by(
                Organisation.active
            )
        ).all()
    )
    active, inactive = rows.get(True, 0), rows.get(False, 0)
    return {"total": active + inactive, "active": active, "inactive": inactive}


def all_organisations() -> list[Organisation]:
    return list(
        db.session.scalars(sa.select(Organisation).order_by(sa.func.lower(Organisation.name)))
    )


# ---------------------------------------------------------------------------------------------
# API tokens


def user_api_tokens(user: User) -> list[ApiToken]:
    """A person's API tokens, active ones first, newest first."""
    return list(
        db.session.scalars(
            sa.select(ApiToken)
            .where(ApiToken.user_id == user.id)
            .options(selectinload(ApiToken.organisation))
            .order_by(
                ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc()
            )
        )
    )


def get_user_api_token(user: User, token_id: int) -> ApiToken | None:
    """One of this person's tokens (None for anyone else's)."""
    return db.session.scalar(
        sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )


# ---------------------------------------------------------------------------------------------
# Audit log

AUDIT_PAGE_SIZE = 50


@dataclass
class AuditFilters:
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor_email: str | None = None
    organisation_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=LONDON)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def audit_events(
    filters: AuditFilters,
    page: int = 1,
    per_page: int = AUDIT_PAGE_SIZE,
    *,
    url_for_page: Callable[[int], str] | None = None,
) -> Page[AuditEvent]:
    """Audit events matching the filters, newest first. Dates are days in Europe/London. Sealed
    events (a bid before its deadline) are left out, whatever the filters."""
    query = (
        sa.select(AuditEvent)
        .where(audit.unsealed())
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    )
    if filters.action:
        query = query.where(AuditEvent.action.like(_like_prefix(filters.action), escape="\\"))
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.actor_email:
        query = query.where(
            AuditEvent.actor_id.in_(
                sa.select(User.id).where(
                    User.email.like("%" + _like_prefix(filters.actor_email.lower()), escape="\\")
                )
            )
        )
    if filters.organisation_id is not None:
        query = query.where(AuditEvent.organisation_id == filters.organisation_id)
    if filters.date_from:
        query = query.where(AuditEvent.occurred_at >= _london_midnight(filters.date_from))
    if filters.date_to:
        query = query.where(
            AuditEvent.occurred_at < _london_midnight(filters.date_to + timedelta(days=1))
        )
    return paginate(query, page, per_page, url_for_page=url_for_page)


def audit_object_types() -> list[str]:
    """The kinds of object the audit log has events for."""
    return list(
        db.session.scalars(
            sa.select(AuditEvent.object_type)
            .where(audit.unsealed())
            .distinct()
            .order_by(AuditEvent.object_type)
        )
    )


# ---------------------------------------------------------------------------------------------
# VCSE and SME classification, as of a day (issue 22)


def classification_history(organisation_id: int) -> list[OrganisationClassification]:
    """Every classification entry of an organisation, the one in force today last."""
    return list(
        db.session.scalars(
            sa.select(OrganisationClassification)
            .where(OrganisationClassification.organisation_id == organisation_id)
            .order_by(OrganisationClassification.effective_from, OrganisationClassification.id)
        )
    )


def classifications_in_force(
    organisation_ids: Iterable[int], on: date
) -> dict[int, OrganisationClassification]:
    """The classification in force on ``on`` for each organisation that has one: the entry with
    the greatest (effective_from, id) not after that day. An organisation missing from the
    answer has none and counts as neither VCSE nor SME."""
    ids = sorted(set(organisation_ids))
    if not ids:
        return {}
    ranked = (
        sa.select(
            OrganisationClassification.id,
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
        .where(
            OrganisationClassification.organisation_id.in_(ids),
            OrganisationClassification.effective_from <= on,
        )
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(OrganisationClassification).join(
            ranked, sa.and_(ranked.c.id == OrganisationClassification.id, ranked.c.rank == 1)
        )
    )
    return {row.organisation_id: row for row in rows}


# The provider's own entries (at registration, and each year's confirmation) start the year
# after which it is asked to confirm again; the authority's corrections do not.
CONFIRMING_SOURCES = (ClassificationSource.REGISTRATION, ClassificationSource.CONFIRMATION)
CONFIRMATION_INTERVAL_YEARS = 1


def last_confirmed_on(organisation_id: int) -> date | None:
    """The day the provider last registered or confirmed its classification (None: never).
    One indexed aggregate: the home page asks it for a provider."""
    return db.session.scalar(
        sa.select(sa.func.max(OrganisationClassification.effective_from)).where(
            OrganisationClassification.organisation_id == organisation_id,
            OrganisationClassification.source.in_(CONFIRMING_SOURCES),
        )
    )


def last_confirmed_of(organisation_id: int) -> sa.ScalarSelect:
    """``last_confirmed_on`` as a scalar subquery, for a caller to fold into a read it makes
    anyway (the home page adds it to a provider's own aggregate)."""
    return (
        sa.select(sa.func.max(OrganisationClassification.effective_from))
        .where(
            OrganisationClassification.organisation_id == organisation_id,
            OrganisationClassification.source.in_(CONFIRMING_SOURCES),
        )
        .scalar_subquery()
    )


def last_confirmed_column() -> sa.ScalarSelect:
    """``last_confirmed_on`` as a correlated column of a select over ``Organisation``."""
    return (
        sa.select(sa.func.max(OrganisationClassification.effective_from))
        .where(
            OrganisationClassification.organisation_id == Organisation.id,
            OrganisationClassification.source.in_(CONFIRMING_SOURCES),
        )
        .correlate(Organisation)
        .scalar_subquery()
    )


def confirmation_due_on(last: date | None) -> date | None:
    """When the next yearly confirmation falls due after one on ``last`` (None: it has never
    been given, so it is due now). Due on the day: a confirmation 12 months old is due."""
    if last is None:
        return None
    try:
        return last.replace(year=last.year + CONFIRMATION_INTERVAL_YEARS)
    except ValueError:  # 29 February
        return last.replace(year=last.year + CONFIRMATION_INTERVAL_YEARS, day=28)


def confirmation_overdue_cutoff(today: date) -> date:
    """A provider last confirmed on or before this day is due (``confirmation_due_on``)."""
    try:
        return today.replace(year=today.year - CONFIRMATION_INTERVAL_YEARS)
    except ValueError:
        return today.replace(year=today.year - CONFIRMATION_INTERVAL_YEARS, day=28)
