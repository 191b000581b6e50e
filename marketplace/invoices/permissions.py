"""Which invoice actions a page offers: the same rules the services enforce (who, and the
state machine), so a button is shown only where pressing it can succeed."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, User
from marketplace.invoices.models import INVOICE_TRANSITIONS, Invoice, InvoiceStatus
from marketplace.invoices.services import PROVIDER_ISSUERS, creditable_net_pence
from marketplace.orders.permissions import BUYER_ROLES


def actions(user: User, organisation: Organisation, invoice: Invoice) -> dict[str, bool]:
    """The actions to offer ``user`` acting for ``organisation`` on the invoice's page."""
    roles = user.roles_in(organisation)
    issuer = organisation.id == invoice.provider_id and bool(roles & PROVIDER_ISSUERS)
    buyer = organisation.id == invoice.lead_buyer_id and bool(roles & BUYER_ROLES)
    next_states = INVOICE_TRANSITIONS[invoice.status]
    return {
        "issue": issuer and InvoiceStatus.ISSUED in next_states,
        "credit": issuer
        and invoice.status != InvoiceStatus.DRAFT
        and creditable_net_pence(invoice) > 0,
        "validate": buyer and InvoiceStatus.VALIDATED in next_states,
        "dispute": buyer and InvoiceStatus.DISPUTED in next_states,
        "pay": buyer and InvoiceStatus.PAID in next_states,
    }
