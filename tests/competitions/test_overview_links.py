"""The buyer's overview of a competition (``manage``), reached from "Your competitions", leads
on to every page the buyer needs after publishing, found missing while walking F1: the
clarification questions (otherwise reached only back from answering one); once bids are
unsealed, the bids received (linked from nowhere) and the evaluation and award; and the
call-off it became.
Before the bid deadline the overview offers no link to the sealed pages."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from marketplace.competitions.services import award
from marketplace.core import clock
from marketplace.core.db import db
from marketplace.orders.models import Budget, CallOff
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
from tests.competitions.factories import build_competition_world, publish_directly


def _links(competition_id: int) -> dict[str, str]:
    base = f"/competitions/{competition_id}"
    return {
        "questions": f'href="{base}/clarifications"',
        "bids": f'href="{base}/bids"',
        "ranking": f'href="{base}/ranking"',
    }


def test_while_bids_are_sealed_the_overview_links_only_to_the_questions(app, web):
    world = build_competition_world()
    publish_directly(world)
    links = _links(world.competition.id)
    page = web.as_user(world.buyer, world.buyer_org).get(
        f"/competitions/{world.competition.id}/manage"
    )
    assert page.status_code == 200
    assert links["questions"] in page.text
    assert links["bids"] not in page.text and links["ranking"] not in page.text


def test_after_the_award_the_overview_leads_to_the_bids_the_ranking_and_the_call_off(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id)
    award.confirm_award(
        world.buyer,
        world.buyer_org,
        competition,
        now=competition.standstill_ends_at + timedelta(minutes=1),
    )
    db.session.commit()
    web.as_user(world.buyer, world.buyer_org)
    page = web.get(f"/competitions/{competition.id}/manage")
    assert page.status_code == 200
    for link in _links(competition.id).values():
        assert link in page.text
        assert web.get(link.split('"')[1]).status_code == 200
    assert f'href="/call-offs/{competition.call_off_id}"' in page.text
    assert competition.call_off.reference in page.text


def test_a_funder_short_of_budget_at_confirmation_is_told_in_one_sentence_on_the_ranking(app, web):
    """Found walking F1: orders' reasons (one per funder and year, phrases without a full stop)
    were flashed run together ("… of £9,300.00 Durham PCC has …")."""
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id)
    for budget in db.session.scalars(
        sa.select(Budget).where(Budget.organisation_id == world.pcc.id)
    ):
        budget.allocated_pence = 100
    db.session.commit()
    web.as_user(world.buyer, world.buyer_org)
    with clock.travelled_to(competition.standstill_ends_at + timedelta(hours=1)):
        refused = web.post(f"/competitions/{competition.id}/confirm-award")
        assert refused.status_code == 302
        page = web.get(f"/competitions/{competition.id}/ranking").text
    assert "The award cannot be confirmed: Durham PCC has £1.00 left in its " in page
    assert "; Durham PCC has £1.00 left" in page
    assert "Nothing has been placed; once this is put right, confirm the award again" in page
    assert db.session.scalar(sa.select(sa.func.count(CallOff.id))) == 0
