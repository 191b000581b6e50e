"""The demo catalogue: published listings with prices, a few hundred from the demo members (and
any number for scale, ``demo.scale``), written in bulk through the Core tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from marketplace.accreditation.models import Arrangement, ArrangementLot, LotMembership
from marketplace.catalogue.models import Listing, ListingArea, ListingPrice
from marketplace.catalogue.search.index import reindex_all
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE
from marketplace.demo.people import DEMO_EMAIL_DOMAIN
from marketplace.reference.models import ProbationRegion, ServiceCategory

# Per category: (title, summary, description, outcomes, unit, VAT treatment, price range in pence).
LISTING_TEMPLATES: dict[str, list[tuple[str, str, str, str, str, str, tuple[int, int]]]] = {
    "ACC": [
        ("Move-on accommodation support", "Help to find and keep a tenancy after release",
         "A named housing worker helps the person find a tenancy, set up the home, claim housing "
         "costs and build a relationship with the landlord, from before release to six months on.",
         "Settled accommodation within 28 days\nTenancy kept for 6 months", "week", "exempt",
         (9_000, 18_000)),
        ("Supported housing bed", "A room in shared supported housing with on-site staff",
         "Self-contained rooms in small shared houses with staff on site from 8am to 10pm and on "
         "call overnight. Key work twice a week covers budgeting, health and moving on.",
         "Move on to independent accommodation within 9 months", "bed_night", "exempt",
         (3_500, 7_500)),
        ("Tenancy rescue casework", "Stop an eviction and keep the home",
         "Urgent casework with landlords and councils to prevent the loss of a tenancy: arrears "
         "plans, repairs, disputes and court representation through our partners.",
         "Eviction prevented\nArrears plan agreed", "referral", "exempt", (25_000, 60_000)),
        ("Duty to refer housing advice", "Housing options advice on the day of release",
         "Advice at the prison gate or in the probation office on housing options, homelessness "
         "applications and emergency accommodation.", "Homelessness application made",
         "session", "exempt", (4_000, 9_000)),
    ],
    "ETE": [
        ("Employment coaching", "One-to-one coaching into paid work",
         "A coach works with the person on CVs, disclosure of convictions, applications and "
         "interviews, and stays in touch for the first months in work.",
         "Job start\nIn work after 13 weeks", "session", "standard", (4_500, 9_500)),
        ("Construction skills programme", "CSCS card and site-ready skills in six weeks",
         "A six-week course with the CSCS health and safety test, site visits and introductions to "
         "employers who hire people with convictions.", "CSCS card gained\nJob start",
         "programme", "standard", (60_000, 140_000)),
        ("Digital skills workshops", "Basic digital skills for work and benefits",
         "Small group workshops on email, online forms, Universal Credit journals and job sites.",
         "Essential digital skills qualification", "session", "exempt", (2_000, 5_000)),
        ("Employer brokerage", "Matching job-ready people with inclusive employers",
         "We broker placements and interviews with employers who have signed up to fair chance "
         "recruitment, and support both sides for the first 13 weeks.",
         "Job start", "referral", "standard", (30_000, 80_000)),
    ],
    "FBD": [
        ("Debt advice casework", "Regulated debt advice and a plan the person can keep",
         "FCA-regulated advisers review all debts, deal with creditors, and set up debt relief "
         "orders, breathing space or repayment plans.", "Debt solution in place\nIncome maximised",
         "hour", "exempt", (3_500, 7_000)),
        ("Benefits and budgeting support", "Claims, appeals and a weekly budget",
         "Help with Universal Credit and disability benefit claims and appeals, advance payments "
         "and a realistic budget.", "Benefit claim made\nBudget agreed", "session", "exempt",
         (2_500, 6_000)),
        ("Bank account opening", "Basic bank accounts for people leaving custody",
         "Identity documents, a basic bank account and online banking set up before or just after "
         "release.", "Bank account opened", "referral", "exempt", (4_000, 12_000)),
    ],
    "DNR": [
        ("Community recovery programme", "A 12-week structured recovery group",
         "Evidence-based group work on relapse prevention, with peer mentors in recovery and links "
         "to mutual aid.", "Programme completed\nDrug-free at 6 months", "programme", "exempt",
         (45_000, 120_000)),
        ("Peer recovery mentoring", "A mentor with lived experience of recovery",
         "Weekly meetings with a trained peer mentor who helps the person keep appointments, build "
         "a recovery network and stay safe.", "Engaged with treatment", "hour", "exempt",
         (2_500, 5_000)),
        ("Alcohol brief interventions", "Short structured sessions to cut drinking",
         "Up to six sessions using motivational interviewing, with AUDIT screening at start and "
         "end.", "Reduced AUDIT score", "session", "exempt", (3_000, 6_500)),
    ],
    "WOM": [
        ("Women's centre key work", "Trauma-informed support at a women-only centre",
         "A key worker at a women's centre supports women with housing, health, children and "
         "finances, with a safe space to meet probation.", "Needs plan completed\nSafer at home",
         "session", "exempt", (4_000, 8_500)),
        ("Domestic abuse recovery group", "Group work for women who have experienced abuse",
         "A ten-week programme on healthy relationships, safety planning and self-esteem.",
         "Programme completed", "programme", "exempt", (35_000, 80_000)),
    ],
    "EWB": [
        ("Wellbeing counselling", "Short-term counselling with accredited counsellors",
         "Up to twelve sessions of person-centred counselling, in person or online.",
         "Improved wellbeing score (WEMWBS)", "session", "exempt", (4_000, 7_500)),
        ("Mental health navigation", "Help to get and keep mental health care",
         "A navigator helps the person register with a GP, get assessed and keep appointments with "
         "mental health services.", "Registered with a GP\nMental health assessment completed",
         "hour", "exempt", (3_000, 6_000)),
    ],
}  # fmt: skip
GENERIC_TEMPLATE = (
    "Specialist support", "Specialist one-to-one support for people on probation",
    "Casework by experienced staff with lived experience, tailored to the person's needs.",
    "Needs plan completed", "session", "exempt", (3_000, 8_000),
)  # fmt: skip
AREA_NAMES = {
    "A": "North East", "B": "North West", "C": "Yorkshire", "D": "Wales", "E": "Midlands",
    "F": "East", "G": "London", "H": "Kent, Surrey and Sussex", "J": "South West", "K": "South",
    "L": "Greater Manchester",
}  # fmt: skip
VARIANTS = ("", " (group)", " (remote)", " for young adults", " for women", " (intensive)")


def _listing_row(
    n: int,
    listing_id: int,
    organisation_id: int,
    lot_id: int,
    category_code: str,
    region_codes: list[str],
    now: datetime,
) -> tuple[dict[str, Any], int]:
    """One realistic published listing (the row and its price), varied by ``n``."""
    templates = LISTING_TEMPLATES.get(category_code, [GENERIC_TEMPLATE])
    title, summary, description, outcomes, unit, vat, (low, high) = templates[n % len(templates)]
    variant = VARIANTS[(n // len(templates)) % len(VARIANTS)]
    where = AREA_NAMES.get(region_codes[0], "") if region_codes else ""
    price = low + ((n * 7919) % (high - low + 1)) // 50 * 50
    group = "group" in variant
    stale = n % 7 == 3
    return {
        "id": listing_id,
        "reference": f"SL-{listing_id:06d}",
        "organisation_id": organisation_id,
        "lot_id": lot_id,
        "status": "published",
        "title": f"{title}{variant}" + (f" – {where}" if where and n % 3 == 0 else ""),
        "summary": summary,
        "description": description,
        "outcomes": outcomes,
        "setting_community": n % 5 != 4,
        "setting_custody": n % 4 == 1 or n % 5 == 4,
        "setting_remote": "remote" in variant or n % 6 == 2,
        "format_one_to_one": not group or n % 2 == 0,
        "format_group": group,
        "eligibility_sex": "female" if category_code == "WOM" or "women" in variant else "any",
        "min_age": 18 if n % 3 else None,
        "max_age": 25 if "young" in variant else None,
        "risk_low": True,
        "risk_medium": True,
        "risk_high": n % 3 != 2,
        "risk_very_high": n % 9 == 0,
        "complexity_low": n % 4 != 0,
        "complexity_medium": True,
        "complexity_high": n % 3 == 0,
        "lead_time_days": (n % 4) * 5,
        "unit": unit,
        "vat_treatment": vat,
        "min_units": 1,
        "max_units": 1 if unit in ("programme", "referral") else 12 + (n % 4) * 12,
        "monthly_capacity": 5 + (n * 13) % 60,
        "missed_sessions_chargeable": n % 5 == 1,
        "cost_staff_pence": price * 6 // 10 if n % 2 else None,
        "cost_overheads_pence": price * 25 // 100 if n % 2 else None,
        "cost_other_pence": price - price * 6 // 10 - price * 25 // 100 if n % 2 else None,
        "social_value": "We employ people with convictions and pay the Real Living Wage."
        if n % 2
        else "",
        "contact_name": "Referrals team",
        "contact_email": f"referrals+{listing_id}@{DEMO_EMAIL_DOMAIN}",
        "contact_phone": f"0300 {100 + n % 900:03d} {1000 + n % 9000:04d}",
        "created_by_id": None,
        "copied_from_id": None,
        "published_at": now - timedelta(days=30 + n % 300),
        "paused_at": None,
        "withdrawn_at": None,
        "confirmed_at": now - timedelta(days=200 + n % 200 if stale else n % 90),
        "stale_notified_at": None,
        "created_at": now - timedelta(days=30 + n % 300),
        "updated_at": now,
    }, price


def insert_listings(
    connection: sa.Connection,
    specs: list[tuple[int, int, str, list[int], list[str]]],
    *,
    today: date | None = None,
    start: int = 0,
) -> int:
    """Bulk-insert published listings: one per (organisation, lot, category code, region ids,
    region codes); some with a price rise from next month. Returns how many were written."""
    if not specs:
        return 0
    now = utcnow()
    today = today or now.date()
    next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    first_id = (connection.scalar(sa.select(sa.func.max(Listing.__table__.c.id))) or 0) + 1
    listings, areas, prices = [], [], []
    for i, (organisation_id, lot_id, code, region_ids, region_codes) in enumerate(specs):
        n = start + i
        listing_id = first_id + i
        row, price = _listing_row(n, listing_id, organisation_id, lot_id, code, region_codes, now)
        listings.append(row)
        areas.extend(
            {"listing_id": listing_id, "region_id": region_id, "pcc_area_id": None}
            for region_id in region_ids
        )
        began = row["published_at"].date()
        rises = n % 5 == 1
        prices.append(
            {
                "listing_id": listing_id,
                "unit_price_pence": price,
                "effective_from": began,
                "effective_to": next_month if rises else None,
                "reason": "First price",
                "created_at": row["published_at"],
                "created_by_id": None,
            }
        )
        if rises:
            prices.append(
                {
                    "listing_id": listing_id,
                    "unit_price_pence": price * 103 // 100,
                    "effective_from": next_month,
                    "effective_to": None,
                    "reason": "Annual uplift of 3%",
                    "created_at": now,
                    "created_by_id": None,
                }
            )
    for table, rows in (
        (Listing.__table__, listings),
        (ListingArea.__table__, areas),
        (ListingPrice.__table__, prices),
    ):
        for i in range(0, len(rows), 10_000):
            connection.execute(table.insert(), rows[i : i + 10_000])
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('listings', 'id'), (SELECT max(id) FROM listings))"
            )
        )
    return len(listings)


def load_catalogue_demo(arrangement_reference: str = DEMO_ARRANGEMENT_REFERENCE) -> int:
    """A few hundred published listings from the demo members, in the regions they hold."""
    connection = db.session.connection()
    arrangement_id = connection.scalar(
        sa.select(Arrangement.__table__.c.id).where(
            Arrangement.__table__.c.reference == arrangement_reference
        )
    )
    if arrangement_id is None:
        return 0
    rows = db.session.execute(
        sa.select(
            LotMembership.organisation_id,
            LotMembership.lot_id,
            ArrangementLot.category_id,
            LotMembership.region_id,
            ProbationRegion.code,
        )
        .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
        .join(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
        .where(LotMembership.arrangement_id == arrangement_id)
        .order_by(LotMembership.organisation_id, LotMembership.lot_id, ProbationRegion.code)
    ).all()
    codes = dict(db.session.execute(sa.select(ServiceCategory.id, ServiceCategory.code)).all())
    held: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
    for organisation_id, lot_id, category_id, region_id, region_code in rows:
        held.setdefault((organisation_id, lot_id, codes[category_id]), []).append(
            (region_id, region_code)
        )
    specs = []
    for (organisation_id, lot_id, code), regions in held.items():
        # About ten listings per lot held: every region together, and each region on its own.
        for k in range(10):
            chosen = regions if k % 2 == 0 else [regions[k // 2 % len(regions)]]
            specs.append(
                (organisation_id, lot_id, code, [r for r, _ in chosen], [c for _, c in chosen])
            )
    return insert_listings(connection, specs)


def reindex_search() -> None:
    """Rebuild the search index after bulk loads (they bypass the ORM's index upkeep)."""
    reindex_all()
    commit()
