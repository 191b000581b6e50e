"""Small helpers for the ledger's tests: a provider's classification row, and sums of the ledger."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import (
    ClassificationSource,
    OrganisationClassification,
    StaffBand,
    TurnoverBand,
    VcseBasis,
)
from marketplace.core.db import db
from marketplace.insight.models import SpendEntry, SpendMonth, SpendProviderYear


def classify(organisation, effective_from: date, *, vcse: bool, sme: bool, reason: str = ""):
    """An ``OrganisationClassification`` row, as the classification services record one (the
    classification lane builds them; rows are only ever added)."""
    row = OrganisationClassification(
        organisation_id=organisation.id,
        effective_from=effective_from,
        vcse_basis=VcseBasis.REGISTERED_CHARITY if vcse else VcseBasis.NOT_VCSE,
        staff_band=StaffBand.FROM_10_TO_49 if sme else StaffBand.FROM_250,
        turnover_band=TurnoverBand.UP_TO_10M if sme else TurnoverBand.OVER_44M,
        vcse=vcse,
        sme=sme,
        source=ClassificationSource.CORRECTION if reason else ClassificationSource.REGISTRATION,
        reason=reason,
    )
    db.session.add(row)
    db.session.flush()
    return row


def entry_sums(**where) -> dict[tuple, int]:
    """Entries summed by (measure, funder): what the roll-ups must agree with."""
    sums: dict[tuple, int] = defaultdict(int)
    query = sa.select(SpendEntry).filter_by(**where)
    for entry in db.session.scalars(query):
        sums[entry.measure.value, entry.funder_id] += entry.amount_pence
    return {k: v for k, v in sums.items() if v}


def month_sums(**where) -> dict[tuple, int]:
    sums: dict[tuple, int] = defaultdict(int)
    for row in db.session.scalars(sa.select(SpendMonth).filter_by(**where)):
        sums[row.measure.value, row.funder_id] += row.amount_pence
    return {k: v for k, v in sums.items() if v}


def provider_year_sums(**where) -> dict[tuple, int]:
    sums: dict[tuple, int] = defaultdict(int)
    for row in db.session.scalars(sa.select(SpendProviderYear).filter_by(**where)):
        sums[row.financial_year, row.funder_id, row.provider_id] += row.paid_pence
    return {k: v for k, v in sums.items() if v}
