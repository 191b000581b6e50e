"""Team services: invitations, roles, removing people (accepting is tested elsewhere)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    ApiToken,
    Invitation,
    InvitationStatus,
    Membership,
    OrganisationType,
    Role,
)
from marketplace.accounts.services.teams import (
    invite_user,
    remove_member,
    revoke_invitation,
    set_member_roles,
)
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.factories import add_membership, make_member, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("app")


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def emails(template: str) -> list[Notification]:
    return list(
        db.session.scalars(sa.select(Notification).where(Notification.template == template))
    )


class TestInviteUser:
    def test_invites_queues_email_and_audits(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        invitation = invite_user(
            admin,
            organisation,
            email=" New@Example.ORG ",
            name="  Ann New ",
            role=Role.PROVIDER_EDITOR,
        )
        commit()
        assert invitation.email == "new@example.org" and invitation.name == "Ann New"
        assert invitation.status == InvitationStatus.PENDING
        assert invitation.invited_by_id == admin.id
        [email] = emails("invitation")
        assert email.to_email == "new@example.org"
        assert organisation.name in email.subject
        assert "http://marketplace.test/invitations/" in email.body
        [event] = events("invitation.created")
        assert event.actor_id == admin.id and event.organisation_id == organisation.id
        assert event.after == {
            "email": "new@example.org",
            "role": "provider_editor",
            "name": "Ann New",
        }

    @pytest.mark.parametrize(
        ("role", "organisation_type", "wrong_role"),
        [
            (Role.PROVIDER_ADMIN, OrganisationType.PROVIDER_VCSE, Role.BUYER),
            (Role.PROVIDER_ADMIN, OrganisationType.PROVIDER_PRIVATE, Role.AUTHORITY_ADMIN),
            (Role.APPROVER, OrganisationType.PROBATION_REGION, Role.PROVIDER_EDITOR),
            (Role.APPROVER, OrganisationType.PCC, Role.ASSESSOR),
            (Role.AUTHORITY_ADMIN, OrganisationType.AUTHORITY, Role.BUYER),
        ],
    )
    def test_role_must_fit_the_organisation_type(self, role, organisation_type, wrong_role):
        organisation = make_organisation(organisation_type)
        admin = make_member(role, organisation)
        with pytest.raises(BusinessRuleViolation) as raised:
            invite_user(admin, organisation, email="x@example.org", name="X", role=wrong_role)
        assert "role" in raised.value.errors
        assert count(Invitation) == 0 and count(Notification) == 0

    @pytest.mark.parametrize("role", [Role.PROVIDER_EDITOR])
    def test_non_admin_cannot_invite(self, role):
        editor = make_member(role)
        with pytest.raises(PermissionDenied):
            invite_user(
                editor,
                editor.organisations[0],
                email="x@example.org",
                name="X",
                role=Role.PROVIDER_EDITOR,
            )
        assert count(Invitation) == 0

    def test_buyer_cannot_invite(self):
        buyer = make_member(Role.BUYER)
        with pytest.raises(PermissionDenied):
            invite_user(
                buyer, buyer.organisations[0], email="x@example.org", name="X", role=Role.BUYER
            )

    def test_admin_of_another_organisation_cannot_invite(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        other = make_organisation(OrganisationType.PROVIDER_VCSE)
        with pytest.raises(PermissionDenied):
            invite_user(admin, other, email="x@example.org", name="X", role=Role.PROVIDER_EDITOR)

    def test_authority_admin_invites_into_commissioners_but_not_providers(self):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        pcc = make_organisation(OrganisationType.PCC)
        invitation = invite_user(
            authority_admin, pcc, email="pcc@example.org", name="P", role=Role.APPROVER
        )
        assert invitation.organisation_id == pcc.id
        provider = make_organisation(OrganisationType.PROVIDER_VCSE)
        with pytest.raises(PermissionDenied):
            invite_user(
                authority_admin, provider, email="p@example.org", name="P", role=Role.PROVIDER_ADMIN
            )

    def test_already_has_the_role(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        make_member(Role.PROVIDER_EDITOR, organisation, email="member@example.org")
        with pytest.raises(BusinessRuleViolation) as raised:
            invite_user(
                admin, organisation, email="MEMBER@example.org", name="M", role=Role.PROVIDER_EDITOR
            )
        assert "email" in raised.value.errors
        assert count(Invitation) == 0 and count(Notification) == 0

    def test_existing_member_can_be_invited_to_another_role(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        make_member(Role.PROVIDER_EDITOR, organisation, email="member@example.org")
        invitation = invite_user(
            admin, organisation, email="member@example.org", name="M", role=Role.PROVIDER_ADMIN
        )
        assert invitation.role == Role.PROVIDER_ADMIN

    def test_a_new_invitation_replaces_the_pending_one(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        first = invite_user(
            admin, organisation, email="x@example.org", name="X", role=Role.PROVIDER_EDITOR
        )
        commit()
        second = invite_user(
            admin, organisation, email="X@example.org", name="X", role=Role.PROVIDER_EDITOR
        )
        commit()
        assert first.status == InvitationStatus.REVOKED
        assert second.status == InvitationStatus.PENDING
        assert first.token_hash != second.token_hash
        assert len(emails("invitation")) == 2

    def test_a_pending_invitation_for_another_role_stays(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        first = invite_user(
            admin, organisation, email="x@example.org", name="X", role=Role.PROVIDER_EDITOR
        )
        invite_user(admin, organisation, email="x@example.org", name="X", role=Role.PROVIDER_ADMIN)
        commit()
        assert first.status == InvitationStatus.PENDING

    def test_inactive_organisation(self):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION, active=False)
        with pytest.raises(BusinessRuleViolation):
            invite_user(authority_admin, region, email="x@example.org", name="X", role=Role.BUYER)
        assert count(Invitation) == 0


class TestRevokeInvitation:
    def test_withdraws_and_audits(self):
        admin = make_member(Role.APPROVER)
        invitation = invite_user(
            admin, admin.organisations[0], email="x@example.org", name="X", role=Role.BUYER
        )
        revoke_invitation(admin, invitation)
        commit()
        assert invitation.status == InvitationStatus.REVOKED
        assert len(events("invitation.revoked")) == 1

    def test_only_pending_invitations(self):
        admin = make_member(Role.APPROVER)
        invitation = invite_user(
            admin, admin.organisations[0], email="x@example.org", name="X", role=Role.BUYER
        )
        invitation.expires_at = utcnow() - timedelta(seconds=1)
        with pytest.raises(BusinessRuleViolation):
            revoke_invitation(admin, invitation)

    def test_other_organisations_admin_cannot(self):
        admin = make_member(Role.APPROVER)
        invitation = invite_user(
            admin, admin.organisations[0], email="x@example.org", name="X", role=Role.BUYER
        )
        stranger = make_member(Role.PROVIDER_ADMIN)
        with pytest.raises(PermissionDenied):
            revoke_invitation(stranger, invitation)


class TestSetMemberRoles:
    def test_changes_roles_audits_and_emails(self):
        admin = make_member(Role.APPROVER)
        organisation = admin.organisations[0]
        buyer = make_member(Role.BUYER, organisation)
        set_member_roles(admin, organisation, buyer, {Role.BUYER, Role.APPROVER})
        commit()
        assert buyer.roles_in(organisation) == {Role.BUYER, Role.APPROVER}
        [event] = events("membership.roles_changed")
        assert event.before == {"roles": ["buyer"]} and event.after == {
            "roles": ["approver", "buyer"]
        }
        assert event.object_type == "user" and event.object_id == str(buyer.id)
        [email] = emails("roles_changed")
        assert email.to_email == buyer.email

    def test_last_admin_cannot_lose_the_admin_role(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        make_member(Role.PROVIDER_EDITOR, organisation)
        with pytest.raises(BusinessRuleViolation) as raised:
            set_member_roles(admin, organisation, admin, {Role.PROVIDER_EDITOR})
        assert "roles" in raised.value.errors
        assert admin.roles_in(organisation) == {Role.PROVIDER_ADMIN}
        assert count(AuditEvent) == 0

    def test_an_admin_can_step_down_when_another_admin_exists(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        make_member(Role.PROVIDER_ADMIN, organisation)
        set_member_roles(admin, organisation, admin, {Role.PROVIDER_EDITOR})
        commit()
        assert admin.roles_in(organisation) == {Role.PROVIDER_EDITOR}

    def test_an_inactive_admin_does_not_count(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        make_member(Role.PROVIDER_ADMIN, organisation, active=False)
        with pytest.raises(BusinessRuleViolation):
            set_member_roles(admin, organisation, admin, {Role.PROVIDER_EDITOR})

    def test_roles_must_fit_the_organisation(self):
        admin = make_member(Role.APPROVER)
        organisation = admin.organisations[0]
        buyer = make_member(Role.BUYER, organisation)
        with pytest.raises(BusinessRuleViolation):
            set_member_roles(admin, organisation, buyer, {Role.PROVIDER_ADMIN})
        with pytest.raises(BusinessRuleViolation):
            set_member_roles(admin, organisation, buyer, set())
        assert buyer.roles_in(organisation) == {Role.BUYER}

    def test_only_people_in_the_organisation(self):
        admin = make_member(Role.APPROVER)
        stranger = make_member(Role.BUYER)
        with pytest.raises(BusinessRuleViolation):
            set_member_roles(admin, admin.organisations[0], stranger, {Role.BUYER})

    def test_non_admin_refused(self):
        buyer = make_member(Role.BUYER)
        organisation = buyer.organisations[0]
        other = make_member(Role.BUYER, organisation)
        with pytest.raises(PermissionDenied):
            set_member_roles(buyer, organisation, other, {Role.APPROVER})


class TestRemoveMember:
    def test_removes_revokes_their_tokens_for_that_organisation_only(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        organisation = admin.organisations[0]
        editor = make_member(Role.PROVIDER_EDITOR, organisation)
        elsewhere = make_organisation(OrganisationType.PROVIDER_PRIVATE)
        add_membership(editor, elsewhere, Role.PROVIDER_ADMIN)
        here_token, _ = create_api_token(editor, organisation, "here")
        there_token, _ = create_api_token(editor, elsewhere, "there")
        commit()
        remove_member(admin, organisation, editor)
        commit()
        assert editor.roles_in(organisation) == set()
        assert editor.roles_in(elsewhere) == {Role.PROVIDER_ADMIN}
        assert db.session.get(ApiToken, here_token.id).revoked_at is not None
        assert db.session.get(ApiToken, there_token.id).revoked_at is None
        [event] = events("membership.removed")
        assert (
            event.before == {"roles": ["provider_editor"]}
            and event.organisation_id == organisation.id
        )
        assert [e.to_email for e in emails("removed_from_organisation")] == [editor.email]

    def test_last_admin_cannot_be_removed(self):
        admin = make_member(Role.APPROVER)
        organisation = admin.organisations[0]
        make_member(Role.BUYER, organisation)
        with pytest.raises(BusinessRuleViolation) as raised:
            remove_member(admin, organisation, admin)
        assert "member" in raised.value.errors
        assert count(Membership, Membership.user_id == admin.id) == 1

    def test_authority_admin_removes_from_a_commissioner(self):
        authority_admin = make_member(Role.AUTHORITY_ADMIN)
        region = make_organisation(OrganisationType.PROBATION_REGION)
        buyer = make_member(Role.BUYER, region)
        remove_member(authority_admin, region, buyer)
        assert buyer.roles_in(region) == set()

    def test_strangers_refused(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        victim = make_member(Role.PROVIDER_EDITOR)
        with pytest.raises(PermissionDenied):
            remove_member(admin, victim.organisations[0], victim)

    def test_not_a_member(self):
        admin = make_member(Role.PROVIDER_ADMIN)
        user = make_user()
        with pytest.raises(BusinessRuleViolation):
            remove_member(admin, admin.organisations[0], user)
