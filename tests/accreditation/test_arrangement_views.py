"""The authority's arrangement pages: permissions, bad input, escaping, criteria and status."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementStatus,
    Criterion,
    LegalRegime,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from tests.accreditation.factories import category, make_arrangement, make_criterion, region
from tests.factories import make_member

TODAY = date.today()


@pytest.fixture
def admin(app):
    user = make_member(Role.AUTHORITY_ADMIN)
    commit()
    return user


def form_data(**overrides):
    data = {
        "name": "Rehabilitation services DPS",
        "reference": "dps-2026-01",
        "description": "Services for people on probation",
        "legal_regime": "pcr2015_dps",
        "valid_from": (TODAY - timedelta(days=1)).isoformat(),
        "valid_to": (TODAY + timedelta(days=365)).isoformat(),
        "direct_award_limit": "30000.50",
        "decision_period_days": "10",
        "extended_period_days": "15",
        "region_ids": [str(region("A").id), str(region("B").id)],
        "category_ids": [str(category("ACC").id)],
    }
    data.update(overrides)
    return data


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.mark.parametrize(
    "role",
    [Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR, Role.ASSESSOR],
)
def test_other_roles_are_refused(web, app, role):
    arrangement = make_arrangement()
    user = make_member(role)
    commit()
    web.as_user(user)
    for url in (
        "/accreditation/arrangements",
        "/accreditation/arrangements/new",
        f"/accreditation/arrangements/{arrangement.id}",
        f"/accreditation/arrangements/{arrangement.id}/edit",
        f"/accreditation/arrangements/{arrangement.id}/status",
        f"/accreditation/arrangements/{arrangement.id}/lots/{arrangement.lots[0].id}/criteria/new",
    ):
        assert web.get(url).status_code == 403, url
    assert web.post("/accreditation/arrangements/new", data=form_data()).status_code == 403
    assert count(Arrangement) == 1


def test_signed_out_is_sent_to_sign_in(client, app):
    response = client.get("/accreditation/arrangements")
    assert response.status_code == 302 and "sign-in" in response.location.replace("_", "-")


def test_create_arrangement(web, admin):
    web.as_user(admin)
    assert web.get("/accreditation/arrangements/new").status_code == 200
    response = web.post("/accreditation/arrangements/new", data=form_data())
    assert response.status_code == 302
    arrangement = db.session.scalar(sa.select(Arrangement))
    assert arrangement.reference == "DPS-2026-01"
    assert arrangement.direct_award_limit_pence == 3_000_050
    assert [lot.category.code for lot in arrangement.lots] == ["ACC"]
    assert [r.code for r in arrangement.regions] == ["A", "B"]
    page = web.get(response.location)
    assert page.status_code == 200 and "Rehabilitation services DPS" in page.get_data(as_text=True)
    assert "Rehabilitation services DPS" in web.get("/accreditation/arrangements").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Enter the arrangement"),
        ({"name": "x" * 201}, "200 characters or fewer"),
        ({"reference": "a b"}, "3 to 40 capital letters"),
        ({"reference": "A!B"}, "3 to 40 capital letters"),
        ({"valid_to": (TODAY - timedelta(days=10)).isoformat()}, "after the start date"),
        ({"valid_from": "2026-02-30"}, "real date"),
        ({"direct_award_limit": "12.345"}, "at most 2 decimal places"),
        ({"direct_award_limit": "abc"}, "at most 2 decimal places"),
        ({"direct_award_limit": "-5"}, "at most 2 decimal places"),
        ({"legal_regime": "pa2099_made_up"}, "Choose the legal regime"),
        ({"decision_period_days": "0"}, "1 to 100 working days"),
        ({"extended_period_days": "5"}, "extended period must be at least"),
        ({"region_ids": ["999999"]}, "Choose regions from the list"),
    ],
)
def test_bad_input_shows_errors_and_writes_nothing(web, admin, overrides, message):
    web.as_user(admin)
    response = web.post("/accreditation/arrangements/new", data=form_data(**overrides))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "There is a problem" in html
    assert message in html
    assert count(Arrangement) == 0
    assert count(AuditEvent) == 0


def test_duplicate_reference_is_refused(web, admin):
    make_arrangement(reference="DPS-2026-01")
    commit()
    web.as_user(admin)
    response = web.post("/accreditation/arrangements/new", data=form_data())
    assert response.status_code == 422
    assert "already has this reference" in response.get_data(as_text=True)
    assert count(Arrangement) == 1


def test_html_in_names_is_escaped(web, admin):
    web.as_user(admin)
    response = web.post(
        "/accreditation/arrangements/new", data=form_data(name="<script>alert(1)</script>")
    )
    arrangement = db.session.scalar(sa.select(Arrangement))
    html = web.get(f"/accreditation/arrangements/{arrangement.id}").get_data(as_text=True)
    assert response.status_code == 302
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_edit_details_lots_and_regions(web, admin):
    arrangement = make_arrangement(lots=("ACC", "ETE"), regions=("A",))
    commit()
    web.as_user(admin)
    url = f"/accreditation/arrangements/{arrangement.id}/edit"
    form = web.get(url)
    assert form.status_code == 200 and arrangement.reference in form.get_data(as_text=True)
    response = web.post(
        url,
        data=form_data(
            reference=arrangement.reference,
            category_ids=[str(category("ACC").id), str(category("FBD").id)],
            region_ids=[str(region("C").id)],
        ),
    )
    assert response.status_code == 302
    db.session.expire_all()
    arrangement = db.session.get(Arrangement, arrangement.id)
    assert [lot.category.code for lot in arrangement.lots] == ["ACC", "FBD"]
    assert [r.code for r in arrangement.regions] == ["C"]


def test_live_regime_change_is_refused_and_nothing_changes(web, admin):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE, lots=("ACC",), regions=("A",))
    commit()
    web.as_user(admin)
    response = web.post(
        f"/accreditation/arrangements/{arrangement.id}/edit",
        data=form_data(
            name="Renamed",
            reference=arrangement.reference,
            legal_regime="pa2023_dynamic_market",
            region_ids=[str(region("A").id)],
        ),
    )
    assert response.status_code == 422
    assert "cannot change once the arrangement has gone live" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Arrangement, arrangement.id).name != "Renamed"


def test_go_live_and_refusal(web, admin):
    ready = make_arrangement()
    empty = make_arrangement(lots=())
    commit()
    web.as_user(admin)
    response = web.post(f"/accreditation/arrangements/{ready.id}/status", data={"status": "live"})
    assert response.status_code == 302
    refused = web.post(f"/accreditation/arrangements/{empty.id}/status", data={"status": "live"})
    assert refused.status_code == 422
    assert "at least one lot" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Arrangement, ready.id).status == ArrangementStatus.LIVE
    assert db.session.get(Arrangement, empty.id).status == ArrangementStatus.PENDING
    bad = web.post(f"/accreditation/arrangements/{ready.id}/status", data={"status": "pending"})
    assert bad.status_code == 422


def test_add_edit_and_retire_criteria_while_pending(web, admin):
    arrangement = make_arrangement()
    lot = arrangement.lots[0]
    commit()
    web.as_user(admin)
    base = f"/accreditation/arrangements/{arrangement.id}/lots/{lot.id}/criteria"
    assert web.get(f"{base}/new").status_code == 200
    missing = web.post(
        f"{base}/new",
        data={"question": "Insured?", "type": "yes_no", "mandatory": "yes", "pass_fail": "yes"},
    )
    assert missing.status_code == 422
    assert "Choose the answer that passes" in missing.get_data(as_text=True)
    response = web.post(
        f"{base}/new",
        data={
            "question": "Do you hold insurance?",
            "type": "yes_no",
            "mandatory": "yes",
            "pass_fail": "yes",
            "pass_answer": "yes",
        },
    )
    assert response.status_code == 302
    criterion = db.session.scalar(sa.select(Criterion))
    assert criterion.pass_answer is True
    edit = web.post(
        f"{base}/{criterion.id}",
        data={
            "question": "Insurance policy",
            "type": "file",
            "mandatory": "no",
            "pass_fail": "no",
            "evidence_expires": "y",
        },
    )
    assert edit.status_code == 302
    db.session.expire_all()
    criterion = db.session.get(Criterion, criterion.id)
    assert criterion.type.value == "file" and criterion.evidence_expires and not criterion.mandatory
    assert web.post(f"{base}/{criterion.id}/retire").status_code == 302
    assert count(Criterion) == 0


def test_frozen_criteria_refused_with_the_reason(web, admin):
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE, regime=LegalRegime.PA2023_OPEN_FRAMEWORK
    )
    lot = arrangement.lots[0]
    make_criterion(lot, question="Original")
    commit()
    web.as_user(admin)
    response = web.post(
        f"/accreditation/arrangements/{arrangement.id}/lots/{lot.id}/criteria/new",
        data={"question": "New", "type": "text", "mandatory": "yes", "pass_fail": "no"},
    )
    assert response.status_code == 422
    assert "conditions of membership cannot change once the market is live" in response.get_data(
        as_text=True
    )
    assert count(Criterion) == 1


def test_unknown_ids_are_404(web, admin):
    arrangement = make_arrangement()
    other = make_arrangement(lots=("FBD",))
    commit()
    web.as_user(admin)
    assert web.get("/accreditation/arrangements/999999").status_code == 404
    lot_of_other = other.lots[0].id
    url = f"/accreditation/arrangements/{arrangement.id}/lots/{lot_of_other}/criteria/new"
    assert web.get(url).status_code == 404


class TestLotDescription:
    def test_authority_admin_changes_a_lots_description(self, client, login):
        from marketplace.accreditation.models import ArrangementLot
        from tests.accreditation.builders import make_world

        world = make_world()
        admin = make_member(Role.AUTHORITY_ADMIN)
        commit()
        login(admin)
        path = f"/accreditation/arrangements/{world.arrangement.id}/lots/{world.lot_a.id}"
        assert client.get(path).status_code == 200
        too_long = client.post(path, data={"description": "x" * 5001})
        assert too_long.status_code == 422
        response = client.post(path, data={"description": "Housing advice <b>and</b> support"})
        assert response.status_code == 302
        db.session.expire_all()
        assert db.session.get(ArrangementLot, world.lot_a.id).description == (
            "Housing advice <b>and</b> support"
        )
        assert db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "arrangement.lot_updated")
        )
        page = client.get(f"/accreditation/arrangements/{world.arrangement.id}").get_data(
            as_text=True
        )
        assert "Housing advice &lt;b&gt;and&lt;/b&gt; support" in page

    def test_other_roles_and_other_lots(self, client, login):
        from tests.accreditation.builders import make_world

        world = make_world()
        other = make_world()
        admin = make_member(Role.AUTHORITY_ADMIN)
        buyer = make_member(Role.BUYER)
        commit()
        login(buyer)
        path = f"/accreditation/arrangements/{world.arrangement.id}/lots/{world.lot_a.id}"
        assert client.get(path).status_code == 403
        login(admin)
        wrong = f"/accreditation/arrangements/{world.arrangement.id}/lots/{other.lot_a.id}"
        assert client.get(wrong).status_code == 404
