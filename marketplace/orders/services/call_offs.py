"""What every use case of a call-off shares: its reference and value, who may act on it, its
audit record and emailing its buyer.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketplace.accounts.models import Role, User
from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.errors import NotFound, PermissionDenied
from marketplace.core.money import vat_pence as vat_on
from marketplace.core.notifications.services import queue_email
from marketplace.orders.models import CallOff
from marketplace.orders.permissions import BUYER_ROLES, is_buyer, is_party, is_provider

CALL_OFF_FIELDS = [
    "status",
    "version",
    "quantity",
    "start_date",
    "end_date",
    "unit_price_pence",
    "vat_treatment",
    "net_pence",
    "vat_pence",
    "gross_pence",
    "delivered_units",
]


def call_off_reference(call_off_id: int, year: int) -> str:
    """``CO-YYYY-NNNNNN``: the year it was placed and its key, so references never clash."""
    return f"CO-{year}-{call_off_id:06d}"


def email_buyer(call_off: CallOff, template: str, **context) -> None:
    """The person who placed the call-off, or (if they have gone) the lead buyer's buyers."""
    placed_by = call_off.placed_by
    if placed_by is not None and placed_by.active:
        queue_email(placed_by.email, template, user=placed_by, call_off=call_off, **context)
    else:
        email_people(call_off.lead_buyer_id, BUYER_ROLES, template, call_off=call_off, **context)


def record_change(
    actor: User, action: str, call_off: CallOff, before: dict | None, **extra
) -> None:
    after = audit.snapshot(call_off, CALL_OFF_FIELDS)
    after.update(extra)
    audit.record(actor, action, call_off, before=before, after=after)


def require_buyer(actor: User, call_off: CallOff) -> None:
    if not is_buyer(actor, call_off):
        if call_off.provider_id in {m.organisation_id for m in actor.memberships}:
            raise PermissionDenied("Only the buyer can do that")
        raise NotFound("Call-off not found")


def require_provider(actor: User, call_off: CallOff, roles=frozenset({Role.PROVIDER_ADMIN})):
    if not is_provider(actor, call_off, roles):
        if is_party(actor, call_off):
            raise PermissionDenied("Only the provider can do that")
        raise NotFound("Call-off not found")


def names_of(people: Sequence[User]) -> str:
    names = [person.name for person in people]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def add_errors(errors: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for key, messages in more.items():
        errors.setdefault(key, []).extend(messages)


def call_off_value(unit_price_pence: int, quantity: int, treatment) -> tuple[int, int, int]:
    """Net, VAT (on the whole, rounded half up) and gross pence of ``quantity`` units."""
    net = unit_price_pence * quantity
    vat = vat_on(net, treatment)
    return net, vat, net + vat


def in_pounds(pence: int) -> str:
    pounds, rest = divmod(pence, 100)
    return f"£{pounds:,}.{rest:02d}"


def require_lead_buyer(actor: User, call_off: CallOff) -> None:
    """Only the lead buyer's buyers and approvers; another party is refused (403), anyone else
    is not told the call-off exists (404)."""
    if is_buyer(actor, call_off):
        return
    if is_party(actor, call_off):
        raise PermissionDenied("Only the lead buyer can change the funders' shares")
    raise NotFound("Call-off not found")
