"""The provider's side of a competition, through the services: clarifications published without
the asker, bids saved, submitted, withdrawn and resubmitted until the deadline, and each bad input
refused with its reason and nothing written."""

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.competitions.models import (
    Bid,
    BidStatus,
    Clarification,
    CompetitionStatus,
    ConsortiumRole,
    QuestionKind,
)
from marketplace.competitions.services import bids, clarifications
from marketplace.competitions.services.bids import (
    AnswerInput,
    BidInput,
    CommitmentInput,
    MemberInput,
    PriceLineInput,
    count_words,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.models import Notification
from tests.accreditation.factories import make_lot_membership
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.factories import make_member, make_organisation


@pytest.fixture
def world(app):
    world = build_competition_world()
    publish_directly(world)
    return world


def complete_input(world, **changes) -> BidInput:
    answers = []
    for question in world.competition.questions:
        if question.kind is QuestionKind.PASS_FAIL:
            answers.append(AnswerInput(question.id, "Certificate from our insurer", True))
        else:
            answers.append(AnswerInput(question.id, "We will do it well. " * 5))
    data = BidInput(
        answers=answers,
        unit_price_pence=25_000,
        vat_treatment=VatTreatment.EXEMPT,
        is_sme=True,
        commitments=[CommitmentInput("Apprenticeships", "Two", date(2027, 12, 31))],
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def emails(template):
    return list(
        db.session.scalars(sa.select(Notification).where(Notification.template == template))
    )


def test_words_are_counted_as_a_person_would():
    assert count_words("") == 0
    assert count_words("  Hello   world \n\n again ") == 3
    assert count_words("don't stop — well-being £5m") == 4  # the lone dash is not a word
    assert count_words("one,two three.") == 2


def test_a_question_is_answered_to_every_invited_provider_without_the_asker(world):
    asker, asker_org = world.provider_admins[0], world.providers[0]
    asked = clarifications.ask_clarification(asker, asker_org, world.competition, "  Pets? ")
    assert asked.question == "Pets?"
    assert emails("competitions_clarification_asked")
    clarifications.answer_clarification(world.buyer, world.buyer_org, asked, "No pets.")
    sent = emails("competitions_clarification_answered")
    # Every invited provider's administrator, the asker's too, gets the same words.
    assert sorted(n.to_email for n in sent) == sorted(a.email for a in world.provider_admins)
    assert all(
        asker_org.name not in n.body and asker.name not in n.body.split("\n", 1)[1]
        for n in sent
        if n.to_email != asker.email
    )
    assert [c.answer for c in clarifications.published_answers(world.competition)] == ["No pets."]
    with pytest.raises(TransitionConflict, match="already been answered"):
        clarifications.answer_clarification(world.buyer, world.buyer_org, asked, "Again")
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"clarification.asked", "clarification.answered"} <= actions


def test_a_question_after_the_clarification_deadline_is_refused_with_the_time(world):
    late = world.competition.clarification_deadline + timedelta(minutes=1)
    with pytest.raises(BusinessRuleViolation, match="London time.*no longer be asked"):
        clarifications.ask_clarification(
            world.provider_admins[0], world.providers[0], world.competition, "Late?", now=late
        )
    assert db.session.scalar(sa.select(sa.func.count(Clarification.id))) == 0


def test_a_provider_not_invited_cannot_ask_or_bid_and_is_told_why(world):
    with pytest.raises(BusinessRuleViolation, match="disregarded.*Join the arrangement"):
        clarifications.ask_clarification(
            world.outsider_admin, world.outsider, world.competition, "May I?"
        )
    with pytest.raises(BusinessRuleViolation, match="disregarded.*Join the arrangement"):
        bids.save_bid(
            world.outsider_admin, world.outsider, world.competition, complete_input(world)
        )
    assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0


def test_a_bid_from_a_provider_not_invited_is_never_counted(world):
    invited = add_bid(world, world.providers[0])
    # Written by hand (no service writes one): the outsider's bid is disregarded all the same.
    add_bid(world, world.outsider)
    world.competition.status = CompetitionStatus.CLOSED
    later = world.competition.bid_deadline + timedelta(minutes=1)
    received = bids.bids_received(world.buyer, world.buyer_org, world.competition, now=later)
    assert received == [invited]


def test_a_buyer_cannot_ask_a_question(world):
    with pytest.raises(PermissionDenied):
        clarifications.ask_clarification(world.buyer, world.buyer_org, world.competition, "?")


def test_draft_submit_withdraw_resubmit(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    bid = bids.save_bid(admin, provider, world.competition, complete_input(world))
    assert bid.status is BidStatus.DRAFT
    assert (bid.net_pence, bid.vat_pence, bid.gross_pence) == (10_000_000, 0, 10_000_000)
    bids.submit_bid(admin, provider, bid)
    assert bid.status is BidStatus.SUBMITTED and bid.bidder_is_vcse and bid.bidder_is_sme
    with pytest.raises(TransitionConflict, match="already been submitted"):
        bids.submit_bid(admin, provider, bid)  # a double click submits once
    with pytest.raises(BusinessRuleViolation, match="withdraw it to change it"):
        bids.save_bid(admin, provider, world.competition, complete_input(world))
    bids.withdraw_bid(admin, provider, bid)
    assert bid.status is BidStatus.WITHDRAWN
    bids.save_bid(
        admin, provider, world.competition, complete_input(world, unit_price_pence=24_000)
    )
    bids.submit_bid(admin, provider, bid)
    assert bid.status is BidStatus.SUBMITTED and bid.unit_price_pence == 24_000
    assert len(emails("competitions_bid_submitted")) == 2
    assert len(emails("competitions_bid_withdrawn")) == 1
    # The audit says the bid moved, never what it says (the seal).
    events = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.object_type == "bid")))
    assert [e.action for e in events][:2] == ["bid.created", "bid.submitted"]
    for event in events:
        assert set((event.after or {}).keys()) <= {"status", "version"}
    for notification in emails("competitions_bid_submitted"):
        assert "240.00" not in notification.body and "250.00" not in notification.body


def test_an_incomplete_bid_cannot_be_submitted(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    bid = bids.save_bid(admin, provider, world.competition, BidInput())
    with pytest.raises(BusinessRuleViolation) as refused:
        bids.submit_bid(admin, provider, bid)
    assert {"unit_price_pence", "vat_treatment", "is_sme"} <= set(refused.value.errors)
    assert bid.status is BidStatus.DRAFT


def test_an_editor_drafts_but_only_an_administrator_submits(world):
    provider = world.providers[0]
    editor = make_member(Role.PROVIDER_EDITOR, provider)
    bid = bids.save_bid(editor, provider, world.competition, complete_input(world))
    with pytest.raises(PermissionDenied, match="administrators"):
        bids.submit_bid(editor, provider, bid)
    assert bid.status is BidStatus.DRAFT
    member = world.providers[1]
    with pytest.raises(PermissionDenied, match="administrators"):
        bids.save_bid(
            editor,
            provider,
            world.competition,
            complete_input(world, consortium=[MemberInput(member.name, "member", 3000)]),
        )


def test_another_organisations_bid_is_not_found(world):
    bid = bids.save_bid(
        world.provider_admins[0], world.providers[0], world.competition, complete_input(world)
    )
    with pytest.raises(NotFound):
        bids.submit_bid(world.provider_admins[1], world.providers[1], bid)
    with pytest.raises(NotFound):
        bids.withdraw_bid(world.provider_admins[1], world.providers[1], bid)


def test_a_bid_after_the_deadline_is_refused_with_the_time_in_london(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    bid = bids.save_bid(admin, provider, world.competition, complete_input(world))
    late = world.competition.bid_deadline
    with pytest.raises(BusinessRuleViolation, match=r"London time\): bids can no longer"):
        bids.submit_bid(admin, provider, bid, now=late)
    with pytest.raises(BusinessRuleViolation, match="London time"):
        bids.save_bid(admin, provider, world.competition, complete_input(world), now=late)
    assert bid.status is BidStatus.DRAFT


def test_an_answer_over_its_word_limit_is_refused_naming_the_question_and_count(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    first = world.competition.questions[0]
    data = complete_input(world)
    data.answers[0] = AnswerInput(first.id, "word " * 301)
    with pytest.raises(BusinessRuleViolation) as refused:
        bids.save_bid(admin, provider, world.competition, data)
    message = refused.value.errors[f"answer_{first.id}"][0]
    assert "question 1" in message and "301 words" in message and "300 words or fewer" in message
    assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0
    data.answers[0] = AnswerInput(first.id, "word " * 300)
    bids.save_bid(admin, provider, world.competition, data)


def test_a_price_schedule_must_add_up_to_the_net_total(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    lines = [PriceLineInput("Staff", 6_000_000), PriceLineInput("Rent", 3_000_000)]
    with pytest.raises(BusinessRuleViolation, match="adds up to £90,000.00.*£100,000.00"):
        bids.save_bid(admin, provider, world.competition, complete_input(world, price_lines=lines))
    lines[1].amount_pence = 4_000_000
    bid = bids.save_bid(
        admin, provider, world.competition, complete_input(world, price_lines=lines)
    )
    assert [line.amount_pence for line in bid.price_lines] == [6_000_000, 4_000_000]


def test_a_consortium_of_members_and_named_subcontractors(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    other_member = world.providers[1]
    stranger = make_organisation(OrganisationType.PROVIDER_VCSE, name="Small Steps CIC")
    data = complete_input(
        world,
        consortium=[
            MemberInput(other_member.name.upper(), "member", 3000),
            MemberInput("Small Steps CIC", "subcontractor", 1250),
            MemberInput("Corner Café", "subcontractor", 500),
        ],
    )
    bid = bids.save_bid(admin, provider, world.competition, data)
    assert [(m.role, m.organisation_id, m.share_basis_points) for m in bid.consortium] == [
        (ConsortiumRole.MEMBER, other_member.id, 3000),
        (ConsortiumRole.SUBCONTRACTOR, stranger.id, 1250),
        (ConsortiumRole.SUBCONTRACTOR, None, 500),
    ]


@pytest.mark.parametrize("who", ["outsider", "stranger", "suspended"])
def test_a_consortium_member_that_is_not_a_member_of_the_lot_is_refused_by_name(world, who):
    admin, provider = world.provider_admins[0], world.providers[0]
    if who == "outsider":
        organisation = world.outsider  # a member of the lot, in region B only
    else:
        organisation = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Trust")
        if who == "suspended":
            from marketplace.accreditation.models import MembershipStatus

            make_lot_membership(
                world.lot, organisation, region_code="A", status=MembershipStatus.SUSPENDED
            )
    data = complete_input(world, consortium=[MemberInput(organisation.name, "member", 2000)])
    with pytest.raises(BusinessRuleViolation) as refused:
        bids.save_bid(admin, provider, world.competition, data)
    message = refused.value.errors["consortium_0_name"][0]
    assert message.startswith(f"{organisation.name} is not a member of the")
    assert "subcontractor" in message
    assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0


def test_consortium_shares_leave_work_for_the_lead(world):
    admin, provider = world.provider_admins[0], world.providers[0]
    data = complete_input(
        world,
        consortium=[
            MemberInput(world.providers[1].name, "member", 6000),
            MemberInput("Corner Café", "subcontractor", 4000),
        ],
    )
    with pytest.raises(BusinessRuleViolation, match="100% or more"):
        bids.save_bid(admin, provider, world.competition, data)
    data.consortium = [MemberInput(provider.name, "member", 1000)]
    with pytest.raises(BusinessRuleViolation, match="You lead the bid"):
        bids.save_bid(admin, provider, world.competition, data)


def test_bids_received_is_refused_while_sealed(world):
    add_bid(world, world.providers[0])
    for user, organisation in (
        (world.buyer, world.buyer_org),
        (world.pcc_approver, world.pcc),
        (world.evaluators[1], world.pcc),
    ):
        with pytest.raises(PermissionDenied, match="sealed"):
            bids.bids_received(user, organisation, world.competition)
    with pytest.raises(NotFound):
        bids.bids_received(world.provider_admins[1], world.providers[1], world.competition)
    assert utcnow() < world.competition.bid_deadline


@pytest.mark.parametrize("when", [date(1999, 12, 31), date(9999, 12, 31)])
def test_a_commitment_date_outside_the_horizon_is_refused(world, when):
    data = complete_input(world, commitments=[CommitmentInput("Jobs", "Two", when)])
    with pytest.raises(BusinessRuleViolation) as refused:
        bids.save_bid(world.provider_admins[0], world.providers[0], world.competition, data)
    assert "Commitment 1's date must be" in refused.value.errors["commitments_0_by_when"][0]
