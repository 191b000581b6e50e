"""ACCEPTANCE 1: a charity registers, applies, is partly rejected with feedback, amends, is admitted."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType
from marketplace.accounts.services.registration import (
    ProviderRegistration,
    confirm_email,
    register_provider,
)
from marketplace.accreditation import uploads
from marketplace.accreditation.models import (
    AnswerOutcome,
    Application,
    ApplicationStatus,
    LotDecision,
    LotMembership,
    MembershipStatus,
)
from marketplace.accreditation.services import applications, assessment
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_authority, make_world

CHARITY_EMAIL = "sam@hope-housing.example"


def emails(template: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.template == template)
            .order_by(Notification.id)
        )
    )


def recipients(template: str) -> set[str]:
    return {n.to_email for n in emails(template)}


def actions_for(application: Application) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action)
            .where(
                AuditEvent.object_type == "application", AuditEvent.object_id == str(application.id)
            )
            .order_by(AuditEvent.id)
        )
    )


def all_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def answer_for(application, criterion):
    return next(a for a in application.answers if a.criterion_id == criterion.id)


def test_charity_applies_is_partly_rejected_amends_and_is_admitted(app):
    world = make_world()
    assessor, authority_admin = make_authority()
    commit()

    # 1. The charity registers and confirms its email address.
    user = register_provider(
        ProviderRegistration(
            organisation_name="Hope Housing Trust",
            organisation_type=OrganisationType.PROVIDER_VCSE,
            charity_number="1234567",
            companies_house_number=None,
            region_id=world.region_1.id,
            name="Sam Patel",
            email=CHARITY_EMAIL,
            password="a long and unusual passphrase 42",
        )
    )
    commit()
    confirmation = emails("confirm_email")[0]
    secret = re.search(r"/confirm-email/(\S+)", confirmation.body).group(1)
    confirm_email(secret)
    commit()
    charity = user.organisations[0]
    assert {"organisation.registered", "user.registered", "user.email_confirmed"} <= set(
        all_actions()
    )

    # 2. It applies to two lots in two regions, with its insurance certificate.
    submitted_at = datetime(2026, 12, 23, 10, 0, tzinfo=UTC)
    application = applications.start_application(user, charity, world.arrangement, at=submitted_at)
    assert re.fullmatch(r"APP-2026-\d{6}", application.reference)
    applications.choose_lots_and_areas(
        user,
        application,
        [world.lot_a.id, world.lot_b.id],
        [world.region_1.id, world.region_2.id],
        [],
    )
    certificate = uploads.store_evidence(
        user, charity, "insurance.pdf", io.BytesIO(b"%PDF-1.7\n% insurance certificate\n%%EOF\n")
    )
    applications.answer(user, application, world.safeguarding_a, True, at=submitted_at)
    applications.answer(
        user,
        application,
        world.insurance_a,
        file=certificate,
        expires_on=date(2027, 12, 31),
        at=submitted_at,
    )
    applications.answer(user, application, world.safeguarding_b, False, at=submitted_at)
    applications.answer(user, application, world.staff_b, "4", at=submitted_at)
    applications.set_partners(user, application, "Second Chance Mentoring CIC\n")
    applications.submit(user, application, declaration=True, at=submitted_at)
    commit()

    assert application.status == ApplicationStatus.SUBMITTED
    assert application.decision_due_on == date(2027, 1, 11)
    assert recipients("accreditation_application_submitted") == {CHARITY_EMAIL}
    confirmation = emails("accreditation_application_submitted")[0]
    assert application.reference in confirmation.subject
    assert "11 January 2027" in confirmation.body
    assert recipients("accreditation_application_received") == {
        assessor.email,
        authority_admin.email,
    }
    assert actions_for(application)[:3] == [
        "application.started",
        "application.scope_chosen",
        "application.answered",
    ]
    assert "application.partners_set" in actions_for(application)
    assert actions_for(application)[-1] == "application.submitted"
    assert "evidence.uploaded" in all_actions()

    # 3. An assessor declares no conflict, marks the answers and decides each lot.
    decided_at = datetime(2027, 1, 6, 14, 0, tzinfo=UTC)
    assessment.declare_conflict(assessor, application, False, at=decided_at)
    assessment.start_assessment(assessor, application, at=decided_at)
    for criterion in (world.safeguarding_a, world.insurance_a):
        assessment.mark_answer(
            assessor, answer_for(application, criterion), AnswerOutcome.PASS, at=decided_at
        )
    assessment.mark_answer(
        assessor,
        answer_for(application, world.safeguarding_b),
        AnswerOutcome.FAIL,
        "Employment staff work alone with people on probation: they need enhanced DBS checks.",
        at=decided_at,
    )
    assessment.decide_lot(
        assessor, application, world.lot_a, True, "Strong housing policy.", at=decided_at
    )
    assert application.status == ApplicationStatus.UNDER_ASSESSMENT  # lot B still pending
    assessment.decide_lot(
        assessor,
        application,
        world.lot_b,
        False,
        "Get enhanced DBS checks for your employment staff and apply again.",
        at=decided_at,
    )
    commit()

    assert application.status == ApplicationStatus.ADMITTED  # one lot admitted is enough
    assert application.decided_at is not None
    memberships = db.session.scalars(sa.select(LotMembership).order_by(LotMembership.id)).all()
    assert {(m.lot_id, m.region_id) for m in memberships} == {
        (world.lot_a.id, world.region_1.id),
        (world.lot_a.id, world.region_2.id),
    }
    assert all(m.status == MembershipStatus.ACTIVE for m in memberships)
    assert all(m.admitted_on == date(2027, 1, 6) for m in memberships)
    actions = actions_for(application)
    assert "application.conflict_declared" in actions
    assert "application.assessment_started" in actions
    assert actions.count("answer.marked") == 3
    assert actions.count("application.lot_decided") == 2
    assert actions[-1] == "application.admitted"
    assert all_actions().count("membership.admitted") == 2

    # 4. The charity is told, with the feedback per lot and per failed answer, and sees it.
    assert recipients("accreditation_application_decided") == {CHARITY_EMAIL}
    decision = emails("accreditation_application_decided")[0]
    assert application.reference in decision.subject
    assert "Get enhanced DBS checks for your employment staff" in decision.body
    assert "they need enhanced DBS checks" in decision.body
    assert "Do your staff hold enhanced DBS checks?" in decision.body
    assert "Accommodation: admitted" in decision.body
    assert "not admitted" in decision.body
    lot_b = next(al for al in application.lots if al.lot_id == world.lot_b.id)
    assert lot_b.decision == LotDecision.REJECTED
    assert lot_b.feedback.startswith("Get enhanced DBS checks")
    assert answer_for(application, world.safeguarding_b).outcome == AnswerOutcome.FAIL

    # 5. It amends the rejected lot and resubmits.
    resubmitted_at = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
    amended = applications.amend_after_rejection(user, application, at=resubmitted_at)
    assert amended.status == ApplicationStatus.DRAFT
    assert amended.amends_id == application.id
    assert [al.lot_id for al in amended.lots] == [world.lot_b.id]
    assert {a.region_id for a in amended.areas} == {world.region_1.id, world.region_2.id}
    assert answer_for(amended, world.staff_b).value_number == 4
    assert answer_for(amended, world.safeguarding_b).outcome is None
    # The old application keeps its feedback.
    assert lot_b.feedback.startswith("Get enhanced DBS checks")
    applications.answer(user, amended, world.safeguarding_b, True, at=resubmitted_at)
    applications.submit(user, amended, declaration=True, at=resubmitted_at)
    commit()
    assert amended.decision_due_on == date(2027, 2, 3)
    assert len(emails("accreditation_application_submitted")) == 2
    assert actions_for(amended)[0] == "application.started"
    assert "application.amended" in actions_for(amended)
    assert actions_for(amended)[-1] == "application.submitted"

    # 6. It is admitted to the second lot too.
    second_decision_at = datetime(2027, 1, 27, 11, 0, tzinfo=UTC)
    assessment.declare_conflict(assessor, amended, False, at=second_decision_at)
    assessment.mark_answer(
        assessor,
        answer_for(amended, world.safeguarding_b),
        AnswerOutcome.PASS,
        at=second_decision_at,
    )
    assessment.decide_lot(assessor, amended, world.lot_b, True, "", at=second_decision_at)
    commit()

    assert amended.status == ApplicationStatus.ADMITTED
    memberships = db.session.scalars(sa.select(LotMembership)).all()
    assert len(memberships) == 4
    assert {(m.lot_id, m.region_id) for m in memberships if m.application_id == amended.id} == {
        (world.lot_b.id, world.region_1.id),
        (world.lot_b.id, world.region_2.id),
    }
    assert len(emails("accreditation_application_decided")) == 2
    assert recipients("accreditation_application_decided") == {CHARITY_EMAIL}
    assert "You are now a member" in emails("accreditation_application_decided")[1].body
    assert actions_for(amended)[-1] == "application.admitted"
    assert all_actions().count("membership.admitted") == 4
