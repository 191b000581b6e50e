"""An issued invoice as UBL 2.1 XML in the EN 16931 / Peppol BIS Billing 3.0 shape, for buyers'
accounts-payable systems.

The purchase order number is the buyer reference (BT-10) and the order reference (BT-13); the
call-off reference is the contract reference (BT-12). VAT categories: standard S (20%), reduced
AA (5%), zero Z, exempt E (with its exemption reason) and outside the scope O (no rate, and no
seller VAT identifier, as BR-O-02 requires). Elements are written in the order the UBL schema
sets. Amounts are pounds with two decimals, from exact pence.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from marketplace.accreditation.services.applications import london_date
from marketplace.invoices.models import Invoice
from marketplace.money import VAT_RATES, VatTreatment, decimal_pounds

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
COMMERCIAL_INVOICE = "380"
CURRENCY = "GBP"
CREDIT_TRANSFER = "30"
# Peppol participant identifier scheme for a UK VAT number.
UK_VAT_SCHEME = "9932"

VAT_CATEGORY = {
    VatTreatment.STANDARD: "S",
    VatTreatment.REDUCED: "AA",
    VatTreatment.ZERO: "Z",
    VatTreatment.EXEMPT: "E",
    VatTreatment.OUTSIDE_SCOPE: "O",
}
EXEMPTION_REASON = {
    VatTreatment.EXEMPT: "Exempt from VAT",
    VatTreatment.OUTSIDE_SCOPE: "Not subject to VAT",
}
# UN/ECE Recommendation 20 unit codes; a session, place, programme or referral is one item.
UNIT_CODES = {"hour": "HUR", "day": "DAY", "week": "WEE"}
ONE_ITEM = "C62"

ET.register_namespace("", INVOICE_NS)
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


def _tax_category(parent: ET.Element, name: str, treatment: VatTreatment, *, reason: bool):
    category = _cac(parent, name)
    _cbc(category, "ID", VAT_CATEGORY[treatment])
    if treatment != VatTreatment.OUTSIDE_SCOPE:
        _cbc(category, "Percent", _percent(treatment))
    if reason and treatment in EXEMPTION_REASON:
        _cbc(category, "TaxExemptionReason", EXEMPTION_REASON[treatment])
    _cbc(_cac(category, "TaxScheme"), "ID", "VAT")


def _party(parent: ET.Element, name: str, organisation, vat_number: str | None) -> None:
    party = _cac(_cac(parent, name), "Party")
    if vat_number:
        _cbc(party, "EndpointID", vat_number, schemeID=UK_VAT_SCHEME)
    _cbc(_cac(party, "PartyName"), "Name", organisation.name)
    _cbc(_cac(_cac(party, "PostalAddress"), "Country"), "IdentificationCode", "GB")
    if vat_number:
        tax = _cac(party, "PartyTaxScheme")
        _cbc(tax, "CompanyID", vat_number)
        _cbc(_cac(tax, "TaxScheme"), "ID", "VAT")
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", organisation.name)
    if organisation.companies_house_number:
        _cbc(legal, "CompanyID", organisation.companies_house_number)


def invoice_xml(invoice: Invoice) -> bytes:
    """The issued invoice as UBL 2.1 (a draft has no number and is never sent)."""
    if invoice.number is None or invoice.received_at is None:
        raise ValueError("only an issued invoice has a UBL form")
    treatment = VatTreatment(invoice.vat_treatment or VatTreatment.STANDARD)
    seller_vat = None if treatment == VatTreatment.OUTSIDE_SCOPE else invoice.provider_vat_number
    root = ET.Element(f"{{{INVOICE_NS}}}Invoice")
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", invoice.number)
    issued_on = london_date(invoice.received_at)
    _cbc(root, "IssueDate", issued_on.isoformat())
    if invoice.due_on is not None:
        _cbc(root, "DueDate", invoice.due_on.isoformat())
    _cbc(root, "InvoiceTypeCode", COMMERCIAL_INVOICE)
    _cbc(root, "DocumentCurrencyCode", CURRENCY)
    _cbc(root, "BuyerReference", invoice.po_number)
    period = _cac(root, "InvoicePeriod")
    _cbc(period, "StartDate", invoice.period_start.isoformat())
    _cbc(period, "EndDate", invoice.period_end.isoformat())
    _cbc(_cac(root, "OrderReference"), "ID", invoice.po_number)
    _cbc(_cac(root, "ContractDocumentReference"), "ID", invoice.call_off_reference)
    _party(root, "AccountingSupplierParty", invoice.provider, seller_vat)
    _party(root, "AccountingCustomerParty", invoice.lead_buyer, None)
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", CREDIT_TRANSFER)
    _cbc(means, "PaymentID", invoice.number)
    _cbc(
        _cac(root, "PaymentTerms"),
        "Note",
        "Payment within 30 days of receipt, by "
        + (invoice.due_on.isoformat() if invoice.due_on else "the due date"),
    )
    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", decimal_pounds(invoice.vat_pence), currencyID=CURRENCY)
    subtotal = _cac(tax_total, "TaxSubtotal")
    _cbc(subtotal, "TaxableAmount", decimal_pounds(invoice.net_pence), currencyID=CURRENCY)
    _cbc(subtotal, "TaxAmount", decimal_pounds(invoice.vat_pence), currencyID=CURRENCY)
    _tax_category(subtotal, "TaxCategory", treatment, reason=True)
    totals = _cac(root, "LegalMonetaryTotal")
    _cbc(totals, "LineExtensionAmount", decimal_pounds(invoice.net_pence), currencyID=CURRENCY)
    _cbc(totals, "TaxExclusiveAmount", decimal_pounds(invoice.net_pence), currencyID=CURRENCY)
    _cbc(totals, "TaxInclusiveAmount", decimal_pounds(invoice.gross_pence), currencyID=CURRENCY)
    _cbc(totals, "PayableAmount", decimal_pounds(invoice.gross_pence), currencyID=CURRENCY)
    unit_code = UNIT_CODES.get(invoice.call_off.unit.value, ONE_ITEM)
    for number, line in enumerate(invoice.lines, start=1):
        element = _cac(root, "InvoiceLine")
        _cbc(element, "ID", str(number))
        _cbc(element, "InvoicedQuantity", str(line.units), unitCode=unit_code)
        _cbc(element, "LineExtensionAmount", decimal_pounds(line.net_pence), currencyID=CURRENCY)
        item = _cac(element, "Item")
        _cbc(item, "Name", line.description)
        _tax_category(item, "ClassifiedTaxCategory", line.vat_treatment, reason=False)
        _cbc(
            _cac(element, "Price"),
            "PriceAmount",
            decimal_pounds(line.unit_price_pence),
            currencyID=CURRENCY,
        )
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
