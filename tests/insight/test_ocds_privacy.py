"""No personal data in the OCDS feed: every CRN, PDU, PO number and note, and every person's
name and email in the database, is searched for in every endpoint's answer (every release
page, every record, the bulk file) and none is found. Demo world plus the scenarios."""

from __future__ import annotations

import gzip

import sqlalchemy as sa

from marketplace.accounts.models import Invitation, User
from marketplace.core.db import db
from marketplace.invoices.models import Invoice
from marketplace.orders.models import CallOff
from tests.insight.ocds_scenarios import awarded_competition, paid_co_funded_call_off


def personal_strings() -> set[str]:
    values: set[str] = set()
    for crn, pdu, po_number, notes in db.session.execute(
        sa.select(CallOff.crn, CallOff.pdu, CallOff.po_number, CallOff.notes_for_provider)
    ):
        values |= {crn, pdu, po_number, notes}
    values |= set(db.session.scalars(sa.select(Invoice.po_number)))
    for name, email in db.session.execute(sa.select(User.name, User.email)):
        values |= {name, email}
    for name, email in db.session.execute(sa.select(Invitation.name, Invitation.email)):
        values |= {name, email}
    return {value for value in values if value and len(value.strip()) >= 4}


def whole_feed(client) -> str:
    texts = []
    url = "/api/v1/ocds/releases?limit=50"
    ocids = set()
    while url:
        response = client.get(url)
        texts.append(response.get_data(as_text=True))
        package = response.get_json()
        ocids |= {release["ocid"] for release in package["releases"]}
        url = package.get("links", {}).get("next")
    for ocid in sorted(ocids):
        response = client.get(f"/api/v1/ocds/records/{ocid}")
        assert response.status_code == 200
        texts.append(response.get_data(as_text=True))
    bulk = client.get("/api/v1/ocds/bulk/releases.jsonl.gz", buffered=True)
    texts.append(gzip.decompress(bulk.get_data()).decode())
    return "\n".join(texts), ocids


def test_no_crn_pdu_po_number_name_or_email_is_ever_published(app, client):
    app.test_cli_runner().invoke(args=["demo", "load"], catch_exceptions=False)
    world, call_off, _ = paid_co_funded_call_off()
    awarded_competition()
    secrets = personal_strings()
    # The scenario's own personal data is among what is searched for.
    assert {
        call_off.crn,
        call_off.pdu,
        call_off.po_number,
        world.buyer.name,
        world.buyer.email,
    } <= (secrets)
    crns = set(db.session.scalars(sa.select(CallOff.crn)))
    assert len(crns) > 5 and len(secrets) > 50  # the search has something to find
    text, ocids = whole_feed(client)
    assert len(ocids) > 10
    assert world.provider.name in text and call_off.reference in text  # the search is real
    # The feed escapes non-ASCII as-is (ensure_ascii off in the bulk file, on in the API):
    # search both forms.
    import json

    found = sorted(value for value in secrets if value in text or json.dumps(value)[1:-1] in text)
    assert found == []
