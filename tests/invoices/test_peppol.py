"""UBL invoices and credit notes against Peppol BIS Billing 3.0 (CEN EN 16931 and PEPPOL rule
sets, tests/peppol): every document the builder makes passes with no fatal error (the suite's
guard checks each one, tests/peppol_guard.py); these tests also show that the validator catches a
broken one, that credit notes are UBL CreditNotes, and what the rules need of organisations."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from validate_ubl import fatal_ids, validate

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accounts.services.settings import bank_details_of
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import VatTreatment
from marketplace.invoices.models import CreditNote, Invoice, InvoiceKind, InvoiceLine
from marketplace.invoices.services import common, credit_notes, issuing, monthly_run
from marketplace.invoices.ubl import CAC, CBC, CREDIT_NOTE_NS, credit_note_xml, invoice_xml
from marketplace.orders.models import CallOff, Unit
from tests.conftest import PEPPOL_GUARD
from tests.factories import invoicing_details
from tests.invoices.test_invoice_pages import _parse, drafted, issued
from tests.orders.factories import build_orders_world

NS = {"cac": CAC, "cbc": CBC}


def fatal(document: bytes) -> set[str]:
    return fatal_ids(validate(document))


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


# ---------------------------------------------------------------------------------------------
# Each treatment, invoice and credit note


@pytest.mark.parametrize("treatment", list(VatTreatment))
def test_an_invoice_and_its_credit_note_pass_both_rule_sets(app, treatment):
    world = build_orders_world(price_pence=10_001, vat_treatment=treatment.value)
    invoice = issued(world, units=7)
    note = credit_notes.raise_credit_note(
        world.provider_admin, invoice, 2_501, "Two sessions missed"
    )
    commit()
    assert fatal(invoice_xml(invoice)) == set()
    document = credit_note_xml(note)
    assert fatal(document) == set()
    root = _parse(document)
    # A credit note is a CreditNote with positive amounts, never an invoice with negative ones.
    assert root.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    assert root.find("cbc:CreditNoteTypeCode", NS).text == "381"
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert reference.find("cbc:ID", NS).text == invoice.number
    assert root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS).text.startswith(
        f"{note.gross_pence // 100}."
    )
    assert "-" not in root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS).text


def test_the_invoice_names_both_electronic_addresses_and_the_payee_account(world):
    invoice = issued(world)
    root = _parse(invoice_xml(invoice))
    seller = root.find("cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", NS)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS)
    assert (seller.get("schemeID"), seller.text) == ("0088", world.provider.endpoint_id)
    assert (buyer.get("schemeID"), buyer.text) == ("0088", world.region.endpoint_id)
    means = root.find("cac:PaymentMeans", NS)
    assert means.find("cbc:PaymentMeansCode", NS).text == "30"
    bank = bank_details_of(world.provider)
    account = means.find("cac:PayeeFinancialAccount", NS)
    assert account.find("cbc:ID", NS).text == bank.account_number
    assert account.find("cac:FinancialInstitutionBranch/cbc:ID", NS).text == bank.sort_code
    vat = root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", NS)
    assert vat.text == world.provider.vat_number


# ---------------------------------------------------------------------------------------------
# The validator catches a broken document


def _drop(document: bytes, element: str) -> bytes:
    text = document.decode()
    broken, n = re.subn(rf"<{element}\b.*?</{element}>", "", text, count=1, flags=re.S)
    assert n == 1
    return broken.encode()


def test_the_validator_and_the_guard_catch_a_broken_document(world):
    good = invoice_xml(issued(world))
    assert fatal(good) == set()
    buyer_party = good.split(b"<cac:AccountingCustomerParty>")
    no_buyer_address = (
        buyer_party[0] + b"<cac:AccountingCustomerParty>" + _drop(buyer_party[1], "cbc:EndpointID")
    )
    assert "PEPPOL-EN16931-R010" in fatal(no_buyer_address)
    assert "BR-61" in fatal(_drop(good, "cac:PayeeFinancialAccount"))
    assert "BR-CL-18" in fatal(good.replace(b"<cbc:ID>S</cbc:ID>", b"<cbc:ID>AA</cbc:ID>"))
    # The guard that checks every document the suite makes reports such a document.
    PEPPOL_GUARD._check(None, document=_drop(good, "cac:PayeeFinancialAccount"))
    [report] = PEPPOL_GUARD.take_failures()
    assert "BR-61" in report


# ---------------------------------------------------------------------------------------------
# What the rules need of organisations


def test_an_unregistered_provider_cannot_issue_an_invoice_that_charges_vat(world):
    draft = drafted(world)
    world.provider.vat_registered, world.provider.vat_number = False, None
    with pytest.raises(BusinessRuleViolation) as refused:
        issuing.issue(world.provider_admin, draft)
    assert "not registered for VAT" in refused.value.detail
    db.session.rollback()
    assert db.session.get(Invoice, draft.id).number is None


def test_an_unregistered_providers_exempt_invoice_is_outside_the_scope_of_vat(app):
    world = build_orders_world(price_pence=5_000, vat_treatment="exempt")
    world.provider.vat_registered, world.provider.vat_number = False, None
    invoice = issued(world)
    root = _parse(invoice_xml(invoice))
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category.find("cbc:ID", NS).text == "O"
    assert root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme", NS) is None


def test_issuing_needs_the_providers_address_and_bank_account(world):
    draft = drafted(world)
    world.provider.endpoint_scheme = world.provider.endpoint_id = None
    world.provider.bank_details_sealed = world.provider.bank_account_last4 = None
    with pytest.raises(BusinessRuleViolation) as refused:
        issuing.issue(world.provider_admin, draft)
    assert "electronic address" in refused.value.detail and "bank account" in refused.value.detail


def test_a_buyer_without_an_electronic_address_gets_the_reason_not_a_broken_document(
    world, web, client
):
    invoice = issued(world)
    world.region.endpoint_scheme = world.region.endpoint_id = None
    commit()
    response = web.as_user(world.provider_admin).get(f"/invoices/{invoice.id}/invoice.xml")
    assert response.status_code == 302
    page = web.get(response.headers["Location"]).get_data(as_text=True)
    assert "has not recorded its electronic address" in page
    from tests.invoices.test_invoice_api import bearer

    api = client.get(
        f"/api/v1/invoices/{invoice.id}",
        headers={**bearer(world.provider_admin, world.provider), "Accept": "application/xml"},
    )
    assert api.status_code == 422 and api.mimetype == "application/problem+json"


def test_credit_notes_download_from_the_page_and_the_api(world, web, client):
    invoice = issued(world)
    note = credit_notes.raise_credit_note(world.provider_admin, invoice, 1_000, "Goodwill")
    commit()
    web.as_user(world.buyer)
    page = web.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    href = f"/invoices/{invoice.id}/credit-notes/{note.id}/credit-note.xml"
    assert href in page
    response = web.get(href)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert _parse(response.data).tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    assert (
        web.get(f"/invoices/{invoice.id}/credit-notes/{note.id + 99}/credit-note.xml").status_code
        == 404
    )
    from tests.invoices.test_invoice_api import bearer

    headers = bearer(world.buyer, world.region)
    url = f"/api/v1/invoices/{invoice.id}/credit-notes/{note.id}"
    as_json = client.get(url, headers=headers)
    assert as_json.status_code == 200 and as_json.get_json()["number"] == note.number
    as_xml = client.get(url, headers={**headers, "Accept": "application/xml"})
    assert as_xml.mimetype == "application/xml"
    assert _parse(as_xml.data).tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    missing = client.get(
        f"/api/v1/invoices/{invoice.id}/credit-notes/{note.id + 99}", headers=headers
    )
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


# ---------------------------------------------------------------------------------------------
# The run bills only months that have ended


def test_an_invoice_run_for_the_current_or_a_future_month_is_refused(app, world):
    now = datetime(2027, 3, 15, 12, tzinfo=UTC)
    with pytest.raises(BusinessRuleViolation) as current:
        monthly_run.run_period("2027-03", now=now)
    assert current.value.errors == {
        "period": [
            "March 2027 is the current month: only a month that has ended can be billed. "
            "Run it on or after 1 April 2027"
        ]
    }
    with pytest.raises(BusinessRuleViolation) as future:
        monthly_run.run_period("2027-05", now=now)
    assert "May 2027 is a month still to come" in future.value.detail
    # The last day of a month is still that month; the next morning it can be billed.
    with pytest.raises(BusinessRuleViolation):
        monthly_run.run_period("2027-02", now=datetime(2027, 2, 28, 23, tzinfo=UTC))
    monthly_run.run_period("2027-02", now=datetime(2027, 3, 1, 0, 30, tzinfo=UTC))


def test_the_run_command_refuses_the_current_month_with_the_reason(app, world):
    from marketplace.core.clock import london_date

    today = london_date()
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--period", f"{today:%Y-%m}"])
    assert result.exit_code == 2
    assert f"{today:%B %Y} is the current month" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 0


# ---------------------------------------------------------------------------------------------
# Property-based: any lines, any treatment, any credit


def _organisation(type_: OrganisationType, n: int, **fields) -> Organisation:
    return Organisation(
        name=f"Organisation {n}", type=type_, **{**invoicing_details(type_, n), **fields}
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.tuples(st.integers(1, 500), st.integers(1, 2_000_000)), min_size=1, max_size=25
    ),
    treatment=st.sampled_from(list(VatTreatment)),
    registered=st.booleans(),
    unit=st.sampled_from(list(Unit)),
    po_number=st.sampled_from(["", "PO-1", "NW/PO & 42 <x>"]),
    credit_share=st.fractions(0, 1),
)
def test_any_invoice_and_credit_note_pass_the_rules(
    app, lines, treatment, registered, unit, po_number, credit_share
):
    if treatment in {VatTreatment.STANDARD, VatTreatment.REDUCED, VatTreatment.ZERO}:
        registered = True  # an unregistered provider cannot list at these, nor issue them
    extra = {} if registered else {"vat_registered": False, "vat_number": None}
    provider = _organisation(OrganisationType.PROVIDER_VCSE, 1, **extra)
    buyer = _organisation(
        OrganisationType.PCC, 2, endpoint_scheme="9932", endpoint_id="GB999999973"
    )
    issued_at = datetime(2027, 2, 3, 10, tzinfo=UTC)
    invoice = Invoice(
        provider=provider,
        lead_buyer=buyer,
        call_off=CallOff(unit=unit),
        kind=InvoiceKind.MONTHLY,
        period_start=date(2027, 1, 1),
        period_end=date(2027, 1, 31),
        number="INV-000042",
        po_number=po_number,
        call_off_reference="CO-2027-000042",
        received_at=issued_at,
        due_on=date(2027, 3, 5),
        provider_vat_number=provider.vat_number,
    )
    for n, (units, price) in enumerate(lines):
        net, vat, gross = common.line_amounts(units, price, treatment)
        invoice.lines.append(
            InvoiceLine(
                description=f"Session {n} & <notes>",
                units=units,
                unit_price_pence=price,
                vat_treatment=treatment,
                net_pence=net,
                vat_pence=vat,
                gross_pence=gross,
            )
        )
    invoice.net_pence = sum(line.net_pence for line in invoice.lines)
    invoice.vat_pence = sum(line.vat_pence for line in invoice.lines)
    invoice.gross_pence = invoice.net_pence + invoice.vat_pence
    assert fatal(invoice_xml(invoice)) == set()
    credit = max(1, int(invoice.net_pence * credit_share))
    vat = credit_notes.credit_vat_pence(credit, invoice.net_pence, invoice.vat_pence, treatment)
    note = CreditNote(
        number="CN-000007",
        reason="Sessions not delivered",
        net_pence=credit,
        vat_pence=vat,
        gross_pence=credit + vat,
        created_at=issued_at + timedelta(days=3),
    )
    note.invoice = invoice
    assert fatal(credit_note_xml(note)) == set()
    db.session.expunge_all()


# ---------------------------------------------------------------------------------------------
# The demo world


def test_every_demo_invoice_and_credit_note_passes_the_rules(app, monkeypatch):
    from marketplace.demo import organisations as demo_organisations
    from marketplace.demo.world import load_demo_data
    from tests.factories import password_hash

    monkeypatch.setattr(demo_organisations, "hash_password", lambda password: password_hash())
    load_demo_data()
    commit()
    issued_invoices = db.session.scalars(sa.select(Invoice).where(Invoice.number.is_not(None)))
    made = 0
    for invoice in issued_invoices:
        assert fatal(invoice_xml(invoice)) == set(), invoice.number
        made += 1
        for note in invoice.credit_notes:
            assert fatal(credit_note_xml(note)) == set(), note.number
            made += 1
    assert made > 0
    # Every demo provider could issue: VAT registration agrees with its listings.
    from marketplace.catalogue.services.vat import listings_needing_vat_registration

    for organisation in db.session.scalars(sa.select(Organisation)):
        assert organisation.endpoint_id, organisation.name
        if organisation.is_provider:
            assert organisation.has_bank_details, organisation.name
            assert listings_needing_vat_registration(organisation) == [] or (
                organisation.vat_registered
            )
