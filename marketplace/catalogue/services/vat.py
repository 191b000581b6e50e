"""VAT registration: a provider that is not registered for VAT cannot list at a treatment that
charges VAT. One rule for the listing edit, the rate card import and the organisation settings."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.core.db import db
from marketplace.core.money import VatTreatment

# Treatments that charge VAT (at 20%, 5% or 0%): taxable supplies, which only a VAT-registered
# provider makes, and which an e-invoice must show with the seller's VAT number (BR-S-02,
# BR-Z-02). Exempt and outside-the-scope services are open to every provider.
VAT_REGISTRATION_TREATMENTS = frozenset(
    {VatTreatment.STANDARD, VatTreatment.REDUCED, VatTreatment.ZERO}
)
VAT_REGISTRATION_MESSAGE = (
    "Your organisation is not registered for VAT, so it cannot charge VAT: choose exempt or "
    "outside the scope of VAT, or record your VAT registration on your organisation settings page"
)


def check_vat_registration(organisation: Organisation, values: dict, errors: dict) -> None:
    """An unregistered provider cannot list at a treatment that charges VAT."""
    if values.get("vat_treatment") in VAT_REGISTRATION_TREATMENTS and not (
        organisation.vat_registered
    ):
        errors.setdefault("vat_treatment", []).append(VAT_REGISTRATION_MESSAGE)


def listings_needing_vat_registration(organisation: Organisation) -> list[Listing]:
    """The provider's listings (not withdrawn) at a treatment that charges VAT, which it cannot
    keep while it is not registered for VAT."""
    return list(
        db.session.scalars(
            sa.select(Listing)
            .where(
                Listing.organisation_id == organisation.id,
                Listing.status != ListingStatus.WITHDRAWN,
                Listing.vat_treatment.in_(VAT_REGISTRATION_TREATMENTS),
            )
            .order_by(Listing.title, Listing.id)
        )
    )
