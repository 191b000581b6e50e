"""A hand-checked data set for the transparency exports, built through the real services
(placing, co-funding, accepting, delivering, the monthly run, issuing, credit notes, paying)
with the service's clock frozen at each step of a fixed timeline in 2025, so every date and
amount in the expected CSVs can be written out by hand.

Providers (classifications in force from 1 January 2025):
- Harbour Housing: a registered charity (1100001), VCSE and SME; exempt sessions at £250.00.
- Swift Skills Ltd: a company (07000002), SME and not VCSE; sessions at £156.27 + 20% VAT.
  Reclassified not SME from 1 August 2025, after its call-off was awarded (the register shows
  the classification in force at award: SME).
- Northgate Services plc: a company (01000003), neither; exempt sessions at £1,500.00.

North East Probation places every call-off (lead buyer, pays the invoices); Durham PCC co-funds.

Call-offs placed 6 May 2025, accepted 7 May 2025, 1 June to 30 September 2025:
- A  Harbour Housing, 30 sessions = £7,500.00; region 5,000 / PCC 5,000 basis points.
- B  Swift Skills, 40 sessions = £6,250.80 + £1,250.16 VAT = £7,500.96; region 6,667 / PCC 3,333.
- C  Northgate, 55 sessions = £82,500.00; region 2,000 / PCC 8,000.
- E  Harbour Housing, 20 sessions = £5,000.00 exactly; region 5,000 / PCC 5,000.
- F  Harbour Housing, 30 sessions, declined by the provider (withdrawn: never a contract).
- G  Harbour Housing, 25 sessions = £6,250.00; region 5,000 / PCC 5,000; cancelled 1 June
  2025, after acceptance.

Invoices (issued, so received, 10:00 on the first of the month after delivery):
- INV-000001 (A, June: 4 sessions) £1,000.00, paid 5 September 2025 (66 days).
  The PCC's part: £500.00, exactly the threshold.
- INV-000001 of Swift Skills (B, June: 8 sessions) net £1,250.16, VAT £250.03 (per line, half
  up), £1,500.19; paid 15 July 2025 (14 days). The PCC's part (3,333 bp, largest remainder):
  net 41,667.8328 -> 41,668 (its remainder is the larger), VAT 8,333.4999 -> 8,333 (the lead's
  .5001 is larger): £500.01, just over.
- INV-000001 of Northgate (C, June: 30 sessions) £45,000.00; credit note CN-000001 of £1,500.00
  on 10 July before payment; paid 20 July 2025 (19 days), £43,500.00. The PCC's part: 80% of
  £45,000.00 less 80% of £1,500.00 = £36,000.00 - £1,200.00 = £34,800.00. Credit note
  CN-000002 of £3,000.00 on 25 July 2025, after payment: a refund, the PCC's part -£2,400.00.
- INV-000002 of Northgate (C, July: 25 sessions) £37,500.00, received 1 August, paid
  10 September 2025 (40 days). The PCC's part: £30,000.00, exactly the £30,000 threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import (
    ClassificationSource,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    Role,
    StaffBand,
    TurnoverBand,
    User,
    VcseBasis,
    is_sme,
)
from marketplace.accreditation.models import ArrangementStatus
from marketplace.core.clock import frozen_at
from marketplace.core.db import db
from marketplace.invoices.models import Invoice
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from marketplace.orders.models import Budget, CallOff
from marketplace.orders.services import delivery, funding, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from marketplace.orders.services.details import CallOffDetails, FundingShare
from tests.accreditation.factories import make_arrangement, make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import add_membership, make_member, make_organisation


def at(month: int, day: int, hour: int = 10) -> datetime:
    """A moment in 2025 (UTC; London is an hour ahead in summer, the same day)."""
    return datetime(2025, month, day, hour, tzinfo=UTC)


@dataclass
class TransparencyWorld:
    region: Organisation
    pcc: Organisation
    harbour: Organisation
    swift: Organisation
    northgate: Organisation
    approver: User  # the region's buyer and approver
    pcc_approver: User
    call_offs: dict[str, CallOff]


def _classify(organisation, vcse: VcseBasis, staff: StaffBand, turnover: TurnoverBand, day):
    db.session.add(
        OrganisationClassification(
            organisation_id=organisation.id,
            effective_from=day,
            vcse_basis=vcse,
            staff_band=staff,
            turnover_band=turnover,
            vcse=vcse.is_vcse,
            sme=is_sme(staff, turnover),
            source=ClassificationSource.REGISTRATION,
        )
    )


def _details(quantity: int, region, pcc, region_points: int) -> CallOffDetails:
    return CallOffDetails(
        quantity=quantity,
        start_date=date(2025, 6, 1),
        end_date=date(2025, 9, 30),
        crn="X123456",
        pdu="County Durham and Darlington",
        po_number="PO-2025-1",
        choice_reason="lowest_price_with_capacity",
        choice_reason_detail="Cheapest with places in June",
        shares=(
            FundingShare(region.id, region_points),
            FundingShare(pcc.id, 10_000 - region_points),
        ),
    )


def _invoice(call_off: CallOff, period_start: date) -> Invoice:
    return db.session.scalar(
        sa.select(Invoice).where(
            Invoice.call_off_id == call_off.id, Invoice.period_start == period_start
        )
    )


def build_transparency_world() -> TransparencyWorld:
    with frozen_at(at(1, 2)):
        arrangement = make_arrangement(
            status=ArrangementStatus.LIVE,
            lots=("ACC",),
            regions=("A",),
            direct_award_limit_pence=10_000_000,
            valid_from=date(2025, 1, 1),
            valid_to=date(2027, 12, 31),
        )
        lot = arrangement.lots[0]
        harbour = make_organisation(
            OrganisationType.PROVIDER_VCSE, name="Harbour Housing", charity_number="1100001"
        )
        swift = make_organisation(
            OrganisationType.PROVIDER_PRIVATE,
            name="Swift Skills Ltd",
            companies_house_number="07000002",
        )
        northgate = make_organisation(
            OrganisationType.PROVIDER_PRIVATE,
            name="Northgate Services plc",
            companies_house_number="01000003",
        )
        listings = {}
        for provider, title, price, vat in (
            (harbour, "Supported housing", 25_000, "exempt"),
            (swift, "Employment skills", 15_627, "standard"),
            (northgate, "Accommodation hub", 150_000, "exempt"),
        ):
            make_lot_membership(lot, provider, region_code="A", admitted_on=date(2025, 1, 2))
            listings[provider.id] = make_listing(
                lot,
                provider,
                title=title,
                price_pence=price,
                price_from=date(2025, 1, 1),
                vat_treatment=vat,
                max_units=100,
                monthly_capacity=1_000,
                lead_time_days=5,
            )
        _classify(harbour, VcseBasis.REGISTERED_CHARITY, StaffBand.FROM_10_TO_49,
                  TurnoverBand.UP_TO_2M, date(2025, 1, 1))  # fmt: skip
        _classify(swift, VcseBasis.NOT_VCSE, StaffBand.FROM_50_TO_249,
                  TurnoverBand.UP_TO_10M, date(2025, 1, 1))  # fmt: skip
        _classify(swift, VcseBasis.NOT_VCSE, StaffBand.FROM_250,
                  TurnoverBand.UP_TO_44M, date(2025, 8, 1))  # fmt: skip
        _classify(northgate, VcseBasis.NOT_VCSE, StaffBand.FROM_250,
                  TurnoverBand.OVER_44M, date(2025, 1, 1))  # fmt: skip
        region = make_organisation(OrganisationType.PROBATION_REGION, name="North East Probation")
        pcc = make_organisation(OrganisationType.PCC, name="Durham PCC")
        approver = make_member(Role.APPROVER, region, name="Abe Approver")
        add_membership(approver, region, Role.BUYER)
        pcc_approver = make_member(Role.APPROVER, pcc, name="Pat PCC")
        admins = {
            provider.id: make_member(Role.PROVIDER_ADMIN, provider)
            for provider in (harbour, swift, northgate)
        }
        for organisation in (region, pcc):
            db.session.add(
                Budget(organisation=organisation, financial_year=2025, allocated_pence=20_000_000)
            )
        db.session.flush()

    call_offs: dict[str, CallOff] = {}
    plan = {
        "A": (harbour, 30, 5_000),
        "B": (swift, 40, 6_667),
        "C": (northgate, 55, 2_000),
        "E": (harbour, 20, 5_000),
        "F": (harbour, 30, 5_000),
        "G": (harbour, 25, 5_000),
    }
    with frozen_at(at(5, 6)):
        for name, (provider, quantity, points) in plan.items():
            call_offs[name] = placing.place_call_off(
                approver,
                region,
                listings[provider.id].id,
                _details(quantity, region, pcc, points),
            )
            funding.confirm_funding(pcc_approver, call_offs[name], pcc)
    with frozen_at(at(5, 7)):
        for name, call_off in call_offs.items():
            admin = admins[call_off.provider_id]
            if name == "F":
                responses.decline(admin, call_off, "No places left in that area")
            else:
                responses.accept(admin, call_off)
    with frozen_at(at(6, 1)):
        responses.cancel(approver, call_offs["G"], "person_moved", "Moved to another region")

    def deliver(name: str, day: date, units: int) -> None:
        call_off = call_offs[name]
        delivery.record_delivery(
            admins[call_off.provider_id],
            call_off,
            DeliveryDetails(delivered_on=day, units=units, attendance="attended"),
        )

    with frozen_at(at(6, 30)):
        deliver("A", date(2025, 6, 10), 4)
        deliver("B", date(2025, 6, 11), 8)
        deliver("C", date(2025, 6, 12), 30)
    with frozen_at(at(7, 1, 8)):
        monthly_run.run_period("2025-06")
    june = {name: _invoice(call_offs[name], date(2025, 6, 1)) for name in ("A", "B", "C")}
    with frozen_at(at(7, 1, 9)):
        for name, invoice in june.items():
            issuing.issue(admins[call_offs[name].provider_id], invoice)
    with frozen_at(at(7, 2)):
        for invoice in june.values():
            issuing.validate(approver, invoice)
    with frozen_at(at(7, 10)):
        credit_notes.raise_credit_note(
            admins[northgate.id], june["C"], 150_000, "One session was not held"
        )
    with frozen_at(at(7, 15)):
        issuing.mark_paid_by_bacs(approver, june["B"], "REM-B1", date(2025, 7, 15))
    with frozen_at(at(7, 20)):
        issuing.mark_paid_by_bacs(approver, june["C"], "REM-C1", date(2025, 7, 20))
    with frozen_at(at(7, 25)):
        credit_notes.raise_credit_note(
            admins[northgate.id], june["C"], 300_000, "Two sessions billed twice"
        )
        deliver("C", date(2025, 7, 14), 25)
    with frozen_at(at(8, 1, 8)):
        monthly_run.run_period("2025-07")
    july = _invoice(call_offs["C"], date(2025, 7, 1))
    with frozen_at(at(8, 1, 9)):
        issuing.issue(admins[northgate.id], july)
    with frozen_at(at(8, 4)):
        issuing.validate(approver, july)
    with frozen_at(at(9, 5)):
        issuing.mark_paid_by_bacs(approver, june["A"], "REM-A1", date(2025, 9, 5))
    with frozen_at(at(9, 10)):
        issuing.mark_paid_by_bacs(approver, july, "REM-C2", date(2025, 9, 10))
    db.session.flush()
    return TransparencyWorld(
        region, pcc, harbour, swift, northgate, approver, pcc_approver, call_offs
    )
