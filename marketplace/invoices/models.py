"""Invoices: what a provider bills the lead buyer of a call-off, from recorded delivery.

An invoice is drafted by the monthly run (``flask invoices run --period YYYY-MM``) with one line
per delivery record in the month, at the unit price and VAT treatment the call-off locked; VAT is
worked out per line and rounded half up. Each delivery is billed on one line only (a unique key),
which is what makes the run safe to repeat. The provider reviews the draft and issues it; only
then does it take the provider's next number, under a lock on the provider's counter, so the
numbers of issued invoices run without gaps. An issued invoice is never edited.

Verified outcome claims (payment by results, ``marketplace.outcomes``) are billed by the same run
on separate ``outcome`` invoices: one line per claim, one unit at the outcome's tariff; a line
bills either a delivery or an outcome claim, never both.

The due date is 30 days after receipt (the day the invoice is issued to the buyer through the
service); receipt, validation, dispute, resolution and payment are timestamped for the
payment-performance figures.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import VAT_NUMBER_MAX, Organisation, User
from marketplace.core.db import UTCDateTime, db, enum_type
from marketplace.core.money import VatTreatment
from marketplace.orders.models import CallOff

NUMBER_MAX = 32
DESCRIPTION_MAX = 300
REASON_MAX = 2_000
PAYMENT_REFERENCE_MAX = 120
PAYMENT_DAYS = 30


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    VALIDATED = "validated"
    DISPUTED = "disputed"
    PAID = "paid"

    @property
    def label(self) -> str:
        return self.value.capitalize()


# A disputed invoice is validated once the dispute is resolved; only a validated invoice is paid.
INVOICE_TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.ISSUED}),
    InvoiceStatus.ISSUED: frozenset({InvoiceStatus.VALIDATED, InvoiceStatus.DISPUTED}),
    InvoiceStatus.DISPUTED: frozenset({InvoiceStatus.VALIDATED}),
    InvoiceStatus.VALIDATED: frozenset({InvoiceStatus.PAID}),
    InvoiceStatus.PAID: frozenset(),
}


# Issued and waiting for the buyer: what counts as outstanding, and may become overdue.
OPEN_STATUSES = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.VALIDATED, InvoiceStatus.DISPUTED})


class InvoiceKind(enum.StrEnum):
    MONTHLY = "monthly"  # delivery in a calendar month, billed in arrears
    COMPLETION = "completion"  # what remained unbilled when the call-off completed
    OUTCOME = "outcome"  # verified outcome claims (payment by results), billed by the next run

    @property
    def label(self) -> str:
        return {"monthly": "Monthly", "completion": "On completion", "outcome": "Outcomes"}.get(
            self.value, self.value
        )


class PaymentMethod(enum.StrEnum):
    BACS = "bacs"
    CARD = "card"  # a Government Procurement Card through Stripe (marketplace.payments)


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("provider_id", "sequence", name="uq_invoices_provider_sequence"),
        sa.CheckConstraint("gross_pence = net_pence + vat_pence", name="gross_is_net_plus_vat"),
        sa.CheckConstraint("(status = 'draft') = (sequence IS NULL)", name="numbered_once_issued"),
        sa.Index("ix_invoices_call_off_period", "call_off_id", "period_start"),
        sa.Index("ix_invoices_provider_status", "provider_id", "status"),
        sa.Index("ix_invoices_lead_buyer_status", "lead_buyer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    lead_buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    call_off_id: Mapped[int] = mapped_column(sa.ForeignKey("call_offs.id"))
    kind: Mapped[InvoiceKind] = mapped_column(enum_type(InvoiceKind, "invoice_kind"))
    period_start: Mapped[date] = mapped_column(sa.Date)
    period_end: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[InvoiceStatus] = mapped_column(
        enum_type(InvoiceStatus, "invoice_status"), default=InvoiceStatus.DRAFT
    )
    # Given when issued: the provider's next number, never reused.
    sequence: Mapped[int | None] = mapped_column()
    number: Mapped[str | None] = mapped_column(sa.String(NUMBER_MAX))
    # Copied from the call-off: what the buyer's accounts payable match the invoice on.
    po_number: Mapped[str] = mapped_column(sa.String(60))
    call_off_reference: Mapped[str] = mapped_column(sa.String(20))
    net_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    vat_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    gross_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    issued_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_on: Mapped[date | None] = mapped_column(sa.Date)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dispute_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_on: Mapped[date | None] = mapped_column(sa.Date)
    payment_method: Mapped[PaymentMethod | None] = mapped_column(
        enum_type(PaymentMethod, "payment_method")
    )
    payment_reference: Mapped[str | None] = mapped_column(sa.String(PAYMENT_REFERENCE_MAX))
    # When the buyer (and the provider) were told the invoice is overdue: once per invoice.
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The provider's VAT registration number as it stood when the invoice was issued.
    provider_vat_number: Mapped[str | None] = mapped_column(sa.String(VAT_NUMBER_MAX))

    provider: Mapped[Organisation] = relationship(foreign_keys=[provider_id])
    lead_buyer: Mapped[Organisation] = relationship(foreign_keys=[lead_buyer_id])
    call_off: Mapped[CallOff] = relationship()
    issued_by: Mapped[User | None] = relationship(foreign_keys=[issued_by_id])
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.id"
    )
    credit_notes: Mapped[list[CreditNote]] = relationship(
        back_populates="invoice", order_by="CreditNote.id"
    )

    audit_type = "invoice"

    @property
    def audit_organisation(self) -> Organisation:
        return self.provider

    @property
    def credited_pence(self) -> int:
        """What credit notes have taken off this invoice, incl. VAT."""
        return sum(note.gross_pence for note in self.credit_notes)

    @property
    def credited_net_pence(self) -> int:
        return sum(note.net_pence for note in self.credit_notes)

    @property
    def creditable_net_pence(self) -> int:
        """What is left to credit on the invoice, ex VAT."""
        return self.net_pence - self.credited_net_pence

    @property
    def amount_due_pence(self) -> int:
        """What the lead buyer owes on this invoice once credit notes are taken off."""
        return self.gross_pence - self.credited_pence

    @property
    def vat_treatment(self) -> VatTreatment | None:
        """The call-off's locked VAT treatment, which every line of the invoice carries."""
        return self.lines[0].vat_treatment if self.lines else None

    @property
    def is_open(self) -> bool:
        """Received and not yet paid: the 30-day clock is running."""
        return self.status in OPEN_STATUSES

    @classmethod
    def past_due(cls, today: date) -> sa.ColumnElement[bool]:
        """In SQL, what ``is_overdue`` says: open, past its due date, and something still owed
        once credit notes are taken off (an invoice credited to nothing is not chased)."""
        credited = (
            sa.select(sa.func.coalesce(sa.func.sum(CreditNote.gross_pence), 0))
            .where(CreditNote.invoice_id == cls.id)
            .correlate(cls)
            .scalar_subquery()
        )
        return sa.and_(
            cls.status.in_(OPEN_STATUSES), cls.due_on < today, cls.gross_pence > credited
        )

    def is_overdue(self, today: date) -> bool:
        return (
            self.is_open
            and self.due_on is not None
            and self.due_on < today
            and (self.amount_due_pence > 0)
        )


class InvoiceLine(db.Model):
    """One delivery record billed: its units at the call-off's locked unit price; or one verified
    outcome claim billed: one unit at the outcome's tariff."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        sa.CheckConstraint(
            "(delivery_id IS NULL) <> (outcome_claim_id IS NULL)", name="bills_one_thing"
        ),
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint("net_pence = units * unit_price_pence", name="net_is_units_times_price"),
        sa.CheckConstraint("gross_pence = net_pence + vat_pence", name="gross_is_net_plus_vat"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id", ondelete="CASCADE"))
    # Unique: a delivery is billed once, whichever run or invoice reaches it first.
    delivery_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("call_off_deliveries.id"), unique=True
    )
    # Unique too: a verified outcome claim is billed once.
    outcome_claim_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("outcome_claims.id"), unique=True
    )
    delivered_on: Mapped[date] = mapped_column(sa.Date)
    description: Mapped[str] = mapped_column(sa.String(DESCRIPTION_MAX))
    units: Mapped[int] = mapped_column()
    unit_price_pence: Mapped[int] = mapped_column(sa.BigInteger)
    vat_treatment: Mapped[VatTreatment] = mapped_column(
        enum_type(VatTreatment, "invoice_vat_treatment")
    )
    net_pence: Mapped[int] = mapped_column(sa.BigInteger)
    vat_pence: Mapped[int] = mapped_column(sa.BigInteger)
    gross_pence: Mapped[int] = mapped_column(sa.BigInteger)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class InvoiceCounter(db.Model):
    """The last invoice number each provider issued; locked while the next one is taken."""

    __tablename__ = "invoice_counters"

    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(default=0)
    # Credit notes are numbered in a series of their own (CN-000001), also without gaps.
    last_credit_note_number: Mapped[int] = mapped_column(default=0, server_default="0")


class CreditNote(db.Model):
    """A correction of an issued invoice: an amount (ex VAT) taken off it, with the VAT at the
    invoice's treatment. An issued invoice is never edited; it is credited.

    If the invoice was paid by card, the credit is refunded through Stripe (``refund_reference``);
    otherwise it reduces what the buyer owes, or is owed back to the buyer if paid by BACS.
    """

    __tablename__ = "credit_notes"
    __table_args__ = (
        sa.UniqueConstraint("provider_id", "sequence", name="uq_credit_notes_provider_sequence"),
        sa.CheckConstraint("net_pence > 0", name="net_positive"),
        sa.CheckConstraint("gross_pence = net_pence + vat_pence", name="gross_is_net_plus_vat"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    sequence: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(sa.String(NUMBER_MAX))
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX))
    net_pence: Mapped[int] = mapped_column(sa.BigInteger)
    vat_pence: Mapped[int] = mapped_column(sa.BigInteger)
    gross_pence: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    refund_reference: Mapped[str | None] = mapped_column(sa.String(PAYMENT_REFERENCE_MAX))

    invoice: Mapped[Invoice] = relationship(back_populates="credit_notes")
    created_by: Mapped[User | None] = relationship()

    audit_type = "credit_note"

    @property
    def audit_organisation(self) -> int:
        return self.provider_id
