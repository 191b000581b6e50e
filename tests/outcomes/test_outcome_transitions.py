"""An outcome claim is verified once, and outcome terms agreed once, however many clients ask at
the same moment: one succeeds, the others get a 409, and the budgets, the call-off's version,
the audit log and the emails show one change. Two clients on every backend; twenty on
PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from marketplace.orders.models import Budget, CallOff
from marketplace.orders.services import placing, responses
from marketplace.outcomes import services as outcomes
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim, OutcomeTerm, OutcomeTermStatus
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details
from tests.outcomes.factories import LATER, accepted_with_terms, claim, term
from tests.racing import one_wins, race

CLIENTS = 20
several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def audited(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def emailed(template: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.template == template)
    )


@several
def test_verifications_of_a_claim_at_once_verify_it_once_and_spend_once(app, clients):
    world = build_orders_world()
    call_off = accepted_with_terms(world)
    made = claim(world, call_off, db.session.scalar(sa.select(OutcomeTerm)))
    people = [world.buyer.id, world.approver.id] + [
        make_member(Role.BUYER, world.region).id for _ in range(clients - 2)
    ]
    commit()
    claim_id, spent = made.id, world.budget.spent_pence
    emails_before = emailed("outcomes_claim_decided")

    def verifying(user_id: int):
        def client():
            actor = db.session.get(User, user_id)
            row = db.session.get(OutcomeClaim, claim_id)
            list(row.call_off.funders)
            return lambda: outcomes.verify_claim(actor, row, now=LATER)

        return client

    outcomes_ = race(app, [verifying(p) for p in people])

    one_wins(outcomes_, "409: This claim has already been verified")
    db.session.expire_all()
    assert db.session.get(OutcomeClaim, claim_id).status == ClaimStatus.VERIFIED
    assert db.session.get(Budget, world.budget.id).spent_pence == spent + 50_001  # no VAT
    assert audited("outcome_claim.verified") == 1
    assert emailed("outcomes_claim_decided") == emails_before + 1


def test_agreeing_outcome_terms_twice_at_once_agrees_them_once(app):
    world = build_orders_world()
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    responses.accept(world.provider_admin, call_off)
    proposed = outcomes.propose_term(world.buyer, call_off, term(world))
    other_admin = make_member(Role.PROVIDER_ADMIN, world.provider).id
    commit()
    call_off_id, term_id = call_off.id, proposed.id
    version, most = call_off.version, call_off.outcome_max_pence

    def agreeing(user_id: int):
        def client():
            actor = db.session.get(User, user_id)
            row = db.session.get(CallOff, call_off_id)
            list(row.funders)
            return lambda: outcomes.agree_term(actor, row, term_id)

        return client

    outcomes_ = race(app, [agreeing(world.provider_admin.id), agreeing(other_admin)])

    one_wins(outcomes_, "409: This outcome term has already been agreed")
    db.session.expire_all()
    agreed = db.session.get(CallOff, call_off_id)
    assert agreed.version == version + 1
    assert agreed.outcome_max_pence == most + 2 * 50_001  # a cap of 2 at £500.01, once
    assert db.session.get(OutcomeTerm, term_id).status == OutcomeTermStatus.AGREED
    assert audited("outcome_term.agreed") == 1
    assert audited("call_off.outcome_terms_agreed") == 1
