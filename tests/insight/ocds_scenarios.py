"""Worlds for the OCDS tests, built through the real services: a co-funded call-off that is
invoiced and paid (orders world) and an awarded further competition (competitions world)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import (
    ClassificationSource,
    OrganisationClassification,
    StaffBand,
    TurnoverBand,
    VcseBasis,
    is_sme,
)
from marketplace.competitions.services import award
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.invoices.models import Invoice
from marketplace.invoices.services import issuing, monthly_run
from marketplace.orders.services import delivery, funding, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
from tests.competitions.factories import build_competition_world
from tests.factories import after_month
from tests.orders.factories import build_orders_world, details, shares


def classify(organisation, effective_from: date, *, vcse: bool, sme: bool) -> None:
    """Add a dated classification row (as the classification lane's services will)."""
    staff = StaffBand.FROM_10_TO_49 if sme else StaffBand.FROM_250
    turnover = TurnoverBand.UP_TO_2M if sme else TurnoverBand.OVER_44M
    basis = VcseBasis.REGISTERED_CHARITY if vcse else VcseBasis.NOT_VCSE
    db.session.add(
        OrganisationClassification(
            organisation_id=organisation.id,
            effective_from=effective_from,
            vcse_basis=basis,
            staff_band=staff,
            turnover_band=turnover,
            vcse=basis.is_vcse,
            sme=is_sme(staff, turnover),
            source=ClassificationSource.REGISTRATION,
        )
    )
    db.session.flush()


def paid_co_funded_call_off():
    """A call-off 60% the region's and 40% the PCC's, delivered, invoiced and paid 60 days on;
    the provider is a VCSE SME until the day before payment, then large and not VCSE."""
    later = utcnow() + timedelta(days=60)
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    classify(world.provider, date(2020, 1, 1), vcse=True, sme=True)
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 6_000), (world.pcc, 4_000))),
    )
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=call_off.start_date, units=3, attendance="attended"),
        now=later,
    )
    monthly_run.run_period(f"{call_off.start_date:%Y-%m}", now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
    issuing.issue(world.provider_admin, invoice, now=later)
    issuing.validate(world.approver, invoice, now=later)
    issuing.mark_paid_by_bacs(world.buyer, invoice, "REM-1", later.date(), now=later)
    classify(world.provider, london_date(later) - timedelta(days=1), vcse=False, sme=False)
    db.session.commit()
    return world, call_off, invoice


def awarded_competition():
    """A further competition with three bids, awarded and become a call-off."""
    world = build_competition_world()
    for provider in world.providers:
        classify(
            provider,
            date(2020, 1, 1),
            vcse=provider.type.value == "provider_vcse",
            sme=provider.type.value != "provider_public",
        )
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4})
    competition = world.competition
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=utcnow())
    award.confirm_award(
        world.buyer,
        world.buyer_org,
        competition,
        now=competition.standstill_ends_at + timedelta(minutes=1),
    )
    call_off = competition.call_off
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    if call_off.status.value == "awaiting_approval":  # above the buyer's spend limit
        funding.approve(world.approver, call_off)
    winner_admin = world.provider_admins[world.providers.index(bids[0].organisation)]
    responses.accept(winner_admin, call_off)
    db.session.commit()
    return world, competition, bids
