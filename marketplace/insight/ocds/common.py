"""What every OCDS release of the feed shares: the declared extensions, money and time in the
standard's shapes, organisations as parties (with their scale and VCSE flag as classified on
the release's day), and the compiled release of a record.

Invariants: a party is always an organisation (never a person: no names, emails, CRNs, PDUs,
notes or PO numbers are ever read into a release); amounts are pence / 100 exactly (a float
prints as its shortest round-trip decimal, so 12345 pence is ``123.45``); dates are UTC.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationClassification
from marketplace.core.clock import LONDON
from marketplace.core.db import db

OCDS_VERSION = "1.1"
CURRENCY = "GBP"
LICENSE = "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"
PUBLICATION_POLICY = "/insight/open-data"

# The extensions the feed uses, by their public extension.json at the commit copied into
# ../shared/ocds/extensions (SOURCES.txt): the directory each is tested from is the key's value.
EXTENSIONS: dict[str, str] = {
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/"
    "8d3b52eb26ce0f1a015c91b665c120b17ef619a0/extension.json": "ocds_lots_extension",
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_techniques_extension/"
    "5568b00a8dd694a3d34441bdd9ef2bd3f9d44b11/extension.json": "ocds_techniques_extension",
    "https://raw.githubusercontent.com/open-contracting-extensions/"
    "ocds_partyDetails_scale_extension/152cd9fb74e021e537b17d84420615acf7dec032/extension.json": (
        "ocds_partyDetails_scale_extension"
    ),
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_subcontracting_extension/"
    "65d06d0af7e5dc56f0f28beb54e5d7dc5d9155e7/extension.json": "ocds_subcontracting_extension",
    "https://raw.githubusercontent.com/cabinetoffice/ocds_uk_extension/"
    "aa0e43b84dfad0cb9b839a8135e0bc4b285d32fc/extension.json": "ocds_uk_extension",
}


def amount(pence: int) -> float:
    """Pounds as the standard's number: exact to the penny (``int / 100`` is correctly rounded)."""
    return pence / 100


def value(pence: int, gross_pence: int | None = None) -> dict:
    """An OCDS Value in pounds; ``amountGross`` (UK extension) is the amount with VAT."""
    result: dict = {"amount": amount(pence), "currency": CURRENCY}
    if gross_pence is not None:
        result["amountGross"] = amount(gross_pence)
    return result


def timestamp(moment: datetime) -> str:
    """An aware moment as an OCDS date-time in UTC, to the second."""
    tzinfo = moment.tzinfo
    if tzinfo is UTC:  # what UTCDateTime hands back: nothing to convert
        pass
    elif tzinfo is None:  # SQLite hands back naive UTC through some Core paths
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset():
        moment = moment.astimezone(UTC)
    # isoformat is the fast path (the bulk file formats a few dates per release).
    return moment.isoformat(timespec="seconds")[:19] + "Z"


def day_start(day: date) -> str:
    """A calendar date as the date-time of its start in London (in UTC)."""
    return timestamp(datetime(day.year, day.month, day.day, tzinfo=LONDON))


def day_end(day: date) -> str:
    """A calendar date as the last second of the day in London (in UTC), for period ends."""
    return timestamp(datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=LONDON))


def london_day(stamp: str) -> date:
    """The London calendar day of an OCDS date-time: the day a classification is read on."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return moment.astimezone(LONDON).date()


class Classifications:
    """The VCSE and SME classification of many organisations on any day, from one query.

    Same rule as ``marketplace.accounts.queries.classifications_in_force``: the entry with the
    greatest ``(effective_from, id)`` not after the day; none means neither VCSE nor SME (and
    the party then carries no scale and no VCSE flag: unknown is not published as "large").
    Loaded once per batch so that a batch of releases, each on its own day, costs one query."""

    def __init__(self, organisation_ids: Iterable[int]):
        self._rows: dict[int, list[tuple[date, int, bool, bool]]] = defaultdict(list)
        ids = sorted(set(organisation_ids))
        for chunk in _chunks(ids, 500):
            rows = db.session.execute(
                sa.select(
                    OrganisationClassification.organisation_id,
                    OrganisationClassification.effective_from,
                    OrganisationClassification.id,
                    OrganisationClassification.vcse,
                    OrganisationClassification.sme,
                ).where(OrganisationClassification.organisation_id.in_(chunk))
            )
            for org_id, effective_from, row_id, vcse, sme in rows:
                self._rows[org_id].append((effective_from, row_id, vcse, sme))
        for entries in self._rows.values():
            entries.sort()

    def on(self, organisation_id: int, day: date) -> tuple[bool, bool] | None:
        """(vcse, sme) in force on ``day``, or None if the organisation had none yet."""
        entries = self._rows.get(organisation_id)
        if not entries:
            return None
        # Every entry on or before ``day`` sorts before (day, +inf).
        index = bisect.bisect_right(entries, (day, float("inf"))) - 1
        if index < 0:
            return None
        _, _, vcse, sme = entries[index]
        return vcse, sme


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Organisations:
    """Organisations by id (name and public registration numbers only), loaded in one query."""

    def __init__(self, organisation_ids: Iterable[int]):
        self.by_id: dict[int, tuple[str, str | None, str | None]] = {}
        ids = sorted(set(organisation_ids))
        for chunk in _chunks(ids, 500):
            rows = db.session.execute(
                sa.select(
                    Organisation.id,
                    Organisation.name,
                    Organisation.companies_house_number,
                    Organisation.charity_number,
                ).where(Organisation.id.in_(chunk))
            )
            for org_id, name, company, charity in rows:
                self.by_id[org_id] = (name, company, charity)
        self._references: dict[int, dict] = {}
        self._parties: dict[tuple, dict] = {}

    def reference(self, organisation_id: int) -> dict:
        """The OrganizationReference of an organisation (one shared dict: never mutate it)."""
        found = self._references.get(organisation_id)
        if found is None:
            found = self._references[organisation_id] = {
                "id": party_id(organisation_id),
                "name": self.by_id[organisation_id][0],
            }
        return found

    def party(
        self,
        organisation_id: int,
        roles: list[str],
        role_details: str | None = None,
        flags: tuple[bool, bool] | None = None,
    ) -> dict:
        """``party()`` for given (vcse, sme) ``flags``, built once per batch for each
        combination and shared (never mutate it)."""
        key = (organisation_id, tuple(roles), role_details, flags)
        found = self._parties.get(key)
        if found is None:
            found = self._parties[key] = _party(self, organisation_id, roles, flags, role_details)
        return found


def party_id(organisation_id: int) -> str:
    return f"org-{organisation_id}"


def reference(organisations: Organisations, organisation_id: int) -> dict:
    """An OrganizationReference (id and name) to a party of the same release."""
    return {"id": party_id(organisation_id), "name": organisations.by_id[organisation_id][0]}


def party(
    organisations: Organisations,
    organisation_id: int,
    roles: Iterable[str],
    *,
    classifications: Classifications | None = None,
    on: date | None = None,
    role_details: str | None = None,
) -> dict:
    """An organisation as an OCDS party: its name, its Companies House number (``GB-COH``) or
    else its charity number (``GB-CHC``), and, for a provider, ``details.scale`` (partyScale:
    ``sme`` or ``large``) and ``details.vcse`` (UK extension) as classified on ``on``."""
    flags = None
    if classifications is not None and on is not None:
        flags = classifications.on(organisation_id, on)
    return _party(organisations, organisation_id, roles, flags, role_details)


def _party(
    organisations: Organisations,
    organisation_id: int,
    roles: Iterable[str],
    flags: tuple[bool, bool] | None,
    role_details: str | None,
) -> dict:
    name, company, charity = organisations.by_id[organisation_id]
    result: dict = {"id": party_id(organisation_id), "name": name, "roles": sorted(set(roles))}
    identifiers = []
    if company:
        identifiers.append({"scheme": "GB-COH", "id": company, "legalName": name})
    if charity:
        identifiers.append({"scheme": "GB-CHC", "id": charity, "legalName": name})
    if identifiers:
        result["identifier"] = identifiers[0]
        if len(identifiers) > 1:
            result["additionalIdentifiers"] = identifiers[1:]
    if flags is not None:
        vcse, sme = flags
        result["details"] = {"scale": "sme" if sme else "large", "vcse": vcse}
    if role_details:
        result["roleDetails"] = role_details
    return result


def merge_parties(parties: Iterable[dict]) -> list[dict]:
    """One party per organisation, its roles the union of each mention's (first details win)."""
    merged: dict[str, dict] = {}
    for item in parties:
        existing = merged.get(item["id"])
        if existing is None:
            merged[item["id"]] = dict(item)
        else:
            existing["roles"] = sorted(set(existing["roles"]) | set(item["roles"]))
            if "roleDetails" in item and "roleDetails" not in existing:
                existing["roleDetails"] = item["roleDetails"]
    return list(merged.values())


def compile_releases(releases: list[dict]) -> dict:
    """The compiled release of one ocid (``ocdsmerge`` is not installed, so compiled simply):
    releases are taken in date order; a top-level object (tender, buyer, planning) is the
    latest release's; an array of objects with ids (parties, awards, contracts,
    relatedProcesses) is merged by id, the latest release's object replacing the earlier one
    whole. Every release of the feed states the whole of each object it carries, so nothing is
    lost by replacing rather than merging field by field."""
    compiled: dict = {}
    for release in sorted(releases, key=lambda item: (item["date"], item["id"])):
        for key, item in release.items():
            if key in ("id", "date", "tag"):
                continue
            if isinstance(item, list) and all(isinstance(x, dict) and "id" in x for x in item):
                by_id = {x["id"]: x for x in compiled.get(key, [])}
                by_id.update({x["id"]: x for x in item})
                compiled[key] = list(by_id.values())
            else:
                compiled[key] = item
    if releases:
        latest = max(releases, key=lambda item: (item["date"], item["id"]))
        compiled["id"] = f"{latest['ocid']}-compiled"
        compiled["date"] = latest["date"]
        compiled["tag"] = ["compiled"]
    return compiled
