"""The service's one clock can be set by a test, and everything that reads "now" follows it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from marketplace.core import clock


def test_frozen_at_sets_now_and_the_london_date_then_gives_the_real_time_back():
    moment = datetime(2031, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 April in London (BST)
    with clock.frozen_at(moment):
        assert clock.utcnow() == moment
        assert clock.london_date() == date(2031, 4, 1)
    assert abs(clock.utcnow() - datetime.now(UTC)) < timedelta(minutes=5)


def test_travelled_to_runs_on_from_the_moment():
    moment = datetime(2030, 1, 1, 12, tzinfo=UTC)
    with clock.travelled_to(moment):
        first = clock.utcnow()
        second = clock.utcnow()
    assert moment <= first <= second < moment + timedelta(minutes=5)


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="aware"), clock.frozen_at(datetime(2030, 1, 1)):
        pass


def test_column_defaults_read_the_set_clock(app):
    """Rows stamped by a column default (``default=utcnow``) follow the clock a test set."""
    from marketplace.core.audit import AuditEvent

    moment = datetime(2030, 6, 1, 9, tzinfo=UTC)
    with clock.frozen_at(moment):
        assert AuditEvent.occurred_at.default.arg(None) == moment
