"""Scheduled, every quarter hour: competitions whose bid deadline has passed close (bids unsealed
for the panel and counted for publication). Pages close a competition too when opened after its
deadline, so the job only makes the emails and the published counts timely."""

from __future__ import annotations

from datetime import datetime

from marketplace.competitions.services.evaluation import close_due
from marketplace.core.scheduler.registry import job


@job(
    "competitions.close-bids",
    schedule="*/15 * * * *",
    description="Close further competitions whose bid deadline has passed: count the bids, "
    "email the buyer and the evaluation panel.",
)
def close_competitions(due_at: datetime) -> dict[str, int]:
    # Only published competitions past their deadline are closed, each once (its row locked),
    # so a second run closes none.
    return {"competitions closed": close_due(now=due_at)}
