"""Application services: scope, answers, submission, withdrawal, references and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import ApplicationStatus, ArrangementStatus
from marketplace.accreditation.services import applications
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from tests.accreditation.builders import (
    draft_application,
    make_evidence,
    make_provider,
    make_world,
    pcc_area_in,
    submitted_application,
)
from tests.factories import make_member, make_organisation

AT = datetime(2026, 12, 23, 10, 0, tzinfo=UTC)


def test_references_are_sequential_per_year(app):
    world = make_world()
    organisation, admin = make_provider()
    first = applications.start_application(admin, organisation, world.arrangement, at=AT)
    second = applications.start_application(admin, organisation, world.arrangement, at=AT)
    next_year = applications.start_application(
        admin, organisation, world.arrangement, at=datetime(2027, 1, 4, tzinfo=UTC)
    )
    assert (first.reference, second.reference) == ("APP-2026-000001", "APP-2026-000002")
    assert next_year.reference == "APP-2027-000001"


def test_only_live_arrangements_and_providers(app):
    pending = make_world(status=ArrangementStatus.PENDING)
    organisation, admin = make_provider()
    with pytest.raises(BusinessRuleViolation):
        applications.start_application(admin, organisation, pending.arrangement, at=AT)
    world = make_world()
    buyer_org = make_organisation(OrganisationType.PROBATION_REGION)
    buyer = make_member(Role.BUYER, buyer_org)
    with pytest.raises(BusinessRuleViolation):
        applications.start_application(buyer, buyer_org, world.arrangement, at=AT)
    _, other_admin = make_provider()
    with pytest.raises(PermissionDenied):
        applications.start_application(other_admin, organisation, world.arrangement, at=AT)


def test_lots_and_areas_must_belong_to_the_arrangement(app):
    world = make_world()
    other = make_world()
    organisation, admin = make_provider()
    application = applications.start_application(admin, organisation, world.arrangement, at=AT)
    with pytest.raises(BusinessRuleViolation) as error:
        applications.choose_lots_and_areas(admin, application, [other.lot_a.id], [], [])
    assert "lots" in error.value.errors
    with pytest.raises(BusinessRuleViolation) as error:
        applications.choose_lots_and_areas(
            admin, application, [world.lot_a.id], [world.outside_region.id], []
        )
    assert "regions" in error.value.errors
    with pytest.raises(BusinessRuleViolation) as error:
        applications.choose_lots_and_areas(
            admin, application, [world.lot_a.id], [], [pcc_area_in(world.outside_region).id]
        )
    assert "pcc_areas" in error.value.errors
    inside = pcc_area_in(world.region_2)
    applications.choose_lots_and_areas(admin, application, [world.lot_a.id], [], [inside.id])
    assert [area.pcc_area_id for area in application.areas] == [inside.id]


def test_answers_are_validated_by_question_type(app):
    world = make_world()
    organisation, admin = make_provider()
    application = draft_application(world, organisation, admin, at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, world.safeguarding_a, "maybe", at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, world.staff_b, "three", at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, world.staff_b, 2.5, at=AT)
    applications.answer(admin, application, world.staff_b, "12", at=AT)
    # Files: the organisation's own, with an expiry date in the future for expiring evidence.
    _, outsider = make_provider()
    foreign = make_evidence(make_organisation())
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, world.insurance_a, file=foreign, at=AT)
    own = make_evidence(organisation)
    with pytest.raises(BusinessRuleViolation) as error:
        applications.answer(admin, application, world.insurance_a, file=own, at=AT)
    assert f"criterion-{world.insurance_a.id}-expires" in error.value.errors
    with pytest.raises(BusinessRuleViolation):
        applications.answer(
            admin, application, world.insurance_a, file=own, expires_on=date(2026, 12, 1), at=AT
        )
    # Someone from another organisation gets a 404.
    with pytest.raises(NotFound):
        applications.answer(outsider, application, world.safeguarding_a, True, at=AT)


def test_text_answers_are_limited(app):
    from marketplace.accreditation.models import Criterion, QuestionType
    from marketplace.core.db import db

    world = make_world()
    organisation, admin = make_provider()
    text = Criterion(lot=world.lot_b, question="Describe your service", type=QuestionType.TEXT)
    db.session.add(text)
    db.session.flush()
    application = draft_application(world, organisation, admin, at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, text, "x" * 5001, at=AT)
    assert applications.answer(admin, application, text, "  ok  ", at=AT).value_text == "ok"


def test_submit_names_each_unanswered_mandatory_question(app):
    world = make_world()
    organisation, admin = make_provider()
    application = applications.start_application(admin, organisation, world.arrangement, at=AT)
    with pytest.raises(BusinessRuleViolation) as error:
        applications.submit(admin, application, declaration=False, at=AT)
    assert {"lots", "areas", "declaration"} <= error.value.errors.keys()
    applications.choose_lots_and_areas(
        admin, application, [world.lot_a.id, world.lot_b.id], [world.region_1.id], []
    )
    applications.answer(admin, application, world.safeguarding_a, True, at=AT)
    with pytest.raises(BusinessRuleViolation) as error:
        applications.submit(admin, application, at=AT)
    messages = " ".join(m for ms in error.value.errors.values() for m in ms)
    assert world.insurance_a.question in messages
    assert world.safeguarding_b.question in messages
    assert world.staff_b.question not in messages  # optional
    assert application.status == ApplicationStatus.DRAFT


def test_withdraw_draft_or_submitted_only(app):
    world = make_world()
    organisation, admin = make_provider()
    application = submitted_application(world, organisation, admin, at=AT)
    _, outsider = make_provider()
    with pytest.raises(NotFound):
        applications.withdraw(outsider, application)
    applications.withdraw(admin, application, at=AT)
    assert application.status == ApplicationStatus.WITHDRAWN
    assert application.withdrawn_at is not None
    with pytest.raises(BusinessRuleViolation):
        applications.withdraw(admin, application)


def test_submitted_application_cannot_be_changed(app):
    world = make_world()
    organisation, admin = make_provider()
    application = submitted_application(world, organisation, admin, at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.answer(admin, application, world.safeguarding_a, False, at=AT)
    with pytest.raises(BusinessRuleViolation):
        applications.set_partners(admin, application, "Someone")
    with pytest.raises(BusinessRuleViolation):
        applications.amend_after_rejection(admin, application)
