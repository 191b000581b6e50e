"""Mistakes a tired buyer makes while setting up a competition, each answered on the same page
with a GOV.UK error summary whose links reach the place to put it right (found by walking the
pages in a browser: see the harden lane's report)."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest

from marketplace.competitions.models import Competition, CompetitionStatus
from marketplace.core.clock import LONDON, utcnow
from marketplace.core.db import commit, db
from marketplace.core.forms import parse_time_of_day
from tests.competitions.factories import build_competition_world
from tests.pages import error_messages, text


@pytest.fixture
def world(app):
    world = build_competition_world()
    commit()
    return world


def _summary_links(response) -> list[tuple[str, str]]:
    """(href, text) of each link in the error summary."""
    page = text(response)
    block = page.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    return [
        (href, re.sub(r"<[^>]+>", "", label).strip())
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', block, re.DOTALL)
    ]


def test_a_refused_publish_lists_every_problem_linked_to_its_section(web, world):
    """Weights adding up to 90 and no deadlines: both problems in the summary, each linking to
    the section page that fixes it (not one message linked to a hidden field)."""
    world.competition.price_weight = 40  # 40 + 25 + 15 + 10 = 90
    commit()
    web.as_user(world.buyer, world.buyer_org)
    base = f"/competitions/{world.competition.id}"
    answer = web.post(f"{base}/check", data={"confirm": "yes"})
    assert answer.status_code == 422
    messages = error_messages(answer)
    assert any("add up to 100 (they add up to 90)" in m for m in messages), messages
    assert any("Enter the bid deadline" in m for m in messages), messages
    links = dict(_summary_links(answer))
    assert f"{base}/criteria" in links and f"{base}/deadlines" in links, links
    assert not any(href == "#confirm" for href in links)
    db.session.expire_all()
    assert db.session.get(Competition, world.competition.id).status is CompetitionStatus.DRAFT


def _details(world, **changes):
    data = {
        "title": "Accommodation for young adults",
        "need": "Move-on accommodation for 18 to 25 year olds.",
        "lot_id": str(world.lot.id),
        "areas": [f"region:{world.competition.areas[0].region_id}"],
        "estimated_value": "120,000",
        "contract_start": world.start.isoformat(),
        "contract_end": (world.start + timedelta(days=364)).isoformat(),
        "quantity": "400",
        "unit": "bed_night",
        "missed_sessions_chargeable": "no",
    }
    data.update(changes)
    return data


def test_a_date_that_does_not_exist_is_named_as_such_not_as_missing(web, world):
    """31/02/2027 was typed: "Enter the contract start date" told the buyer to do what they had
    done. The summary says the date is not a real one, and links to the field."""
    web.as_user(world.buyer, world.buyer_org)
    answer = web.post(
        "/competitions/new", data=_details(world, contract_start="31/02/2027", contract_end="x")
    )
    assert answer.status_code == 422
    assert error_messages(answer) == [
        "The contract start date must be a real date, like 31 3 2027",
        "The contract end date must be a real date, like 31 3 2027",
    ]
    assert ("#contract_start", error_messages(answer)[0]) in _summary_links(answer)
    assert db.session.query(Competition).count() == 1  # the world's draft only


def _deadlines(day, time, bid_day, bid_time):
    return {
        "clarification_date": day,
        "clarification_time": time,
        "bid_date": bid_day,
        "bid_time": bid_time,
        "standstill_working_days": "8",
        "standstill_reason": "",
    }


def test_an_unreadable_deadline_names_the_date_or_the_time_that_is_wrong(web, world):
    """A real date with "25:00" as its time was refused as "Enter the bid deadline: a date and
    a time", linked to the date. Each wrong part is named on its own field."""
    web.as_user(world.buyer, world.buyer_org)
    base = f"/competitions/{world.competition.id}"
    soon = (utcnow() + timedelta(days=20)).strftime("%d/%m/%Y")
    answer = web.post(f"{base}/deadlines", data=_deadlines("31/02/2027", "12:00", soon, "25:00"))
    assert answer.status_code == 422
    links = _summary_links(answer)
    assert (
        "#clarification_date",
        "The date questions close must be a real date, like 31 3 2027",
    ) in links
    assert ("#bid_time", "The time bids close must be a time of day, like 12:00, 17:30 or 5pm") in (
        links
    )
    db.session.expire_all()
    assert db.session.get(Competition, world.competition.id).bid_deadline is None


def test_a_deadline_at_5pm_is_understood(web, world):
    """People write times as 5pm or noon; they were refused as missing."""
    web.as_user(world.buyer, world.buyer_org)
    base = f"/competitions/{world.competition.id}"
    day = (utcnow() + timedelta(days=5)).strftime("%d/%m/%Y")
    bid_day = (utcnow() + timedelta(days=20)).strftime("%d/%m/%Y")
    answer = web.post(f"{base}/deadlines", data=_deadlines(day, "noon", bid_day, "5pm"))
    assert answer.status_code == 302, error_messages(answer)
    db.session.expire_all()
    competition = db.session.get(Competition, world.competition.id)
    assert competition.bid_deadline.astimezone(LONDON).strftime("%H:%M") == "17:00"
    assert competition.clarification_deadline.astimezone(LONDON).strftime("%H:%M") == "12:00"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("17:30", time(17, 30)),
        ("9.05", time(9, 5)),
        ("9", time(9)),
        ("5pm", time(17)),
        ("5:30 PM", time(17, 30)),
        ("12pm", time(12)),
        ("12am", time(0)),
        ("noon", time(12)),
        ("13pm", None),
        ("25:00", None),
        ("12:60", None),
        ("", None),
        ("soon", None),
    ],
)
def test_times_of_day_are_read_as_people_type_them(typed, expected):
    assert parse_time_of_day(typed) == expected


def test_a_provider_not_yet_invited_is_told_joining_now_can_still_get_it_invited(web, world):
    """The page told a non-member to join "to bid in future competitions", yet a provider
    admitted to the lot in the areas before bids close is invited to this one."""
    from tests.competitions.factories import publish_directly

    with db.session.no_autoflush:  # the world was committed: its objects load as they are read
        publish_directly(world)
    commit()
    web.as_user(world.outsider_admin, world.outsider)
    page = text(web.get(f"/competitions/{world.competition.id}/bid"))
    assert "You are not invited to this competition" in page
    assert "future competitions" not in page
    assert "admitted before bids close, you will be" in page


def test_the_authority_reaches_every_competition_from_its_home_page(web, world):
    """The authority oversees competitions (invited list, pending applications, bids once
    closed), but nothing on its home page led to them: each page was reachable only by URL."""
    from marketplace.accounts.models import Role
    from tests.factories import make_member

    admin = make_member(Role.AUTHORITY_ADMIN, name="Ava Authority")
    commit()
    web.as_user(admin)
    home = text(web.get("/"))
    assert 'href="/competitions/yours"' in home
    listing = web.get("/competitions/yours")
    assert listing.status_code == 200
    page = text(listing)
    assert world.competition.title in page  # another organisation's draft: overseen all the same
    assert f'href="/competitions/{world.competition.id}/manage"' in page
    assert "Start a further competition" not in page
    assert web.get(f"/competitions/{world.competition.id}/manage").status_code == 200
