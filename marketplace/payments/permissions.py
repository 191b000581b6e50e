"""Who may pay by card. Pure predicates, no side effects: the services refuse with them, and
the pages and the API use them to offer and guard the same actions."""

from __future__ import annotations

from marketplace.accounts.models import Role, User
from marketplace.invoices.models import Invoice

# Who pays an organisation's invoices by card and keeps its saved card.
PAYERS = frozenset({Role.BUYER, Role.APPROVER})


def can_pay_for(user: User, organisation_id: int) -> bool:
    """The user pays by card for the organisation, and keeps its saved card."""
    return bool(user.roles_for(organisation_id) & PAYERS)


def can_pay_invoice(user: User, invoice: Invoice) -> bool:
    """The user pays the invoice by card: a payer of its lead buyer."""
    return can_pay_for(user, invoice.lead_buyer_id)
