"""Personal API tokens: made, revoked, and checked on each API request."""

from __future__ import annotations

from datetime import timedelta

from marketplace.accounts.models import ApiToken, Organisation, User
from marketplace.accounts.permissions import can_create_api_token, can_revoke_api_token
from marketplace.accounts.security import hash_secret, new_secret
from marketplace.accounts.session import note_token_use, token_principal
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.notifications.services import queue_email

API_TOKEN_PREFIX = "rsm_"  # noqa: S105 - marks our tokens so secret scanners can spot them


def create_api_token(actor: User, organisation: Organisation, name: str) -> tuple[ApiToken, str]:
    """Make a personal API token acting for ``actor`` in ``organisation``; return it and its secret once."""
    if not can_create_api_token(actor, organisation):
        raise PermissionDenied()
    secret = API_TOKEN_PREFIX + new_secret()
    token = ApiToken(
        user_id=actor.id,
        organisation_id=organisation.id,
        name=name.strip(),
        token_hash=hash_secret(secret),
        token_prefix=secret[:10],
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        actor,
        "api_token.created",
        token,
        organisation=organisation,
        after={"name": token.name, "prefix": token.token_prefix},
    )
    queue_email(
        actor.email, "api_token_created", user=actor, token=token, organisation=organisation
    )
    return token, secret


def revoke_api_token(actor: User, token: ApiToken) -> None:
    if not can_revoke_api_token(actor, token):
        raise PermissionDenied()
    if token.revoked_at is not None:
        raise BusinessRuleViolation({"token": ["This token has already been revoked"]})
    token.revoked_at = utcnow()
    audit.record(actor, "api_token.revoked", token, organisation=token.organisation)


def authenticate_api_token(secret: str) -> ApiToken | None:
    """The active token for a bearer secret whose user and organisation are still in good standing."""
    if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 100:
        return None
    # The token with its user, their memberships (which every permission check reads) and the
    # organisation: from this worker's copy while none of them has changed, else in two queries.
    token = token_principal(hash_secret(secret))
    if token is None or token.revoked_at is not None:
        return None
    if not token.user.active or not token.organisation.active:
        return None
    if not token.user.roles_in(token.organisation):
        return None
    now = utcnow()
    # Record use at most once a minute, so reads do not write on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        note_token_use(token, now)
    return token
