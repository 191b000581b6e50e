"""Reading call-offs and budgets: only what the reader's organisation is party to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import Membership, Role
from marketplace.core.cache import read_committed
from marketplace.core.db import db
from marketplace.core.store import PrecompiledRead
from marketplace.orders.models import (
    Budget,
    CallOff,
    CallOffFunder,
    CallOffStatus,
    Side,
    Variation,
    VariationStatus,
)
from marketplace.orders.permissions import DELIVERING


@dataclass(frozen=True)
class CallOffFilters:
    status: CallOffStatus | None = None
    provider_id: int | None = None
    listing_id: int | None = None
    crn: str | None = None
    placed_from: date | None = None
    placed_to: date | None = None
    # Only those waiting for this organisation to act (``waiting_condition``) …
    waiting_for: int | None = None
    # … and of those waiting for approval, only what this approver can approve.
    approver_id: int | None = None


def party_condition(organisation_id: int):
    """The call-offs an organisation is party to: as provider, lead buyer or co-funder."""
    funded = sa.select(CallOffFunder.call_off_id).where(
        CallOffFunder.organisation_id == organisation_id
    )
    return sa.or_(CallOff.provider_id == organisation_id, CallOff.id.in_(funded))


def _delivering():
    # Equalities rather than IN: an IN list is expanded into the SQL on every execution.
    return sa.or_(*(CallOff.status == status for status in DELIVERING))


def _sent_to(organisation_id):
    return sa.and_(CallOff.status == CallOffStatus.SENT, CallOff.provider_id == organisation_id)


def _to_approve_by(organisation_id, approver_id=None):
    """Waiting for the organisation's approval; with ``approver_id``, only those that approver
    can approve: placed by someone else, the lead buyer's share within their approval limit
    (their membership's, read in the same statement; none: no limit)."""
    condition = sa.and_(
        CallOff.status == CallOffStatus.AWAITING_APPROVAL, CallOff.lead_buyer_id == organisation_id
    )
    # A change above the spend limit of the person who agreed it waits for an approver too.
    change = [
        Variation.call_off_id == CallOff.id,
        Variation.status == VariationStatus.PROPOSED,
        Variation.approval_requested_at.is_not(None),
        Variation.approved_at.is_(None),
    ]
    if approver_id is not None:
        change.append(
            sa.or_(
                Variation.approval_requested_by_id.is_(None),
                Variation.approval_requested_by_id != approver_id,
            )
        )
    changes = sa.and_(CallOff.lead_buyer_id == organisation_id, sa.exists().where(*change))
    if approver_id is None:
        return sa.or_(condition, changes)
    lead_share = (
        sa.select(CallOffFunder.share_pence)
        .where(CallOffFunder.call_off_id == CallOff.id, CallOffFunder.is_lead.is_(True))
        .scalar_subquery()
    )
    approval_limit = (
        sa.select(Membership.approval_limit_pence)
        .where(
            Membership.user_id == approver_id,
            Membership.organisation_id == organisation_id,
            Membership.role == Role.APPROVER,
        )
        .scalar_subquery()
    )
    return sa.or_(
        sa.and_(
            condition,
            sa.or_(CallOff.placed_by_id.is_(None), CallOff.placed_by_id != approver_id),
            sa.or_(approval_limit.is_(None), lead_share <= approval_limit),
        ),
        changes,
    )


def _share_to_confirm_by(organisation_id):
    """Its share not yet confirmed nor declined, while co-funders may still answer (also after
    another co-funder declined, while the lead buyer decides)."""
    return sa.and_(
        sa.or_(
            CallOff.status == CallOffStatus.AWAITING_FUNDING,
            CallOff.status == CallOffStatus.FUNDING_DECLINED,
        ),
        CallOff.id.in_(
            sa.select(CallOffFunder.call_off_id).where(
                CallOffFunder.organisation_id == organisation_id,
                CallOffFunder.confirmed_at.is_(None),
                CallOffFunder.declined_at.is_(None),
            )
        ),
    )


def _funding_declined_for(organisation_id):
    """A co-funder declined its share: the lead buyer re-splits the shares or cancels."""
    return sa.and_(
        CallOff.status == CallOffStatus.FUNDING_DECLINED, CallOff.lead_buyer_id == organisation_id
    )


def _variation_to_decide_by(organisation_id):
    """Being delivered, with an open variation the other side proposed to the organisation."""
    return sa.and_(
        _delivering(),
        sa.exists().where(
            Variation.call_off_id == CallOff.id,
            Variation.status == VariationStatus.PROPOSED,
            sa.or_(
                sa.and_(
                    Variation.proposed_by_side == Side.PROVIDER,
                    CallOff.lead_buyer_id == organisation_id,
                ),
                sa.and_(
                    Variation.proposed_by_side == Side.BUYER,
                    CallOff.provider_id == organisation_id,
                ),
            ),
        ),
    )


def waiting_condition(organisation_id, approver_id=None):
    """The call-offs waiting for this organisation to act: the provider's answer to one sent to
    it, a co-funder's confirmation of its share, the lead buyer's approval (for an approver,
    ``approver_id``, only what they can approve) or its choice after a co-funder declined, or a
    decision on a variation the other side proposed. (Each is also counted for the home page.)"""
    return sa.or_(
        _sent_to(organisation_id),
        _share_to_confirm_by(organisation_id),
        _funding_declined_for(organisation_id),
        _to_approve_by(organisation_id, approver_id),
        _variation_to_decide_by(organisation_id),
    )


def call_offs_query(organisation_id: int | None, filters: CallOffFilters) -> sa.Select:
    """Newest first; ``organisation_id`` None: every call-off (the authority)."""
    statement = sa.select(CallOff).options(
        joinedload(CallOff.listing),
        joinedload(CallOff.provider),
        joinedload(CallOff.lead_buyer),
        selectinload(CallOff.funders),
    )
    if organisation_id is not None:
        statement = statement.where(party_condition(organisation_id))
    if filters.status is not None:
        statement = statement.where(CallOff.status == filters.status)
    if filters.provider_id is not None:
        statement = statement.where(CallOff.provider_id == filters.provider_id)
    if filters.listing_id is not None:
        statement = statement.where(CallOff.listing_id == filters.listing_id)
    if filters.crn:
        statement = statement.where(CallOff.crn == filters.crn.strip().upper())
    if filters.placed_from is not None:
        statement = statement.where(sa.func.date(CallOff.placed_at) >= filters.placed_from)
    if filters.placed_to is not None:
        statement = statement.where(sa.func.date(CallOff.placed_at) <= filters.placed_to)
    if filters.waiting_for is not None:
        statement = statement.where(waiting_condition(filters.waiting_for, filters.approver_id))
    return statement.order_by(CallOff.placed_at.desc(), CallOff.id.desc())


def waiting_first(
    organisation_id: int, limit: int, approver_id: int | None = None
) -> tuple[list[CallOff], int]:
    """Up to ``limit`` of the call-offs waiting for the organisation, the most pressing first
    (the earliest respond-by date, then the oldest), and how many wait in all (``approver_id``:
    as ``waiting_condition``)."""
    condition = sa.and_(
        party_condition(organisation_id), waiting_condition(organisation_id, approver_id)
    )
    total = db.session.scalar(sa.select(sa.func.count(CallOff.id)).where(condition)) or 0
    if not total:
        return [], 0
    first = db.session.scalars(
        sa.select(CallOff)
        .options(
            joinedload(CallOff.listing),
            joinedload(CallOff.provider),
            joinedload(CallOff.lead_buyer),
        )
        .where(condition)
        .order_by(CallOff.respond_by.is_(None), CallOff.respond_by, CallOff.placed_at, CallOff.id)
        .limit(limit)
    ).all()
    return list(first), total


@dataclass(frozen=True)
class HomeFigures:
    """What waits for an organisation on its call-offs, and its budget for the year, for its
    people's home page."""

    to_respond: int  # sent to it as the provider
    due_today: int  # … of which the response is due today (or, not yet expired, earlier)
    to_approve: int  # its own, above the placer's spend limit, that the reader can approve
    shares_to_confirm: int  # co-funded, its share not yet confirmed
    variations_to_decide: int  # proposed by the other side
    in_delivery: int  # accepted by it as the provider: delivery to record
    financial_year: int
    budget_allocated_pence: int | None  # its budgets for the year added up; None: it has none
    budget_available_pence: int | None
    # Led by it as the buyer (its people follow them from the home page): sent and not yet
    # answered, and accepted or being delivered.
    with_provider: int = 0
    delivering_for_it: int = 0
    # Led by it, a co-funder's share declined: to re-split or cancel.
    funding_declined: int = 0


def home_figures_statement() -> sa.Select:
    """The one row of ``HomeFigures`` (``home_figures_from_row``); the home page may read more
    columns with it in the same statement (``HOME_FIGURES_WIDTH`` columns are these)."""
    organisation_id = sa.bindparam("organisation_id")
    count = sa.func.count(CallOff.id)
    sent_to_us = _sent_to(organisation_id)
    led_by_us = CallOff.lead_buyer_id == organisation_id

    def budgets_sum(column):
        return (
            sa.select(sa.func.sum(column))
            .where(
                Budget.organisation_id == organisation_id,
                Budget.financial_year == sa.bindparam("financial_year"),
            )
            .scalar_subquery()
        )

    return sa.select(
        count.filter(sent_to_us),
        count.filter(sent_to_us, CallOff.respond_by <= sa.bindparam("today")),
        count.filter(_to_approve_by(organisation_id, sa.bindparam("user_id"))),
        count.filter(_share_to_confirm_by(organisation_id)),
        count.filter(_variation_to_decide_by(organisation_id)),
        count.filter(_delivering(), CallOff.provider_id == organisation_id),
        budgets_sum(Budget.allocated_pence),
        budgets_sum(Budget.available_pence),
        count.filter(CallOff.status == CallOffStatus.SENT, led_by_us),
        count.filter(_delivering(), led_by_us),
        count.filter(_funding_declined_for(organisation_id)),
    ).where(party_condition(organisation_id))


# Every signed-in buyer's, approver's and provider's home page runs it: compiled once.
HOME_FIGURES_WIDTH = 11
_HOME_FIGURES = PrecompiledRead(home_figures_statement())


def home_figures(
    organisation_id: int, today: date, financial_year: int, user_id: int = 0
) -> HomeFigures:
    """``HomeFigures`` for the organisation as ``user_id`` reads it, in one query."""
    # Committed data, outside the session: the home page writes nothing and reads nothing
    # else from the database besides what it keeps (page_cache).
    row = read_committed(
        _HOME_FIGURES,
        organisation_id=organisation_id,
        today=today,
        financial_year=financial_year,
        user_id=user_id,
    )
    return home_figures_from_row(row, financial_year)


def home_figures_from_row(row: Sequence, financial_year: int) -> HomeFigures:
    figures = row[:HOME_FIGURES_WIDTH]
    *counts, allocated, available, with_provider, delivering_for_it, funding_declined = figures
    return HomeFigures(
        *(int(value or 0) for value in counts),
        financial_year=financial_year,
        budget_allocated_pence=None if allocated is None else int(allocated),
        budget_available_pence=None if available is None else int(available),
        with_provider=int(with_provider or 0),
        delivering_for_it=int(delivering_for_it or 0),
        funding_declined=int(funding_declined or 0),
    )


def budgets_of(organisation_id: int) -> list[Budget]:
    return list(
        db.session.scalars(
            sa.select(Budget)
            .where(Budget.organisation_id == organisation_id)
            .order_by(Budget.financial_year.desc(), Budget.category_id.is_not(None), Budget.id)
        )
    )
