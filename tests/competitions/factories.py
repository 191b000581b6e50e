"""A small world for further-competition tests: a live arrangement with one lot in region A,
members of the lot there (one a VCSE, one an SME, one outside the area), a probation region as
lead buyer with a PCC co-funding, budgets for both, a two-person evaluation panel, and a draft
competition with its questions.

``publish_directly`` and ``add_bid`` set state by hand, for tests of later steps that should
not depend on the set-up pages; tests of publishing and bidding go through the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.accreditation.models import ArrangementLot, ArrangementStatus
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
    InvitedBecause,
    InvitedProvider,
    QuestionKind,
)
from marketplace.core.clock import add_working_days, financial_year, utcnow
from marketplace.core.db import db
from marketplace.core.money import VatTreatment
from marketplace.orders.models import Budget
from marketplace.orders.services.call_offs import call_off_value
from tests.accreditation.factories import make_arrangement, make_lot_membership, region
from tests.factories import make_member, make_organisation


@dataclass
class CompetitionWorld:
    lot: ArrangementLot
    buyer_org: Organisation  # a probation region: the lead buyer
    pcc: Organisation  # co-funds 40%
    buyer: User
    approver: User
    pcc_approver: User
    evaluators: list[User]
    providers: list[Organisation]  # members of the lot in region A
    provider_admins: list[User]
    outsider: Organisation  # a member of the lot in region B only
    outsider_admin: User
    budget: Budget
    pcc_budget: Budget
    competition: Competition
    start: date
    extra: dict = field(default_factory=dict)


def build_competition_world(
    *,
    members: int = 3,
    allocated_pence: int = 50_000_000,
    pcc_allocated_pence: int = 50_000_000,
    estimated_value_pence: int = 12_000_000,
    quantity: int = 400,
) -> CompetitionWorld:
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE,
        lots=("ACC",),
        regions=("A", "B"),
        direct_award_limit_pence=3_000_000,
    )
    lot = arrangement.lots[0]
    types = [
        OrganisationType.PROVIDER_VCSE,
        OrganisationType.PROVIDER_PRIVATE,
        OrganisationType.PROVIDER_PUBLIC,
    ]
    providers, admins = [], []
    for n in range(members):
        provider = make_organisation(types[n % len(types)], name=f"Provider {n + 1}")
        make_lot_membership(lot, provider, region_code="A")
        providers.append(provider)
        admins.append(make_member(Role.PROVIDER_ADMIN, provider, name=f"Admin of Provider {n + 1}"))
    outsider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Elsewhere Trust")
    make_lot_membership(lot, outsider, region_code="B")
    outsider_admin = make_member(Role.PROVIDER_ADMIN, outsider, name="Admin of Elsewhere")

    buyer_org = make_organisation(OrganisationType.PROBATION_REGION, name="North East Probation")
    pcc = make_organisation(OrganisationType.PCC, name="Durham PCC")
    buyer = make_member(Role.BUYER, buyer_org, name="Bea Buyer")
    approver = make_member(Role.APPROVER, buyer_org, name="Abe Approver")
    pcc_approver = make_member(Role.APPROVER, pcc, name="Pat PCC")
    evaluators = [
        make_member(Role.BUYER, buyer_org, name="Eve Evaluator"),
        make_member(Role.BUYER, pcc, name="Evan Evaluator"),
    ]
    start = add_working_days(date.today(), 30)
    budgets = []
    for organisation, amount in ((buyer_org, allocated_pence), (pcc, pcc_allocated_pence)):
        for year in {financial_year(start), financial_year(start + timedelta(days=364))}:
            budget = Budget(organisation=organisation, financial_year=year, allocated_pence=amount)
            db.session.add(budget)
            budgets.append(budget)
    db.session.flush()

    competition = Competition(
        arrangement=arrangement,
        lot=lot,
        category_id=lot.category_id,
        buyer=buyer_org,
        created_by=buyer,
        title="Move-on accommodation for young adults",
        need="Supported move-on accommodation for 18 to 25 year olds leaving approved premises.",
        estimated_value_pence=estimated_value_pence,
        quantity=quantity,
        unit=Unit.BED_NIGHT,
        contract_start=start,
        contract_end=start + timedelta(days=364),
        price_weight=50,
        standstill_working_days=8,
    )
    competition.areas = [CompetitionArea(region=region("A"))]
    competition.funders = [
        CompetitionFunder(organisation=buyer_org, basis_points=6_000),
        CompetitionFunder(organisation=pcc, basis_points=4_000),
    ]
    competition.questions = [
        CompetitionQuestion(
            kind=QuestionKind.QUALITY,
            position=1,
            text="How will you keep tenancies going?",
            scoring_scheme="0 none, 1 poor, 2 fair, 3 good, 4 excellent",
            word_limit=300,
            weight=25,
        ),
        CompetitionQuestion(
            kind=QuestionKind.QUALITY,
            position=2,
            text="How will you work with probation practitioners?",
            scoring_scheme="0 none, 1 poor, 2 fair, 3 good, 4 excellent",
            word_limit=200,
            weight=15,
        ),
        CompetitionQuestion(
            kind=QuestionKind.SOCIAL_VALUE,
            position=3,
            text="What social value will you add locally?",
            scoring_scheme="0 none, 1 poor, 2 fair, 3 good, 4 excellent",
            word_limit=200,
            weight=10,
        ),
        CompetitionQuestion(
            kind=QuestionKind.PASS_FAIL,
            position=4,
            text="Do you hold employer's liability insurance of at least £5m?",
        ),
    ]
    competition.evaluators = [
        CompetitionEvaluator(user=user, organisation_id=org.id)
        for user, org in zip(evaluators, (buyer_org, pcc), strict=True)
    ]
    db.session.add(competition)
    db.session.flush()
    competition.reference = f"FC-{date.today().year}-{competition.id:05d}"
    db.session.flush()
    return CompetitionWorld(
        lot=lot,
        buyer_org=buyer_org,
        pcc=pcc,
        buyer=buyer,
        approver=approver,
        pcc_approver=pcc_approver,
        evaluators=evaluators,
        providers=providers,
        provider_admins=admins,
        outsider=outsider,
        outsider_admin=outsider_admin,
        budget=budgets[0],
        pcc_budget=next(b for b in budgets if b.organisation is pcc),
        competition=competition,
        start=start,
    )


def publish_directly(
    world: CompetitionWorld,
    *,
    now: datetime | None = None,
    bid_deadline: datetime | None = None,
) -> Competition:
    """Published by hand (not through the service): invited are the lot's members in region A."""
    now = now or utcnow()
    competition = world.competition
    competition.status = CompetitionStatus.PUBLISHED
    competition.published_at = now
    competition.published_by_id = world.buyer.id
    competition.clarification_deadline = (bid_deadline or now + timedelta(days=14)) - timedelta(
        days=4
    )
    competition.bid_deadline = bid_deadline or now + timedelta(days=14)
    for provider in world.providers:
        db.session.add(
            InvitedProvider(
                competition=competition,
                organisation=provider,
                invited_at=now,
                because=InvitedBecause.MEMBER_AT_PUBLICATION,
            )
        )
    db.session.flush()
    return competition


def add_bid(
    world: CompetitionWorld,
    provider: Organisation,
    *,
    unit_price_pence: int = 25_000,
    vat_treatment: VatTreatment = VatTreatment.EXEMPT,
    meets_pass_fail: bool = True,
    status: BidStatus = BidStatus.SUBMITTED,
    submitted_at: datetime | None = None,
) -> Bid:
    """A complete bid, set by hand: an answer to every question, the price for the units."""
    competition = world.competition
    net, vat, gross = call_off_value(unit_price_pence, competition.quantity, vat_treatment)
    bid = Bid(
        competition=competition,
        organisation=provider,
        status=status,
        unit_price_pence=unit_price_pence,
        vat_treatment=vat_treatment,
        net_pence=net,
        vat_pence=vat,
        gross_pence=gross,
        bidder_is_vcse=provider.type is OrganisationType.PROVIDER_VCSE,
        bidder_is_sme=provider.type is not OrganisationType.PROVIDER_PUBLIC,
        submitted_at=(submitted_at or utcnow()) if status is not BidStatus.DRAFT else None,
    )
    for question in competition.questions:
        if question.kind is QuestionKind.PASS_FAIL:
            bid.answers.append(
                BidAnswer(
                    question=question,
                    meets_requirement=meets_pass_fail,
                    text="Certificate attached" if meets_pass_fail else "Not yet",
                )
            )
        else:
            bid.answers.append(BidAnswer(question=question, text=f"Our answer to {question.text}"))
    db.session.add(bid)
    db.session.flush()
    return bid
