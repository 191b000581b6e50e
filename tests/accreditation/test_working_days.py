"""ACCEPTANCE 2: decision deadlines follow England-and-Wales working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.accreditation.services import assessment
from marketplace.core.clock import add_working_days, is_working_day, working_days_between
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)


@pytest.mark.parametrize(
    ("submitted_at", "expected", "expected_extended"),
    [
        # Wed 23 Dec 2026. Counted by hand: Thu 24 (1); Fri 25 Christmas; Mon 28 Boxing Day
        # substitute; Tue 29 (2), Wed 30 (3), Thu 31 (4); Fri 1 Jan New Year's Day;
        # Mon 4 (5) … Fri 8 (9); Mon 11 (10). Extended: Tue 12 (11) … Mon 18 (15).
        (datetime(2026, 12, 23, 10, 0, tzinfo=UTC), date(2027, 1, 11), date(2027, 1, 18)),
        # Wed 24 Mar 2027: Thu 25 (1); Fri 26 Good Friday; Mon 29 Easter Monday;
        # Tue 30 (2), Wed 31 (3), Thu 1 Apr (4), Fri 2 (5), Mon 5 (6) … Fri 9 (10).
        # Extended: Mon 12 (11) … Fri 16 (15).
        (datetime(2027, 3, 24, 15, 30, tzinfo=UTC), date(2027, 4, 9), date(2027, 4, 16)),
    ],
)
def test_deadline_skips_bank_holidays(app, submitted_at, expected, expected_extended):
    world = make_world()
    organisation, admin = make_provider()
    assessor, _ = make_authority()
    application = submitted_application(world, organisation, admin, at=submitted_at)

    assert application.decision_due_on == expected

    assessment.extend_deadline(assessor, application, "Waiting for a reference", at=submitted_at)
    assert application.decision_due_on == expected_extended


def test_the_clock_starts_on_the_london_date(app):
    # 23:30 UTC on 30 June 2027 is 00:30 on 1 July in London (BST): count from 1 July.
    world = make_world()
    organisation, admin = make_provider()
    application = submitted_application(
        world, organisation, admin, at=datetime(2027, 6, 30, 23, 30, tzinfo=UTC)
    )
    assert application.decision_due_on == add_working_days(date(2027, 7, 1), 10)
    assert application.decision_due_on == date(2027, 7, 15)


def test_known_bank_holidays_are_not_working_days():
    for holiday in (
        date(2026, 12, 25),
        date(2026, 12, 28),
        date(2027, 1, 1),
        date(2027, 3, 26),
        date(2027, 3, 29),
    ):
        assert not is_working_day(holiday)


LONDON = ZoneInfo("Europe/London")
submission_days = st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31))


@given(day=submission_days, period=st.integers(min_value=1, max_value=30))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_deadline_is_a_working_day_and_never_early(day, period):
    deadline = add_working_days(day, period)
    assert is_working_day(deadline)
    assert working_days_between(day, deadline) == period
    # Never earlier than the same number of weekdays would give, holidays only push it later.
    weekdays_only = day
    remaining = period
    while remaining:
        weekdays_only += timedelta(days=1)
        if weekdays_only.weekday() < 5:
            remaining -= 1
    assert deadline >= weekdays_only
    assert deadline > day


@given(day=submission_days)
def test_ten_working_day_deadline_has_exactly_ten_working_days(day):
    deadline = add_working_days(day, 10)
    working = [
        day + timedelta(days=n)
        for n in range(1, (deadline - day).days + 1)
        if is_working_day(day + timedelta(days=n))
    ]
    assert len(working) == 10
    assert working[-1] == deadline
    assert deadline >= day + timedelta(days=12)  # ten working days span two full weeks


@given(
    submitted_at=st.datetimes(
        min_value=datetime(2026, 1, 2), max_value=datetime(2030, 6, 1), timezones=st.just(UTC)
    )
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_submitted_applications_get_a_working_day_deadline(app, submitted_at):
    world = make_world()
    organisation, admin = make_provider()
    application = submitted_application(world, organisation, admin, at=submitted_at)
    submitted_on = application.submitted_at.astimezone(LONDON).date()
    assert is_working_day(application.decision_due_on)
    assert working_days_between(submitted_on, application.decision_due_on) == 10
