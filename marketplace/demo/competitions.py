"""Demo further competitions for `flask demo load`: the North West region's published, open
competition for accommodation in its region, co-funded by Lancashire's PCC (so the public list
of open competitions is not empty), and a draft it is still setting up. Made through the
services, as the buyer would through the pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import Arrangement, ArrangementStatus
from marketplace.catalogue.models import Unit
from marketplace.competitions.services import publishing, setup
from marketplace.core.clock import LONDON, add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.orders.services.details import FundingShare
from marketplace.reference.models import ProbationRegion

QUESTIONS = [
    setup.QuestionDetails(
        kind="quality",
        text="How will you help each young adult keep their tenancy for the first six months?",
        scoring_scheme=(
            "0: no answer. 1: poor, little evidence. 2: fair, some evidence. 3: good, clear and "
            "evidenced. 4: excellent, clear, evidenced and tailored to young adults."
        ),
        word_limit=500,
        max_score=4,
        weight=30,
    ),
    setup.QuestionDetails(
        kind="quality",
        text="How will you work with probation practitioners and the local housing teams?",
        scoring_scheme="0: no answer. 1: poor. 2: fair. 3: good. 4: excellent.",
        word_limit=300,
        max_score=4,
        weight=20,
    ),
    setup.QuestionDetails(
        kind="social_value",
        text="What social value will you add in the North West (local jobs, volunteering)?",
        scoring_scheme="0: none. 1: vague. 2: some. 3: specific and measured. 4: outstanding.",
        word_limit=300,
        max_score=4,
        weight=10,
    ),
    setup.QuestionDetails(
        kind="pass_fail",
        text="Do you hold employer's liability insurance of at least £5 million?",
    ),
]


def _london_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=LONDON).astimezone(UTC)


def load_competitions_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> dict[str, int]:
    region_org, pcc = organisations.get("pdu-nw"), organisations.get("pcc-lancs")
    buyer, approver = people.get("buyer"), people.get("approver")
    arrangement = db.session.scalar(
        sa.select(Arrangement).where(Arrangement.status == ArrangementStatus.LIVE)
    )
    north_west = db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == "B"))
    if None in (region_org, pcc, buyer, approver, arrangement, north_west):
        return {"competitions": 0}
    lot = next((lot for lot in arrangement.lots if lot.category.code == "ACC"), None)
    if lot is None:
        return {"competitions": 0}
    now = utcnow()
    start = add_working_days(london_date(now), 40)
    published = setup.start_competition(
        buyer,
        region_org,
        setup.CompetitionDetails(
            title="Move-on accommodation for young adults in the North West",
            need=(
                "Supported move-on accommodation for about 20 young adults (18 to 25) a year "
                "leaving approved premises in Lancashire and Greater Manchester, with a key "
                "worker and help to keep the tenancy."
            ),
            lot_id=lot.id,
            region_ids=[north_west.id],
            estimated_value_pence=15_000_000,
            quantity=1_800,
            unit=Unit.BED_NIGHT.value,
            contract_start=start,
            contract_end=start + timedelta(days=150),
        ),
        now=now,
    )
    setup.set_funding(
        buyer,
        published,
        [FundingShare(region_org.id, 6_000), FundingShare(pcc.id, 4_000)],
        now=now,
    )
    setup.set_price_criteria(
        buyer,
        published,
        price_weight=40,
        price_formula="lowest_over_price",
        tie_break="quality_then_price",
    )
    for question in QUESTIONS:
        setup.add_question(buyer, published, question)
    setup.set_deadlines(
        buyer,
        published,
        clarification_deadline=_london_noon(london_date(now) + timedelta(days=14)),
        bid_deadline=_london_noon(london_date(now) + timedelta(days=21)),
        standstill_working_days=8,
        now=now,
    )
    setup.set_panel(buyer, published, setup.PanelDetails([buyer.id, approver.id]))
    publishing.publish(buyer, published, now=now)

    draft = setup.start_competition(
        buyer,
        region_org,
        setup.CompetitionDetails(
            title="Intensive employment support for people leaving custody",
            need="One-to-one support into work for people released to the North West.",
            lot_id=next((lot.id for lot in arrangement.lots if lot.category.code == "ETE"), lot.id),
            region_ids=[north_west.id],
            estimated_value_pence=9_000_000,
            quantity=600,
            unit=Unit.SESSION.value,
            contract_start=start,
            contract_end=start + timedelta(days=150),
        ),
        now=now,
    )
    return {"competitions": 2 if draft.id else 1}
