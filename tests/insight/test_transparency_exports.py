"""The four transparency exports against the hand-checked data set of ``transparency_world``:
each CSV written out by hand, every row and amount to the penny; the periods and their bad
input; and the compliance bands' percentages summing to exactly 100."""

from __future__ import annotations

from datetime import date

import pytest

from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.insight import exports
from marketplace.insight.queries import transparency as q
from marketplace.invoices.queries import PaymentPerformance
from marketplace.orders.models import AwardRoute
from tests.factories import make_organisation
from tests.insight.transparency_world import build_transparency_world

TODAY = date(2026, 1, 15)
BOM = "\ufeff"
VFM = "Call-off at the published rate card price: Lowest unit price with capacity"


@pytest.fixture
def world(app):
    return build_transparency_world()


def export_csv(key: str, organisation, period: str) -> str:
    export = exports.EXPORTS[key]
    return exports.csv_text(export, export.records(organisation, export.parse(period, TODAY)))


def lines(*rows: str) -> str:
    return BOM + "".join(row + "\r\n" for row in rows)


def test_the_pccs_spend_over_500_in_july(world):
    # INV-000001 of Harbour Housing (the PCC's part exactly £500.00) is paid in September and
    # is not over £500 anyway; Swift Skills' £500.01 is just over; Northgate's invoice was paid
    # less a credit note raised before payment (£36,000.00 - £1,200.00); the credit note
    # raised after payment is a refund of the PCC's £2,400.00.
    assert export_csv("pcc-spend", world.pcc, "2025-07") == lines(
        'Date paid,Transaction number,Supplier name,"Amount (£, including VAT)",'
        "Summary of the purpose of the expenditure,Value for money reason",
        f"2025-07-15,INV-000001,Swift Skills Ltd,500.01,Employment skills (Accommodation),{VFM}",
        "2025-07-20,INV-000001,Northgate Services plc,34800.00,"
        f"Accommodation hub (Accommodation),{VFM}",
        f"2025-07-25,CN-000002,Northgate Services plc,-2400.00,Accommodation hub (Accommodation),{VFM}",
    )


def test_a_payment_exactly_at_500_is_left_out(world):
    # September: Harbour Housing's invoice (the PCC's part £500.00, paid 5 September) is not
    # over £500; Northgate's July invoice (£30,000.00 of £37,500.00) is.
    assert export_csv("pcc-spend", world.pcc, "2025-09") == lines(
        'Date paid,Transaction number,Supplier name,"Amount (£, including VAT)",'
        "Summary of the purpose of the expenditure,Value for money reason",
        "2025-09-10,INV-000002,Northgate Services plc,30000.00,"
        f"Accommodation hub (Accommodation),{VFM}",
    )
    assert export_csv("pcc-spend", world.pcc, "2025-08") == lines(
        'Date paid,Transaction number,Supplier name,"Amount (£, including VAT)",'
        "Summary of the purpose of the expenditure,Value for money reason",
    )


HEADINGS = (
    "Reference number,Title of agreement,Supplier name,Supplier registration number,SME,VCSE,"
    "Sum to be paid over the length of the contract (£),Organisation's share (£),Start date,"
    "End date,Award date,Procurement route,Status,Open Contracting ID"
)
RATE_CARD = "Call-off from the rate card (no competition)"


def test_the_contracts_register_of_each_funder(world):
    # E (£5,000.00 exactly) is not over £5,000; F was declined, so never a contract; G was
    # cancelled after award and stays. Swift Skills was an SME when its call-off was awarded
    # (it was reclassified on 1 August). B's shares of £7,500.96 split 6,667 / 3,333 with the
    # remaining penny to the PCC: £5,000.89 and £2,500.07.
    assert export_csv("contracts", world.pcc, "2025-Q1") == lines(
        HEADINGS,
        "CO-2025-000001,Supported housing,Harbour Housing,1100001,Yes,Yes,7500.00,3750.00,"
        f"2025-06-01,2025-09-30,2025-05-07,{RATE_CARD},In delivery,ocds-rehab1-CO-2025-000001",
        "CO-2025-000002,Employment skills,Swift Skills Ltd,07000002,Yes,No,7500.96,2500.07,"
        f"2025-06-01,2025-09-30,2025-05-07,{RATE_CARD},In delivery,ocds-rehab1-CO-2025-000002",
        "CO-2025-000003,Accommodation hub,Northgate Services plc,01000003,No,No,82500.00,"
        f"66000.00,2025-06-01,2025-09-30,2025-05-07,{RATE_CARD},In delivery,"
        "ocds-rehab1-CO-2025-000003",
        "CO-2025-000006,Supported housing,Harbour Housing,1100001,Yes,Yes,6250.00,3125.00,"
        f"2025-06-01,2025-09-30,2025-05-07,{RATE_CARD},Cancelled after award,"
        "ocds-rehab1-CO-2025-000006",
    )
    region = export_csv("contracts", world.region, "2025-Q1").splitlines()
    assert [row.split(",")[7] for row in region[1:]] == [
        "3750.00",
        "5000.89",
        "16500.00",
        "3125.00",
    ]
    # Awarded in April to June: nothing in July to September.
    assert export_csv("contracts", world.pcc, "2025-Q2") == lines(HEADINGS)


def test_payments_over_30000_in_a_quarter(world):
    # July to September: Northgate's £34,800.00 is over; its £30,000.00 in September is
    # exactly the threshold; the £2,400.00 refund is far under.
    assert export_csv("large-payments", world.pcc, "2025-Q2") == lines(
        'Payment date,Supplier name,"Amount (£, including VAT)",Contract reference,'
        "Open Contracting ID,Description,Transaction number",
        "2025-07-20,Northgate Services plc,34800.00,CO-2025-000003,ocds-rehab1-CO-2025-000003,"
        '"Accommodation hub (Accommodation), invoice INV-000001",INV-000001',
    )
    # The region's part of the same payments (20%) is under £30,000.
    assert export_csv("large-payments", world.region, "2025-Q2").count("\r\n") == 1


def test_the_payments_compliance_figures(world):
    # North East Probation paid four invoices from April to September 2025:
    #   Swift Skills £1,500.19, 14 days; Northgate £40,500.00 (after £4,500.00 of credit notes),
    #   19 days; Northgate £37,500.00, 40 days; Harbour Housing £1,000.00, 66 days.
    # Average (14 + 19 + 40 + 66) / 4 = 34.75 -> 34.8. By number 2, 1, 1 of 4; by value
    # £42,000.19, £37,500.00, £1,000.00 of £80,500.19: 521.74, 465.84, 12.42 tenths of a
    # percent, the two spare tenths to the largest remainders: 52.2, 46.6, 1.2.
    assert export_csv("payments-compliance", world.region, "2025-H1") == lines(
        "Reporting period start,Reporting period end,Organisation,Invoices paid,"
        "Average number of days taken to pay,Paid within 30 days (number),"
        "Paid within 30 days (%),Paid in 31 to 60 days (number),Paid in 31 to 60 days (%),"
        "Paid in 61 days or more (number),Paid in 61 days or more (%),Amount paid (£),"
        "Paid within 30 days (£),Paid within 30 days (% of value),Paid in 31 to 60 days (£),"
        "Paid in 31 to 60 days (% of value),Paid in 61 days or more (£),"
        "Paid in 61 days or more (% of value)",
        "2025-04-01,2025-09-30,North East Probation,4,34.8,2,50.0,1,25.0,1,25.0,80500.19,"
        "42000.19,52.2,37500.00,46.6,1000.00,1.2",
    )
    # The PCC pays no invoice itself (the lead buyer does): none paid, no percentages.
    assert export_csv("payments-compliance", world.pcc, "2025-H1").splitlines()[1] == (
        "2025-04-01,2025-09-30,Durham PCC,0,,0,,0,,0,,0.00,0.00,,0.00,,0.00,"
    )


def test_the_bands_sum_to_exactly_100_percent():
    figures = PaymentPerformance()
    for days in (3, 45, 90):
        figures.add(days, days <= 30, 100)
    # A third each is 33.3% three times, 99.9%: the spare tenth goes to the first band.
    assert figures.band_counts == [1, 1, 1]
    assert figures.band_count_tenths == [334, 333, 333]
    assert figures.band_value_tenths == [334, 333, 333]
    figures.add(30, True, 1)
    figures.add(31, False, 1)
    figures.add(60, False, 1)
    figures.add(61, False, 1)
    assert figures.band_counts == [2, 3, 2]
    assert sum(figures.band_count_tenths) == 1_000


def test_how_it_was_bought_names_a_further_competition(world):
    call_off = world.call_offs["A"]
    call_off.award_route, call_off.choice_reason = AwardRoute.FURTHER_COMPETITION, None
    assert q.value_for_money_reason(call_off) == (
        "Awarded after a further competition among the lot's members"
    )
    assert q.award_route_label(call_off) == ("Further competition (published invitation to tender)")


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (q.parse_month, "2026-13", "Enter a month like 2026-04"),
        (q.parse_month, "2026-00", "Enter a month like 2026-04"),
        (q.parse_month, "July", "Enter a month like 2026-04"),
        (q.parse_month, "", "Enter a month like 2026-04"),
        (q.parse_month, "2026-02", "has ended or is under way"),
        (q.parse_month, "1999-12", "must be in 2000 or later"),
        (q.parse_quarter, "2026-Q5", "Enter a quarter like 2026-Q1"),
        (q.parse_quarter, "2026-Q1", "has ended or is under way"),
        (q.parse_half, "2026-H3", "Enter a six-month period like 2026-H1"),
        (q.parse_half, "2026-H1", "has ended or is under way"),
    ],
)
def test_a_bad_or_future_period_is_refused_with_a_clear_message(app, parse, text, message):
    with pytest.raises(BusinessRuleViolation) as refused:
        parse(text, TODAY)
    assert message in refused.value.errors["period"][0]


def test_periods_under_way_are_accepted_and_named():
    assert q.parse_month("2026-01", TODAY) == q.Period(
        "2026-01", "January 2026", date(2026, 1, 1), date(2026, 1, 31)
    )
    third = q.parse_quarter("2025-Q3", TODAY)
    assert (third.start, third.end) == (date(2025, 10, 1), date(2025, 12, 31))
    fourth = q.parse_quarter("2025-Q4", date(2026, 1, 1))
    assert (fourth.start, fourth.end) == (date(2026, 1, 1), date(2026, 3, 31))
    assert q.quarter_of(date(2026, 3, 31)).code == "2025-Q4"
    assert q.quarter_of(date(2026, 4, 1)).code == "2026-Q1"
    half = q.parse_half("2025-H2", TODAY)
    assert (half.start, half.end) == (date(2025, 10, 1), date(2026, 3, 31))


def test_an_unknown_or_provider_organisation_has_no_export(world):
    with pytest.raises(NotFound):
        q.export_organisation(999_999)
    with pytest.raises(NotFound):
        q.export_organisation(world.harbour.id)
    with pytest.raises(NotFound):  # the PCC's spend is for PCCs only
        q.export_organisation(world.region.id, pcc_only=True)
    with pytest.raises(NotFound):  # a commissioner asking for another's
        q.export_subject(world.region, world.pcc.id)
    authority = make_organisation(q.OrganisationType.AUTHORITY)
    with pytest.raises(BusinessRuleViolation):
        q.export_subject(authority, None)
    assert q.export_subject(authority, world.pcc.id, pcc_only=True) == world.pcc


def test_text_that_a_spreadsheet_would_run_is_escaped(world):
    world.swift.name = "=HYPERLINK(1)"
    text = export_csv("pcc-spend", world.pcc, "2025-07")
    assert "'=HYPERLINK(1)" in text
