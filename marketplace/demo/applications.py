"""The demo's providers on the dynamic purchasing system: admitted members (two suspended, one
with insurance about to lapse and one with a renewal waiting), and applications in every other
state, each back-dated so that the assessor's list shows deadlines due, due today and overdue."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import (
    ApplicationStatus,
    ConflictDeclaration,
    EvidenceRenewal,
    LotDecision,
    LotMembership,
    MembershipStatus,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.core import audit
from marketplace.core.clock import add_working_days, london_date
from marketplace.core.db import db
from marketplace.demo.accreditation import (
    DEMO_ADMISSIONS,
    ApplicationBuilder,
    at,
    demo_evidence,
    live_arrangement,
)
from marketplace.reference.models import ProbationRegion


def load_accreditation_demo(
    authority_admin: User,
    assessor: User,
    providers: dict[str, Organisation],
    regions: dict[str, ProbationRegion],
    *,
    provider_admins: dict[str, User] | None = None,
    today: date | None = None,
) -> dict[str, int]:
    """A live DPS with lots in several regions, admitted members and applications in every
    state. Returns how many memberships and applications it made."""
    build = ApplicationBuilder(
        arrangement=live_arrangement(authority_admin, regions),
        authority_admin=authority_admin,
        assessor=assessor,
        providers=providers,
        regions=regions,
        provider_admins=provider_admins or {},
        today=today or london_date(),
    )
    _admit_members(build)
    _suspend_two_members(build)
    _expiring_evidence(build)
    _applications_waiting(build)
    _applications_decided(build)
    db.session.flush()
    return build.counts


def _admit_members(build: ApplicationBuilder) -> None:
    """One application each, one membership per lot and region."""
    today = build.today
    admitted_from = date(2026, 4, 7)
    for index, (key, (codes, region_codes)) in enumerate(DEMO_ADMISSIONS.items()):
        submitted_on = min(admitted_from + timedelta(days=9 * index), today - timedelta(days=21))
        decided = at(min(add_working_days(submitted_on, 7), today - timedelta(days=1)), 14)
        row = build.application(
            key,
            codes,
            region_codes,
            ApplicationStatus.ADMITTED,
            submitted_on=submitted_on,
            assessment_started_at=at(add_working_days(submitted_on, 2)),
            decided_at=decided,
        )
        for application_lot in row.lots:
            application_lot.decision = LotDecision.ADMITTED
            application_lot.decided_at = decided
            application_lot.decided_by_id = build.assessor.id
            for region_code in region_codes:
                _membership(build, row, application_lot.lot_id, region_code, decided.date())


def _membership(build: ApplicationBuilder, row, lot_id: int, region_code: str, on: date) -> None:
    membership = LotMembership(
        arrangement_id=build.arrangement.id,
        lot_id=lot_id,
        organisation_id=row.organisation_id,
        region_id=build.regions[region_code].id,
        application_id=row.id,
        status=MembershipStatus.ACTIVE,
        admitted_on=on,
    )
    db.session.add(membership)
    db.session.flush()
    audit.record(
        build.assessor,
        "membership.admitted",
        membership,
        after={
            "application": row.reference,
            "lot_id": lot_id,
            "region_id": membership.region_id,
            "admitted_on": membership.admitted_on,
            "source": "demo",
        },
    )
    build.counts["memberships"] += 1


def _suspend_two_members(build: ApplicationBuilder) -> None:
    """Two members are suspended, so that the member pages show it."""
    for key, cause, reason in (
        (
            "keystone",
            SuspensionCause.AUTHORITY,
            "A safeguarding complaint is being investigated.",
        ),
        (
            "caledonian",
            SuspensionCause.EVIDENCE_EXPIRED,
            "The evidence for the public liability insurance expired.",
        ),
    ):
        for membership in db.session.scalars(
            sa.select(LotMembership).where(LotMembership.organisation_id == build.providers[key].id)
        ):
            membership.status = MembershipStatus.SUSPENDED
            membership.suspended_at = at(build.today - timedelta(days=3))
            membership.suspension_cause = cause
            membership.suspension_reason = reason
            audit.record(
                build.authority_admin if cause == SuspensionCause.AUTHORITY else None,
                "membership.suspended",
                membership,
                before={"status": "active"},
                after={"status": "suspended", "reason": reason, "source": "demo"},
            )


def _expiring_evidence(build: ApplicationBuilder) -> None:
    """Northern Lights' insurance runs out within the month, so its people are asked to renew
    it; Caledonian's has expired (hence its suspension) and the renewed certificate it sent
    waits for an assessor."""
    today = build.today
    for answer in build.admitted_insurance("northern-lights"):
        answer.evidence_expires_on = today + timedelta(days=20)
    caledonian_admin = build.provider_admins.get("caledonian")
    for answer in build.admitted_insurance("caledonian"):
        answer.evidence_expires_on = today - timedelta(days=3)
        sent_at = at(today - timedelta(days=1))
        renewal = EvidenceRenewal(
            answer_id=answer.id,
            file_id=demo_evidence(build.providers["caledonian"], sent_at).id,
            expires_on=today + timedelta(days=365),
            replaces_file_id=answer.file_id,
            replaces_expires_on=answer.evidence_expires_on,
            status=RenewalStatus.PENDING,
            submitted_at=sent_at,
            submitted_by_id=caledonian_admin.id if caledonian_admin else None,
        )
        db.session.add(renewal)
        db.session.flush()
        audit.record(
            caledonian_admin,
            "evidence.renewed",
            renewal,
            organisation=build.providers["caledonian"],
            after={"answer_id": answer.id, "expires_on": renewal.expires_on, "source": "demo"},
        )


def _applications_waiting(build: ApplicationBuilder) -> None:
    """A draft, three submitted (due in two working days, due today, overdue) and one under
    assessment with the assessor's conflict declaration."""
    submitted = ApplicationStatus.SUBMITTED
    build.application("young-futures", ("ETE",), ("E",), ApplicationStatus.DRAFT)
    build.application("thrive", ("EWB",), ("G",), submitted, submitted_on=build.submitted_on_for(2))
    build.application(
        "common-ground", ("EWB", "ETE"), ("J",), submitted, submitted_on=build.submitted_on_for(0)
    )
    build.application(
        "kinship", ("FBD",), ("E", "G"), submitted, submitted_on=build.submitted_on_for(-3)
    )
    under = build.application(
        "victim-voice",
        ("WOM",),
        ("J",),
        ApplicationStatus.UNDER_ASSESSMENT,
        submitted_on=build.submitted_on_for(6),
        partners="Safe Spaces CIC (subcontractor for outreach)",
    )
    under.assessment_started_at = at(build.today - timedelta(days=1))
    db.session.add(
        ConflictDeclaration(
            application_id=under.id,
            assessor_id=build.assessor.id,
            has_conflict=False,
            declared_at=under.assessment_started_at,
        )
    )
    audit.record(
        build.assessor,
        "application.conflict_declared",
        under,
        after={"assessor_id": build.assessor.id, "has_conflict": False, "source": "demo"},
    )


def _applications_decided(build: ApplicationBuilder) -> None:
    """One rejected with feedback (a failed mark) and one withdrawn."""
    rejected_on = build.submitted_on_for(-20)
    rejected_decided = at(min(add_working_days(rejected_on, 8), build.today), 15)
    rejected = build.application(
        "borders-recovery",
        ("DNR",),
        ("A",),
        ApplicationStatus.REJECTED,
        submitted_on=rejected_on,
        assessment_started_at=at(rejected_on),
        decided_at=rejected_decided,
        marks="fail",
    )
    for application_lot in rejected.lots:
        application_lot.decision = LotDecision.REJECTED
        application_lot.decided_at = rejected_decided
        application_lot.decided_by_id = build.assessor.id
        application_lot.feedback = (
            "Your safeguarding policy must have been approved by your board in the last 12 "
            "months. Please have it reviewed, then amend and resubmit your application."
        )
    withdrawn_on = build.submitted_on_for(-8)
    build.application(
        "nw-liaison",
        ("DNR",),
        ("B",),
        ApplicationStatus.WITHDRAWN,
        submitted_on=withdrawn_on,
        withdrawn_at=at(withdrawn_on + timedelta(days=2)),
    )
