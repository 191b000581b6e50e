"""`flask invoices run --period YYYY-MM` (monthly, in arrears: only a month that has ended; safe
to run again)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.core.db import commit, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.invoices.services.common import parse_period
from marketplace.invoices.services.monthly_run import (
    bill_period,
    check_month_ended,
    unbilled_call_off_ids,
)
from marketplace.invoices.services.outcome_billing import bill_outcome_claims
from marketplace.invoices.services.overdue import notify_overdue

invoices_cli = AppGroup("invoices", help="Invoices from recorded delivery.")


@invoices_cli.command("run")
@click.option("--period", required=True, help="The month to bill, as YYYY-MM.")
def run_command(period: str) -> None:
    """Draft an invoice per call-off for its delivery in the month not yet billed."""
    try:
        start, end = parse_period(period)
        check_month_ended(start, end)
    except BusinessRuleViolation as error:
        raise click.BadParameter(error.detail, param_hint="--period") from None
    call_off_ids = unbilled_call_off_ids(start, end)
    with click.progressbar(
        length=len(call_off_ids), label=f"Billing {period}", show_pos=True
    ) as bar:
        try:
            result = bill_period(start, end, call_off_ids, progress=bar.update)
            outcomes = bill_outcome_claims(start, end)
            commit()
        except Exception:
            rollback()
            raise
    click.echo(
        f"{period}: {result.created} new draft invoice(s), {result.extended} draft(s) extended, "
        f"{result.lines} line(s), from {result.call_offs} call-off(s) with delivery not yet billed."
    )
    click.echo(
        f"{period}: {outcomes.created} new outcome invoice(s), {outcomes.extended} extended, "
        f"{outcomes.lines} verified outcome claim(s) billed."
    )


@invoices_cli.command("notify-overdue")
def notify_overdue_command() -> None:
    """Tell buyers and providers of invoices past their due date unpaid (once per invoice; run
    daily)."""
    told = notify_overdue()
    commit()
    click.echo(f"{len(told)} overdue invoice(s) notified.")
