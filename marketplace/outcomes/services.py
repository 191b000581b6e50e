"""Payment by results: outcome terms (at placing, or added later by the lead buyer and agreed by
the provider), the provider's claims with evidence, and the lead buyer's verification.

Every function takes the acting user, checks that they may act, enforces the rules, writes an
audit event and queues the emails, and flushes without committing.

Money: a claim pays the term's tariff (ex VAT) with VAT at the call-off's locked treatment,
rounded half up per claim (each claim is one invoice line). The most a term can cost is its cap
times that, which counts towards the call-off's whole-life value for the direct-award limit.
Outcome payments are contingent, not committed: the budgets commit the fee only, and each
funder sees what could still become payable as a contingent liability (``queries``); a
verified claim becomes spend in each funder's budget, split by the funding shares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.accounts.services.common import email_people
from marketplace.accreditation.uploads import store_evidence
from marketplace.catalogue.models import Listing
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db, lock_rows, parse_id
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.money import split_by_basis_points, vat_pence
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.orders import signals as orders_signals
from marketplace.orders.models import MAX_VALUE_PENCE, Budget, CallOff
from marketplace.orders.permissions import BUYER_ROLES, parties
from marketplace.orders.services import call_offs, route
from marketplace.orders.services.details import OutcomeTermDetails
from marketplace.outcomes.models import (
    CLAIM_TRANSITIONS,
    CLAIMABLE,
    COUNTED_CLAIMS,
    EVIDENCE_REQUIRED_MAX,
    MAX_CAP,
    MAX_TARIFF_PENCE,
    NOTE_MAX,
    OUTCOME_TERM_TRANSITIONS,
    REASON_MAX,
    TERMS_CHANGEABLE,
    ClaimStatus,
    OutcomeClaim,
    OutcomeTerm,
    OutcomeTermStatus,
)
from marketplace.outcomes.permissions import (
    PROVIDER_CLAIMERS,
    claims_outcomes,
    decides_terms,
    is_lead_buyer,
)

TERM_FIELDS = [
    "status",
    "outcome",
    "tariff_pence",
    "earliest_claim_on",
    "evidence_required",
    "cap",
]
CLAIM_FIELDS = ["status", "reference", "term_id", "achieved_on", "evidence_file_id"]


def claim_gross(tariff_pence: int, treatment) -> int:
    """What one claim costs including VAT (rounded half up, as its invoice line is)."""
    return tariff_pence + vat_pence(tariff_pence, treatment)


def term_max_pence(term: OutcomeTerm | OutcomeTermDetails, treatment) -> int:
    """The most a term can cost: every claim up to its cap, VAT included."""
    return term.cap * claim_gross(term.tariff_pence, treatment)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_term(
    offering: Listing | CallOff, start_date: object, term: OutcomeTermDetails
) -> dict[str, list[str]]:
    """Errors in one term, by field: an outcome ``offering`` offers (a listing's, or a live
    call-off's: none for one awarded by further competition without a listing), a positive
    whole tariff in pence, an earliest claim date on or after the start, the evidence required
    and a cap."""
    errors: dict[str, list[str]] = {}
    offered = offering.offered_outcomes
    if not offered:
        errors["outcome"] = [
            "This call-off has no rate-card listing, so it offers no outcomes to pay for by results"
        ]
    elif (term.outcome or "").strip() not in offered:
        errors["outcome"] = ["Choose an outcome the service offers"]
    if not _whole(term.tariff_pence) or term.tariff_pence < 1:
        errors["tariff_pence"] = [
            "Enter the tariff per outcome as a whole number of pence, more than 0"
        ]
    elif term.tariff_pence > MAX_TARIFF_PENCE:
        errors["tariff_pence"] = [
            f"The tariff per outcome must be {call_offs.in_pounds(MAX_TARIFF_PENCE)} or less"
        ]
    if not isinstance(term.earliest_claim_on, date) or isinstance(term.earliest_claim_on, datetime):
        errors["earliest_claim_on"] = ["Enter the earliest date the outcome can be claimed"]
    elif isinstance(start_date, date) and term.earliest_claim_on < start_date:
        errors["earliest_claim_on"] = [
            "The earliest claim date must be on or after the call-off's start, "
            f"{start_date.day} {start_date:%B %Y}"
        ]
    elif message := date_horizon_error(
        term.earliest_claim_on,
        "The earliest claim date",
        start=start_date if isinstance(start_date, date) else None,
        start_label="the call-off's start",
    ):
        errors["earliest_claim_on"] = [message]
    evidence = (term.evidence_required or "").strip()
    if not evidence:
        errors["evidence_required"] = ["Enter the evidence the provider must give"]
    elif len(evidence) > EVIDENCE_REQUIRED_MAX:
        errors["evidence_required"] = [
            f"The evidence required must be {EVIDENCE_REQUIRED_MAX:,} characters or fewer"
        ]
    if not _whole(term.cap) or not 1 <= term.cap <= MAX_CAP:
        errors["cap"] = [f"Enter the most claims allowed as a whole number from 1 to {MAX_CAP}"]
    return errors


def check_new_terms(
    listing: Listing, start_date: object, treatment, terms: Sequence[OutcomeTermDetails]
) -> tuple[dict[str, list[str]], int]:
    """Errors in the terms of a call-off being placed (keyed ``outcome_terms-N-field``), and
    the most they could cost together."""
    errors: dict[str, list[str]] = {}
    total = 0
    seen: set[str] = set()
    for index, term in enumerate(terms):
        if not isinstance(term, OutcomeTermDetails):
            errors[f"outcome_terms-{index}"] = ["Give each outcome term in full"]
            continue
        term_errors = check_term(listing, start_date, term)
        for name, messages in term_errors.items():
            errors[f"outcome_terms-{index}-{name}"] = messages
        outcome = (term.outcome or "").strip()
        if outcome in seen:
            errors[f"outcome_terms-{index}-outcome"] = ["Give each outcome once"]
        seen.add(outcome)
        if not term_errors:
            total += term_max_pence(term, treatment)
    if total > MAX_VALUE_PENCE:
        errors["outcome_terms"] = ["The outcome terms could cost more than a call-off can be worth"]
    return errors, total


def _new_term(term: OutcomeTermDetails, actor: User, now: datetime) -> OutcomeTerm:
    return OutcomeTerm(
        outcome=term.outcome.strip(),
        tariff_pence=term.tariff_pence,
        earliest_claim_on=term.earliest_claim_on,
        evidence_required=term.evidence_required.strip(),
        cap=term.cap,
        proposed_by_id=actor.id,
        proposed_at=now,
        claims=[],
    )


def add_terms_at_placing(
    actor: User, call_off: CallOff, terms: Sequence[OutcomeTermDetails], now: datetime
) -> list[OutcomeTerm]:
    """The terms of a call-off being placed (already checked by ``check_new_terms``): agreed
    with it, since the provider accepts or declines the call-off with its terms."""
    rows = []
    for details in terms:
        term = _new_term(details, actor, now)
        term.call_off = call_off
        term.status = OutcomeTermStatus.AGREED
        term.agreed_at, term.agreed_by_id = now, actor.id
        db.session.add(term)
        rows.append(term)
    db.session.flush()
    for term in rows:
        audit.record(actor, "outcome_term.agreed", term, after=audit.snapshot(term, TERM_FIELDS))
    return rows


@orders_signals.checking_outcome_terms.connect
def _check_terms_when_placing(
    listing: Listing, *, start_date: object, vat_treatment, terms, **_: object
) -> tuple[dict[str, list[str]], int]:
    return check_new_terms(listing, start_date, vat_treatment, terms)


@orders_signals.call_off_placed_with_terms.connect
def _add_terms_when_placed(
    call_off: CallOff, *, actor: User, terms, now: datetime, **_: object
) -> list[OutcomeTerm]:
    return add_terms_at_placing(actor, call_off, terms, now)


# ---------------------------------------------------------------------------------------------
# Who may act


def _require_lead_buyer(actor: User, call_off: CallOff, what: str) -> None:
    if not is_lead_buyer(actor, call_off):
        if any(actor.roles_for(org) for org in parties(call_off)):
            raise PermissionDenied(f"Only the lead buyer can {what}")
        raise NotFound("Call-off not found")


def _require_provider(
    actor: User, call_off: CallOff, allowed: Callable[[User, CallOff], bool], what: str
) -> None:
    if not allowed(actor, call_off):
        if any(actor.roles_for(org) for org in parties(call_off)):
            raise PermissionDenied(f"Only the provider can {what}")
        raise NotFound("Call-off not found")


def visible_call_off(actor: User, call_off_id: object, organisation_id: int) -> CallOff:
    """The call-off if ``organisation_id`` (one of the actor's) is party to it; else NotFound."""
    pk = parse_id(call_off_id)
    call_off = db.session.get(CallOff, pk) if pk is not None else None
    if (
        call_off is None
        or not actor.roles_for(organisation_id)
        or organisation_id not in parties(call_off)
    ):
        raise NotFound("There is no call-off with that id that your organisation is party to.")
    return call_off


def visible_claim(actor: User, claim_id: object, organisation_id: int) -> OutcomeClaim:
    """The claim if ``organisation_id`` (one of the actor's) is party to its call-off."""
    pk = parse_id(claim_id)
    claim = db.session.get(OutcomeClaim, pk) if pk is not None else None
    if (
        claim is None
        or not actor.roles_for(organisation_id)
        or organisation_id not in parties(claim.call_off)
    ):
        raise NotFound("There is no outcome claim with that id that your organisation can see.")
    return claim


def _term_of(call_off: CallOff, term_id: object) -> OutcomeTerm:
    pk = parse_id(term_id)
    term = db.session.get(OutcomeTerm, pk) if pk is not None else None
    if term is None or term.call_off_id != call_off.id:
        raise NotFound("Outcome term not found")
    return term


# ---------------------------------------------------------------------------------------------
# Adding terms to a live call-off: the lead buyer proposes, the provider agrees or rejects


def propose_term(
    actor: User, call_off: CallOff, details: OutcomeTermDetails, *, now: datetime | None = None
) -> OutcomeTerm:
    """The lead buyer proposes an outcome term for an accepted call-off; the provider decides."""
    _require_lead_buyer(actor, call_off, "propose outcome terms")
    if call_off.status not in TERMS_CHANGEABLE:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}: outcome terms can be "
                    "added only while it is accepted or in delivery"
                ]
            }
        )
    errors = check_term(call_off, call_off.start_date, details)
    live = {
        t.outcome
        for t in db.session.scalars(
            sa.select(OutcomeTerm).where(
                OutcomeTerm.call_off_id == call_off.id,
                OutcomeTerm.status != OutcomeTermStatus.REJECTED,
            )
        )
    }
    if "outcome" not in errors and details.outcome.strip() in live:
        errors["outcome"] = ["This call-off already has terms for that outcome"]
    if errors:
        raise BusinessRuleViolation(errors)
    now = now or utcnow()
    term = _new_term(details, actor, now)
    term.call_off = call_off
    term.status = OutcomeTermStatus.PROPOSED
    db.session.add(term)
    db.session.flush()
    audit.record(actor, "outcome_term.proposed", term, after=audit.snapshot(term, TERM_FIELDS))
    email_people(
        call_off.provider_id,
        [Role.PROVIDER_ADMIN],
        "outcomes_term_proposed",
        call_off=call_off,
        term=term,
        max_pence=term_max_pence(term, call_off.vat_treatment),
    )
    return term


def agree_term(
    actor: User, call_off: CallOff, term_id: object, *, now: datetime | None = None
) -> OutcomeTerm:
    """The provider agrees proposed terms: the call-off's whole-life value (with the most the
    terms could add) must stay within the direct-award limit; the call-off takes a new version."""
    term = _term_of(call_off, term_id)
    _require_provider(actor, call_off, decides_terms, "agree outcome terms")
    # The call-off, then its terms: agreeing changes the call-off's most payable and version.
    lock(call_off)
    check_transition(term, OutcomeTermStatus.AGREED, OUTCOME_TERM_TRANSITIONS, noun="outcome term")
    if call_off.status not in TERMS_CHANGEABLE:
        raise BusinessRuleViolation(
            {"status": [f"This call-off is {call_off.status.label.lower()}, so it cannot change"]}
        )
    now = now or utcnow()
    extra = term_max_pence(term, call_off.vat_treatment)
    route.check_route(call_off, extra, now)  # locks the buyer's total for the service
    before = audit.snapshot(term, TERM_FIELDS)
    transition(term, OutcomeTermStatus.AGREED, OUTCOME_TERM_TRANSITIONS, noun="outcome term")
    term.agreed_at, term.agreed_by_id = now, actor.id
    call_off.outcome_max_pence += extra
    call_off.version += 1
    audit.record(
        actor, "outcome_term.agreed", term, before=before, after=audit.snapshot(term, TERM_FIELDS)
    )
    audit.record(
        actor,
        "call_off.outcome_terms_agreed",
        call_off,
        after={
            "term_id": term.id,
            "outcome_max_pence": call_off.outcome_max_pence,
            "version": call_off.version,
        },
    )
    email_people(
        call_off.lead_buyer_id, BUYER_ROLES, "outcomes_term_decided", call_off=call_off, term=term
    )
    return term


def reject_term(
    actor: User, call_off: CallOff, term_id: object, reason: str, *, now: datetime | None = None
) -> OutcomeTerm:
    """The provider rejects proposed terms with a reason."""
    term = _term_of(call_off, term_id)
    _require_provider(actor, call_off, decides_terms, "reject outcome terms")
    reason = _reason(reason, "Explain why you are rejecting these outcome terms")
    now = now or utcnow()
    lock(term)
    before = audit.snapshot(term, TERM_FIELDS)
    transition(term, OutcomeTermStatus.REJECTED, OUTCOME_TERM_TRANSITIONS, noun="outcome term")
    term.rejected_at, term.rejected_by_id, term.rejection_reason = now, actor.id, reason
    audit.record(
        actor,
        "outcome_term.rejected",
        term,
        before=before,
        after={**audit.snapshot(term, TERM_FIELDS), "reason": reason},
    )
    email_people(
        call_off.lead_buyer_id, BUYER_ROLES, "outcomes_term_decided", call_off=call_off, term=term
    )
    return term


def _reason(reason: object, missing: str) -> str:
    text = (reason if isinstance(reason, str) else "").strip()
    if not text:
        raise BusinessRuleViolation({"reason": [missing]})
    if len(text) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX:,} characters or fewer"]}
        )
    return text


# ---------------------------------------------------------------------------------------------
# Claims


@dataclass
class ClaimDetails:
    term_id: object = None
    achieved_on: object = None
    note: str = ""


def claim_reference(claim_id: int, year: int) -> str:
    return f"OC-{year}-{claim_id:06d}"


def claim_outcome(
    actor: User,
    call_off: CallOff,
    details: ClaimDetails,
    filename: str | None,
    stream: BinaryIO | None,
    *,
    now: datetime | None = None,
) -> OutcomeClaim:
    """The provider claims an agreed outcome, achieved on or after its earliest claim date and
    within its cap, with an evidence file (checked as accreditation evidence is)."""
    _require_provider(actor, call_off, claims_outcomes, "claim outcomes")
    now = now or utcnow()
    today = london_date(now)
    term = _term_of(call_off, details.term_id)
    if term.status != OutcomeTermStatus.AGREED:
        raise BusinessRuleViolation(
            {"term_id": [f"These outcome terms are {term.status.label.lower()}, not agreed"]}
        )
    if call_off.status not in CLAIMABLE:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}: outcomes can be claimed "
                    "once it is accepted"
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    day = details.achieved_on
    if not isinstance(day, date) or isinstance(day, datetime):
        errors["achieved_on"] = ["Enter the date the outcome was achieved"]
    elif message := date_horizon_error(day, "The date the outcome was achieved", today=today):
        errors["achieved_on"] = [message]
    elif day > today:
        errors["achieved_on"] = ["The date the outcome was achieved must be today or in the past"]
    elif day < term.earliest_claim_on:
        errors["achieved_on"] = [
            f"This outcome cannot be claimed before {term.earliest_claim_on.day} "
            f"{term.earliest_claim_on:%B %Y}"
        ]
    note = (details.note if isinstance(details.note, str) else "").strip()
    if len(note) > NOTE_MAX:
        errors["note"] = [f"The note must be {NOTE_MAX:,} characters or fewer"]
    if stream is None:
        errors["file"] = ["Choose the evidence file to upload"]
    if errors:
        raise BusinessRuleViolation(errors)
    # Two claims at once must not pass the cap between them.
    lock_rows(OutcomeTerm, [term.id])
    used = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutcomeClaim)
        .where(OutcomeClaim.term_id == term.id, OutcomeClaim.status.in_(list(COUNTED_CLAIMS)))
    )
    if used >= term.cap:
        raise BusinessRuleViolation(
            {
                "term_id": [
                    f"This outcome can be claimed at most {term.cap} time(s), and "
                    f"{used} claim(s) already count towards that"
                ]
            }
        )
    evidence = store_evidence(actor, call_off.provider, filename or "", stream, at=now)
    claim = OutcomeClaim(
        reference=f"NEW-{term.id}-{evidence.stored_name[:12]}",  # until the flush gives a key
        term=term,
        call_off_id=call_off.id,
        status=ClaimStatus.CLAIMED,
        achieved_on=day,
        note=note,
        evidence_file_id=evidence.id,
        claimed_by_id=actor.id,
        claimed_at=now,
    )
    db.session.add(claim)
    db.session.flush()
    claim.reference = claim_reference(claim.id, today.year)
    audit.record(actor, "outcome_claim.claimed", claim, after=audit.snapshot(claim, CLAIM_FIELDS))
    email_people(
        call_off.lead_buyer_id, BUYER_ROLES, "outcomes_claimed", call_off=call_off, claim=claim
    )
    return claim


def _spend(call_off: CallOff, amount: int) -> list[int]:
    """A verified claim's cost becomes spend in each funder's budget, split by the shares."""
    funders = list(call_off.funders)
    lock_rows(Budget, (f.budget_id for f in funders))
    parts = split_by_basis_points(amount, [f.basis_points for f in funders])
    for funder, part in zip(funders, parts, strict=True):
        funder.budget.spent_pence += part
    return parts


def verify_claim(actor: User, claim: OutcomeClaim, *, now: datetime | None = None) -> OutcomeClaim:
    """The lead buyer verifies a claim: it is billed by the next invoice run."""
    call_off = claim.call_off
    _require_lead_buyer(actor, call_off, "verify outcome claims")
    lock(claim)
    now = now or utcnow()
    before = audit.snapshot(claim, CLAIM_FIELDS)
    transition(claim, ClaimStatus.VERIFIED, CLAIM_TRANSITIONS, noun="claim")
    claim.verified_at, claim.verified_by_id = now, actor.id
    amount = claim_gross(claim.term.tariff_pence, call_off.vat_treatment)
    parts = _spend(call_off, amount)
    audit.record(
        actor,
        "outcome_claim.verified",
        claim,
        before=before,
        after={**audit.snapshot(claim, CLAIM_FIELDS), "gross_pence": amount, "parts": parts},
    )
    email_people(
        call_off.provider_id,
        PROVIDER_CLAIMERS,
        "outcomes_claim_decided",
        call_off=call_off,
        claim=claim,
    )
    return claim


def reject_claim(
    actor: User, claim: OutcomeClaim, reason: object, *, now: datetime | None = None
) -> OutcomeClaim:
    """The lead buyer rejects a claim with a reason the provider sees; it frees its place
    under the cap."""
    call_off = claim.call_off
    _require_lead_buyer(actor, call_off, "reject outcome claims")
    reason = _reason(reason, "Explain why you are rejecting this claim")
    lock(claim)
    now = now or utcnow()
    before = audit.snapshot(claim, CLAIM_FIELDS)
    transition(claim, ClaimStatus.REJECTED, CLAIM_TRANSITIONS, noun="claim")
    claim.rejected_at, claim.rejected_by_id, claim.rejection_reason = now, actor.id, reason
    audit.record(
        actor,
        "outcome_claim.rejected",
        claim,
        before=before,
        after={**audit.snapshot(claim, CLAIM_FIELDS), "reason": reason},
    )
    email_people(
        call_off.provider_id,
        PROVIDER_CLAIMERS,
        "outcomes_claim_decided",
        call_off=call_off,
        claim=claim,
    )
    return claim
