"""Each demo provider's VCSE and SME classification, consistent with its type and numbers:
charities as registered charities or CIOs (all small), the private companies one SME and one
reclassified by the authority from SME to large last year, the public body large. Dated from
when each joined (its ``created_at`` is set to that day), with most confirmed in the last year
and a few overdue, so that the home page's confirmation task shows (Northern Lights' people see
it). Rows are written directly, as the services would write them, with their audit events."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from marketplace.accounts.models import (
    ClassificationSource,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    StaffBand,
    TurnoverBand,
    User,
    VcseBasis,
    is_sme,
)
from marketplace.core import audit
from marketplace.core.clock import LONDON, london_date
from marketplace.core.db import db
from marketplace.demo.people import PROVIDERS

# Providers whose yearly confirmation is overdue (never confirmed since registering).
OVERDUE = {"northern-lights", "anchor", "caledonian"}
CIO = {"second-chances", "open-door", "restore", "kinship", "borders-recovery"}
CHARITY_BANDS = [
    (StaffBand.UNDER_10, TurnoverBand.UP_TO_2M),
    (StaffBand.FROM_10_TO_49, TurnoverBand.UP_TO_2M),
    (StaffBand.FROM_10_TO_49, TurnoverBand.UP_TO_10M),
    (StaffBand.FROM_50_TO_249, TurnoverBand.UP_TO_10M),
]
KEYSTONE_REASON = (
    "Its accounts for 2024-25 show 310 staff and a turnover of £51 million after it took over "
    "Homestead Lettings: no longer an SME."
)


ACTIONS = {
    ClassificationSource.REGISTRATION: "classification.registered",
    ClassificationSource.CONFIRMATION: "classification.confirmed",
    ClassificationSource.CORRECTION: "classification.corrected",
}


def _at(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=LONDON)


def _entry(
    organisation: Organisation,
    day: date,
    basis: VcseBasis,
    staff: StaffBand,
    turnover: TurnoverBand,
    source: ClassificationSource,
    by: User | None,
    reason: str = "",
) -> None:
    entry = OrganisationClassification(
        organisation=organisation,
        effective_from=day,
        vcse_basis=basis,
        staff_band=staff,
        turnover_band=turnover,
        vcse=basis.is_vcse,
        sme=is_sme(staff, turnover),
        source=source,
        reason=reason,
        recorded_at=_at(day),
        recorded_by_id=by.id if by else None,
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        by,
        ACTIONS[source],
        entry,
        after={"vcse": entry.vcse, "sme": entry.sme, "source": "demo", "reason": reason},
    )


def load_classifications_demo(
    organisations: dict[str, Organisation], provider_admins: dict[str, User], admin: User
) -> int:
    """Classify every demo provider (flushes, never commits); answers how many entries."""
    today = london_date()
    count = 0
    for index, spec in enumerate(PROVIDERS):
        organisation = organisations[spec.key]
        by = provider_admins.get(spec.key)
        joined = today - timedelta(days=420 + 53 * index)
        organisation.created_at = _at(joined)
        if spec.type is OrganisationType.PROVIDER_VCSE:
            basis = VcseBasis.CIO if spec.key in CIO else VcseBasis.REGISTERED_CHARITY
            staff, turnover = CHARITY_BANDS[index % len(CHARITY_BANDS)]
        elif spec.type is OrganisationType.PROVIDER_PUBLIC:
            basis, staff, turnover = VcseBasis.NOT_VCSE, StaffBand.FROM_250, TurnoverBand.OVER_44M
        else:
            basis, staff, turnover = (
                VcseBasis.NOT_VCSE,
                StaffBand.FROM_50_TO_249,
                TurnoverBand.UP_TO_44M,
            )
        _entry(organisation, joined, basis, staff, turnover, ClassificationSource.REGISTRATION, by)
        count += 1
        if spec.key == "keystone":
            # Reclassified by the authority from SME to large last year, then confirmed.
            corrected = today - timedelta(days=300)
            _entry(
                organisation,
                corrected,
                basis,
                StaffBand.FROM_250,
                TurnoverBand.OVER_44M,
                ClassificationSource.CORRECTION,
                admin,
                KEYSTONE_REASON,
            )
            staff, turnover = StaffBand.FROM_250, TurnoverBand.OVER_44M
            count += 1
        if spec.key not in OVERDUE:
            # Keystone confirmed the authority's correction since; others some time this year.
            days = 40 if spec.key == "keystone" else 15 + (29 * index) % 320
            confirmed = today - timedelta(days=days)
            _entry(
                organisation,
                confirmed,
                basis,
                staff,
                turnover,
                ClassificationSource.CONFIRMATION,
                by,
            )
            count += 1
    return count
