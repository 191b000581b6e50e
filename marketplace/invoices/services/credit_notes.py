"""Credit notes: how an issued invoice is corrected."""

from __future__ import annotations

from datetime import datetime

from marketplace.accounts.models import User
from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
)
from marketplace.core.filters import pounds
from marketplace.core.money import vat_pence
from marketplace.core.state import lock
from marketplace.invoices.models import (
    REASON_MAX,
    CreditNote,
    Invoice,
    InvoiceCounter,
    InvoiceStatus,
)
from marketplace.invoices.services.common import _ensure_counter, _require_provider
from marketplace.invoices.signals import credit_note_raised
from marketplace.orders.permissions import BUYER_ROLES


def credit_note_number(sequence: int) -> str:
    return f"CN-{sequence:06d}"


def credit_vat_pence(net_pence: int, net_left: int, vat_left: int, treatment) -> int:
    """The VAT a credit of ``net_pence`` takes off: the treatment's rate rounded half up, never
    more than the VAT left on the invoice, and exactly what is left when the rest is credited
    (the invoice's VAT was rounded per line, so the rate on the remainder may differ by pence)."""
    if net_pence == net_left:
        return vat_left
    return min(vat_pence(net_pence, treatment), vat_left)


def raise_credit_note(
    actor: User,
    invoice: Invoice,
    net_pence: object,
    reason: str,
    *,
    now: datetime | None = None,
) -> CreditNote:
    """The provider credits part or all of an issued invoice, with a reason the buyer sees.

    The VAT is the invoice's treatment on the credited amount, rounded half up; crediting all
    that is left takes off exactly the VAT that is left, so a fully credited invoice nets to
    nothing. The credit note takes the provider's next credit-note number, without gaps.
    """
    _require_provider(actor, invoice)
    # What is left to credit is read from the locked invoice and its credit notes: two credit
    # notes raised at once cannot take off more than the invoice holds between them.
    lock(invoice, "credit_notes")
    errors: dict[str, list[str]] = {}
    left = invoice.creditable_net_pence
    if invoice.status == InvoiceStatus.DRAFT:
        raise BusinessRuleViolation(
            {"status": ["A draft has not been issued, so there is nothing to credit"]}
        )
    if not isinstance(net_pence, int) or isinstance(net_pence, bool) or net_pence <= 0:
        errors["amount"] = ["Enter the amount to credit in pounds and pence, like 125.50"]
    elif net_pence > left:
        errors["amount"] = [
            f"The credit cannot be more than what is left on the invoice: {pounds(left)} before VAT"
        ]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Enter why you are crediting the invoice"]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"The reason must be {REASON_MAX:,} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    assert isinstance(net_pence, int)
    vat_left = invoice.vat_pence - sum(note.vat_pence for note in invoice.credit_notes)
    vat = credit_vat_pence(net_pence, left, vat_left, invoice.vat_treatment)
    now = now or utcnow()
    _ensure_counter(invoice.provider_id)
    [counter] = lock_rows(InvoiceCounter, [invoice.provider_id])
    counter.last_credit_note_number += 1
    note = CreditNote(
        invoice=invoice,
        provider_id=invoice.provider_id,
        sequence=counter.last_credit_note_number,
        number=credit_note_number(counter.last_credit_note_number),
        reason=reason,
        net_pence=net_pence,
        vat_pence=vat,
        gross_pence=net_pence + vat,
        created_at=now,
        created_by_id=actor.id,
    )
    db.session.add(note)
    db.session.flush()
    # Paid by card: payments' receiver gives the credit back to the card.
    credit_note_raised.send(invoice, note=note, actor=actor)
    audit.record(
        actor,
        "credit_note.raised",
        note,
        after={
            "invoice": invoice.number,
            "number": note.number,
            "net_pence": note.net_pence,
            "vat_pence": note.vat_pence,
            "gross_pence": note.gross_pence,
            "reason": reason,
            "refund": note.refund_reference,
        },
    )
    email_people(
        invoice.lead_buyer_id, BUYER_ROLES, "invoices_credited", invoice=invoice, note=note
    )
    return note
