"""Spend limits and approval: what a buyer may commit unapproved, who may approve the rest, and
refusing at placing a call-off nobody could approve.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import current_app

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.queries import approvers_and_limits
from marketplace.core.money import split_by_basis_points
from marketplace.orders.models import MAX_VALUE_PENCE, CallOff
from marketplace.orders.permissions import BUYER_ROLES
from marketplace.orders.services.call_offs import in_pounds, names_of
from marketplace.orders.services.details import FundingShare


def spend_limit(actor: User, organisation_id: int) -> int:
    """What the actor may commit of their organisation's money on one call-off unapproved: the
    highest limit their buyer or approver memberships name; unnamed, a buyer's default or, for
    an approver (the budget holder), their approval limit (none: no limit)."""
    memberships = [
        m
        for m in actor.memberships
        if m.organisation_id == organisation_id and m.role in BUYER_ROLES
    ]
    named = [m.spend_limit_pence for m in memberships if m.spend_limit_pence is not None]
    if named:
        return max(named)
    approving = [m for m in memberships if m.role == Role.APPROVER]
    if approving:
        return max(approval_covers(m.approval_limit_pence) for m in approving)
    return current_app.config["BUYER_SPEND_LIMIT_PENCE"]


def approval_covers(approval_limit_pence: int | None) -> int:
    """The most an approval limit covers (None: no limit)."""
    return MAX_VALUE_PENCE if approval_limit_pence is None else approval_limit_pence


def approval_amount(call_off: CallOff) -> int:
    """What an approval is for: the lead buyer's share of the value (its own money; co-funders
    confirm theirs), as the placer's spend limit is compared with."""
    return next(f.share_pence for f in call_off.funders if f.is_lead)


def approvers_who_can_approve(
    organisation_id: int, amount: int, placed_by_id: int | None
) -> list[User]:
    """The organisation's active approvers, other than the person who placed it, whose approval
    limit covers ``amount`` (read in this transaction)."""
    return [
        user
        for user, limit in approvers_and_limits(organisation_id)
        if user.id != placed_by_id and amount <= approval_covers(limit)
    ]


def lead_part(gross: int, shares: Sequence[FundingShare]) -> int:
    """The lead buyer's part of ``gross`` (``check_shares`` puts the lead first)."""
    return split_by_basis_points(gross, [s.basis_points for s in shares])[0]


def nobody_can_approve(
    actor: User, organisation: Organisation, lead_share: int
) -> dict[str, list[str]]:
    """At placing: a call-off above the placer's spend limit waits for an approver; if nobody
    else in the organisation can approve it (no other active approver whose limit covers it), it
    would wait for ever, holding its budget, so it is refused before it is placed, saying who can
    fix it. (A buyer expects to hear at once that their purchase cannot go ahead, not to find a
    call-off stuck weeks later with its money held.)"""
    limit = spend_limit(actor, organisation.id)
    if lead_share <= limit or approvers_who_can_approve(organisation.id, lead_share, actor.id):
        return {}
    approvers = [user for user, _ in approvers_and_limits(organisation.id)]
    others = [user for user in approvers if user.id != actor.id]
    message = (
        f"This call-off would cost {organisation.name} {in_pounds(lead_share)}, above your spend "
        f"limit of {in_pounds(limit)}, so an approver must approve it, but nobody in "
        f"{organisation.name} other than you can approve that much"
    )
    if others:
        message += (
            f". {names_of(others)} can raise your spend limit or an approver's approval limit "
            "on the Team page; ask them, or buy less"
        )
    elif approvers:
        message += (
            ". You are its only approver: raise your spend limit on the Team page, or invite "
            "another approver who can approve it"
        )
    else:
        message += (
            f". {organisation.name} has no approvers: ask the marketplace's authority "
            "administrators to invite one"
        )
    return {"quantity": [message]}


def needs_approval(call_off: CallOff) -> bool:
    lead = next(f for f in call_off.funders if f.is_lead)
    placed_by = call_off.placed_by
    if placed_by is None:
        return True
    return lead.share_pence > spend_limit(placed_by, call_off.lead_buyer_id)
