"""Arrangement use cases: set up the DPS, its lots, regions and criteria, and move it between states.

Each takes the acting user, enforces the rules, audits, flushes and never commits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import Membership, Role, User
from marketplace.accreditation.models import (
    ARRANGEMENT_NAME_MAX,
    ARRANGEMENT_TRANSITIONS,
    DEFAULT_DECISION_DAYS,
    DEFAULT_EXTENDED_DAYS,
    DEFAULT_REDECLARATION_DAYS,
    QUESTION_MAX,
    REASON_MAX,
    ApplicationLot,
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    AwardLimitScope,
    Criterion,
    LegalRegime,
    LotMembership,
    MembershipStatus,
    QuestionType,
    RedeclarationRequest,
)
from marketplace.core import audit
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, transition
from marketplace.core.validation import date_horizon_error
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

REFERENCE_PATTERN = re.compile(r"^[A-Z0-9-]{3,40}$")
MAX_DECISION_DAYS = 100
ARRANGEMENT_FIELDS = [
    "name",
    "reference",
    "description",
    "legal_regime",
    "valid_from",
    "valid_to",
    "direct_award_limit_pence",
    "award_limit_scope",
    "decision_period_days",
    "extended_period_days",
]
CRITERION_FIELDS = [
    "question",
    "guidance",
    "type",
    "mandatory",
    "pass_fail",
    "pass_answer",
    "evidence_expires",
    "position",
]
FROZEN_MESSAGE = (
    "The criteria of {name} cannot change: it is a {regime} and it is live. Under the "
    "Procurement Act 2023 the conditions of membership cannot change once the market is live. "
    "Set up a new arrangement if the conditions must change."
)


def _require(errors: dict[str, list[str]]) -> None:
    if errors:
        raise BusinessRuleViolation(errors)


def normalise_reference(reference: str) -> str:
    return (reference or "").strip().upper()


# ---------------------------------------------------------------------------------------------
# Details


def _check_details(
    errors: dict[str, list[str]],
    *,
    name: str,
    reference: str,
    valid_from: date,
    valid_to: date,
    direct_award_limit_pence: int,
    decision_period_days: int,
    extended_period_days: int,
    arrangement: Arrangement | None = None,
) -> None:
    if not name or not name.strip():
        errors["name"] = ["Enter the arrangement's name"]
    elif len(name) > ARRANGEMENT_NAME_MAX:
        errors["name"] = [f"Name must be {ARRANGEMENT_NAME_MAX} characters or fewer"]
    if not REFERENCE_PATTERN.match(reference):
        errors["reference"] = [
            "Enter a reference of 3 to 40 capital letters, digits and hyphens, like DPS-2026-01"
        ]
    else:
        clash = db.session.scalar(
            sa.select(Arrangement.id).where(Arrangement.reference == reference)
        )
        if clash is not None and (arrangement is None or clash != arrangement.id):
            errors["reference"] = ["Another arrangement already has this reference"]
    if valid_from is None:
        errors["valid_from"] = ["Enter the date the arrangement starts"]
    elif message := date_horizon_error(valid_from, "The start date"):
        errors["valid_from"] = [message]
    if valid_to is None:
        errors["valid_to"] = ["Enter the date the arrangement ends"]
    elif valid_from is not None and valid_to <= valid_from:
        errors["valid_to"] = ["The end date must be after the start date"]
    elif message := date_horizon_error(valid_to, "The end date", start=valid_from):
        errors["valid_to"] = [message]
    if (
        not isinstance(direct_award_limit_pence, int)
        or isinstance(direct_award_limit_pence, bool)
        or direct_award_limit_pence < 0
    ):
        errors["direct_award_limit_pence"] = ["The direct-award limit must be £0 or more"]
    if not isinstance(decision_period_days, int) or not (
        1 <= decision_period_days <= MAX_DECISION_DAYS
    ):
        errors["decision_period_days"] = [
            f"The decision period must be between 1 and {MAX_DECISION_DAYS} working days"
        ]
    elif not isinstance(extended_period_days, int) or not (
        decision_period_days <= extended_period_days <= MAX_DECISION_DAYS
    ):
        errors["extended_period_days"] = [
            "The extended period must be at least the decision period and at most "
            f"{MAX_DECISION_DAYS} working days"
        ]


def _award_limit_scope(value, errors: dict[str, list[str]]) -> AwardLimitScope | None:
    """Which call-offs count together towards the direct-award limit (see orders)."""
    try:
        return AwardLimitScope(value)
    except ValueError:
        errors["award_limit_scope"] = [
            "Choose which call-offs count together towards the direct-award limit"
        ]
        return None


def _regions(region_ids: Iterable[int], errors: dict[str, list[str]]) -> list[ProbationRegion]:
    ids = sorted(set(region_ids or ()))
    regions = (
        list(db.session.scalars(sa.select(ProbationRegion).where(ProbationRegion.id.in_(ids))))
        if ids
        else []
    )
    if len(regions) != len(ids):
        errors["region_ids"] = ["Choose regions from the list"]
    return regions


def _categories(
    category_ids: Iterable[int], errors: dict[str, list[str]]
) -> dict[int, ServiceCategory]:
    ids = list(category_ids)
    if len(set(ids)) != len(ids):
        errors["lots"] = ["Each service category can be a lot only once"]
    found = (
        {
            c.id: c
            for c in db.session.scalars(
                sa.select(ServiceCategory).where(ServiceCategory.id.in_(set(ids)))
            )
        }
        if ids
        else {}
    )
    if len(found) != len(set(ids)):
        errors["lots"] = ["Choose lots from the list of service categories"]
    return found


def create_arrangement(
    actor: User,
    *,
    name: str,
    reference: str,
    description: str = "",
    legal_regime: LegalRegime,
    valid_from: date,
    valid_to: date,
    direct_award_limit_pence: int,
    award_limit_scope: AwardLimitScope | str = AwardLimitScope.PROVIDER_AND_LOT,
    decision_period_days: int = DEFAULT_DECISION_DAYS,
    extended_period_days: int = DEFAULT_EXTENDED_DAYS,
    region_ids: Iterable[int] = (),
    lots: Iterable[tuple[int, str]] = (),
) -> Arrangement:
    """Create a pending arrangement with its regions and lots."""
    reference = normalise_reference(reference)
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        legal_regime = LegalRegime(legal_regime)
    except ValueError:
        errors["legal_regime"] = ["Choose the legal regime from the list"]
    award_limit_scope = _award_limit_scope(award_limit_scope, errors)
    _check_details(
        errors,
        name=name,
        reference=reference,
        valid_from=valid_from,
        valid_to=valid_to,
        direct_award_limit_pence=direct_award_limit_pence,
        decision_period_days=decision_period_days,
        extended_period_days=extended_period_days,
    )
    regions = _regions(region_ids, errors)
    lots = list(lots)
    categories = _categories([category_id for category_id, _ in lots], errors)
    _require(errors)
    arrangement = Arrangement(
        name=name,
        reference=reference,
        description=(description or "").strip(),
        legal_regime=legal_regime,
        status=ArrangementStatus.PENDING,
        valid_from=valid_from,
        valid_to=valid_to,
        direct_award_limit_pence=direct_award_limit_pence,
        award_limit_scope=award_limit_scope,
        decision_period_days=decision_period_days,
        extended_period_days=extended_period_days,
        created_by_id=actor.id,
    )
    arrangement.regions = regions
    for category_id, lot_description in lots:
        arrangement.lots.append(
            ArrangementLot(
                category=categories[category_id], description=(lot_description or "").strip()
            )
        )
    db.session.add(arrangement)
    db.session.flush()
    audit.record(
        actor,
        "arrangement.created",
        arrangement,
        after={
            **audit.snapshot(arrangement, ARRANGEMENT_FIELDS),
            "regions": [r.code for r in regions],
            "lots": [lot.category.code for lot in arrangement.lots],
        },
    )
    return arrangement


def _refuse_if_closed(arrangement: Arrangement) -> None:
    if arrangement.status == ArrangementStatus.CLOSED:
        raise BusinessRuleViolation({"": [f"{arrangement.name} is closed and cannot change."]})


def update_arrangement(actor: User, arrangement: Arrangement, **changes) -> Arrangement:
    """Change an arrangement's details; the legal regime is fixed once it has gone live."""
    unknown = set(changes) - set(ARRANGEMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown arrangement fields: {sorted(unknown)}")
    _refuse_if_closed(arrangement)
    if "reference" in changes:
        changes["reference"] = normalise_reference(changes["reference"])
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
    if "description" in changes:
        changes["description"] = (changes["description"] or "").strip()
    errors: dict[str, list[str]] = {}
    if "legal_regime" in changes:
        try:
            changes["legal_regime"] = LegalRegime(changes["legal_regime"])
        except ValueError:
            errors["legal_regime"] = ["Choose the legal regime from the list"]
        else:
            if (
                changes["legal_regime"] != arrangement.legal_regime
                and arrangement.status != ArrangementStatus.PENDING
            ):
                errors["legal_regime"] = [
                    "The legal regime cannot change once the arrangement has gone live"
                ]
    if "award_limit_scope" in changes:
        changes["award_limit_scope"] = _award_limit_scope(changes["award_limit_scope"], errors)
    merged = {name: changes.get(name, getattr(arrangement, name)) for name in ARRANGEMENT_FIELDS}
    _check_details(
        errors,
        name=merged["name"],
        reference=merged["reference"],
        valid_from=merged["valid_from"],
        valid_to=merged["valid_to"],
        direct_award_limit_pence=merged["direct_award_limit_pence"],
        decision_period_days=merged["decision_period_days"],
        extended_period_days=merged["extended_period_days"],
        arrangement=arrangement,
    )
    _require(errors)
    before = audit.snapshot(arrangement, ARRANGEMENT_FIELDS)
    for name, value in changes.items():
        setattr(arrangement, name, value)
    after = audit.snapshot(arrangement, ARRANGEMENT_FIELDS)
    changed = [name for name in ARRANGEMENT_FIELDS if before[name] != after[name]]
    if changed:
        db.session.flush()
        audit.record(
            actor,
            "arrangement.updated",
            arrangement,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
        )
    return arrangement


# ---------------------------------------------------------------------------------------------
# Lots and regions


def _check_scope_editable(arrangement: Arrangement) -> None:
    """Lots and regions change while pending, or while live under the 2015 regulations."""
    if arrangement.status == ArrangementStatus.PENDING:
        return
    if (
        arrangement.legal_regime == LegalRegime.PCR2015_DPS
        and arrangement.status != ArrangementStatus.CLOSED
    ):
        return
    if arrangement.status == ArrangementStatus.CLOSED:
        _refuse_if_closed(arrangement)
    raise BusinessRuleViolation(
        {
            "": [
                f"The lots and regions of {arrangement.name} cannot change: under the "
                "Procurement Act 2023 the scope of a market cannot change once it is live."
            ]
        }
    )


def _current_member_count(*conditions) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(LotMembership.id)).where(
                LotMembership.status != MembershipStatus.REMOVED, *conditions
            )
        )
        or 0
    )


def add_lot(
    actor: User, arrangement: Arrangement, category_id: int, description: str = ""
) -> ArrangementLot:
    """Add a service category as a lot."""
    _check_scope_editable(arrangement)
    errors: dict[str, list[str]] = {}
    categories = _categories([category_id], errors)
    if not errors and any(lot.category_id == category_id for lot in arrangement.lots):
        errors["category_id"] = [f"{categories[category_id].name} is already a lot"]
    elif "lots" in errors:
        errors = {"category_id": errors["lots"]}
    _require(errors)
    lot = ArrangementLot(category=categories[category_id], description=(description or "").strip())
    arrangement.lots.append(lot)
    db.session.flush()
    audit.record(
        actor,
        "arrangement.lot_added",
        lot,
        after={
            "arrangement_id": arrangement.id,
            "category": lot.category.code,
            "description": lot.description,
        },
    )
    return lot


def update_lot(actor: User, lot: ArrangementLot, description: str) -> ArrangementLot:
    """Change a lot's description (it says what the lot buys; it is not a condition)."""
    _refuse_if_closed(lot.arrangement)
    before = {"description": lot.description}
    lot.description = (description or "").strip()
    if before["description"] != lot.description:
        db.session.flush()
        audit.record(
            actor,
            "arrangement.lot_updated",
            lot,
            before=before,
            after={"description": lot.description},
        )
    return lot


def remove_lot(actor: User, lot: ArrangementLot) -> None:
    """Remove a lot that has no members."""
    arrangement = lot.arrangement
    _check_scope_editable(arrangement)
    if _current_member_count(LotMembership.lot_id == lot.id):
        raise BusinessRuleViolation(
            {"": [f"{lot.category.name} has members, so it cannot be removed."]}
        )
    if arrangement.status != ArrangementStatus.PENDING:
        used = db.session.scalar(
            sa.select(sa.func.count(ApplicationLot.id)).where(ApplicationLot.lot_id == lot.id)
        )
        if used:
            raise BusinessRuleViolation(
                {"": [f"Providers have applied for {lot.category.name}, so it cannot be removed."]}
            )
    audit.record(
        actor,
        "arrangement.lot_removed",
        lot,
        before={"arrangement_id": arrangement.id, "category": lot.category.code},
    )
    for criterion in list(lot.criteria):
        db.session.delete(criterion)
    arrangement.lots.remove(lot)
    db.session.flush()


def add_region(actor: User, arrangement: Arrangement, region_id: int) -> None:
    """Add a probation region to the area the arrangement covers."""
    _check_scope_editable(arrangement)
    errors: dict[str, list[str]] = {}
    regions = _regions([region_id], errors)
    if errors:
        raise BusinessRuleViolation({"region_id": errors["region_ids"]})
    region = regions[0]
    if region in arrangement.regions:
        raise BusinessRuleViolation({"region_id": [f"{region.name} is already covered"]})
    arrangement.regions.append(region)
    db.session.flush()
    audit.record(actor, "arrangement.region_added", arrangement, after={"region": region.code})


def remove_region(actor: User, arrangement: Arrangement, region: ProbationRegion) -> None:
    """Stop covering a probation region that has no members."""
    _check_scope_editable(arrangement)
    if region not in arrangement.regions:
        raise BusinessRuleViolation({"region_id": [f"{region.name} is not covered"]})
    in_region = sa.or_(
        LotMembership.region_id == region.id,
        LotMembership.pcc_area_id.in_(sa.select(PccArea.id).where(PccArea.region_id == region.id)),
    )
    if _current_member_count(LotMembership.arrangement_id == arrangement.id, in_region):
        raise BusinessRuleViolation(
            {"": [f"{arrangement.name} has members in {region.name}, so it cannot be removed."]}
        )
    arrangement.regions.remove(region)
    db.session.flush()
    audit.record(actor, "arrangement.region_removed", arrangement, before={"region": region.code})


# ---------------------------------------------------------------------------------------------
# States


# What each move does, where the state's name does not say it ("has already been made live").
DONE = {ArrangementStatus.LIVE: "made live"}


def change_arrangement_status(
    actor: User, arrangement: Arrangement, new_status: ArrangementStatus, reason: str = ""
) -> Arrangement:
    """Move an arrangement to another state, if its state machine allows it."""
    try:
        new_status = ArrangementStatus(new_status)
    except ValueError:
        raise BusinessRuleViolation({"status": ["Choose a status from the list"]}) from None
    moving = {"noun": "arrangement", "done": DONE.get(new_status)}
    old_status = check_transition(arrangement, new_status, ARRANGEMENT_TRANSITIONS, **moving)
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if new_status in (ArrangementStatus.SUSPENDED, ArrangementStatus.CLOSED) and not reason:
        errors["reason"] = [f"Enter why the arrangement is being {new_status.value}"]
    if len(reason) > REASON_MAX:
        errors["reason"] = [f"The reason must be {REASON_MAX} characters or fewer"]
    if new_status == ArrangementStatus.LIVE:
        today = london_date()
        if not arrangement.lots:
            errors.setdefault("status", []).append("Add at least one lot before going live")
        if not arrangement.regions:
            errors.setdefault("status", []).append("Add at least one region before going live")
        if not (arrangement.valid_from <= today <= arrangement.valid_to):
            errors.setdefault("status", []).append(
                "An arrangement can only be live within its validity period "
                f"({arrangement.valid_from.isoformat()} to {arrangement.valid_to.isoformat()})"
            )
    _require(errors)
    transition(arrangement, new_status, ARRANGEMENT_TRANSITIONS, **moving)
    arrangement.status_reason = reason or None
    if new_status == ArrangementStatus.LIVE and arrangement.went_live_at is None:
        arrangement.went_live_at = utcnow()
    if new_status == ArrangementStatus.CLOSED:
        arrangement.closed_at = utcnow()
        if arrangement.went_live_at is None:
            arrangement.went_live_at = arrangement.closed_at  # the CHECK: only pending has none
    db.session.flush()
    audit.record(
        actor,
        f"arrangement.{new_status.value}",
        arrangement,
        before={"status": old_status.value},
        after={"status": new_status.value, "reason": reason},
    )
    return arrangement


# ---------------------------------------------------------------------------------------------
# Criteria


def _versioning(arrangement: Arrangement) -> bool:
    """Whether a criteria change makes a new version (True) or edits in place (False)."""
    if arrangement.status == ArrangementStatus.PENDING:
        return False
    _refuse_if_closed(arrangement)
    if arrangement.legal_regime.criteria_frozen_when_live:
        raise BusinessRuleViolation(
            {
                "": [
                    FROZEN_MESSAGE.format(
                        name=arrangement.name, regime=arrangement.legal_regime.label
                    )
                ]
            }
        )
    return True


def _clean_criterion(
    *,
    question: str,
    type: QuestionType,
    guidance: str,
    mandatory: bool,
    pass_fail: bool,
    pass_answer: bool | None,
    evidence_expires: bool,
    position: int,
) -> dict:
    errors: dict[str, list[str]] = {}
    question = (question or "").strip()
    if not question:
        errors["question"] = ["Enter the question"]
    elif len(question) > QUESTION_MAX:
        errors["question"] = [f"The question must be {QUESTION_MAX} characters or fewer"]
    try:
        type = QuestionType(type)
    except ValueError:
        errors["type"] = ["Choose the type of answer"]
    if not errors.get("type"):
        if type != QuestionType.YES_NO:
            pass_answer = None
        elif pass_fail and pass_answer is None:
            errors["pass_answer"] = ["Choose the answer that passes"]
        if type != QuestionType.FILE:
            evidence_expires = False
    _require(errors)
    return {
        "question": question,
        "type": type,
        "guidance": (guidance or "").strip(),
        "mandatory": bool(mandatory),
        "pass_fail": bool(pass_fail),
        "pass_answer": pass_answer if type == QuestionType.YES_NO else None,
        "evidence_expires": bool(evidence_expires),
        "position": int(position or 0),
    }


def _new_version(actor: User, arrangement: Arrangement, change: str) -> int:
    """Bump the criteria version and ask every active member to re-declare against it."""
    before = arrangement.criteria_version
    arrangement.criteria_version = before + 1
    db.session.flush()
    audit.record(
        actor,
        "arrangement.criteria_versioned",
        arrangement,
        before={"criteria_version": before},
        after={"criteria_version": arrangement.criteria_version, "change": change},
    )
    request_redeclarations(actor, arrangement, change)
    return arrangement.criteria_version


def request_redeclarations(actor: User, arrangement: Arrangement, change: str) -> int:
    """Ask every active member of the arrangement to renew its declaration; email its admins."""
    from sqlalchemy.orm import selectinload

    memberships = list(
        db.session.scalars(
            sa.select(LotMembership)
            .where(
                LotMembership.arrangement_id == arrangement.id,
                LotMembership.status == MembershipStatus.ACTIVE,
            )
            .options(
                selectinload(LotMembership.organisation),
                selectinload(LotMembership.lot).selectinload(ArrangementLot.category),
                selectinload(LotMembership.region),
                selectinload(LotMembership.pcc_area),
            )
            .order_by(LotMembership.organisation_id, LotMembership.id)
        )
    )
    if not memberships:
        return 0
    due_on = add_working_days(london_date(), DEFAULT_REDECLARATION_DAYS)
    reason = f"Criteria version {arrangement.criteria_version}: {change}"[:REASON_MAX]
    by_organisation: dict[int, list[LotMembership]] = defaultdict(list)
    for membership in memberships:
        request = RedeclarationRequest(
            membership_id=membership.id,
            requested_by_id=actor.id,
            due_on=due_on,
            reason=reason,
        )
        db.session.add(request)
        by_organisation[membership.organisation_id].append(membership)
    db.session.flush()
    audit.record(
        actor,
        "arrangement.redeclaration_requested",
        arrangement,
        after={
            "criteria_version": arrangement.criteria_version,
            "memberships": [m.id for m in memberships],
            "due_on": due_on,
        },
    )
    admins = db.session.execute(
        sa.select(Membership.organisation_id, User)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.organisation_id.in_(list(by_organisation)),
            Membership.role == Role.PROVIDER_ADMIN,
            User.active.is_(True),
        )
        .order_by(Membership.organisation_id, User.id)
    ).all()
    # The public page of the arrangement, on the configured base URL (never the Host header).
    link = f"{current_app.config['BASE_URL'].rstrip('/')}/arrangements/{arrangement.id}"
    for organisation_id, user in admins:
        members = by_organisation[organisation_id]
        queue_email(
            user.email,
            "accreditation_redeclaration_requested",
            user=user,
            organisation=members[0].organisation,
            arrangement=arrangement,
            memberships=members,
            change=change,
            due_on=due_on,
            link=link,
        )
    return len(memberships)


def _next_position(lot: ArrangementLot) -> int:
    return max((c.position for c in lot.criteria), default=0) + 1


def add_criterion(
    actor: User,
    lot: ArrangementLot,
    *,
    question: str,
    type: QuestionType,
    guidance: str = "",
    mandatory: bool = True,
    pass_fail: bool = True,
    pass_answer: bool | None = None,
    evidence_expires: bool = False,
    position: int | None = None,
) -> Criterion:
    """Add a selection question to a lot (a new criteria version if the DPS is live)."""
    arrangement = lot.arrangement
    versioning = _versioning(arrangement)
    fields = _clean_criterion(
        question=question,
        type=type,
        guidance=guidance,
        mandatory=mandatory,
        pass_fail=pass_fail,
        pass_answer=pass_answer,
        evidence_expires=evidence_expires,
        position=_next_position(lot) if position is None else position,
    )
    version = (
        _new_version(actor, arrangement, f"a question was added to {lot.category.name}")
        if versioning
        else arrangement.criteria_version
    )
    criterion = Criterion(lot=lot, version=version, **fields)
    db.session.add(criterion)
    db.session.flush()
    audit.record(
        actor,
        "criterion.added",
        criterion,
        after={**audit.snapshot(criterion, CRITERION_FIELDS), "version": version},
    )
    return criterion


def _check_in_force(criterion: Criterion) -> None:
    if not criterion.in_force(criterion.lot.arrangement.criteria_version):
        raise BusinessRuleViolation({"": ["This question has been retired and cannot change."]})


def update_criterion(actor: User, criterion: Criterion, **changes) -> Criterion:
    """Change a question: in place while pending, as a new version under a live 2015 DPS."""
    unknown = set(changes) - set(CRITERION_FIELDS)
    if unknown:
        raise TypeError(f"unknown criterion fields: {sorted(unknown)}")
    lot = criterion.lot
    arrangement = lot.arrangement
    versioning = _versioning(arrangement)
    _check_in_force(criterion)
    before = audit.snapshot(criterion, CRITERION_FIELDS)
    merged = {name: changes.get(name, getattr(criterion, name)) for name in CRITERION_FIELDS}
    fields = _clean_criterion(**merged)
    after = audit.snapshot(_Fields(fields), CRITERION_FIELDS)
    if after == before:
        return criterion
    if not versioning:
        for name, value in fields.items():
            setattr(criterion, name, value)
        db.session.flush()
        audit.record(actor, "criterion.updated", criterion, before=before, after=after)
        return criterion
    version = _new_version(actor, arrangement, f"a question in {lot.category.name} was changed")
    criterion.retired_in_version = version
    replacement = Criterion(lot=lot, version=version, **fields)
    db.session.add(replacement)
    db.session.flush()
    audit.record(
        actor,
        "criterion.replaced",
        criterion,
        before={**before, "version": criterion.version},
        after={**after, "version": version, "replacement_id": replacement.id},
    )
    audit.record(
        actor,
        "criterion.added",
        replacement,
        after={**after, "version": version, "replaces_id": criterion.id},
    )
    return replacement


class _Fields:
    def __init__(self, values: dict):
        self.__dict__.update(values)


def retire_criterion(actor: User, criterion: Criterion) -> None:
    """Remove a question: deleted while pending, retired in a new version under a live 2015 DPS."""
    lot = criterion.lot
    arrangement = lot.arrangement
    versioning = _versioning(arrangement)
    _check_in_force(criterion)
    before = audit.snapshot(criterion, CRITERION_FIELDS)
    if not versioning:
        audit.record(actor, "criterion.deleted", criterion, before=before)
        lot.criteria.remove(criterion)
        db.session.delete(criterion)
        db.session.flush()
        return
    version = _new_version(actor, arrangement, f"a question in {lot.category.name} was removed")
    criterion.retired_in_version = version
    db.session.flush()
    audit.record(
        actor,
        "criterion.retired",
        criterion,
        before={**before, "version": criterion.version},
        after={"retired_in_version": version},
    )
