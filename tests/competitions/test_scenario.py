"""Acceptance 1 of issue 21, through the services alone, from the factory world: a competition
co-funded by a probation region (60%) and a PCC (40%) is published to a frozen invited list,
a question is answered to every invited provider without the asker's name, three bids arrive
(a consortium, one failing the pass/fail question, a plain one from a provider admitted before
the deadline) and a non-invited provider's is refused; after the deadline the panel declares,
scores and moderates; the ranking is checked against figures worked by hand (with a tie broken
by the published tie-break); the award decision sends assessment summaries; confirming during
the standstill is refused, and after it (working days, bank holidays skipped) the award becomes
a ``further_competition`` call-off that the PCC confirms, the provider accepts and delivers,
with each funder's budget for each financial year moved by exactly the pence worked out here.

The clock is frozen at each step (``marketplace.core.clock.frozen_at``) on a fixed timeline in
December, so that the standstill crosses Christmas and the contract crosses a financial year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType
from marketplace.accreditation.models import AnswerOutcome
from marketplace.accreditation.services import applications as app_services
from marketplace.accreditation.services import assessment
from marketplace.catalogue.models import Unit
from marketplace.competitions.models import (
    AssessmentSummary,
    Bid,
    BidStatus,
    CompetitionStatus,
    ConsortiumRole,
    InvitedBecause,
    InvitedProvider,
)
from marketplace.competitions.services import (
    award,
    bids,
    clarifications,
    evaluation,
    publishing,
    setup,
)
from marketplace.competitions.services.evaluation import ModerationEntry, ScoreEntry
from marketplace.core.clock import add_working_days, frozen_at, is_working_day
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.models import Notification
from marketplace.funding.services import NewBudget, create_budget
from marketplace.orders.models import (
    Attendance,
    AwardRoute,
    Budget,
    CallOffStatus,
)
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import responses
from marketplace.orders.services.delivery import DeliveryDetails, record_delivery
from tests.accreditation.builders import make_authority, make_provider
from tests.accreditation.factories import make_criterion, region
from tests.competitions.factories import build_competition_world


def _year() -> int:
    """The December the timeline runs in: this year's. The factory world's arrangement is valid
    from 30 days before today to a year after it, which covers this December whatever today is
    (a December already past is at most 24 days before today, the 7th to the 31st)."""
    return date.today().year


def at(y: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, month, day, hour, minute, tzinfo=UTC)


def _emails(template: str) -> list[Notification]:
    return db.session.scalars(
        sa.select(Notification).where(Notification.template == template).order_by(Notification.id)
    ).all()


def _budget(organisation, year: int) -> Budget:
    return db.session.scalar(
        sa.select(Budget).where(
            Budget.organisation_id == organisation.id,
            Budget.financial_year == year,
            Budget.category_id.is_(None),
        )
    )


def _admit(lot, organisation, admin, assessor, region_row, when: datetime) -> None:
    """The provider applies for the lot in one region and the assessor admits it (the signal
    ``lot_membership_admitted`` then invites it to open competitions that reach the region)."""
    criterion = lot.criteria[0]
    with frozen_at(when):
        application = app_services.start_application(admin, organisation, lot.arrangement)
        app_services.choose_lots_and_areas(admin, application, [lot.id], [region_row.id])
        app_services.answer(admin, application, criterion, True)
        app_services.submit(admin, application, declaration=True)
        assessment.declare_conflict(assessor, application, False)
        for row in application.answers:
            assessment.mark_answer(assessor, row, AnswerOutcome.PASS)
        assessment.decide_lot(assessor, application, lot, True)


def _bid_input(competition, *, pass_fail: bool, unit_price: int, vat, sme: bool, consortium=()):
    answers = []
    for question in competition.questions:
        if question.kind.scored:
            answers.append(bids.AnswerInput(question.id, f"Our plan for: {question.text}"))
        else:
            answers.append(
                bids.AnswerInput(
                    question.id,
                    "Policy with Acme, £10m" if pass_fail else "We are arranging cover",
                    meets_requirement=pass_fail,
                )
            )
    return bids.BidInput(
        answers=answers,
        unit_price_pence=unit_price,
        vat_treatment=vat,
        commitments=[bids.CommitmentInput("Apprenticeships", "Two a year", date(2028, 3, 31))],
        consortium=list(consortium),
        is_sme=sme,
    )


@pytest.mark.usefixtures("app")
def test_a_co_funded_competition_from_publication_to_a_delivered_call_off():
    y = _year()
    world = build_competition_world(members=3)
    competition, lot = world.competition, world.lot
    lead, member, failing = world.providers  # VCSE, private (SME), public body
    lead_admin, member_admin, failing_admin = world.provider_admins
    make_criterion(lot, question="Do you have a safeguarding policy?", mandatory=True)
    assessor, _ = make_authority()
    newcomer, newcomer_admin = make_provider("Newcomer Housing Charity")  # VCSE, region A
    latecomer, latecomer_admin = make_provider("Region B Newcomer")  # VCSE, region B only

    # Budgets for the two financial years the contract (February to July) falls in, set by
    # each funder's approver where the world has none for that year.
    with frozen_at(at(y, 12, 7)):
        for organisation, approver in (
            (world.buyer_org, world.approver),
            (world.pcc, world.pcc_approver),
        ):
            for year in (y, y + 1):
                if _budget(organisation, year) is None:
                    create_budget(approver, organisation, NewBudget(year, 50_000_000))

    # --- Set-up: 401 bed-nights from 1 February to 31 July; deadlines; then publish. ---
    with frozen_at(at(y, 12, 8, 9)):
        setup.change_details(
            world.buyer,
            competition,
            setup.CompetitionDetails(
                title=competition.title,
                need=competition.need,
                lot_id=lot.id,
                region_ids=[region("A").id],
                estimated_value_pence=12_000_000,
                quantity=401,
                unit=Unit.BED_NIGHT,
                contract_start=date(y + 1, 2, 1),
                contract_end=date(y + 1, 7, 31),
            ),
        )
        setup.set_deadlines(
            world.buyer,
            competition,
            clarification_deadline=at(y, 12, 16, 17),
            bid_deadline=at(y, 12, 18, 12),
            standstill_working_days=8,
        )
        publishing.publish(world.buyer, competition)
    assert competition.status is CompetitionStatus.PUBLISHED
    assert competition.published_at == at(y, 12, 8, 9)

    def invited() -> dict[int, InvitedBecause]:
        rows = db.session.scalars(
            sa.select(InvitedProvider).where(InvitedProvider.competition_id == competition.id)
        )
        return {row.organisation_id: row.because for row in rows}

    frozen_list = {p.id: InvitedBecause.MEMBER_AT_PUBLICATION for p in world.providers}
    assert invited() == frozen_list  # the region-B member is not on it
    invitations = {n.to_email for n in _emails("competition_invited")}
    assert invitations == {a.email for a in world.provider_admins}

    # Admitted afterwards: in region B (not invited), and in region A before the deadline
    # (invited then, by the signal).
    _admit(lot, latecomer, latecomer_admin, assessor, region("B"), at(y, 12, 9))
    assert invited() == frozen_list
    _admit(lot, newcomer, newcomer_admin, assessor, region("A"), at(y, 12, 10))
    assert invited() == {**frozen_list, newcomer.id: InvitedBecause.ADMITTED_BEFORE_DEADLINE}

    # --- A question from the failing bidder, answered to everyone invited, without its name. ---
    with frozen_at(at(y, 12, 10, 14)):
        asked = clarifications.ask_clarification(
            failing_admin, failing, competition, "Is a deposit scheme required?"
        )
    with frozen_at(at(y, 12, 11)):
        clarifications.answer_clarification(
            world.buyer, world.buyer_org, asked, "Yes: a recognised tenancy deposit scheme."
        )
    answered = _emails("competitions_clarification_answered")
    assert {n.to_email for n in answered} == {
        lead_admin.email,
        member_admin.email,
        failing_admin.email,
        newcomer_admin.email,
    }
    for email in answered:
        assert "Is a deposit scheme required?" in email.body
        assert "recognised tenancy deposit scheme" in email.body
        if email.to_email != failing_admin.email:  # the asker is greeted by its own name
            assert failing.name not in email.body and failing_admin.name not in email.body
    [published] = clarifications.published_answers(competition)
    assert (published.question, published.answer) == (
        "Is a deposit scheme required?",
        "Yes: a recognised tenancy deposit scheme.",
    )

    # --- Three bids and a refused one. ---
    consortium = [
        bids.MemberInput(member.name, ConsortiumRole.MEMBER, 3_000),
        bids.MemberInput("Tenancy Repairs Ltd", ConsortiumRole.SUBCONTRACTOR, 1_000),
    ]
    with frozen_at(at(y, 12, 14)):
        # The consortium: £200.00 a night plus VAT (standard rate).
        consortium_bid = bids.save_bid(
            lead_admin,
            lead,
            competition,
            _bid_input(
                competition,
                pass_fail=True,
                unit_price=20_000,
                vat=VatTreatment.STANDARD,
                sme=True,
                consortium=consortium,
            ),
        )
        bids.submit_bid(lead_admin, lead, consortium_bid)
    with frozen_at(at(y, 12, 14, 11)):
        # No insurance: the cheapest, but it fails the pass/fail question.
        failing_bid = bids.save_bid(
            failing_admin,
            failing,
            competition,
            _bid_input(
                competition, pass_fail=False, unit_price=18_000, vat=VatTreatment.EXEMPT, sme=False
            ),
        )
        bids.submit_bid(failing_admin, failing, failing_bid)
    with frozen_at(at(y, 12, 15)):
        # The newcomer: £228.00 a night, exempt.
        plain_bid = bids.save_bid(
            newcomer_admin,
            newcomer,
            competition,
            _bid_input(
                competition, pass_fail=True, unit_price=22_800, vat=VatTreatment.EXEMPT, sme=True
            ),
        )
        bids.submit_bid(newcomer_admin, newcomer, plain_bid)
        # Not invited: refused with the reason, nothing written.
        with pytest.raises(BusinessRuleViolation, match="would be disregarded"):
            bids.save_bid(
                world.outsider_admin,
                world.outsider,
                competition,
                _bid_input(
                    competition, pass_fail=True, unit_price=1_000, vat=VatTreatment.EXEMPT, sme=True
                ),
            )
        with pytest.raises(BusinessRuleViolation, match="would be disregarded"):
            bids.save_bid(
                latecomer_admin,
                latecomer,
                competition,
                _bid_input(
                    competition, pass_fail=True, unit_price=1_000, vat=VatTreatment.EXEMPT, sme=True
                ),
            )
    bidders = db.session.scalars(
        sa.select(Bid.organisation_id).where(Bid.competition_id == competition.id)
    ).all()
    assert sorted(bidders) == sorted([lead.id, failing.id, newcomer.id])
    assert [c.name for c in consortium_bid.consortium] == [member.name, "Tenancy Repairs Ltd"]
    assert (consortium_bid.net_pence, consortium_bid.vat_pence, consortium_bid.gross_pence) == (
        8_020_000,  # 401 × £200.00
        1_604_000,  # 20%
        9_624_000,
    )
    assert plain_bid.gross_pence == 9_142_800  # 401 × £228.00, exempt

    # --- After the deadline: closing counts the bids. ---
    with frozen_at(at(y, 12, 18, 12, 1)):
        with pytest.raises(BusinessRuleViolation, match="bids can no longer be saved"):
            bids.save_bid(
                newcomer_admin,
                newcomer,
                competition,
                _bid_input(
                    competition, pass_fail=True, unit_price=1, vat=VatTreatment.EXEMPT, sme=True
                ),
            )
        assert evaluation.close_due() == 1
    assert competition.status is CompetitionStatus.CLOSED
    # Three bids; from a VCSE: the lead charity and the newcomer; from an SME: the consortium
    # and the newcomer (the public body said no).
    assert (competition.bids_received, competition.bids_from_vcse, competition.bids_from_sme) == (
        3,
        2,
        2,
    )

    # --- The panel: declare, score each bid alone, moderate. ---
    scored_questions = evaluation.scored_questions(competition)
    pass_fail = evaluation.pass_fail_questions(competition)
    assert [q.weight for q in scored_questions] == [25, 15, 10]  # price 50
    with frozen_at(at(y, 12, 21)):
        for user in world.evaluators:
            evaluation.declare_conflicts(user, competition, has_conflict=False)
        for n, user in enumerate(world.evaluators):
            for bid in (consortium_bid, failing_bid, plain_bid):
                evaluation.score_bid(
                    user,
                    competition,
                    bid.id,
                    {q.id: ScoreEntry(2 + n, f"{user.name}'s reason") for q in scored_questions},
                )
        agreed = {consortium_bid.id: (4, 3, 3), plain_bid.id: (4, 3, 2)}
        for bid_id, scores in agreed.items():
            entries = {
                q.id: ModerationEntry(score=s, reason=f"Agreed {s}")
                for q, s in zip(scored_questions, scores, strict=True)
            }
            entries.update({q.id: ModerationEntry(passed=True, reason="Seen") for q in pass_fail})
            evaluation.moderate_bid(world.evaluators[0], competition, bid_id, entries)
        evaluation.moderate_bid(
            world.evaluators[0],
            competition,
            failing_bid.id,
            {q.id: ModerationEntry(passed=False, reason="No insurance") for q in pass_fail},
        )
        evaluation.finish_evaluation(world.evaluators[0], competition)
    assert competition.status is CompetitionStatus.EVALUATED
    assert failing_bid.status is BidStatus.EXCLUDED
    assert failing_bid.exclusion_reason == (
        'Failed "Do you hold employer\'s liability insurance of at least £5m?": No insurance'
    )
    # By hand. Price: lowest gross ÷ gross × 50 (the excluded bid is not compared):
    #   newcomer 9,142,800 ÷ 9,142,800 × 50 = 50.00; consortium 9,142,800 ÷ 9,624,000 × 50
    #   = 0.95 × 50 = 47.50.
    # Quality and social value: moderated ÷ 4 × weight:
    #   consortium 4/4×25 + 3/4×15 + 3/4×10 = 25.00 + 11.25 + 7.50 = 43.75 → total 91.25;
    #   newcomer   4/4×25 + 3/4×15 + 2/4×10 = 25.00 + 11.25 + 5.00 = 41.25 → total 91.25.
    # A tie: quality then price (the default tie-break): the consortium's 43.75 ranks first.
    got = {
        b.id: (b.price_score, b.quality_score, b.social_value_score, b.total_score, b.rank)
        for b in (consortium_bid, plain_bid)
    }
    assert got == {
        consortium_bid.id: (4_750, 3_625, 750, 9_125, 1),
        plain_bid.id: (5_000, 3_625, 500, 9_125, 2),
    }
    assert [r.bid.id for r in evaluation.ranking_rows(competition)] == [
        consortium_bid.id,
        plain_bid.id,
        failing_bid.id,
    ]

    # --- The award decision: assessment summaries, the standstill. ---
    decided = at(y, 12, 23)
    with frozen_at(decided):
        award.decide_award(world.buyer, world.buyer_org, competition, consortium_bid.id)
    summaries = {
        s.bid_id: s
        for s in db.session.scalars(
            sa.select(AssessmentSummary).where(AssessmentSummary.competition_id == competition.id)
        )
    }
    assert set(summaries) == {consortium_bid.id, plain_bid.id, failing_bid.id}
    won, lost, excluded = (summaries[b.id] for b in (consortium_bid, plain_bid, failing_bid))
    assert won.successful and not lost.successful and not excluded.successful
    assert [c["points"] for c in lost.content["criteria"]] == [5_000, 2_500, 1_125, 500]
    assert [c["reason"] for c in lost.content["criteria"][1:]] == [
        "Agreed 4",
        "Agreed 3",
        "Agreed 2",
    ]
    assert lost.content["winner_total"] == 9_125
    assert lost.content["why"]
    assert excluded.content["excluded"] and "No insurance" in excluded.content["why"]
    summary_emails = {n.to_email for n in _emails("competitions_assessment_summary")}
    assert summary_emails == {lead_admin.email, failing_admin.email, newcomer_admin.email}

    # Eight working days after Wednesday 23 December, without Christmas Day, Boxing Day (or
    # its substitute) and New Year's Day: in 2026, 24, 29, 30, 31 December and 4, 5, 6, 7
    # January, so the standstill runs to the end of Thursday 7 January 2027.
    last_day = award.last_day_of_standstill(competition)
    if y == 2026:
        assert last_day == date(2027, 1, 7)
        assert competition.standstill_ends_at == at(2027, 1, 8, 0)  # midnight, GMT
    skipped = [
        d
        for d in (date(y, 12, 25), date(y, 12, 26), date(y, 12, 28), date(y + 1, 1, 1))
        if not is_working_day(d) and d.weekday() < 5
    ]
    assert len(skipped) >= 2 and last_day == add_working_days(date(y, 12, 23), 8)

    afternoon_of_last_day = datetime.combine(last_day, datetime.min.time(), UTC).replace(hour=15)
    with (
        frozen_at(afternoon_of_last_day),
        pytest.raises(BusinessRuleViolation, match="standstill period runs to the end of"),
    ):
        award.confirm_award(world.buyer, world.buyer_org, competition)
    assert competition.status is CompetitionStatus.EVALUATED and competition.call_off is None

    # --- After the standstill: the call-off. ---
    confirmed_at = competition.standstill_ends_at.replace(hour=9)
    # Each funder's budget for each year, and what it committed and spent before the award.
    budgets = {
        (org.id, year): _budget(org, year)
        for org in (world.buyer_org, world.pcc)
        for year in (y, y + 1)
    }
    before = {key: (b.committed_pence, b.spent_pence) for key, b in budgets.items()}
    with frozen_at(confirmed_at):
        award.confirm_award(world.buyer, world.buyer_org, competition)
    assert competition.status is CompetitionStatus.AWARDED
    call_off = competition.call_off
    assert call_off.award_route is AwardRoute.FURTHER_COMPETITION
    assert call_off.provider_id == lead.id and call_off.competition_id == competition.id
    assert (call_off.unit_price_pence, call_off.quantity, call_off.vat_treatment) == (
        20_000,
        401,
        VatTreatment.STANDARD,
    )
    assert (call_off.net_pence, call_off.vat_pence, call_off.gross_pence) == (
        8_020_000,
        1_604_000,
        9_624_000,
    )
    # Funders: 9,624,000 × 6,000/10,000 = 5,774,400 (region), × 4,000/10,000 = 3,849,600 (PCC):
    # no remainder to give. Months: 401 nights over February to July, 66 each and the 5 left
    # over to the first five months: Feb 67, Mar 67 | Apr 67, May 67, Jun 67, Jul 66. So 134
    # nights fall in the year starting April y and 267 in the next:
    #   region 5,774,400 × 134/401 = 1,929,600 and × 267/401 = 3,844,800;
    #   PCC    3,849,600 × 134/401 = 1,286,400 and × 267/401 = 2,563,200.
    committed = {
        (org.id, year): pence
        for org, parts in (
            (world.buyer_org, (1_929_600, 3_844_800)),
            (world.pcc, (1_286_400, 2_563_200)),
        )
        for year, pence in zip((y, y + 1), parts, strict=True)
    }

    def moved() -> dict[tuple[int, int], tuple[int, int]]:
        """What each budget committed and spent since the award, in pence."""
        for budget in budgets.values():
            db.session.refresh(budget)
        return {
            key: (b.committed_pence - before[key][0], b.spent_pence - before[key][1])
            for key, b in budgets.items()
        }

    assert moved() == {key: (pence, 0) for key, pence in committed.items()}
    by_funder = {f.organisation_id: (f.basis_points, f.share_pence) for f in call_off.funders}
    assert by_funder == {world.buyer_org.id: (6_000, 5_774_400), world.pcc.id: (4_000, 3_849_600)}
    assert call_off.status is CallOffStatus.AWAITING_FUNDING
    assert {n.to_email for n in _emails("competitions_awarded")} == summary_emails

    # The PCC's approver confirms its share; the provider accepts and delivers 7 nights.
    with frozen_at(confirmed_at.replace(hour=11)):
        order_funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    # Above the buyer's spend limit, the region's approver approves it (never their own).
    assert call_off.status is CallOffStatus.AWAITING_APPROVAL
    with frozen_at(confirmed_at.replace(hour=12)):
        order_funding.approve(world.approver, call_off)
    assert call_off.status is CallOffStatus.SENT
    with frozen_at(confirmed_at.replace(hour=15)):
        responses.accept(lead_admin, call_off)
    assert call_off.status is CallOffStatus.ACCEPTED
    with frozen_at(at(y + 1, 2, 9)):
        record_delivery(
            lead_admin,
            call_off,
            DeliveryDetails(
                delivered_on=date(y + 1, 2, 8), units=7, attendance=Attendance.ATTENDED
            ),
        )
    assert call_off.status is CallOffStatus.IN_DELIVERY
    # 7 nights = 7 × £240.00 = 168,000 gross: 100,800 (60%) and 67,200 (40%), spent from the
    # year February falls in and released from that year's commitment.
    spent = {(world.buyer_org.id, y): 100_800, (world.pcc.id, y): 67_200}
    assert moved() == {
        key: (pence - spent.get(key, 0), spent.get(key, 0)) for key, pence in committed.items()
    }

    # What the law asks to be published, kept on the competition.
    published_data = {
        "tender date": competition.published_at,
        "bids": (competition.bids_received, competition.bids_from_vcse, competition.bids_from_sme),
        "award decided": competition.award_decided_at,
        "awarded": competition.awarded_at,
        "winner": competition.winning_bid.organisation_id,
        "value": competition.call_off.gross_pence,
        "standstill": (competition.award_decided_at, competition.standstill_ends_at),
        "contract": (competition.contract_start, competition.contract_end),
    }
    assert published_data == {
        "tender date": at(y, 12, 8, 9),
        "bids": (3, 2, 2),
        "award decided": decided,
        "awarded": confirmed_at,
        "winner": lead.id,
        "value": 9_624_000,
        "standstill": (decided, competition.standstill_ends_at),
        "contract": (date(y + 1, 2, 1), date(y + 1, 7, 31)),
    }
    assert lead.type is OrganisationType.PROVIDER_VCSE
