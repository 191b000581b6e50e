"""A co-funder declines its share with a reason; the lead buyer re-splits the shares (through the
checks placing makes) or cancels: budgets, standing authorisations, audit and emails move once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core import clock
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.notifications.models import Notification
from marketplace.orders import permissions, queries
from marketplace.orders.models import (
    CALL_OFF_TRANSITIONS,
    Budget,
    CallOffStatus,
    FundingAuthorisation,
)
from marketplace.orders.services import funding, responses
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services.details import FundingShare
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=10_000)  # £100 a unit, no VAT


def place(world, quantity=10, **fields):
    return order_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=quantity, **fields)
    )


def co_funded(world, pcc_points=4_000, **fields):
    """£1,000: the region 60%, the PCC 40% (£400), waiting for the PCC."""
    call_off = place(
        world, shares=shares((world.region, 10_000 - pcc_points), (world.pcc, pcc_points)), **fields
    )
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    return call_off


def third_funder(world, allocated=10_000_000):
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    db.session.add(
        Budget(
            organisation=other,
            financial_year=world.budget.financial_year,
            allocated_pence=allocated,
        )
    )
    approver = make_member(Role.APPROVER, other, name="Cleo Cleveland")
    db.session.flush()
    return other, approver


def emails(template: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.template == template)
            .order_by(Notification.id)
        )
    )


def audited(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def decline(world, call_off, reason="Our budget is needed for victim services"):
    return funding.decline_funding(world.pcc_approver, call_off, world.pcc, reason)


# --- the state machine


def test_the_state_machine_has_funding_declined_between_funding_and_the_lead_buyers_choice():
    declined = CallOffStatus.FUNDING_DECLINED
    assert declined in CALL_OFF_TRANSITIONS[CallOffStatus.AWAITING_FUNDING]
    assert CALL_OFF_TRANSITIONS[declined] == {
        CallOffStatus.AWAITING_FUNDING,
        CallOffStatus.AWAITING_APPROVAL,
        CallOffStatus.SENT,
        CallOffStatus.CANCELLED,
    }
    assert declined.label == "Funding declined"


# --- declining


def test_a_decline_releases_the_share_is_audited_and_tells_the_lead_buyer_why(world):
    call_off = co_funded(world)
    assert world.pcc_budget.committed_pence == 40_000

    decline(world, call_off)

    assert call_off.status == CallOffStatus.FUNDING_DECLINED
    pcc_share = call_off.funders[1]
    assert pcc_share.declined_at is not None and pcc_share.declined_by_id == world.pcc_approver.id
    assert pcc_share.decline_reason == "Our budget is needed for victim services"
    assert (pcc_share.committed_pence, world.pcc_budget.committed_pence) == (0, 0)
    assert world.budget.committed_pence == 60_000  # the lead's part waits for its choice
    [event] = audited("call_off.funding_declined")
    assert event.after["funder_id"] == world.pcc.id and event.after["released_pence"] == 40_000
    assert event.before["status"] == "awaiting_funding"
    assert event.after["status"] == "funding_declined"
    # The person who placed it and the lead buyer's approvers, each once, with the reason and a
    # link to the call-off.
    told = emails("orders_funding_declined")
    assert sorted(n.to_email for n in told) == sorted([world.buyer.email, world.approver.email])
    body = " ".join(told[0].body.split())
    assert told[0].subject == f"Durham PCC declined its share of call-off {call_off.reference}"
    assert "Their reason: Our budget is needed for victim services" in body
    assert f"/call-offs/{call_off.id}" in body
    # It waits for the lead buyer: on its list of call-offs to act on, not the PCC's.
    assert queries.waiting_first(world.region.id, 10)[1] == 1
    assert queries.waiting_first(world.pcc.id, 10)[1] == 0


def test_a_decline_without_a_reason_is_refused_and_changes_nothing(world):
    call_off = co_funded(world)
    for reason in ("", "   ", None):
        with pytest.raises(BusinessRuleViolation) as refused:
            decline(world, call_off, reason)
        assert refused.value.errors == {
            "reason": ["Enter why your organisation is declining its share"]
        }
    with pytest.raises(BusinessRuleViolation):
        decline(world, call_off, "x" * 1_001)
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    assert world.pcc_budget.committed_pence == 40_000
    assert not audited("call_off.funding_declined")


def test_only_the_co_funders_approvers_may_decline_its_share(world):
    call_off = co_funded(world)
    pcc_buyer = make_member(Role.BUYER, world.pcc)
    with pytest.raises(PermissionDenied):
        funding.decline_funding(pcc_buyer, call_off, world.pcc, "No")
    # An organisation that does not fund it, and the lead buyer (which cancels instead).
    stranger_org = make_organisation(OrganisationType.PCC, name="Cumbria PCC")
    stranger = make_member(Role.APPROVER, stranger_org)
    with pytest.raises(NotFound):
        funding.decline_funding(stranger, call_off, stranger_org, "No")
    with pytest.raises(NotFound):  # acting for an organisation they are not in
        funding.decline_funding(stranger, call_off, world.pcc, "No")
    with pytest.raises(NotFound):
        funding.decline_funding(world.approver, call_off, world.region, "No")
    assert call_off.status == CallOffStatus.AWAITING_FUNDING


def test_a_share_confirmed_by_a_person_cannot_then_be_declined(world):
    other, other_approver = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    with pytest.raises(TransitionConflict) as refused:
        decline(world, call_off)
    assert refused.value.errors == {"status": ["Your organisation has already confirmed its share"]}
    funding.decline_funding(other_approver, call_off, other, "Not in our plan")
    with pytest.raises(TransitionConflict) as again:
        funding.decline_funding(other_approver, call_off, other, "Still no")
    assert again.value.errors == {"status": ["Your organisation has already declined its share"]}
    with pytest.raises(TransitionConflict):
        funding.confirm_funding(other_approver, call_off, other)


def test_a_share_confirmed_by_a_standing_authorisation_may_be_declined_and_gives_back_its_use(
    world,
):
    authorisation = FundingAuthorisation(
        funder=world.pcc,
        lead_buyer=world.region,
        financial_year=world.budget.financial_year,
        per_call_off_limit_pence=50_000,
        annual_limit_pence=100_000,
    )
    db.session.add(authorisation)
    other, _ = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    assert call_off.funders[1].preauthorised and authorisation.used_pence == 30_000

    decline(world, call_off)

    pcc_share = call_off.funders[1]
    assert (pcc_share.preauthorised, pcc_share.confirmed_at) == (False, None)
    assert authorisation.used_pence == 0 and world.pcc_budget.committed_pence == 0
    assert call_off.status == CallOffStatus.FUNDING_DECLINED


def test_a_second_co_funder_may_decline_or_confirm_while_the_lead_buyer_decides(world):
    other, other_approver = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    decline(world, call_off)
    funding.confirm_funding(other_approver, call_off, other)
    assert call_off.status == CallOffStatus.FUNDING_DECLINED  # still the lead buyer's choice
    assert call_off.funders[2].confirmed_at is not None


def test_no_decline_once_the_call_off_has_moved_on(world):
    call_off = place(world)  # the region alone: sent
    with pytest.raises(NotFound):
        decline(world, call_off)
    call_off = co_funded(world, po_number="PO-2")
    responses.cancel(world.buyer, call_off, "duplicate")
    with pytest.raises(TransitionConflict) as refused:
        decline(world, call_off)
    assert refused.value.errors == {
        "status": ["This call-off is cancelled, so its shares can no longer be declined"]
    }


# --- re-splitting


def test_the_lead_buyer_takes_the_whole_value_and_the_call_off_goes_to_the_provider(world):
    call_off = co_funded(world)
    decline(world, call_off)

    funding.resplit_funding(world.buyer, call_off, [FundingShare(world.region.id, 10_000)])

    assert call_off.status == CallOffStatus.SENT
    [lead] = call_off.funders
    assert (lead.basis_points, lead.share_pence, lead.committed_pence) == (10_000, 100_000, 100_000)
    assert world.budget.committed_pence == 100_000 and world.pcc_budget.committed_pence == 0
    [event] = audited("call_off.funding_resplit")
    assert [f["organisation_id"] for f in event.before["funders"]] == [
        world.region.id,
        world.pcc.id,
    ]
    assert event.after["funders"][0]["basis_points"] == 10_000
    assert len(emails("orders_sent_to_provider")) == 1
    assert not permissions.actions(world.buyer, world.region, call_off)["resplit"]


def test_the_lead_buyer_taking_more_than_the_placers_spend_limit_needs_an_approver(
    world, app, monkeypatch
):
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 80_000)
    call_off = co_funded(world)  # the region's £600 is within the limit
    decline(world, call_off)
    funding.resplit_funding(world.buyer, call_off, [FundingShare(world.region.id, 10_000)])
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL


def test_new_or_larger_shares_are_asked_again_and_the_rest_stay_confirmed(world):
    other, other_approver = third_funder(world)
    # Region 40%, PCC 30% (declines), Cleveland 30% (confirms).
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    funding.confirm_funding(other_approver, call_off, other)
    decline(world, call_off)
    cleveland_confirmed_at = call_off.funders[2].confirmed_at

    # Cleveland keeps 30% (stays confirmed); the PCC is asked again for 10%; the region 60%.
    funding.resplit_funding(
        world.buyer,
        call_off,
        shares((world.region, 6_000), (other, 3_000), (world.pcc, 1_000)),
    )

    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    by_org = {f.organisation_id: f for f in call_off.funders}
    assert by_org[other.id].confirmed_at == cleveland_confirmed_at
    pcc_share = by_org[world.pcc.id]
    assert (pcc_share.confirmed_at, pcc_share.declined_at, pcc_share.decline_reason) == (
        None,
        None,
        None,
    )
    assert (pcc_share.basis_points, pcc_share.committed_pence) == (1_000, 10_000)
    assert world.pcc_budget.committed_pence == 10_000
    assert world.budget.committed_pence == 60_000
    asked = emails("orders_funding_resplit")
    assert [n.to_email for n in asked] == [world.pcc_approver.email]
    assert "Your share: 10%, £100.00 including VAT" in " ".join(asked[0].body.split())

    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    assert call_off.status == CallOffStatus.SENT


def test_a_larger_share_for_a_confirmed_co_funder_is_asked_again(world):
    other, other_approver = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    funding.confirm_funding(other_approver, call_off, other)
    decline(world, call_off)
    funding.resplit_funding(world.buyer, call_off, shares((world.region, 4_000), (other, 6_000)))
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    [lead, cleveland] = call_off.funders
    assert cleveland.confirmed_at is None and cleveland.committed_pence == 60_000
    assert world.pcc_budget.committed_pence == 0
    assert [n.to_email for n in emails("orders_funding_resplit")] == [other_approver.email]


@pytest.mark.parametrize(
    ("points", "errors"),
    [
        (
            (6_000, 3_000),
            {"shares": ["The shares must add up to exactly 100% (they add up to 90%)"]},
        ),
        (
            (6_000, 0),
            {"shares": ["Each share must be a whole number of basis points, at least 0.01%"]},
        ),
        (
            (11_000, -1_000),
            {"shares": ["Each share must be a whole number of basis points, at least 0.01%"]},
        ),
        (
            (6_000, 40.5),
            {"shares": ["Each share must be a whole number of basis points, at least 0.01%"]},
        ),
    ],
)
def test_a_re_split_that_does_not_make_whole_shares_of_100_percent_is_refused(
    world, points, errors
):
    other, _ = third_funder(world)
    call_off = co_funded(world)
    decline(world, call_off)
    with pytest.raises(BusinessRuleViolation) as refused:
        funding.resplit_funding(
            world.buyer,
            call_off,
            [FundingShare(world.region.id, points[0]), FundingShare(other.id, points[1])],
        )
    assert refused.value.errors == errors
    assert call_off.status == CallOffStatus.FUNDING_DECLINED
    assert world.budget.committed_pence == 60_000
    assert not audited("call_off.funding_resplit")


def test_a_re_split_naming_a_funder_twice_or_without_the_lead_or_a_budget_is_refused(world):
    other, _ = third_funder(world, allocated=5_000)  # £50 left: less than any share below
    call_off = co_funded(world)
    decline(world, call_off)
    region = world.region.id

    def refusal(*given):
        with pytest.raises(BusinessRuleViolation) as refused:
            funding.resplit_funding(world.buyer, call_off, list(given))
        return refused.value.errors

    assert refusal(
        FundingShare(region, 5_000), FundingShare(other.id, 2_500), FundingShare(other.id, 2_500)
    ) == {"shares-2-organisation_id": ["Name each funder once"]}
    assert refusal(FundingShare(other.id, 10_000)) == {
        "shares": ["Your organisation places the call-off, so it must fund a share of it"]
    }
    assert refusal(FundingShare(region, 5_000), FundingShare(other.id, 5_000)) == {
        "shares-1-basis_points": [
            "Cleveland PCC has £50.00 left in its "
            f"{clock.financial_year_label(world.budget.financial_year)} budget, less than "
            "its share of £500.00"
        ]
    }
    assert call_off.status == CallOffStatus.FUNDING_DECLINED


def test_the_lead_buyers_own_budget_must_take_its_larger_share(world):
    call_off = co_funded(world)
    decline(world, call_off)
    # What the region commits besides this call-off leaves £300 of its £600 → £1,000 growth.
    world.budget.allocated_pence = world.budget.committed_pence + 30_000
    db.session.flush()
    with pytest.raises(BusinessRuleViolation) as refused:
        funding.resplit_funding(world.buyer, call_off, [FundingShare(world.region.id, 10_000)])
    [message] = refused.value.errors["shares"]
    assert "North East Probation has £900.00 left" in message and "£1,000.00" in message
    # Its own part counts as available to it: 90% fits.
    other, _ = third_funder(world)
    funding.resplit_funding(world.buyer, call_off, shares((world.region, 9_000), (other, 1_000)))
    assert world.budget.available_pence == 0


def test_only_the_lead_buyer_re_splits_and_only_after_a_decline(world):
    call_off = co_funded(world)
    lead_only = [FundingShare(world.region.id, 10_000)]
    with pytest.raises(TransitionConflict) as refused:
        funding.resplit_funding(world.buyer, call_off, lead_only)
    assert refused.value.errors == {
        "status": [
            "No co-funder has declined its share of this call-off, so its shares cannot be changed"
        ]
    }
    decline(world, call_off)
    with pytest.raises(PermissionDenied):
        funding.resplit_funding(world.pcc_approver, call_off, lead_only)
    with pytest.raises(PermissionDenied):
        funding.resplit_funding(world.provider_admin, call_off, lead_only)
    stranger = make_member(Role.BUYER, make_organisation(OrganisationType.PCC, name="Cumbria"))
    with pytest.raises(NotFound):
        funding.resplit_funding(stranger, call_off, lead_only)
    assert call_off.status == CallOffStatus.FUNDING_DECLINED


def test_a_confirmed_co_funder_left_out_of_a_re_split_is_released_and_told(world):
    other, other_approver = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    funding.confirm_funding(other_approver, call_off, other)
    decline(world, call_off)
    cleveland_budget = db.session.scalar(
        sa.select(Budget).where(Budget.organisation_id == other.id)
    )
    assert cleveland_budget.committed_pence == 30_000

    funding.resplit_funding(world.buyer, call_off, [FundingShare(world.region.id, 10_000)])

    assert cleveland_budget.committed_pence == 0
    [told] = emails("orders_funding_released")
    assert told.to_email == other_approver.email
    assert told.subject == f"Your share of call-off {call_off.reference} is no longer needed"
    assert "The £300.00 set aside in your budget for it has been given back." in told.body
    assert not [
        n for n in emails("orders_funding_released") if n.to_email == world.pcc_approver.email
    ]


def test_a_re_split_confirmed_by_a_standing_authorisation_goes_on_at_once(world):
    other, _ = third_funder(world)
    db.session.add(
        FundingAuthorisation(
            funder=other,
            lead_buyer=world.region,
            financial_year=world.budget.financial_year,
            per_call_off_limit_pence=50_000,
            annual_limit_pence=50_000,
        )
    )
    call_off = co_funded(world)
    decline(world, call_off)
    funding.resplit_funding(world.buyer, call_off, shares((world.region, 6_000), (other, 4_000)))
    assert call_off.status == CallOffStatus.SENT
    assert call_off.funders[1].preauthorised
    assert not emails("orders_funding_resplit")


# --- cancelling instead


def test_the_lead_buyer_cancels_after_a_decline_and_everything_is_released(world):
    authorisation = FundingAuthorisation(
        funder=world.pcc,
        lead_buyer=world.region,
        financial_year=world.budget.financial_year,
        per_call_off_limit_pence=50_000,
        annual_limit_pence=100_000,
    )
    db.session.add(authorisation)
    other, _ = third_funder(world)
    call_off = place(
        world, shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000))
    )
    funding.decline_funding(make_member(Role.APPROVER, other), call_off, other, "Not in our plan")
    assert authorisation.used_pence == 30_000  # the PCC's share, still confirmed
    responses.cancel(world.buyer, call_off, "other", "The co-funder could not pay")
    assert call_off.status == CallOffStatus.CANCELLED
    assert world.budget.committed_pence == 0 and world.pcc_budget.committed_pence == 0
    assert authorisation.used_pence == 0


def test_cancelling_a_call_off_gives_back_its_standing_authorisations_use(world):
    # The use stayed counted after the call-off ended: the authorisation's yearly total filled
    # with call-offs that no longer commit anything.
    authorisation = FundingAuthorisation(
        funder=world.pcc,
        lead_buyer=world.region,
        financial_year=world.budget.financial_year,
        per_call_off_limit_pence=50_000,
        annual_limit_pence=50_000,
    )
    db.session.add(authorisation)
    call_off = place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    assert call_off.status == CallOffStatus.SENT and authorisation.used_pence == 40_000
    responses.cancel(world.buyer, call_off, "duplicate")
    assert authorisation.used_pence == 0
