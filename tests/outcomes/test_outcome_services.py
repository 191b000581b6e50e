"""Payment by results: outcome terms at placing and by agreement, claims, verification, the
contingent liability, and the bad input each rule refuses."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import EvidenceFile
from marketplace.accreditation.uploads import evidence_path
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.notifications.models import Notification
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services import responses
from marketplace.outcomes import queries
from marketplace.outcomes import services as outcomes
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim, OutcomeTerm, OutcomeTermStatus
from tests.orders.factories import build_orders_world, details
from tests.outcomes.factories import LATER, PDF, accepted_with_terms, claim, term


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def _emails(user) -> list[str]:
    return db.session.scalars(
        sa.select(Notification.template).where(Notification.to_email == user.email)
    ).all()


def test_terms_set_at_placing_are_agreed_and_count_towards_the_whole_life_value(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    assert (row.status, row.tariff_pence, row.cap) == (OutcomeTermStatus.AGREED, 50_001, 2)
    # £500.01 + 20% VAT (£100.00, half up) = £600.01 a claim; at most 2 claims.
    assert call_off.outcome_max_pence == 2 * 60_001
    assert "outcome_term.agreed" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_claim_verify_and_the_funders_budgets_spend_it(world):
    call_off = accepted_with_terms(world, co_funded=True)
    [row] = queries.terms_of(call_off.id)
    made = claim(world, call_off, row)
    assert made.status == ClaimStatus.CLAIMED and made.reference.startswith("OC-")
    assert "outcomes_claimed" in _emails(world.buyer)
    evidence = db.session.get(EvidenceFile, made.evidence_file_id)
    assert evidence.organisation_id == world.provider.id and os.path.exists(evidence_path(evidence))
    spent_before = (world.budget.spent_pence, world.pcc_budget.spent_pence)
    outcomes.verify_claim(world.buyer, made, now=LATER)
    assert made.status == ClaimStatus.VERIFIED and made.verified_at == LATER
    assert "outcomes_claim_decided" in _emails(world.provider_admin)
    # £600.01 split 60/40 to the penny.
    assert world.budget.spent_pence - spent_before[0] == 36_001
    assert world.pcc_budget.spent_pence - spent_before[1] == 24_000


def test_a_claim_before_its_earliest_date_is_refused(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    with pytest.raises(BusinessRuleViolation) as refused:
        claim(world, call_off, row, achieved_on=row.earliest_claim_on - timedelta(days=1))
    assert "achieved_on" in refused.value.errors
    with pytest.raises(BusinessRuleViolation):  # nor in the future
        claim(world, call_off, row, achieved_on=LATER.date() + timedelta(days=2))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutcomeClaim)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(EvidenceFile)) == 0


def test_a_claim_beyond_the_cap_is_refused_and_a_rejected_one_frees_its_place(world):
    call_off = accepted_with_terms(world, term(world, cap=1))
    [row] = queries.terms_of(call_off.id)
    first = claim(world, call_off, row)
    with pytest.raises(BusinessRuleViolation) as refused:
        claim(world, call_off, row)
    assert "at most 1" in refused.value.errors["term_id"][0]
    outcomes.reject_claim(world.buyer, first, "The tenancy is not signed", now=LATER)
    assert claim(world, call_off, row).status == ClaimStatus.CLAIMED


def test_another_organisations_call_off_is_not_found_and_a_wrong_role_is_forbidden(world):
    call_off = accepted_with_terms(world, co_funded=True)
    [row] = queries.terms_of(call_off.id)
    stranger = build_orders_world().provider_admin  # another provider altogether
    with pytest.raises(NotFound):
        claim(world, call_off, row, user=stranger)
    with pytest.raises(NotFound):
        outcomes.visible_call_off(stranger, call_off.id, stranger.memberships[0].organisation_id)
    with pytest.raises(PermissionDenied):
        claim(world, call_off, row, user=world.buyer)  # the buyer cannot claim
    made = claim(world, call_off, row)
    with pytest.raises(PermissionDenied):
        outcomes.verify_claim(world.provider_admin, made)  # nor the provider verify
    with pytest.raises(PermissionDenied):
        outcomes.verify_claim(world.pcc_approver, made)  # a co-funder is not the lead buyer
    with pytest.raises(NotFound):
        outcomes.verify_claim(stranger, made)
    with pytest.raises(NotFound):
        outcomes.visible_claim(stranger, made.id, stranger.memberships[0].organisation_id)
    assert made.status == ClaimStatus.CLAIMED


@pytest.mark.parametrize("tariff", [0, -1, 12.5, "100", True, None, 10**12])
def test_a_tariff_that_is_not_positive_whole_pence_is_refused(world, tariff):
    with pytest.raises(BusinessRuleViolation) as refused:
        accepted_with_terms(world, term(world, tariff_pence=tariff))
    assert "outcome_terms-0-tariff_pence" in refused.value.errors
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutcomeTerm)) == 0


def test_an_outcome_the_listing_does_not_offer_is_refused(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        accepted_with_terms(world, term(world, outcome="Found a job"))
    assert "outcome_terms-0-outcome" in refused.value.errors
    call_off = accepted_with_terms(world)
    with pytest.raises(BusinessRuleViolation) as again:
        outcomes.propose_term(world.buyer, call_off, term(world, outcome="Found a job"))
    assert "outcome" in again.value.errors


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"cap": 0}, "cap"),
        ({"cap": 1_001}, "cap"),
        ({"evidence_required": "  "}, "evidence_required"),
        ({"earliest_claim_on": "soon"}, "earliest_claim_on"),
    ],
)
def test_other_bad_terms_are_refused(world, fields, key):
    with pytest.raises(BusinessRuleViolation) as refused:
        accepted_with_terms(world, term(world, **fields))
    assert f"outcome_terms-0-{key}" in refused.value.errors


def test_an_earliest_date_before_the_start_and_a_repeated_outcome_are_refused(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        accepted_with_terms(
            world,
            term(world, earliest_claim_on=world.start - timedelta(days=1)),
            term(world),
        )
    assert set(refused.value.errors) == {
        "outcome_terms-0-earliest_claim_on",
        "outcome_terms-1-outcome",
    }


def test_verifying_a_claim_twice_is_refused(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    made = claim(world, call_off, row)
    outcomes.verify_claim(world.buyer, made, now=LATER)
    spent = world.budget.spent_pence
    with pytest.raises(TransitionConflict) as refused:
        outcomes.verify_claim(world.approver, made, now=LATER)
    assert refused.value.errors["status"] == ["This claim has already been verified"]
    with pytest.raises(TransitionConflict) as refused:
        outcomes.reject_claim(world.buyer, made, "Changed my mind", now=LATER)
    assert refused.value.errors["status"] == ["This claim is verified, so it cannot be rejected"]
    assert world.budget.spent_pence == spent


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 1_001])
def test_rejecting_without_a_reason_is_refused(world, reason):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    made = claim(world, call_off, row)
    with pytest.raises(BusinessRuleViolation) as refused:
        outcomes.reject_claim(world.buyer, made, reason, now=LATER)
    assert "reason" in refused.value.errors
    assert made.status == ClaimStatus.CLAIMED


def test_bad_evidence_is_refused_like_accreditation_evidence(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    for data in (b"MZ\x90\x00program", b"just some text", b""):
        with pytest.raises(BusinessRuleViolation) as refused:
            claim(world, call_off, row, data=data)
        assert "file" in refused.value.errors
    with pytest.raises(BusinessRuleViolation):
        outcomes.claim_outcome(
            world.provider_admin,
            call_off,
            outcomes.ClaimDetails(term_id=row.id, achieved_on=row.earliest_claim_on),
            None,
            None,
            now=LATER,
        )
    assert claim(world, call_off, row, data=PDF).status == ClaimStatus.CLAIMED


def test_terms_added_later_need_the_providers_agreement_and_the_limit(world):
    call_off = order_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world)
    )
    with pytest.raises(BusinessRuleViolation):  # not accepted yet
        outcomes.propose_term(world.buyer, call_off, term(world))
    responses.accept(world.provider_admin, call_off)
    with pytest.raises(PermissionDenied):
        outcomes.propose_term(world.provider_admin, call_off, term(world))
    proposed = outcomes.propose_term(world.buyer, call_off, term(world))
    assert proposed.status == OutcomeTermStatus.PROPOSED
    assert "outcomes_term_proposed" in _emails(world.provider_admin)
    with pytest.raises(BusinessRuleViolation):  # the same outcome twice
        outcomes.propose_term(world.buyer, call_off, term(world))
    with pytest.raises(BusinessRuleViolation):  # not agreed: nothing to claim yet
        claim(world, call_off, proposed)
    with pytest.raises(PermissionDenied):
        outcomes.agree_term(world.buyer, call_off, proposed.id)
    version = call_off.version
    outcomes.agree_term(world.provider_admin, call_off, proposed.id)
    assert call_off.outcome_max_pence == 2 * 60_001 and call_off.version == version + 1
    assert "outcomes_term_decided" in _emails(world.buyer)
    with pytest.raises(BusinessRuleViolation):
        outcomes.agree_term(world.provider_admin, call_off, proposed.id)
    second = outcomes.propose_term(
        world.buyer, call_off, term(world, outcome="Tenancy kept for 6 months")
    )
    with pytest.raises(BusinessRuleViolation):
        outcomes.reject_term(world.provider_admin, call_off, second.id, " ")
    outcomes.reject_term(world.provider_admin, call_off, second.id, "Tariff too low")
    assert second.status == OutcomeTermStatus.REJECTED


def test_outcome_terms_over_the_direct_award_limit_are_refused(app):
    world = build_orders_world(price_pence=10_000, limit_pence=200_000)
    # £1,000 of units; 2 × £600 of outcomes (exempt: no VAT) would make £2,200 > £2,000.
    with pytest.raises(BusinessRuleViolation) as refused:
        accepted_with_terms(world, term(world, tariff_pence=60_000), quantity=10)
    assert "direct award limit" in refused.value.errors["quantity"][0]
    call_off = accepted_with_terms(world, term(world, tariff_pence=50_000), quantity=10)
    assert call_off.outcome_max_pence == 100_000
    # Another call-off for the same service counts the outcome maximum of the first.
    with pytest.raises(BusinessRuleViolation):
        order_placing.place_call_off(
            world.buyer, world.region, world.listing.id, details(world, quantity=1)
        )


def test_the_contingent_liability_is_what_could_still_be_paid_split_exactly(world):
    call_off = accepted_with_terms(
        world,
        term(world, cap=3),
        term(world, outcome="Tenancy kept for 6 months", cap=1, tariff_pence=33_333),
        co_funded=True,
    )
    first, second = queries.terms_of(call_off.id)
    lead = queries.contingent_liability(world.region.id)
    pcc = queries.contingent_liability(world.pcc.id)
    # 3 × £600.01 + 1 × (£333.33 + £66.67) = £2,200.03, split 60/40 exactly.
    assert lead.total_pence + pcc.total_pence == 3 * 60_001 + 40_000
    made = claim(world, call_off, first)
    assert queries.contingent_liability(world.region.id).total_pence == lead.total_pence
    outcomes.verify_claim(world.buyer, made, now=LATER)
    after = queries.contingent_liability(world.region.id).total_pence
    after += queries.contingent_liability(world.pcc.id).total_pence
    assert after == 2 * 60_001 + 40_000
    assert queries.contingent_liability(world.provider.id).lines == []
    responses.cancel(world.buyer, call_off, "person_moved", now=LATER)
    assert queries.contingent_liability(world.region.id).total_pence == 0
