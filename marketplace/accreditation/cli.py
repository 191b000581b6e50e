"""`flask accreditation …`: the daily expiry run, and checking members' renewed evidence."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from marketplace.accounts.services.common import get_user_by_email
from marketplace.accreditation.models import EvidenceRenewal
from marketplace.accreditation.services import memberships
from marketplace.accreditation.services.expiry import check_expiry
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import DomainError

accreditation_cli = AppGroup("accreditation", help="Run the dynamic purchasing system.")


@accreditation_cli.command("check-expiry")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Run as if it were this date (YYYY-MM-DD); for testing.",
)
def check_expiry_command(today) -> None:
    """Send evidence reminders and suspend members with expired evidence or overdue declarations."""
    run_date: date | None = today.date() if today else None
    run = check_expiry(run_date)
    commit()
    click.echo(
        f"Sent {run.reminders} reminder(s); suspended {run.suspended_for_evidence} "
        f"membership(s) for expired evidence and {run.suspended_for_redeclaration} "
        "for overdue declarations."
    )


@accreditation_cli.command("renewals")
def renewals_command() -> None:
    """List the renewed evidence waiting for an assessor, oldest first."""
    rows = db.session.scalars(memberships.pending_renewals_query()).all()
    if not rows:
        click.echo("No renewed evidence is waiting to be checked.")
    for renewal in rows:
        answer = renewal.answer
        current = answer.evidence_expires_on.isoformat() if answer.evidence_expires_on else "-"
        click.echo(
            f"{renewal.id}\t{answer.application.organisation.name}\t"
            f"{answer.application.reference}\t{answer.criterion.question}\t"
            f"current expires {current}\trenewed expires {renewal.expires_on.isoformat()}"
        )


def _assessor(email: str):
    user = get_user_by_email(email)
    if user is None or not user.active:
        raise click.ClickException(f"No active user has the email address {email}")
    return user


def _renewal(renewal_id: int) -> EvidenceRenewal:
    renewal = db.session.get(EvidenceRenewal, renewal_id)
    if renewal is None:
        raise click.ClickException(f"There is no renewed evidence with id {renewal_id}")
    return renewal


def _decide(action):
    """Run one service call and commit, or say why it was refused (nothing is written)."""
    try:
        result = action()
    except DomainError as error:
        rollback()
        raise click.ClickException(error.detail) from None
    commit()
    return result


@accreditation_cli.command("accept-evidence")
@click.argument("renewal_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "email", required=True, help="Email address of the assessor deciding.")
@click.option("--comment", default="", help="A comment the provider is told (optional).")
def accept_evidence_command(renewal_id: int, email: str, comment: str) -> None:
    """Accept renewed evidence RENEWAL_ID (see `flask accreditation renewals`)."""
    user, renewal = _assessor(email), _renewal(renewal_id)
    reinstated = _decide(lambda: memberships.accept_renewed_evidence(user, renewal, comment))
    click.echo(
        f"Accepted renewed evidence {renewal_id}; reinstated {len(reinstated)} membership(s). "
        "The provider has been emailed."
    )


@accreditation_cli.command("reject-evidence")
@click.argument("renewal_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--by", "email", required=True, help="Email address of the assessor deciding.")
@click.option("--reason", required=True, help="Why it does not meet the criterion.")
def reject_evidence_command(renewal_id: int, email: str, reason: str) -> None:
    """Reject renewed evidence RENEWAL_ID with a reason the provider is told."""
    user, renewal = _assessor(email), _renewal(renewal_id)
    _decide(lambda: memberships.reject_renewed_evidence(user, renewal, reason))
    click.echo(f"Rejected renewed evidence {renewal_id}. The provider has been emailed.")
