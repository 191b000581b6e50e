"""The scheduler: jobs run on their own when the service's clock reaches their due time, once
per due time however many processes tick, each run recorded; a failing job is recorded and stops
no other; a run whose process died is taken over once its lease expires."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import LotMembership, MembershipStatus
from marketplace.core import clock
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import LONDON
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from marketplace.core.scheduler import registry
from marketplace.core.scheduler.models import RunOutcome, ScheduledJobRun
from marketplace.core.scheduler.runner import Runner
from marketplace.core.scheduler.services import latest_due, run_job
from marketplace.invoices.models import Invoice, InvoiceLine
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import delivery as orders_delivery
from marketplace.orders.services import placing as orders_placing
from marketplace.orders.services import responses as orders_responses
from tests.accreditation.test_expiry import admitted
from tests.orders.factories import build_orders_world, details


def london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LONDON).astimezone(UTC)


def tick(app, moment: datetime) -> list[str]:
    """One tick of the running scheduler (what `flask scheduler run` does every 30 s), with the
    service's clock at ``moment``. The test's own work is committed first, as a view's would be."""
    db.session.commit()
    with clock.frozen_at(moment):
        lines = Runner(app).tick()
    db.session.expire_all()
    return lines


def runs(job_name: str | None = None) -> list[ScheduledJobRun]:
    query = sa.select(ScheduledJobRun).order_by(ScheduledJobRun.id)
    if job_name:
        query = query.where(ScheduledJobRun.job_name == job_name)
    return list(db.session.scalars(query))


def emails(template: str, to: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(Notification)
    query = query.where(Notification.template == template)
    if to is not None:
        query = query.where(Notification.to_email == to)
    return db.session.scalar(query)


def placed_call_off():
    world = build_orders_world()
    call_off = orders_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world)
    )
    commit()
    assert call_off.status == CallOffStatus.SENT
    return world, call_off


# --- (a) the clock moves on, the scheduler ticks, the rules run ------------------------------


def test_a_call_off_past_its_respond_by_date_expires_and_the_buyer_is_emailed(app):
    world, call_off = placed_call_off()
    respond_by, buyer_email = call_off.respond_by, world.buyer.email

    tick(app, london(respond_by, 23, 0))  # the last day to answer: still sent
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.SENT
    assert emails("orders_expired") == 0

    lines = tick(app, london(respond_by + timedelta(days=1), 0, 15))
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED
    assert emails("orders_expired", to=buyer_email) == 1
    assert any(line.startswith("orders.expire-call-offs") for line in lines)
    [expired_run] = [r for r in runs("orders.expire-call-offs") if r.counts["call-offs expired"]]
    assert expired_run.outcome == RunOutcome.OK
    assert expired_run.due_at == london(respond_by + timedelta(days=1), 0, 10)
    assert expired_run.counts == {"call-offs expired": 1}
    assert expired_run.finished_at is not None


def test_evidence_past_its_expiry_suspends_the_membership_and_tells_the_provider(app):
    expires_on = date(2027, 3, 2)
    _world, organisation, admin, *_ = admitted(expires_on)
    admin_email = admin.email

    tick(app, london(expires_on - timedelta(days=1), 12))
    assert set(db.session.scalars(sa.select(LotMembership.status))) == {MembershipStatus.ACTIVE}

    tick(app, london(expires_on, 0, 30))
    assert set(db.session.scalars(sa.select(LotMembership.status))) == {MembershipStatus.SUSPENDED}
    assert emails("accreditation_evidence_expired", to=admin_email) == 1
    [run] = [r for r in runs("accreditation.check-expiry") if r.due_at.date() == expires_on]
    assert run.counts["memberships suspended for expired evidence"] == 2  # two regions


def test_each_job_runs_once_per_due_time_however_often_the_scheduler_ticks(app):
    moment = datetime(2030, 5, 14, 12, 0, tzinfo=UTC)
    tick(app, moment)
    first = {(r.job_name, r.due_at) for r in runs()}
    assert {name for name, _ in first} == {job.name for job in registry.registered()}
    assert all(r.outcome == RunOutcome.OK for r in runs())
    assert tick(app, moment + timedelta(seconds=30)) == []
    assert len(runs()) == len(first)
    # Five minutes on, only the email outbox (every five minutes) is due again.
    tick(app, moment + timedelta(minutes=5))
    assert [r.job_name for r in runs()][len(first) :] == ["notifications.send"]


def test_a_job_turned_off_in_configuration_does_not_run(app, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULES", {"ORDERS_EXPIRE_CALL_OFFS": "off"})
    tick(app, datetime(2030, 5, 14, 12, 0, tzinfo=UTC))
    assert runs("orders.expire-call-offs") == []
    assert runs("notifications.send") != []


def test_the_latest_due_time_is_in_london_time_across_the_clock_change():
    # 00:10 every day, London: in summer that is 23:10 UTC the day before.
    assert latest_due("10 0 * * *", datetime(2030, 7, 1, 12, tzinfo=UTC)) == datetime(
        2030, 6, 30, 23, 10, tzinfo=UTC
    )
    assert latest_due("10 0 * * *", datetime(2030, 1, 1, 12, tzinfo=UTC)) == datetime(
        2030, 1, 1, 0, 10, tzinfo=UTC
    )
    # The monthly run is due on the 1st; on the 20th its latest due time is the 1st still.
    assert latest_due("0 3 1 * *", datetime(2030, 2, 20, tzinfo=UTC)) == datetime(
        2030, 2, 1, 3, tzinfo=UTC
    )


# --- (c) running a job again changes nothing --------------------------------------------------


def state() -> dict[str, object]:
    def count(model) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))

    return {
        "audit events": count(AuditEvent),
        "emails": count(Notification),
        "invoices": count(Invoice),
        "invoice lines": count(InvoiceLine),
        "call-offs": sorted(db.session.execute(sa.select(CallOff.id, CallOff.status)).all()),
        "memberships": sorted(
            db.session.execute(sa.select(LotMembership.id, LotMembership.status)).all()
        ),
    }


# Every job, named here because the registry fills when the app is made (after collection).
JOBS = [
    "accounts.classification-reminders",
    "accreditation.check-expiry",
    "catalogue.notify-stale",
    "catalogue.refresh-prices",
    "competitions.close-bids",
    "insight.catch-up-ledger",
    "invoices.monthly-run",
    "invoices.notify-overdue",
    "notifications.send",
    "orders.expire-call-offs",
    "scheduler.forget-old-runs",
]


def test_every_job_is_in_the_re_run_test(app):
    assert [job.name for job in registry.registered()] == JOBS


@pytest.mark.parametrize("job_name", JOBS)
def test_running_a_job_again_for_another_due_time_changes_nothing(app, job_name):
    """Each job is run for a due time, then for a later one at the same moment (as a second
    process, or a run taken over after its lease expired, would): the second does nothing."""
    _world, call_off = placed_call_off()
    _world2, _organisation, _admin, *_ = admitted(call_off.respond_by)
    moment = london(call_off.respond_by + timedelta(days=40), 12)
    job = registry.get(job_name)
    with clock.frozen_at(moment):
        first = run_job(job, moment - timedelta(hours=2))
        after_first = state()
        again = run_job(job, moment - timedelta(hours=1))
    assert first.outcome == again.outcome == RunOutcome.OK, (first.error, again.error)
    assert state() == after_first
    assert not any(again.counts.values()), again.counts


def test_the_expiry_and_evidence_jobs_really_did_something_before_their_second_run(app):
    """The re-run test above is not vacuous: the first runs expire and suspend."""
    _world, call_off = placed_call_off()
    admitted(call_off.respond_by)
    moment = london(call_off.respond_by + timedelta(days=40), 12)
    with clock.frozen_at(moment):
        expired = run_job(registry.get("orders.expire-call-offs"), moment)
        checked = run_job(registry.get("accreditation.check-expiry"), moment)
    assert expired.counts == {"call-offs expired": 1}
    assert checked.counts["memberships suspended for expired evidence"] == 2


# --- (e) a failing job is recorded and stops no other ----------------------------------------


def test_a_failing_job_is_recorded_as_failed_and_the_others_still_run(app, monkeypatch):
    def broken(due_at):
        db.session.add(AuditEvent(action="half.done", object_type="test", object_id="1"))
        db.session.flush()
        raise RuntimeError("the price feed is unreachable")

    name = "catalogue.refresh-prices"
    monkeypatch.setitem(
        registry._JOBS, name, dataclasses.replace(registry.get(name), function=broken)
    )
    _world, call_off = placed_call_off()

    tick(app, london(call_off.respond_by + timedelta(days=1), 1))

    [failed] = runs(name)
    assert failed.outcome == RunOutcome.FAILED
    assert failed.error == "RuntimeError: the price feed is unreachable"
    assert failed.finished_at is not None and failed.counts is None
    # What it wrote before failing is rolled back; the jobs after it ran all the same.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "half.done")
        )
        == 0
    )
    others = [r for r in runs() if r.job_name != name]
    assert others and all(r.outcome == RunOutcome.OK for r in others)
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED


# --- leases ------------------------------------------------------------------------------------


def test_a_run_whose_process_died_is_taken_over_once_its_lease_expires(app):
    job = registry.get("orders.expire-call-offs")
    _world, call_off = placed_call_off()
    due = london(call_off.respond_by + timedelta(days=1), 0, 10)
    dead = ScheduledJobRun(
        job_name=job.name,
        due_at=due,
        outcome=RunOutcome.RUNNING,
        started_at=due,
        lease_expires_at=due + job.lease,
        attempts=1,
        runner="gone:1",
    )
    db.session.add(dead)
    commit()

    with clock.frozen_at(due + job.lease - timedelta(minutes=1)):
        assert run_job(job, due) is None  # still leased: perhaps still running
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.SENT

    with clock.frozen_at(due + job.lease + timedelta(minutes=1)):
        run = run_job(job, due)
    assert run is not None and run.id == dead.id
    assert run.outcome == RunOutcome.OK and run.attempts == 2
    assert run.counts == {"call-offs expired": 1}
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED


def test_a_finished_run_is_never_run_again_for_its_due_time(app):
    job = registry.get("orders.expire-call-offs")
    moment = datetime(2030, 5, 14, 12, tzinfo=UTC)
    with clock.frozen_at(moment):
        assert run_job(job, moment) is not None
        assert run_job(job, moment) is None
    assert len(runs(job.name)) == 1


def test_the_forget_job_deletes_old_finished_runs_only(app, monkeypatch):
    monkeypatch.setitem(app.config, "SCHEDULER_KEEP_RUNS_DAYS", 10)
    now = datetime(2030, 5, 14, 12, tzinfo=UTC)
    for days, outcome in ((30, RunOutcome.OK), (31, RunOutcome.RUNNING), (2, RunOutcome.OK)):
        started = now - timedelta(days=days)
        db.session.add(
            ScheduledJobRun(
                job_name="notifications.send",
                due_at=started,
                outcome=outcome,
                started_at=started,
                lease_expires_at=started + timedelta(minutes=30),
                finished_at=None if outcome == RunOutcome.RUNNING else started,
            )
        )
    commit()
    with clock.frozen_at(now):
        run = run_job(registry.get("scheduler.forget-old-runs"), now)
    assert run.counts == {"old runs deleted": 1}
    assert len(runs("notifications.send")) == 2


# --- (b) several scheduler processes on one PostgreSQL ----------------------------------------


@pytest.mark.postgres_only
def test_two_scheduler_processes_run_each_job_once_per_due_time(app, tmp_path):
    """Two real processes (`flask scheduler run-due`, as cron or two machines would start them)
    at the same driven time, on the one database: one run row per job and due time, and each
    effect once (one call-off expired, one email to the buyer)."""
    world, call_off = placed_call_off()
    buyer_email = world.buyer.email
    at = london(call_off.respond_by + timedelta(days=1), 0, 15)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "MARKETPLACE_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path),
        "MARKETPLACE_EMAIL_BACKEND": "console",
        "MARKETPLACE_SEND_EMAIL_AFTER_COMMIT": "false",
    }
    command = [
        str(Path(sys.executable).with_name("flask")),
        "scheduler",
        "run-due",
        "--at",
        at.strftime("%Y-%m-%dT%H:%M"),
    ]
    processes = [
        subprocess.Popen(  # noqa: S603 - our own command line
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    db.session.expire_all()

    rows = runs()
    assert sorted(r.job_name for r in rows) == JOBS  # one row per job (and its one due time)
    assert all(r.outcome == RunOutcome.OK for r in rows), [r.error for r in rows]
    # Between them the two processes reported each job once.
    reported = [
        line.split(" ")[0] for out, _ in outputs for line in out.splitlines() if "(due" in line
    ]
    assert sorted(reported) == JOBS
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED
    assert emails("orders_expired", to=buyer_email) == 1
    expired_events = sa.select(sa.func.count()).select_from(AuditEvent)
    assert db.session.scalar(expired_events.where(AuditEvent.action == "call_off.expired")) == 1


# --- `flask scheduler run`: runs on its own, stops cleanly -------------------------------------


def test_the_long_running_scheduler_runs_due_jobs_and_stops_cleanly_on_sigterm(app, tmp_path):
    """`flask scheduler run` ticks at once on start (no command typed for any job), and SIGTERM
    stops it after the tick under way, exiting 0."""
    _world, call_off = placed_call_off()
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "MARKETPLACE_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "MARKETPLACE_INSTANCE_PATH": str(tmp_path),
        "MARKETPLACE_EMAIL_BACKEND": "console",
        "MARKETPLACE_SEND_EMAIL_AFTER_COMMIT": "false",
        "MARKETPLACE_LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [str(Path(sys.executable).with_name("flask")), "scheduler", "run", "--tick", "3600"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The first tick logs a line per job it ran; the last job by name ends it.
        for line in process.stderr:
            if "scheduled run scheduler.forget-old-runs" in line:
                break
        process.send_signal(signal.SIGTERM)
        out, _err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert out.splitlines()[-1] == "Scheduler stopped."
    db.session.expire_all()
    assert sorted(r.job_name for r in runs()) == JOBS
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.SENT  # not overdue yet


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        (
            {"ORDERS_EXPIRE": "10 0 * * *"},
            "MARKETPLACE_SCHEDULE_ORDERS_EXPIRE names no scheduled job",
        ),
        ({"ORDERS_EXPIRE_CALL_OFFS": "at midnight"}, "is neither a crontab line"),
    ],
)
def test_a_schedule_in_configuration_that_cannot_work_stops_the_app_starting(
    app, tmp_path, schedules, message
):
    from marketplace import create_app
    from tests.conftest import test_config

    with pytest.raises(ValueError, match=message):
        create_app({**test_config(tmp_path), "SCHEDULES": schedules})
    create_app({**test_config(tmp_path), "SCHEDULES": {"ORDERS_EXPIRE_CALL_OFFS": "OFF"}})


def test_the_monthly_invoice_run_bills_the_month_just_ended_once(app):
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = orders_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world)
    )
    orders_responses.accept(world.provider_admin, call_off)
    start = call_off.start_date
    orders_delivery.record_delivery(
        world.provider_admin,
        call_off,
        orders_delivery.DeliveryDetails(delivered_on=start, units=3, attendance="attended"),
        now=clock.utcnow() + timedelta(days=60),
    )
    commit()
    month_after = (start.replace(day=1) + timedelta(days=32)).replace(day=1)

    tick(app, london(month_after, 3, 5))
    [run] = runs("invoices.monthly-run")
    assert run.due_at == london(month_after, 3)
    assert run.counts[f"invoices drafted for {start:%Y-%m}"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 1

    # The scheduler ticking on, and the job run again (a dead run taken over), add nothing.
    tick(app, london(month_after, 9, 30))
    assert len(runs("invoices.monthly-run")) == 1
    with clock.frozen_at(london(month_after, 10)):
        again = run_job(registry.get("invoices.monthly-run"), london(month_after, 3, 1))
    assert not any(again.counts.values())
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InvoiceLine)) == 1
