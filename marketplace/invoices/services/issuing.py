"""The provider issues with gapless numbers; the lead buyer validates, disputes and pays.

Every function that changes data takes the ``actor``, flushes and never commits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from marketplace.accounts.models import User
from marketplace.accounts.services.common import email_people
from marketplace.catalogue.services.vat import VAT_REGISTRATION_TREATMENTS
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
)
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.invoices.models import (
    INVOICE_TRANSITIONS,
    PAYMENT_DAYS,
    PAYMENT_REFERENCE_MAX,
    REASON_MAX,
    Invoice,
    InvoiceCounter,
    InvoiceStatus,
    PaymentMethod,
)
from marketplace.invoices.permissions import PROVIDER_ISSUERS
from marketplace.invoices.services.common import (
    INVOICE_FIELDS,
    _ensure_counter,
    _record,
    _require_buyer,
    _require_provider,
)
from marketplace.invoices.signals import bacs_payment_recording
from marketplace.orders.permissions import BUYER_ROLES


def _check_can_send(invoice: Invoice) -> None:
    """What the provider must have recorded before an invoice goes out: no VAT charged without a
    VAT registration; an electronic address and a bank account for the e-invoice to name."""
    provider = invoice.provider
    errors: list[str] = []
    if invoice.vat_treatment in VAT_REGISTRATION_TREATMENTS and not provider.vat_registered:
        errors.append(
            "This invoice charges VAT, and your organisation is not registered for VAT: record "
            "your VAT registration on your organisation settings page before issuing it"
        )
    if not provider.endpoint_id:
        errors.append(
            "Record your organisation's electronic address on its settings page before issuing"
        )
    if not provider.has_bank_details:
        errors.append(
            "Record the bank account you are paid into on your organisation settings page "
            "before issuing"
        )
    if errors:
        raise BusinessRuleViolation({"status": errors})


def invoice_number(sequence: int) -> str:
    return f"INV-{sequence:06d}"


def issue(actor: User, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """The provider issues a draft: it takes the provider's next number and goes to the lead buyer,
    who receives it now; it is due 30 days later."""
    _require_provider(actor, invoice)
    check_transition(invoice, InvoiceStatus.ISSUED, INVOICE_TRANSITIONS, noun="invoice")
    if not invoice.lines:
        raise BusinessRuleViolation({"status": ["An invoice with no lines cannot be issued"]})
    _check_can_send(invoice)
    now = now or utcnow()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    # The counter row is locked until the commit: two invoices issued at once take consecutive
    # numbers, and a rolled-back issue gives its number back, so the numbers have no gaps.
    _ensure_counter(invoice.provider_id)
    [counter] = lock_rows(InvoiceCounter, [invoice.provider_id])
    counter.last_number += 1
    transition(invoice, InvoiceStatus.ISSUED, INVOICE_TRANSITIONS, noun="invoice")
    invoice.sequence = counter.last_number
    invoice.number = invoice_number(counter.last_number)
    invoice.issued_at = invoice.received_at = now
    invoice.issued_by_id = actor.id
    invoice.provider_vat_number = invoice.provider.vat_number
    invoice.due_on = london_date(now) + timedelta(days=PAYMENT_DAYS)
    _record(actor, "invoice.issued", invoice, before)
    email_people(invoice.lead_buyer_id, BUYER_ROLES, "invoices_issued", invoice=invoice)
    return invoice


def validate(actor: User, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """The lead buyer accepts the invoice as right (after a dispute: the dispute is resolved)."""
    _require_buyer(actor, invoice)
    now = now or utcnow()
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    was_disputed = invoice.status == InvoiceStatus.DISPUTED
    transition(invoice, InvoiceStatus.VALIDATED, INVOICE_TRANSITIONS, noun="invoice")
    invoice.validated_at = now
    if was_disputed:
        invoice.resolved_at = now
    _record(actor, "invoice.validated", invoice, before, resolved=was_disputed)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_validated", invoice=invoice)
    return invoice


def dispute(actor: User, invoice: Invoice, reason: str, *, now: datetime | None = None) -> Invoice:
    """The lead buyer disputes an issued invoice with a reason, which the provider sees at once."""
    _require_buyer(actor, invoice)
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Enter why you dispute the invoice"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX:,} characters or fewer"]}
        )
    now = now or utcnow()
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.DISPUTED, INVOICE_TRANSITIONS, noun="invoice")
    invoice.disputed_at, invoice.dispute_reason = now, reason
    _record(actor, "invoice.disputed", invoice, before, reason=reason)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_disputed", invoice=invoice)
    return invoice


def mark_paid_by_bacs(
    actor: User,
    invoice: Invoice,
    remittance_reference: str,
    paid_on: object,
    *,
    now: datetime | None = None,
) -> Invoice:
    """The lead buyer records a BACS payment of a validated invoice."""
    _require_buyer(actor, invoice)
    now = now or utcnow()
    errors: dict[str, list[str]] = {}
    reference = (remittance_reference or "").strip()
    if not reference:
        errors["payment_reference"] = ["Enter the remittance reference of the payment"]
    elif len(reference) > PAYMENT_REFERENCE_MAX:
        errors["payment_reference"] = [
            f"The remittance reference must be {PAYMENT_REFERENCE_MAX} characters or fewer"
        ]
    if not isinstance(paid_on, date) or isinstance(paid_on, datetime):
        errors["paid_on"] = ["Enter the date the payment was made"]
    elif message := date_horizon_error(paid_on, "The payment date", today=london_date(now)):
        errors["paid_on"] = [message]
    elif paid_on > london_date(now):
        errors["paid_on"] = ["The payment date must be today or in the past"]
    elif invoice.received_at is not None and paid_on < london_date(invoice.received_at):
        errors["paid_on"] = ["The payment date cannot be before the invoice was received"]
    if errors:
        raise BusinessRuleViolation(errors)
    lock(invoice)
    # A payment by card already under way refuses this (payments' receiver): recording a BACS
    # payment too would pay the invoice twice.
    bacs_payment_recording.send(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.PAID, INVOICE_TRANSITIONS, noun="invoice")
    invoice.paid_at, invoice.paid_on = now, paid_on
    invoice.payment_method, invoice.payment_reference = PaymentMethod.BACS, reference
    _record(actor, "invoice.paid", invoice, before, method="bacs", reference=reference)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_paid", invoice=invoice)
    return invoice


def mark_paid_by_card(
    invoice: Invoice, payment_intent_id: str, *, now: datetime | None = None
) -> Invoice:
    """Stripe confirmed a card payment of a validated invoice (no actor: the webhook)."""
    now = now or utcnow()
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.PAID, INVOICE_TRANSITIONS, noun="invoice")
    invoice.paid_at, invoice.paid_on = now, london_date(now)
    invoice.payment_method = PaymentMethod.CARD
    invoice.payment_reference = payment_intent_id[:PAYMENT_REFERENCE_MAX]
    _record(None, "invoice.paid", invoice, before, method="card", reference=payment_intent_id)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_paid_by_card", invoice=invoice)
    return invoice
