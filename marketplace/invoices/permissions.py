"""Who may do what with invoices. Pure predicates, no side effects: the services refuse with
them, and the pages offer an action only where pressing it can succeed (who, and the state
machine)."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.invoices.models import INVOICE_TRANSITIONS, Invoice, InvoiceStatus
from marketplace.orders.permissions import BUYER_ROLES

# Who issues and credits a provider's invoices.
PROVIDER_ISSUERS = frozenset({Role.PROVIDER_ADMIN})


def can_issue(user: User, invoice: Invoice) -> bool:
    """Issue and credit the invoice: an administrator of its provider."""
    return bool(user.roles_for(invoice.provider_id) & PROVIDER_ISSUERS)


def can_settle(user: User, invoice: Invoice) -> bool:
    """Validate, dispute and pay the invoice: a buyer or approver of its lead buyer."""
    return bool(user.roles_for(invoice.lead_buyer_id) & BUYER_ROLES)


def actions(user: User, organisation: Organisation, invoice: Invoice) -> dict[str, bool]:
    """The actions to offer ``user`` acting for ``organisation`` on the invoice's page."""
    issuer = organisation.id == invoice.provider_id and can_issue(user, invoice)
    buyer = organisation.id == invoice.lead_buyer_id and can_settle(user, invoice)
    next_states = INVOICE_TRANSITIONS[invoice.status]
    return {
        "issue": issuer and InvoiceStatus.ISSUED in next_states,
        "credit": issuer
        and invoice.status != InvoiceStatus.DRAFT
        and invoice.creditable_net_pence > 0,
        "validate": buyer and InvoiceStatus.VALIDATED in next_states,
        "dispute": buyer and InvoiceStatus.DISPUTED in next_states,
        "pay": buyer and InvoiceStatus.PAID in next_states,
    }
