"""Claims made at once against one outcome term, and one claim verified twice at once, on
PostgreSQL: the cap holds and a claim is verified (and spent from the budgets) once."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.db import commit, db
from marketplace.orders.models import Budget, CallOff
from marketplace.outcomes import services as outcomes
from marketplace.outcomes.models import OutcomeClaim, OutcomeTerm
from tests.orders.factories import build_orders_world
from tests.orders.test_call_off_concurrency import race
from tests.outcomes.factories import LATER, PDF, accepted_with_terms, claim, term

pytestmark = pytest.mark.postgres_only

CLIENTS = 6


def test_claims_at_once_never_pass_the_cap(app):
    world = build_orders_world()
    call_off = accepted_with_terms(world, term(world, cap=2))
    term_id = db.session.scalar(sa.select(OutcomeTerm.id))
    commit()
    ids = (world.provider_admin.id, call_off.id)

    def claiming() -> None:
        row = db.session.get(OutcomeTerm, term_id)
        outcomes.claim_outcome(
            db.session.get(User, ids[0]),
            db.session.get(CallOff, ids[1]),
            outcomes.ClaimDetails(term_id=term_id, achieved_on=row.earliest_claim_on),
            "tenancy.pdf",
            io.BytesIO(PDF),
            now=LATER,
        )

    results = race(app, [claiming] * CLIENTS)
    assert results.count("ok") == 2
    assert all("at most 2" in r for r in results if r != "ok")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutcomeClaim)) == 2


def test_a_claim_verified_twice_at_once_is_spent_once(app):
    world = build_orders_world()
    call_off = accepted_with_terms(world)
    made = claim(world, call_off, db.session.scalar(sa.select(OutcomeTerm)))
    commit()
    spent = world.budget.spent_pence
    claim_id, buyer_id, approver_id, budget_id = (
        made.id,
        world.buyer.id,
        world.approver.id,
        world.budget.id,
    )

    def verifying(user_id: int):
        def job() -> None:
            outcomes.verify_claim(
                db.session.get(User, user_id), db.session.get(OutcomeClaim, claim_id), now=LATER
            )

        return job

    results = race(app, [verifying(buyer_id), verifying(approver_id)])
    assert results.count("ok") == 1
    db.session.expire_all()
    assert db.session.get(Budget, budget_id).spent_pence == spent + 50_001  # exempt: no VAT
