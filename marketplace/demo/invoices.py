"""Demo invoices for `flask demo load`: months of delivery billed month by month, so that the
invoice lists, the provider's summary, the co-funder's recharge statement and the payment-
performance figures have something real to show.

Two call-offs of the North West buyer, placed months ago, are billed by the monthly run; their
invoices are issued, validated, disputed, credited and paid on the days a person would have done
it, paid within 30 days or late, and the last ones are left issued (one overdue) or disputed.
The co-funded one carries an outcome term with claims verified, rejected and waiting.
Everything goes through the services with the dates of the day, so the audit trail, emails and
budgets are what the real journey leaves.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.catalogue.models import Listing
from marketplace.catalogue.search.params import SearchParams
from marketplace.catalogue.search.queries import search
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.demo.organisations import provider_admin_of
from marketplace.invoices.models import Invoice, InvoiceKind, InvoiceStatus
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from marketplace.orders.models import CallOff
from marketplace.orders.services import delivery as orders_delivery
from marketplace.orders.services import details as orders_details
from marketplace.orders.services import funding as orders_funding
from marketplace.orders.services import placing as orders_placing
from marketplace.orders.services import responses as orders_responses
from marketplace.outcomes import queries as outcome_queries
from marketplace.outcomes import services as outcomes

DEMO_EVIDENCE = b"%PDF-1.4\n% demo outcome evidence\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
MONTHS = 4  # the named providers' services have been priced since July


def _at(day: date, hour: int = 11) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _month_starts(today: date, count: int) -> list[date]:
    """The first days of the ``count`` whole months before this one, oldest first."""
    first = today.replace(day=1)
    months = []
    for _ in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return months[::-1]


def _month_end(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _listing(latest_start: date, units: int) -> tuple[Listing, User, date] | None:
    """The service the North West buyer can find that has been priced longest (by
    ``latest_start`` at the latest), that can be bought ``units`` at a time and pays by results;
    with its provider's administrator and the day its first price took effect."""
    found = search(SearchParams(region="B", per_page=100))
    candidates = []
    for hit in found.page.items:
        listing = hit.listing
        first_price = min((p.effective_from for p in listing.prices), default=None)
        if (
            first_price is not None
            and first_price <= latest_start
            and listing.price_on(first_price).unit_price_pence <= 15_000
            and listing.min_units <= units <= listing.max_units
            and listing.monthly_capacity >= 10
            and listing.outcome_list
        ):
            candidates.append((first_price, listing.id, listing))
    for first_price, _, listing in sorted(candidates):
        admin = provider_admin_of(listing.organisation_id)
        if admin is not None:
            return listing, admin, first_price
    return None


@dataclass
class _Billing:
    """Who does what in the demo's billing: the provider's admin, the North West buyer, the
    PCC's approver, the region and the PCC; ``today`` in London."""

    listing: Listing
    admin: User
    buyer: User
    pcc_approver: User
    region: Organisation
    pcc: Organisation
    today: date

    def place(self, n: int, when: date, co_funded: bool, terms=()) -> CallOff:
        start = add_working_days(when, self.listing.lead_time_days + 1)
        shares = (
            (
                orders_details.FundingShare(self.region.id, 6_000),
                orders_details.FundingShare(self.pcc.id, 4_000),
            )
            if co_funded
            else ()
        )
        details = orders_details.CallOffDetails(
            quantity=16,
            start_date=start,
            end_date=start + timedelta(days=7 * 30),
            crn=f"E{200_001 + n:06d}"[:7],
            pdu="Lancashire North",
            po_number=f"NW-PO-{3_100 + n}",
            choice_reason="continuity",
            choice_reason_detail="Demo call-off billed month by month",
            shares=shares,
            outcome_terms=terms,
        )
        call_off = orders_placing.place_call_off(
            self.buyer, self.region, self.listing.id, details, now=_at(when)
        )
        if co_funded:
            orders_funding.confirm_funding(self.pcc_approver, call_off, self.pcc, now=_at(when, 14))
        orders_responses.accept(self.admin, call_off, now=_at(when + timedelta(days=1)))
        return call_off

    def pay(self, invoice: Invoice, validate_after: int, pay_after: int) -> None:
        received = invoice.received_at
        issuing.validate(self.buyer, invoice, now=received + timedelta(days=validate_after))
        paid_on = london_date(received) + timedelta(days=pay_after)
        if paid_on <= self.today:
            issuing.mark_paid_by_bacs(
                self.buyer, invoice, f"BACS-{invoice.number}", paid_on, now=_at(paid_on, 15)
            )


def load_invoices_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> dict[str, int]:
    now = utcnow()
    today = london_date(now)
    months = _month_starts(today, MONTHS)
    found = _listing(months[0] + timedelta(days=14), 16)
    if found is None:
        return {"invoices": 0}
    listing, admin, first_price = found
    placed_on = first_price + timedelta(days=1)
    # Its provider is VAT-registered like every demo provider (demo.organisations): its invoices
    # show the number.
    billing = _Billing(
        listing,
        admin,
        people["buyer"],
        people["pcc.approver"],
        organisations["pdu-nw"],
        organisations["pcc-lancs"],
        today,
    )
    co_funded = billing.place(
        1,
        placed_on,
        True,
        terms=(
            outcomes.OutcomeTermDetails(
                outcome=listing.outcome_list[0],
                tariff_pence=40_000,
                earliest_claim_on=placed_on + timedelta(days=77),
                evidence_required="A signed tenancy agreement or a letter from the landlord",
                cap=3,
            ),
        ),
    )
    single = billing.place(2, placed_on, False)
    _deliver_twice_a_month(billing, (co_funded, single), months)
    _claim_the_outcome(billing, co_funded)
    issued_by_month = _run_and_issue(billing, months, (co_funded.id, single.id))
    _buyer_acts_on_invoices(billing, issued_by_month, co_funded.id)
    return {
        "invoices": db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)),
    }


def _deliver_twice_a_month(billing: _Billing, call_offs, months: list[date]) -> None:
    """Two sessions a month for each, recorded on the day."""
    today = billing.today
    for call_off in call_offs:
        for first in months + [today.replace(day=1)]:
            for day in (first + timedelta(days=4), first + timedelta(days=18)):
                if call_off.start_date <= day <= min(today, call_off.end_date):
                    orders_delivery.record_delivery(
                        billing.admin,
                        call_off,
                        orders_delivery.DeliveryDetails(
                            delivered_on=day,
                            units=1,
                            attendance="attended",
                            progress_note="Attended and engaged",
                        ),
                        now=_at(day, 17),
                    )


def _claim_the_outcome(billing: _Billing, co_funded: CallOff) -> None:
    """The outcome: claimed and verified, a second claim rejected, a third waiting."""
    [term] = outcome_queries.terms_of(co_funded.id)
    achieved = term.earliest_claim_on + timedelta(days=3)

    def claim(day: date, note: str):
        return outcomes.claim_outcome(
            billing.admin,
            co_funded,
            outcomes.ClaimDetails(term_id=term.id, achieved_on=day, note=note),
            "tenancy-agreement.pdf",
            io.BytesIO(DEMO_EVIDENCE),
            now=_at(day + timedelta(days=2)),
        )

    verified = claim(achieved, "Moved into a one-bedroom flat with an assured shorthold tenancy")
    outcomes.verify_claim(billing.buyer, verified, now=_at(achieved + timedelta(days=6)))
    rejected = claim(achieved + timedelta(days=20), "Second tenancy")
    outcomes.reject_claim(
        billing.buyer,
        rejected,
        "The evidence is a letter of offer, not a signed tenancy agreement.",
        now=_at(achieved + timedelta(days=25)),
    )
    waiting_on = billing.today - timedelta(days=10)
    if waiting_on > achieved + timedelta(days=26):
        claim(waiting_on, "Tenancy kept: still housed and the rent is paid")


def _run_and_issue(billing: _Billing, months: list[date], call_off_ids) -> list[list[Invoice]]:
    """The monthly run, on the first of each following month; issued two days later."""
    issued_by_month: list[list[Invoice]] = []
    for first in months:
        run_at = _at(_month_end(first) + timedelta(days=1), 6)
        monthly_run.run_period(f"{first:%Y-%m}", now=run_at)
        drafts = db.session.scalars(
            sa.select(Invoice).where(
                Invoice.period_start == first,
                Invoice.status == InvoiceStatus.DRAFT,
                Invoice.call_off_id.in_(call_off_ids),
            )
        ).all()
        for invoice in drafts:
            issuing.issue(billing.admin, invoice, now=run_at + timedelta(days=2))
        issued_by_month.append(list(drafts))
    return issued_by_month


def _buyer_acts_on_invoices(billing: _Billing, issued_by_month, co_funded_id: int) -> None:
    """What the buyer did with each, month by month (the first month with delivery first)."""
    billed = [invoices for invoices in issued_by_month if invoices]
    buyer, pay = billing.buyer, billing.pay
    for index, invoices in enumerate(billed):
        last = index == len(billed) - 1
        for invoice in invoices:
            received = invoice.received_at
            if invoice.kind == InvoiceKind.OUTCOME:
                pay(invoice, 3, 15)  # the verified outcome, paid in good time
            elif invoice.call_off_id == co_funded_id and index == 0:
                pay(invoice, 4, 21)
            elif invoice.call_off_id == co_funded_id and not last:
                # Disputed, credited for a session that did not happen, validated, paid late.
                issuing.dispute(
                    buyer,
                    invoice,
                    "The second session this month was cancelled by the provider.",
                    now=received + timedelta(days=5),
                )
                credit_notes.raise_credit_note(
                    billing.admin,
                    invoice,
                    invoice.lines[-1].net_pence,
                    "Second session cancelled by us: credited in full.",
                    now=received + timedelta(days=8),
                )
                pay(invoice, 9, 38)
            elif invoice.call_off_id == co_funded_id:
                issuing.validate(buyer, invoice, now=received + timedelta(days=3))
            elif index == 0:
                pay(invoice, 6, 35)  # paid late
            elif last:
                issuing.dispute(
                    buyer,
                    invoice,
                    "Two sessions are recorded but our records show one. Please check.",
                    now=received + timedelta(days=4),
                )
            # else: issued and never validated, overdue by now.
