"""The authority's administrator finds what the scheduler did (JOURNEYS.md U4), from the home page
by links alone: the scheduled jobs, each run with its outcome, narrowed to one job. The scheduler
ticks in the test's process (the live server's database) with the service's clock moved to a
call-off's expiry, as `make run`'s scheduler would at that time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from marketplace.core import clock
from marketplace.core.clock import LONDON
from marketplace.core.db import db
from marketplace.core.scheduler.models import RunOutcome, ScheduledJobRun
from marketplace.core.scheduler.runner import Runner
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import placing as orders_placing
from tests.e2e.test_journey_authority import authority_admin
from tests.factories import PASSWORD
from tests.orders.factories import build_orders_world, details

pytestmark = pytest.mark.e2e


def test_u4_the_administrator_sees_the_scheduler_expire_a_call_off(journey, live_server):
    tag = uuid.uuid4().hex[:6].upper()
    email, _name, secret = authority_admin(live_server, tag)
    with live_server.app.app_context():
        world = build_orders_world()
        call_off = orders_placing.place_call_off(
            world.buyer, world.region, world.listing.id, details(world)
        )
        db.session.commit()
        respond_by = call_off.respond_by
        db.session.remove()
    after = datetime.combine(respond_by + timedelta(days=1), time(0, 15), LONDON)
    with clock.frozen_at(after.astimezone(UTC)):
        Runner(live_server.app).tick()
    with live_server.app.app_context():
        # Call-offs other browser tests left waiting expire with it (one live server's database).
        assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED
        expired = db.session.scalar(
            sa.select(ScheduledJobRun.counts)
            .where(
                ScheduledJobRun.job_name == "orders.expire-call-offs",
                ScheduledJobRun.outcome == RunOutcome.OK,
            )
            .order_by(ScheduledJobRun.id.desc())
        )["call-offs expired"]
        db.session.remove()
    assert expired >= 1

    journey.sign_in_from_home(email, PASSWORD, totp_secret=secret)
    journey.follow("Scheduled jobs", within="#service-navigation")
    assert journey.heading() == "Scheduled jobs"
    page = journey.main_text()
    assert "orders.expire-call-offs" in page and "invoices.monthly-run" in page
    assert f"Call-offs expired: {expired}" in page and "Succeeded" in page

    journey.select("Job", "orders.expire-call-offs")
    journey.press("Show runs")
    runs = journey.main_text()
    assert "1 run, newest first" in runs
    assert "Emails sent" not in runs.split("Runs", 1)[1]
    journey.follow("Show every job's runs")
    assert journey.heading() == "Scheduled jobs"
