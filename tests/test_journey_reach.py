"""Every page a role's journeys need (docs/journeys.md) is reachable from the home page
by following links, as a person would: nobody types a URL.

For each role, a person of the demo world (memberships, listings, call-offs in every state,
invoices, applications, renewed evidence …) starts on "/" and the test follows only links: GET,
same origin, breadth first, a few pages per kind of page, within a fixed budget. It then names the
pages a journey needs that no link reached. A page that exists but is linked from nowhere fails
here; a new journey page gets its endpoint added to ``JOURNEY_PAGES``.

Only pages that exist today are listed: A2's spend limits and B3's decline come with other parts
of issue 19. Pages reached only through a form (the
compare page, the question pages of a new application, placing a call-off from its question page)
are reached by the browser journeys in tests/e2e/, not here.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from marketplace.accounts.models import Organisation
from marketplace.accounts.services.common import get_user_by_email
from marketplace.accreditation.models import Answer, Application
from marketplace.core.clock import add_working_days, london_date
from marketplace.core.db import commit, db
from marketplace.demo import organisations as demo_organisations
from marketplace.demo import people as demo_people
from marketplace.demo.catalogue import reindex_search
from marketplace.demo.world import load_demo_data
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import details, placing, variations
from tests.conftest import sign_in_as
from tests.factories import password_hash

BASE = "http://marketplace.test"
MAX_PAGES = 700
# Pages of one kind (one endpoint) fetched at most: enough to meet the objects in different states
# (a call-off in delivery, another waiting for an answer …) without reading every one.
PER_ENDPOINT = 6
# Markup shown as text: a tag escaped where it was meant as markup (files and feeds, fetched only
# to check that their link works, are not read).
ESCAPED_TAG = re.compile(r"&lt;/?(br|strong|p|a|span|ul|li)\b")

# Who plays each role: a demo account (``demo_people.USERS``) in one of its organisations, or nobody for
# the signed-out visitor. Bridgeway's trustee has the provider's fullest world: call-offs in
# delivery, invoices, outcome terms (the fixture adds a call-off to answer and expiring evidence).
PEOPLE: dict[str, tuple[str, str] | None] = {
    "signed out": None,
    "provider_admin": ("trustee", "Bridgeway Family Support"),
    "provider_editor": ("provider.editor", "Northern Lights Housing Trust"),
    "buyer": ("buyer", "Probation Service – North West"),
    "approver": ("approver", "Probation Service – North West"),
    # DOMAIN.md: a PCC's staff hold the buyer and approver roles; this one confirms shares.
    "pcc": ("pcc.approver", "Police and Crime Commissioner for Lancashire"),
    "assessor": ("assessor", demo_people.DEMO_AUTHORITY_NAME),
    "authority_admin": ("authority.admin", demo_people.DEMO_AUTHORITY_NAME),
}

# The pages each role's journeys need, by endpoint, with the journey that needs them.
JOURNEY_PAGES: dict[str, dict[str, str]] = {
    "signed out": {
        "catalogue_search.search": "V1 find services",
        "catalogue_search.listing": "V1 open a listing",
        "public_arrangements.arrangements": "V1 the public register",
        "public_arrangements.arrangement": "V1 the public register",
        "public_arrangements.register": "V1 the public register",
        "public_arrangements.register_csv": "V1 download the register as CSV",
        "accounts.register": "V2 register a provider organisation",
        "accounts.sign_in": "V2 sign in",
        "competitions.index": "F2 the open further competitions",
        "competitions.public": "F2 a competition's public page",
        "insight.market": "R1 the market map",
        "insight.market_csv": "R1 the market map as CSV",
        "insight.forward_plans": "F3 commissioners' forward plans",
        "insight.open_data": "R2 the open-data page",
        "insight_public_api.OcdsBulk": "R2 download the OCDS bulk file",
    },
    "provider_admin": {
        "insight.classification": "22 confirm the VCSE and SME classification",
        "accounts.team": "P1 the team",
        "accounts.invite": "P1 invite a colleague",
        "accounts.two_factor_setup": "P1 turn on 2FA",
        "accreditation.applications": "P2 applications",
        "accreditation.application": "P2 an application and its decision",
        "catalogue.index": "P3 listings",
        "catalogue.new_listing": "P3 create a listing",
        "catalogue.your_listing": "P3 a listing",
        "catalogue.change_price": "P3 set a price from a future date",
        "catalogue.listing_history": "P3 the price history",
        "catalogue.rate_card": "P4 the rate card",
        "catalogue.rate_card_csv": "P4 download the rate card as CSV",
        "catalogue.rate_card_xlsx": "P4 download the rate card as XLSX",
        "catalogue.import_rate_card": "P4 import the rate card",
        "orders.index": "P5 call-offs",
        "orders.show": "P5 a call-off",
        "orders.decline": "P5 decline a call-off with a reason",
        "orders.record_delivery": "P5 record delivery",
        "orders.propose_variation": "P5 propose a variation",
        "orders.complete": "P5 complete with outcomes",
        "accreditation.memberships": "P6 memberships and expiring evidence",
        "accreditation.renew_evidence": "P6 renew expiring evidence",
        "invoices.index": "P7 invoices",
        "invoices.show": "P7 an invoice",
        "invoices.invoice_ubl": "P7 the UBL XML",
        "invoices.credit_note": "P7 issue a credit note",
        "accounts.organisation_settings": "P7 what e-invoices need",
        "accounts.electronic_address": "P7 the electronic address",
        "accounts.vat_registration": "P7 the VAT registration",
        "accounts.bank_account": "P7 the bank account invoices are paid into",
        "outcomes.claim": "P8 claim an outcome",
        "competitions.invited": "F2 the competitions it is invited to",
        "insight.forward_plans": "F3 forward plans for its lots",
    },
    "provider_editor": {
        "insight.classification": "22 read the VCSE and SME classification",
        "catalogue.index": "P3 listings",
        "catalogue.new_listing": "P3 create a listing",
        "catalogue.your_listing": "P3 a listing",
        "catalogue.change_price": "P3 set a price",
        "catalogue.rate_card": "P4 the rate card",
        "catalogue.rate_card_csv": "P4 download the rate card as CSV",
        "catalogue.rate_card_xlsx": "P4 download the rate card as XLSX",
        "catalogue.import_rate_card": "P4 import the rate card",
        "orders.index": "P5 call-offs",
        "orders.show": "P5 a call-off",
        "orders.record_delivery": "P5 record delivery",
    },
    "buyer": {
        "catalogue_search.search": "B1 find a service",
        "catalogue_search.listing": "B1 open a listing",
        "orders.place": "B2 buy it",
        "orders.index": "B4 call-offs",
        "orders.show": "B4 follow a call-off",
        "orders.cancel": "B4 cancel with a reason",
        "orders.reject_variation": "B4 reject a variation",
        "competitions.yours": "F1 its further competitions",
        "competitions.start": "F1 start a further competition",
        "competitions.task_list": "F1 a draft's task list",
        "competitions.manage": "F1 a published competition",
        "competitions.invited_csv": "F1 the invited list as CSV",
        "insight.market": "R1 the market map",
        "insight.market_cell": "R1 a region and lot's members, listings and spend",
        "insight.forward_plans_yours": "F3 its forward plan",
        "insight.forward_plan_new": "F3 add a planned procurement",
        "insight.forward_plan": "F3 a planned procurement",
        "insight.forward_plan_edit": "F3 change a draft",
        "insight.forward_plan_publish": "F3 publish it",
        "insight.forward_plan_withdraw": "F3 withdraw it",
    },
    "approver": {
        "orders.index": "A2 call-offs to approve",
        "orders.show": "A2 approve a call-off",
        "orders.budgets": "A1 budgets",
        "funding.new_budget": "A1 set a budget",
        "funding.budget": "A1 a budget: allocated, committed, spent, available, history",
        "funding.change_budget": "A1 raise a budget",
        "invoices.index": "A3 invoices",
        "invoices.show": "A3 validate an invoice",
        "invoices.mark_paid": "A3 pay by BACS",
        "accounts.organisation_settings": "A3 the buyer's electronic address for e-invoices",
        "accounts.electronic_address": "A3 change the electronic address",
        # Paying by card (payments.pay_invoice) is offered only where card payments are
        # configured, which this crawl does not do: the A3 browser journey follows its links.
    },
    "pcc": {
        "orders.index": "C1 call-offs it co-funds",
        "orders.show": "C1 confirm or decline a share",
        "orders.budgets": "C1 its budgets, the way to its contingent liability",
        "funding.authorisations": "C1 standing authorisations",
        "funding.new_authorisation": "C1 set up a standing authorisation",
        "funding.authorisation": "C1 a standing authorisation and what it has used",
        "funding.change_authorisation": "C1 change a standing authorisation",
        "funding.revoke_authorisation": "C1 revoke a standing authorisation",
        "outcomes.contingent_liability": "C1 contingent liability",
        "invoices.recharges": "C1 recharge statement",
        "insight.transparency": "R1 transparency exports (spend over £500)",
        "insight.spend": "R1 its spend",
        "insight.vcse_share": "R1 its VCSE share chart",
    },
    "assessor": {
        "accreditation.assessments": "S1 the queue",
        "accreditation.declare_conflict": "S1 declare no conflict",
        "accreditation.assess": "S1 mark, clarify, extend, decide",
        "accreditation.evidence": "S1 read the evidence",
        "accreditation.renewals": "S1 renewed evidence waiting",
        "accreditation.renewed_evidence": "S1 accept a member's renewed evidence",
    },
    "authority_admin": {
        "insight.classifications": "22 every provider's classification",
        "insight.classification_detail": "22 a provider's classification history, correct it",
        "accreditation.arrangements": "U1 arrangements",
        "accreditation.new_arrangement": "U1 create an arrangement",
        "accreditation.arrangement": "U1 an arrangement, its lots and criteria",
        "accreditation.new_criterion": "U1 criteria",
        "accreditation.arrangement_status": "U1 make it live",
        "accounts.organisations": "U1 organisations",
        "accounts.new_organisation": "U1 create a commissioning organisation",
        "accreditation.members": "U2 the members page",
        "accreditation.member": "U2 a member: suspend, re-declare, remove",
        "accreditation.remove_member": "U2 remove a member",
        "accounts.audit_log": "U3 the audit log",
        "scheduler.runs": "U4 what the scheduler did",
        "invoices.payment_performance": "U3 payment performance",
        "insight.transparency": "transparency exports of any commissioner",
        "funding.all_budgets": "every organisation's budgets",
        "funding.budget": "one organisation's budget and its history",
        "competitions.yours": "every further competition",
        "competitions.manage": "a competition, its invited list and pending applications",
        "insight.spend": "national spend",
        "insight.vcse_share": "the national VCSE share",
    },
}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def links(page_url: str, html: str) -> list[str]:
    """The same-origin paths (with query) that a page's links point to."""
    parser = _Links()
    parser.feed(html)
    found = []
    for href in parser.hrefs:
        absolute, _ = urldefrag(urljoin(BASE + page_url, href))
        parts = urlsplit(absolute)
        if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}" != BASE:
            continue
        if parts.path.startswith(("/static/", "/assets/")):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


@dataclass
class Crawl:
    reached: dict[str, str] = field(default_factory=dict)  # endpoint → the first URL answering 200
    broken: list[tuple[str, int]] = field(default_factory=list)  # (URL, status) not 200 or 3xx
    # Pages showing markup as text (a tag escaped where it was meant as markup).
    escaped_markup: list[str] = field(default_factory=list)
    pages: int = 0


def crawl(app, client) -> Crawl:
    adapter = app.url_map.bind("marketplace.test")
    result = Crawl()
    queue, queued, per_endpoint = deque(["/"]), {"/"}, Counter()
    while queue and result.pages < MAX_PAGES:
        url = queue.popleft()
        try:
            endpoint, _ = adapter.match(urlsplit(url).path, method="GET")
        except RequestRedirect as redirect:
            endpoint = redirect.new_url
        except HTTPException:
            result.broken.append((url, 404))
            continue
        if per_endpoint[endpoint] >= PER_ENDPOINT:
            continue
        per_endpoint[endpoint] += 1
        response = client.get(url)
        result.pages += 1
        try:
            if response.status_code in (301, 302, 303, 307, 308):
                targets = links(url, f'<a href="{response.headers["Location"]}">')
            elif response.status_code == 200:
                result.reached.setdefault(endpoint, url)
                targets = []
                if response.mimetype == "text/html":
                    html = response.get_data(as_text=True)
                    targets = links(url, html)
                    if ESCAPED_TAG.search(html):
                        result.escaped_markup.append(url)
            else:
                result.broken.append((url, response.status_code))
                targets = []
        finally:
            response.close()
        for target in targets:
            if target not in queued:
                queued.add(target)
                queue.append(target)
    return result


def _organisation(name: str) -> Organisation:
    return db.session.scalar(sa.select(Organisation).where(Organisation.name == name))


@pytest.fixture
def journey_world(app, monkeypatch):
    """The demo world, as `flask demo load` builds it (one password hash for everyone), and what a
    few journeys need that the demo leaves out: a call-off waiting for Bridgeway's answer, a
    change Bridgeway proposed waiting for the buyer, and Bridgeway's insurance expiring soon."""
    monkeypatch.setattr(demo_organisations, "hash_password", lambda password: password_hash())
    load_demo_data()
    commit()
    reindex_search()

    bridgeway = _organisation("Bridgeway Family Support")
    trustee = get_user_by_email(f"trustee@{demo_people.DEMO_EMAIL_DOMAIN}")
    buyer = get_user_by_email(f"buyer@{demo_people.DEMO_EMAIL_DOMAIN}")
    region = _organisation("Probation Service – North West")
    delivering = db.session.scalars(
        sa.select(CallOff)
        .where(CallOff.provider_id == bridgeway.id, CallOff.status == CallOffStatus.IN_DELIVERY)
        .order_by(CallOff.id)
    ).first()
    variations.propose_variation(
        trustee, delivering, extra_units=2, reason="The person asked for two more sessions"
    )
    listing = delivering.listing
    start = add_working_days(london_date(), listing.lead_time_days + 1)
    placing.place_call_off(
        buyer,
        region,
        listing.id,
        details.CallOffDetails(
            quantity=listing.min_units,
            start_date=start,
            end_date=start + timedelta(days=28),
            crn="F100001",
            pdu="Lancashire North",
            po_number="NW-PO-9001",
            choice_reason="continuity",
            choice_reason_detail="Journey navigation test",
            shares=(),
        ),
    )
    for answer in db.session.scalars(
        sa.select(Answer)
        .join(Application, Application.id == Answer.application_id)
        .where(
            Application.organisation_id == bridgeway.id,
            Answer.evidence_expires_on.is_not(None),
        )
    ):
        answer.evidence_expires_on = london_date() + timedelta(days=20)
    commit()


@pytest.mark.parametrize("role", list(PEOPLE))
def test_every_page_a_journey_needs_is_reached_by_links_from_home(app, client, journey_world, role):
    if PEOPLE[role] is not None:
        local_part, organisation_name = PEOPLE[role]
        user = get_user_by_email(f"{local_part}@{demo_people.DEMO_EMAIL_DOMAIN}")
        sign_in_as(client, user, _organisation(organisation_name))
    result = crawl(app, client)
    missing = {
        endpoint: journey
        for endpoint, journey in JOURNEY_PAGES[role].items()
        if endpoint not in result.reached
    }
    assert not missing, (
        f"{role}: no link from the home page reaches "
        + "; ".join(f"{endpoint} ({journey})" for endpoint, journey in missing.items())
        + f" (followed links to {result.pages} pages)"
    )
    # A link a person is shown leads to a page they may see, and pages show no tags as text.
    assert not result.broken, f"{role}: links that answer with an error: {result.broken}"
    assert not result.escaped_markup, f"{role}: tags shown as text on {result.escaped_markup}"
