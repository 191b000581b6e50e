"""Demo budgets and call-offs for `flask demo load`: a budget for every demo commissioner this
financial year and next, and call-offs in every state a person can find one in, some co-funded,
some with delivery recorded. Each is made through the services, as a person would make it, so
its audit trail, emails, budgets and capacity are what the real journey leaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.catalogue.models import Listing
from marketplace.catalogue.search.index import reindex_all
from marketplace.catalogue.search.params import SearchParams
from marketplace.catalogue.search.queries import search
from marketplace.core.clock import add_working_days, financial_year, london_date, utcnow
from marketplace.core.db import db
from marketplace.demo.organisations import provider_admin_of
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import details as order_details
from marketplace.orders.services import funding
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services import responses as order_responses

PROBATION_BUDGET_PENCE = 25_000_000  # £250,000
OTHER_BUDGET_PENCE = 8_000_000  # £80,000


def load_orders_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> dict[str, int]:
    """Budgets for every commissioner, this financial year and next (so that a call-off placed
    in the winter may run past 31 March), and a dozen call-offs for the North West buyer."""
    now = utcnow()
    _budgets(organisations, financial_year(london_date(now)))
    reindex_all(db.session.connection())  # buyers see only what the index shows
    listings = _north_west_listings()
    if len(listings) < 9:
        return {"budgets": len(organisations), "call_offs": 0}
    placer = _Placer(listings, people["buyer"], organisations["pdu-nw"], organisations["pcc-lancs"])
    _call_offs_waiting(placer, people, now)
    _call_offs_under_way(placer, people["pcc.approver"], now)
    _call_offs_ended(placer, people["buyer"], now)
    return {
        "budgets": db.session.scalar(sa.select(sa.func.count()).select_from(Budget)),
        "call_offs": db.session.scalar(sa.select(sa.func.count()).select_from(CallOff)),
    }


def _budgets(organisations: dict[str, Organisation], year: int) -> None:
    for organisation in organisations.values():
        if organisation.type.is_commissioner:
            allocated = (
                PROBATION_BUDGET_PENCE
                if organisation.type.value == "probation_region"
                else OTHER_BUDGET_PENCE
            )
            for budget_year in (year, year + 1):
                db.session.add(
                    Budget(
                        organisation=organisation,
                        financial_year=budget_year,
                        allocated_pence=allocated,
                    )
                )
    db.session.flush()


def _north_west_listings() -> list[tuple[Listing, User]]:
    """Nine services the North West buyer finds, with capacity, and their providers' admins:
    the longest-listed first (the call-offs placed weeks ago need a price then)."""
    found = search(SearchParams(region="B", per_page=100))
    listings: list[tuple[Listing, User]] = []
    for hit in found.page.items:
        admin = provider_admin_of(hit.listing.organisation_id)
        if admin is not None and hit.listing.monthly_capacity >= 20:
            listings.append((hit.listing, admin))
    if len(listings) < 9:
        return listings
    listings.sort(key=lambda pair: (min(p.effective_from for p in pair[0].prices), pair[0].id))
    return listings[:2] + listings[-7:]


@dataclass
class _Placer:
    """Places the ``n``th chosen service for the North West region, co-funded or not."""

    listings: list[tuple[Listing, User]]
    buyer: User
    region: Organisation
    pcc: Organisation

    def place(self, n, when, quantity, reason, co_funded=False, actor=None):
        listing, admin = self.listings[n]
        first_price = min(p.effective_from for p in listing.prices)
        opened = datetime(first_price.year, first_price.month, first_price.day, 12, tzinfo=UTC)
        when = max(when, opened)
        start = add_working_days(london_date(when), listing.lead_time_days + 1)
        shares = (
            (
                order_details.FundingShare(self.region.id, 6_000),
                order_details.FundingShare(self.pcc.id, 4_000),
            )
            if co_funded
            else ()
        )
        quantity = max(listing.min_units, min(quantity, listing.max_units))
        details = order_details.CallOffDetails(
            quantity=quantity,
            start_date=start,
            end_date=start + timedelta(days=56),
            crn=f"D{100_001 + n:06d}"[:7],
            pdu="Lancashire North",
            po_number=f"NW-PO-{2_400 + n}",
            choice_reason=reason,
            choice_reason_detail="Demo call-off",
            notes_for_provider="Prefers appointments after 10am.",
            shares=shares,
        )
        call_off = order_placing.place_call_off(
            actor or self.buyer, self.region, listing.id, details, now=when
        )
        return call_off, admin


def _call_offs_waiting(placer: _Placer, people: dict[str, User], now: datetime) -> None:
    """Waiting for the provider, for the co-funder and for an approver."""
    placer.place(2, now, 4, "lowest_price_with_capacity")
    placer.place(3, now, 6, "only_provider_in_area", co_funded=True)
    # Placed by a buyer with a £500 spend limit: about £800, so it waits for an approver.
    limited = people["co.commissioner"]
    for membership in limited.memberships:
        if membership.organisation_id == placer.region.id and membership.role == Role.BUYER:
            membership.spend_limit_pence = 50_000
    price = placer.listings[4][0].price_on(london_date(now))
    placer.place(
        4,
        now,
        80_000 // max(1, price.unit_price_pence if price else 1) + 1,
        "specialist_need",
        actor=limited,
    )


def _call_offs_under_way(placer: _Placer, pcc_approver: User, now: datetime) -> None:
    """Accepted; and co-funded, confirmed, accepted and in delivery with sessions recorded."""
    days = timedelta(days=1)
    accepted, admin = placer.place(5, now - 2 * days, 5, "continuity")
    order_responses.accept(admin, accepted, now=now - days)
    delivering, admin = placer.place(1, now - 40 * days, 8, "continuity", co_funded=True)
    order_funding.confirm_funding(pcc_approver, delivering, placer.pcc, now=now - 39 * days)
    order_responses.accept(admin, delivering, now=now - 38 * days)
    for offset, attendance, absence in (
        (0, "attended", None),
        (7, "late", None),
        (14, "did_not_attend", "acceptable"),
    ):
        day = delivering.start_date + timedelta(days=offset)
        if day <= london_date(now):
            order_delivery.record_delivery(
                admin,
                delivering,
                order_delivery.DeliveryDetails(
                    delivered_on=day,
                    units=0 if absence else 1,
                    attendance=attendance,
                    absence_reason=absence,
                    progress_note="Engaging well" if not absence else "Hospital appointment",
                ),
                now=now,
            )


def _call_offs_ended(placer: _Placer, buyer: User, now: datetime) -> None:
    """Completed with an outcome, declined by the provider, cancelled by the buyer, expired."""
    days = timedelta(days=1)
    done, admin = placer.place(0, now - 90 * days, 3, "lowest_price_with_capacity")
    order_responses.accept(admin, done, now=now - 89 * days)
    order_delivery.record_delivery(
        admin,
        done,
        order_delivery.DeliveryDetails(
            delivered_on=done.start_date, units=3, attendance="attended"
        ),
        now=now,
    )
    outcome = next(iter(done.listing.outcome_list), None)
    order_delivery.complete(
        admin,
        done,
        "All sessions delivered; the person moved into settled accommodation.",
        [order_delivery.OutcomeDetails(outcome, "achieved")] if outcome else [],
        now=now,
    )
    declined, admin = placer.place(6, now - 3 * days, 2, "lowest_price_with_capacity")
    order_responses.decline(
        admin, declined, "No key worker free in that area until spring.", now=now
    )
    cancelled, _ = placer.place(7, now - 5 * days, 2, "continuity")
    order_responses.cancel(buyer, cancelled, "sentence_ended", now=now - 4 * days)
    # Not answered in time: expired.
    placer.place(8, now - 10 * days, 2, "lowest_price_with_capacity")
    order_responses.expire_overdue(now)


def load_declined_share_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> int:
    """A call-off led by London and co-funded with the Lancashire PCC, whose approver declined
    its share: it waits for London's buyer to re-split the shares or cancel. Loaded after every
    other demo call-off (and another lead buyer's), so that their references and the North West
    buyer's list are what they were before it."""
    london, pcc = organisations["pdu-london"], organisations["pcc-lancs"]
    # The service the North West region co-funds with the PCC: buyable, with capacity.
    listing_id = db.session.scalar(
        sa.select(CallOff.listing_id)
        .where(CallOff.status == CallOffStatus.AWAITING_FUNDING)
        .order_by(CallOff.id)
        .limit(1)
    )
    if listing_id is None:
        return 0
    listing = db.session.get(Listing, listing_id)
    now = utcnow()
    start = add_working_days(london_date(now), listing.lead_time_days + 1)
    call_off = order_placing.place_call_off(
        people["buyer.london"],
        london,
        listing.id,
        order_details.CallOffDetails(
            quantity=max(listing.min_units, min(4, listing.max_units)),
            start_date=start,
            end_date=start + timedelta(days=56),
            crn="E200001",
            pdu="Camden and Islington",
            po_number="LDN-PO-310",
            choice_reason="only_provider_in_area",
            choice_reason_detail="Demo call-off",
            shares=(
                order_details.FundingShare(london.id, 7_000),
                order_details.FundingShare(pcc.id, 3_000),
            ),
        ),
        now=now,
    )
    funding.decline_funding(
        people["pcc.approver"],
        call_off,
        pcc,
        "Our budget this year goes to victim services.",
        now=now,
    )
    return 1
