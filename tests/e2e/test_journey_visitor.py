"""Journeys of a signed-out visitor (JOURNEYS.md V1, V2), from the public home page, by links,
buttons and forms alone; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest

from marketplace.accounts.models import VcseBasis
from tests.e2e import worlds

pytestmark = pytest.mark.e2e

REGISTER_HEADER = [
    "organisation",
    "organisation_type",
    "charity_number",
    "companies_house_number",
    "lot_code",
    "lot_name",
    "region_code",
    "pcc_area_code",
    "area_name",
    "admitted_on",
]


def test_v1_find_services_and_download_the_public_register(journey, live_server):
    world = worlds.register_world(live_server)
    welsh, trust = world.providers

    journey.home()
    journey.follow("Find services", within="#service-navigation")
    assert journey.heading() == "Find services"

    # Looking for a provider someone named, by the words of its name.
    journey.fill("Search by service, outcome or provider", "Cymorth Adferiad mentoring")
    journey.press("Search")
    results = journey.main_text()
    assert world.listings[0] in results and world.listings[1] not in results

    # Both services of the arrangement, then only those in the first region and at most £forty
    # an hour: typed as a word, which the page cannot read.
    journey.fill("Search by service, outcome or provider", f"mentoring {world.word}")
    journey.press("Search")
    results = journey.main_text()
    assert world.listings[0] in results and world.listings[1] in results
    journey.select("Probation region", f"{world.regions[0]} (1)")  # with its count of results
    journey.fill("Maximum unit price (excluding VAT)", "forty")
    journey.press("Apply filters")
    journey.expect_errors("Enter a maximum price in pounds")
    journey.fill("Maximum unit price (excluding VAT)", "40")
    journey.press("Apply filters")
    results = journey.main_text()
    assert world.listings[0] in results and world.listings[1] not in results

    journey.follow(world.listings[0])
    assert journey.heading() == world.listings[0]
    listing = journey.main_text()
    assert welsh in listing and world.prices[0] in listing and world.regions[0] in listing
    assert world.arrangement in listing  # the provider's memberships

    # The register of members of the arrangement the provider belongs to.
    journey.follow("Register of members", within="#service-navigation")
    journey.follow(world.arrangement)
    assert journey.heading() == world.arrangement
    journey.follow("See the register of members")
    assert journey.heading() == "Register of members"
    register = journey.main_text()
    assert welsh in register and trust in register
    assert "2 memberships" in register

    journey.select("Region", world.regions[1])
    journey.press("Apply filters")
    register = journey.main_text()
    assert trust in register and welsh not in register

    # The whole register as a spreadsheet: a .csv file that a spreadsheet program opens with
    # the Welsh name intact (UTF-8 marked as such) and one member per row.
    download = journey.download("CSV", exact=False)
    assert download.suggested_filename == f"{world.reference}-register.csv"
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte order mark: a spreadsheet garbles names"
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == REGISTER_HEADER
    members = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(members) == {welsh, trust}
    assert members[welsh] | {"admitted_on": ""} == {
        "organisation": welsh,
        "organisation_type": "provider_vcse",
        "charity_number": world.charity_number,
        "companies_house_number": "",
        "lot_code": members[welsh]["lot_code"],
        "lot_name": world.lot,
        "region_code": members[welsh]["region_code"],
        "pcc_area_code": "",
        "area_name": world.regions[0],
        "admitted_on": "",
    }
    assert members[welsh]["admitted_on"] == "2026-01-15"


def test_v2_register_a_provider_confirm_the_email_and_sign_in(journey, live_server):
    tag = uuid.uuid4().hex[:8]
    email = f"amara.osei.{tag}@riverside-mentoring.example.org"
    name = "Amara Osei"
    organisation = f"Riverside Mentoring {tag}"
    password = "kettle harbour violet 2031 pebble"

    journey.home()
    journey.follow("Register your organisation")
    assert journey.heading() == "Register your organisation"

    # A tired person: the passwords do not match and the email has a typo.
    journey.fill("Organisation name", organisation)
    journey.choose("Voluntary, community or social enterprise provider")
    journey.fill("Your full name", name)
    journey.fill("Your work email address", email.replace("@", ""))
    journey.fill("Create a password", password)
    journey.fill("Confirm your password", password + "x")
    journey.press("Register")
    assert journey.heading() == "Register your organisation"
    journey.expect_errors("email address", "passwords", "legal form", "staff", "turnover")

    # Who is VCSE and SME: a CIO (its number is optional), small.
    journey.choose_in("What is your organisation’s legal form?", VcseBasis.CIO.label)
    journey.choose_in("How many staff does your organisation employ?", "Fewer than 10")
    journey.choose_in("What is your organisation’s annual turnover?", "Up to £2 million")
    journey.fill("Your work email address", email)
    journey.fill("Create a password", password)
    journey.fill("Confirm your password", password)
    journey.press("Register")
    assert journey.heading() == "Check your email"
    assert email in journey.main_text()

    message = live_server.smtp.wait_for(lambda m: m.to == email)
    assert message.subject == "Confirm your email address"
    assert f"Dear {name}," in message.body
    journey.open_link_in_email(message, "/confirm-email/")
    assert journey.heading() == "Confirm your email address"
    journey.press("Confirm email address")
    assert "Your email address is confirmed" in journey.banner()

    # Signing in with the wrong password first.
    journey.fill("Email address", email)
    journey.fill("Password", "not it")
    journey.press("Sign in")
    journey.expect_errors("Enter a correct email address and password")
    journey.fill("Email address", email)
    journey.fill("Password", password)
    journey.press("Sign in")
    assert journey.heading() == f"Welcome, {name}"
    assert organisation in journey.main_text()
