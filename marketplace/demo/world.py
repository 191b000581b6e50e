"""The whole demo world, loaded in one unit of work: who is in it, then the DPS, the catalogue,
call-offs, invoices and funding, in the order each needs the one before."""

from __future__ import annotations

from marketplace.core import audit
from marketplace.demo.applications import load_accreditation_demo
from marketplace.demo.catalogue import load_catalogue_demo
from marketplace.demo.competitions import load_competitions_demo
from marketplace.demo.funding import load_funding_demo
from marketplace.demo.invoices import load_invoices_demo
from marketplace.demo.orders import load_declined_share_demo, load_orders_demo
from marketplace.demo.organisations import load_organisations_and_people
from marketplace.demo.people import AUTHORITY, PROVIDERS, USERS
from marketplace.insight.services.ledger import rebuild_all


def load_demo_data() -> dict[str, int]:
    """Create the demo world in the current unit of work (flushes, never commits)."""
    world = load_organisations_and_people()
    organisations, people = world.organisations, world.people
    provider_keys = {spec.key for spec in PROVIDERS}
    accreditation = load_accreditation_demo(
        world.admin,
        people[USERS[1].local_part],
        {key: organisations[key] for key in provider_keys},
        world.regions,
        provider_admins=world.provider_admins(),
    )
    listings = load_catalogue_demo()
    orders = load_orders_demo(organisations, people)
    invoices = load_invoices_demo(organisations, people)
    declined_share = load_declined_share_demo(organisations, people)
    # After every demo call-off, so that those waiting for the PCC still wait for it.
    funding = load_funding_demo(organisations, people)
    # Last: its invited list is the lot's members as admitted above.
    competitions = load_competitions_demo(organisations, people)
    # The spend ledger is derived data: derived once here, so the demo starts complete.
    rebuild_all()
    counts = {
        "listings": listings,
        "organisations": len(organisations),
        "providers": len(PROVIDERS),
        "users": len(USERS),
        "memberships": sum(len(roles) for spec in USERS for roles in spec.roles.values()),
        "lot_memberships": accreditation["memberships"],
        "applications": accreditation["applications"],
        "call_offs": orders["call_offs"] + declined_share,
        "invoices": invoices["invoices"],
        "authorisations": funding["authorisations"],
        "competitions": competitions["competitions"],
    }
    audit.record(
        world.admin,
        "demo.loaded",
        object_type="system",
        organisation=organisations[AUTHORITY.key],
        after=counts,
    )
    return counts
