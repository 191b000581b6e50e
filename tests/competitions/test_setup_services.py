"""Set-up and publishing of further competitions, through the services: each rule, each bad
input, the frozen invited list and invitations on admission."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import AnswerOutcome, MembershipStatus
from marketplace.accreditation.queries_assessment import assessment_queue
from marketplace.accreditation.services import assessment
from marketplace.catalogue.models import Unit
from marketplace.competitions.models import (
    Competition,
    CompetitionArea,
    CompetitionStatus,
    InvitedBecause,
    InvitedProvider,
    QuestionKind,
)
from marketplace.competitions.services import cancelling, documents, publishing, setup
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.notifications.models import Notification
from marketplace.orders.services.details import FundingShare
from marketplace.reference.models import PccArea
from tests.accreditation.builders import make_authority, make_provider, make_world
from tests.accreditation.builders import submitted_application as submitted_builder_application
from tests.accreditation.factories import make_lot_membership, region
from tests.competitions.factories import build_competition_world
from tests.factories import make_member, make_organisation


def ready(world, now=None):
    """The factory draft with deadlines valid for publishing at ``now``."""
    now = now or utcnow()
    competition = world.competition
    competition.reference = None
    competition.clarification_deadline = now + timedelta(days=7)
    competition.bid_deadline = now + timedelta(days=14)
    db.session.flush()
    return competition


def invited_ids(competition) -> set[int]:
    return set(
        db.session.scalars(
            sa.select(InvitedProvider.organisation_id).where(
                InvitedProvider.competition_id == competition.id
            )
        )
    )


def details_for(world, **changes) -> setup.CompetitionDetails:
    competition = world.competition
    values = dict(
        title="Accommodation for young adults",
        need="Move-on accommodation.",
        lot_id=world.lot.id,
        region_ids=[region("A").id],
        pcc_area_ids=[],
        estimated_value_pence=12_000_000,
        quantity=400,
        unit=Unit.BED_NIGHT.value,
        contract_start=competition.contract_start,
        contract_end=competition.contract_end,
    )
    values.update(changes)
    return setup.CompetitionDetails(**values)


# --- starting and details -------------------------------------------------------------------


def test_a_buyer_starts_a_draft_funded_by_its_organisation_alone(app):
    world = build_competition_world()
    competition = setup.start_competition(world.buyer, world.buyer_org, details_for(world))
    assert competition.status is CompetitionStatus.DRAFT
    assert [(f.organisation_id, f.basis_points) for f in competition.funders] == [
        (world.buyer_org.id, 10_000)
    ]
    assert competition.standstill_working_days == 8
    assert db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "competition.started")
    )


def test_a_provider_cannot_start_a_competition(app):
    world = build_competition_world()
    with pytest.raises(PermissionDenied):
        setup.start_competition(world.provider_admins[0], world.providers[0], details_for(world))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": ""}, "title"),
        ({"need": " "}, "need"),
        ({"lot_id": 999_999}, "lot_id"),
        ({"region_ids": []}, "areas"),
        ({"estimated_value_pence": 0}, "estimated_value_pence"),
        ({"quantity": None}, "quantity"),
        ({"unit": "gallon"}, "unit"),
        ({"contract_start": None}, "contract_start"),
    ],
)
def test_bad_details_write_nothing(app, changes, field):
    world = build_competition_world()
    before = db.session.scalar(sa.select(sa.func.count(Competition.id)))
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.start_competition(world.buyer, world.buyer_org, details_for(world, **changes))
    assert field in refused.value.errors
    assert db.session.scalar(sa.select(sa.func.count(Competition.id))) == before


def test_another_organisations_draft_is_not_found(app):
    world = build_competition_world()
    other = make_organisation(OrganisationType.PCC, name="Other PCC")
    other_buyer = make_member(Role.BUYER, other)
    with pytest.raises(NotFound):
        setup.managed_competition(other_buyer, other, world.competition.id)
    with pytest.raises(NotFound):
        setup.change_details(other_buyer, world.competition, details_for(world))
    # The PCC co-funds it, yet only the lead buyer manages it.
    with pytest.raises(NotFound):
        setup.managed_competition(world.pcc_approver, world.pcc, world.competition.id)


# --- funding --------------------------------------------------------------------------------


def test_funding_shares_are_basis_points_summing_to_10000_lead_included(app):
    world = build_competition_world()
    competition = world.competition
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_funding(
            world.buyer,
            competition,
            [FundingShare(world.buyer_org.id, 5_000), FundingShare(world.pcc.id, 4_000)],
        )
    assert "add up to exactly 100%" in refused.value.errors["shares"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_funding(world.buyer, competition, [FundingShare(world.pcc.id, 10_000)])
    assert "must fund a share" in refused.value.errors["shares"][0]
    setup.set_funding(
        world.buyer,
        competition,
        [FundingShare(world.pcc.id, 2_500), FundingShare(world.buyer_org.id, 7_500)],
    )
    assert [(f.organisation_id, f.basis_points) for f in competition.funders] == [
        (world.buyer_org.id, 7_500),
        (world.pcc.id, 2_500),
    ]


def test_a_funder_without_budget_is_refused_on_its_row(app):
    world = build_competition_world()
    poor = make_organisation(OrganisationType.PCC, name="Budgetless PCC")
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_funding(
            world.buyer,
            world.competition,
            [FundingShare(world.buyer_org.id, 6_000), FundingShare(poor.id, 4_000)],
        )
    assert "Budgetless PCC has no budget" in refused.value.errors["shares-1-organisation_id"][0]


def test_a_funder_whose_budget_is_too_small_is_refused(app):
    world = build_competition_world(pcc_allocated_pence=100_000)
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_funding(
            world.buyer,
            world.competition,
            [FundingShare(world.buyer_org.id, 6_000), FundingShare(world.pcc.id, 4_000)],
        )
    assert any("Durham PCC has" in m for ms in refused.value.errors.values() for m in ms)


# --- criteria -------------------------------------------------------------------------------


def test_weights_not_summing_to_100_are_refused_at_publish(app):
    world = build_competition_world()
    competition = ready(world)
    setup.set_price_criteria(
        world.buyer,
        competition,
        price_weight=60,
        price_formula="lowest_over_price",
        tie_break="quality_then_price",
    )
    errors = setup.criteria_errors(competition)
    assert "add up to 100 (they add up to 110)" in " ".join(errors["questions"])
    with pytest.raises(BusinessRuleViolation) as refused:
        publishing.publish(world.buyer, competition)
    assert "add up to 100" in " ".join(refused.value.errors["questions"])
    assert competition.status is CompetitionStatus.DRAFT


def test_social_value_under_10_percent_is_refused(app):
    world = build_competition_world()
    competition = ready(world)
    social = next(q for q in competition.questions if q.kind is QuestionKind.SOCIAL_VALUE)
    setup.remove_question(world.buyer, competition, social.id)
    setup.add_question(
        world.buyer,
        competition,
        setup.QuestionDetails(
            kind="social_value",
            text="Local jobs?",
            scoring_scheme="0 to 4",
            word_limit=100,
            max_score=4,
            weight=5,
        ),
    )
    setup.add_question(
        world.buyer,
        competition,
        setup.QuestionDetails(
            kind="quality",
            text="Q?",
            scoring_scheme="0 to 4",
            word_limit=100,
            max_score=4,
            weight=5,
        ),
    )
    assert competition.scored_weight == 100
    assert "at least 10%" in " ".join(setup.criteria_errors(competition)["questions"])
    with pytest.raises(BusinessRuleViolation):
        publishing.publish(world.buyer, competition)


def test_a_question_needs_a_word_limit_and_a_scheme(app):
    world = build_competition_world()
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.add_question(
            world.buyer,
            world.competition,
            setup.QuestionDetails(kind="quality", text="Q?", max_score=4, weight=10),
        )
    assert {"word_limit", "scoring_scheme"} <= set(refused.value.errors)


# --- deadlines ------------------------------------------------------------------------------


def test_a_bid_deadline_under_the_minimum_is_refused(app):
    world = build_competition_world()
    now = utcnow()
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_deadlines(
            world.buyer,
            world.competition,
            clarification_deadline=now + timedelta(days=3),
            bid_deadline=now + timedelta(days=9),
            standstill_working_days=8,
            now=now,
        )
    assert "at least 10 days" in refused.value.errors["bid_deadline"][0]


def test_the_minimum_is_configurable_and_checked_again_at_publish(app):
    app.config["COMPETITION_MIN_BID_DAYS"] = 5
    world = build_competition_world()
    now = utcnow()
    competition = ready(world, now)
    setup.set_deadlines(
        world.buyer,
        competition,
        clarification_deadline=now + timedelta(days=2),
        bid_deadline=now + timedelta(days=6),
        standstill_working_days=8,
        now=now,
    )
    # Published two days later, the deadline is four days away: under the minimum.
    with pytest.raises(BusinessRuleViolation) as refused:
        publishing.publish(world.buyer, competition, now=now + timedelta(days=2))
    assert "at least 5 days" in refused.value.errors["bid_deadline"][0]


def test_clarifications_close_before_bids_and_no_standstill_needs_a_reason(app):
    world = build_competition_world()
    now = utcnow()
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_deadlines(
            world.buyer,
            world.competition,
            clarification_deadline=now + timedelta(days=20),
            bid_deadline=now + timedelta(days=14),
            standstill_working_days=0,
            now=now,
        )
    assert set(refused.value.errors) == {"clarification_deadline", "standstill_reason"}
    setup.set_deadlines(
        world.buyer,
        world.competition,
        clarification_deadline=now + timedelta(days=7),
        bid_deadline=now + timedelta(days=14),
        standstill_working_days=0,
        standstill_reason="Light-touch service",
        now=now,
    )
    assert world.competition.standstill_reason == "Light-touch service"


# --- panel ----------------------------------------------------------------------------------


def test_an_evaluator_who_is_also_a_bidders_member_is_refused(app):
    world = build_competition_world()
    both = make_member(Role.BUYER, world.buyer_org, name="Dual Hat")
    db.session.add(
        type(both.memberships[0])(
            user=both, organisation=world.providers[1], role=Role.PROVIDER_EDITOR
        )
    )
    db.session.flush()
    db.session.refresh(both)
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_panel(
            world.buyer,
            world.competition,
            setup.PanelDetails([world.evaluators[0].id, both.id]),
        )
    assert "Dual Hat also belongs to a provider" in refused.value.errors["user_ids"][0]


def test_the_panel_needs_two_or_one_with_a_reason_from_the_buying_organisations(app):
    world = build_competition_world()
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_panel(world.buyer, world.competition, setup.PanelDetails([world.buyer.id]))
    assert "single_evaluator_reason" in refused.value.errors
    with pytest.raises(BusinessRuleViolation) as refused:
        setup.set_panel(
            world.buyer,
            world.competition,
            setup.PanelDetails([world.buyer.id, world.provider_admins[0].id]),
        )
    assert "user_ids" in refused.value.errors
    setup.set_panel(
        world.buyer, world.competition, setup.PanelDetails([world.buyer.id], "Small lot")
    )
    assert [e.user_id for e in world.competition.evaluators] == [world.buyer.id]


# --- documents ------------------------------------------------------------------------------


def test_documents_are_checked_by_content(app):
    world = build_competition_world()
    with pytest.raises(BusinessRuleViolation) as refused:
        documents.add_document(
            world.buyer, world.competition, "spec.pdf", io.BytesIO(b"MZ not a pdf")
        )
    assert "program" in refused.value.errors["file"][0]
    document = documents.add_document(
        world.buyer, world.competition, "../spec.pdf", io.BytesIO(b"%PDF-1.4 spec")
    )
    assert document.original_name == "spec.pdf"
    assert document.content_type == "application/pdf"
    documents.remove_document(world.buyer, world.competition, document.id)
    assert world.competition.documents == []


# --- publishing -----------------------------------------------------------------------------


def test_publishing_freezes_the_invited_list_and_emails_each_invited_admin(app):
    world = build_competition_world()
    suspended = make_organisation(OrganisationType.PROVIDER_VCSE, name="Suspended Ltd")
    make_lot_membership(world.lot, suspended, region_code="A", status=MembershipStatus.SUSPENDED)
    now = utcnow()
    competition = ready(world, now)
    publishing.publish(world.buyer, competition, now=now)
    commit()
    assert invited_ids(competition) == {p.id for p in world.providers}
    assert world.outsider.id not in invited_ids(competition)
    assert suspended.id not in invited_ids(competition)
    assert competition.status is CompetitionStatus.PUBLISHED
    assert competition.reference == f"FC-{now.year}-{competition.id:05d}"
    emails = db.session.scalars(
        sa.select(Notification.to_email).where(Notification.template == "competition_invited")
    ).all()
    assert sorted(emails) == sorted(a.email for a in world.provider_admins)
    with pytest.raises(TransitionConflict):
        publishing.publish(world.buyer, competition, now=now)


def test_a_pcc_area_competition_reaches_region_wide_members_but_not_other_pcc_areas(app):
    world = build_competition_world()
    pccs = db.session.scalars(
        sa.select(PccArea).where(PccArea.region_id == region("A").id).order_by(PccArea.id)
    ).all()
    if len(pccs) < 2:
        pytest.skip("the reference data has fewer than two PCC areas in region A")
    here, there = pccs[0], pccs[1]
    local = make_organisation(OrganisationType.PROVIDER_VCSE, name="Local")
    make_lot_membership(world.lot, local, pcc_area_code=here.code)
    elsewhere = make_organisation(OrganisationType.PROVIDER_VCSE, name="Neighbour")
    make_lot_membership(world.lot, elsewhere, pcc_area_code=there.code)
    competition = ready(world)
    competition.areas = [CompetitionArea(pcc_area_id=here.id)]
    db.session.flush()
    publishing.publish(world.buyer, competition)
    invited = invited_ids(competition)
    assert local.id in invited
    assert {p.id for p in world.providers} <= invited  # region-wide members of A
    assert elsewhere.id not in invited
    assert world.outsider.id not in invited


def test_a_wrong_role_cannot_publish_or_cancel(app):
    world = build_competition_world()
    competition = ready(world)
    for user in (world.pcc_approver, world.provider_admins[0]):
        with pytest.raises(NotFound):
            publishing.publish(user, competition)
        with pytest.raises(NotFound):
            cancelling.cancel(user, competition, "No")


def test_pending_applications_are_prioritised_until_the_bid_deadline(app):
    world = make_world()
    organisation, admin = make_provider()
    application = submitted_builder_application(
        world, organisation, admin, at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC), lots=[world.lot_a]
    )
    other_org, other_admin = make_provider()
    earlier = submitted_builder_application(
        world,
        other_org,
        other_admin,
        at=datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
        lots=[world.lot_a],
    )
    competition = hand_published(world.lot_a, world.region_1, utcnow() + timedelta(days=20))
    pending = db.session.scalars(publishing.pending_applications_query(competition)).all()
    assert {a.id for a in pending} == {application.id, earlier.id}
    # Only the later one's competition is open: mark it as publishing would.
    application.prioritised_until = competition.bid_deadline
    db.session.flush()
    queue = assessment_queue()
    ids = [entry.application.id for entry in queue]
    assert ids.index(application.id) < ids.index(earlier.id)
    assert [e.prioritised for e in queue if e.application.id == application.id] == [True]


def hand_published(lot, region_row, bid_deadline) -> Competition:
    buyer_org = make_organisation(OrganisationType.PROBATION_REGION, name="Hand Region")
    today = utcnow().date()
    competition = Competition(
        arrangement_id=lot.arrangement_id,
        lot_id=lot.id,
        category_id=lot.category_id,
        buyer=buyer_org,
        title="Hand made",
        need="Need",
        estimated_value_pence=1_000_000,
        quantity=10,
        unit=Unit.SESSION,
        contract_start=today + timedelta(days=60),
        contract_end=today + timedelta(days=120),
        status=CompetitionStatus.PUBLISHED,
        published_at=utcnow(),
        clarification_deadline=bid_deadline - timedelta(days=3),
        bid_deadline=bid_deadline,
    )
    competition.areas = [CompetitionArea(region_id=region_row.id)]
    db.session.add(competition)
    db.session.flush()
    return competition


def test_a_provider_admitted_before_the_bid_deadline_is_invited_then(app):
    world = make_world()
    organisation, admin = make_provider()
    assessor, _authority = make_authority()
    admitted_at = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)
    open_one = hand_published(world.lot_a, world.region_1, admitted_at + timedelta(days=5))
    closed_one = hand_published(world.lot_a, world.region_1, admitted_at - timedelta(days=1))
    other_region = hand_published(world.lot_a, world.outside_region, admitted_at + timedelta(5))
    application = submitted_builder_application(
        world, organisation, admin, at=datetime(2026, 12, 23, 10, 0, tzinfo=UTC), lots=[world.lot_a]
    )
    assessment.declare_conflict(assessor, application, False, at=admitted_at)
    for row in application.answers:
        assessment.mark_answer(assessor, row, AnswerOutcome.PASS, at=admitted_at)
    assessment.decide_lot(assessor, application, world.lot_a, True, at=admitted_at)
    invitation = db.session.scalar(
        sa.select(InvitedProvider).where(InvitedProvider.organisation_id == organisation.id)
    )
    assert invitation is not None and invitation.competition_id == open_one.id
    assert invitation.because is InvitedBecause.ADMITTED_BEFORE_DEADLINE
    assert invitation.invited_at == admitted_at
    assert organisation.id not in invited_ids(closed_one)
    assert organisation.id not in invited_ids(other_region)
    assert db.session.scalar(
        sa.select(Notification).where(
            Notification.template == "competition_invited", Notification.to_email == admin.email
        )
    )


# --- cancelling -----------------------------------------------------------------------------


def test_cancelling_needs_a_reason_and_tells_everyone_invited(app):
    world = build_competition_world()
    competition = ready(world)
    publishing.publish(world.buyer, competition)
    with pytest.raises(BusinessRuleViolation) as refused:
        cancelling.cancel(world.buyer, competition, "  ")
    assert "reason" in refused.value.errors
    cancelling.cancel(world.approver, competition, "Budget withdrawn")
    assert competition.status is CompetitionStatus.CANCELLED
    told = set(
        db.session.scalars(
            sa.select(Notification.to_email).where(Notification.template == "competition_cancelled")
        )
    )
    assert told == {a.email for a in world.provider_admins}
    with pytest.raises(TransitionConflict):
        cancelling.cancel(world.buyer, competition, "Again")


def test_publishing_puts_pending_applications_for_the_lot_and_area_first_until_bids_close(app):
    from marketplace.accreditation.models import (
        Application,
        ApplicationArea,
        ApplicationLot,
        ApplicationStatus,
    )

    world = build_competition_world()
    now = utcnow()

    def application(reference, region_code, status=ApplicationStatus.SUBMITTED):
        applicant = make_organisation(OrganisationType.PROVIDER_VCSE, name=f"Applicant {reference}")
        row = Application(
            reference=reference,
            arrangement_id=world.lot.arrangement_id,
            organisation=applicant,
            status=status,
            declared_at=now,
            submitted_at=now,
            decision_due_on=now.date() + timedelta(days=14),
        )
        row.lots = [ApplicationLot(lot=world.lot)]
        row.areas = [ApplicationArea(region=region(region_code))]
        db.session.add(row)
        db.session.flush()
        return row

    here = application("APP-HERE", "A")
    elsewhere = application("APP-THERE", "B")
    draft = application("APP-DRAFT", "A", ApplicationStatus.DRAFT)
    competition = ready(world, now)
    publishing.publish(world.buyer, competition, now=now)
    assert here.prioritised_until == competition.bid_deadline
    assert elsewhere.prioritised_until is None and draft.prioritised_until is None
    assert [
        a.id for a in db.session.scalars(publishing.pending_applications_query(competition))
    ] == [here.id]
