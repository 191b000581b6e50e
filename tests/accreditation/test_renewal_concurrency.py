"""Twenty assessors accept (or reject) the same renewed evidence at once, on PostgreSQL: one
decision, one audit event, one email, the memberships reinstated once; the others are told."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from marketplace import create_app
from marketplace.accounts.models import Role, User
from marketplace.accreditation import uploads
from marketplace.accreditation.models import EvidenceRenewal, MembershipStatus, RenewalStatus
from marketplace.accreditation.services import expiry, memberships
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from tests.accreditation.test_expiry import admitted, count_actions, count_emails, statuses
from tests.factories import make_member

pytestmark = pytest.mark.postgres_only

CLIENTS = 20
AT = datetime(2027, 3, 12, 10, 0, tzinfo=UTC)


def test_parallel_decisions_on_one_renewal_happen_once(app):
    world, organisation, admin, assessor, application, insurance = admitted(date(2027, 3, 10))
    evidence = uploads.store_evidence(admin, organisation, "renewed.pdf", io.BytesIO(b"%PDF-1.4"))
    renewal = memberships.renew_evidence(
        admin, insurance, evidence, date(2028, 3, 10), at=datetime(2027, 3, 1, tzinfo=UTC)
    )
    expiry.check_expiry(date(2027, 3, 11))
    authority = assessor.organisations[0]
    deciders = [make_member(Role.ASSESSOR, authority).id for _ in range(CLIENTS)]
    commit()
    assert statuses() == {MembershipStatus.SUSPENDED}
    renewal_id = renewal.id

    racing_app = create_app(
        {**app.config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 2, "max_overflow": 0}}
    )
    barrier = threading.Barrier(CLIENTS)
    outcomes: list[str] = []

    def decide(index: int, user_id: int) -> None:
        with racing_app.app_context():
            try:
                actor = db.session.get(User, user_id)
                row = db.session.get(EvidenceRenewal, renewal_id)
                barrier.wait(timeout=30)
                if index % 2:
                    memberships.reject_renewed_evidence(actor, row, "Unsigned", at=AT)
                else:
                    memberships.accept_renewed_evidence(actor, row, at=AT)
                commit()
                outcomes.append("decided")
            except BusinessRuleViolation as refused:
                db.session.rollback()
                outcomes.append(refused.errors["decision"][0])
            except Exception as error:  # recorded, then asserted below
                db.session.rollback()
                outcomes.append(f"error: {error!r}")
                barrier.abort()
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=decide, args=(index, user_id))
        for index, user_id in enumerate(deciders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with racing_app.app_context():
        db.engine.dispose()

    assert outcomes.count("decided") == 1, outcomes
    assert all(
        o.startswith("This renewed evidence has already been") for o in outcomes if o != "decided"
    ), outcomes
    db.session.expire_all()
    row = db.session.get(EvidenceRenewal, renewal_id)
    assert row.status in (RenewalStatus.ACCEPTED, RenewalStatus.REJECTED)
    decisions = count_actions("evidence.accepted") + count_actions("evidence.rejected")
    emails = count_emails("accreditation_evidence_accepted") + count_emails(
        "accreditation_evidence_rejected"
    )
    assert decisions == 1 and emails == 1
    if row.status == RenewalStatus.ACCEPTED:
        assert statuses() == {MembershipStatus.ACTIVE}
        assert count_actions("membership.reinstated") == 2
    else:
        assert statuses() == {MembershipStatus.SUSPENDED}
    assert db.session.scalar(sa.select(sa.func.count(EvidenceRenewal.id))) == 1
