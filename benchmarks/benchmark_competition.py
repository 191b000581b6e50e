"""The large competition `competition_pages.py` measures: built in the app's database with the
ORM, on the demo world (its arrangement, its first lot, region A, its first buyer organisation).

``build_competition(invited, bids)``: ``invited`` new member providers of the lot in region A,
all on the competition's frozen invited list; ``bids`` of them have submitted a bid answering
every question; the bid deadline has passed and the competition is closed; both evaluators have
declared no conflict and scored every bid; every bid is moderated, and the bids are ranked
through the evaluation service, as the panel's last step would (``finish``).

``pages(app, world)``: the pages measured, each with a test client signed in as the person who
reads it: the evaluator's list of bids to score, the panel's moderation page (both while the
competition is closed), and the ranking (after ``finish``, as the buyer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Membership, Organisation, OrganisationType, Role, User
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    LotMembership,
    MembershipStatus,
)
from marketplace.catalogue.models import Unit
from marketplace.competitions.models import (
    Bid,
    BidAnswer,
    BidStatus,
    Competition,
    CompetitionArea,
    CompetitionEvaluator,
    CompetitionFunder,
    CompetitionQuestion,
    CompetitionStatus,
    EvaluatorScore,
    InvitedBecause,
    InvitedProvider,
    ModeratedScore,
    QuestionKind,
)
from marketplace.competitions.services.evaluation import finish_evaluation
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.money import VatTreatment
from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE
from marketplace.orders.services.call_offs import call_off_value
from marketplace.reference.models import ProbationRegion


@dataclass
class BigCompetition:
    competition_id: int
    buyer_id: int
    buyer_organisation_id: int
    evaluator_id: int


def _questions() -> list[CompetitionQuestion]:
    scheme = "0 none, 1 poor, 2 fair, 3 good, 4 excellent"
    return [
        CompetitionQuestion(
            kind=QuestionKind.QUALITY,
            position=1,
            text="How will you keep tenancies going?",
            scoring_scheme=scheme,
            word_limit=500,
            weight=30,
        ),
        CompetitionQuestion(
            kind=QuestionKind.QUALITY,
            position=2,
            text="How will you work with probation practitioners?",
            scoring_scheme=scheme,
            word_limit=300,
            weight=20,
        ),
        CompetitionQuestion(
            kind=QuestionKind.SOCIAL_VALUE,
            position=3,
            text="What social value will you add locally?",
            scoring_scheme=scheme,
            word_limit=300,
            weight=10,
        ),
        CompetitionQuestion(
            kind=QuestionKind.PASS_FAIL,
            position=4,
            text="Do you hold employer's liability insurance of at least £5m?",
        ),
    ]


def build_competition(invited: int, bids: int) -> BigCompetition:
    now = utcnow()
    arrangement = db.session.scalar(
        sa.select(Arrangement).where(Arrangement.reference == DEMO_ARRANGEMENT_REFERENCE)
    )
    lot: ArrangementLot = arrangement.lots[0]
    region = db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == "A"))
    buyer_membership = db.session.scalars(
        sa.select(Membership).where(Membership.role == Role.BUYER).order_by(Membership.id)
    ).first()
    buyer, buyer_org = buyer_membership.user, buyer_membership.organisation

    evaluators = []
    for n in (1, 2):
        user = User(
            email=f"bench.evaluator{n}@demo.example",
            name=f"Bench Evaluator {n}",
            password_hash=buyer.password_hash,
            session_nonce=f"bench-evaluator-{n}",
            email_confirmed_at=now,
        )
        db.session.add(Membership(user=user, organisation=buyer_org, role=Role.BUYER))
        evaluators.append(user)

    start = date.today() + timedelta(days=60)
    competition = Competition(
        arrangement=arrangement,
        lot=lot,
        category_id=lot.category_id,
        buyer=buyer_org,
        created_by=buyer,
        title="Move-on accommodation across the region",
        need="Supported move-on accommodation for people leaving approved premises.",
        estimated_value_pence=150_000_000,
        quantity=5_000,
        unit=Unit.BED_NIGHT,
        contract_start=start,
        contract_end=start + timedelta(days=364),
        price_weight=40,
        status=CompetitionStatus.CLOSED,
        published_at=now - timedelta(days=20),
        published_by_id=buyer.id,
        clarification_deadline=now - timedelta(days=8),
        bid_deadline=now - timedelta(days=1),
        closed_at=now - timedelta(days=1),
    )
    competition.areas = [CompetitionArea(region=region)]
    competition.funders = [CompetitionFunder(organisation=buyer_org, basis_points=10_000)]
    competition.questions = _questions()
    competition.evaluators = [
        CompetitionEvaluator(
            user=user, organisation_id=buyer_org.id, declared_at=now, has_conflict=False
        )
        for user in evaluators
    ]
    db.session.add(competition)
    db.session.flush()
    competition.reference = f"FC-{start.year}-{competition.id:05d}"

    providers = []
    for n in range(invited):
        kind = OrganisationType.PROVIDER_VCSE if n % 2 else OrganisationType.PROVIDER_PRIVATE
        provider = Organisation(name=f"Bench Provider {n + 1:04d}", type=kind)
        providers.append(provider)
        db.session.add(
            LotMembership(
                arrangement=arrangement,
                lot=lot,
                organisation=provider,
                region=region,
                status=MembershipStatus.ACTIVE,
                admitted_on=date.today() - timedelta(days=90),
            )
        )
        db.session.add(
            InvitedProvider(
                competition=competition,
                organisation=provider,
                invited_at=competition.published_at,
                because=InvitedBecause.MEMBER_AT_PUBLICATION,
            )
        )
    db.session.flush()

    scored = [q for q in competition.questions if q.kind.scored]
    pass_fail = [q for q in competition.questions if not q.kind.scored]
    for n, provider in enumerate(providers[:bids]):
        unit_price = 4_000 + (n * 37) % 3_000
        net, vat, gross = call_off_value(unit_price, competition.quantity, VatTreatment.EXEMPT)
        bid = Bid(
            competition=competition,
            organisation=provider,
            status=BidStatus.SUBMITTED,
            unit_price_pence=unit_price,
            vat_treatment=VatTreatment.EXEMPT,
            net_pence=net,
            vat_pence=vat,
            gross_pence=gross,
            bidder_is_vcse=provider.type is OrganisationType.PROVIDER_VCSE,
            bidder_is_sme=True,
            submitted_at=competition.bid_deadline - timedelta(hours=n % 48 + 1),
        )
        bid.answers = [
            BidAnswer(question=q, text=f"Answer {n} to question {q.position}. " * 20)
            for q in scored
        ] + [BidAnswer(question=q, meets_requirement=True, text="Yes") for q in pass_fail]
        db.session.add(bid)
        db.session.flush()
        for evaluator in competition.evaluators:
            for q in scored:
                db.session.add(
                    EvaluatorScore(
                        bid=bid,
                        question=q,
                        evaluator=evaluator,
                        score=(n + q.position + evaluator.id) % 5,
                        reason="Scored against the published scheme.",
                        scored_at=now,
                    )
                )
        for q in scored:
            db.session.add(
                ModeratedScore(
                    bid=bid,
                    question=q,
                    score=(n + q.position) % 5,
                    reason="Agreed by the panel.",
                    moderated_at=now,
                    moderated_by_id=evaluators[0].id,
                )
            )
        for q in pass_fail:
            db.session.add(
                ModeratedScore(
                    bid=bid,
                    question=q,
                    passed=True,
                    reason="Certificate seen.",
                    moderated_at=now,
                    moderated_by_id=evaluators[0].id,
                )
            )
    db.session.commit()
    return BigCompetition(
        competition_id=competition.id,
        buyer_id=buyer.id,
        buyer_organisation_id=buyer_org.id,
        evaluator_id=evaluators[0].id,
    )


def _client(app, user_id: int, organisation_id: int):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = db.session.get(User, user_id).get_id()
        session["_fresh"] = True
        session["organisation_id"] = organisation_id
    return client


def pages_while_closed(app, world: BigCompetition) -> dict:
    evaluator = _client(app, world.evaluator_id, world.buyer_organisation_id)
    base = f"/competitions/{world.competition_id}"
    return {
        "evaluation page (an evaluator's bids to score)": (evaluator, f"{base}/evaluation"),
        "moderation page (every bid, scores side by side)": (evaluator, f"{base}/moderation"),
    }


def finish(world: BigCompetition) -> None:
    competition = db.session.get(Competition, world.competition_id)
    finish_evaluation(db.session.get(User, world.evaluator_id), competition)
    db.session.commit()


def pages_when_evaluated(app, world: BigCompetition) -> dict:
    buyer = _client(app, world.buyer_id, world.buyer_organisation_id)
    base = f"/competitions/{world.competition_id}"
    return {"ranking page (every bid ranked, as the buyer)": (buyer, f"{base}/ranking")}
