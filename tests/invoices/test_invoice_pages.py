"""Invoice pages: each side's list and actions, bad input on the forms, downloads (CSV, UBL,
printable), credit notes, the VAT number, a co-funder's recharge statement and the reports."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from xml.etree import ElementTree as ET

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.settings import set_vat_registration
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.invoices.models import CreditNote, Invoice, InvoiceKind, InvoiceStatus
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from marketplace.invoices.ubl import CAC, CBC, INVOICE_NS
from marketplace.orders.services import delivery, funding, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from tests.factories import after_month, make_member, make_organisation
from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
from tests.orders.factories import build_orders_world, details, shares


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def drafted(world, units=3, **fields):
    call_off = accepted_call_off(world, **fields)
    deliver(world, call_off, call_off.start_date, units)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    commit()
    return db.session.scalar(
        sa.select(Invoice).where(Invoice.call_off_id == call_off.id).order_by(Invoice.id.desc())
    )


def issued(world, **fields):
    invoice = drafted(world, **fields)
    issuing.issue(world.provider_admin, invoice)
    commit()
    return invoice


def error_summary(html: str) -> str:
    assert "govuk-error-summary" in html
    return html.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]


# ---------------------------------------------------------------------------------------------
# The provider issues, the buyer validates, disputes and pays


def test_the_provider_issues_a_draft_from_its_page_and_the_buyer_never_sees_drafts(world, web):
    invoice = drafted(world)
    page = web.as_user(world.provider_admin).get("/invoices/").get_data(as_text=True)
    assert f"Draft {invoice.id}" in page and "£444.42" in page
    assert web.as_user(world.buyer).get(f"/invoices/{invoice.id}").status_code == 404
    assert "received no invoices yet" in web.get("/invoices/").get_data(as_text=True)

    web.as_user(world.provider_admin)
    shown = web.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Issue invoice" in shown and "This draft has not been sent" in shown
    response = web.post(f"/invoices/{invoice.id}/issue")
    assert response.status_code == 302
    db.session.expire_all()
    assert (invoice.status, invoice.number) == (InvoiceStatus.ISSUED, "INV-000001")
    page = web.as_user(world.buyer).get("/invoices/").get_data(as_text=True)
    assert "INV-000001" in page and "Harbour Housing" in page


def test_an_editor_cannot_issue_and_another_organisation_gets_not_found(world, web):
    invoice = drafted(world)
    editor = make_member(Role.PROVIDER_EDITOR, world.provider)
    stranger = make_member(Role.PROVIDER_ADMIN, make_organisation(OrganisationType.PROVIDER_VCSE))
    other_buyer = make_member(Role.BUYER, make_organisation(OrganisationType.PCC))
    commit()
    assert web.as_user(editor).get(f"/invoices/{invoice.id}").status_code == 200
    assert "Issue invoice" not in web.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert web.post(f"/invoices/{invoice.id}/issue").status_code == 403
    assert web.as_user(stranger).get(f"/invoices/{invoice.id}").status_code == 404
    assert web.post(f"/invoices/{invoice.id}/issue").status_code == 404
    issuing.issue(world.provider_admin, invoice)
    commit()
    for path in ("", "/invoice.csv", "/invoice.xml", "/print"):
        assert web.as_user(other_buyer).get(f"/invoices/{invoice.id}{path}").status_code == 404
    assert web.post(f"/invoices/{invoice.id}/validate").status_code == 404
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.ISSUED


def test_the_buyer_disputes_with_a_reason_the_provider_sees_then_validates_and_pays(world, web):
    invoice = issued(world)
    web.as_user(world.buyer)
    refused = web.post(f"/invoices/{invoice.id}/dispute", data={"reason": "  "})
    assert refused.status_code == 422
    assert "Enter why you dispute the invoice" in error_summary(refused.get_data(as_text=True))
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.ISSUED

    assert (
        web.post(
            f"/invoices/{invoice.id}/dispute", data={"reason": "Only 2 sessions happened"}
        ).status_code
        == 302
    )
    seen = web.as_user(world.provider_admin).get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Only 2 sessions happened" in seen and "Issue a credit note" in seen

    web.as_user(world.buyer)
    assert web.post(f"/invoices/{invoice.id}/validate").status_code == 302
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.VALIDATED and invoice.resolved_at is not None

    received = invoice.received_at.date()
    for data, message in [
        ({"payment_reference": "", "paid_on": "1 1 2026"}, "Enter the remittance reference"),
        ({"payment_reference": "R1", "paid_on": "31 2 2026"}, "must be a real date"),
        (
            {"payment_reference": "R1", "paid_on": f"{received - timedelta(days=1):%d %m %Y}"},
            "cannot be before the invoice was received",
        ),
        (
            {"payment_reference": "R1", "paid_on": f"{date.today() + timedelta(days=2):%d %m %Y}"},
            "today or in the past",
        ),
    ]:
        response = web.post(f"/invoices/{invoice.id}/mark-paid", data=data)
        assert message in error_summary(response.get_data(as_text=True))
        db.session.expire_all()
        assert invoice.status == InvoiceStatus.VALIDATED
    today = date.today()
    paid = web.post(
        f"/invoices/{invoice.id}/mark-paid",
        data={"payment_reference": "REM-1", "paid_on": f"{today.day} {today.month} {today.year}"},
    )
    assert paid.status_code == 302
    db.session.expire_all()
    assert (invoice.status, invoice.payment_reference) == (InvoiceStatus.PAID, "REM-1")


def test_overdue_invoices_are_flagged_to_the_buyer_and_shown_to_the_provider(world, web):
    invoice = issued(world)
    invoice.due_on = date.today() - timedelta(days=3)
    commit()
    buyer_page = web.as_user(world.buyer).get("/invoices/").get_data(as_text=True)
    assert "1 invoice is overdue" in buyer_page and "govuk-tag--red" in buyer_page
    only = web.get("/invoices/?overdue=1").get_data(as_text=True)
    assert "INV-000001" in only
    shown = web.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "3 days late" in shown
    provider_page = web.as_user(world.provider_admin).get("/invoices/").get_data(as_text=True)
    assert "1 invoice is overdue" in provider_page


def test_an_invoice_credited_to_nothing_is_not_counted_or_listed_as_overdue(world, web):
    late, credited = issued(world), issued(world)
    for invoice in (late, credited):
        invoice.due_on = date.today() - timedelta(days=3)
    # Credited in full (net; the credit note takes off exactly the VAT): nothing is owed.
    credit_notes.raise_credit_note(world.provider_admin, credited, credited.net_pence, "Cancelled")
    commit()
    assert credited.amount_due_pence == 0 and late.amount_due_pence > 0

    buyer_page = web.as_user(world.buyer).get("/invoices/").get_data(as_text=True)
    assert "1 invoice is overdue" in buyer_page
    only = web.get("/invoices/?overdue=1").get_data(as_text=True)
    assert late.number in only and credited.number not in only
    provider_page = web.as_user(world.provider_admin).get("/invoices/").get_data(as_text=True)
    assert "1 invoice is overdue" in provider_page


# ---------------------------------------------------------------------------------------------
# Credit notes


def test_a_credit_note_takes_an_amount_off_and_cannot_exceed_the_invoice(world, web):
    invoice = issued(world)  # 3 × £123.45 = £370.35 + £74.07 VAT
    web.as_user(world.provider_admin)
    for amount, message in [
        ("370.36", "cannot be more than what is left on the invoice: £370.35"),
        ("abc", "as a number in pounds and pence"),
        ("0", "must be more than £0"),
        ("", "Enter the amount to credit"),
    ]:
        response = web.post(
            f"/invoices/{invoice.id}/credit-notes/new", data={"amount": amount, "reason": "X"}
        )
        assert message in error_summary(response.get_data(as_text=True)), amount
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditNote)) == 0

    response = web.post(
        f"/invoices/{invoice.id}/credit-notes/new",
        data={"amount": "123.45", "reason": "One session did not happen"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    [note] = invoice.credit_notes
    assert (note.number, note.net_pence, note.vat_pence) == ("CN-000001", 12_345, 2_469)
    assert invoice.amount_due_pence == 44_442 - 14_814
    # Crediting the rest takes off exactly the VAT that is left: the invoice nets to nothing.
    credit_notes.raise_credit_note(world.provider_admin, invoice, 24_690, "Cancelled")
    commit()
    assert invoice.amount_due_pence == 0
    assert sum(n.vat_pence for n in invoice.credit_notes) == invoice.vat_pence
    with pytest.raises(BusinessRuleViolation):
        credit_notes.raise_credit_note(world.provider_admin, invoice, 1, "Nothing left")
    shown = web.as_user(world.buyer).get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "CN-000002" in shown and "One session did not happen" in shown
    assert web.post(f"/invoices/{invoice.id}/credit-notes/new").status_code == 403


def test_a_draft_cannot_be_credited(world):
    invoice = drafted(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        credit_notes.raise_credit_note(world.provider_admin, invoice, 100, "Wrong")
    assert "nothing to credit" in refused.value.errors["status"][0]


# ---------------------------------------------------------------------------------------------
# Completion


def test_completing_a_call_off_drafts_what_is_left_unbilled_whatever_the_month(world):
    call_off = accepted_call_off(world)
    first = call_off.start_date
    deliver(world, call_off, first, 2)
    monthly_run.run_period(period_of(first), now=after_month(first))
    later = first + timedelta(days=40)
    deliver(world, call_off, later, 3)
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(
            delivered_on=later, units=0, attendance="did_not_attend", absence_reason="acceptable"
        ),
        now=utcnow() + timedelta(days=60),
    )
    delivery.complete(world.provider_admin, call_off, "Done", now=utcnow() + timedelta(days=60))
    monthly, completion = db.session.scalars(
        sa.select(Invoice).where(Invoice.call_off_id == call_off.id).order_by(Invoice.id)
    ).all()
    assert monthly.kind == InvoiceKind.MONTHLY and [ln.units for ln in monthly.lines] == [2]
    assert completion.kind == InvoiceKind.COMPLETION
    assert [ln.units for ln in completion.lines] == [3]
    assert completion.period_start == completion.period_end == later
    # Nothing is left, so a later run of that month bills nothing more.
    assert monthly_run.run_period(period_of(later), now=after_month(later)).created == 0


# ---------------------------------------------------------------------------------------------
# Downloads


def test_the_csv_and_the_printable_page_carry_the_references_and_the_vat_number(world, web):
    set_vat_registration(world.provider_admin, world.provider, True, "gb 123 4567 89")
    invoice = issued(world, po_number="PO-7788")
    rows = list(
        csv.reader(
            io.StringIO(
                web.as_user(world.buyer)
                .get(f"/invoices/{invoice.id}/invoice.csv")
                .get_data(as_text=True)
            )
        )
    )
    header = dict(row for row in rows if len(row) == 2)
    assert header["Invoice"] == "INV-000001" and header["Purchase order"] == "PO-7788"
    assert header["Provider VAT number"] == "GB123456789"
    assert header["Call-off"] == invoice.call_off_reference
    assert ["Total", "", "", "", "", "", "370.35", "74.07", "444.42"] in rows
    printable = web.get(f"/invoices/{invoice.id}/print").get_data(as_text=True)
    assert "VAT registration number GB123456789" in printable and "PO-7788" in printable


def _ubl(web, invoice) -> ET.Element:
    response = web.get(f"/invoices/{invoice.id}/invoice.xml")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    return _parse(response.data)


def _parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - the service's own output, not untrusted input


def _text(root, path) -> str:
    element = root.find(path, {"cac": CAC, "cbc": CBC})
    assert element is not None, path
    return element.text


# The elements Peppol BIS Billing 3.0 requires of every invoice (and of every line), in the
# UBL 2.1 order; no schema package is available offline, so these are checked one by one.
REQUIRED = [
    "cbc:CustomizationID",
    "cbc:ProfileID",
    "cbc:ID",
    "cbc:IssueDate",
    "cbc:InvoiceTypeCode",
    "cbc:DocumentCurrencyCode",
    "cbc:BuyerReference",
    "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
    "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
    "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
    "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
    "cac:TaxTotal/cbc:TaxAmount",
    "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount",
    "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID",
    "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cac:TaxScheme/cbc:ID",
    "cac:LegalMonetaryTotal/cbc:LineExtensionAmount",
    "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount",
    "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",
    "cac:LegalMonetaryTotal/cbc:PayableAmount",
    "cac:InvoiceLine/cbc:ID",
    "cac:InvoiceLine/cbc:InvoicedQuantity",
    "cac:InvoiceLine/cbc:LineExtensionAmount",
    "cac:InvoiceLine/cac:Item/cbc:Name",
    "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID",
    "cac:InvoiceLine/cac:Price/cbc:PriceAmount",
]
UBL_ORDER = [
    "CustomizationID",
    "ProfileID",
    "ID",
    "IssueDate",
    "DueDate",
    "InvoiceTypeCode",
    "DocumentCurrencyCode",
    "BuyerReference",
    "InvoicePeriod",
    "OrderReference",
    "ContractDocumentReference",
    "AccountingSupplierParty",
    "AccountingCustomerParty",
    "PaymentMeans",
    "PaymentTerms",
    "TaxTotal",
    "LegalMonetaryTotal",
    "InvoiceLine",
]


def test_the_ubl_invoice_has_every_element_peppol_requires_and_sums_that_agree(world, web):
    set_vat_registration(world.provider_admin, world.provider, True, "GB123456789")
    invoice = issued(world, po_number="PO-42")
    root = _ubl(web.as_user(world.buyer), invoice)
    assert root.tag == f"{{{INVOICE_NS}}}Invoice"
    for path in REQUIRED:
        assert _text(root, path), path
    names = [child.tag.split("}")[1] for child in root]
    assert names == sorted(names, key=UBL_ORDER.index)
    assert _text(root, "cbc:BuyerReference") == "PO-42"
    assert _text(root, "cac:ContractDocumentReference/cbc:ID") == invoice.call_off_reference
    assert _text(root, "cbc:InvoiceTypeCode") == "380"
    assert (
        _text(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID")
        == "GB123456789"
    )
    assert _text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == "S"
    assert _text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == "20"
    # BR-CO-10, BR-CO-15: the line amounts sum to the total, and net plus VAT is the gross.
    lines = [
        _text(line, "cbc:LineExtensionAmount")
        for line in root.findall("cac:InvoiceLine", {"cac": CAC})
    ]
    assert lines == ["370.35"]
    assert _text(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount") == "370.35"
    assert _text(root, "cac:TaxTotal/cbc:TaxAmount") == "74.07"
    assert _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == "444.42"


@pytest.mark.parametrize(
    "treatment,code,percent",
    [
        ("reduced", "S", "5"),  # EN 16931 has no AA: a reduced rate is S at its rate
        ("zero", "Z", "0"),
        ("exempt", "E", "0"),
        ("outside_scope", "O", None),
    ],
)
def test_each_vat_treatment_has_its_category_code(app, web, treatment, code, percent):
    world = build_orders_world(price_pence=10_000, vat_treatment=treatment)
    set_vat_registration(world.provider_admin, world.provider, True, "GB123456789")
    invoice = issued(world)
    root = _ubl(web.as_user(world.provider_admin), invoice)
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", {"cac": CAC})
    assert category.find("cbc:ID", {"cbc": CBC}).text == code
    found = category.find("cbc:Percent", {"cbc": CBC})
    assert (found.text if found is not None else None) == percent
    line_code = root.find(
        "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:ID", {"cac": CAC, "cbc": CBC}
    )
    assert line_code.text == code
    if code in ("E", "O"):
        assert category.find("cbc:TaxExemptionReason", {"cbc": CBC}) is not None
    # BR-O-02: no seller VAT identifier on an invoice outside the scope of VAT.
    tax_scheme = root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme", {"cac": CAC})
    assert (tax_scheme is None) == (code == "O")


def test_a_draft_has_no_ubl_form(world, web):
    invoice = drafted(world)
    assert (
        web.as_user(world.provider_admin).get(f"/invoices/{invoice.id}/invoice.xml").status_code
        == 404
    )


def test_the_api_answers_ubl_when_asked_for_xml(client, world):
    from tests.orders.test_call_off_api import bearer

    invoice = issued(world)
    headers = {**bearer(world.buyer, world.region), "Accept": "application/xml"}
    response = client.get(f"/api/v1/invoices/{invoice.id}", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert _text(_parse(response.data), "cbc:ID") == "INV-000001"
    as_json = client.get(
        f"/api/v1/invoices/{invoice.id}", headers=bearer(world.buyer, world.region)
    )
    assert as_json.json["number"] == "INV-000001"
    draft = drafted(world)
    provider = {**bearer(world.provider_admin, world.provider), "Accept": "application/xml"}
    refused = client.get(f"/api/v1/invoices/{draft.id}", headers=provider)
    assert refused.status_code == 406 and refused.mimetype == "application/problem+json"


# ---------------------------------------------------------------------------------------------
# Recharges and reports


def test_the_pcc_recharge_statement_shows_its_40_percent_of_each_invoice(world, web):
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 6_000), (world.pcc, 4_000))),
    )
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    deliver(world, call_off, call_off.start_date, 3)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    invoice = db.session.scalar(sa.select(Invoice))
    issuing.issue(world.provider_admin, invoice)
    credit_notes.raise_credit_note(world.provider_admin, invoice, 12_345, "One session missed")
    commit()
    web.as_user(world.pcc_approver)
    page = web.get("/invoices/recharges").get_data(as_text=True)
    # £444.42 at 40% is £177.77; the credit note of £148.14 at 40% is £59.26 back.
    assert "INV-000001" in page and "£177.77" in page and "CN-000001" in page
    assert "-£59.26" in page and "£118.51" in page
    rows = list(
        csv.reader(io.StringIO(web.get("/invoices/recharges?format=csv").get_data(as_text=True)))
    )
    assert [r[0] for r in rows[1:]] == ["INV-000001", "CN-000001"]
    assert [r[-1] for r in rows[1:]] == ["177.77", "-59.26"]
    bad = web.get("/invoices/recharges?period=2026-H3")
    assert bad.status_code == 400 and "Choose a six-month period" in bad.get_data(as_text=True)
    # The lead buyer pays the whole invoice and recharges; it has no part of its own here.
    lead = web.as_user(world.buyer).get("/invoices/recharges").get_data(as_text=True)
    assert "Nothing to recharge in this period" in lead


def _paid_invoice(world, received: date, paid_on: date, gross_units: int):
    """An invoice received and paid on the given days (timestamps set as the service would)."""
    invoice = drafted(world, units=gross_units)
    issuing.issue(world.provider_admin, invoice)
    invoice.received_at = invoice.issued_at = utcnow().replace(
        year=received.year, month=received.month, day=received.day, hour=12
    )
    invoice.due_on = received + timedelta(days=30)
    invoice.status = InvoiceStatus.PAID
    invoice.paid_on, invoice.paid_at = paid_on, utcnow()
    commit()
    return invoice


def test_payment_performance_gives_the_hand_checked_figures(world, web):
    # Four invoices, each £123.45 a unit + 20% VAT:
    #  A: 1 unit  £148.14, received 1 Apr 2026, paid 20 Apr (19 days, on time)
    #  B: 2 units £296.28, received 1 May,      paid 31 May (30 days, on time: the due date)
    #  C: 3 units £444.42, received 1 Jun,      paid 2 Jul  (31 days, late)
    #  D: 1 unit  £148.14, received 1 Aug,      paid 15 Oct (outside the period: not counted)
    # Paid in April–September 2026: 3; within 30 days 2 (66.7%); average (19+30+31)/3 = 26.7
    # days; paid late £444.42.
    _paid_invoice(world, date(2026, 4, 1), date(2026, 4, 20), 1)
    _paid_invoice(world, date(2026, 5, 1), date(2026, 5, 31), 2)
    _paid_invoice(world, date(2026, 6, 1), date(2026, 7, 2), 3)
    _paid_invoice(world, date(2026, 8, 1), date(2026, 10, 15), 1)
    page = web.as_user(world.buyer).get("/invoices/payment-performance?period=2026-H1")
    html = page.get_data(as_text=True)
    assert "66.7% (2 of 3)" in html and "26.7" in html and "£444.42 on 1 invoice" in html
    rows = list(
        csv.reader(
            io.StringIO(
                web.get("/invoices/payment-performance?period=2026-H1&format=csv").get_data(
                    as_text=True
                )
            )
        )
    )
    assert rows[1][2:] == ["3", "2", "66.7", "26.7", "888.84", "444.42"]
    # October 2026 to March 2027: only D, 75 days, late.
    rows = list(
        csv.reader(
            io.StringIO(
                web.get("/invoices/payment-performance?period=2026-H2&format=csv").get_data(
                    as_text=True
                )
            )
        )
    )
    assert rows[1][2:] == ["1", "0", "0.0", "75.0", "148.14", "148.14"]
    # The authority sees every buyer; another buyer sees none of these.
    authority = make_member(Role.AUTHORITY_ADMIN)
    other = make_member(Role.BUYER, make_organisation(OrganisationType.PCC))
    commit()
    seen = web.as_user(authority).get("/invoices/payment-performance?period=2026-H1")
    assert "North East Probation" in seen.get_data(as_text=True)
    none = web.as_user(other).get("/invoices/payment-performance?period=2026-H1")
    assert "No invoices paid" in none.get_data(as_text=True)
    assert web.get("/invoices/payment-performance?period=nonsense").status_code == 400


def test_the_provider_summary_counts_states_paid_outstanding_and_days(world, web):
    _paid_invoice(world, date(2026, 4, 1), date(2026, 4, 21), 1)  # 20 days, £148.14
    overdue = issued(world)  # £444.42
    overdue.due_on = date.today() - timedelta(days=1)
    drafted(world)
    commit()
    html = web.as_user(world.provider_admin).get("/invoices/summary").get_data(as_text=True)
    assert "£148.14" in html and "£444.42" in html and "1 overdue" in html
    assert "20.0" in html and "over 1 paid invoice" in html
    assert web.as_user(world.buyer).get("/invoices/summary").status_code == 403


def test_overdue_invoices_are_notified_once_and_paid_or_credited_ones_never(app, world):
    from marketplace.core.notifications.models import Notification

    late = issued(world)
    paid = issued(world)
    credited = issued(world)
    on_time = issued(world)
    for invoice in (late, paid, credited):
        invoice.due_on = date.today() - timedelta(days=2)
    issuing.validate(world.buyer, paid)
    issuing.mark_paid_by_bacs(world.buyer, paid, "REM-9", date.today())
    credit_notes.raise_credit_note(world.provider_admin, credited, credited.net_pence, "Cancelled")
    commit()

    def overdue_emails():
        return db.session.scalars(
            sa.select(Notification.template).where(Notification.template.like("invoices_overdue%"))
        ).all()

    result = app.test_cli_runner().invoke(args=["invoices", "notify-overdue"])
    assert result.exit_code == 0 and "1 overdue invoice(s) notified" in result.output
    # The region's buyer and approver, and the provider's administrator.
    assert sorted(overdue_emails()) == [
        "invoices_overdue_buyer",
        "invoices_overdue_buyer",
        "invoices_overdue_provider",
    ]
    db.session.expire_all()
    assert late.overdue_notified_at is not None
    assert (paid.overdue_notified_at, credited.overdue_notified_at) == (None, None)
    assert on_time.overdue_notified_at is None
    # Run again the next day: nobody is told twice.
    again = app.test_cli_runner().invoke(args=["invoices", "notify-overdue"])
    assert "0 overdue invoice(s) notified" in again.output
    assert len(overdue_emails()) == 3
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "invoice.overdue")
        )
        == 1
    )


def test_the_list_downloads_as_csv_with_its_filters_and_only_ones_own(world, web):
    first = issued(world)
    draft = drafted(world)
    stranger = make_member(Role.BUYER, make_organisation(OrganisationType.PCC))
    commit()

    def rows(path):
        return list(csv.reader(io.StringIO(web.get(path).get_data(as_text=True))))

    web.as_user(world.provider_admin)
    provider = rows("/invoices/export.csv")
    assert [r[0] for r in provider[1:]] == [f"Draft {draft.id}", "INV-000001"]
    assert provider[2][16] == "444.42" and provider[2][18] == "444.42"
    assert [r[0] for r in rows("/invoices/export.csv?status=draft")[1:]] == [f"Draft {draft.id}"]
    assert 'href="/invoices/export.csv"' in web.get("/invoices/").get_data(as_text=True)
    # The buyer never sees a draft; another organisation sees nothing of these.
    web.as_user(world.buyer)
    assert [r[0] for r in rows("/invoices/export.csv")[1:]] == [first.number]
    web.as_user(stranger)
    assert rows("/invoices/export.csv")[1:] == []
