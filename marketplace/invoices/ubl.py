"""Issued invoices and credit notes as UBL 2.1 XML that passes Peppol BIS Billing 3.0's rules (the
CEN EN 16931 and PEPPOL schematrons; the tests validate every document this module makes).

The purchase order number is the buyer reference (BT-10) and the order reference (BT-13); the
call-off reference is the contract reference (BT-12). Buyer and seller carry the electronic
address (EndpointID, BT-49/BT-34) each organisation records on its settings page; the invoice
names the provider's bank account as the payee account for credit transfer (code 30, BR-61).
VAT categories (EN 16931 allows no "AA"): standard 20% and reduced 5% are both S at their rate;
zero Z; exempt E (with its exemption reason); outside the scope O (no rate, and no seller VAT
identifier, as BR-O-02 requires). S, Z and E need the seller's VAT identifier (BR-S-02, BR-Z-02,
BR-E-02), which is why only a VAT-registered provider may use them.

A credit note is a UBL ``CreditNote`` (type 381) that refers to the invoice it corrects
(BillingReference, BT-25) with positive amounts, never an Invoice with negative ones.

Elements are written in the order the UBL schema sets. Amounts are pounds with two decimals,
from exact pence. A document the rules would reject is never produced: what is missing is
raised as ``BusinessRuleViolation`` with what to record and where.
"""

from __future__ import annotations

import threading
from xml.etree import ElementTree as ET

from blinker import signal

from marketplace.accounts.models import Organisation
from marketplace.accounts.services.settings import bank_details_of
from marketplace.core.clock import london_date
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import VAT_RATES, VatTreatment, decimal_pounds
from marketplace.invoices.models import CreditNote, Invoice

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
COMMERCIAL_INVOICE = "380"
CREDIT_NOTE = "381"
CURRENCY = "GBP"
CREDIT_TRANSFER = "30"

VAT_CATEGORY = {
    VatTreatment.STANDARD: "S",
    VatTreatment.REDUCED: "S",
    VatTreatment.ZERO: "Z",
    VatTreatment.EXEMPT: "E",
    VatTreatment.OUTSIDE_SCOPE: "O",
}
# The treatments whose VAT category needs the seller's VAT identifier.
NEEDS_SELLER_VAT_ID = frozenset(t for t, c in VAT_CATEGORY.items() if c in {"S", "Z", "E"})
EXEMPTION_REASON = {
    VatTreatment.EXEMPT: "Exempt from VAT",
    VatTreatment.OUTSIDE_SCOPE: "Not subject to VAT",
}
# UN/ECE Recommendation 20 unit codes; a session, place, programme or referral is one item.
# Electronic address schemes that are also ISO 6523 ICD codes (party identifier schemes).
ICD_SCHEMES = frozenset({"0088", "0060", "0199", "0204"})
UNIT_CODES = {"hour": "HUR", "day": "DAY", "week": "WEE"}
ONE_ITEM = "C62"

# Sent with every document this module builds (the tests validate each one against the rules).
document_built = signal("ubl-document-built")

_SERIALISING = threading.Lock()
ET.register_namespace("cac", CAC)
ET.register_namespace("cbc", CBC)


def _percent(treatment: VatTreatment) -> str:
    rate = VAT_RATES[treatment] * 100
    return str(rate.numerator // rate.denominator) if rate.denominator == 1 else f"{float(rate)}"


def _cbc(parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CBC}}}{name}", attrs)
    element.text = text
    return element


def _cac(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{CAC}}}{name}")


def _money(parent: ET.Element, name: str, pence: int) -> None:
    _cbc(parent, name, decimal_pounds(pence), currencyID=CURRENCY)


def _tax_category(parent: ET.Element, name: str, treatment: VatTreatment, *, reason: bool):
    category = _cac(parent, name)
    _cbc(category, "ID", VAT_CATEGORY[treatment])
    if treatment != VatTreatment.OUTSIDE_SCOPE:
        _cbc(category, "Percent", _percent(treatment))
    if reason and treatment in EXEMPTION_REASON:
        _cbc(category, "TaxExemptionReason", EXEMPTION_REASON[treatment])
    _cbc(_cac(category, "TaxScheme"), "ID", "VAT")


def _check_ready(
    invoice: Invoice, treatment: VatTreatment, seller_vat: str | None, *, payee: bool
) -> None:
    """What the rules need that an organisation records: refused with where to record it."""
    errors: dict[str, list[str]] = {}
    for organisation, role in ((invoice.provider, "provider"), (invoice.lead_buyer, "buyer")):
        if not organisation.endpoint_id:
            errors.setdefault("endpoint_id", []).append(
                f"The {role}, {organisation.name}, has not recorded its electronic address "
                "(Peppol endpoint) on its organisation settings page"
            )
    if treatment in NEEDS_SELLER_VAT_ID and not seller_vat:
        errors["vat_number"] = [
            "The invoice was issued without the provider's VAT registration number, which a "
            f"{treatment.value.replace('_', ' ')}-rated invoice must carry"
        ]
    if payee and not invoice.provider.has_bank_details:
        errors["bank_details"] = [
            f"{invoice.provider.name} has not recorded the bank account it is paid into on its "
            "organisation settings page"
        ]
    if errors:
        raise BusinessRuleViolation(errors)


def _party(
    parent: ET.Element, name: str, organisation: Organisation, vat: str | None, *, seller: bool
) -> None:
    party = _cac(_cac(parent, name), "Party")
    _cbc(party, "EndpointID", organisation.endpoint_id or "", schemeID=organisation.endpoint_scheme)
    if seller:
        # BR-CO-26: a seller outside the scope of VAT with no company number is still known by
        # an identifier (BT-29): its electronic address, with the scheme where that is an ISO
        # 6523 ICD code too (9932, the UK VAT scheme, is an address scheme only).
        identifier = {"schemeID": organisation.endpoint_scheme or ""}
        if organisation.endpoint_scheme not in ICD_SCHEMES:
            identifier = {}
        _cbc(_cac(party, "PartyIdentification"), "ID", organisation.endpoint_id or "", **identifier)
    _cbc(_cac(party, "PartyName"), "Name", organisation.name)
    _cbc(_cac(_cac(party, "PostalAddress"), "Country"), "IdentificationCode", "GB")
    if vat:
        tax = _cac(party, "PartyTaxScheme")
        _cbc(tax, "CompanyID", vat)
        _cbc(_cac(tax, "TaxScheme"), "ID", "VAT")
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", organisation.name)
    if organisation.companies_house_number:
        _cbc(legal, "CompanyID", organisation.companies_house_number)


def _header(root: ET.Element, number: str, issued_on) -> None:
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", number)
    _cbc(root, "IssueDate", issued_on.isoformat())


def _references(root: ET.Element, invoice: Invoice, *, billing: bool) -> None:
    """Buyer reference, period, order, (for a credit note the invoice it corrects), contract."""
    # An empty element is refused (PEPPOL-EN16931-R008): without a purchase order number the
    # buyer reference is the call-off's.
    _cbc(root, "BuyerReference", invoice.po_number or invoice.call_off_reference)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", invoice.period_start.isoformat())
    _cbc(period, "EndDate", invoice.period_end.isoformat())
    if invoice.po_number:
        _cbc(_cac(root, "OrderReference"), "ID", invoice.po_number)
    if billing:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", invoice.number or "")
        _cbc(reference, "IssueDate", london_date(invoice.received_at).isoformat())
    _cbc(_cac(root, "ContractDocumentReference"), "ID", invoice.call_off_reference)


def _tax_total(root: ET.Element, treatment: VatTreatment, net: int, vat: int) -> None:
    tax_total = _cac(root, "TaxTotal")
    _money(tax_total, "TaxAmount", vat)
    subtotal = _cac(tax_total, "TaxSubtotal")
    _money(subtotal, "TaxableAmount", net)
    _money(subtotal, "TaxAmount", vat)
    _tax_category(subtotal, "TaxCategory", treatment, reason=True)


def _totals(root: ET.Element, net: int, gross: int) -> None:
    totals = _cac(root, "LegalMonetaryTotal")
    _money(totals, "LineExtensionAmount", net)
    _money(totals, "TaxExclusiveAmount", net)
    _money(totals, "TaxInclusiveAmount", gross)
    _money(totals, "PayableAmount", gross)


def _line(
    root: ET.Element,
    kind: str,
    number: int,
    quantity: tuple[str, int, str],
    net: int,
    name: str,
    treatment: VatTreatment,
    unit_price: int,
) -> None:
    element = _cac(root, kind)
    _cbc(element, "ID", str(number))
    quantity_name, units, unit_code = quantity
    _cbc(element, quantity_name, str(units), unitCode=unit_code)
    _money(element, "LineExtensionAmount", net)
    item = _cac(element, "Item")
    _cbc(item, "Name", name)
    _tax_category(item, "ClassifiedTaxCategory", treatment, reason=False)
    _money(_cac(element, "Price"), "PriceAmount", unit_price)


def _treatment(invoice: Invoice) -> VatTreatment:
    """The treatment the document declares. An exempt service billed by a provider that is not
    registered for VAT is not subject to VAT at all (O): category E would need the seller's VAT
    identifier (BR-E-02), which such a provider does not have."""
    treatment = VatTreatment(invoice.vat_treatment or VatTreatment.STANDARD)
    if treatment == VatTreatment.EXEMPT and not invoice.provider_vat_number:
        return VatTreatment.OUTSIDE_SCOPE
    return treatment


def _seller_vat(invoice: Invoice, treatment: VatTreatment) -> str | None:
    return None if treatment == VatTreatment.OUTSIDE_SCOPE else invoice.provider_vat_number


def _serialise(root: ET.Element, namespace: str) -> bytes:
    # ElementTree keeps its prefixes in one global map, and the document's own namespace is
    # the default one (no prefix), which differs between invoices and credit notes.
    with _SERIALISING:
        ET.register_namespace("", namespace)
        document = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    document_built.send(None, document=document)
    return document


def invoice_xml(invoice: Invoice) -> bytes:
    """The issued invoice as UBL 2.1 (a draft has no number and is never sent)."""
    if invoice.number is None or invoice.received_at is None:
        raise ValueError("only an issued invoice has a UBL form")
    treatment = _treatment(invoice)
    seller_vat = _seller_vat(invoice, treatment)
    _check_ready(invoice, treatment, seller_vat, payee=True)
    bank = bank_details_of(invoice.provider)
    assert bank is not None  # _check_ready
    root = ET.Element(f"{{{INVOICE_NS}}}Invoice")
    _header(root, invoice.number, london_date(invoice.received_at))
    if invoice.due_on is not None:
        _cbc(root, "DueDate", invoice.due_on.isoformat())
    _cbc(root, "InvoiceTypeCode", COMMERCIAL_INVOICE)
    _cbc(root, "DocumentCurrencyCode", CURRENCY)
    _references(root, invoice, billing=False)
    _party(root, "AccountingSupplierParty", invoice.provider, seller_vat, seller=True)
    _party(root, "AccountingCustomerParty", invoice.lead_buyer, None, seller=False)
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", CREDIT_TRANSFER)
    _cbc(means, "PaymentID", invoice.number)
    account = _cac(means, "PayeeFinancialAccount")
    _cbc(account, "ID", bank.account_number)
    _cbc(account, "Name", bank.account_name)
    _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", bank.sort_code)
    _cbc(
        _cac(root, "PaymentTerms"),
        "Note",
        "Payment within 30 days of receipt, by "
        + (invoice.due_on.isoformat() if invoice.due_on else "the due date"),
    )
    _tax_total(root, treatment, invoice.net_pence, invoice.vat_pence)
    _totals(root, invoice.net_pence, invoice.gross_pence)
    unit_code = UNIT_CODES.get(invoice.call_off.unit.value, ONE_ITEM)
    for number, line in enumerate(invoice.lines, start=1):
        _line(
            root,
            "InvoiceLine",
            number,
            ("InvoicedQuantity", line.units, unit_code),
            line.net_pence,
            line.description,
            treatment,  # every line carries the call-off's locked treatment
            line.unit_price_pence,
        )
    return _serialise(root, INVOICE_NS)


def credit_note_xml(note: CreditNote) -> bytes:
    """The credit note as a UBL 2.1 CreditNote that corrects its invoice: one line, the amount
    credited before VAT, at the invoice's VAT treatment; the reason is its note."""
    invoice = note.invoice
    treatment = _treatment(invoice)
    seller_vat = _seller_vat(invoice, treatment)
    _check_ready(invoice, treatment, seller_vat, payee=False)
    root = ET.Element(f"{{{CREDIT_NOTE_NS}}}CreditNote")
    _header(root, note.number, london_date(note.created_at))
    _cbc(root, "CreditNoteTypeCode", CREDIT_NOTE)
    _cbc(root, "Note", note.reason)
    _cbc(root, "DocumentCurrencyCode", CURRENCY)
    _references(root, invoice, billing=True)
    _party(root, "AccountingSupplierParty", invoice.provider, seller_vat, seller=True)
    _party(root, "AccountingCustomerParty", invoice.lead_buyer, None, seller=False)
    _tax_total(root, treatment, note.net_pence, note.vat_pence)
    _totals(root, note.net_pence, note.gross_pence)
    _line(
        root,
        "CreditNoteLine",
        1,
        ("CreditedQuantity", 1, ONE_ITEM),
        note.net_pence,
        f"Credit against invoice {invoice.number}",
        treatment,
        note.net_pence,
    )
    return _serialise(root, CREDIT_NOTE_NS)
