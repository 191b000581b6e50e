"""Reading outcome terms and claims, and each funder's contingent liability."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.core.db import db
from marketplace.core.money import split_by_basis_points
from marketplace.orders.models import COUNTED_STATUSES, CallOff, CallOffFunder
from marketplace.outcomes.models import (
    ClaimStatus,
    OutcomeClaim,
    OutcomeTerm,
    OutcomeTermStatus,
)
from marketplace.outcomes.services import claim_gross


def terms_of(call_off_id: int) -> list[OutcomeTerm]:
    return list(
        db.session.scalars(
            sa.select(OutcomeTerm)
            .where(OutcomeTerm.call_off_id == call_off_id)
            .options(selectinload(OutcomeTerm.claims))
            .order_by(OutcomeTerm.id)
        )
    )


def claims_of(call_off_id: int) -> list[OutcomeClaim]:
    return list(
        db.session.scalars(
            sa.select(OutcomeClaim)
            .where(OutcomeClaim.call_off_id == call_off_id)
            .options(selectinload(OutcomeClaim.term), selectinload(OutcomeClaim.evidence))
            .order_by(OutcomeClaim.id)
        )
    )


@dataclass(frozen=True)
class LiabilityLine:
    call_off_id: int
    call_off_reference: str
    term_id: int
    outcome: str
    claims_left: int  # under the cap, not yet verified (claims awaiting a decision included)
    gross_pence: int  # what those claims could cost in all, VAT included
    share_pence: int  # the funder's part of it


@dataclass(frozen=True)
class Liability:
    organisation_id: int
    total_pence: int
    lines: list[LiabilityLine]


def contingent_liability(organisation_id: int) -> Liability:
    """What could still become payable under outcome terms of the live call-offs (open or
    completed) the organisation funds: per agreed term, the tariff with VAT times the claims not
    yet verified up to its cap, split by the funding shares (largest remainder, so the funders'
    parts sum exactly to the whole) and this organisation's part taken."""
    funded = sa.select(CallOffFunder.call_off_id).where(
        CallOffFunder.organisation_id == organisation_id
    )
    verified = (
        sa.select(OutcomeClaim.term_id, sa.func.count().label("verified"))
        .where(OutcomeClaim.status == ClaimStatus.VERIFIED)
        .group_by(OutcomeClaim.term_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(OutcomeTerm, sa.func.coalesce(verified.c.verified, 0))
        .join(CallOff, CallOff.id == OutcomeTerm.call_off_id)
        .outerjoin(verified, verified.c.term_id == OutcomeTerm.id)
        .where(
            OutcomeTerm.status == OutcomeTermStatus.AGREED,
            CallOff.id.in_(funded),
            CallOff.status.in_(list(COUNTED_STATUSES)),
        )
        .options(selectinload(OutcomeTerm.call_off).selectinload(CallOff.funders))
        .order_by(OutcomeTerm.call_off_id, OutcomeTerm.id)
    ).all()
    lines = []
    for term, verified_count in rows:
        call_off = term.call_off
        left = max(term.cap - verified_count, 0)
        if not left:
            continue
        gross = left * claim_gross(term.tariff_pence, call_off.vat_treatment)
        funders = list(call_off.funders)
        parts = split_by_basis_points(gross, [f.basis_points for f in funders])
        share = next(
            part
            for f, part in zip(funders, parts, strict=True)
            if f.organisation_id == organisation_id
        )
        lines.append(
            LiabilityLine(
                call_off.id, call_off.reference, term.id, term.outcome, left, gross, share
            )
        )
    return Liability(organisation_id, sum(line.share_pence for line in lines), lines)
