"""Registration and email confirmation: a provider signs itself and its first admin up."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from marketplace.accounts.models import (
    PROVIDER_TYPES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    TokenPurpose,
    User,
)
from marketplace.accounts.security import hash_password, new_secret
from marketplace.accounts.services.classification import (
    ClassificationAnswers,
    check_registration_answers,
    record_at_registration,
)
from marketplace.accounts.services.common import (
    ORGANISATION_FIELDS,
    USER_FIELDS,
    check_new_password,
    get_user_by_email,
    home_organisation,
    issue_token,
    normalise_email,
    redeem_token,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.services import queue_email
from marketplace.core.urls import absolute_url


@dataclass
class ProviderRegistration:
    organisation_name: str
    organisation_type: OrganisationType
    charity_number: str | None
    companies_house_number: str | None
    region_id: int | None
    name: str
    email: str
    password: str
    # Legal form (VCSE basis), staff and turnover bands: the first dated classification.
    classification: ClassificationAnswers | None = None


def register_provider(details: ProviderRegistration) -> User | None:
    """Register a provider organisation and its first admin, and email a confirmation link.

    If the email address already has an account, nothing is created and the owner is told by
    email instead, so the page a visitor sees never reveals who is registered.
    """
    if details.organisation_type not in PROVIDER_TYPES:
        raise BusinessRuleViolation(
            {"organisation_type": ["Choose the kind of provider your organisation is"]}
        )
    email = normalise_email(details.email)
    check_new_password(details.password, email, details.name)
    if details.classification is not None:
        check_registration_answers(details.charity_number, details.classification)
    existing = get_user_by_email(email)
    if existing is not None:
        queue_email(
            existing.email,
            "already_registered",
            user=existing,
            sign_in_url=absolute_url("accounts.sign_in"),
            reset_url=absolute_url("accounts.forgot_password"),
        )
        return None
    organisation = Organisation(
        name=details.organisation_name.strip(),
        type=details.organisation_type,
        charity_number=details.charity_number or None,
        companies_house_number=details.companies_house_number or None,
        region_id=details.region_id,
    )
    user = User(
        email=email,
        name=details.name.strip(),
        password_hash=hash_password(details.password),
        session_nonce=new_secret()[:32],
    )
    db.session.add_all([organisation, user])
    db.session.flush()
    db.session.add(Membership(user=user, organisation=organisation, role=Role.PROVIDER_ADMIN))
    db.session.flush()
    audit.record(
        user,
        "organisation.registered",
        organisation,
        after=audit.snapshot(organisation, ORGANISATION_FIELDS),
    )
    audit.record(
        user,
        "user.registered",
        user,
        organisation=organisation,
        after=audit.snapshot(user, USER_FIELDS),
    )
    if details.classification is not None:
        record_at_registration(user, organisation, details.classification)
    send_confirmation_email(user)
    return user


def send_confirmation_email(user: User) -> None:
    secret = issue_token(
        user, TokenPurpose.CONFIRM_EMAIL, current_app.config["CONFIRM_LINK_LIFETIME_SECONDS"]
    )
    queue_email(
        user.email,
        "confirm_email",
        user=user,
        confirm_url=absolute_url("accounts.confirm_email", token=secret),
        days=current_app.config["CONFIRM_LINK_LIFETIME_SECONDS"] // 86400,
    )


def confirm_email(secret: str) -> User:
    """Use a confirmation link: the account can sign in from now on."""
    token = redeem_token(secret, TokenPurpose.CONFIRM_EMAIL)
    user = token.user
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        audit.record(user, "user.email_confirmed", user, organisation=home_organisation(user))
    return user
