"""Each budget's history: who changed its allocation, when, from what to what, and why.

``Budget`` and ``FundingAuthorisation`` themselves stay in ``marketplace.orders.models``: placing
a call-off reads and writes them in the same transaction as the call-off.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.core.clock import utcnow
from marketplace.core.db import UTCDateTime, db
from marketplace.orders.models import MAX_VALUE_PENCE, Budget

REASON_MAX = 1_000
# The furthest ahead a budget or a standing authorisation may be set: this financial year and
# the next two (a figure a real organisation plans for; further ahead is a typing error).
YEARS_AHEAD = 2
# The most a budget, or an authorisation's limit, may hold: £1bn, as for a call-off's value.
MAX_AMOUNT_PENCE = MAX_VALUE_PENCE


class BudgetChange(db.Model):
    """One change of a budget's allocation (its first setting has no old amount)."""

    __tablename__ = "budget_changes"
    __table_args__ = (
        sa.CheckConstraint(
            f"new_allocated_pence >= 0 AND new_allocated_pence <= {MAX_AMOUNT_PENCE}",
            name="new_allocated_range",
        ),
        sa.CheckConstraint(
            "old_allocated_pence IS NULL OR old_allocated_pence >= 0",
            name="old_allocated_not_negative",
        ),
        sa.Index("ix_budget_changes_budget_changed", "budget_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    budget_id: Mapped[int] = mapped_column(sa.ForeignKey("budgets.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    old_allocated_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    new_allocated_pence: Mapped[int] = mapped_column(sa.BigInteger)
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")

    budget: Mapped[Budget] = relationship()
    changed_by: Mapped[User | None] = relationship()
