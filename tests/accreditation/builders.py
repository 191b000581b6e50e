"""Builders for the accreditation service tests: model rows built directly, flushed, not committed."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    Criterion,
    EvidenceFile,
    LegalRegime,
    QuestionType,
)
from marketplace.core.db import db
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from tests.factories import add_membership, make_member, make_organisation

_sequence = itertools.count(1)


@dataclass
class World:
    arrangement: Arrangement
    lot_a: ArrangementLot
    lot_b: ArrangementLot
    region_1: ProbationRegion
    region_2: ProbationRegion
    outside_region: ProbationRegion
    safeguarding_a: Criterion  # mandatory yes/no pass/fail, lot A
    insurance_a: Criterion  # mandatory file, expiring, lot A
    safeguarding_b: Criterion  # mandatory yes/no pass/fail, lot B
    staff_b: Criterion  # optional number, for information, lot B


def region(code: str) -> ProbationRegion:
    return db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == code))


def pcc_area_in(region_row: ProbationRegion) -> PccArea:
    return db.session.scalar(
        sa.select(PccArea).where(PccArea.region_id == region_row.id).order_by(PccArea.id)
    )


def category(code: str) -> ServiceCategory:
    return db.session.scalar(sa.select(ServiceCategory).where(ServiceCategory.code == code))


def make_world(
    *,
    decision_days: int = 10,
    extended_days: int = 15,
    status: ArrangementStatus = ArrangementStatus.LIVE,
) -> World:
    """A live arrangement with two lots, two regions and a few criteria."""
    n = next(_sequence)
    arrangement = Arrangement(
        # Not factories.make_arrangement's "DPS-TEST-n": each counts on its own, and the browser
        # tests' live server keeps both kinds in one database.
        reference=f"DPS-WORLD-{n:03d}",
        name=f"Rehabilitation services DPS {n}",
        description="Rehabilitation services for people on probation",
        legal_regime=LegalRegime.PCR2015_DPS,
        status=status,
        valid_from=date(2026, 1, 1),
        valid_to=date(2030, 12, 31),
        direct_award_limit_pence=3_000_000,
        decision_period_days=decision_days,
        extended_period_days=extended_days,
        went_live_at=None
        if status == ArrangementStatus.PENDING
        else datetime(2026, 1, 1, tzinfo=UTC),
    )
    region_1, region_2, outside = region("A"), region("B"), region("D")
    arrangement.regions = [region_1, region_2]
    lot_a = ArrangementLot(category=category("ACC"), description="Accommodation")
    lot_b = ArrangementLot(category=category("ETE"), description="Employment")
    arrangement.lots = [lot_a, lot_b]
    db.session.add(arrangement)
    db.session.flush()
    safeguarding_a = Criterion(
        lot=lot_a,
        position=1,
        question="Do you have a safeguarding policy?",
        type=QuestionType.YES_NO,
        mandatory=True,
        pass_fail=True,
        pass_answer=True,
    )
    insurance_a = Criterion(
        lot=lot_a,
        position=2,
        question="Upload your public liability insurance certificate",
        type=QuestionType.FILE,
        mandatory=True,
        pass_fail=True,
        evidence_expires=True,
    )
    safeguarding_b = Criterion(
        lot=lot_b,
        position=1,
        question="Do your staff hold enhanced DBS checks?",
        type=QuestionType.YES_NO,
        mandatory=True,
        pass_fail=True,
        pass_answer=True,
    )
    staff_b = Criterion(
        lot=lot_b,
        position=2,
        question="How many staff deliver employment support?",
        type=QuestionType.NUMBER,
        mandatory=False,
        pass_fail=False,
    )
    db.session.add_all([safeguarding_a, insurance_a, safeguarding_b, staff_b])
    db.session.flush()
    db.session.refresh(lot_a)
    db.session.refresh(lot_b)
    return World(
        arrangement, lot_a, lot_b, region_1, region_2, outside,
        safeguarding_a, insurance_a, safeguarding_b, staff_b,
    )  # fmt: skip


def make_provider(name: str | None = None) -> tuple[Organisation, User]:
    organisation = make_organisation(
        OrganisationType.PROVIDER_VCSE, name=name or f"Charity {next(_sequence)}"
    )
    admin = make_member(Role.PROVIDER_ADMIN, organisation)
    return organisation, admin


def make_authority() -> tuple[User, User]:
    """An assessor and an authority admin in one authority organisation."""
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS Commissioning")
    assessor = make_member(Role.ASSESSOR, authority)
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    return assessor, admin


def make_evidence(organisation: Organisation, user: User | None = None) -> EvidenceFile:
    n = next(_sequence)
    evidence = EvidenceFile(
        organisation_id=organisation.id,
        original_name=f"insurance-{n}.pdf",
        stored_name=f"{n:032x}",
        content_type="application/pdf",
        size_bytes=1234,
        sha256="0" * 64,
        uploaded_by_id=user.id if user else None,
    )
    db.session.add(evidence)
    db.session.flush()
    return evidence


__all__ = ["add_membership"]


def draft_application(world: World, organisation: Organisation, admin: User, *, at=None, lots=None):
    """A draft covering ``lots`` (both by default) in both regions, every question answered."""
    from marketplace.accreditation.services import applications as app_services

    at = at or datetime(2026, 12, 23, 10, 0, tzinfo=UTC)
    lots = lots if lots is not None else [world.lot_a, world.lot_b]
    application = app_services.start_application(admin, organisation, world.arrangement, at=at)
    app_services.choose_lots_and_areas(
        admin, application, [lot.id for lot in lots], [world.region_1.id, world.region_2.id], []
    )
    if world.lot_a in lots:
        app_services.answer(admin, application, world.safeguarding_a, True, at=at)
        app_services.answer(
            admin,
            application,
            world.insurance_a,
            file=make_evidence(organisation, admin),
            expires_on=date(2030, 6, 30),
            at=at,
        )
    if world.lot_b in lots:
        app_services.answer(admin, application, world.safeguarding_b, True, at=at)
    return application


def submitted_application(
    world: World, organisation: Organisation, admin: User, *, at=None, lots=None
):
    from marketplace.accreditation.services import applications as app_services

    at = at or datetime(2026, 12, 23, 10, 0, tzinfo=UTC)
    application = draft_application(world, organisation, admin, at=at, lots=lots)
    app_services.submit(admin, application, declaration=True, at=at)
    return application
