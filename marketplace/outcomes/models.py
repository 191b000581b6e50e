"""Outcome terms and outcome claims (payment by results).

An ``OutcomeTerm`` says that a call-off pays a tariff (ex VAT, in pence, at the call-off's locked
VAT treatment) each time the person achieves one of the listing's outcomes, no earlier than a
date and at most ``cap`` times, on the evidence named. Terms set when the call-off is placed are
agreed with it; terms added later are proposed by the lead buyer and agreed (or rejected) by the
provider, like a variation.

An ``OutcomeClaim`` is the provider's claim that the outcome was achieved, with an evidence file:
``claimed → verified | rejected`` by the lead buyer. Verified claims are billed on an outcome
invoice by the next run (``InvoiceLine.outcome_claim_id``).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import EvidenceFile
from marketplace.core.db import UTCDateTime, db, enum_type
from marketplace.orders.models import (
    EVIDENCE_REQUIRED_MAX,
    MAX_CAP,
    MAX_TARIFF_PENCE,
    OUTCOME_MAX,
    CallOff,
    CallOffStatus,
)

NOTE_MAX = 1_000
REASON_MAX = 1_000
REFERENCE_MAX = 20
# Outcome terms are added to a live call-off; claims are made once it is accepted, and after it
# is completed too (an outcome such as a tenancy kept for six months comes after the service).
TERMS_CHANGEABLE = (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY)
CLAIMABLE = (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY, CallOffStatus.COMPLETED)


class OutcomeTermStatus(enum.StrEnum):
    PROPOSED = "proposed"
    AGREED = "agreed"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return self.value.capitalize()


OUTCOME_TERM_TRANSITIONS: dict[OutcomeTermStatus, frozenset[OutcomeTermStatus]] = {
    OutcomeTermStatus.PROPOSED: frozenset({OutcomeTermStatus.AGREED, OutcomeTermStatus.REJECTED}),
    OutcomeTermStatus.AGREED: frozenset(),
    OutcomeTermStatus.REJECTED: frozenset(),
}


class ClaimStatus(enum.StrEnum):
    CLAIMED = "claimed"
    VERIFIED = "verified"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return self.value.capitalize()


CLAIM_TRANSITIONS: dict[ClaimStatus, frozenset[ClaimStatus]] = {
    ClaimStatus.CLAIMED: frozenset({ClaimStatus.VERIFIED, ClaimStatus.REJECTED}),
    ClaimStatus.VERIFIED: frozenset(),
    ClaimStatus.REJECTED: frozenset(),
}
# Claims that use up the cap: a rejected claim gives its place back.
COUNTED_CLAIMS = frozenset({ClaimStatus.CLAIMED, ClaimStatus.VERIFIED})


class OutcomeTerm(db.Model):
    __tablename__ = "outcome_terms"
    __table_args__ = (
        sa.CheckConstraint(
            f"tariff_pence > 0 AND tariff_pence <= {MAX_TARIFF_PENCE}", name="tariff_range"
        ),
        sa.CheckConstraint(f"cap >= 1 AND cap <= {MAX_CAP}", name="cap_range"),
        sa.CheckConstraint("status <> 'agreed' OR agreed_at IS NOT NULL", name="agreed_has_date"),
        sa.CheckConstraint(
            "status <> 'rejected' OR (rejected_at IS NOT NULL AND rejection_reason IS NOT NULL)",
            name="rejected_has_reason",
        ),
        # One live term per outcome of a call-off (a rejected proposal may be made again).
        sa.Index(
            "uq_outcome_terms_call_off_outcome",
            "call_off_id",
            "outcome",
            unique=True,
            sqlite_where=sa.text("status <> 'rejected'"),
            postgresql_where=sa.text("status <> 'rejected'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(
        sa.ForeignKey("call_offs.id", ondelete="CASCADE"), index=True
    )
    outcome: Mapped[str] = mapped_column(sa.String(OUTCOME_MAX))
    tariff_pence: Mapped[int] = mapped_column(sa.BigInteger)
    earliest_claim_on: Mapped[date] = mapped_column(sa.Date)
    evidence_required: Mapped[str] = mapped_column(sa.String(EVIDENCE_REQUIRED_MAX))
    cap: Mapped[int] = mapped_column()
    status: Mapped[OutcomeTermStatus] = mapped_column(
        enum_type(OutcomeTermStatus, "outcome_term_status")
    )
    proposed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    agreed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    agreed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))

    call_off: Mapped[CallOff] = relationship()
    proposed_by: Mapped[User | None] = relationship(foreign_keys=[proposed_by_id])
    claims: Mapped[list[OutcomeClaim]] = relationship(
        back_populates="term", order_by="OutcomeClaim.id"
    )

    audit_type = "outcome_term"

    @property
    def audit_organisation(self) -> Organisation:
        return self.call_off.lead_buyer

    @property
    def claims_used(self) -> int:
        return sum(1 for claim in self.claims if claim.status in COUNTED_CLAIMS)

    @property
    def claims_left(self) -> int:
        return max(self.cap - self.claims_used, 0)


class OutcomeClaim(db.Model):
    __tablename__ = "outcome_claims"
    __table_args__ = (
        sa.CheckConstraint(
            "status <> 'verified' OR (verified_at IS NOT NULL)", name="verified_has_date"
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR (rejected_at IS NOT NULL AND rejection_reason IS NOT NULL)",
            name="rejected_has_reason",
        ),
        sa.Index("ix_outcome_claims_status_verified", "status", "verified_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    term_id: Mapped[int] = mapped_column(
        sa.ForeignKey("outcome_terms.id", ondelete="CASCADE"), index=True
    )
    call_off_id: Mapped[int] = mapped_column(
        sa.ForeignKey("call_offs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[ClaimStatus] = mapped_column(enum_type(ClaimStatus, "outcome_claim_status"))
    achieved_on: Mapped[date] = mapped_column(sa.Date)
    note: Mapped[str] = mapped_column(sa.String(NOTE_MAX), default="")
    evidence_file_id: Mapped[int] = mapped_column(sa.ForeignKey("evidence_files.id"))
    claimed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    verified_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejected_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rejection_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))

    term: Mapped[OutcomeTerm] = relationship(back_populates="claims")
    call_off: Mapped[CallOff] = relationship()
    evidence: Mapped[EvidenceFile] = relationship()
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])

    audit_type = "outcome_claim"

    @property
    def audit_organisation(self) -> Organisation:
        return self.call_off.provider
