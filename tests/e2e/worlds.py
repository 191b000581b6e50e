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

from marketplace.db import commit, db


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


def invoice_world(live_server, *, issued: bool = False) -> InvoiceWorld:
    """After the monthly run: a call-off accepted and three sessions delivered at £123.45 plus
    20% VAT, drafted as an invoice by ``run_period`` (and issued by the provider if ``issued``)."""
    from marketplace.filters import pounds
    from marketplace.invoices import services as invoices
    from marketplace.invoices.models import Invoice
    from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of

    with live_server.app.app_context():
        world, people = _orders_world(price_pence=12_345, vat_treatment="standard")
        po_number = f"PO-{tag()[:6].upper()}"
        call_off = accepted_call_off(world, po_number=po_number)
        deliver(world, call_off, call_off.start_date, 3)
        invoices.run_period(period_of(call_off.start_date))
        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
        if issued:
            invoices.issue(world.provider_admin, invoice)
        built = InvoiceWorld(
            people=people,
            call_off=call_off.reference,
            po_number=po_number,
            gross=pounds(invoice.gross_pence),
            net_pence=invoice.net_pence,
            number=invoice.number,
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
    from marketplace.orders.services import financial_year

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
    from marketplace.filters import pounds
    from marketplace.orders import services as orders
    from tests.catalogue.factories import make_listing
    from tests.orders.factories import details

    t = tag()
    word = f"osprey{t}"
    with live_server.app.app_context():
        world, people = _orders_world()  # £100.00 a session, limit £30,000.00
        world.listing.title = f"Supported housing {word}"
        other = make_listing(
            world.listing.lot,
            world.provider,
            title=f"Floating support {word}",
            summary="Visits at home to keep a tenancy going",
            price_pence=6_000,
            max_units=300,
            lead_time_days=5,
        )
        bought = orders.place_call_off(
            world.buyer, world.region, world.listing.id, details(world, quantity=250)
        )
        orders.approve(world.approver, bought)  # above the buyer's own spend limit
        orders.accept(world.provider_admin, bought)
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

    from marketplace.orders import services as orders
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
            call_off = orders.place_call_off(
                world.buyer, world.region, world.listing.id, details(world, quantity=10, crn=crn)
            )
            orders.accept(world.provider_admin, call_off)
            if name != "to_cancel":
                shift = call_off.start_date - (today - timedelta(weeks=4))
                call_off.start_date -= shift
                call_off.end_date -= shift
            made[name] = call_off
        db.session.flush()

        delivering = made["delivering"]
        start = delivering.start_date
        orders.record_delivery(
            world.provider_admin,
            delivering,
            orders.DeliveryDetails(
                delivered_on=start, units=1, attendance="attended", progress_note="Rent plan made"
            ),
        )
        orders.record_delivery(
            world.provider_admin,
            delivering,
            orders.DeliveryDetails(
                delivered_on=start + timedelta(days=7),
                units=0,
                attendance="did_not_attend",
                absence_reason="acceptable",
            ),
        )
        orders.propose_variation(
            world.provider_admin,
            delivering,
            extra_units=4,
            reason="Rent arrears need four more sessions",
        )

        extending = made["extending"]
        new_end = extending.end_date + timedelta(days=90)
        orders.record_delivery(
            world.provider_admin,
            extending,
            orders.DeliveryDetails(delivered_on=extending.start_date, units=1, attendance="late"),
        )
        orders.propose_variation(
            world.provider_admin, extending, new_end_date=new_end, reason=extend_reason
        )

        completed = made["completed"]
        orders.record_delivery(
            world.provider_admin,
            completed,
            orders.DeliveryDetails(
                delivered_on=completed.start_date, units=2, attendance="attended"
            ),
        )
        orders.complete(
            world.provider_admin,
            completed,
            summary,
            [
                orders.OutcomeDetails("Settled accommodation", "achieved"),
                orders.OutcomeDetails("Tenancy kept for 6 months", "not_achieved", "Too early"),
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
