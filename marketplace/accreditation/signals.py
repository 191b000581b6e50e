"""What accreditation tells the features built on it, without knowing them: each signal is sent
inside the unit of work of the change (before the commit), so what a receiver writes commits or
rolls back with it. Receivers subscribe with ``@signal.connect``."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent when an application's decision admits the provider to lots, with the application as
# sender and ``actor=``, ``memberships=`` (the memberships just created, flushed) and ``now=``.
# Competitions invites the provider to any open further competition for that lot and area
# whose bid deadline has not passed (``competitions.services.publishing.invite_admitted``).
lot_membership_admitted = _signals.signal("lot-membership-admitted")
