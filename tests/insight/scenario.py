"""Issue 22, acceptance 1: the hand-checked spend scenario, built through the real services.

Three providers: Harbour Housing (a VCSE charity, small: VCSE and SME), Bright Futures Ltd (a
company, recorded at registration as large, corrected by the authority on 15 November 2025 to
SME effective 1 October 2025) and Carillion Justice plc (large, private). Two commissioners:
North East Probation (region A, North East) and Wales Probation (region D, Wales); Durham PCC
(PCC area Durham, in the North East) co-funds one call-off at 33.33%. Everything is at the
standard rate of VAT (20%) and every amount is pence, VAT included. Dates are London dates.

Call-offs (category, provider, funders), and each event worked by hand:

C1  ACC  Harbour (VCSE+SME)  North East 66.67% (lead), Durham PCC 33.33%
    10 sessions at £100.00: net 100,000 + VAT 20,000 = 120,000.
    Shares (basis points, largest remainder): NE 120,000 × 0.6667 = 80,004; PCC 39,996.
    placed 2025-05-06 (FY2025 H1)      committed  NE +80,004  PCC +39,996
    10 delivered 2025-06-10; June run; invoice issued 2025-07-03: net 100,000 split 66,670 /
    33,330, VAT 20,000 split 13,334 / 6,666, so
                                       invoiced   NE +80,004  PCC +39,996
    paid 2025-07-20                    paid       NE +80,004  PCC +39,996

C2  ETE  Bright Futures       North East 100%
    20 sessions at £50.00: 100,000 + 20,000 = 120,000.
    placed 2025-06-02                  committed  NE +120,000
    10 delivered 2025-07-15; invoice issued 2025-08-04 (60,000); paid 2025-08-26 (then large:
    neither VCSE nor SME)              invoiced +60,000, paid +60,000 (FY2025 H1)
    10 delivered 2025-10-14; invoice issued 2025-11-03 (60,000); paid 2025-11-25 (SME by the
    correction effective 2025-10-01)   invoiced +60,000, paid +60,000 (FY2025 H2)

C3  ACC  Carillion (large)    Wales 100%
    30 sessions at £80.00: 240,000 + 48,000 = 288,000; runs December 2025 to May 2026.
    placed 2025-09-01                  committed  Wales +288,000 (FY2025 H1)
    15 delivered 2026-01-20; invoice issued 2026-02-03 (144,000); paid 2026-02-24
                                       invoiced +144,000, paid +144,000 (FY2025 H2)
    15 delivered 2026-04-21; invoice issued 2026-05-05 (144,000)   invoiced +144,000
    credit note raised 2026-05-12, before payment: net 10,000 + VAT 2,000   invoiced −12,000
    paid 2026-05-28 what was left: 132,000                         paid +132,000 (FY2026 H1)

C4  ETE  Harbour (VCSE+SME)  Wales 100%
    10 sessions at £100.00: 120,000.
    placed 2026-06-01                  committed  Wales +120,000 (FY2026 H1)
    4 delivered 2026-06-22; invoice issued 2026-07-02 (48,000); paid 2026-07-21
                                       invoiced +48,000, paid +48,000 (FY2026 H1)
    cancelled 2026-08-03: gives back the 6 undelivered (72,000)   committed −72,000

C5  ACC  Bright Futures (SME) North East 100%
    10 sessions at £60.00: 60,000 + 12,000 = 72,000.
    placed 2026-09-01                  committed  NE +72,000 (FY2026 H1)
    variation +5 sessions agreed 2026-10-05: 15 × 7,200 = 108,000   committed +36,000 (H2)
    15 delivered 2026-10-20; invoice issued 2026-11-03 (108,000); paid 2026-11-24
                                       invoiced +108,000, paid +108,000 (FY2026 H2)
    credit note raised 2026-12-01, after payment (a refund): net 5,000 + VAT 1,000
                                       invoiced −6,000, paid −6,000 (FY2026 H2)

Totals by funder, financial year and half (H1 April-September, H2 October-March):

                      committed            invoiced             paid
NE     2025 H1    80,004+120,000   80,004+60,000=140,004   80,004+60,000=140,004
                  = 200,004
NE     2025 H2          0               60,000               60,000
NE     2026 H1      72,000                0                    0
NE     2026 H2      36,000        108,000−6,000=102,000   108,000−6,000=102,000
PCC    2025 H1      39,996              39,996               39,996
Wales  2025 H1     288,000                0                    0
Wales  2025 H2          0              144,000              144,000
Wales  2026 H1  120,000−72,000     144,000−12,000+48,000   132,000+48,000=180,000
                   = 48,000           = 180,000

Paid by provider and year: 2025: Harbour 120,000 (C1), Bright Futures 120,000 (C2: 60,000 as
large, 60,000 as SME), Carillion 144,000: total 384,000. 2026: Harbour 48,000 (C4), Bright
Futures 102,000 (C5), Carillion 132,000 (C3): total 282,000.

VCSE share of paid: 2025 120,000 / 384,000 = 31.25%; 2026 48,000 / 282,000 = 17.02%
(17.021...); two years 168,000 / 666,000 = 25.23% (25.225...).
SME share of paid: 2025 (120,000 + 60,000) / 384,000 = 46.875%; 2026 (48,000 + 102,000) /
282,000 = 53.19% (53.191...); two years 330,000 / 666,000 = 49.55% (49.549...).
Providers paid: 3 in each year (VCSE 1, SME 2 in 2025 (Harbour, and Bright Futures once it is
SME), SME 2 in 2026).

By category, paid: ACC (C1, C3, C5) 2025 120,000 + 144,000 = 264,000, 2026 132,000 + 102,000 =
234,000; ETE (C2, C4) 2025 120,000, 2026 48,000. By region (the funder's), paid: North East
(NE and the PCC) 2025 240,000, 2026 102,000; Wales 2025 144,000, 2026 180,000. By PCC area,
paid: Durham 39,996 in 2025.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from marketplace.accounts.models import Membership, Organisation, OrganisationType, Role, User
from marketplace.accounts.services import classification
from marketplace.accounts.services.classification import ClassificationAnswers
from marketplace.accreditation.models import ArrangementStatus
from marketplace.catalogue.models import Listing
from marketplace.core.clock import frozen_at
from marketplace.core.db import commit, db
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import delivery, funding, placing, responses, variations
from marketplace.orders.services.delivery import DeliveryDetails
from marketplace.orders.services.details import CallOffDetails, FundingShare
from tests.accreditation.factories import (
    category,
    make_arrangement,
    make_lot_membership,
    pcc_area,
    region,
)
from tests.catalogue.factories import make_listing
from tests.factories import make_member, make_organisation
from tests.insight.ledger_helpers import classify

LONDON = ZoneInfo("Europe/London")

# ---------------------------------------------------------------------------------------------
# The hand-worked figures (pence). Keys: (funder, financial year, half) with half 1 for
# April-September and 2 for October-March; funders by the names below.

NE, PCC, WALES = "North East Probation", "Durham PCC", "Wales Probation"
HARBOUR, BRIGHT, CARILLION = "Harbour Housing", "Bright Futures Ltd", "Carillion Justice plc"


@dataclass(frozen=True)
class Figures:
    committed: dict[tuple[str, int, int], int]
    invoiced: dict[tuple[str, int, int], int]
    paid: dict[tuple[str, int, int], int]
    # Paid by (financial year, provider).
    paid_by_provider: dict[tuple[int, str], int]
    # Paid by (financial year, category code) and (financial year, region code).
    paid_by_category: dict[tuple[int, str], int]
    paid_by_region: dict[tuple[int, str], int]
    paid_by_pcc_area: dict[tuple[int, str], int]
    # VCSE and SME paid by year (the shares are these over ``paid_total``).
    paid_total: dict[int, int]
    vcse_paid: dict[int, int]
    sme_paid: dict[int, int]
    providers_paid: dict[int, int]
    vcse_providers_paid: dict[int, int]
    sme_providers_paid: dict[int, int]
    # The shares, as exact fractions written out (percent, two places, half up).
    vcse_share_percent: dict[int | str, str] = field(default_factory=dict)
    sme_share_percent: dict[int | str, str] = field(default_factory=dict)

    def total(self, measure: str, *, funder: str | None = None, year: int | None = None) -> int:
        return sum(
            pence
            for (who, fy, _), pence in getattr(self, measure).items()
            if (funder is None or who == funder) and (year is None or fy == year)
        )


FIGURES = Figures(
    committed={
        (NE, 2025, 1): 200_004,
        (NE, 2026, 1): 72_000,
        (NE, 2026, 2): 36_000,
        (PCC, 2025, 1): 39_996,
        (WALES, 2025, 1): 288_000,
        (WALES, 2026, 1): 48_000,
    },
    invoiced={
        (NE, 2025, 1): 140_004,
        (NE, 2025, 2): 60_000,
        (NE, 2026, 2): 102_000,
        (PCC, 2025, 1): 39_996,
        (WALES, 2025, 2): 144_000,
        (WALES, 2026, 1): 180_000,
    },
    paid={
        (NE, 2025, 1): 140_004,
        (NE, 2025, 2): 60_000,
        (NE, 2026, 2): 102_000,
        (PCC, 2025, 1): 39_996,
        (WALES, 2025, 2): 144_000,
        (WALES, 2026, 1): 180_000,
    },
    paid_by_provider={
        (2025, HARBOUR): 120_000,
        (2025, BRIGHT): 120_000,
        (2025, CARILLION): 144_000,
        (2026, HARBOUR): 48_000,
        (2026, BRIGHT): 102_000,
        (2026, CARILLION): 132_000,
    },
    paid_by_category={
        (2025, "ACC"): 264_000,
        (2025, "ETE"): 120_000,
        (2026, "ACC"): 234_000,
        (2026, "ETE"): 48_000,
    },
    paid_by_region={
        (2025, "A"): 240_000,
        (2025, "D"): 144_000,
        (2026, "A"): 102_000,
        (2026, "D"): 180_000,
    },
    paid_by_pcc_area={(2025, "durham"): 39_996},
    paid_total={2025: 384_000, 2026: 282_000},
    vcse_paid={2025: 120_000, 2026: 48_000},
    sme_paid={2025: 180_000, 2026: 150_000},
    providers_paid={2025: 3, 2026: 3},
    vcse_providers_paid={2025: 1, 2026: 1},
    sme_providers_paid={2025: 2, 2026: 2},
    vcse_share_percent={2025: "31.25", 2026: "17.02", "2025-2026": "25.23"},
    sme_share_percent={2025: "46.88", 2026: "53.19", "2025-2026": "49.55"},
)


# ---------------------------------------------------------------------------------------------
# The world, built through the services.


def at(day: date, hour: int = 10) -> datetime:
    """``hour`` o'clock in London on ``day``, as an aware datetime."""
    return datetime.combine(day, time(hour), LONDON)


@dataclass
class Scenario:
    providers: dict[str, Organisation]
    funders: dict[str, Organisation]
    call_offs: dict[str, CallOff]
    people: dict[str, User]
    figures: Figures = FIGURES


def _buyer(organisation: Organisation, name: str) -> User:
    user = make_member(Role.BUYER, organisation, name=name)
    # Above £1,000 of its own money a call-off needs an approver.
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == user.id, Membership.organisation_id == organisation.id
        )
    )
    membership.spend_limit_pence = 100_000
    return user


def build_scenario() -> Scenario:
    """Build the scenario and commit it (the ledger's catch-up reads what is committed).
    The clock is frozen at each step's moment and put back afterwards."""
    with frozen_at(at(date(2025, 4, 1))):
        world = _world()
    p, f, people = world
    listings: dict[tuple[str, str], Listing] = world_listings(p)
    call_offs: dict[str, CallOff] = {}

    def place(key, lead, listing, quantity, start, end, day, shares=None):
        with frozen_at(at(day)):
            call_off = placing.place_call_off(
                people[f"{lead} buyer"],
                f[lead],
                listing.id,
                CallOffDetails(
                    quantity=quantity,
                    start_date=start,
                    end_date=end,
                    crn="X123456",
                    pdu="A PDU",
                    po_number=f"PO-{key}",
                    choice_reason="lowest_price_with_capacity",
                    choice_reason_detail="Cheapest with places",
                    shares=shares or (),
                ),
            )
            call_offs[key] = call_off
            return call_off

    def go_ahead(call_off, day, lead):
        with frozen_at(at(day)):
            if call_off.status == CallOffStatus.AWAITING_FUNDING:
                funding.confirm_funding(people[f"{PCC} approver"], call_off, f[PCC])
            if call_off.status == CallOffStatus.AWAITING_APPROVAL:
                funding.approve(people[f"{lead} approver"], call_off)
        with frozen_at(at(day, 15)):
            responses.accept(people[f"{provider_of(call_off)} admin"], call_off)

    def provider_of(call_off):
        return next(name for name, org in p.items() if org.id == call_off.provider_id)

    def deliver(call_off, day, units):
        with frozen_at(at(day, 17)):
            delivery.record_delivery(
                people[f"{provider_of(call_off)} admin"],
                call_off,
                DeliveryDetails(delivered_on=day, units=units, attendance="attended"),
            )

    def bill(call_off, period, run_on, issued_on) -> Invoice:
        with frozen_at(at(run_on, 6)):
            monthly_run.run_period(period)
        invoice = db.session.scalar(
            sa.select(Invoice).where(
                Invoice.call_off_id == call_off.id, Invoice.status == InvoiceStatus.DRAFT
            )
        )
        with frozen_at(at(issued_on)):
            issuing.issue(people[f"{provider_of(call_off)} admin"], invoice)
        return invoice

    def pay(invoice, lead, validated_on, paid_on):
        with frozen_at(at(validated_on)):
            issuing.validate(people[f"{lead} buyer"], invoice)
        with frozen_at(at(paid_on, 16)):
            issuing.mark_paid_by_bacs(people[f"{lead} buyer"], invoice, "REM", paid_on)

    def credit(invoice, day, net, reason):
        with frozen_at(at(day)):
            return credit_notes.raise_credit_note(
                people[f"{provider_of(invoice.call_off)} admin"], invoice, net, reason
            )

    # C1: North East and the PCC (33.33%) buy from Harbour.
    c1 = place(
        "C1",
        NE,
        listings[HARBOUR, "ACC"],
        10,
        date(2025, 6, 2),
        date(2025, 6, 30),
        date(2025, 5, 6),
        shares=(FundingShare(f[NE].id, 6_667), FundingShare(f[PCC].id, 3_333)),
    )
    go_ahead(c1, date(2025, 5, 7), NE)
    deliver(c1, date(2025, 6, 10), 10)
    pay(
        bill(c1, "2025-06", date(2025, 7, 1), date(2025, 7, 3)),
        NE,
        date(2025, 7, 10),
        date(2025, 7, 20),
    )

    # C2: North East buys from Bright Futures.
    c2 = place(
        "C2",
        NE,
        listings[BRIGHT, "ETE"],
        20,
        date(2025, 7, 1),
        date(2025, 10, 31),
        date(2025, 6, 2),
    )
    go_ahead(c2, date(2025, 6, 4), NE)
    deliver(c2, date(2025, 7, 15), 10)
    pay(
        bill(c2, "2025-07", date(2025, 8, 1), date(2025, 8, 4)),
        NE,
        date(2025, 8, 11),
        date(2025, 8, 26),
    )

    # C3: Wales buys from Carillion, over two financial years.
    c3 = place(
        "C3",
        WALES,
        listings[CARILLION, "ACC"],
        30,
        date(2025, 12, 1),
        date(2026, 5, 31),
        date(2025, 9, 1),
    )
    go_ahead(c3, date(2025, 9, 3), WALES)

    deliver(c2, date(2025, 10, 14), 10)
    second = bill(c2, "2025-10", date(2025, 11, 1), date(2025, 11, 3))
    # The authority corrects Bright Futures: an SME since 1 October 2025 (recorded later).
    # Through the classification service, as the authority's correction page records it.
    with frozen_at(at(date(2025, 11, 15))):
        classification.correct_classification(
            people["authority admin"],
            p[BRIGHT],
            ClassificationAnswers("not_vcse", "50_to_249", "10m_to_44m"),
            effective_from=date(2025, 10, 1),
            reason="Headcount 120",
        )
    pay(second, NE, date(2025, 11, 10), date(2025, 11, 25))

    deliver(c3, date(2026, 1, 20), 15)
    pay(
        bill(c3, "2026-01", date(2026, 2, 1), date(2026, 2, 3)),
        WALES,
        date(2026, 2, 9),
        date(2026, 2, 24),
    )
    deliver(c3, date(2026, 4, 21), 15)
    april = bill(c3, "2026-04", date(2026, 5, 1), date(2026, 5, 5))
    credit(april, date(2026, 5, 12), 10_000, "One session not delivered in full")
    pay(april, WALES, date(2026, 5, 13), date(2026, 5, 28))

    # C4: Wales buys from Harbour, then cancels after 4 of 10.
    c4 = place(
        "C4",
        WALES,
        listings[HARBOUR, "ETE"],
        10,
        date(2026, 6, 15),
        date(2026, 9, 30),
        date(2026, 6, 1),
    )
    go_ahead(c4, date(2026, 6, 2), WALES)
    deliver(c4, date(2026, 6, 22), 4)
    pay(
        bill(c4, "2026-06", date(2026, 7, 1), date(2026, 7, 2)),
        WALES,
        date(2026, 7, 6),
        date(2026, 7, 21),
    )
    with frozen_at(at(date(2026, 8, 3))):
        responses.cancel(people[f"{WALES} buyer"], c4, "person_moved")

    # C5: North East buys from Bright Futures, varied up by 5 sessions.
    c5 = place(
        "C5",
        NE,
        listings[BRIGHT, "ACC"],
        10,
        date(2026, 9, 15),
        date(2026, 10, 31),
        date(2026, 9, 1),
    )
    go_ahead(c5, date(2026, 9, 2), NE)
    with frozen_at(at(date(2026, 10, 1))):
        variation = variations.propose_variation(
            people[f"{BRIGHT} admin"], c5, extra_units=5, reason="Five more sessions needed"
        )
    with frozen_at(at(date(2026, 10, 5))):
        variations.agree_variation(people[f"{NE} buyer"], c5, variation.id)
        if variation.awaiting_approval:
            variations.approve_variation(people[f"{NE} approver"], c5, variation.id)
    deliver(c5, date(2026, 10, 20), 15)
    october = bill(c5, "2026-10", date(2026, 11, 1), date(2026, 11, 3))
    pay(october, NE, date(2026, 11, 9), date(2026, 11, 24))
    credit(october, date(2026, 12, 1), 5_000, "Overcharged for one session")
    commit()
    return Scenario(p, f, call_offs, people)


def _world():
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE,
        lots=("ACC", "ETE"),
        regions=("A", "D"),
        direct_award_limit_pence=100_000_000,
        valid_from=date(2025, 1, 1),
        valid_to=date(2028, 3, 31),
    )
    providers = {
        HARBOUR: make_organisation(OrganisationType.PROVIDER_VCSE, name=HARBOUR),
        BRIGHT: make_organisation(OrganisationType.PROVIDER_PRIVATE, name=BRIGHT),
        CARILLION: make_organisation(OrganisationType.PROVIDER_PRIVATE, name=CARILLION),
    }
    for lot in arrangement.lots:
        for org in providers.values():
            for code in ("A", "D"):
                make_lot_membership(lot, org, region_code=code, admitted_on=date(2025, 3, 1))
    start = date(2025, 4, 1)
    classify(providers[HARBOUR], start, vcse=True, sme=True)
    classify(providers[BRIGHT], start, vcse=False, sme=False)
    classify(providers[CARILLION], start, vcse=False, sme=False)
    funders = {
        NE: make_organisation(OrganisationType.PROBATION_REGION, name=NE, region_id=region("A").id),
        WALES: make_organisation(
            OrganisationType.PROBATION_REGION, name=WALES, region_id=region("D").id
        ),
        PCC: make_organisation(
            OrganisationType.PCC,
            name=PCC,
            region_id=region("A").id,
            pcc_area_id=pcc_area("durham").id,
        ),
    }
    people: dict[str, User] = {}
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS Commissioning")
    people["authority admin"] = make_member(Role.AUTHORITY_ADMIN, authority, name="Authority Admin")
    for name, org in funders.items():
        people[f"{name} buyer"] = _buyer(org, f"{name} Buyer")
        people[f"{name} approver"] = make_member(Role.APPROVER, org, name=f"{name} Approver")
        for year in (2025, 2026):
            db.session.add(
                Budget(organisation=org, financial_year=year, allocated_pence=10_000_000)
            )
    for name, org in providers.items():
        people[f"{name} admin"] = make_member(Role.PROVIDER_ADMIN, org, name=f"{name} Admin")
    db.session.flush()
    world_listings.arrangement = arrangement
    return providers, funders, people


def world_listings(providers: dict[str, Organisation]) -> dict[tuple[str, str], Listing]:
    arrangement = world_listings.arrangement
    prices = {HARBOUR: 10_000, BRIGHT: {"ETE": 5_000, "ACC": 6_000}, CARILLION: 8_000}
    listings = {}
    with frozen_at(at(date(2025, 4, 1))):
        for lot in arrangement.lots:
            code = lot.category.code
            for name, org in providers.items():
                price = prices[name]
                price = price[code] if isinstance(price, dict) else price
                listings[name, code] = make_listing(
                    lot,
                    org,
                    title=f"{name} {code}",
                    price_pence=price,
                    price_from=date(2025, 4, 1),
                    region_codes=("A", "D"),
                    vat_treatment="standard",
                    max_units=100,
                    lead_time_days=5,
                )
    assert category("ACC") is not None
    return listings
