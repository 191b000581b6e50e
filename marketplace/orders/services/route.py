"""The route rule: a direct award from the rate card only within the arrangement's limit, counting
the buyer's call-offs with the same provider in the same lot (or for the same listing) over the
look-back period; above it, further competition. The buyer's total is locked while it is read
and added to (``buyer_total_lock``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, url_for

from marketplace.accreditation.models import AwardLimitScope
from marketplace.core.clock import london_date
from marketplace.core.db import db, lock_name
from marketplace.core.errors import BusinessRuleViolation
from marketplace.orders.models import COUNTED_STATUSES, AwardRoute, CallOff
from marketplace.orders.services.call_offs import in_pounds
from marketplace.reference.models import ServiceCategory

MAX_NAMED_CALL_OFFS = 10  # named in a refusal over the direct-award limit; the rest counted


def _counted_where(call_off: CallOff, since: datetime) -> list:
    """The buyer's call-offs that count together with ``call_off`` towards the direct-award
    limit (open or completed: not declined, expired or cancelled) placed since ``since``: with
    the same provider in the same lot (an arrangement's lot is its category), or, where the
    arrangement narrows the rule, for the same listing. Only direct awards count: a contract
    awarded by further competition was competed for, so it is no split of a direct award, and
    it does not use up the buyer's room for direct awards with that provider."""
    where = [
        CallOff.award_route == AwardRoute.DIRECT_RATE_CARD,
        CallOff.lead_buyer_id == call_off.lead_buyer_id,
        CallOff.provider_id == call_off.provider_id,
        CallOff.category_id == call_off.category_id,
        CallOff.arrangement_id == call_off.arrangement_id,
        CallOff.placed_at >= since,
        CallOff.status.in_(sorted(COUNTED_STATUSES)),
    ]
    if _scope(call_off) == AwardLimitScope.LISTING:
        where.append(CallOff.listing_id == call_off.listing_id)
    return where


def counted_value_query(call_off: CallOff, since: datetime) -> sa.Select:
    return sa.select(
        sa.func.coalesce(sa.func.sum(CallOff.gross_pence + CallOff.outcome_max_pence), 0)
    ).where(*_counted_where(call_off, since))


def _scope(call_off: CallOff) -> AwardLimitScope:
    return call_off.arrangement.award_limit_scope or AwardLimitScope.PROVIDER_AND_LOT


def counted_value(call_off: CallOff, since: datetime) -> int:
    """Gross value of the buyer's call-offs counted with this one towards the direct-award
    limit (``_counted_where``), with the most their outcome terms could add."""
    return int(db.session.scalar(counted_value_query(call_off, since)))


def buyer_total_lock(call_off: CallOff) -> str:
    """The name locked while the buyer's total with the call-off's provider in its lot is
    checked and added to (held to the commit): the buyer's placements and variations with one
    provider in one lot, across all of the provider's listings there, are checked one after
    another, so two at once cannot both fit under the limit; other buyers, providers and lots go
    on in parallel. The narrower per-listing rule counts a subset of the same call-offs, so this
    lock covers it too."""
    return (
        f"direct-award-limit:{call_off.lead_buyer_id}:{call_off.provider_id}:"
        f"{call_off.arrangement_id}:{call_off.category_id}"
    )


def lookback_start(now: datetime) -> datetime:
    return now - timedelta(days=current_app.config["DIRECT_AWARD_LOOKBACK_DAYS"])


def check_route(call_off: CallOff, extra_gross: int, now: datetime) -> None:
    """Direct award at the rate card only within the arrangement's limit, counting the buyer's
    call-offs with the same provider in the same lot (or for the same listing, if the
    arrangement says so) over the look-back period; above it, further competition. Locks the
    buyer's total first (``buyer_total_lock``). A call-off awarded by further competition is
    not held to the limit (the competition is the lawful route above it)."""
    if call_off.award_route != AwardRoute.DIRECT_RATE_CARD:
        return
    lock_name(buyer_total_lock(call_off))
    counted = counted_value(call_off, lookback_start(now))
    check_within_limit(call_off, counted, extra_gross, now)


def check_within_limit(call_off: CallOff, counted: int, extra_gross: int, now: datetime) -> None:
    """The route rule on the buyer's counted value (``counted_value``, read under the lock on
    it): the call-off's whole-life value with ``extra_gross`` more must keep it within the
    arrangement's direct-award limit. Above it, the buyer is told why in plain words (what was
    counted, the limit, the call-offs counted) and what to do instead."""
    limit = call_off.arrangement.direct_award_limit_pence
    # Whole-life value: the fee and the most its outcome terms could add.
    own = call_off.gross_pence + (call_off.outcome_max_pence or 0)
    if call_off.id is not None and call_off.status in COUNTED_STATUSES:
        counted -= own  # a variation replaces the call-off's own value
    total = counted + own + extra_gross
    if extra_gross == 0 and call_off.id is None and own > limit:
        message = (
            f"This call-off is worth {in_pounds(own)} including VAT, over the direct award "
            f"limit of {in_pounds(limit)}. Buying this much needs a further competition among "
            "every member of the lot in the area, not a direct award from the rate card: start "
            "a further competition, or buy less"
        )
        raise AboveDirectAwardLimit(
            message,
            message,
            (
                f"This call-off is worth {in_pounds(own)} including VAT, over the direct award "
                f"limit of {in_pounds(limit)}.",
                INSTEAD,
            ),
            start_competition_url(call_off.listing_id, call_off.gross_pence),
        )
    if total > limit:
        raise _over_limit_refusal(call_off, counted, total, now, extra_gross)


# What a buyer above the limit can do instead, in plain words (the page's explanation).
INSTEAD = (
    "Above the limit the law needs a further competition: every provider that is a member of "
    "the lot in the area is invited to bid, and the contract goes to the best bid on published "
    "criteria (price, quality and social value). Start a further competition, with this "
    "service's lot, area and value filled in."
)

# The start of a further competition: the competitions feature's page (orders never imports
# competitions, so it is named by endpoint, and by its plain path while that is not registered).
START_COMPETITION_ENDPOINT = "competitions.start"
START_COMPETITION_PATH = "/competitions/new"


def start_competition_url(listing_id: int | None, value_pence: int) -> str:
    """Where a buyer refused a direct award starts a further competition instead, with the
    listing (its lot and area) and the value they asked for (gross pence) filled in."""
    query = {"listing_id": listing_id, "value_pence": value_pence}
    if listing_id is None:
        query.pop("listing_id")
    if START_COMPETITION_ENDPOINT in current_app.view_functions:
        return url_for(START_COMPETITION_ENDPOINT, **query)
    return f"{START_COMPETITION_PATH}?{urlencode(query)}"


class AboveDirectAwardLimit(BusinessRuleViolation):
    """The direct-award limit refuses a call-off. ``errors`` says everything in one message (the
    API's); ``short`` and ``explanation`` say the same in parts, so that a page can put a short
    error on the quantity and the explanation beside it, not a paragraph in bold red.
    ``start_competition_url`` is where to start the further competition needed instead (the
    API's problem detail carries it as a member of that name)."""

    def __init__(
        self, message: str, short: str, explanation: tuple[str, ...], start_competition_url: str
    ):
        super().__init__({"quantity": [message]})
        self.short, self.explanation = short, explanation
        self.start_competition_url = start_competition_url
        self.extensions = {"start_competition_url": start_competition_url}


def _over_limit_refusal(
    call_off: CallOff, counted: int, total: int, now: datetime, extra_gross: int
) -> AboveDirectAwardLimit:
    """Why the limit refuses the call-off, and what to do instead (read only when it does)."""
    limit = call_off.arrangement.direct_award_limit_pence
    since = lookback_start(now)
    rows = db.session.execute(
        sa.select(
            CallOff.reference, CallOff.gross_pence + CallOff.outcome_max_pence, CallOff.placed_at
        )
        .where(*_counted_where(call_off, since))
        .order_by(CallOff.placed_at, CallOff.id)
    ).all()
    rows = [row for row in rows if row.reference != call_off.reference]
    shown = [f"{row.reference} ({in_pounds(row[1])})" for row in rows[:MAX_NAMED_CALL_OFFS]]
    if len(rows) > MAX_NAMED_CALL_OFFS:
        shown.append(f"and {len(rows) - MAX_NAMED_CALL_OFFS} more")
    if _scope(call_off) == AwardLimitScope.LISTING:
        whose = "for this service"
        rule = "Call-offs for the same service count together"
    else:
        lot = db.session.get(ServiceCategory, call_off.category_id)
        whose = f"with {call_off.provider.name} in the {lot.name} lot"
        rule = (
            "Call-offs with the same provider in the same lot count together, whichever of its "
            "services they buy"
        )
    left = max(limit - counted, 0)
    instead = "Needs above the limit must go to further competition, not be split into smaller "
    instead += "call-offs: start a further competition among every member of the lot in the area"
    if left:
        instead += f", or buy no more than {in_pounds(left)} including VAT directly"
    oldest = ""
    if rows:
        freed = london_date(rows[0].placed_at + (now - since))
        oldest = f"The oldest of them stops counting after {freed.day} {freed:%B %Y}"
    counted_words = (
        f"Your organisation's call-offs {whose} in the last 12 months come to "
        f"{in_pounds(counted)} including VAT"
    )
    message = (
        counted_words
        + (f" ({', '.join(shown)})" if shown else "")
        + f"; with this one they would be {in_pounds(total)}, over the direct award limit of "
        f"{in_pounds(limit)}. {rule}. {instead}" + (f". {oldest}" if oldest else "")
    )
    short = (
        f"With this call-off, your organisation's direct awards {whose} would come to "
        f"{in_pounds(total)} in 12 months, over the direct award limit of {in_pounds(limit)}: "
        + (f"buy no more than {in_pounds(left)} directly, or " if left else "buy ")
        + "through a further competition"
    )
    explanation = (
        counted_words + (f": {', '.join(shown)}." if shown else "."),
        f"{rule}.",
        f"{instead}.",
        *((f"{oldest}.",) if oldest else ()),
    )
    # What the buyer asked for: the call-off's gross value (with a variation's addition).
    url = start_competition_url(call_off.listing_id, call_off.gross_pence + extra_gross)
    return AboveDirectAwardLimit(message, short, explanation, url)
