"""The link from a call-off awarded by further competition to the competition that awarded it
(``orders.signals.call_off_page``: orders never imports competitions)."""

from __future__ import annotations

from flask import url_for

from marketplace.competitions import permissions
from marketplace.competitions.models import Competition
from marketplace.core.db import db
from marketplace.orders import signals as orders_signals
from marketplace.orders.models import CallOff


@orders_signals.call_off_page.connect
def competition_link(call_off: CallOff, *, user, organisation) -> dict:
    """The competition's page each party reads: the buying side's overview, the winner's own
    competition page (with its assessment summary), or else the public page."""
    if call_off.competition_id is None:
        return {}
    competition = db.session.get(Competition, call_off.competition_id)
    if competition is None:
        return {}
    if permissions.can_oversee(user, organisation, competition):
        endpoint = "competitions.manage"
    elif organisation is not None and organisation.id == call_off.provider_id:
        endpoint = "competitions.bid"
    else:
        endpoint = "competitions.public"
    return {"competition_url": url_for(endpoint, competition_id=competition.id)}
