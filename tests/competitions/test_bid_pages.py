"""The provider's pages and the buyer's clarification pages: forms, errors on the same page with
a linked summary, redirects, permissions (another organisation's bid is 404)."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.competitions.models import (
    Bid,
    BidStatus,
    Clarification,
    CompetitionStatus,
    QuestionKind,
)
from marketplace.competitions.services import clarifications
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.factories import make_member


@pytest.fixture
def world(app):
    world = build_competition_world()
    publish_directly(world)
    db.session.commit()
    return world


def bid_form(world, **changes):
    data = {}
    for question in world.competition.questions:
        if question.kind is QuestionKind.PASS_FAIL:
            data[f"meets_{question.id}"] = "yes"
            data[f"answer_{question.id}"] = "Certificate from our insurer"
        else:
            data[f"answer_{question.id}"] = "We will do this well and here is how."
    data.update(unit_price="250.00", vat_treatment="exempt", is_sme="yes", check="y")
    data.update(changes)
    return data


def test_an_invited_provider_reads_the_competition_and_bids(world, login):
    client = login(world.provider_admins[0], world.providers[0])
    competition = world.competition
    page = client.get(f"/competitions/{competition.id}/bid")
    assert page.status_code == 200
    assert competition.need in page.text and "How will you keep tenancies going?" in page.text
    assert "Start your bid" in page.text
    first = competition.questions[0]
    refused = client.post(
        f"/competitions/{competition.id}/bid/edit",
        data=bid_form(world, **{f"answer_{first.id}": "word " * 301}),
    )
    assert refused.status_code == 422
    assert "There is a problem" in refused.text
    assert f'href="#answer_{first.id}"' in refused.text
    assert "301 words" in refused.text
    assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0
    saved = client.post(f"/competitions/{competition.id}/bid/edit", data=bid_form(world))
    assert saved.status_code == 302 and saved.location.endswith("/bid/check")
    check = client.get(saved.location)
    assert "Submit your bid" in check.text and "£100,000.00" in check.text
    submitted = client.post(saved.location, data={})
    assert submitted.status_code == 302
    bid = db.session.scalar(sa.select(Bid))
    assert bid.status is BidStatus.SUBMITTED
    page = client.get(f"/competitions/{competition.id}/bid")
    assert "Withdraw your bid" in page.text
    client.post(f"/competitions/{competition.id}/bid/withdraw", data={})
    db.session.expire_all()
    assert db.session.get(Bid, bid.id).status is BidStatus.WITHDRAWN
    assert client.get(f"/competitions/{competition.id}/bids/{bid.id}").status_code == 200


def test_a_consortium_member_that_is_not_a_member_is_named_on_the_page(world, login):
    client = login(world.provider_admins[0], world.providers[0])
    page = client.post(
        f"/competitions/{world.competition.id}/bid/edit",
        data=bid_form(
            world,
            consortium_0_name=world.outsider.name,
            consortium_0_role="member",
            consortium_0_share="20",
        ),
    )
    assert page.status_code == 422
    assert 'href="#consortium_0_name"' in page.text
    assert f"{world.outsider.name} is not a member of the" in page.text


def test_an_editor_saves_a_draft_but_cannot_submit(world, login):
    editor = make_member(Role.PROVIDER_EDITOR, world.providers[0])
    db.session.commit()
    client = login(editor, world.providers[0])
    client.post(f"/competitions/{world.competition.id}/bid/edit", data=bid_form(world))
    check = client.get(f"/competitions/{world.competition.id}/bid/check")
    assert "Only your organisation's administrators can submit" in check.text
    client.post(f"/competitions/{world.competition.id}/bid/check", data={})
    assert db.session.scalar(sa.select(Bid.status)) is BidStatus.DRAFT


def test_a_provider_not_invited_is_told_why(world, login):
    client = login(world.outsider_admin, world.outsider)
    page = client.get(f"/competitions/{world.competition.id}/bid")
    assert page.status_code == 403
    assert "only members of the lot in the areas when it was published may bid" in page.text
    edit = client.post(f"/competitions/{world.competition.id}/bid/edit", data=bid_form(world))
    assert edit.status_code == 404
    assert db.session.scalar(sa.select(sa.func.count(Bid.id))) == 0


def test_your_competitions_lists_invitations_with_the_bids_state(world, login):
    add_bid(world, world.providers[0], status=BidStatus.DRAFT)
    db.session.commit()
    page = login(world.provider_admins[0], world.providers[0]).get("/competitions/invited")
    assert world.competition.title in page.text and "Draft" in page.text
    empty = login(world.outsider_admin, world.outsider).get("/competitions/invited")
    assert "No competitions yet" in empty.text
    home = login(world.provider_admins[0], world.providers[0]).get("/")
    assert "/competitions/invited" in home.text


def test_a_question_is_asked_answered_and_published_without_the_asker(world, login):
    client = login(world.provider_admins[0], world.providers[0])
    empty = client.post(f"/competitions/{world.competition.id}/questions/ask", data={})
    assert empty.status_code == 422 and 'href="#question"' in empty.text
    client.post(
        f"/competitions/{world.competition.id}/questions/ask", data={"question": "Pets allowed?"}
    )
    asked = db.session.scalar(sa.select(Clarification))
    buyer = login(world.buyer, world.buyer_org)
    home = buyer.get("/")
    assert "/competitions/questions" in home.text
    waiting = buyer.get("/competitions/questions")
    assert "Pets allowed?" in waiting.text and world.providers[0].name in waiting.text
    listed = buyer.get(f"/competitions/{world.competition.id}/clarifications")
    assert world.providers[0].name in listed.text
    url = f"/competitions/{world.competition.id}/clarifications/{asked.id}/answer"
    assert buyer.post(url, data={}).status_code == 422
    assert buyer.post(url, data={"answer": "No pets, sorry."}).status_code == 302
    other = login(world.provider_admins[1], world.providers[1])
    page = other.get(f"/competitions/{world.competition.id}/bid")
    assert "Pets allowed?" in page.text and "No pets, sorry." in page.text
    assert world.providers[0].name not in page.text
    # Providers do not see the buyer's list of who asked.
    assert other.get(f"/competitions/{world.competition.id}/clarifications").status_code == 404
    assert other.get(url).status_code in (403, 404)


def test_a_question_after_the_deadline_is_refused_on_the_page(world, login):
    world.competition.clarification_deadline = utcnow() - timedelta(minutes=1)
    db.session.commit()
    client = login(world.provider_admins[0], world.providers[0])
    page = client.post(
        f"/competitions/{world.competition.id}/questions/ask", data={"question": "Late?"}
    )
    assert page.status_code == 422 and "London time" in page.text
    assert db.session.scalar(sa.select(sa.func.count(Clarification.id))) == 0


def test_bids_received_once_unsealed_with_csv(world, login):
    bid = add_bid(world, world.providers[0])
    add_bid(world, world.providers[1], status=BidStatus.DRAFT)
    world.competition.bid_deadline = utcnow() - timedelta(minutes=1)
    world.competition.clarification_deadline = utcnow() - timedelta(days=1)
    world.competition.status = CompetitionStatus.CLOSED
    db.session.commit()
    client = login(world.buyer, world.buyer_org)
    page = client.get(f"/competitions/{world.competition.id}/bids")
    assert page.status_code == 200
    assert world.providers[0].name in page.text and world.providers[1].name not in page.text
    csv = client.get(f"/competitions/{world.competition.id}/bids.csv")
    assert csv.mimetype == "text/csv"
    rows = csv.text.strip().splitlines()
    assert len(rows) == 2 and rows[1].startswith(world.providers[0].name)
    assert "250.00" in rows[1] and "100000.00" in rows[1]
    assert client.get(f"/competitions/{world.competition.id}/bids/{bid.id}").status_code == 200
    # Never another provider, even once unsealed.
    other = login(world.provider_admins[1], world.providers[1])
    assert other.get(f"/competitions/{world.competition.id}/bids/{bid.id}").status_code == 404
    assert other.get(f"/competitions/{world.competition.id}/bids").status_code == 404


def test_clarifications_link_block_renders(world, app):
    from flask import render_template

    with app.test_request_context():
        html = render_template(
            "competitions/_clarifications_link.html", competition=world.competition
        )
    assert re.search(rf'/competitions/{world.competition.id}/clarifications"', html)


def test_answering_is_for_the_lead_buyer_only(world, login):
    asked = clarifications.ask_clarification(
        world.provider_admins[0], world.providers[0], world.competition, "Q?"
    )
    db.session.commit()
    url = f"/competitions/{world.competition.id}/clarifications/{asked.id}/answer"
    pcc = login(world.pcc_approver, world.pcc)
    assert pcc.post(url, data={"answer": "A"}).status_code == 404
    assert db.session.get(Clarification, asked.id).answered_at is None


def test_documents_download_for_invited_providers_only(world, login):
    import os

    from marketplace.competitions.models import CompetitionDocument
    from marketplace.competitions.services.documents import documents_dir

    stored = "ab" * 16
    with open(os.path.join(documents_dir(), stored), "wb") as handle:
        handle.write(b"%PDF-1.4 specification")
    document = CompetitionDocument(
        competition=world.competition,
        original_name="Specification.pdf",
        stored_name=stored,
        content_type="application/pdf",
        size_bytes=23,
        sha256="0" * 64,
    )
    db.session.add(document)
    db.session.commit()
    url = f"/competitions/{world.competition.id}/documents/{document.id}"
    page = login(world.provider_admins[0], world.providers[0]).get(
        f"/competitions/{world.competition.id}/bid"
    )
    assert url in page.text and "Specification.pdf" in page.text
    download = login(world.provider_admins[0], world.providers[0]).get(url)
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert "attachment" in download.headers["Content-Disposition"]
    download.close()
    by_buyer = login(world.buyer, world.buyer_org).get(url)
    assert by_buyer.status_code == 200
    by_buyer.close()
    assert login(world.outsider_admin, world.outsider).get(url).status_code == 404


@pytest.mark.parametrize("bad", ["nul\x00byte", "bell\x07"])
def test_every_form_refuses_text_that_cannot_be_saved(world, login, bad):
    """As tests/test_bad_input.py sweeps the demo world's forms (it has no competition yet)."""
    from tests.test_bad_input import database_fingerprint

    asked = clarifications.ask_clarification(
        world.provider_admins[0], world.providers[0], world.competition, "Q?"
    )
    db.session.commit()
    c = world.competition.id
    provider = login(world.provider_admins[0], world.providers[0])
    form = bid_form(world)
    fields = {key: bad for key in form if key.startswith("answer_") or key == "unit_price"} | {
        "consortium_0_name": bad,
        "commitments_0_what": bad,
        "price_lines_0_description": bad,
    }
    before = database_fingerprint()
    for url, data in (
        (f"/competitions/{c}/bid/edit", form | fields),
        (f"/competitions/{c}/questions/ask", {"question": bad}),
    ):
        response = provider.post(url, data=data)
        assert response.status_code == 422 and "govuk-error-summary" in response.text, url
    buyer = login(world.buyer, world.buyer_org)
    response = buyer.post(
        f"/competitions/{c}/clarifications/{asked.id}/answer", data={"answer": bad}
    )
    assert response.status_code == 422
    assert database_fingerprint() == before


def test_a_price_schedule_that_does_not_add_up_is_shown_open_on_the_page(world, login):
    client = login(world.provider_admins[0], world.providers[0])
    page = client.post(
        f"/competitions/{world.competition.id}/bid/edit",
        data=bid_form(world, price_lines_0_description="Staff", price_lines_0_amount="90000"),
    )
    assert page.status_code == 422
    assert 'href="#price_lines_0_amount"' in page.text
    assert '<details class="govuk-details" open>' in page.text
    assert "adds up to £90,000.00" in page.text


def test_bids_received_while_sealed_says_why(world, login):
    page = login(world.buyer, world.buyer_org).get(f"/competitions/{world.competition.id}/bids")
    assert page.status_code == 403 and "Bids are sealed" in page.text
    assert "(London time)" in page.text


def test_your_competitions_is_paginated(world, login, monkeypatch):
    from marketplace.competitions.models import Competition, InvitedBecause, InvitedProvider
    from marketplace.competitions.views import bids as bid_views

    first = world.competition
    second = Competition(
        arrangement=first.arrangement,
        lot=first.lot,
        category_id=first.category_id,
        buyer=first.buyer,
        title="Women's centre places",
        estimated_value_pence=first.estimated_value_pence,
        quantity=10,
        unit=first.unit,
        contract_start=first.contract_start,
        contract_end=first.contract_end,
        status=CompetitionStatus.PUBLISHED,
        published_at=first.published_at,
        bid_deadline=first.bid_deadline + timedelta(days=1),
    )
    db.session.add(second)
    db.session.add(
        InvitedProvider(
            competition=second,
            organisation=world.providers[0],
            invited_at=utcnow(),
            because=InvitedBecause.MEMBER_AT_PUBLICATION,
        )
    )
    db.session.commit()
    monkeypatch.setattr(bid_views, "PER_PAGE", 1)
    client = login(world.provider_admins[0], world.providers[0])
    page_one = client.get("/competitions/invited")
    assert first.title in page_one.text and "Women's centre places" not in page_one.text
    assert "Page 1 of 2" in page_one.text
    page_two = client.get("/competitions/invited?page=2")
    assert "Women&#39;s centre places" in page_two.text
