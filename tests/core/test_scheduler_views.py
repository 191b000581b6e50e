"""The scheduled jobs page: the authority's administrators see every job and its runs, newest
first, filtered by job, a page at a time; nobody else sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketplace.accounts.models import Role
from marketplace.core import clock
from marketplace.core.db import commit, db
from marketplace.core.scheduler.models import RunOutcome, ScheduledJobRun
from tests.factories import make_member
from tests.pages import error_messages, main

OTHER_ROLES = [Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR, Role.ASSESSOR]
STARTED = datetime(2030, 5, 14, 9, 0, tzinfo=UTC)


def add_run(job_name: str, minutes: int, outcome=RunOutcome.OK, **fields) -> ScheduledJobRun:
    started = STARTED + timedelta(minutes=minutes)
    run = ScheduledJobRun(
        job_name=job_name,
        due_at=started,
        outcome=outcome,
        started_at=started,
        lease_expires_at=started + timedelta(minutes=30),
        finished_at=None if outcome == RunOutcome.RUNNING else started + timedelta(seconds=2),
        **fields,
    )
    db.session.add(run)
    return run


@pytest.fixture
def admin(web):
    user = make_member(Role.AUTHORITY_ADMIN, name="Ava Authority")
    web.as_user(user)
    return user


def test_the_administrator_reaches_it_from_the_navigation_and_sees_the_runs(web, admin):
    add_run("orders.expire-call-offs", 0, counts={"call-offs expired": 3})
    add_run(
        "catalogue.refresh-prices",
        5,
        RunOutcome.FAILED,
        error="RuntimeError: the price feed is unreachable",
    )
    commit()
    home = web.get("/")
    assert 'href="/scheduled-jobs"' in home.get_data(as_text=True)

    response = web.get("/scheduled-jobs")
    assert response.status_code == 200
    html = main(response)
    assert html.count("<h1") == 1 and "Scheduled jobs" in html
    assert "Call-offs expired: 3" in html and "Succeeded" in html
    assert "RuntimeError: the price feed is unreachable" in html and "Failed" in html
    # Newest first: the failed run started five minutes after the other.
    assert html.index("the price feed") < html.index("Call-offs expired: 3")
    # Every job is listed with its schedule, including those that have not run.
    assert "invoices.monthly-run" in html and '<code class="app-code">0 3 1 * *</code>' in html


def test_runs_are_filtered_by_job_and_paginated(web, admin):
    for minute in range(30):
        add_run("notifications.send", minute, counts={"emails sent": minute})
    add_run("orders.expire-call-offs", 100, counts={"call-offs expired": 7})
    commit()
    first = main(web.get("/scheduled-jobs?job=notifications.send"))
    assert "30 runs, newest first" in first
    assert ">Emails sent: 29<" in first and "Call-offs expired: 7" not in first
    assert ">Emails sent: 4<" not in first  # on page 2
    assert 'href="/scheduled-jobs?job=notifications.send&amp;page=2"' in first
    second = main(web.get("/scheduled-jobs?job=notifications.send&page=2"))
    assert ">Emails sent: 4<" in second and ">Emails sent: 29<" not in second
    everything = main(web.get("/scheduled-jobs"))
    assert "31 runs, newest first" in everything


def test_an_unknown_job_in_the_filter_is_answered_with_an_error_not_a_500(web, admin):
    response = web.get("/scheduled-jobs?job=%3Cscript%3E")
    assert response.status_code == 200
    assert error_messages(response) == ["Choose a job from the list"]
    assert "<script>" not in response.get_data(as_text=True)


def test_with_no_runs_the_page_says_so(web, admin):
    html = main(web.get("/scheduled-jobs"))
    assert "No runs yet" in html
    assert "Not run yet" in html


def test_a_run_still_running_after_its_lease_shows_as_stopped(web, admin):
    add_run("invoices.monthly-run", 0, RunOutcome.RUNNING)
    commit()
    with clock.frozen_at(STARTED + timedelta(minutes=10)):
        assert "Running" in main(web.get("/scheduled-jobs"))
    with clock.frozen_at(STARTED + timedelta(hours=1)):
        assert "Stopped" in main(web.get("/scheduled-jobs"))


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_nobody_else_may_see_it(web, role):
    member = make_member(role)
    web.as_user(member, member.organisations[0])
    assert web.get("/scheduled-jobs").status_code == 403
    assert 'href="/scheduled-jobs"' not in web.get("/").get_data(as_text=True)


def test_signed_out_visitors_sign_in_first(web):
    response = web.get("/scheduled-jobs")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
