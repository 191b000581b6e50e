"""The national five-year data set the insight benchmarks read (issue 22), built on PostgreSQL.

`python benchmarks/insight_data.py [--call-offs 1000000] [--lines 3000000] [--providers 2000]`
against the database in ``MARKETPLACE_DATABASE_URL`` (migrated, `flask demo load` done). Or call
``build(...)`` inside an app context. Everything is set-based SQL (``INSERT … SELECT`` over
``generate_series`` and staging tables), in one transaction, with every constraint and foreign
key of the schema in force: a row the app could not have written fails the load.

What it adds to the demo world:

- a commissioner organisation for every probation region (12) and PCC area (42) that the demo
  has none for, each with a general budget for every financial year the call-offs touch;
- the demo arrangement opened to every region, then ``--providers`` providers with lot
  memberships and published listings (``marketplace.demo.scale``): three in four VCSE, each with
  a classification history in ``organisation_classifications`` (registration, yearly
  confirmations for half of them, and a reclassification for one in ten: a charity growing, an
  SME becoming large, a CIC corrected to not VCSE by the authority); large providers (about one
  in nine) win many more call-offs than small ones, as in the real market;
- ``--call-offs`` direct awards placed from 1 April 2021 to 31 March 2026 (financial years
  2021-22 to 2025-26), led by the region's probation service, over every status; one in ten
  co-funded by a PCC of the region (basis points summing to 10,000, shares to the penny by the
  largest remainder, ties to the lead, as ``core.money.split_by_basis_points``), each funder's
  share committed against its budget (one budget part per funder);
- for the call-offs in delivery or completed (three in four): ``--lines`` deliveries in all, a
  session a fortnight, each billed on one line of its month's invoice; invoices issued after the
  month (numbered per provider without gaps), nearly all paid (``paid_on`` 5 to 44 days after
  issue), a few validated, disputed or still issued, the last month of a call-off in delivery
  still a draft; one issued invoice in a hundred credited (``credit_notes``, numbered per
  provider).

Afterwards every new call-off is in ``spend_stale_call_offs``, as the stale triggers
(``insight/stale.py``) would leave it (for speed they are switched off inside the load's
transaction and the call-offs marked in one statement at the end): the caller builds the ledger
with ``insight.services.ledger.rebuild_all()``.
"""

# The statements are put together from this module's own constants and fragments, never from
# input (the figures are bound parameters).
# ruff: noqa: S608
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marketplace.insight.stale import TRIGGERS  # noqa: E402

FIRST_DAY = date(2021, 4, 1)
LAST_DAY = date(2026, 3, 31)  # the data set covers financial years 2021-22 to 2025-26
REFERENCE_PREFIX = "CO-NAT-"
# One call-off in ten is co-funded by a PCC of its region.
COFUNDED_EVERY = 10


def _h(expr: str, salt: int) -> str:
    """SQL for a well-mixed, non-negative pseudo-random integer from ``expr`` (deterministic)."""
    return f"(hashint8(({expr})::bigint * 16 + {salt})::bigint & 2147483647)"


# The statuses of call-off number n by n % 1000: 750 in 1,000 are in delivery or completed (so
# the lines per delivered call-off average --lines / (0.75 × --call-offs)). Awaiting funding and
# funding declined need a co-funder: those call-offs are co-funded whatever their number.
STATUS_SQL = """
CASE
  WHEN s < 700 THEN 'completed'
  WHEN s < 750 THEN 'in_delivery'
  WHEN s < 770 THEN 'accepted'
  WHEN s < 840 THEN 'cancelled'
  WHEN s < 880 THEN 'declined'
  WHEN s < 910 THEN 'expired'
  WHEN s < 935 THEN 'sent'
  WHEN s < 955 THEN 'awaiting_approval'
  WHEN s < 965 THEN 'awaiting_funding'
  WHEN s < 970 THEN 'funding_declined'
  WHEN s < 985 THEN 'awaiting_approval'
  ELSE 'draft'
END
"""
DELIVERED = ("completed", "in_delivery")
# Not yet sent to the provider: no funding confirmed, nothing sent.
PRE_SENT = ("draft", "awaiting_funding", "funding_declined", "awaiting_approval")


def _vat(net: str, treatment: str) -> str:
    """VAT on ``net`` pence at ``treatment``, rounded half up (as ``core.money.vat_pence``)."""
    return (
        f"(CASE {treatment} WHEN 'standard' THEN ({net} * 20 + 50) / 100 "
        f"WHEN 'reduced' THEN ({net} * 5 + 50) / 100 ELSE 0 END)"
    )


def _fy(day: str) -> str:
    """The financial year (the calendar year it starts in) of a date expression."""
    return f"(extract(year FROM ({day}) - interval '3 months'))::int"


class Loader:
    def __init__(self, connection, *, verbose: bool = True):
        self.connection = connection
        self.verbose = verbose
        self.timings: list[tuple[str, float]] = []

    def sql(self, statement: str, **params):
        import sqlalchemy as sa

        return self.connection.execute(sa.text(statement), params)

    def step(self, name: str, *statements: str, **params) -> None:
        began = time.monotonic()
        for statement in statements:
            self.sql(statement, **params)
        seconds = time.monotonic() - began
        self.timings.append((name, seconds))
        if self.verbose:
            print(f"  {name}: {seconds:.1f} s", flush=True)

    def scalar(self, statement: str, **params):
        return self.sql(statement, **params).scalar()


def build(connection, call_offs: int, lines: int, providers: int, *, verbose: bool = True):
    """Add the national data set to the database ``connection`` is on (PostgreSQL), in the
    connection's transaction (the caller commits). Returns the loader (its ``timings``)."""
    if connection.dialect.name != "postgresql":
        raise SystemExit("the national data set is built on PostgreSQL only")
    load = Loader(connection, verbose=verbose)
    load.sql("SET LOCAL work_mem = '256MB'")
    load.sql("SET LOCAL maintenance_work_mem = '512MB'")
    _commissioners(load)
    _providers(load, providers)
    _classifications(load)
    _budgets(load)
    with _stale_marked_at_the_end(load):
        _call_offs(load, call_offs, lines)
        _funders(load)
        _deliveries(load)
        _invoices(load)
        _credit_notes(load)
    _finish(load)
    return load


@contextmanager
def _stale_marked_at_the_end(load: Loader):
    """The stale triggers' INSERT side, done once for the whole load: the per-row triggers of the
    tables the new call-offs' rows go into are disabled for this transaction only (ALTER TABLE
    is transactional, and no other session sees the tables until the commit), and afterwards
    every new call-off is put in ``spend_stale_call_offs``, which is exactly what the triggers
    would have left there (each fires for a row of a new call-off and records that call-off).
    It saves a trigger call for each of some four million rows."""
    triggers = [
        (trigger.table, trigger.name)
        for trigger in TRIGGERS
        if trigger.event == "INSERT"
        and trigger.table in ("call_offs", "call_off_funders", "invoices", "credit_notes")
    ]
    for table, name in triggers:
        load.sql(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
    yield
    for table, name in triggers:
        load.sql(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
    load.step(
        "new call-offs marked stale",
        "INSERT INTO spend_stale_call_offs (call_off_id) SELECT id FROM bench_call_offs "
        "ON CONFLICT DO NOTHING",
    )


def _commissioners(load: Loader) -> None:
    """A probation service organisation for every region and a PCC for every PCC area that the
    demo has none for; general budgets for each, for every financial year the data touches."""
    load.step(
        "commissioners",
        """
        INSERT INTO organisations (name, type, region_id, pcc_area_id, vat_registered, active,
                                   created_at, updated_at)
        SELECT 'Probation Service – ' || r.name, 'probation_region', r.id, NULL, false, true,
               now(), now()
        FROM probation_regions r
        WHERE NOT EXISTS (SELECT 1 FROM organisations o
                          WHERE o.type = 'probation_region' AND o.region_id = r.id)
        ORDER BY r.code
        """,
        """
        INSERT INTO organisations (name, type, region_id, pcc_area_id, vat_registered, active,
                                   created_at, updated_at)
        SELECT 'Police and Crime Commissioner for ' || p.name, 'pcc', p.region_id, p.id, false,
               true, now(), now()
        FROM pcc_areas p
        WHERE NOT EXISTS (SELECT 1 FROM organisations o
                          WHERE o.type = 'pcc' AND o.pcc_area_id = p.id)
        ORDER BY p.code
        """,
        # The lead buyer of a region's call-offs: its probation service (the first, if several).
        """
        CREATE TEMP TABLE bench_region_leads ON COMMIT DROP AS
        SELECT DISTINCT ON (r.id) r.id AS region_id, r.name AS region_name, o.id AS lead_id,
               row_number() OVER (ORDER BY r.code) - 1 AS region_index
        FROM probation_regions r
        JOIN organisations o ON o.type = 'probation_region' AND o.region_id = r.id
        ORDER BY r.id, o.id
        """,
        # The PCCs of each region, numbered within it (a co-funder is one of them).
        """
        CREATE TEMP TABLE bench_region_pccs ON COMMIT DROP AS
        SELECT p.region_id, o.id AS pcc_id,
               row_number() OVER (PARTITION BY p.region_id ORDER BY p.code) - 1 AS k,
               count(*) OVER (PARTITION BY p.region_id) AS of_region
        FROM pcc_areas p
        JOIN LATERAL (SELECT id FROM organisations o WHERE o.type = 'pcc'
                      AND o.pcc_area_id = p.id ORDER BY id LIMIT 1) o ON true
        """,
        "CREATE INDEX ON bench_region_pccs (region_id, k)",
        # The demo arrangement covers some regions; the national market covers all of them.
        """
        INSERT INTO arrangement_regions (arrangement_id, region_id)
        SELECT a.id, r.id FROM arrangements a CROSS JOIN probation_regions r
        WHERE a.reference = :arrangement
          AND NOT EXISTS (SELECT 1 FROM arrangement_regions x
                          WHERE x.arrangement_id = a.id AND x.region_id = r.id)
        """,
        arrangement=_arrangement_reference(),
    )


def _arrangement_reference() -> str:
    from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE

    return DEMO_ARRANGEMENT_REFERENCE


def _providers(load: Loader, providers: int) -> None:
    """``providers`` providers with memberships and listings (``demo.scale``: two lots in two
    regions each, four listings each); then the listing slots call-offs are drawn from."""
    from marketplace.demo.scale import SCALE_PROVIDER_PREFIX, load_scale_catalogue

    began = time.monotonic()
    before = load.scalar("SELECT coalesce(max(id), 0) FROM organisations")
    counts = load_scale_catalogue(services=providers * 4, providers=providers)
    load.timings.append(("providers, memberships and listings", time.monotonic() - began))
    if load.verbose:
        print(
            f"  providers, memberships and listings: {time.monotonic() - began:.1f} s "
            f"({counts['providers']:,} providers, {counts['lot_memberships']:,} memberships, "
            f"{counts['listings']:,} listings)",
            flush=True,
        )
    load.step(
        "listing slots",
        # The generated providers, numbered: whether each is VCSE follows its type, whether it
        # is large (and so wins many call-offs) its number.
        """
        CREATE TEMP TABLE bench_providers ON COMMIT DROP AS
        SELECT o.id, row_number() OVER (ORDER BY o.id) AS n, o.type = 'provider_vcse' AS vcse
        FROM organisations o
        WHERE o.id > :before AND o.name LIKE :prefix
        """,
        """
        ALTER TABLE bench_providers ADD COLUMN large boolean;
        UPDATE bench_providers SET large = CASE WHEN vcse THEN n % 20 = 1 ELSE n % 16 = 0 END
        """,
        # The scale catalogue gives provider k the regions 3k and 3k + 1 (by code), which with
        # twelve regions are only eight of them: each provider's two move on by an even
        # number of places drawn from its number (a shift of 1 or 11 could collide with its own
        # other region mid-update), so the providers, and their spend, cover the whole country.
        """
        CREATE TEMP TABLE bench_region_shift ON COMMIT DROP AS
        SELECT p.id AS organisation_id, r.id AS old_region_id, r2.id AS new_region_id
        FROM bench_providers p
        CROSS JOIN (SELECT id, row_number() OVER (ORDER BY code) - 1 AS i
                    FROM probation_regions) r
        JOIN (SELECT id, row_number() OVER (ORDER BY code) - 1 AS i FROM probation_regions) r2
          ON r2.i = (r.i + 2 * ((hashint8(p.n) & 2147483647) % 6)) % 12
        """,
        """
        UPDATE lot_memberships m SET region_id = s.new_region_id FROM bench_region_shift s
        WHERE m.organisation_id = s.organisation_id AND m.region_id = s.old_region_id
        """,
        """
        UPDATE listing_areas a SET region_id = s.new_region_id
        FROM bench_region_shift s, listings l
        WHERE l.id = a.listing_id AND l.organisation_id = s.organisation_id
          AND a.region_id = s.old_region_id
        """,
        """
        UPDATE organisations o SET region_id = s.new_region_id FROM bench_region_shift s
        WHERE o.id = s.organisation_id AND o.region_id = s.old_region_id
        """,
        # A listing's weight is how many slots it fills: a large private provider's 60, a
        # large charity's 6, a small provider's 1; call-off n takes slot hash(n) mod slots.
        """
        CREATE TEMP TABLE bench_listings ON COMMIT DROP AS
        SELECT l.id AS listing_id, l.organisation_id AS provider_id, lot.category_id,
               lot.arrangement_id, l.unit, l.vat_treatment, l.title,
               (SELECT p.unit_price_pence FROM listing_prices p WHERE p.listing_id = l.id
                ORDER BY p.effective_from LIMIT 1) AS price,
               CASE WHEN bp.large AND NOT bp.vcse THEN 60 WHEN bp.large THEN 6 ELSE 1 END
                 AS weight
        FROM listings l
        JOIN bench_providers bp ON bp.id = l.organisation_id
        JOIN arrangement_lots lot ON lot.id = l.lot_id
        """,
        """
        CREATE TEMP TABLE bench_slots ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY l.listing_id, g) - 1 AS slot, l.*
        FROM bench_listings l, generate_series(1, l.weight) g
        """,
        "CREATE UNIQUE INDEX ON bench_slots (slot)",
        # The regions each listing serves, numbered within it.
        """
        CREATE TEMP TABLE bench_listing_regions ON COMMIT DROP AS
        SELECT a.listing_id, a.region_id,
               row_number() OVER (PARTITION BY a.listing_id ORDER BY a.region_id) - 1 AS k,
               count(*) OVER (PARTITION BY a.listing_id) AS of_listing
        FROM listing_areas a JOIN bench_listings l ON l.listing_id = a.listing_id
        WHERE a.region_id IS NOT NULL
        """,
        "CREATE INDEX ON bench_listing_regions (listing_id, k)",
        "ANALYZE bench_providers, bench_listings, bench_slots, bench_listing_regions",
        before=before,
        prefix=f"{SCALE_PROVIDER_PREFIX}%",
    )


def _classifications(load: Loader) -> None:
    """Each generated provider's classification history: registered in 2019; confirmed every
    April for half of them; one in ten reclassified during the five years."""
    rows = load.sql("SELECT id, n, vcse, large FROM bench_providers ORDER BY n").all()
    records = []
    bases = ("registered_charity", "cio", "cic", "not_for_profit")
    for provider_id, n, vcse, large in rows:
        if vcse:
            state = (
                ("registered_charity", "250_or_more", "10m_to_44m")
                if large
                else (bases[n % 4], ("under_10", "10_to_49")[n % 2], "up_to_2m")
            )
        else:
            state = (
                ("not_vcse", "250_or_more", "over_44m")
                if large
                else ("not_vcse", ("10_to_49", "50_to_249")[n % 2], "2m_to_10m")
            )
        events = [(date(2019, 4, 1), state, "registration", "")]
        day = date.fromordinal(FIRST_DAY.toordinal() + (n * 37) % 1800)
        if vcse and not large and n % 10 == 3 and n % 4 == 3:
            new = ("not_vcse", state[1], state[2])
            events.append((day, new, "correction", "Its articles allow profits to be distributed"))
        elif vcse and not large and n % 10 == 3:
            new = (state[0], "50_to_249", "2m_to_10m")
            events.append((day, new, "confirmation", "Grew with new contracts"))
        elif not vcse and not large and n % 10 == 4:
            new = ("not_vcse", "250_or_more", "over_44m")
            events.append((day, new, "confirmation", "Acquired by a national group"))
        if n % 2 == 0:
            for year in range(2022, 2026):
                april = date(year, 4, 1)
                in_force = [e for e in events if e[0] <= april][-1][1]
                events.append((april, in_force, "confirmation", ""))
        for day, (basis, staff, turnover), source, reason in sorted(events, key=lambda e: e[0]):
            records.append(
                {
                    "organisation_id": provider_id,
                    "effective_from": day,
                    "vcse_basis": basis,
                    "staff_band": staff,
                    "turnover_band": turnover,
                    "vcse": basis != "not_vcse",
                    "sme": staff != "250_or_more" and turnover != "over_44m",
                    "source": source,
                    "reason": reason,
                }
            )
    began = time.monotonic()
    load.connection.execute(
        _text(
            "INSERT INTO organisation_classifications (organisation_id, effective_from, "
            "vcse_basis, staff_band, turnover_band, vcse, sme, source, reason, recorded_at) "
            "VALUES (:organisation_id, :effective_from, :vcse_basis, :staff_band, "
            ":turnover_band, :vcse, :sme, :source, :reason, now())"
        ),
        records,
    )
    load.timings.append(("classifications", time.monotonic() - began))
    if load.verbose:
        print(
            f"  classifications: {time.monotonic() - began:.1f} s ({len(records):,} rows)",
            flush=True,
        )


def _text(statement: str):
    import sqlalchemy as sa

    return sa.text(statement)


def _budgets(load: Loader) -> None:
    load.step(
        "budgets",
        """
        INSERT INTO budgets (organisation_id, financial_year, category_id, allocated_pence,
                             committed_pence, spent_pence, created_at, updated_at)
        SELECT o.id, y, NULL, 50000000000, 0, 0, now(), now()
        FROM organisations o CROSS JOIN generate_series(2021, 2026) y
        WHERE o.type IN ('probation_region', 'pcc')
          AND NOT EXISTS (SELECT 1 FROM budgets b WHERE b.organisation_id = o.id
                          AND b.financial_year = y AND b.category_id IS NULL)
        """,
        """
        CREATE TEMP TABLE bench_budgets ON COMMIT DROP AS
        SELECT organisation_id, financial_year, id FROM budgets WHERE category_id IS NULL
        """,
        "CREATE UNIQUE INDEX ON bench_budgets (organisation_id, financial_year)",
    )


def _call_offs(load: Loader, count: int, lines: int) -> None:
    """The call-offs, first as staging tables (every derived figure worked out once), then
    into ``call_offs`` with ids of their own numbering (``base + n``)."""
    days = (LAST_DAY - FIRST_DAY).days + 1
    base = load.scalar("SELECT coalesce(max(id), 0) FROM call_offs")
    slots = load.scalar("SELECT count(*) FROM bench_slots")
    load.step(
        "call-offs staged",
        f"""
        CREATE TEMP TABLE bench_picked ON COMMIT DROP AS
        WITH g AS (
            SELECT n, n % 1000 AS s,
                   n % {COFUNDED_EVERY} = 7 OR n % 1000 BETWEEN 955 AND 969 AS cofunded,
                   {_h("n", 1)} % :slots AS slot,
                   {_h("n", 2)} AS pick_region,
                   {_h("n", 3)} % :days AS day_index,
                   {_h("n", 4)} AS pick_pcc
            FROM generate_series(1, CAST(:count AS bigint)) n
        ), picked AS (
            SELECT g.*, ({STATUS_SQL}) AS status, sl.listing_id, sl.provider_id, sl.category_id,
                   sl.arrangement_id, sl.unit, sl.vat_treatment, sl.title, sl.price,
                   lr.region_id
            FROM g
            JOIN bench_slots sl ON sl.slot = g.slot
            JOIN bench_listing_regions lr
              ON lr.listing_id = sl.listing_id AND lr.k = g.pick_region % lr.of_listing
        )
        SELECT p.*, :base + p.n AS id, rl.lead_id, rl.region_name,
               (CAST(:first_day AS date) + p.day_index::int) AS placed_on,
               -- the delivered ones are numbered, so that their sessions add up exactly
               CASE WHEN p.status IN {DELIVERED} THEN
                 row_number() OVER (PARTITION BY p.status IN {DELIVERED} ORDER BY p.n) - 1
               END AS k
        FROM picked p JOIN bench_region_leads rl ON rl.region_id = p.region_id
        """,
        base=base,
        slots=slots,
        days=days,
        count=count,
        first_day=FIRST_DAY,
    )
    delivered = load.scalar("SELECT count(*) FROM bench_picked WHERE k IS NOT NULL")
    if delivered and lines < delivered:
        raise SystemExit(f"--lines {lines} is too few for {delivered} delivered call-offs")
    # floor((k+1)L/D) - floor(kL/D) sums to exactly L over k = 0..D-1; pairs (even k, k+1) then
    # trade up to two sessions, so call-offs vary (2 to 6 sessions at four on average) while
    # the total stays exact. A pair only trades what leaves its odd member at least one.
    sessions = """
        CASE WHEN k IS NULL THEN 0 ELSE
            ((k + 1) * :lines / :delivered - k * :lines / :delivered)
            + CASE WHEN k % 2 = 0 AND k + 1 < :delivered
                     THEN least((k / 2) % 3, :lines / :delivered - 1)
                   WHEN k % 2 = 1 THEN -least(((k - 1) / 2) % 3, :lines / :delivered - 1)
                   ELSE 0 END
        END
    """
    load.step(
        "call-offs sized",
        f"""
        CREATE TEMP TABLE bench_call_offs ON COMMIT DROP AS
        SELECT x.*, x.quantity * x.price AS net FROM (
            SELECT s.*,
                   CASE WHEN s.sessions > 0
                        THEN s.sessions + (s.n % 4) * (s.status = 'in_delivery')::int
                        ELSE 1 + s.n % 12 END AS quantity,
                   s.placed_on + (s.n % 15)::int AS start_date
            FROM (SELECT b.*, ({sessions})::int AS sessions FROM bench_picked b) s
        ) x
        """,
        "CREATE UNIQUE INDEX ON bench_call_offs (id)",
        "ANALYZE bench_call_offs",
        "DROP TABLE bench_picked",
        lines=lines,
        delivered=max(delivered, 1),
    )
    low = load.scalar("SELECT min(sessions) FROM bench_call_offs WHERE k IS NOT NULL")
    if low is not None and low < 1:
        raise SystemExit(f"--lines {lines} is too few for {delivered} delivered call-offs")
    load.step(
        "call-offs written",
        f"""
        INSERT INTO call_offs (
            id, reference, status, version, listing_id, service_title, provider_id,
            lead_buyer_id, arrangement_id, category_id, award_route, choice_reason,
            choice_reason_detail, quantity, start_date, end_date, crn, pdu, po_number,
            notes_for_provider, unit, unit_price_pence, vat_treatment, net_pence, vat_pence,
            gross_pence, price_version_id, delivered_units, outcome_max_pence, placed_by_id,
            placed_at, funding_confirmed_at, sent_at, respond_by, accepted_at, declined_at,
            decline_reason, expired_at, delivery_started_at, completed_at, completion_summary,
            cancelled_at, cancellation_reason, cancellation_detail, missed_sessions_chargeable,
            created_at, updated_at)
        SELECT
            c.id, :prefix || lpad(c.n::text, 7, '0'), c.status, 1, c.listing_id, c.title,
            c.provider_id, c.lead_id, c.arrangement_id, c.category_id, 'direct_rate_card',
            (ARRAY['lowest_price_with_capacity', 'only_provider_in_area', 'continuity',
                   'specialist_need'])[1 + c.n % 4],
            '', c.quantity, c.start_date,
            c.start_date + 14 * greatest(c.sessions, 1) + (c.n % 30)::int,
            chr(65 + (c.n % 26)::int) || lpad(((c.n * 7919) % 1000000)::text, 6, '0'),
            c.region_name || ' PDU ' || (1 + c.n % 5), 'PO-' || c.n, '',
            c.unit, c.price, c.vat_treatment, c.net, {_vat("c.net", "c.vat_treatment")},
            c.net + {_vat("c.net", "c.vat_treatment")}, NULL, c.sessions, 0, NULL,
            c.placed_on + interval '9 hours' + (c.n % 480) * interval '1 minute',
            CASE WHEN c.status NOT IN {PRE_SENT}
                 THEN c.placed_on + interval '1 day 10 hours' END,
            CASE WHEN c.status NOT IN {PRE_SENT}
                 THEN c.placed_on + interval '1 day 10 hours' END,
            CASE WHEN c.status NOT IN {PRE_SENT} THEN c.placed_on + 11 END,
            CASE WHEN c.status IN ('accepted', 'in_delivery', 'completed')
                 THEN c.placed_on + interval '2 days 11 hours' END,
            CASE WHEN c.status = 'declined' THEN c.placed_on + interval '3 days 11 hours' END,
            CASE WHEN c.status = 'declined' THEN 'No capacity in the area this month' END,
            CASE WHEN c.status = 'expired' THEN c.placed_on + interval '12 days' END,
            CASE WHEN c.status IN {DELIVERED} THEN c.start_date + interval '9 hours' END,
            CASE WHEN c.status = 'completed'
                 THEN c.start_date + 14 * c.sessions + interval '16 hours' END,
            CASE WHEN c.status = 'completed' THEN 'Completed as planned.' ELSE '' END,
            CASE WHEN c.status = 'cancelled' THEN c.placed_on + interval '4 days 15 hours' END,
            CASE WHEN c.status = 'cancelled' THEN
                 (ARRAY['person_moved', 'recalled', 'sentence_ended', 'needs_met_elsewhere',
                        'duplicate'])[1 + c.n % 5] END,
            '', false,
            c.placed_on + interval '9 hours' + (c.n % 480) * interval '1 minute',
            c.placed_on + interval '9 hours' + (c.n % 480) * interval '1 minute'
        FROM bench_call_offs c
        ORDER BY c.id
        """,
        "SELECT setval(pg_get_serial_sequence('call_offs', 'id'), (SELECT max(id) FROM call_offs))",
        prefix=REFERENCE_PREFIX,
    )


def _funders(load: Loader) -> None:
    """The lead funder of every call-off and, for one in ten, a PCC of its region: basis points
    summing to 10,000 and shares summing exactly to the gross value (largest remainder, ties to
    the lead, which comes first); one budget part each, for the year the call-off starts in."""
    open_statuses = (
        "'draft', 'awaiting_funding', 'funding_declined', 'awaiting_approval', 'sent', "
        "'accepted', 'in_delivery'"
    )
    # A share's committed pence: all of it while open and not yet delivered, the undelivered
    # part while in delivery, none once the call-off is over or the share declined.
    committed = f"""
        CASE WHEN f.declined THEN 0
             WHEN c.status = 'in_delivery'
               THEN f.share * (c.quantity - c.sessions) / c.quantity
             WHEN c.status IN ({open_statuses}) THEN f.share
             ELSE 0 END
    """
    load.step(
        "funders",
        """
        CREATE TEMP TABLE bench_funders ON COMMIT DROP AS
        WITH c AS (
            SELECT c.id, c.n, c.status, c.cofunded, c.region_id, c.lead_id, c.placed_on,
                   c.start_date, c.pick_pcc, co.gross_pence AS gross,
                   CASE WHEN c.cofunded THEN 5000 + (c.n / 10 % 9) * 500 ELSE 10000 END
                     AS lead_bp
            FROM bench_call_offs c JOIN call_offs co ON co.id = c.id
        ), split AS (
            SELECT c.*, c.gross * c.lead_bp / 10000 AS lead_floor,
                   (c.gross * c.lead_bp) % 10000 AS lead_rem,
                   c.gross - c.gross * c.lead_bp / 10000
                     - c.gross * (10000 - c.lead_bp) / 10000 AS short
            FROM c
        ), funders AS (
            SELECT s.id AS call_off_id, s.n, s.status, s.start_date, s.placed_on,
                   true AS is_lead, s.lead_id AS organisation_id, s.lead_bp AS basis_points,
                   s.lead_floor + CASE WHEN s.short = 1 AND s.lead_rem >= 5000 THEN 1 ELSE 0 END
                     AS share,
                   false AS declined
            FROM split s
            UNION ALL
            SELECT s.id, s.n, s.status, s.start_date, s.placed_on, false, p.pcc_id,
                   10000 - s.lead_bp,
                   s.gross - s.lead_floor
                     - CASE WHEN s.short = 1 AND s.lead_rem >= 5000 THEN 1 ELSE 0 END,
                   s.status = 'funding_declined'
            FROM split s
            JOIN bench_region_pccs p
              ON p.region_id = s.region_id AND p.k = s.pick_pcc % p.of_region
            WHERE s.cofunded
        )
        SELECT f.*,
               (SELECT coalesce(max(id), 0) FROM call_off_funders)
                 + row_number() OVER (ORDER BY f.call_off_id, f.is_lead DESC) AS id
        FROM funders f
        """,
        "CREATE UNIQUE INDEX ON bench_funders (id)",
        f"""
        INSERT INTO call_off_funders (id, call_off_id, organisation_id, is_lead, basis_points,
            share_pence, committed_pence, budget_id, confirmed_at, preauthorised, declined_at,
            decline_reason)
        SELECT f.id, f.call_off_id, f.organisation_id, f.is_lead, f.basis_points, f.share,
               {committed}, b.id,
               CASE WHEN f.declined OR c.status = 'draft'
                      OR (NOT f.is_lead AND c.status = 'awaiting_funding') THEN NULL
                    WHEN f.is_lead THEN f.placed_on + interval '9 hours'
                    ELSE f.placed_on + interval '1 day 9 hours' END,
               false,
               CASE WHEN f.declined THEN f.placed_on + interval '1 day 12 hours' END,
               CASE WHEN f.declined THEN 'Our budget for this is spent this year' END
        FROM bench_funders f
        JOIN bench_call_offs c ON c.id = f.call_off_id
        JOIN bench_budgets b ON b.organisation_id = f.organisation_id
                            AND b.financial_year = {_fy("f.start_date")}
        ORDER BY f.id
        """,
        f"""
        INSERT INTO call_off_budget_parts (funder_id, budget_id, financial_year, share_pence,
                                           committed_pence)
        SELECT f.id, fu.budget_id, {_fy("f.start_date")}, fu.share_pence, fu.committed_pence
        FROM bench_funders f JOIN call_off_funders fu ON fu.id = f.id
        ORDER BY f.id
        """,
        "SELECT setval(pg_get_serial_sequence('call_off_funders', 'id'), "
        "(SELECT max(id) FROM call_off_funders))",
    )


def _deliveries(load: Loader) -> None:
    load.step(
        "deliveries",
        """
        INSERT INTO call_off_deliveries (call_off_id, delivered_on, units, attendance,
            absence_reason, progress_note, payable, recorded_at)
        SELECT c.id, c.start_date + 14 * j, 1, 'attended', NULL, '', true,
               c.start_date + 14 * j + interval '17 hours'
        FROM bench_call_offs c, generate_series(0, c.sessions - 1) j
        WHERE c.sessions > 0
        ORDER BY c.id, j
        """,
    )


def _invoices(load: Loader) -> None:
    """A monthly invoice per call-off and month with delivery, a line per delivery."""
    load.step(
        "invoices staged",
        """
        CREATE TEMP TABLE bench_invoice_months ON COMMIT DROP AS
        SELECT d.call_off_id, date_trunc('month', d.delivered_on)::date AS period_start,
               count(*) AS sessions
        FROM call_off_deliveries d JOIN bench_call_offs c ON c.id = d.call_off_id
        GROUP BY 1, 2
        """,
        # The last month of a call-off still in delivery is a draft; of the rest, nearly all
        # are paid.
        f"""
        CREATE TEMP TABLE bench_invoices_unnumbered ON COMMIT DROP AS
        SELECT y.*,
               CASE WHEN y.status <> 'draft' THEN (y.period_start + interval '1 month')
                    + (y.id % 5) * interval '1 day' + interval '10 hours' END AS issued_at
        FROM (
            SELECT x.*,
                   CASE WHEN x.last AND x.call_off_status = 'in_delivery' THEN 'draft'
                        WHEN {_h("x.id", 5)} % 100 < 93 THEN 'paid'
                        WHEN {_h("x.id", 5)} % 100 < 96 THEN 'validated'
                        WHEN {_h("x.id", 5)} % 100 < 98 THEN 'issued'
                        ELSE 'disputed' END AS status
            FROM (
                SELECT m.*, c.provider_id, c.status AS call_off_status,
                       (SELECT coalesce(max(id), 0) FROM invoices)
                         + row_number() OVER (ORDER BY m.call_off_id, m.period_start) AS id,
                       m.period_start = max(m.period_start) OVER (PARTITION BY m.call_off_id)
                         AS last
                FROM bench_invoice_months m JOIN bench_call_offs c ON c.id = m.call_off_id
            ) x
        ) y
        """,
        "DROP TABLE bench_invoice_months",
        # Numbered per provider in the order issued, after any number it has used, no gaps.
        """
        CREATE TEMP TABLE bench_invoices ON COMMIT DROP AS
        SELECT u.*,
               CASE WHEN u.status <> 'draft' THEN
                 row_number() OVER (PARTITION BY u.provider_id, u.status = 'draft'
                                    ORDER BY u.issued_at, u.id)
                 + coalesce(ic.last_number, 0) END AS seq
        FROM bench_invoices_unnumbered u
        LEFT JOIN invoice_counters ic ON ic.organisation_id = u.provider_id
        """,
        "DROP TABLE bench_invoices_unnumbered",
        "CREATE UNIQUE INDEX ON bench_invoices (call_off_id, period_start)",
        "ANALYZE bench_invoices",
    )
    line_net = "c.unit_price_pence"  # one unit a session
    load.step(
        "invoices written",
        f"""
        INSERT INTO invoices (id, provider_id, lead_buyer_id, call_off_id, kind, period_start,
            period_end, status, sequence, number, po_number, call_off_reference, net_pence,
            vat_pence, gross_pence, created_at, issued_at, received_at, due_on, validated_at,
            disputed_at, dispute_reason, paid_at, paid_on, payment_method, payment_reference,
            provider_vat_number)
        SELECT i.id, c.provider_id, c.lead_buyer_id, c.id, 'monthly', i.period_start,
               (i.period_start + interval '1 month - 1 day')::date, i.status, i.seq,
               CASE WHEN i.seq IS NOT NULL THEN 'INV-' || lpad(i.seq::text, 6, '0') END,
               c.po_number, c.reference,
               i.sessions * {line_net}, i.sessions * {_vat(line_net, "c.vat_treatment")},
               i.sessions * ({line_net} + {_vat(line_net, "c.vat_treatment")}),
               i.period_start + interval '1 month 8 hours', i.issued_at, i.issued_at,
               (i.issued_at + interval '30 days')::date,
               CASE WHEN i.status IN ('validated', 'paid') THEN i.issued_at + interval '3 days' END,
               CASE WHEN i.status = 'disputed' THEN i.issued_at + interval '4 days' END,
               CASE WHEN i.status = 'disputed'
                    THEN 'Two sessions are not in our records' END,
               CASE WHEN i.status = 'paid'
                    THEN i.issued_at::date + (5 + i.id % 40)::int + interval '14 hours' END,
               CASE WHEN i.status = 'paid' THEN i.issued_at::date + (5 + i.id % 40)::int END,
               CASE WHEN i.status = 'paid' THEN 'bacs' END,
               CASE WHEN i.status = 'paid' THEN 'BACS-' || i.id END,
               o.vat_number
        FROM bench_invoices i
        JOIN call_offs c ON c.id = i.call_off_id
        JOIN organisations o ON o.id = c.provider_id
        ORDER BY i.id
        """,
        "SELECT setval(pg_get_serial_sequence('invoices', 'id'), (SELECT max(id) FROM invoices))",
        f"""
        INSERT INTO invoice_lines (invoice_id, delivery_id, outcome_claim_id, delivered_on,
            description, units, unit_price_pence, vat_treatment, net_pence, vat_pence,
            gross_pence)
        SELECT i.id, d.id, NULL, d.delivered_on, c.service_title, 1, c.unit_price_pence,
               c.vat_treatment, {line_net}, {_vat(line_net, "c.vat_treatment")},
               {line_net} + {_vat(line_net, "c.vat_treatment")}
        FROM call_off_deliveries d
        JOIN bench_call_offs b ON b.id = d.call_off_id
        JOIN call_offs c ON c.id = d.call_off_id
        JOIN bench_invoices i ON i.call_off_id = d.call_off_id
                             AND i.period_start = date_trunc('month', d.delivered_on)::date
        ORDER BY d.id
        """,
        """
        INSERT INTO invoice_counters (organisation_id, last_number)
        SELECT provider_id, max(seq) FROM bench_invoices WHERE seq IS NOT NULL
        GROUP BY provider_id
        ON CONFLICT (organisation_id) DO UPDATE SET last_number = excluded.last_number
        """,
    )


def _credit_notes(load: Loader) -> None:
    """One issued invoice in a hundred credited a tenth of its net, numbered per provider."""
    load.step(
        "credit notes",
        f"""
        INSERT INTO credit_notes (invoice_id, provider_id, sequence, number, reason, net_pence,
                                  vat_pence, gross_pence, created_at)
        SELECT x.id, x.provider_id, x.seq, 'CN-' || lpad(x.seq::text, 6, '0'),
               'One session was recorded twice', x.net,
               {_vat("x.net", "x.vat_treatment")}, x.net + {_vat("x.net", "x.vat_treatment")},
               x.issued_at + interval '7 days'
        FROM (SELECT i.id, i.provider_id, i.net_pence / 10 AS net, i.issued_at,
                     c.vat_treatment,
                     row_number() OVER (PARTITION BY i.provider_id ORDER BY i.issued_at, i.id)
                       + coalesce(ic.last_credit_note_number, 0) AS seq
              FROM bench_invoices b
              JOIN invoices i ON i.id = b.id
              JOIN call_offs c ON c.id = i.call_off_id
              LEFT JOIN invoice_counters ic ON ic.organisation_id = i.provider_id
              WHERE b.status <> 'draft' AND {_h("b.id", 6)} % 100 = 42
                AND i.net_pence >= 10) x
        ORDER BY x.provider_id, x.seq
        """,
        """
        UPDATE invoice_counters ic SET last_credit_note_number = m.last
        FROM (SELECT provider_id, max(sequence) AS last FROM credit_notes GROUP BY provider_id) m
        WHERE m.provider_id = ic.organisation_id
        """,
    )


def _finish(load: Loader) -> None:
    load.step(
        "budgets' committed",
        """
        UPDATE budgets b SET committed_pence = b.committed_pence + p.committed
        FROM (SELECT budget_id, sum(committed_pence) AS committed FROM call_off_budget_parts p
              JOIN bench_funders f ON f.id = p.funder_id GROUP BY budget_id) p
        WHERE p.budget_id = b.id
        """,
    )
    load.step(
        "analyze",
        "ANALYZE organisations, organisation_classifications, call_offs, call_off_funders, "
        "call_off_budget_parts, call_off_deliveries, invoices, invoice_lines, credit_notes, "
        "spend_stale_call_offs, budgets",
    )


def counts(connection) -> dict[str, int]:
    import sqlalchemy as sa

    tables = (
        "organisations",
        "organisation_classifications",
        "call_offs",
        "call_off_funders",
        "call_off_deliveries",
        "invoices",
        "invoice_lines",
        "credit_notes",
        "spend_stale_call_offs",
    )
    return {
        table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
        for table in tables
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call-offs", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--providers", type=int, default=2_000)
    args = parser.parse_args()
    if not os.environ.get("MARKETPLACE_DATABASE_URL", "").startswith("postgresql"):
        print("set MARKETPLACE_DATABASE_URL to a PostgreSQL database", file=sys.stderr)
        return 2
    from marketplace import create_app
    from marketplace.core.db import db

    app = create_app()
    with app.app_context():
        began = time.monotonic()
        connection = db.session.connection()
        build(connection, args.call_offs, args.lines, args.providers)
        db.session.commit()
        seconds = time.monotonic() - began
        found = counts(db.session.connection())
    print(", ".join(f"{table} {n:,}" for table, n in found.items()))
    print(f"insight_data: {args.call_offs} call-offs, {args.lines} lines in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
