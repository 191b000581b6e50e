"""The buyer's draft, section by section (details, funding, award criteria, deadlines, panel), and
what publishing needs of it (``publish_errors``).

Each section is saved on its own, so a draft may be incomplete; publishing checks every section
again (``publish_errors``), with the clock and the budgets as they are then. Only the lead
buyer's buyers and approvers, acting for it, change a draft (``can_manage``); for anyone else
a competition they may not see is not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import Membership, Organisation, User
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
)
from marketplace.catalogue.models import MAX_UNITS, Unit
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    MAX_QUESTIONS,
    MAX_SCORE_MAX,
    MAX_WORD_LIMIT,
    MIN_SOCIAL_VALUE_WEIGHT,
    NEED_MAX,
    QUESTION_MAX,
    REASON_MAX,
    SCHEME_MAX,
    TITLE_MAX,
    Competition,
    CompetitionArea,
    CompetitionEvaluator,
    CompetitionFunder,
    CompetitionQuestion,
    CompetitionStatus,
    PriceFormula,
    QuestionKind,
    TieBreak,
)
from marketplace.competitions.services.areas import membership_in_areas
from marketplace.competitions.services.funding import funding_errors_for
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import MAX_ID, db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.money import BASIS_POINTS_WHOLE
from marketplace.core.state import lock
from marketplace.core.validation import date_horizon_error
from marketplace.orders.models import MAX_VALUE_PENCE
from marketplace.orders.services.details import FundingShare
from marketplace.reference.models import PccArea, ProbationRegion

MAX_FUNDERS = 10
MAX_AREAS = 60
MAX_EVALUATORS = 10
MAX_STANDSTILL_WORKING_DAYS = 30
SECTIONS = ("details", "documents", "funding", "criteria", "deadlines", "panel")
DETAIL_FIELDS = [
    "title",
    "need",
    "lot_id",
    "estimated_value_pence",
    "quantity",
    "unit",
    "contract_start",
    "contract_end",
    "missed_sessions_chargeable",
]


# ---------------------------------------------------------------------------------------------
# Who may act, and on what


def require_buyer(actor: User, organisation: Organisation | None) -> Organisation:
    """Only a buyer or approver, acting for a commissioning organisation, runs a competition."""
    if (
        organisation is None
        or not organisation.type.is_commissioner
        or not actor.roles_in(organisation) & permissions.BUYER_ROLES
    ):
        raise PermissionDenied("Only a commissioner's buyers and approvers can run a competition")
    return organisation


def managed_competition(
    actor: User, organisation: Organisation | None, competition_id: object
) -> Competition:
    """The competition with this key if ``actor`` may manage it for ``organisation``; else
    ``NotFound`` (another organisation's draft must not be known to exist)."""
    competition = (
        db.session.get(Competition, competition_id)
        if isinstance(competition_id, int) and 1 <= competition_id <= MAX_ID
        else None
    )
    if competition is None or not permissions.can_manage(actor, organisation, competition):
        raise NotFound("Competition not found")
    return competition


def _require_draft(actor: User, competition: Competition) -> None:
    """Locks the competition (a publish at the same moment waits or is waited for) and refuses
    any change once it is no longer a draft."""
    if not permissions.is_buyer(actor, competition):
        raise NotFound("Competition not found")
    lock(competition, "areas", "funders", "questions", "evaluators")
    if competition.status is not CompetitionStatus.DRAFT:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This competition is {competition.status.label.lower()}, so its set-up "
                    "can no longer be changed"
                ]
            }
        )


# ---------------------------------------------------------------------------------------------
# Details


@dataclass
class CompetitionDetails:
    """The details section as given (after parsing: types, or None where unreadable)."""

    title: str = ""
    need: str = ""
    lot_id: object = None
    region_ids: Sequence[object] = ()
    pcc_area_ids: Sequence[object] = ()
    estimated_value_pence: object = None
    quantity: object = None
    unit: object = None
    contract_start: object = None
    contract_end: object = None
    missed_sessions_chargeable: bool = False


def buyable_lots() -> list[ArrangementLot]:
    """The lots of live arrangements, which a competition may be run in."""
    return list(
        db.session.scalars(
            sa.select(ArrangementLot)
            .join(ArrangementLot.arrangement)
            .where(Arrangement.status == ArrangementStatus.LIVE)
            .order_by(Arrangement.name, ArrangementLot.id)
        )
    )


def _check_details(details: CompetitionDetails, today: date) -> tuple[dict, ArrangementLot | None]:
    errors: dict[str, list[str]] = {}
    title = (details.title or "").strip()
    if not title:
        errors["title"] = ["Enter a title for the competition"]
    elif len(title) > TITLE_MAX:
        errors["title"] = [f"The title must be {TITLE_MAX} characters or fewer"]
    need = (details.need or "").strip()
    if not need:
        errors["need"] = ["Describe what you need, in plain words"]
    elif len(need) > NEED_MAX:
        errors["need"] = [f"The need must be {NEED_MAX:,} characters or fewer"]
    lot = None
    if isinstance(details.lot_id, int) and 1 <= details.lot_id <= MAX_ID:
        lot = db.session.get(ArrangementLot, details.lot_id)
    if lot is None or lot.arrangement.status is not ArrangementStatus.LIVE:
        errors["lot_id"] = ["Choose the arrangement and lot from the list"]
        lot = None
    region_ids = [r for r in details.region_ids if isinstance(r, int) and 1 <= r <= MAX_ID]
    pcc_ids = [p for p in details.pcc_area_ids if isinstance(p, int) and 1 <= p <= MAX_ID]
    if len(region_ids) != len(details.region_ids) or len(pcc_ids) != len(details.pcc_area_ids):
        errors["areas"] = ["Choose the areas from the list"]
    elif not region_ids and not pcc_ids:
        errors["areas"] = ["Choose at least one probation region or PCC area"]
    elif len(region_ids) + len(pcc_ids) > MAX_AREAS:
        errors["areas"] = [f"Choose at most {MAX_AREAS} areas"]
    elif lot is not None:
        covered = {r.id for r in lot.arrangement.regions}
        regions = db.session.scalars(
            sa.select(ProbationRegion).where(ProbationRegion.id.in_(region_ids))
        ).all()
        pccs = db.session.scalars(sa.select(PccArea).where(PccArea.id.in_(pcc_ids))).all()
        if len(regions) != len(set(region_ids)) or len(pccs) != len(set(pcc_ids)):
            errors["areas"] = ["Choose the areas from the list"]
        elif any(r.id not in covered for r in regions) or any(
            p.region_id not in covered for p in pccs
        ):
            errors["areas"] = [
                f"Choose areas that {lot.arrangement.name} covers: "
                + ", ".join(r.name for r in lot.arrangement.regions)
            ]
    value = details.estimated_value_pence
    if isinstance(value, bool) or not isinstance(value, int):
        errors["estimated_value_pence"] = [
            "Enter the estimated whole-life value in pounds, like 120000"
        ]
    elif value < 1 or value > MAX_VALUE_PENCE:
        errors["estimated_value_pence"] = [
            f"The estimated value must be between £0.01 and £{MAX_VALUE_PENCE // 100:,}"
        ]
    quantity = details.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["quantity"] = ["Enter the number of units as a whole number, like 400"]
    elif quantity < 1 or quantity > MAX_UNITS:
        errors["quantity"] = [f"The number of units must be between 1 and {MAX_UNITS:,}"]
    try:
        Unit(details.unit)
    except ValueError:
        errors["unit"] = ["Choose the unit"]
    if not isinstance(details.contract_start, date):
        errors["contract_start"] = ["Enter the contract start date"]
    elif details.contract_start <= today:
        errors["contract_start"] = ["The contract start date must be in the future"]
    elif message := date_horizon_error(
        details.contract_start, "The contract start date", today=today
    ):
        errors["contract_start"] = [message]
    if not isinstance(details.contract_end, date):
        errors["contract_end"] = ["Enter the contract end date"]
    elif isinstance(details.contract_start, date) and details.contract_end < details.contract_start:
        errors["contract_end"] = ["The contract end date must be the same as or after its start"]
    elif message := date_horizon_error(
        details.contract_end,
        "The contract end date",
        start=details.contract_start if isinstance(details.contract_start, date) else None,
        today=today,
    ):
        errors["contract_end"] = [message]
    return errors, lot


def _apply_details(competition: Competition, details: CompetitionDetails, lot: ArrangementLot):
    competition.title = details.title.strip()
    competition.need = details.need.strip()
    competition.arrangement_id = lot.arrangement_id
    competition.lot_id = lot.id
    competition.category_id = lot.category_id
    competition.estimated_value_pence = details.estimated_value_pence
    competition.quantity = details.quantity
    competition.unit = Unit(details.unit)
    competition.contract_start = details.contract_start
    competition.contract_end = details.contract_end
    competition.missed_sessions_chargeable = bool(details.missed_sessions_chargeable)
    wanted = [(r, None) for r in dict.fromkeys(details.region_ids)] + [
        (None, p) for p in dict.fromkeys(details.pcc_area_ids)
    ]
    held = {(a.region_id, a.pcc_area_id): a for a in competition.areas}
    competition.areas = [
        held.get(key) or CompetitionArea(region_id=key[0], pcc_area_id=key[1]) for key in wanted
    ]


def start_competition(
    actor: User,
    organisation: Organisation | None,
    details: CompetitionDetails,
    *,
    now: datetime | None = None,
) -> Competition:
    """Start a draft competition for ``organisation`` (the lead buyer) with its details; the lead
    buyer funds all of it until co-funders are named, and the standstill proposed is the
    configured default."""
    now = now or utcnow()
    organisation = require_buyer(actor, organisation)
    errors, lot = _check_details(details, _london_today(now))
    if errors:
        raise BusinessRuleViolation(errors)
    competition = Competition(
        buyer_id=organisation.id,
        buyer=organisation,
        created_by_id=actor.id,
        status=CompetitionStatus.DRAFT,
        standstill_working_days=current_app.config["COMPETITION_STANDSTILL_WORKING_DAYS"],
    )
    _apply_details(competition, details, lot)
    competition.funders = [
        CompetitionFunder(organisation_id=organisation.id, basis_points=BASIS_POINTS_WHOLE)
    ]
    db.session.add(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.started",
        competition,
        after={**audit.snapshot(competition, DETAIL_FIELDS), "areas": _area_keys(competition)},
    )
    return competition


def change_details(
    actor: User, competition: Competition, details: CompetitionDetails, *, now=None
) -> Competition:
    """Change a draft's details (title, need, lot, areas, value, units, contract dates)."""
    now = now or utcnow()
    _require_draft(actor, competition)
    errors, lot = _check_details(details, _london_today(now))
    if errors:
        raise BusinessRuleViolation(errors)
    before = {**audit.snapshot(competition, DETAIL_FIELDS), "areas": _area_keys(competition)}
    _apply_details(competition, details, lot)
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.details_changed",
        competition,
        before=before,
        after={**audit.snapshot(competition, DETAIL_FIELDS), "areas": _area_keys(competition)},
    )
    return competition


def _area_keys(competition: Competition) -> list[str]:
    return [
        f"region:{a.region_id}" if a.region_id else f"pcc_area:{a.pcc_area_id}"
        for a in competition.areas
    ]


def _london_today(now: datetime) -> date:
    return london_date(now)


def _touch(competition: Competition) -> None:
    competition.version = (competition.version or 1) + 1


# ---------------------------------------------------------------------------------------------
# Funding


def funder_choices(competition: Competition) -> list[Organisation]:
    """Commissioning organisations that may co-fund (active, other than the lead buyer)."""
    return [
        o
        for o in db.session.scalars(
            sa.select(Organisation)
            .where(Organisation.active.is_(True), Organisation.id != competition.buyer_id)
            .order_by(Organisation.name)
        )
        if o.type.is_commissioner
    ]


def _check_shares(
    competition: Competition, shares: Sequence[FundingShare]
) -> tuple[dict[str, list[str]], dict[int, Organisation]]:
    errors: dict[str, list[str]] = {}

    def refuse(key: str, message: str) -> None:
        if message not in errors.setdefault(key, []):
            errors[key].append(message)

    if len(shares) > MAX_FUNDERS:
        refuse("shares", f"A competition can have at most {MAX_FUNDERS} funders")
    funders: dict[int, Organisation] = {competition.buyer_id: competition.buyer}
    seen: set = set()
    for index, share in enumerate(shares):
        pk = share.organisation_id
        funder = (
            funders.get(pk) or db.session.get(Organisation, pk)
            if isinstance(pk, int) and 1 <= pk <= MAX_ID
            else None
        )
        if pk in seen:
            refuse(f"shares-{index}-organisation_id", "Name each funder once")
        seen.add(pk)
        if funder is None or not funder.active:
            refuse(
                f"shares-{index}-organisation_id",
                "Choose funders from the commissioning organisations listed",
            )
        elif not funder.type.is_commissioner:
            refuse(
                f"shares-{index}-organisation_id",
                f"{funder.name} is not a commissioning organisation, so it cannot fund",
            )
        else:
            funders[pk] = funder
        points = share.basis_points
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            refuse(
                f"shares-{index}-basis_points",
                "Enter each share as a percentage of at least 0.01, like 40 or 33.33",
            )
    if competition.buyer_id not in seen:
        refuse("shares", "Your organisation runs the competition, so it must fund a share of it")
    if not errors:
        total = sum(s.basis_points for s in shares)
        if total != BASIS_POINTS_WHOLE:
            refuse(
                "shares",
                f"The shares must add up to exactly 100% (they add up to {total / 100:g}%)",
            )
    return errors, funders


def _ordered(competition: Competition, shares: Sequence[FundingShare]) -> list[FundingShare]:
    return sorted(shares, key=lambda s: (s.organisation_id != competition.buyer_id,))


def competition_funding_errors(
    competition: Competition, shares: Sequence[FundingShare], funders, now: datetime
) -> dict[str, list[str]]:
    """The budget rules on the competition's estimated value (``funding_errors_for``), keyed
    by the entry in ``shares`` to change (the lead buyer's under ``shares``)."""
    ordered = _ordered(competition, shares)
    errors = funding_errors_for(
        lead_buyer=competition.buyer,
        arrangement=competition.arrangement,
        category_id=competition.category_id,
        gross_pence=competition.estimated_value_pence,
        quantity=competition.quantity,
        start=competition.contract_start,
        end=competition.contract_end,
        shares=ordered,
        funders=funders,
        now=now,
    )
    # The budget rules name entries by their place in the list they were given (lead first);
    # the person gave them in their own order.
    position = {s.organisation_id: n for n, s in enumerate(shares)}
    renamed: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key.startswith("shares-"):
            _, index, what = key.split("-", 2)
            key = f"shares-{position[ordered[int(index)].organisation_id]}-{what}"
        else:
            key = "shares"
        renamed.setdefault(key, []).extend(messages)
    return renamed


def set_funding(
    actor: User,
    competition: Competition,
    shares: Sequence[FundingShare],
    *,
    now: datetime | None = None,
) -> Competition:
    """Name the funders (the lead buyer among them) and their shares in basis points summing to
    10,000; each must have the budgets for its share of the estimated value in each financial
    year of the contract."""
    now = now or utcnow()
    _require_draft(actor, competition)
    shares = list(shares)
    errors, funders = _check_shares(competition, shares)
    if not errors:
        errors = competition_funding_errors(competition, shares, funders, now)
    if errors:
        raise BusinessRuleViolation(errors)
    before = _funder_snapshot(competition)
    held = {f.organisation_id: f for f in competition.funders}
    competition.funders = [
        _funder(held.get(s.organisation_id), s) for s in _ordered(competition, shares)
    ]
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.funding_set",
        competition,
        before={"funders": before},
        after={"funders": _funder_snapshot(competition)},
    )
    return competition


def _funder(existing: CompetitionFunder | None, share: FundingShare) -> CompetitionFunder:
    funder = existing or CompetitionFunder(organisation_id=share.organisation_id)
    funder.basis_points = share.basis_points
    return funder


def _funder_snapshot(competition: Competition) -> dict[str, int]:
    return {str(f.organisation_id): f.basis_points for f in competition.funders}


# ---------------------------------------------------------------------------------------------
# Award criteria


@dataclass
class QuestionDetails:
    kind: object = None
    text: str = ""
    scoring_scheme: str = ""
    word_limit: object = None
    max_score: object = None
    weight: object = None


def set_price_criteria(
    actor: User,
    competition: Competition,
    *,
    price_weight: object,
    price_formula: object,
    tie_break: object,
) -> Competition:
    """The price's weight (whole percentage points), the published price formula and the
    published tie-break."""
    _require_draft(actor, competition)
    errors: dict[str, list[str]] = {}
    if isinstance(price_weight, bool) or not isinstance(price_weight, int):
        errors["price_weight"] = ["Enter the price weight as a whole number, like 40"]
    elif not 0 <= price_weight <= 100 - MIN_SOCIAL_VALUE_WEIGHT:
        errors["price_weight"] = [
            f"The price weight must be between 0 and {100 - MIN_SOCIAL_VALUE_WEIGHT}, leaving "
            f"at least {MIN_SOCIAL_VALUE_WEIGHT} for social value"
        ]
    try:
        formula = PriceFormula(price_formula)
    except ValueError:
        errors["price_formula"] = ["Choose how price is scored"]
    try:
        tie = TieBreak(tie_break)
    except ValueError:
        errors["tie_break"] = ["Choose how a tie is broken"]
    if errors:
        raise BusinessRuleViolation(errors)
    before = audit.snapshot(competition, ["price_weight", "price_formula", "tie_break"])
    competition.price_weight, competition.price_formula, competition.tie_break = (
        price_weight,
        formula,
        tie,
    )
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.price_criteria_set",
        competition,
        before=before,
        after=audit.snapshot(competition, ["price_weight", "price_formula", "tie_break"]),
    )
    return competition


def _check_question(details: QuestionDetails) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        kind = QuestionKind(details.kind)
    except ValueError:
        return {"kind": ["Choose the kind of question"]}
    text = (details.text or "").strip()
    if not text:
        errors["text"] = ["Enter the question"]
    elif len(text) > QUESTION_MAX:
        errors["text"] = [f"The question must be {QUESTION_MAX:,} characters or fewer"]
    limit = details.word_limit
    if kind.scored and limit is None:
        errors["word_limit"] = ["Enter the word limit for answers, like 300"]
    elif limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_WORD_LIMIT
    ):
        errors["word_limit"] = [
            f"The word limit must be a whole number between 1 and {MAX_WORD_LIMIT:,}"
        ]
    if not kind.scored:
        return errors
    scheme = (details.scoring_scheme or "").strip()
    if not scheme:
        errors["scoring_scheme"] = ["Enter the scoring scheme: what earns each score"]
    elif len(scheme) > SCHEME_MAX:
        errors["scoring_scheme"] = [
            f"The scoring scheme must be {SCHEME_MAX:,} characters or fewer"
        ]
    top = details.max_score
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_SCORE_MAX:
        errors["max_score"] = [f"The top score must be a whole number from 1 to {MAX_SCORE_MAX}"]
    weight = details.weight
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        errors["weight"] = ["The weight must be a whole number from 1 to 100"]
    return errors


def add_question(actor: User, competition: Competition, details: QuestionDetails):
    """Add a quality, social value or pass/fail question (pass/fail ones carry no weight)."""
    _require_draft(actor, competition)
    errors = _check_question(details)
    if len(competition.questions) >= MAX_QUESTIONS:
        errors.setdefault("kind", []).append(
            f"A competition can have at most {MAX_QUESTIONS} questions"
        )
    if errors:
        raise BusinessRuleViolation(errors)
    kind = QuestionKind(details.kind)
    question = CompetitionQuestion(
        kind=kind,
        position=max((q.position for q in competition.questions), default=0) + 1,
        text=details.text.strip(),
        scoring_scheme=(details.scoring_scheme or "").strip() if kind.scored else "",
        word_limit=details.word_limit,
        max_score=details.max_score if kind.scored else 1,
        weight=details.weight if kind.scored else 0,
    )
    competition.questions.append(question)
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.question_added",
        competition,
        after=audit.snapshot(question, ["id", "kind", "text", "word_limit", "weight", "max_score"]),
    )
    return question


def remove_question(actor: User, competition: Competition, question_id: object) -> None:
    """Remove one of the draft's questions."""
    _require_draft(actor, competition)
    question = next((q for q in competition.questions if q.id == question_id), None)
    if question is None:
        raise NotFound("Question not found")
    competition.questions.remove(question)
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.question_removed",
        competition,
        before=audit.snapshot(question, ["id", "kind", "text", "weight"]),
    )


def criteria_errors(competition: Competition) -> dict[str, list[str]]:
    """Price, quality and social value weights sum to 100; social value is at least
    ``MIN_SOCIAL_VALUE_WEIGHT``; at least one quality question."""
    errors: dict[str, list[str]] = {}
    kinds = {q.kind for q in competition.questions}
    if QuestionKind.QUALITY not in kinds:
        errors.setdefault("questions", []).append("Add at least one quality question")
    if competition.social_value_weight < MIN_SOCIAL_VALUE_WEIGHT:
        errors.setdefault("questions", []).append(
            f"Social value must carry at least {MIN_SOCIAL_VALUE_WEIGHT}% of the weight (it "
            f"carries {competition.social_value_weight}%)"
        )
    if competition.scored_weight != 100:
        errors.setdefault("questions", []).append(
            "The weights of price, quality and social value must add up to 100 (they add up to "
            f"{competition.scored_weight})"
        )
    return errors


# ---------------------------------------------------------------------------------------------
# Deadlines and standstill


def min_bid_days() -> int:
    return int(current_app.config["COMPETITION_MIN_BID_DAYS"])


def deadline_errors(
    clarification_deadline: object, bid_deadline: object, now: datetime
) -> dict[str, list[str]]:
    """The bid deadline at least ``COMPETITION_MIN_BID_DAYS`` days after ``now`` (publication);
    clarifications close after ``now`` and before bids."""
    errors: dict[str, list[str]] = {}
    days = min_bid_days()
    if not isinstance(bid_deadline, datetime):
        errors["bid_deadline"] = ["Enter the bid deadline: a date and a time"]
    elif bid_deadline < now + timedelta(days=days):
        errors["bid_deadline"] = [
            f"The bid deadline must be at least {days} days after the competition is published"
        ]
    if not isinstance(clarification_deadline, datetime):
        errors["clarification_deadline"] = ["Enter the clarification deadline: a date and a time"]
    elif clarification_deadline <= now:
        errors["clarification_deadline"] = ["The clarification deadline must be in the future"]
    elif isinstance(bid_deadline, datetime) and clarification_deadline >= bid_deadline:
        errors["clarification_deadline"] = [
            "The clarification deadline must be before the bid deadline"
        ]
    return errors


def set_deadlines(
    actor: User,
    competition: Competition,
    *,
    clarification_deadline: object,
    bid_deadline: object,
    standstill_working_days: object,
    standstill_reason: str = "",
    now: datetime | None = None,
) -> Competition:
    """Clarification and bid deadlines (UTC; the pages take London time) and the standstill in
    working days (0 only with a recorded reason: light-touch services)."""
    now = now or utcnow()
    _require_draft(actor, competition)
    errors = deadline_errors(clarification_deadline, bid_deadline, now)
    days = standstill_working_days
    reason = (standstill_reason or "").strip()
    if isinstance(days, bool) or not isinstance(days, int):
        errors["standstill_working_days"] = ["Enter the standstill in working days, like 8"]
    elif not 0 <= days <= MAX_STANDSTILL_WORKING_DAYS:
        errors["standstill_working_days"] = [
            f"The standstill must be between 0 and {MAX_STANDSTILL_WORKING_DAYS} working days"
        ]
    elif days == 0 and not reason:
        errors["standstill_reason"] = [
            "Give the reason for no standstill (allowed only for light-touch services)"
        ]
    if len(reason) > REASON_MAX:
        errors["standstill_reason"] = [f"The reason must be {REASON_MAX:,} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    fields = [
        "clarification_deadline",
        "bid_deadline",
        "standstill_working_days",
        "standstill_reason",
    ]
    before = audit.snapshot(competition, fields)
    competition.clarification_deadline = clarification_deadline
    competition.bid_deadline = bid_deadline
    competition.standstill_working_days = days
    competition.standstill_reason = reason if days == 0 else ""
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.deadlines_set",
        competition,
        before=before,
        after=audit.snapshot(competition, fields),
    )
    return competition


# ---------------------------------------------------------------------------------------------
# Evaluation panel


def panel_choices(competition: Competition) -> list[tuple[User, Organisation]]:
    """Buyers and approvers of the lead buyer and of each funder: who may sit on the panel."""
    org_ids = [competition.buyer_id, *(f.organisation_id for f in competition.funders)]
    rows = db.session.execute(
        sa.select(User, Organisation)
        .join(Membership, Membership.user_id == User.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(
            Membership.organisation_id.in_(org_ids),
            Membership.role.in_(list(permissions.BUYER_ROLES)),
            User.active.is_(True),
        )
        .order_by(Organisation.name, User.name, User.id)
    ).all()
    seen: set[int] = set()
    choices = []
    for user, organisation in rows:
        if user.id not in seen:
            seen.add(user.id)
            choices.append((user, organisation))
    return choices


def _conflicted_evaluators(competition: Competition, user_ids: Sequence[int]) -> set[int]:
    """Of ``user_ids``, those who are members (any role) of a provider organisation with a
    current membership of the lot in one of the competition's areas: a bidder's member may not
    score the bids."""
    if not user_ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(Membership.user_id)
            .join(LotMembership, LotMembership.organisation_id == Membership.organisation_id)
            .where(
                Membership.user_id.in_(list(user_ids)),
                LotMembership.lot_id == competition.lot_id,
                LotMembership.status != MembershipStatus.REMOVED,
                membership_in_areas(competition),
            )
        )
    )


@dataclass
class PanelDetails:
    user_ids: Sequence[object] = field(default_factory=list)
    single_evaluator_reason: str = ""


def panel_errors(competition: Competition, details: PanelDetails) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    allowed = {user.id: organisation for user, organisation in panel_choices(competition)}
    ids = list(dict.fromkeys(details.user_ids))
    reason = (details.single_evaluator_reason or "").strip()
    if any(not isinstance(pk, int) or pk not in allowed for pk in ids):
        errors["user_ids"] = [
            "Choose evaluators from the buyers and approvers of the organisations funding it"
        ]
    elif not ids:
        errors["user_ids"] = ["Choose at least two evaluators, or one with a reason"]
    elif len(ids) > MAX_EVALUATORS:
        errors["user_ids"] = [f"Choose at most {MAX_EVALUATORS} evaluators"]
    elif len(ids) == 1 and not reason:
        errors["single_evaluator_reason"] = [
            "Give the reason one evaluator is enough, or choose a second"
        ]
    if len(reason) > REASON_MAX:
        errors["single_evaluator_reason"] = [f"Use {REASON_MAX:,} characters or fewer"]
    if "user_ids" not in errors:
        conflicted = _conflicted_evaluators(competition, ids)
        if conflicted:
            names = ", ".join(u.name for u, _ in panel_choices(competition) if u.id in conflicted)
            errors["user_ids"] = [
                f"{names} also belongs to a provider that is a member of the lot in these areas, "
                "so cannot evaluate its bids. Choose someone else"
            ]
    return errors


def set_panel(actor: User, competition: Competition, details: PanelDetails) -> Competition:
    """The evaluation panel: at least two buyers or approvers of the buying organisations, or
    one with a reason; none of them a member of a provider that may bid."""
    _require_draft(actor, competition)
    errors = panel_errors(competition, details)
    if errors:
        raise BusinessRuleViolation(errors)
    allowed = {user.id: organisation for user, organisation in panel_choices(competition)}
    ids = list(dict.fromkeys(details.user_ids))
    before = [e.user_id for e in competition.evaluators]
    held = {e.user_id: e for e in competition.evaluators}
    competition.evaluators = [
        held.get(pk) or CompetitionEvaluator(user_id=pk, organisation_id=allowed[pk].id)
        for pk in ids
    ]
    competition.single_evaluator_reason = (
        details.single_evaluator_reason.strip() if len(ids) == 1 else ""
    )
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.panel_set",
        competition,
        before={"evaluators": before},
        after={
            "evaluators": ids,
            "single_evaluator_reason": competition.single_evaluator_reason,
        },
    )
    return competition


# ---------------------------------------------------------------------------------------------
# The task list and what publishing needs


def section_errors(competition: Competition, now: datetime) -> dict[str, dict[str, list[str]]]:
    """Each section's errors as publishing would find them now (none: the section is done).
    Documents are optional."""
    shares = [FundingShare(f.organisation_id, f.basis_points) for f in competition.funders]
    funding, funders = _check_shares(competition, shares)
    if not funding:
        funding = competition_funding_errors(competition, shares, funders, now)
    panel = panel_errors(
        competition,
        PanelDetails(
            [e.user_id for e in competition.evaluators], competition.single_evaluator_reason
        ),
    )
    deadlines = deadline_errors(competition.clarification_deadline, competition.bid_deadline, now)
    if competition.standstill_working_days == 0 and not competition.standstill_reason:
        deadlines["standstill_reason"] = ["Give the reason for no standstill"]
    details, _lot = _check_details(
        CompetitionDetails(
            title=competition.title,
            need=competition.need,
            lot_id=competition.lot_id,
            region_ids=[a.region_id for a in competition.areas if a.region_id],
            pcc_area_ids=[a.pcc_area_id for a in competition.areas if a.pcc_area_id],
            estimated_value_pence=competition.estimated_value_pence,
            quantity=competition.quantity,
            unit=competition.unit,
            contract_start=competition.contract_start,
            contract_end=competition.contract_end,
        ),
        _london_today(now),
    )
    return {
        "details": details,
        "documents": {},
        "funding": funding,
        "criteria": criteria_errors(competition),
        "deadlines": deadlines,
        "panel": panel,
    }


def publish_errors(competition: Competition, now: datetime) -> dict[str, list[str]]:
    """Every section's errors, flattened (keys prefixed by section where they would clash)."""
    flat: dict[str, list[str]] = {}
    for section, errors in section_errors(competition, now).items():
        for key, messages in errors.items():
            flat.setdefault(f"{section}.{key}" if key in flat else key, []).extend(messages)
    return flat
