"""A small spend ledger for the spend and VCSE-share tests: roll-up rows inserted directly (the
ledger lane derives them from call-offs and invoices; these tests are about what the reports
read), for two commissioners in different regions, a PCC co-funding, and the authority."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.core.clock import financial_year
from marketplace.core.db import commit, db
from marketplace.insight.models import (
    Measure,
    SpendHalfYear,
    SpendMonth,
    SpendProviderYear,
    SpendYear,
)
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from tests.factories import make_member, make_organisation


@dataclass
class SpendWorld:
    authority: Organisation
    admin: User
    north: Organisation  # a probation region
    north_buyer: User
    pcc: Organisation
    pcc_buyer: User
    south: Organisation
    south_buyer: User
    vcse: Organisation
    sme: Organisation
    large: Organisation
    provider_admin: User
    region_a: ProbationRegion
    region_b: ProbationRegion
    pcc_area: PccArea
    housing: ServiceCategory
    employment: ServiceCategory


def reference() -> tuple[
    ProbationRegion, ProbationRegion, PccArea, ServiceCategory, ServiceCategory
]:
    regions = db.session.scalars(sa.select(ProbationRegion).order_by(ProbationRegion.code)).all()
    categories = db.session.scalars(sa.select(ServiceCategory).order_by(ServiceCategory.code)).all()
    area = db.session.scalars(
        sa.select(PccArea).where(PccArea.region_id == regions[0].id).order_by(PccArea.code)
    ).first()
    return regions[0], regions[1], area, categories[0], categories[1]


def month_row(
    month: date,
    measure: Measure,
    funder: Organisation,
    category: ServiceCategory,
    pence: int,
    *,
    vcse: bool = False,
    sme: bool = False,
    region: ProbationRegion | None = None,
    pcc_area: PccArea | None = None,
) -> SpendMonth:
    row = SpendMonth(
        month=month,
        financial_year=financial_year(month),
        measure=measure,
        funder_id=funder.id,
        category_id=category.id,
        region_id=region.id if region else funder.region_id,
        pcc_area_id=pcc_area.id if pcc_area else funder.pcc_area_id,
        provider_vcse=vcse,
        provider_sme=sme,
        amount_pence=pence,
        entries=1,
    )
    db.session.add(row)
    # The coarser roll-ups are the monthly one summed by year and by half-year and provider
    # type, as the ledger keeps them.
    year_fields = ("category_id", "region_id", "pcc_area_id")
    common = ("financial_year", "measure", "funder_id", "provider_vcse", "provider_sme")
    half = {"half": 1 if 4 <= month.month <= 9 else 2}
    for model, fields, extra in (
        (SpendYear, common + year_fields, {}),
        (SpendHalfYear, common, half),
    ):
        key = {name: getattr(row, name) for name in fields} | extra
        coarse = db.session.scalars(sa.select(model).filter_by(**key)).first()
        if coarse is None:
            coarse = model(**key, amount_pence=0, entries=0)
            db.session.add(coarse)
        coarse.amount_pence += pence
        coarse.entries += 1
    return row


def provider_year(
    year: int,
    funder: Organisation,
    provider: Organisation,
    pence: int,
    *,
    vcse: bool = False,
    sme: bool = False,
) -> SpendProviderYear:
    row = SpendProviderYear(
        financial_year=year,
        funder_id=funder.id,
        provider_id=provider.id,
        provider_vcse=vcse,
        provider_sme=sme,
        paid_pence=pence,
        entries=1,
    )
    db.session.add(row)
    return row


def build_world() -> SpendWorld:
    region_a, region_b, area, housing, employment = reference()
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS Commissioning")
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    north = make_organisation(
        OrganisationType.PROBATION_REGION, name="Probation North", region_id=region_a.id
    )
    pcc = make_organisation(
        OrganisationType.PCC,
        name="PCC for the North",
        region_id=region_a.id,
        pcc_area_id=area.id,
    )
    south = make_organisation(
        OrganisationType.PROBATION_REGION, name="Probation South", region_id=region_b.id
    )
    vcse = make_organisation(OrganisationType.PROVIDER_VCSE, name="Small Charity")
    sme = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Small Firm Ltd")
    large = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Large Firm plc")
    world = SpendWorld(
        authority=authority,
        admin=admin,
        north=north,
        north_buyer=make_member(Role.BUYER, north),
        pcc=pcc,
        pcc_buyer=make_member(Role.APPROVER, pcc),
        south=south,
        south_buyer=make_member(Role.BUYER, south),
        vcse=vcse,
        sme=sme,
        large=large,
        provider_admin=make_member(Role.PROVIDER_ADMIN, vcse),
        region_a=region_a,
        region_b=region_b,
        pcc_area=area,
        housing=housing,
        employment=employment,
    )
    db.session.flush()
    return world


def add_spend(world: SpendWorld) -> None:
    """Two financial years (2025-26, 2026-27) of spend:

    North: 2025-05 housing committed £1,000.00; invoiced £600.00; paid £600.00 of which £100.00
    to the VCSE; 2026-11 employment paid £300.01 to the SME.
    PCC (co-funding north's call-off): 2025-05 housing committed £250.00, paid £150.00 to the
    VCSE.
    South: 2026-04 housing committed £400.00, paid £200.00 to the large provider.
    """
    w = world
    may, nov, apr = date(2025, 5, 1), date(2026, 11, 1), date(2026, 4, 1)
    month_row(may, Measure.COMMITTED, w.north, w.housing, 100_000)
    month_row(may, Measure.INVOICED, w.north, w.housing, 60_000)
    month_row(may, Measure.PAID, w.north, w.housing, 10_000, vcse=True, sme=True)
    month_row(may, Measure.PAID, w.north, w.housing, 50_000)
    month_row(nov, Measure.PAID, w.north, w.employment, 30_001, sme=True)
    month_row(may, Measure.COMMITTED, w.pcc, w.housing, 25_000, vcse=True)
    month_row(may, Measure.PAID, w.pcc, w.housing, 15_000, vcse=True, sme=True)
    month_row(apr, Measure.COMMITTED, w.south, w.housing, 40_000)
    month_row(apr, Measure.PAID, w.south, w.housing, 20_000)
    provider_year(2025, w.north, w.vcse, 10_000, vcse=True, sme=True)
    provider_year(2025, w.north, w.large, 50_000)
    provider_year(2026, w.north, w.sme, 30_001, sme=True)
    provider_year(2025, w.pcc, w.vcse, 15_000, vcse=True, sme=True)
    provider_year(2026, w.south, w.large, 20_000)
    commit()
