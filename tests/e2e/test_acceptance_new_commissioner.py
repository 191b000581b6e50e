"""Issue 19, acceptance 1, in the browser: a commissioning organisation the authority has just
created, with no data but its name, is set up entirely through its pages (budgets for both
financial years its call-off touches, a buyer's spend limit, a PCC's standing authorisation) and
places, co-funds and pays a call-off whose planned months span 31 March; each year's budget of
each funder moves by exactly the right pence, worked out here from the planned units per month
and the shares, independently of the service's own arithmetic.

Everyone moves by links, buttons and forms from their home page and the links in their emails
(the SMTP sink); axe-core checks every page (conftest.py). What exists before: the authority and
its administrator, a provider with a published listing in the North East, and a Police and Crime
Commissioner's office with its approver (no budgets, no authorisations).

Time passes once: a call-off can only be placed to start after the provider's notice period, and
delivery can only be recorded on a past day and billed for a month that has ended, so the live
server's clock is moved on (the ``clock`` fixture) to the month after the call-off starts, as if
those weeks had passed; the monthly invoice run is the batch job's service call, given that
moment, as in the other journeys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e

PRICE_PENCE = 4_537  # £45.37 a session, exempt from VAT: gross is net
PCC_PERCENT = 35  # the PCC's share; the region pays the rest
SPEND_LIMIT = "300"  # the buyer's limit: the call-off is above it
NEW_PASSWORD = "harbour kestrel lantern 2291"


@dataclass(frozen=True)
class AcceptanceWorld:
    admin: worlds.Person  # the authority's administrator (two-factor sign-in)
    provider: worlds.Person  # the provider's administrator
    provider_name: str
    word: str  # only this world's listing contains it
    listing: str
    lead_time_days: int
    pcc_name: str
    pcc: worlds.Person  # the PCC's approver
    tag: str


def acceptance_world(live_server) -> AcceptanceWorld:
    from marketplace.accounts.models import OrganisationType, Role
    from tests.catalogue.factories import make_listing
    from tests.factories import make_member, make_organisation
    from tests.orders.factories import build_orders_world

    t = worlds.tag()
    word = f"curlew{t}"
    with live_server.app.app_context():
        authority = make_organisation(OrganisationType.AUTHORITY, name=f"HMPPS Commissioning {t}")
        admin = make_member(
            Role.AUTHORITY_ADMIN,
            authority,
            name=f"Grace Mensah {t}",
            email=f"grace.mensah-{t}@justice.example.gov.uk",
        )
        # The orders world's provider, arrangement (North East) and listing; its own region and
        # PCC are not used: the journey's region is created by the authority on its pages.
        built = build_orders_world()
        built.provider.name = f"Harbour Housing {t}"
        built.provider_admin.name = f"Priya Nair {t}"
        built.provider_admin.email = f"priya.nair-{t}@harbour-housing.example.org"
        listing = make_listing(
            built.listing.lot,
            built.provider,
            title=f"Tenancy sustainment {word}",
            summary="Weekly visits to help a person keep their home",
            price_pence=PRICE_PENCE,
            price_from=date(2020, 1, 1),
            monthly_capacity=40,
            max_units=60,
            lead_time_days=5,
        )
        pcc = make_organisation(OrganisationType.PCC, name=f"Northumbria PCC {t}")
        pcc_approver = make_member(
            Role.APPROVER,
            pcc,
            name=f"Jo Bell {t}",
            email=f"jo.bell-{t}@northumbria-pcc.example.gov.uk",
        )
        world = AcceptanceWorld(
            admin=worlds.person(admin),
            provider=worlds.person(built.provider_admin),
            provider_name=built.provider.name,
            word=word,
            listing=listing.title,
            lead_time_days=listing.lead_time_days,
            pcc_name=pcc.name,
            pcc=worlds.person(pcc_approver),
            tag=t,
        )
        worlds.commit_and_close()
    return world


# --- the arithmetic, done here on its own ---------------------------------------------------------


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """``total`` pence in proportion to ``weights``, the parts summing to it: floors first, the
    pence left over one each to the largest remainders (the earlier on a tie)."""
    whole = sum(weights)
    floors = [total * w // whole for w in weights]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _months(start: date, end: date) -> list[date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _fy(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def _label(year: int) -> str:
    return f"{year}-{str(year + 1)[-2:]}"


def _pounds(pence: int) -> str:
    return f"£{pence // 100:,}.{pence % 100:02d}"


def _dates(today: date, lead_time_days: int) -> tuple[date, date]:
    """A start after the provider's notice (a fortnight on: more than 5 working days whatever
    the holidays) and a planned end two months after the next 31 March: the planned months
    span it."""
    start = today + timedelta(days=14)
    march = date(start.year if start.month <= 3 else start.year + 1, 3, 31)
    assert lead_time_days == 5
    return start, march + timedelta(days=61)


# --- moving about the pages -----------------------------------------------------------------------


def _budget_rows(journey) -> dict[str, list[str]]:
    """The budgets page's rows by year: allocated, committed, spent, available."""
    journey.follow("Budgets", within="#service-navigation")
    rows = journey.page.locator("main table tbody tr")
    found = {}
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        found[cells[0].split()[0]] = cells[2:]  # the year, without its hidden words
    return found


def _set_budget(journey, year: int, amount: str) -> None:
    journey.follow("Budgets", within="#service-navigation")
    journey.follow("Set a budget")
    journey.choose_in("Financial year", _label(year))
    journey.fill("Amount", amount)
    journey.press("Set budget")
    assert journey.heading() == f"{_label(year)} budget for all services"
    assert "Budget set." in journey.banner()


def _accept_invitation(journey, live_server, email: str, name: str) -> None:
    invitation = live_server.smtp.wait_for(lambda m: m.to == email and "/invitations/" in m.body)
    journey.open_link_in_email(invitation, "/invitations/")
    journey.fill("Full name", name)
    journey.fill("Create a password", NEW_PASSWORD)
    journey.fill("Confirm your password", NEW_PASSWORD)
    journey.press("Accept invitation")
    assert journey.heading() == f"Welcome, {name}"


@pytest.fixture
def clock():
    """Move the live server's clock (it runs in this process): ``clock(moment)``; from then on
    the service's time runs on from ``moment``, as if the weeks between had passed."""
    from marketplace.core import clock as service_clock

    yield lambda moment: service_clock.set_source(service_clock.moving_from(moment))
    service_clock.set_source(None)


# --- the journey ----------------------------------------------------------------------------------


def test_a_new_commissioner_set_up_on_its_pages_buys_co_funds_and_pays_across_31_march(
    journey, other_journey, live_server, clock
):
    from marketplace.invoices.services import monthly_run
    from tests.factories import after_month

    world = acceptance_world(live_server)
    t = world.tag
    region = f"Probation Service – North East {t}"
    approver_name, approver_email = f"Ruth Adeyemi {t}", f"ruth.adeyemi-{t}@ne-probation.example"
    buyer_name, buyer_email = f"Ben Ellis {t}", f"ben.ellis-{t}@ne-probation.example"

    today = worlds.london_today()
    start, end = _dates(today, world.lead_time_days)
    first, second = _fy(start), _fy(start) + 1
    assert _fy(end) == second
    months = _months(start, end)
    # Every month has a unit or two, so both years take a part; and at least 13 sessions
    # (£589.81), so that the region's 65% is above the buyer's £300.00 limit.
    quantity = max(2 * len(months) + 1, 13)
    per_month = _largest_remainder(quantity, [1] * len(months))
    units = {first: 0, second: 0}
    for month, n in zip(months, per_month, strict=True):
        units[_fy(month)] += n
    gross = quantity * PRICE_PENCE
    region_share, pcc_share = _largest_remainder(gross, [100 - PCC_PERCENT, PCC_PERCENT])
    region_parts = dict(
        zip(
            (first, second),
            _largest_remainder(region_share, [units[first], units[second]]),
            strict=True,
        )
    )
    pcc_parts = dict(
        zip(
            (first, second),
            _largest_remainder(pcc_share, [units[first], units[second]]),
            strict=True,
        )
    )
    assert all(region_parts.values()) and all(pcc_parts.values())
    assert region_share > int(SPEND_LIMIT) * 100

    # 1. The authority's administrator creates the region and invites its approver and buyer.
    admin = world.admin
    journey.sign_in_from_home(admin.email, PASSWORD, totp_secret=admin.totp_secret)
    journey.follow("Manage organisations")
    journey.follow("Create a commissioning organisation")
    journey.fill("Organisation name", region)
    journey.choose("Probation service region")
    journey.select("Probation region", "North East")
    journey.press("Create organisation")
    assert region in journey.heading()
    for name, email, role in (
        (approver_name, approver_email, "Approver (budget holder)"),
        (buyer_name, buyer_email, "Buyer"),
    ):
        journey.follow("Invite someone")
        journey.fill("Their full name", name)
        journey.fill("Their email address", email)
        journey.choose(role, exact=role == "Buyer")
        journey.press("Send invitation")
        assert email in journey.main_text()
    journey.sign_out()

    # Each accepts from their email; the buyer at their own computer.
    _accept_invitation(other_journey, live_server, buyer_email, buyer_name)
    _accept_invitation(journey, live_server, approver_email, approver_name)

    # 2. The approver sets both years' budgets and the buyer's spend limit.
    assert "Budgets" in journey.navigation()
    _set_budget(journey, first, "20000")
    _set_budget(journey, second, "30000")
    rows = _budget_rows(journey)
    assert rows[_label(first)] == ["£20,000.00", "£0.00", "£0.00", "£20,000.00"]
    assert rows[_label(second)] == ["£30,000.00", "£0.00", "£0.00", "£30,000.00"]
    journey.follow("Team", within="#service-navigation")
    journey.follow(f"Change limits for {buyer_name}")
    journey.fill("Spend limit, in pounds", SPEND_LIMIT)
    journey.press("Save limits")
    assert f"Spend limit: £{SPEND_LIMIT}.00" in journey.main_text()
    journey.sign_out()

    # 3. The PCC's approver sets its budgets and a standing authorisation for the region, for
    # each year the call-off touches.
    pcc = world.pcc
    journey.sign_in_from_home(pcc.email, PASSWORD)
    _set_budget(journey, first, "5000")
    _set_budget(journey, second, "5000")
    for year in (first, second):
        journey.follow("Home", within="#service-navigation")
        journey.follow("Manage standing authorisations")
        journey.follow("Set up a standing authorisation")
        journey.select("Lead buyer", region)
        journey.choose_in("Financial year", _label(year))
        journey.fill("Limit per call-off", "1000")
        journey.fill("Total for the year", "4000")
        journey.press("Set up authorisation")
        assert journey.heading() == f"Standing authorisation for {region}, {_label(year)}"
    journey.sign_out()

    # 4. The buyer finds the service and places the call-off, co-funded by the PCC.
    buyer = other_journey
    buyer.follow("Home", within="#service-navigation")
    buyer.follow("Find services", within="main")
    buyer.fill("Search by service, outcome or provider", world.word)
    buyer.press("Search")
    buyer.follow(world.listing)
    buyer.follow("Buy this service")
    buyer.fill("How many units?", str(quantity))
    buyer.fill("Start date", worlds.day_month_year(start))
    buyer.fill("Planned end date", worlds.day_month_year(end))
    buyer.fill("The person's CRN", "X246810")
    buyer.fill("Probation delivery unit (PDU)", "County Durham and Darlington")
    buyer.fill("Purchase order number", f"NE-PO-{t[:4]}")
    buyer.choose("Continuity for the person")
    buyer.select("First co-funder", world.pcc_name)
    buyer.fill("First co-funder's share", str(PCC_PERCENT))
    buyer.press("Continue")
    assert f"{_pounds(gross)} excluding VAT, {_pounds(gross)} including VAT" in buyer.main_text()
    buyer.press("Place call-off")
    assert "It is above your spend limit" in buyer.main_text()
    reference = buyer.page.locator(".govuk-panel strong").inner_text().strip()
    assert re.fullmatch(r"CO-\d{4}-\d{6}", reference), reference
    buyer.follow("See the call-off")
    assert "Awaiting approval" in buyer.heading()
    funders = buyer.page.locator("tr", has_text=world.pcc_name).first.inner_text()
    assert "By standing authorisation" in funders  # no one at the PCC had to confirm it
    by_year = buyer.page.locator("#funding-by-year tbody tr")
    assert [
        [c.strip() for c in by_year.nth(i).locator("td").all_inner_texts()]
        for i in range(by_year.count())
    ] == [
        [funder, _label(year), _pounds(parts[year]), _pounds(parts[year])]
        for funder, parts in ((region, region_parts), (world.pcc_name, pcc_parts))
        for year in (first, second)
    ]

    # The approver approves it from her home page; the provider accepts it.
    journey.sign_in_from_home(approver_email, NEW_PASSWORD)
    journey.follow("See call-offs to approve", within=".app-dashboard-card")
    journey.follow(reference)
    journey.press("Approve call-off")
    assert "Call-off approved and sent to the provider." in journey.banner()
    journey.sign_out()
    journey.sign_in_from_home(world.provider.email, PASSWORD)
    journey.follow("See call-offs to respond to")
    journey.follow(reference, within=".govuk-inset-text")
    journey.press("Accept call-off")
    assert "Call-off accepted. The buyer has been told." in journey.banner()
    journey.sign_out()

    # 5. Each funder's budget for each year is committed by exactly its part.
    def expect_budgets(email, password, allocated, parts, spent):
        journey.sign_in_from_home(email, password)
        rows = _budget_rows(journey)
        for year in (first, second):
            committed = parts[year] - spent.get(year, 0)
            assert rows[_label(year)] == [
                _pounds(allocated[year]),
                _pounds(committed),
                _pounds(spent.get(year, 0)),
                _pounds(allocated[year] - committed - spent.get(year, 0)),
            ], (year, rows)
        journey.sign_out()

    region_budgets = {first: 2_000_000, second: 3_000_000}
    pcc_budgets = {first: 500_000, second: 500_000}
    expect_budgets(approver_email, NEW_PASSWORD, region_budgets, region_parts, {})
    expect_budgets(pcc.email, PASSWORD, pcc_budgets, pcc_parts, {})

    # 6. The weeks pass to the month after the start; the provider records two sessions on the
    # first day (in the first year), the month is invoiced, issued, validated and paid.
    run_at = after_month(start)
    clock(run_at + timedelta(hours=1))
    delivered = 2
    journey.sign_in_from_home(world.provider.email, PASSWORD)
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(reference)
    journey.follow("Record delivery")
    journey.fill("Date of the session", worlds.day_month_year(start))
    journey.fill("Units delivered", str(delivered))
    journey.choose_in("Attendance", "Attended")
    journey.press("Record delivery")
    assert "Delivery recorded" in journey.banner()
    assert journey.excuse_govuk_conditional_reveals()  # "Did not attend" reveals its reason

    with live_server.app.app_context():
        monthly_run.run_period(f"{start:%Y-%m}", now=run_at)
        worlds.commit_and_close()

    journey.follow("Invoices", within="#service-navigation")
    row = f"tr:has-text('{reference}')"
    journey.follow("Draft", exact=False, within=row)
    value = delivered * PRICE_PENCE
    assert _pounds(value) in journey.main_text()
    journey.press("Issue invoice")
    assert "Invoice issued" in journey.banner()
    number = re.search(r"INV-\d{6}", journey.heading()).group()
    journey.sign_out()

    journey.sign_in_from_home(approver_email, NEW_PASSWORD)
    journey.follow("Invoices", within="#service-navigation")
    journey.follow(number)
    journey.press("Validate invoice")
    assert "Invoice validated" in journey.banner()
    journey.follow("Record a BACS payment")
    journey.fill("Remittance reference", f"NEP-REM-{t[:5]}")
    journey.fill("Date paid", worlds.day_month_year(run_at.date()))
    journey.press("Record payment")
    assert "Payment recorded" in journey.banner()
    assert "Paid" in journey.heading()
    journey.sign_out()

    # The first year's spent moved by the delivered value split by the shares, its committed
    # down by as much; the second year's as it was.
    region_spent, pcc_spent = _largest_remainder(value, [100 - PCC_PERCENT, PCC_PERCENT])
    expect_budgets(
        approver_email, NEW_PASSWORD, region_budgets, region_parts, {first: region_spent}
    )
    expect_budgets(pcc.email, PASSWORD, pcc_budgets, pcc_parts, {first: pcc_spent})
