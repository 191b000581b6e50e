"""The worlds the journeys start from (JOURNEYS.md): what must already exist before a person sets
out, written with the test factories into the live server's database. A world is the journey's
precondition, never a step of it: each person then moves by links, buttons and forms alone.

Each builder commits, closes its session and returns plain values (names, emails, secrets), so
that nothing ORM-bound crosses into the browser test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from marketplace.core.db import commit, db


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    totp_secret: str | None = None


def tag() -> str:
    """A short random tag that keeps names and emails apart between tests on one live server."""
    return uuid.uuid4().hex[:8]


def london_today() -> date:
    return datetime.now(ZoneInfo("Europe/London")).date()


def day_month_year(day: date) -> str:
    """A date as a person types it in a date field: 31 3 2027."""
    return f"{day.day} {day.month} {day.year}"


def commit_and_close() -> None:
    """Commit as a request does (its after-commit hooks send the emails it queued), then close."""
    commit()
    db.session.remove()


def person(user) -> Person:
    return Person(user.email, user.name, user.totp_secret if user.two_factor_enabled else None)


def small_pdf(title: str = "Evidence") -> bytes:
    """A small, well-formed one-page PDF showing ``title``."""
    text = b"BT /F1 18 Tf 72 760 Td (" + title.encode("ascii") + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# --- joining the DPS (P2, S1) --------------------------------------------------------------------


@dataclass(frozen=True)
class AccreditationWorld:
    arrangement: str
    provider_name: str
    provider: Person  # the provider's administrator: no application yet
    assessor: Person  # with two-factor sign-in
    lot_a: str  # Accommodation: a yes/no question and an expiring insurance certificate
    lot_b: str  # Education, training and employment: yes/no, an optional number and a text
    regions: tuple[str, str, str]  # the arrangement's regions; the provider covers the first two
    safeguarding_a: str
    insurance_a: str
    safeguarding_b: str
    staff_b: str
    work_b: str


def accreditation_world(live_server) -> AccreditationWorld:
    """A live arrangement with two lots in three regions, a provider organisation whose
    administrator has not applied yet, and an assessor of the authority."""
    from marketplace.accounts.models import OrganisationType, Role
    from marketplace.accreditation.models import Criterion, QuestionType
    from tests.accreditation.builders import make_provider, make_world, region
    from tests.factories import make_member, make_organisation

    t = tag()
    with live_server.app.app_context():
        world = make_world()
        world.arrangement.name = f"Rehabilitation services DPS {t}"
        world.arrangement.reference = f"DPS-J-{t}"
        world.arrangement.regions = [world.region_1, world.region_2, region("C")]
        work_b = Criterion(
            lot=world.lot_b,
            position=3,
            question="Describe how you help people on probation into work",
            type=QuestionType.TEXT,
            mandatory=True,
            pass_fail=True,
        )
        db.session.add(work_b)
        organisation, admin = make_provider(f"Northern Lights Trust {t}")
        admin.email, admin.name = f"nadia.khan.{t}@northern-lights.example.org", f"Nadia Khan {t}"
        authority = make_organisation(OrganisationType.AUTHORITY, name=f"HMPPS Commissioning {t}")
        assessor = make_member(
            Role.ASSESSOR,
            authority,
            email=f"owen.price.{t}@hmpps.example.gov.uk",
            name=f"Owen Price {t}",
        )
        db.session.flush()
        built = AccreditationWorld(
            arrangement=world.arrangement.name,
            provider_name=organisation.name,
            provider=person(admin),
            assessor=person(assessor),
            lot_a=world.lot_a.category.name,
            lot_b=world.lot_b.category.name,
            regions=tuple(r.name for r in world.arrangement.regions),
            safeguarding_a=world.safeguarding_a.question,
            insurance_a=world.insurance_a.question,
            safeguarding_b=world.safeguarding_b.question,
            staff_b=world.staff_b.question,
            work_b=work_b.question,
        )
        commit_and_close()
    return built


# --- call-offs, invoices and outcomes (P7, P8, A3) ------------------------------------------------


@dataclass(frozen=True)
class OrdersWorld:
    provider_name: str
    buyer_name: str  # the probation region that leads the call-offs
    provider: Person  # the provider's administrator
    buyer: Person  # a probation practitioner of the region
    approver: Person  # the region's budget holder


def _orders_world(**listing_fields):
    """The factories' orders world, its organisations and people named apart for this test."""
    from tests.orders.factories import build_orders_world

    t = tag()
    world = build_orders_world(**listing_fields)
    world.provider.name = f"Harbour Housing {t}"
    world.region.name = f"North East Probation {t}"
    world.pcc.name = f"Durham PCC {t}"
    for user, name, address in (
        (world.provider_admin, "Priya Nair", "priya.nair@harbour-housing"),
        (world.buyer, "Ben Ellis", "ben.ellis@ne-probation"),
        (world.approver, "Ruth Adeyemi", "ruth.adeyemi@ne-probation"),
    ):
        user.name = f"{name} {t}"
        user.email = f"{address}-{t}.example.org"
    db.session.flush()
    people = OrdersWorld(
        provider_name=world.provider.name,
        buyer_name=world.region.name,
        provider=person(world.provider_admin),
        buyer=person(world.buyer),
        approver=person(world.approver),
    )
    return world, people


@dataclass(frozen=True)
class InvoiceWorld:
    people: OrdersWorld
    call_off: str  # its reference
    po_number: str
    gross: str  # the invoice's amount due, as pages show it ("£444.42")
    net_pence: int
    number: str | None  # once issued
    # With ``second``: another call-off for another person, its invoice validated by the buyer
    # (so that the approver can pay it by card straight away).
    second_number: str | None = None
    second_gross: str | None = None


def invoice_world(live_server, *, issued: bool = False, second: bool = False) -> InvoiceWorld:
    """After the monthly run: a call-off accepted and three sessions delivered at £123.45 plus
    20% VAT, drafted as an invoice by ``run_period`` (and issued by the provider if ``issued``)."""
    from marketplace.core.filters import pounds
    from marketplace.invoices.models import Invoice
    from marketplace.invoices.services import issuing, monthly_run
    from tests.factories import after_month
    from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of

    with live_server.app.app_context():
        world, people = _orders_world(price_pence=12_345, vat_treatment="standard")
        po_number = f"PO-{tag()[:6].upper()}"
        call_off = accepted_call_off(world, po_number=po_number)
        deliver(world, call_off, call_off.start_date, 3)
        other = None
        if second:
            other = accepted_call_off(world, po_number=f"{po_number}-2", crn="Y654321")
            deliver(world, other, other.start_date, 2)
        monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
        if issued:
            issuing.issue(world.provider_admin, invoice)
        second_number = second_gross = None
        if other is not None:
            other_invoice = db.session.scalar(
                sa.select(Invoice).where(Invoice.call_off_id == other.id)
            )
            issuing.issue(world.provider_admin, other_invoice)
            issuing.validate(world.buyer, other_invoice)
            second_number, second_gross = other_invoice.number, pounds(other_invoice.gross_pence)
        built = InvoiceWorld(
            people=people,
            call_off=call_off.reference,
            po_number=po_number,
            gross=pounds(invoice.gross_pence),
            net_pence=invoice.net_pence,
            number=invoice.number,
            second_number=second_number,
            second_gross=second_gross,
        )
        commit_and_close()
    return built


@dataclass(frozen=True)
class OutcomeWorld:
    people: OrdersWorld
    call_off: str  # its reference
    outcome: str  # the agreed outcome term's outcome
    earliest_claim_on: date


def outcome_world(live_server) -> OutcomeWorld:
    """A call-off accepted with one payment-by-results term (at most two claims of "Settled
    accommodation"), that started 14 weeks ago, so the outcome may be claimed since last week.

    A call-off can only be placed to start in the future: its dates (and the term's earliest
    claim date) are moved back together afterwards, as if the weeks had passed."""
    from datetime import timedelta

    from marketplace.outcomes.models import OutcomeTerm
    from tests.outcomes.factories import accepted_with_terms

    with live_server.app.app_context():
        world, people = _orders_world()
        call_off = accepted_with_terms(world)
        [term] = db.session.scalars(
            sa.select(OutcomeTerm).where(OutcomeTerm.call_off_id == call_off.id)
        ).all()
        shift = call_off.start_date - (london_today() - timedelta(weeks=14))
        call_off.start_date -= shift
        call_off.end_date -= shift
        term.earliest_claim_on -= shift
        built = OutcomeWorld(
            people=people,
            call_off=call_off.reference,
            outcome=term.outcome,
            earliest_claim_on=term.earliest_claim_on,
        )
        commit_and_close()
    return built


# --- renewing evidence (P6, S1's last step) --------------------------------------------------------


@dataclass(frozen=True)
class MemberWorld:
    provider_name: str
    provider: Person  # the member's administrator
    assessor: Person
    lot: str
    evidence: str  # the question whose evidence expires
    expires_on: date


def member_with_expiring_evidence(live_server, days_left: int = 20) -> MemberWorld:
    """A charity admitted to a lot in two regions, its insurance certificate expiring in
    ``days_left`` days, and an assessor of the authority."""
    from datetime import timedelta

    from tests.accreditation.test_expiry import admitted

    t = tag()
    expires_on = london_today() + timedelta(days=days_left)
    with live_server.app.app_context():
        world, organisation, admin, assessor, application, insurance = admitted(expires_on)
        organisation.name = f"Riverside Recovery {t}"
        admin.email, admin.name = f"femi.ade.{t}@riverside.example.org", f"Femi Ade {t}"
        assessor.email, assessor.name = f"grace.lowe.{t}@hmpps.example.gov.uk", f"Grace Lowe {t}"
        world.arrangement.reference = f"DPS-R-{t}"
        built = MemberWorld(
            provider_name=organisation.name,
            provider=person(admin),
            assessor=person(assessor),
            lot=world.lot_a.category.name,
            evidence=insurance.criterion.question,
            expires_on=expires_on,
        )
        commit_and_close()
    return built


# --- the public register and the members page (V1, U2) ---------------------------------------------


@dataclass(frozen=True)
class RegisterWorld:
    arrangement: str
    reference: str
    lot: str
    regions: tuple[str, str]
    # Providers in the order of ``listings``: a Welsh charity (a name a spreadsheet must read
    # right) offering its service in the first region, and a trust offering one in the second.
    providers: tuple[str, str]
    charity_number: str  # the Welsh charity's
    word: str  # a word (of letters) in the titles of this world's listings alone
    listings: tuple[str, str]
    prices: tuple[str, str]  # as pages show them ("£32.50")


def register_world(live_server) -> RegisterWorld:
    """A live arrangement whose register has two members, each with a published listing."""
    from tests.accreditation.builders import make_provider, make_world
    from tests.accreditation.factories import make_lot_membership
    from tests.catalogue.factories import make_listing

    t = tag()
    with live_server.app.app_context():
        world = make_world()
        world.arrangement.name = f"Community rehabilitation DPS {t}"
        world.arrangement.reference = f"DPS-V1-{t}"
        welsh, _ = make_provider(f"Cymorth Adferiad Môn – Ynys {t}")
        welsh.charity_number = f"11{int(t[:5], 16) % 100000:05d}"
        trust, _ = make_provider(f"Harbour Light Trust {t}")
        word = "".join(chr(ord("a") + int(digit, 16)) for digit in t)
        listings = (f"Peer mentoring after custody {word}", f"Mentoring into work {word}")
        prices = (3_250, 4_100)
        for organisation, region, title, price in zip(
            (welsh, trust), (world.region_1, world.region_2), listings, prices, strict=True
        ):
            make_lot_membership(world.lot_a, organisation, region_code=region.code)
            make_listing(
                world.lot_a,
                organisation,
                title=title,
                summary=f"Weekly mentoring with someone who has been there ({organisation.name})",
                region_codes=(region.code,),
                price_pence=price,
            )
        built = RegisterWorld(
            arrangement=world.arrangement.name,
            reference=world.arrangement.reference,
            lot=world.lot_a.category.name,
            regions=(world.region_1.name, world.region_2.name),
            providers=(welsh.name, trust.name),
            charity_number=welsh.charity_number,
            word=word,
            listings=listings,
            prices=tuple(f"£{p // 100}.{p % 100:02d}" for p in prices),
        )
        commit_and_close()
    return built


@dataclass(frozen=True)
class MembersWorld:
    arrangement: str
    lot: str
    region: str
    authority_admin: Person  # with two-factor sign-in
    # Three members of the lot in the region, each with its administrator: the first to be
    # suspended, the second asked to re-declare, the third removed.
    providers: tuple[str, str, str]
    admins: tuple[Person, Person, Person]


def members_world(live_server) -> MembersWorld:
    """A live arrangement with three active members of one lot in one region, and an
    administrator of the contracting authority."""
    from marketplace.accounts.models import OrganisationType, Role
    from tests.accreditation.builders import make_provider, make_world
    from tests.accreditation.factories import make_lot_membership
    from tests.factories import make_member, make_organisation

    t = tag()
    with live_server.app.app_context():
        world = make_world()
        world.arrangement.name = f"Rehabilitation services DPS {t}"
        world.arrangement.reference = f"DPS-U2-{t}"
        providers, admins = [], []
        for name, admin_name, address in (
            ("Anchor Recovery Housing", "Sam Patel", "sam.patel@anchor-recovery"),
            ("Beacon Works", "Lena Novak", "lena.novak@beacon-works"),
            ("Clearwater Trust", "Tom Reid", "tom.reid@clearwater"),
        ):
            organisation, admin = make_provider(f"{name} {t}")
            admin.name, admin.email = f"{admin_name} {t}", f"{address}-{t}.example.org"
            make_lot_membership(world.lot_a, organisation, region_code=world.region_1.code)
            providers.append(organisation.name)
            admins.append(person(admin))
        authority = make_organisation(OrganisationType.AUTHORITY, name=f"HMPPS Commissioning {t}")
        admin = make_member(
            Role.AUTHORITY_ADMIN,
            authority,
            email=f"ruth.adeyemi.{t}@justice.example.gov.uk",
            name=f"Ruth Adeyemi {t}",
        )
        built = MembersWorld(
            arrangement=world.arrangement.name,
            lot=world.lot_a.category.name,
            region=world.region_1.name,
            authority_admin=person(admin),
            providers=tuple(providers),
            admins=tuple(admins),
        )
        commit_and_close()
    return built


# --- co-funding with a PCC (B3, C1) ----------------------------------------------------------------


@dataclass(frozen=True)
class CoFundingWorld:
    people: OrdersWorld
    word: str  # a word only this world's listing contains, to search for
    listing: str  # the service to buy: £90.00 a session, exempt from VAT
    pcc_name: str  # the Police and Crime Commissioner that co-funds
    pcc: Person  # its approver, who confirms its shares
    other_pcc_name: str  # another PCC with a budget, that the buyer names by mistake
    lead_time_days: int


def _co_funding_world(live_server, then=None) -> tuple[CoFundingWorld, object]:
    """The orders world with its PCC's approver named, a second PCC with a budget and a listing
    to search for; ``then(world)`` adds what else the journey starts from, and its answer is
    returned beside the world."""
    from marketplace.accounts.models import OrganisationType, Role
    from marketplace.orders.models import Budget
    from tests.factories import make_member, make_organisation

    t = tag()
    word = f"heron{t}"
    with live_server.app.app_context():
        world, people = _orders_world(price_pence=9_000, lead_time_days=5)
        world.listing.title = f"Women's centre support {word}"
        world.listing.summary = "Keyworker sessions at a women's centre"
        world.pcc_approver.name = f"Jo Bell {t}"
        world.pcc_approver.email = f"jo.bell-{t}@durham-pcc.example.gov.uk"
        other = make_organisation(OrganisationType.PCC, name=f"Cleveland PCC {t}")
        make_member(Role.APPROVER, other, email=f"sam.hart-{t}@cleveland-pcc.example.gov.uk")
        db.session.add(
            Budget(
                organisation=other,
                financial_year=world.budget.financial_year,
                allocated_pence=world.pcc_budget.allocated_pence,
            )
        )
        db.session.flush()
        built = CoFundingWorld(
            people=people,
            word=word,
            listing=world.listing.title,
            pcc_name=world.pcc.name,
            pcc=person(world.pcc_approver),
            other_pcc_name=other.name,
            lead_time_days=world.listing.lead_time_days,
        )
        more = then(world) if then else None
        commit_and_close()
    return built, more


def co_funding_world(live_server) -> CoFundingWorld:
    """A charity's published listing (£90.00 a session, exempt from VAT, 5 working days'
    notice), a probation region that buys it, and two PCCs with budgets for this financial
    year: Durham's approver confirms its shares."""
    return _co_funding_world(live_server)[0]


@dataclass(frozen=True)
class CommissionerWorld:
    co_funding: CoFundingWorld
    to_confirm: str  # waiting for the PCC's 25% share
    also_waiting: str  # waiting for the PCC's 40% share too
    delivered: str  # co-funded 60/40, accepted, three sessions delivered, an outcome term
    outcome: str  # the delivered call-off's outcome term: at most 2 claims of £500.01
    invoice: str  # the delivered call-off's invoice, issued: 3 sessions, £270.00


def commissioner_world(live_server) -> CommissionerWorld:
    """What a PCC's staff meet after some weeks of co-funding with a probation region: two
    call-offs waiting for its share (25% and 40%), and one it co-funds 40% that was accepted
    with an outcome term, had three sessions delivered, and whose invoice the provider issued."""
    from marketplace.invoices.models import Invoice
    from marketplace.invoices.services import issuing, monthly_run
    from marketplace.orders.services import placing
    from tests.factories import after_month
    from tests.invoices.test_invoice_services import deliver, period_of
    from tests.orders.factories import details, shares
    from tests.outcomes.factories import accepted_with_terms, term

    def call_offs(world):
        waiting = [
            placing.place_call_off(
                world.buyer,
                world.region,
                world.listing.id,
                details(
                    world,
                    quantity=quantity,
                    crn=crn,
                    po_number=f"PO-{crn}",
                    shares=shares((world.region, 10_000 - points), (world.pcc, points)),
                ),
            )
            for quantity, crn, points in ((8, "W200001", 2_500), (12, "W200002", 4_000))
        ]
        delivered = accepted_with_terms(world, term(world), co_funded=True, crn="W200003")
        deliver(world, delivered, delivered.start_date, 3)
        monthly_run.run_period(
            period_of(delivered.start_date), now=after_month(delivered.start_date)
        )
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == delivered.id))
        issuing.issue(world.provider_admin, invoice)
        # Plain values: nothing ORM-bound outlives the world's session.
        return (
            [c.reference for c in waiting],
            delivered.reference,
            term(world).outcome,
            invoice.number,
        )

    co_funding, (waiting, delivered, outcome, invoice) = _co_funding_world(live_server, call_offs)
    return CommissionerWorld(
        co_funding=co_funding,
        to_confirm=waiting[0],
        also_waiting=waiting[1],
        delivered=delivered,
        outcome=outcome,
        invoice=invoice,
    )


# --- listings (P3) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingWorld:
    provider_name: str
    provider: Person  # the provider's administrator: no listing yet
    buyer: Person  # a probation practitioner who will search for the listing
    lot: str
    regions: tuple[str, str]  # where the provider is a member of the lot
    pcc_area: str  # a PCC area inside the second region


def listing_world(live_server) -> ListingWorld:
    """A live arrangement with one lot; a charity admitted to it in two regions (North East and
    North West), whose administrator has no listing yet; and a buyer of a probation region."""
    from marketplace.accounts.models import OrganisationType, Role
    from marketplace.accreditation.models import ArrangementStatus
    from tests.accreditation.factories import make_arrangement, make_lot_membership, pcc_area
    from tests.factories import make_member, make_organisation

    t = tag()
    with live_server.app.app_context():
        arrangement = make_arrangement(
            status=ArrangementStatus.LIVE,
            lots=("ACC",),
            regions=("A", "B"),
            name=f"Rehabilitation services DPS {t}",
            reference=f"DPS-L-{t}",
        )
        lot = arrangement.lots[0]
        provider = make_organisation(OrganisationType.PROVIDER_VCSE, name=f"Bright Futures {t}")
        for code in ("A", "B"):
            make_lot_membership(lot, provider, region_code=code)
        admin = make_member(
            Role.PROVIDER_ADMIN,
            provider,
            email=f"sam.okafor.{t}@bright-futures.example.org",
            name=f"Sam Okafor {t}",
        )
        region = make_organisation(OrganisationType.PROBATION_REGION, name=f"NW Probation {t}")
        buyer = make_member(
            Role.BUYER,
            region,
            email=f"lena.hughes.{t}@nw-probation.example.org",
            name=f"Lena Hughes {t}",
        )
        built = ListingWorld(
            provider_name=provider.name,
            provider=person(admin),
            buyer=person(buyer),
            lot=lot.category.name,
            regions=tuple(r.name for r in arrangement.regions),
            pcc_area=pcc_area("lancashire").name,
        )
        commit_and_close()
    return built


# --- answering and delivering call-offs (P5) --------------------------------------------------------


@dataclass(frozen=True)
class RespondWorld:
    people: OrdersWorld
    listing: str
    with_term: str  # the call-off placed with a payment-by-results term: to accept
    without_term: str  # the other: to decline
    outcome: str  # the term's outcome
    outcomes: tuple[str, ...]  # every outcome the listing offers
    start: date  # the first call-off's start: five weeks ago


def respond_world(live_server) -> RespondWorld:
    """Two call-offs placed by a probation region and sent to a charity's administrator, not yet
    answered: one for ten sessions with a payment-by-results term ("Settled accommodation"), one
    for six without. Missed sessions are not charged for.

    A call-off can only be placed to start in the future: the first one's dates (and its term's
    earliest claim date) are moved back five weeks afterwards, as if it had waited for an answer
    (its time to respond is left as it was), so that a month of sessions can be recorded."""
    from datetime import timedelta

    from marketplace.orders.models import CallOffStatus
    from marketplace.orders.services import placing
    from marketplace.outcomes.models import OutcomeTerm
    from tests.orders.factories import details
    from tests.outcomes.factories import term

    with live_server.app.app_context():
        world, people = _orders_world(missed_sessions_chargeable=False)
        world.listing.title = f"Move-on support {tag()}"
        first = placing.place_call_off(
            world.buyer,
            world.region,
            world.listing.id,
            details(world, quantity=10, crn="A123456", outcome_terms=(term(world),)),
        )
        second = placing.place_call_off(
            world.buyer,
            world.region,
            world.listing.id,
            details(world, quantity=6, crn="B654321", po_number="PO-1002"),
        )
        assert first.status == second.status == CallOffStatus.SENT
        [first_term] = db.session.scalars(
            sa.select(OutcomeTerm).where(OutcomeTerm.call_off_id == first.id)
        ).all()
        shift = first.start_date - (london_today() - timedelta(weeks=5))
        first.start_date -= shift
        first.end_date -= shift
        first_term.earliest_claim_on -= shift
        built = RespondWorld(
            people=people,
            listing=world.listing.title,
            with_term=first.reference,
            without_term=second.reference,
            outcome=first_term.outcome,
            outcomes=tuple(world.listing.outcome_list),
            start=first.start_date,
        )
        commit_and_close()
    return built


# --- buying and following call-offs (B2, B4, B5) ----------------------------------------------------


@dataclass(frozen=True)
class BuyingWorld:
    people: OrdersWorld
    word: str  # a word only this world's listings contain, to search for
    listing: str  # the service to buy: £45.00 a session, exempt from VAT
    min_units: int
    max_units: int
    lead_time_days: int
    budget_year: int  # the only financial year the buyer's organisation has a budget for


def buying_world(live_server) -> BuyingWorld:
    """A charity's published listing, sold 4 to 24 sessions at a time with 5 working days'
    notice, and a probation region with a budget for this financial year only."""
    from marketplace.core.clock import financial_year

    t = tag()
    word = f"kestrel{t}"
    with live_server.app.app_context():
        world, people = _orders_world(
            price_pence=4_500, min_units=4, max_units=24, lead_time_days=5
        )
        world.listing.title = f"Tenancy sustainment {word}"
        world.listing.summary = "Weekly visits to help a person keep their home"
        built = BuyingWorld(
            people=people,
            word=word,
            listing=world.listing.title,
            min_units=world.listing.min_units,
            max_units=world.listing.max_units,
            lead_time_days=world.listing.lead_time_days,
            budget_year=financial_year(world.start),
        )
        commit_and_close()
    return built


@dataclass(frozen=True)
class LimitWorld:
    people: OrdersWorld
    word: str
    bought: str  # the reference of the call-off already placed, on the provider's first listing
    bought_gross: str  # its value, as pages show it
    listing: str  # the provider's other listing in the same lot: £60.00 a session
    limit: str  # the arrangement's direct-award limit, as pages show it


def limit_world(live_server) -> LimitWorld:
    """Anti-splitting (DOMAIN.md): the buyer's organisation has bought £25,000.00 of supported
    housing from a provider this year; the provider's other service in the same lot (floating
    support, £60.00 a session) counts together with it towards the £30,000.00 direct-award
    limit."""
    from marketplace.core.filters import pounds
    from marketplace.orders.models import Budget
    from marketplace.orders.services import funding as order_funding
    from marketplace.orders.services import placing, responses
    from tests.catalogue.factories import make_listing
    from tests.orders.factories import details

    t = tag()
    word = f"osprey{t}"
    with live_server.app.app_context():
        world, people = _orders_world()  # £100.00 a session, limit £30,000.00
        world.listing.title = f"Supported housing {word}"
        # The journey's call-off runs six months, across 31 March in the winter: the region has
        # next year's budget too, so that the only refusal is the direct-award limit's.
        db.session.add(
            Budget(
                organisation=world.region,
                financial_year=world.budget.financial_year + 1,
                allocated_pence=world.budget.allocated_pence,
            )
        )
        other = make_listing(
            world.listing.lot,
            world.provider,
            title=f"Floating support {word}",
            summary="Visits at home to keep a tenancy going",
            price_pence=6_000,
            max_units=300,
            lead_time_days=5,
        )
        bought = placing.place_call_off(
            world.buyer, world.region, world.listing.id, details(world, quantity=250)
        )
        order_funding.approve(world.approver, bought)  # above the buyer's own spend limit
        responses.accept(world.provider_admin, bought)
        built = LimitWorld(
            people=people,
            word=word,
            bought=bought.reference,
            bought_gross=pounds(bought.gross_pence),
            listing=other.title,
            limit=pounds(bought.arrangement.direct_award_limit_pence),
        )
        commit_and_close()
    return built


@dataclass(frozen=True)
class FollowingWorld:
    people: OrdersWorld
    delivering: str  # in delivery: two sessions recorded, 4 more proposed by the provider
    extending: str  # in delivery: the provider proposes a later end date
    to_cancel: str  # accepted, nothing delivered yet
    completed: str  # completed, with each outcome's result
    extra_units: int
    extend_reason: str
    new_end: date
    outcomes: tuple[tuple[str, str], ...]  # (outcome, result label) on the completed one
    summary: str  # the completed one's end-of-service summary


def following_world(live_server) -> FollowingWorld:
    """A buyer's call-offs with one provider, as weeks of work leave them: two being delivered,
    each with a change the provider proposed; one accepted and not started; one completed with
    its outcomes. Call-offs can only be placed to start in the future: each is moved back four
    weeks after it is accepted, as if the weeks had passed, before its sessions are recorded."""
    from datetime import timedelta

    from marketplace.orders.services import delivery as order_delivery
    from marketplace.orders.services import placing, responses, variations
    from tests.orders.factories import details

    today = london_today()
    extend_reason = "Her move-on flat is not ready until the spring"
    summary = "Settled in her own tenancy and paying rent on time."
    with live_server.app.app_context():
        world, people = _orders_world()
        made = {}
        for name, crn in (
            ("delivering", "D100001"),
            ("extending", "D100002"),
            ("to_cancel", "D100003"),
            ("completed", "D100004"),
        ):
            call_off = placing.place_call_off(
                world.buyer, world.region, world.listing.id, details(world, quantity=10, crn=crn)
            )
            responses.accept(world.provider_admin, call_off)
            if name != "to_cancel":
                shift = call_off.start_date - (today - timedelta(weeks=4))
                call_off.start_date -= shift
                call_off.end_date -= shift
            made[name] = call_off
        db.session.flush()

        delivering = made["delivering"]
        start = delivering.start_date
        order_delivery.record_delivery(
            world.provider_admin,
            delivering,
            order_delivery.DeliveryDetails(
                delivered_on=start, units=1, attendance="attended", progress_note="Rent plan made"
            ),
        )
        order_delivery.record_delivery(
            world.provider_admin,
            delivering,
            order_delivery.DeliveryDetails(
                delivered_on=start + timedelta(days=7),
                units=0,
                attendance="did_not_attend",
                absence_reason="acceptable",
            ),
        )
        variations.propose_variation(
            world.provider_admin,
            delivering,
            extra_units=4,
            reason="Rent arrears need four more sessions",
        )

        extending = made["extending"]
        new_end = extending.end_date + timedelta(days=90)
        order_delivery.record_delivery(
            world.provider_admin,
            extending,
            order_delivery.DeliveryDetails(
                delivered_on=extending.start_date, units=1, attendance="late"
            ),
        )
        variations.propose_variation(
            world.provider_admin, extending, new_end_date=new_end, reason=extend_reason
        )

        completed = made["completed"]
        order_delivery.record_delivery(
            world.provider_admin,
            completed,
            order_delivery.DeliveryDetails(
                delivered_on=completed.start_date, units=2, attendance="attended"
            ),
        )
        order_delivery.complete(
            world.provider_admin,
            completed,
            summary,
            [
                order_delivery.OutcomeDetails("Settled accommodation", "achieved"),
                order_delivery.OutcomeDetails(
                    "Tenancy kept for 6 months", "not_achieved", "Too early"
                ),
            ],
        )
        built = FollowingWorld(
            people=people,
            delivering=delivering.reference,
            extending=extending.reference,
            to_cancel=made["to_cancel"].reference,
            completed=completed.reference,
            extra_units=4,
            extend_reason=extend_reason,
            new_end=new_end,
            outcomes=(
                ("Settled accommodation", "Achieved"),
                ("Tenancy kept for 6 months", "Not achieved"),
            ),
            summary=summary,
        )
        commit_and_close()
    return built


# --- budgets and standing authorisations (A1, C1) --------------------------------------------------


@dataclass(frozen=True)
class FundingWorld:
    region_name: str  # a probation region with no budget yet
    approver: Person  # its budget holder, who sets the budgets
    colleague: Person  # its other approver, told of each change by email
    pcc_name: str  # a Police and Crime Commissioner, also without budgets
    pcc: Person  # its approver, who sets up standing authorisations
    category: str  # a service category to set a budget for


def funding_world(live_server) -> FundingWorld:
    """A probation region and a PCC that the authority has just created, each with its
    approvers and nothing else: no budgets, no authorisations."""
    from marketplace.accounts.models import OrganisationType, Role
    from marketplace.reference.models import ServiceCategory
    from tests.factories import make_member, make_organisation

    t = tag()
    with live_server.app.app_context():
        region = make_organisation(OrganisationType.PROBATION_REGION, name=f"Wessex Probation {t}")
        pcc = make_organisation(OrganisationType.PCC, name=f"Dorset PCC {t}")
        approver = make_member(
            Role.APPROVER, region, name=f"Ruth Adeyemi {t}", email=f"ruth-{t}@wessex.example.org"
        )
        colleague = make_member(
            Role.APPROVER, region, name=f"Omar Haddad {t}", email=f"omar-{t}@wessex.example.org"
        )
        pcc_approver = make_member(
            Role.APPROVER, pcc, name=f"Jo Bell {t}", email=f"jo-{t}@dorset-pcc.example.gov.uk"
        )
        category = db.session.scalar(
            sa.select(ServiceCategory.name).where(ServiceCategory.code == "ACC")
        )
        built = FundingWorld(
            region_name=region.name,
            approver=person(approver),
            colleague=person(colleague),
            pcc_name=pcc.name,
            pcc=person(pcc_approver),
            category=category,
        )
        commit_and_close()
    return built


# --- A2: spend and approval limits --------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalWorld:
    buying: BuyingWorld
    own: str  # a call-off the approver placed herself, above her own spend limit
    other_approver: str  # the second approver's name, who can approve it


def approval_world(live_server) -> ApprovalWorld:
    """The buying world (£45.00 a session) where the region's approver is also a buyer with a
    £100.00 spend limit, and has placed a £450.00 call-off herself that waits for the region's
    second approver."""
    from marketplace.accounts.models import Role, User
    from marketplace.accounts.services.limits import set_limits
    from marketplace.orders.services import placing
    from tests.factories import add_membership, make_member
    from tests.orders.factories import details

    t = tag()
    word = f"heron{t}"
    with live_server.app.app_context():
        world, people = _orders_world(
            price_pence=4_500, min_units=4, max_units=24, lead_time_days=5
        )
        world.listing.title = f"Tenancy sustainment {word}"
        world.listing.summary = "Weekly visits to help a person keep their home"
        second = make_member(Role.APPROVER, world.region, name=f"Sam Okafor {t}")
        add_membership(world.approver, world.region, Role.BUYER)
        db.session.flush()
        db.session.expire(world.approver)
        approver = db.session.get(User, world.approver.id)
        set_limits(second, world.region, approver, spend_limit_pence=10_000)
        own = placing.place_call_off(
            approver, world.region, world.listing.id, details(world, quantity=10)
        )
        assert own.status.value == "awaiting_approval"
        built = ApprovalWorld(
            buying=BuyingWorld(
                people=people,
                word=word,
                listing=world.listing.title,
                min_units=world.listing.min_units,
                max_units=world.listing.max_units,
                lead_time_days=world.listing.lead_time_days,
                budget_year=0,
            ),
            own=own.reference,
            other_approver=second.name,
        )
        commit_and_close()
    return built


@dataclass(frozen=True)
class AcrossYearsWorld:
    buying: BuyingWorld
    start: date  # 1 February: the call-off's planned months span 31 March
    end: date  # 31 May
    first_year: int  # the financial year 1 February falls in; the next one has a budget too


def across_years_world(live_server) -> AcrossYearsWorld:
    """The buying world (£45.00 a session) whose region has £10,000.00 budgets for the
    financial year of a 1 February at least two months ahead and for the year after it."""
    from datetime import timedelta

    from marketplace.orders.models import Budget

    t = tag()
    word = f"plover{t}"
    today = london_today()
    april = date(today.year, 4, 1)
    while (april - today).days < 90:
        april = date(april.year + 1, 4, 1)
    start, end, first = date(april.year, 2, 1), date(april.year, 5, 31), april.year - 1
    assert end - start < timedelta(days=200)
    with live_server.app.app_context():
        world, people = _orders_world(
            price_pence=4_500, min_units=4, max_units=24, lead_time_days=5
        )
        world.listing.title = f"Tenancy sustainment {word}"
        world.listing.summary = "Weekly visits to help a person keep their home"
        db.session.execute(sa.delete(Budget).where(Budget.organisation_id == world.region.id))
        for year in (first, first + 1):
            db.session.add(
                Budget(organisation=world.region, financial_year=year, allocated_pence=1_000_000)
            )
        built = AcrossYearsWorld(
            buying=BuyingWorld(
                people=people,
                word=word,
                listing=world.listing.title,
                min_units=world.listing.min_units,
                max_units=world.listing.max_units,
                lead_time_days=world.listing.lead_time_days,
                budget_year=first,
            ),
            start=start,
            end=end,
            first_year=first,
        )
        commit_and_close()
    return built
