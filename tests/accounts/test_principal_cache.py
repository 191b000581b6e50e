"""The signed-in person is cached per worker, and every change that matters takes effect at once."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Membership, Role
from marketplace.core.db import commit, db
from tests.factories import make_member, make_organisation


def _settle(web, url="/"):
    """Two requests: the first caches the person, the second must reuse them."""
    assert web.get(url).status_code == 200
    return web.get(url)


def test_a_cached_person_costs_no_query_of_their_own(web, app, count_queries):
    buyer = make_member(Role.BUYER, make_organisation(name="Probation North"))
    commit()
    web.as_user(buyer)
    web.get("/account")
    with count_queries() as again:
        assert web.get("/account").status_code == 200
    assert not any("FROM users" in statement for statement in again.statements), again.statements
    assert "Probation North" in web.get("/account").get_data(as_text=True)


def test_deactivating_an_account_signs_it_out_at_once(web, app):
    buyer = make_member(Role.BUYER)
    commit()
    web.as_user(buyer)
    _settle(web)
    buyer.active = False
    commit()
    response = web.get("/account")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def test_a_role_taken_away_takes_effect_at_once(web, app):
    organisation = make_organisation(name="Probation North")
    buyer = make_member(Role.BUYER, organisation)
    commit()
    web.as_user(buyer, organisation)
    assert web.get("/catalogue/").status_code == 200
    _settle(web, "/catalogue/")
    membership = db.session.scalar(sa.select(Membership).where(Membership.user_id == buyer.id))
    membership.role = Role.APPROVER
    commit()
    assert web.get("/catalogue/").status_code == 200  # approvers may still find services
    db.session.delete(db.session.get(Membership, membership.id))
    commit()
    assert web.get("/catalogue/").status_code == 403


def test_a_rotated_session_nonce_ends_other_sessions_at_once(web, app):
    buyer = make_member(Role.BUYER)
    commit()
    web.as_user(buyer)
    _settle(web)
    buyer.session_nonce = "f" * 32  # what a password change does
    commit()
    response = web.get("/account")
    assert response.status_code == 302


def test_an_organisation_renamed_shows_at_once(web, app):
    organisation = make_organisation(name="Probation North")
    buyer = make_member(Role.BUYER, organisation)
    commit()
    web.as_user(buyer, organisation)
    assert "Probation North" in _settle(web, "/account").get_data(as_text=True)
    organisation.name = "Probation North East"
    commit()
    assert "Probation North East" in web.get("/account").get_data(as_text=True)
