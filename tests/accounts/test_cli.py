"""`flask accounts create-token EMAIL [--name NAME] [--organisation-id ID]`."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import ApiToken, OrganisationType, Role
from marketplace.accounts.security import hash_secret
from marketplace.core.db import commit, db
from tests.factories import add_membership, make_member, make_organisation, make_user


def create_token(app, *args: str):
    return app.test_cli_runner().invoke(args=["accounts", "create-token", *args])


def get_me(client, secret: str):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def test_prints_a_token_that_works_on_the_api(app, client):
    organisation = make_organisation(
        OrganisationType.PROVIDER_VCSE, name="Harbour Debt Advice Centre"
    )
    user = make_member(Role.PROVIDER_ADMIN, organisation, email="sian@harbour.example")
    commit()

    result = create_token(app, "Sian@Harbour.example", "--name", "Nightly rate-card sync")

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert "\n" not in secret and secret.startswith("rsm_")
    response = get_me(client, secret)
    assert response.status_code == 200
    assert response.json["email"] == "sian@harbour.example"
    assert response.json["organisation"]["name"] == "Harbour Debt Advice Centre"
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.name == "Nightly rate-card sync"


def test_the_token_is_stored_hashed_and_the_plaintext_is_nowhere_in_the_database(app):
    make_member(Role.BUYER, email="kemi@probation.example")
    commit()

    secret = create_token(app, "kemi@probation.example").stdout.strip()

    token = db.session.scalar(sa.select(ApiToken))
    assert token.token_hash == hash_secret(secret)
    assert token.token_hash != secret
    assert secret.startswith(token.token_prefix) and len(token.token_prefix) < len(secret) // 2
    # Not in any column of any table: audit trail and outbox (the email about the token) included.
    db.session.expire_all()
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                assert secret not in repr(tuple(row)), f"plaintext token found in {table.name}"
                assert secret[len(token.token_prefix) :] not in repr(tuple(row))


def test_the_default_name_and_the_users_first_organisation(app, client):
    organisation = make_organisation(
        OrganisationType.PROBATION_REGION, name="Probation Service – Wales"
    )
    make_member(Role.APPROVER, organisation, email="owain@probation.example")
    commit()

    secret = create_token(app, "owain@probation.example").stdout.strip()

    token = db.session.scalar(sa.select(ApiToken))
    assert token.name == "Command-line token"
    assert get_me(client, secret).json["organisation"]["id"] == organisation.id


def test_organisation_id_chooses_which_organisation_the_token_acts_for(app, client):
    first = make_organisation(
        OrganisationType.PROBATION_REGION, name="A Probation Service – North West"
    )
    second = make_organisation(OrganisationType.PCC, name="B Police and Crime Commissioner")
    user = make_member(Role.BUYER, first, email="rachel@example.org")
    add_membership(user, second, Role.BUYER)
    commit()

    result = create_token(app, "rachel@example.org", "--organisation-id", str(second.id))

    assert result.exit_code == 0, result.output
    assert get_me(client, result.stdout.strip()).json["organisation"]["id"] == second.id


def test_an_organisation_the_user_is_not_in_is_refused(app):
    make_member(Role.BUYER, email="rachel@example.org")
    other = make_organisation(OrganisationType.PCC, name="Somewhere else")
    commit()

    result = create_token(app, "rachel@example.org", "--organisation-id", str(other.id))

    assert result.exit_code != 0
    assert f"is not a member of organisation {other.id}" in result.output
    assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0


def test_an_unknown_email_fails_clearly(app):
    result = create_token(app, "nobody@example.org")

    assert result.exit_code != 0
    assert "No active user has the email address nobody@example.org" in result.output
    assert result.stdout == ""
    assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0


def test_an_inactive_user_gets_no_token(app):
    make_member(Role.BUYER, email="left@example.org", active=False)
    commit()

    result = create_token(app, "left@example.org")

    assert result.exit_code != 0
    assert "No active user" in result.output


def test_a_user_without_an_organisation_gets_no_token(app):
    make_user(email="loner@example.org")
    commit()

    result = create_token(app, "loner@example.org")

    assert result.exit_code != 0
    assert "does not belong to any active organisation" in result.output


def test_a_missing_email_is_a_usage_error(app):
    result = create_token(app)

    assert result.exit_code == 2
    assert "Missing argument 'EMAIL'" in result.output
