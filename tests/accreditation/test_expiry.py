"""ACCEPTANCE 3: expiring evidence reminds, suspends, and renewal reinstates; runs are repeatable."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from marketplace.accreditation import uploads
from marketplace.accreditation.cli import accreditation_cli
from marketplace.accreditation.models import (
    AnswerOutcome,
    LotMembership,
    MembershipStatus,
    SuspensionCause,
)
from marketplace.accreditation.services import assessment, expiry, memberships
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)

ADMITTED_AT = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)


def admitted(expires_on: date):
    """A charity admitted to lot A in two regions, its insurance expiring on ``expires_on``."""
    world = make_world()
    organisation, admin = make_provider()
    assessor, authority_admin = make_authority()
    application = submitted_application(
        world, organisation, admin, at=datetime(2026, 12, 23, 10, 0, tzinfo=UTC), lots=[world.lot_a]
    )
    assessment.declare_conflict(assessor, application, False, at=ADMITTED_AT)
    for row in application.answers:
        assessment.mark_answer(assessor, row, AnswerOutcome.PASS, at=ADMITTED_AT)
    assessment.decide_lot(assessor, application, world.lot_a, True, at=ADMITTED_AT)
    insurance = next(a for a in application.answers if a.criterion_id == world.insurance_a.id)
    insurance.evidence_expires_on = expires_on
    commit()
    return world, organisation, admin, assessor, application, insurance


def statuses() -> set[MembershipStatus]:
    return set(db.session.scalars(sa.select(LotMembership.status)))


def count_emails(template: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.template == template)
    )


def count_actions(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def test_expired_evidence_suspends_and_accepted_renewal_reinstates(app):
    today = date(2027, 3, 1)
    tomorrow = today + timedelta(days=1)
    world, organisation, admin, assessor, application, insurance = admitted(tomorrow)
    admin_email = admin.email

    run = expiry.check_expiry(today)
    commit()
    assert run.suspended_for_evidence == 0
    assert statuses() == {MembershipStatus.ACTIVE}

    run = expiry.check_expiry(tomorrow + timedelta(days=1))
    commit()
    assert run.suspended_for_evidence == 2
    rows = db.session.scalars(sa.select(LotMembership)).all()
    assert {m.status for m in rows} == {MembershipStatus.SUSPENDED}
    assert {m.suspension_cause for m in rows} == {SuspensionCause.EVIDENCE_EXPIRED}
    assert "expired on 2 March 2027" in rows[0].suspension_reason
    expired = db.session.scalars(
        sa.select(Notification).where(Notification.template == "accreditation_evidence_expired")
    ).all()
    assert [n.to_email for n in expired] == [admin_email]
    assert "2 March 2027" in expired[0].body
    assert count_actions("membership.suspended") == 2

    # Running again the same day, or the next, does nothing more.
    for later in (tomorrow + timedelta(days=1), tomorrow + timedelta(days=2)):
        run = expiry.check_expiry(later)
        commit()
        assert run.suspended_for_evidence == 0 and run.reminders == 0
    assert count_emails("accreditation_evidence_expired") == 1
    assert count_actions("membership.suspended") == 2

    # The provider uploads renewed insurance; it counts once the assessor accepts it.
    renewed = uploads.store_evidence(
        admin, organisation, "insurance-2028.pdf", io.BytesIO(b"%PDF-1.4\nrenewed\n%%EOF")
    )
    at = datetime(2027, 3, 4, 9, 0, tzinfo=UTC)
    renewal = memberships.renew_evidence(admin, insurance, renewed, date(2028, 3, 3), at=at)
    commit()
    assert statuses() == {MembershipStatus.SUSPENDED}
    assert count_emails("accreditation_evidence_renewed") == 2  # assessor and authority admin
    expiry.check_expiry(date(2027, 3, 4))
    assert statuses() == {MembershipStatus.SUSPENDED}

    reinstated = memberships.accept_renewed_evidence(assessor, renewal, at=at)
    commit()
    assert len(reinstated) == 2
    assert statuses() == {MembershipStatus.ACTIVE}
    assert all(m.suspension_cause is None for m in db.session.scalars(sa.select(LotMembership)))
    # One email tells the provider the decision and that its memberships are active again.
    accepted = db.session.scalars(
        sa.select(Notification).where(Notification.template == "accreditation_evidence_accepted")
    ).all()
    assert [n.to_email for n in accepted] == [admin_email]
    assert "3 March 2028" in accepted[0].body and "is active again" in accepted[0].body
    assert count_emails("accreditation_membership_reinstated") == 0
    assert count_actions("evidence.renewed") == 1
    assert count_actions("evidence.accepted") == 1
    assert count_actions("membership.reinstated") == 2

    run = expiry.check_expiry(date(2027, 3, 5))
    commit()
    assert run.suspended_for_evidence == 0 and run.reminders == 0
    assert statuses() == {MembershipStatus.ACTIVE}


def test_reminders_at_30_and_7_days_are_sent_once(app):
    expires = date(2027, 6, 30)
    *_, admin, _, _, _ = admitted(expires)
    admin_email = admin.email
    expected = {
        date(2027, 5, 30): 0,  # 31 days before
        date(2027, 5, 31): 1,  # 30 days before
        date(2027, 6, 1): 1,
        date(2027, 6, 22): 1,  # 8 days before
        date(2027, 6, 23): 2,  # 7 days before
        date(2027, 6, 24): 2,
        date(2027, 6, 29): 2,
    }
    for day, total in expected.items():
        expiry.check_expiry(day)
        expiry.check_expiry(day)  # a second run the same day sends nothing more
        commit()
        assert count_emails("accreditation_evidence_reminder") == total, day
    assert count_actions("evidence.reminder_30") == 1
    assert count_actions("evidence.reminder_7") == 1
    reminders = db.session.scalars(
        sa.select(Notification).where(Notification.template == "accreditation_evidence_reminder")
    ).all()
    assert {n.to_email for n in reminders} == {admin_email}
    assert "30 June 2027" in reminders[0].subject
    assert statuses() == {MembershipStatus.ACTIVE}


def test_late_first_run_sends_only_the_seven_day_reminder(app):
    admitted(date(2027, 6, 30))
    expiry.check_expiry(date(2027, 6, 26))
    commit()
    assert count_actions("evidence.reminder_30") == 0
    assert count_actions("evidence.reminder_7") == 1


def test_cli_check_expiry_commits_and_reports(app):
    admitted(date(2027, 3, 2))
    runner = app.test_cli_runner()
    result = runner.invoke(accreditation_cli, ["check-expiry", "--today", "2027-03-03"])
    assert result.exit_code == 0, result.output
    assert "suspended 2 membership(s) for expired evidence" in result.output
    db.session.expire_all()
    assert statuses() == {MembershipStatus.SUSPENDED}
    again = runner.invoke(accreditation_cli, ["check-expiry", "--today", "2027-03-03"])
    assert "suspended 0 membership(s)" in again.output


def test_overdue_redeclaration_suspends_until_answered(app):
    world, organisation, admin, assessor, application, insurance = admitted(date(2030, 1, 1))
    _, authority_admin = make_authority()
    membership = db.session.scalars(sa.select(LotMembership).order_by(LotMembership.id)).first()
    asked_at = datetime(2027, 3, 24, 10, 0, tzinfo=UTC)
    (request,) = memberships.request_redeclaration(
        authority_admin, membership=membership, reason="Annual check", at=asked_at
    )
    commit()
    # Thu 25 Mar (1); Good Friday and Easter Monday skipped; Tue 30 (2), Wed 31 (3), Thu 1 (4), Fri 2 (5).
    assert request.due_on == date(2027, 4, 2)
    assert count_emails("accreditation_declaration_renewal") == 1

    assert expiry.check_expiry(date(2027, 4, 2)).suspended_for_redeclaration == 0
    run = expiry.check_expiry(date(2027, 4, 5))
    commit()
    assert run.suspended_for_redeclaration == 1
    assert membership.status == MembershipStatus.SUSPENDED
    assert membership.suspension_cause == SuspensionCause.REDECLARATION_OVERDUE
    assert expiry.check_expiry(date(2027, 4, 5)).suspended_for_redeclaration == 0

    memberships.answer_redeclaration(admin, request, at=datetime(2027, 4, 6, 9, tzinfo=UTC))
    commit()
    assert membership.status == MembershipStatus.ACTIVE
    assert count_actions("membership.redeclared") == 1
