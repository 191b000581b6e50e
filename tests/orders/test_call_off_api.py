"""The call-off API: placing once per Idempotency-Key, reading only what one is party to, each
transition, delivery, budgets, and bad input answered with problem+json."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.accreditation.models import Arrangement, ArrangementStatus
from marketplace.accreditation.services.arrangements import change_arrangement_status
from marketplace.catalogue.services.listings import pause_listing
from marketplace.catalogue.services.prices import set_price
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.orders.models import CallOff
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world


@pytest.fixture
def world(app):
    return build_orders_world()


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def order(world, **changes) -> dict:
    body = {
        "listing_id": world.listing.id,
        "quantity": 10,
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X123456",
        "pdu": "Durham",
        "po_number": "PO-77",
        "choice_reason": "only_provider_in_area",
    }
    body.update(changes)
    return body


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))


def test_a_buyer_places_reads_and_the_provider_accepts_and_records_delivery(client, world):
    buyer = bearer(world.buyer, world.region)
    response = client.post("/api/v1/orders", json=order(world), headers=buyer)
    assert response.status_code == 201, response.json
    placed = response.json
    assert placed["reference"].startswith("CO-") and placed["status"] == "sent"
    assert placed["gross_pence"] == 100_000 and placed["funders"][0]["share_pence"] == 100_000
    assert response.headers["Location"].endswith(f"/api/v1/orders/{placed['id']}")

    provider = bearer(world.provider_admin, world.provider)
    listed = client.get("/api/v1/orders", headers=provider).json
    assert [item["id"] for item in listed["items"]] == [placed["id"]]
    accepted = client.post(f"/api/v1/orders/{placed['id']}/accept", headers=provider)
    assert accepted.status_code == 200 and accepted.json["status"] == "accepted"
    delivery = client.post(
        f"/api/v1/orders/{placed['id']}/deliveries",
        json={"delivered_on": world.start.isoformat(), "units": 11, "attendance": "attended"},
        headers=provider,
    )
    assert delivery.status_code == 422  # the start is in the future, and 11 > 10
    assert delivery.headers["Content-Type"] == PROBLEM_JSON

    budgets = client.get("/api/v1/budgets", headers=buyer).json
    [budget] = budgets["items"]
    assert budget["committed_pence"] == 100_000 and budget["available_pence"] == 9_900_000


def test_the_same_idempotency_key_answers_with_the_same_call_off(client, world):
    buyer = bearer(world.buyer, world.region)
    headers = {**buyer, "Idempotency-Key": "order-1"}
    first = client.post("/api/v1/orders", json=order(world), headers=headers)
    again = client.post("/api/v1/orders", json=order(world), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["id"] == again.json["id"] and count() == 1
    other = client.post("/api/v1/orders", json=order(world, quantity=9), headers=headers)
    assert other.status_code == 422
    assert "already used for a different request" in other.json["detail"]
    assert count() == 1
    fresh = client.post(
        "/api/v1/orders", json=order(world), headers={**buyer, "Idempotency-Key": "order-2"}
    )
    assert fresh.status_code == 201 and count() == 2


def test_bad_input_is_a_clear_4xx_and_writes_nothing(client, world):
    buyer = bearer(world.buyer, world.region)
    cases = [
        order(world, crn="123"),
        order(world, quantity=0),
        order(world, quantity=1.5),
        order(world, end_date="2020-01-01"),
        order(world, shares=[{"organisation_id": world.region.id, "basis_points": 9_999}]),
        order(world, choice_reason="because"),
        {"listing_id": world.listing.id},
    ]
    for body in cases:
        response = client.post("/api/v1/orders", json=body, headers=buyer)
        assert response.status_code == 422, (body, response.json)
        assert response.headers["Content-Type"] == PROBLEM_JSON
    assert count() == 0


def test_another_organisation_cannot_see_or_act_on_a_call_off(client, world):
    placed = client.post(
        "/api/v1/orders", json=order(world), headers=bearer(world.buyer, world.region)
    ).json
    stranger_org = make_organisation()
    stranger = bearer(make_member(Role.PROVIDER_ADMIN, stranger_org), stranger_org)
    assert client.get(f"/api/v1/orders/{placed['id']}", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/orders/{placed['id']}/accept", headers=stranger).status_code == 404
    assert client.get("/api/v1/orders", headers=stranger).json["items"] == []
    # The buyer cannot accept for the provider, and a provider has no budgets.
    buyer = bearer(world.buyer, world.region)
    assert client.post(f"/api/v1/orders/{placed['id']}/accept", headers=buyer).status_code == 403
    provider = bearer(world.provider_admin, world.provider)
    assert client.get("/api/v1/budgets", headers=provider).status_code == 422
    assert client.get("/api/v1/orders").status_code == 401


def test_cancelling_a_completed_call_off_is_refused(client, world):
    buyer = bearer(world.buyer, world.region)
    placed = client.post("/api/v1/orders", json=order(world), headers=buyer).json
    cancel = client.post(
        f"/api/v1/orders/{placed['id']}/cancel", json={"reason": "duplicate"}, headers=buyer
    )
    assert cancel.status_code == 200 and cancel.json["status"] == "cancelled"
    again = client.post(
        f"/api/v1/orders/{placed['id']}/cancel", json={"reason": "duplicate"}, headers=buyer
    )
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert again.json["detail"] == "This call-off has already been cancelled"


def test_the_service_and_its_staff_are_kept_by_the_worker_until_they_change(
    client, world, count_queries
):
    buyer = bearer(world.buyer, world.region)
    first = client.post("/api/v1/orders", json=order(world, po_number="PO-1"), headers=buyer)
    assert first.status_code == 201 and first.json["unit_price_pence"] == 10_000
    # The next call-off reads neither the service nor the provider's staff to email.
    body = order(world, po_number="PO-2")
    with count_queries() as again:
        second = client.post("/api/v1/orders", json=body, headers=buyer)
    assert second.status_code == 201
    assert not any("FROM listings" in s or "FROM users" in s for s in again.statements)

    # A new price from today is the one the next call-off locks in.
    set_price(world.provider_admin, world.listing, 12_000, date.today())
    commit()
    third = client.post("/api/v1/orders", json=order(world, po_number="PO-3"), headers=buyer)
    assert third.json["unit_price_pence"] == 12_000

    # A new member of the provider's staff is told of the next one.
    editor = make_member(Role.PROVIDER_EDITOR, world.provider)
    commit()
    fourth = client.post("/api/v1/orders", json=order(world, po_number="PO-4"), headers=buyer)
    assert fourth.status_code == 201
    told = db.session.scalars(
        sa.select(Notification.to_email).where(Notification.template == "orders_sent_to_provider")
    ).all()
    assert told.count(editor.email) == 1 and told.count(world.provider_admin.email) == 4

    # Suspended, then paused: nothing more can be bought.
    authority = make_member(Role.AUTHORITY_ADMIN)
    arrangement = db.session.get(Arrangement, world.listing.lot.arrangement_id)
    change_arrangement_status(authority, arrangement, ArrangementStatus.SUSPENDED, "Audit")
    commit()
    refused = client.post("/api/v1/orders", json=order(world, po_number="PO-5"), headers=buyer)
    assert refused.status_code == 422 and "not live" in str(refused.json["errors"])
    change_arrangement_status(authority, arrangement, ArrangementStatus.LIVE, "Done")
    pause_listing(world.provider_admin, world.listing)
    commit()
    gone = client.post("/api/v1/orders", json=order(world, po_number="PO-6"), headers=buyer)
    assert gone.status_code == 404
    assert count() == 4


def test_placing_a_call_off_takes_a_fixed_few_statements_and_answers_from_what_it_wrote(
    client, world, count_queries
):
    buyer = bearer(world.buyer, world.region)
    client.post("/api/v1/orders", json=order(world, po_number="PO-WARM"), headers=buyer)
    body = order(world)
    with count_queries() as placing:
        response = client.post("/api/v1/orders", json=body, headers=buyer)
    assert response.status_code == 201, response.json
    # The generations (the token with its person and their roles, the service and the
    # provider's staff to email are this worker's copies, read a moment ago); the price in
    # force with its version and VAT treatment, read in the placing transaction (money never
    # comes from the worker's copy); the lock on the buyer's total for the service; the budget
    # beside that total; the call-off's key before it is written, so that its reference is
    # written with it (PostgreSQL: from its sequence; SQLite: under the write lock, one more
    # than the highest); the unit of work's INSERT of the call-off, its funder, its budget part
    # for the year, the audit event and the email; then the budget update.
    on_postgresql = db.engine.dialect.name == "postgresql"
    most = 11 if on_postgresql else 12
    assert placing.count <= most, [s[:70] for s in placing.statements]
    # The budget is taken from last, in one conditional UPDATE: its row is locked only from
    # there to the commit. No organisation's row is locked for the whole placement.
    last = " ".join(placing.statements[-1].split())
    assert last.startswith("UPDATE budgets SET committed_pence=")
    # The reference is written with the row, never patched in afterwards.
    assert not any(s.startswith("UPDATE call_offs") for s in placing.statements)
    assert not any(" FOR UPDATE" in s or " FOR NO KEY UPDATE" in s for s in placing.statements)
    # Nothing is read back once it is written: the answer is what was written. (Before it, the
    # buyer's counted total is a sum, and SQLite's next key the highest.)
    written = next(
        n for n, s in enumerate(placing.statements) if s.startswith("INSERT INTO call_offs ")
    )
    assert not any("FROM call_offs" in s for s in placing.statements[written:])
    assert not any(
        "FROM call_offs" in s and "sum(" not in s and "max(" not in s
        for s in placing.statements[:written]
    )
    placed = response.json
    assert placed["service_title"] == world.listing.title
    assert placed["provider_name"] == world.provider.name
    assert placed["lead_buyer_name"] == world.region.name
    stored = db.session.get(CallOff, placed["id"])
    assert (stored.reference, stored.status.value) == (placed["reference"], placed["status"])
    assert stored.gross_pence == placed["gross_pence"]


def test_emailing_the_provider_straight_after_the_commit_reads_nothing_back(
    app, client, world, count_queries, monkeypatch
):
    monkeypatch.setitem(app.config, "SEND_EMAIL_AFTER_COMMIT", True)  # printed to the console
    buyer = bearer(world.buyer, world.region)
    client.post("/api/v1/orders", json=order(world, po_number="PO-WARM"), headers=buyer)
    with count_queries() as placing:
        response = client.post("/api/v1/orders", json=order(world), headers=buyer)
    assert response.status_code == 201, response.json
    # After the budget update and the commit: one UPDATE claims the emails, and the answer is
    # made from the objects as written, not reloaded after that second commit.
    after = placing.statements[
        next(n for n, s in enumerate(placing.statements) if "UPDATE budgets SET" in s) + 1 :
    ]
    assert [s.split()[:2] for s in after] == [["UPDATE", "notifications"]]
    emails = db.session.scalars(
        sa.select(Notification).where(Notification.template == "orders_sent_to_provider")
    ).all()
    assert emails and all(e.status == NotificationStatus.SENT for e in emails)
    assert response.json["reference"].startswith("CO-")
