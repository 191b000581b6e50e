"""A provider's bid: saved as a draft, checked, submitted, withdrawn and resubmitted until the bid
deadline, by an invited provider only (Procurement Act 2023 s.34).

Sealed: nothing written here (audit events, emails) carries a bid's content (answers, price,
consortium) where anyone but the bidder could read it before the deadline; the audit records
that a bid moved and its version, no more, and even that is sealed until the bid deadline
(``sealed_until``: who is bidding, and how many, is itself part of the seal). Editors may save
drafts and answer questions; only the provider's administrators (``permissions.BIDDER_ROLES``)
name consortium members, submit and withdraw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import (
    PROVIDER_TYPES,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.services.common import email_people
from marketplace.accreditation.models import LotMembership, MembershipStatus
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    ANSWER_MAX,
    BID_TRANSITIONS,
    COMMITMENT_MAX,
    NAME_MAX,
    Bid,
    BidAnswer,
    BidPriceLine,
    BidStatus,
    Competition,
    ConsortiumMember,
    ConsortiumRole,
    InvitedProvider,
    QuestionKind,
    SocialValueCommitment,
)
from marketplace.competitions.services.common import (
    deadline_text,
    require_invited,
    require_open_until,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.filters import pounds
from marketplace.core.money import BASIS_POINTS_WHOLE, VatTreatment
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.orders.models import MAX_VALUE_PENCE
from marketplace.orders.services.call_offs import call_off_value
from marketplace.reference.models import PccArea

MAX_PRICE_LINES = 20
MAX_COMMITMENTS = 10
MAX_CONSORTIUM = 10
# The audit keeps a bid's state, never its content (the seal).
BID_AUDIT_FIELDS = ["status", "version"]
CLOSED_FOR_BIDS = "bids can no longer be saved, submitted or withdrawn"

# A word as a person counts it: a run of characters between spaces that holds at least one
# letter or digit ("don't", "well-being" and "£5m" are one word each; a lone dash is none).
_TOKEN = re.compile(r"\S+")
_WORDISH = re.compile(r"\w")


def count_words(text: str | None) -> int:
    """Words as a person would count them (see ``_TOKEN``)."""
    return sum(1 for token in _TOKEN.findall(text or "") if _WORDISH.search(token))


@dataclass
class AnswerInput:
    question_id: int
    text: str = ""
    meets_requirement: bool | None = None  # pass/fail questions only


@dataclass
class PriceLineInput:
    description: str
    amount_pence: int | None


@dataclass
class CommitmentInput:
    what: str
    how_much: str
    by_when: date | None


@dataclass
class MemberInput:
    """A consortium member (by organisation key or exact name) or a named subcontractor."""

    name: str
    role: ConsortiumRole | str | None
    share_basis_points: int | None
    organisation_id: int | None = None


@dataclass
class BidInput:
    answers: list[AnswerInput] = field(default_factory=list)
    unit_price_pence: int | None = None
    vat_treatment: VatTreatment | str | None = None
    price_lines: list[PriceLineInput] = field(default_factory=list)
    commitments: list[CommitmentInput] = field(default_factory=list)
    consortium: list[MemberInput] = field(default_factory=list)
    is_sme: bool | None = None


def own_bid(competition: Competition, organisation: Organisation | None) -> Bid | None:
    if organisation is None:
        return None
    return db.session.scalar(
        sa.select(Bid).where(
            Bid.competition_id == competition.id, Bid.organisation_id == organisation.id
        )
    )


def _require_bidder_role(actor: User, organisation: Organisation, what: str) -> None:
    if not actor.roles_in(organisation) & permissions.BIDDER_ROLES:
        raise PermissionDenied(f"Only your organisation's administrators can {what}")


def _require_own(actor: User, organisation: Organisation | None, bid: Bid) -> None:
    # Another organisation's bid is not found, so its existence does not leak.
    if not permissions.is_bidder(actor, organisation, bid):
        raise NotFound("Bid not found")


# ---------------------------------------------------------------------------------------------
# Checking what was entered (every refusal names the question, line or organisation)


def _check_answers(competition: Competition, answers: list[AnswerInput], errors: dict) -> dict:
    questions = {q.id: q for q in competition.questions}
    given: dict[int, AnswerInput] = {}
    for answer in answers:
        if answer.question_id not in questions:
            errors.setdefault("answers", []).append("Answer only this competition's questions")
            continue
        given[answer.question_id] = answer
    for position, question in enumerate(competition.questions, start=1):
        answer = given.get(question.id)
        if answer is None:
            continue
        text = (answer.text or "").strip()
        answer.text = text
        key = f"answer_{question.id}"
        if len(text) > ANSWER_MAX:
            errors[key] = [f"Your answer to question {position} is too long"]
            continue
        words = count_words(text)
        if question.word_limit is not None and words > question.word_limit:
            errors[key] = [
                f"Your answer to question {position} (“{_short(question.text)}”) has "
                f"{words:,} words: use {question.word_limit:,} words or fewer"
            ]
        if question.kind is not QuestionKind.PASS_FAIL:
            answer.meets_requirement = None
    return given


def _filled(row) -> bool:
    """A row of a repeated section with anything entered (blank rows are ignored)."""
    return any(
        (value.strip() if isinstance(value, str) else value not in (None, 0))
        for value in vars(row).values()
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _check_price(competition: Competition, data: BidInput, errors: dict):
    treatment = data.vat_treatment
    if treatment is not None and not isinstance(treatment, VatTreatment):
        try:
            treatment = VatTreatment(treatment)
        except ValueError:
            errors["vat_treatment"] = ["Choose the VAT treatment of your price"]
            treatment = None
    data.vat_treatment = treatment
    net = vat = gross = None
    if data.unit_price_pence is not None:
        if data.unit_price_pence < 0:
            errors["unit_price_pence"] = ["The unit price cannot be negative"]
        elif data.unit_price_pence == 0:
            errors["unit_price_pence"] = ["Enter a unit price above £0"]
        else:
            net, vat, gross = call_off_value(
                data.unit_price_pence, competition.quantity, treatment or VatTreatment.EXEMPT
            )
            if gross > MAX_VALUE_PENCE:
                errors["unit_price_pence"] = [
                    f"The whole price would be {pounds(gross)}: the most a competition can be "
                    f"awarded for is {pounds(MAX_VALUE_PENCE)}"
                ]
            if treatment is None:
                vat = gross = None
    # Numbered as entered (blank rows skipped), so each message names the row it is about.
    rows = [(i, line) for i, line in enumerate(data.price_lines) if _filled(line)]
    lines = [line for _, line in rows]
    if len(lines) > MAX_PRICE_LINES:
        errors["price_lines"] = [f"Use {MAX_PRICE_LINES} price schedule lines or fewer"]
    for index, line in rows:
        line.description = line.description.strip()
        if not line.description:
            errors[f"price_lines_{index}_description"] = [
                f"Describe what price schedule line {index + 1} is for"
            ]
        elif len(line.description) > COMMITMENT_MAX:
            errors[f"price_lines_{index}_description"] = [
                f"Use {COMMITMENT_MAX} characters or fewer for line {index + 1}"
            ]
        if line.amount_pence is None or line.amount_pence < 0:
            errors[f"price_lines_{index}_amount"] = [
                f"Enter the amount of price schedule line {index + 1} in pounds"
            ]
    if lines and net is not None and all(line.amount_pence is not None for line in lines):
        total = sum(line.amount_pence for line in lines)
        if total != net:
            errors["price_lines"] = [
                f"Your price schedule adds up to {pounds(total)}, but your total price before "
                f"VAT is {pounds(net)} ({competition.quantity:,} × {pounds(data.unit_price_pence)}"
                "): the lines must add up to it exactly"
            ]
    data.price_lines = lines
    return net, vat, gross


def _check_commitments(data: BidInput, errors: dict) -> None:
    rows = [(i, c) for i, c in enumerate(data.commitments) if _filled(c)]
    kept = [c for _, c in rows]
    if len(kept) > MAX_COMMITMENTS:
        errors["commitments"] = [f"Make {MAX_COMMITMENTS} commitments or fewer"]
    for index, commitment in rows:
        commitment.what, commitment.how_much = commitment.what.strip(), commitment.how_much.strip()
        number = index + 1
        for name, value, message in (
            ("what", commitment.what, f"Say what social value commitment {number} is"),
            ("how_much", commitment.how_much, f"Say how much of commitment {number} you will do"),
        ):
            if not value:
                errors[f"commitments_{index}_{name}"] = [message]
            elif len(value) > COMMITMENT_MAX:
                errors[f"commitments_{index}_{name}"] = [
                    f"Use {COMMITMENT_MAX} characters or fewer in commitment {number}"
                ]
        if commitment.by_when is None:
            errors[f"commitments_{index}_by_when"] = [
                f"Enter the date by when you will deliver commitment {number}, like 31 3 2027"
            ]
        elif message := date_horizon_error(commitment.by_when, f"Commitment {number}'s date"):
            errors[f"commitments_{index}_by_when"] = [message]
    data.commitments = kept


def _member_organisation(competition: Competition, member: MemberInput) -> Organisation | None:
    """The organisation named: by key, or by its exact name (any case). Where several providers
    share the name, the one that is a member of the lot in the areas is meant."""
    if member.organisation_id is not None:
        return db.session.get(Organisation, member.organisation_id)
    if not member.name:
        return None
    named = list(
        db.session.scalars(
            sa.select(Organisation)
            .where(
                sa.func.lower(Organisation.name) == member.name.lower(),
                Organisation.type.in_(sorted(PROVIDER_TYPES)),
            )
            .order_by(Organisation.id)
            .limit(10)
        )
    )
    return next(
        (o for o in named if is_lot_member_in_areas(competition, o.id)),
        named[0] if named else None,
    )


def is_lot_member_in_areas(competition: Competition, organisation_id: int) -> bool:
    """An active membership of the competition's lot in one of its areas (a region, a PCC area,
    or a PCC area within one of its regions, and the other way round)."""
    region_ids = {a.region_id for a in competition.areas if a.region_id is not None}
    pcc_ids = {a.pcc_area_id for a in competition.areas if a.pcc_area_id is not None}
    if pcc_ids:
        region_ids |= set(
            db.session.scalars(sa.select(PccArea.region_id).where(PccArea.id.in_(pcc_ids)))
        )
    pcc_in_regions = sa.select(PccArea.id).where(PccArea.region_id.in_(region_ids))
    return (
        db.session.scalar(
            sa.select(LotMembership.id)
            .where(
                LotMembership.organisation_id == organisation_id,
                LotMembership.lot_id == competition.lot_id,
                LotMembership.status == MembershipStatus.ACTIVE,
                sa.or_(
                    LotMembership.region_id.in_(region_ids),
                    LotMembership.pcc_area_id.in_(pcc_ids),
                    LotMembership.pcc_area_id.in_(pcc_in_regions),
                ),
            )
            .limit(1)
        )
        is not None
    )


def _check_consortium(
    competition: Competition, bidder: Organisation, data: BidInput, errors: dict
) -> list[tuple[MemberInput, Organisation | None, ConsortiumRole]]:
    rows = [(i, m) for i, m in enumerate(data.consortium) if _filled(m)]
    if len(rows) > MAX_CONSORTIUM:
        errors["consortium"] = [f"Name {MAX_CONSORTIUM} organisations or fewer"]
    checked, seen, total = [], set(), 0
    for index, member in rows:
        member.name = member.name.strip()
        number = index + 1
        key = f"consortium_{index}"
        try:
            role = ConsortiumRole(member.role) if member.role else None
        except ValueError:
            role = None
        organisation = _member_organisation(competition, member)
        name = organisation.name if organisation is not None else member.name
        label = name or f"organisation {number}"
        if not name:
            errors[f"{key}_name"] = [f"Enter the name of organisation {number}"]
        elif len(name) > NAME_MAX:
            errors[f"{key}_name"] = [f"Use {NAME_MAX} characters or fewer for its name"]
        if role is None:
            errors[f"{key}_role"] = [
                f"Choose whether {label} is a consortium member or a named subcontractor"
            ]
        share = member.share_basis_points
        if share is None or share <= 0 or share >= BASIS_POINTS_WHOLE:
            errors[f"{key}_share"] = [
                f"Enter {label}'s share of the work as a percentage above 0 and below 100"
            ]
        else:
            total += share
        if organisation is not None and organisation.id == bidder.id:
            errors[f"{key}_name"] = [
                "You lead the bid: name only the other organisations in your consortium"
            ]
        elif name and name.lower() in seen:
            errors[f"{key}_name"] = [f"{name} is named twice"]
        elif (
            role is ConsortiumRole.MEMBER
            and name
            and (organisation is None or not is_lot_member_in_areas(competition, organisation.id))
        ):
            errors[f"{key}_name"] = [
                f"{name} is not a member of the {competition.category.name} lot in this "
                "competition's areas: name it as a subcontractor, or remove it"
            ]
        seen.add(name.lower())
        checked.append((member, organisation, role))
    if total >= BASIS_POINTS_WHOLE and not any(k.endswith("_share") for k in errors):
        errors["consortium"] = [
            "The other organisations' shares add up to 100% or more: as the lead you must do "
            "some of the work yourself"
        ]
    return checked


# ---------------------------------------------------------------------------------------------
# Use cases


def save_bid(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    data: BidInput,
    *,
    now: datetime | None = None,
) -> Bid:
    """Save the bid as a draft (a new one, or changes to a draft or withdrawn bid), refusing
    what breaks a rule even in a draft: an answer over its word limit, a price schedule that
    does not add up, a consortium member that is not a member of the lot."""
    now = now or utcnow()
    require_invited(actor, organisation, competition)
    require_open_until(competition, competition.bid_deadline, now, CLOSED_FOR_BIDS)
    bid = own_bid(competition, organisation)
    if bid is not None:
        lock(bid, "answers", "commitments", "consortium", "price_lines")
        if bid.status is BidStatus.SUBMITTED:
            raise BusinessRuleViolation(
                {"": ["Your bid is submitted: withdraw it to change it, then submit it again"]}
            )
        if bid.status not in (BidStatus.DRAFT, BidStatus.WITHDRAWN):
            raise BusinessRuleViolation({"": [f"Your bid is {bid.status.label.lower()}"]})
    errors: dict[str, list[str]] = {}
    given = _check_answers(competition, data.answers, errors)
    net, vat, gross = _check_price(competition, data, errors)
    _check_commitments(data, errors)
    consortium = _check_consortium(competition, organisation, data, errors)
    if errors:
        raise BusinessRuleViolation(errors)
    new_consortium = [
        (
            role,
            org.id if org is not None else None,
            org.name if org else m.name,
            m.share_basis_points,
        )
        for m, org, role in consortium
    ]
    old_consortium = [
        (c.role, c.organisation_id, c.name, c.share_basis_points)
        for c in (bid.consortium if bid is not None else [])
    ]
    if new_consortium != old_consortium:
        _require_bidder_role(actor, organisation, "name the organisations in a consortium")
    created = bid is None
    if created:
        bid = Bid(competition=competition, organisation=organisation, created_by_id=actor.id)
        db.session.add(bid)
    before = None if created else audit.snapshot(bid, BID_AUDIT_FIELDS)
    existing = {a.question_id: a for a in bid.answers}
    for question in competition.questions:
        answer = given.get(question.id)
        if answer is None:
            continue
        row = existing.get(question.id)
        if row is None:
            row = BidAnswer(question=question)
            bid.answers.append(row)
        row.text = answer.text
        row.meets_requirement = answer.meets_requirement
    bid.unit_price_pence = data.unit_price_pence
    bid.vat_treatment = data.vat_treatment
    bid.net_pence, bid.vat_pence, bid.gross_pence = net, vat, gross
    bid.price_lines = [
        BidPriceLine(position=i, description=line.description, amount_pence=line.amount_pence)
        for i, line in enumerate(data.price_lines)
    ]
    bid.commitments = [
        SocialValueCommitment(position=i, what=c.what, how_much=c.how_much, by_when=c.by_when)
        for i, c in enumerate(data.commitments)
    ]
    bid.consortium = [
        ConsortiumMember(role=role, organisation_id=org_id, name=name, share_basis_points=share)
        for role, org_id, name, share in new_consortium
    ]
    bid.bidder_is_sme = data.is_sme
    bid.updated_at = now
    if not created:
        bid.version += 1
    db.session.flush()
    audit.record(
        actor,
        "bid.created" if created else "bid.saved",
        bid,
        before=before,
        after=audit.snapshot(bid, BID_AUDIT_FIELDS),
        sealed_until=competition.bid_deadline,
    )
    return bid


def missing_for_submission(bid: Bid) -> dict[str, list[str]]:
    """What a bid still needs before it can be submitted (empty when complete)."""
    errors: dict[str, list[str]] = {}
    answers = {a.question_id: a for a in bid.answers}
    for position, question in enumerate(bid.competition.questions, start=1):
        answer = answers.get(question.id)
        if question.kind is QuestionKind.PASS_FAIL:
            if answer is None or answer.meets_requirement is None:
                errors[f"meets_{question.id}"] = [
                    f"Say whether you meet question {position} (“{_short(question.text)}”)"
                ]
        elif answer is None or not answer.text.strip():
            errors[f"answer_{question.id}"] = [
                f"Answer question {position} (“{_short(question.text)}”)"
            ]
    if bid.unit_price_pence is None:
        errors["unit_price_pence"] = ["Enter your unit price"]
    if bid.vat_treatment is None:
        errors["vat_treatment"] = ["Choose the VAT treatment of your price"]
    if bid.bidder_is_sme is None:
        errors["is_sme"] = ["Say whether your organisation is a small or medium-sized enterprise"]
    return errors


def submit_bid(
    actor: User, organisation: Organisation | None, bid: Bid, *, now: datetime | None = None
) -> Bid:
    """Submit (or resubmit after withdrawing) a complete bid before the bid deadline: once,
    however many times the button is pressed."""
    now = now or utcnow()
    _require_own(actor, organisation, bid)
    _require_bidder_role(actor, organisation, "submit a bid")
    competition = bid.competition
    # First: of two submissions at once the second waits here, then is told it is submitted.
    check_transition(bid, BidStatus.SUBMITTED, BID_TRANSITIONS, noun="bid")
    require_invited(actor, organisation, competition)
    require_open_until(competition, competition.bid_deadline, now, CLOSED_FOR_BIDS)
    lock(bid, "answers")
    missing = missing_for_submission(bid)
    if missing:
        raise BusinessRuleViolation(missing)
    before = audit.snapshot(bid, BID_AUDIT_FIELDS)
    transition(bid, BidStatus.SUBMITTED, BID_TRANSITIONS, noun="bid")
    bid.submitted_at, bid.submitted_by_id, bid.withdrawn_at = now, actor.id, None
    # VCSE from the organisation's type; SME as the bidder declared it (kept on the bid).
    bid.bidder_is_vcse = organisation.type is OrganisationType.PROVIDER_VCSE
    audit.record(
        actor,
        "bid.submitted",
        bid,
        before=before,
        after=audit.snapshot(bid, BID_AUDIT_FIELDS),
        sealed_until=competition.bid_deadline,
    )
    email_people(
        organisation.id,
        [Role.PROVIDER_ADMIN],
        "competitions_bid_submitted",
        competition=competition,
        bid=bid,
        deadline=deadline_text(competition.bid_deadline),
    )
    return bid


def withdraw_bid(
    actor: User, organisation: Organisation | None, bid: Bid, *, now: datetime | None = None
) -> Bid:
    """Withdraw a submitted bid before the bid deadline (it may be changed and resubmitted)."""
    now = now or utcnow()
    _require_own(actor, organisation, bid)
    _require_bidder_role(actor, organisation, "withdraw a bid")
    competition = bid.competition
    check_transition(bid, BidStatus.WITHDRAWN, BID_TRANSITIONS, noun="bid")
    require_open_until(competition, competition.bid_deadline, now, CLOSED_FOR_BIDS)
    before = audit.snapshot(bid, BID_AUDIT_FIELDS)
    transition(bid, BidStatus.WITHDRAWN, BID_TRANSITIONS, noun="bid")
    bid.withdrawn_at = now
    audit.record(
        actor,
        "bid.withdrawn",
        bid,
        before=before,
        after=audit.snapshot(bid, BID_AUDIT_FIELDS),
        sealed_until=competition.bid_deadline,
    )
    email_people(
        organisation.id,
        [Role.PROVIDER_ADMIN],
        "competitions_bid_withdrawn",
        competition=competition,
        bid=bid,
        deadline=deadline_text(competition.bid_deadline),
    )
    return bid


def counted_bids(competition: Competition) -> sa.Select:
    """The bids that count: submitted (or since scored or excluded) by an invited provider. A
    bid from anyone not on the invited list is disregarded, whatever its state."""
    return (
        sa.select(Bid)
        .join(
            InvitedProvider,
            sa.and_(
                InvitedProvider.competition_id == Bid.competition_id,
                InvitedProvider.organisation_id == Bid.organisation_id,
            ),
        )
        .where(
            Bid.competition_id == competition.id,
            Bid.status.in_([BidStatus.SUBMITTED, BidStatus.SCORED, BidStatus.EXCLUDED]),
        )
    )


def bids_received(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    *,
    now: datetime | None = None,
) -> list[Bid]:
    """The bids that count, for the buyer, funders, panel and authority: refused while sealed
    (nobody learns even how many there are before the deadline)."""
    if not permissions.can_oversee(actor, organisation, competition):
        raise NotFound("Competition not found")
    if permissions.bids_are_sealed(competition, now):
        raise PermissionDenied(
            "Bids are sealed until the bid deadline"
            + (f", {deadline_text(competition.bid_deadline)}" if competition.bid_deadline else "")
            + ", and the competition is closed: nobody can see them, or how many there are, "
            "before then."
        )
    return list(
        db.session.scalars(
            counted_bids(competition)
            .options(sa.orm.selectinload(Bid.organisation), sa.orm.selectinload(Bid.consortium))
            .order_by(Bid.submitted_at, Bid.id)
        )
    )
