"""A transition asked for twice in a real browser (issue 18, point 3): the provider has the
call-off open in two tabs and accepts it in both. The first accepts it; the second lands on the
call-off's page, told that it has already been accepted, and nothing is accepted twice. axe-core
checks every page of both tabs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.catalogue.models import Listing
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.orders.services import details as order_details
from marketplace.orders.services import placing
from tests.e2e.browser import Ui
from tests.e2e.test_call_off_journey import build_setting
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_accepting_a_call_off_in_two_tabs_accepts_it_once(ui, live_server, axe_source):
    setting = build_setting(live_server)
    with live_server.app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == setting.buyer_email))
        listing = db.session.scalar(sa.select(Listing).where(Listing.title == setting.title))
        details = order_details.CallOffDetails(
            quantity=4,
            start_date=setting.start,
            end_date=setting.start,
            crn="X765432",
            pdu="Manchester North",
            po_number="PO-E2E-TWICE",
            choice_reason="continuity",
        )
        call_off = placing.place_call_off(
            buyer, buyer.memberships[0].organisation, listing.id, details
        )
        reference, call_off_id = call_off.reference, call_off.id
        db.session.commit()
        db.session.remove()

    ui.sign_in(setting.provider_email, PASSWORD)
    second = Ui(ui.page.context.new_page(), live_server, axe_source)
    for tab in (ui, second):
        tab.goto("/call-offs/")
        tab.click_and_wait(tab.page.get_by_role("link", name=reference).first)
        assert reference in tab.heading()

    ui.press_button("Accept call-off")
    assert "Call-off accepted" in ui.banner()

    second.press_button("Accept call-off")  # the page it shows was read before the acceptance
    assert second.page.url.endswith(f"/call-offs/{call_off_id}")
    assert "This call-off has already been accepted" in second.banner()
    assert "Accepted" in second.heading()

    second.check_every_page_was_audited()
    assert not second.violations and not second.unaudited, [
        v.describe() for v in second.violations
    ] + second.unaudited
    with live_server.app.app_context():
        accepted = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.action == "call_off.accepted", AuditEvent.object_id == str(call_off_id)
            )
        )
        db.session.remove()
    assert accepted == 1
