"""What a bidder's competition page offers once bids have closed, found while walking the
journeys (F2): after the award decision it links to the bidder's assessment summary (as the home
page does), and it no longer offers to ask a question once questions have closed."""

from __future__ import annotations

from datetime import timedelta

from marketplace.competitions.services import award
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
from tests.competitions.factories import build_competition_world, publish_directly


def test_after_the_award_decision_the_bid_page_links_to_the_assessment_summary(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    summary_link = f'href="/competitions/{competition.id}/assessment-summary"'
    web.as_user(world.provider_admins[1], world.providers[1])
    before = web.get(f"/competitions/{competition.id}/bid")
    assert before.status_code == 200 and summary_link not in before.text
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id)
    db.session.commit()
    page = web.get(f"/competitions/{competition.id}/bid")
    assert page.status_code == 200
    assert summary_link in page.text and "Read your assessment summary" in page.text
    assert web.get(f"/competitions/{competition.id}/assessment-summary").status_code == 200


def test_the_ask_a_question_link_is_offered_only_while_questions_are_open(app, web):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now - timedelta(days=5), bid_deadline=now + timedelta(days=9))
    competition = world.competition
    ask = f'href="/competitions/{competition.id}/questions/ask"'
    web.as_user(world.provider_admins[0], world.providers[0])
    assert ask in web.get(f"/competitions/{competition.id}/bid").text
    competition.clarification_deadline = now - timedelta(minutes=1)
    db.session.commit()
    page = web.get(f"/competitions/{competition.id}/bid")
    assert page.status_code == 200 and ask not in page.text


def test_once_bids_have_closed_the_page_says_so_and_the_summary_leads_back(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id)
    db.session.commit()
    web.as_user(world.provider_admins[1], world.providers[1])
    page = web.get(f"/competitions/{competition.id}/bid")
    assert "Bids closed" in page.text
    assert "nobody else can read yours before the deadline" not in page.text
    summary = web.get(f"/competitions/{competition.id}/assessment-summary")
    assert f'href="/competitions/{competition.id}/bid"' in summary.text
    assert "Back to the competition" in summary.text
