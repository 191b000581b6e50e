"""A small world for call-off tests: a live arrangement, a provider with a published listing, a
probation region and a PCC with budgets, and the people who act for each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.accreditation.models import ArrangementStatus
from marketplace.catalogue.models import Listing
from marketplace.core.clock import add_working_days, financial_year
from marketplace.core.db import db
from marketplace.orders.models import Budget
from marketplace.orders.services.details import CallOffDetails, FundingShare
from tests.accreditation.factories import make_arrangement, make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import add_membership, make_member, make_organisation, make_user
from tests.pages import hidden_value


@dataclass
class OrdersWorld:
    provider: Organisation
    region: Organisation  # a probation service region: the usual lead buyer
    pcc: Organisation
    listing: Listing
    buyer: User
    approver: User
    pcc_approver: User
    provider_admin: User
    budget: Budget
    pcc_budget: Budget
    start: date


def build_orders_world(
    *,
    price_pence: int = 10_000,
    limit_pence: int = 3_000_000,
    monthly_capacity: int = 100,
    allocated_pence: int = 10_000_000,
    pcc_allocated_pence: int = 10_000_000,
    arrangement_fields: dict | None = None,
    **listing_fields,
) -> OrdersWorld:
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE,
        lots=("ACC",),
        regions=("A",),
        direct_award_limit_pence=limit_pence,
        **(arrangement_fields or {}),
    )
    lot = arrangement.lots[0]
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Harbour Housing")
    make_lot_membership(lot, provider, region_code="A")
    listing_fields.setdefault("max_units", 500)
    listing_fields.setdefault("lead_time_days", 5)
    listing = make_listing(
        lot,
        provider,
        title="Supported housing",
        price_pence=price_pence,
        price_from=date.today() - timedelta(days=30),
        monthly_capacity=monthly_capacity,
        outcomes="Settled accommodation\nTenancy kept for 6 months",
        **listing_fields,
    )
    region = make_organisation(OrganisationType.PROBATION_REGION, name="North East Probation")
    pcc = make_organisation(OrganisationType.PCC, name="Durham PCC")
    buyer = make_member(Role.BUYER, region, name="Bea Buyer")
    approver = make_member(Role.APPROVER, region, name="Abe Approver")
    pcc_approver = make_member(Role.APPROVER, pcc, name="Pat PCC")
    provider_admin = make_member(Role.PROVIDER_ADMIN, provider, name="Prue Provider")
    start = add_working_days(date.today(), 10)
    year = financial_year(start)
    budget = Budget(organisation=region, financial_year=year, allocated_pence=allocated_pence)
    pcc_budget = Budget(organisation=pcc, financial_year=year, allocated_pence=pcc_allocated_pence)
    db.session.add_all([budget, pcc_budget])
    db.session.flush()
    return OrdersWorld(
        provider,
        region,
        pcc,
        listing,
        buyer,
        approver,
        pcc_approver,
        provider_admin,
        budget,
        pcc_budget,
        start,
    )


def details(world: OrdersWorld, **fields) -> CallOffDetails:
    values = {
        "quantity": 10,
        "start_date": world.start,
        "end_date": world.start + timedelta(days=60),
        "crn": "X123456",
        "pdu": "County Durham and Darlington",
        "po_number": "PO-1001",
        "choice_reason": "lowest_price_with_capacity",
        "choice_reason_detail": "Cheapest with places next month",
        "notes_for_provider": "Prefers morning appointments",
    }
    values.update(fields)
    return CallOffDetails(**values)


def shares(*pairs: tuple[Organisation, int]) -> tuple[FundingShare, ...]:
    return tuple(FundingShare(org.id, points) for org, points in pairs)


def second_buyer(world: OrdersWorld) -> User:
    user = make_user(name="Second Buyer")
    add_membership(user, world.region, Role.BUYER)
    return user


def press_place(web, check_url: str):
    """Press "Place call-off" as the browser sends the check page's form: with the price the
    page showed."""
    page = web.get(check_url)
    return web.post(check_url, data={"price_seen": hidden_value(page, "price_seen")})
