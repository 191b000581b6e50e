"""Team pages: list, invite, change roles, remove, withdraw an invitation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    Invitation,
    InvitationStatus,
    Membership,
    OrganisationType,
    Role,
)
from marketplace.accounts.services.teams import invite_user, revoke_invitation
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.notifications.models import Notification
from tests.factories import (
    DEFAULT_TYPE_FOR_ROLE,
    add_membership,
    make_member,
    make_organisation,
    make_user,
)
from tests.pages import count, error_messages, text

NON_ADMIN_ROLES = [Role.BUYER, Role.PROVIDER_EDITOR, Role.ASSESSOR]
ADMIN_FOR = {
    Role.BUYER: Role.APPROVER,
    Role.PROVIDER_EDITOR: Role.PROVIDER_ADMIN,
    Role.ASSESSOR: Role.AUTHORITY_ADMIN,
}


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def state() -> tuple:
    """Everything a team page could change, to show that a refused request changed nothing."""
    return (
        count(Invitation),
        count(Invitation, Invitation.revoked_at.is_not(None)),
        sorted(
            db.session.execute(
                sa.select(Membership.user_id, Membership.organisation_id, Membership.role)
            ).all()
        ),
        count(Notification),
        count(AuditEvent),
    )


def provider_team():
    admin = make_member(Role.PROVIDER_ADMIN, name="Ada Admin")
    organisation = admin.organisations[0]
    editor = make_member(Role.PROVIDER_EDITOR, organisation, name="Ed Editor")
    return admin, organisation, editor


class TestTeamPage:
    @pytest.mark.parametrize(
        ("role", "organisation_type"),
        [
            (Role.PROVIDER_ADMIN, OrganisationType.PROVIDER_VCSE),
            (Role.APPROVER, OrganisationType.PCC),
            (Role.AUTHORITY_ADMIN, OrganisationType.AUTHORITY),
        ],
    )
    def test_organisation_admins_see_their_team(self, web, role, organisation_type):
        organisation = make_organisation(organisation_type, name="Our Org")
        admin = make_member(role, organisation, name="Ada Admin")
        colleague = make_member(role, organisation, name="Bo Colleague")
        response = web.as_user(admin, organisation).get("/team")
        assert response.status_code == 200
        html = text(response)
        assert '<h1 class="govuk-heading-l">Team</h1>' in html
        assert "Ada Admin" in html and "Bo Colleague" in html and colleague.email in html
        assert role.label in html and "govuk-tag" in html
        assert "Invite someone" in html and "Never" in html

    @pytest.mark.parametrize("role", NON_ADMIN_ROLES)
    def test_other_roles_are_refused(self, web, role):
        member = make_member(role)
        assert web.as_user(member, member.organisations[0]).get("/team").status_code == 403

    def test_signed_out_visitors_sign_in_first(self, web):
        response = web.get("/team")
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]

    def test_shows_pending_invitations_only(self, web):
        admin, organisation, _ = provider_team()
        invite_user(
            admin,
            organisation,
            email="pending@example.org",
            name="Pat Pending",
            role=Role.PROVIDER_EDITOR,
        )
        withdrawn = invite_user(
            admin, organisation, email="gone@example.org", name="Gone", role=Role.PROVIDER_EDITOR
        )
        revoke_invitation(admin, withdrawn)
        html = text(web.as_user(admin, organisation).get("/team"))
        assert "Pat Pending" in html and "pending@example.org" in html and "Withdraw" in html
        assert "gone@example.org" not in html

    def test_long_teams_are_paginated(self, web):
        admin, organisation, _ = provider_team()
        for n in range(30):
            make_member(Role.PROVIDER_EDITOR, organisation, name=f"Zed {n:02d}")
        web.as_user(admin, organisation)
        first = text(web.get("/team"))
        assert "Page 1 of 2" in first and "Zed 00" in first and "Zed 29" not in first
        second = text(web.get("/team?page=2"))
        assert "Zed 29" in second and "Ada Admin (you)" not in second
        assert "Page 1 of 2" in text(web.get("/team?page=nonsense"))
        assert "Page 2 of 2" in text(web.get("/team?page=99"))

    def test_authority_admin_manages_a_commissioners_team(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION, name="North East Probation")
        make_member(Role.BUYER, region, name="Bea Buyer")
        response = web.as_user(authority_admin).get(f"/team?organisation_id={region.id}")
        assert response.status_code == 200
        html = text(response)
        assert "North East Probation" in html and "Bea Buyer" in html
        assert f"/team/invite?organisation_id={region.id}" in html

    @pytest.mark.parametrize("value", ["999999", "abc", "-1", "1" * 40])
    def test_unknown_organisation_is_not_found(self, web, value):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        assert web.as_user(authority_admin).get(f"/team?organisation_id={value}").status_code == 404

    def test_authority_admin_cannot_manage_a_providers_team(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        provider = make_organisation(OrganisationType.PROVIDER_VCSE)
        assert (
            web.as_user(authority_admin).get(f"/team?organisation_id={provider.id}").status_code
            == 404
        )

    def test_another_organisations_team_is_not_found(self, web):
        admin, organisation, _ = provider_team()
        other = make_organisation(OrganisationType.PROVIDER_VCSE)
        web.as_user(admin, organisation)
        assert web.get(f"/team?organisation_id={other.id}").status_code == 404
        assert web.get(f"/team?organisation_id={organisation.id}").status_code == 200

    def test_a_member_naming_their_own_organisation_is_forbidden(self, web):
        _, organisation, editor = provider_team()
        assert (
            web.as_user(editor, organisation)
            .get(f"/team?organisation_id={organisation.id}")
            .status_code
            == 403
        )


class TestInvite:
    def test_form_offers_only_the_organisations_roles(self, web):
        admin, organisation, _ = provider_team()
        response = web.as_user(admin, organisation).get("/team/invite")
        assert response.status_code == 200
        html = text(response)
        assert "Provider administrator" in html and "Provider editor" in html
        assert 'value="buyer"' not in html and "Authority administrator" not in html
        assert html.count("<h1") == 1

    def test_invites_and_emails(self, web):
        admin, organisation, _ = provider_team()
        response = web.as_user(admin, organisation).post(
            "/team/invite",
            data={"name": "Nia New", "email": "Nia@Example.org", "role": "provider_editor"},
        )
        assert response.status_code == 302 and response.headers["Location"] == "/team"
        invitation = db.session.scalar(sa.select(Invitation))
        assert (invitation.email, invitation.name, invitation.role) == (
            "nia@example.org",
            "Nia New",
            Role.PROVIDER_EDITOR,
        )
        assert invitation.organisation_id == organisation.id
        [email] = db.session.scalars(sa.select(Notification)).all()
        assert email.template == "invitation" and email.to_email == "nia@example.org"
        assert "invitation.created" in audit_actions()
        page = text(web.get("/team"))
        assert "We have emailed nia@example.org" in page and "Nia New" in page

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (
                {"name": "", "email": "a@example.org", "role": "provider_editor"},
                "Enter their full name",
            ),
            ({"email": "a@example.org", "role": "provider_editor"}, "Enter their full name"),
            (
                {"name": "N" * 121, "email": "a@example.org", "role": "provider_editor"},
                "Name must be 120 characters or fewer",
            ),
            ({"name": "Nia", "email": "", "role": "provider_editor"}, "Enter an email address"),
            (
                {"name": "Nia", "email": "not-an-email", "role": "provider_editor"},
                "Enter an email address in the correct format, like name@example.com",
            ),
            (
                {"name": "Nia", "email": "a" * 250 + "@example.org", "role": "provider_editor"},
                "Email address must be 254 characters or fewer",
            ),
            ({"name": "Nia", "email": "a@example.org"}, "Select what they will do"),
            (
                {"name": "Nia", "email": "a@example.org", "role": "superuser"},
                "Select what they will do",
            ),
            (
                {"name": "Nia", "email": "a@example.org", "role": "buyer"},
                "Select what they will do",
            ),
            (
                {"name": "Nia", "email": "a@example.org", "role": "authority_admin"},
                "Select what they will do",
            ),
        ],
    )
    def test_bad_input_shows_errors_and_changes_nothing(self, web, data, message):
        admin, organisation, _ = provider_team()
        web.as_user(admin, organisation)
        before = state()
        response = web.post("/team/invite", data=data)
        assert response.status_code == 422
        assert message in error_messages(response)
        assert "<title>Error: " in text(response)
        assert state() == before

    def test_existing_member_in_that_role_is_a_form_error(self, web):
        admin, organisation, editor = provider_team()
        web.as_user(admin, organisation)
        before = state()
        response = web.post(
            "/team/invite",
            data={"name": "Ed", "email": editor.email.upper(), "role": "provider_editor"},
        )
        assert response.status_code == 422
        assert f"{editor.email} already has this role in {organisation.name}" in error_messages(
            response
        )
        assert state() == before

    def test_html_in_the_name_is_stored_as_text_and_shown_escaped(self, web):
        admin, organisation, _ = provider_team()
        evil = "<script>alert('x')</script> Robert'); DROP TABLE users;--"
        web.as_user(admin, organisation).post(
            "/team/invite",
            data={"name": evil, "email": "evil@example.org", "role": "provider_editor"},
        )
        assert db.session.scalar(sa.select(Invitation.name)) == evil
        html = text(web.get("/team"))
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html

    @pytest.mark.parametrize("role", NON_ADMIN_ROLES)
    def test_other_roles_are_refused(self, web, role):
        member = make_member(role)
        web.as_user(member, member.organisations[0])
        before = state()
        assert web.get("/team/invite").status_code == 403
        response = web.post(
            "/team/invite", data={"name": "X", "email": "x@example.org", "role": role.value}
        )
        assert response.status_code == 403
        assert state() == before

    def test_authority_admin_invites_into_a_commissioner(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        pcc = make_organisation(OrganisationType.PCC, name="Avon PCC")
        web.as_user(authority_admin)
        form = text(web.get(f"/team/invite?organisation_id={pcc.id}"))
        assert "Avon PCC" in form and 'value="approver"' in form and 'value="assessor"' not in form
        response = web.post(
            f"/team/invite?organisation_id={pcc.id}",
            data={"name": "Pam", "email": "pam@example.org", "role": "approver"},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == f"/organisations/{pcc.id}"
        invitation = db.session.scalar(sa.select(Invitation))
        assert invitation.organisation_id == pcc.id and invitation.role == Role.APPROVER
        assert count(Notification, Notification.template == "invitation") == 1

    def test_authority_admin_cannot_invite_into_a_provider(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        provider = make_organisation(OrganisationType.PROVIDER_VCSE)
        response = web.as_user(authority_admin).post(
            f"/team/invite?organisation_id={provider.id}",
            data={"name": "P", "email": "p@example.org", "role": "provider_admin"},
        )
        assert response.status_code == 404
        assert count(Invitation) == 0

    def test_inactive_organisation_is_a_form_error(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION, active=False)
        response = web.as_user(authority_admin).post(
            f"/team/invite?organisation_id={region.id}",
            data={"name": "P", "email": "p@example.org", "role": "buyer"},
        )
        assert response.status_code == 422
        assert "This organisation is not active" in error_messages(response)
        assert count(Invitation) == 0

    def test_post_without_csrf_token_is_refused(self, web, csrf_enabled):
        admin, organisation, _ = provider_team()
        response = web.as_user(admin, organisation).post(
            "/team/invite",
            data={"name": "Nia", "email": "nia@example.org", "role": "provider_editor"},
        )
        assert response.status_code == 400
        assert count(Invitation) == 0

    def test_post_with_csrf_token_works(self, web, csrf_enabled):
        admin, organisation, _ = provider_team()
        html = text(web.as_user(admin, organisation).get("/team/invite"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
            r'name="csrf_token" value="([^"]+)"', html
        )
        response = web.post(
            "/team/invite",
            data={
                "name": "Nia",
                "email": "nia@example.org",
                "role": "provider_editor",
                "csrf_token": token.group(1),
            },
        )
        assert response.status_code == 302
        assert count(Invitation) == 1


class TestMemberRoles:
    def test_shows_current_roles_and_changes_them(self, web):
        admin, organisation, editor = provider_team()
        web.as_user(admin, organisation)
        form = text(web.get(f"/team/members/{editor.id}/roles"))
        assert "Change Ed Editor" in form
        assert re.search(r'value="provider_editor"\s+checked', form)
        response = web.post(
            f"/team/members/{editor.id}/roles",
            data={"roles": ["provider_admin", "provider_editor"]},
        )
        assert response.status_code == 302 and response.headers["Location"] == "/team"
        db.session.expire_all()
        assert editor.roles_in(organisation) == {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}
        assert "membership.roles_changed" in audit_actions()
        assert count(Notification, Notification.template == "roles_changed") == 1

    @pytest.mark.parametrize(
        ("roles", "message"),
        [
            ([], "Select at least one role, or remove the person from the team instead"),
            (["superuser"], "Select roles from the list"),
            (["buyer"], "Select roles from the list"),
        ],
    )
    def test_bad_input_changes_nothing(self, web, roles, message):
        admin, organisation, editor = provider_team()
        web.as_user(admin, organisation)
        before = state()
        response = web.post(f"/team/members/{editor.id}/roles", data={"roles": roles})
        assert response.status_code == 422
        assert message in error_messages(response)
        assert state() == before

    def test_the_last_admin_keeps_the_admin_role(self, web):
        admin, organisation, _ = provider_team()
        web.as_user(admin, organisation)
        before = state()
        response = web.post(f"/team/members/{admin.id}/roles", data={"roles": ["provider_editor"]})
        assert response.status_code == 422
        assert any("needs at least one administrator" in m for m in error_messages(response))
        assert state() == before

    def test_stepping_down_goes_home(self, web):
        admin, organisation, _ = provider_team()
        make_member(Role.PROVIDER_ADMIN, organisation)
        response = web.as_user(admin, organisation).post(
            f"/team/members/{admin.id}/roles", data={"roles": ["provider_editor"]}
        )
        assert response.status_code == 302 and response.headers["Location"] == "/"

    def test_someone_outside_the_organisation_is_not_found(self, web):
        admin, organisation, _ = provider_team()
        stranger = make_member(Role.PROVIDER_EDITOR)
        web.as_user(admin, organisation)
        before = state()
        assert web.get(f"/team/members/{stranger.id}/roles").status_code == 404
        assert (
            web.post(
                f"/team/members/{stranger.id}/roles", data={"roles": ["provider_admin"]}
            ).status_code
            == 404
        )
        assert web.get("/team/members/999999/roles").status_code == 404
        assert state() == before

    @pytest.mark.parametrize("role", NON_ADMIN_ROLES)
    def test_other_roles_are_refused(self, web, role):
        member = make_member(role)
        organisation = member.organisations[0]
        colleague = make_member(role, organisation)
        web.as_user(member, organisation)
        before = state()
        assert web.get(f"/team/members/{colleague.id}/roles").status_code == 403
        assert (
            web.post(
                f"/team/members/{colleague.id}/roles", data={"roles": [role.value]}
            ).status_code
            == 403
        )
        assert state() == before

    def test_authority_admin_changes_roles_in_a_commissioner(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION)
        buyer = make_member(Role.BUYER, region)
        response = web.as_user(authority_admin).post(
            f"/team/members/{buyer.id}/roles?organisation_id={region.id}",
            data={"roles": ["approver"]},
        )
        assert response.status_code == 302
        db.session.expire_all()
        assert buyer.roles_in(region) == {Role.APPROVER}


class TestRemoveMember:
    def test_confirm_then_remove(self, web):
        admin, organisation, editor = provider_team()
        web.as_user(admin, organisation)
        page = web.get(f"/team/members/{editor.id}/remove")
        assert page.status_code == 200
        assert "Are you sure you want to remove Ed Editor?" in text(page)
        assert db.session.scalar(sa.select(Membership).where(Membership.user_id == editor.id))
        response = web.post(f"/team/members/{editor.id}/remove")
        assert response.status_code == 302 and response.headers["Location"] == "/team"
        assert count(Membership, Membership.user_id == editor.id) == 0
        assert "membership.removed" in audit_actions()
        assert count(Notification, Notification.template == "removed_from_organisation") == 1
        assert "Ed Editor has been removed" in text(web.get("/team"))

    def test_the_last_admin_cannot_be_removed(self, web):
        admin, organisation, _ = provider_team()
        web.as_user(admin, organisation)
        before = state()
        response = web.post(f"/team/members/{admin.id}/remove")
        assert response.status_code == 422
        assert any("needs at least one administrator" in m for m in error_messages(response))
        assert "<title>Error: " in text(response)
        assert state() == before

    def test_someone_outside_the_organisation_is_not_found(self, web):
        admin, organisation, _ = provider_team()
        stranger = make_member(Role.PROVIDER_EDITOR)
        web.as_user(admin, organisation)
        before = state()
        assert web.get(f"/team/members/{stranger.id}/remove").status_code == 404
        assert web.post(f"/team/members/{stranger.id}/remove").status_code == 404
        assert state() == before

    @pytest.mark.parametrize("role", NON_ADMIN_ROLES)
    def test_other_roles_are_refused(self, web, role):
        member = make_member(role)
        organisation = member.organisations[0]
        colleague = make_member(role, organisation)
        web.as_user(member, organisation)
        before = state()
        assert web.get(f"/team/members/{colleague.id}/remove").status_code == 403
        assert web.post(f"/team/members/{colleague.id}/remove").status_code == 403
        assert state() == before

    def test_removing_yourself_goes_home(self, web):
        admin, organisation, _ = provider_team()
        make_member(Role.PROVIDER_ADMIN, organisation)
        elsewhere = make_organisation(OrganisationType.PROVIDER_PRIVATE)
        add_membership(admin, elsewhere, Role.PROVIDER_EDITOR)
        response = web.as_user(admin, organisation).post(f"/team/members/{admin.id}/remove")
        assert response.status_code == 302 and response.headers["Location"] == "/"
        assert admin.roles_in(organisation) == set()


class TestWithdrawInvitation:
    def invitation(self, admin, organisation, email="x@example.org") -> Invitation:
        return invite_user(admin, organisation, email=email, name="X", role=Role.PROVIDER_EDITOR)

    def test_withdraws(self, web):
        admin, organisation, _ = provider_team()
        invitation = self.invitation(admin, organisation)
        response = web.as_user(admin, organisation).post(
            f"/team/invitations/{invitation.id}/withdraw"
        )
        assert response.status_code == 302 and response.headers["Location"] == "/team"
        assert db.session.get(Invitation, invitation.id).status == InvitationStatus.REVOKED
        assert "invitation.revoked" in audit_actions()

    def test_already_withdrawn_says_so_and_changes_nothing(self, web):
        admin, organisation, _ = provider_team()
        invitation = self.invitation(admin, organisation)
        revoke_invitation(admin, invitation)
        web.as_user(admin, organisation)
        before = state()
        response = web.post(f"/team/invitations/{invitation.id}/withdraw")
        assert response.status_code == 302
        assert state() == before
        assert "Only a pending invitation can be withdrawn" in text(web.get("/team"))

    def test_another_organisations_invitation_is_not_found(self, web):
        admin, organisation, _ = provider_team()
        other_admin = make_member(Role.PROVIDER_ADMIN)
        invitation = self.invitation(other_admin, other_admin.organisations[0])
        web.as_user(admin, organisation)
        before = state()
        assert web.post(f"/team/invitations/{invitation.id}/withdraw").status_code == 404
        assert web.post("/team/invitations/999999/withdraw").status_code == 404
        assert state() == before

    @pytest.mark.parametrize("role", NON_ADMIN_ROLES)
    def test_a_non_admin_colleague_is_refused(self, web, role):
        organisation = make_organisation(DEFAULT_TYPE_FOR_ROLE[role])
        admin = make_member(ADMIN_FOR[role], organisation)
        member = make_member(role, organisation)
        invitation = invite_user(admin, organisation, email="x@example.org", name="X", role=role)
        web.as_user(member, organisation)
        before = state()
        assert web.post(f"/team/invitations/{invitation.id}/withdraw").status_code == 403
        assert state() == before

    def test_get_is_not_allowed(self, web):
        admin, organisation, _ = provider_team()
        invitation = self.invitation(admin, organisation)
        assert (
            web.as_user(admin, organisation)
            .get(f"/team/invitations/{invitation.id}/withdraw")
            .status_code
            == 405
        )

    def test_authority_admin_withdraws_a_commissioners_invitation(self, web):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION)
        invitation = invite_user(
            authority_admin, region, email="b@example.org", name="B", role=Role.BUYER
        )
        response = web.as_user(authority_admin).post(f"/team/invitations/{invitation.id}/withdraw")
        assert (
            response.status_code == 302
            and response.headers["Location"] == f"/organisations/{region.id}"
        )
        assert db.session.get(Invitation, invitation.id).status == InvitationStatus.REVOKED


def test_team_link_in_navigation(web):
    admin, organisation, _ = provider_team()
    html = text(web.as_user(admin, organisation).get("/"))
    assert 'href="/team"' in html
    editor = make_user()
    add_membership(editor, organisation, Role.PROVIDER_EDITOR)
    assert 'href="/team"' not in text(web.as_user(editor, organisation).get("/"))
