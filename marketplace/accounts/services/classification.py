"""A provider's dated VCSE and SME classification: recorded by the provider at registration and
confirmed (or changed) by it every year, corrected by the authority with a reason.

Entries are only ever added (``OrganisationClassification``): the one in force on a day is the
latest effective by then, so spend already paid keeps the classification it was paid under.
Here, below insight, because registration (accounts) records the first entry; the pages and the
API (insight) call these services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import (
    CHARITY_NUMBER_PATTERN,
    PROVIDER_TYPES,
    ClassificationSource,
    Membership,
    Organisation,
    OrganisationClassification,
    Role,
    StaffBand,
    TurnoverBand,
    User,
    VcseBasis,
    is_sme,
)
from marketplace.accounts.permissions import (
    can_confirm_classification,
    can_correct_classification,
    can_read_classification,
)
from marketplace.accounts.queries import (
    classification_history,
    classifications_in_force,
    confirmation_due_on,
    confirmation_overdue_cutoff,
    last_confirmed_column,
)
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.services import queue_email

REASON_MAX = 2000
REMINDER_ACTION = "classification.reminder_sent"
AUDIT_FIELDS = ("effective_from", "vcse_basis", "staff_band", "turnover_band", "vcse", "sme")


@dataclass(frozen=True)
class ClassificationAnswers:
    """The three questions, as submitted (text or enum; None when unanswered). A charity
    number is asked for when the basis is a registered charity and the organisation has none."""

    vcse_basis: str | None
    staff_band: str | None
    turnover_band: str | None
    charity_number: str | None = None


def _member(enum_type, raw, field: str, message: str, errors: dict):
    if raw in (None, ""):
        errors[field] = [message]
        return None
    try:
        return enum_type(raw)
    except ValueError:
        errors[field] = [message]
        return None


def _checked(
    charity_number_on_record: str | None, answers: ClassificationAnswers, errors: dict
) -> tuple[VcseBasis, StaffBand, TurnoverBand, str | None] | None:
    basis = _member(
        VcseBasis,
        answers.vcse_basis,
        "vcse_basis",
        "Select your organisation's legal form, or that it is not VCSE",
        errors,
    )
    staff = _member(
        StaffBand, answers.staff_band, "staff_band", "Select how many staff you employ", errors
    )
    turnover = _member(
        TurnoverBand,
        answers.turnover_band,
        "turnover_band",
        "Select your organisation's annual turnover",
        errors,
    )
    charity_number = "".join((answers.charity_number or "").split()).upper() or None
    if basis is VcseBasis.REGISTERED_CHARITY and not charity_number_on_record:
        # The register is the evidence of the basis: a registered charity without a number is
        # not one we can check, so the number is asked for rather than the entry refused.
        if charity_number is None:
            errors["charity_number"] = ["Enter your registered charity number"]
        elif not CHARITY_NUMBER_PATTERN.fullmatch(charity_number):
            errors["charity_number"] = [
                "Enter a charity number in the correct format, like 1234567, SC012345 or NIC100123"
            ]
    if errors or basis is None or staff is None or turnover is None:
        return None
    return basis, staff, turnover, charity_number


def _raise_if(errors: dict) -> None:
    if errors:
        raise BusinessRuleViolation(errors)


def _add_entry(
    actor: User | None,
    organisation: Organisation,
    checked: tuple[VcseBasis, StaffBand, TurnoverBand, str | None],
    *,
    effective_from: date,
    source: ClassificationSource,
    reason: str,
    action: str,
) -> OrganisationClassification:
    basis, staff, turnover, charity_number = checked
    if basis is VcseBasis.REGISTERED_CHARITY and not organisation.charity_number:
        organisation.charity_number = charity_number
        audit.record(
            actor,
            "organisation.charity_number_recorded",
            organisation,
            before={"charity_number": None},
            after={"charity_number": charity_number},
        )
    before = classifications_in_force([organisation.id], effective_from).get(organisation.id)
    entry = OrganisationClassification(
        organisation=organisation,
        effective_from=effective_from,
        vcse_basis=basis,
        staff_band=staff,
        turnover_band=turnover,
        # Derived here, once: spend queries read the flags without Python.
        vcse=basis.is_vcse,
        sme=is_sme(staff, turnover),
        source=source,
        reason=reason,
        recorded_by_id=actor.id if actor is not None else None,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        actor,
        action,
        entry,
        before=audit.snapshot(before, list(AUDIT_FIELDS)) if before is not None else None,
        after={**audit.snapshot(entry, list(AUDIT_FIELDS)), "source": source, "reason": reason},
    )
    return entry


def _require_provider(organisation: Organisation) -> None:
    if not organisation.is_provider:
        raise BusinessRuleViolation(
            {"vcse_basis": ["Only provider organisations are classified as VCSE or SME"]}
        )


def check_registration_answers(charity_number: str | None, answers: ClassificationAnswers) -> None:
    """Refuse a registration's classification answers before anything is written."""
    errors: dict = {}
    _checked(charity_number, answers, errors)
    _raise_if(errors)


def record_at_registration(
    actor: User, organisation: Organisation, answers: ClassificationAnswers
) -> OrganisationClassification:
    """The provider's answers when it registers: in force from the day it registered."""
    _require_provider(organisation)
    errors: dict = {}
    checked = _checked(organisation.charity_number, answers, errors)
    _raise_if(errors)
    return _add_entry(
        actor,
        organisation,
        checked,
        effective_from=london_date(),
        source=ClassificationSource.REGISTRATION,
        reason="",
        action="classification.registered",
    )


def confirm_classification(
    actor: User, organisation: Organisation, answers: ClassificationAnswers | None = None
) -> OrganisationClassification:
    """A provider's administrator confirms its classification as it stands (``answers`` None)
    or changes it, in force from today. Confirming unchanged still adds an entry: it is the
    record of the yearly confirmation."""
    if not can_read_classification(actor, organisation):
        raise NotFound("Organisation not found")
    if not can_confirm_classification(actor, organisation):
        raise PermissionDenied("Only your organisation's administrators can confirm this")
    today = london_date()
    if answers is None:
        current = classifications_in_force([organisation.id], today).get(organisation.id)
        if current is None:
            raise BusinessRuleViolation(
                {
                    "vcse_basis": [
                        "Your organisation has no classification yet: answer the questions"
                    ]
                }
            )
        answers = ClassificationAnswers(
            current.vcse_basis, current.staff_band, current.turnover_band
        )
    errors: dict = {}
    checked = _checked(organisation.charity_number, answers, errors)
    _raise_if(errors)
    return _add_entry(
        actor,
        organisation,
        checked,
        effective_from=today,
        source=ClassificationSource.CONFIRMATION,
        reason="",
        action="classification.confirmed",
    )


def correct_classification(
    actor: User,
    organisation: Organisation,
    answers: ClassificationAnswers,
    *,
    effective_from: date | None,
    reason: str | None,
) -> OrganisationClassification:
    """The authority corrects a provider's classification, with a reason, from today or a past
    day (not before the organisation existed, never a future day); spend from that day on counts
    by the correction. The provider's administrators are told by email."""
    if not can_correct_classification(actor, organisation):
        raise NotFound("Organisation not found")
    errors: dict = {}
    checked = _checked(organisation.charity_number, answers, errors)
    today = london_date()
    joined = london_date(organisation.created_at) if organisation.created_at else None
    if effective_from is None:
        errors["effective_from"] = ["Enter the date the classification applies from"]
    elif effective_from > today:
        # A future date would change spend counted before it happens: refused, nothing written.
        errors["effective_from"] = [
            "The date the classification applies from must be today or in the past"
        ]
    elif joined is not None and effective_from < joined:
        errors["effective_from"] = [
            f"The date must be on or after {joined:%-d %B %Y}, when {organisation.name} registered"
        ]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Enter the reason for the correction"]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"The reason must be {REASON_MAX} characters or fewer"]
    _raise_if(errors)
    entry = _add_entry(
        actor,
        organisation,
        checked,
        effective_from=effective_from,
        source=ClassificationSource.CORRECTION,
        reason=reason,
        action="classification.corrected",
    )
    for admin in provider_administrators(organisation):
        queue_email(
            admin.email,
            "classification_corrected",
            user=admin,
            organisation=organisation,
            entry=entry,
        )
    return entry


def provider_administrators(organisation: Organisation) -> list[User]:
    """The organisation's active provider administrators, who receive its classification email."""
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
        )
    )


def send_confirmation_reminders(today: date | None = None) -> int:
    """Email each active provider whose confirmation has fallen due, once for each time it falls
    due: the audit log records each reminder under the provider and the due date (or
    ``unclassified``), so a second run the same day, or any later day, sends nothing more."""
    today = today or london_date()
    sent = 0
    last_column = last_confirmed_column()
    rows = db.session.execute(
        sa.select(Organisation, last_column)
        .where(
            Organisation.type.in_(sorted(PROVIDER_TYPES)),
            Organisation.active.is_(True),
            sa.or_(last_column.is_(None), last_column <= confirmation_overdue_cutoff(today)),
        )
        .order_by(Organisation.id)
    ).all()
    for organisation, last in rows:
        due = confirmation_due_on(last)
        key = f"{organisation.id}@{due.isoformat() if due else 'unclassified'}"
        if _reminder_sent(key):
            continue
        for admin in provider_administrators(organisation):
            queue_email(
                admin.email,
                "classification_confirmation_due",
                user=admin,
                organisation=organisation,
                last_confirmed_on=last,
            )
        audit.record(
            None,
            REMINDER_ACTION,
            object_type="organisation_classification_due",
            object_id=key,
            organisation=organisation,
            after={"due_on": due, "last_confirmed_on": last},
        )
        sent += 1
    return sent


def _reminder_sent(key: str) -> bool:
    return (
        db.session.scalar(
            sa.select(AuditEvent.id)
            .where(
                AuditEvent.action == REMINDER_ACTION,
                AuditEvent.object_type == "organisation_classification_due",
                AuditEvent.object_id == key,
            )
            .limit(1)
        )
        is not None
    )


__all__ = [
    "ClassificationAnswers",
    "classification_history",
    "confirm_classification",
    "correct_classification",
    "record_at_registration",
    "send_confirmation_reminders",
]
