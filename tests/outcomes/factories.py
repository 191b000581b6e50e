"""Call-offs with outcome terms, and claims with a small evidence file."""

from __future__ import annotations

import io
from datetime import timedelta

from marketplace.core.clock import utcnow
from marketplace.orders.services import funding, placing, responses
from marketplace.orders.services.details import OutcomeTermDetails
from marketplace.outcomes import services as outcomes
from marketplace.outcomes.services import ClaimDetails
from tests.orders.factories import OrdersWorld, details, shares

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# Late enough that an outcome 13 weeks after the start can be claimed and verified.
LATER = utcnow() + timedelta(days=200)


def term(world: OrdersWorld, **fields) -> OutcomeTermDetails:
    values = {
        "outcome": "Settled accommodation",
        "tariff_pence": 50_001,
        "earliest_claim_on": world.start + timedelta(weeks=13),
        "evidence_required": "Tenancy agreement signed by the person",
        "cap": 2,
    }
    values.update(fields)
    return OutcomeTermDetails(**values)


def accepted_with_terms(world: OrdersWorld, *terms: OutcomeTermDetails, co_funded=False, **fields):
    """A call-off placed with outcome terms (one default term if none given) and accepted."""
    if co_funded:
        fields["shares"] = shares((world.region, 6_000), (world.pcc, 4_000))
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, outcome_terms=tuple(terms or (term(world),)), **fields),
    )
    if co_funded:
        funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    return call_off


def claim(world, call_off, term_row, *, achieved_on=None, data=PDF, now=LATER, user=None):
    return outcomes.claim_outcome(
        user or world.provider_admin,
        call_off,
        ClaimDetails(
            term_id=term_row.id,
            achieved_on=achieved_on or term_row.earliest_claim_on,
            note="Moved in on the date shown",
        ),
        "tenancy.pdf",
        io.BytesIO(data),
        now=now,
    )
