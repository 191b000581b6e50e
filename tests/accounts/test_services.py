"""Account services: registration, confirmation, passwords, two-factor, API tokens."""

from __future__ import annotations

import time
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    ApiToken,
    Membership,
    OneTimeToken,
    Organisation,
    OrganisationType,
    Role,
    TokenPurpose,
    User,
)
from marketplace.accounts.services.organisations import create_organisation, update_organisation
from marketplace.accounts.services.passwords import (
    change_password,
    request_password_reset,
    reset_password,
)
from marketplace.accounts.services.registration import (
    ProviderRegistration,
    confirm_email,
    register_provider,
    send_confirmation_email,
)
from marketplace.accounts.services.signing_in import EmailNotConfirmed, authenticate
from marketplace.accounts.services.tokens import (
    authenticate_api_token,
    create_api_token,
    revoke_api_token,
)
from marketplace.accounts.services.two_factor import (
    begin_two_factor_setup,
    confirm_two_factor_setup,
    disable_two_factor,
    unused_recovery_code_count,
    verify_second_factor,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.factories import PASSWORD, make_member, make_organisation, make_user

NEW_PASSWORD = "blue kettle winter harbour"


def registration(**overrides) -> ProviderRegistration:
    values = dict(
        organisation_name="Hope Housing Trust",
        organisation_type=OrganisationType.PROVIDER_VCSE,
        charity_number="1234567",
        companies_house_number=None,
        region_id=None,
        name="Sam Provider",
        email="Sam@Hope.example",
        password=NEW_PASSWORD,
    )
    values.update(overrides)
    return ProviderRegistration(**values)


def link_secret(notification: Notification, path: str) -> str:
    """The secret at the end of the link in an email body."""
    line = next(line for line in notification.body.splitlines() if path in line)
    return line.rsplit("/", 1)[1].strip()


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


class TestRegistration:
    def test_creates_organisation_admin_and_confirmation_email(self, app):
        user = register_provider(registration())
        commit()
        assert user.email == "sam@hope.example"  # case-insensitive: stored lower-cased
        assert user.email_confirmed_at is None
        organisation = db.session.scalar(sa.select(Organisation))
        assert organisation.type == OrganisationType.PROVIDER_VCSE
        assert user.roles_in(organisation) == {Role.PROVIDER_ADMIN}
        assert user.password_hash.startswith("$argon2id$")
        email = db.session.scalar(sa.select(Notification))
        assert email.to_email == "sam@hope.example"
        assert "http://marketplace.test/confirm-email/" in email.body
        actions = set(db.session.scalars(sa.select(AuditEvent.action)))
        assert {"organisation.registered", "user.registered"} <= actions

    def test_existing_email_creates_nothing_and_tells_the_owner(self, app):
        make_user(email="sam@hope.example")
        commit()
        assert register_provider(registration(email="SAM@hope.example")) is None
        commit()
        assert count(Organisation) == 0
        email = db.session.scalar(sa.select(Notification))
        assert email.template == "already_registered"

    @pytest.mark.parametrize("password", ["short", "password123", "qwertyuiop", "sam@hope.example"])
    def test_weak_passwords_are_refused(self, app, password):
        with pytest.raises(BusinessRuleViolation) as error:
            register_provider(registration(password=password))
        assert "password" in error.value.errors
        db.session.rollback()
        assert count(User) == 0 and count(Organisation) == 0

    def test_commissioner_type_cannot_self_register(self, app):
        with pytest.raises(BusinessRuleViolation):
            register_provider(registration(organisation_type=OrganisationType.PCC))


class TestConfirmation:
    def test_link_confirms_once(self, app):
        register_provider(registration())
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/confirm-email/")
        user = confirm_email(secret)
        commit()
        assert user.email_confirmed_at is not None
        with pytest.raises(BusinessRuleViolation):
            confirm_email(secret)

    def test_expired_link_is_refused(self, app):
        register_provider(registration())
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/confirm-email/")
        token = db.session.scalar(sa.select(OneTimeToken))
        token.expires_at = utcnow() - timedelta(seconds=1)
        commit()
        with pytest.raises(BusinessRuleViolation):
            confirm_email(secret)

    def test_only_the_hash_of_the_secret_is_stored(self, app):
        register_provider(registration())
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/confirm-email/")
        token = db.session.scalar(sa.select(OneTimeToken))
        assert secret not in token.token_hash and len(token.token_hash) == 64

    def test_a_new_link_replaces_the_old_one(self, app):
        register_provider(registration())
        commit()
        first = link_secret(db.session.scalar(sa.select(Notification)), "/confirm-email/")
        user = db.session.scalar(sa.select(User))
        send_confirmation_email(user)
        commit()
        with pytest.raises(BusinessRuleViolation):
            confirm_email(first)


class TestAuthenticate:
    def test_right_password(self, app):
        user = make_user(email="a@example.org")
        assert authenticate("A@Example.org", PASSWORD) == user

    def test_wrong_password_or_unknown_email(self, app):
        make_user(email="a@example.org")
        assert authenticate("a@example.org", "wrong password here") is None
        assert authenticate("nobody@example.org", PASSWORD) is None

    def test_inactive_user(self, app):
        make_user(email="a@example.org", active=False)
        assert authenticate("a@example.org", PASSWORD) is None

    def test_unconfirmed_user(self, app):
        make_user(email="a@example.org", confirmed=False)
        with pytest.raises(EmailNotConfirmed):
            authenticate("a@example.org", PASSWORD)


class TestPasswordReset:
    def test_reset_with_link_changes_password_and_signs_out_elsewhere(self, app):
        user = make_user(email="a@example.org")
        nonce = user.session_nonce
        request_password_reset("A@example.org")
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/reset-password/")
        reset_password(secret, NEW_PASSWORD)
        commit()
        assert authenticate("a@example.org", NEW_PASSWORD) == user
        assert user.session_nonce != nonce
        with pytest.raises(BusinessRuleViolation):
            reset_password(secret, "another good passphrase")

    def test_link_expires_after_an_hour(self, app):
        make_user(email="a@example.org")
        request_password_reset("a@example.org")
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/reset-password/")
        token = db.session.scalar(
            sa.select(OneTimeToken).where(OneTimeToken.purpose == TokenPurpose.RESET_PASSWORD)
        )
        assert timedelta(minutes=59) < token.expires_at - token.created_at <= timedelta(hours=1)
        token.expires_at = utcnow() - timedelta(seconds=1)
        commit()
        with pytest.raises(BusinessRuleViolation):
            reset_password(secret, NEW_PASSWORD)

    def test_unknown_email_sends_nothing(self, app):
        request_password_reset("nobody@example.org")
        commit()
        assert count(Notification) == 0

    def test_weak_new_password_keeps_the_link_usable(self, app):
        make_user(email="a@example.org")
        request_password_reset("a@example.org")
        commit()
        secret = link_secret(db.session.scalar(sa.select(Notification)), "/reset-password/")
        with pytest.raises(BusinessRuleViolation):
            reset_password(secret, "password")
        db.session.rollback()
        reset_password(secret, NEW_PASSWORD)


class TestChangePassword:
    def test_needs_current_password(self, app):
        user = make_user()
        with pytest.raises(BusinessRuleViolation) as error:
            change_password(user, "not my password", NEW_PASSWORD)
        assert "current_password" in error.value.errors

    def test_changes_and_emails(self, app):
        user = make_user()
        change_password(user, PASSWORD, NEW_PASSWORD)
        commit()
        assert authenticate(user.email, NEW_PASSWORD) == user
        assert db.session.scalar(sa.select(Notification.template)) == "password_changed"

    def test_same_password_refused(self, app):
        user = make_user()
        with pytest.raises(BusinessRuleViolation):
            change_password(user, PASSWORD, PASSWORD)


class TestTwoFactor:
    def test_setup_then_codes_work_once(self, app):
        user = make_user()
        secret = begin_two_factor_setup(user)
        now = time.time()
        codes = confirm_two_factor_setup(user, pyotp.TOTP(secret).at(now), at=now)
        commit()
        assert user.two_factor_enabled and len(codes) == 10
        later = now + 30
        code = pyotp.TOTP(secret).at(later)
        assert verify_second_factor(user, code, at=later)
        assert not verify_second_factor(user, code, at=later), "a code must not be replayed"

    def test_wrong_setup_code_refused(self, app):
        user = make_user()
        begin_two_factor_setup(user)
        with pytest.raises(BusinessRuleViolation):
            confirm_two_factor_setup(user, "000000x")
        assert not user.two_factor_enabled

    def test_recovery_codes_are_single_use_and_hashed(self, app):
        user = make_user()
        secret = begin_two_factor_setup(user)
        codes = confirm_two_factor_setup(user, pyotp.TOTP(secret).now())
        commit()
        assert verify_second_factor(user, codes[0].upper())
        assert not verify_second_factor(user, codes[0])
        assert unused_recovery_code_count(user) == 9
        stored = db.session.execute(sa.text("SELECT code_hash FROM recovery_codes")).scalars().all()
        assert all(code.replace("-", "") not in stored for code in codes)

    def test_required_roles_cannot_turn_it_off(self, app):
        user = make_member(Role.ASSESSOR)
        with pytest.raises(BusinessRuleViolation):
            disable_two_factor(user, PASSWORD)
        assert user.two_factor_enabled

    def test_optional_roles_can_turn_it_off_with_password(self, app):
        user = make_member(Role.BUYER, two_factor_secret=pyotp.random_base32())
        with pytest.raises(BusinessRuleViolation):
            disable_two_factor(user, "wrong password")
        disable_two_factor(user, PASSWORD)
        assert not user.two_factor_enabled and user.totp_secret is None


class TestApiTokens:
    def test_token_works_until_revoked_and_is_stored_hashed(self, app):
        user = make_member(Role.BUYER)
        organisation = user.organisations[0]
        token, secret = create_api_token(user, organisation, "Case system")
        commit()
        assert secret.startswith("rsm_") and secret not in token.token_hash
        assert authenticate_api_token(secret) == token
        revoke_api_token(user, token)
        commit()
        assert authenticate_api_token(secret) is None

    def test_only_the_owner_revokes(self, app):
        user = make_member(Role.BUYER)
        other = make_member(Role.BUYER)
        token, _ = create_api_token(user, user.organisations[0], "Mine")
        with pytest.raises(PermissionDenied):
            revoke_api_token(other, token)

    def test_cannot_make_a_token_for_another_organisation(self, app):
        user = make_member(Role.BUYER)
        elsewhere = make_organisation(OrganisationType.PCC)
        with pytest.raises(PermissionDenied):
            create_api_token(user, elsewhere, "Sneaky")

    def test_token_stops_when_membership_or_user_goes(self, app):
        user = make_member(Role.BUYER)
        token, secret = create_api_token(user, user.organisations[0], "Mine")
        db.session.execute(sa.delete(Membership).where(Membership.user_id == user.id))
        db.session.expire_all()
        assert authenticate_api_token(secret) is None

    def test_garbage_tokens(self, app):
        for secret in ["", "rsm_", "Bearer x", "rsm_" + "a" * 200, "' OR 1=1 --"]:
            assert authenticate_api_token(secret) is None
        assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0


class TestOrganisations:
    def test_update_keeps_pcc_and_region_links(self, app):
        admin = make_member(Role.AUTHORITY_ADMIN)
        pcc = create_organisation(
            admin, name="Cheshire PCC", type=OrganisationType.PCC, pcc_area_id=1
        )
        with pytest.raises(BusinessRuleViolation) as error:
            update_organisation(admin, pcc, pcc_area_id=None)
        assert "pcc_area_id" in error.value.errors
        region = make_organisation(OrganisationType.PROVIDER_VCSE)
        with pytest.raises(BusinessRuleViolation):
            update_organisation(admin, region, type=OrganisationType.PCC)

    def test_pcc_takes_its_region_from_its_area(self, app):
        from marketplace.reference.models import PccArea

        admin = make_member(Role.AUTHORITY_ADMIN)
        area = db.session.scalar(sa.select(PccArea).where(PccArea.code == "cheshire"))
        pcc = create_organisation(
            admin, name="Cheshire PCC", type=OrganisationType.PCC, pcc_area_id=area.id
        )
        assert pcc.region_id == area.region_id
