"""Membership services: suspend, reinstate, remove, renewed declarations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import (
    AnswerOutcome,
    LotMembership,
    MembershipStatus,
    RemovalReason,
    SuspensionCause,
)
from marketplace.accreditation.services import assessment, memberships
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)


@pytest.fixture
def member(app):
    world = make_world()
    organisation, admin = make_provider()
    assessor, authority_admin = make_authority()
    application = submitted_application(world, organisation, admin, lots=[world.lot_a])
    assessment.declare_conflict(assessor, application, False)
    for row in application.answers:
        assessment.mark_answer(assessor, row, AnswerOutcome.PASS)
    assessment.decide_lot(assessor, application, world.lot_a, True)
    membership = db.session.scalars(sa.select(LotMembership).order_by(LotMembership.id)).first()
    return world, admin, assessor, authority_admin, membership


def templates() -> list[str]:
    return list(db.session.scalars(sa.select(Notification.template).order_by(Notification.id)))


def test_suspend_and_reinstate(member):
    _, admin, assessor, authority_admin, membership = member
    with pytest.raises(PermissionDenied):
        memberships.suspend(assessor, membership, "No")
    with pytest.raises(BusinessRuleViolation):
        memberships.suspend(authority_admin, membership, " ")
    memberships.suspend(authority_admin, membership, "Complaint under investigation")
    assert membership.status == MembershipStatus.SUSPENDED
    assert membership.suspension_cause == SuspensionCause.AUTHORITY
    with pytest.raises(BusinessRuleViolation):
        memberships.suspend(authority_admin, membership, "Twice")
    memberships.reinstate(authority_admin, membership)
    assert membership.status == MembershipStatus.ACTIVE
    assert membership.suspended_at is None
    assert templates()[-2:] == [
        "accreditation_membership_suspended",
        "accreditation_membership_reinstated",
    ]


def test_removal_is_immediate_recorded_and_told(member):
    _, admin, _, authority_admin, membership = member
    with pytest.raises(BusinessRuleViolation):
        memberships.remove(authority_admin, membership, "made_up", "x")
    memberships.suspend(authority_admin, membership, "Investigation")
    memberships.remove(
        authority_admin, membership, RemovalReason.MANDATORY_EXCLUSION, "Convicted of fraud"
    )
    assert membership.status == MembershipStatus.REMOVED
    assert membership.removal_reason == RemovalReason.MANDATORY_EXCLUSION
    assert membership.suspended_at is None
    email = db.session.scalars(
        sa.select(Notification).where(Notification.template == "accreditation_membership_removed")
    ).one()
    assert email.to_email == admin.email
    assert "Convicted of fraud" in email.body
    assert db.session.scalar(
        sa.select(AuditEvent.id).where(AuditEvent.action == "membership.removed")
    )
    with pytest.raises(BusinessRuleViolation):
        memberships.reinstate(authority_admin, membership)


def test_redeclaration_for_a_whole_lot(member):
    world, admin, _, authority_admin, membership = member
    with pytest.raises(BusinessRuleViolation):
        memberships.request_redeclaration(authority_admin, reason="x")
    requests = memberships.request_redeclaration(
        authority_admin,
        lot=world.lot_a,
        reason="Criteria changed",
        at=datetime(2027, 3, 1, 9, tzinfo=UTC),
    )
    assert len(requests) == 2  # both regions
    assert templates().count("accreditation_declaration_renewal") == 1  # one email per provider
    _, outsider = make_provider()
    with pytest.raises(NotFound):
        memberships.answer_redeclaration(outsider, requests[0])
    memberships.answer_redeclaration(admin, requests[0])
    with pytest.raises(BusinessRuleViolation):
        memberships.answer_redeclaration(admin, requests[0])


def _email(template: str) -> Notification:
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.template == template)
        .order_by(Notification.id.desc())
    ).first()


def test_the_emails_of_u2_lead_to_the_provider_s_memberships_and_name_the_reason(member, app):
    """U2: a provider suspended, asked to re-declare or removed is told where to go (the
    re-declaration email asked for an answer within 5 working days and said nowhere how), and
    a removal's reason in the words the authority chose ("mandatory exclusion" before)."""
    world, admin, _, authority_admin, membership = member
    page = f"{app.config['BASE_URL']}/accreditation/memberships"

    memberships.request_redeclaration(authority_admin, membership=membership, reason="Annual")
    asked = _email("accreditation_declaration_renewal")
    assert asked.to_email == admin.email and page in asked.body

    memberships.suspend(authority_admin, membership, "Complaint under investigation")
    suspended = _email("accreditation_membership_suspended")
    assert page in suspended.body and "Complaint under investigation" in suspended.body

    memberships.remove(authority_admin, membership, RemovalReason.PROVIDER_REQUEST, "Closing")
    removed = _email("accreditation_membership_removed")
    assert "Reason: The provider asked to leave\n" in removed.body
    assert page in removed.body
