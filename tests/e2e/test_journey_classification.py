"""Who is VCSE and SME: a provider's administrator confirms its classification from the task on
its home page; the authority's administrator finds the provider in the list, is refused a
correction dated in the future, corrects it from a past day with a reason, and the provider's
administrator is emailed. By links, buttons and forms alone; axe-core checks every page."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationClassification, OrganisationType, Role
from marketplace.accounts.services.classification import (
    ClassificationAnswers,
    record_at_registration,
)
from marketplace.core.db import db
from tests.e2e.test_journey_authority import authority_admin
from tests.factories import PASSWORD, make_member, make_organisation

pytestmark = pytest.mark.e2e


def provider_registered_last_year(live_server, tag: str):
    with live_server.app.app_context():
        provider = make_organisation(
            OrganisationType.PROVIDER_VCSE,
            name=f"Aardvark Recovery {tag}",
            charity_number="1123456",
        )
        admin = make_member(
            Role.PROVIDER_ADMIN,
            provider,
            email=f"jo.mensah.{tag.lower()}@aardvark.example.org",
            name=f"Jo Mensah {tag}",
        )
        record_at_registration(
            admin, provider, ClassificationAnswers("registered_charity", "10_to_49", "up_to_2m")
        )
        # Registered 14 months ago: the yearly confirmation is due.
        joined = date.today() - timedelta(days=430)
        provider.created_at = provider.created_at - timedelta(days=430)
        db.session.execute(
            sa.update(OrganisationClassification)
            .where(OrganisationClassification.organisation_id == provider.id)
            .values(effective_from=joined)
        )
        person = (admin.email, provider.name)
        db.session.commit()
        db.session.remove()
    return person


def test_a_provider_confirms_its_classification_from_its_home_page(journey, live_server):
    tag = uuid.uuid4().hex[:6].upper()
    email, organisation = provider_registered_last_year(live_server, tag)
    journey.sign_in_from_home(email, PASSWORD)
    assert "Confirm your VCSE and SME classification" in journey.main_text()
    journey.follow("Confirm your classification")
    assert journey.heading() == "VCSE and SME classification"
    assert "Your yearly confirmation is due" in journey.main_text()
    journey.press("Confirm, nothing has changed")
    assert "Classification confirmed" in journey.banner()
    assert "Confirmed by the provider" in journey.main_text()
    journey.home()
    assert "Confirm your VCSE and SME classification" not in journey.main_text()


def test_the_authority_corrects_a_classification_and_the_provider_is_told(journey, live_server):
    tag = uuid.uuid4().hex[:6].upper()
    provider_email, organisation = provider_registered_last_year(live_server, tag)
    email, _name, secret = authority_admin(live_server, tag)
    journey.sign_in_from_home(email, PASSWORD, totp_secret=secret)
    journey.follow("See provider classifications")
    assert journey.heading() == "Provider classifications"
    journey.select("VCSE", "VCSE")
    journey.press("Apply filters")
    journey.follow(organisation)
    assert organisation in journey.heading()

    tomorrow = date.today() + timedelta(days=1)
    journey.choose_in("What is the provider’s legal form?", "Not VCSE (a private or public body)")
    journey.choose_in("How many staff does the provider employ?", "250 or more")
    journey.choose_in("What is the provider’s annual turnover?", "More than £44 million")
    journey.fill("Date the correction applies from", tomorrow.isoformat())
    journey.fill("Reason for the correction", "Its accounts show a company limited by shares")
    journey.press("Save correction")
    errors = journey.expect_errors("must be today or in the past")
    assert [href for _, href in errors] == ["#effective_from"]

    day = date.today() - timedelta(days=60)
    journey.fill("Date the correction applies from", day.isoformat())
    journey.press("Save correction")
    assert "Classification corrected" in journey.banner()
    assert "Corrected by the authority" in journey.main_text()
    assert "Its accounts show a company limited by shares" in journey.main_text()

    message = live_server.smtp.wait_for(lambda m: m.to == provider_email)
    assert "corrected" in message.subject
