"""Spend and approval limits: an approver sets a buyer's spend limit and an approver's
approval limit."""

from __future__ import annotations

from flask import current_app

from marketplace.accounts.models import LIMIT_MAX_PENCE, Membership, Organisation, Role, User
from marketplace.accounts.permissions import can_set_limits
from marketplace.core import audit
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.services import queue_email

# Which limit each role carries, the field it is given in, and how it reads in a sentence.
LIMIT_OF_ROLE = {
    Role.BUYER: ("spend_limit_pence", "spend limit"),
    Role.APPROVER: ("approval_limit_pence", "approval limit"),
}
_UNCHANGED = object()


def _pounds(pence: int) -> str:
    pounds, rest = divmod(pence, 100)
    return f"£{pounds:,}.{rest:02d}"


def limit_error(value: object, what: str) -> str | None:
    """Why ``value`` (pence, or None for the default) cannot be a limit, if it cannot."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"Enter the {what} as an amount in pounds and pence, like 500 or 1250.50"
    if value < 0:
        return f"The {what} cannot be negative"
    if value > LIMIT_MAX_PENCE:
        return f"The {what} must be {_pounds(LIMIT_MAX_PENCE)} or less"
    return None


def set_limits(
    actor: User,
    organisation: Organisation,
    member: User,
    *,
    spend_limit_pence: object = _UNCHANGED,
    approval_limit_pence: object = _UNCHANGED,
) -> bool:
    """An approver of a commissioning organisation sets a buyer's spend limit (None: the
    service's default) and an approver's approval limit (None: no limit). Returns whether
    anything changed; the member is emailed when their limit does."""
    member_roles = _member_roles_for_approver(actor, organisation, member)
    given = {
        role: value
        for role, value in (
            (Role.BUYER, spend_limit_pence),
            (Role.APPROVER, approval_limit_pence),
        )
        if value is not _UNCHANGED
    }
    _check_limits(organisation, member, member_roles, given)
    before, after = _apply_limits(organisation, member, given)
    if not after:
        return False
    db.session.flush()
    audit.record(
        actor,
        "membership.limits_changed",
        object_type="user",
        object_id=member.id,
        organisation=organisation,
        before=before,
        after=after,
    )
    _email_limits_changed(actor, organisation, member, after)
    return True


def _member_roles_for_approver(
    actor: User, organisation: Organisation | None, member: User
) -> set[Role]:
    """The member's roles in the organisation, once the actor may set limits there: another
    organisation, or a person not in it, is not found (404), not forbidden."""
    roles = actor.roles_in(organisation) if organisation is not None else set()
    if organisation is None or not roles:
        raise NotFound("Organisation not found")
    if not can_set_limits(actor, organisation):
        raise PermissionDenied("Only an approver can set spend and approval limits")
    member_roles = member.roles_in(organisation)
    if not member_roles:
        raise NotFound("Person not found")
    return member_roles


def _check_limits(
    organisation: Organisation, member: User, member_roles: set[Role], given: dict[Role, object]
) -> None:
    """Each limit given must belong to a role the member holds and be a valid amount; every
    problem is reported at once, and nothing is written if there is one."""
    errors: dict[str, list[str]] = {}
    for role, value in given.items():
        field, what = LIMIT_OF_ROLE[role]
        if role not in member_roles:
            errors[field] = [
                f"{member.name} is not {'a buyer' if role == Role.BUYER else 'an approver'} "
                f"in {organisation.name}, so they cannot have a {what}"
            ]
        elif message := limit_error(value, what):
            errors[field] = [message]
    if errors:
        raise BusinessRuleViolation(errors)


def _apply_limits(
    organisation: Organisation, member: User, given: dict[Role, object]
) -> tuple[dict[str, object], dict[str, object]]:
    """Set the limits that differ; return the old and new values of those that changed."""
    # The rows locked, so that of two changes at once the second reads (and audits) the first.
    rows = {
        m.role: m
        for m in lock_rows(
            Membership,
            [
                m.id
                for m in member.memberships
                if m.organisation_id == organisation.id and m.role in given
            ],
        )
    }
    before, after = {}, {}
    for role, value in given.items():
        field, _ = LIMIT_OF_ROLE[role]
        row = rows[role]
        if getattr(row, field) != value:
            before[field], after[field] = getattr(row, field), value
            setattr(row, field, value)
    return before, after


def _email_limits_changed(
    actor: User, organisation: Organisation, member: User, after: dict[str, object]
) -> None:
    """Tell the member their new limits: a spend limit of None reads as the service's default
    amount, an approval limit of None as no limit."""
    default = current_app.config["BUYER_SPEND_LIMIT_PENCE"]
    queue_email(
        member.email,
        "limits_changed",
        user=member,
        organisation=organisation,
        changed_by=actor,
        spend_limit=(
            None
            if "spend_limit_pence" not in after
            else _pounds(
                default if after["spend_limit_pence"] is None else after["spend_limit_pence"]
            )
        ),
        spend_limit_is_default="spend_limit_pence" in after and after["spend_limit_pence"] is None,
        approval_limit=(
            None
            if "approval_limit_pence" not in after
            else "no limit"
            if after["approval_limit_pence"] is None
            else _pounds(after["approval_limit_pence"])
        ),
    )
