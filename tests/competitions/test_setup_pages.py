"""The buyer's set-up pages: start (and its prefill from a listing), each section with its error
summary, check your answers, publish; the buyer's page, the invited CSV, cancelling; the public
list signed out; 404 for another organisation's draft; CSRF."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.competitions.models import Competition, CompetitionStatus, InvitedProvider
from marketplace.core.clock import LONDON, utcnow
from marketplace.core.db import commit, db
from tests.accreditation.factories import region
from tests.competitions.factories import build_competition_world, publish_directly
from tests.factories import make_member, make_organisation
from tests.pages import error_messages, text


@pytest.fixture
def world(app):
    world = build_competition_world()
    commit()
    return world


def _details(world, **changes):
    data = {
        "title": "Accommodation for young adults",
        "need": "Move-on accommodation for 18 to 25 year olds.",
        "lot_id": str(world.lot.id),
        "areas": [f"region:{region('A').id}"],
        "estimated_value": "120,000",
        "contract_start": world.start.isoformat(),
        "contract_end": (world.start + timedelta(days=364)).isoformat(),
        "quantity": "400",
        "unit": "bed_night",
        "missed_sessions_chargeable": "no",
    }
    data.update(changes)
    return data


def test_a_buyer_sets_up_and_publishes_a_competition_through_the_pages(web, world):
    web.as_user(world.buyer, world.buyer_org)
    home = text(web.get("/"))
    assert "/competitions/new" in home or "/competitions/yours" in home
    assert "Start a further competition" in text(web.get("/competitions/yours"))

    refused = web.post("/competitions/new", data=_details(world, title="", estimated_value="x"))
    assert refused.status_code == 422
    messages = error_messages(refused)
    assert "Enter a title for the competition" in messages
    assert 'href="#title"' in text(refused)
    started = web.post("/competitions/new", data=_details(world))
    assert started.status_code == 302
    competition = db.session.scalar(
        sa.select(Competition).where(Competition.id != world.competition.id)
    )
    assert started.location.endswith(f"/competitions/{competition.id}/set-up")
    assert "Incomplete" in text(web.get(started.location))
    base = f"/competitions/{competition.id}"

    funding = web.post(
        f"{base}/funding",
        data={"lead_share": "60", "funder_1": str(world.pcc.id), "share_1": "30"},
    )
    assert funding.status_code == 422
    assert "add up to exactly 100%" in " ".join(error_messages(funding))
    assert (
        web.post(
            f"{base}/funding",
            data={"lead_share": "60", "funder_1": str(world.pcc.id), "share_1": "40"},
        ).status_code
        == 302
    )

    assert (
        web.post(
            f"{base}/criteria",
            data={
                "price_weight": "50",
                "price_formula": "lowest_over_price",
                "tie_break": "quality_then_price",
            },
        ).status_code
        == 302
    )
    for kind, weight in (("quality", "40"), ("social_value", "10")):
        added = web.post(
            f"{base}/questions/new",
            data={
                "kind": kind,
                "text": f"A {kind} question",
                "word_limit": "300",
                "scoring_scheme": "0 none to 4 excellent",
                "max_score": "4",
                "weight": weight,
            },
        )
        assert added.status_code == 302, error_messages(added)

    late = (utcnow() + timedelta(days=5)).astimezone(LONDON)
    too_soon = web.post(
        f"{base}/deadlines",
        data={
            "clarification_date": late.date().isoformat(),
            "clarification_time": "10:00",
            "bid_date": late.date().isoformat(),
            "bid_time": "12:00",
            "standstill_working_days": "8",
        },
    )
    assert too_soon.status_code == 422
    assert 'href="#bid_date"' in text(too_soon)
    later = (utcnow() + timedelta(days=20)).astimezone(LONDON)
    assert (
        web.post(
            f"{base}/deadlines",
            data={
                "clarification_date": late.date().isoformat(),
                "clarification_time": "10:00",
                "bid_date": later.date().isoformat(),
                "bid_time": "12:00",
                "standstill_working_days": "8",
            },
        ).status_code
        == 302
    )
    assert (
        web.post(
            f"{base}/panel", data={"user_ids": [str(u.id) for u in world.evaluators]}
        ).status_code
        == 302
    )
    uploaded = web.post(
        f"{base}/documents",
        data={"file": (io.BytesIO(b"%PDF-1.4 spec"), "spec.pdf")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 302
    check = web.get(f"{base}/check")
    assert check.status_code == 200 and "Not ready" not in text(check)
    published = web.post(f"{base}/check", data={})
    assert published.status_code == 302 and published.location.endswith(f"{base}/manage")
    db.session.expire_all()
    competition = db.session.get(Competition, competition.id)
    assert competition.status is CompetitionStatus.PUBLISHED
    manage = text(web.get(published.location))
    assert "Invited providers (3)" in manage and "Provider 1" in manage
    csv = web.get(f"{base}/invited.csv")
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).count("\n") == 4
    # Published: the sections are closed, the public page shows it.
    assert web.get(f"{base}/details").status_code == 302
    public = text(web.get(base))
    assert "A quality question" in public and "£100,000 to £500,000" in public

    cancel = web.post(f"{base}/cancel", data={"reason": ""})
    assert cancel.status_code == 422
    assert web.post(f"{base}/cancel", data={"reason": "Budget gone"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status is CompetitionStatus.CANCELLED


def test_start_is_prefilled_from_a_listing_and_a_value(web, world):
    from tests.catalogue.factories import make_listing

    listing = make_listing(world.lot, world.providers[0], region_codes=("A",))
    commit()
    web.as_user(world.buyer, world.buyer_org)
    page = text(web.get(f"/competitions/new?listing_id={listing.id}&value_pence=4500000"))
    assert 'value="45000"' in page
    assert f'value="{world.lot.id}" selected' in page
    assert f'value="region:{region("A").id}" checked' in page


def test_another_organisations_draft_is_404_and_a_provider_cannot_start(web, world):
    other = make_organisation(OrganisationType.PCC, name="Other PCC")
    other_buyer = make_member(Role.BUYER, other)
    commit()
    web.as_user(other_buyer, other)
    base = f"/competitions/{world.competition.id}"
    for path in ("/set-up", "/details", "/funding", "/criteria", "/deadlines", "/panel", "/check"):
        assert web.get(base + path).status_code == 404, path
    assert web.get(base).status_code == 404
    assert web.get(base + "/manage").status_code == 404
    web.as_user(world.provider_admins[0], world.providers[0])
    assert web.get("/competitions/new").status_code == 403


def _publish(world):
    # The factory sets the state column by column: load what it reads first, so that no
    # autoflush writes a half-published row (the world was committed and expired).
    assert world.buyer.id and world.competition.id
    publish_directly(world)


def test_the_public_list_is_open_to_anyone_signed_out(client, world):
    assert "No open competitions" in text(client.get("/competitions"))
    _publish(world)
    commit()
    listing = text(client.get("/competitions"))
    assert world.competition.title in listing and "£100,000 to £500,000" in listing
    public = client.get(f"/competitions/{world.competition.id}")
    assert public.status_code == 200 and "How will you keep tenancies going?" in text(public)
    assert "Provider 1" not in text(public)  # the invited list is not public
    assert client.get(f"/competitions/{world.competition.id}/manage").status_code in (302, 401)


def test_a_provider_not_invited_is_told_to_join(web, world):
    _publish(world)
    commit()
    web.as_user(world.outsider_admin, world.outsider)
    page = text(web.get(f"/competitions/{world.competition.id}"))
    assert "Join the arrangement to bid" in page
    web.as_user(world.provider_admins[0], world.providers[0])
    page = text(web.get(f"/competitions/{world.competition.id}"))
    assert "invited to bid" in page and "Join the arrangement" not in page


def test_publishing_without_a_csrf_token_is_refused(web, world, csrf_enabled):
    world.competition.clarification_deadline = utcnow() + timedelta(days=7)
    world.competition.bid_deadline = utcnow() + timedelta(days=14)
    commit()
    web.as_user(world.buyer, world.buyer_org)
    answer = web.post(f"/competitions/{world.competition.id}/check", data={})
    assert answer.status_code in (400, 422)
    db.session.expire_all()
    assert db.session.get(Competition, world.competition.id).status is CompetitionStatus.DRAFT
    assert not db.session.scalar(sa.select(sa.func.count(InvitedProvider.id)))


def test_documents_are_downloaded_only_by_those_who_may_see_them(web, world):
    from marketplace.competitions.services import documents

    document = documents.add_document(
        world.buyer, world.competition, "spec.pdf", io.BytesIO(b"%PDF-1.4 spec")
    )
    commit()
    path = f"/competitions/{world.competition.id}/documents/{document.id}"
    web.as_user(world.buyer, world.buyer_org)
    answer = web.get(path)
    try:
        assert answer.status_code == 200 and answer.data == b"%PDF-1.4 spec"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        answer.close()  # as a WSGI server does: closes the stored file
    web.as_user(world.provider_admins[0], world.providers[0])
    assert web.get(path).status_code == 404  # a draft: not even known to exist
    _publish(world)
    commit()
    answer = web.get(path)
    answer.close()
    assert answer.status_code == 200  # invited, once published
    web.as_user(world.outsider_admin, world.outsider)
    assert web.get(path).status_code == 404  # not invited


def test_publishing_an_incomplete_draft_shows_why_and_publishes_nothing(web, world):
    web.as_user(world.buyer, world.buyer_org)
    answer = web.post(f"/competitions/{world.competition.id}/check", data={"confirm": "yes"})
    assert answer.status_code == 422
    assert any("Enter the bid deadline" in m for m in error_messages(answer))
    db.session.expire_all()
    assert db.session.get(Competition, world.competition.id).status is CompetitionStatus.DRAFT
