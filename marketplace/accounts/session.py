"""The signed-in person: loading them, their current organisation, and rules every page enforces."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import Flask, Request, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user, login_user
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.accounts.models import ApiToken, Membership, Organisation, User
from marketplace.core.cache import Topic, kept, kept_copy
from marketplace.core.db import parse_id

ORGANISATION_SESSION_KEY = "organisation_id"
PENDING_TWO_FACTOR_KEY = "pending_two_factor_user"

# Pages a person may use before they have set up a required second factor.
TWO_FACTOR_SETUP_ALLOWED = {
    "accounts.two_factor_setup",
    "accounts.two_factor_recovery_codes",
    "accounts.sign_out",
    "static",
    "healthz",
}


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, without building its signer on every request.

    Flask builds the signer (a serializer with its key list) for each request before it looks
    for the cookie, work every API call (which has no cookie at all) would do for nothing. This
    looks for the cookie first, and keeps one signer per set of keys (the secret key and its
    fallbacks), so rotating the key is still seen at once. It is otherwise Flask's own.
    Invariant: a request is signed and verified with the keys configured now. Measured by
    ``make bench`` (the ``/api/v1/regions`` row of benchmarks/RESULTS.md).
    """

    def __init__(self) -> None:
        self._signers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self._signers.get(keys)
        if signer is None:
            if len(self._signers) >= 8:  # keys replaced at run time: forget the old ones
                self._signers.clear()
            signer = self._signers[keys] = super().get_signing_serializer(app)
        return signer

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


# One statement for the person, their memberships and organisations. It is built once: building a
# statement costs more than SQLAlchemy's cached compile of it.
_LOAD_USER = (
    sa.select(User)
    .where(User.id == sa.bindparam("user_id"))
    .options(joinedload(User.memberships).joinedload(Membership.organisation))
)


def load_user(session_id: str) -> User | None:
    """Flask-Login loader: the id carries a nonce that a password change rotates."""
    user_id, _, nonce = session_id.partition(":")
    if parse_id(user_id) is None or not nonce:
        return None
    user = _principal(int(user_id))
    if user is None or not user.active or user.session_nonce != nonce:
        return None
    return user


def _principal(user_id: int) -> User | None:
    """The person with their memberships and organisations, attached to this request's session.

    Loading them through the ORM is the largest fixed cost of a signed-in page, so each worker
    keeps a detached copy under the generation of ``Topic.PRINCIPALS``. Any committed change to a
    person, a membership or an organisation moves that generation on (marketplace/core/cache),
    so a deactivated account, a changed role or a rotated session nonce takes effect on the next
    request in every worker.
    """
    return kept(
        ("principal", user_id),
        [Topic.PRINCIPALS],
        lambda session: session.scalars(_LOAD_USER, {"user_id": user_id}).unique().first(),
    )


_LOAD_TOKEN = (
    sa.select(ApiToken)
    .where(ApiToken.token_hash == sa.bindparam("token_hash"))
    .options(
        joinedload(ApiToken.user).selectinload(User.memberships),
        joinedload(ApiToken.organisation),
    )
)


def _token_key(token_hash: str) -> tuple:
    return ("api-token", token_hash)


def token_principal(token_hash: str) -> ApiToken | None:
    """The API token with this hash, with its person, their memberships and its organisation,
    attached to this request's session; None if there is none.

    Kept per worker like the signed-in person (``_principal``), under the same generation:
    revoking or deleting a token moves it on too (accounts/models.py), so a revoked token is
    refused on its next request in every worker. Unknown hashes are never kept.
    """
    return kept(
        _token_key(token_hash),
        [Topic.PRINCIPALS],
        lambda session: session.scalars(_LOAD_TOKEN, {"token_hash": token_hash}).unique().first(),
    )


def note_token_use(token: ApiToken, when: datetime) -> None:
    """Record when the token was used, in the row and in this worker's copy (so the copy does
    not look unused and ask for the row to be written again on every request)."""
    token.last_used_at = when
    copy = kept_copy(_token_key(token.token_hash), [Topic.PRINCIPALS])
    if copy is not None:
        set_committed_value(copy, "last_used_at", when)


def start_session(user: User, organisation: Organisation | None = None) -> None:
    """Sign the person in (after every factor has been checked)."""
    session.pop(PENDING_TWO_FACTOR_KEY, None)
    # A fresh session on sign-in defeats session fixation.
    session.clear()
    login_user(user)
    session.permanent = True
    if organisation is None and user.organisations:
        organisation = user.organisations[0]
    if organisation is not None:
        session[ORGANISATION_SESSION_KEY] = organisation.id


def load_current_organisation() -> None:
    """Set ``g.organisation`` to the organisation the person is acting for."""
    g.organisation = None
    if request.path.startswith("/api/") or not current_user.is_authenticated:
        return
    organisations = current_user.organisations
    chosen = session.get(ORGANISATION_SESSION_KEY)
    g.organisation = next((o for o in organisations if o.id == chosen), None) or (
        organisations[0] if organisations else None
    )


def current_organisation() -> Organisation | None:
    return g.get("organisation")


def enforce_session_rules():
    """People whose role needs two-factor authentication must set it up before anything else."""
    if request.path.startswith("/api/") or not current_user.is_authenticated:
        return None
    endpoint = request.endpoint or ""
    if endpoint in TWO_FACTOR_SETUP_ALLOWED or endpoint.startswith("pages."):
        return None
    if current_user.requires_two_factor and not current_user.two_factor_enabled:
        flash("Your role needs two-factor authentication. Set it up to continue.", "info")
        return redirect(url_for("accounts.two_factor_setup"))
    return None
