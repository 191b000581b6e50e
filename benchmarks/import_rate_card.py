"""Time the import of a 10,000-row rate card into a fresh SQLite database with the demo data.

`python benchmarks/import_rate_card.py [rows]` builds a database in a temporary folder (migrations,
then `flask demo load`'s data), writes a CSV of new listings for a demo provider in the lots and
regions it is a member of, and times reading the file and importing it (validate every row, write
everything, bring the search index up to date, and commit), as the import's confirmation page
does. It prints the seconds on the last line, as `import_rate_card: <rows> rows in <seconds> s`.
The target is under 5 s for 10,000 rows.

Before that line it prints the time to import the same listings again from the provider's
template download with every price changed (`import_rate_card_update: …`): each row is compared
with its listing and becomes a new price version, as a provider's yearly uplift by spreadsheet.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_csv(rows: int, lots: list[str], regions: list[str]) -> bytes:
    from marketplace.catalogue.imports.columns import COLUMN_NAMES, COLUMNS

    example = {c.name: c.example for c in COLUMNS}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMN_NAMES)
    for n in range(rows):
        row = dict(example)
        row.update(
            title=f"Benchmark service {n:05d}",
            summary=f"Support for people on probation, package {n}",
            lot=lots[n % len(lots)],
            regions="; ".join(regions if n % 2 else regions[:1]),
            unit_price=f"{40 + n % 200}.{n % 100:02d}",
            max_units=str(10 + n % 40),
            monthly_capacity=str(20 + n % 80),
            publish="yes" if n % 3 else "",
        )
        writer.writerow([row[name] for name in COLUMN_NAMES])
    return buffer.getvalue().encode()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from marketplace import create_app
    from marketplace.accounts.models import Membership, Role, User
    from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
    from marketplace.catalogue.imports.read import read_rate_card_file
    from marketplace.catalogue.imports.template import template_csv
    from marketplace.catalogue.imports.write import import_rows
    from marketplace.core.db import commit, db
    from marketplace.demo.world import load_demo_data
    from marketplace.reference.models import ProbationRegion, ServiceCategory

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.db",
                "INSTANCE_DIR": tmp,
                "EVIDENCE_DIR": f"{tmp}/evidence",
                "SEND_EMAIL_AFTER_COMMIT": False,
                "LOG_LEVEL": "WARNING",
            }
        )
        with app.app_context():
            upgrade()
            load_demo_data()
            commit()
            # The demo provider with the most active memberships, and its administrator.
            organisation_id = db.session.scalar(
                sa.select(LotMembership.organisation_id)
                .where(LotMembership.status == MembershipStatus.ACTIVE)
                .group_by(LotMembership.organisation_id)
                .order_by(sa.func.count().desc(), LotMembership.organisation_id)
                .limit(1)
            )
            admin = db.session.scalar(
                sa.select(User)
                .join(Membership, Membership.user_id == User.id)
                .where(
                    Membership.organisation_id == organisation_id,
                    Membership.role == Role.PROVIDER_ADMIN,
                )
            )
            held = db.session.execute(
                sa.select(ServiceCategory.code, ProbationRegion.code)
                .join(ArrangementLot, ArrangementLot.category_id == ServiceCategory.id)
                .join(LotMembership, LotMembership.lot_id == ArrangementLot.id)
                .join(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
                .where(
                    LotMembership.organisation_id == organisation_id,
                    LotMembership.status == MembershipStatus.ACTIVE,
                )
            ).all()
            lots = sorted({lot for lot, _ in held})
            # Regions held for every one of those lots.
            regions = sorted(
                set.intersection(*({r for l2, r in held if l2 == lot} for lot in lots))
            )
            organisation = db.session.get(
                admin.memberships[0].organisation.__class__, organisation_id
            )
            data = build_csv(rows, lots, regions)
            db.session.expire_all()

            started = time.perf_counter()
            parsed = read_rate_card_file("rate-card.csv", io.BytesIO(data))
            # As the confirmation page does; the new listings are searchable when it commits.
            result = import_rows(admin, organisation, parsed)
            commit()
            seconds = time.perf_counter() - started

            # Every price up by a pound, from the provider's own template download.
            db.session.expire_all()
            template = list(csv.reader(io.StringIO(template_csv(organisation))))
            price = template[0].index("unit_price")
            for row in template[1:]:
                row[price] = f"{float(row[price]) + 1:.2f}"
            buffer = io.StringIO()
            csv.writer(buffer).writerows(template)
            changed = buffer.getvalue().encode()
            db.session.expire_all()
            started = time.perf_counter()
            parsed = read_rate_card_file("rate-card.csv", io.BytesIO(changed))
            update = import_rows(admin, organisation, parsed)
            commit()
            update_seconds = time.perf_counter() - started
        print(
            f"import_rate_card_update: {len(template) - 1} rows "
            f"({update.prices_changed:,} new prices) in {update_seconds:.2f} s"
        )
        print(
            f"created {result.created:,}, published {result.published:,} "
            f"({len(data) / 1024 / 1024:.1f} MB of CSV)"
        )
        print(f"import_rate_card: {rows} rows in {seconds:.2f} s")


if __name__ == "__main__":
    main()
