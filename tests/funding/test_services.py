"""Budgets and standing authorisations, set by their owners: the rules, the history, the audit
and the emails, and every kind of bad input refused with nothing written."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core import clock
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied, TransitionConflict
from marketplace.core.notifications.models import Notification
from marketplace.funding import services
from marketplace.funding.models import MAX_AMOUNT_PENCE, BudgetChange
from marketplace.orders.models import Budget, CallOff, FundingAuthorisation
from marketplace.orders.services import placing
from marketplace.reference.models import ServiceCategory
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares
from tests.pages import count

pytestmark = pytest.mark.usefixtures("app")

TODAY = clock.london_date()
YEAR = clock.financial_year(TODAY)


def emails(template: str) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Notification.to_email).where(Notification.template == template)
        )
    )


def actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def region_with_approvers():
    region = make_organisation(OrganisationType.PROBATION_REGION, name="Wessex Probation")
    approver = make_member(Role.APPROVER, region, name="Ada Approver")
    colleague = make_member(Role.APPROVER, region, name="Col League")
    buyer = make_member(Role.BUYER, region, name="Bo Buyer")
    return region, approver, colleague, buyer


def category() -> ServiceCategory:
    return db.session.scalars(sa.select(ServiceCategory).order_by(ServiceCategory.id)).first()


# ---------------------------------------------------------------------------------------------
# Budgets


def test_an_approver_sets_this_and_the_next_years_budgets_and_a_category_budget():
    region, approver, colleague, buyer = region_with_approvers()
    this_year = services.create_budget(
        approver, region, services.NewBudget(YEAR, 5_000_000, reason="Agreed by the board")
    )
    next_year = services.create_budget(approver, region, services.NewBudget(YEAR + 1, 6_000_000))
    lot = category()
    in_category = services.create_budget(
        approver, region, services.NewBudget(YEAR, 1_000_000, category_id=lot.id)
    )
    commit()
    assert [b.financial_year for b in (this_year, next_year, in_category)] == [YEAR, YEAR + 1, YEAR]
    assert in_category.category_id == lot.id and this_year.available_pence == 5_000_000
    [first] = db.session.scalars(
        sa.select(BudgetChange).where(BudgetChange.budget_id == this_year.id)
    ).all()
    assert (first.old_allocated_pence, first.new_allocated_pence, first.reason) == (
        None,
        5_000_000,
        "Agreed by the board",
    )
    assert first.changed_by_id == approver.id
    assert actions() == ["budget.created"] * 3
    # The other approver is told each time; the one who set it and the buyer are not.
    assert emails("funding_budget_changed") == [colleague.email] * 3


def test_raising_and_lowering_keeps_the_history_and_tells_the_other_approvers():
    world = build_orders_world()
    colleague = make_member(Role.APPROVER, world.region, name="Col League")
    placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()
    budget = db.session.get(Budget, world.budget.id)
    assert budget.committed_pence == 100_000

    services.change_budget(world.approver, budget, 12_000_000, "Extra grant")
    services.change_budget(world.approver, budget, 9_000_000, "Grant cut")
    commit()
    history = db.session.scalars(
        sa.select(BudgetChange).where(BudgetChange.budget_id == budget.id).order_by(BudgetChange.id)
    ).all()
    assert [(h.old_allocated_pence, h.new_allocated_pence, h.reason) for h in history] == [
        (10_000_000, 12_000_000, "Extra grant"),
        (12_000_000, 9_000_000, "Grant cut"),
    ]
    assert budget.allocated_pence == 9_000_000 and budget.available_pence == 8_900_000
    assert actions()[-2:] == ["budget.raised", "budget.lowered"]
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.before["allocated_pence"] == 12_000_000
    assert event.after["allocated_pence"] == 9_000_000 and event.after["reason"] == "Grant cut"
    assert emails("funding_budget_changed") == [colleague.email] * 2
    subjects = db.session.scalars(
        sa.select(Notification.subject)
        .where(Notification.template == "funding_budget_changed")
        .order_by(Notification.id)
    ).all()
    assert [s.split(" the ")[0].rsplit(" ", 1)[1] for s in subjects] == ["raised", "lowered"]
    body = db.session.scalars(
        sa.select(Notification.body).where(Notification.template == "funding_budget_changed")
    ).first()
    assert "from £100,000.00 to £120,000.00" in body and "Reason: Extra grant" in body


def test_a_budget_cannot_go_below_committed_and_spent():
    world = build_orders_world()
    placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()
    budget = db.session.get(Budget, world.budget.id)
    budget.spent_pence = 50_000
    commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        services.change_budget(world.approver, budget, 149_999, "Cut")
    assert "cannot be less than £1,500.00" in refused.value.errors["allocated_pence"][0]
    db.session.rollback()
    services.change_budget(world.approver, db.session.get(Budget, budget.id), 150_000, "To floor")
    commit()
    assert db.session.get(Budget, budget.id).available_pence == 0


@pytest.mark.parametrize(
    ("year", "message"),
    [
        (YEAR + 3, "up to 2 years ahead"),
        (YEAR - 1, "has ended"),
        (None, "Choose a financial year"),
    ],
)
def test_a_year_too_far_ahead_or_past_is_refused(year, message):
    region, approver, *_ = region_with_approvers()
    with pytest.raises(BusinessRuleViolation) as refused:
        services.create_budget(approver, region, services.NewBudget(year, 100))
    assert message in refused.value.errors["financial_year"][0]
    db.session.rollback()
    assert count(Budget) == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (-1, "cannot be negative"),
        (1.5, "in pounds and pence"),
        ("100", "in pounds and pence"),
        (True, "in pounds and pence"),
        (MAX_AMOUNT_PENCE + 1, "£1,000,000,000.00 or less"),
    ],
)
def test_a_negative_fractional_non_numeric_or_huge_amount_is_refused(amount, message):
    region, approver, *_ = region_with_approvers()
    with pytest.raises(BusinessRuleViolation) as refused:
        services.create_budget(approver, region, services.NewBudget(YEAR, amount))
    assert message in refused.value.errors["allocated_pence"][0]
    budget = services.create_budget(approver, region, services.NewBudget(YEAR, 100))
    with pytest.raises(BusinessRuleViolation) as refused:
        services.change_budget(approver, budget, amount, "Because")
    assert message in refused.value.errors["allocated_pence"][0]


def test_a_second_budget_for_the_same_year_and_category_is_refused():
    region, approver, *_ = region_with_approvers()
    lot = category()
    services.create_budget(approver, region, services.NewBudget(YEAR, 100))
    services.create_budget(approver, region, services.NewBudget(YEAR, 100, category_id=lot.id))
    commit()
    with pytest.raises(BusinessRuleViolation) as general:
        services.create_budget(approver, region, services.NewBudget(YEAR, 200))
    assert "already has a" in general.value.errors["financial_year"][0]
    with pytest.raises(BusinessRuleViolation) as in_lot:
        services.create_budget(approver, region, services.NewBudget(YEAR, 200, category_id=lot.id))
    assert "change that one instead" in in_lot.value.errors["category_id"][0]
    db.session.rollback()
    assert count(Budget) == 2


def test_a_change_needs_a_reason_and_an_approver():
    region, approver, colleague, buyer = region_with_approvers()
    budget = services.create_budget(approver, region, services.NewBudget(YEAR, 100))
    commit()
    for reason in ("", "   ", None):
        with pytest.raises(BusinessRuleViolation) as refused:
            services.change_budget(approver, budget, 200, reason)
        assert refused.value.errors["reason"] == ["Enter the reason for the change"]
    with pytest.raises(PermissionDenied):
        services.change_budget(buyer, budget, 200, "Because")
    with pytest.raises(PermissionDenied):
        services.create_budget(buyer, region, services.NewBudget(YEAR + 1, 100))
    stranger = make_member(Role.APPROVER, make_organisation(OrganisationType.PCC))
    with pytest.raises(PermissionDenied):
        services.change_budget(stranger, budget, 200, "Because")
    db.session.rollback()
    assert db.session.get(Budget, budget.id).allocated_pence == 100
    assert count(BudgetChange) == 1


def test_a_change_against_an_allocation_changed_meanwhile_is_refused():
    region, approver, colleague, _ = region_with_approvers()
    budget = services.create_budget(approver, region, services.NewBudget(YEAR, 100))
    commit()
    services.change_budget(colleague, budget, 150, "Raised", expected_allocated_pence=100)
    commit()
    with pytest.raises(TransitionConflict) as refused:
        services.change_budget(approver, budget, 120, "Mine", expected_allocated_pence=100)
    assert "changed this budget to £1.50" in refused.value.detail


def test_a_new_commissioning_organisation_sets_its_own_budgets_and_places_a_call_off():
    from marketplace.accounts.services.organisations import create_organisation

    world = build_orders_world()
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS")
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    commit()
    from marketplace.reference.models import ProbationRegion

    region_a = db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == "A"))
    created = create_organisation(
        admin, name="Kent Probation", type=OrganisationType.PROBATION_REGION, region_id=region_a.id
    )
    approver = make_member(Role.APPROVER, created)
    buyer = make_member(Role.BUYER, created)
    commit()
    start_year = clock.financial_year(world.start)
    services.create_budget(approver, created, services.NewBudget(start_year, 500_000))
    services.create_budget(approver, created, services.NewBudget(start_year + 1, 600_000))
    commit()
    call_off = placing.place_call_off(buyer, created, world.listing.id, details(world))
    commit()
    assert db.session.get(CallOff, call_off.id).lead_buyer_id == created.id
    budget = db.session.scalar(
        sa.select(Budget).where(
            Budget.organisation_id == created.id, Budget.financial_year == start_year
        )
    )
    assert budget.committed_pence == call_off.gross_pence


# ---------------------------------------------------------------------------------------------
# Standing authorisations


def authorisation(world, **fields) -> FundingAuthorisation:
    values = {
        "lead_buyer_id": world.region.id,
        "financial_year": clock.financial_year(world.start),
        "per_call_off_limit_pence": 60_000,
        "annual_limit_pence": 200_000,
    }
    values.update(fields)
    return services.create_authorisation(
        world.pcc_approver, world.pcc, services.NewAuthorisation(**values)
    )


def test_a_co_funder_gives_changes_and_revokes_an_authorisation_and_the_lead_buyer_is_told():
    world = build_orders_world()
    given = authorisation(world)
    commit()
    assert emails("funding_authorisation_given") == [world.approver.email]
    # A co-funded call-off within the limits takes its share at once, and counts as used.
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 5_000), (world.pcc, 5_000))),
    )
    commit()
    pcc_share = next(f for f in call_off.funders if f.organisation_id == world.pcc.id)
    assert pcc_share.preauthorised and given.used_pence == 50_000

    with pytest.raises(BusinessRuleViolation) as below_used:
        services.change_authorisation(world.pcc_approver, given, 10_000, 49_999, "Less")
    assert "£500.00 already used" in below_used.value.errors["annual_limit_pence"][0]
    db.session.rollback()
    services.change_authorisation(world.pcc_approver, given, 40_000, 300_000, "More room")
    commit()
    assert (given.per_call_off_limit_pence, given.annual_limit_pence) == (40_000, 300_000)
    assert emails("funding_authorisation_changed") == [world.approver.email]

    services.revoke_authorisation(world.pcc_approver, given, "Budget frozen")
    commit()
    assert given.revoked_at is not None
    assert emails("funding_authorisation_revoked") == [world.approver.email]
    # What it funded stays funded.
    db.session.expire_all()
    pcc_share = next(
        f for f in db.session.get(CallOff, call_off.id).funders if f.organisation_id == world.pcc.id
    )
    assert pcc_share.preauthorised and pcc_share.confirmed_at is not None
    with pytest.raises(TransitionConflict):
        services.revoke_authorisation(world.pcc_approver, given, "Again")
    with pytest.raises(TransitionConflict):
        services.change_authorisation(world.pcc_approver, given, 1, 2, "After revoking")
    audited = [a for a in actions() if a.startswith("funding_authorisation")]
    assert audited == [
        "funding_authorisation.created",
        "funding_authorisation.changed",
        "funding_authorisation.revoked",
    ]

    # Given again for the same year after revoking: the same row, what it used still counted.
    again = authorisation(world, annual_limit_pence=100_000)
    commit()
    assert again.id == given.id and again.revoked_at is None and again.used_pence == 50_000


def test_an_authorisation_by_a_non_approver_is_refused():
    world = build_orders_world()
    pcc_buyer = make_member(Role.BUYER, world.pcc)
    with pytest.raises(PermissionDenied):
        services.create_authorisation(
            pcc_buyer,
            world.pcc,
            services.NewAuthorisation(world.region.id, YEAR, 100, 1_000),
        )
    given = authorisation(world)
    commit()
    for act in (
        lambda: services.change_authorisation(pcc_buyer, given, 1, 2, "Why"),
        lambda: services.revoke_authorisation(pcc_buyer, given, "Why"),
        # The lead buyer's approver holds it, but cannot change it.
        lambda: services.change_authorisation(world.approver, given, 1, 2, "Why"),
    ):
        with pytest.raises(PermissionDenied):
            act()
    db.session.rollback()
    assert count(FundingAuthorisation) == 1


def test_an_authorisation_for_itself_or_a_non_commissioner_or_bad_limits_is_refused():
    world = build_orders_world()
    cases = [
        ({"lead_buyer_id": world.pcc.id}, "lead_buyer_id", "cannot authorise itself"),
        ({"lead_buyer_id": world.provider.id}, "lead_buyer_id", "not a commissioning"),
        ({"lead_buyer_id": 999_999}, "lead_buyer_id", "Choose the organisation"),
        ({"financial_year": YEAR + 3}, "financial_year", "up to 2 years ahead"),
        ({"financial_year": YEAR - 1}, "financial_year", "has ended"),
        ({"annual_limit_pence": -5}, "annual_limit_pence", "cannot be negative"),
        ({"annual_limit_pence": 2.5}, "annual_limit_pence", "in pounds and pence"),
        ({"per_call_off_limit_pence": 300_000}, "per_call_off_limit_pence", "more than the"),
        (
            {"per_call_off_limit_pence": MAX_AMOUNT_PENCE * 10},
            "per_call_off_limit_pence",
            "or less",
        ),
    ]
    for fields, field, message in cases:
        with pytest.raises(BusinessRuleViolation) as refused:
            authorisation(world, **fields)
        assert message in refused.value.errors[field][0], (fields, refused.value.errors)
    authorisation(world)
    with pytest.raises(BusinessRuleViolation) as twice:
        authorisation(world)
    assert "already holds" in twice.value.errors["lead_buyer_id"][0]
    given = db.session.scalar(sa.select(FundingAuthorisation))
    with pytest.raises(BusinessRuleViolation) as no_reason:
        services.change_authorisation(world.pcc_approver, given, 1, 2, " ")
    assert no_reason.value.errors["reason"] == ["Enter the reason for the change"]
    with pytest.raises(BusinessRuleViolation):
        services.revoke_authorisation(world.pcc_approver, given, "")
    db.session.rollback()
    assert count(FundingAuthorisation) == 0


def test_open_years_run_from_this_financial_year_two_ahead():
    assert services.open_years(date(2027, 3, 31)) == [2026, 2027, 2028]
    assert services.open_years(date(2027, 4, 1)) == [2027, 2028, 2029]
