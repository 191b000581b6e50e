"""Arrangement services: the state machine, going live, criteria freezing and versioning, audit."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementStatus,
    Criterion,
    LegalRegime,
    MembershipStatus,
    QuestionType,
    RedeclarationRequest,
)
from marketplace.accreditation.services import arrangements as services
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import add_working_days, london_date
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.models import Notification
from tests.accreditation.factories import (
    category,
    make_arrangement,
    make_criterion,
    make_lot_membership,
    region,
)
from tests.factories import add_membership, make_member, make_organisation, make_user


@pytest.fixture
def admin(app):
    return make_member(Role.AUTHORITY_ADMIN)


def actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def details(**overrides):
    today = date.today()
    values = {
        "name": "Rehabilitation services DPS",
        "reference": "dps-2026-01",
        "description": "Services for people on probation",
        "legal_regime": LegalRegime.PCR2015_DPS,
        "valid_from": today - timedelta(days=1),
        "valid_to": today + timedelta(days=365),
        "direct_award_limit_pence": 3_000_000,
        "region_ids": [region("A").id, region("B").id],
        "lots": [(category("ACC").id, "Somewhere to live"), (category("ETE").id, "Work")],
    }
    values.update(overrides)
    return values


def test_create_arrangement_is_pending_and_audited(admin):
    arrangement = services.create_arrangement(admin, **details())
    assert arrangement.status == ArrangementStatus.PENDING
    assert arrangement.reference == "DPS-2026-01"
    assert arrangement.decision_period_days == 10
    assert arrangement.extended_period_days == 15
    assert [lot.category.code for lot in arrangement.lots] == ["ACC", "ETE"]
    assert [r.code for r in arrangement.regions] == ["A", "B"]
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "arrangement.created")
    )
    assert event.actor_id == admin.id
    assert event.after["lots"] == ["ACC", "ETE"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"reference": "ab"}, "reference"),
        ({"reference": "has space"}, "reference"),
        ({"reference": "A" * 41}, "reference"),
        ({"valid_to": date.today() - timedelta(days=5)}, "valid_to"),
        ({"direct_award_limit_pence": -1}, "direct_award_limit_pence"),
        ({"decision_period_days": 0}, "decision_period_days"),
        ({"extended_period_days": 5}, "extended_period_days"),
        ({"legal_regime": "nonsense"}, "legal_regime"),
        ({"region_ids": [999_999]}, "region_ids"),
        ({"lots": [(999_999, "")]}, "lots"),
    ],
)
def test_create_arrangement_refuses_bad_details(admin, overrides, field):
    with pytest.raises(BusinessRuleViolation) as error:
        services.create_arrangement(admin, **details(**overrides))
    assert field in error.value.errors
    assert db.session.scalar(sa.select(sa.func.count(Arrangement.id))) == 0


def test_reference_must_be_unique(admin):
    services.create_arrangement(admin, **details())
    with pytest.raises(BusinessRuleViolation) as error:
        services.create_arrangement(admin, **details(name="Another"))
    assert "reference" in error.value.errors


def test_going_live_then_suspend_and_close(admin):
    arrangement = services.create_arrangement(admin, **details())
    services.change_arrangement_status(admin, arrangement, ArrangementStatus.LIVE)
    assert arrangement.went_live_at is not None
    went_live_at = arrangement.went_live_at
    services.change_arrangement_status(admin, arrangement, ArrangementStatus.SUSPENDED, "Review")
    assert arrangement.status_reason == "Review"
    services.change_arrangement_status(admin, arrangement, ArrangementStatus.LIVE)
    assert arrangement.went_live_at == went_live_at
    services.change_arrangement_status(admin, arrangement, ArrangementStatus.CLOSED, "Ended")
    assert arrangement.closed_at is not None
    db.session.flush()
    assert actions()[-4:] == [
        "arrangement.live",
        "arrangement.suspended",
        "arrangement.live",
        "arrangement.closed",
    ]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (ArrangementStatus.PENDING, ArrangementStatus.SUSPENDED),
        (ArrangementStatus.LIVE, ArrangementStatus.PENDING),
        (ArrangementStatus.LIVE, ArrangementStatus.LIVE),
        (ArrangementStatus.CLOSED, ArrangementStatus.LIVE),
        (ArrangementStatus.CLOSED, ArrangementStatus.PENDING),
        (ArrangementStatus.SUSPENDED, ArrangementStatus.PENDING),
    ],
)
def test_refused_transitions(admin, start, target):
    arrangement = make_arrangement(status=start)
    with pytest.raises(BusinessRuleViolation) as error:
        services.change_arrangement_status(admin, arrangement, target, "a reason")
    assert "status" in error.value.errors
    assert arrangement.status == start


def test_suspending_needs_a_reason(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    with pytest.raises(BusinessRuleViolation) as error:
        services.change_arrangement_status(admin, arrangement, ArrangementStatus.SUSPENDED, " ")
    assert "reason" in error.value.errors


def test_going_live_needs_lots_regions_and_validity(admin):
    no_lots = make_arrangement(lots=())
    no_regions = make_arrangement(regions=())
    future = make_arrangement(
        valid_from=date.today() + timedelta(days=3), valid_to=date.today() + timedelta(days=90)
    )
    expired = make_arrangement(
        valid_from=date.today() - timedelta(days=90), valid_to=date.today() - timedelta(days=1)
    )
    for arrangement, words in [
        (no_lots, "lot"),
        (no_regions, "region"),
        (future, "validity period"),
        (expired, "validity period"),
    ]:
        with pytest.raises(BusinessRuleViolation) as error:
            services.change_arrangement_status(admin, arrangement, ArrangementStatus.LIVE)
        assert words in " ".join(error.value.errors["status"])
        assert arrangement.status == ArrangementStatus.PENDING


def test_regime_cannot_change_once_live(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    with pytest.raises(BusinessRuleViolation) as error:
        services.update_arrangement(
            admin, arrangement, legal_regime=LegalRegime.PA2023_DYNAMIC_MARKET
        )
    assert "legal_regime" in error.value.errors
    services.update_arrangement(admin, arrangement, name="New name")
    assert arrangement.name == "New name"
    assert actions()[-1] == "arrangement.updated"


def test_regime_can_change_while_pending(admin):
    arrangement = make_arrangement()
    services.update_arrangement(admin, arrangement, legal_regime="pa2023_open_framework")
    assert arrangement.legal_regime == LegalRegime.PA2023_OPEN_FRAMEWORK


def test_lots_and_regions_while_pending(admin):
    arrangement = make_arrangement(lots=("ACC",), regions=("A",))
    lot = services.add_lot(admin, arrangement, category("FBD").id, "Debt advice")
    services.add_region(admin, arrangement, region("C").id)
    assert [r.code for r in arrangement.regions] == ["A", "C"]
    with pytest.raises(BusinessRuleViolation):
        services.add_lot(admin, arrangement, category("FBD").id)
    make_criterion(lot)
    services.remove_lot(admin, lot)
    services.remove_region(admin, arrangement, region("C"))
    assert [lot.category.code for lot in arrangement.lots] == ["ACC"]
    assert db.session.scalar(sa.select(sa.func.count(Criterion.id))) == 0
    assert {
        "arrangement.lot_added",
        "arrangement.region_added",
        "arrangement.lot_removed",
        "arrangement.region_removed",
    } <= set(actions())


def test_live_pa2023_scope_is_fixed(admin):
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE, regime=LegalRegime.PA2023_DYNAMIC_MARKET
    )
    with pytest.raises(BusinessRuleViolation, match="Procurement Act 2023"):
        services.add_lot(admin, arrangement, category("FBD").id)
    with pytest.raises(BusinessRuleViolation, match="Procurement Act 2023"):
        services.add_region(admin, arrangement, region("C").id)


def test_live_pcr2015_lot_with_members_cannot_be_removed(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    services.add_lot(admin, arrangement, category("FBD").id)
    lot = arrangement.lots[0]
    make_lot_membership(lot)
    with pytest.raises(BusinessRuleViolation, match="has members"):
        services.remove_lot(admin, lot)
    with pytest.raises(BusinessRuleViolation, match="has members"):
        services.remove_region(admin, arrangement, region("A"))
    services.remove_lot(admin, arrangement.lots[-1])  # FBD: no members


def test_criteria_edit_in_place_while_pending(admin):
    arrangement = make_arrangement()
    lot = arrangement.lots[0]
    criterion = services.add_criterion(
        admin, lot, question="Do you hold insurance?", type=QuestionType.YES_NO, pass_answer=True
    )
    assert criterion.version == 1
    updated = services.update_criterion(admin, criterion, question="Do you hold £5m insurance?")
    assert updated is criterion
    assert criterion.question == "Do you hold £5m insurance?"
    services.retire_criterion(admin, criterion)
    assert db.session.scalar(sa.select(sa.func.count(Criterion.id))) == 0
    assert arrangement.criteria_version == 1
    assert actions() == ["criterion.added", "criterion.updated", "criterion.deleted"]


def test_yes_no_pass_fail_needs_the_passing_answer(admin):
    lot = make_arrangement().lots[0]
    with pytest.raises(BusinessRuleViolation) as error:
        services.add_criterion(admin, lot, question="Insured?", type=QuestionType.YES_NO)
    assert "pass_answer" in error.value.errors
    with pytest.raises(BusinessRuleViolation) as error:
        services.add_criterion(admin, lot, question=" ", type=QuestionType.TEXT)
    assert "question" in error.value.errors
    criterion = services.add_criterion(
        admin, lot, question="Policy", type=QuestionType.FILE, evidence_expires=True
    )
    assert criterion.evidence_expires and criterion.pass_answer is None


@pytest.mark.parametrize(
    "regime", [LegalRegime.PA2023_DYNAMIC_MARKET, LegalRegime.PA2023_OPEN_FRAMEWORK]
)
@pytest.mark.parametrize("status", [ArrangementStatus.LIVE, ArrangementStatus.SUSPENDED])
def test_criteria_frozen_under_procurement_act_once_live(admin, regime, status):
    arrangement = make_arrangement(regime=regime, status=status)
    lot = arrangement.lots[0]
    criterion = make_criterion(lot, question="Original")
    db.session.flush()
    before = actions()
    attempts = [
        lambda: services.add_criterion(admin, lot, question="New", type=QuestionType.TEXT),
        lambda: services.update_criterion(admin, criterion, question="Changed"),
        lambda: services.retire_criterion(admin, criterion),
    ]
    for attempt in attempts:
        with pytest.raises(BusinessRuleViolation) as error:
            attempt()
        message = error.value.detail
        assert "Procurement Act 2023" in message
        assert "conditions of membership cannot change once the market is live" in message
    assert criterion.question == "Original"
    assert criterion.retired_in_version is None
    assert arrangement.criteria_version == 1
    assert actions() == before


def test_closed_arrangement_criteria_cannot_change(admin):
    arrangement = make_arrangement(status=ArrangementStatus.CLOSED)
    with pytest.raises(BusinessRuleViolation, match="closed"):
        services.add_criterion(admin, arrangement.lots[0], question="New", type=QuestionType.TEXT)


def test_pcr2015_live_change_makes_a_new_version_and_asks_members_to_redeclare(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    lot, other_lot = arrangement.lots
    criterion = make_criterion(lot, question="Do you hold insurance?")
    provider = make_organisation(name="Hope Housing")
    admin_a = make_member(Role.PROVIDER_ADMIN, provider)
    admin_b = make_member(Role.PROVIDER_ADMIN, provider)
    make_member(Role.PROVIDER_EDITOR, provider)  # editors are not asked
    first = make_lot_membership(lot, provider, region_code="A")
    second = make_lot_membership(other_lot, provider, region_code="B")
    other = make_lot_membership(lot, region_code="B")
    make_member(Role.PROVIDER_ADMIN, other.organisation)
    make_lot_membership(lot, status=MembershipStatus.SUSPENDED)
    make_lot_membership(lot, status=MembershipStatus.REMOVED)
    other_arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    make_lot_membership(other_arrangement.lots[0])

    replacement = services.update_criterion(
        admin, criterion, question="Do you hold £5m public liability insurance?"
    )

    assert arrangement.criteria_version == 2
    assert replacement is not criterion
    assert replacement.version == 2 and replacement.retired_in_version is None
    assert criterion.retired_in_version == 2
    assert not criterion.in_force(2) and criterion.in_force(1)
    requests = list(db.session.scalars(sa.select(RedeclarationRequest)))
    assert {r.membership_id for r in requests} == {first.id, second.id, other.id}
    due = add_working_days(london_date(), 5)
    assert {r.due_on for r in requests} == {due}
    assert all(r.requested_by_id == admin.id for r in requests)
    emails = list(db.session.scalars(sa.select(Notification).order_by(Notification.id)))
    assert sorted(e.to_email for e in emails) == sorted(
        [admin_a.email, admin_b.email, *_admin_emails(other.organisation)]
    )
    body = next(e.body for e in emails if e.to_email == admin_a.email)
    assert arrangement.name in emails[0].subject or arrangement.name in body
    assert "Accommodation" in body and "North West" in body
    assert {
        "arrangement.criteria_versioned",
        "arrangement.redeclaration_requested",
        "criterion.replaced",
        "criterion.added",
    } <= set(actions())


def _admin_emails(organisation):
    return [m.user.email for m in organisation.memberships if m.role == Role.PROVIDER_ADMIN]


def test_pcr2015_live_add_and_retire_make_versions(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    lot = arrangement.lots[0]
    old = make_criterion(lot)
    added = services.add_criterion(admin, lot, question="Safeguarding policy", type="file")
    assert added.version == 2 and arrangement.criteria_version == 2
    services.retire_criterion(admin, old)
    assert arrangement.criteria_version == 3
    assert old.retired_in_version == 3
    from marketplace.accreditation.queries import criteria_in_force

    assert criteria_in_force(lot) == [added]
    with pytest.raises(BusinessRuleViolation, match="retired"):
        services.update_criterion(admin, old, question="Again")


def test_no_members_no_requests(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    services.add_criterion(admin, arrangement.lots[0], question="Q", type="text")
    assert db.session.scalar(sa.select(sa.func.count(RedeclarationRequest.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_inactive_admins_are_not_emailed(admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    provider = make_organisation()
    user = make_user(active=False)
    add_membership(user, provider, Role.PROVIDER_ADMIN)
    make_lot_membership(arrangement.lots[0], provider)
    services.add_criterion(admin, arrangement.lots[0], question="Q", type="text")
    assert db.session.scalar(sa.select(sa.func.count(RedeclarationRequest.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
