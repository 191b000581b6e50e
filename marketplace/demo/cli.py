"""`flask demo …`: load the demo world once, and list its sign-ins."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from marketplace.accounts.models import (
    TWO_FACTOR_REQUIRED_ROLES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.core.db import commit, db
from marketplace.demo.catalogue import reindex_search
from marketplace.demo.organisations import demo_authority
from marketplace.demo.people import (
    AUTHORITY,
    COMMISSIONERS,
    DEMO_EMAIL_DOMAIN,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    PROVIDERS,
    ROLE_ORDER,
    TYPE_SHORT_LABELS,
    USERS,
)
from marketplace.demo.scale import load_scale_catalogue
from marketplace.demo.world import load_demo_data

demo_cli = AppGroup("demo", help="Demo data: a realistic world to try the marketplace in.")


@dataclass(frozen=True)
class DemoSignIn:
    email: str
    name: str
    organisation: str
    organisation_type: OrganisationType
    role: Role

    @property
    def needs_two_factor(self) -> bool:
        return self.role in TWO_FACTOR_REQUIRED_ROLES

    def as_dict(self) -> dict[str, str]:
        row = {
            "email": self.email,
            "name": self.name,
            "organisation": self.organisation,
            "organisation_type": self.organisation_type.value,
            "role": self.role.value,
            "password": DEMO_PASSWORD,
        }
        if self.needs_two_factor:
            row["totp_secret"] = DEMO_TOTP_SECRET
        return row


def demo_sign_ins() -> list[DemoSignIn]:
    """Every role of every demo account, in a stable, readable order."""
    rows = db.session.execute(
        sa.select(User.email, User.name, Organisation.name, Organisation.type, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(User.email.endswith(f"@{DEMO_EMAIL_DOMAIN}"), User.active.is_(True))
    ).all()
    sign_ins = [DemoSignIn(*row) for row in rows]
    order = {role: index for index, role in enumerate(ROLE_ORDER)}
    listed = {spec.email: index for index, spec in enumerate(USERS)}
    return sorted(
        sign_ins,
        key=lambda s: (order[s.role], listed.get(s.email, len(listed)), s.email, s.organisation),
    )


@demo_cli.command("load")
@click.option(
    "--services",
    type=click.IntRange(0, 1_000_000),
    default=0,
    help="Also build a large catalogue of this many published listings (for benchmarks).",
)
@click.option(
    "--providers",
    type=click.IntRange(1, 100_000),
    default=None,
    help="How many generated providers publish those listings (default: one per 25).",
)
def load_command(services: int, providers: int | None) -> None:
    """Create the demo organisations and accounts (once; does nothing if they exist)."""
    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException(
            "Demo data has well-known passwords: it is never loaded in production."
        )
    loaded = False
    if demo_authority() is not None:
        click.echo(
            "Demo data is already loaded: nothing to do. List the sign-ins with `flask demo users`."
        )
    else:
        loaded = True
        _load_and_report()
    if services:
        loaded = True
        scale = load_scale_catalogue(services, providers or max(1, services // 25))
        commit()
        click.echo(
            f"Added a large catalogue: {scale['listings']:,} listings from {scale['providers']:,} "
            f"providers with {scale['lot_memberships']:,} lot memberships."
        )
    if loaded:
        reindex_search()


def _load_and_report() -> None:
    counts = load_demo_data()
    commit()
    by_type: dict[str, int] = {}
    for spec in [AUTHORITY, *COMMISSIONERS, *PROVIDERS]:
        by_type[spec.type.label] = by_type.get(spec.type.label, 0) + 1
    click.echo(
        f"Loaded the demo world: {counts['organisations']} organisations, {counts['users']} "
        f"people with {counts['memberships']} roles, {counts['listings']} published listings."
    )
    for label, count in sorted(by_type.items()):
        click.echo(f"  {count:>3}  {label}")
    click.echo(f"Every demo account's password is: {DEMO_PASSWORD}")
    click.echo("List the sign-ins with `flask demo users`.")


@demo_cli.command("users")
@click.option(
    "--json", "as_json", is_flag=True, help="Print only a JSON list, for scripts and tests."
)
def users_command(as_json: bool) -> None:
    """List the demo sign-ins: email, organisation, organisation type and role."""
    sign_ins = demo_sign_ins()
    if not sign_ins:
        raise click.ClickException("Demo data is not loaded: run `flask demo load` first.")
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in sign_ins], indent=2, ensure_ascii=False))
        return
    headings = ("Email", "Organisation", "Organisation type", "Role")
    rows = [
        (
            s.email,
            s.organisation,
            TYPE_SHORT_LABELS[s.organisation_type],
            s.role.value + (" *" if s.needs_two_factor else ""),
        )
        for s in sign_ins
    ]
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]

    def echo_row(cells) -> None:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        )

    echo_row(headings)
    echo_row(["-" * width for width in widths])
    for row in rows:
        echo_row(row)
    click.echo()
    click.echo(f"Password for every demo account: {DEMO_PASSWORD}")
    click.echo(
        f"* Two-factor authentication: add the secret {DEMO_TOTP_SECRET} to an authenticator app "
        "(time-based, 6 digits, 30 seconds) and enter the code it shows."
    )
