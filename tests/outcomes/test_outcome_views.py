"""Outcome pages: the call-off page shows terms and claims, the provider claims with an upload,
the lead buyer verifies or rejects with a reason and proposes terms, evidence downloads, the
contingent liability, and who may use each page."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from marketplace.accounts.models import Role
from marketplace.core.db import commit, db
from marketplace.outcomes import queries
from marketplace.outcomes import services as outcomes
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim, OutcomeTermStatus
from tests.factories import make_member
from tests.orders.factories import build_orders_world
from tests.outcomes.factories import PDF, accepted_with_terms, term
from tests.outcomes.test_outcome_api import _claimable
from tests.pages import hidden_value


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


@pytest.fixture
def call_off(world):
    made = accepted_with_terms(world, co_funded=True)
    commit()
    _claimable(made.id)
    return made


def _claim_form(term_id, **changes):
    data = {
        "term_id": str(term_id),
        "achieved_on": (date.today() - timedelta(days=1)).isoformat(),
        "file": (io.BytesIO(PDF), "tenancy.pdf"),
        "note": "Moved in",
    }
    data.update(changes)
    return data


def test_the_provider_claims_and_the_buyer_verifies_on_the_pages(web, world, call_off):
    [row] = queries.terms_of(call_off.id)
    web.as_user(world.provider_admin, world.provider)
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Payment by results" in page.data and b"Settled accommodation" in page.data
    assert b"Claim an outcome" in page.data
    form = web.get(f"/call-offs/{call_off.id}/outcome-claims/new")
    assert form.status_code == 200 and b"Tenancy agreement signed" in form.data
    # The evidence is a file: the browser must send the form as multipart.
    assert b'enctype="multipart/form-data"' in form.data
    posted = web.post(
        f"/call-offs/{call_off.id}/outcome-claims/new",
        data=_claim_form(row.id),
        content_type="multipart/form-data",
    )
    assert posted.status_code == 302, posted.data
    claim = db.session.query(OutcomeClaim).one()
    evidence_url = f"/call-offs/{call_off.id}/outcome-claims/{claim.id}/evidence"
    own = web.get(evidence_url)
    assert own.data == PDF
    own.close()

    web.as_user(world.buyer, world.region)
    page = web.get(f"/call-offs/{call_off.id}")
    assert claim.reference.encode() in page.data and b"Verify" in page.data
    downloaded = web.get(evidence_url)
    assert downloaded.status_code == 200
    assert downloaded.headers["Cache-Control"].startswith("private")
    # The download's own headers are kept, not doubled by the app's defaults.
    assert len(downloaded.headers.getlist("Cache-Control")) == 1
    assert downloaded.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    downloaded.close()
    verified = web.post(f"/call-offs/{call_off.id}/outcome-claims/{claim.id}/verify")
    assert verified.status_code == 302
    db.session.expire_all()
    assert db.session.get(OutcomeClaim, claim.id).status == ClaimStatus.VERIFIED
    # The co-funder sees the claim but not its evidence.
    web.as_user(world.pcc_approver, world.pcc)
    assert claim.reference.encode() in web.get(f"/call-offs/{call_off.id}").data
    assert web.get(evidence_url).status_code == 404


def test_a_bad_claim_shows_the_error_summary_and_writes_nothing(web, world, call_off):
    [row] = queries.terms_of(call_off.id)
    web.as_user(world.provider_admin, world.provider)
    url = f"/call-offs/{call_off.id}/outcome-claims/new"
    early = (row.earliest_claim_on - timedelta(days=1)).isoformat()
    for data in (
        _claim_form(row.id, achieved_on=early),
        _claim_form(row.id, file=(io.BytesIO(b"MZ\x90"), "x.exe")),
        {k: v for k, v in _claim_form(row.id).items() if k != "file"},
        _claim_form("999999"),
        _claim_form(row.id, achieved_on="31 2 2020"),
    ):
        response = web.post(url, data=data, content_type="multipart/form-data")
        assert response.status_code in (404, 422), response.data
        if response.status_code == 422:
            assert b"govuk-error-summary" in response.data
    assert db.session.query(OutcomeClaim).count() == 0


def test_rejecting_needs_a_reason(web, world, call_off):
    [row] = queries.terms_of(call_off.id)
    claim = outcomes.claim_outcome(
        world.provider_admin,
        call_off,
        outcomes.ClaimDetails(term_id=row.id, achieved_on=date.today()),
        "t.pdf",
        io.BytesIO(PDF),
    )
    commit()
    web.as_user(world.buyer, world.region)
    url = f"/call-offs/{call_off.id}/outcome-claims/{claim.id}/reject"
    assert web.get(url).status_code == 200
    empty = web.post(url, data={"reason": "  "})
    assert empty.status_code == 422 and b"govuk-error-summary" in empty.data
    done = web.post(url, data={"reason": "Not the person's tenancy"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(OutcomeClaim, claim.id).status == ClaimStatus.REJECTED


def test_who_may_use_the_outcome_pages(web, world, call_off):
    [row] = queries.terms_of(call_off.id)
    claim_url = f"/call-offs/{call_off.id}/outcome-claims/new"
    web.as_user(world.buyer, world.region)
    assert web.get(claim_url).status_code == 403  # a buyer does not claim
    web.as_user(world.pcc_approver, world.pcc)
    assert web.get(f"/call-offs/{call_off.id}/outcome-terms/new").status_code == 403
    other = build_orders_world()
    commit()
    web.as_user(other.provider_admin, other.provider)
    assert web.get(claim_url).status_code == 404  # another organisation's call-off
    editor = make_member(Role.PROVIDER_EDITOR, world.provider)
    commit()
    web.as_user(editor, world.provider)
    assert web.get(claim_url).status_code == 200
    web.as_user(world.provider_admin, world.provider)
    assert web.get("/contingent-liability").status_code == 403


def test_the_lead_buyer_adds_terms_the_provider_agrees(web, world):
    from marketplace.orders.services import placing, responses
    from tests.orders.factories import details

    plain = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    responses.accept(world.provider_admin, plain)
    commit()
    web.as_user(world.buyer, world.region)
    url = f"/call-offs/{plain.id}/outcome-terms/new"
    assert b"Add payment by results" in web.get(f"/call-offs/{plain.id}").data
    data = {
        "outcome": "Settled accommodation",
        "tariff": "500.01",
        "earliest_claim_on": (world.start + timedelta(weeks=13)).isoformat(),
        "evidence_required": "Tenancy agreement",
        "cap": "2",
    }
    for bad in ({"tariff": "0"}, {"tariff": "12.345"}, {"outcome": "Found a job"}, {"cap": "0"}):
        response = web.post(url, data={**data, **bad})
        assert response.status_code == 422 and b"govuk-error-summary" in response.data
    assert web.post(url, data=data).status_code == 302
    [row] = queries.terms_of(plain.id)
    assert (row.status, row.tariff_pence) == (OutcomeTermStatus.PROPOSED, 50_001)
    web.as_user(world.provider_admin, world.provider)
    assert b"Agree outcome terms" in web.get(f"/call-offs/{plain.id}").data
    agreed = web.post(f"/call-offs/{plain.id}/outcome-terms/{row.id}/agree")
    assert agreed.status_code == 302
    db.session.expire_all()
    assert queries.terms_of(plain.id)[0].status == OutcomeTermStatus.AGREED


def test_funders_see_their_share_of_the_contingent_liability(web, world, call_off):
    web.as_user(world.buyer, world.region)
    page = web.get("/contingent-liability")
    # 2 claims × £600.01 = £1,200.02: 60% is £720.01, 40% is £480.01.
    assert page.status_code == 200 and "£720.01".encode() in page.data
    assert "£720.01".encode() in web.get("/call-offs/budgets").data
    web.as_user(world.pcc_approver, world.pcc)
    assert "£480.01".encode() in web.get("/contingent-liability").data
    assert term  # the factory is shared with the service tests


def test_the_buyer_adds_an_outcome_term_when_placing_and_checks_it(web, world):
    from marketplace.orders.models import CallOff

    web.as_user(world.buyer, world.region)
    url = f"/call-offs/new/{world.listing.id}"
    form = web.get(url)
    assert b"Payment by results (optional)" in form.data and b"Settled accommodation" in form.data
    answers = {
        "quantity": "12",
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X123456",
        "pdu": "Durham",
        "po_number": "PO-9",
        "choice_reason": "continuity",
        "outcome": "Settled accommodation",
        "outcome_tariff": "250.50",
        "outcome_earliest_claim_on": (world.start + timedelta(weeks=13)).isoformat(),
        "outcome_evidence_required": "Tenancy agreement",
        "outcome_cap": "1",
    }
    for bad in (
        {"outcome_tariff": "0"},
        {"outcome_tariff": "1.234"},
        {"outcome": "Found a job"},
        {"outcome_earliest_claim_on": (world.start - timedelta(days=1)).isoformat()},
        {"outcome_cap": ""},
    ):
        response = web.post(url, data={**answers, **bad})
        assert response.status_code == 422 and b"govuk-error-summary" in response.data, bad
    moved = web.post(url, data=answers)
    assert moved.status_code == 302
    check = web.get(moved.headers["Location"])
    assert b"Payment by results" in check.data and "£250.50".encode() in check.data
    # Back to change it: the answers come back.
    again = web.get(url + "?draft=" + moved.headers["Location"].rsplit("/", 1)[-1])
    assert b"250.50" in again.data
    placed = web.post(
        moved.headers["Location"], data={"price_seen": hidden_value(check, "price_seen")}
    )
    assert placed.status_code == 302, placed.data
    call_off = db.session.query(CallOff).one()
    [row] = queries.terms_of(call_off.id)
    assert (row.tariff_pence, row.cap, row.status) == (25_050, 1, OutcomeTermStatus.AGREED)


def test_claiming_is_offered_only_while_an_outcome_has_claims_left(web, world, call_off):
    [row] = queries.terms_of(call_off.id)
    web.as_user(world.provider_admin, world.provider)
    url = f"/call-offs/{call_off.id}/outcome-claims/new"
    for _ in range(row.cap):
        posted = web.post(url, data=_claim_form(row.id), content_type="multipart/form-data")
        assert posted.status_code == 302, posted.data
    assert db.session.query(OutcomeClaim).count() == row.cap
    # The cap is reached: the call-off page no longer offers a claim, and the form's address
    # sends the provider back to the call-off saying why, instead of a form that must refuse.
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Claim an outcome" not in page.data
    back = web.get(url)
    assert back.status_code == 302
    assert back.headers["Location"] == f"/call-offs/{call_off.id}#outcomes"
    assert b"nothing left to claim" in web.get(back.headers["Location"]).data
