"""A commissioner's home page: competitions to evaluate and questions to answer, read in one
statement outside the session (``competitions.home.commissioner_counts``)."""

from __future__ import annotations

from datetime import timedelta

from marketplace.competitions.home import CommissionerCounts, commissioner_counts
from marketplace.competitions.services.clarifications import (
    answer_clarification,
    ask_clarification,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.competitions.factories import build_competition_world, publish_directly


def test_questions_wait_on_the_buyers_home_until_answered_and_bids_closing_bring_the_panel(
    app, web, count_queries
):
    world = build_competition_world()
    now = utcnow()
    competition = publish_directly(world, now=now, bid_deadline=now + timedelta(days=12))
    asked = ask_clarification(
        world.provider_admins[0], world.providers[0], competition, "Can we bid for part?"
    )
    db.session.commit()
    evaluator = world.evaluators[0]
    assert commissioner_counts(evaluator.id, world.buyer_org.id) == CommissionerCounts(0, 0, 1)
    home = web.as_user(world.buyer, world.buyer_org).get("/")
    assert "Clarification questions to answer" in home.text
    assert "Competitions to evaluate" not in home.text
    # The evaluator is a buyer too: the organisation's questions, in the one read.
    with count_queries() as counted:
        assert (
            "Clarification questions to answer"
            in web.as_user(evaluator, world.buyer_org).get("/").text
        )
    assert sum("clarifications" in statement for statement in counted.statements) == 1

    answer_clarification(world.buyer, world.buyer_org, asked, "Yes, by area.")
    db.session.commit()
    assert commissioner_counts(evaluator.id, world.buyer_org.id).questions == 0
    assert "Clarification questions to answer" not in web.get("/").text

    after_deadline = competition.bid_deadline + timedelta(minutes=1)
    counts = commissioner_counts(evaluator.id, world.buyer_org.id, now=after_deadline)
    assert (counts.on_panel, counts.running) == (1, 1)
    # The co-funder's evaluator sits on the panel for the PCC; the PCC runs nothing.
    other = commissioner_counts(world.evaluators[1].id, world.pcc.id, now=after_deadline)
    assert (other.on_panel, other.running) == (1, 0)
