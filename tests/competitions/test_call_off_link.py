"""A call-off awarded by further competition links to the competition that awarded it: each
party to the page it reads (``competitions.views.call_offs``, through orders' page signal)."""

from __future__ import annotations

from datetime import timedelta

from marketplace.competitions.services import award
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
from tests.competitions.factories import build_competition_world


def test_the_awarded_call_off_links_each_party_to_the_competition(app, login):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    now = utcnow()
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)
    award.confirm_award(
        world.buyer,
        world.buyer_org,
        competition,
        now=competition.standstill_ends_at + timedelta(minutes=1),
    )
    db.session.commit()
    call_off_page = f"/call-offs/{competition.call_off_id}"
    winner = bids[0].organisation
    winner_admin = world.provider_admins[world.providers.index(winner)]
    for user, organisation, href in (
        (world.buyer, world.buyer_org, f"/competitions/{competition.id}/manage"),
        (world.pcc_approver, world.pcc, f"/competitions/{competition.id}/manage"),
        (winner_admin, winner, f"/competitions/{competition.id}/bid"),
    ):
        page = login(user, organisation).get(call_off_page)
        assert page.status_code == 200
        assert "View the competition" in page.text
        assert f'href="{href}"' in page.text
