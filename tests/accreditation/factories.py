"""Accreditation test data builders. They flush (so ids exist) and never commit."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    Criterion,
    LegalRegime,
    LotMembership,
    MembershipStatus,
    QuestionType,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from tests.factories import make_organisation

_sequence = itertools.count(1)


def region(code: str) -> ProbationRegion:
    return db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == code))


def pcc_area(code: str) -> PccArea:
    return db.session.scalar(sa.select(PccArea).where(PccArea.code == code))


def category(code: str) -> ServiceCategory:
    return db.session.scalar(sa.select(ServiceCategory).where(ServiceCategory.code == code))


def make_arrangement(
    *,
    regime: LegalRegime = LegalRegime.PCR2015_DPS,
    status: ArrangementStatus = ArrangementStatus.PENDING,
    lots: tuple[str, ...] = ("ACC", "ETE"),
    regions: tuple[str, ...] = ("A", "B"),
    **fields,
) -> Arrangement:
    """An arrangement with lots (category codes) and regions (region codes), valid around today."""
    n = next(_sequence)
    today = date.today()
    arrangement = Arrangement(
        name=fields.pop("name", f"Arrangement {n}"),
        reference=fields.pop("reference", f"DPS-TEST-{n:03d}"),
        description=fields.pop("description", "Rehabilitation services"),
        legal_regime=regime,
        status=status,
        valid_from=fields.pop("valid_from", today - timedelta(days=30)),
        valid_to=fields.pop("valid_to", today + timedelta(days=365)),
        direct_award_limit_pence=fields.pop("direct_award_limit_pence", 3_000_000),
        went_live_at=utcnow() if status != ArrangementStatus.PENDING else None,
        closed_at=utcnow() if status == ArrangementStatus.CLOSED else None,
        **fields,
    )
    arrangement.regions = [region(code) for code in regions]
    for code in lots:
        arrangement.lots.append(ArrangementLot(category=category(code), description=f"Lot {code}"))
    db.session.add(arrangement)
    db.session.flush()
    return arrangement


def make_criterion(lot: ArrangementLot, **fields) -> Criterion:
    fields.setdefault("question", f"Question {next(_sequence)}")
    fields.setdefault("type", QuestionType.YES_NO)
    if fields["type"] == QuestionType.YES_NO:
        fields.setdefault("pass_answer", True)
    fields.setdefault("version", lot.arrangement.criteria_version)
    criterion = Criterion(lot=lot, **fields)
    db.session.add(criterion)
    db.session.flush()
    return criterion


def make_lot_membership(
    lot: ArrangementLot,
    organisation: Organisation | None = None,
    *,
    region_code: str | None = None,
    pcc_area_code: str | None = None,
    status: MembershipStatus = MembershipStatus.ACTIVE,
    admitted_on: date | None = None,
) -> LotMembership:
    """A member of ``lot`` in a region (the arrangement's first by default) or a PCC area."""
    if organisation is None:
        organisation = make_organisation(OrganisationType.PROVIDER_VCSE)
    if region_code is None and pcc_area_code is None:
        region_code = lot.arrangement.regions[0].code
    membership = LotMembership(
        arrangement_id=lot.arrangement_id,
        lot=lot,
        organisation=organisation,
        region=region(region_code) if region_code else None,
        pcc_area=pcc_area(pcc_area_code) if pcc_area_code else None,
        status=status,
        admitted_on=admitted_on or date(2026, 1, 15),
    )
    if status == MembershipStatus.SUSPENDED:
        from marketplace.accreditation.models import SuspensionCause

        membership.suspended_at = utcnow()
        membership.suspension_cause = SuspensionCause.AUTHORITY
    elif status == MembershipStatus.REMOVED:
        from marketplace.accreditation.models import RemovalReason

        membership.removed_at = utcnow()
        membership.removal_reason = RemovalReason.PROVIDER_REQUEST
    db.session.add(membership)
    db.session.flush()
    return membership
