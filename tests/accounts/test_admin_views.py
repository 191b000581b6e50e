"""The authority's pages: organisations (list, create, view, edit, deactivate) and the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role
from marketplace.accounts.services.teams import invite_user
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.reference.models import PccArea, ProbationRegion
from tests.factories import make_member, make_organisation, make_user
from tests.pages import count, error_messages, main, text

OTHER_ROLES = [Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR, Role.ASSESSOR]


@pytest.fixture
def admin(web):
    user = make_member(Role.AUTHORITY_ADMIN, name="Ava Authority")
    web.as_user(user)
    return user


def organisations_state() -> list:
    return sorted(
        tuple(row)
        for row in db.session.execute(
            sa.select(
                Organisation.id,
                Organisation.name,
                Organisation.type,
                Organisation.charity_number,
                Organisation.companies_house_number,
                Organisation.region_id,
                Organisation.pcc_area_id,
                Organisation.active,
            )
        )
    ) + [count(AuditEvent)]


def region(code="A") -> ProbationRegion:
    return db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == code))


def pcc_area(code="avon-and-somerset") -> PccArea:
    return db.session.scalar(sa.select(PccArea).where(PccArea.code == code))


ADMIN_PAGES = [
    ("GET", "/organisations"),
    ("GET", "/organisations/new"),
    ("POST", "/organisations/new"),
    ("GET", "/organisations/{id}"),
    ("GET", "/organisations/{id}/edit"),
    ("POST", "/organisations/{id}/edit"),
    ("GET", "/organisations/{id}/deactivate"),
    ("POST", "/organisations/{id}/deactivate"),
    ("GET", "/organisations/{id}/reactivate"),
    ("POST", "/organisations/{id}/reactivate"),
    ("GET", "/audit"),
]


@pytest.mark.parametrize("role", OTHER_ROLES)
@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
def test_only_the_authority_admin(web, role, method, path):
    member = make_member(role)
    target = make_organisation(OrganisationType.PROBATION_REGION, name="Target")
    web.as_user(member, member.organisations[0])
    before = organisations_state()
    data = {"name": "Changed", "type": "probation_region", "region_id": str(region().id)}
    response = web.open(
        path.format(id=target.id), method=method, data=data if method == "POST" else None
    )
    assert response.status_code == 403
    assert organisations_state() == before


@pytest.mark.parametrize(("method", "path"), ADMIN_PAGES)
def test_signed_out_visitors_sign_in_first(web, method, path):
    response = web.open(path.format(id=1), method=method)
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


class TestOrganisationList:
    def test_lists_with_counts_and_links(self, web, admin):
        region_org = make_organisation(
            OrganisationType.PROBATION_REGION, name="North East Probation"
        )
        make_member(Role.BUYER, region_org)
        make_member(Role.APPROVER, region_org)
        make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing", active=False)
        response = web.get("/organisations")
        assert response.status_code == 200
        html = main(response)
        assert html.count("<h1") == 1
        assert "3 organisations: 2 active, 1 inactive" in html
        assert f'href="/organisations/{region_org.id}"' in html
        assert re.search(
            r"North East Probation</a></td>\s*<td[^>]*>Probation service region</td>\s*"
            r"<td[^>]*>2</td>",
            html,
        )
        assert "Hope Housing" in html and "Inactive" in html

    def test_filters(self, web, admin):
        make_organisation(OrganisationType.PROBATION_REGION, name="North East Probation")
        make_organisation(OrganisationType.PCC, name="Avon PCC")
        make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing", active=False)
        make_organisation(OrganisationType.PROVIDER_VCSE, name="100% North_Trust")

        def names(query: str) -> set[str]:
            html = main(web.get("/organisations?" + query))
            return set(re.findall(r'href="/organisations/\d+">([^<]+)</a>', html))

        assert names("type=pcc") == {"Avon PCC"}
        assert names("status=inactive") == {"Hope Housing"}
        assert names("name=north") == {"North East Probation", "100% North_Trust"}
        assert names("name=100%25") == {"100% North_Trust"}
        assert names("name=h_e") == set()  # _ is not a wildcard
        assert names("type=provider_vcse&status=active") == {"100% North_Trust"}
        assert "No organisations match" in main(web.get("/organisations?name=zzz"))

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("type=spaceship", "Choose a type from the list"),
            ("status=maybe", "Choose a status from the list"),
            ("name=" + "x" * 161, "Name must be 160 characters or fewer"),
        ],
    )
    def test_bad_filters_show_errors(self, web, admin, query, message):
        response = web.get("/organisations?" + query)
        assert response.status_code == 200
        assert message in error_messages(response)
        assert "<title>Error: " in text(response)

    def test_paginates_and_keeps_filters(self, web, admin):
        for n in range(30):
            make_organisation(OrganisationType.PRISON, name=f"HMP {n:02d}")
        first = main(web.get("/organisations?type=prison"))
        assert "30 organisations found" in first and "HMP 00" in first and "HMP 29" not in first
        assert "page=2" in first and "type=prison" in first
        second = main(web.get("/organisations?type=prison&page=2"))
        assert "HMP 29" in second and "HMP 00" not in second


class TestCreateOrganisation:
    def test_form(self, web, admin):
        response = web.get("/organisations/new")
        assert response.status_code == 200
        html = main(response)
        assert "Create a commissioning organisation" in html
        assert 'value="pcc"' in html and 'value="authority"' in html
        assert 'value="provider_vcse"' not in html
        assert "Avon and Somerset" in html and "North East" in html

    def test_creates_a_pcc_with_its_region(self, web, admin):
        area = pcc_area()
        response = web.post(
            "/organisations/new",
            data={
                "name": "Avon and Somerset PCC",
                "type": "pcc",
                "pcc_area_id": str(area.id),
            },
        )
        assert response.status_code == 302
        organisation = db.session.scalar(
            sa.select(Organisation).where(Organisation.name == "Avon and Somerset PCC")
        )
        assert response.headers["Location"] == f"/organisations/{organisation.id}"
        assert organisation.type == OrganisationType.PCC
        assert organisation.pcc_area_id == area.id and organisation.region_id == area.region_id
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "organisation.created")
        )
        assert event.actor_id == admin.id and event.object_id == str(organisation.id)
        assert event.after["name"] == "Avon and Somerset PCC"
        assert "Avon and Somerset PCC has been created" in main(
            web.get(response.headers["Location"])
        )

    def test_creates_a_probation_region_with_numbers(self, web, admin):
        response = web.post(
            "/organisations/new",
            data={
                "name": "North East Probation",
                "type": "probation_region",
                "region_id": str(region("A").id),
                "charity_number": "sc 012345",
                "companies_house_number": "01234567",
            },
        )
        assert response.status_code == 302
        organisation = db.session.scalar(
            sa.select(Organisation).where(Organisation.name == "North East Probation")
        )
        assert organisation.region_id == region("A").id
        assert (
            organisation.charity_number == "SC012345"
            and organisation.companies_house_number == "01234567"
        )

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"type": "prison"}, "Enter the organisation's name"),
            (
                {"name": "N" * 161, "type": "prison"},
                "Organisation name must be 160 characters or fewer",
            ),
            ({"name": "HMP X"}, "Select what kind of organisation it is"),
            ({"name": "HMP X", "type": "spaceship"}, "Select what kind of organisation it is"),
            (
                {"name": "Provider", "type": "provider_vcse"},
                "Select what kind of organisation it is",
            ),
            ({"name": "PCC", "type": "pcc"}, "Choose the PCC area"),
            ({"name": "Region", "type": "probation_region"}, "Choose the probation region"),
            (
                {"name": "Region", "type": "probation_region", "region_id": "999999"},
                "Choose a probation region from the list",
            ),
            (
                {"name": "Region", "type": "probation_region", "region_id": "north"},
                "Choose a probation region from the list",
            ),
            (
                {"name": "PCC", "type": "pcc", "pcc_area_id": "abc"},
                "Choose a PCC area from the list",
            ),
            (
                {"name": "HMP X", "type": "prison", "charity_number": "12"},
                "Enter a charity number in the correct format, like 1234567, SC012345 or NIC100123",
            ),
            (
                {"name": "HMP X", "type": "prison", "charity_number": "1" * 50},
                "Enter a charity number in the correct format, like 1234567, SC012345 or NIC100123",
            ),
            (
                {"name": "HMP X", "type": "prison", "companies_house_number": "ABC"},
                "Enter a Companies House number in the correct format, like 01234567 or SC123456",
            ),
        ],
    )
    def test_bad_input_shows_errors_and_changes_nothing(self, web, admin, data, message):
        before = organisations_state()
        response = web.post("/organisations/new", data=data)
        assert response.status_code == 422
        assert message in error_messages(response)
        assert "<title>Error: " in text(response)
        assert organisations_state() == before

    def test_html_in_the_name_is_stored_as_text_and_shown_escaped(self, web, admin):
        evil = "<script>alert(1)</script>'; DROP TABLE organisations;--"
        response = web.post("/organisations/new", data={"name": evil, "type": "prison"})
        assert response.status_code == 302
        organisation = db.session.scalar(
            sa.select(Organisation).where(Organisation.type == OrganisationType.PRISON)
        )
        assert organisation.name == evil
        for page in (web.get(response.headers["Location"]), web.get("/organisations")):
            assert "<script>alert(1)" not in text(page)
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(page)


class TestOrganisationPage:
    def test_details_people_and_invite_for_a_commissioner(self, web, admin):
        area = pcc_area()
        pcc = make_organisation(
            OrganisationType.PCC, name="Avon PCC", pcc_area_id=area.id, region_id=area.region_id
        )
        make_member(Role.APPROVER, pcc, name="Pat Approver")
        invite_user(admin, pcc, email="new@example.org", name="Nia New", role=Role.BUYER)
        response = web.get(f"/organisations/{pcc.id}")
        assert response.status_code == 200
        html = main(response)
        assert (
            "Avon PCC" in html
            and "Police and Crime Commissioner" in html
            and "Avon and Somerset" in html
        )
        assert "govuk-summary-list" in html
        assert "Pat Approver" in html and "Nia New" in html
        assert f"/team/invite?organisation_id={pcc.id}" in html
        assert (
            f"/organisations/{pcc.id}/edit" in html
            and f"/organisations/{pcc.id}/deactivate" in html
        )

    def test_a_providers_team_is_shown_but_not_managed(self, web, admin):
        provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
        make_member(Role.PROVIDER_ADMIN, provider, name="Hana Provider")
        html = main(web.get(f"/organisations/{provider.id}"))
        assert "Hana Provider" in html
        assert "/team/invite" not in html and "/team/members/" not in html

    def test_the_authority_cannot_be_deactivated_from_its_page(self, web, admin):
        html = main(web.get(f"/organisations/{admin.organisations[0].id}"))
        assert "/deactivate" not in html

    def test_unknown_organisation(self, web, admin):
        assert web.get("/organisations/999999").status_code == 404
        assert web.get("/organisations/999999/edit").status_code == 404
        assert web.post("/organisations/999999/deactivate").status_code == 404


class TestEditOrganisation:
    def test_prefilled_and_saves(self, web, admin):
        prison = make_organisation(OrganisationType.PRISON, name="HMP Old")
        form = main(web.get(f"/organisations/{prison.id}/edit"))
        assert 'value="HMP Old"' in form and re.search(r'value="prison"\s+checked', form)
        assert 'value="provider_vcse"' not in form and 'value="authority"' not in form
        response = web.post(
            f"/organisations/{prison.id}/edit",
            data={"name": "HMP New", "type": "other_commissioner"},
        )
        assert (
            response.status_code == 302
            and response.headers["Location"] == f"/organisations/{prison.id}"
        )
        prison = db.session.get(Organisation, prison.id)
        assert prison.name == "HMP New" and prison.type == OrganisationType.OTHER_COMMISSIONER
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "organisation.updated")
        )
        assert event.before["name"] == "HMP Old" and event.after["name"] == "HMP New"

    def test_a_provider_stays_a_provider(self, web, admin):
        provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope")
        before = organisations_state()
        response = web.post(
            f"/organisations/{provider.id}/edit", data={"name": "Hope", "type": "pcc"}
        )
        assert response.status_code == 422
        assert "Select what kind of organisation it is" in error_messages(response)
        assert organisations_state() == before
        ok = web.post(
            f"/organisations/{provider.id}/edit", data={"name": "Hope", "type": "provider_private"}
        )
        assert ok.status_code == 302

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"name": "", "type": "prison"}, "Enter the organisation's name"),
            (
                {"name": "X" * 161, "type": "prison"},
                "Organisation name must be 160 characters or fewer",
            ),
            ({"name": "PCC", "type": "pcc"}, "Choose the PCC area"),
            (
                {"name": "HMP", "type": "prison", "companies_house_number": "123"},
                "Enter a Companies House number in the correct format, like 01234567 or SC123456",
            ),
        ],
    )
    def test_bad_input_changes_nothing(self, web, admin, data, message):
        prison = make_organisation(OrganisationType.PRISON, name="HMP Old")
        before = organisations_state()
        response = web.post(f"/organisations/{prison.id}/edit", data=data)
        assert response.status_code == 422
        assert message in error_messages(response)
        assert organisations_state() == before


class TestActivation:
    def test_deactivate_after_confirming_then_reactivate(self, web, admin):
        prison = make_organisation(OrganisationType.PRISON, name="HMP Somewhere")
        page = web.get(f"/organisations/{prison.id}/deactivate")
        assert page.status_code == 200
        assert "Are you sure you want to deactivate HMP Somewhere?" in main(page)
        assert db.session.get(Organisation, prison.id).active
        response = web.post(f"/organisations/{prison.id}/deactivate")
        assert (
            response.status_code == 302
            and response.headers["Location"] == f"/organisations/{prison.id}"
        )
        assert not db.session.get(Organisation, prison.id).active
        assert count(AuditEvent, AuditEvent.action == "organisation.deactivated") == 1
        assert "HMP Somewhere has been deactivated" in main(web.get(f"/organisations/{prison.id}"))
        assert "Are you sure you want to reactivate" in main(
            web.get(f"/organisations/{prison.id}/reactivate")
        )
        assert web.post(f"/organisations/{prison.id}/reactivate").status_code == 302
        assert db.session.get(Organisation, prison.id).active
        assert count(AuditEvent, AuditEvent.action == "organisation.activated") == 1

    def test_already_in_that_state_changes_nothing(self, web, admin):
        prison = make_organisation(OrganisationType.PRISON)
        before = organisations_state()
        assert web.post(f"/organisations/{prison.id}/reactivate").status_code == 302
        assert organisations_state() == before

    def test_the_authority_cannot_be_deactivated(self, web, admin):
        before = organisations_state()
        response = web.post(f"/organisations/{admin.organisations[0].id}/deactivate")
        assert response.status_code == 422
        assert "The contracting authority cannot be deactivated" in error_messages(response)
        assert organisations_state() == before

    def test_post_without_csrf_token_is_refused(self, web, admin, csrf_enabled):
        prison = make_organisation(OrganisationType.PRISON)
        commit()
        assert web.post(f"/organisations/{prison.id}/deactivate").status_code == 400
        assert db.session.get(Organisation, prison.id).active


def add_event(
    action,
    *,
    actor=None,
    organisation=None,
    object_type="thing",
    object_id=None,
    at=None,
    before=None,
    after=None,
) -> AuditEvent:
    event = audit.record(
        actor,
        action,
        object_type=object_type,
        object_id=object_id,
        organisation=organisation,
        before=before,
        after=after,
    )
    if at is not None:
        event.occurred_at = at
    db.session.flush()
    return event


class TestAuditLog:
    def test_newest_first_with_readable_changes(self, web, admin):
        add_event("thing.older", at=datetime(2026, 1, 1, 12, tzinfo=UTC), after={"step": "first"})
        add_event(
            "thing.newer",
            actor=admin,
            at=datetime(2026, 2, 1, 12, tzinfo=UTC),
            before={"name": "Old"},
            after={"name": "<b>New</b>", "roles": ["buyer"]},
        )
        response = web.get("/audit")
        assert response.status_code == 200
        html = main(response)
        assert html.count("<h1") == 1
        assert html.index("thing.newer") < html.index("thing.older")
        assert "Ava Authority" in html and admin.email in html
        assert "<pre" in html and "&#34;name&#34;: &#34;&lt;b&gt;New&lt;/b&gt;&#34;" in html
        assert "<b>New</b>" not in html
        assert "2 events" in html

    def test_reading_changes_nothing(self, web, admin):
        add_event("thing.done")
        commit()
        before = count(AuditEvent)
        web.get("/audit")
        web.get("/audit?action=thing")
        assert count(AuditEvent) == before

    def test_filters(self, web, admin):
        other_actor = make_user(email="someone.else@example.org")
        region_org = make_organisation(OrganisationType.PROBATION_REGION, name="Region Org")
        add_event(
            "organisation.created",
            actor=admin,
            object_type="organisation",
            object_id=7,
            organisation=region_org,
            at=datetime(2026, 3, 10, 12, tzinfo=UTC),
        )
        add_event(
            "organisation.updated",
            actor=other_actor,
            object_type="organisation",
            object_id=8,
            at=datetime(2026, 3, 20, 12, tzinfo=UTC),
        )
        add_event(
            "invitation.created",
            actor=other_actor,
            object_type="invitation",
            object_id=7,
            organisation=region_org,
            at=datetime(2026, 4, 1, 0, 30, tzinfo=UTC),
        )
        add_event(
            "organisationx_created", object_type="other", at=datetime(2026, 4, 2, 12, tzinfo=UTC)
        )

        def actions(query: str) -> set[str]:
            response = web.get("/audit?" + query)
            assert response.status_code == 200, error_messages(response)
            return set(re.findall(r'<code class="app-code">([^<]+)</code>', main(response)))

        assert actions("action=organisation.") == {"organisation.created", "organisation.updated"}
        assert actions("action=organisation_") == set()  # _ is not a wildcard
        assert actions("object_type=invitation") == {"invitation.created"}
        assert actions("object_id=7") == {"organisation.created", "invitation.created"}
        assert actions("actor_email=SOMEONE.ELSE") == {"organisation.updated", "invitation.created"}
        assert actions(f"organisation_id={region_org.id}") == {
            "organisation.created",
            "invitation.created",
        }
        # 2026-04-01 00:30 UTC is 01:30 on 1 April in London (BST)
        assert actions("date_from=2026-04-01") == {"invitation.created", "organisationx_created"}
        assert actions("date_to=2026-03-31") == {"organisation.created", "organisation.updated"}
        assert actions("date_from=2026-03-15&date_to=2026-04-01") == {
            "organisation.updated",
            "invitation.created",
        }
        assert actions("action=organisation.&object_id=8") == {"organisation.updated"}
        assert "No events match" in main(web.get("/audit?action=nothing.like.this"))

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("date_from=2026-13-01", "From date must be a real date written like 2026-04-01"),
            ("date_from=01/04/2026", "From date must be a real date written like 2026-04-01"),
            ("date_to=2026-02-30", "To date must be a real date written like 2026-04-01"),
            (
                "date_from=2026-04-02&date_to=2026-04-01",
                "The to date must be the same as or after the from date",
            ),
            ("organisation_id=abc", "Choose an organisation from the list"),
            ("organisation_id=999999", "Choose an organisation from the list"),
            ("object_type=spaceship", "Choose an object type from the list"),
            ("action=" + "a" * 81, "Action must be 80 characters or fewer"),
            ("object_id=" + "1" * 65, "Object ID must be 64 characters or fewer"),
        ],
    )
    def test_bad_filters_show_errors(self, web, admin, query, message):
        add_event("thing.done")
        response = web.get("/audit?" + query)
        assert response.status_code == 200
        assert message in error_messages(response)
        assert "<title>Error: " in text(response)
        assert "thing.done" not in main(response)

    def test_fifty_per_page_keeping_the_filters(self, web, admin):
        for n in range(60):
            add_event(f"bulk.event{n:02d}", at=datetime(2026, 1, 1, 0, n, tzinfo=UTC))
        add_event("other.event")
        first = main(web.get("/audit?action=bulk."))
        assert "60 events" in first and "bulk.event59" in first and "bulk.event10" in first
        assert "bulk.event09" not in first and "other.event" not in first
        assert "action=bulk." in first and "page=2" in first
        second = main(web.get("/audit?action=bulk.&page=2"))
        assert (
            "bulk.event09" in second and "bulk.event00" in second and "bulk.event10" not in second
        )
