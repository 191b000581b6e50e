"""Sign-in, two-factor, registration, confirmation, reset and invitation pages."""

from __future__ import annotations

import re

import pyotp
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Invitation, Organisation, OrganisationType, Role, User
from marketplace.accounts.services.teams import invite_user
from marketplace.accounts.services.two_factor import (
    begin_two_factor_setup,
    confirm_two_factor_setup,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.factories import PASSWORD, add_membership, make_member, make_organisation, make_user

GOOD_PASSWORD = "blue kettle winter harbour"


def error_messages(response) -> list[str]:
    """The messages in the GOV.UK error summary."""
    html = response.get_data(as_text=True)
    summary = html.split("govuk-error-summary__list", 1)
    if len(summary) < 2:
        return []
    return re.findall(r"<a [^>]*>([^<]*)</a>", summary[1].split("</ul>", 1)[0])


def last_email() -> Notification:
    return db.session.scalars(sa.select(Notification).order_by(Notification.id.desc())).first()


def link_path(notification: Notification, marker: str) -> str:
    url = next(line for line in notification.body.splitlines() if marker in line).strip()
    return url.removeprefix("http://marketplace.test")


def sign_in(client, email, password=PASSWORD, **kwargs):
    return client.post("/sign-in", data={"email": email, "password": password}, **kwargs)


class TestSignIn:
    def test_good_credentials_sign_in_and_record(self, client):
        user = make_member(Role.BUYER, email="buyer@example.org")
        commit()
        response = sign_in(client, "Buyer@Example.org")
        assert response.status_code == 302 and response.headers["Location"] == "/"
        page = client.get("/")
        assert "Welcome, " + user.name in page.get_data(as_text=True)
        db.session.expire_all()
        assert db.session.get(User, user.id).last_sign_in_at is not None
        assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.signed_in"))

    def test_wrong_password_and_unknown_email_look_the_same(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        wrong = sign_in(client, "buyer@example.org", "not the password")
        unknown = sign_in(client, "nobody@example.org", "not the password")
        assert wrong.status_code == unknown.status_code == 422
        assert (
            error_messages(wrong)
            == error_messages(unknown)
            == ["Enter a correct email address and password"]
        )

    def test_follows_only_local_next_urls(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        assert (
            sign_in(client, "buyer@example.org", query_string={"next": "/account"}).headers[
                "Location"
            ]
            == "/account"
        )
        client.post("/sign-out")
        for evil in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
            response = sign_in(client, "buyer@example.org", query_string={"next": evil})
            assert response.headers["Location"] == "/"
            client.post("/sign-out")

    def test_unconfirmed_account_gets_a_new_link(self, client):
        make_member(Role.PROVIDER_ADMIN, email="new@example.org", confirmed=False)
        commit()
        response = sign_in(client, "new@example.org")
        assert response.status_code == 200
        assert "Check your email" in response.get_data(as_text=True)
        assert last_email().template == "confirm_email"
        assert client.get("/account").status_code == 302  # not signed in

    @pytest.mark.parametrize(
        "email,password", [("", ""), ("not-an-email", "x"), ("a" * 300 + "@example.org", "x")]
    )
    def test_malformed_input(self, client, email, password):
        response = sign_in(client, email, password)
        assert response.status_code == 422 and error_messages(response)

    def test_rate_limited_per_account_across_addresses(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        for attempt in range(10):
            response = sign_in(
                client,
                "buyer@example.org",
                "wrong password",
                environ_base={"REMOTE_ADDR": f"10.0.0.{attempt}"},
            )
            assert response.status_code == 422
        blocked = sign_in(
            client, "buyer@example.org", PASSWORD, environ_base={"REMOTE_ADDR": "10.0.1.1"}
        )
        assert blocked.status_code == 429
        assert "Wait 15 minutes" in blocked.get_data(as_text=True)

    def test_rate_limited_per_address_across_accounts(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        for attempt in range(10):
            assert (
                sign_in(client, f"person{attempt}@example.org", "wrong password").status_code == 422
            )
        assert sign_in(client, "buyer@example.org").status_code == 429

    def test_successful_sign_ins_do_not_count(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        for _ in range(12):
            assert sign_in(client, "buyer@example.org").status_code == 302
            client.post("/sign-out")

    def test_sign_out_needs_post(self, client):
        user = make_member(Role.BUYER)
        commit()
        sign_in(client, user.email)
        assert client.get("/sign-out").status_code == 405
        assert client.post("/sign-out").status_code == 302
        assert client.get("/account").status_code == 302


class TestTwoFactorSignIn:
    def make_user(self):
        secret = pyotp.random_base32()
        user = make_member(
            Role.AUTHORITY_ADMIN, email="admin@example.org", two_factor_secret=secret
        )
        commit()
        return user, secret

    def test_code_required_after_password(self, client):
        user, secret = self.make_user()
        response = sign_in(client, "admin@example.org")
        assert response.headers["Location"] == "/sign-in/two-factor"
        assert client.get("/account").status_code == 302  # not yet signed in
        wrong = client.post("/sign-in/two-factor", data={"code": "123456"})
        assert "not right" in " ".join(error_messages(wrong))
        right = client.post("/sign-in/two-factor", data={"code": pyotp.TOTP(secret).now()})
        assert right.status_code == 302
        assert client.get("/account").status_code == 200

    def test_recovery_code_signs_in_once(self, client):
        user = make_member(Role.AUTHORITY_ADMIN, email="admin@example.org", two_factor_secret=None)
        secret = begin_two_factor_setup(user)
        codes = confirm_two_factor_setup(user, pyotp.TOTP(secret).now())
        commit()
        sign_in(client, "admin@example.org")
        assert client.post("/sign-in/two-factor", data={"code": codes[3]}).status_code == 302
        client.post("/sign-out")
        sign_in(client, "admin@example.org")
        assert client.post("/sign-in/two-factor", data={"code": codes[3]}).status_code == 422

    def test_challenge_without_password_step_goes_back_to_sign_in(self, client):
        assert client.get("/sign-in/two-factor").headers["Location"] == "/sign-in"

    def test_wrong_codes_are_rate_limited(self, client):
        self.make_user()
        sign_in(client, "admin@example.org")
        for _ in range(10):
            client.post("/sign-in/two-factor", data={"code": "000000"})
        assert client.post("/sign-in/two-factor", data={"code": "000000"}).status_code == 429

    def test_required_role_without_two_factor_must_set_it_up(self, client):
        make_member(Role.ASSESSOR, email="assessor@example.org", two_factor_secret=None)
        user = db.session.scalar(sa.select(User).where(User.email == "assessor@example.org"))
        user.totp_secret = None
        user.totp_enabled_at = None
        commit()
        sign_in(client, "assessor@example.org")
        for path in ["/", "/accreditation/", "/account"]:
            response = client.get(path)
            assert (
                response.status_code == 302
                and response.headers["Location"] == "/account/two-factor"
            )
        setup = client.get("/account/two-factor")
        assert setup.status_code == 200
        db.session.expire_all()
        secret = db.session.get(User, user.id).totp_secret
        done = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now()})
        assert done.status_code == 200 and "Save your recovery codes" in done.get_data(as_text=True)
        assert client.get("/").status_code == 200


class TestRegistrationPages:
    FORM = {
        "organisation_name": "Hope <script>alert(1)</script> Trust",
        "organisation_type": "provider_vcse",
        "charity_number": "1234567",
        "companies_house_number": "",
        "vcse_basis": "registered_charity",
        "staff_band": "under_10",
        "turnover_band": "up_to_2m",
        "region_id": "",
        "name": "Sam O'Neill",
        "email": "sam@hope.example",
        "password": GOOD_PASSWORD,
        "password_confirm": GOOD_PASSWORD,
    }

    def test_register_confirm_and_sign_in(self, client):
        response = client.post("/register", data=self.FORM)
        assert response.headers["Location"] == "/register/check-your-email"
        assert "sam@hope.example" in client.get("/register/check-your-email").get_data(as_text=True)
        confirm_path = link_path(last_email(), "/confirm-email/")
        page = client.get(confirm_path)
        assert page.status_code == 200 and "Confirm email address" in page.get_data(as_text=True)
        assert (
            db.session.scalar(sa.select(User.email_confirmed_at)) is None
        )  # GET does not use the link
        assert client.post(confirm_path).headers["Location"] == "/sign-in"
        assert client.post(confirm_path).status_code == 410  # single use
        assert sign_in(client, "sam@hope.example", GOOD_PASSWORD).status_code == 302
        home = client.get("/").get_data(as_text=True)
        assert "Hope &lt;script&gt;alert(1)&lt;/script&gt; Trust" in home
        assert "<script>alert(1)</script>" not in home
        organisation = db.session.scalar(sa.select(Organisation))
        assert organisation.name == "Hope <script>alert(1)</script> Trust"  # stored as typed

    @pytest.mark.parametrize(
        "field,value,message",
        [
            ("email", "not-an-email", "Enter an email address in the correct format"),
            ("email", "a" * 250 + "@x.org", "Email address must be 254 characters or fewer"),
            ("name", "", "Enter your full name"),
            ("name", "n" * 121, "Name must be 120 characters or fewer"),
            ("organisation_name", "o" * 161, "Organisation name must be 160 characters or fewer"),
            ("charity_number", "12345", "Enter a charity number in the correct format"),
            ("charity_number", "SC12345", "Enter a charity number in the correct format"),
            (
                "companies_house_number",
                "123",
                "Enter a Companies House number in the correct format",
            ),
            ("organisation_type", "authority", "Select what kind of organisation it is"),
            ("organisation_type", "pcc", "Select what kind of organisation it is"),
            ("region_id", "9999", "Select a probation region from the list"),
            ("password_confirm", "something else entirely", "The passwords do not match"),
        ],
    )
    def test_bad_input_shows_errors_and_creates_nothing(self, client, field, value, message):
        response = client.post("/register", data={**self.FORM, field: value})
        assert response.status_code == 422
        assert any(m.startswith(message) for m in error_messages(response)), error_messages(
            response
        )
        assert "<title>Error:" in response.get_data(as_text=True)
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0
        assert db.session.scalar(sa.select(sa.func.count(Organisation.id))) == 0

    @pytest.mark.parametrize("password", ["password1234", "short", "Password1!"])
    def test_common_or_short_password(self, client, password):
        response = client.post(
            "/register", data={**self.FORM, "password": password, "password_confirm": password}
        )
        assert response.status_code == 422 and error_messages(response)
        assert db.session.scalar(sa.select(sa.func.count(User.id))) == 0

    @pytest.mark.parametrize("number", ["1234567", "123456", "SC012345", "NIC100123", "sc 012345"])
    def test_valid_charity_numbers(self, client, number):
        response = client.post("/register", data={**self.FORM, "charity_number": number})
        assert response.status_code == 302
        assert (
            db.session.scalar(sa.select(Organisation.charity_number))
            == number.replace(" ", "").upper()
        )

    def test_registered_email_gets_the_same_page(self, client):
        make_user(email="sam@hope.example")
        commit()
        response = client.post("/register", data=self.FORM)
        assert response.headers["Location"] == "/register/check-your-email"
        assert last_email().template == "already_registered"

    def test_missing_fields_do_not_crash(self, client):
        assert client.post("/register", data={}).status_code == 422


class TestPasswordResetPages:
    def test_full_reset(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        response = client.post("/forgot-password", data={"email": "buyer@example.org"})
        assert "If <strong>buyer@example.org</strong> has an account" in response.get_data(
            as_text=True
        )
        path = link_path(last_email(), "/reset-password/")
        assert client.get(path).status_code == 200
        bad = client.post(path, data={"password": "password", "password_confirm": "password"})
        assert bad.status_code == 422 and error_messages(bad)
        done = client.post(
            path, data={"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD}
        )
        assert done.headers["Location"] == "/sign-in"
        assert client.get(path).status_code == 410
        assert sign_in(client, "buyer@example.org", GOOD_PASSWORD).status_code == 302

    def test_unknown_email_gets_the_same_answer(self, client):
        response = client.post("/forgot-password", data={"email": "nobody@example.org"})
        assert "If <strong>nobody@example.org</strong> has an account" in response.get_data(
            as_text=True
        )
        assert last_email() is None

    def test_bad_token(self, client):
        assert client.get("/reset-password/made-up").status_code == 410
        assert (
            client.post("/reset-password/made-up", data={"password": GOOD_PASSWORD}).status_code
            == 410
        )


class TestInvitationPages:
    def invite(self, email="new@example.org", role=Role.BUYER):
        admin = make_member(Role.APPROVER, email="approver@example.org")
        organisation = admin.organisations[0]
        invite_user(admin, organisation, email=email, name="New Person", role=role)
        commit()
        return organisation, link_path(last_email(), "/invitations/")

    def test_new_person_makes_an_account(self, client):
        organisation, path = self.invite()
        assert client.get(path).status_code == 200
        response = client.post(
            path,
            data={
                "name": "New Person",
                "password": GOOD_PASSWORD,
                "password_confirm": GOOD_PASSWORD,
            },
        )
        assert response.headers["Location"] == "/"
        user = db.session.scalar(sa.select(User).where(User.email == "new@example.org"))
        assert user.roles_in(organisation) == {Role.BUYER}
        assert client.get(path).status_code == 410

    def test_weak_password_keeps_the_invitation(self, client):
        _, path = self.invite()
        response = client.post(
            path, data={"name": "New", "password": "password", "password_confirm": "password"}
        )
        assert response.status_code == 422 and error_messages(response)
        assert db.session.scalar(sa.select(Invitation.accepted_at)) is None

    def test_existing_account_must_sign_in_as_that_person(self, client):
        existing = make_member(Role.BUYER, email="new@example.org")
        commit()
        organisation, path = self.invite()
        assert "Sign in to accept" in client.get(path).get_data(as_text=True)
        other = make_member(Role.BUYER, email="other@example.org")
        commit()
        sign_in(client, other.email)
        assert "different account" in client.get(path).get_data(as_text=True)
        assert client.post(path).status_code == 200
        client.post("/sign-out")
        sign_in(client, existing.email)
        assert client.post(path).headers["Location"] == "/"
        db.session.expire_all()
        assert db.session.get(User, existing.id).roles_in(organisation) == {Role.BUYER}

    def test_revoked_invitation(self, client):
        _, path = self.invite()
        invitation = db.session.scalar(sa.select(Invitation))
        invitation.revoked_at = invitation.created_at
        commit()
        assert client.get(path).status_code == 410


class TestSwitchOrganisation:
    def test_switch_between_own_organisations_only(self, client, login):
        user = make_member(Role.BUYER)
        pcc = make_organisation(OrganisationType.PCC, name="Cheshire PCC")
        add_membership(user, pcc, Role.APPROVER)
        stranger = make_organisation(OrganisationType.PCC, name="Not mine")
        commit()
        login(user)
        response = client.post("/switch-organisation", data={"organisation_id": str(pcc.id)})
        assert response.status_code == 302
        home = client.get("/").get_data(as_text=True)
        assert "Cheshire PCC" in home and "Approver" in home or "approver" in home
        assert (
            client.post(
                "/switch-organisation", data={"organisation_id": str(stranger.id)}
            ).status_code
            == 404
        )
        assert (
            client.post("/switch-organisation", data={"organisation_id": "abc"}).status_code == 404
        )


class TestCsrf:
    def test_post_without_token_is_refused(self, client, csrf_enabled):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        response = sign_in(client, "buyer@example.org")
        assert response.status_code == 400
        assert client.get("/account").status_code == 302

    def test_post_with_wrong_token_is_refused(self, client, csrf_enabled):
        response = client.post(
            "/forgot-password", data={"email": "a@example.org", "csrf_token": "forged"}
        )
        assert response.status_code == 400
        assert last_email() is None

    def test_post_with_token_works(self, client, csrf_enabled):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        page = client.get("/sign-in").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        response = client.post(
            "/sign-in",
            data={"email": "buyer@example.org", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert response.status_code == 302
