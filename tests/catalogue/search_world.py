"""One catalogue for the search tests: the same data, and the same answers, on SQLite and PostgreSQL.

Providers and their memberships (arrangement live, lots ACC, ETE, DNR):

- Alpha Housing Trust (VCSE): ACC in region A (North East) and in the PCC area Cumbria (region B).
- Beacon Employment Ltd (private): ETE in regions A and B.
- Civic Recovery Service (public): DNR in region G (South West).
- Delta Support (VCSE): ACC in region B, suspended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accreditation.models import ArrangementStatus, LotMembership, MembershipStatus
from marketplace.catalogue.models import (
    CapacityCommitment,
    Listing,
    ListingPrice,
    ListingStatus,
    Sex,
    Unit,
)
from marketplace.catalogue.queries import first_of_month, next_months
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.money import VatTreatment
from tests.accreditation.factories import make_arrangement, make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import make_organisation

TODAY = date.today()
SINCE = TODAY - timedelta(days=60)


@dataclass
class SearchWorld:
    alpha: Organisation
    beacon: Organisation
    civic: Organisation
    delta: Organisation
    listings: dict[str, Listing]
    alpha_acc_a: LotMembership
    full_month: date  # the month in which "Emergency accommodation" is fully committed


def build_search_world() -> SearchWorld:
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE, lots=("ACC", "ETE", "DNR"), regions=("A", "B", "G")
    )
    acc, ete, dnr = arrangement.lots
    alpha = make_organisation(OrganisationType.PROVIDER_VCSE, name="Alpha Housing Trust")
    beacon = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Beacon Employment Ltd")
    civic = make_organisation(OrganisationType.PROVIDER_PUBLIC, name="civic Recovery Service")
    delta = make_organisation(OrganisationType.PROVIDER_VCSE, name="Delta Support")
    alpha_acc_a = make_lot_membership(acc, alpha, region_code="A")
    make_lot_membership(acc, alpha, pcc_area_code="cumbria")
    make_lot_membership(ete, beacon, region_code="A")
    make_lot_membership(ete, beacon, region_code="B")
    make_lot_membership(dnr, civic, region_code="G")
    make_lot_membership(acc, delta, region_code="B", status=MembershipStatus.SUSPENDED)

    listings: dict[str, Listing] = {}

    def add(key: str, lot, organisation, **fields) -> None:
        fields.setdefault("price_from", SINCE)
        listings[key] = make_listing(lot, organisation, **fields)

    add(
        "women",
        acc,
        alpha,
        title="Supported housing for women leaving custody",
        summary="Safe shared houses with a key worker",
        description="Help to keep a tenancy, budgeting and links to local services.",
        outcomes="Secure accommodation within 28 days\nTenancy sustained for 6 months",
        price_pence=5_000,
        region_codes=("A",),
        eligibility_sex=Sex.FEMALE,
        min_age=18,
        setting_community=True,
        setting_custody=True,
        risk_low=True,
        risk_medium=True,
        risk_high=True,
        complexity_low=False,
        complexity_medium=True,
        complexity_high=True,
        unit=Unit.WEEK,
        vat_treatment=VatTreatment.EXEMPT,
    )
    add(
        "emergency",
        acc,
        alpha,
        title="Emergency accommodation placement",
        summary="A bed the same day for people released without an address",
        price_pence=12_000,
        region_codes=(),
        pcc_area_codes=("cumbria",),
        setting_community=False,
        setting_custody=True,
        monthly_capacity=10,
        unit=Unit.BED_NIGHT,
        vat_treatment=VatTreatment.STANDARD,
    )
    add(
        "advice",  # region B as a whole: Alpha holds only Cumbria there, so not covered
        acc,
        alpha,
        title="Housing advice sessions",
        summary="Advice on finding a home",
        region_codes=("B",),
    )
    add(
        "tenancy",
        acc,
        alpha,
        title="Housing first tenancy support",
        summary="Intensive support for people with complex needs",
        price_pence=7_500,
        region_codes=(),
        pcc_area_codes=("durham",),  # in region A, covered by Alpha's region A membership
        complexity_high=True,
        risk_very_high=True,
        max_age=64,
    )
    add(
        "coaching",
        ete,
        beacon,
        title="Employment coaching",
        summary="One-to-one and group coaching into work, CV help and interview practice",
        description="Jobs, training and apprenticeships with local employers.",
        price_pence=3_000,
        region_codes=("A", "B"),
        setting_remote=True,
        format_group=True,
        min_age=16,
        max_age=25,
        vat_treatment=VatTreatment.STANDARD,
    )
    add("workshops", ete, beacon, title="CV workshops", summary="CVs", status=ListingStatus.DRAFT)
    add("paused", ete, beacon, title="Paused coaching", summary="x", status=ListingStatus.PAUSED)
    add(
        "withdrawn",
        ete,
        beacon,
        title="Withdrawn coaching",
        summary="x",
        status=ListingStatus.WITHDRAWN,
    )
    add(
        "recovery",
        dnr,
        civic,
        title="Drug and alcohol recovery group",
        summary="Weekly group work for men in recovery",
        outcomes="Reduced use of drugs and alcohol",
        price_pence=3_000,
        region_codes=("G",),
        eligibility_sex=Sex.MALE,
        setting_community=True,
        format_one_to_one=False,
        format_group=True,
        risk_high=True,
        risk_very_high=True,
        complexity_low=False,
        complexity_medium=False,
        complexity_high=True,
    )
    add(
        "suspended",
        acc,
        delta,
        title="Housing support in the North West",
        summary="Support to find housing",
        region_codes=("B",),
    )
    # A price rise from next month: today's price is still the old one.
    tenancy = listings["tenancy"]
    tenancy.prices[0].effective_to = next_months(date.today(), 2)[1]
    tenancy.prices.append(
        ListingPrice(
            unit_price_pence=9_000,
            effective_from=next_months(date.today(), 2)[1],
            created_at=utcnow(),
        )
    )
    full_month = next_months(date.today(), 2)[1]
    db.session.add(
        CapacityCommitment(
            listing_id=listings["emergency"].id,
            month=first_of_month(full_month),
            units=10,
            created_at=utcnow(),
        )
    )
    db.session.add(
        CapacityCommitment(
            listing_id=listings["coaching"].id, month=full_month, units=95, created_at=utcnow()
        )
    )
    db.session.flush()
    return SearchWorld(alpha, beacon, civic, delta, listings, alpha_acc_a, full_month)


VISIBLE = {"women", "emergency", "tenancy", "coaching", "recovery"}
