"""Demo forward plans for `flask demo load`: the North West region's published plans (a further
competition for accommodation and a rate-card call-off for education, training and work) and a
draft it is still writing, and Lancashire PCC's published plan for money advice in its area. Made
through the services, as the commissioners would through the pages; the published ones email the
lots' members in their areas."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.core.clock import london_date
from marketplace.core.db import db
from marketplace.insight.models import PlannedRoute, ValueBand
from marketplace.insight.services import forward_plan
from marketplace.reference.models import ProbationRegion, ServiceCategory


def _next_quarters(count: int) -> list[tuple[int, int]]:
    """(financial year, quarter) of the ``count`` quarters after this one."""
    year, quarter = forward_plan.current_quarter(london_date())
    quarters = []
    for _ in range(count):
        year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)
        quarters.append((year, quarter))
    return quarters


def load_forward_plans_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> dict[str, int]:
    region_org, pcc = organisations.get("pdu-nw"), organisations.get("pcc-lancs")
    buyer, pcc_buyer = people.get("buyer"), people.get("pcc.buyer")
    if None in (region_org, pcc, buyer, pcc_buyer):
        return {"forward_plans": 0}
    categories = dict(db.session.execute(sa.select(ServiceCategory.code, ServiceCategory.id)).all())
    north_west = db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == "B"))
    if north_west is None or pcc.pcc_area_id is None:
        return {"forward_plans": 0}
    soon, later, next_year = _next_quarters(3)
    specs = [
        (
            buyer,
            region_org,
            True,
            forward_plan.PlanDetails(
                title="Supported housing for people leaving prison in the North West",
                description="Move-on and supported housing with tenancy support for up to two "
                "years, for people released to the North West with nowhere to live.",
                category_id=categories.get("ACC"),
                area=f"region:{north_west.id}",
                route=PlannedRoute.FURTHER_COMPETITION,
                value_band=ValueBand.FROM_100K_TO_500K,
                financial_year=soon[0],
                quarter=soon[1],
            ),
        ),
        (
            buyer,
            region_org,
            True,
            forward_plan.PlanDetails(
                title="Employment support for young adults",
                description="One-to-one help into work for 18 to 25 year olds on probation.",
                category_id=categories.get("ETE"),
                area=f"region:{north_west.id}",
                route=PlannedRoute.CALL_OFF,
                value_band=ValueBand.FROM_25K_TO_100K,
                financial_year=later[0],
                quarter=later[1],
            ),
        ),
        (
            buyer,
            region_org,
            False,
            forward_plan.PlanDetails(
                title="Peer mentoring after release",
                category_id=categories.get("ACC"),
                area=f"region:{north_west.id}",
                route=PlannedRoute.FURTHER_COMPETITION,
                value_band=ValueBand.UNDER_25K,
                financial_year=next_year[0],
                quarter=next_year[1],
            ),
        ),
        (
            pcc_buyer,
            pcc,
            True,
            forward_plan.PlanDetails(
                title="Money and debt advice in Lancashire",
                description="Benefits, budgeting and debt advice for people on probation in "
                "Lancashire, co-commissioned with the North West region.",
                category_id=categories.get("FBD"),
                area=f"pcc:{pcc.pcc_area_id}",
                route=PlannedRoute.FURTHER_COMPETITION,
                value_band=ValueBand.FROM_25K_TO_100K,
                financial_year=later[0],
                quarter=later[1],
            ),
        ),
    ]
    made = 0
    for actor, organisation, publish, details in specs:
        plan = forward_plan.add_plan(actor, organisation, details)
        if publish:
            forward_plan.publish_plan(actor, plan)
        made += 1
    return {"forward_plans": made}
