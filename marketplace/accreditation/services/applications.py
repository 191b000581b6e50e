"""Application use cases: start, choose lots and areas, answer, submit, withdraw, amend.

Each takes the acting user, enforces the rules, audits in the same transaction, flushes and never
commits. Helpers shared by the other accreditation services live here too (state transitions,
dates in Europe/London, who to email).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Membership, Organisation, Role, User
from marketplace.accreditation.models import (
    ANSWER_TEXT_MAX,
    APPLICATION_TRANSITIONS,
    Answer,
    Application,
    ApplicationArea,
    ApplicationLot,
    ApplicationStatus,
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    Criterion,
    EvidenceFile,
    LotDecision,
    QuestionType,
)
from marketplace.accreditation.permissions import can_apply
from marketplace.core import audit
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.reference.models import PccArea, ProbationRegion

# The earliest date an answer to a date question may give (see _coerce_value).
ANSWER_EARLIEST = date(1900, 1, 1)
REFERENCE_PREFIX = "APP"
APPLICATION_FIELDS = [
    "status",
    "submitted_at",
    "decision_due_on",
    "extended_at",
    "extension_reason",
    "decided_at",
    "withdrawn_at",
]
OPEN_STATUSES = frozenset(
    {ApplicationStatus.DRAFT, ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT}
)
ASSESSABLE_STATUSES = frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT})


# ---------------------------------------------------------------------------------------------
# Shared helpers


def provider_admins(organisation: Organisation) -> list[User]:
    """The active provider administrators of ``organisation``: they receive its accreditation email."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organisation_id == organisation.id,
                Membership.role == Role.PROVIDER_ADMIN,
                User.active.is_(True),
            )
            .order_by(User.id)
        ).unique()
    )


def assessors() -> list[User]:
    """Every active assessor and authority administrator (in an active organisation)."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .join(Organisation, Organisation.id == Membership.organisation_id)
            .where(
                Membership.role.in_([Role.ASSESSOR, Role.AUTHORITY_ADMIN]),
                Organisation.active.is_(True),
                User.active.is_(True),
            )
            .order_by(User.id)
            .distinct()
        )
    )


def email_provider(organisation: Organisation, template: str, **context) -> None:
    """Queue ``template`` for each provider administrator of ``organisation``."""
    for user in provider_admins(organisation):
        queue_email(user.email, template, user=user, organisation=organisation, **context)


def require_applicant(actor: User, application: Application) -> None:
    """Only the applicant organisation's administrators act on its application (others: 404)."""
    if not can_apply(actor, application.organisation):
        raise NotFound("Application not found")


def _require_draft(application: Application) -> None:
    if application.status != ApplicationStatus.DRAFT:
        raise BusinessRuleViolation(
            {"status": ["This application has been submitted, so it can no longer be changed"]}
        )


def criteria_for(application: Application, lots: Iterable[ArrangementLot]) -> list[Criterion]:
    """The criteria in force for ``application`` on ``lots``, in question order."""
    return [
        criterion
        for lot in lots
        for criterion in lot.criteria
        if criterion.in_force(application.criteria_version)
    ]


def chosen_lots(application: Application) -> list[ArrangementLot]:
    return [application_lot.lot for application_lot in application.lots]


def is_answered(answer: Answer | None) -> bool:
    if answer is None:
        return False
    return (
        answer.value_bool is not None
        or bool(answer.value_text and answer.value_text.strip())
        or answer.value_number is not None
        or answer.value_date is not None
        or answer.file_id is not None
    )


def _next_reference(year: int) -> str:
    prefix = f"{REFERENCE_PREFIX}-{year}-"
    last = db.session.scalar(
        sa.select(sa.func.max(Application.reference)).where(
            Application.reference.like(f"{prefix}%")
        )
    )
    number = int(last.removeprefix(prefix)) + 1 if last else 1
    return f"{prefix}{number:06d}"


# ---------------------------------------------------------------------------------------------
# Use cases


def start_application(
    actor: User,
    organisation: Organisation,
    arrangement: Arrangement,
    *,
    at: datetime | None = None,
) -> Application:
    """Start a draft application by ``organisation`` to join ``arrangement``."""
    if not organisation.is_provider:
        raise BusinessRuleViolation({"organisation": ["Only providers can apply to join"]})
    if not can_apply(actor, organisation):
        raise PermissionDenied("Only a provider administrator can apply for the organisation")
    today = london_date(at)
    if arrangement.status != ArrangementStatus.LIVE or not (
        arrangement.valid_from <= today <= arrangement.valid_to
    ):
        raise BusinessRuleViolation(
            {"arrangement": [f"{arrangement.name} is not open to applications"]}
        )
    application = Application(
        reference=_next_reference(today.year),
        arrangement=arrangement,
        organisation=organisation,
        status=ApplicationStatus.DRAFT,
        criteria_version=arrangement.criteria_version,
        created_by_id=actor.id,
    )
    db.session.add(application)
    db.session.flush()
    audit.record(
        actor,
        "application.started",
        application,
        after={"reference": application.reference, "arrangement_id": arrangement.id},
    )
    return application


def choose_lots_and_areas(
    actor: User,
    application: Application,
    lot_ids: Iterable[int],
    region_ids: Iterable[int] = (),
    pcc_area_ids: Iterable[int] = (),
) -> None:
    """Set the lots applied for and the probation regions or PCC areas to be covered."""
    require_applicant(actor, application)
    _require_draft(application)
    arrangement = application.arrangement
    lot_ids, region_ids, pcc_area_ids = set(lot_ids), set(region_ids), set(pcc_area_ids)
    lots_by_id = {lot.id: lot for lot in arrangement.lots}
    covered_regions = {region.id for region in arrangement.regions}
    errors: dict[str, list[str]] = {}
    if lot_ids - lots_by_id.keys():
        errors["lots"] = [f"Choose only lots of {arrangement.name}"]
    if region_ids - covered_regions:
        errors["regions"] = [f"Choose only regions that {arrangement.name} covers"]
    pcc_areas = (
        db.session.scalars(sa.select(PccArea).where(PccArea.id.in_(pcc_area_ids))).all()
        if pcc_area_ids
        else []
    )
    if len(pcc_areas) != len(pcc_area_ids) or any(
        area.region_id not in covered_regions for area in pcc_areas
    ):
        errors["pcc_areas"] = [
            f"Choose only PCC areas within the regions {arrangement.name} covers"
        ]
    if errors:
        raise BusinessRuleViolation(errors)

    before = {
        "lot_ids": sorted(al.lot_id for al in application.lots),
        "region_ids": sorted(a.region_id for a in application.areas if a.region_id),
        "pcc_area_ids": sorted(a.pcc_area_id for a in application.areas if a.pcc_area_id),
    }
    application.lots = [al for al in application.lots if al.lot_id in lot_ids]
    kept_lots = {al.lot_id for al in application.lots}
    for lot_id in sorted(lot_ids - kept_lots):
        application.lots.append(ApplicationLot(lot=lots_by_id[lot_id]))
    application.areas = [
        area
        for area in application.areas
        if (area.region_id in region_ids) or (area.pcc_area_id in pcc_area_ids)
    ]
    kept_regions = {a.region_id for a in application.areas if a.region_id}
    kept_pcc = {a.pcc_area_id for a in application.areas if a.pcc_area_id}
    for region_id in sorted(region_ids - kept_regions):
        application.areas.append(ApplicationArea(region=db.session.get(ProbationRegion, region_id)))
    for pcc_area_id in sorted(pcc_area_ids - kept_pcc):
        application.areas.append(ApplicationArea(pcc_area=db.session.get(PccArea, pcc_area_id)))
    db.session.flush()
    audit.record(
        actor,
        "application.scope_chosen",
        application,
        before=before,
        after={
            "lot_ids": sorted(lot_ids),
            "region_ids": sorted(region_ids),
            "pcc_area_ids": sorted(pcc_area_ids),
        },
    )


def _coerce_value(criterion: Criterion, value) -> dict:
    """The Answer columns for ``value`` given the question type, or a BusinessRuleViolation."""
    field = f"criterion-{criterion.id}"
    if criterion.type == QuestionType.YES_NO:
        if not isinstance(value, bool):
            raise BusinessRuleViolation({field: ["Select yes or no"]})
        return {"value_bool": value}
    if criterion.type == QuestionType.TEXT:
        text = (value or "").strip() if isinstance(value, str | type(None)) else None
        if text is None or not text:
            raise BusinessRuleViolation({field: ["Enter your answer"]})
        if len(text) > ANSWER_TEXT_MAX:
            raise BusinessRuleViolation(
                {field: [f"Your answer must be {ANSWER_TEXT_MAX:,} characters or fewer"]}
            )
        return {"value_text": text}
    if criterion.type == QuestionType.NUMBER:
        if isinstance(value, bool):
            value = None
        if isinstance(value, str):
            try:
                value = int(value.strip().replace(",", ""))
            except ValueError:
                value = None
        if not isinstance(value, int):
            raise BusinessRuleViolation({field: ["Enter a whole number, like 12"]})
        return {"value_number": value}
    if criterion.type == QuestionType.DATE:
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                value = None
        if not isinstance(value, date) or isinstance(value, datetime):
            raise BusinessRuleViolation({field: ["Enter a real date, like 27 3 2026"]})
        # An answer may be a fact from long ago (a charity registered in 1985), so it may be
        # earlier than other dates; never further ahead.
        if message := date_horizon_error(value, "The date", earliest=ANSWER_EARLIEST):
            raise BusinessRuleViolation({field: [message]})
        return {"value_date": value}
    raise BusinessRuleViolation({field: ["Upload a file"]})  # files take the ``file`` argument


def answer(
    actor: User,
    application: Application,
    criterion: Criterion,
    value=None,
    *,
    file: EvidenceFile | None = None,
    expires_on: date | None = None,
    at: datetime | None = None,
) -> Answer:
    """Record (or replace) the answer to one question of a lot applied for."""
    require_applicant(actor, application)
    _require_draft(application)
    field = f"criterion-{criterion.id}"
    if criterion.lot_id not in {al.lot_id for al in application.lots} or not criterion.in_force(
        application.criteria_version
    ):
        raise BusinessRuleViolation({field: ["This question is not part of your application"]})
    if criterion.type == QuestionType.FILE:
        if file is None or file.organisation_id != application.organisation_id:
            raise BusinessRuleViolation({field: ["Upload a file as evidence"]})
        values: dict = {"file_id": file.id}
        if criterion.evidence_expires:
            if not isinstance(expires_on, date) or isinstance(expires_on, datetime):
                raise BusinessRuleViolation({f"{field}-expires": ["Enter the date it expires"]})
            if expires_on <= london_date(at):
                raise BusinessRuleViolation(
                    {f"{field}-expires": ["The evidence must not have expired already"]}
                )
            if message := date_horizon_error(expires_on, "The expiry date", today=london_date(at)):
                raise BusinessRuleViolation({f"{field}-expires": [message]})
            values["evidence_expires_on"] = expires_on
        else:
            values["evidence_expires_on"] = None
    else:
        values = _coerce_value(criterion, value)

    existing = next((a for a in application.answers if a.criterion_id == criterion.id), None)
    row = existing or Answer(criterion=criterion)
    before = _answer_snapshot(existing) if existing else None
    for column in ("value_bool", "value_text", "value_number", "value_date", "file_id"):
        setattr(row, column, values.get(column))
    row.evidence_expires_on = values.get("evidence_expires_on")
    if existing is None:
        application.answers.append(row)
    db.session.flush()
    audit.record(
        actor,
        "application.answered",
        application,
        before=before,
        after=_answer_snapshot(row),
    )
    return row


def _answer_snapshot(row: Answer) -> dict:
    snapshot = audit.snapshot(
        row,
        [
            "criterion_id",
            "value_bool",
            "value_text",
            "value_number",
            "value_date",
            "file_id",
            "evidence_expires_on",
        ],
    )
    if snapshot["value_text"] and len(snapshot["value_text"]) > 200:
        snapshot["value_text"] = snapshot["value_text"][:200] + "…"
    return snapshot


def set_partners(actor: User, application: Application, partners: str) -> None:
    """Name any subcontractors or consortium partners, one a line."""
    require_applicant(actor, application)
    _require_draft(application)
    lines = [line.strip() for line in (partners or "").splitlines() if line.strip()]
    text = "\n".join(lines)
    if len(text) > ANSWER_TEXT_MAX:
        raise BusinessRuleViolation(
            {"partners": [f"Partners must be {ANSWER_TEXT_MAX:,} characters or fewer"]}
        )
    before = application.partners
    application.partners = text
    db.session.flush()
    audit.record(
        actor,
        "application.partners_set",
        application,
        before={"partners": before},
        after={"partners": text},
    )


def withdraw(actor: User, application: Application, *, at: datetime | None = None) -> None:
    """Withdraw a draft or submitted application."""
    require_applicant(actor, application)
    lock(application)
    before = audit.snapshot(application, APPLICATION_FIELDS)
    transition(
        application, ApplicationStatus.WITHDRAWN, APPLICATION_TRANSITIONS, noun="application"
    )
    application.withdrawn_at = at or utcnow()
    application.withdrawn_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "application.withdrawn",
        application,
        before=before,
        after=audit.snapshot(application, APPLICATION_FIELDS),
    )


def missing_answers(application: Application) -> list[tuple[ArrangementLot, Criterion]]:
    """The mandatory questions of the chosen lots that have no answer yet."""
    answers = {a.criterion_id: a for a in application.answers}
    return [
        (criterion.lot, criterion)
        for criterion in criteria_for(application, chosen_lots(application))
        if criterion.mandatory and not is_answered(answers.get(criterion.id))
    ]


def submit(
    actor: User,
    application: Application,
    declaration: bool = True,
    *,
    at: datetime | None = None,
) -> None:
    """Declare and submit the application; the decision clock starts now."""
    require_applicant(actor, application)
    check_transition(
        application, ApplicationStatus.SUBMITTED, APPLICATION_TRANSITIONS, noun="application"
    )
    errors: dict[str, list[str]] = {}
    if not application.lots:
        errors["lots"] = ["Choose at least one lot"]
    if not application.areas:
        errors["areas"] = ["Choose at least one region or PCC area"]
    for lot, criterion in missing_answers(application):
        errors[f"criterion-{criterion.id}"] = [f"Answer “{criterion.question}” ({lot})"]
    if declaration is not True:
        errors["declaration"] = ["Confirm the declaration to submit your application"]
    if application.arrangement.status != ArrangementStatus.LIVE:
        errors["arrangement"] = [f"{application.arrangement.name} is not open to applications"]
    if errors:
        raise BusinessRuleViolation(errors)

    now = at or utcnow()
    before = audit.snapshot(application, APPLICATION_FIELDS)
    transition(
        application, ApplicationStatus.SUBMITTED, APPLICATION_TRANSITIONS, noun="application"
    )
    application.declared_at = now
    application.submitted_at = now
    application.submitted_by_id = actor.id
    application.decision_due_on = add_working_days(
        london_date(now), application.arrangement.decision_period_days
    )
    db.session.flush()
    audit.record(
        actor,
        "application.submitted",
        application,
        before=before,
        after=audit.snapshot(application, APPLICATION_FIELDS),
    )
    email_provider(
        application.organisation,
        "accreditation_application_submitted",
        application=application,
        arrangement=application.arrangement,
        lots=chosen_lots(application),
    )
    for user in assessors():
        queue_email(
            user.email,
            "accreditation_application_received",
            user=user,
            application=application,
            arrangement=application.arrangement,
            organisation=application.organisation,
            lots=chosen_lots(application),
        )


def amend_after_rejection(
    actor: User, rejected_application: Application, *, at: datetime | None = None
) -> Application:
    """Start a new draft from a decided application's rejected lots, with its areas and answers.

    The old application keeps its decision and feedback; the new one points at it (``amends``).
    """
    old = rejected_application
    require_applicant(actor, old)
    rejected_lots = [al.lot for al in old.lots if al.decision == LotDecision.REJECTED]
    if (
        old.status not in (ApplicationStatus.REJECTED, ApplicationStatus.ADMITTED)
        or not rejected_lots
    ):
        raise BusinessRuleViolation(
            {"status": ["Only an application with a rejected lot can be amended"]}
        )
    already = db.session.scalar(
        sa.select(Application.reference).where(
            Application.amends_id == old.id, Application.status.in_(OPEN_STATUSES)
        )
    )
    if already:
        raise BusinessRuleViolation(
            {"status": [f"This application is already being amended in {already}"]}
        )
    new = start_application(actor, old.organisation, old.arrangement, at=at)
    new.amends_id = old.id
    new.partners = old.partners
    for lot in rejected_lots:
        new.lots.append(ApplicationLot(lot=lot))
    for area in old.areas:
        new.areas.append(ApplicationArea(region_id=area.region_id, pcc_area_id=area.pcc_area_id))
    in_force = {c.id for c in criteria_for(new, rejected_lots)}
    for old_answer in old.answers:
        if old_answer.criterion_id not in in_force:
            continue
        new.answers.append(
            Answer(
                criterion_id=old_answer.criterion_id,
                value_bool=old_answer.value_bool,
                value_text=old_answer.value_text,
                value_number=old_answer.value_number,
                value_date=old_answer.value_date,
                file_id=old_answer.file_id,
                evidence_expires_on=old_answer.evidence_expires_on,
            )
        )
    db.session.flush()
    audit.record(
        actor,
        "application.amended",
        new,
        after={
            "amends": old.reference,
            "lot_ids": [lot.id for lot in rejected_lots],
            "answers_copied": len(new.answers),
        },
    )
    return new
