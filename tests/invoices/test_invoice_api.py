"""The invoice API: who sees what, each step, and bad input answered with problem+json."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services import monthly_run
from tests.factories import after_month, make_member
from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
from tests.orders.factories import build_orders_world
from tests.orders.test_call_off_api import bearer


@pytest.fixture
def drafted(app):
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 3)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    commit()
    invoice_id = db.session.scalar(sa.select(Invoice.id))
    return world, invoice_id


def test_the_provider_issues_and_the_buyer_disputes_validates_and_records_payment(client, drafted):
    world, invoice_id = drafted
    provider = bearer(world.provider_admin, world.provider)
    buyer = bearer(world.buyer, world.region)
    # A draft is the provider's own.
    assert client.get(f"/api/v1/invoices/{invoice_id}", headers=buyer).status_code == 404
    assert client.get("/api/v1/invoices", headers=buyer).json["items"] == []
    listed = client.get("/api/v1/invoices?status=draft", headers=provider).json
    assert [item["id"] for item in listed["items"]] == [invoice_id]
    assert listed["items"][0]["gross_pence"] == 44_442 and len(listed["items"][0]["lines"]) == 1

    issued = client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=provider)
    assert issued.status_code == 200, issued.json
    assert (issued.json["number"], issued.json["status"]) == ("INV-000001", "issued")
    assert issued.json["due_on"] is not None

    disputed = client.post(
        f"/api/v1/invoices/{invoice_id}/dispute", json={"reason": "Two sessions"}, headers=buyer
    )
    assert disputed.status_code == 200 and disputed.json["dispute_reason"] == "Two sessions"
    seen = client.get(f"/api/v1/invoices/{invoice_id}", headers=provider).json
    assert seen["status"] == "disputed" and seen["dispute_reason"] == "Two sessions"

    validated = client.post(f"/api/v1/invoices/{invoice_id}/validate", headers=buyer)
    assert validated.status_code == 200 and validated.json["resolved_at"] is not None
    paid_on = validated.json["received_at"][:10]
    paid = client.post(
        f"/api/v1/invoices/{invoice_id}/mark-paid",
        json={"payment_reference": "REM-77", "paid_on": paid_on},
        headers=buyer,
    )
    assert paid.status_code == 200, paid.json
    assert (paid.json["status"], paid.json["payment_method"]) == ("paid", "bacs")


def test_wrong_roles_and_other_organisations_are_refused(client, drafted):
    world, invoice_id = drafted
    buyer = bearer(world.buyer, world.region)
    editor = bearer(make_member(Role.PROVIDER_EDITOR, world.provider), world.provider)
    outsider = bearer(world.pcc_approver, world.pcc)
    refused = client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=editor)
    assert refused.status_code == 403 and refused.headers["Content-Type"] == PROBLEM_JSON
    for headers in (buyer, outsider):
        response = client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=headers)
        assert response.status_code == 404 and response.headers["Content-Type"] == PROBLEM_JSON
    assert client.get(f"/api/v1/invoices/{invoice_id}", headers=outsider).status_code == 404
    assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.DRAFT


def test_bad_input_is_a_problem_and_changes_nothing(client, drafted):
    world, invoice_id = drafted
    provider = bearer(world.provider_admin, world.provider)
    buyer = bearer(world.buyer, world.region)
    client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=provider)
    for body in ({}, {"reason": ""}, {"reason": "x" * 2_001}, {"reason": 7}):
        response = client.post(f"/api/v1/invoices/{invoice_id}/dispute", json=body, headers=buyer)
        assert response.status_code == 422 and response.headers["Content-Type"] == PROBLEM_JSON
    not_validated = client.post(
        f"/api/v1/invoices/{invoice_id}/mark-paid",
        json={"payment_reference": "REM-1", "paid_on": london_date().isoformat()},
        headers=buyer,
    )
    assert not_validated.status_code == 409  # a state the invoice is in, not bad input
    assert not_validated.json["detail"] == "This invoice is issued, so it cannot be paid"
    bad_date = client.post(
        f"/api/v1/invoices/{invoice_id}/mark-paid",
        json={"payment_reference": "REM-1", "paid_on": "31/02/2026"},
        headers=buyer,
    )
    assert bad_date.status_code == 422
    assert client.get("/api/v1/invoices?status=nonsense", headers=buyer).status_code == 422
    assert client.get("/api/v1/invoices/99999999", headers=buyer).status_code == 404
    db.session.expire_all()
    assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.ISSUED
