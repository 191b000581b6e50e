"""`flask accounts …`: account administration for operators and scripts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.accounts.services.common import get_user_by_email
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.db import commit

accounts_cli = AppGroup("accounts", help="User accounts and API tokens.")


@accounts_cli.command("create-token")
@click.argument("email")
@click.option(
    "--name", default="Command-line token", show_default=True, help="What the token is for."
)
@click.option(
    "--organisation-id",
    type=int,
    default=None,
    help="Organisation the token acts for (default: the user's first).",
)
def create_token_command(email: str, name: str, organisation_id: int | None) -> None:
    """Print a new API token for EMAIL (stored hashed; shown only this once)."""
    user = get_user_by_email(email)
    if user is None or not user.active:
        raise click.ClickException(f"No active user has the email address {email}")
    organisations = user.organisations
    if not organisations:
        raise click.ClickException(f"{email} does not belong to any active organisation")
    organisation = organisations[0]
    if organisation_id is not None:
        organisation = next((o for o in organisations if o.id == organisation_id), None)
        if organisation is None:
            raise click.ClickException(f"{email} is not a member of organisation {organisation_id}")
    _, secret = create_api_token(user, organisation, name[:80] or "Command-line token")
    commit()
    click.echo(secret)
