"""Renewed evidence: it waits for an assessor, counts only once accepted, and a member who renews in
time and is accepted never lapses (JOURNEYS P6 and S1's last step), at the service level."""

from __future__ import annotations

import importlib.util
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation import uploads
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Criterion,
    EvidenceRenewal,
    LotMembership,
    MembershipStatus,
    QuestionType,
    RedeclarationRequest,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.accreditation.services import expiry, memberships
from marketplace.core.audit import AuditEvent, record
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_authority, make_evidence, make_provider
from tests.accreditation.test_expiry import admitted, count_actions, count_emails, statuses
from tests.factories import make_member

PDF = b"%PDF-1.4\n%renewed\n%%EOF"


def upload(organisation, admin, name="insurance-renewed.pdf"):
    return uploads.store_evidence(admin, organisation, name, io.BytesIO(PDF))


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def emails(template: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.template == template)
            .order_by(Notification.id)
        )
    )


def test_renewed_evidence_does_not_count_until_accepted(app):
    """The defect: renewed evidence was written onto the answer at once, so the expiry run took an
    unchecked file as valid and the member never lapsed, while no assessor could accept it."""
    expires = date(2027, 3, 10)
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    old_file = insurance.file_id
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 10), at=at(date(2027, 3, 1))
    )
    commit()
    assert renewal.status == RenewalStatus.PENDING
    assert insurance.file_id == old_file and insurance.evidence_expires_on == expires
    assert insurance.outcome == AnswerOutcome.PASS
    assert renewal.replaces_file_id == old_file and renewal.replaces_expires_on == expires

    run = expiry.check_expiry(date(2027, 3, 11))
    commit()
    assert run.suspended_for_evidence == 2
    assert statuses() == {MembershipStatus.SUSPENDED}
    (expired,) = emails("accreditation_evidence_expired")
    assert "We have your renewed evidence and will check it" in expired.body

    reinstated = memberships.accept_renewed_evidence(
        assessor, renewal, "Certificate checked", at=at(date(2027, 3, 12))
    )
    commit()
    assert len(reinstated) == 2 and statuses() == {MembershipStatus.ACTIVE}
    assert insurance.file_id == renewal.file_id
    assert insurance.evidence_expires_on == date(2028, 3, 10)
    assert insurance.assessed_by_id == assessor.id
    assert renewal.status == RenewalStatus.ACCEPTED and renewal.decided_by_id == assessor.id
    assert renewal.decision_reason == "Certificate checked"
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "evidence.accepted"))
    assert event.actor_id == assessor.id and event.organisation_id == organisation.id
    assert event.before["answer"]["evidence_expires_on"] == "2027-03-10"
    assert event.after["answer"]["evidence_expires_on"] == "2028-03-10"
    (accepted,) = emails("accreditation_evidence_accepted")
    assert accepted.to_email == admin.email
    assert "10 March 2028" in accepted.body and "Certificate checked" in accepted.body
    assert "is active again" in accepted.body


def test_a_member_who_renews_in_time_and_is_accepted_never_lapses(app):
    expires = date(2027, 3, 10)
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    day = date(2027, 2, 1)
    while day <= date(2027, 3, 20):
        if day == date(2027, 2, 20):
            renewal = memberships.renew_evidence(
                admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(day)
            )
        if day == date(2027, 3, 2):
            memberships.accept_renewed_evidence(assessor, renewal, at=at(day))
        run = expiry.check_expiry(day)
        commit()
        assert run.suspended_for_evidence == 0, day
        day += timedelta(days=1)
    assert statuses() == {MembershipStatus.ACTIVE}
    assert count_actions("membership.suspended") == 0
    # The 30-day reminder went before the renewal; none was sent while it waited or after.
    assert count_actions("evidence.reminder_30") == 1
    assert count_actions("evidence.reminder_7") == 0


def test_a_reminder_is_not_sent_while_renewed_evidence_waits(app):
    expires = date(2027, 3, 10)
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 2, 1))
    )
    expiry.check_expiry(date(2027, 3, 5))
    commit()
    assert count_emails("accreditation_evidence_reminder") == 0


def test_rejecting_keeps_the_evidence_in_force_and_tells_the_provider_why(app):
    expires = date(2027, 3, 10)
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 3, 1))
    )
    commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        memberships.reject_renewed_evidence(assessor, renewal, "   ", at=at(date(2027, 3, 2)))
    assert refused.value.errors == {"reason": ["Give the reason"]}
    db.session.rollback()
    assert renewal.status == RenewalStatus.PENDING

    memberships.reject_renewed_evidence(
        assessor,
        renewal,
        "The certificate covers £1 million, not £5 million",
        at=at(date(2027, 3, 2)),
    )
    commit()
    assert renewal.status == RenewalStatus.REJECTED
    assert insurance.evidence_expires_on == expires and insurance.file_id != renewal.file_id
    (email,) = emails("accreditation_evidence_rejected")
    assert email.to_email == admin.email
    assert "not £5 million" in email.body
    assert f"http://marketplace.test/accreditation/memberships/evidence/{insurance.id}/renew" in (
        email.body
    )
    assert count_actions("evidence.rejected") == 1
    # The rejected file does not count: the member lapses when the old evidence expires.
    assert expiry.check_expiry(date(2027, 3, 11)).suspended_for_evidence == 2


def test_deciding_twice_is_refused_and_writes_nothing_more(app):
    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    _, authority_admin = make_authority()
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 3, 1))
    )
    memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 3, 2)))
    commit()
    for decide in (
        lambda: memberships.accept_renewed_evidence(authority_admin, renewal),
        lambda: memberships.reject_renewed_evidence(authority_admin, renewal, "Wrong file"),
    ):
        with pytest.raises(BusinessRuleViolation) as refused:
            decide()
        assert refused.value.errors == {
            "decision": ["This renewed evidence has already been accepted"]
        }
        db.session.rollback()
    assert count_actions("evidence.accepted") == 1 and count_actions("evidence.rejected") == 0
    assert count_emails("accreditation_evidence_accepted") == 1


def test_a_second_upload_replaces_the_one_waiting(app):
    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    first = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 3, 1))
    )
    second = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 2), at=at(date(2027, 3, 2))
    )
    commit()
    assert first.status == RenewalStatus.SUPERSEDED and second.status == RenewalStatus.PENDING
    assert [r.id for r in db.session.scalars(memberships.pending_renewals_query())] == [second.id]
    with pytest.raises(BusinessRuleViolation) as refused:
        memberships.accept_renewed_evidence(assessor, first)
    assert "newer evidence" in refused.value.errors["decision"][0]


def test_renewed_evidence_that_has_itself_expired_cannot_be_accepted(app):
    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2027, 4, 1), at=at(date(2027, 3, 1))
    )
    commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 4, 2)))
    assert "expired on 1 April 2027" in refused.value.errors["decision"][0]
    db.session.rollback()
    assert renewal.status == RenewalStatus.PENDING


@pytest.mark.parametrize("role", [Role.PROVIDER_ADMIN, Role.BUYER, Role.APPROVER])
def test_only_assessors_and_the_authority_decide(app, role):
    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 3, 1))
    )
    commit()
    user = admin if role == Role.PROVIDER_ADMIN else make_member(role)
    with pytest.raises(PermissionDenied):
        memberships.accept_renewed_evidence(user, renewal)
    with pytest.raises(PermissionDenied):
        memberships.reject_renewed_evidence(user, renewal, "No")
    db.session.rollback()
    assert renewal.status == RenewalStatus.PENDING


def test_renewing_refuses_bad_input_and_other_organisations(app):
    expires = date(2027, 3, 10)
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    now = at(date(2027, 3, 1))
    evidence = upload(organisation, admin)
    cases = {
        date(2027, 3, 10): "must expire after the evidence it replaces",
        date(2027, 2, 1): "Enter an expiry date in the future",
        date(2032, 3, 2): "no more than 5 years from today (on or before 1 March 2032)",
    }
    for expires_on, message in cases.items():
        with pytest.raises(BusinessRuleViolation) as refused:
            memberships.renew_evidence(admin, insurance, evidence, expires_on, at=now)
        assert message in refused.value.errors["expires_on"][0], expires_on
    stranger_organisation, stranger = make_provider()
    with pytest.raises(NotFound):
        memberships.renew_evidence(stranger, insurance, evidence, date(2028, 1, 1), at=now)
    with pytest.raises(BusinessRuleViolation) as refused:
        memberships.renew_evidence(
            admin, insurance, make_evidence(stranger_organisation), date(2028, 1, 1), at=now
        )
    assert "file" in refused.value.errors
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(EvidenceRenewal.id))) == 0


def _suspend_for_expiry(expires: date):
    world, organisation, admin, assessor, application, insurance = admitted(expires)
    renewal = memberships.renew_evidence(
        admin, insurance, upload(organisation, admin), date(2028, 3, 1), at=at(date(2027, 3, 1))
    )
    expiry.check_expiry(expires + timedelta(days=1))
    commit()
    rows = list(db.session.scalars(sa.select(LotMembership).order_by(LotMembership.id)))
    assert {m.suspension_cause for m in rows} == {SuspensionCause.EVIDENCE_EXPIRED}
    return world, organisation, admin, assessor, application, insurance, renewal, rows


def test_a_membership_suspended_for_another_reason_stays_suspended(app):
    *_, assessor, application, insurance, renewal, rows = _suspend_for_expiry(date(2027, 3, 10))
    first, second = rows
    # The authority's own suspension outranks the expiry: acceptance does not lift it.
    first.suspension_cause = SuspensionCause.AUTHORITY
    first.suspension_reason = "Safeguarding complaint under investigation"
    commit()
    reinstated = memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 3, 12)))
    commit()
    assert reinstated == [second]
    assert first.status == MembershipStatus.SUSPENDED
    assert second.status == MembershipStatus.ACTIVE


def test_an_overdue_declaration_keeps_the_membership_suspended_for_that(app):
    world, organisation, admin, assessor, application, insurance, renewal, rows = (
        _suspend_for_expiry(date(2027, 3, 10))
    )
    first, second = rows
    request = RedeclarationRequest(
        membership_id=first.id, due_on=date(2027, 3, 5), reason="Annual check"
    )
    db.session.add(request)
    commit()
    reinstated = memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 3, 12)))
    commit()
    assert reinstated == [second]
    assert first.status == MembershipStatus.SUSPENDED
    assert first.suspension_cause == SuspensionCause.REDECLARATION_OVERDUE
    assert count_actions("membership.suspension_cause_changed") == 1
    # Answering the declaration is then all it takes.
    memberships.answer_redeclaration(admin, request, at=at(date(2027, 3, 13)))
    commit()
    assert first.status == MembershipStatus.ACTIVE


def test_other_expired_evidence_keeps_the_membership_suspended(app):
    world, organisation, admin, assessor, application, insurance, renewal, rows = (
        _suspend_for_expiry(date(2027, 3, 10))
    )
    policy = Criterion(
        lot=world.lot_a,
        position=3,
        question="Upload your safeguarding training certificate",
        type=QuestionType.FILE,
        mandatory=True,
        pass_fail=True,
        evidence_expires=True,
    )
    db.session.add(policy)
    db.session.flush()
    db.session.add(
        Answer(
            application_id=application.id,
            criterion_id=policy.id,
            file_id=make_evidence(organisation, admin).id,
            evidence_expires_on=date(2027, 3, 8),
            outcome=AnswerOutcome.PASS,
            assessed_at=at(date(2027, 1, 6)),
        )
    )
    commit()
    reinstated = memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 3, 12)))
    commit()
    assert reinstated == []
    assert statuses() == {MembershipStatus.SUSPENDED}
    (email,) = emails("accreditation_evidence_accepted")
    assert "active again" not in email.body


def _migration():
    path = next(
        Path(__file__).resolve().parents[2].glob("migrations/versions/*_evidence_renewals_*.py")
    )
    spec = importlib.util.spec_from_file_location("evidence_renewals_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_moves_renewals_written_onto_answers_by_the_old_code(app):
    """Before this change renew_evidence overwrote the answer and cleared its mark; the migration
    turns each such answer back into the evidence it replaced plus a renewal waiting."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    old_file, new_file = insurance.file_id, make_evidence(organisation, admin)
    record(
        admin,
        "evidence.renewed",
        application,
        before={"file_id": old_file, "evidence_expires_on": date(2027, 3, 10), "outcome": "pass"},
        after={"answer_id": insurance.id, "file_id": new_file.id, "evidence_expires_on": "x"},
    )
    insurance.file_id = new_file.id
    insurance.evidence_expires_on = date(2028, 3, 10)
    insurance.outcome = None
    insurance.assessed_at = None
    commit()
    with (
        db.engine.begin() as connection,
        Operations.context(MigrationContext.configure(connection)),
    ):
        _migration()._move_waiting_renewals()
    db.session.expire_all()
    (renewal,) = db.session.scalars(sa.select(EvidenceRenewal)).all()
    assert renewal.status == RenewalStatus.PENDING and renewal.answer_id == insurance.id
    assert renewal.file_id == new_file.id and renewal.expires_on == date(2028, 3, 10)
    assert renewal.replaces_file_id == old_file
    assert renewal.replaces_expires_on == date(2027, 3, 10)
    assert renewal.submitted_by_id == admin.id
    answer = db.session.get(Answer, insurance.id)
    assert answer.file_id == old_file and answer.evidence_expires_on == date(2027, 3, 10)
    assert answer.outcome == AnswerOutcome.PASS and answer.assessed_at is not None
    # It can now be accepted like any other.
    memberships.accept_renewed_evidence(assessor, renewal, at=at(date(2027, 3, 1)))
    commit()
    assert db.session.get(Answer, insurance.id).evidence_expires_on == date(2028, 3, 10)
