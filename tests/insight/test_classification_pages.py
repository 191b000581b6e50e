"""The classification pages: a provider confirms or changes its own from its home page's task,
the authority lists every provider (filters, pages, CSV: the same numbers) and corrects one with
a date and a reason; errors in the GOV.UK summary linked to their fields; wrong role and another
organisation refused; a change dated in the future writes nothing."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    ClassificationSource,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    Role,
)
from marketplace.accounts.services.classification import record_at_registration
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from tests.factories import make_member, make_organisation
from tests.insight.test_classification import LARGE_COMPANY, SMALL_CHARITY, _joined, entries
from tests.pages import count, error_messages, main, text


@pytest.fixture
def world(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Trust",
                                 charity_number="1123456")  # fmt: skip
    _joined(provider, 800)
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    editor = make_member(Role.PROVIDER_EDITOR, provider)
    authority = make_member(Role.AUTHORITY_ADMIN)
    company = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Acme Ltd")
    other = make_member(Role.PROVIDER_ADMIN, company)
    buyer = make_member(Role.BUYER)
    commit()
    return type("World", (), locals())


def summary_links(response) -> list[str]:
    summary = text(response).split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    return re.findall(r'href="#([^"]+)"', summary)


def test_an_unconfirmed_provider_sees_the_task_and_confirms_from_it(web, world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    db.session.query(OrganisationClassification).update(
        {"effective_from": london_date() - timedelta(days=400)}
    )
    commit()
    home = main(web.as_user(world.admin, world.provider).get("/"))
    assert "Confirm your VCSE and SME classification" in home and "/insight/classification" in home
    page = web.get("/insight/classification")
    assert page.status_code == 200
    assert "Your yearly confirmation is due" in main(page)
    done = web.post("/insight/classification", data={})
    assert done.status_code == 302
    [_, confirmation] = entries(world.provider)
    assert confirmation.source is ClassificationSource.CONFIRMATION
    assert "Confirm your VCSE and SME classification" not in main(web.get("/"))


def test_a_provider_changes_its_classification(web, world):
    web.as_user(world.admin, world.provider)
    page = web.get("/insight/classification")
    assert "Not classified yet" in main(page)
    refused = web.post("/insight/classification/change", data={"vcse_basis": "nonsense"})
    assert refused.status_code == 422
    assert summary_links(refused) == ["vcse_basis", "staff_band", "turnover_band"]
    assert entries(world.provider) == []
    done = web.post(
        "/insight/classification/change",
        data={"vcse_basis": "cic", "staff_band": "under_10", "turnover_band": "up_to_2m"},
    )
    assert done.status_code == 302
    [entry] = entries(world.provider)
    assert (entry.vcse, entry.sme, entry.source) == (True, True, ClassificationSource.CONFIRMATION)
    history = main(web.get("/insight/classification"))
    assert "Community interest company (CIC)" in history and "In force" in history


def test_editors_read_and_cannot_confirm_others_get_404(web, world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    commit()
    page = web.as_user(world.editor, world.provider).get("/insight/classification")
    assert page.status_code == 200 and "Only your organisation's administrators" in main(page)
    assert web.post("/insight/classification", data={}).status_code == 403
    assert web.get("/insight/classification/change").status_code == 403
    assert web.as_user(world.buyer).get("/insight/classification").status_code == 404
    # A provider's people never reach the authority's pages, their own organisation's included.
    assert (
        web.as_user(world.other, world.company).get("/insight/classifications").status_code == 403
    )
    assert web.get(f"/insight/classifications/{world.provider.id}").status_code == 403
    assert len(entries(world.provider)) == 1


def test_the_authority_lists_filters_and_downloads_the_same_rows(web, world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    record_at_registration(world.other, world.company, LARGE_COMPANY)
    commit()
    web.as_user(world.authority)
    home = main(web.get("/"))
    assert "/insight/classifications" in home
    listed = main(web.get("/insight/classifications"))
    assert "Hope Trust" in listed and "Acme Ltd" in listed and "2 providers" in listed
    vcse = main(web.get("/insight/classifications?vcse=yes"))
    assert "Hope Trust" in vcse and "Acme Ltd" not in vcse and "1 provider." in vcse
    large = main(web.get("/insight/classifications?sme=no"))
    assert "Acme Ltd" in large and "Hope Trust" not in large
    assert "0 providers" in main(web.get("/insight/classifications?unclassified=yes"))
    assert "0 providers" in main(web.get("/insight/classifications?overdue=yes"))
    download = web.get("/insight/classifications?format=csv&vcse=yes")
    assert download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row[1] for row in rows[1:]] == ["Hope Trust"]
    assert rows[1][6] == "Yes" and rows[1][9] == "Yes"


def test_the_csv_is_safe_against_formulas(web, world):
    world.provider.name = "=HYPERLINK(1)"
    commit()
    download = web.as_user(world.authority).get("/insight/classifications?format=csv")
    assert "'=HYPERLINK(1)" in download.get_data(as_text=True)


def test_an_unknown_filter_is_shown_in_the_error_summary(web, world):
    response = web.as_user(world.authority).get("/insight/classifications?vcse=maybe")
    assert response.status_code == 400
    assert summary_links(response) == ["vcse"]
    assert error_messages(response) == ["Choose VCSE, not VCSE or either"]


def test_the_list_is_paginated(web, world):
    for n in range(55):
        make_organisation(OrganisationType.PROVIDER_PRIVATE, name=f"Z provider {n:02d}")
    commit()
    web.as_user(world.authority)
    first = main(web.get("/insight/classifications"))
    assert "57 providers" in first and "Z provider 47" in first and "Z provider 48" not in first
    last = main(web.get("/insight/classifications?page=2"))
    assert "Z provider 54" in last and "Acme Ltd" not in last
    assert "Z provider 54" in main(web.get("/insight/classifications?page=999"))


def test_the_authority_corrects_with_a_date_and_a_reason(web, world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    db.session.query(OrganisationClassification).update(
        {"effective_from": london_date() - timedelta(days=400)}
    )
    commit()
    web.as_user(world.authority)
    organisation_page = main(web.get(f"/organisations/{world.provider.id}"))
    assert f"/insight/classifications/{world.provider.id}" in organisation_page
    url = f"/insight/classifications/{world.provider.id}"
    day = london_date() - timedelta(days=30)
    done = web.post(
        url,
        data={
            "vcse_basis": "not_vcse",
            "staff_band": "250_or_more",
            "turnover_band": "over_44m",
            "effective_from": f"{day.day} {day.month} {day.year}",
            "reason": "Company accounts",
        },
    )
    assert done.status_code == 302
    page = main(web.get(url))
    assert "Company accounts" in page and "Corrected by the authority" in page
    # Newest first: the correction, in force, above the registration.
    assert page.index("Corrected by the authority") < page.index("Set at registration")
    assert page.index("In force") < page.index("Set at registration")
    assert "Legal form" in page and "Not VCSE (a private or public body)" in page


def test_a_correction_dated_in_the_future_is_refused_on_the_page(web, world):
    web.as_user(world.authority)
    day = london_date() + timedelta(days=1)
    response = web.post(
        f"/insight/classifications/{world.provider.id}",
        data={
            "vcse_basis": "cio",
            "staff_band": "under_10",
            "turnover_band": "up_to_2m",
            "effective_from": f"{day.day} {day.month} {day.year}",
            "reason": "Its new constitution",
        },
    )
    assert response.status_code == 422
    assert summary_links(response) == ["effective_from"]
    assert error_messages(response) == [
        "The date the classification applies from must be today or in the past"
    ]
    assert count(OrganisationClassification) == 0
    missing = web.post(
        f"/insight/classifications/{world.provider.id}",
        data={"vcse_basis": "cio", "staff_band": "under_10", "turnover_band": "up_to_2m"},
    )
    assert missing.status_code == 422
    assert summary_links(missing) == ["effective_from", "reason"]
    assert count(OrganisationClassification) == 0


def test_another_or_unknown_organisation_is_not_found(web, world):
    web.as_user(world.authority)
    assert web.get("/insight/classifications/999999").status_code == 404
    commissioner = make_organisation(OrganisationType.PCC)
    commit()
    assert web.get(f"/insight/classifications/{commissioner.id}").status_code == 404


REGISTRATION = {
    "organisation_name": "Hope Trust",
    "organisation_type": "provider_vcse",
    "charity_number": "",
    "companies_house_number": "",
    "vcse_basis": "cio",
    "staff_band": "10_to_49",
    "turnover_band": "2m_to_10m",
    "region_id": "",
    "name": "Sam O'Neill",
    "email": "sam@hope.example",
    "password": "lantern otter quarry 1987",
    "password_confirm": "lantern otter quarry 1987",
}


def test_registration_asks_the_questions_and_records_the_answers(client, app):
    page = text(client.get("/register"))
    assert "fewer than 250 staff" in page and "£44 million or less" in page
    assert "community interest companies (CICs)" in page
    assert client.post("/register", data=REGISTRATION).status_code == 302
    [entry] = db.session.scalars(sa.select(OrganisationClassification)).all()
    assert (entry.vcse_basis.value, entry.vcse, entry.sme) == ("cio", True, True)
    assert entry.source is ClassificationSource.REGISTRATION


def test_registration_without_the_answers_shows_them_in_the_error_summary(client, app):
    missing = {**REGISTRATION, "vcse_basis": "", "staff_band": "", "turnover_band": "huge"}
    response = client.post("/register", data=missing)
    assert response.status_code == 422
    assert summary_links(response) == ["vcse_basis", "staff_band", "turnover_band"]
    # A registered charity is asked for its number.
    charity = client.post("/register", data={**REGISTRATION, "vcse_basis": "registered_charity"})
    assert charity.status_code == 422
    assert summary_links(charity) == ["charity_number"]
    assert error_messages(charity) == ["Enter your registered charity number"]
    assert count(Organisation) == 0 and count(OrganisationClassification) == 0
