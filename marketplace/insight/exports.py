"""The transparency exports' shape: for each, its published column headings and one record per
row, built from the one query function (``queries.transparency``) that the page, the CSV and
the API all use. The CSV is UTF-8 (with a byte order mark, for Excel), dates YYYY-MM-DD,
amounts in pounds with two decimals, and every text cell escaped against formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from marketplace.accounts.models import Organisation
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.core.money import decimal_pounds
from marketplace.insight.queries import transparency as q
from marketplace.invoices.queries import PaymentPerformance

# Excel reads a CSV file without it as Windows-1252 (see accreditation's public register).
UTF8_BOM = "\ufeff"


@dataclass(frozen=True)
class Column:
    heading: str  # as published
    key: str  # the API's name for it
    kind: str  # text, date, pence, flag, count, tenths (a percentage to one decimal), days


@dataclass(frozen=True)
class Export:
    key: str
    title: str
    summary: str
    period_noun: str  # month, quarter, six-month period
    period_hint: str
    pcc_only: bool
    parse: Callable[[str | None, date], q.Period]
    columns: tuple[Column, ...]
    records: Callable[[Organisation, q.Period], list[dict[str, Any]]]


def _pcc_spend(organisation, period):
    return [
        {
            "date_paid": row.paid_on,
            "transaction_number": row.transaction,
            "supplier_name": row.supplier,
            "amount_pence": row.amount_pence,
            "purpose": row.purpose,
            "value_for_money_reason": row.value_for_money,
        }
        for row in q.pcc_spend(organisation, period)
    ]


def _contracts(organisation, period):
    return [
        {
            "reference": row.reference,
            "title": row.title,
            "supplier_name": row.supplier,
            "supplier_registration_number": row.registration_number,
            "sme": row.sme,
            "vcse": row.vcse,
            "value_pence": row.value_pence,
            "organisation_share_pence": row.share_pence,
            "start_date": row.start_date,
            "end_date": row.end_date,
            "awarded_on": row.awarded_on,
            "award_route": row.award_route,
            "status": row.status,
            "ocid": row.ocid,
        }
        for row in q.contracts_register(organisation, period)
    ]


def _large_payments(organisation, period):
    return [
        {
            "payment_date": row.paid_on,
            "supplier_name": row.supplier,
            "amount_pence": row.amount_pence,
            "contract_reference": row.contract_reference,
            "ocid": row.ocid,
            "description": row.description,
            "transaction_number": row.transaction,
        }
        for row in q.large_payments(organisation, period)
    ]


def compliance_record(
    organisation: Organisation, period: q.Period, figures: PaymentPerformance
) -> dict[str, Any]:
    counts, pence = figures.band_counts, figures.band_pence
    by_number = figures.band_count_tenths or [None, None, None]
    by_value = figures.band_value_tenths or [None, None, None]
    return {
        "period_start": period.start,
        "period_end": period.end,
        "organisation": organisation.name,
        "invoices_paid": figures.paid_count,
        "average_days": figures.average_days,
        "within_30_days_count": counts[0],
        "within_30_days_percent_tenths": by_number[0],
        "days_31_to_60_count": counts[1],
        "days_31_to_60_percent_tenths": by_number[1],
        "days_61_or_more_count": counts[2],
        "days_61_or_more_percent_tenths": by_number[2],
        "amount_paid_pence": figures.paid_pence,
        "within_30_days_pence": pence[0],
        "within_30_days_value_percent_tenths": by_value[0],
        "days_31_to_60_pence": pence[1],
        "days_31_to_60_value_percent_tenths": by_value[1],
        "days_61_or_more_pence": pence[2],
        "days_61_or_more_value_percent_tenths": by_value[2],
    }


def _compliance(organisation, period):
    return [compliance_record(organisation, period, q.payments_compliance(organisation, period))]


EXPORTS: dict[str, Export] = {
    export.key: export
    for export in (
        Export(
            "pcc-spend",
            "Spend over £500",
            "Each payment in a month where your part is over £500, with its purpose and why it "
            "is value for money (Elected Local Policing Bodies (Specified Information) Order "
            "2011). Amounts include VAT.",
            "month",
            "For example, 2026-04 for April 2026",
            True,
            q.parse_month,
            (
                Column("Date paid", "date_paid", "date"),
                Column("Transaction number", "transaction_number", "text"),
                Column("Supplier name", "supplier_name", "text"),
                Column("Amount (£, including VAT)", "amount_pence", "pence"),
                Column("Summary of the purpose of the expenditure", "purpose", "text"),
                Column("Value for money reason", "value_for_money_reason", "text"),
            ),
            _pcc_spend,
        ),
        Export(
            "contracts",
            "Contracts register",
            "Each contract over £5,000 you fund that was awarded in a quarter, with its "
            "supplier's SME and VCSE status (Local Government Transparency Code 2015). "
            "Values include VAT.",
            "quarter",
            "For example, 2026-Q1 for April to June 2026",
            False,
            q.parse_quarter,
            (
                Column("Reference number", "reference", "text"),
                Column("Title of agreement", "title", "text"),
                Column("Supplier name", "supplier_name", "text"),
                Column("Supplier registration number", "supplier_registration_number", "text"),
                Column("SME", "sme", "flag"),
                Column("VCSE", "vcse", "flag"),
                Column(
                    "Sum to be paid over the length of the contract (£)", "value_pence", "pence"
                ),
                Column("Organisation's share (£)", "organisation_share_pence", "pence"),
                Column("Start date", "start_date", "date"),
                Column("End date", "end_date", "date"),
                Column("Award date", "awarded_on", "date"),
                Column("Procurement route", "award_route", "text"),
                Column("Status", "status", "text"),
                Column("Open Contracting ID", "ocid", "text"),
            ),
            _contracts,
        ),
        Export(
            "large-payments",
            "Payments over £30,000",
            "Each payment in a quarter where your part is over £30,000 (Procurement Act 2023 "
            "section 70). Amounts include VAT.",
            "quarter",
            "For example, 2026-Q1 for April to June 2026",
            False,
            q.parse_quarter,
            (
                Column("Payment date", "payment_date", "date"),
                Column("Supplier name", "supplier_name", "text"),
                Column("Amount (£, including VAT)", "amount_pence", "pence"),
                Column("Contract reference", "contract_reference", "text"),
                Column("Open Contracting ID", "ocid", "text"),
                Column("Description", "description", "text"),
                Column("Transaction number", "transaction_number", "text"),
            ),
            _large_payments,
        ),
        Export(
            "payments-compliance",
            "Payments compliance figures",
            "How promptly you paid invoices in a six-month period: the share paid within 30 "
            "days, in 31 to 60 days and in 61 days or more, by number and by value, and the "
            "average days to pay (Procurement Act 2023 section 69).",
            "six-month period",
            "For example, 2026-H1 for April to September 2026",
            False,
            q.parse_half,
            (
                Column("Reporting period start", "period_start", "date"),
                Column("Reporting period end", "period_end", "date"),
                Column("Organisation", "organisation", "text"),
                Column("Invoices paid", "invoices_paid", "count"),
                Column("Average number of days taken to pay", "average_days", "days"),
                Column("Paid within 30 days (number)", "within_30_days_count", "count"),
                Column("Paid within 30 days (%)", "within_30_days_percent_tenths", "tenths"),
                Column("Paid in 31 to 60 days (number)", "days_31_to_60_count", "count"),
                Column("Paid in 31 to 60 days (%)", "days_31_to_60_percent_tenths", "tenths"),
                Column("Paid in 61 days or more (number)", "days_61_or_more_count", "count"),
                Column("Paid in 61 days or more (%)", "days_61_or_more_percent_tenths", "tenths"),
                Column("Amount paid (£)", "amount_paid_pence", "pence"),
                Column("Paid within 30 days (£)", "within_30_days_pence", "pence"),
                Column(
                    "Paid within 30 days (% of value)",
                    "within_30_days_value_percent_tenths",
                    "tenths",
                ),
                Column("Paid in 31 to 60 days (£)", "days_31_to_60_pence", "pence"),
                Column(
                    "Paid in 31 to 60 days (% of value)",
                    "days_31_to_60_value_percent_tenths",
                    "tenths",
                ),
                Column("Paid in 61 days or more (£)", "days_61_or_more_pence", "pence"),
                Column(
                    "Paid in 61 days or more (% of value)",
                    "days_61_or_more_value_percent_tenths",
                    "tenths",
                ),
            ),
            _compliance,
        ),
    )
}


def csv_value(kind: str, value: Any) -> Any:
    if value is None:
        return ""
    if kind == "date":
        return value.isoformat()
    if kind == "pence":
        return decimal_pounds(value)
    if kind == "flag":
        return "Yes" if value else "No"
    if kind == "tenths":
        return f"{value // 10}.{value % 10}"
    if kind == "days":
        return f"{value:.1f}"
    if kind == "count":
        return str(value)
    return safe_cell(str(value))


def json_record(export: Export, record: dict[str, Any]) -> dict[str, Any]:
    """A record for the API: dates as YYYY-MM-DD, money in pence, percentages in tenths."""
    return {
        column.key: (
            record[column.key].isoformat()
            if column.kind == "date" and record[column.key] is not None
            else record[column.key]
        )
        for column in export.columns
    }


def csv_text(export: Export, records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.heading for column in export.columns])
    for record in records:
        writer.writerow([csv_value(column.kind, record[column.key]) for column in export.columns])
    return UTF8_BOM + out.getvalue()


def filename(export: Export, organisation: Organisation, period: q.Period) -> str:
    return f"{export.key}-{organisation.id}-{period.code}.csv"
